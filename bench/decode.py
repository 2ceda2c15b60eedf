"""Decode speed: `video.decode` (2 fps, 224x224 RGB batches) against the raw ffmpeg pipe it wraps.

    .venv/bin/python bench/decode.py [--seconds 180] [--reps 3]

Reference, the physical floor: `ffmpeg -i IN -vf fps=2,scale=224:224 -f rawvideo -pix_fmt rgb24 -`
read from a pipe in 1 MiB chunks and thrown away. Both run on the same 720p file, interleaved, so
load from other processes hits both alike; the script prints every run, the median wall-time ratio
and the CPU-time ratio (ffmpeg child + Python), which other processes disturb less.

The 720p file: the real SoccerNet-MVFoul broadcast clips (../shared/data/video/mvfoul) upscaled to
1280x720, H.264 (x264 veryfast, crf 23, GOP 50) + AAC, looped to --seconds; lavfi testsrc when the
clips are missing. Built once under bench/.cache/.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spotting_core.io import video  # noqa: E402
from spotting_core.io.ffmpeg import ffmpeg_exe  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
CLIPS = ROOT.parent / "shared" / "data" / "video" / "mvfoul"


def bench_video(seconds: float = 180.0, *, height: int = 720) -> Path:
    """A broadcast-like H.264 file of `seconds` at `height`p (built once, then reused)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    width = int(round(height * 16 / 9 / 2)) * 2
    out = CACHE / f"broadcast_{height}p_{int(seconds)}s.mp4"
    if out.is_file():
        return out
    ff = ffmpeg_exe()
    base = CACHE / f"broadcast_{height}p_base.mp4"
    if not base.is_file():
        clips = sorted(CLIPS.glob("action_*/clip_*.mp4"))
        if clips:
            listing = CACHE / "clips.txt"
            listing.write_text("".join(f"file '{c}'\n" for c in clips))
            src = ["-f", "concat", "-safe", "0", "-i", str(listing)]
        else:
            src = ["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25:duration=45",
                   "-f", "lavfi", "-i", "sine=frequency=440:duration=45"]
        subprocess.run([ff, "-y", "-loglevel", "error", *src, "-vf", f"scale={width}:{height},fps=25",
                        "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-g", "50",
                        "-c:a", "aac", "-b:a", "128k", "-ar", "48000", str(base)], check=True)
    loops = max(0, int(seconds // video.probe(base).duration))
    subprocess.run([ff, "-y", "-loglevel", "error", "-stream_loop", str(loops), "-i", str(base), "-t", str(seconds),
                    "-c", "copy", str(out)], check=True)
    return out


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_time() -> float:
    """CPU seconds of this process and its finished children (ffmpeg) together."""
    return cpu_self() + cpu_children()


def raw_pipe(path: Path, size=(224, 224)) -> int:
    cmd = [ffmpeg_exe(), "-loglevel", "error", "-i", str(path), "-vf", f"fps=2,scale={size[0]}:{size[1]}",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    n = 0
    for chunk in iter(lambda: p.stdout.read(1 << 20), b""):
        n += len(chunk)
    p.wait()
    return n // (size[0] * size[1] * 3)


def ours(path: Path, size=(224, 224)) -> int:
    return sum(len(b) for b in video.decode(path, fps=2.0, size=size))


def measure(fn, path: Path) -> tuple[float, float, int]:
    c0, s0, t0 = cpu_children(), cpu_self(), time.perf_counter()
    n = fn(path)
    return time.perf_counter() - t0, (cpu_children() - c0) + (cpu_self() - s0), n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    path = bench_video(args.seconds)
    info = video.probe(path)
    print(f"file: {path.name}  {info.width}x{info.height} {info.fps:g} fps, {info.duration:.1f} s, {info.video_codec}")
    walls, cpus, our_walls = [], [], []
    for rep in range(args.reps):
        ref_wall, ref_cpu, n_ref = measure(raw_pipe, path)
        our_wall, our_cpu, n_our = measure(ours, path)
        if abs(n_our - n_ref) > 1:   # ours samples t = k/2 < duration (round=up); the plain filter rounds to nearest
            raise SystemExit(f"frame counts differ: raw pipe {n_ref}, video.decode {n_our}")
        walls.append(our_wall / ref_wall)
        our_walls.append(our_wall)
        cpus.append(our_cpu / ref_cpu)
        print(f"run {rep + 1}: raw pipe {ref_wall:6.2f} s wall {ref_cpu:6.2f} s cpu | video.decode {our_wall:6.2f} s wall "
              f"{our_cpu:6.2f} s cpu | {n_ref} / {n_our} frames | wall ratio {walls[-1]:.3f} cpu ratio {cpus[-1]:.3f}")
    print(f"decode ratio (video.decode / raw pipe): median wall {statistics.median(walls):.3f}, "
          f"median cpu {statistics.median(cpus):.3f}  (goal <= 1.2)")
    best = min(our_walls)
    print(f"decode speed: {info.duration / best:.1f}x realtime (best run), 720p -> 2 fps 224x224; "
          f"a 90-min match would take {5400 / (info.duration / best) / 60:.1f} min to decode at that rate")


if __name__ == "__main__":
    main()
