"""RMS-Net: Regression and Masking for Soccer Event Spotting (Tomei et al., ICPR 2020, arXiv 2102.07624).

A light 1D-conv network on a 41-frame clip (20.5 s at 2 fps) with two sibling heads:
    - classification over C + 1 classes (the C events, then background at index C);
    - a sigmoid regression of where the event sits in the clip (relative offset in [0, 1]).

    x (B, T, D) -> Linear D->256, ReLU                      per frame
                -> Conv1d 256->256 k9, ReLU -> Conv1d 256->128 k9, ReLU -> Dropout(0.1)
                -> max over time (B, 128) -> Linear 128->64, ReLU
                -> class_logits (B, C+1)      offset_logit (B,)

Layer widths. The issue / ICPR paper description is used by default (Linear D->256, two k=9 temporal
convolutions to 256 and 128 channels, FC 128->64). The authors' later SoccerNet-v2 feature code
(`RMSNet(features_size, num_classes)`) has no per-frame Linear, convolutions D->512->256 and an FC
256->128; `Config(reduce_dim=0, conv_channels=(512, 256), fc_dim=128)` builds exactly that network
(3,575,059 parameters for D=512; the default is 1,025,939 for D=512).

Loss (the paper's, and the official code's): L = CE(class) + lambda * MSE(sigmoid(offset), target),
lambda = 10, the MSE averaged over the clips of the batch that hold an event only.

Targets, derived from batch["events"] (B, T, C) (nonzero = an event, visible or unshown):
    the event of the clip is the one whose frame is nearest the clip centre ((T-1)/2; ties go to
    the earlier frame; if one frame holds several classes, the lowest class index);
    class = its class, offset = (t + 0.5) / T (t = its frame index in the clip): the centre of its
    frame, which is the official code's rel_offset = 0.5 - shift / T; clips without an event are
    background (class C) and carry no offset loss.

Inference (`sequence_scores`). Clips of T frames are cut every `inference_stride` frames (0 = T,
non-overlapping clips, the official code's test_overlap=0; 1 = a clip centred on every frame), the half
edge-padded by repeating its first/last frame. Each clip k puts its C event probabilities at the frame
its regression points to, frame_k = round(start_k + offset_k * T - 0.5), clamped to the half; when
several clips point to the same frame each class keeps its maximum (one scatter_reduce, no Python loop
per clip). Frames no clip points to score 0. The official code keeps only each clip's arg-max class
when it is not background; we keep every class's probability and let NMS (a 4 s window, i.e. the
official |dt| < 2000 ms suppression) pick the peaks. One measurement on the synthetic benchmark
(`synth.generate(games=10, seed=0, timelines=<the shared valid labels>, half_minutes=20)`, the model
after 2 epochs of `train.fit`, test split): non-overlapping clips + 4 s NMS 0.257 loose / 0.071 tight
Average-mAP; stride 1 + 4 s NMS 0.186 / 0.098; stride 1 + 20 s NMS 0.291 / 0.074 (max-pool baseline
after 10 epochs: 0.071 / 0.014).

Masking M(p, q) (`augment`, training only). The paper's full text was not reachable from here; the
definition below follows the issue's: with probability p = 1/3, a clip holding an event has the fraction
q = 0.5 of its pre-event context replaced by a background sequence. Precisely, for the target event at
frame e, the n = round(q * e) frames just before it, [e - n, e), are replaced by the frames at the
same positions of a clip of the same batch that holds no event (drawn uniformly among them). Those
are the frames whose content is shared by look-alike classes (a shot before a goal), so the network
must use the event and what follows it. The event frame and everything after it are kept, so class
and offset targets are unchanged. A batch without any background clip is returned unmasked.

Balanced sampling (`epoch_clips`, `sampling = "balanced"`). Each training epoch holds:
    1. every stride-1 clip of T frames that holds at least one event (each event contributes the T
       clips that contain it, at every position); call their number n_F;
    2. n_F / C background clips (no event inside), drawn afresh each epoch among all clips with no
       event, C = num_classes;
shuffled together. (The official code caps step 1 at 1,000 random clips per class and draws 1,000
background clips; n_F / C is the issue's per-epoch background budget, the average clips per class.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spotting_core.models.base import ClipIndex, SpottingModel, event_clip_starts, shuffle_and_cap
from spotting_core.models.losses import masked_mse


# ---------------------------------------------------------------------------------------------
# Targets and masking (pure functions, tested on hand-made batches)
# ---------------------------------------------------------------------------------------------
def event_frame(events: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """events (B, T, C) -> (frame of the event nearest the clip centre (B,) long, has_event (B,) bool)."""
    B, T, _ = events.shape
    frame_has = events.ne(0).any(dim=-1)                              # (B, T)
    dist = (torch.arange(T, device=events.device, dtype=torch.float32) - (T - 1) / 2.0).abs()
    dist = torch.where(frame_has, dist.expand(B, T), torch.tensor(float("inf"), device=events.device))
    return dist.argmin(dim=1), frame_has.any(dim=1)                   # argmin: the first (earlier) on ties


def clip_targets(events: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """events (B, T, C) -> (class (B,) long, C = background; offset (B,) float; has_event (B,) bool)."""
    B, T, C = events.shape
    t_star, has = event_frame(events)
    rows = torch.arange(B, device=events.device)
    cls = events[rows, t_star].ne(0).to(torch.uint8).argmax(dim=-1)  # (B,) lowest class at that frame
    cls = torch.where(has, cls, torch.full_like(cls, C))
    offset = (t_star.to(torch.float32) + 0.5) / T
    return cls, offset, has


def mask_pre_event(x: torch.Tensor, events: torch.Tensor, *, p: float, q: float,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """RMS-Net masking M(p, q): returns (x', events', masked (B,) bool). See the module docstring.

    x (B, T, D) features, or (B, T, H, W, 3) frames (the same frames are replaced), events (B, T, C).
    Inputs are not modified.
    """
    B, T = x.shape[:2]
    device = x.device
    e, has = event_frame(events)                                      # the target event's frame
    background = torch.nonzero(~has).flatten()                        # clips with no event
    if background.numel() == 0 or not has.any():
        return x, events, torch.zeros(B, dtype=torch.bool, device=device)
    n = torch.round(q * e.to(torch.float32)).to(torch.long)           # frames to replace before e
    draw = torch.rand(B, generator=generator, device="cpu").to(device)
    masked = has & (draw < p) & (n > 0)
    pick = torch.randint(0, background.numel(), (B,), generator=generator, device="cpu").to(device)
    source = background[pick]                                         # (B,) a background clip each
    t = torch.arange(T, device=device)
    span = masked[:, None] & (t[None] >= (e - n)[:, None]) & (t[None] < e[:, None])  # (B, T)
    x_new = torch.where(span.view(B, T, *[1] * (x.ndim - 2)), x[source], x)  # (B, T, D) or frames
    events_new = torch.where(span[..., None], events[source], events)  # background rows: all zero
    return x_new, events_new, masked


# ---------------------------------------------------------------------------------------------
# Config and model
# ---------------------------------------------------------------------------------------------
@dataclass
class Config:
    input_dim: int = 512
    num_classes: int = 17
    fps: float = 2.0
    window_s: float = 20.5                       # 41 frames at 2 fps
    reduce_dim: int = 256                        # per-frame Linear D -> reduce_dim; 0 = none
    conv_channels: tuple[int, int] = (256, 128)  # the two temporal convolutions
    kernel_size: int = 9
    fc_dim: int = 64
    dropout: float = 0.1
    mse_weight: float = 10.0                     # lambda
    mask_p: float = 1.0 / 3.0                    # masking M(p, q)
    mask_q: float = 0.5
    inference_stride: int = 0                    # 0 = non-overlapping clips (official); 1 = every frame
    nms_window_s: float = 4.0                    # official NMS: drop same-class spots with |dt| < 2 s
    nms_threshold: float = 1e-3                  # frames no clip pointed to score 0
    lr: float = 1e-3                             # training defaults of the authors' feature code
    batch_size: int = 64
    epochs: int = 50


class RMSNet(SpottingModel):
    Config = Config
    sampling = "balanced"
    output_mode = "center"

    def __init__(self, cfg: Config):
        super().__init__(cfg)
        c1, c2 = cfg.conv_channels
        width = cfg.reduce_dim or cfg.input_dim
        self.reduce = nn.Linear(cfg.input_dim, cfg.reduce_dim) if cfg.reduce_dim else nn.Identity()
        pad = cfg.kernel_size // 2
        self.conv1 = nn.Conv1d(width, c1, cfg.kernel_size, padding=pad)
        self.conv2 = nn.Conv1d(c1, c2, cfg.kernel_size, padding=pad)
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(c2, cfg.fc_dim)
        self.head_class = nn.Linear(cfg.fc_dim, cfg.num_classes + 1)
        self.head_offset = nn.Linear(cfg.fc_dim, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # x: (B, T, D)
        h = self.reduce(x)
        if self.cfg.reduce_dim:
            h = F.relu(h)                                   # (B, T, 256)
        h = h.transpose(1, 2)                               # (B, 256, T)
        h = F.relu(self.conv1(h))                           # (B, c1, T)
        h = self.dropout(F.relu(self.conv2(h)))             # (B, c2, T)
        h = h.amax(dim=2)                                   # (B, c2) max over time
        h = F.relu(self.fc(h))                              # (B, fc_dim)
        return {"class_logits": self.head_class(h),         # (B, C + 1)
                "offset_logit": self.head_offset(h).squeeze(-1)}  # (B,)

    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        cls, offset, has = clip_targets(batch["events"].to(outputs["class_logits"].device))
        ce = F.cross_entropy(outputs["class_logits"], cls)
        mse = masked_mse(torch.sigmoid(outputs["offset_logit"]), offset, has)
        return {"loss": ce + self.cfg.mse_weight * mse, "ce": ce, "mse": mse}

    def frame_scores(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """{"scores": (B, 1, C) event probabilities of the clip, "offset": (B, 1) relative position}."""
        probs = torch.softmax(outputs["class_logits"], dim=-1)[:, : self.num_classes]
        return {"scores": probs[:, None], "offset": torch.sigmoid(outputs["offset_logit"])[:, None]}

    def augment(self, batch: dict[str, torch.Tensor], *, generator: torch.Generator | None = None
                ) -> dict[str, torch.Tensor]:
        x, events, _ = mask_pre_event(batch["x"], batch["events"], p=self.cfg.mask_p, q=self.cfg.mask_q,
                                      generator=generator)
        return {**batch, "x": x, "events": events}

    def epoch_clips(self, index: ClipIndex, rng: np.random.Generator,
                    clips_per_epoch: int | None = None) -> np.ndarray:
        """The balanced sampler (module docstring): every clip holding an event + n_F / C background clips."""
        fg, bg = [], []
        for h, ev in enumerate(index.events):
            f, b = event_clip_starts(ev, index.clip_frames)
            fg.append(np.stack([np.full(len(f), h), f], axis=1))
            bg.append(np.stack([np.full(len(b), h), b], axis=1))
        foreground = np.concatenate(fg).astype(np.int64)  # (n_F, 2) (half, start)
        background = np.concatenate(bg).astype(np.int64)  # (n_B, 2)
        n_bg = min(int(round(len(foreground) / index.num_classes)), len(background))
        pick = rng.choice(len(background), size=n_bg, replace=False) if n_bg else np.zeros(0, np.int64)
        return shuffle_and_cap(np.concatenate([foreground, background[pick]]), rng, clips_per_epoch)

    @torch.no_grad()
    def sequence_scores(self, feats: torch.Tensor, *, batch_size: int = 256, entities: torch.Tensor | None = None,
                        entity_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """(T, D) -> {"scores": (T, C)}: each clip's probabilities placed at its regressed frame (no entities)."""
        if feats.ndim != 2:
            raise ValueError(f"expected (T, D) features, got {tuple(feats.shape)}")
        T, W = feats.shape[0], self.clip_frames
        stride = self.cfg.inference_stride or W
        device = next(self.parameters()).device
        feats = feats.to(device=device, dtype=torch.float32)
        # stride 1: a clip centred on every frame; stride W: back-to-back clips from frame 0 (official)
        starts = torch.arange(0, T, stride, device=device) - max(W - stride, 0) // 2
        offsets = torch.arange(W, device=device)
        probs, frames = [], []
        for b in range(0, len(starts), batch_size):
            s = starts[b:b + batch_size]
            idx = (s[:, None] + offsets[None]).clamp_(0, T - 1)              # (N, W)
            out = self.frame_scores(self(feats[idx]))                        # x: (N, W, D)
            probs.append(out["scores"][:, 0])                                # (N, C)
            spot = torch.round(s.to(torch.float32) + out["offset"][:, 0] * W - 0.5)
            frames.append(spot.long().clamp_(0, T - 1))                      # (N,)
        probs, frames = torch.cat(probs), torch.cat(frames)
        scores = torch.zeros(T, self.num_classes, device=device)
        scores.scatter_reduce_(0, frames[:, None].expand_as(probs), probs, reduce="amax")
        return {"scores": scores}
