"""RMS-Net: parameter counts, targets, loss formula, masking M(p, q), regressed inference, overfit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from games import C, one_half_game

from spotting_core.engine.sampler import ClipSampler
from spotting_core.models import build_model, count_parameters, load_checkpoint, save_checkpoint
from spotting_core.models.base import event_clip_starts
from spotting_core.models.rmsnet import RMSNet, clip_targets, mask_pre_event

pytestmark = pytest.mark.usefixtures("one_thread")


def _params_default(D: int, C: int = 17) -> int:
    # Linear D->256, Conv1d 256->256 k9, Conv1d 256->128 k9, Linear 128->64, heads 64->C+1 and 64->1
    return (D * 256 + 256) + (256 * 256 * 9 + 256) + (256 * 128 * 9 + 128) + (128 * 64 + 64) \
        + (64 * (C + 1) + C + 1) + (64 + 1)


def test_parameter_counts():
    assert count_parameters(build_model("rms-net", input_dim=512)) == _params_default(512) == 1_025_939
    assert count_parameters(build_model("rms-net", input_dim=2048)) == _params_default(2048) == 1_419_155
    # the authors' SoccerNet-v2 feature code: Conv1d D->512 k9, Conv1d 512->256 k9, Linear 256->128, heads
    v2 = build_model("rms-net", input_dim=512, reduce_dim=0, conv_channels=(512, 256), fc_dim=128)
    expected = (512 * 512 * 9 + 512) + (512 * 256 * 9 + 256) + (256 * 128 + 128) + (128 * 18 + 18) + (128 + 1)
    assert count_parameters(v2) == expected == 3_575_059


def test_config_and_contract():
    m = build_model("rms-net")
    assert m.clip_frames == 41 and m.output_mode == "center" and m.sampling == "balanced"
    assert (m.cfg.mse_weight, m.cfg.mask_p, m.cfg.mask_q) == (10.0, 1 / 3, 0.5)
    x = torch.randn(3, 41, 512, requires_grad=True)
    out = m(x)
    assert out["class_logits"].shape == (3, 18) and out["offset_logit"].shape == (3,)
    fs = m.frame_scores(out)
    assert fs["scores"].shape == (3, 1, 17) and fs["offset"].shape == (3, 1)
    assert bool((fs["scores"].sum(-1) < 1).all())          # background takes the rest
    events = torch.zeros(3, 41, 17)
    events[0, 30, 4] = 1
    events[1, 10, 2] = -1                                   # an unshown event is an event too
    losses = m.loss(out, {"x": x, "events": events})
    assert set(losses) == {"loss", "ce", "mse"}
    losses["loss"].backward()
    assert torch.isfinite(x.grad).all() and all(torch.isfinite(p.grad).all() for p in m.parameters())


def test_targets_nearest_event_to_centre():
    T, C = 41, 17
    ev = torch.zeros(4, T, C)
    ev[0, 5, 3] = 1
    ev[0, 25, 7] = 1            # nearer the centre (20) than frame 5
    ev[1, 18, 1] = 1
    ev[1, 22, 9] = 1            # tie at distance 2: the earlier frame wins
    ev[2, 33, 12] = -1
    ev[2, 33, 0] = 1            # two classes on one frame: the lowest index
    cls, off, has = clip_targets(ev)   # clip 3: background
    assert cls.tolist() == [7, 1, 0, C]
    assert off[:3].tolist() == pytest.approx([25.5 / T, 18.5 / T, 33.5 / T])
    assert has.tolist() == [True, True, True, False]


def test_loss_is_ce_plus_10_mse_by_hand():
    m = build_model("rms-net", input_dim=8, num_classes=3)
    logits = torch.tensor([[2.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 3.0]])
    offset_logit = torch.tensor([0.0, math.log(3.0), 5.0])       # sigmoid: 0.5, 0.75, ~0.9933
    ev = torch.zeros(3, 4, 3)
    ev[0, 1, 0] = 1             # class 0 at frame 1: offset 1.5 / 4
    ev[1, 3, 2] = 1             # class 2 at frame 3: offset 3.5 / 4
    # clip 2: background (class 3), no offset term
    ce = (-(2 - math.log(math.e ** 2 + 3)) - (0 - math.log(math.e + 3)) - (3 - math.log(math.e ** 3 + 3))) / 3
    mse = ((0.5 - 1.5 / 4) ** 2 + (0.75 - 3.5 / 4) ** 2) / 2
    got = m.loss({"class_logits": logits, "offset_logit": offset_logit}, {"events": ev})
    assert got["ce"].item() == pytest.approx(ce, abs=1e-6)
    assert got["mse"].item() == pytest.approx(mse, abs=1e-6)
    assert got["loss"].item() == pytest.approx(ce + 10 * mse, abs=1e-5)
    assert F.cross_entropy(logits, torch.tensor([0, 2, 3])).item() == pytest.approx(ce, abs=1e-6)


def _hand_batch():
    T = 10
    x = torch.zeros(3, T, 1)
    x[0, :, 0] = 1.0                                    # event clip, event at frame 6
    x[1, :, 0] = 100.0 + torch.arange(T)                # the only background clip
    x[2, :, 0] = 2.0                                    # event clip, event at frame 4
    ev = torch.zeros(3, T, 2)
    ev[0, 6, 1] = 1
    ev[0, 1, 0] = 1                                     # an earlier event, before the masked span [3, 6)
    ev[2, 4, 0] = 1
    return x, ev


def test_masking_replaces_the_pre_event_span_with_background():
    x, ev = _hand_batch()
    x2, ev2, masked = mask_pre_event(x, ev, p=1.0, q=0.5)
    assert masked.tolist() == [True, False, True]
    # clip 0: e = 6, n = round(0.5 * 6) = 3 -> frames 3, 4, 5 come from the background clip
    assert x2[0, :, 0].tolist() == [1, 1, 1, 103, 104, 105, 1, 1, 1, 1]
    # clip 2: e = 4, n = 2 -> frames 2, 3
    assert x2[2, :, 0].tolist() == [2, 2, 102, 103, 2, 2, 2, 2, 2, 2]
    assert torch.equal(x2[1], x[1])
    assert torch.equal(ev2, ev)                         # the event frames and the frame-1 event are kept
    assert torch.equal(x[0, :, 0], torch.ones(10))      # the input is not modified
    # targets are unchanged by masking
    assert all(torch.equal(a, b) for a, b in zip(clip_targets(ev2), clip_targets(ev)))


def test_masking_span_clears_events_it_covers():
    x, ev = _hand_batch()
    ev[0, 4, 0] = 1                                     # a second event in clip 0
    # centre (T-1)/2 = 4.5: frame 4 (distance 0.5) is now the target, e = 4 -> span [2, 4)
    x2, ev2, _ = mask_pre_event(x, ev, p=1.0, q=0.5)
    assert x2[0, :, 0].tolist() == [1, 1, 102, 103, 1, 1, 1, 1, 1, 1]
    ev[0, 1, 0] = 1
    ev[0, 3, 0] = 1
    x3, ev3, _ = mask_pre_event(x, ev, p=1.0, q=0.5)
    assert ev3[0, 3].sum() == 0 and ev3[0, 4, 0] == 1   # an event inside the span goes with its frames


def test_masking_probability_and_no_background():
    x, ev = _hand_batch()
    x2, ev2, masked = mask_pre_event(x, ev, p=0.0, q=0.5)
    assert not masked.any() and torch.equal(x2, x)
    no_bg = torch.cat([x[:1], x[2:]])
    x3, _, masked = mask_pre_event(no_bg, torch.cat([ev[:1], ev[2:]]), p=1.0, q=0.5)
    assert not masked.any() and torch.equal(x3, no_bg)
    # with p = 1/3, about a third of the event clips are masked
    B = 3000
    big_x = x[torch.arange(B) % 3]
    big_ev = ev[torch.arange(B) % 3]
    g = torch.Generator().manual_seed(0)
    _, _, masked = mask_pre_event(big_x, big_ev, p=1 / 3, q=0.5, generator=g)
    rate = masked[torch.arange(B) % 3 != 1].float().mean().item()
    assert rate == pytest.approx(1 / 3, abs=0.03)
    m = build_model("rms-net", input_dim=1, num_classes=2)
    out = m.augment({"x": x, "events": ev, "extra": torch.ones(1)}, generator=torch.Generator().manual_seed(1))
    assert set(out) == {"x", "events", "extra"}


def _naive_sequence_scores(m: RMSNet, feats: torch.Tensor, stride: int) -> torch.Tensor:
    """One clip at a time, as the official inference loop: the reference for the batched version."""
    T, W = feats.shape[0], m.clip_frames
    scores = torch.zeros(T, m.num_classes)
    first = -(max(W - stride, 0) // 2)
    for start in range(first, first + T, stride):
        if start >= T + first:
            break
        idx = torch.clamp(torch.arange(start, start + W), 0, T - 1)
        fs = m.frame_scores(m(feats[idx][None]))
        frame = int(torch.round(start + fs["offset"][0, 0] * W - 0.5).clamp(0, T - 1))
        scores[frame] = torch.maximum(scores[frame], fs["scores"][0, 0])
    return scores


@pytest.mark.parametrize("stride", [0, 1, 7])
def test_sequence_scores_place_probabilities_at_the_regressed_frame(stride):
    torch.manual_seed(0)
    m = build_model("rms-net", input_dim=16, inference_stride=stride).eval()
    feats = torch.randn(123, 16)
    got = m.sequence_scores(feats, batch_size=8)["scores"]
    ref = _naive_sequence_scores(m, feats, stride or m.clip_frames)
    assert got.shape == (123, 17)
    assert torch.allclose(got, ref, atol=1e-6)
    n_clips = math.ceil(123 / (stride or 41))
    assert 0 < int((got.sum(-1) > 0).sum()) <= n_clips


def test_checkpoint_round_trip(tmp_path):
    m = build_model("rms-net", input_dim=16, conv_channels=(32, 16))
    path = save_checkpoint(tmp_path / "rms.pt", m, classes=[str(i) for i in range(17)], feature_name="f")
    m2, meta = load_checkpoint(path)
    assert tuple(m2.cfg.conv_channels) == (32, 16) and meta["model"] == "rms-net"
    x = torch.randn(2, 41, 16)
    assert torch.allclose(m.eval()(x)["class_logits"], m2(x)["class_logits"])


def test_tiny_overfit():
    torch.manual_seed(0)
    C, T, D, B = 3, 41, 8, 24
    proto = torch.randn(C, D) * 3
    x = torch.randn(B, T, D) * 0.3
    ev = torch.zeros(B, T, C)
    for b in range(B - 6):                               # 18 event clips, 6 background ones
        c, t = b % C, 5 + (b * 7) % 31
        x[b, t] += proto[c]
        ev[b, t, c] = 1
    m = build_model("rms-net", input_dim=D, num_classes=C, dropout=0.0, reduce_dim=32, conv_channels=(32, 32),
                    fc_dim=32)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    first = None
    for _ in range(150):
        out = m(x)
        loss = m.loss(out, {"x": x, "events": ev})
        first = first if first is not None else loss["loss"].item()
        opt.zero_grad()
        loss["loss"].backward()
        opt.step()
    m.eval()
    out = m(x)
    cls, off, has = clip_targets(ev)
    assert loss["loss"].item() < 0.05 * first
    assert torch.equal(out["class_logits"].argmax(-1), cls)
    assert (torch.sigmoid(out["offset_logit"])[has] - off[has]).abs().max().item() < 1.5 / T


# ---------------------------------------------------------------------------------------------
# The balanced sampler (epoch_clips)
# ---------------------------------------------------------------------------------------------
BALANCED = RMSNet(RMSNet.Config())


def test_balanced_sampler_on_a_hand_made_timeline():
    # events at 20 and 25 (visible) and 80 (unshown); stride-1 clips of 11 frames in a half of 100
    g = one_half_game("g", 100, {20: (3, 1.0), 25: (3, 1.0), 80: (5, -1.0)})
    fg, bg = event_clip_starts(g.events[0], 11)
    assert list(fg) == list(range(10, 26)) + list(range(70, 81))    # every clip holding an event
    assert len(fg) + len(bg) == 90 and not set(fg) & set(bg)
    assert all(not (s <= 20 < s + 11 or s <= 25 < s + 11 or s <= 80 < s + 11) for s in bg)

    sampler = ClipSampler([g], clip_frames=11, batch_size=8, clips=BALANCED.epoch_clips, seed=0)
    n_fg, n_bg = 27, round(27 / C)
    for epoch in (0, 1):
        clips = sampler.epoch_clips(epoch)
        assert len(clips) == n_fg + n_bg == len(np.unique(clips[:, 1]))
        batches = list(sampler.batches(epoch))
        starts = torch.cat([b["x"] for b in batches])[:, 0, 0].numpy().astype(int)
        has_event = torch.cat([b["events"] for b in batches]).abs().sum(dim=(1, 2)).numpy() > 0
        assert sorted(starts[has_event]) == sorted(fg)
        assert len(starts[~has_event]) == n_bg and set(starts[~has_event]) <= set(bg)
    assert len(sampler) == -(-(n_fg + n_bg) // 8)


def test_balanced_sampler_short_half_and_cap():
    g = one_half_game("g", 6, {2: (0, 1.0)})
    fg, bg = event_clip_starts(g.events[0], 11)
    assert list(fg) == [0] and len(bg) == 0
    b = next(ClipSampler([g], clip_frames=11, batch_size=4, clips=BALANCED.epoch_clips).batches(0))
    assert b["x"].shape == (1, 11, 4) and b["x"][0, -1, 0] == 5     # padded with the last frame
    big = one_half_game("h", 400, {t: (1, 1.0) for t in range(20, 400, 40)})
    assert len(ClipSampler([big], clip_frames=11, batch_size=4, clips=BALANCED.epoch_clips, clips_per_epoch=7).epoch_clips(0)) == 7
