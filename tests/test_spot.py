"""`train` -> `spot` -> `evaluate` end to end on generated games, and `spot`'s refusals."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from spotting_core.cli import main
from spotting_core.engine.spot import spot_path
from spotting_core.features import extract as features_module
from spotting_core.io.tables import read_results
from spotting_core.models import build_model, save_checkpoint
from spotting_core.synth.benchmark import generate


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny synthetic tree and a model trained on it through the CLI."""
    root = tmp_path_factory.mktemp("spot")
    data = generate(root / "data", games=3, seed=1, half_minutes=3.0)
    ckpt = root / "avg.pt"
    assert main(["train", "--model", "avgpool++", "--data", str(data), "--features", "synth512",
                 "--out", str(ckpt), "--epochs", "1", "--batch-size", "16", "--set", "window_s=10"]) == 0
    return data, ckpt


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_train_spot_evaluate(trained, capsys):
    data, ckpt = trained
    game = next((data / "test").rglob("Labels-v2.json")).parent
    capsys.readouterr()
    assert main(["spot", str(game), "--checkpoint", str(ckpt)]) == 0
    assert capsys.readouterr().out.strip() == str(game)           # default: the game folder itself
    for half in (1, 2):
        scores = np.load(game / f"{half}_scores.npy")
        assert scores.shape == (360, 17) and (scores >= 0).all() and (scores <= 1).all()
    events = read_results(game / "results_spotting.json")
    assert set(events["half"]) == {1, 2} and len(events) > 0

    assert main(["evaluate", str(data / "test"), str(data / "test"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0.0 <= result["a_mAP"] <= 1.0 and len(result["a_mAP_per_class"]) == 17


def test_spot_one_half_file(trained, tmp_path):
    data, ckpt = trained
    src = next((data / "valid").rglob("2_synth512.npy"))
    npy = tmp_path / "2_synth512.npy"
    shutil.copy(src, npy)
    out = spot_path(npy, checkpoint=ckpt, window_s=20.0, method="linear")
    assert out == tmp_path / "2_synth512_spotting"
    events = read_results(out / "results_spotting.json")
    assert set(events["half"]) == {2} and all(gt.startswith("2 - ") for gt in events["game_time"])
    assert (out / "2_scores.npy").is_file() and not (out / "1_scores.npy").exists()


def test_wrong_feature_dimension_is_one_line(trained, tmp_path, capsys):
    _, ckpt = trained
    bad = tmp_path / "1_other.npy"
    np.save(bad, np.random.default_rng(0).standard_normal((100, 48)).astype(np.float32))
    capsys.readouterr()
    assert main(["spot", str(bad), "--checkpoint", str(ckpt)]) == 2
    line = _one_error_line(capsys)
    assert line == f"error: {bad}: checkpoint was trained on synth512 (dim 512), these features are other (dim 48)"

    game = tmp_path / "game"
    game.mkdir()
    for half in (1, 2):
        np.save(game / f"{half}_ResNET_TF2_PCA512.npy", np.zeros((50, 512), dtype=np.float32))
    assert main(["spot", str(game), "--checkpoint", str(ckpt)]) == 2
    assert "checkpoint was trained on synth512 (dim 512), this folder has no 1_synth512.npy" in _one_error_line(capsys)
    assert main(["spot", str(tmp_path / "nothing"), "--checkpoint", str(ckpt)]) == 2
    assert "no such file or folder" in _one_error_line(capsys)
    assert main(["spot", str(bad), "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "checkpoint not found" in _one_error_line(capsys)


def test_video_goes_through_the_checkpoints_backbone(tmp_path, monkeypatch, capsys):
    video = tmp_path / "match.mp4"
    video.write_bytes(b"not decoded: extract_cached is replaced below")
    model = build_model("avgpool++", input_dim=1280, window_s=4.0)
    ckpt = save_checkpoint(tmp_path / "m.pt", model, classes=[f"c{i}" for i in range(17)],
                           feature_name="mobilenetv2-offline")
    calls = []

    def fake_extract(path, **kw):
        calls.append((path, kw))
        return [np.ones((30, 1280), np.float32), np.zeros((20, 1280), np.float32)]

    monkeypatch.setattr(features_module, "extract_cached", fake_extract)
    out = spot_path(video, checkpoint=ckpt, half_offset_s=600.0)
    assert out == tmp_path / "match_spotting"
    assert calls[0][0] == video and calls[0][1]["backbone"] == "mobilenetv2-offline"
    assert calls[0][1]["fps"] == 2.0 and calls[0][1]["half_offset_s"] == 600.0
    assert np.load(out / "1_scores.npy").shape == (30, 17) and np.load(out / "2_scores.npy").shape == (20, 17)
    assert set(read_results(out / "results_spotting.json", classes=[f"c{i}" for i in range(17)])["half"]) <= {1, 2}

    synth = save_checkpoint(tmp_path / "s.pt", build_model("avgpool++", window_s=4.0),
                            classes=[f"c{i}" for i in range(17)], feature_name="synth512")
    assert main(["spot", str(video), "--checkpoint", str(synth)]) == 2
    assert "trained on synth512 features, which no video backbone here computes" in _one_error_line(capsys)
    assert main(["spot", str(video), "--checkpoint", str(ckpt), "--backbone", "resnet152"]) == 2
    assert "--backbone asks for resnet152" in _one_error_line(capsys)
    assert len(calls) == 1
