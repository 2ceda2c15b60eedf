"""SoccerNet feature files: `<game>/<half>_<name>.npy`, one (T, D) float array per half.

    load_features(game_dir, "ResNET_TF2_PCA512")   both halves
    load_features(game_dir, "A+B")                 features of several extractors, concatenated per frame
    load_features(game_dir, name, mmap=True)       read-only memory maps; release_pages(arr) after reading

A memory map's pages count in the process's resident memory once read; `release_pages` hands them
back (the kernel keeps them in its page cache), so reading every game once stays bounded.
`release_heap()` does the same for the C heap after a game's large temporaries are freed.
"""

from __future__ import annotations

import ctypes
import functools
import mmap as mmap_module
import os
from pathlib import Path

import numpy as np

from spotting_core.errors import SpottingError, warn
from spotting_core.io.soccernet import HALVES


def feature_path(game_dir: str | os.PathLike, half: int, name: str) -> Path:
    """Where SoccerNet keeps the features of one half: `<game>/<half>_<name>.npy`."""
    return Path(game_dir) / f"{half}_{name}.npy"


def check_finite(arr: np.ndarray, source: str | os.PathLike, *, chunk: int = 8192) -> None:
    """One-line error naming `source` and the first frame (row) holding a NaN or an infinity."""
    for lo in range(0, len(arr), chunk):
        bad = ~np.isfinite(np.asarray(arr[lo:lo + chunk])).reshape(min(chunk, len(arr) - lo), -1).all(axis=1)
        if bad.any():
            frame = lo + int(np.argmax(bad))
            raise SpottingError(f"{source}: frame {frame} holds NaN or infinite values; re-extract these features")


def release_pages(arr: np.ndarray) -> None:
    """Drop the resident pages of a memory-mapped array from this process (no-op for other arrays).

    A read-only file mapping's pages stay in the page cache, so the next read is a minor fault.
    """
    base = arr
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, mmap_module.mmap) and not base.closed and "MADV_DONTNEED" in vars(mmap_module):
        base.madvise(mmap_module.MADV_DONTNEED)


@functools.cache
def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim   # glibc
    except (OSError, AttributeError):
        return None


def release_heap() -> None:
    """Hand the C heap's free pages back to the system (glibc `malloc_trim`; a no-op elsewhere).

    glibc serves the large arrays of one game from its heap once a large block has been freed; small
    objects kept alive in between (each game's events) then pin the freed pages, and resident memory
    grows with every game read (measured: +20 MB a validation game, `bench/train_memory.py`).
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def load_half_features(path: str | os.PathLike, *, mmap: bool = False) -> np.ndarray:
    """One half's features as a (T, D) float32 array; with `mmap`, a read-only memory map of the file.

    Every value must be finite (a one-line error names the first bad frame).
    """
    path = Path(path)
    if not path.is_file():
        raise SpottingError(f"{path}: feature file not found")
    try:
        arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise SpottingError(f"{path}: not a readable .npy array ({e})") from None
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise SpottingError(f"{path}: expected a (T, D) array of frame features, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise SpottingError(f"{path}: expected float features, got {arr.dtype}")
    check_finite(arr, path)
    release_pages(arr)  # the check read every page of a memory map
    if mmap and arr.dtype == np.float32:
        return arr
    return np.ascontiguousarray(arr, dtype=np.float32)


def feature_parts(name: str) -> list[str]:
    """"A+B" -> ["A", "B"]: features of several extractors, concatenated per frame in this order."""
    parts = [p.strip() for p in str(name).split("+")]
    if not all(parts):
        raise SpottingError(f"--features {name!r}: empty name in a '+' list (e.g. ResNET_TF2_PCA512+baidu)")
    return parts


def load_features(game_dir: str | os.PathLike, name: str, *, mmap: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Both halves' features `(1_<name>.npy, 2_<name>.npy)` of a game folder.

    `name` "A+B" concatenates the features of A and B frame by frame (dimension D_A + D_B); a half
    whose parts differ in length is cropped to the shortest, with a warning. With `mmap` a single
    feature name gives memory maps (a concatenation is a copy).
    """
    parts = feature_parts(name)
    per_part = []
    for part in parts:
        halves = []
        for half in HALVES:
            p = feature_path(game_dir, half, part)
            if not p.is_file():
                raise SpottingError(f"{game_dir}: missing half {half}: no {p.name}")
            halves.append(load_half_features(p, mmap=mmap))
        if halves[0].shape[1] != halves[1].shape[1]:
            raise SpottingError(f"{game_dir}: halves disagree on feature dimension "
                                f"({halves[0].shape[1]} vs {halves[1].shape[1]})")
        per_part.append(halves)
    if len(parts) == 1:
        return per_part[0][0], per_part[0][1]
    out = []
    for h, half in enumerate(HALVES):
        lengths = [p[h].shape[0] for p in per_part]
        T = min(lengths)
        if len(set(lengths)) > 1:
            warn(f"{game_dir}: half {half}: {name} parts have {', '.join(map(str, lengths))} frames; "
                 f"cropped to the shortest ({T})")
        out.append(np.ascontiguousarray(np.concatenate([p[h][:T] for p in per_part], axis=1), dtype=np.float32))
    return out[0], out[1]


def has_features(game_dir: str | os.PathLike, name: str) -> bool:
    """True when both halves of every part of `name` ("A" or "A+B") are in the game folder."""
    return all(feature_path(game_dir, h, part).is_file() for part in feature_parts(name) for h in HALVES)


def feature_names(game_dir: str | os.PathLike) -> list[str]:
    """Feature names present for both halves of a game folder (e.g. ['ResNET_TF2_PCA512'])."""
    game_dir = Path(game_dir)
    names = {p.name[2:-4] for p in game_dir.glob("1_*.npy")}
    return sorted(n for n in names if feature_path(game_dir, 2, n).is_file())
