"""SoccerNet-compatible ResNet-152 features: architecture, converter, preprocessing, official PCA, errors.

The numerical equivalence with TensorFlow/Keras lives in bench/soccernet_features.py (TF is heavy).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from spotting_core.errors import SpottingError
from spotting_core.features.keras_resnet import (
    KERAS_BN_EPS,
    STAGES,
    KerasResNet152,
    keras_to_state_dict,
    read_keras_h5,
)
from spotting_core.features.soccernet import (
    AVERAGE_PKL,
    CAFFE_MEAN,
    ENV_DIR,
    KERAS_H5_FILES,
    PCA_NPZ,
    PCA_PKL,
    WEIGHTS_PT,
    SoccerNetNetwork,
    apply_pca,
    build_network,
    check_files,
    find_keras_h5,
    load_official_pca,
    official_frame_indices,
    preprocess,
    soccernet_crop,
)
from spotting_core.features.soccernet_pca import convert_official_pca, random_pca, read_pca_npz

ROOT = Path(__file__).resolve().parents[1]
TINY = (("conv2", 4, 2, 1), ("conv3", 8, 2, 2))  # same block structure, hand-sized


@pytest.fixture()
def sn_dir(tmp_path, monkeypatch) -> Path:
    """An empty files folder, and a HOME without ~/.keras, so nothing real is found."""
    folder = tmp_path / "soccernet"
    monkeypatch.setenv(ENV_DIR, str(folder))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return folder


# ---------------------------------------------------------------------------------------------
# Architecture
# ---------------------------------------------------------------------------------------------
def _expected_counts() -> tuple[int, int, int]:
    """Keras ResNet152 written out: (trainable params, BN moving stats, number of conv layers)."""
    def conv(k, cin, cout):
        return k * k * cin * cout + cout            # kernel + bias (every Keras conv has one)

    params = conv(7, 3, 64) + 2 * 64                # conv1 + its BN gamma/beta
    stats = 2 * 64
    n_conv, cin = 1, 64
    for _, width, blocks, _ in STAGES:
        for b in range(blocks):
            layers = [(1, cin, width), (3, width, width), (1, width, 4 * width)]
            if b == 0:
                layers.append((1, cin, 4 * width))  # the projection shortcut
            for k, i, o in layers:
                params += conv(k, i, o) + 2 * o
                stats += 2 * o
                n_conv += 1
            cin = 4 * width
    return params, stats, n_conv


def test_resnet152_matches_the_keras_layer_list_and_parameter_count():
    model = KerasResNet152()
    params, stats, n_conv = _expected_counts()
    assert sum(p.numel() for p in model.parameters()) == params
    assert sum(b.numel() for n, b in model.named_buffers() if "running" in n) == stats
    layers = model.keras_layers()
    assert n_conv == 155 and len(layers) == 2 * n_conv   # 3 * (3 + 8 + 36 + 3) + 4 shortcuts + conv1
    assert {"conv1_conv", "conv1_bn", "conv4_block36_3_bn", "conv5_block1_0_conv"} <= set(layers)
    assert "conv2_block2_0_conv" not in layers          # identity shortcut after the first block
    assert all(m.eps == KERAS_BN_EPS for n, m in layers.items() if n.endswith("_bn"))
    assert all(m.bias is not None for n, m in layers.items() if n.endswith("_conv"))


def test_stride_sits_on_the_first_1x1_conv_of_each_downsampling_block():
    layers = KerasResNet152().keras_layers()
    for stage, _, blocks, stride in STAGES:
        assert layers[f"{stage}_block1_1_conv"].stride == (stride, stride)   # v1: on the 1x1
        assert layers[f"{stage}_block1_0_conv"].stride == (stride, stride)
        assert layers[f"{stage}_block1_2_conv"].stride == (1, 1)             # not on the 3x3 (v1.5)
        assert layers[f"{stage}_block1_2_conv"].padding == (1, 1)
        assert all(layers[f"{stage}_block{b}_{j}_conv"].stride == (1, 1)
                   for b in range(2, blocks + 1) for j in (1, 2, 3))

    # Functional: the first block of a stride-2 stage equals its formula with the 1x1 conv applied
    # to every other pixel (what a strided 1x1 conv is), then a 3x3 at full resolution.
    torch.manual_seed(0)
    model = KerasResNet152(stages=TINY).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    block = model.blocks[2]                                   # conv3_block1, stride 2
    x = torch.randn(1, 16, 8, 8)
    sub = x[:, :, ::2, ::2]                                   # (1, 16, 4, 4)
    def bn(m, t):
        return (t - m.running_mean[:, None, None]) / torch.sqrt(m.running_var[:, None, None] + KERAS_BN_EPS) \
            * m.weight[:, None, None] + m.bias[:, None, None]
    def c1(conv, t):
        return torch.einsum("oi,bihw->bohw", conv.weight[:, :, 0, 0], t) + conv.bias[:, None, None]
    y = torch.relu(bn(block.bn1, c1(block.conv1, sub)))
    y = torch.relu(bn(block.bn2, torch.nn.functional.conv2d(y, block.conv2.weight, block.conv2.bias, padding=1)))
    y = bn(block.bn3, c1(block.conv3, y))
    expected = torch.relu(y + bn(block.bn0, c1(block.conv0, sub)))
    with torch.no_grad():
        torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-5)
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 32)   # 64 -> 32 -> 16 -> 16 -> 8, pooled


# ---------------------------------------------------------------------------------------------
# Pre-processing and frame sampling
# ---------------------------------------------------------------------------------------------
def test_preprocess_on_a_hand_made_pixel():
    frames = np.zeros((1, 2, 2, 3), np.uint8)
    frames[0, 0, 1] = (200, 100, 50)  # R, G, B
    sn = preprocess(frames)           # SoccerNet: R, G, B order minus (103.939, 116.779, 123.68)
    ke = preprocess(frames, channel_order="keras")  # Keras caffe: B, G, R minus the same
    assert sn.shape == (1, 3, 2, 2) and sn.dtype == torch.float32
    torch.testing.assert_close(sn[0, :, 0, 1], torch.tensor([200 - 103.939, 100 - 116.779, 50 - 123.68]))
    torch.testing.assert_close(ke[0, :, 0, 1], torch.tensor([50 - 103.939, 100 - 116.779, 200 - 123.68]))
    torch.testing.assert_close(sn[0, :, 0, 0], -torch.tensor(CAFFE_MEAN))
    with pytest.raises(ValueError, match="channel_order"):
        preprocess(frames, channel_order="bgr")


def test_soccernet_crop_resizes_to_224_high_then_cuts_the_sides_equally():
    import cv2

    rng = np.random.default_rng(0)
    lq = rng.integers(0, 256, (224, 398, 3), dtype=np.uint8)   # SoccerNet 224p: no resize, cut 87 each side
    np.testing.assert_array_equal(soccernet_crop(lq), lq[:, 87:311])
    hd = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)  # 1280 * 224 / 720 = 398.2 -> 398 wide
    expected = cv2.resize(hd, (398, 224), interpolation=cv2.INTER_AREA)[:, 87:311]
    np.testing.assert_array_equal(soccernet_crop(hd), expected)
    assert soccernet_crop(rng.integers(0, 256, (400, 300, 3), dtype=np.uint8)).shape == (224, 224, 3)


def test_official_frame_indices_follow_framecv():
    # FrameCV keeps the n-th frame read (n = index + 1) when n % (25 / 2) < 1: n = 13, 25, 38, 50.
    np.testing.assert_array_equal(official_frame_indices(51, 25.0), [12, 24, 37, 49])
    np.testing.assert_array_equal(official_frame_indices(61, 30.0), [14, 29, 44, 59])


# ---------------------------------------------------------------------------------------------
# Converter
# ---------------------------------------------------------------------------------------------
def _keras_arrays(model: KerasResNet152, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, m in model.keras_layers().items():
        if name.endswith("_conv"):
            o, i, kh, kw = m.weight.shape
            out[name] = {"kernel": rng.normal(size=(kh, kw, i, o)).astype(np.float32),
                         "bias": rng.normal(size=o).astype(np.float32)}
        else:
            c = m.num_features
            out[name] = {k: rng.uniform(0.5, 1.5, c).astype(np.float32)
                         for k in ("gamma", "beta", "moving_mean", "moving_variance")}
    return out


def _write_legacy(path: Path, arrays, *, nested: bool) -> None:
    """The layout keras.applications downloads (Keras 2: 'conv1_conv/kernel:0'), optionally in model_weights."""
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if nested else f
        root.attrs["layer_names"] = np.array([b"input_1", *(n.encode() for n in arrays)])
        root.create_group("input_1").attrs["weight_names"] = np.array([], dtype="S1")
        for name, vars_ in arrays.items():
            g = root.create_group(name)
            g.attrs["weight_names"] = np.array([f"{name}/{k}:0".encode() for k in vars_])
            for k, v in vars_.items():
                g.create_dataset(f"{name}/{k}:0", data=v)


def _write_keras3(path: Path, arrays) -> None:
    """Keras 3 `.weights.h5`: layers/<key>/vars/<i>, layer name in the attrs, creation order."""
    with h5py.File(path, "w") as f:
        for j, (name, vars_) in enumerate(arrays.items()):
            v = f.create_group(f"layers/layer_{j}/vars")
            v.attrs["name"] = name
            for i, arr in enumerate(vars_.values()):
                v.create_dataset(str(i), data=arr)


def test_converter_maps_keras_layers_and_kernel_layout(tmp_path):
    model = KerasResNet152(stages=TINY)
    arrays = _keras_arrays(model)
    _write_legacy(tmp_path / "legacy.h5", arrays, nested=False)
    _write_legacy(tmp_path / "full.h5", arrays, nested=True)
    _write_keras3(tmp_path / "k3.weights.h5", arrays)
    sds = [keras_to_state_dict(read_keras_h5(tmp_path / n), model) for n in ("legacy.h5", "full.h5", "k3.weights.h5")]
    for sd in sds[1:]:
        assert sd.keys() == sds[0].keys() and all(torch.equal(sd[k], sds[0][k]) for k in sd)
    model.load_state_dict(sds[0])
    k = arrays["conv3_block1_2_conv"]["kernel"]                      # (kh, kw, in, out)
    w = model.blocks[2].conv2.weight                                 # (out, in, kh, kw)
    assert w[5, 3, 0, 2].item() == pytest.approx(float(k[0, 2, 3, 5]))
    assert model.bn1.running_var[2].item() == pytest.approx(float(arrays["conv1_bn"]["moving_variance"][2]))

    del arrays["conv3_block2_1_bn"]
    _write_legacy(tmp_path / "short.h5", arrays, nested=False)
    with pytest.raises(SpottingError, match="1 ResNet152 layers missing .first: conv3_block2_1_bn"):
        keras_to_state_dict(read_keras_h5(tmp_path / "short.h5"), model, source="short.h5")
    with pytest.raises(SpottingError, match="shape"):
        keras_to_state_dict(_keras_arrays(KerasResNet152(stages=(("conv2", 8, 2, 1), ("conv3", 8, 2, 2)))), model)
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(SpottingError, match="junk.h5: not a readable HDF5"):
        read_keras_h5(tmp_path / "junk.h5")


# ---------------------------------------------------------------------------------------------
# Official PCA
# ---------------------------------------------------------------------------------------------
def _official_pickles(folder: Path, *, dim: int = 256, n_components: int = 64, whiten: bool = False,
                      seed: int = 0):
    """Fit and pickle as Features/ReduceFeaturesPCA.py: average first, PCA on the centred data.
    (Official sizes are 2048 -> 512; the code is size-agnostic, so tests stay small.)"""
    rng = np.random.default_rng(seed)
    data = (rng.normal(size=(300, 32)) @ rng.normal(size=(32, dim)) + rng.normal(0, 0.3, (300, dim))
            + rng.uniform(0, 3, dim)).astype(np.float32)
    average = np.mean(data, axis=0)
    pca = PCA(n_components=n_components, svd_solver="full", whiten=whiten).fit(data - average)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / PCA_PKL, "wb") as f:
        pickle.dump(pca, f)
    with open(folder / AVERAGE_PKL, "wb") as f:
        pickle.dump(average, f)
    test = (rng.normal(size=(40, 32)) @ rng.normal(size=(32, dim)) + rng.uniform(0, 3, dim)).astype(np.float32)
    return pca, average, test


@pytest.mark.parametrize("whiten", [False, True])
def test_pca_npz_matches_sklearn_transform(tmp_path, whiten):
    pca, average, x = _official_pickles(tmp_path, whiten=whiten)
    npz = convert_official_pca(tmp_path / PCA_PKL, tmp_path / AVERAGE_PKL, tmp_path / PCA_NPZ)
    z = read_pca_npz(npz)
    assert z["components"].shape == (64, 256) and bool(z["whiten"]) is whiten
    ref = pca.transform(x - average)
    ours = apply_pca(x, npz)
    assert ours.shape == (40, 64) and ours.dtype == np.float32
    assert np.abs(ours - ref).max() / np.abs(ref).max() < 1e-5
    # the same PCA as the torch head of the registry network
    head = SoccerNetNetwork(resnet=KerasResNet152(stages=TINY), pca=z)
    torch_out = (torch.from_numpy(x) - head.offset) @ head.projection
    assert np.abs(torch_out.numpy() - ref).max() / np.abs(ref).max() < 1e-5


def test_pca_pickles_load_without_sklearn(tmp_path):
    pca, average, x = _official_pickles(tmp_path, n_components=16)
    np.save(tmp_path / "x.npy", x)
    code = (
        "import sys; sys.modules['sklearn'] = None\n"   # any import of sklearn now fails
        "import numpy as np\n"
        "from spotting_core.features.soccernet import load_official_pca, apply_pca\n"
        f"p = load_official_pca({str(tmp_path / PCA_PKL)!r}, {str(tmp_path / AVERAGE_PKL)!r})\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, apply_pca(np.load({str(tmp_path / 'x.npy')!r}), p))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)
    assert (tmp_path / PCA_NPZ).is_file()                 # converted once, next to the pickles
    ref = pca.transform(x - average)
    assert np.abs(np.load(tmp_path / "y.npy") - ref).max() / np.abs(ref).max() < 1e-5


def test_pca_unpickler_refuses_anything_but_arrays_and_pca(tmp_path):
    bad = tmp_path / PCA_PKL
    bad.write_bytes(pickle.dumps(os.getcwd))  # a callable: a pickle that could run code
    (tmp_path / AVERAGE_PKL).write_bytes(pickle.dumps(np.zeros(4, np.float32)))
    with pytest.raises(SpottingError, match="not the official SoccerNet pickle"):
        convert_official_pca(bad, tmp_path / AVERAGE_PKL, tmp_path / PCA_NPZ)


# ---------------------------------------------------------------------------------------------
# Missing files and the end-to-end CLI
# ---------------------------------------------------------------------------------------------
def test_missing_files_raise_one_error_naming_what_goes_where(sn_dir):
    with pytest.raises(SpottingError) as e:
        build_network("cpu")
    msg = str(e.value)
    assert "\n" not in msg and str(sn_dir) in msg and ENV_DIR in msg
    for name in (KERAS_H5_FILES[0], PCA_PKL, AVERAGE_PKL):
        assert name in msg
    with pytest.raises(SpottingError, match=PCA_PKL):
        load_official_pca()
    _official_pickles(sn_dir)  # PCA present: only the weights are missing now
    with pytest.raises(SpottingError) as e:
        build_network("cpu")
    assert KERAS_H5_FILES[0] in str(e.value) and PCA_PKL not in str(e.value)
    keras_cache = Path(os.environ["HOME"]) / ".keras" / "models" / KERAS_H5_FILES[1]  # where Keras keeps it
    keras_cache.parent.mkdir(parents=True)
    keras_cache.write_bytes(b"")
    assert find_keras_h5() == keras_cache
    check_files(pca=True)  # nothing missing now


def _tiny_video(path: Path, seconds: float = 1.0) -> Path:
    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
           f"testsrc=size=320x180:rate=25:duration={seconds}", "-pix_fmt", "yuv420p", "-y", str(path)]
    subprocess.run(cmd, check=True, timeout=60)
    return path


def _checkpoint(path: Path) -> Path:
    from spotting_core.io.soccernet import CLASSES_V2
    from spotting_core.models import MODELS, build_model, save_checkpoint

    name = next(n for n in ("maxpool", "netvlad++") if n in MODELS)
    model = build_model(name, input_dim=512)
    return save_checkpoint(path, model, classes=CLASSES_V2, feature_name="ResNET_TF2_PCA512")


def _cli(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spotting_core", *args], cwd=ROOT, env=dict(os.environ),
                          capture_output=True, text=True, timeout=600)


def _registered() -> None:
    from spotting_core.features import backbones

    for key in ("resnet152-soccernet", "ResNET_TF2_PCA512", "ResNET_TF2"):
        assert key in backbones.BACKBONES, f"{key} is not registered in spotting_core.features.backbones.BACKBONES"


@pytest.mark.parametrize("command", ["spot", "spot-backbone", "spot-alias", "features"])
def test_cli_fails_with_one_clear_line_without_the_files(sn_dir, tmp_path, command):
    _registered()
    video = _tiny_video(tmp_path / "match.mp4")
    ckpt = _checkpoint(tmp_path / "sn.ckpt")
    args = {  # the checkpoint's features pick the backbone / named explicitly / the features command
        "spot": ["spot", str(video), "--checkpoint", str(ckpt), "--out", str(tmp_path / "out")],
        "spot-backbone": ["spot", str(video), "--checkpoint", str(ckpt), "--backbone", "ResNET_TF2_PCA512"],
        "spot-alias": ["spot", str(video), "--checkpoint", str(ckpt), "--backbone", "resnet152-soccernet"],
        "features": ["features", str(video), "--backbone", "resnet152-soccernet"],
    }[command]
    r = _cli(args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert str(sn_dir) in lines[0] and KERAS_H5_FILES[0] in lines[0] and PCA_PKL in lines[0]


def test_spot_runs_end_to_end_on_a_video_when_the_files_are_there(sn_dir, tmp_path):
    """Plumbing with stand-in files (random ResNet weights in the converter's cache file, a random
    orthonormal projection in the PCA's .npz): the real files go the same way; their numbers are
    checked in the bench. The checkpoint says ResNET_TF2_PCA512, which resnet152-soccernet computes."""
    _registered()
    torch.manual_seed(0)
    sn_dir.mkdir(parents=True)
    torch.save({"state_dict": KerasResNet152().state_dict()}, sn_dir / WEIGHTS_PT)  # as convert_keras_h5 caches
    np.savez(sn_dir / PCA_NPZ, **random_pca())                                       # as convert_official_pca
    from spotting_core.io.video import probe

    video = _tiny_video(tmp_path / "match.mp4", seconds=1.0)
    ckpt = _checkpoint(tmp_path / "sn.ckpt")
    out = tmp_path / "out"
    r = _cli(["spot", str(video), "--checkpoint", str(ckpt), "--backbone", "resnet152-soccernet",
              "--out", str(out), "--device", "cpu"])
    assert r.returncode == 0, r.stderr
    assert (out / "results_spotting.json").is_file()
    feats = np.load(tmp_path / "match" / "1_ResNET_TF2_PCA512.npy")  # SoccerNet's name, beside the video
    assert feats.shape == (probe(video).num_samples(2.0), 512) and np.isfinite(feats).all()
