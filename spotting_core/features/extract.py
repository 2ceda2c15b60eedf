"""Frame features of a video: streamed extraction through a backbone, cached next to the video.

    extract_features(video, backbone=..., fps=2.0)     -> (T, D) float32, row k = frame at t = k / fps
    extract_cached(video, backbone=..., fps=2.0)       -> [half1 (T1, D), half2 (T2, D)...], cached
    cached_files(video, backbone=..., fps=2.0)         -> per half: where extract_cached keeps it, and its key
    extract_to_file(video, backbone=..., out=...)      -> the .npy written (`spotting features`)

Decoding runs in a thread (`io.video.prefetch`; ffmpeg is a separate process) and overlaps the network, batch by batch,
through a bounded queue, so memory stays flat for a 90-minute file. On the CPU the network leaves
one core to the decoder (`network_threads`): the wall time then tends to max(decode, network)
instead of paying for two thread pools fighting over every core. CUDA and half precision are used
when there is a GPU.

A half longer than CHUNK_S (5 minutes) is extracted in pieces, each cached as soon as it is done
(`.<half>_<backbone>.chunks/`), so an interrupted job resumes where it stopped.

The cache follows the SoccerNet layout: `<game>/<half>_<backbone>.npy` (+ a small hidden sidecar
JSON with the cache key: backbone, fps, the file's size, mtime and a hash of its head and tail, and
the time window of the half). A video named like SoccerNet's (`1_224p.mkv`) caches in its own
folder; any other `match.mp4` caches in `match/` beside it. An unwritable folder (read-only data)
falls back to `$SPOTTING_CACHE/features/` (default `~/.cache/spotting/features/`, the app's cache).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from spotting_core.errors import SpottingError
from spotting_core.features.backbones import Backbone, get_backbone, load_network
from spotting_core.features.cache import (
    array_file_name,
    cache_folder,
    file_identity,
    read_array,
    split_halves,
    write_array,
)
from spotting_core.io import video as vid
from spotting_core.runtime import resolve_device

Progress = Callable[[float, str], None]

CACHE_VERSION = 1


# ---------------------------------------------------------------------------------------------
# Streamed extraction
# ---------------------------------------------------------------------------------------------
def network_threads(cpus: int | None = None) -> int:
    """torch's intra-op threads while ffmpeg decodes beside the network: all cores but one (at least 1)."""
    if cpus is None:
        try:
            cpus = len(os.sched_getaffinity(0))  # the cores this process may use (Linux)
        except AttributeError:
            cpus = os.cpu_count() or 1
    return max(1, int(cpus) - 1)


@contextlib.contextmanager
def _intra_op_threads(dev: torch.device):
    """`network_threads()` on the CPU for the duration, restored after (any thread count the user set
    lower is kept); nothing changes on a GPU."""
    before = torch.get_num_threads()
    want = min(before, network_threads()) if dev.type == "cpu" else before
    if want != before:
        torch.set_num_threads(want)
    try:
        yield
    finally:
        if want != before:
            torch.set_num_threads(before)


@torch.inference_mode()
def iter_features(video: str | os.PathLike, *, backbone: str | Backbone, fps: float = 2.0,
                  device: str | torch.device | None = None, start: float | None = None,
                  duration: float | None = None, net: nn.Module | None = None,
                  batch_size: int | None = None, progress: Callable[[int], None] | None = None
                  ) -> Iterator[np.ndarray]:
    """Features of the frames at t = start + k / fps, batch by batch: (B, D) float32 arrays.

    progress(frames_done) is called after each batch.
    """
    bb = get_backbone(backbone)
    dev = resolve_device(device)
    net = net if net is not None else load_network(bb, device=dev)
    dtype = next(net.parameters()).dtype
    batches = vid.decode(video, fps=fps, size=bb.decode_size, start=start, duration=duration,
                         batch_size=batch_size or bb.batch_size)
    done = 0
    for frames in vid.prefetch(batches):                              # frames: (B, H, W, 3) uint8
        with _intra_op_threads(dev):  # per batch: the caller's threads are its own between two yields
            x = bb.preprocess(torch.from_numpy(frames).to(dev, non_blocking=True))  # (B, 3, h, w)
            y = net(x.to(dtype)).float().reshape(len(frames), -1)      # (B, D)
        if y.shape[1] != bb.dim:
            raise RuntimeError(f"backbone {bb.name} gave {y.shape[1]}-d features, its entry says {bb.dim}")
        done += len(frames)
        if progress:
            progress(done)
        yield y.cpu().numpy()


def extract_features(video: str | os.PathLike, *, backbone: str | Backbone, fps: float = 2.0,
                     device: str | torch.device | None = None, start: float | None = None,
                     duration: float | None = None, random_init: bool = False,
                     progress: Progress | None = None, net: nn.Module | None = None,
                     empty_ok: bool = False) -> np.ndarray:
    """(T, D) float32 features of one file (or of [start, start + duration)), row k at t = start + k / fps.

    No cache (see extract_cached). random_init=True (tests only) uses an untrained network.
    empty_ok: no frame in the part gives a (0, D) array instead of an error.
    """
    bb = get_backbone(backbone)
    info = vid.probe(video)
    total = info.num_samples(fps, start=start or 0.0, duration=duration)
    if net is None:
        net = load_network(bb, device=device, random_init=random_init)

    def tick(done: int) -> None:
        if progress:
            progress(min(done / total, 1.0) if total else 0.0, f"{Path(video).name}: {done}/{total or '?'} frames")

    parts = list(iter_features(video, backbone=bb, fps=fps, device=device, start=start, duration=duration,
                               net=net, progress=tick))
    if not parts:
        if empty_ok:
            return np.zeros((0, bb.dim), np.float32)
        raise SpottingError(f"{video}: no frames to extract at {fps:g} fps in the selected part")
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# Cached per half
# ---------------------------------------------------------------------------------------------
def cached_files(video, *, backbone: str | Backbone, fps: float = 2.0, half_offset_s: float | None = None,
                 cache_root: str | os.PathLike | None = None) -> list[tuple[Path, int, float | None, float | None, dict, Path]]:
    """Per half of the input: (file, half, start, duration, cache key, cached .npy path), as extract_cached
    reads and writes them (the .npy need not exist yet)."""
    bb = get_backbone(backbone)
    out = []
    for path, half, start, duration in split_halves(video, half_offset_s):
        vid.check_file(path)
        folder = Path(cache_root) if cache_root else cache_folder(path)
        key = {"version": CACHE_VERSION, "backbone": bb.feature_name, "dim": bb.dim, "fps": float(fps),
               "video": Path(path).name, **file_identity(path), "start": start, "duration": duration}
        out.append((path, half, start, duration, key, folder / array_file_name(half, bb.feature_name, fps)))
    return out


def extract_cached(video, *, backbone: str, fps: float = 2.0, device: str | torch.device | None = None,
                   half_offset_s: float | None = None, progress: Progress | None = None,
                   cache_root: str | os.PathLike | None = None,
                   networks: dict[str, nn.Module] | None = None) -> list[np.ndarray]:
    """One (T, D) float32 array per half, from the cache when its key still matches.

    video: one file (one half, or two with half_offset_s: half 2 starts that many seconds in), or
    a pair of files (half 1, half 2). cache_root overrides where the .npy files go (`cached_files`).
    networks: a long-lived caller's loaded networks by backbone name (a batch worker's): the
    backbone's is used when there, and added once loaded, so many videos load it once.
    """
    bb = get_backbone(backbone)
    plans = []
    for path, half, start, duration, key, npy in cached_files(video, backbone=bb, fps=fps, half_offset_s=half_offset_s,
                                                              cache_root=cache_root):
        cached = read_array(npy, key)
        plans.append((path, half, start, duration, key, npy, None if cached is None or cached.ndim != 2 else cached))

    todo = [p for p in plans if p[6] is None]
    counts = []
    for path, _, start, duration, *_ in todo:
        n = vid.probe(path).num_samples(fps, start=start or 0.0, duration=duration)
        counts.append(n or 0)
    total = max(sum(counts), 1)
    bar = None
    if progress is None and todo:
        from tqdm import tqdm

        bar = tqdm(total=sum(counts), unit="frame", desc=f"features {bb.name}", file=sys.stderr, disable=None)
    net = None
    if todo:
        net = networks.get(bb.name) if networks is not None else None
        if net is None:
            net = load_network(bb, device=device)
            if networks is not None:
                networks[bb.name] = net
    results = []
    done = [0]   # frames extracted in the halves before this one
    remaining = iter(counts)
    try:
        for path, half, start, duration, key, npy, cached in plans:
            if cached is not None:
                results.append(cached)
                continue
            count, last = next(remaining), [0]

            def tick(frac: float, text: str, _count=count, _last=last, _half=half) -> None:
                n = int(round(frac * _count))
                if bar is not None:
                    bar.update(n - _last[0])
                _last[0] = n
                if progress:
                    progress(min((done[0] + n) / total, 1.0), f"half {_half}: {text}")

            arr = _extract_in_chunks(path, bb=bb, fps=fps, device=device, start=start, duration=duration,
                                     count=count, net=net, key=key, npy=npy, progress=tick)
            done[0] += count
            results.append(arr)
    finally:
        if bar is not None:
            bar.close()
    if progress:
        progress(1.0, "features ready")
    return results


CHUNK_S = 300.0  # seconds of video per cached piece: a resumed extraction redoes at most this much


def _extract_in_chunks(path, *, bb: Backbone, fps: float, device, start: float | None, duration: float | None,
                       count: int, net, key: dict, npy: Path, progress: Progress) -> np.ndarray:
    """The half's features, written to `npy` (cache key `key`) and returned. Over CHUNK_S, extracted in
    pieces, each written (hidden, beside `npy`) as soon as it is done, so an interrupted extraction
    (a killed job, a restarted server) resumes at its first missing piece. The pieces go once the
    whole half is written."""
    per = max(1, int(round(CHUNK_S * fps)))
    n = max(1, -(-count // per))
    if n == 1:
        arr = extract_features(path, backbone=bb, fps=fps, device=device, start=start, duration=duration,
                               net=net, progress=progress)
        write_array(npy, key, arr)
        return arr
    pieces = npy.with_name(f".{npy.stem}.chunks")
    base = start or 0.0
    parts = []
    for i in range(n):
        c_start = base + i * per / fps
        c_duration = per / fps if i < n - 1 else (None if duration is None else base + duration - c_start)
        c_key, c_npy = {**key, "chunk": i, "chunk_s": CHUNK_S}, pieces / f"{i:04d}.npy"
        arr = read_array(c_npy, c_key)
        if arr is None:
            def tick(frac: float, text: str, _i=i) -> None:
                progress(min((_i + frac) * per / max(count, 1), 1.0), f"piece {_i + 1}/{n}: {text}")

            # the last piece may hold nothing: a container (its audio) can outlast the last frame
            arr = extract_features(path, backbone=bb, fps=fps, device=device, start=c_start, duration=c_duration,
                                   net=net, progress=tick, empty_ok=i == n - 1)
            pieces.mkdir(parents=True, exist_ok=True)
            write_array(c_npy, c_key, arr)
        else:
            progress(min((i + 1) * per / max(count, 1), 1.0), f"piece {i + 1}/{n}: cached")
        parts.append(arr)
    whole = np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
    write_array(npy, key, whole)
    shutil.rmtree(pieces, ignore_errors=True)
    return whole


def extract_to_file(video: str | os.PathLike, *, backbone: str = "mobilenetv2-offline", fps: float = 2.0,
                    out: str | os.PathLike | None = None, device: str | torch.device | None = None,
                    progress: Progress | None = None) -> Path:
    """`spotting features VIDEO`: write the (T, D) float32 array of one file; return its path.

    Without `out` the array stays in the cache (SoccerNet layout next to the video).
    """
    video = Path(video)
    (arr,) = extract_cached(video, backbone=backbone, fps=fps, device=device, progress=progress)
    if out is None:
        return cached_files(video, backbone=backbone, fps=fps)[0][-1]
    out = Path(out)
    if out.resolve() == video.resolve():
        raise SpottingError(f"{out}: refusing to overwrite the source video")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp.npy")
    np.save(tmp, arr)
    os.replace(tmp, out)
    return out
