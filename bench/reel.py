"""Reel cutting speed: fast mode against a plain `ffmpeg -c copy` of the same segments; exact mode timed.

    .venv/bin/python bench/reel.py [--cuts 5] [--length 10] [--reps 3]

Segments: --cuts windows of --length seconds starting between keyframes of the 720p bench file
(bench/decode.py), as a highlight reel of one half would ask for.
Reference: for each segment `ffmpeg -ss A -i IN -t L -c copy seg_i.mp4`, then the concat demuxer
with `-c copy` into one file: the least work a stream-copy reel can do.
Ours: `render.render_reel(..., mode="fast")` on the same plan (keyframe-aligned stream copy,
timestamps made to start at zero, concat demuxer, temp file then rename). Runs are interleaved; the
script prints each, the median wall ratio and the CPU ratio. Exact mode (per-segment libx264
veryfast re-encode) is timed once and its output checked to the frame count.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from decode import bench_video, cpu_time  # noqa: E402

from spotting_core.io import video  # noqa: E402
from spotting_core.media import reels as hl  # noqa: E402
from spotting_core.media import render  # noqa: E402


def plain_copy(src: Path, segments: list[tuple[float, float]], out: Path) -> None:
    ff = video.ffmpeg_exe()
    parts = []
    for i, (a, b) in enumerate(segments):
        part = out.with_name(f"ref{i}.mp4")
        subprocess.run([ff, "-y", "-loglevel", "error", "-ss", f"{a}", "-i", str(src), "-t", f"{b - a}",
                        "-c", "copy", str(part)], check=True)
        parts.append(part)
    listing = out.with_name("ref.txt")
    listing.write_text("".join(f"file '{p}'\n" for p in parts))
    subprocess.run([ff, "-y", "-loglevel", "error", "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy",
                    str(out)], check=True)


def timed(fn) -> tuple[float, float]:
    c0, t0 = cpu_time(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, cpu_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cuts", type=int, default=5)
    ap.add_argument("--length", type=float, default=10.0)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    src = bench_video(180.0)
    info = video.probe(src)
    kf = video.keyframes(src)
    # starts half-way between keyframes, spread over the file
    picks = [int((len(kf) - 2) * (0.1 + 0.8 * k / max(args.cuts - 1, 1))) for k in range(args.cuts)]
    starts = [round((kf[i] + kf[i + 1]) / 2, 3) for i in picks]
    segments = [(a, a + args.length) for a in starts]
    plan = hl.ReelPlan(video=src, fps=info.fps, dropped=[],
                       segments=[hl.Segment(a, b, [{"half": 1, "position_ms": int(a * 1000) + 5000, "label": "Goal",
                                                   "confidence": 1.0, "time": a + 5}]) for a, b in segments])
    print(f"file: {src.name} {info.width}x{info.height}, {info.duration:.0f} s; {args.cuts} cuts of {args.length:g} s "
          f"starting off-keyframe at {', '.join(f'{a:.2f}' for a in starts)}")
    walls, cpus, faststart = [], [], []
    with tempfile.TemporaryDirectory(dir=ROOT / "bench" / ".cache") as tmp:
        tmp = Path(tmp)
        for rep in range(args.reps):
            rw, rc = timed(lambda: plain_copy(src, segments, tmp / "ref.mp4"))
            ow, oc = timed(lambda: render.render_reel(src, plan, tmp / "fast.mp4", mode="fast", faststart=False))
            fw, fc = timed(lambda: render.render_reel(src, plan, tmp / "fast_fs.mp4", mode="fast"))
            walls.append(ow / rw)
            cpus.append(oc / rc)
            faststart.append(fw / rw)
            print(f"run {rep + 1}: plain copy {rw:.2f} s wall {rc:.2f} s cpu | fast reel {ow:.2f} s wall {oc:.2f} s cpu | "
                  f"ratio wall {walls[-1]:.2f} cpu {cpus[-1]:.2f} | with +faststart (the default) {fw:.2f} s, "
                  f"ratio {faststart[-1]:.2f}")
        fast_d, ref_d = video.probe(tmp / "fast.mp4").duration, video.probe(tmp / "ref.mp4").duration
        print(f"fast-mode ratio (fast reel / plain copy): median wall {statistics.median(walls):.2f}, "
              f"median cpu {statistics.median(cpus):.2f} (goal <= 1.5); with +faststart (default, index moved to "
              f"the front for streaming) median wall {statistics.median(faststart):.2f}; durations: fast {fast_d:.2f} s, "
              f"plain {ref_d:.2f} s, asked {args.cuts * args.length:.2f} s (fast keeps each cut from its keyframe)")
        ew, ec = timed(lambda: render.render_reel(src, plan, tmp / "exact.mp4", mode="exact"))
        packets = subprocess.run([video.ffmpeg_exe(), "-loglevel", "error", "-i", str(tmp / "exact.mp4"), "-map", "0:v:0",
                                  "-c", "copy", "-f", "framecrc", "-"], capture_output=True, text=True, check=True).stdout
        n = sum(1 for line in packets.splitlines() if line and not line.startswith("#"))
        want = sum(round(b * info.fps) - round(a * info.fps) for a, b in segments)
        print(f"exact mode: {ew:.1f} s wall, {ec:.1f} s cpu for {args.cuts * args.length:g} s of 720p "
              f"(re-encode per segment); reel {video.probe(tmp / 'exact.mp4').duration:.2f} s, {n} frames "
              f"(source frames in the asked windows: {want})")


if __name__ == "__main__":
    main()
