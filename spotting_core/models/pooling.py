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

`import_official_checkpoint` converts an official checkpoint ({epoch, state_dict, best_loss,
optimizer}) into ours; the module names here are the official ones, so the weights map one to one.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

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
    exact_sequence_scores = True  # the sequence_scores override equals the base class's windows
    pool: str = ""         # "max" / "avg" / "netvlad"
    split: bool = False    # True for the "++" variants: pool before / after the centre apart

    def __init__(self, cfg: Config):
        super().__init__(cfg)
        self.output_mode = "center"
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

    # ----- fast exact whole-half inference --------------------------------------------------------
    @torch.no_grad()
    def sequence_scores(self, feats: torch.Tensor, *, batch_size: int = 256) -> dict[str, torch.Tensor]:
        """The base class's stride-1 centred windows, computed without pooling each window apart.

        Same scores (to float rounding) as `SpottingModel.sequence_scores`; `batch_size` is unused.
        In training mode (active dropout) it falls back to the base class.
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


class MaxPoolpp(TemporalPooling):
    """MaxPool++: max over the frames before the centre, max over those after."""

    pool, split = "max", True


class AvgPoolpp(TemporalPooling):
    """AvgPool++: mean over the frames before the centre, mean over those after."""

    pool, split = "avg", True


class MaxPool(TemporalPooling):
    """MaxPool: max over the whole clip (the SoccerNet-v2 baseline the official checkpoint uses)."""

    pool, split = "max", False


class AvgPool(TemporalPooling):
    """AvgPool: mean over the whole clip."""

    pool, split = "avg", False


class NetVLADPool(TemporalPooling):
    """NetVLAD: one NetVLAD of 64 clusters over the whole clip (not temporally aware)."""

    pool, split = "netvlad", False


# ---------------------------------------------------------------------------------------------
# Official checkpoints
# ---------------------------------------------------------------------------------------------
# official --pool values (and ours) -> our registry names
_POOL_NAMES = {
    "max": "maxpool", "maxpool": "maxpool", "max++": "maxpool++", "maxpool++": "maxpool++",
    "avg": "avgpool", "avgpool": "avgpool", "avg++": "avgpool++", "avgpool++": "avgpool++",
    "netvlad": "netvlad", "netvlad++": "netvlad++",
}  # fmt: skip
_LOG_PARAM = re.compile(r"\]\s+(\w+)\s*:\s*(.+?)\s*$")


def read_official_log(path: str | Path) -> dict[str, str]:
    """The `name : value` parameters an official training log starts with (empty if none)."""
    params: dict[str, str] = {}
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return params
    for line in lines:
        if "Parameters" in line:
            continue
        m = _LOG_PARAM.search(line)
        if m and m.group(1) not in params:
            params[m.group(1)] = m.group(2)
    return params


def _official_log_path(path: Path) -> Path:
    name = path.name
    for suffix in (".pth.tar", ".pth", ".pt", ".tar"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return path.with_name(name + ".log")


def import_official_checkpoint(path, out, *, pool: str = "maxpool", window_s: float = 20.0,
                               feature_name: str = "ResNET_TF2_PCA512",
                               nms_window_s: float | None = None) -> Path:
    """Convert an official SoccerNet pooling checkpoint into one `load_checkpoint` rebuilds.

    path: the official torch file, {epoch, state_dict, best_loss, optimizer}, saved on CUDA.
    pool: its pooling, ours or the official spelling ("maxpool" / "MAX", "netvlad++" / "NetVLAD++").
    window_s: its clip length in seconds (the official --window_size / chunk_size; the weights do
        not tell it for max/avg pooling).
    nms_window_s: default, the training log next to the file (`<name>.log`: NMS_window and
        NMS_threshold), else our Config default.
    The input dimension and vocabulary come from the weights. When the log is there, its pool and
    window must agree with the arguments. Returns the path written.
    """
    from spotting_core.io.soccernet import CLASSES_V1, CLASSES_V2
    from spotting_core.models import MODELS, build_model, save_checkpoint

    path = Path(path)
    if not path.is_file():
        raise SpottingError(f"{path}: checkpoint not found")
    name = _POOL_NAMES.get(str(pool).lower())
    if name is None or name not in MODELS:
        raise SpottingError(f"pool {pool!r} is not an official pooling; choose from {', '.join(sorted(_POOL_NAMES))}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file
        raise SpottingError(f"{path}: not a readable torch file ({type(e).__name__})") from None
    sd = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(sd, dict) or not sd or not all(torch.is_tensor(v) for v in sd.values()):
        raise SpottingError(f"{path}: not an official SoccerNet checkpoint (expected a dict with a 'state_dict' of tensors)")
    if "fc.weight" not in sd or sd["fc.weight"].ndim != 2:
        raise SpottingError(f"{path}: not an official pooling checkpoint (no 2-D 'fc.weight'; keys: {', '.join(list(sd)[:6])})")

    log_path = _official_log_path(path)
    log = read_official_log(log_path)
    if log.get("pool") and _POOL_NAMES.get(log["pool"].lower()) != name:
        raise SpottingError(f"{log_path}: the model was trained with pool {log['pool']}, not {pool}")
    log_window = log.get("window_size", log.get("chunk_size"))
    if log_window is not None and not math.isclose(float(log_window), float(window_s)):
        raise SpottingError(f"{log_path}: the model was trained on {log_window} s windows, not {window_s} s (--window)")
    nms_threshold = float(log.get("NMS_threshold", Config.nms_threshold))
    if nms_window_s is None:
        nms_window_s = float(log.get("NMS_window", Config.nms_window_s))

    outputs, fc_in = sd["fc.weight"].shape
    num_classes = outputs - 1
    classes = {17: CLASSES_V2, 3: CLASSES_V1}.get(num_classes)
    if classes is None:
        raise SpottingError(f"{path}: fc has {outputs} outputs; expected 18 (SoccerNet-v2) or 4 (v1)")
    if "feature_extractor.weight" in sd:
        input_dim = int(sd["feature_extractor.weight"].shape[1])
    else:
        input_dim = fc_in // 2 if name in ("maxpool++", "avgpool++") else REDUCED_DIM if "netvlad" in name else fc_in
    options = {"input_dim": input_dim, "num_classes": num_classes, "window_s": float(window_s),
               "nms_window_s": float(nms_window_s), "nms_threshold": nms_threshold}
    if "framerate" in log:
        options["fps"] = float(log["framerate"])
    clusters = [v for k, v in sd.items() if k.endswith(".clusters")]
    if clusters:
        options["vocab_size"] = sum(int(c.shape[1]) for c in clusters)
    model = build_model(name, **options)
    try:
        model.load_state_dict(sd)
    except RuntimeError as e:
        raise SpottingError(f"{path}: weights do not fit our {name!r} model ({str(e).splitlines()[0][:200]})") from None
    extra = {"source": str(path), "epoch": ckpt.get("epoch"), "official_log": log}
    if ckpt.get("best_loss") is not None:
        extra["best_loss"] = float(ckpt["best_loss"])
    out = Path(out)
    if out.is_dir():
        out = out / f"{log_path.stem}-{name}.ckpt"
    try:
        return save_checkpoint(out, model, classes=classes, feature_name=feature_name, extra=extra)
    except (OSError, RuntimeError) as e:  # torch.save raises RuntimeError for an unwritable path
        raise SpottingError(f"{out}: cannot write the checkpoint ({str(e).splitlines()[0][:120]})") from None
