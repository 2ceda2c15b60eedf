"""One decode pass, two frame streams: the 2 fps feature frames and the native-rate 48x27 shot frames.

    for kind, batch in decode_split(path, fps=2.0, size=224):    kind: "frames" or "shots"
        ...   frames: (B, H, W, 3) at t = k / fps;  shots: (B, 27, 48, 3) at t = k / video fps

Every frame of an H.264 stream is decoded anyway, so an ffmpeg `split` filter hands each decoded
picture to both chains (fps + scale) and writes them to two pipes (stdout and an extra file
descriptor): feature extraction and shot detection (`media/shots.ShotPass`) share one decode. The
sampling rule is `io/video.decode`'s (ffmpeg's fps filter with round=up), for the whole file.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
from collections.abc import Iterator, Sequence

import numpy as np

from spotting_core.errors import SpottingError
from spotting_core.io.ffmpeg import error_line, ffmpeg_command
from spotting_core.io.video import VideoInfo, output_size, probe


def split_command(path: str | os.PathLike, *, fps: float, size: tuple[int, int], shot_fps: float,
                  shot_size: tuple[int, int], shot_fd: int) -> list[str]:
    w, h = size
    sw, sh = shot_size
    graph = (f"[0:v:0]split=2[a][b];[a]fps={fps:g}:round=up:start_time=0,scale={w}:{h}[f];"
             f"[b]fps={shot_fps:g}:round=up:start_time=0,scale={sw}:{sh}[s]")
    return ffmpeg_command("-i", str(path), "-filter_complex", graph,
                          "-map", "[f]", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
                          "-map", "[s]", "-f", "rawvideo", "-pix_fmt", "rgb24", f"pipe:{shot_fd}")


def _reader(stream, kind: str, shape: tuple[int, int], batch: int, out: queue.Queue) -> None:
    w, h = shape
    frame = w * h * 3
    try:
        while True:
            buf = stream.read(frame * batch)
            if not buf:
                break
            n = len(buf) // frame
            if n:
                out.put((kind, np.frombuffer(buf, np.uint8, count=n * frame).reshape(n, h, w, 3)))
            if len(buf) < frame * batch:
                break
    finally:
        out.put((kind, None))


def decode_split(path: str | os.PathLike, *, fps: float = 2.0, size: int | Sequence[int] | None = 224,
                 shot_fps: float | None = None, shot_size: tuple[int, int] = (48, 27), batch_size: int = 32,
                 info: VideoInfo | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """("frames", batch) and ("shots", batch) items as ffmpeg produces them, each stream in order."""
    if fps <= 0:
        raise SpottingError(f"fps must be positive, got {fps}")
    info = info or probe(path)
    size = output_size(info, size)
    shot_fps = shot_fps or info.fps or 25.0
    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.Popen(split_command(path, fps=fps, size=size, shot_fps=shot_fps, shot_size=shot_size,
                                              shot_fd=write_fd),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                pass_fds=(write_fd,))
    finally:
        os.close(write_fd)
    shots = os.fdopen(read_fd, "rb")
    items: queue.Queue = queue.Queue(maxsize=64)
    errors: list[bytes] = []
    threads = [threading.Thread(target=_reader, args=(proc.stdout, "frames", size, batch_size, items), daemon=True),
               threading.Thread(target=_reader, args=(shots, "shots", shot_size, 8 * batch_size, items), daemon=True),
               threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)]
    for t in threads:
        t.start()
    open_streams = 2
    try:
        while open_streams:
            kind, batch = items.get()
            if batch is None:
                open_streams -= 1
                continue
            yield kind, batch
        rc = proc.wait()
        threads[2].join(timeout=5)
        if rc != 0:
            stderr = b"".join(errors).decode("utf-8", "replace")
            raise SpottingError(f"{path}: ffmpeg could not decode it ({error_line(stderr, path)})")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shots.close()
        for stream in (proc.stdout, proc.stderr):
            if stream and not stream.closed:
                stream.close()
