"""Split discovery of SoccerNet trees."""

from __future__ import annotations

import json

import pytest

from spotting_core.engine.games import find_splits
from spotting_core.errors import SpottingError


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
