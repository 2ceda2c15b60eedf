"""Frame data for end-to-end models (`input_kind = "frames"`, e.g. ugl-e2e): videos -> decoded frames,
cached; snippet augmentations; a generator of toy videos whose events are visible on screen.

    halves = load_game_frames(game_dir, height=224, fps=2.0)   [(T1, H, W, 3) uint8, (T2, ...)]
    halves = video_frames("match.mp4", height=224, fps=2.0)    one half, or two with half_offset_s
    x, y = augment_snippets(x, y, crop_frac=0.9, jitter=0.2, mixup_alpha=0.2)

Where the videos are: a game folder (one that holds Labels-v2.json) with SoccerNet's
`1_224p.mkv` / `2_224p.mkv` (or `_720p`, or any `1_*.mp4|mkv|avi|mov|webm`), or a folder holding
a single video of any name plus its Labels-v2.json (that video is half 1).

Cache (decided: raw uint8 .npy, one file per half and frame size): frames decoded with
`spotting_core.io.video.decode` at the model's fps and height (aspect kept) are stored as
`<half>_frames<H>p[_<fps>fps].npy` (T, H, W, 3) RGB, with a hidden JSON sidecar keyed on the file's
identity (size, mtime, head/tail hash), fps, height and the half's time window, in the folder
`features.cache_dir` gives (the video's own folder for SoccerNet names); an unwritable folder falls
back to the user cache, as the features cache does. Raw arrays, not JPEG, so a cached half loads
with no decoding work and bit-exact frames (a 45-min half at 224 px is about 1.4 GB; at the toy
sizes of the tests, kilobytes to a few MB).

Snippet sampling is `data.ClipSampler` "uniform": consecutive delta-frame snippets cut at a random
phase each epoch (every alignment of the events over the epochs), shuffled. The augmentations run
on the batch, on its device, inside `model.augment`.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from spotting_core.errors import SpottingError
from spotting_core.io import video as vid
from spotting_core.io.soccernet import CLASSES_V2, HALVES, LABELS_FILE

VIDEO_EXTS = (".mkv", ".mp4", ".avi", ".mov", ".webm", ".m4v")
CACHE_VERSION = 1
Progress = Callable[[float, str], None]


# ---------------------------------------------------------------------------------------------
# Finding the videos of a game
# ---------------------------------------------------------------------------------------------
def game_videos(game_dir: str | os.PathLike) -> list[Path]:
    """The video of each half of a game folder (see the module doc), in half order."""
    game_dir = Path(game_dir)
    videos = sorted(p for p in game_dir.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTS)
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
    suffix = "" if abs(fps - 2.0) < 1e-9 else f"_{fps:g}fps"
    return f"{half}_frames{int(height)}p{suffix}.npy"


def _cache_folder(video: Path) -> Path:
    from spotting_core.features.extract import _fallback_dir, _writable_dir, cache_dir

    folder = cache_dir(video)
    if not _writable_dir(folder):
        folder = _fallback_dir(video)
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def _read(npy: Path, key: dict) -> np.ndarray | None:
    meta = npy.with_name(f".{npy.name}.json")
    if not (npy.is_file() and meta.is_file()):
        return None
    try:
        if json.loads(meta.read_text()).get("key") != key:
            return None
        arr = np.load(npy, allow_pickle=False)
    except (OSError, ValueError, json.JSONDecodeError):
        return None
    return arr if arr.ndim == 4 and arr.dtype == np.uint8 and arr.shape[-1] == 3 else None


def _write(npy: Path, key: dict, arr: np.ndarray) -> None:
    tmp = npy.with_name(f".{npy.stem}.{os.getpid()}.tmp.npy")
    np.save(tmp, arr)
    os.replace(tmp, npy)
    meta = npy.with_name(f".{npy.name}.json")
    tmp_meta = meta.with_name(f"{meta.name}.{os.getpid()}.tmp")
    tmp_meta.write_text(json.dumps({"key": key, "shape": list(arr.shape)}, indent=1))
    os.replace(tmp_meta, meta)


def decode_half(video: str | os.PathLike, *, half: int, height: int, fps: float, start: float | None = None,
                duration: float | None = None, cache: bool = True) -> np.ndarray:
    """(T, H, W, 3) uint8 frames of one half at `fps`, `height` pixels high; cached (module doc)."""
    from spotting_core.features.extract import file_identity

    video = Path(video)
    vid._check_file(video)
    key = {"version": CACHE_VERSION, "video": video.name, **file_identity(video), "height": int(height),
           "fps": float(fps), "start": start, "duration": duration}
    npy = _cache_folder(video) / frames_file_name(half, height, fps) if cache else None
    if npy is not None:
        cached = _read(npy, key)
        if cached is not None:
            return cached
    arr = vid.decode_array(video, fps=fps, size=int(height), start=start, duration=duration)
    if len(arr) == 0:
        raise SpottingError(f"{video}: no frame decoded at {fps:g} fps")
    arr = np.ascontiguousarray(arr)
    if npy is not None:
        _write(npy, key, arr)
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
    from spotting_core.features.extract import _halves_of

    halves, numbers = [], []
    for path, half, start, duration in _halves_of(Path(video), half_offset_s):
        halves.append(decode_half(path, half=half, height=height, fps=fps, start=start, duration=duration))
        numbers.append(half)
    return halves, numbers


# ---------------------------------------------------------------------------------------------
# Augmentations
# ---------------------------------------------------------------------------------------------
def augment_snippets(x: torch.Tensor, target: torch.Tensor, *, crop_frac: float = 0.9, jitter: float = 0.2,
                     mixup_alpha: float = 0.2, generator: torch.Generator | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Training augmentations of a batch of snippets, the same for every frame of a snippet.

    x: (B, T, H, W, 3) uint8 (or float in [0, 255]); target: (B, T, K + 1) per-frame distributions.
    - crop: a random box of side crop_frac..1 of the frame (per snippet), resized back to (H, W);
    - jitter: brightness, contrast and saturation factors drawn in [1 - jitter, 1 + jitter];
    - mixup: with lambda ~ Beta(a, a), each snippet mixed with another of the batch, frames and
      targets alike: x = lam x_i + (1 - lam) x_j, y = lam y_i + (1 - lam) y_j.
    Returns float frames in [0, 255] and the (mixed) targets.
    """
    B, T, H, W, _ = x.shape
    dev = x.device
    g = generator
    v = x.float().permute(0, 1, 4, 2, 3).reshape(B, T * 3, H, W)                 # (B, T*3, H, W)
    if crop_frac < 1.0:
        side = crop_frac + (1 - crop_frac) * torch.rand(B, generator=g).to(dev)   # (B,) fraction kept
        cx = (1 - side) * (2 * torch.rand(B, generator=g).to(dev) - 1)          # centre offsets, [-1, 1] coords
        cy = (1 - side) * (2 * torch.rand(B, generator=g).to(dev) - 1)
        theta = torch.zeros(B, 2, 3, device=dev)
        theta[:, 0, 0], theta[:, 1, 1], theta[:, 0, 2], theta[:, 1, 2] = side, side, cx, cy
        grid = F.affine_grid(theta, [B, T * 3, H, W], align_corners=False)
        v = F.grid_sample(v, grid, mode="bilinear", padding_mode="border", align_corners=False)
    v = v.reshape(B, T, 3, H, W)
    if jitter > 0:
        def factor() -> torch.Tensor:
            return (1 + jitter * (2 * torch.rand(B, generator=g) - 1)).to(dev).view(B, 1, 1, 1, 1)

        v = v * factor()                                                         # brightness
        mean = v.mean(dim=(1, 2, 3, 4), keepdim=True)
        v = (v - mean) * factor() + mean                                         # contrast
        grey = v.mean(dim=2, keepdim=True)
        v = (v - grey) * factor() + grey                                         # saturation
        v = v.clamp(0, 255)
    if mixup_alpha > 0 and B > 1:
        lam = torch.distributions.Beta(mixup_alpha, mixup_alpha).sample((B,)).to(dev)
        lam = torch.maximum(lam, 1 - lam)                                        # the snippet stays dominant
        perm = torch.randperm(B, generator=g).to(dev)
        v = lam.view(B, 1, 1, 1, 1) * v + (1 - lam.view(B, 1, 1, 1, 1)) * v[perm]
        target = lam.view(B, 1, 1) * target + (1 - lam.view(B, 1, 1)) * target[perm]
    return v.permute(0, 1, 3, 4, 2).contiguous(), target                         # (B, T, H, W, 3)


# ---------------------------------------------------------------------------------------------
# Toy videos with visible events (tests, bench)
# ---------------------------------------------------------------------------------------------
TOY_CLASSES = ("Goal", "Corner", "Foul")  # a red square, a green disc, a blue bar


def _draw(frame: np.ndarray, kind: int, cx: int, cy: int, r: int) -> None:
    H, W = frame.shape[:2]
    yy, xx = np.mgrid[0:H, 0:W]
    if kind == 0:
        m = (abs(xx - cx) <= r) & (abs(yy - cy) <= r)
        colour = (230, 30, 30)
    elif kind == 1:
        m = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        colour = (30, 220, 30)
    else:
        m = (abs(xx - cx) <= 2 * r) & (abs(yy - cy) <= max(1, r // 2))
        colour = (40, 40, 240)
    frame[m] = colour


def write_toy_video(path: str | os.PathLike, events: Sequence[tuple[float, int]], *, duration_s: float,
                    size: tuple[int, int] = (64, 64), fps: int = 10, show_s: float = 1.0, seed: int = 0) -> Path:
    """An H.264 video of a drifting noisy background where each event (time s, toy class k) shows the
    class's shape at a random place for `show_s` seconds from its time."""
    rng = np.random.default_rng(seed)
    W, H = size
    n = int(round(duration_s * fps))
    shown = [(t, k, int(rng.integers(W // 4, 3 * W // 4)), int(rng.integers(H // 4, 3 * H // 4))) for t, k in events]
    yy, xx = np.mgrid[0:H, 0:W]
    cmd = [vid.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{W}x{H}", "-r", str(fps), "-i", "-", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18",
           "-pix_fmt", "yuv420p", "-g", str(fps), str(path)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for i in range(n):
            t = i / fps
            base = 90 + 40 * np.sin(2 * np.pi * (xx / W + yy / H + 0.05 * t))[..., None] * np.array([0.6, 1.0, 0.5])
            frame = np.clip(base + rng.normal(0, 12, (H, W, 3)), 0, 255).astype(np.uint8)
            for te, k, cx, cy in shown:
                if te <= t < te + show_s:
                    _draw(frame, k, cx, cy, max(3, H // 10))
            proc.stdin.write(frame.tobytes())
        proc.stdin.close()
        err = proc.stderr.read().decode("utf-8", "replace")
        if proc.wait() != 0:
            raise SpottingError(f"{path}: ffmpeg could not write the toy video ({err.strip()[:160]})")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return Path(path)


def make_toy_dataset(root: str | os.PathLike, *, games: dict[str, int], half_s: float = 40.0,
                     size: tuple[int, int] = (64, 64), every_s: float = 5.0, seed: int = 0,
                     layout: str = "soccernet") -> Path:
    """`root/<split>/game<i>/` with Labels-v2.json and videos of events of TOY_CLASSES.

    games: games per split, e.g. {"train": 4, "valid": 1, "test": 1}. layout "soccernet": two halves
    `1_224p.mkv` / `2_224p.mkv` (the name SoccerNet uses, whatever the toy size); "single": one
    `match.mp4` per game (half 1). Events: one every ~every_s seconds (jittered, on the 2 fps grid,
    so the shape is on screen from the labelled 2 fps frame on), classes at random.
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    halves = HALVES if layout == "soccernet" else (1,)
    for split, count in games.items():
        for gi in range(count):
            game = root / split / f"game{gi}"
            game.mkdir(parents=True, exist_ok=True)
            annotations = []
            for half in halves:
                jitter = min(0.8, every_s / 4)
                times = np.arange(every_s / 2, half_s - 1.5, every_s) + rng.uniform(-jitter, jitter, size=1)
                times = np.clip(times + rng.uniform(-jitter, jitter, len(times)), 0.5, half_s - 1.5)
                times = np.unique(np.round(times * 2) / 2)  # on the 2 fps grid: shown at the labelled frame
                events = [(float(t), int(rng.integers(len(TOY_CLASSES)))) for t in times]
                name = f"{half}_224p.mkv" if layout == "soccernet" else "match.mp4"
                write_toy_video(game / name, events, duration_s=half_s, size=size,
                                seed=int(rng.integers(1 << 31)))
                for t, k in events:
                    ms = int(round(t * 1000))
                    annotations.append({"gameTime": f"{half} - {ms // 60000:02d}:{(ms // 1000) % 60:02d}",
                                        "label": TOY_CLASSES[k], "position": str(ms), "team": "home",
                                        "visibility": "visible"})
            (game / LABELS_FILE).write_text(json.dumps({"UrlLocal": f"{split}/game{gi}",
                                                        "annotations": annotations}, indent=1))
    return root


def toy_class_ids() -> list[int]:
    """Indices of TOY_CLASSES in SoccerNet-v2's class list."""
    return [CLASSES_V2.index(c) for c in TOY_CLASSES]
