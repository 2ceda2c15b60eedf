"""The clip sampler: uniform clips (the default sampler) gathered from per-half features, in RAM or memory-mapped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
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


def test_memory_mapped_games_give_exactly_the_in_ram_batches(tmp_path):
    from spotting_core.engine.games import find_splits, load_games
    from spotting_core.models import build_model
    from spotting_core.synth.benchmark import generate

    tree = generate(tmp_path / "tree", games=5, seed=3, half_minutes=3, dim=16)
    names = find_splits(tree)["train"]
    ram, mapped = (load_games(tree, names, "synth16", mmap=m) for m in (False, True))
    assert all(isinstance(h, np.memmap) and not h.flags.writeable for g in mapped for h in g.halves)
    for model in ("netvlad++", "calf"):                 # the uniform sampler and CALF's anchored one
        m = build_model(model, input_dim=16, num_classes=17, fps=2)
        a, b = (ClipSampler(games, clip_frames=m.clip_frames, batch_size=32, clips=m.epoch_clips, seed=7)
                for games in (ram, mapped))
        for epoch in (1, 2):
            pairs = list(zip(a.batches(epoch), b.batches(epoch), strict=True))
            assert pairs and all(torch.equal(x["x"], y["x"]) and torch.equal(x["events"], y["events"])
                                 for x, y in pairs)


def test_release_pages_hands_a_memory_map_back(tmp_path):
    from spotting_core.io.feature_files import load_half_features, release_pages

    status = Path("/proc/self/status")
    if not status.is_file():
        pytest.skip("needs Linux /proc for resident memory")

    def rss_file_mb() -> float:
        line = next(ln for ln in status.read_text().splitlines() if ln.startswith("RssFile:"))
        return int(line.split()[1]) / 1024

    np.save(tmp_path / "1_big.npy", np.ones((16384, 1024), dtype=np.float32))   # 64 MiB
    arr = load_half_features(tmp_path / "1_big.npy", mmap=True)                # reads it all (finite check)
    before = rss_file_mb()
    assert float(arr[::64].sum()) == 256 * 1024                                # touch every page again
    touched = rss_file_mb()
    release_pages(arr)
    assert touched - before > 30 and touched - rss_file_mb() > 30
