"""Split discovery, clip samplers on hand-made timelines, and the downloader's offline error."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from spotting_core.cli import main
from spotting_core.engine import games as data
from spotting_core.engine.games import ClipSampler, GameData, event_clip_starts, find_splits, uniform_starts
from spotting_core.errors import SpottingError

C = 17


def _game(name: str, T: int, events: dict[int, tuple[int, float]], D: int = 4) -> GameData:
    """A one-half game whose feature at frame t is (t, t, ...) so clips can be traced back."""
    x = np.repeat(np.arange(T, dtype=np.float32)[:, None], D, axis=1)
    ev = np.zeros((T, C), dtype=np.float32)
    for t, (c, v) in events.items():
        ev[t, c] = v
    return GameData(name=name, halves=[x], events=[ev], labels=pd.DataFrame())


def test_uniform_starts_cover_every_frame_once():
    for phase in (0, 3, 10):
        starts = uniform_starts(95, 11, phase)
        frames = (starts[:, None] + np.arange(11)[None]).ravel()
        inside = frames[(frames >= 0) & (frames < 95)]
        assert np.array_equal(np.sort(inside), np.arange(95))
    assert list(uniform_starts(30, 10, 0)) == [0, 10, 20]  # the official grid: stride = clip length


def test_uniform_sampler_epochs():
    g = _game("g", 100, {20: (3, 1.0)})
    sampler = ClipSampler([g], clip_frames=10, batch_size=4, mode="uniform", seed=1)
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


def test_balanced_sampler_on_a_hand_made_timeline():
    # events at 20 and 25 (visible) and 80 (unshown); stride-1 clips of 11 frames in a half of 100
    g = _game("g", 100, {20: (3, 1.0), 25: (3, 1.0), 80: (5, -1.0)})
    fg, bg = event_clip_starts(g.events[0], 11)
    assert list(fg) == list(range(10, 26)) + list(range(70, 81))    # every clip holding an event
    assert len(fg) + len(bg) == 90 and not set(fg) & set(bg)
    assert all(not (s <= 20 < s + 11 or s <= 25 < s + 11 or s <= 80 < s + 11) for s in bg)

    sampler = ClipSampler([g], clip_frames=11, batch_size=8, mode="balanced", seed=0)
    n_fg, n_bg = 27, round(27 / C)
    for epoch in (0, 1):
        clips = sampler.epoch_clips(epoch)
        assert len(clips) == n_fg + n_bg == len(np.unique(clips[:, 1]))
        batches = list(sampler.batches(epoch))
        starts = torch.cat([b["x"] for b in batches])[:, 0, 0].numpy().astype(int)
        has_event = torch.cat([b["events"] for b in batches]).abs().sum(dim=(1, 2)).numpy() > 0
        assert sorted(starts[has_event]) == sorted(fg)
        assert len(starts[~has_event]) == n_bg and set(starts[~has_event]) <= set(bg)
    assert len(sampler) == -(-(n_fg + n_bg) // 8)


def test_balanced_sampler_short_half_and_cap():
    g = _game("g", 6, {2: (0, 1.0)})
    fg, bg = event_clip_starts(g.events[0], 11)
    assert list(fg) == [0] and len(bg) == 0
    b = next(ClipSampler([g], clip_frames=11, batch_size=4, mode="balanced").batches(0))
    assert b["x"].shape == (1, 11, 4) and b["x"][0, -1, 0] == 5     # padded with the last frame
    big = _game("h", 400, {t: (1, 1.0) for t in range(20, 400, 40)})
    assert len(ClipSampler([big], clip_frames=11, batch_size=4, mode="balanced", clips_per_epoch=7).epoch_clips(0)) == 7


def test_anchored_sampler_on_a_hand_made_timeline():
    # CALF's chunks: 40 frames, margin 10 -> each event at a uniform position in [11, 30] of its chunk.
    # Pools: class 0 (frame 5, so its chunks clamp to start 0), class 3 (60, and 65 unshown), class 5
    # (150), background (event-free clips: starts 6..20, 66..110, 151..160).
    g = _game("g", 200, {5: (0, 1.0), 60: (3, 1.0), 65: (3, -1.0), 150: (5, 1.0)})
    sampler = ClipSampler([g], clip_frames=40, batch_size=64, mode="anchored", seed=3, clips_per_epoch=4000,
                          anchor_margin=10)
    starts = sampler.epoch_clips(0)[:, 1]
    assert starts.min() >= 0 and starts.max() <= 160
    bg = set(range(6, 21)) | set(range(66, 111)) | set(range(151, 161))
    from_bg = np.isin(starts, list(bg))
    with_150 = (starts <= 150) & (150 < starts + 40)            # only class 5's chunks hold frame 150
    with_60_65 = (starts >= 30) & (starts <= 54)                # class 3: 60 or 65 at 11..30
    for pool in (starts == 0, with_60_65, with_150, from_bg):   # one pool in four each (C + background)
        assert 800 < pool.sum() < 1200                          # 1000 +- 7 standard deviations
    assert np.all((starts == 0) | with_60_65 | with_150 | from_bg)
    assert set(150 - starts[with_150]) == set(range(11, 31))    # every position, none in the borders
    x = torch.cat([b["x"] for b in sampler.batches(0)])[:, :, 0].numpy().astype(int)
    assert np.array_equal(x[:, 0], starts) and np.all(np.diff(x, axis=1) == 1)
    assert np.array_equal(sampler.epoch_clips(0), sampler.epoch_clips(0))
    assert not np.array_equal(sampler.epoch_clips(1), sampler.epoch_clips(0))
    assert len(ClipSampler([g], clip_frames=40, batch_size=2, mode="anchored").epoch_clips(0)) == 4  # = anchors
    with pytest.raises(ValueError):
        ClipSampler([g], clip_frames=40, batch_size=2, mode="anchored", anchor_margin=20)


def _touch_game(root, rel):
    d = root / rel
    d.mkdir(parents=True)
    (d / "Labels-v2.json").write_text(json.dumps({"annotations": []}))


def test_find_splits_folders_and_official_lists(tmp_path):
    from SoccerNet.utils import getListGames

    _touch_game(tmp_path / "a", "train/l/s/g1")
    _touch_game(tmp_path / "a", "valid/l/s/g2")
    assert find_splits(tmp_path / "a") == {"train": ["train/l/s/g1"], "valid": ["valid/l/s/g2"], "test": []}

    train, test = getListGames("train")[0], getListGames("test")[3]
    for rel in (train, test, "my-league/2026/not a soccernet game"):
        _touch_game(tmp_path / "b", rel)
    assert find_splits(tmp_path / "b") == {"train": [train], "valid": [], "test": [test]}

    _touch_game(tmp_path / "c", "x/y/z")
    with pytest.raises(SpottingError, match="SoccerNet's train/valid/test lists"):
        find_splits(tmp_path / "c")
    with pytest.raises(SpottingError, match="no such folder"):
        find_splits(tmp_path / "missing")


def _no_network(*args, **kwargs):
    import httpx2

    raise httpx2.ConnectError("[Errno -3] Temporary failure in name resolution")


def test_download_without_network_is_one_clear_error(tmp_path, monkeypatch, capsys):
    from SoccerNet.Downloader import SoccerNetDownloader

    calls = []
    monkeypatch.setattr(SoccerNetDownloader, "downloadGames",
                        lambda self, **kw: (calls.append(kw), _no_network())[1])
    with pytest.raises(SpottingError, match="cannot reach SoccerNet's servers: ConnectError"):
        data.download(tmp_path / "sn", splits=["valid"])
    assert calls[0]["split"] == ["valid"] and "Labels-v2.json" in calls[0]["files"]

    monkeypatch.setattr(SoccerNetDownloader, "downloadGames", lambda self, **kw: _raise(OSError("Network is unreachable")))
    assert main(["download", str(tmp_path / "sn"), "--split", "test"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot reach SoccerNet's servers: OSError: Network is unreachable")


def _raise(e):
    raise e


def test_download_refuses_unknown_files_and_splits(tmp_path, monkeypatch):
    from SoccerNet.Downloader import SoccerNetDownloader

    monkeypatch.setattr(SoccerNetDownloader, "downloadGames", lambda self, **kw: pytest.fail("network used"))
    with pytest.raises(SpottingError, match="does not serve 1_nothing.npy"):
        data.download(tmp_path, files=["1_nothing.npy"])
    with pytest.raises(SpottingError, match="unknown split everything"):
        data.download(tmp_path, splits=["everything"])
