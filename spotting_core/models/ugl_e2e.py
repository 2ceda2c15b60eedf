"""UGL end to end (Tran et al., arXiv 2404.09951): RegNet-Y + Gate-Shift frame encoder trained on frames,
feeding the UGL head of models/ugl.py (entity attention, Ent-Env fusion, BiGRU, softmax focal loss).

    frames x (B, T, H, W, 3) uint8 RGB (or float in [0, 255]), T = delta frames, H = cfg.input_dim
      -> ImageNet normalisation -> RegNet-Y (400MF / 800MF) whose every residual block first passes
         its input through a Gate-Shift Module (GSM) over the T frames of the snippet
      -> feature map (B*T, C, h, w) -> spatial mean -> global feature g_t (B, T, C)
      -> [entities: boxes of a pluggable extractor (spotting_core.features.entities), RoIAlign on that same
          feature map -> (B, T, N, C), or precomputed (B, T, N, d) passed to forward()]
      -> UGLHead -> (B, T, K + 1) logits

Gate-Shift Module (Sudhakaran, Escalera, Lanz, "Gate-Shift Networks for Video Action Recognition",
CVPR 2020; behaviour checked against the official github.com/swathikirans/GSM `gsm.py` and the way
E2E-Spot, which UGL builds on, wraps each RegNet-Y block): on the first `fold` channels
(fold = ceil((C // 4) / 4) * 4) of a block's input,
    gate (B, 2, T, H, W) = tanh(Conv3d_{3x3x3, groups=2}(ReLU(BN3d(x))))      zero-initialised: gate 0
    group 1 (first fold/2 channels):  y = shift_back(g1 * x1) + (1 - g1) * x1   frame t gets frame t+1
    group 2 (next fold/2 channels):   y = shift_fwd(g2 * x2) + (1 - g2) * x2    frame t gets frame t-1
(zero padding at the snippet's ends), then the official channel interleave of each group; the other
channels pass unchanged. At initialisation the gate is 0 and the network is the plain 2D RegNet-Y.

Input is frames, so `input_kind = "frames"` and `input_dim` is the frame height in pixels:
data.py / spot.py load decoded frames through `spotting_core.features.frames` for such models (the generic
training loop and `spot` are unchanged otherwise). Training defaults (AdamW, linear warm-up then
cosine, focal loss gamma 5) are in Config and read by train.py. Inference: the windows of the
base's "sequence" mode (delta/2 overlap, each frame from the window where it is most central), then
NMS.

Weights: torchvision's ImageNet RegNet-Y when they can be had (torch hub cache, else fetched).
`weights="imagenet"` requires them (one-line SpottingError offline, naming the file to place);
`weights="auto"` (default) falls back to random initialisation with a warning printed once;
`weights="random"` asks for random initialisation. A checkpoint stores weights="random" in its config
since its state dict carries the trained weights.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from spotting_core.errors import SpottingError
from spotting_core.features.backbones import IMAGENET_MEAN, IMAGENET_STD, torchvision_regnet
from spotting_core.models.base import SpottingModel
from spotting_core.models.ugl import MAX_HIDDEN, UGL, UGLHead

ENTITY_SOURCES = ("none", "detector", "precomputed")


# ---------------------------------------------------------------------------------------------
# Gate-Shift Module
# ---------------------------------------------------------------------------------------------
def gsm_fold(channels: int, n_div: int = 4) -> int:
    """Channels the GSM acts on (E2E-Spot's rule): ceil((C // n_div) / 4) * 4, at most C."""
    return min(channels, int(math.ceil((channels // n_div) / 4) * 4))


class GateShift(nn.Module):
    """GSM over the first `fold` channels of (B*T, C, H, W) frames; `num_frames` T is set per call."""

    def __init__(self, *, channels: int, n_div: int = 4):
        super().__init__()
        self.fold = gsm_fold(channels, n_div)
        if self.fold % 4:
            raise ValueError(f"GSM needs a channel fold divisible by 4, got {self.fold}")
        self.bn = nn.BatchNorm3d(self.fold)
        self.conv3d = nn.Conv3d(self.fold, 2, (3, 3, 3), padding=(1, 1, 1), groups=2)
        nn.init.zeros_(self.conv3d.weight)
        nn.init.zeros_(self.conv3d.bias)
        self.num_frames = 1
        self.active = True  # False only to time the backbone without GSM (bench/ugl_e2e.py)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, fold, T, H, W) -> gate (B, 2, T, H, W) in (-1, 1)."""
        return torch.tanh(self.conv3d(F.relu(self.bn(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.active:
            return x
        BT, C, H, W = x.shape
        T = self.num_frames
        if BT % T:
            raise ValueError(f"GSM: {BT} frames is not a multiple of the snippet length {T}")
        B, f = BT // T, self.fold
        v = x[:, :f].reshape(B, T, f, H, W).permute(0, 2, 1, 3, 4)              # (B, f, T, H, W)
        g = self.gate(v)                                                         # (B, 2, T, H, W)
        x1, x2 = v[:, : f // 2], v[:, f // 2:]                                   # (B, f/2, T, H, W) each
        y1, y2 = g[:, :1] * x1, g[:, 1:] * x2
        y1 = F.pad(y1[:, :, 1:], (0, 0, 0, 0, 0, 1)) + (x1 - y1)                # frame t <- t + 1
        y2 = F.pad(y2[:, :, :-1], (0, 0, 0, 0, 1, 0)) + (x2 - y2)               # frame t <- t - 1
        # the official channel interleave: (2, f/4) -> (f/4, 2) within each group
        y1 = y1.reshape(B, 2, f // 4, T, H, W).transpose(1, 2).reshape(B, f // 2, T, H, W)
        y2 = y2.reshape(B, 2, f // 4, T, H, W).transpose(1, 2).reshape(B, f // 2, T, H, W)
        y = torch.cat([y1, y2], dim=1).permute(0, 2, 1, 3, 4).reshape(BT, f, H, W)  # (B*T, f, H, W)
        return torch.cat([y, x[:, f:]], dim=1)


class ShiftedBranch(nn.Module):
    """A residual block's branch `f` fed through a GSM first (E2E-Spot's GatedShift wrapper)."""

    def __init__(self, branch: nn.Module, *, channels: int, n_div: int = 4):
        super().__init__()
        self.gsm = GateShift(channels=channels, n_div=n_div)
        self.branch = branch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.branch(self.gsm(x))


# ---------------------------------------------------------------------------------------------
# Backbone
# ---------------------------------------------------------------------------------------------
class GSMRegNet(nn.Module):
    """RegNet-Y with a GSM in front of every residual branch: (B*T, 3, H, W) -> (B*T, C, h, w) map."""

    def __init__(self, *, arch: str, weights: str, n_div: int = 4):
        super().__init__()
        net = torchvision_regnet(arch, weights, hint="--set weights=random")
        self.stem = net.stem
        self.trunk = net.trunk_output
        self.gsms: list[GateShift] = []
        for stage in self.trunk:
            for block in stage:
                channels = block.f.a[0].in_channels
                block.f = ShiftedBranch(block.f, channels=channels, n_div=n_div)
                self.gsms.append(block.f.gsm)
        self.out_channels = int(net.fc.in_features)

    def set_gsm(self, *, num_frames: int | None = None, active: bool | None = None) -> None:
        for g in self.gsms:
            if num_frames is not None:
                g.num_frames = int(num_frames)
            if active is not None:
                g.active = bool(active)

    def forward(self, frames: torch.Tensor, num_frames: int) -> torch.Tensor:
        self.set_gsm(num_frames=num_frames)
        return self.trunk(self.stem(frames))                                   # (B*T, C, h, w)


# ---------------------------------------------------------------------------------------------
# Config, model, loss
# ---------------------------------------------------------------------------------------------
@dataclass
class Config:
    input_dim: int = 224            # frame height in pixels (the input is frames, not features)
    num_classes: int = 17
    fps: float = 2.0
    window_s: float = 50.0          # delta = 100 frames at 2 fps
    arch: str = "regnet_y_400mf"    # or regnet_y_800mf (the authors' choice)
    weights: str = "auto"           # auto: ImageNet when it can be had, else random (warned once)
    gsm_div: int = 4                # GSM acts on C // gsm_div channels of each block's input
    entities: str = "none"          # none / detector (boxes + RoIAlign) / precomputed (forward kwargs)
    detector: str = "fasterrcnn_mobilenet_v3_large_fpn"
    detector_random_init: bool = False  # tests only: a detector without weights
    max_entities: int = 8           # N_max boxes per frame
    detector_score: float = 0.3     # keep boxes at or above this detector score
    detector_size: int = 320        # the detector's input height (its transform resizes frames to it)
    roi_size: int = 2               # RoIAlign output side before average pooling
    entity_dim: int = 256           # d of precomputed entity features
    d_model: int = 0                # 0 = min(C, 768)
    heads: int = 8
    ffn_dim: int = 2048
    attn_dropout: float = 0.1
    gru_hidden: int = 0             # 0 = min(GRU input, 768)
    dropout: float = 0.5
    focal_gamma: float = 5.0
    focal_alpha: float = 0.25
    nms_window_s: float = 1.0
    nms_threshold: float = 0.01
    crop_frac: float = 0.9          # augmentations (augment_snippets below)
    jitter: float = 0.2
    mixup_alpha: float = 0.2
    infer_windows: int = 4          # windows per forward pass at inference
    lr: float = 1e-3                # E2E-Spot / UGL train_e2e.py: AdamW 1e-3, warm-up 3 epochs, cosine
    weight_decay: float = 0.01
    optimizer: str = "adamw"
    schedule: str = "warmup_cosine"
    warmup_epochs: int = 3
    batch_size: int = 8
    epochs: int = 50
    patience: int = 50              # cosine schedule: train the full length, keep the best on valid


class UGLEndToEnd(SpottingModel):
    Config = Config
    output_mode = "sequence"
    input_kind = "frames"

    def __init__(self, cfg: Config):
        super().__init__(cfg)
        if cfg.entities not in ENTITY_SOURCES:
            raise SpottingError(f"entities {cfg.entities!r}: choose from {', '.join(ENTITY_SOURCES)}")
        self.entity_inputs = cfg.entities == "precomputed"
        self.max_infer_windows = cfg.infer_windows
        self.backbone = GSMRegNet(arch=cfg.arch, weights=cfg.weights, n_div=cfg.gsm_div)
        C = self.backbone.out_channels
        self.extractor = None
        if cfg.entities == "detector":
            from spotting_core.features.entities import DetectorExtractor

            self.extractor = DetectorExtractor(name=cfg.detector, max_entities=cfg.max_entities,
                                               score_threshold=cfg.detector_score, image_size=cfg.detector_size,
                                               random_init=cfg.detector_random_init)
        self.head = UGLHead(global_dim=C, num_classes=cfg.num_classes, use_entities=cfg.entities != "none",
                            entity_dim=C if cfg.entities == "detector" else cfg.entity_dim,
                            d_model=cfg.d_model or min(C, MAX_HIDDEN), heads=cfg.heads, ffn_dim=cfg.ffn_dim,
                            attn_dropout=cfg.attn_dropout, gru_hidden=cfg.gru_hidden, dropout=cfg.dropout)
        alpha = [cfg.focal_alpha] * cfg.num_classes + [1.0 - cfg.focal_alpha]
        self.register_buffer("focal_alpha", torch.tensor(alpha), persistent=False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255, persistent=False)

    def config_dict(self) -> dict:
        return {**asdict(self.cfg), "weights": "random"}  # the state dict carries the trained weights

    # ----- the contract -------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames (B, T, H, W, 3) -> (global features (B, T, C), feature map (B*T, C, h, w))."""
        if x.ndim != 5 or x.shape[-1] != 3:
            raise ValueError(f"expected frames (B, T, H, W, 3), got {tuple(x.shape)}")
        B, T, H, W, _ = x.shape
        frames = x.reshape(B * T, H, W, 3).permute(0, 3, 1, 2).float()           # (B*T, 3, H, W)
        frames = ((frames - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
        fmap = self.backbone(frames, T)                                          # (B*T, C, h, w)
        return fmap.mean(dim=(2, 3)).reshape(B, T, -1), fmap                     # (B, T, C)

    def forward(self, x: torch.Tensor, entities: torch.Tensor | None = None,
                entity_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """x: frames (B, T, H, W, 3); entities (B, T, N, d) and mask (B, T, N) for entities="precomputed"."""
        B, T, H, W, _ = x.shape
        g, fmap = self.encode(x)
        if self.extractor is not None:
            from spotting_core.features.entities import roi_entities

            boxes = self.extractor.boxes(x.reshape(B * T, H, W, 3))              # list of (n_i, 4) pixels
            ent, mask = roi_entities(fmap, boxes, max_entities=self.cfg.max_entities,
                                     spatial_scale=fmap.shape[-2] / H, output_size=self.cfg.roi_size)
            entities = ent.reshape(B, T, self.cfg.max_entities, -1)              # (B, T, N, C)
            entity_mask = mask.reshape(B, T, self.cfg.max_entities)
        return {"logits": self.head(g, entities, entity_mask)}                   # (B, T, K + 1)

    def augment(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Crop, colour jitter and mixup of the snippets (augment_snippets below)."""
        target = UGL.frame_targets(batch["events"])                                  # (B, T, K + 1)
        x, target = augment_snippets(batch["x"], target, crop_frac=self.cfg.crop_frac, jitter=self.cfg.jitter,
                                     mixup_alpha=self.cfg.mixup_alpha)
        return {**batch, "x": x, "target": target}

    loss = UGL.loss                  # the same per-frame focal loss and softmax scores as UGL on features
    frame_scores = UGL.frame_scores


# ---------------------------------------------------------------------------------------------
# Augmentations (E2E-Spot's, on the batch and its device)
# ---------------------------------------------------------------------------------------------
def augment_snippets(x: torch.Tensor, target: torch.Tensor, *, crop_frac: float = 0.9, jitter: float = 0.2,
                     mixup_alpha: float = 0.2, generator: torch.Generator | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Training augmentations of a batch of snippets, the same for every frame of a snippet.

    x: (B, T, H, W, 3) uint8 (or float in [0, 255]); target: (B, T, K + 1) per-frame distributions.
    - crop: a random box of side crop_frac..1 of the frame (per snippet), resized back to (H, W);
    - jitter: brightness, contrast and saturation factors drawn in [1 - jitter, 1 + jitter];
    - mixup: with lambda ~ Beta(a, a), each snippet mixed with another of the batch, frames and
      targets alike: x = lam x_i + (1 - lam) x_j, y = lam y_i + (1 - lam) y_j.
    Returns float frames in [0, 255] and the (mixed) targets.
    """
    B, T, H, W, _ = x.shape
    dev = x.device
    g = generator
    v = x.float().permute(0, 1, 4, 2, 3).reshape(B, T * 3, H, W)                 # (B, T*3, H, W)
    if crop_frac < 1.0:
        side = crop_frac + (1 - crop_frac) * torch.rand(B, generator=g).to(dev)   # (B,) fraction kept
        cx = (1 - side) * (2 * torch.rand(B, generator=g).to(dev) - 1)          # centre offsets, [-1, 1] coords
        cy = (1 - side) * (2 * torch.rand(B, generator=g).to(dev) - 1)
        theta = torch.zeros(B, 2, 3, device=dev)
        theta[:, 0, 0], theta[:, 1, 1], theta[:, 0, 2], theta[:, 1, 2] = side, side, cx, cy
        grid = F.affine_grid(theta, [B, T * 3, H, W], align_corners=False)
        v = F.grid_sample(v, grid, mode="bilinear", padding_mode="border", align_corners=False)
    v = v.reshape(B, T, 3, H, W)
    if jitter > 0:
        def factor() -> torch.Tensor:
            return (1 + jitter * (2 * torch.rand(B, generator=g) - 1)).to(dev).view(B, 1, 1, 1, 1)

        v = v * factor()                                                         # brightness
        mean = v.mean(dim=(1, 2, 3, 4), keepdim=True)
        v = (v - mean) * factor() + mean                                         # contrast
        grey = v.mean(dim=2, keepdim=True)
        v = (v - grey) * factor() + grey                                         # saturation
        v = v.clamp(0, 255)
    if mixup_alpha > 0 and B > 1:
        lam = torch.distributions.Beta(mixup_alpha, mixup_alpha).sample((B,)).to(dev)
        lam = torch.maximum(lam, 1 - lam)                                        # the snippet stays dominant
        perm = torch.randperm(B, generator=g).to(dev)
        v = lam.view(B, 1, 1, 1, 1) * v + (1 - lam.view(B, 1, 1, 1, 1)) * v[perm]
        target = lam.view(B, 1, 1) * target + (1 - lam.view(B, 1, 1)) * target[perm]
    return v.permute(0, 1, 3, 4, 2).contiguous(), target                         # (B, T, H, W, 3)
