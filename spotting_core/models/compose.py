"""Any feature head trained end to end on frames: a fine-tuned 2D frame backbone in front of the head.

    build_model("rms-net", backbone="regnety_400mf", input_dim=224)   frames (B, T, 224, W, 3) in
    spotting train --model rms-net --set backbone=regnety_400mf ...    the same from the command line

RMS-Net's 75.1 Average-mAP setting is such a pairing (its head on a fine-tuned 2D backbone). The
composed model is the head's paper with `input_kind = "frames"`: its Config is the head's plus
`backbone` and `backbone_weights`, and `input_dim` becomes the frame height (the head gets the
backbone's width). Each frame is encoded on its own (a 2D network, no temporal mixing), so whole-half
inference encodes every frame once and hands the features to the head's own `sequence_scores`.
Training, sampling, augmentation, loss and NMS are the head's.

    FRAME_BACKBONES         name -> (torchvision RegNet-Y, output width)
    frames_variant(head)    the composed class of a feature head (cached; `models.model_class` uses it)
"""

from __future__ import annotations

import dataclasses
from functools import cache

import torch
from torch import nn

from spotting_core.errors import SpottingError
from spotting_core.features.backbones import IMAGENET_MEAN, IMAGENET_STD, torchvision_regnet
from spotting_core.models.base import SpottingModel

FRAME_BACKBONES: dict[str, tuple[str, int]] = {
    "regnety_400mf": ("regnet_y_400mf", 440),
    "regnety_800mf": ("regnet_y_800mf", 784),
}
FRAME_HEIGHT = 224     # the composed Config's default input_dim: frames 224 pixels high
ENCODE_BATCH = 64      # frames per forward pass when a whole half is encoded


class FrameEncoder(nn.Module):
    """uint8 RGB frames (N, H, W, 3) -> (N, C): ImageNet normalisation, a RegNet-Y trunk, global average pool."""

    def __init__(self, *, backbone: str, weights: str):
        super().__init__()
        if backbone not in FRAME_BACKBONES:
            raise SpottingError(f"backbone {backbone!r}: choose from {', '.join(FRAME_BACKBONES)}")
        arch, self.dim = FRAME_BACKBONES[backbone]
        net = torchvision_regnet(arch, weights, hint="--set backbone_weights=random")
        self.stem, self.trunk = net.stem, net.trunk_output
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255, persistent=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:  # (N, H, W, 3) uint8 or float in [0, 255]
        x = frames.permute(0, 3, 1, 2).float()                                  # (N, 3, H, W)
        x = ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
        return self.trunk(self.stem(x)).mean(dim=(2, 3))                       # (N, C)


class FramesModel(SpottingModel):
    """A feature head with a frame encoder in front; subclassed per head by `frames_variant`."""

    head_class: type[SpottingModel] = SpottingModel
    input_kind = "frames"

    def __init__(self, cfg):
        super().__init__(cfg)
        head_fields = {f.name for f in dataclasses.fields(self.head_class.Config)}
        self.encoder = FrameEncoder(backbone=cfg.backbone, weights=cfg.backbone_weights)
        options = {k: v for k, v in dataclasses.asdict(cfg).items() if k in head_fields}
        self.head = self.head_class(self.head_class.Config(**{**options, "input_dim": self.encoder.dim}))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Frames (B, T, H, W, 3) -> features (B, T, C)."""
        if x.ndim != 5 or x.shape[-1] != 3:
            raise ValueError(f"expected frames (B, T, H, W, 3), got {tuple(x.shape)}")
        B, T = x.shape[:2]
        return self.encoder(x.reshape(B * T, *x.shape[2:])).reshape(B, T, -1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.head(self.encode(x))

    def loss(self, outputs, batch):
        return self.head.loss(outputs, batch)

    def frame_scores(self, outputs):
        return self.head.frame_scores(outputs)

    def augment(self, batch):
        return self.head.augment(batch)

    def epoch_clips(self, index, rng, clips_per_epoch=None):
        return self.head.epoch_clips(index, rng, clips_per_epoch)

    def config_dict(self) -> dict:
        return {**dataclasses.asdict(self.cfg), "backbone_weights": "random"}  # the state dict carries them

    @torch.no_grad()
    def sequence_scores(self, feats: torch.Tensor, *, batch_size: int = 256, entities=None, entity_mask=None):
        """Encode every frame of the half once (T, H, W, 3) -> (T, C), then the head's whole-half scores."""
        if feats.ndim != 4:
            raise ValueError(f"expected frames (T, H, W, 3), got {tuple(feats.shape)}")
        device = next(self.parameters()).device
        encoded = torch.cat([self.encoder(feats[i:i + ENCODE_BATCH].to(device))
                             for i in range(0, len(feats), ENCODE_BATCH)])       # (T, C)
        return self.head.sequence_scores(encoded, batch_size=batch_size)


@cache
def frames_variant(head: type[SpottingModel]) -> type[FramesModel]:
    """The composed class of a feature head: its Config plus `backbone` and `backbone_weights`."""
    if head.input_kind != "features":
        raise SpottingError(f"model {head.name!r} reads frames already; --set backbone applies to feature models")
    fields = []
    for f in dataclasses.fields(head.Config):
        default = FRAME_HEIGHT if f.name == "input_dim" else f.default
        fields.append((f.name, f.type, dataclasses.field(default=default)))
    fields += [("backbone", str, dataclasses.field(default="regnety_400mf")),
               ("backbone_weights", str, dataclasses.field(default="auto"))]
    config = dataclasses.make_dataclass(f"{head.Config.__qualname__.replace('.', '')}Frames", fields)
    config.__module__ = __name__
    return type(f"{head.__name__}Frames", (FramesModel,), {
        "Config": config, "head_class": head, "name": head.name, "output_mode": head.output_mode,
        "sampling": head.sampling, "exact_sequence_scores": False,
        "__doc__": f"{head.__name__} on a fine-tuned frame backbone (models/compose.py).",
    })
