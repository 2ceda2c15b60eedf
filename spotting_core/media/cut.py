"""Cutting and joining video with ffmpeg: the primitives reels are made of.

    cut_copy(src, out, start=, end=)     stream copy from the keyframe at or before start (fast)
    cut_exact(src, out, start=, end=)    frame-accurate, re-encodes only the segment
    concat(parts, out)                   join segments cut with the same settings
    keyframes(path, start, end)          keyframe times (s) of the first video stream
    copied_span(src, part, start=)       where a cut_copy part really lies in the source (fast-mode truth)
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from spotting_core.errors import SpottingError
from spotting_core.io.ffmpeg import error_line, ffmpeg_command, run_ffmpeg
from spotting_core.io.video import VideoInfo, probe


def _maps(info: VideoInfo | None) -> list[str]:
    """The first video stream and the first audio stream (when there is one; `?` = optional)."""
    if info is None:
        return ["-map", "0:v:0", "-map", "0:a:0?"]
    return ["-map", "0:v:0"] + (["-map", "0:a:0"] if info.has_audio else [])


def cut_copy(src: str | os.PathLike, out: str | os.PathLike, *, start: float, end: float,
             info: VideoInfo | None = None) -> Path:
    """Stream-copy [start, end) without re-encoding. The video starts at the keyframe at or before
    `start` (up to one GOP early); all streams are shifted together, so audio stays in sync."""
    run_ffmpeg(["-ss", f"{max(start, 0.0):.6f}", "-t", f"{end - start:.6f}", "-i", str(src), *_maps(info),
                "-c", "copy", "-avoid_negative_ts", "make_zero", "-map_metadata", "-1", str(out)],
               what=str(src))
    return Path(out)


def cut_exact(src: str | os.PathLike, out: str | os.PathLike, *, start: float, end: float,
              info: VideoInfo | None = None, preset: str = "veryfast", crf: int = 18) -> Path:
    """Frame-accurate [start, end): the frames with start <= pts < end, decoded from the keyframe
    before and re-encoded (only this segment; H.264 + AAC with fixed settings, so segments join
    without another encode). Audio is trimmed to the same interval on the same clock."""
    info = info or probe(src)
    start = max(start, 0.0)
    lead = min(start, 1.0)        # seek a little early; trim on timestamps relative to the seek point
    a, b = lead, lead + (end - start)
    vf = f"trim=start={a:.6f}:end={b:.6f},setpts=PTS-{a:.6f}/TB,scale=trunc(iw/2)*2:trunc(ih/2)*2"
    args = ["-ss", f"{start - lead:.6f}", "-i", str(src), *_maps(info), "-vf", vf,
            "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p"]
    if info.has_audio:
        args += ["-af", f"atrim=start={a:.6f}:end={b:.6f},asetpts=PTS-{a:.6f}/TB",
                 "-c:a", "aac", "-b:a", "192k", "-ar", "48000", "-ac", "2"]
    run_ffmpeg([*args, "-map_metadata", "-1", str(out)], what=str(src))
    return Path(out)


def concat(parts: Sequence[str | os.PathLike], out: str | os.PathLike, *, faststart: bool = True) -> Path:
    """Join segments cut with the same settings (concat demuxer, stream copy). faststart moves the MP4
    index to the front (playable while downloading) at the cost of rewriting the file once."""
    out = Path(out)
    listing = out.with_name(f".{out.name}.concat.txt")
    lines = []
    for p in parts:
        escaped = str(Path(p).resolve()).replace("'", r"'\''")
        lines.append(f"file '{escaped}'")
    listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        extra = ["-movflags", "+faststart"] if faststart and out.suffix.lower() in (".mp4", ".mov", ".m4v") else []
        run_ffmpeg(["-f", "concat", "-safe", "0", "-i", str(listing), "-map", "0", "-c", "copy", *extra, str(out)],
                   what=str(out))
    finally:
        listing.unlink(missing_ok=True)
    return out


def _video_packets(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(pts, duration) in seconds of every packet of the first video stream (demux only)."""
    args = ffmpeg_command("-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-")
    r = subprocess.run(args, capture_output=True, text=True, errors="replace")
    tb = re.search(r"#tb 0: (\d+)/(\d+)", r.stdout)
    if r.returncode != 0 or not tb:
        raise SpottingError(f"{path}: cannot read its packets ({error_line(r.stderr, path)})")
    scale = int(tb.group(1)) / int(tb.group(2))
    rows = [[int(f) for f in line.split(",")[2:4]] for line in r.stdout.splitlines()
            if line.startswith("0,")]
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, 2) * scale
    return arr[:, 0], arr[:, 1]


def copied_span(src: str | os.PathLike, part: str | os.PathLike, *, start: float) -> tuple[float, float]:
    """Where a `cut_copy` of `src` from `start` really lies in the source: from the keyframe at or
    before `start` for as long as the part's video packets last."""
    kf = keyframes(src, start=max(0.0, start - 30.0), end=start + 1e-3)
    kf = kf[kf <= start + 1e-6]
    if not len(kf):
        kf = keyframes(src, end=start + 1e-3)
    first = float(kf.max()) if len(kf) else 0.0
    pts, dur = _video_packets(part)
    length = float(np.max(pts + dur) - np.min(pts)) if len(pts) else 0.0
    return round(first, 6), round(first + length, 6)


def keyframes(path: str | os.PathLike, *, start: float = 0.0, end: float | None = None) -> np.ndarray:
    """Keyframe times (s, from the file's start) of the first video stream in [start, end]
    (demux only: reads packets, decodes nothing)."""
    info = probe(path)
    args = ffmpeg_command()
    if start > 0:
        args += ["-ss", f"{start:.6f}"]
    if end is not None:
        args += ["-to", f"{end:.6f}"]
    args += ["-copyts", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"]
    r = subprocess.run(args, capture_output=True, text=True, errors="replace")
    if r.returncode != 0:
        raise SpottingError(f"{path}: cannot read its packets ({error_line(r.stderr, path)})")
    tb = re.search(r"#tb 0: (\d+)/(\d+)", r.stdout)
    if not tb:
        return np.zeros(0)
    scale = int(tb.group(1)) / int(tb.group(2))
    times = []
    for line in r.stdout.splitlines():
        if line.startswith("#") or "F=" in line:       # F=... marks packets that are not plain keyframes
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) >= 3 and fields[0] == "0":
            times.append(int(fields[2]) * scale - info.start)
    return np.unique(np.round(np.asarray(times, dtype=np.float64), 6))
