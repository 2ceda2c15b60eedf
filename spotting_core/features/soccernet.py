"""SoccerNet-compatible frame features in PyTorch: the official `ResNET_TF2` (2048-d) and
`ResNET_TF2_PCA512` (512-d) pipeline, with no TensorFlow and no scikit-learn at inference.

    x = soccernet_crop(frame_rgb)                   (H, W, 3) uint8 -> (224, 224, 3) uint8
    x = preprocess(frames)                          (N, 224, 224, 3) uint8 -> (N, 3, 224, 224) float32
    net = load_resnet152()                          Keras "ResNet v1" (keras_resnet.py), ImageNet .h5 weights
    f2048 = net(x)                                  (N, 2048): global average pool of conv5
    f512 = apply_pca(f2048, load_official_pca())    (N, 512): minus the official average, then PCA
                                                    (soccernet_pca.py, no scikit-learn)

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

Files: `spotting pretrained fetch keras-resnet152 soccernet-pca512` installs them, or place them in
`soccernet_dir()` = $SPOTTING_SOCCERNET_DIR, by default ~/.cache/spotting/soccernet/. The Keras weights are also picked up from ~/.keras/models/, where Keras
itself caches them. Each is converted once to a torch / numpy file next to it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from spotting_core.errors import SpottingError
from spotting_core.features.keras_resnet import KerasResNet152, convert_keras_h5, load_converted
from spotting_core.features.soccernet_pca import apply_pca, convert_official_pca, random_pca, read_pca_npz
from spotting_core.runtime import cache_root

# ---------------------------------------------------------------------------------------------
# Constants: the Keras network and the official files
# ---------------------------------------------------------------------------------------------
CAFFE_MEAN = (103.939, 116.779, 123.68)  # keras preprocess_input "caffe": subtracted from B, G, R
INPUT_SIZE = 224
FEATURE_DIM = 2048
PCA_DIM = 512
FEATURE_NAME = "ResNET_TF2"            # SoccerNet's name of the 2048-d features
FEATURE_NAME_PCA = "ResNET_TF2_PCA512"  # ... and of their 512-d PCA reduction
CHANNEL_ORDERS = ("soccernet", "keras")


ENV_DIR = "SPOTTING_SOCCERNET_DIR"
KERAS_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
KERAS_H5_FILES = ("resnet152_weights_tf_dim_ordering_tf_kernels_notop.h5",
                  "resnet152_weights_tf_dim_ordering_tf_kernels.h5")
WEIGHTS_PT = "resnet152_keras_imagenet.pt"
PCA_URL = "https://github.com/SoccerNet/sn-spotting/tree/main/Features"
PCA_PKL, AVERAGE_PKL, PCA_NPZ = "pca_512_TF2.pkl", "average_512_TF2.pkl", "pca_512_TF2.npz"


def soccernet_dir() -> Path:
    """Where the Keras weights and the official PCA files go: $SPOTTING_SOCCERNET_DIR, else
    `<cache root>/soccernet` (where `spotting pretrained fetch` installs them)."""
    env = os.environ.get(ENV_DIR)
    return Path(env).expanduser() if env else cache_root() / "soccernet"


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
# Files in place -> an extractor
# ---------------------------------------------------------------------------------------------
def _missing_message(names: Iterable[str], folder: Path) -> str:
    parts, entries = [], []
    for name in names:
        if name in KERAS_H5_FILES:
            parts.append(f"{KERAS_H5_FILES[0]} (Keras ResNet152 ImageNet weights, from {KERAS_WEIGHTS_URL})")
            entries.append("keras-resnet152")
        else:
            parts.append(f"{name} (from {PCA_URL})")
            entries.append("soccernet-pca512")
    fetch = " ".join(dict.fromkeys(entries))
    return (f"{folder}: SoccerNet ResNet-152 features need {' and '.join(parts)}; run `spotting pretrained fetch "
            f"{fetch}`, or place them in {folder} (or set {ENV_DIR} to the folder that holds them)")


def find_keras_h5(folder: Path | None = None) -> Path | None:
    """The Keras ResNet152 .h5 in `folder` (default `soccernet_dir()`) or in Keras' own cache."""
    folder = folder or soccernet_dir()
    for d in (folder, Path.home() / ".keras" / "models"):
        for name in KERAS_H5_FILES:
            if (d / name).is_file():
                return d / name
    return None


def has_resnet_weights(folder: Path | None = None) -> bool:
    """The ResNet-152 weights are there: converted, or the Keras .h5 to convert."""
    folder = folder or soccernet_dir()
    return (folder / WEIGHTS_PT).is_file() or find_keras_h5(folder) is not None


def has_pca(folder: Path | None = None) -> bool:
    """The official PCA is there: converted, or both pickles to convert."""
    folder = folder or soccernet_dir()
    return (folder / PCA_NPZ).is_file() or all((folder / n).is_file() for n in (PCA_PKL, AVERAGE_PKL))


def check_files(*, pca: bool) -> None:
    """Raise one SpottingError naming every missing file (weights and, with `pca`, the two pickles)."""
    folder = soccernet_dir()
    missing = []
    if not has_resnet_weights(folder):
        missing.append(KERAS_H5_FILES[0])
    if pca and not has_pca(folder):
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
