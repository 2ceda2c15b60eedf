"""The frame-saliency weighting model: parameter counts, Eq. (1)-(3) by hand, BCE by hand, training."""

from __future__ import annotations

import math

import pytest
import torch

from spotting_core.models import build_model, count_parameters
from spotting_core.models.saliency import Config, SaliencyModule, SaliencyWeighting

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(("modules", "embed", "expected", "paper_m", "tolerance_m"), [
    (1, 64, 167_124, 0.17, 0.005),      # rounds to the paper's figure
    (2, 256, 1_589_526, 1.59, 0.005),   # rounds to the paper's figure
    (1, 512, 3_171_860, 3.16, 0.012),   # 3.17M: 0.4% above the paper (see the module docstring)
])
def test_parameter_counts_on_2048d_features_match_table_1(modules, embed, expected, paper_m, tolerance_m):
    model = SaliencyWeighting(Config(input_dim=2048, num_modules=modules, embed_dim=embed))
    assert count_parameters(model) == expected
    assert abs(expected / 1e6 - paper_m) <= tolerance_m


def test_registry_defaults_are_the_papers():
    model = build_model("saliency")
    assert isinstance(model, SaliencyWeighting)
    assert model.output_mode == "center" and model.clip_frames == 30
    cfg = model.cfg
    assert (cfg.lr, cfg.nms_window_s, cfg.nms_threshold, cfg.num_classes, cfg.fps) == (3e-3, 30.0, 0.0, 17, 2.0)


def test_saliency_is_eq_1_to_3_written_out():
    torch.manual_seed(0)
    block = SaliencyModule(dim=2)
    with torch.no_grad():
        block.theta.fill_(0.7)
    f = torch.tensor([[[1.0, -1.0], [0.5, 2.0], [-1.5, 0.0]]])       # (1, 3, 2) normalised frames
    got = torch.sigmoid(block.saliency_logits(f))[0]
    expected = []
    for i in range(3):
        s = [sum(f[0, i, d].item() * f[0, j, d].item() for d in range(2)) / math.sqrt(2) for j in range(3)]
        w = [math.exp(v) / (math.exp(0.7) + sum(math.exp(u) for u in s)) for v in s]   # Eq. (2)
        expected.append(sum(w))                                                        # Eq. (3)
    assert got.tolist() == pytest.approx(expected, rel=1e-6)


def test_saliency_weights_features_then_remaps_with_residual():
    torch.manual_seed(0)
    block = SaliencyModule(dim=4)
    h = torch.randn(2, 5, 4)
    out, logits = block(h)
    f = block.norm_in(h)
    expected = block.norm_out(h + block.mlp(torch.sigmoid(logits)[..., None] * f))
    assert torch.allclose(out, expected, atol=1e-6)


def test_bce_loss_is_the_formula_with_background_target():
    model = SaliencyWeighting(Config(input_dim=4, num_classes=2, embed_dim=4, num_modules=1, window_s=2.0))
    logits = torch.tensor([[0.5, -1.0, 2.0], [-0.3, 0.8, 0.1]])           # (B=2, 1 + C)
    events = torch.zeros(2, 4, 2)
    events[1, 2, 0] = -1.0                                                 # an unshown event of class 0
    # clip 0: no event -> background; clip 1: class 0 present
    y = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    terms = []
    for b in range(2):
        for c in range(3):
            p = 1 / (1 + math.exp(-logits[b, c].item()))
            terms.append(-(y[b][c] * math.log(p) + (1 - y[b][c]) * math.log(1 - p)))
    out = model.loss({"logits": logits, "saliency_logits": torch.zeros(2, 4)}, {"events": events})
    assert out["loss"].item() == pytest.approx(sum(terms) / len(terms), rel=1e-6)


def test_forward_backward_shapes_no_nan_and_halves_are_separate():
    torch.manual_seed(0)
    model = SaliencyWeighting(Config(input_dim=32, embed_dim=16))
    x = torch.randn(3, 30, 32, requires_grad=True)
    out = model(x)
    scores = model.frame_scores(out)
    assert scores["scores"].shape == (3, 1, 17) and scores["saliency"].shape == (3, 30)
    assert ((scores["scores"] >= 0) & (scores["scores"] <= 1)).all()
    assert ((scores["saliency"] > 0) & (scores["saliency"] < 1)).all()
    model.loss(out, {"events": torch.zeros(3, 30, 17)})["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    # changing a post-action frame leaves the pre-action saliency alone, and changes the post one
    x2 = x.detach().clone()
    x2[:, 20] += 3.0
    sal2 = model.frame_scores(model(x2))["saliency"]
    assert torch.allclose(sal2[:, :15], scores["saliency"][:, :15])
    assert not torch.allclose(sal2[:, 15:], scores["saliency"][:, 15:])


def test_sequence_scores_give_a_score_and_a_saliency_per_frame():
    torch.manual_seed(0)
    model = SaliencyWeighting(Config(input_dim=8, embed_dim=8, num_modules=1)).eval()
    out = model.sequence_scores(torch.randn(47, 8))
    assert out["scores"].shape == (47, 17) and out["saliency"].shape == (47,)
    assert out["saliency_windows"].shape == (47, 30)


def test_overfits_one_batch():
    torch.manual_seed(0)
    model = SaliencyWeighting(Config(input_dim=16, embed_dim=16, num_modules=1))
    x = torch.randn(8, 30, 16)
    events = torch.zeros(8, 30, 17)
    for b in range(4):
        events[b, 10 + b, b] = 1.0
    opt = torch.optim.Adam(model.parameters(), lr=model.cfg.lr)
    losses = []
    for _ in range(20):
        loss = model.loss(model(x), {"x": x, "events": events})["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
