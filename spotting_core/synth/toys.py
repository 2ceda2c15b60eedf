"""Toy videos whose events are visible on screen, and SoccerNet-layout game folders made of them.

    make_toy_dataset(root, games={"train": 4, "valid": 1, "test": 1})   Labels-v2.json + 1_224p.mkv / 2_224p.mkv
    write_toy_video(path, [(t_s, toy_class)], duration_s=40)             one video

Three toy classes (TOY_CLASSES): a red square, a green disc, a blue bar, drawn over a drifting noisy
background for `show_s` seconds from each event. Used by the end-to-end tests and bench/ugl_e2e.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from spotting_core.io.ffmpeg import VideoWriter
from spotting_core.io.soccernet import CLASSES_V2, HALVES, LABELS_FILE

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
    with VideoWriter(path, size=size, fps=fps, crf=18, preset="ultrafast", gop=fps) as out:
        for i in range(n):
            t = i / fps
            base = 90 + 40 * np.sin(2 * np.pi * (xx / W + yy / H + 0.05 * t))[..., None] * np.array([0.6, 1.0, 0.5])
            frame = np.clip(base + rng.normal(0, 12, (H, W, 3)), 0, 255).astype(np.uint8)
            for te, k, cx, cy in shown:
                if te <= t < te + show_s:
                    _draw(frame, k, cx, cy, max(3, H // 10))
            out.write(frame)
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
