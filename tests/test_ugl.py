"""UGL on features: parameter counts, entity hard selection, with/without entities, focal loss, overfit."""

from __future__ import annotations

import math

import pytest
import torch

from spotting_core.models import build_model, count_parameters
from spotting_core.models.ugl import UGL, hard_select

pytestmark = pytest.mark.usefixtures("one_thread")


def _small(**kw) -> UGL:
    cfg = {"input_dim": 12, "num_classes": 3, "entity_dim": 6, "d_model": 8, "heads": 2, "ffn_dim": 16,
           "gru_hidden": 8, "window_s": 5.0}
    cfg.update(kw)
    return build_model("ugl", **cfg)


def _transformer_layer(d: int, ffn: int) -> int:
    # in_proj (3d x d + 3d), out_proj (d x d + d), linear1 (d -> ffn), linear2 (ffn -> d), 2 LayerNorms
    return (3 * d * d + 3 * d) + (d * d + d) + (d * ffn + ffn) + (ffn * d + d) + 2 * 2 * d


def test_parameter_counts():
    D, d, E, K, ffn = 512, 512, 256, 17, 2048
    encoder = _transformer_layer(d, ffn) + 2 * d                 # one layer + the final LayerNorm
    gru = 2 * (3 * d * d + 3 * d * d + 2 * 3 * d)                 # bidirectional, hidden = d
    expected = (D * d + d) + (E * d + d) + encoder + (encoder + 2 * d) + gru + (2 * d * (K + 1) + K + 1)
    assert count_parameters(build_model("ugl", input_dim=512)) == expected == 9_872_402
    # without the entity branch: the E2E-Spot head, a GRU straight on the global feature
    assert count_parameters(build_model("ugl", input_dim=512, use_entities=False)) == gru + 2 * d * 18 + 18
    # D = 2048: the attention width and the GRU are capped at 768, as the authors cap the GRU
    d = 768
    encoder = _transformer_layer(d, ffn) + 2 * d
    gru = 2 * (3 * d * d + 3 * d * d + 2 * 3 * d)
    expected = (2048 * d + d) + (E * d + d) + encoder + (encoder + 2 * d) + gru + (2 * d * 18 + 18)
    assert count_parameters(build_model("ugl", input_dim=2048)) == expected


def test_config_defaults():
    m = build_model("ugl")
    assert m.clip_frames == 100 and m.output_mode == "sequence"
    assert (m.cfg.focal_gamma, m.cfg.focal_alpha) == (5.0, 0.75)
    assert m.focal_alpha.tolist() == pytest.approx([0.75] * 17 + [0.25])


def test_hard_selection_picks_the_above_average_entities():
    env = torch.zeros(4, 2)
    ent = torch.tensor([[[3.0, 0.0], [1.0, 0.0], [0.0, 2.9], [0.0, 9.0]]]).repeat(4, 1, 1)
    mask = torch.tensor([[True, True, True, False],      # the 9.0 entity is padding
                         [False, False, False, False],   # a frame without entities
                         [False, True, False, False],    # one entity: always kept
                         [True, True, True, True]])
    keep = hard_select(env, ent, mask)
    # row 0: softmax(3, 1, 2.9) = (0.490, 0.066, 0.443) vs 1/3 -> entities 0 and 2
    e = [math.exp(3.0), math.exp(1.0), math.exp(2.9)]
    assert [v / sum(e) >= 1 / 3 for v in e] == [True, False, True]
    assert keep.tolist() == [[True, False, True, False],
                             [False, False, False, False],
                             [False, True, False, False],
                             [False, False, False, True]]  # 9.0 dominates the softmax
    # the global feature takes part: with env = (0, 1) the norms are (sqrt 10, sqrt 2, 3.9), shares
    # (0.306, 0.053, 0.641): entity 0 falls under 1/3 and only entity 2 is kept
    e = [math.exp(math.sqrt(10.0)), math.exp(math.sqrt(2.0)), math.exp(3.9)]
    assert [v / sum(e) >= 1 / 3 for v in e] == [False, False, True]
    keep = hard_select(torch.tensor([[0.0, 1.0]]), ent[:1], mask[:1])
    assert keep.tolist() == [[False, False, True, False]]


def test_runs_with_and_without_entities():
    torch.manual_seed(0)
    m = _small().train()
    B, T, N = 2, 10, 5
    x = torch.randn(B, T, 12, requires_grad=True)
    ents = torch.randn(B, T, N, 6, requires_grad=True)
    mask = torch.rand(B, T, N) > 0.3
    mask[0, 0] = False                                          # a frame without any entity
    events = torch.zeros(B, T, 3)
    events[0, 4, 1] = 1
    events[1, 7, 2] = -1
    for out in (m(x), m(x, entities=ents, entity_mask=mask),
                m.forward_batch({"x": x, "entities": ents, "entity_mask": mask})):
        assert out["logits"].shape == (B, T, 4) and torch.isfinite(out["logits"]).all()
        loss = m.loss(out, {"x": x, "events": events})["loss"]
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    assert ents.grad is not None and torch.isfinite(ents.grad).all() and ents.grad.abs().sum() > 0
    assert m.head.last_keep.shape == (B, T, N) and not m.head.last_keep[0, 0].any()
    assert bool((m.head.last_keep <= mask).all())               # only valid entities are kept
    # entities change the output; all-padding entities are the same as none
    m.eval()
    with torch.no_grad():
        none = m(x)["logits"]
        some = m(x, entities=ents, entity_mask=mask)["logits"]
        padded = m(x, entities=ents, entity_mask=torch.zeros_like(mask))["logits"]
    assert not torch.allclose(none, some)
    assert torch.allclose(none, padded, atol=1e-6)
    # without the entity branch
    plain = _small(use_entities=False)
    assert plain(x)["logits"].shape == (B, T, 4)


def test_frame_targets_loss_and_scores_by_hand():
    m = _small(focal_gamma=5.0, focal_alpha=0.25)
    ev = torch.zeros(1, 3, 3)
    ev[0, 0, 1] = 1
    ev[0, 2, 0] = 1
    ev[0, 2, 2] = -1
    y = m.frame_targets(ev)
    assert y[0].tolist() == [[0, 1, 0, 0], [0, 0, 0, 1], [0.5, 0, 0.5, 0]]
    logits = torch.tensor([[[0.0, math.log(3.0), 0.0, 0.0],       # p = (1/6, 3/6, 1/6, 1/6)
                            [0.0, 0.0, 0.0, math.log(5.0)],       # p = (1/8, 1/8, 1/8, 5/8)
                            [math.log(2.0), 0.0, math.log(2.0), 0.0]]])  # p = (2/6, 1/6, 2/6, 1/6)
    a, g = 0.25, 5.0
    f0 = -a * (1 - 3 / 6) ** g * math.log(3 / 6)
    f1 = -(1 - a) * (1 - 5 / 8) ** g * math.log(5 / 8)
    f2 = -(0.5 * a * (1 - 2 / 6) ** g * math.log(2 / 6)) * 2
    got = m.loss({"logits": logits}, {"events": ev})
    assert got["loss"].item() == pytest.approx((f0 + f1 + f2) / 3, abs=1e-6)
    scores = m.frame_scores({"logits": logits})["scores"]
    assert scores.shape == (1, 3, 3)
    assert scores[0, 1].tolist() == pytest.approx([1 / 8, 1 / 8, 1 / 8])


def test_sequence_scores_with_entities():
    torch.manual_seed(0)
    m = _small().eval()
    T, N = 23, 4
    feats, ents = torch.randn(T, 12), torch.randn(T, N, 6)
    base = m.sequence_scores(feats, batch_size=3)["scores"]
    empty = m.sequence_scores(feats, batch_size=3, entities=ents, entity_mask=torch.zeros(T, N, dtype=torch.bool))
    assert base.shape == (T, 3) and torch.allclose(base, empty["scores"], atol=1e-6)
    with_ents = m.sequence_scores(feats, batch_size=3, entities=ents)["scores"]
    assert with_ents.shape == (T, 3) and not torch.allclose(base, with_ents)
    # the first window (frames 0..9) decides frame 0: equal to running that window alone
    with torch.no_grad():
        first = m.frame_scores(m(feats[None, :10], ents[None, :10]))["scores"][0, 0]
    assert torch.allclose(with_ents[0], first, atol=1e-6)


def test_tiny_overfit_with_entities():
    torch.manual_seed(0)
    B, T, D, K, N, E = 6, 10, 12, 3, 3, 6
    x = torch.randn(B, T, D) * 0.5
    ents = torch.randn(B, T, N, E) * 0.5
    ev = torch.zeros(B, T, K)
    proto = torch.randn(K, E) * 3
    for b in range(B):
        c, t = b % K, 2 + b
        ents[b, t, 0] += proto[c]                               # the class lives in an entity only
        ev[b, t, c] = 1
    m = _small(dropout=0.0, attn_dropout=0.0, focal_gamma=2.0)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for step in range(120):
        loss = m.loss(m(x, entities=ents), {"events": ev})["loss"]
        if step == 0:
            first = loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05 * first
    m.eval()
    with torch.no_grad():
        pred = m(x, entities=ents)["logits"].argmax(-1)         # (B, T), K = background
    target = torch.where(ev.ne(0).any(-1), ev.argmax(-1), torch.full((B, T), K))
    assert torch.equal(pred, target)
