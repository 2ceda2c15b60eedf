"""Training batches: clips gathered from each half's features, in the order a model's sampler chooses.

    sampler = ClipSampler(games, clip_frames=30, batch_size=256, clips=model.epoch_clips, seed=0)
    for batch in sampler.batches(epoch):       {"x": (B, T, D), "events": (B, T, C)} (+ entities)
        ...

Which clips an epoch holds is the model's business (`SpottingModel.epoch_clips`, models/base.py:
uniform by default, CALF's anchored chunks, RMS-Net's balanced clips); this module only gathers them.
Features stay in their per-half arrays, which may be read-only memory maps (`np.load(mmap_mode="r")`):
a batch reads just its clips' frames, and hands their pages back after (`release_pages`), so memory
does not grow with the number of games. Events stay in the games' own (compact int8) arrays and
become float32 in the batch. `batches(epoch)` is deterministic per (seed, epoch).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from spotting_core.engine.games import GameData
from spotting_core.errors import SpottingError
from spotting_core.io.feature_files import release_pages
from spotting_core.models.base import ClipIndex, uniform_clips

Clips = Callable[[ClipIndex, np.random.Generator, int | None], np.ndarray]


class ClipSampler:
    """Batches of clips from a list of games; `clips(index, rng, clips_per_epoch)` picks each epoch's clips."""

    def __init__(self, games: Sequence[GameData], *, clip_frames: int, batch_size: int, clips: Clips | None = None,
                 seed: int = 0, clips_per_epoch: int | None = None, num_classes: int | None = None):
        if not games:
            raise SpottingError("no games to sample clips from")
        self.seed = int(seed)
        self.clip_frames, self.batch_size = int(clip_frames), int(batch_size)
        self.clips_per_epoch = clips_per_epoch
        self.clips = clips or uniform_clips
        self.halves = [h for g in games for h in g.halves]                      # (T, D) or (T, H, W, 3) each
        self.events = [np.asarray(e) for g in games for e in g.events]           # (T, C) each, any dtype
        self.lengths = np.array([len(h) for h in self.halves], dtype=np.int64)
        self.num_classes = int(num_classes or self.events[0].shape[1])
        self.index = ClipIndex(lengths=self.lengths, events=self.events, clip_frames=self.clip_frames,
                               num_classes=self.num_classes)
        self.entities = None
        with_entities = [g.entities is not None for g in games]
        if any(with_entities):
            if not all(with_entities):
                missing = next(g.name for g, w in zip(games, with_entities) if not w)
                raise SpottingError(f"{missing}: no <half>_entities.npy, but other games have them; "
                                    "give every game entity features or none")
            self.entities = [e for g in games for e in g.entities]             # per half (ent, mask)
            shapes = {e.shape[1:] for e, _ in self.entities}
            if len(shapes) > 1:
                raise SpottingError(f"entity features differ in shape (N_max, d) across games: {sorted(shapes)}")

    def epoch_clips(self, epoch: int) -> np.ndarray:
        """(N, 2) rows of (half index, start frame), in training order, for this epoch."""
        rng = np.random.default_rng([self.seed, int(epoch)])
        return self.clips(self.index, rng, self.clips_per_epoch)

    def __len__(self) -> int:
        """Batches per epoch."""
        return -(-len(self.epoch_clips(0)) // self.batch_size)

    def gather(self, clips: np.ndarray) -> dict[str, torch.Tensor]:
        """(B, 2) (half, start) rows -> {"x": (B, T, D), "events": (B, T, C)}; edges repeat the edge frame."""
        h, s = clips[:, 0], clips[:, 1]
        frames = np.clip(s[:, None] + np.arange(self.clip_frames)[None], 0, self.lengths[h][:, None] - 1)  # (B, T)
        first = self.halves[int(h[0])]
        x = np.empty((len(clips), self.clip_frames, *first.shape[1:]), dtype=np.uint8 if first.dtype == np.uint8
                     else np.float32)
        events = np.empty((len(clips), self.clip_frames, self.num_classes), dtype=np.float32)
        ents = None
        if self.entities is not None:
            e0, m0 = self.entities[int(h[0])]
            ents = (np.empty((len(clips), self.clip_frames, *e0.shape[1:]), dtype=e0.dtype),
                    np.empty((len(clips), self.clip_frames, *m0.shape[1:]), dtype=m0.dtype))
        for half in np.unique(h):                                                # one read per half of the batch
            rows = np.flatnonzero(h == half)
            idx = frames[rows]                                                   # (b, T)
            x[rows] = self.halves[half][idx.ravel()].reshape(len(rows), self.clip_frames, *first.shape[1:])
            events[rows] = self.events[half][idx]
            release_pages(self.halves[half])                                     # memory maps: pages back
            if ents is not None:
                ent, mask = self.entities[half]
                ents[0][rows], ents[1][rows] = ent[idx], mask[idx]
        batch = {"x": torch.from_numpy(x), "events": torch.from_numpy(events)}
        if ents is not None:
            batch["entities"] = torch.from_numpy(ents[0])                        # (B, T, N, d)
            batch["entity_mask"] = torch.from_numpy(ents[1])                     # (B, T, N)
        return batch

    def batches(self, epoch: int) -> Iterator[dict[str, torch.Tensor]]:
        clips = self.epoch_clips(epoch)
        for b in range(0, len(clips), self.batch_size):
            yield self.gather(clips[b:b + self.batch_size])
