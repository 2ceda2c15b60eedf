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
import os
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
from spotting_core.io.ffmpeg import ffmpeg_exe  # noqa: E402
from spotting_core.media import render  # noqa: E402
from spotting_core.models import build_model, save_checkpoint  # noqa: E402

BACKBONE = "mobilenetv2-offline"
HALF_S = 45 * 60
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf")
# x264's cheapest analysis with a broadcast's bitstream tools (CABAC, in-loop deblocking, 3 B-frames,
# 8x8 transform): encodes ~2x faster than veryfast; measured to decode ~5 % dearer (higher bitrate)
X264 = ["-preset", "ultrafast", "-x264-params",
        "cabac=1:deblock=1,0,0:bframes=3:b-adapt=0:weightb=1:8x8dct=1:partitions=i4x4,i8x8:ref=1"]


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
        [ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i",
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


def full_match(half_s: float = HALF_S) -> Path:
    """A SoccerNet-like game folder, 1_720p.mp4 and 2_720p.mp4 (built once, cached in bench/.cache).

    Each half loops the broadcast base of bench/decode.py (real MVFoul clips at 1280x720, their
    audio) and burns in the match clock (00:00.. for half 1, 45:00.. for half 2), re-encoded at CRF 23,
    GOP 50 with X264 (CABAC, deblocking, B-frames): every frame differs, as in a broadcast.
    """
    folder = CACHE / f"full_match_{int(half_s)}s"
    if all((folder / f"{h}_720p.mp4").is_file() for h in (1, 2)):
        return folder
    base = bench_video(45.0).with_name("broadcast_720p_base.mp4")
    folder.mkdir(parents=True, exist_ok=True)
    for h in (1, 2):
        out = folder / f"{h}_720p.mp4"
        if out.is_file():
            continue
        clock = (f"%{{eif\\:floor(t/60)+{45 * (h - 1)}\\:d\\:2}}\\:%{{eif\\:mod(floor(t)\\,60)\\:d\\:2}}")
        font = f"fontfile={FONT}:" if FONT.is_file() else ""
        draw = (f"drawtext={font}text='{clock}':x=40:y=h-70:fontsize=36:fontcolor=white:box=1:"
                "boxcolor=black@0.6:boxborderw=8")
        tmp = out.with_suffix(".part.mp4")
        print(f"[full match] generating {out.name} ({half_s / 60:.0f} min, 720p H.264 + audio)...", flush=True)
        cmd = [ffmpeg_exe(), "-y", "-loglevel", "error", "-stream_loop", "-1", "-i", str(base), "-t", str(half_s),
               "-vf", draw, "-c:v", "libx264", *X264, "-crf", "23", "-g", "50", "-c:a", "copy", str(tmp)]
        _, gw, _ = timed(lambda cmd=cmd: subprocess.run(cmd, check=True))
        tmp.rename(out)
        print(f"  {out.name}: {video.probe(out).duration:.0f} s in {gw / 60:.1f} min", flush=True)
    return folder


def part_full_match(ckpt: Path, half_s: float) -> None:
    """The whole `spotting spot GAME --checkpoint CKPT` command on the full match, as a user runs it."""
    folder = full_match(half_s)
    work = CACHE / "e2e" / "full_match"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for h in (1, 2):  # hard links in a fresh folder: the features cache there, none from an earlier run
        os.link(folder / f"{h}_720p.mp4", work / f"{h}_720p.mp4")
    duration = sum(video.probe(work / f"{h}_720p.mp4").duration for h in (1, 2))
    cmd = [sys.executable, "-m", "spotting_core", "spot", str(work), "--checkpoint", str(ckpt),
           "--backbone", BACKBONE, "--out", str(work / "events")]
    print(f"[full match] {' '.join(cmd[1:])}  ({duration / 60:.1f} min of 720p)", flush=True)
    _, wall, cpu = timed(lambda: subprocess.run(cmd, check=True, cwd=ROOT))
    events = tables.read_results(work / "events" / soccernet.RESULTS_FILE)
    print(f"  spotting spot, whole command: {wall / 60:.1f} min wall, {cpu / 60:.1f} CPU-min "
          f"({cpu / 2 / 60:.1f} min on 2 free cores, if fully overlapped); {duration / wall:.1f}x realtime; "
          f"{len(events)} events (goal < 10 min wall)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=180.0, help="0 skips part 1")
    ap.add_argument("--long-minutes", type=float, default=10.0, help="0 skips part 2")
    ap.add_argument("--full-match", action="store_true",
                    help="only: `spotting spot` on a generated 2 x 45-min 720p game (built once in bench/.cache)")
    ap.add_argument("--half-minutes", type=float, default=45.0, help="--full-match: minutes per half")
    ap.add_argument("--generate-only", action="store_true", help="--full-match: build the file, time nothing")
    args = ap.parse_args()
    if args.full_match and args.generate_only:
        print(full_match(args.half_minutes * 60))
        return
    ckpt = random_checkpoint(CACHE / "e2e" / "netvladpp_random_mobilenetv2.pt")
    print(f"checkpoint: {ckpt.name} (NetVLAD++, RANDOM weights, {BACKBONE} 1280-d): timing only")
    if args.full_match:
        part_full_match(ckpt, args.half_minutes * 60)
        return
    if args.seconds > 0:
        part_speed(args.seconds, ckpt)
    if args.long_minutes > 0:
        part_long(args.long_minutes, ckpt)


if __name__ == "__main__":
    main()
