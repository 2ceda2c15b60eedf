"""CALF: A Context-Aware Loss Function for Action Spotting in Soccer Videos (Cioppa et al., CVPR 2020).

The SoccerNet-v2 features variant of the official code (SoccerNetv2-DevKit, Task1-ActionSpotting/
CALF: model.py `ContextAwareModel`, loss.py `ContextAwareLoss` and `SpottingLoss`,
preprocessing.py `oneHotToShifts` and `getTimestampTargets`, config/classes.py `K_V2`), rewritten
from a reading of that code. On chunks of 120 s (240 frames at 2 fps):

    frames (B, T, D) -> Linear(D, 128), ReLU -> Linear(128, 32), ReLU               (the official
                        1xD and 1x1 Conv2d: one linear map per frame)
    temporal pyramid    Conv1d(32 -> 8/16/32/64, kernel ceil(R/7), ceil(R/3), ceil(R/2), R), ReLU,
                        'same' zero padding, R = receptive field (40 s = 80 frames); concatenated
                        with its input: 152 channels
    segmentation head   Conv1d(152 -> 16*C, kernel 3) -> capsules (B, T, 16, C) -> BatchNorm2d over
                        the T frames (momentum 0.01, eps 1e-3) -> segmentation score of class c at
                        frame t = the capsule length sqrt(4/16 * sum_d (sigmoid(u_tdc) - 1/2)^2)
    spotting head       [raw capsules (16C), 1 - segmentation (C)] -> ReLU -> MaxPool(3, 2) ->
                        Conv1d(17C -> 32, 3), ReLU -> MaxPool(3, 2) -> Conv1d(32 -> 16, 3), ReLU ->
                        MaxPool(3, 2) -> flatten (16 x 29) -> Linear -> 15 x (confidence, position)
                        and Linear -> 15 x C class logits

Time-shift encoding (`time_shift_encoding`): for every frame t and class c, the signed distance in
frames to the relevant event of c (negative before it, positive after), as `oneHotToShifts`: with
no event of c, K1 everywhere; with one, t - t_event; with several, the shift from the last event
(s1 >= 0) or until the next (s2 < 0), with virtual events at -K4 and T - K1, chosen by the rule
    s1 < K3 -> s1;  s1 >= K4 -> s2;  in between: s1 if s2 <= K1 or (s1-K3)/(K4-K3) < (K2-s2)/(K2-K1),
    else s2.
K1 < K2 < 0 < K3 < K4 are per class: the official K_V2 (seconds) times the frame rate.

Context-aware segmentation loss (`context_aware_loss`), p = segmentation score, x = shift, summed
over every frame and class (margins: miss 0.9, hit 0.1, so both thresholds are log 0.9):
    x < K1          max(0, -log(1 - p)               + log 0.9)   far before: p should be low
    K1 <= x < K2    max(0, -log(1 - p + p r)         + log 0.9),  r = (x - K1)/(K2 - K1)
    K2 <= x < 0     0                                             just before: not penalised
    0 <= x < K3     max(0, -log(p + (1 - p) x/K3)    + log 0.9)   just after: p should be high
    K3 <= x < K4    max(0, -log(1 - p + p r)         + log 0.9),  r = (x - K4)/(K3 - K4)
    x >= K4         max(0, -log(1 - p)               + log 0.9)

Spotting loss (`spotting_loss`), YOLO-like, after the iterative one-to-one matching
(`match_detections`) of the 15 predictions to the 15 target rows, summed over the batch:
    sum_i  y_i [lambda_coord (x_i - x^_i)^2 + (1 - c^_i)^2 + sum_k (y_ik - p^_ik)^2]
         + (1 - y_i) lambda_noobj c^_i^2
with y_i = 1 for a real target row, c^ = sigmoid(confidence logit), x^ = sigmoid(position logit),
p^ = softmax(class logits). Total: 0.000367 * segmentation + 1.0 * spotting (official defaults),
lambda_coord 5, lambda_noobj 0.5.

Targets come from batch["events"] (B, T, C) of the chunk alone, inside `loss()`. Like the official
training chunks, the first and last R/2 = 40 frames get the shift -1 (no segmentation loss) and
only events of the central 160 frames become detection targets (up to 15, by time then class,
position t / T). Visible and unshown events both count (the official training labels ignore
visibility). Approximation at the chunk borders: the official code encodes the whole half and then
slices the chunk, so an event up to K4 frames (Penalty: 200) outside the chunk can still shape the
targets of the central frames; we only see the chunk, so such a frame gets the target of "far from
any event" instead. The two agree whenever no event of that class lies outside the chunk within
max(|K1|, K4) frames of its central part.

Differences from the official code, each deliberate:
- Outputs are logits (capsules after BatchNorm, confidence/position and class logits); sigmoid and
  softmax run in the loss and in `frame_scores`. The capsule length uses sqrt(. + 1e-12) so that
  its gradient stays finite at 0, and the loss clamps p to [1e-6, 1 - 1e-6] before the logs.
- The matching breaks ties and handles every score exactly as the official rounds do, except that
  a pair at distance exactly 1 (official: treated as "unavailable", a corner case that can assign
  two rows to one prediction) is a valid, worst-choice pair here.
- frame_scores: each of the 15 detections puts confidence x class probability for every class at
  frame round(position * T) (the inverse of the target encoding t / T; the official decoding
  floor(position * (T - 1)) lands one frame early), the maximum where detections collide, 0 where
  none lands. The official code keeps only the arg-max class of each detection. NMS: 20 s window,
  threshold 0, as the official test code (NMS(detections, 20 * framerate)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spotting_core.errors import SpottingError
from spotting_core.models.base import ClipIndex, SpottingModel, event_clip_starts

# The official K_V2 (config/classes.py), in seconds, rows K1..K4, columns in CLASSES_V2 order.
K_V2_SECONDS: tuple[tuple[float, ...], ...] = (
    (-100, -98, -20, -40, -96, -5, -8, -93, -99, -31, -75, -10, -97, -75, -20, -84, -18),
    (-50, -49, -10, -20, -48, -3, -4, -46, -50, -15, -37, -5, -49, -38, -10, -42, -9),
    (50, 49, 60, 10, 48, 3, 4, 46, 50, 15, 37, 5, 49, 38, 10, 42, 9),
    (100, 98, 90, 20, 96, 5, 8, 93, 99, 31, 75, 10, 97, 75, 20, 84, 18),
)  # fmt: skip

CAPSULE_EPS = 1e-12   # inside the capsule-length sqrt
PROB_EPS = 1e-6       # p is clamped to [PROB_EPS, 1 - PROB_EPS] in the segmentation loss


# ---------------------------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------------------------
def time_shift_encoding(events: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """(B, T, C) event indicator (non-zero = event) and K (4, C) in frames -> (B, T, C) shifts.

    The official `oneHotToShifts`, vectorised: no event -> K1; one event -> t - t_event; several ->
    the combination rule of the module docstring.
    """
    B, T, C = events.shape
    k = k.to(device=events.device, dtype=torch.float32)
    k1, k2, k3, k4 = (row.view(1, 1, C) for row in k)                     # (1, 1, C) each
    is_event = events != 0                                                 # (B, T, C)
    t = torch.arange(T, device=events.device).view(1, T, 1).expand(B, T, C)
    big = T + 1
    # last event at or before t, next event strictly after t (index), or none
    last = torch.cummax(torch.where(is_event, t, -big), dim=1).values     # (B, T, C)
    nxt_incl = torch.flip(torch.cummin(torch.flip(torch.where(is_event, t, 2 * big), [1]), dim=1).values, [1])
    nxt = torch.cat([nxt_incl[:, 1:], torch.full_like(nxt_incl[:, :1], 2 * big)], dim=1)
    tf = t.float()
    last_pos = torch.where(last >= 0, last.float(), -k4)                   # virtual event at -K4
    next_pos = torch.where(nxt < 2 * big, nxt.float(), T - k1)             # virtual event at T - K1
    s1 = tf - last_pos                                                     # >= 0
    s2 = tf - next_pos                                                     # < 0
    prefer_s1 = (s2 <= k1) | ((s1 - k3) / (k4 - k3) < (k2 - s2) / (k2 - k1))
    several = torch.where(s1 < k3, s1, torch.where(s1 < k4, torch.where(prefer_s1, s1, s2), s2))
    count = is_event.sum(dim=1, keepdim=True)                              # (B, 1, C)
    first = torch.argmax(is_event.int(), dim=1, keepdim=True).float()      # (B, 1, C), if one
    shifts = torch.where(count == 1, tf - first, several)
    return torch.where(count == 0, k1.expand(B, T, C), shifts)


def detection_targets(is_event: torch.Tensor, num_detections: int) -> torch.Tensor:
    """(B, T, C) bool -> (B, N, 2 + C) rows (1, t / T, one-hot class), by time then class.

    The official `getTimestampTargets`: at most N events per chunk (the rest are left out, as there).
    """
    B, T, C = is_event.shape
    targets = torch.zeros(B, num_detections, 2 + C, device=is_event.device)
    for b in range(B):
        tc = torch.nonzero(is_event[b])[:num_detections]                   # (n, 2) rows (t, c), row-major
        n = tc.shape[0]
        targets[b, :n, 0] = 1.0
        targets[b, :n, 1] = tc[:, 0].float() / T
        targets[b, torch.arange(n, device=is_event.device), 2 + tc[:, 1]] = 1.0
    return targets


# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------
def context_aware_loss(shifts: torch.Tensor, p: torch.Tensor, k: torch.Tensor, *,
                       hit_radius: float = 0.1, miss_radius: float = 0.9) -> torch.Tensor:
    """The context-aware segmentation loss (module docstring), summed. shifts, p: (B, T, C); k: (4, C)."""
    k = k.to(device=p.device, dtype=p.dtype)
    k1, k2, k3, k4 = (row.view(1, 1, -1) for row in k)
    x = shifts.to(p.dtype)
    p = p.clamp(PROB_EPS, 1.0 - PROB_EPS)
    log_miss, log_hit = math.log(miss_radius), math.log(1.0 - hit_radius)
    far = F.relu(-torch.log(1.0 - p) + log_miss)
    r_before = (torch.minimum(torch.maximum(x, k1), k2) - k1) / (k2 - k1)  # in [0, 1]
    before = F.relu(-torch.log(1.0 - p + p * r_before) + log_miss)
    r_after = torch.minimum(torch.maximum(x, torch.zeros_like(x)), k3) / k3
    after = F.relu(-torch.log(p + (1.0 - p) * r_after) + log_hit)
    r_late = (torch.minimum(torch.maximum(x, k3), k4) - k4) / (k3 - k4)
    late = F.relu(-torch.log(1.0 - p + p * r_late) + log_miss)
    zero = torch.zeros_like(p)
    loss = torch.where(x < k1, far,
           torch.where(x < k2, before,
           torch.where(x < 0, zero,
           torch.where(x < k3, after,
           torch.where(x < k4, late, far)))))  # fmt: skip
    return loss.sum()


@torch.no_grad()
def match_detections(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    """The official iterative one-to-one matching: (B, N, 2 + C) each -> (B, N) prediction index per row.

    Closeness is 1 - |x_i - x^_j| on positions. Real target rows first, then the empty rows onto
    the predictions left. In each round every unmatched row proposes its closest free prediction
    (ties: lowest index), and every proposed prediction takes its closest proposer (ties: lowest
    row); rounds repeat until the rows of the phase are matched.
    """
    B, N = y_true.shape[:2]
    close = 1.0 - (y_true[:, :, 1].unsqueeze(-1) - y_pred[:, :, 1].unsqueeze(-2)).abs()  # (B, N, N)
    real = y_true[:, :, 0] > 0.5                                                          # (B, N)
    perm = torch.full((B, N), -1, dtype=torch.long, device=y_true.device)
    row_free = torch.ones(B, N, dtype=torch.bool, device=y_true.device)
    col_free = torch.ones(B, N, dtype=torch.bool, device=y_true.device)
    neg = torch.tensor(float("-inf"), device=y_true.device, dtype=close.dtype)
    for phase in (real, ~real):
        for _ in range(N):
            active = row_free & phase                                                     # (B, N)
            if not active.any():
                break
            score = torch.where(active.unsqueeze(-1) & col_free.unsqueeze(-2), close, neg)  # (B, N, N)
            choice = score.argmax(dim=-1)                                                 # (B, N)
            proposes = F.one_hot(choice, N).bool() & active.unsqueeze(-1)                 # (B, N, N)
            offers = torch.where(proposes, score, neg)
            winner = offers.argmax(dim=1)                                                 # (B, N) row per col
            taken = proposes.any(dim=1)                                                   # (B, N) cols
            b_idx, cols = torch.nonzero(taken, as_tuple=True)
            rows = winner[b_idx, cols]
            perm[b_idx, rows] = cols
            row_free[b_idx, rows] = False
            col_free[b_idx, cols] = False
    return perm


def spotting_loss(y_true: torch.Tensor, y_pred: torch.Tensor, *, lambda_coord: float = 5.0,
                  lambda_noobj: float = 0.5) -> torch.Tensor:
    """YOLO-like spotting loss (module docstring), summed. y_pred holds probabilities (B, N, 2 + C)."""
    perm = match_detections(y_true, y_pred)
    y_pred = torch.gather(y_pred, 1, perm.unsqueeze(-1).expand_as(y_pred))               # (B, N, 2 + C)
    obj = y_true[:, :, 0]
    loss = (obj * lambda_coord * (y_true[:, :, 1] - y_pred[:, :, 1]) ** 2
            + obj * (y_true[:, :, 0] - y_pred[:, :, 0]) ** 2
            + (1.0 - obj) * lambda_noobj * (y_true[:, :, 0] - y_pred[:, :, 0]) ** 2
            + obj * ((y_true[:, :, 2:] - y_pred[:, :, 2:]) ** 2).sum(dim=-1))
    return loss.sum()


# ---------------------------------------------------------------------------------------------
# Config and model
# ---------------------------------------------------------------------------------------------
@dataclass
class Config:
    input_dim: int = 512
    num_classes: int = 17
    fps: float = 2.0
    window_s: float = 120.0             # chunk_size
    receptive_field_s: float = 40.0
    num_detections: int = 15
    dim_capsule: int = 16
    k_seconds: tuple | None = None      # (4, C) K1..K4 in seconds; None = the official K_V2
    hit_radius: float = 0.1
    miss_radius: float = 0.9
    lambda_coord: float = 5.0
    lambda_noobj: float = 0.5
    loss_weight_segmentation: float = 0.000367
    loss_weight_detection: float = 1.0
    nms_window_s: float = 20.0
    nms_threshold: float = 0.0
    # training defaults (official main.py; train.py reads them with getattr)
    lr: float = 1e-3
    batch_size: int = 32
    epochs: int = 1000
    patience: int = 25


def _pooled_length(t: int, times: int = 3) -> int:
    for _ in range(times):
        t = (t - 3) // 2 + 1     # MaxPool1d(3, stride 2)
    return t


class CALF(SpottingModel):
    Config = Config
    sampling = "anchored"  # official getChunks_anchors: chunks placed around events (epoch_clips)
    output_mode = "sequence"

    def __init__(self, cfg: Config):
        super().__init__(cfg)
        C, dc = cfg.num_classes, cfg.dim_capsule
        k = torch.tensor(K_V2_SECONDS if cfg.k_seconds is None else cfg.k_seconds, dtype=torch.float32)
        if k.shape != (4, C):
            raise SpottingError(f"calf: k_seconds must be 4 rows of {C} values (K1..K4 per class); "
                                f"got shape {tuple(k.shape)}")
        if not bool(((k[0] < k[1]) & (k[1] < 0) & (0 < k[2]) & (k[2] < k[3])).all()):
            raise SpottingError("calf: k_seconds must satisfy K1 < K2 < 0 < K3 < K4 for every class")
        self.register_buffer("k_frames", k * cfg.fps, persistent=False)   # (4, C)
        self.receptive_field = int(round(cfg.receptive_field_s * cfg.fps))
        self.anchor_margin = self.receptive_field  # anchored chunks: events at (R, T - R] in the chunk
        if not 0 <= 2 * self.anchor_margin < self.clip_frames:
            raise ValueError(f"calf: anchored chunks need 2 x receptive field ({2 * self.anchor_margin} frames) "
                             f"< chunk ({self.clip_frames} frames)")
        pooled = _pooled_length(self.clip_frames)
        if self.receptive_field < 1 or pooled < 1:
            raise ValueError(f"calf: window {self.clip_frames} frames / receptive field "
                             f"{self.receptive_field} frames are too short")
        self.reduce_1 = nn.Linear(cfg.input_dim, 128)
        self.reduce_2 = nn.Linear(128, 32)
        rf = self.receptive_field
        self.pyramid = nn.ModuleList(
            nn.Conv1d(32, width, kernel_size=math.ceil(rf / div))
            for width, div in ((8, 7), (16, 3), (32, 2), (64, 1))
        )
        self.seg_conv = nn.Conv1d(152, dc * C, kernel_size=3, padding=1)
        self.seg_norm = nn.BatchNorm2d(self.clip_frames, momentum=0.01, eps=0.001)  # over frames
        self.pool = nn.MaxPool1d(kernel_size=3, stride=2)
        self.spot_conv_1 = nn.Conv1d(C * (dc + 1), 32, kernel_size=3, padding=1)
        self.spot_conv_2 = nn.Conv1d(32, 16, kernel_size=3, padding=1)
        self.conf_head = nn.Linear(16 * pooled, 2 * cfg.num_detections)
        self.class_head = nn.Linear(16 * pooled, cfg.num_detections * C)

    # ----- sampler ------------------------------------------------------------------------------
    def epoch_clips(self, index: ClipIndex, rng: np.random.Generator,
                    clips_per_epoch: int | None = None) -> np.ndarray:
        """Anchored chunks (official `getChunks_anchors` + `__getitem__`), drawn afresh every epoch.

        A class is picked uniformly among the event classes that have anchors and "background",
        then one of its events, and the chunk is placed so that the event falls at a uniform position
        in (margin, clip_frames - margin], margin = the receptive field (the official shift in
        [-chunk + receptive_field, -receptive_field)); a background chunk is a uniform stride-1 clip
        with no event inside (the official code further keeps it outside every event's K1..K4
        context). Starts are clamped into the half. `clips_per_epoch` chunks (official: 18,000),
        by default as many as there are event anchors.
        """
        W, margin = index.clip_frames, self.anchor_margin
        anchors = [np.stack(np.nonzero(ev), axis=1) for ev in index.events]  # per half: (n, 2) (frame, class)
        rows = np.concatenate([np.concatenate([np.full((len(a), 1), h), a], axis=1)
                               for h, a in enumerate(anchors)]).astype(np.int64)  # (n, 3) (half, frame, class)
        per_class = [rows[rows[:, 2] == c, :2] for c in range(index.num_classes)]  # per class (n_c, 2)
        bg = [event_clip_starts(ev, W)[1] for ev in index.events]
        background = np.concatenate([np.stack([np.full(len(b), h), b], axis=1)
                                     for h, b in enumerate(bg)]).astype(np.int64)  # (n_B, 2)
        n = int(clips_per_epoch) if clips_per_epoch is not None else max(sum(len(a) for a in per_class), 1)
        pools = [a for a in per_class if len(a)] + ([background] if len(background) else [])
        if not pools:
            raise SpottingError("anchored sampling: no event and no event-free clip in the training halves")
        pick = rng.integers(len(pools), size=n)                                  # class (or background) per chunk
        clips = np.zeros((n, 2), dtype=np.int64)
        lo, hi = margin + 1, W - margin                                          # event position in [lo, hi]
        for k, pool in enumerate(pools):
            sel = np.nonzero(pick == k)[0]
            chosen = pool[rng.integers(len(pool), size=len(sel))]               # (m, 2) (half, frame or start)
            clips[sel, 0] = chosen[:, 0]
            if pool is background:
                clips[sel, 1] = chosen[:, 1]
            else:
                clips[sel, 1] = chosen[:, 1] - rng.integers(lo, hi + 1, size=len(sel))
        last = np.maximum(index.lengths[clips[:, 0]] - W, 0)
        clips[:, 1] = np.clip(clips[:, 1], 0, last)
        return clips

    # ----- network ------------------------------------------------------------------------------
    def segmentation_score(self, capsules: torch.Tensor) -> torch.Tensor:
        """(B, T, dc, C) capsule logits -> (B, T, C) capsule lengths in [0, 1]."""
        sq = ((torch.sigmoid(capsules) - 0.5) ** 2).sum(dim=2) * 4.0 / self.cfg.dim_capsule
        return torch.sqrt(sq + CAPSULE_EPS)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # (B, T, D)
        B, T, _ = x.shape
        if T != self.clip_frames:
            raise ValueError(f"CALF takes chunks of exactly {self.clip_frames} frames, got {T}")
        C, dc = self.num_classes, self.cfg.dim_capsule
        h = F.relu(self.reduce_2(F.relu(self.reduce_1(x)))).transpose(1, 2)   # (B, 32, T)
        levels = [h]
        for conv in self.pyramid:
            k = conv.kernel_size[0]
            levels.append(F.relu(conv(F.pad(h, ((k - 1) // 2, k - 1 - (k - 1) // 2)))))
        h = torch.cat(levels, dim=1)                                          # (B, 152, T)
        seg = self.seg_conv(h)                                                # (B, dc*C, T)
        capsules = self.seg_norm(seg.transpose(1, 2).reshape(B, T, dc, C))    # (B, T, dc, C)
        not_action = 1.0 - self.segmentation_score(capsules)                  # (B, T, C)
        h = torch.cat([seg, not_action.transpose(1, 2)], dim=1)               # (B, C*(dc+1), T)
        h = self.pool(F.relu(h))
        h = self.pool(F.relu(self.spot_conv_1(h)))
        h = self.pool(F.relu(self.spot_conv_2(h)))                            # (B, 16, T')
        h = h.reshape(B, -1)                                                  # (B, 16*T'), channel-major
        n = self.cfg.num_detections
        return {
            "capsules": capsules,                                             # (B, T, dc, C)
            "detection_logits": self.conf_head(h).view(B, n, 2),              # (B, N, 2): conf, position
            "class_logits": self.class_head(h).view(B, n, C),                 # (B, N, C)
        }

    # ----- loss ---------------------------------------------------------------------------------
    def targets(self, events: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, C) events of the chunk -> segmentation shifts (B, T, C), detection rows (B, N, 2 + C)."""
        shifts = time_shift_encoding(events, self.k_frames)
        border = math.ceil(self.receptive_field / 2)
        shifts[:, :border] = -1.0                  # official: no segmentation loss at the borders
        shifts[:, shifts.shape[1] - border:] = -1.0
        return shifts, detection_targets(shifts == 0, self.cfg.num_detections)

    def predictions(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, N, 2 + C) probabilities: sigmoid confidence and position, softmax classes."""
        return torch.cat([torch.sigmoid(outputs["detection_logits"]),
                          torch.softmax(outputs["class_logits"], dim=-1)], dim=-1)

    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        shifts, y_true = self.targets(batch["events"].to(outputs["capsules"].device))
        p = self.segmentation_score(outputs["capsules"])
        seg = context_aware_loss(shifts, p, self.k_frames, hit_radius=self.cfg.hit_radius,
                                 miss_radius=self.cfg.miss_radius)
        spot = spotting_loss(y_true, self.predictions(outputs), lambda_coord=self.cfg.lambda_coord,
                             lambda_noobj=self.cfg.lambda_noobj)
        total = self.cfg.loss_weight_segmentation * seg + self.cfg.loss_weight_detection * spot
        return {"loss": total, "segmentation": seg.detach(), "spotting": spot.detach()}

    # ----- scores -------------------------------------------------------------------------------
    def frame_scores(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        capsules = outputs["capsules"]
        B, T, _, C = capsules.shape
        y = self.predictions(outputs)                                         # (B, N, 2 + C)
        frame = torch.round(y[:, :, 1] * T).long().clamp_(0, T - 1)           # (B, N)
        src = y[:, :, :1] * y[:, :, 2:]                                       # (B, N, C)
        scores = torch.zeros(B, T, C, device=y.device, dtype=y.dtype)
        scores.scatter_reduce_(1, frame.unsqueeze(-1).expand(-1, -1, C), src, reduce="amax")
        return {"scores": scores, "segmentation": self.segmentation_score(capsules)}

    # ----- official checkpoints -------------------------------------------------------------------
    @classmethod
    def official_layout(cls, state_dict, params):
        """The official `ContextAwareModel` (Benchmarks/CALF/src/model.py) -> ours, weight for weight.

        Its Conv2d layers act on (B, 1, T, D) / (B, channels, T, 1) maps with kernels (1, D), (1, 1) or
        (k, 1), so each is our Linear / Conv1d with the singleton kernel axes dropped: conv_1 -> reduce_1,
        conv_2 -> reduce_2, conv_p_1..4 -> pyramid.0..3, conv_seg -> seg_conv, batch_seg -> seg_norm,
        conv_spot_1/2 -> spot_conv_1/2, conv_conf -> conf_head, conv_class -> class_head. The sizes come
        from the shapes: classes = conv_spot_1 inputs - conv_seg outputs, capsule = conv_seg outputs /
        classes, detections = conv_conf outputs / 2, chunk = batch_seg features (frames), receptive
        field = conv_p_4 kernel (frames); the frame rate from the log (`framerate`, default 2).
        """
        sd = state_dict
        names = {"conv_1": "reduce_1", "conv_2": "reduce_2", "conv_p_1": "pyramid.0", "conv_p_2": "pyramid.1",
                 "conv_p_3": "pyramid.2", "conv_p_4": "pyramid.3", "conv_seg": "seg_conv",
                 "conv_spot_1": "spot_conv_1", "conv_spot_2": "spot_conv_2", "conv_conf": "conf_head",
                 "conv_class": "class_head"}
        norm = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
        expected = {f"{n}.{p}" for n in names for p in ("weight", "bias")} | {f"batch_seg.{p}" for p in norm}
        if set(sd) != expected or any(sd[f"{n}.weight"].ndim != 4 for n in names):
            return None
        seg_out, spot_in = sd["conv_seg.weight"].shape[0], sd["conv_spot_1.weight"].shape[1]
        C = int(spot_in - seg_out)
        if C < 1 or seg_out % C or sd["conv_conf.weight"].shape[0] % 2 or sd["conv_class.weight"].shape[0] % C:
            return None
        fps = float(params.get("framerate", 2))
        options = {"input_dim": int(sd["conv_1.weight"].shape[3]), "num_classes": C, "fps": fps,
                   "dim_capsule": int(seg_out // C), "num_detections": int(sd["conv_conf.weight"].shape[0] // 2),
                   "window_s": int(sd["batch_seg.weight"].shape[0]) / fps,
                   "receptive_field_s": int(sd["conv_p_4.weight"].shape[2]) / fps}
        ours = {}
        for official, mine in names.items():
            w = sd[f"{official}.weight"]                          # (out, in, kh, kw) with one of kh, kw = 1
            if official == "conv_1":
                w = w[:, 0, 0, :]                                 # (128, D): kernel (1, D) on one channel
            elif official in ("conv_2", "conv_conf", "conv_class"):
                w = w[:, :, 0, 0]                                 # 1x1 -> Linear (out, in)
            else:
                w = w[:, :, :, 0]                                 # (k, 1) -> Conv1d (out, in, k)
            ours[f"{mine}.weight"], ours[f"{mine}.bias"] = w.contiguous(), sd[f"{official}.bias"]
        ours.update({f"seg_norm.{p}": sd[f"batch_seg.{p}"] for p in norm})
        return options, ours
