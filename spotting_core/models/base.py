"""The one contract every spotting model honours.

    forward(x: (B, T, D))            -> outputs: dict[str, Tensor] of logits (never probabilities)
    loss(outputs, batch)             -> dict[str, Tensor], the total under "loss"
    frame_scores(outputs)            -> {"scores": (B, T_out, C) probabilities,
                                         "saliency": (B, T) per input frame, only if the model has it}
    sequence_scores(feats: (T, D))   -> {"scores": (T, C), "saliency": (T,) , "saliency_windows": (T, W)}
    forward_batch(batch)             -> forward() fed from a training batch (x, + entities for UGL)

`batch` is what `spotting_core.engine.games` yields:
    "x":      (B, T, D) float features of a clip of T = clip_frames frames
    "events": (B, T, C) float, 1 where a visible event of class c sits at that frame, -1 where an
              unshown one does, 0 elsewhere. Each model derives its own targets from it.

Two output modes, set by each model as `self.output_mode`:
    "center":   one prediction per clip, for the clip's centre frame; T_out = 1. At inference the
                half is padded by repeating its edge frames and a clip is centred on every frame
                (stride 1), as the official NetVLAD++ code does.
    "sequence": one prediction per frame of the clip; T_out = T. At inference clips overlap by
                half and each frame keeps the prediction of the clip where it is most central.

train.py, inference.py and the app use only this contract and never branch on a model's name.
A model may override `sequence_scores` with a faster exact path (see models/pooling.py).
"""

from __future__ import annotations

from dataclasses import asdict

import torch
from torch import nn


class SpottingModel(nn.Module):
    """Base class. Subclasses define `Config` (a dataclass with the paper's defaults) and build from it."""

    name: str = ""            # registry name, set by models/__init__.py
    Config: type = None       # the dataclass of hyper-parameters
    sampling: str = "uniform"  # training clip sampler in data.py: "uniform", "balanced" (RMS-Net), "anchored" (CALF)
    # what x is: "features" (B, T, D) from feature files, or "frames" (B, T, H, W, 3) uint8 RGB decoded
    # from videos at the model's fps with H = input_dim (end-to-end models; data.py / spot.py load them
    # through spotting_core.features.frames)
    input_kind: str = "features"
    # True for models that read precomputed per-frame entity features (UGL's local-entity branch):
    # data.py then loads `<half>_entities.npy` when a game has them and batches carry "entities"
    # (B, T, N, d) and "entity_mask" (B, T, N); forward(x, entities, entity_mask) receives them.
    entity_inputs: bool = False

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.input_dim: int = cfg.input_dim
        self.num_classes: int = cfg.num_classes
        self.fps: float = cfg.fps
        self.clip_frames: int = int(round(cfg.window_s * cfg.fps))
        self.output_mode: str = "center"

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

    def config_dict(self) -> dict:
        return asdict(self.cfg)

    # ----- whole-half inference ---------------------------------------------------------------
    @torch.no_grad()
    def sequence_scores(self, feats: torch.Tensor, *, batch_size: int = 256,
                        entities: torch.Tensor | None = None,
                        entity_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Scores for every frame of a half. feats: (T, D) -> {"scores": (T, C), ...}.

        Generic, batched sliding windows; no Python loop per window. Frame-input models get
        (T, H, W, 3) uint8 frames, kept where they are and moved to the device one batch of windows
        at a time. Models with `entity_inputs` may get the half's entities (T, N, d) and mask (T, N),
        cut into the same windows.
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
        batch_size = max(1, min(batch_size, getattr(self.cfg, "infer_windows", batch_size)))
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
