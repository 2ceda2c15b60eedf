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

`events` follows `soccernet.events_per_frame`: 1 where a visible event sits, -1 where an unshown
one does, 0 elsewhere. Each model derives its own targets from it (models/base.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from spotting_core.errors import SpottingError
from spotting_core.io.soccernet import (
    CLASSES_V2,
    FPS,
    LABELS_FILE,
    events_per_frame,
    list_games,
    load_features,
    read_labels,
)

SPLITS = ("train", "valid", "test")
SAMPLERS = ("uniform", "balanced", "anchored")


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

    @property
    def dim(self) -> int:
        return int(self.halves[0].shape[1])


def load_game(data: str | os.PathLike, game: str, features: str, *, classes: Sequence[str] = CLASSES_V2,
              labels_file: str = LABELS_FILE, fps: float = FPS, frame_height: int | None = None) -> GameData:
    """Features `1_<features>.npy`, `2_<features>.npy` and labels of `data/game`.

    With `frame_height` (models whose `input_kind` is "frames"), the halves are the game's videos
    decoded at `fps`, that many pixels high: (T, H, W, 3) uint8 (`spotting_core.features.frames`, cached).
    """
    game_dir = Path(data) / game
    if frame_height:
        from spotting_core.features.frames import load_game_frames

        halves = load_game_frames(game_dir, height=int(frame_height), fps=fps)
    else:
        halves = list(load_features(game_dir, features))
    labels = read_labels(game_dir / labels_file, classes=classes, fps=fps)
    events = events_per_frame(labels, [h.shape[0] for h in halves], len(classes))
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
               frame_height: int | None = None) -> list[GameData]:
    """`load_game` for each game; every game must have the same feature dimension."""
    out = []
    for i, g in enumerate(games):
        out.append(load_game(data, g, features, classes=classes, labels_file=labels_file, fps=fps,
                             frame_height=frame_height))
        if out[-1].dim != out[0].dim:
            raise SpottingError(f"{Path(data) / g}: features {features} have dimension {out[-1].dim}, "
                                f"but {out[0].name} has {out[0].dim}")
        if progress:
            progress((i + 1) / len(games), f"loading {g}")
    return out


# ---------------------------------------------------------------------------------------------
# Clip starts
# ---------------------------------------------------------------------------------------------
def uniform_starts(T: int, clip_frames: int, phase: int = 0) -> np.ndarray:
    """Starts of consecutive clips covering [0, T): stride = clip length, first clip at -phase."""
    W = int(clip_frames)
    phase = int(phase) % W
    return np.arange(-phase, T, W, dtype=np.int64)


def event_clip_starts(events: np.ndarray, clip_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Stride-1 clips of one half that lie inside it: (starts with an event, starts without one).

    events: (T, C), non-zero where an event (visible or unshown) sits. A half shorter than the clip
    has the one clip starting at 0.
    """
    T, W = events.shape[0], int(clip_frames)
    has_event = (events != 0).any(axis=1).astype(np.int64)  # (T,)
    n = max(T - W + 1, 1)
    counts = np.concatenate([[0], np.cumsum(has_event)])
    starts = np.arange(n)
    in_clip = counts[np.minimum(starts + W, T)] - counts[starts]  # (n,) events inside each clip
    return starts[in_clip > 0], starts[in_clip == 0]


# ---------------------------------------------------------------------------------------------
# Sampler
# ---------------------------------------------------------------------------------------------
class ClipSampler:
    """Batches of clips from a list of games; `batches(epoch)` is deterministic per (seed, epoch)."""

    def __init__(self, games: Sequence[GameData], *, clip_frames: int, batch_size: int, mode: str = "uniform",
                 seed: int = 0, clips_per_epoch: int | None = None, num_classes: int | None = None,
                 anchor_margin: int = 0):
        if mode not in SAMPLERS:
            raise ValueError(f"unknown sampler {mode!r}; choose from {', '.join(SAMPLERS)}")
        if not games:
            raise SpottingError("no games to sample clips from")
        self.mode, self.seed = mode, int(seed)
        self.clip_frames, self.batch_size = int(clip_frames), int(batch_size)
        self.clips_per_epoch = clips_per_epoch
        halves = [h for g in games for h in g.halves]
        events = [e for g in games for e in g.events]
        self.lengths = np.array([len(h) for h in halves], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        feats = np.concatenate(halves)                                         # (N, D) or frames (N, H, W, 3)
        self.feats = feats if feats.dtype == np.uint8 else feats.astype(np.float32, copy=False)
        self.events = np.concatenate(events).astype(np.float32, copy=False)   # (N, C)
        self.num_classes = int(num_classes or self.events.shape[1])
        self.entities = self.entity_mask = None
        with_entities = [g.entities is not None for g in games]
        if any(with_entities):
            if not all(with_entities):
                missing = next(g.name for g, w in zip(games, with_entities) if not w)
                raise SpottingError(f"{missing}: no <half>_entities.npy, but other games have them; "
                                    "give every game entity features or none")
            ents = [e for g in games for e in g.entities]
            shapes = {e.shape[1:] for e, _ in ents}
            if len(shapes) > 1:
                raise SpottingError(f"entity features differ in shape (N_max, d) across games: {sorted(shapes)}")
            self.entities = np.concatenate([e for e, _ in ents])              # (N, N_max, d)
            self.entity_mask = np.concatenate([m for _, m in ents])           # (N, N_max)
        self.anchor_margin = int(anchor_margin)
        if mode == "anchored":
            if not 0 <= 2 * self.anchor_margin < self.clip_frames:
                raise ValueError(f"anchor_margin {anchor_margin}: needs 0 <= 2 * margin < clip_frames ({clip_frames})")
            anchors = [np.stack(np.nonzero(ev), axis=1) for ev in events]  # per half: (n, 2) (frame, class)
            rows = np.concatenate([np.concatenate([np.full((len(a), 1), h), a], axis=1)
                                   for h, a in enumerate(anchors)]).astype(np.int64)  # (n, 3) (half, frame, class)
            self.anchors = [rows[rows[:, 2] == c, :2] for c in range(self.num_classes)]  # per class (n_c, 2)
            bg = [event_clip_starts(ev, self.clip_frames)[1] for ev in events]
            self.background = np.concatenate([np.stack([np.full(len(b), h), b], axis=1)
                                              for h, b in enumerate(bg)]).astype(np.int64)  # (n_B, 2)
            self.n_anchors = int(sum(len(a) for a in self.anchors))
        if mode == "balanced":
            fg, bg = [], []
            for h, ev in enumerate(events):
                f, b = event_clip_starts(ev, self.clip_frames)
                fg.append(np.stack([np.full(len(f), h), f], axis=1))
                bg.append(np.stack([np.full(len(b), h), b], axis=1))
            self.foreground = np.concatenate(fg).astype(np.int64)  # (n_F, 2) (half, start)
            self.background = np.concatenate(bg).astype(np.int64)  # (n_B, 2)

    # ----- which clips an epoch holds ---------------------------------------------------------
    def epoch_clips(self, epoch: int) -> np.ndarray:
        """(N, 2) rows of (half index, start frame), shuffled, for this epoch."""
        rng = np.random.default_rng([self.seed, int(epoch)])
        if self.mode == "uniform":
            phase = int(rng.integers(self.clip_frames))
            clips = np.concatenate([
                np.stack([np.full(len(s), h), s], axis=1)
                for h, T in enumerate(self.lengths)
                for s in [uniform_starts(int(T), self.clip_frames, phase)]
            ]).astype(np.int64)
        elif self.mode == "anchored":
            return self._anchored_clips(rng)
        else:
            n_bg = min(int(round(len(self.foreground) / self.num_classes)), len(self.background))
            pick = rng.choice(len(self.background), size=n_bg, replace=False) if n_bg else np.zeros(0, np.int64)
            clips = np.concatenate([self.foreground, self.background[pick]])
        clips = clips[rng.permutation(len(clips))]
        if self.clips_per_epoch is not None:
            clips = clips[: int(self.clips_per_epoch)]
        return clips

    def _anchored_clips(self, rng: np.random.Generator) -> np.ndarray:
        """(N, 2) anchored chunks (module docstring), already in random order."""
        n = int(self.clips_per_epoch) if self.clips_per_epoch is not None else max(self.n_anchors, 1)
        pools = [a for a in self.anchors if len(a)] + ([self.background] if len(self.background) else [])
        if not pools:
            raise SpottingError("anchored sampling: no event and no event-free clip in the training halves")
        pick = rng.integers(len(pools), size=n)                                  # class (or background) per chunk
        clips = np.zeros((n, 2), dtype=np.int64)
        lo, hi = self.anchor_margin + 1, self.clip_frames - self.anchor_margin   # event position in [lo, hi]
        for k, pool in enumerate(pools):
            rows = np.nonzero(pick == k)[0]
            chosen = pool[rng.integers(len(pool), size=len(rows))]              # (m, 2) (half, frame or start)
            clips[rows, 0] = chosen[:, 0]
            if pool is self.background:
                clips[rows, 1] = chosen[:, 1]
            else:
                clips[rows, 1] = chosen[:, 1] - rng.integers(lo, hi + 1, size=len(rows))
        last = np.maximum(self.lengths[clips[:, 0]] - self.clip_frames, 0)
        clips[:, 1] = np.clip(clips[:, 1], 0, last)
        return clips

    def __len__(self) -> int:
        """Batches per epoch."""
        return -(-len(self.epoch_clips(0)) // self.batch_size)

    def gather(self, clips: np.ndarray) -> dict[str, torch.Tensor]:
        """(B, 2) (half, start) rows -> {"x": (B, T, D), "events": (B, T, C)}; edges repeat the edge frame."""
        h, s = clips[:, 0], clips[:, 1]
        frames = s[:, None] + np.arange(self.clip_frames)[None]                    # (B, T)
        frames = np.clip(frames, 0, self.lengths[h][:, None] - 1) + self.offsets[h][:, None]
        batch = {"x": torch.from_numpy(self.feats[frames]),                         # (B, T, D)
                 "events": torch.from_numpy(self.events[frames])}                   # (B, T, C)
        if self.entities is not None:
            batch["entities"] = torch.from_numpy(self.entities[frames])             # (B, T, N, d)
            batch["entity_mask"] = torch.from_numpy(self.entity_mask[frames])       # (B, T, N)
        return batch

    def batches(self, epoch: int) -> Iterator[dict[str, torch.Tensor]]:
        clips = self.epoch_clips(epoch)
        for b in range(0, len(clips), self.batch_size):
            yield self.gather(clips[b:b + self.batch_size])


# ---------------------------------------------------------------------------------------------
# Download
# ---------------------------------------------------------------------------------------------
def _network_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError]  # urllib, requests and huggingface_hub errors are OSErrors
    for module in ("httpx2", "httpx"):
        try:
            errors.append(__import__(module).HTTPError)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def download(directory: str | os.PathLike, *, splits: Sequence[str] = SPLITS,
             files: Sequence[str] = ("1_ResNET_TF2_PCA512.npy", "2_ResNET_TF2_PCA512.npy", LABELS_FILE),
             password: str | None = None) -> Path:
    """Download SoccerNet features and labels with the official `SoccerNetDownloader`.

    Needs SoccerNet's servers (Hugging Face); a failure to reach them raises a one-line
    SpottingError. Videos need the password of SoccerNet's NDA.
    """
    from SoccerNet.Downloader import SoccerNetDownloader

    directory = Path(directory)
    known = (set(SoccerNetDownloader._HF_FEATURE_BRANCH_BY_FILE) | set(SoccerNetDownloader._HF_LABEL_FILES)
             | set(SoccerNetDownloader._HF_VIDEO_BRANCH_BY_FILE))
    unknown = [f for f in files if f not in known]
    if unknown:
        raise SpottingError(f"--files: SoccerNet's downloader does not serve {', '.join(unknown)}; "
                            f"known files: {', '.join(sorted(known))}")
    bad = [s for s in splits if s not in (*SPLITS, "challenge")]
    if bad:
        raise SpottingError(f"--split: unknown split {', '.join(bad)}; choose from train, valid, test, challenge")
    directory.mkdir(parents=True, exist_ok=True)
    downloader = SoccerNetDownloader(LocalDirectory=str(directory))
    downloader.password = password
    try:
        downloader.downloadGames(files=list(files), split=list(splits), verbose=False)
    except _network_errors() as e:
        first = str(e).splitlines()[0][:200] if str(e) else ""
        raise SpottingError(f"cannot reach SoccerNet's servers: {type(e).__name__}: {first} "
                            f"(download the files elsewhere and copy them under {directory})") from None
    from SoccerNet.utils import getListGames

    missing = [g for s in splits for g in getListGames(s)
               if not all((directory / g / f).is_file() for f in files if s != "challenge" or f != LABELS_FILE)]
    if missing:
        raise SpottingError(f"{directory}: after the download {len(missing)} games still miss some of "
                            f"{', '.join(files)} (first: {missing[0]})")
    return directory
