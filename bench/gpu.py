"""The GPU path in one script (< 10 min on one GPU): backbones, video to events, NetVLAD++, ugl-e2e training.

    .venv/bin/python bench/gpu.py [--json] [--video-s 600] [--seconds-per-case 8]
    .venv/bin/python bench/gpu.py --cpu          a smoke test on the CPU, tiny sizes (~1-2 min)

Printed, each with the GPU memory peak of its part (torch.cuda.max_memory_allocated; "-" on CPU):
1. frames/s of each frame backbone (`features.backbones.BACKBONES`: resnet152, mobilenetv2-offline,
   resnet152-soccernet; random weights: speed only) at fp32 and under AMP (fp16 autocast on fp32
   weights), and as `load_network` gives it to `spot` (fp16 weights on CUDA). Random uint8 frames
   at the backbone's decode size, preprocessed on the device, batch 64 (--cpu: 1); warm-up first,
   then as many batches as fit in --seconds-per-case.
2. video to events: `engine.spot.spot_path` on --video-s of the 720p broadcast bench file
   (bench/decode.py; 10 minutes), mobilenetv2-offline + a randomly initialised NetVLAD++ (as
   bench/end_to_end.py): decode (ffmpeg, CPU) overlapped with the network (GPU), NMS, files written.
3. NetVLAD++ `sequence_scores` on one 45-minute half (5,400 x 512 random features; --cpu: 600).
4. ugl-e2e training steps/s at batch 8 (--cpu: 2): delta = 100 frames of 224 x 398 (--cpu: 8 of
   48 x 86), RegNet-Y 400MF + GSM, random init; the steps of `engine.train.fit` (augment, forward
   and focal loss under AMP, GradScaler, AdamW), after 2 warm-up steps.
Recorded: torch, CUDA and cuDNN versions, the device name, the CPU count.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from spotting_core.features import backbones  # noqa: E402
from spotting_core.io import soccernet  # noqa: E402
from spotting_core.models import build_model, save_checkpoint  # noqa: E402


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def reset_peak(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)


def peak_gib(dev: torch.device) -> float | str:
    return round(torch.cuda.max_memory_allocated(dev) / 2**30, 3) if dev.type == "cuda" else "-"


def rate(fn, dev: torch.device, *, items: int, budget_s: float, warmup: int = 2) -> float:
    """items per second of fn() (each call does `items`), repeated for about budget_s after warm-up."""
    for _ in range(warmup):
        fn()
    sync(dev)
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        sync(dev)
        if time.perf_counter() - t0 >= budget_s:
            break
    return items * n / (time.perf_counter() - t0)


def environment(dev: torch.device) -> dict:
    cuda = dev.type == "cuda"
    return {"torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "device": torch.cuda.get_device_name(dev) if cuda else "cpu", "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads()}


def part_backbones(dev: torch.device, *, batch: int, budget_s: float) -> list[dict]:
    rows = []
    unique = {}
    for name, bb in backbones.BACKBONES.items():  # the aliases share a network: once each
        unique.setdefault((bb.build, bb.decode_size), name)
    for name in unique.values():
        bb = backbones.get_backbone(name)
        if isinstance(bb.decode_size, (tuple, list)):  # (width, height)
            w, h = bb.decode_size
        else:  # a height, aspect kept (16:9); None: native frames, SoccerNet's 224p
            h = bb.decode_size or 224
            w = int(round(h * 16 / 9 / 2)) * 2
        frames = torch.randint(0, 256, (batch, h, w, 3), dtype=torch.uint8, device=dev)
        net = backbones.load_network(bb, device=dev, random_init=True)
        modes = {"fp32": (net.float(), False)}
        if dev.type == "cuda":
            modes["amp"] = (net, True)
            modes["load_network (fp16)"] = (backbones.load_network(bb, device=dev, random_init=True), False)
        for mode, (model, amp) in modes.items():
            reset_peak(dev)
            dtype = next(model.parameters()).dtype

            def step(model=model, amp=amp, dtype=dtype, bb=bb, frames=frames):
                with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.float16, enabled=amp):
                    return model(bb.preprocess(frames).to(dtype))

            fps = rate(step, dev, items=batch, budget_s=budget_s, warmup=1 if dev.type == "cpu" else 2)
            rows.append({"backbone": name, "mode": mode, "batch": batch, "input": f"{w}x{h}",
                         "frames_per_s": round(fps, 1), "peak_gib": peak_gib(dev)})
            print(f"  {name:<22}{mode:<22}{fps:>10.1f} frames/s   peak {rows[-1]['peak_gib']} GiB", flush=True)
        del net, modes
    return rows


def part_video(dev: torch.device, *, seconds: float, work: Path) -> dict:
    from decode import bench_video

    from spotting_core.engine.spot import spot_path
    from spotting_core.io import tables, video

    torch.manual_seed(0)
    model = build_model("netvlad++", input_dim=backbones.get_backbone("mobilenetv2-offline").dim)
    ckpt = save_checkpoint(work / "nv_random.pt", model, classes=soccernet.CLASSES_V2,
                           feature_name="mobilenetv2-offline", extra={"note": "random weights: timing only"})
    src = work / "video" / f"broadcast_720p_{int(seconds)}s.mp4"
    src.parent.mkdir(parents=True)
    shutil.copy(bench_video(seconds), src)  # a fresh folder: no cached features
    info = video.probe(src)
    reset_peak(dev)
    t0 = time.perf_counter()
    out = spot_path(src, checkpoint=ckpt, backbone="mobilenetv2-offline", device=str(dev),
                    progress=lambda f, t: None)
    sync(dev)
    wall = time.perf_counter() - t0
    events = tables.read_results(out / soccernet.RESULTS_FILE)
    row = {"video_s": round(info.duration, 1), "size": f"{info.width}x{info.height}", "wall_s": round(wall, 2),
           "realtime_x": round(info.duration / wall, 1), "events": len(events), "peak_gib": peak_gib(dev),
           "match_90min_min_extrapolated": round(wall * 5400 / info.duration / 60, 2)}
    print(f"  {row['video_s']:.0f} s of {row['size']} -> {row['events']} events in {wall:.1f} s "
          f"({row['realtime_x']}x realtime; a 90-min match at this rate, extrapolated: "
          f"{row['match_90min_min_extrapolated']} min)   peak {row['peak_gib']} GiB", flush=True)
    return row


def part_netvlad(dev: torch.device, *, frames: int, budget_s: float) -> dict:
    torch.manual_seed(0)
    model = build_model("netvlad++", input_dim=512).to(dev).eval()
    feats = torch.randn(frames, 512, device=dev)
    reset_peak(dev)

    def step():
        with torch.inference_mode():
            return model.sequence_scores(feats)

    halves = rate(step, dev, items=1, budget_s=budget_s, warmup=1)
    row = {"frames": frames, "halves_per_s": round(halves, 2), "ms_per_half": round(1000 / halves, 1),
           "peak_gib": peak_gib(dev)}
    print(f"  one half of {frames} frames: {row['ms_per_half']} ms ({row['halves_per_s']} halves/s)   "
          f"peak {row['peak_gib']} GiB", flush=True)
    return row


def part_ugl(dev: torch.device, *, batch: int, frames: int, height: int, budget_s: float) -> dict:
    torch.manual_seed(0)
    model = build_model("ugl-e2e", weights="random", input_dim=height, window_s=frames / 2.0).to(dev).train()
    width = int(round(height * 16 / 9 / 2)) * 2
    x = torch.randint(0, 256, (batch, frames, height, width, 3), dtype=torch.uint8, device=dev)
    events = torch.zeros(batch, frames, model.num_classes, device=dev)
    events[:, frames // 2, 0] = 1.0
    optimizer = torch.optim.AdamW(model.parameters(), lr=model.cfg.lr)
    amp = dev.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    reset_peak(dev)

    def step():
        batch_ = model.augment({"x": x, "events": events})
        with torch.autocast(device_type=dev.type, enabled=amp):
            terms = model.loss(model.forward_batch(batch_), batch_)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(terms["loss"]).backward()
        scaler.step(optimizer)
        scaler.update()

    steps = rate(step, dev, items=1, budget_s=budget_s, warmup=2)
    row = {"batch": batch, "frames": frames, "size": f"{width}x{height}", "amp": amp,
           "steps_per_s": round(steps, 3), "clips_per_s": round(steps * batch, 2), "peak_gib": peak_gib(dev)}
    print(f"  batch {batch} x {frames} frames of {width}x{height}, AMP {amp}: {row['steps_per_s']} steps/s "
          f"({row['clips_per_s']} clips/s)   peak {row['peak_gib']} GiB", flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cpu", action="store_true", help="smoke test on the CPU with tiny sizes")
    p.add_argument("--video-s", type=float, default=None, help="seconds of 720p video (600; --cpu: 10)")
    p.add_argument("--seconds-per-case", type=float, default=None, help="timing budget per case (8; --cpu: 0.5)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if not args.cpu and not torch.cuda.is_available():
        print("no CUDA device here: run with --cpu for the smoke test", file=sys.stderr)
        return 2
    dev = torch.device("cpu" if args.cpu else "cuda")
    small = args.cpu
    budget = args.seconds_per_case or (0.5 if small else 8.0)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    env = environment(dev)
    print(f"torch {env['torch']}, CUDA {env['cuda']}, cuDNN {env['cudnn']}, device {env['device']}, "
          f"{env['cpus']} CPUs{' (smoke test: tiny sizes, not figures)' if small else ''}", flush=True)
    result: dict = {"environment": env, "smoke_test": small}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_gpu_") as tmp:
        print("[1] backbones, frames/s", flush=True)
        result["backbones"] = part_backbones(dev, batch=1 if small else 64, budget_s=budget)
        print("[2] video to events (spot_path, mobilenetv2-offline + NetVLAD++)", flush=True)
        result["video_to_events"] = part_video(dev, seconds=args.video_s or (10.0 if small else 600.0), work=Path(tmp))
        print("[3] NetVLAD++ inference, one half", flush=True)
        result["netvlad_half"] = part_netvlad(dev, frames=600 if small else 5400, budget_s=budget)
        print("[4] ugl-e2e training steps", flush=True)
        result["ugl_e2e_train"] = (part_ugl(dev, batch=2, frames=8, height=48, budget_s=budget) if small else
                                   part_ugl(dev, batch=8, frames=100, height=224, budget_s=budget))
    result["total_s"] = round(time.perf_counter() - t0, 1)
    print(f"total {result['total_s']} s", flush=True)
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
