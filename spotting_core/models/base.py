"""The one contract every spotting model honours: everything training, inference and spot may use.

    forward(x)                      -> outputs: dict[str, Tensor] of logits (never probabilities)
    loss(outputs, batch)            -> dict[str, Tensor] of named terms, the total under "loss"
    frame_scores(outputs)           -> probabilities, keys in FRAME_SCORE_KEYS ("scores" always)
    sequence_scores(half)           -> {"scores": (T, C), optional "saliency" (T,), "saliency_windows" (T, W)}
    forward_batch(batch)            -> forward() fed from a training batch (x, + entities when read)
    augment(batch)                  -> the paper's training-time augmentation (identity by default)
    epoch_clips(index, rng, n)      -> (N, 2) (half, start) training clips of one epoch: the paper's sampler
    training_defaults(overrides)    -> lr, batch size, epochs, patience, optimizer, schedule... (Config or default)
    official_layout(state, params)  -> how an official checkpoint of this paper maps onto it (None: not ours)

x is (B, T, D) features, or (B, T, H, W, 3) uint8 frames when `input_kind` is "frames" (H = input_dim).
`batch` is what `engine/sampler.py` yields:
    "x":      (B, T, D) features (or frames) of a clip of T = clip_frames frames
    "events": (B, T, C) float, 1 where a visible event of class c sits at that frame, -1 where an
              unshown one does, 0 elsewhere. Each model derives its own targets from it.
    "entities", "entity_mask": (B, T, N, d), (B, T, N), for models with `entity_inputs`.

Every Config (a dataclass with the paper's defaults) has input_dim, num_classes, fps, window_s,
nms_window_s and nms_threshold; the fields named in TRAINING_DEFAULTS are optional.
train.py, inference.py, spot.py and the app use only this contract: they never branch on a model's
name and never probe a model for attributes it does not declare here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

# Keys `frame_scores` may return; the engine reads "scores" and "saliency", the rest are for the model.
FRAME_SCORE_KEYS = {
    "scores": "(B, T_out, C) event probabilities; T_out = 1 in 'center' mode, T in 'sequence' mode",
    "saliency": "(B, T) weight of each input frame in [0, 1] (the saliency model)",
    "segmentation": "(B, T, C) per-frame segmentation scores (CALF)",
    "offset": "(B, 1) regressed position of the clip's event, relative to the clip (RMS-Net)",
}
# Config fields the training loop reads, and the value used when a Config has no such field.
TRAINING_DEFAULTS = {
    "lr": 1e-3,                 # learning rate
    "batch_size": 256,          # clips per batch
    "epochs": 100,              # at most this many epochs
    "patience": 10,             # evaluations without a better valid Average-mAP before stopping
    "optimizer": "adam",        # "adam" or "adamw"
    "weight_decay": 0.0,
    "schedule": "plateau",      # "plateau" (ReduceLROnPlateau on valid) or "warmup_cosine" (per step)
    "warmup_epochs": 0,         # linear warm-up before the cosine decay
}


# ---------------------------------------------------------------------------------------------
# What a sampler hook sees: the training halves' lengths and per-frame events
# ---------------------------------------------------------------------------------------------
@dataclass
class ClipIndex:
    """The training halves as `epoch_clips` sees them (no features: those stay on disk)."""

    lengths: np.ndarray            # (H,) frames per half
    events: list[np.ndarray]       # per half (T_h, C) events, as in a batch
    clip_frames: int               # T of a training clip
    num_classes: int


def uniform_starts(T: int, clip_frames: int, phase: int = 0) -> np.ndarray:
    """Starts of consecutive clips covering [0, T): stride = clip length, first clip at -phase."""
    W = int(clip_frames)
    phase = int(phase) % W
    return np.arange(-phase, T, W, dtype=np.int64)


def event_clip_starts(events: np.ndarray, clip_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Stride-1 clips of one half that lie inside it: (starts with an event, starts without one).

    events: (T, C), non-zero where an event (visible or unshown) sits. A half shorter than the clip
    has the one clip starting at 0.
    """
    T, W = events.shape[0], int(clip_frames)
    has_event = (np.asarray(events) != 0).any(axis=1).astype(np.int64)  # (T,)
    n = max(T - W + 1, 1)
    counts = np.concatenate([[0], np.cumsum(has_event)])
    starts = np.arange(n)
    in_clip = counts[np.minimum(starts + W, T)] - counts[starts]  # (n,) events inside each clip
    return starts[in_clip > 0], starts[in_clip == 0]


def shuffle_and_cap(clips: np.ndarray, rng: np.random.Generator, clips_per_epoch: int | None) -> np.ndarray:
    clips = clips[rng.permutation(len(clips))]
    return clips if clips_per_epoch is None else clips[: int(clips_per_epoch)]


def uniform_clips(index: ClipIndex, rng: np.random.Generator, clips_per_epoch: int | None = None) -> np.ndarray:
    """The official NetVLAD++ sampler: each half cut into consecutive clips (stride = clip length, the
    last one padded by repeating the last frame), every clip once, shuffled. The official code cuts at
    frame 0; each epoch here cuts at a random phase in [0, clip_frames), so over the epochs the model
    sees every alignment of events within its window."""
    phase = int(rng.integers(index.clip_frames))
    clips = np.concatenate([
        np.stack([np.full(len(s), h), s], axis=1)
        for h, T in enumerate(index.lengths)
        for s in [uniform_starts(int(T), index.clip_frames, phase)]
    ]).astype(np.int64)
    return shuffle_and_cap(clips, rng, clips_per_epoch)


# ---------------------------------------------------------------------------------------------
# The base class
# ---------------------------------------------------------------------------------------------
class SpottingModel(nn.Module):
    """Base class. Subclasses define `Config` (a dataclass with the paper's defaults) and build from it."""

    name: str = ""                # registry name, set by models/__init__.py
    Config: type = None           # the dataclass of hyper-parameters
    input_kind: str = "features"  # "features" (B, T, D), or "frames" (B, T, H, W, 3) uint8 RGB, H = input_dim
    entity_inputs: bool = False   # reads precomputed `<half>_entities.npy`: forward(x, entities, entity_mask)
    output_mode: str = "center"   # "center": one prediction per clip, for its centre frame; "sequence": per frame
    sampling: str = "uniform"     # the name of the paper's training sampler (`epoch_clips`)
    exact_sequence_scores: bool = False  # its own sequence_scores equals the base's windows (tests check it)
    max_infer_windows: int | None = None  # cap on windows per forward pass in sequence_scores (memory)
    official_names: tuple[str, ...] = ()  # what the official code calls it (--pool, model name), lower case

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.input_dim: int = cfg.input_dim
        self.num_classes: int = cfg.num_classes
        self.fps: float = cfg.fps
        self.clip_frames: int = int(round(cfg.window_s * cfg.fps))

    # ----- the contract -------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # (B, T, D)
        raise NotImplementedError

    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def frame_scores(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def augment(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Training-time augmentation of a batch (identity unless the paper has one)."""
        return batch

    def forward_batch(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """forward() fed from a training batch: x, plus the entity features when the model reads them."""
        if self.entity_inputs and "entities" in batch:
            return self(batch["x"], batch["entities"], batch.get("entity_mask"))
        return self(batch["x"])

    def epoch_clips(self, index: ClipIndex, rng: np.random.Generator,
                    clips_per_epoch: int | None = None) -> np.ndarray:
        """(N, 2) rows of (half index, start frame): the training clips of one epoch, in training order.

        Default: `uniform_clips`. Starts may lie outside a half (edge frames are repeated).
        """
        return uniform_clips(index, rng, clips_per_epoch)

    @classmethod
    def training_defaults(cls, overrides: dict | None = None) -> dict:
        """TRAINING_DEFAULTS, replaced by the Config's own defaults, then by `overrides` (Config options)."""
        paper = {f.name: f.default for f in dataclasses.fields(cls.Config) if f.default is not dataclasses.MISSING}
        out = {k: paper.get(k, v) for k, v in TRAINING_DEFAULTS.items()}
        out.update({k: v for k, v in (overrides or {}).items() if k in TRAINING_DEFAULTS})
        return out

    @classmethod
    def official_layout(cls, state_dict: dict[str, torch.Tensor], params: dict[str, str]
                        ) -> tuple[dict, dict[str, torch.Tensor]] | None:
        """(Config options, our state_dict) when `state_dict` is an official checkpoint of this paper.

        params: the `name : value` lines of its training log (may be empty). None: not this paper's.
        """
        return None

    def nms_settings(self) -> tuple[float, float]:
        """(window in seconds, score threshold) of the paper's NMS."""
        return float(self.cfg.nms_window_s), float(self.cfg.nms_threshold)

    def config_dict(self) -> dict:
        return asdict(self.cfg)

    # ----- whole-half inference ---------------------------------------------------------------
    @torch.no_grad()
    def sequence_scores(self, feats: torch.Tensor, *, batch_size: int = 256,
                        entities: torch.Tensor | None = None,
                        entity_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Scores for every frame of a half. feats: (T, D) -> {"scores": (T, C), ...}.

        "center" mode: the half is padded by repeating its edge frames and a clip is centred on every
        frame (stride 1), as the official NetVLAD++ code does. "sequence" mode: clips overlap by half
        and each frame keeps the prediction of the clip where it is most central.
        Batched windows, no Python loop per window. Frame-input models get (T, H, W, 3) uint8 frames,
        kept where they are and moved to the device one batch of windows at a time. Models with
        `entity_inputs` may get the half's entities (T, N, d) and mask (T, N), cut into the same windows.
        """
        frames_in = self.input_kind == "frames"
        if feats.ndim != (4 if frames_in else 2):
            want = "frames (T, H, W, 3)" if frames_in else "(T, D) features"
            raise ValueError(f"expected {want}, got {tuple(feats.shape)}")
        T, W = feats.shape[0], self.clip_frames
        device = next(self.parameters()).device
        if not frames_in:
            feats = feats.to(device=device, dtype=torch.float32)
        if entities is not None:
            if entities.ndim != 3 or entities.shape[0] != T:
                raise ValueError(f"expected (T, N, d) entities for {T} frames, got {tuple(entities.shape)}")
            if entity_mask is None:
                entity_mask = torch.ones(entities.shape[:2], dtype=torch.bool)
        batch_size = max(1, min(batch_size, self.max_infer_windows or batch_size))
        if self.output_mode == "center":
            starts = torch.arange(T, device=device) - W // 2
        else:
            stride = max(1, W // 2)
            starts = torch.arange(0, max(T - W, 0) + stride, stride, device=device)
            starts = torch.clamp(starts, max=max(T - W, 0))
            starts = torch.unique(starts)
        offsets = torch.arange(W, device=device)
        scores, saliency = [], []
        for b in range(0, len(starts), batch_size):
            idx = (starts[b:b + batch_size, None] + offsets[None]).clamp_(0, T - 1)  # (B, W)
            x = feats[idx.to(feats.device)].to(device)                               # (B, W, D) or frames
            if entities is None:
                out = self.frame_scores(self(x))
            else:
                i = idx.to(entities.device)
                out = self.frame_scores(self(x, entities[i].to(device, torch.float32),
                                             entity_mask[i.to(entity_mask.device)].to(device, torch.bool)))
            scores.append(out["scores"])
            if "saliency" in out:
                saliency.append(out["saliency"])
        scores = torch.cat(scores)  # center: (T, 1, C); sequence: (N, W, C)
        sal = torch.cat(saliency) if saliency else None
        if self.output_mode == "center":
            result = {"scores": scores[:, 0]}
            if sal is not None:  # (T, W): saliency of each frame of the window centred on t
                result["saliency_windows"] = sal
                result["saliency"] = sal[:, W // 2]
            return result
        # sequence mode: each frame takes the window where it is most central
        frames = torch.arange(T, device=device)
        centres = starts + min(W, T) / 2.0
        best = torch.argmin((frames[:, None] + 0.5 - centres[None]).abs(), dim=1)  # (T,)
        pos = (frames - starts[best]).clamp_(0, W - 1)
        result = {"scores": scores[best, pos]}
        if sal is not None:
            result["saliency"] = sal[best, pos]
        return result
