"""SoccerNet-compatible frame features in PyTorch: the official `ResNET_TF2` (2048-d) and
`ResNET_TF2_PCA512` (512-d) pipeline, with no TensorFlow and no scikit-learn at inference.

    x = soccernet_crop(frame_rgb)                   (H, W, 3) uint8 -> (224, 224, 3) uint8
    x = preprocess(frames)                          (N, 224, 224, 3) uint8 -> (N, 3, 224, 224) float32
    net = KerasResNet152(); load_keras_weights(net) Keras "ResNet v1", ImageNet weights from the .h5
    f2048 = net(x)                                  (N, 2048): global average pool of conv5
    f512 = apply_pca(f2048, load_official_pca())    (N, 512): minus the official average, then PCA

How the official features were made (SoccerNetv2-DevKit `Features/ExtractResNET_TF2.py` with its
defaults: grabber "opencv", transform "crop", 2 fps, `SoccerNet.DataLoader.FrameCV`):
- frames come from `cv2.VideoCapture`, so they are BGR;
- each is resized to 224 high keeping the aspect ratio (`imutils.resize`: width `int(w * 224 / h)`,
  `cv2.INTER_AREA`), then `int((width - 224) / 2)` columns are cut from each side;
- `keras.applications.resnet.preprocess_input` ("caffe" mode: flip the last axis, subtract
  [103.939, 116.779, 123.68], no scaling) is applied to those BGR frames. Keras assumes RGB input and
  flips it to BGR, so the official network actually saw the frames in RGB order minus those means.
  `channel_order="soccernet"` (the default) reproduces that; `channel_order="keras"` is the textbook
  Keras preprocessing of RGB frames (the one ImageNet was trained with);
- `keras.applications.resnet.ResNet152(weights="imagenet")` up to its "avg_pool" layer;
- PCA (`Features/ReduceFeaturesPCA.py`): `pca.transform(features - average)` with the pickled sklearn
  PCA `pca_512_TF2.pkl` and the pickled numpy average `average_512_TF2.pkl`.

Keras ResNet v1 differs from torchvision's ResNet (v1.5): the stride of a downsampling block sits on
its first 1x1 convolution (not on the 3x3), every convolution has a bias, and BatchNorm uses
epsilon 1.001e-5.

Files (never downloaded here): place them in `soccernet_dir()` = $SPOTTING_SOCCERNET_DIR, by default
~/.cache/spotting/soccernet/. The Keras weights are also picked up from ~/.keras/models/, where Keras
itself caches them. Each is converted once to a torch / numpy file next to it.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spotting_core.errors import SpottingError

# ---------------------------------------------------------------------------------------------
# Constants: the Keras network and the official files
# ---------------------------------------------------------------------------------------------
KERAS_BN_EPS = 1.001e-5
CAFFE_MEAN = (103.939, 116.779, 123.68)  # keras preprocess_input "caffe": subtracted from B, G, R
INPUT_SIZE = 224
FEATURE_DIM = 2048
PCA_DIM = 512
FEATURE_NAME = "ResNET_TF2"            # SoccerNet's name of the 2048-d features
FEATURE_NAME_PCA = "ResNET_TF2_PCA512"  # ... and of their 512-d PCA reduction
CHANNEL_ORDERS = ("soccernet", "keras")

# (Keras stage name, bottleneck width, blocks, stride of the first block): keras resnet.ResNet152
STAGES: tuple[tuple[str, int, int, int], ...] = (
    ("conv2", 64, 3, 1), ("conv3", 128, 8, 2), ("conv4", 256, 36, 2), ("conv5", 512, 3, 2),
)  # fmt: skip

ENV_DIR = "SPOTTING_SOCCERNET_DIR"
KERAS_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
KERAS_H5_FILES = ("resnet152_weights_tf_dim_ordering_tf_kernels_notop.h5",
                  "resnet152_weights_tf_dim_ordering_tf_kernels.h5")
WEIGHTS_PT = "resnet152_keras_imagenet.pt"
PCA_URL = "https://github.com/SilvioGiancola/SoccerNetv2-DevKit/tree/main/Features"
PCA_PKL, AVERAGE_PKL, PCA_NPZ = "pca_512_TF2.pkl", "average_512_TF2.pkl", "pca_512_TF2.npz"


def soccernet_dir() -> Path:
    """Where the Keras weights and the official PCA files go: $SPOTTING_SOCCERNET_DIR or the cache."""
    env = os.environ.get(ENV_DIR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "spotting" / "soccernet"


# ---------------------------------------------------------------------------------------------
# Pre-processing
# ---------------------------------------------------------------------------------------------
def soccernet_crop(frame: np.ndarray, *, size: int = INPUT_SIZE) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3) uint8, as SoccerNet's FrameCV "crop" transform.

    Resize to `size` high keeping the aspect ratio (width `int(W * size / H)`, cv2.INTER_AREA), then
    keep the central `size` columns starting at `int((width - size) / 2)`. The official code slices
    `[off:-off]`, which is the same for the even surpluses of broadcast sizes (16:9 -> 398 wide) and
    breaks otherwise; frames narrower than square are resized to `size` wide and cropped in height.
    """
    import cv2

    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or min(frame.shape[:2]) == 0:
        raise ValueError(f"expected an (H, W, 3) frame, got {frame.shape}")
    h, w = frame.shape[:2]
    new_w = int(w * (size / float(h)))
    if new_w >= size:
        if (h, w) != (size, new_w):
            frame = cv2.resize(frame, (new_w, size), interpolation=cv2.INTER_AREA)
        off = int((new_w - size) / 2)
        return np.ascontiguousarray(frame[:, off:off + size])
    new_h = int(h * (size / float(w)))
    frame = cv2.resize(frame, (size, new_h), interpolation=cv2.INTER_AREA)
    off = int((new_h - size) / 2)
    return np.ascontiguousarray(frame[off:off + size])


def official_frame_indices(num_frames: int, video_fps: float, fps: float = 2.0) -> np.ndarray:
    """0-based indices of the video frames that SoccerNet's FrameCV keeps: the n-th frame read
    (n = index + 1) is kept when `n % (video_fps / fps) < 1`. At 25 fps and 2 fps that is 12, 24, 37,
    49, ... (t = 0.48, 0.96, 1.48, 1.96 s): official feature k shows t ~ k / fps + 0.48 s, not k / fps.
    """
    n = np.arange(1, int(num_frames) + 1, dtype=np.float64)
    return np.nonzero(np.mod(n, video_fps / fps) < 1)[0]


def preprocess(frames: np.ndarray, *, channel_order: str = "soccernet") -> torch.Tensor:
    """RGB frames (N, 224, 224, 3) uint8 -> the network input (N, 3, 224, 224) float32.

    "soccernet": channels stay R, G, B and [103.939, 116.779, 123.68] are subtracted from them, which
        is what the official extraction did (BGR OpenCV frames through Keras' flip).
    "keras": `preprocess_input` of RGB frames: flip to B, G, R, then subtract the same means.
    No scaling in either.
    """
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f"unknown channel_order {channel_order!r}; choose from {', '.join(CHANNEL_ORDERS)}")
    x = torch.as_tensor(np.asarray(frames)).to(torch.float32)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected (N, H, W, 3) frames, got {tuple(x.shape)}")
    if channel_order == "keras":
        x = x.flip(-1)  # RGB -> BGR
    x = x - torch.tensor(CAFFE_MEAN, dtype=torch.float32)
    return x.permute(0, 3, 1, 2).contiguous()  # (N, H, W, 3) -> (N, 3, H, W)


# ---------------------------------------------------------------------------------------------
# The network: Keras ResNet152 ("ResNet v1"), layers named as in Keras
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# Keras .h5 -> torch state_dict
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# The official PCA, without scikit-learn
# ---------------------------------------------------------------------------------------------
class _PickledPCA:
    """Stands in for sklearn's PCA while unpickling: the pickled attributes land in __dict__."""


class _PCAUnpickler(pickle.Unpickler):
    """Loads the official pickles with numpy only: sklearn PCA classes become `_PickledPCA`, and
    nothing else but numpy arrays / scalars / dtypes may be built (a pickle can run code otherwise)."""

    _NUMPY = {"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"}

    def find_class(self, module: str, name: str):
        if module.startswith("sklearn.decomposition") and name in ("PCA", "IncrementalPCA"):
            return _PickledPCA
        if module.split(".")[0] == "numpy" and name in self._NUMPY:
            return super().find_class(module, name)
        if (module, name) in {("copyreg", "_reconstructor"), ("builtins", "object"), ("__builtin__", "object")}:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _unpickle(path: Path):
    try:
        with open(path, "rb") as fobj:
            return _PCAUnpickler(fobj, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError) as e:
        raise SpottingError(f"{path}: not the official SoccerNet pickle ({e})") from None


def convert_official_pca(pca_pkl: str | os.PathLike, average_pkl: str | os.PathLike,
                         out_npz: str | os.PathLike) -> Path:
    """The pickled sklearn PCA + numpy average -> one .npz (average, mean, components, variance, whiten)."""
    pca_pkl, average_pkl, out_npz = Path(pca_pkl), Path(average_pkl), Path(out_npz)
    pca = _unpickle(pca_pkl)
    if not isinstance(pca, _PickledPCA) or not hasattr(pca, "components_"):
        raise SpottingError(f"{pca_pkl}: not a pickled, fitted sklearn PCA")
    average = np.asarray(_unpickle(average_pkl))
    components = np.asarray(pca.components_)
    if average.ndim != 1 or components.ndim != 2 or components.shape[1] != average.shape[0]:
        raise SpottingError(f"{average_pkl}: average of shape {average.shape} does not fit "
                            f"PCA components {components.shape}")
    mean = getattr(pca, "mean_", None)
    out_npz.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_npz.with_name(f".{out_npz.stem}.tmp.npz")
    np.savez(tmp, average=average,
             mean=np.zeros(components.shape[1]) if mean is None else np.asarray(mean),
             components=components, explained_variance=np.asarray(pca.explained_variance_),
             whiten=np.asarray(bool(getattr(pca, "whiten", False))))
    os.replace(tmp, out_npz)
    return out_npz


def load_official_pca(pca_pkl: str | os.PathLike | None = None, average_pkl: str | os.PathLike | None = None,
                      *, out_npz: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """The official PCA as arrays. Converts the two pickles to `pca_512_TF2.npz` next to them once;
    afterwards only the .npz is read. Defaults: the files in `soccernet_dir()`."""
    folder = soccernet_dir()
    pca_pkl = Path(pca_pkl) if pca_pkl is not None else folder / PCA_PKL
    average_pkl = Path(average_pkl) if average_pkl is not None else folder / AVERAGE_PKL
    npz = Path(out_npz) if out_npz is not None else pca_pkl.with_name(PCA_NPZ)
    if not npz.is_file():
        missing = [p for p in (pca_pkl, average_pkl) if not p.is_file()]
        if missing:
            raise SpottingError(_missing_message([p.name for p in missing], missing[0].parent))
        try:
            convert_official_pca(pca_pkl, average_pkl, npz)
        except OSError as e:
            raise SpottingError(f"{npz}: cannot write the converted PCA ({e.strerror}); "
                                "put the two pickles in a writable folder") from None
    return read_pca_npz(npz)


def read_pca_npz(npz: str | os.PathLike) -> dict[str, np.ndarray]:
    try:
        with np.load(npz, allow_pickle=False) as z:
            return {k: z[k] for k in ("average", "mean", "components", "explained_variance", "whiten")}
    except (OSError, KeyError, ValueError) as e:
        raise SpottingError(f"{npz}: not a converted SoccerNet PCA ({e}); delete it to convert again") from None


def apply_pca(feats: np.ndarray, pca: dict[str, np.ndarray] | str | os.PathLike) -> np.ndarray:
    """(N, 2048) -> (N, 512) float32, as the official code: `pca.transform(feats - average)`.

    sklearn's transform is `(X - mean_) @ components_.T`, divided by sqrt(explained_variance_) when
    whitened; it is computed here in float64, as sklearn does with its float64 attributes.
    """
    if not isinstance(pca, dict):
        pca = read_pca_npz(pca)
    x = np.asarray(feats)
    if x.ndim != 2 or x.shape[1] != pca["components"].shape[1]:
        raise ValueError(f"expected (N, {pca['components'].shape[1]}) features, got {x.shape}")
    x = x - pca["average"]  # the official step, in the features' own precision
    y = (x.astype(np.float64) - pca["mean"]) @ pca["components"].T.astype(np.float64)
    if bool(pca["whiten"]):
        y /= np.sqrt(pca["explained_variance"])
    return y.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Files in place -> an extractor
# ---------------------------------------------------------------------------------------------
def _missing_message(names: Iterable[str], folder: Path) -> str:
    parts = []
    for name in names:
        if name in KERAS_H5_FILES:
            parts.append(f"{KERAS_H5_FILES[0]} (Keras ResNet152 ImageNet weights, from {KERAS_WEIGHTS_URL})")
        else:
            parts.append(f"{name} (from {PCA_URL})")
    return (f"{folder}: SoccerNet ResNet-152 features need {' and '.join(parts)}; place them in {folder} "
            f"(or set {ENV_DIR} to the folder that holds them)")


def find_keras_h5(folder: Path | None = None) -> Path | None:
    """The Keras ResNet152 .h5 in `folder` (default `soccernet_dir()`) or in Keras' own cache."""
    folder = folder or soccernet_dir()
    for d in (folder, Path.home() / ".keras" / "models"):
        for name in KERAS_H5_FILES:
            if (d / name).is_file():
                return d / name
    return None


def check_files(*, pca: bool) -> None:
    """Raise one SpottingError naming every missing file (weights and, with `pca`, the two pickles)."""
    folder = soccernet_dir()
    missing = []
    if not (folder / WEIGHTS_PT).is_file() and find_keras_h5(folder) is None:
        missing.append(KERAS_H5_FILES[0])
    if pca and not (folder / PCA_NPZ).is_file():
        missing += [n for n in (PCA_PKL, AVERAGE_PKL) if not (folder / n).is_file()]
    if missing:
        raise SpottingError(_missing_message(missing, folder))


def load_resnet152(device: str | torch.device = "cpu") -> KerasResNet152:
    """The Keras ImageNet ResNet152 in torch, converting the .h5 to `resnet152_keras_imagenet.pt` once."""
    check_files(pca=False)
    folder = soccernet_dir()
    pt = folder / WEIGHTS_PT
    if not pt.is_file():
        try:
            convert_keras_h5(find_keras_h5(folder), pt)
        except OSError as e:
            raise SpottingError(f"{pt}: cannot write the converted weights ({e.strerror}); "
                                f"set {ENV_DIR} to a writable folder holding the .h5") from None
    return load_converted(KerasResNet152(), pt).to(device)


class SoccerNetExtractor:
    """RGB frames -> SoccerNet features: (N, H, W, 3) uint8 -> (N, 512) with `pca`, else (N, 2048)."""

    def __init__(self, *, model: KerasResNet152, pca: dict[str, np.ndarray] | None,
                 channel_order: str = "soccernet", batch_size: int = 16):
        self.model = model.eval()
        self.pca = pca
        self.channel_order = channel_order
        self.batch_size = batch_size
        self.device = next(model.parameters()).device
        self.dim = PCA_DIM if pca is not None else FEATURE_DIM

    @torch.inference_mode()
    def __call__(self, frames: Sequence[np.ndarray] | np.ndarray,
                 progress: Callable[[float, str], None] | None = None) -> np.ndarray:
        n = len(frames)
        out = np.zeros((n, FEATURE_DIM), dtype=np.float32)
        for s in range(0, n, self.batch_size):
            crops = np.stack([soccernet_crop(f) for f in frames[s:s + self.batch_size]])  # (b, 224, 224, 3)
            x = preprocess(crops, channel_order=self.channel_order).to(self.device)
            out[s:s + len(crops)] = self.model(x).float().cpu().numpy()
            if progress is not None:
                progress(min(1.0, (s + len(crops)) / n), "ResNet-152 (SoccerNet) features")
        return apply_pca(out, self.pca) if self.pca is not None else out


class SoccerNetNetwork(nn.Module):
    """The backbone-registry network: preprocessed (B, 3, 224, 224) -> (B, 2048), or (B, 512) with a PCA.

    The PCA runs in float32 even when the ResNet is put in half precision (`half()` leaves it alone).
    """

    def __init__(self, *, resnet: KerasResNet152, pca: dict[str, np.ndarray] | None):
        super().__init__()
        self.resnet = resnet
        self.has_pca = pca is not None
        if pca is not None:
            scale = np.sqrt(pca["explained_variance"]) if bool(pca["whiten"]) else np.ones(len(pca["components"]))
            offset = pca["average"].astype(np.float64) + pca["mean"]               # (2048,)
            self.register_buffer("offset", torch.tensor(offset, dtype=torch.float32))
            self.register_buffer("projection", torch.tensor(pca["components"].T / scale, dtype=torch.float32))

    def half(self):
        self.resnet.half()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, 224, 224)
        feats = self.resnet(x).float()                    # (B, 2048)
        if not self.has_pca:
            return feats
        return (feats - self.offset) @ self.projection    # (B, 512)


def backbone_preprocess(frames: torch.Tensor) -> torch.Tensor:
    """Backbone-registry preprocessing: RGB uint8 (B, H, W, 3) at native size, on any device ->
    the SoccerNet crop (cv2 INTER_AREA, on the CPU) and caffe input (B, 3, 224, 224) on that device."""
    crops = np.stack([soccernet_crop(f) for f in frames.cpu().numpy()])  # (B, 224, 224, 3)
    return preprocess(crops).to(frames.device)


def random_pca(*, dim_in: int = FEATURE_DIM, dim_out: int = PCA_DIM, seed: int = 0) -> dict[str, np.ndarray]:
    """An orthonormal random projection in the .npz layout, for `random_init` tests only."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim_in, dim_out)))
    return {"average": np.zeros(dim_in, np.float32), "mean": np.zeros(dim_in), "components": q.T,
            "explained_variance": np.ones(dim_out), "whiten": np.asarray(False)}


def build_network(device: str | torch.device = "cpu", *, pca: bool = True,
                  random_init: bool = False) -> SoccerNetNetwork:
    """The registry's `build`: Keras ImageNet weights (+ official PCA) from `soccernet_dir()`, or
    with `random_init` (tests only) an untrained network and a random orthonormal projection."""
    if random_init:
        net = SoccerNetNetwork(resnet=KerasResNet152(), pca=random_pca() if pca else None)
    else:
        check_files(pca=pca)
        net = SoccerNetNetwork(resnet=load_resnet152("cpu"), pca=load_official_pca() if pca else None)
    return net.to(device).eval()


def build_pca_network(device: str | torch.device = "cpu", *, random_init: bool = False) -> SoccerNetNetwork:
    """`ResNET_TF2_PCA512`: (B, 3, 224, 224) -> (B, 512)."""
    return build_network(device, pca=True, random_init=random_init)


def build_raw_network(device: str | torch.device = "cpu", *, random_init: bool = False) -> SoccerNetNetwork:
    """`ResNET_TF2`: (B, 3, 224, 224) -> (B, 2048)."""
    return build_network(device, pca=False, random_init=random_init)


def build_extractor(device: str | torch.device = "cpu", *, pca: bool = True,
                    channel_order: str = "soccernet") -> SoccerNetExtractor:
    """The full pipeline from the files in `soccernet_dir()`; one clear error if any is missing."""
    check_files(pca=pca)
    model = load_resnet152(device)
    return SoccerNetExtractor(model=model, pca=load_official_pca() if pca else None, channel_order=channel_order)
