"""Video to features, option by option: what each decode / network option saves, how far it moves the
features from the exact path, and whether that drift moves Average-mAP.

    .venv/bin/python bench/video_options.py [--seconds 40] [--frames 64] [--skip-map] [--json]

1. Decode (the 720p broadcast bench file of bench/decode.py, first --seconds): `video.decode_command`
   with one option added, e.g. `-skip_loop_filter noref` (no deblocking of frames nothing refers
   to), `-skip_loop_filter all`, decoder `-threads`, `-flags2 +fast`, the scaler's algorithm, or
   `-skip_frame noref` (which also changes which frame is sampled). Cost: ffmpeg's CPU seconds
   (its own threads included), side by side with the exact command in this run. Drift: the
   mobilenetv2-offline features of its frames against those of the exact frames, cosine per frame.
2. Network (mobilenetv2-offline, on --frames exact frames): `load_network` as `spot` uses it (fp32,
   folded batch norms, channels-last, batch 32) against batch 16 / 64, without channels-last,
   traced + frozen TorchScript (optimize_for_inference), bf16 autocast, int8 dynamic quantisation
   (it only quantises nn.Linear: none in this network), and one intra-op thread. Cost: frames per
   CPU-second and per wall second (best of 2). Drift: cosine per frame against the baseline.
3. Average-mAP (skipped with --skip-map): a NetVLAD++ trained on a small synthetic benchmark (6 games
   of 2 x 5 min, 512-d); its test features are perturbed so that every frame's cosine to the clean
   feature is a draw from the drift measured for an option (the real drift's size, in a random
   direction), and scored again. "unchanged": |change| < 0.0005 in loose and in tight.

Timings on this shared 2-core machine are noisy: compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from decode import bench_video, cpu_children, cpu_self  # noqa: E402

from spotting_core.features import backbones  # noqa: E402
from spotting_core.io import video  # noqa: E402

BACKBONE = "mobilenetv2-offline"
SIZE = (224, 224)
DECODE = {  # name: (options before -i, scaler flags)
    "exact": ([], None),
    "threads 1": (["-threads", "1"], None),
    "threads 2": (["-threads", "2"], None),
    "skip_loop_filter noref": (["-skip_loop_filter", "noref"], None),
    "skip_loop_filter bidir": (["-skip_loop_filter", "bidir"], None),
    "skip_loop_filter all": (["-skip_loop_filter", "all"], None),
    "flags2 +fast": (["-flags2", "+fast"], None),
    "scale fast_bilinear": ([], "fast_bilinear"),
    "scale area": ([], "area"),
    "skip_frame noref": (["-skip_frame", "noref"], None),
}
UNCHANGED = 5e-4


def command(path: Path, options: list[str], flags: str | None) -> list[str]:
    cmd = video.decode_command(path, fps=2.0, size=SIZE)
    at = cmd.index("-i")
    cmd[at:at] = options
    if flags:
        vf = cmd.index("-vf") + 1
        cmd[vf] = cmd[vf].replace(f"scale={SIZE[0]}:{SIZE[1]}", f"scale={SIZE[0]}:{SIZE[1]}:flags={flags}")
    return cmd


def run_decode(cmd: list[str]) -> tuple[np.ndarray, float, float]:
    import subprocess

    c0, t0 = cpu_children(), time.perf_counter()
    raw = subprocess.run(cmd, capture_output=True, check=True).stdout
    wall, cpu = time.perf_counter() - t0, cpu_children() - c0
    return np.frombuffer(bytearray(raw), np.uint8).reshape(-1, SIZE[1], SIZE[0], 3), wall, cpu


def features(net, frames: np.ndarray, *, batch: int = 32, prepare=None, autocast=False) -> np.ndarray:
    bb = backbones.get_backbone(BACKBONE)
    out = []
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        for i in range(0, len(frames), batch):
            x = bb.preprocess(torch.from_numpy(frames[i:i + batch]))
            x = prepare(x) if prepare else x
            out.append(net(x).float().reshape(len(x), -1).numpy())
    return np.concatenate(out)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


def decode_part(path: Path, net) -> tuple[list[dict], np.ndarray]:
    rows, exact = [], None
    for name, (options, flags) in DECODE.items():
        ref, ref_wall, ref_cpu = run_decode(command(path, *DECODE["exact"]))  # side by side, every time
        frames, wall, cpu = run_decode(command(path, options, flags))
        if exact is None:
            exact, exact_feats = ref, features(net, ref)
        n = min(len(frames), len(exact))
        feats = exact_feats if name == "exact" else features(net, frames[:n])
        cos = cosine(feats[:n], exact_feats[:n])
        rows.append({"option": name, "frames": int(len(frames)), "cpu_s": round(cpu, 2), "exact_cpu_s": round(ref_cpu, 2),
                     "cpu_ratio": round(cpu / ref_cpu, 3), "wall_ratio": round(wall / ref_wall, 3),
                     "identical_pixels": bool(len(frames) == len(exact) and np.array_equal(frames, exact)),
                     "cos_min": float(cos.min()), "cos_mean": float(cos.mean()), "_cos": cos})
        print(f"  {name:<26}{len(frames):>6}{cpu:>9.2f}{ref_cpu:>9.2f}{cpu / ref_cpu:>9.3f}{wall / ref_wall:>9.3f}"
              f"{cos.min():>11.6f}{cos.mean():>11.6f}  {'identical' if rows[-1]['identical_pixels'] else ''}",
              flush=True)
    return rows, exact


def timed_features(fn, repeats: int = 2) -> tuple[float, float, np.ndarray]:
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        c0, t0 = cpu_self(), time.perf_counter()
        out = fn()
        best_wall, best_cpu = min(best_wall, time.perf_counter() - t0), min(best_cpu, cpu_self() - c0)
    return best_wall, best_cpu, out


def network_part(frames: np.ndarray) -> list[dict]:
    base = backbones.load_network(BACKBONE, device="cpu")
    example = backbones.get_backbone(BACKBONE).preprocess(torch.from_numpy(frames[:32]))
    with torch.inference_mode():
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(base, example).eval()))
    linear = sum(isinstance(m, torch.nn.Linear) for m in base.modules())
    quant = torch.ao.quantization.quantize_dynamic(base, {torch.nn.Linear}, dtype=torch.qint8)
    plain = backbones.load_network(BACKBONE, device="cpu").to(memory_format=torch.contiguous_format)
    threads = torch.get_num_threads()
    variants = {
        "baseline (load_network, batch 32)": lambda: features(base, frames),
        "batch 16": lambda: features(base, frames, batch=16),
        "batch 64": lambda: features(base, frames, batch=64),
        "no channels-last": lambda: features(plain, frames, prepare=lambda x: x.contiguous()),
        "TorchScript trace+freeze": lambda: features(frozen, frames),
        "bf16 autocast": lambda: features(base, frames, autocast=True),
        f"int8 dynamic ({linear} Linear layers)": lambda: features(quant, frames),
    }
    rows, ref = [], None
    for name, fn in variants.items():
        wall, cpu, out = timed_features(fn)
        ref = out if ref is None else ref
        cos = cosine(out, ref)
        rows.append({"option": name, "frames_per_s": round(len(frames) / wall, 2),
                     "frames_per_cpu_s": round(len(frames) / cpu, 2), "cos_min": float(cos.min()),
                     "cos_mean": float(cos.mean()), "_cos": cos})
        print(f"  {name:<36}{len(frames) / wall:>9.2f}{len(frames) / cpu:>11.2f}{cos.min():>12.7f}{cos.mean():>12.7f}",
              flush=True)
    torch.set_num_threads(1)
    wall, cpu, out = timed_features(lambda: features(base, frames))
    torch.set_num_threads(threads)
    cos = cosine(out, ref)
    rows.append({"option": "1 intra-op thread", "frames_per_s": round(len(frames) / wall, 2),
                 "frames_per_cpu_s": round(len(frames) / cpu, 2), "cos_min": float(cos.min()),
                 "cos_mean": float(cos.mean()), "_cos": cos})
    print(f"  {'1 intra-op thread':<36}{len(frames) / wall:>9.2f}{len(frames) / cpu:>11.2f}{cos.min():>12.7f}"
          f"{cos.mean():>12.7f}", flush=True)
    return rows


def map_part(drifts: dict[str, np.ndarray]) -> dict[str, dict]:
    """Test Average-mAP of a small synthetic NetVLAD++ with features perturbed to each drift."""
    from spotting_core.engine.inference import prediction_columns, spot_game
    from spotting_core.engine.metrics import average_map_tables
    from spotting_core.engine.train import TrainConfig, fit
    from spotting_core.io.soccernet import CLASSES_V2, LABELS_FILE, label_arrays, read_json
    from spotting_core.models import load_checkpoint
    from spotting_core.synth.benchmark import feature_name, generate

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="video_options_"))
    data = generate(work / "data", games=6, seed=0, half_minutes=5.0, dim=512)
    cfg = TrainConfig(model="netvlad++", data=str(data), features=feature_name(512), out=str(work / "m.pt"),
                      epochs=20, seed=0, device="cpu", eval_every=5, max_train_s=90)
    fit(cfg)
    model, _ = load_checkpoint(cfg.out)
    games = [(p.parent, label_arrays(read_json(p))) for p in sorted((data / "test").rglob(LABELS_FILE))]
    halves = {g: [np.load(g / f"{h}_{feature_name(512)}.npy") for h in (1, 2)] for g, _ in games}
    T = max(len(h) for hs in halves.values() for h in hs)

    def score(perturb) -> dict:
        tables = []
        for g, labels in games:
            events, _ = spot_game(model, [perturb(h) for h in halves[g]], classes=CLASSES_V2)
            tables.append((labels, prediction_columns(events)))
        res = average_map_tables(tables, num_frames=(T, T), num_classes=len(CLASSES_V2), metrics=("loose", "tight"))
        return {m: res[m]["a_mAP"] for m in res}

    clean = score(lambda h: h)
    out = {"clean": clean}
    for name, cos in drifts.items():
        rng = np.random.default_rng(0)

        def perturb(h, cos=cos, rng=rng):
            c = np.clip(rng.choice(cos, size=len(h)), -1.0, 1.0)[:, None]
            noise = rng.standard_normal(h.shape).astype(np.float32)
            noise -= (noise * h).sum(1, keepdims=True) / ((h * h).sum(1, keepdims=True) + 1e-12) * h  # ⟂ h
            noise *= np.linalg.norm(h, axis=1, keepdims=True) / (np.linalg.norm(noise, axis=1, keepdims=True) + 1e-12)
            return (h + noise * np.tan(np.arccos(c))).astype(np.float32)

        got = score(perturb)
        out[name] = {**got, "unchanged": all(abs(got[m] - clean[m]) < UNCHANGED for m in clean)}
        print(f"  {name:<36} loose {got['loose']:.4f} ({got['loose'] - clean['loose']:+.4f})  tight "
              f"{got['tight']:.4f} ({got['tight'] - clean['tight']:+.4f})  "
              f"{'unchanged' if out[name]['unchanged'] else 'CHANGED'}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=40.0, help="seconds of the 720p bench file to decode")
    p.add_argument("--frames", type=int, default=64, help="frames for the network measurements")
    p.add_argument("--skip-map", action="store_true")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    path = bench_video(args.seconds)
    info = video.probe(path)
    net = backbones.load_network(BACKBONE, device="cpu")
    print(f"[decode] {path.name}: {info.width}x{info.height} {info.fps:g} fps {info.duration:.0f} s -> 2 fps {SIZE}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"  {'option':<26}{'frames':>6}{'cpu s':>9}{'exact s':>9}{'cpu x':>9}{'wall x':>9}{'cos min':>11}{'cos mean':>11}")
    decode_rows, frames = decode_part(path, net)
    print(f"[network] {BACKBONE} on {min(args.frames, len(frames))} exact frames")
    print(f"  {'option':<36}{'fr/s':>9}{'fr/cpu-s':>11}{'cos min':>12}{'cos mean':>12}")
    network_rows = network_part(frames[: args.frames])
    result = {"decode": decode_rows, "network": network_rows}
    if not args.skip_map:
        drifts = {r["option"]: r["_cos"] for r in decode_rows + network_rows if r["cos_min"] < 1.0 - 1e-7}
        print(f"[Average-mAP] synthetic NetVLAD++, test features perturbed to each option's drift "
              f"({len(drifts)} options drift)")
        result["average_map"] = map_part(drifts)
    if args.json:
        strip = {k: [{f: v for f, v in r.items() if f != "_cos"} for r in rows] for k, rows in result.items()
                 if k != "average_map"}
        print(json.dumps({**strip, "average_map": result.get("average_map")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
