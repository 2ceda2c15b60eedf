"""The ffmpeg binary that `imageio-ffmpeg` ships: the one command builder, runner and video writer.

    ffmpeg_command("-i", src, ..., out)         [ffmpeg, -hide_banner, -nostdin, -loglevel error, ...]
    run_ffmpeg([...], what=src)                 run it; a failure is one SpottingError line
    with VideoWriter(path, size=(w, h), fps=25) as w: w.write(frame)   RGB frames -> H.264 (+ audio)

Every ffmpeg process in the project (probe, decode, cuts, shots, generated videos, tests) starts
from `ffmpeg_command`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from spotting_core.errors import SpottingError


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped by imageio-ffmpeg (or IMAGEIO_FFMPEG_EXE)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_command(*args: str, loglevel: str = "error", overwrite: bool = False) -> list[str]:
    """The command line of one ffmpeg run: quiet (`loglevel`), no stdin, `-y` when `overwrite`."""
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", loglevel, *(["-y"] if overwrite else []),
            *map(str, args)]


def error_line(stderr: str, path: str | os.PathLike) -> str:
    """The most telling line of an ffmpeg failure, without the path ffmpeg prefixes it with."""
    path = str(path)
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    keys = ("moov atom not found", "Invalid data found", "does not contain any stream", "Error", "error")
    for key in keys:
        for ln in lines:
            if key in ln:
                return ln.replace(f"{path}: ", "").replace(path, "").strip(" :")[:160]
    return (lines[-1] if lines else "no output")[:160]


def run_ffmpeg(args: Sequence[str], *, what: str) -> None:
    """Run ffmpeg quietly (overwriting its output); a failure becomes one SpottingError line naming `what`."""
    r = subprocess.run(ffmpeg_command(*args, overwrite=True), capture_output=True, text=True, errors="replace")
    if r.returncode != 0:
        raise SpottingError(f"{what}: ffmpeg failed ({error_line(r.stderr, what)})")


class VideoWriter:
    """RGB frames (H, W, 3) uint8 -> an H.264 file through ffmpeg's stdin; written to a temp name, renamed on close.

    audio: an ffmpeg lavfi source (e.g. "sine=frequency=440"), muxed as AAC for the video's length.
    gop: keyframe interval in frames (None: ffmpeg's default). `extra`: more output options.
    """

    def __init__(self, path: str | os.PathLike, *, size: tuple[int, int], fps: float, crf: int = 23,
                 preset: str = "veryfast", gop: int | None = None, pix_fmt: str = "yuv420p",
                 audio: str | None = None, faststart: bool = False, extra: Sequence[str] = ()):
        self.path = Path(path)
        self.size = (int(size[0]), int(size[1]))
        self.tmp = self.path.with_name(f".{self.path.stem}.{os.getpid()}.tmp{self.path.suffix or '.mp4'}")
        w, h = self.size
        args = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", f"{fps:g}", "-i", "-"]
        if audio:
            args += ["-f", "lavfi", "-i", audio, "-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac", "-shortest"]
        args += ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", pix_fmt]
        if gop:
            args += ["-g", str(int(gop))]
        if faststart:
            args += ["-movflags", "+faststart"]
        args += [*extra]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(ffmpeg_command(*args, str(self.tmp), overwrite=True),
                                     stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        frame = np.asarray(frame)
        if frame.shape != (self.size[1], self.size[0], 3) or frame.dtype != np.uint8:
            raise ValueError(f"expected a ({self.size[1]}, {self.size[0]}, 3) uint8 frame, got {frame.shape} {frame.dtype}")
        try:
            self.proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        except BrokenPipeError:
            self.close(ok=False)
            raise SpottingError(f"{self.path}: ffmpeg stopped while writing") from None
        self.frames += 1

    def close(self, ok: bool = True) -> Path:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        err = self.proc.stderr.read().decode("utf-8", "replace") if self.proc.stderr else ""
        rc = self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        if not ok or rc != 0:
            self.tmp.unlink(missing_ok=True)
            if ok:
                raise SpottingError(f"{self.path}: ffmpeg could not write the video ({error_line(err, self.tmp)})")
            return self.path
        os.replace(self.tmp, self.path)
        return self.path

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(ok=exc_type is None)
