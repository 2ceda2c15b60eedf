"""The clip sampler: uniform clips (the default sampler) gathered from per-half features, in RAM or memory-mapped."""

from __future__ import annotations

import numpy as np
import torch
from games import one_half_game

from spotting_core.engine.sampler import ClipSampler
from spotting_core.models.base import uniform_starts


def test_uniform_starts_cover_every_frame_once():
    for phase in (0, 3, 10):
        starts = uniform_starts(95, 11, phase)
        frames = (starts[:, None] + np.arange(11)[None]).ravel()
        inside = frames[(frames >= 0) & (frames < 95)]
        assert np.array_equal(np.sort(inside), np.arange(95))
    assert list(uniform_starts(30, 10, 0)) == [0, 10, 20]  # the official grid: stride = clip length


def test_uniform_sampler_epochs():
    g = one_half_game("g", 100, {20: (3, 1.0)})
    sampler = ClipSampler([g], clip_frames=10, batch_size=4, seed=1)
    seen = []
    for epoch in (0, 1, 2):
        batches = list(sampler.batches(epoch))
        x = torch.cat([b["x"] for b in batches])
        assert x.shape[1:] == (10, 4)
        frames = x[:, :, 0].numpy().astype(int)
        assert np.array_equal(np.unique(frames), np.arange(100))     # whole half, every epoch
        assert np.all(np.diff(frames, axis=1) >= 0)                  # consecutive frames, edges repeated
        seen.append(frames[:, 0].min())
        ev = torch.cat([b["events"] for b in batches]).numpy()
        assert ev.sum() == 1.0 and ev[frames == 20].sum() == 1.0     # events travel with their frames
    assert [b["x"].tolist() for b in sampler.batches(5)] == [b["x"].tolist() for b in sampler.batches(5)]
