"""Models that compose, through the CLI: a feature head trained end to end on frames with a frame
backbone, and features of several extractors concatenated per frame (`--features A+B`)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spotting_core.cli import main
from spotting_core.io.feature_files import load_features
from spotting_core.io.tables import read_results
from spotting_core.models import load_checkpoint
from spotting_core.synth.benchmark import generate
from spotting_core.synth.toys import make_toy_dataset

H = 32  # frame height of the toy videos


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_rms_net_on_a_frame_backbone_trains_and_spots_a_generated_video(tmp_path, capsys):
    data = make_toy_dataset(tmp_path / "data", games={"train": 1, "valid": 1}, half_s=12.0, size=(H, H), every_s=3.0)
    ckpt = tmp_path / "rms-frames.pt"
    args = ["train", "--model", "rms-net", "--data", str(data), "--out", str(ckpt), "--epochs", "1",
            "--batch-size", "8", "--set", "backbone=regnety_400mf", "--set", f"input_dim={H}",
            "--set", "backbone_weights=random", "--set", "window_s=5"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["epochs"] == 1 and summary["checkpoint"] == str(ckpt)
    model, meta = load_checkpoint(ckpt)
    assert meta["model"] == "rms-net" and meta["config"]["backbone"] == "regnety_400mf"
    assert meta["features"] == {"name": f"frames{H}p", "dim": H} and model.input_kind == "frames"
    assert meta["config"]["backbone_weights"] == "random"   # rebuilding never fetches: the weights are in it
    assert model.head.input_dim == 440                        # the head reads RegNet-Y 400MF's 440 channels

    video = data / "valid" / "game0" / "1_224p.mkv"
    assert main(["spot", str(video), "--checkpoint", str(ckpt), "--out", str(tmp_path / "out")]) == 0
    scores = np.load(tmp_path / "out" / "1_scores.npy")
    events = read_results(tmp_path / "out" / "results_spotting.json")
    assert scores.shape == (24, 17) and np.isfinite(scores).all() and set(events["half"]) <= {1}
    capsys.readouterr()
    assert main(["spot", str(video), "--checkpoint", str(ckpt), "--backbone", "resnet152"]) == 2
    assert "reads video frames itself" in _one_line(capsys)


@pytest.fixture(scope="module")
def two_extractors(tmp_path_factory):
    """A tiny synthetic tree whose games also hold a second, 16-d feature set `proj` (a projection of
    the first); half 1 of one game is one frame shorter in `proj`."""
    root = generate(tmp_path_factory.mktemp("concat") / "data", games=3, seed=0, half_minutes=2.0, dim=64)
    rng = np.random.default_rng(0)
    proj = rng.standard_normal((64, 16)).astype(np.float32) / 8
    games = sorted(p.parent for p in root.rglob("Labels-v2.json"))
    for i, game in enumerate(games):
        for half in (1, 2):
            x = np.load(game / f"{half}_synth64.npy") @ proj
            np.save(game / f"{half}_proj.npy", x[:-1] if (i == 0 and half == 1) else x)
    return root, games


def test_concatenated_features_train_and_spot(two_extractors, tmp_path, capsys):
    root, games = two_extractors
    a, b = load_features(games[1], "synth64+proj")
    assert a.shape[1] == 64 + 16 and np.array_equal(a[:, :64], np.load(games[1] / "1_synth64.npy"))
    capsys.readouterr()
    first, _ = load_features(games[0], "synth64+proj")          # half 1 cropped to the shorter part
    assert first.shape[0] == np.load(games[0] / "1_proj.npy").shape[0]
    assert "cropped to the shortest" in capsys.readouterr().err

    ckpt = tmp_path / "concat.pt"
    assert main(["train", "--model", "avgpool++", "--data", str(root), "--features", "synth64+proj",
                 "--out", str(ckpt), "--epochs", "1"]) == 0
    _, meta = load_checkpoint(ckpt)
    assert meta["features"] == {"name": "synth64+proj", "dim": 80}
    out = tmp_path / "spot"
    assert main(["spot", str(games[2]), "--checkpoint", str(ckpt), "--out", str(out)]) == 0
    assert np.load(out / "1_scores.npy").shape == (240, 17) and (out / "results_spotting.json").is_file()

    lone = tmp_path / "lone"
    lone.mkdir()
    for half in (1, 2):
        np.save(lone / f"{half}_synth64.npy", np.zeros((50, 64), np.float32))
    capsys.readouterr()
    assert main(["spot", str(lone), "--checkpoint", str(ckpt)]) == 2
    assert _one_line(capsys) == (f"error: {lone}: checkpoint was trained on synth64+proj (dim 80), this folder has "
                                 "no 1_synth64.npy / 2_synth64.npy + 1_proj.npy / 2_proj.npy (features here: synth64)")
    assert main(["train", "--model", "avgpool++", "--data", str(root), "--features", "synth64+nothing",
                 "--out", str(tmp_path / "x.pt"), "--epochs", "1"]) == 2
    assert "missing half 1: no 1_nothing.npy" in _one_line(capsys)
