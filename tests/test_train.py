"""The training loop on a tiny synthetic set, options from the command line, defaults, evaluation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from spotting_core.engine.metrics import average_map
from spotting_core.engine.train import TrainConfig, detections_from_events, fit, resolve
from spotting_core.errors import SpottingError
from spotting_core.models import MODELS, convert_options, load_checkpoint
from spotting_core.models.base import TRAINING_DEFAULTS as DEFAULTS
from spotting_core.synth.benchmark import generate


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("tiny") / "data", games=3, seed=0, half_minutes=3.0)


def test_fit_writes_a_checkpoint_that_rebuilds_the_model(tiny, tmp_path):
    out = tmp_path / "nv.pt"
    calls = []
    result = fit(TrainConfig(model="netvlad++", data=str(tiny), features="synth512", out=str(out), epochs=2,
                             batch_size=8, seed=0, model_options={"vocab_size": "16"}),
                 progress=lambda f, text: calls.append(f))
    assert [r["epoch"] for r in result["history"]] == [1, 2]
    for row in result["history"]:
        assert np.isfinite(row["train_loss"]) and 0.0 <= row["valid_a_mAP_loose"] <= 1.0
    assert result["best_epoch"] in (1, 2) and set(result["test"]) == {"loose", "tight"}
    assert calls[-1] == 1.0 and all(0.0 <= f <= 1.0 for f in calls)

    model, meta = load_checkpoint(out)
    assert meta["model"] == "netvlad++" and meta["config"]["vocab_size"] == 16
    assert meta["features"] == {"name": "synth512", "dim": 512} and meta["fps"] == 2.0
    assert meta["extra"]["epoch"] == result["best_epoch"]
    assert meta["extra"]["valid_a_mAP_loose"] == pytest.approx(result["best_valid_a_mAP_loose"])
    assert len(meta["classes"]) == 17 and not model.training
    # the operating points fitted on the validation games at the best epoch (F1 at 5 s)
    thr = meta["extra"]["thresholds"]
    assert thr["tolerance_s"] == 5.0 and set(thr["classes"]) == set(meta["classes"])
    assert all(0.0 <= v <= 1.0 + 1e-9 for v in thr["classes"].values()) and thr["fitted_classes"]
    assert len(thr["rescorer"]["folds"]) == 2                 # the context rescorer they hold for (spot applies it)
    assert thr["rescorer"]["curves"]["fps"] == 2.0            # it reads the valid games' per-frame scores too



def test_same_seed_same_training(tiny, tmp_path):
    runs = [fit(TrainConfig(model="avgpool++", data=str(tiny), features="synth512", out=str(tmp_path / f"{i}.pt"),
                            epochs=2, batch_size=8, seed=3, evaluate_test=False)) for i in range(2)]
    assert [r["train_loss"] for r in runs[0]["history"]] == [r["train_loss"] for r in runs[1]["history"]]
    assert "test" not in runs[0]


def test_fit_refuses_bad_input(tiny, tmp_path):
    base = dict(model="avgpool++", data=str(tiny), features="synth512", out=str(tmp_path / "x.pt"), epochs=1)
    with pytest.raises(SpottingError, match="no option|no such model option"):
        fit(TrainConfig(**base, model_options={"not_an_option": "1"}))
    with pytest.raises(SpottingError, match="missing half 1|feature file not found"):
        fit(TrainConfig(**{**base, "features": "ResNET_TF2_PCA512"}))
    with pytest.raises(SpottingError, match="the data has input_dim 512"):
        fit(TrainConfig(**base, model_options={"input_dim": "2048"}))
    with pytest.raises(SpottingError, match="must be at least 1"):
        fit(TrainConfig(**{**base, "epochs": 0}))
    with pytest.raises(KeyError, match="registered models"):
        fit(TrainConfig(**{**base, "model": "nope"}))


def test_convert_options_follows_the_config_types():
    @dataclasses.dataclass
    class Config:
        input_dim: int = 512
        lr: float = 1e-3
        causal: bool = False
        channels: tuple[int, ...] = (256, 128)
        name: str = "x"
        gamma: float | None = None

    got = convert_options(Config, {"input_dim": "2048", "lr": "3e-3", "causal": "true", "channels": "64,32",
                                   "name": "y", "gamma": "none", "input-dim": "4"})
    assert got == {"input_dim": 4, "lr": 3e-3, "causal": True, "channels": (64, 32), "name": "y", "gamma": None}
    assert convert_options(Config, {"gamma": "2.5"}) == {"gamma": 2.5}
    assert convert_options(Config, {"lr": 0.5}) == {"lr": 0.5}  # values already typed pass through
    for bad in ({"input_dim": "2.5"}, {"causal": "maybe"}, {"lr": "fast"}, {"depth": "3"}):
        with pytest.raises(SpottingError):
            convert_options(Config, bad)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_training_defaults_come_from_the_model_config(name, tmp_path):
    cfg = resolve(TrainConfig(model=name, data=str(tmp_path)))
    paper = MODELS[name].Config()
    for key in ("lr", "batch_size", "epochs", "patience"):
        assert getattr(cfg, key) == getattr(paper, key, DEFAULTS[key])
    assert resolve(TrainConfig(model=name, data=str(tmp_path), lr=0.5)).lr == 0.5


def test_detections_from_events_feed_the_metric():
    events = pd.DataFrame({"half": [1, 1, 2], "frame": [3, 40, 5], "class_id": [2, 0, 16], "confidence": [0.9, 0.2, 0.7]})
    det = detections_from_events(events, [10, 8], 17)
    assert det[0].shape == (10, 17) and det[1].shape == (8, 17)
    assert det[0][3, 2] == 0.9 and det[0][9, 0] == 0.2 and det[1][5, 16] == 0.7   # past the end: last frame
    assert (det[0] == -1).sum() == 10 * 17 - 2
    targets = [np.zeros((10, 17)), np.zeros((8, 17))]
    targets[0][3, 2] = 1
    targets[1][5, 16] = 1
    r = average_map(targets, det, metric="tight")
    assert r["a_mAP_per_class"][2] == pytest.approx(1.0) and r["a_mAP_per_class"][16] == pytest.approx(1.0)


def test_cpu_device_and_bad_device():
    from spotting_core.runtime import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type in ("cpu", "cuda")
    with pytest.raises(SpottingError, match="not a device"):
        resolve_device("gpu-please")
    if not torch.cuda.is_available():
        with pytest.raises(SpottingError, match="CUDA is not available"):
            resolve_device("cuda")


def test_cli_train_bad_options_are_one_line(tiny, tmp_path, capsys):
    from spotting_core.cli import main

    base = ["train", "--model", "avgpool++", "--data", str(tiny), "--features", "synth512", "--out", str(tmp_path / "m.pt")]
    assert main([*base, "--set", "window_s"]) == 2
    assert capsys.readouterr().err.strip() == "error: --set window_s: expected KEY=VALUE"
    assert main([*base, "--set", "window_s=long"]) == 2
    assert capsys.readouterr().err.strip() == "error: --set window_s=long: expected a number"
    assert main([*base, "--features", "nope"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "m.pt").exists()


def _write_entities(game_dir, n: int = 3, d: int = 8, seed: int = 0) -> None:
    """(T, n, d) entity features + mask per half, T from the game's own features."""
    rng = np.random.default_rng(seed)
    for half in (1, 2):
        T = np.load(game_dir / f"{half}_synth512.npy", mmap_mode="r").shape[0]
        np.save(game_dir / f"{half}_entities.npy", rng.standard_normal((T, n, d)).astype(np.float32))
        np.save(game_dir / f"{half}_entities_mask.npy", rng.random((T, n)) < 0.7)


def test_precomputed_entities_reach_training_and_spotting(tiny, tmp_path, monkeypatch):
    """A model with entity_inputs (UGL) gets each game's <half>_entities.npy in every training batch,
    in validation and in `spot`; a model without them never sees them."""
    import shutil

    from spotting_core.engine.spot import spot_path
    from spotting_core.models.ugl import UGLHead

    data = tmp_path / "data"
    shutil.copytree(tiny, data)
    game_dirs = sorted(p.parent for p in data.rglob("Labels-v2.json"))
    for g in game_dirs:
        _write_entities(g)
    seen = []
    original = UGLHead.forward

    def spy(self, g, entities=None, entity_mask=None):
        seen.append(None if entities is None else (tuple(entities.shape), tuple(entity_mask.shape)))
        return original(self, g, entities, entity_mask)

    monkeypatch.setattr(UGLHead, "forward", spy)
    opts = {"window_s": "5", "entity_dim": "8", "d_model": "16", "heads": "2", "ffn_dim": "16", "gru_hidden": "8"}
    out = tmp_path / "ugl.pt"
    fit(TrainConfig(model="ugl", data=str(data), features="synth512", out=str(out), epochs=1, batch_size=4,
                    seed=0, clips_per_epoch=8, model_options=opts, evaluate_test=False))
    assert seen and all(s is not None for s in seen)
    assert seen[0] == ((4, 10, 3, 8), (4, 10, 3))           # (B, T, N, d) and (B, T, N) in training
    seen.clear()
    spot_path(game_dirs[0], checkpoint=out, out_dir=tmp_path / "spot")
    assert seen and all(s is not None and s[0][2:] == (3, 8) for s in seen)

    # every game of a sampler or none: a game without entity files among games with them is an error
    from spotting_core.engine.games import attach_entities, load_games
    from spotting_core.engine.sampler import ClipSampler

    names = [str(g.relative_to(data)) for g in game_dirs]
    for half in (1, 2):
        (game_dirs[0] / f"{half}_entities.npy").unlink()
    games = load_games(data, names, "synth512")
    attach_entities(data, games)
    assert games[0].entities is None and games[1].entities is not None
    with pytest.raises(SpottingError, match="no <half>_entities.npy"):
        ClipSampler(games, clip_frames=10, batch_size=4)


def test_validation_one_game_at_a_time_scores_as_the_dense_arrays(tiny):
    """evaluate_games keeps only each game's events (memory-mapped games read one at a time); the
    Average-mAP is the one of the pooled dense per-frame arrays, loose and tight, to the last digit."""
    from spotting_core.engine.games import find_splits, load_games
    from spotting_core.engine.inference import spot_game
    from spotting_core.engine.train import evaluate_games
    from spotting_core.models import build_model

    names = [g for s in find_splits(tiny).values() for g in s]
    games = load_games(tiny, names, "synth512", mmap=True)
    torch.manual_seed(0)
    model = build_model("netvlad++", input_dim=512, num_classes=17, fps=2, vocab_size=8,
                        nms_threshold=0.0).eval()   # every local peak: many predictions to match
    ours = evaluate_games(model, games)
    targets, dets = [], []
    for g in games:
        events, _ = spot_game(model, [np.array(h) for h in g.halves])
        targets += [e.astype(np.float32) for e in g.events]
        dets += detections_from_events(events, [len(h) for h in g.halves], 17)
    for metric in ("loose", "tight"):
        assert ours[metric] == average_map(targets, dets, metric=metric)["a_mAP"]
