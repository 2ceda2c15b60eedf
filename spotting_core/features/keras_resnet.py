"""Keras' ResNet-152 ("ResNet v1") in PyTorch, layer names as in Keras, and its ImageNet .h5 weights.

    net = KerasResNet152()                         (B, 3, 224, 224) caffe input -> (B, 2048) avg-pool features
    convert_keras_h5(h5, out_pt); load_converted(net, out_pt)

Keras ResNet v1 differs from torchvision's ResNet (v1.5): the stride of a downsampling block sits on
its first 1x1 convolution (not on the 3x3), every convolution has a bias, and BatchNorm uses
epsilon 1.001e-5.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spotting_core.errors import SpottingError

KERAS_BN_EPS = 1.001e-5


# (Keras stage name, bottleneck width, blocks, stride of the first block): keras resnet.ResNet152
STAGES: tuple[tuple[str, int, int, int], ...] = (
    ("conv2", 64, 3, 1), ("conv3", 128, 8, 2), ("conv4", 256, 36, 2), ("conv5", 512, 3, 2),
)  # fmt: skip


def _conv(cin: int, cout: int, k: int, stride: int = 1, padding: int = 0) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=True)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=KERAS_BN_EPS)


class KerasBottleneck(nn.Module):
    """keras resnet.block1: 1x1 (stride) -> 3x3 "same" -> 1x1 (x4), plus the identity or a 1x1 conv."""

    def __init__(self, *, cin: int, width: int, stride: int, shortcut: bool):
        super().__init__()
        self.stride = stride
        if shortcut:
            self.conv0 = _conv(cin, 4 * width, 1, stride=stride)
            self.bn0 = _bn(4 * width)
        else:
            self.conv0 = self.bn0 = None
        self.conv1, self.bn1 = _conv(cin, width, 1, stride=stride), _bn(width)
        self.conv2, self.bn2 = _conv(width, width, 3, padding=1), _bn(width)
        self.conv3, self.bn3 = _conv(width, 4 * width, 1), _bn(4 * width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W)
        skip = x if self.conv0 is None else self.bn0(self.conv0(x))
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + skip)


class KerasResNet152(nn.Module):
    """keras.applications.resnet.ResNet152(include_top=False, pooling="avg") in torch.

    forward: caffe-preprocessed (B, 3, H, W) -> (B, 2048). `keras_layers()` maps each Keras layer
    name ("conv1_conv", "conv4_block17_2_bn", ...) to its torch module; the converter relies on it.
    """

    def __init__(self, *, stages: Sequence[tuple[str, int, int, int]] = STAGES):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=True)  # ZeroPadding2D(3) + valid 7x7/2
        self.bn1 = _bn(64)
        blocks, cin = [], 64
        for _name, width, n, stride in stages:
            for i in range(n):
                blocks.append(KerasBottleneck(cin=cin, width=width, stride=stride if i == 0 else 1,
                                              shortcut=i == 0))
                cin = 4 * width
        self.blocks = nn.Sequential(*blocks)
        self.stages = tuple(stages)
        self.out_dim = cin

    def keras_layers(self) -> dict[str, nn.Module]:
        layers: dict[str, nn.Module] = {"conv1_conv": self.conv1, "conv1_bn": self.bn1}
        it = iter(self.blocks)
        for stage, _width, n, _stride in self.stages:
            for i in range(1, n + 1):
                block = next(it)
                for j in (0, 1, 2, 3):
                    conv, bn = getattr(block, f"conv{j}"), getattr(block, f"bn{j}")
                    if conv is not None:
                        layers[f"{stage}_block{i}_{j}_conv"] = conv
                        layers[f"{stage}_block{i}_{j}_bn"] = bn
        return layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W)
        x = F.relu(self.bn1(self.conv1(x)))                 # (B, 64, H/2, W/2)
        x = F.max_pool2d(F.pad(x, (1, 1, 1, 1)), 3, 2)      # ZeroPadding2D(1) + valid 3x3/2; x >= 0
        x = self.blocks(x)                                  # (B, 2048, H/32, W/32)
        return x.mean(dim=(2, 3))                           # (B, 2048) GlobalAveragePooling2D


_CONV_VARS = ("kernel", "bias")


_BN_VARS = ("gamma", "beta", "moving_mean", "moving_variance")


def _decode(x) -> str:
    return x.decode("utf-8") if isinstance(x, bytes) else str(x)


def read_keras_h5(h5_path: str | os.PathLike) -> dict[str, dict[str, np.ndarray]]:
    """{layer name: {"kernel"/"bias"/"gamma"/...: array}} from a Keras weights file.

    Reads the legacy layout that `keras.applications` downloads and `save_weights("x.h5")` writes
    (root or "model_weights" group with a `layer_names` attribute; each layer's `weight_names` such as
    "conv1_conv/kernel:0"), and the Keras 3 `x.weights.h5` layout (layers/<key>/vars/<i> with the
    layer name as the `name` attribute, variables in creation order).
    """
    import h5py

    path = Path(h5_path)
    out: dict[str, dict[str, np.ndarray]] = {}
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise SpottingError(f"{path}: not a readable HDF5 (Keras .h5) file ({e})") from None
    with f:
        root = f["model_weights"] if "model_weights" in f else f
        if "layer_names" in root.attrs:
            for lname in map(_decode, root.attrs["layer_names"]):
                g = root[lname]
                arrays = {}
                for wname in map(_decode, g.attrs.get("weight_names", [])):
                    key = wname.split("/")[-1].split(":")[0]
                    arrays[key] = np.asarray(g[wname])
                if arrays:
                    out[lname] = arrays
        elif "layers" in root:
            for g in root["layers"].values():
                vars_ = g.get("vars")
                if vars_ is None or len(vars_) == 0:
                    continue
                lname = _decode(vars_.attrs.get("name", ""))
                values = [np.asarray(vars_[str(i)]) for i in range(len(vars_))]
                names = _CONV_VARS if lname.endswith("_conv") else _BN_VARS if lname.endswith("_bn") else ()
                if len(names) == len(values):
                    out[lname] = dict(zip(names, values))
        else:
            raise SpottingError(f"{path}: no Keras weights in this HDF5 file (no layer_names, no layers/)")
    return out


def keras_to_state_dict(layers: dict[str, dict[str, np.ndarray]], model: KerasResNet152,
                        *, source: str = "Keras weights") -> dict[str, torch.Tensor]:
    """Map Keras arrays onto `model`'s state_dict keys; every layer must be present with its shape."""
    names = {id(m): n for n, m in model.named_modules()}
    sd: dict[str, torch.Tensor] = {}
    missing = []
    for lname, module in model.keras_layers().items():
        arrays = layers.get(lname)
        prefix = names[id(module)]
        if arrays is None:
            missing.append(lname)
            continue
        if isinstance(module, nn.Conv2d):
            pairs = {"weight": arrays["kernel"].transpose(3, 2, 0, 1),  # (kh, kw, in, out) -> (out, in, kh, kw)
                     "bias": arrays["bias"]}
        else:
            pairs = {"weight": arrays["gamma"], "bias": arrays["beta"],
                     "running_mean": arrays["moving_mean"], "running_var": arrays["moving_variance"]}
        for key, value in pairs.items():
            target = getattr(module, key)
            if tuple(value.shape) != tuple(target.shape):
                raise SpottingError(f"{source}: layer {lname} {key} has shape {value.shape}, "
                                    f"expected {tuple(target.shape)} (not a Keras ResNet152?)")
            sd[f"{prefix}.{key}"] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
        if isinstance(module, nn.BatchNorm2d):
            sd[f"{prefix}.num_batches_tracked"] = torch.zeros((), dtype=torch.long)
    if missing:
        raise SpottingError(f"{source}: {len(missing)} ResNet152 layers missing (first: {missing[0]}); "
                            "expected keras.applications.ResNet152 weights")
    return sd


def convert_keras_h5(h5_path: str | os.PathLike, out_pt: str | os.PathLike) -> Path:
    """Convert a Keras `ResNet152` weights .h5 (top or no top) to a torch state_dict file, once."""
    h5_path, out_pt = Path(h5_path), Path(out_pt)
    model = KerasResNet152()
    sd = keras_to_state_dict(read_keras_h5(h5_path), model, source=str(h5_path))
    model.load_state_dict(sd)  # every key, every shape
    out_pt.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_pt.with_name(f".{out_pt.name}.tmp")
    torch.save({"state_dict": sd, "source": h5_path.name, "format": "keras-resnet152-v1"}, tmp)
    os.replace(tmp, out_pt)
    return out_pt


def load_converted(model: KerasResNet152, pt_path: str | os.PathLike) -> KerasResNet152:
    try:
        blob = torch.load(pt_path, map_location="cpu", weights_only=True)
        model.load_state_dict(blob["state_dict"])
    except Exception as e:  # a truncated or foreign file
        raise SpottingError(f"{pt_path}: not a converted Keras ResNet152 ({type(e).__name__}); "
                            "delete it to convert the .h5 again") from None
    return model.eval()
