"""Reading video files: probe and decode at 2 fps, through `io/ffmpeg.py`.

    probe(path)                               -> VideoInfo (duration, fps, displayed size, rotation, audio)
    decode(path, fps=2.0, size=224)           -> batches (B, H, W, 3) uint8 RGB, frame k shows time start + k/fps
    decode_array(path, ...)                   -> all of them in one array (small files, tests)
    prefetch(decode(...), depth=3)            -> the same batches, decoded in a thread ahead of their reader

Cutting and joining (reels) are in `media/cut.py`.

Sampling rule of `decode`: output frame k is the source frame on screen at t = start + k / fps, i.e.
the last frame whose presentation time is <= t. That is ffmpeg's `fps` filter with `round=up`
(the default `round=near` picks the last frame within half a period *after* t instead). Variable
frame rate, rotation metadata (ffmpeg auto-rotates) and odd sizes are handled by ffmpeg itself.

Nothing here needs ffprobe (imageio-ffmpeg ships none): `probe` parses the stderr of `ffmpeg -i`.
Every problem with a user's file raises one `SpottingError` naming the file.
"""

from __future__ import annotations

import math
import os
import queue
import re
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spotting_core.errors import SpottingError
from spotting_core.io.ffmpeg import error_line, ffmpeg_command

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v")  # what users may open as a video


# ---------------------------------------------------------------------------------------------
# Probe
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VideoInfo:
    path: Path
    duration: float | None   # seconds (container duration); None when the file does not say
    fps: float               # average frame rate of the first video stream (25.0, 29.97...)
    width: int               # displayed size: after rotation and sample aspect ratio
    height: int
    coded_width: int         # size as stored in the stream
    coded_height: int
    rotation: int            # degrees, counter-clockwise, one of 0/90/180/270
    video_codec: str
    has_audio: bool
    audio_codec: str | None
    start: float             # container start time (s); decode() measures times from it

    def num_samples(self, fps: float, *, start: float = 0.0, duration: float | None = None) -> int | None:
        """How many frames `decode(fps=fps, start=start, duration=duration)` yields (None if unknown)."""
        end = self.duration if self.duration is not None else None
        if duration is not None:
            end = start + duration if end is None else min(end, start + duration)
        if end is None:
            return None
        return max(0, math.ceil((end - start) * fps - 1e-6))


_DURATION = re.compile(r"Duration:\s*(N/A|(\d+):(\d+):(\d+(?:\.\d+)?))(?:,\s*start:\s*(-?[\d.]+))?")
_STREAM = re.compile(r"^\s*Stream #\d+:\d+.*?: (Video|Audio|Subtitle|Data|Attachment): (.*)$")
_SIZE = re.compile(r"[ ,](\d{1,5})x(\d{1,5})(?:[ ,]|$)")
_DAR = re.compile(r"DAR (\d+):(\d+)")
_FPS = re.compile(r"([\d.]+)(k?) fps")
_TBR = re.compile(r"([\d.]+)(k?) tbr")
_ROTATION = re.compile(r"(?:display\s*matrix: rotation of|rotate\s*:)\s*(-?[\d.]+)", re.IGNORECASE)


def check_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise SpottingError(f"{path}: no such file")
    if path.is_dir():
        raise SpottingError(f"{path}: is a folder, not a video file")
    if path.stat().st_size == 0:
        raise SpottingError(f"{path}: empty file (0 bytes), not a video")
    return path


def probe(path: str | os.PathLike) -> VideoInfo:
    """Duration, frame rate, displayed size, rotation and audio of a video file (via `ffmpeg -i`)."""
    path = check_file(path)
    r = subprocess.run(ffmpeg_command("-i", str(path), loglevel="info"),
                       capture_output=True, text=True, errors="replace")
    err = r.stderr
    if "moov atom not found" in err:
        with open(path, "rb") as f:
            head = f.read(12)
        if head[4:8] in (b"ftyp", b"mdat", b"free", b"wide", b"skip", b"moov"):
            raise SpottingError(f"{path}: truncated or incomplete MP4 (moov atom not found)")
        raise SpottingError(f"{path}: not a video ffmpeg can read (no MP4 header, moov atom not found)")
    m = _DURATION.search(err)
    lines = err.splitlines()
    streams = []
    for i, line in enumerate(lines):
        s = _STREAM.match(line)
        if s:
            streams.append((s.group(1), s.group(2), i))
    if not m or not streams:
        raise SpottingError(f"{path}: not a video ffmpeg can read ({error_line(err, path)})")
    video = [(d, i) for k, d, i in streams if k == "Video" and "attached pic" not in d]
    audio = [d for k, d, _ in streams if k == "Audio"]
    if not video:
        what = "audio only" if audio else "no video stream"
        raise SpottingError(f"{path}: no video stream ({what}), cannot take frames from it")
    desc, line_no = video[0]
    size = _SIZE.search(desc)
    if not size:
        raise SpottingError(f"{path}: cannot read the video size from ffmpeg ({desc[:80]})")
    cw, ch = int(size.group(1)), int(size.group(2))
    if cw == 0 or ch == 0:
        raise SpottingError(f"{path}: video stream has no size (broken or truncated file)")
    fps = 0.0
    for rx in (_FPS, _TBR):
        f = rx.search(desc)
        if f:
            fps = float(f.group(1)) * (1000 if f.group(2) else 1)
            break
    # rotation: in the stream's side data / metadata, before the next stream line
    rotation = 0
    for ln in lines[line_no + 1:]:
        if _STREAM.match(ln):
            break
        rot = _ROTATION.search(ln)
        if rot:
            rotation = int(round(float(rot.group(1)))) % 360
            break
    dw, dh = cw, ch
    dar = _DAR.search(desc)
    if dar and int(dar.group(1)) > 0 and int(dar.group(2)) > 0:
        dw = int(round(ch * int(dar.group(1)) / int(dar.group(2))))
    if rotation in (90, 270):
        dw, dh = dh, dw
    duration = None
    if m.group(1) != "N/A":
        duration = int(m.group(2)) * 3600 + int(m.group(3)) * 60 + float(m.group(4))
    start = float(m.group(5)) if m.group(5) else 0.0
    acodec = audio[0].split(",")[0].split(" ")[0] if audio else None
    return VideoInfo(path=path, duration=duration, fps=fps, width=dw, height=dh, coded_width=cw,
                     coded_height=ch, rotation=rotation, video_codec=desc.split(",")[0].split(" ")[0],
                     has_audio=bool(audio), audio_codec=acodec, start=start)


# ---------------------------------------------------------------------------------------------
# Decode
# ---------------------------------------------------------------------------------------------
def output_size(info: VideoInfo, size: int | Sequence[int] | None) -> tuple[int, int]:
    """(width, height) of decoded frames: native, a fixed (w, h), or a height keeping the aspect."""
    if size is None:
        return info.width, info.height
    if isinstance(size, int):
        h = int(size)
        return max(2, int(round(h * info.width / info.height / 2)) * 2), h
    w, h = (int(v) for v in size)
    return w, h


def decode_command(path: str | os.PathLike, *, fps: float, size: tuple[int, int], start: float | None = None,
                   duration: float | None = None) -> list[str]:
    """The ffmpeg command line `decode` runs (rgb24 rawvideo on stdout)."""
    cmd = ffmpeg_command()
    # Input seeking is accurate but drops the frame already on screen at `start`; seek `lead` seconds
    # earlier and let the fps filter start its grid at `lead` (its round=up keeps that frame for k=0).
    lead = min(start or 0.0, 1.0)
    if start:
        cmd += ["-ss", f"{start - lead:.6f}"]
    if duration is not None:
        cmd += ["-t", f"{duration + lead:.6f}"]
    cmd += ["-i", str(path), "-map", "0:v:0", "-an", "-sn", "-dn",
            "-vf", f"setpts=PTS-{lead:.6f}/TB,fps={fps:g}:round=up:start_time=0,scale={size[0]}:{size[1]}",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    return cmd


def _drain(stream, sink: list[bytes]) -> None:
    for chunk in iter(lambda: stream.read(4096), b""):
        sink.append(chunk)


def decode(path: str | os.PathLike, *, fps: float = 2.0, size: int | Sequence[int] | None = None,
           start: float | None = None, duration: float | None = None, batch_size: int = 32,
           info: VideoInfo | None = None, strict: bool = True) -> Iterator[np.ndarray]:
    """Frames sampled at t = start + k / fps, in batches of (B, H, W, 3) uint8 RGB.

    size: None (native displayed size), an int (that height, aspect kept) or (width, height).
    start / duration (seconds) select a part of the file, e.g. one half of a full match.
    strict: a file that ends (or breaks) well before its announced duration raises SpottingError.
    """
    if fps <= 0:
        raise SpottingError(f"fps must be positive, got {fps}")
    info = info or probe(path)
    w, h = output_size(info, size)
    frame_bytes = w * h * 3
    expected = info.num_samples(fps, start=start or 0.0, duration=duration)
    proc = subprocess.Popen(decode_command(path, fps=fps, size=(w, h), start=start, duration=duration),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            bufsize=0)
    errors: list[bytes] = []
    drainer = threading.Thread(target=_drain, args=(proc.stderr, errors), daemon=True)
    drainer.start()
    produced = 0
    try:
        while expected is None or produced < expected:
            want = batch_size if expected is None else min(batch_size, expected - produced)
            buf = bytearray(want * frame_bytes)
            view, got = memoryview(buf), 0
            while got < len(buf):
                n = proc.stdout.readinto(view[got:])
                if not n:
                    break
                got += n
            count = got // frame_bytes
            if count:
                produced += count
                yield np.frombuffer(buf, dtype=np.uint8, count=count * frame_bytes).reshape(count, h, w, 3)
            if got < len(buf):
                break
        # ffmpeg's fps filter may emit one more frame than ceil(duration * fps); drop it quietly
        # (it lies at or beyond the announced end), then wait for the exit status.
        proc.stdout.close()
        rc = proc.wait()
        drainer.join(timeout=5)
        stderr = b"".join(errors).decode("utf-8", "replace")
        if rc != 0 and produced < (expected or 1):
            raise SpottingError(f"{path}: ffmpeg could not decode it ({error_line(stderr, Path(path))})")
        if strict and expected is not None:
            # the container duration may exceed the video stream's (longer audio): only a large gap,
            # or a gap with decoder errors, means the file is broken
            missing = expected - produced
            broken = bool(stderr.strip()) and missing > 2.0 * fps + 1
            if broken or missing > max(10.0 * fps, 0.05 * expected) + 1:
                raise SpottingError(f"{path}: truncated or damaged: decoded {produced} of the {expected} frames "
                                    f"its duration announces at {fps:g} fps")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream and not stream.closed:
                stream.close()


def decode_array(path: str | os.PathLike, **kwargs) -> np.ndarray:
    """All frames of `decode` in one (T, H, W, 3) uint8 array (small files and tests)."""
    batches = list(decode(path, **kwargs))
    if not batches:
        info = kwargs.get("info") or probe(path)
        w, h = output_size(info, kwargs.get("size"))
        return np.zeros((0, h, w, 3), dtype=np.uint8)
    return np.concatenate(batches)


# ---------------------------------------------------------------------------------------------
# Reading ahead
# ---------------------------------------------------------------------------------------------
_END = object()


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    """Put `item`, waiting while the queue is full; False once the consumer has stopped."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _producer(batches: Iterator[np.ndarray], q: queue.Queue, stop: threading.Event) -> None:
    try:
        for b in batches:
            if not _put(q, b, stop):
                break
        item = _END
    except BaseException as e:  # forwarded to the consumer, re-raised there
        item = e
    finally:
        close = getattr(batches, "close", None)
        if close:
            close()
    _put(q, item, stop)


def prefetch(batches: Iterator[np.ndarray], *, depth: int = 3) -> Iterator[np.ndarray]:
    """Run an iterator in a thread, `depth` items ahead (bounded: memory stays flat)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    t = threading.Thread(target=_producer, args=(batches, q, stop), daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        t.join(timeout=10)
