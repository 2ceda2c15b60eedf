"""Decoded frames for end-to-end models (`input_kind = "frames"`, e.g. ugl-e2e), cached next to the video.

    halves = load_game_frames(game_dir, height=224, fps=2.0)   [(T1, H, W, 3) uint8, (T2, ...)]
    halves = video_frames("match.mp4", height=224, fps=2.0)    one half, or two with half_offset_s

Where the videos are: a game folder (one that holds Labels-v2.json) with SoccerNet's
`1_224p.mkv` / `2_224p.mkv` (or `_720p`, or any `1_*.mp4|mkv|avi|mov|webm`), or a folder holding
a single video of any name plus its Labels-v2.json (that video is half 1).

Cache: raw uint8 `<half>_frames<H>p[_<fps>fps].npy` (T, H, W, 3) RGB through `features/cache.py`,
keyed on the file's identity, fps, height and the half's time window. Raw arrays, not JPEG, so a
cached half loads with no decoding work and bit-exact frames (a 45-min half at 224 px is about
1.4 GB; at the toy sizes of the tests, kilobytes to a few MB).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from spotting_core.errors import SpottingError
from spotting_core.features.cache import (
    array_file_name,
    cache_folder,
    file_identity,
    read_array,
    split_halves,
    write_array,
)
from spotting_core.io import video as vid
from spotting_core.io.soccernet import HALVES

CACHE_VERSION = 1
Progress = Callable[[float, str], None]


# ---------------------------------------------------------------------------------------------
# Finding the videos of a game
# ---------------------------------------------------------------------------------------------
def game_videos(game_dir: str | os.PathLike) -> list[Path]:
    """The video of each half of a game folder (see the module doc), in half order."""
    game_dir = Path(game_dir)
    videos = sorted(p for p in game_dir.iterdir() if p.is_file() and p.suffix.lower() in vid.VIDEO_SUFFIXES)
    halves = []
    for h in HALVES:
        mine = [p for p in videos if p.name.startswith(f"{h}_")]
        mine.sort(key=lambda p: (0 if "224p" in p.name else 1 if "720p" in p.name else 2, p.name))
        if mine:
            halves.append(mine[0])
    if halves:
        if len(halves) == 1 and not halves[0].name.startswith("1_"):
            raise SpottingError(f"{game_dir}: has {halves[0].name} but no video of half 1 (1_224p.mkv...)")
        return halves
    if len(videos) == 1:
        return videos
    if not videos:
        raise SpottingError(f"{game_dir}: no video (expected 1_224p.mkv / 2_224p.mkv, or one video file)")
    raise SpottingError(f"{game_dir}: {len(videos)} videos and none named like SoccerNet's halves "
                        f"(1_224p.mkv, 2_224p.mkv); keep one video per game folder or name them by half")


# ---------------------------------------------------------------------------------------------
# Decoding with a cache
# ---------------------------------------------------------------------------------------------
def frames_file_name(half: int, height: int, fps: float) -> str:
    return array_file_name(half, f"frames{int(height)}p", fps)


def decode_half(video: str | os.PathLike, *, half: int, height: int, fps: float, start: float | None = None,
                duration: float | None = None, cache: bool = True) -> np.ndarray:
    """(T, H, W, 3) uint8 frames of one half at `fps`, `height` pixels high; cached (module doc)."""
    video = Path(video)
    vid.check_file(video)
    key = {"version": CACHE_VERSION, "video": video.name, **file_identity(video), "height": int(height),
           "fps": float(fps), "start": start, "duration": duration}
    npy = cache_folder(video) / frames_file_name(half, height, fps) if cache else None
    if npy is not None:
        cached = read_array(npy, key)
        if cached is not None and cached.ndim == 4 and cached.dtype == np.uint8 and cached.shape[-1] == 3:
            return cached
    arr = vid.decode_array(video, fps=fps, size=int(height), start=start, duration=duration)
    if len(arr) == 0:
        raise SpottingError(f"{video}: no frame decoded at {fps:g} fps")
    arr = np.ascontiguousarray(arr)
    if npy is not None:
        write_array(npy, key, arr)
    return arr


def load_game_frames(game_dir: str | os.PathLike, *, height: int, fps: float,
                     progress: Progress | None = None) -> list[np.ndarray]:
    """Frames of each half of a game folder: [(T_h, H, W, 3) uint8, ...]."""
    videos = game_videos(game_dir)
    out = []
    for i, v in enumerate(videos):
        half = int(v.name[0]) if v.name[:2] in ("1_", "2_") else 1
        out.append(decode_half(v, half=half, height=height, fps=fps))
        if progress:
            progress((i + 1) / len(videos), f"decoded {v.name}")
    return out


def video_frames(video: str | os.PathLike, *, height: int, fps: float,
                 half_offset_s: float | None = None) -> tuple[list[np.ndarray], list[int]]:
    """Frames of a video file: one half (half 2 when named `2_...`), or two when half 2 starts at
    `half_offset_s` seconds. Returns (halves, their half numbers)."""
    halves, numbers = [], []
    for path, half, start, duration in split_halves(Path(video), half_offset_s):
        halves.append(decode_half(path, half=half, height=height, fps=fps, start=start, duration=duration))
        numbers.append(half)
    return halves, numbers
