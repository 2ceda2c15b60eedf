"""NetVLAD++ and the pooling baselines of its official code base.

Giancola & Ghanem, "Temporally-Aware Feature Pooling for Action Spotting in Soccer Broadcasts",
CVPR-W 2021 (official code: SoccerNet sn-spotting, Benchmarks/TemporallyAwarePooling).

A clip of `window_s` seconds is pooled into one vector, which a linear layer turns into 17 + 1
logits (index 0 = background, as the official labels; `frame_scores` returns the 17 event classes
only). The "++" variants pool the first half of the clip (the frames before its centre) and the
second half separately, then concatenate.

    pool         layer(s) and their official names            fc input    parameters (D = 512)
    netvlad++    pool_layer_before/after: NetVLAD, K/2 each    D * K       655,378
    netvlad      pool_layer: NetVLAD, K clusters               D * K       655,378
    maxpool++    max over each half                            2 * D       18,450
    avgpool++    mean over each half                           2 * D       18,450
    maxpool      max over the clip                             D           9,234
    avgpool      mean over the clip                            D           9,234

Features of another dimension first go through `feature_extractor` Linear(input_dim -> 512) per
frame (1,704,466 parameters for NetVLAD++ on 2048-d features). Training: every class with an event
anywhere in the clip is a positive, background if none (the official SoccerNetClips labels),
multi-label BCE with logits.

Whole-half inference (`sequence_scores`) centres a window on every frame (stride 1, edge frames
repeated) and is computed exactly but without cutting the half into clips: max/mean over strided
windows of the padded half, NetVLAD through windowed sums (`NetVLAD.sliding_linear`).

Official checkpoints ({epoch, state_dict, best_loss, optimizer}) import through `official_layout`
(`spotting import-official`, models/official.py): the module names here are the official ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from spotting_core.errors import SpottingError
from spotting_core.models.base import SpottingModel
from spotting_core.models.layers import NetVLAD
from spotting_core.models.losses import clip_bce_loss

REDUCED_DIM = 512  # the official code maps any other feature dimension to 512


# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------
@dataclass
class Config:
    """The official defaults (TemporallyAwarePooling/src/main.py)."""

    input_dim: int = 512
    num_classes: int = 17
    fps: float = 2.0
    window_s: float = 15.0          # --window_size 15: 30 frames at 2 fps
    vocab_size: int = 64            # NetVLAD clusters in all (NetVLAD++: 32 before + 32 after)
    dropout: float = 0.4
    nms_window_s: float = 30.0      # --NMS_window 30
    nms_threshold: float = 0.0      # --NMS_threshold 0.0
    lr: float = 1e-3                # Adam, --LR
    batch_size: int = 256


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------
class TemporalPooling(SpottingModel):
    """A clip (B, T, D) -> pooled vector -> dropout -> fc -> (B, 1 + num_classes) logits."""

    Config = Config
    output_mode = "center"
    exact_sequence_scores = True  # the sequence_scores override equals the base class's windows
    pool: str = ""         # "max" / "avg" / "netvlad"
    split: bool = False    # True for the "++" variants: pool before / after the centre apart

    def __init__(self, cfg: Config):
        super().__init__(cfg)
        if self.clip_frames < (2 if self.split else 1):
            raise SpottingError(f"window_s={cfg.window_s} at {cfg.fps} fps leaves no frame to pool")
        dim = cfg.input_dim
        if dim != REDUCED_DIM:
            self.feature_extractor = nn.Linear(dim, REDUCED_DIM)
            dim = REDUCED_DIM
        self.hidden_dim = dim
        if self.pool == "netvlad":
            if self.split:
                if cfg.vocab_size % 2:
                    raise SpottingError(f"vocab_size={cfg.vocab_size}: NetVLAD++ needs an even vocabulary")
                self.pool_layer_before = NetVLAD(num_clusters=cfg.vocab_size // 2, dim=dim)
                self.pool_layer_after = NetVLAD(num_clusters=cfg.vocab_size // 2, dim=dim)
            else:
                self.pool_layer = NetVLAD(num_clusters=cfg.vocab_size, dim=dim)
            pooled = dim * cfg.vocab_size
        else:
            pooled = 2 * dim if self.split else dim
        self.drop = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(pooled, cfg.num_classes + 1)

    # ----- the contract -------------------------------------------------------------------------
    def _reduce(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_extractor(x) if hasattr(self, "feature_extractor") else x

    def _pool(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, P)
        if self.pool == "netvlad":
            if not self.split:
                return self.pool_layer(x)
            half = x.shape[1] // 2  # the official int(T / 2): frames before the centre
            return torch.cat([self.pool_layer_before(x[:, :half]), self.pool_layer_after(x[:, half:])], dim=1)
        reduce = (lambda t: t.amax(dim=1)) if self.pool == "max" else (lambda t: t.mean(dim=1))
        if not self.split:
            return reduce(x)
        half = x.shape[1] // 2
        return torch.cat([reduce(x[:, :half]), reduce(x[:, half:])], dim=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # (B, T, D)
        pooled = self._pool(self._reduce(x))                   # (B, P)
        return {"logits": self.fc(self.drop(pooled))}          # (B, 1 + C), index 0 = background

    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return clip_bce_loss(outputs["logits"], batch["events"].to(outputs["logits"].device))

    def frame_scores(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"scores": torch.sigmoid(outputs["logits"][:, None, 1:])}  # (B, 1, C)

    # ----- official checkpoints -------------------------------------------------------------------
    @classmethod
    def official_layout(cls, state_dict, params):
        """The official modules carry our names (feature_extractor, pool_layer[_before|_after], fc), so
        the weights map one to one; the input dimension and vocabulary come from them."""
        sd = state_dict
        if "fc.weight" not in sd or sd["fc.weight"].ndim != 2:
            return None
        outputs, fc_in = sd["fc.weight"].shape
        if "feature_extractor.weight" in sd:
            input_dim = int(sd["feature_extractor.weight"].shape[1])
        else:
            input_dim = fc_in // 2 if (cls.split and cls.pool != "netvlad") else REDUCED_DIM if cls.pool == "netvlad" else fc_in
        options = {"input_dim": input_dim, "num_classes": int(outputs) - 1}
        clusters = [v for k, v in sd.items() if k.endswith(".clusters")]
        if clusters:
            options["vocab_size"] = sum(int(c.shape[1]) for c in clusters)
        return options, dict(sd)

    # ----- fast exact whole-half inference --------------------------------------------------------
    @torch.no_grad()
    def sequence_scores(self, feats: torch.Tensor, *, batch_size: int = 256, entities: torch.Tensor | None = None,
                        entity_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The base class's stride-1 centred windows, computed without pooling each window apart.

        Same scores (to float rounding) as `SpottingModel.sequence_scores`; `batch_size` is unused and
        there are no entity inputs. In training mode (active dropout) it falls back to the base class.
        """
        if self.training:
            return super().sequence_scores(feats, batch_size=batch_size)
        if feats.ndim != 2:
            raise ValueError(f"expected (T, D) features, got {tuple(feats.shape)}")
        T, W = feats.shape[0], self.clip_frames
        device = self.fc.weight.device
        feats = feats.to(device=device, dtype=torch.float32)
        # the half padded by its edge frames: window of frame t = padded[t : t + W]
        idx = (torch.arange(T + W - 1, device=device) - W // 2).clamp_(0, T - 1)
        x = self._reduce(feats)[idx]                            # (T + W - 1, D'), per frame
        half = W // 2
        segments = [(0, half), (half, W - half)] if self.split else [(0, W)]  # (offset, length)
        weight, bias = self.fc.weight[1:], self.fc.bias[1:]    # (C, P), (C,): background not needed
        if self.pool == "netvlad":
            layers = [self.pool_layer_before, self.pool_layer_after] if self.split else [self.pool_layer]
            logits = bias.double()[None].expand(T, -1).clone()  # (T, C)
            start = 0
            for (offset, length), layer in zip(segments, layers):
                size = layer.dim * layer.num_clusters
                w = weight[:, start:start + size].reshape(-1, layer.dim, layer.num_clusters)  # (C, D, K)
                logits += layer.sliding_linear(x[offset:offset + T + length - 1], w, length=length)
                start += size
            logits = logits.float()
        else:
            pooled = []
            for offset, length in segments:
                windows = x[offset:offset + T + length - 1].unfold(0, length, 1)  # (T, D, length) view
                pooled.append(windows.amax(-1) if self.pool == "max" else windows.mean(-1))  # (T, D)
            logits = F.linear(torch.cat(pooled, dim=1), weight, bias)  # (T, C)
        return {"scores": torch.sigmoid(logits)}


class NetVLADpp(TemporalPooling):
    """NetVLAD++: NetVLAD (32 clusters) before the centre, another after; the paper's model."""

    pool, split = "netvlad", True
    official_names = ("netvlad++",)


class MaxPoolpp(TemporalPooling):
    """MaxPool++: max over the frames before the centre, max over those after."""

    pool, split = "max", True
    official_names = ("max++", "maxpool++")


class AvgPoolpp(TemporalPooling):
    """AvgPool++: mean over the frames before the centre, mean over those after."""

    pool, split = "avg", True
    official_names = ("avg++", "avgpool++")


class MaxPool(TemporalPooling):
    """MaxPool: max over the whole clip (the SoccerNet-v2 baseline the official checkpoint uses)."""

    pool, split = "max", False
    official_names = ("max", "maxpool")


class AvgPool(TemporalPooling):
    """AvgPool: mean over the whole clip."""

    pool, split = "avg", False
    official_names = ("avg", "avgpool")


class NetVLADPool(TemporalPooling):
    """NetVLAD: one NetVLAD of 64 clusters over the whole clip (not temporally aware)."""

    pool, split = "netvlad", False
    official_names = ("netvlad",)
