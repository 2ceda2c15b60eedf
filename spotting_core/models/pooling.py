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
    netrvlad++   as netvlad++ with NetRVLAD (no clusters2)     D * K       622,610
    netrvlad     as netvlad with NetRVLAD                      D * K       622,610
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
(`spotting import-official`, models/official.py): the module names here are the official ones of
TemporallyAwarePooling; the Pooling benchmark's NetVLAD (centroids + 1x1 conv) maps onto `netvlad`
exactly (`pooling_benchmark_netvlad`), its MAX onto `maxpool`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from spotting_core.errors import SpottingError
from spotting_core.models.base import SpottingModel
from spotting_core.models.layers import NetRVLAD, NetVLAD
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
# The Pooling benchmark's NetVLAD, restated in our layer's terms
# ---------------------------------------------------------------------------------------------
def pooling_benchmark_netvlad(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
    """The official Pooling benchmark NetVLAD (Benchmarks/Pooling, `--pool NetVLAD`) -> our `netvlad`.

    Its layer (lyakaap's NetVLAD, vladv2=False) L2-normalises each frame, soft-assigns it with a 1x1
    convolution without bias (`conv.weight` (K, D, 1, 1)) and a softmax over the K clusters, sums the
    weighted residuals x_t - centroids[k] (`centroids` (K, D)), normalises per cluster, flattens
    k-major (index k*D + d) and normalises again: our NetVLAD with clusters = conv.weight^T,
    clusters2 = centroids^T, and the columns of `fc` permuted to our d-major order (index d*K + k).
    Same scores, not an approximation. None when the keys or shapes are not that layout.
    """
    expected = {"pool_layer.centroids", "pool_layer.conv.weight", "fc.weight", "fc.bias"}
    if set(sd) != expected:
        return None
    centroids, conv, fc = sd["pool_layer.centroids"], sd["pool_layer.conv.weight"], sd["fc.weight"]
    if centroids.ndim != 2 or tuple(conv.shape) != (*centroids.shape, 1, 1) or fc.ndim != 2:
        return None
    K, D = centroids.shape
    if fc.shape[1] != K * D:
        return None
    return {
        "pool_layer.clusters": conv[:, :, 0, 0].T.contiguous(),                    # (D, K)
        "pool_layer.clusters2": centroids.T[None].contiguous(),                    # (1, D, K)
        "fc.weight": fc.reshape(-1, K, D).transpose(1, 2).reshape(-1, D * K).contiguous(),  # (C+1, D*K)
        "fc.bias": sd["fc.bias"],
    }


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
    vlad_layer: type = NetVLAD  # pool "netvlad": NetVLAD, or NetRVLAD (no residual centres)

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
                self.pool_layer_before = self.vlad_layer(num_clusters=cfg.vocab_size // 2, dim=dim)
                self.pool_layer_after = self.vlad_layer(num_clusters=cfg.vocab_size // 2, dim=dim)
            else:
                self.pool_layer = self.vlad_layer(num_clusters=cfg.vocab_size, dim=dim)
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
        """The TemporallyAwarePooling modules carry our names (feature_extractor, pool_layer[_before|_after]
        with `clusters` (+ `clusters2` for NetVLAD), fc), so their weights map one to one; the keys must
        be exactly this variant's. The input dimension and vocabulary come from the shapes. The Pooling
        benchmark's NetVLAD (`centroids` + a 1x1 `conv`) is converted by `pooling_benchmark_netvlad`."""
        sd = dict(state_dict)
        if cls.pool == "netvlad" and not cls.split and "pool_layer.centroids" in sd:
            if cls.vlad_layer is not NetVLAD or (sd := pooling_benchmark_netvlad(sd)) is None:
                return None
        if "fc.weight" not in sd or sd["fc.weight"].ndim != 2:
            return None
        layers = [] if cls.pool != "netvlad" else ["pool_layer_before", "pool_layer_after"] if cls.split else ["pool_layer"]
        params_of = ("clusters", "clusters2") if cls.vlad_layer is NetVLAD else ("clusters",)
        extractor = {"feature_extractor.weight", "feature_extractor.bias"}
        expected = {"fc.weight", "fc.bias"} | {f"{layer}.{k}" for layer in layers for k in params_of}
        if set(sd) - extractor != expected or (set(sd) & extractor and not extractor <= set(sd)):
            return None
        outputs, fc_in = sd["fc.weight"].shape
        if "feature_extractor.weight" in sd:
            input_dim = int(sd["feature_extractor.weight"].shape[1])
        elif layers:
            input_dim = int(sd[f"{layers[0]}.clusters"].shape[0])
        else:
            input_dim = fc_in // 2 if cls.split else fc_in
        options = {"input_dim": input_dim, "num_classes": int(outputs) - 1}
        if layers:
            options["vocab_size"] = sum(int(sd[f"{layer}.clusters"].shape[-1]) for layer in layers)
        return options, sd

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


class NetRVLADpp(NetVLADpp):
    """NetRVLAD++: NetRVLAD (no residual centres) before the centre, another after."""

    vlad_layer = NetRVLAD
    official_names = ("netrvlad++",)


class NetRVLADPool(NetVLADPool):
    """NetRVLAD: one NetRVLAD of 64 clusters over the whole clip."""

    vlad_layer = NetRVLAD
    official_names = ("netrvlad",)
