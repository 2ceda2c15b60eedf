"""CALF: time-shift encoding, context-aware loss, matching, spotting loss, targets, scores, training."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from games import one_half_game

from spotting_core.engine.sampler import ClipSampler
from spotting_core.errors import SpottingError
from spotting_core.models import build_model, count_parameters
from spotting_core.models.calf import (
    CALF,
    K_V2_SECONDS,
    Config,
    context_aware_loss,
    detection_targets,
    match_detections,
    spotting_loss,
    time_shift_encoding,
)

# one hand-sized K in frames (K1, K2, K3, K4) = (-4, -2, 2, 4), the same for every class here
K_SMALL = torch.tensor([[-4.0], [-2.0], [2.0], [4.0]])


pytestmark = pytest.mark.usefixtures("one_thread")


def small_model(**overrides) -> CALF:
    """The official layout with a small input (D=16) to keep the tests fast."""
    return CALF(Config(input_dim=16, **overrides))


def test_parameter_counts_follow_the_official_layout():
    # official ContextAwareModel(input_size=512, num_classes=17, chunk_size=240, dim_capsule=16,
    # receptive_field=80, num_detections=15), layer by layer
    layers = [512 * 128 + 128, 128 * 32 + 32,                      # conv_1, conv_2
              32 * 8 * 12 + 8, 32 * 16 * 27 + 16, 32 * 32 * 40 + 32, 32 * 64 * 80 + 64,   # pyramid
              152 * 272 * 3 + 272, 2 * 240,                         # conv_seg, batch_seg
              289 * 32 * 3 + 32, 32 * 16 * 3 + 16,                  # conv_spot_1, conv_spot_2
              464 * 30 + 30, 464 * 255 + 255]                       # conv_conf, conv_class
    assert sum(layers) == 578_245
    assert count_parameters(build_model("calf")) == 578_245
    assert count_parameters(build_model("calf", input_dim=2048)) == 578_245 + (2048 - 512) * 128


def test_registry_defaults_are_the_official_ones():
    model = build_model("calf")
    cfg = model.cfg
    assert model.output_mode == "sequence" and model.clip_frames == 240 and model.receptive_field == 80
    assert (cfg.num_detections, cfg.dim_capsule, cfg.nms_window_s, cfg.nms_threshold) == (15, 16, 20.0, 0.0)
    assert (cfg.lambda_coord, cfg.lambda_noobj, cfg.loss_weight_segmentation) == (5.0, 0.5, 0.000367)
    # K in frames = K_V2 (seconds) x 2 fps; Goal is class 2: (-20, -10, 60, 90) s
    assert model.k_frames[:, 2].tolist() == [-40.0, -20.0, 120.0, 180.0]
    assert model.k_frames.shape == (4, 17) and len(K_V2_SECONDS[0]) == 17


def test_time_shift_encoding_hand_made():
    events = torch.zeros(1, 12, 3)
    events[0, [3, 8], 0] = 1.0          # class 0: two events -> the combination rule
    events[0, 5, 1] = -1.0              # class 1: one (unshown) event -> t - 5
    k = K_SMALL.expand(4, 3)            # class 2: no event -> K1 everywhere
    shifts = time_shift_encoding(events, k)[0]
    # class 0, frame by frame (virtual events at -K4 = -4 and T - K1 = 16):
    #  t=0..2  s1 = t + 4 >= K4                        -> s2 = t - 3
    #  t=3,4   s1 = 0, 1 < K3                           -> s1
    #  t=5     s1 = 2 in [K3, K4), s2 = -3: (2-2)/2 = 0 < (-2+3)/2 = 0.5 -> s1 = 2
    #  t=6     s1 = 3, s2 = -2: 0.5 < 0 is false        -> s2 = -2
    #  t=7     s1 = 4 >= K4                             -> s2 = -1
    #  t=8,9   s1 = 0, 1                                -> s1
    #  t=10,11 s1 = 2, 3, s2 = -6, -5 <= K1             -> s1
    assert shifts[:, 0].tolist() == [-3, -2, -1, 0, 1, 2, -2, -1, 0, 1, 2, 3]
    assert shifts[:, 1].tolist() == [t - 5 for t in range(12)]
    assert shifts[:, 2].tolist() == [-4] * 12


def test_context_aware_loss_is_the_formula_case_by_case():
    x = torch.tensor([-6.0, -3.0, -1.0, 0.0, 1.0, 3.0, 5.0]).view(1, 7, 1)
    p = torch.tensor([0.3, 0.6, 0.9, 0.2, 0.7, 0.5, 0.05]).view(1, 7, 1)
    m = math.log(0.9)                     # log(miss margin 0.9) = log(1 - hit margin 0.1)
    expected = [
        max(0.0, -math.log(1 - 0.3) + m),                          # x < K1
        max(0.0, -math.log(1 - 0.6 + 0.6 * (-3 + 4) / 2) + m),     # K1 <= x < K2, r = (x-K1)/(K2-K1)
        0.0,                                                        # K2 <= x < 0
        max(0.0, -math.log(0.2 + 0.8 * 0 / 2) + m),                 # 0 <= x < K3
        max(0.0, -math.log(0.7 + 0.3 * 1 / 2) + m),
        max(0.0, -math.log(1 - 0.5 + 0.5 * (3 - 4) / (2 - 4)) + m),  # K3 <= x < K4
        max(0.0, -math.log(1 - 0.05) + m),                          # x >= K4 (0: under the margin)
    ]
    got = context_aware_loss(x, p, K_SMALL)
    assert got.item() == pytest.approx(sum(expected), rel=1e-6)
    assert expected[1] > 0 and expected[3] > 0 and expected[6] == 0.0


def test_matching_hand_made():
    # rows: two real targets at 0.50 and 0.55, one empty row; predictions at 0.9, 0.52, 0.0
    y_true = torch.tensor([[[1.0, 0.50], [1.0, 0.55], [0.0, 0.0]]])
    y_pred = torch.tensor([[[0.5, 0.90], [0.5, 0.52], [0.5, 0.00]]])
    # round 1: both real rows propose 0.52 (pred 1); it takes the closer row 0.
    # round 2: row 1 proposes the closer free one, 0.9 (0.35 away; 0.0 is 0.55 away).
    # empty rows last: row 2 gets pred 2.
    assert match_detections(y_true, y_pred).tolist() == [[1, 0, 2]]


def test_spotting_loss_is_the_formula_after_matching():
    # N = 2 rows, C = 2 classes: one real target (t = 0.25, class 1), one empty row
    y_true = torch.tensor([[[1.0, 0.25, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]]])
    y_pred = torch.tensor([[[0.6, 0.80, 0.3, 0.7], [0.9, 0.30, 0.4, 0.6]]])
    # the real row takes pred 1 (0.30 is 0.05 away, 0.80 is 0.55), the empty row pred 0
    coord = 5.0 * (0.25 - 0.30) ** 2
    conf = (1 - 0.9) ** 2
    cls = (0 - 0.4) ** 2 + (1 - 0.6) ** 2
    noobj = 0.5 * (0 - 0.6) ** 2
    got = spotting_loss(y_true, y_pred, lambda_coord=5.0, lambda_noobj=0.5)
    assert got.item() == pytest.approx(coord + conf + cls + noobj, rel=1e-6)


def test_targets_from_chunk_events():
    model = small_model()
    events = torch.zeros(2, 240, 17)
    events[0, 100, 2] = 1.0     # Goal, central
    events[0, 100, 0] = -1.0    # unshown Penalty, same frame: class order breaks the tie
    events[0, 30, 5] = 1.0      # in the 40-frame border: no detection target
    events[0, 150, 9] = 1.0
    shifts, y = model.targets(events)
    assert (shifts[:, :40] == -1).all() and (shifts[:, 200:] == -1).all()
    assert shifts[0, 100, 2] == 0 and shifts[0, 110, 2] == 10 and shifts[0, 90, 2] == -10
    assert y.shape == (2, 15, 19)
    assert y[0, :3, 0].tolist() == [1, 1, 1] and y[0, 3:, 0].abs().sum() == 0 and y[1].abs().sum() == 0
    assert y[0, :3, 1].tolist() == pytest.approx([100 / 240, 100 / 240, 150 / 240])
    assert [int(r.argmax()) for r in y[0, :3, 2:]] == [0, 2, 9]
    # more than 15 events: the first 15 by time are kept
    many = torch.zeros(1, 240, 17)
    many[0, 40:60, 3] = 1.0
    rows = detection_targets(model.targets(many)[0] == 0, 15)
    assert rows[0, :, 0].sum() == 15 and rows[0, -1, 1].item() == pytest.approx(54 / 240)


def test_frame_scores_place_each_detection():
    model = small_model(num_classes=2, num_detections=3, k_seconds=((-10, -10), (-5, -5), (5, 5), (10, 10)))
    T = 240
    logit = lambda v: math.log(v / (1 - v))  # noqa: E731
    det = torch.tensor([[[logit(0.8), logit(0.25)], [logit(0.5), logit(0.25)], [logit(0.9), logit(0.6)]]])
    cls = torch.log(torch.tensor([[[0.3, 0.7], [0.9, 0.1], [0.5, 0.5]]]))
    caps = torch.zeros(1, T, 16, 2)
    out = model.frame_scores({"capsules": caps, "detection_logits": det, "class_logits": cls})
    s = out["scores"][0]
    assert s.shape == (T, 2) and out["segmentation"].shape == (1, T, 2)
    # detections 0 and 1 collide at frame 60 = 0.25 * 240: the max per class
    assert s[60].tolist() == pytest.approx([max(0.8 * 0.3, 0.5 * 0.9), max(0.8 * 0.7, 0.5 * 0.1)], rel=1e-5)
    assert s[144].tolist() == pytest.approx([0.45, 0.45], rel=1e-5)   # 0.6 * 240 = 144
    assert s.sum().item() == pytest.approx(0.45 + 0.56 + 0.9, rel=1e-5)


def test_bad_k_and_wrong_chunk_length():
    with pytest.raises(SpottingError, match="K1 < K2 < 0 < K3 < K4"):
        small_model(num_classes=1, k_seconds=((-1,), (-2,), (1,), (2,)))
    with pytest.raises(SpottingError, match="4 rows of 3"):
        small_model(num_classes=3)
    with pytest.raises(ValueError, match="240 frames"):
        small_model()(torch.randn(1, 100, 16))


def test_forward_backward_no_nan_and_sequence_scores():
    torch.manual_seed(0)
    model = small_model()
    x = torch.randn(2, 240, 16)
    events = torch.zeros(2, 240, 17)
    events[0, 120, 2] = 1.0
    out = model(x)
    assert out["capsules"].shape == (2, 240, 16, 17)
    assert out["detection_logits"].shape == (2, 15, 2) and out["class_logits"].shape == (2, 15, 17)
    losses = model.loss(out, {"x": x, "events": events})
    assert set(losses) == {"loss", "segmentation", "spotting"}
    losses["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    scores = model.eval().sequence_scores(torch.randn(500, 16))["scores"]
    assert scores.shape == (500, 17) and ((scores >= 0) & (scores <= 1)).all()


def test_overfits_one_batch():
    torch.manual_seed(0)
    model = small_model()
    x = torch.randn(2, 240, 16)
    events = torch.zeros(2, 240, 17)
    events[0, 100, 2] = 1.0
    events[1, 150, 9] = 1.0
    opt = torch.optim.Adam(model.parameters(), lr=model.cfg.lr)
    losses, seg = [], []
    for _ in range(25):
        out = model.loss(model(x), {"x": x, "events": events})
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
        seg.append(out["segmentation"].item())
    assert losses[-1] < 0.5 * losses[0]
    assert seg[-1] < 0.5 * seg[0]


# ---------------------------------------------------------------------------------------------
# The anchored sampler (epoch_clips)
# ---------------------------------------------------------------------------------------------
def test_anchored_sampler_on_a_hand_made_timeline():
    # CALF's chunks: 40 frames, margin 10 -> each event at a uniform position in [11, 30] of its chunk.
    # Pools: class 0 (frame 5, so its chunks clamp to start 0), class 3 (60, and 65 unshown), class 5
    # (150), background (event-free clips: starts 6..20, 66..110, 151..160).
    g = one_half_game("g", 200, {5: (0, 1.0), 60: (3, 1.0), 65: (3, -1.0), 150: (5, 1.0)})
    chunks = CALF(Config(window_s=20.0, receptive_field_s=5.0))             # 40 frames, margin 10
    sampler = ClipSampler([g], clip_frames=40, batch_size=64, clips=chunks.epoch_clips, seed=3, clips_per_epoch=4000)
    starts = sampler.epoch_clips(0)[:, 1]
    assert starts.min() >= 0 and starts.max() <= 160
    bg = set(range(6, 21)) | set(range(66, 111)) | set(range(151, 161))
    from_bg = np.isin(starts, list(bg))
    with_150 = (starts <= 150) & (150 < starts + 40)            # only class 5's chunks hold frame 150
    with_60_65 = (starts >= 30) & (starts <= 54)                # class 3: 60 or 65 at 11..30
    for pool in (starts == 0, with_60_65, with_150, from_bg):   # one pool in four each (C + background)
        assert 800 < pool.sum() < 1200                          # 1000 +- 7 standard deviations
    assert np.all((starts == 0) | with_60_65 | with_150 | from_bg)
    assert set(150 - starts[with_150]) == set(range(11, 31))    # every position, none in the borders
    x = torch.cat([b["x"] for b in sampler.batches(0)])[:, :, 0].numpy().astype(int)
    assert np.array_equal(x[:, 0], starts) and np.all(np.diff(x, axis=1) == 1)
    assert np.array_equal(sampler.epoch_clips(0), sampler.epoch_clips(0))
    assert not np.array_equal(sampler.epoch_clips(1), sampler.epoch_clips(0))
    assert len(ClipSampler([g], clip_frames=40, batch_size=2, clips=chunks.epoch_clips).epoch_clips(0)) == 4  # = anchors
    with pytest.raises(ValueError):
        CALF(Config(window_s=20.0, receptive_field_s=10.0))                   # margin 20: no room in 40 frames
