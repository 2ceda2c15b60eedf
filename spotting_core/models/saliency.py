"""The frame-saliency weighting model: frame saliency -> weighted features -> remap MLP.

A 15 s clip (30 frames at 2 fps) centred on the frame to classify is split in two halves, the
frames before the centre (pre-action) and the frames from the centre on (post-action). Each half
goes through its own encoder, a stack of N saliency modules. A first Linear(D -> E), shared by both
encoders, embeds every frame. The temporal means of the two encoders are concatenated (2E) and a
Linear(2E -> C+1) gives the logits of the 17 classes plus a background class, trained with
multi-label BCE with logits (the NetVLAD++ set-up the paper compares with; the background output
lets a clip with no event have a positive target). `frame_scores` returns the 17 class
probabilities, and the per-frame saliency of each encoder's last module.

One saliency module, on the frames h_1..h_T' (T' = T/2) of one encoder, reads as follows. This is
our reading of the paper's Eq. (1)-(3), as the issue states them:

    f_i  = LN_1(h_i)                                  first LayerNorm
    (1)  s_ij = f_i^T f_j / sqrt(E)                   frame-to-frame similarity
    (2)  w_ij = exp(s_ij) / (exp(theta) + sum_j' exp(s_ij'))
         softmax over the frames j, with one extra "nothing" slot of logit theta (a learnt scalar
         per module, the theta offset)
    (3)  k_i  = sum_j w_ij = sigmoid(logsumexp_j s_ij - theta)   in (0, 1), the saliency of frame i
         g_i  = k_i f_i                               saliency-weighted features
    h'_i = LN_2(h_i + MLP(g_i)),  MLP = Linear(E, 2E) -> ReLU -> Linear(2E, E)
                                                      remap MLP, residual, second LayerNorm

Choices we made where the text leaves room, and why:
- A plain softmax over j would make k_i = sum_j w_ij = 1 for every frame. The theta slot is what
  makes the sum informative: a frame whose similarities to the clip's frames outweigh the offset
  gets k_i near 1, a frame unlike the rest gets k_i near 0.
- s_ij is divided by sqrt(E) (the scaled dot product): with f = LN(h), f_i^T f_i = E, and the
  unscaled logsumexp would saturate the sigmoid (k_i = 1 everywhere, no gradient) for E >= 64.
  theta starts at sqrt(E), the self-similarity of a LayerNorm-ed frame at initialisation, so every
  k_i starts at >= 0.5 and the saliency is trainable from the first step.
- The forward pass returns the saliency logits (logsumexp - theta) of the last module; the
  sigmoid is applied in `frame_scores`, as for every other probability in the project.

Parameter counts (exact, asserted in tests/test_saliency.py) against the paper's Table 1, on
2048-d features: N=1, E=64: 167,124 (paper ~0.17M); N=2, E=256: 1,589,526 (~1.59M); N=1, E=512:
3,171,860 (paper 3.16M, 0.4% more). Per module: two LayerNorms (4E), the MLP (4E^2 + 3E) and theta
(1); plus the shared first Linear (DE + E) and the classifier (2E(C+1) + C+1). The first two rows
match to the paper's precision; for the third our count rounds to 3.17M. The paper does not give
its layer list, and no single choice (17 or 18 outputs, a separate first Linear per encoder, no
biases) brings all three rows closer at once, so we keep the layout above and document the 0.4%.

Training defaults (read by train.py through the Config): Adam, lr 3e-3, batch 256. Inference: a
clip centred on every frame (stride 1), NMS with a 30 s window and threshold 0.

Targets, as in the official NetVLAD++ code: a clip's target for class c is 1 when an event of c
(visible or unshown) lies anywhere in the clip; the background target is 1 when none does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from spotting_core.models.base import SpottingModel
from spotting_core.models.losses import clip_bce_loss


# ---------------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------------
class SaliencyModule(nn.Module):
    """Frame saliency (Eq. 1-3) -> weighted features -> remap MLP with residual, two LayerNorms."""

    def __init__(self, *, dim: int, mlp_ratio: int = 2):
        super().__init__()
        self.dim = dim
        self.norm_in = nn.LayerNorm(dim)
        self.norm_out = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.ReLU(), nn.Linear(mlp_ratio * dim, dim))
        self.theta = nn.Parameter(torch.tensor(math.sqrt(dim)))

    def saliency_logits(self, f: torch.Tensor) -> torch.Tensor:
        """(B, T, E) normalised frames -> (B, T) logits of k_i (Eq. 1-3): logsumexp_j s_ij - theta."""
        s = f @ f.transpose(1, 2) / math.sqrt(self.dim)   # (B, T, T), Eq. (1)
        return torch.logsumexp(s, dim=-1) - self.theta    # (B, T), Eq. (2)-(3) before the sigmoid

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # (B, T, E)
        f = self.norm_in(h)
        logits = self.saliency_logits(f)                  # (B, T)
        g = torch.sigmoid(logits).unsqueeze(-1) * f       # (B, T, E), k_i f_i
        return self.norm_out(h + self.mlp(g)), logits


class SaliencyEncoder(nn.Module):
    """N saliency modules in a row; returns the last features and the last module's saliency logits."""

    def __init__(self, *, dim: int, num_modules: int, mlp_ratio: int = 2):
        super().__init__()
        self.blocks = nn.ModuleList(SaliencyModule(dim=dim, mlp_ratio=mlp_ratio) for _ in range(num_modules))

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # (B, T, E)
        logits = None
        for block in self.blocks:
            h, logits = block(h)
        return h, logits


# ---------------------------------------------------------------------------------------------
# Config and model
# ---------------------------------------------------------------------------------------------
@dataclass
class Config:
    input_dim: int = 512          # D (SoccerNet ResNet-PCA512; the paper's Table 1 uses 2048)
    num_classes: int = 17
    fps: float = 2.0
    window_s: float = 15.0        # the chunk: 30 frames, 15 before the centre and 15 from it on
    num_modules: int = 2          # N per encoder (Table 1's middle row)
    embed_dim: int = 256          # E
    mlp_ratio: int = 2            # remap MLP hidden width = mlp_ratio * E
    nms_window_s: float = 30.0
    nms_threshold: float = 0.0
    # training defaults (train.py reads them with getattr)
    lr: float = 3e-3
    batch_size: int = 256
    epochs: int = 100


class SaliencyWeighting(SpottingModel):
    Config = Config
    output_mode = "center"

    def __init__(self, cfg: Config):
        super().__init__(cfg)
        if self.clip_frames < 2:
            raise ValueError(f"window_s={cfg.window_s} gives {self.clip_frames} frames; need at least 2")
        self.embed = nn.Linear(cfg.input_dim, cfg.embed_dim)
        self.pre = SaliencyEncoder(dim=cfg.embed_dim, num_modules=cfg.num_modules, mlp_ratio=cfg.mlp_ratio)
        self.post = SaliencyEncoder(dim=cfg.embed_dim, num_modules=cfg.num_modules, mlp_ratio=cfg.mlp_ratio)
        self.classifier = nn.Linear(2 * cfg.embed_dim, cfg.num_classes + 1)  # index 0: background

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # (B, T, D)
        half = x.shape[1] // 2
        h = self.embed(x)                                           # (B, T, E)
        pre, pre_sal = self.pre(h[:, :half])                        # (B, T/2, E), (B, T/2)
        post, post_sal = self.post(h[:, half:])                     # (B, T - T/2, E), (B, T - T/2)
        pooled = torch.cat([pre.mean(dim=1), post.mean(dim=1)], dim=-1)  # (B, 2E)
        return {
            "logits": self.classifier(pooled),                      # (B, C + 1)
            "saliency_logits": torch.cat([pre_sal, post_sal], dim=1),  # (B, T)
        }

    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return clip_bce_loss(outputs["logits"], batch["events"].to(outputs["logits"].device))

    def frame_scores(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        probs = torch.sigmoid(outputs["logits"][:, 1:])             # (B, C), background dropped
        return {"scores": probs.unsqueeze(1),                       # (B, 1, C): the centre frame
                "saliency": torch.sigmoid(outputs["saliency_logits"])}  # (B, T)
