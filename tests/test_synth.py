"""The synthetic benchmark: layout, determinism, class signatures, real timelines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spotting_core.engine.games import find_splits, load_game
from spotting_core.errors import SpottingError
from spotting_core.io.feature_files import feature_names
from spotting_core.io.soccernet import CLASSES_V2, list_games
from spotting_core.io.tables import read_labels
from spotting_core.synth.benchmark import (
    MOTIFS,
    SIGNATURES,
    SynthParams,
    feature_name,
    generate,
    motif_directions,
)


@pytest.fixture(scope="module")
def long_tree(tmp_path_factory):
    """Built-in timelines, 20-minute halves: enough events of the frequent classes to measure."""
    return generate(tmp_path_factory.mktemp("synth") / "tree", games=3, seed=7, half_minutes=20.0)


def test_layout_and_splits(long_tree):
    info = json.loads((long_tree / "synth.json").read_text())
    assert info["feature_name"] == feature_name(512) == "synth512"
    splits = find_splits(long_tree)
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [1, 1, 1]
    for split, games in splits.items():
        assert [f"{split}/{g}" for g in info["splits"][split]] == games
        for g in games:
            game_dir = long_tree / g
            assert feature_names(game_dir) == ["synth512"]
            x = np.load(game_dir / "1_synth512.npy")
            assert x.shape == (20 * 60 * 2, 512) and x.dtype == np.float32
            labels = read_labels(game_dir / "Labels-v2.json")
            assert set(labels["half"]) == {1, 2} and labels["frame"].max() < 2400


def test_deterministic_per_seed(tmp_path):
    a = generate(tmp_path / "a", games=3, seed=3, half_minutes=2.0, dim=64)
    b = generate(tmp_path / "b", games=3, seed=3, half_minutes=2.0, dim=64)
    c = generate(tmp_path / "c", games=3, seed=4, half_minutes=2.0, dim=64)
    games = list_games(a, "Labels-v2.json")
    assert games == list_games(b, "Labels-v2.json") and len(games) == 3
    for g in games:
        for f in ("1_synth64.npy", "2_synth64.npy", "Labels-v2.json"):
            assert (a / g / f).read_bytes() == (b / g / f).read_bytes()
    other = list_games(c, "Labels-v2.json")[0]
    assert not np.array_equal(np.load(a / games[0] / "1_synth64.npy"), np.load(c / other / "1_synth64.npy"))


def _context(proj: np.ndarray, frames: np.ndarray, lo: int, hi: int) -> list[float]:
    """Mean of a projection (T,) over [f + lo, f + hi) for each event frame f."""
    return [proj[max(f + lo, 0):min(f + hi, len(proj))].mean() for f in frames if min(f + hi, len(proj)) > max(f + lo, 0)]


def test_every_class_has_a_signature_before_and_after(long_tree):
    motifs = motif_directions(seed=7)
    unit = np.stack([motifs[m] / np.linalg.norm(motifs[m]) for m in MOTIFS], axis=1)  # (D, K)
    games = [load_game(long_tree, g, "synth512") for s in find_splits(long_tree).values() for g in s]
    stats: dict[str, dict[str, list]] = {k: {c: [] for c in CLASSES_V2}
                                         for k in ("before", "after", "before_unshown", "after_unshown")}
    background = []
    for g in games:
        for half, x in enumerate(g.halves, start=1):
            proj = x.astype(np.float64) @ unit                     # (T, K) every motif, every frame
            background.append(proj[::7].ravel())
            lab = g.labels[g.labels["half"] == half]
            for c in CLASSES_V2:
                sel = lab[lab["label"] == c]
                pre, post = (proj[:, MOTIFS.index(m)] for m in SIGNATURES[c])
                for kind, frames in (("", sel[sel["visibility"] != "not shown"]["frame"].to_numpy()),
                                     ("_unshown", sel[sel["visibility"] == "not shown"]["frame"].to_numpy())):
                    stats["before" + kind][c] += _context(pre, frames, -8, -1)
                    stats["after" + kind][c] += _context(post, frames, 1, 8)
    noise = np.concatenate(background)
    level, spread = noise.mean(), noise.std()
    before, after = stats["before"], stats["after"]
    measured = [c for c in CLASSES_V2 if len(before[c]) >= 5]
    assert len(measured) >= 8  # the frequent classes
    for c in measured:
        # the motif of the class stands out before and after its timestamp
        assert np.mean(before[c]) > level + 1.0 * spread, c
        assert np.mean(after[c]) > level + 1.0 * spread, c
    for c in [c for c in CLASSES_V2 if len(stats["after_unshown"][c]) >= 5]:
        # unshown: only the after-context, and weaker than a visible event's
        assert np.mean(stats["after_unshown"][c]) > level + 0.3 * spread, c
        assert np.mean(stats["after_unshown"][c]) < np.mean(after[c]), c
        assert np.mean(stats["before_unshown"][c]) < np.mean(before[c]) - spread, c


def test_shared_and_swapped_contexts():
    # Goal and the shots look alike before and differ after; stop / restart pairs swap the order
    assert SIGNATURES["Goal"][0] == SIGNATURES["Shots on target"][0] == SIGNATURES["Shots off target"][0]
    assert len({SIGNATURES[c][1] for c in ("Goal", "Shots on target", "Shots off target")}) == 3
    for a, b in (("Foul", "Penalty"), ("Corner", "Clearance"), ("Ball out of play", "Throw-in"),
                 ("Goal", "Kick-off"), ("Offside", "Indirect free-kick")):
        assert SIGNATURES[a] == SIGNATURES[b][::-1]
    assert len(set(SIGNATURES.values())) == len(SIGNATURES)     # the ordered pair identifies the class
    assert set(SIGNATURES) == set(CLASSES_V2)
    assert {m for pair in SIGNATURES.values() for m in pair} <= set(MOTIFS)


def test_real_timelines_are_kept(shared_data, tmp_path):
    src = shared_data / "soccernet-v2" / "labels" / "valid"
    root = generate(tmp_path / "t", games=3, seed=0, timelines=src, half_minutes=10.0, dim=32,
                    params=SynthParams(distractors_per_min=0.0))
    for games in find_splits(root).values():
        for g in games:
            rel = g.split("/", 1)[1]
            ours = read_labels(root / g / "Labels-v2.json")
            real = read_labels(src / rel / "Labels-v2.json")
            real = real[real["frame"] < 1200]
            assert len(ours) == len(real) > 10
            cols = ["half", "position_ms", "label", "visibility"]
            assert (ours[cols].sort_values(cols).to_numpy() == real[cols].sort_values(cols).to_numpy()).all()


def test_bad_arguments(tmp_path):
    with pytest.raises(SpottingError, match="at least 3 games"):
        generate(tmp_path / "x", games=2, seed=0)
    with pytest.raises(SpottingError, match="no Labels-v2.json"):
        generate(tmp_path / "y", games=3, seed=0, timelines=tmp_path)


def test_cli_synth(tmp_path, capsys):
    from spotting_core.cli import main

    assert main(["synth", str(tmp_path / "s"), "--games", "3", "--seed", "2", "--half-minutes", "1", "--dim", "16"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "s")
    assert json.loads((tmp_path / "s" / "synth.json").read_text())["feature_name"] == "synth16"
    assert main(["synth", str(tmp_path / "t"), "--games", "2"]) == 2
    assert capsys.readouterr().err.strip() == "error: --games 2: need at least 3 games (one each for train, valid and test)"


def test_only_writes_those_games_exactly_as_the_whole_tree(tmp_path):
    """The demo build writes its one game alone (`only`): same labels and features as in the whole tree."""
    whole = generate(tmp_path / "whole", games=5, seed=3, half_minutes=0.5, dim=16)
    one = generate(tmp_path / "one", games=5, seed=3, half_minutes=0.5, dim=16, only=[4])
    info = json.loads((one / "synth.json").read_text())
    assert info["splits"] == {"train": [], "valid": [], "test": [json.loads((whole / "synth.json").read_text())
                                                                 ["splits"]["test"][0]]}
    game = info["splits"]["test"][0]
    for name in ("Labels-v2.json", "1_synth16.npy", "2_synth16.npy"):
        assert (one / "test" / game / name).read_bytes() == (whole / "test" / game / name).read_bytes()
    assert len(list_games(one, "Labels-v2.json")) == 1
