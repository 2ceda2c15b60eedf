"""Datasets and clip samplers on per-frame labels, split discovery, and the SoccerNet downloader.

    splits  = find_splits(data)                        {"train": [game, ...], "valid": [...], "test": [...]}
    games   = load_games(data, splits["train"], "ResNET_TF2_PCA512")
    sampler = ClipSampler(games, clip_frames=30, batch_size=256, mode="uniform", seed=0)
    for batch in sampler.batches(epoch):               {"x": (B, T, D), "events": (B, T, C)}
        ...

Samplers (a model picks one with its `sampling` attribute):
    "uniform"   the official NetVLAD++ training: each half cut into consecutive clips of
                `clip_frames` frames (stride = clip length, the last clip padded by repeating the
                last frame), every clip once per epoch, shuffled. The official code always cuts at
                frame 0; here each epoch cuts at a random phase in [0, clip_frames), so over the
                epochs the model sees every alignment of events within its window.
    "balanced"  RMS-Net: every stride-1 clip that contains an event (n_F clips), plus n_F / C clips
                with no event drawn afresh each epoch, so that background weighs as much as an
                average class.
    "anchored"  CALF (official `getChunks_anchors` + `__getitem__`): every clip is drawn afresh. A
                class is picked uniformly among the C event classes and "background" (those that
                have anchors), then one of its events, and the chunk is placed so that the event
                falls at a uniform position in (margin, clip_frames - margin] (the official shift
                in [-chunk + receptive_field, -receptive_field)); a background clip is a uniform
                stride-1 clip with no event inside (the official code further keeps it outside
                every event's K1..K4 context; without the model's K here, an event-free clip is the
                rule). Starts are clamped into the half. `clips_per_epoch` chunks per epoch
                (official: 18,000), by default as many as there are event anchors.

`events` follows `io.tables.events_per_frame`: 1 where a visible event sits, -1 where an unshown
one does, 0 elsewhere. Each model derives its own targets from it (models/base.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from spotting_core.errors import SpottingError
from spotting_core.io.feature_files import load_features
from spotting_core.io.soccernet import CLASSES_V2, FPS, LABELS_FILE, list_games
from spotting_core.io.tables import events_per_frame, read_labels

SPLITS = ("train", "valid", "test")


# ---------------------------------------------------------------------------------------------
# Splits and games
# ---------------------------------------------------------------------------------------------
def find_splits(data: str | os.PathLike, *, labels_file: str = LABELS_FILE) -> dict[str, list[str]]:
    """Games of each split, as paths relative to `data`.

    `<data>/train|valid|test/` folders when they exist (the synthetic benchmark's layout),
    otherwise the official SoccerNet game lists (`SoccerNet.utils.getListGames`) matched against the
    games present under `data`.
    """
    root = Path(data)
    if not root.is_dir():
        raise SpottingError(f"{root}: no such folder")
    if any((root / s).is_dir() for s in SPLITS):
        return {s: [f"{s}/{g}" for g in list_games(root / s, labels_file)] if (root / s).is_dir() else []
                for s in SPLITS}
    from SoccerNet.utils import getListGames

    present = set(list_games(root, labels_file))
    if not present:
        raise SpottingError(f"{root}: no games (no folder holds a {labels_file})")
    splits = {s: [g for g in getListGames(s) if g in present] for s in SPLITS}
    if not any(splits.values()):
        raise SpottingError(f"{root}: none of its {len(present)} games is in SoccerNet's train/valid/test "
                            "lists; put them in train/, valid/ and test/ folders instead")
    return splits


@dataclass
class GameData:
    """One game: per-half features (T, D), per-half events (T, C), and its labels table."""

    name: str
    halves: list[np.ndarray]
    events: list[np.ndarray]
    labels: pd.DataFrame
    entities: list[tuple[np.ndarray, np.ndarray]] | None = None  # per half: (T, N, d) features, (T, N) mask
    # halves may be read-only memory maps (load_game(mmap=True)); events are int8 (-1, 0, 1) to stay small

    @property
    def dim(self) -> int:
        return int(self.halves[0].shape[1])


def load_game(data: str | os.PathLike, game: str, features: str, *, classes: Sequence[str] = CLASSES_V2,
              labels_file: str = LABELS_FILE, fps: float = FPS, frame_height: int | None = None,
              mmap: bool = False) -> GameData:
    """Features `1_<features>.npy`, `2_<features>.npy` and labels of `data/game`.

    With `mmap` the halves are read-only memory maps of the files (`io.feature_files`): nothing is
    read until a batch or an evaluation asks for its frames.

    With `frame_height` (models whose `input_kind` is "frames"), the halves are the game's videos
    decoded at `fps`, that many pixels high: (T, H, W, 3) uint8 (`spotting_core.features.frames`, cached).
    """
    game_dir = Path(data) / game
    if frame_height:
        from spotting_core.features.frames import load_game_frames

        halves = load_game_frames(game_dir, height=int(frame_height), fps=fps)
    else:
        halves = list(load_features(game_dir, features, mmap=mmap))
    labels = read_labels(game_dir / labels_file, classes=classes, fps=fps)
    events = [e.astype(np.int8) for e in events_per_frame(labels, [h.shape[0] for h in halves], len(classes))]
    return GameData(name=game, halves=halves, events=events, labels=labels)


def load_entities(game_dir: str | os.PathLike, halves: Sequence[np.ndarray]
                  ) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Each half's precomputed `(entities (T, N, d), mask (T, N))`, or None when the game has none."""
    from spotting_core.features.entities import entities_path, load_precomputed

    if not all(entities_path(game_dir, i + 1).is_file() for i in range(len(halves))):
        return None
    out = [load_precomputed(game_dir, i + 1) for i in range(len(halves))]
    for i, ((ent, _), h) in enumerate(zip(out, halves)):
        if ent.shape[0] != h.shape[0]:
            raise SpottingError(f"{entities_path(game_dir, i + 1)}: {ent.shape[0]} frames of entities "
                                f"for {h.shape[0]} frames of input")
    return out


def attach_entities(data: str | os.PathLike, games: Sequence[GameData]) -> None:
    """For models with `entity_inputs`: load each game's `<half>_entities.npy` where it has them."""
    for g in games:
        g.entities = load_entities(Path(data) / g.name, g.halves)


def load_games(data: str | os.PathLike, games: Sequence[str], features: str, *,
               classes: Sequence[str] = CLASSES_V2, labels_file: str = LABELS_FILE, fps: float = FPS,
               progress: Callable[[float, str], None] | None = None,
               frame_height: int | None = None, mmap: bool = False) -> list[GameData]:
    """`load_game` for each game; every game must have the same feature dimension."""
    out = []
    for i, g in enumerate(games):
        out.append(load_game(data, g, features, classes=classes, labels_file=labels_file, fps=fps,
                             frame_height=frame_height, mmap=mmap))
        if out[-1].dim != out[0].dim:
            raise SpottingError(f"{Path(data) / g}: features {features} have dimension {out[-1].dim}, "
                                f"but {out[0].name} has {out[0].dim}")
        if progress:
            progress((i + 1) / len(games), f"loading {g}")
    return out
