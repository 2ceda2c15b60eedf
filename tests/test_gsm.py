"""Gate-Shift Module (models/ugl_e2e.py): the exact formula with a fixed gate, information moving from
frame t to t-1 / t+1 and nowhere else, the zero-initialised gate, and the temporal reach of the
whole GSM RegNet-Y."""

from __future__ import annotations

import math

import pytest
import torch

from spotting_core.models.ugl_e2e import GateShift, GSMRegNet, gsm_fold


def _fixed(gsm: GateShift, g1: float, g2: float) -> GateShift:
    """Gate fixed to (g1, g2) everywhere: zero conv weights, biases atanh(g)."""
    with torch.no_grad():
        gsm.conv3d.weight.zero_()
        gsm.conv3d.bias.copy_(torch.tensor([math.atanh(g1), math.atanh(g2)]))
    return gsm


def _reference(x: torch.Tensor, T: int, fold: int, g1: float, g2: float) -> torch.Tensor:
    """The GSM written out element by element. x (B*T, C, H, W)."""
    BT, C = x.shape[:2]
    v = x.reshape(BT // T, T, C, *x.shape[2:])
    out = v.clone()
    half, quarter = fold // 2, fold // 4
    for t in range(T):
        for c in range(fold):
            if c < half:   # group 1: the gated part comes from frame t + 1 (zero past the end)
                nxt = v[:, t + 1, c] if t + 1 < T else torch.zeros_like(v[:, t, c])
                val = g1 * nxt + (1 - g1) * v[:, t, c]
                a, b = divmod(c, quarter)                  # interleave (2, fold/4) -> (fold/4, 2)
                out[:, t, b * 2 + a] = val
            else:          # group 2: from frame t - 1 (zero before the start)
                prev = v[:, t - 1, c] if t > 0 else torch.zeros_like(v[:, t, c])
                val = g2 * prev + (1 - g2) * v[:, t, c]
                a, b = divmod(c - half, quarter)
                out[:, t, half + b * 2 + a] = val
    return out.reshape_as(x)


def test_fold_rule():
    assert gsm_fold(32) == 8 and gsm_fold(48) == 12 and gsm_fold(440) == 112 and gsm_fold(104) == 28


def test_fixed_gate_matches_the_formula():
    torch.manual_seed(0)
    T, C = 5, 32
    gsm = _fixed(GateShift(channels=C), 0.5, 0.25)
    gsm.num_frames = T
    x = torch.randn(2 * T, C, 3, 3)
    torch.testing.assert_close(gsm(x), _reference(x, T, gsm.fold, 0.5, 0.25), atol=1e-6, rtol=1e-6)


def test_information_moves_to_neighbour_frames_only():
    torch.manual_seed(1)
    T, C, t = 6, 32, 2
    gsm = _fixed(GateShift(channels=C), 0.5, 0.5)
    gsm.num_frames = T
    fold = gsm.fold
    x = torch.randn(T, C, 2, 2)
    x2 = x.clone()
    x2[t] += 1.0                                                                # change input frame t only
    reach = (gsm(x2) - gsm(x)).abs().sum(dim=(2, 3))                            # (T, C) what changed
    moved = reach > 0
    assert moved[[j for j in range(T) if abs(j - t) > 1]].sum() == 0          # nowhere beyond t +- 1
    back = {b * 2 + a for c in range(fold // 2) for a, b in [divmod(c, fold // 4)]}   # group 1 slots
    fwd = {fold // 2 + s for s in back}                                             # group 2 slots
    assert set(torch.nonzero(moved[t - 1]).flatten().tolist()) == back              # t -> t - 1: group 1
    assert set(torch.nonzero(moved[t + 1]).flatten().tolist()) == fwd               # t -> t + 1: group 2
    assert moved[t].all()                                                            # and itself, all channels
    # the amount moved is the gate: frame t - 1 gets 0.5 * x[t] in group 1
    assert reach[t - 1, sorted(back)[0]].item() == pytest.approx(0.5 * 4, rel=1e-5)  # 4 = H * W cells


def test_zero_gate_mixes_no_frames():
    """The official zero initialisation: gate 0, so no frame sees another (only the channel interleave)."""
    torch.manual_seed(2)
    T, C = 4, 32
    gsm = GateShift(channels=C)
    gsm.num_frames = T
    x = torch.randn(T, C, 2, 2)
    torch.testing.assert_close(gsm(x), _reference(x, T, gsm.fold, 0.0, 0.0))
    x2 = x.clone()
    x2[1] += 5.0
    diff = (gsm(x2) - gsm(x)).abs().sum(dim=(1, 2, 3))
    assert diff[1] > 0 and diff[[0, 2, 3]].sum() == 0


def test_learned_gate_reaches_two_frames():
    """With a gate that depends on the input (its 3x3x3 conv), frame t may reach t +- 2: why the shift
    test above fixes the gate."""
    torch.manual_seed(3)
    T, C, t = 6, 32, 3
    gsm = GateShift(channels=C).eval()
    torch.nn.init.normal_(gsm.conv3d.weight, std=0.5)
    gsm.num_frames = T
    x = torch.randn(T, C, 3, 3)
    x2 = x.clone()
    x2[t] += 3.0
    diff = (gsm(x2) - gsm(x)).abs().sum(dim=(1, 2, 3))
    assert diff[t - 2] > 0 or diff[t + 2] > 0
    assert diff[[j for j in range(T) if abs(j - t) > 2]].sum() == 0


def test_backbone_temporal_reach_grows_one_frame_per_block():
    """Every residual block of RegNet-Y 400MF has a GSM: with gates fixed at 0.5, output frame j
    depends on input frame 0 exactly when j <= number of blocks; with gates 0 only frame 0 does.
    Measured by gradients (structural zeros are exact zeros; finite differences would drown in
    rounding, the change fading ~10x per block)."""
    torch.manual_seed(4)
    net = GSMRegNet(arch="regnet_y_400mf", weights="random").eval()
    n_blocks = len(net.gsms)
    assert n_blocks == 16
    T = n_blocks + 2

    def depends_on_frame0(j: int) -> bool:
        x = torch.randn(T, 3, 16, 16, requires_grad=True)
        (g,) = torch.autograd.grad(net(x, T)[j].sum(), x)
        return bool(g[0].abs().sum() > 0)

    x = torch.randn(T, 3, 16, 16)
    x2 = x.clone()
    x2[0] += 1.0
    with torch.no_grad():                                                   # zero gates: frame by frame
        change = (net(x2, T) - net(x, T)).abs().flatten(1).sum(dim=1)
    assert change[0] > 0 and change[1:].sum() == 0
    for g in net.gsms:
        _fixed(g, 0.5, 0.5)
    assert depends_on_frame0(n_blocks) and not depends_on_frame0(n_blocks + 1)
