"""Video to events, end to end, with the offline backbone; then a reel. Extrapolated to a 90-minute match.

    .venv/bin/python bench/end_to_end.py [--seconds 180] [--long-minutes 10]

Part 1, speed (720p): the broadcast bench file (real SoccerNet-MVFoul clips upscaled to 1280x720,
looped to --seconds; bench/decode.py) goes through
    decode alone           video.decode at 2 fps, 224x224 (the floor for the next step)
    features               features.extract_cached, mobilenetv2-offline (decode in a thread + network)
    spot                   spot.spot_path on the cached features (NetVLAD++, NMS, files written)
Each step's wall and CPU time is printed, then the realtime factor and the 90-minute figure. The
90-minute figure is an extrapolation (linear in the number of frames, which is how every step
scales: the decoder, the per-frame network and the sliding windows); the run itself is --seconds.
Wall times on this shared 2-core machine are inflated by other processes: the CPU-time figure
(CPU-seconds / 2 cores, assuming decode and network overlap fully, as they do when the cores are free)
is printed beside it.

Part 2, it works on a long file: a generated --long-minutes video (lavfi testsrc2 + audio, 320x180)
is spotted and a fast reel is cut from the events with confidence >= 0.5, capped at 2 minutes.

The checkpoint: nothing trained on mobilenetv2-offline features exists here (SoccerNet's videos need
an NDA download), so the script builds a randomly initialised NetVLAD++ (input_dim=1280) and saves it
with save_checkpoint. Its events are meaningless; its speed is that of a trained one.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from decode import CACHE, bench_video, cpu_time  # noqa: E402

from spotting_core.engine.spot import spot_path  # noqa: E402
from spotting_core.features import backbones  # noqa: E402
from spotting_core.features import extract as features  # noqa: E402
from spotting_core.io import soccernet, tables, video  # noqa: E402
from spotting_core.media import render  # noqa: E402
from spotting_core.models import build_model, save_checkpoint  # noqa: E402

BACKBONE = "mobilenetv2-offline"



def timed(fn):
    c0, t0 = cpu_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, cpu_time() - c0


def random_checkpoint(path: Path) -> Path:
    torch.manual_seed(0)
    model = build_model("netvlad++", input_dim=backbones.get_backbone(BACKBONE).dim)
    return save_checkpoint(path, model, classes=soccernet.CLASSES_V2, feature_name=BACKBONE,
                           extra={"note": "random initialisation, for timing only"})


def fresh_copy(src: Path, name: str) -> Path:
    """A copy in its own folder, so no cached features or results from an earlier run are reused."""
    folder = CACHE / "e2e" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    dst = folder / src.name
    shutil.copy(src, dst)
    return dst


def part_speed(seconds: float, ckpt: Path) -> None:
    src = fresh_copy(bench_video(seconds), "speed")
    info = video.probe(src)
    print(f"[speed] {src.name}: {info.width}x{info.height}, {info.fps:g} fps, {info.duration:.1f} s")
    n, dw, dc = timed(lambda: sum(len(b) for b in video.decode(src, fps=2.0, size=(224, 224))))
    print(f"  decode alone          {dw:7.1f} s wall {dc:7.1f} s cpu  ({n} frames)")
    halves, fw, fc = timed(lambda: features.extract_cached(src, backbone=BACKBONE, progress=lambda f, t: None))
    print(f"  features (streamed)   {fw:7.1f} s wall {fc:7.1f} s cpu  ({halves[0].shape[0]} x {halves[0].shape[1]})")
    _, cw, _ = timed(lambda: features.extract_cached(src, backbone=BACKBONE, progress=lambda f, t: None))
    print(f"  features, cached      {cw:7.3f} s wall (second run)")
    out, sw, sc = timed(lambda: spot_path(src, checkpoint=ckpt, progress=lambda f, t: None))
    events = tables.read_results(out / soccernet.RESULTS_FILE)
    print(f"  spot (NetVLAD++, NMS) {sw:7.1f} s wall {sc:7.1f} s cpu  ({len(events)} events -> {out})")
    total_wall, total_cpu = fw + sw, fc + sc
    scale = 5400.0 / info.duration
    print(f"  video -> events: {total_wall:.1f} s wall ({info.duration / total_wall:.1f}x realtime), "
          f"{total_cpu:.1f} CPU-s ({info.duration / (total_cpu / 2):.1f}x realtime on 2 free cores)")
    print(f"  90-min 720p match, extrapolated x{scale:.1f}: {total_wall * scale / 60:.1f} min at this run's wall rate; "
          f"{total_cpu * scale / 2 / 60:.1f} min from CPU time on 2 cores (goal < 10 min)")
    print(f"  where the time goes (CPU): decode {dc / total_cpu:.0%}, network {(fc - dc) / total_cpu:.0%}, "
          f"spot {sc / total_cpu:.0%}")


def part_long(minutes: float, ckpt: Path) -> None:
    folder = CACHE / "e2e" / "long"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    src = folder / f"generated_{int(minutes)}min.mp4"
    seconds = minutes * 60
    _, gw, _ = timed(lambda: subprocess.run(
        [video.ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i",
         f"testsrc2=size=320x180:rate=25:duration={seconds}", "-f", "lavfi", "-i",
         f"sine=frequency=440:sample_rate=48000:duration={seconds}", "-c:v", "libx264", "-preset", "ultrafast",
         "-g", "50", "-c:a", "aac", "-b:a", "64k", str(src)], check=True))
    info = video.probe(src)
    print(f"[long] {src.name}: {info.width}x{info.height}, {info.duration:.0f} s (generated in {gw:.0f} s)")
    out, sw, sc = timed(lambda: spot_path(src, checkpoint=ckpt, progress=lambda f, t: None))
    events = tables.read_results(out / soccernet.RESULTS_FILE)
    print(f"  spot, video -> events: {sw:.1f} s wall, {sc:.1f} CPU-s ({info.duration / sw:.1f}x realtime); "
          f"{len(events)} events, confidence {events['confidence'].min():.4f}..{events['confidence'].max():.4f}")
    # a random model's confidences sit near 0.5: keep its 12 most confident events, as a user would
    # raise --min-confidence until the reel is short enough
    threshold = float(events["confidence"].nlargest(12).min())
    reel = folder / "reel.mp4"
    plan, rw, _ = timed(lambda: render.make_reel(src, events=out / soccernet.RESULTS_FILE, out=reel, mode="fast",
                                                     min_confidence=threshold, max_duration=120.0))
    print(f"  reel: min confidence {threshold:.4f} (the 12 most confident events), cap 120 s")
    print(f"  reel (fast): {render.reel_summary(plan)} in {rw:.1f} s -> {reel.name}, "
          f"probed {video.probe(reel).duration:.1f} s, audio {video.probe(reel).has_audio}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=180.0, help="0 skips part 1")
    ap.add_argument("--long-minutes", type=float, default=10.0, help="0 skips part 2")
    args = ap.parse_args()
    ckpt = random_checkpoint(CACHE / "e2e" / "netvladpp_random_mobilenetv2.pt")
    print(f"checkpoint: {ckpt.name} (NetVLAD++, RANDOM weights, {BACKBONE} 1280-d): timing only")
    if args.seconds > 0:
        part_speed(args.seconds, ckpt)
    if args.long_minutes > 0:
        part_long(args.long_minutes, ckpt)


if __name__ == "__main__":
    main()
