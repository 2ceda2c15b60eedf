"""Small test videos made with the ffmpeg binary imageio-ffmpeg ships.

coded_video: every frame burns its own source time into pixels (a 4x3 grid of black/white blocks
holding n, its time in centiseconds), so a test can read back *which* source frame a decoder or a
cutter delivered. Frames are generated at 100 fps and a `select` expression keeps some of them with
their original timestamps: 25 fps CFR, or variable frame rate. Optional audio beeps for 0.1 s at
every whole second while a white bar flashes in the video: a reel keeps them together iff audio
stays in sync.

testsrc_video: lavfi testsrc (+ sine audio), for length and speed rather than exactness.
bad_inputs: the files a user gets wrong.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from spotting_core.io.ffmpeg import VideoWriter, ffmpeg_command

BASE_FPS = 100
GRID = (4, 3)  # blocks across, down: 12 bits, times up to 40.95 s
CFR25 = "not(mod(n,4))"
VFR = "if(lt(n,300),not(mod(n,4)),not(mod(n,10)))"   # 25 fps for 3 s, then 10 fps


def _block(w: int, h: int) -> int:
    return min(w // GRID[0], (h * 3 // 4) // GRID[1])


def code_frame(n: int, w: int, h: int) -> np.ndarray:
    """An RGB frame holding n in blocks; the bottom quarter is white during the first 0.1 s of each second."""
    img = np.zeros((h, w, 3), np.uint8)
    b = _block(w, h)
    for bit in range(GRID[0] * GRID[1]):
        if (n >> bit) & 1:
            r, c = divmod(bit, GRID[0])
            img[r * b:(r + 1) * b, c * b:(c + 1) * b] = 255
    if (n % BASE_FPS) < BASE_FPS // 10:
        img[h - h // 4 + 2:, :] = 255
    return img


def read_code(frame: np.ndarray) -> int:
    """The n burnt into a frame by code_frame (block centres, robust to compression)."""
    h, w = frame.shape[:2]
    b = _block(w, h)
    n = 0
    for bit in range(GRID[0] * GRID[1]):
        r, c = divmod(bit, GRID[0])
        q = max(1, b // 4)
        if frame[r * b + q:(r + 1) * b - q, c * b + q:(c + 1) * b - q].mean() > 128:
            n |= 1 << bit
    return n


def all_frames(path: Path, size: tuple[int, int]) -> np.ndarray:
    """Every frame of a file as stored (no resampling): (N, H, W, 3) uint8."""
    w, h = size
    raw = subprocess.run(ffmpeg_command("-i", str(path), "-map", "0:v:0", "-fps_mode",
                          "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"), capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


def flash(frame: np.ndarray) -> bool:
    h = frame.shape[0]
    return frame[h - h // 8:].mean() > 128


def coded_video(path: Path, *, seconds: float = 6.0, keep: str = CFR25, size: tuple[int, int] = (160, 96),
                audio: bool = False, gop: int = 25, faststart: bool = False, pix_fmt: str = "yuv420p") -> Path:
    """A video whose frame n (kept by `keep`, a select expression on n) shows time n / 100 s."""
    w, h = size
    total = int(round(seconds * BASE_FPS))
    beeps = f"aevalsrc='if(lt(mod(t,1),0.1),0.8*sin(2*PI*1000*t),0)':s=48000:d={seconds}" if audio else None
    with VideoWriter(path, size=size, fps=BASE_FPS, crf=12, gop=gop, pix_fmt=pix_fmt, audio=beeps,
                     faststart=faststart, extra=["-vf", f"select='{keep}'", "-fps_mode", "vfr",
                                                 "-keyint_min", str(gop), "-sc_threshold", "0"]) as out:
        for n in range(total):
            out.write(code_frame(n, w, h))
    return path


def kept_times(seconds: float, keep: str = CFR25) -> np.ndarray:
    """Source times (centiseconds) of the frames `coded_video` keeps (mirrors the select expressions here)."""
    n = np.arange(int(round(seconds * BASE_FPS)))
    if keep == CFR25:
        mask = n % 4 == 0
    elif keep == VFR:
        mask = np.where(n < 300, n % 4 == 0, n % 10 == 0)
    else:
        raise ValueError(keep)
    return n[mask]


def on_screen(times_cs: np.ndarray, t: float) -> int:
    """The frame on screen at t seconds: the last one whose time is <= t."""
    i = np.searchsorted(times_cs, int(round(t * BASE_FPS)), side="right") - 1
    return int(times_cs[max(i, 0)])


def testsrc_video(path: Path, *, seconds: float, size: tuple[int, int] = (320, 180), fps: int = 25,
                  audio: bool = True, gop: int = 50) -> Path:
    """lavfi testsrc (+ a sine), encoded fast: for long or real-looking-size files."""
    w, h = size
    cmd = ffmpeg_command("-f", "lavfi", "-i", f"testsrc=size={w}x{h}:rate={fps}:duration={seconds}", overwrite=True)
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
                "-c:a", "aac", "-b:a", "64k"]
    cmd += ["-c:v", "libx264", "-preset", "ultrafast", "-g", str(gop), "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(cmd, check=True)
    return path


def rotated(src: Path, path: Path, degrees: int = 90) -> Path:
    """The same stream with a display-matrix rotation (as phones write it)."""
    subprocess.run(ffmpeg_command("-display_rotation:v:0", str(degrees), "-i", str(src),
                    "-c", "copy", str(path), overwrite=True), check=True)
    return path


def bad_inputs(folder: Path, good: Path) -> dict[str, Path]:
    """0-byte file, truncated mp4 (moov at the end: cut before it), audio-only file, text named .mp4."""
    folder.mkdir(parents=True, exist_ok=True)
    empty = folder / "empty.mp4"
    empty.write_bytes(b"")
    data = good.read_bytes()
    truncated = folder / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    audio = folder / "audio_only.mp4"
    subprocess.run(ffmpeg_command("-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=48000:duration=2", "-c:a", "aac", str(audio),
                                  overwrite=True), check=True)
    text = folder / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    return {"empty": empty, "truncated": truncated, "audio_only": audio, "text": text}


def audio_pcm(path: Path, rate: int = 8000) -> np.ndarray:
    """The first audio stream as mono float samples at `rate`, placed by timestamp (gaps filled with
    silence, as a player would play them), so sample i is at i / rate seconds."""
    raw = subprocess.run(ffmpeg_command("-i", str(path), "-map", "0:a:0", "-af",
                          "aresample=async=1:min_hard_comp=0.001:first_pts=0", "-ac", "1", "-ar", str(rate), "-f", "s16le", "-"),
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.int16).astype(np.float32) / 32768.0


def onsets(active: np.ndarray, rate: float) -> np.ndarray:
    """Times (s) where a boolean signal switches on."""
    a = np.asarray(active, dtype=bool)
    idx = np.flatnonzero(a & ~np.concatenate([[False], a[:-1]]))
    return idx / rate


def av_offsets(path: Path, *, fps: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    """Flash onsets (video) and beep onsets (audio) of a coded_video-derived file, in seconds."""
    from spotting_core.io.video import decode_array

    frames = decode_array(path, fps=fps, size=(32, 32), strict=False)
    flashes = onsets([f[-4:].mean() > 128 for f in frames], fps)
    pcm = audio_pcm(path, 8000)
    env = np.convolve(np.abs(pcm), np.ones(40) / 40, mode="same") > 0.2     # 5 ms envelope
    beeps = onsets(env, 8000)
    beeps = beeps[np.concatenate([[True], np.diff(beeps) > 0.3])] if len(beeps) else beeps
    return flashes, beeps
