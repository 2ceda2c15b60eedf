"""Arrays computed from a video (features, decoded frames), cached next to it in the SoccerNet layout.

    folder = cache_folder(video)            the video's folder for SoccerNet names (1_224p.mkv), else
                                            `<stem>/` beside it; the user cache when that is read-only
    key = {**file_identity(video), ...}     size, mtime and a hash of the file's head and tail
    arr = read_array(npy, key)              None unless the sidecar `.<name>.json` holds the same key
    write_array(npy, key, arr)              atomically, array then sidecar
    place_array(npy, folder)                the array and its sidecar into another folder (hard links)
    split_halves(video, half_offset_s)      (file, half, start, duration) of each half of an input
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np

from spotting_core.errors import SpottingError
from spotting_core.io import video as vid
from spotting_core.runtime import cache_path

SOCCERNET_VIDEO = re.compile(r"^[12]_")


def video_folder(video: str | os.PathLike) -> Path:
    """Where arrays of `video` go: its folder for SoccerNet-named files, else `<stem>/` beside it."""
    video = Path(video).resolve()
    if SOCCERNET_VIDEO.match(video.name):
        return video.parent
    return video.parent / video.stem


def fallback_folder(video: str | os.PathLike) -> Path:
    """The user cache's folder for a video whose own folder is read-only."""
    video = Path(video)
    digest = hashlib.sha1(str(video.resolve()).encode()).hexdigest()[:16]
    return cache_path("features") / f"{video.stem}-{digest}"


def writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe_file = folder / f".write-test-{os.getpid()}"
        probe_file.write_bytes(b"")
        probe_file.unlink()
        return True
    except OSError:
        return False


def cache_folder(video: str | os.PathLike) -> Path:
    """`video_folder(video)` when it is writable, else `fallback_folder(video)` (created)."""
    folder = video_folder(video)
    if writable(folder):
        return folder
    folder = fallback_folder(video)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


_IDENTITIES: dict[tuple, str] = {}   # (path, device, inode, size, mtime, ctime, chunk) -> hash, this process


def file_identity(path: str | os.PathLike, *, chunk: int = 1 << 20) -> dict:
    """Size, mtime and a SHA-1 of the first and last MiB: cheap and enough to notice a changed file.

    The hash is remembered per (path, inode, size, mtime, ctime), so the several readers of one input
    in a run (the feature cache, a batch manifest) read its head and tail once; any write changes ctime.
    """
    path = Path(path)
    st = path.stat()
    seen = (str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, chunk)
    digest = _IDENTITIES.get(seen)
    if digest is None:
        h = hashlib.sha1()
        with open(path, "rb") as f:
            h.update(f.read(chunk))
            if st.st_size > chunk:
                f.seek(max(chunk, st.st_size - chunk))
                h.update(f.read(chunk))
        digest = h.hexdigest()
        if len(_IDENTITIES) >= 4096:
            _IDENTITIES.clear()
        _IDENTITIES[seen] = digest
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "head_tail_sha1": digest}


def array_file_name(half: int, name: str, fps: float) -> str:
    """`<half>_<name>.npy`, with `_<fps>fps` before the suffix unless fps is SoccerNet's 2."""
    suffix = "" if abs(fps - 2.0) < 1e-9 else f"_{fps:g}fps"
    return f"{half}_{name}{suffix}.npy"


def _sidecar(npy: Path) -> Path:
    return npy.with_name(f".{npy.name}.json")


def place_array(npy: str | os.PathLike, folder: str | os.PathLike) -> list[Path]:
    """Put a cached array and its sidecar into `folder` under the same names, so the cache recognises
    them there too: hard links when on the same filesystem (no second copy of the bytes), else copies."""
    placed = []
    for src in (Path(npy), _sidecar(Path(npy))):
        dest = Path(folder) / src.name
        if dest.exists() and os.path.samefile(src, dest):
            placed.append(dest)
            continue
        dest.unlink(missing_ok=True)
        try:
            os.link(src, dest)
        except OSError:
            shutil.copy2(src, dest)
        placed.append(dest)
    return placed


def read_array(npy: str | os.PathLike, key: dict, *, mmap: bool = False) -> np.ndarray | None:
    """The cached array when its sidecar holds `key` and its shape; None otherwise (recompute)."""
    npy = Path(npy)
    meta_path = _sidecar(npy)
    if not (npy.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("key") != key:
            return None
        arr = np.load(npy, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError, json.JSONDecodeError):
        return None
    if arr.shape != tuple(meta.get("shape", ())) or str(arr.dtype) != meta.get("dtype", str(arr.dtype)):
        return None
    return arr


def write_array(npy: str | os.PathLike, key: dict, arr: np.ndarray) -> Path:
    """Write the array, then its sidecar (key, shape, dtype), each through a temp file and a rename."""
    npy = Path(npy)
    tmp = npy.with_name(f".{npy.stem}.{os.getpid()}.tmp.npy")
    np.save(tmp, arr)
    os.replace(tmp, npy)
    meta_path = _sidecar(npy)
    tmp_meta = meta_path.with_name(f"{meta_path.name}.{os.getpid()}.tmp")
    tmp_meta.write_text(json.dumps({"key": key, "shape": list(arr.shape), "dtype": str(arr.dtype)}, indent=1))
    os.replace(tmp_meta, meta_path)
    return npy


def split_halves(video, half_offset_s: float | None) -> list[tuple[Path, int, float | None, float | None]]:
    """(file, half, start, duration) for each half of the input.

    video: one file (one half: half 2 when named `2_...`; or both with `half_offset_s`, the second
    half starting that many seconds in), or a pair of files (half 1, half 2); a list of one file is that file.
    """
    if isinstance(video, (list, tuple)) and len(video) == 1:
        video = video[0]
    if isinstance(video, (list, tuple)):
        if len(video) != 2:
            raise SpottingError(f"expected one video or a pair (half 1, half 2), got {len(video)} files")
        if half_offset_s is not None:
            raise SpottingError("half_offset_s splits one file; with two files each one is a half")
        return [(Path(v), i + 1, None, None) for i, v in enumerate(video)]
    video = Path(video)
    if half_offset_s is None:
        m = SOCCERNET_VIDEO.match(video.name)
        return [(video, int(video.name[0]) if m else 1, None, None)]
    info = vid.probe(video)
    if half_offset_s <= 0 or (info.duration is not None and half_offset_s >= info.duration):
        raise SpottingError(f"{video}: half-time offset {half_offset_s:g} s is outside the file "
                            f"(0, {info.duration:g} s)")
    return [(video, 1, None, float(half_offset_s)), (video, 2, float(half_offset_s), None)]
