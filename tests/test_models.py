"""Every registered model honours the contract (models/base.py), timm-style: one parametrized test
per property, over all of MODELS. Cases are tiny (D = 32, one clip of the model's own length)."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest
import torch

from spotting_core.cli import main as cli_main
from spotting_core.errors import SpottingError
from spotting_core.io.soccernet import CLASSES_V2
from spotting_core.models import (
    MODELS,
    build_model,
    count_parameters,
    frame_pairings,
    load_checkpoint,
    model_class,
    save_checkpoint,
)
from spotting_core.models.base import SpottingModel

NAMES = sorted(MODELS)
DIM = 32
REQUIRED_CONFIG = {"input_dim", "num_classes", "fps", "window_s", "nms_window_s", "nms_threshold"}


def _model(name: str, **options) -> SpottingModel:
    """The model with D = 32 (frame models: frames 32 pixels high)."""
    torch.manual_seed(0)
    return build_model(name, input_dim=DIM, **options)


def _input(model: SpottingModel, *lead: int, generator: torch.Generator) -> torch.Tensor:
    """Features (*lead, D), or uint8 frames (*lead, D, D, 3) for a model whose input is frames (H = input_dim)."""
    if model.input_kind == "frames":
        return torch.randint(0, 256, (*lead, DIM, DIM, 3), generator=generator, dtype=torch.uint8)
    return torch.randn(*lead, DIM, generator=generator)


def _batch(model: SpottingModel, B: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    T, C = model.clip_frames, model.num_classes
    events = torch.zeros(B, T, C)
    events[0, T // 2, 1] = 1.0        # a visible event at the centre of the first clip
    events[0, T // 3, 4] = -1.0       # an unshown one
    return {"x": _input(model, B, T, generator=g), "events": events}


def _expected_T_out(model: SpottingModel, T: int) -> int:
    return 1 if model.output_mode == "center" else T


def test_registry_is_not_empty_and_names_are_set():
    assert {"netvlad++", "maxpool++", "avgpool++", "maxpool", "avgpool", "netvlad"} <= set(MODELS)
    for name, cls in MODELS.items():
        assert cls.name == name and issubclass(cls, SpottingModel)


def test_unknown_model_raises_keyerror_listing_the_names():
    with pytest.raises(KeyError) as e:
        model_class("no-such-model")
    for name in MODELS:
        assert name in str(e.value)
    with pytest.raises(KeyError):
        build_model("no-such-model")


@pytest.mark.parametrize("name", NAMES)
def test_config_has_the_shared_fields(name):
    cfg_fields = {f.name for f in fields(MODELS[name].Config)}
    assert REQUIRED_CONFIG <= cfg_fields
    cfg = MODELS[name].Config()
    assert cfg.num_classes == 17 and cfg.fps == 2.0 and cfg.window_s > 0 and cfg.nms_window_s > 0


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_no_nan(name):
    model = _model(name).train()
    batch = _batch(model)
    outputs = model(batch["x"])
    assert isinstance(outputs, dict) and outputs
    for key, value in outputs.items():
        if torch.is_tensor(value) and value.is_floating_point():
            assert torch.isfinite(value).all(), f"{name}: NaN/inf in outputs[{key!r}]"
    losses = model.loss(outputs, batch)
    assert isinstance(losses, dict) and losses["loss"].ndim == 0
    assert torch.isfinite(losses["loss"]) and losses["loss"] > 0
    losses["loss"].backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads), f"{name}: no gradient reached the weights"
    for p in model.parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all(), f"{name}: NaN/inf gradient"


@pytest.mark.parametrize("name", NAMES)
def test_frame_scores_contract(name):
    model = _model(name).eval()
    batch = _batch(model)
    B, T = batch["x"].shape[:2]
    with torch.no_grad():
        out = model.frame_scores(model(batch["x"]))
    scores = out["scores"]
    assert scores.shape == (B, _expected_T_out(model, T), 17)
    assert torch.isfinite(scores).all() and (scores >= 0).all() and (scores <= 1).all()
    if "saliency" in out:
        assert out["saliency"].shape == (B, T) and torch.isfinite(out["saliency"]).all()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("extra", [-3, 7])  # a half shorter than one clip, and one a bit longer
def test_sequence_scores_shapes_and_exactness(name, extra):
    model = _model(name).eval()
    T = max(1, model.clip_frames + extra)
    feats = _input(model, T, generator=torch.Generator().manual_seed(2))
    out = model.sequence_scores(feats)
    assert out["scores"].shape == (T, 17)
    assert torch.isfinite(out["scores"]).all() and (out["scores"] >= 0).all() and (out["scores"] <= 1).all()
    if "saliency" in out:
        assert out["saliency"].shape == (T,)
    # a model that declares its override a faster exact path must give the base class's windows
    # (an override with its own decoding, such as RMS-Net's regressed offsets, declares nothing)
    if model.exact_sequence_scores:
        ref = SpottingModel.sequence_scores(model, feats)
        torch.testing.assert_close(out["scores"], ref["scores"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip(name, tmp_path):
    model = _model(name).eval()
    path = save_checkpoint(tmp_path / f"{name}.ckpt", model, classes=CLASSES_V2, feature_name="synthetic32")
    loaded, meta = load_checkpoint(path)
    assert type(loaded) is type(model) and not loaded.training
    assert meta["model"] == name and meta["config"] == model.config_dict()
    assert meta["features"] == {"name": "synthetic32", "dim": DIM} and meta["classes"] == list(CLASSES_V2)
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    x = _batch(model)["x"]
    with torch.no_grad():
        torch.testing.assert_close(loaded.frame_scores(loaded(x))["scores"], model.frame_scores(model(x))["scores"])


def test_models_command_lists_every_model_with_its_size(capsys):
    assert cli_main(["models", "--json", "--input-dim", str(DIM)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(MODELS)
    for r in rows:
        assert r["params"] == count_parameters(build_model(r["name"], input_dim=DIM)) > 0


# ---------------------------------------------------------------------------------------------
# Every feature head on every frame backbone (models/compose.py): the same contract, frames in
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, backbone", frame_pairings())
def test_frame_backbone_pairing_honours_the_contract(name, backbone, tmp_path):
    model = _model(name, backbone=backbone, backbone_weights="random").train()
    assert model.input_kind == "frames" and model.name == name and model.output_mode == MODELS[name].output_mode
    assert model.clip_frames == MODELS[name](MODELS[name].Config()).clip_frames
    batch = _batch(model, B=1)
    assert batch["x"].shape[2:] == (DIM, DIM, 3) and batch["x"].dtype == torch.uint8
    batch = model.augment(batch)
    outputs = model(batch["x"])
    losses = model.loss(outputs, batch)
    assert torch.isfinite(losses["loss"]) and losses["loss"] > 0
    losses["loss"].backward()
    enc = [p.grad for p in model.encoder.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in enc), "the frame backbone is not fine-tuned"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)

    model.eval()
    with torch.no_grad():
        scores = model.frame_scores(model(batch["x"]))["scores"]
    assert scores.shape == (1, _expected_T_out(model, model.clip_frames), 17)
    half = _input(model, model.clip_frames + 5, generator=torch.Generator().manual_seed(3))
    out = model.sequence_scores(half)["scores"]
    assert out.shape == (model.clip_frames + 5, 17) and torch.isfinite(out).all()
    # frame by frame encoding then the head's own whole-half path = the head on the encoded half
    ref = model.head.sequence_scores(model.encoder(half))["scores"]
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)

    path = save_checkpoint(tmp_path / "m.ckpt", model, classes=CLASSES_V2, feature_name=f"frames{DIM}p")
    loaded, meta = load_checkpoint(path)
    assert type(loaded) is type(model) and meta["model"] == name and meta["config"]["backbone"] == backbone
    torch.testing.assert_close(loaded.sequence_scores(half)["scores"], out)


def test_frame_backbone_bad_names_are_one_line():
    with pytest.raises(SpottingError, match="backbone 'resnet9000': choose from regnety_400mf"):
        build_model("rms-net", backbone="resnet9000")
    with pytest.raises(SpottingError, match="reads frames already"):
        build_model("ugl-e2e", backbone="regnety_400mf", weights="random")
