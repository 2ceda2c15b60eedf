"""Each shared loss against its formula written out on hand-sized tensors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from spotting_core.models.losses import focal_loss, masked_mse, sigmoid_focal_loss, soft_cross_entropy

LN2, LN3 = math.log(2.0), math.log(3.0)
# softmax([0, ln 2, ln 3]) = [1/6, 2/6, 3/6]; softmax([ln 3, 0, 0]) = [3/5, 1/5, 1/5]
LOGITS = torch.tensor([[0.0, LN2, LN3], [LN3, 0.0, 0.0]])


def test_focal_gamma0_is_cross_entropy():
    target = torch.tensor([2, 1])
    expected = (-math.log(3 / 6) - math.log(1 / 5)) / 2
    got = focal_loss(LOGITS, target, gamma=0.0)
    assert got.item() == pytest.approx(expected, abs=1e-6)
    assert got.item() == pytest.approx(F.cross_entropy(LOGITS, target).item(), abs=1e-6)
    assert soft_cross_entropy(LOGITS, target).item() == pytest.approx(expected, abs=1e-6)


def test_focal_gamma5_by_hand():
    target = torch.tensor([2, 0])
    row0 = -((1 - 3 / 6) ** 5) * math.log(3 / 6)   # 0.5^5 * ln 2
    row1 = -((1 - 3 / 5) ** 5) * math.log(3 / 5)   # 0.4^5 * ln(5/3)
    got = focal_loss(LOGITS, target, gamma=5.0, reduction="none")
    assert got.tolist() == pytest.approx([row0, row1], abs=1e-6)
    assert row0 == pytest.approx(0.0216608, abs=1e-6)
    mean = focal_loss(LOGITS, target, gamma=5.0)
    assert mean.item() == pytest.approx((row0 + row1) / 2, abs=1e-6)
    total = focal_loss(LOGITS, target, gamma=5.0, reduction="sum")
    assert total.item() == pytest.approx(row0 + row1, abs=1e-6)


def test_focal_alpha_and_soft_targets_by_hand():
    alpha = [0.25, 0.25, 0.75]
    # row 0: half class 0, half class 1; row 1: class 2 (alpha 0.75)
    y = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    g = 2.0
    row0 = -(0.5 * 0.25 * (1 - 1 / 6) ** g * math.log(1 / 6) + 0.5 * 0.25 * (1 - 2 / 6) ** g * math.log(2 / 6))
    row1 = -(0.75 * (1 - 1 / 5) ** g * math.log(1 / 5))
    got = focal_loss(LOGITS, y, gamma=g, alpha=alpha, reduction="none")
    assert got.tolist() == pytest.approx([row0, row1], abs=1e-6)
    # class indices and one-hot targets agree
    idx = torch.tensor([1, 2])
    assert torch.allclose(focal_loss(LOGITS, idx, gamma=g, alpha=alpha),
                          focal_loss(LOGITS, F.one_hot(idx, 3).float(), gamma=g, alpha=alpha))


def test_focal_bad_arguments():
    with pytest.raises(ValueError):
        focal_loss(LOGITS, torch.tensor([0, 1]), reduction="avg")
    with pytest.raises(ValueError):
        focal_loss(LOGITS, torch.tensor([0, 1]), alpha=[0.5, 0.5])
    with pytest.raises(ValueError):
        focal_loss(LOGITS, torch.ones(2, 4))


def test_sigmoid_focal_by_hand():
    x = torch.tensor([0.0, LN3])          # sigmoid: 1/2, 3/4
    y = torch.tensor([1.0, 0.0])
    g, a = 2.0, 0.25
    e0 = -a * (1 - 0.5) ** g * math.log(0.5)                 # positive, p_t = 1/2
    e1 = -(1 - a) * (1 - 0.25) ** g * math.log(1 - 0.75)     # negative, p_t = 1/4
    got = sigmoid_focal_loss(x, y, gamma=g, alpha=a, reduction="none")
    assert got.tolist() == pytest.approx([e0, e1], abs=1e-6)
    plain = sigmoid_focal_loss(x, y, gamma=0.0, alpha=None)
    assert plain.item() == pytest.approx(F.binary_cross_entropy_with_logits(x, y).item(), abs=1e-6)


def test_masked_mse_by_hand():
    pred = torch.tensor([0.2, 0.9, 0.5], requires_grad=True)
    target = torch.tensor([0.0, 0.5, 0.0])
    mask = torch.tensor([True, True, False])
    got = masked_mse(pred, target, mask)
    assert got.item() == pytest.approx((0.2 ** 2 + 0.4 ** 2) / 2, abs=1e-6)
    got.backward()
    assert pred.grad.tolist() == pytest.approx([0.2, 0.4, 0.0], abs=1e-6)   # 2 (p - t) / n
    none = masked_mse(pred, target, torch.zeros(3, dtype=torch.bool))
    assert none.item() == 0.0 and none.requires_grad
