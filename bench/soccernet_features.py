"""Proof that `spotting_core.features.soccernet` is the network and pipeline of the official SoccerNet
ResNET_TF2 / ResNET_TF2_PCA512 features, without downloading anything.

    make bench-soccernet-features
    # = python3 -m venv .venv-tf && .venv-tf/bin/pip install tensorflow-cpu h5py opencv-python-headless imutils
    #   .venv/bin/python bench/soccernet_features.py --tf-python .venv-tf/bin/python --require-tf

TensorFlow lives only in the bench environment `.venv-tf` (not in requirements.txt). This script runs
in the main venv and calls itself in `.venv-tf` for the reference side (`--tf-side`):

1. Frames: 4 real broadcast frames from ../shared/data/video/mvfoul (398x224), decoded by OpenCV as
   BGR like SoccerNet's FrameCV, and the same 4 upscaled to 1280x720 so the resize runs too
   (generated 1280x720 frames when the shared data is absent). 8 frames: the CPU is shared.
2. TF side: `keras.applications.ResNet152(weights=None, include_top=False, pooling="avg")`, every
   weight drawn from a seeded RNG (conv kernels and biases, BN gamma/beta AND moving mean/variance,
   so the inference-mode BN arithmetic matters). Saved as the legacy .h5 that Keras downloads and as
   a Keras 3 `.weights.h5`. Frames go through the official steps: imutils.resize(height=224), cut
   int((w - 224) / 2) columns per side, `keras.applications.resnet.preprocess_input`, predict.
   Once on the BGR frames (what SoccerNet did) and once on RGB frames (textbook Keras).
3. Torch side: `convert_keras_h5` on both files (they must give identical state_dicts), then
   `SoccerNetExtractor` on the RGB frames, our decoder's convention, with channel_order "soccernet"
   and "keras". Pass: max |torch - tf| / max |tf| <= 1e-4 per frame.
4. PCA: sklearn PCA(512, svd_solver="full") fitted on random correlated 2048-d data minus its average,
   both pickled as ReduceFeaturesPCA.py does, converted by `convert_official_pca` (no sklearn used),
   then `apply_pca` against `pca.transform(x - average)` on held-out rows and on the TF features.
   Pass: max |ours - sklearn| / max |sklearn| <= 1e-5.

Exit code 1 when a check fails. Without `.venv-tf` it prints how to make it and exits 0 (skipped),
unless `--require-tf`.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MVFOUL = ROOT.parent / "shared" / "data" / "video" / "mvfoul"
FEATURE_TOL = 1e-4
PCA_TOL = 1e-5


# ---------------------------------------------------------------------------------------------
# Reference side: runs inside .venv-tf (TensorFlow, h5py, OpenCV, imutils; no torch)
# ---------------------------------------------------------------------------------------------
def randomize_keras(model, seed: int) -> None:
    """Seeded weights for every layer, scaled so 50 residual blocks keep activations O(1)."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if isinstance(layer, keras.layers.Conv2D):
            kernel, bias = weights
            fan_in = float(np.prod(kernel.shape[:3]))
            gain = 1.0 if layer.name.endswith(("_0_conv", "_3_conv")) else 2.0  # no ReLU right after
            std = np.sqrt(gain / fan_in) / (64.0 if layer.name == "conv1_conv" else 1.0)  # pixels ~ +-100
            new = [rng.normal(0.0, std, kernel.shape), rng.normal(0.0, 0.05, bias.shape)]
        elif isinstance(layer, keras.layers.BatchNormalization):
            c = weights[0].shape
            low, high = (0.1, 0.3) if layer.name.endswith("_3_bn") else (0.5, 1.5)  # residual branch gain
            new = [rng.uniform(low, high, c), rng.normal(0.0, 0.1, c),               # gamma, beta
                   rng.normal(0.0, 0.2, c), rng.uniform(0.5, 2.0, c)]                # moving mean, var
        else:
            raise RuntimeError(f"unexpected layer with weights: {layer.name}")
        layer.set_weights([w.astype(np.float32) for w in new])


def official_crop(frame_bgr: np.ndarray) -> np.ndarray:
    """SoccerNet.DataLoader.FrameCV, transform="crop": 224 high, equal cut on both sides."""
    import imutils

    frame = imutils.resize(frame_bgr, height=224)
    side = int((frame.shape[1] - 224) / 2)
    return frame[:, side:-side, :]


def tf_side(work: Path, seed: int) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import h5py
    import keras
    import tensorflow as tf
    from keras.applications.resnet import preprocess_input
    from keras.src.legacy.saving import legacy_h5_format

    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(seed)
    model = keras.applications.ResNet152(weights=None, include_top=False, pooling="avg",
                                         input_shape=(224, 224, 3))
    randomize_keras(model, seed)
    with h5py.File(work / "keras_legacy.h5", "w") as f:  # the layout keras.applications downloads
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    model.save_weights(work / "keras3.weights.h5")

    with np.load(work / "frames.npz") as z:
        frames = [z[k] for k in sorted(z.files)]
    crops = np.stack([official_crop(f) for f in frames])  # (N, 224, 224, 3) BGR, as SoccerNet's
    out = {}
    t0 = time.perf_counter()
    for name, batch in (("soccernet", crops), ("keras", crops[..., ::-1])):  # BGR (official) / RGB
        x = preprocess_input(batch.astype(np.float32))
        out[name] = model.predict(x, batch_size=len(x), verbose=0)
    seconds = time.perf_counter() - t0
    np.savez(work / "tf_features.npz", **out)
    (work / "tf_meta.json").write_text(json.dumps({
        "tf": tf.__version__, "keras": keras.__version__, "params": int(model.count_params()),
        "seconds_per_frame": seconds / (2 * len(crops)),
    }))


# ---------------------------------------------------------------------------------------------
# Our side: the main venv
# ---------------------------------------------------------------------------------------------
def load_frames(n: int, seed: int) -> tuple[list[np.ndarray], str]:
    """n BGR frames: half real (native size) and the same upscaled to 1280x720; or generated."""
    import cv2

    clips = sorted(MVFOUL.glob("action_*/clip_*.mp4"))
    frames = []
    for clip in clips[: n // 2]:
        cap = cv2.VideoCapture(str(clip))
        cap.set(cv2.CAP_PROP_POS_FRAMES, 62)  # 2.5 s in, at 25 fps
        ok, frame = cap.read()
        cap.release()
        if ok:
            frames.append(frame)
    if len(frames) == n // 2 and frames:
        hd = [cv2.resize(f, (1280, 720), interpolation=cv2.INTER_CUBIC) for f in frames]
        return frames + hd, f"{len(frames)} mvfoul frames {frames[0].shape[1]}x{frames[0].shape[0]} + the same at 1280x720"
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:720, 0:1280] / 100.0
    gen = []
    for _ in range(n):
        phase = rng.uniform(0, 6.3, 3)
        img = np.stack([np.sin(xx * (c + 1) + yy + phase[c]) for c in range(3)], -1) * 100 + 128
        gen.append(np.clip(img + rng.normal(0, 10, img.shape), 0, 255).astype(np.uint8))
    return gen, f"{n} generated 1280x720 frames (no shared data)"


def relative_errors(ours: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(max over rows of max|a-b| / max|b|, max elementwise |a-b|/|b| over entries >= 1% of the row max)."""
    diff = np.abs(ours.astype(np.float64) - ref.astype(np.float64))
    scale = np.abs(ref).max(axis=1, keepdims=True)
    row = float((diff.max(axis=1, keepdims=True) / scale).max())
    big = np.abs(ref) >= 0.01 * scale
    elem = float((diff[big] / np.abs(ref[big])).max())
    return row, elem


def pca_check(work: Path, feats: np.ndarray, seed: int) -> tuple[float, float, int, Path, object, np.ndarray]:
    from sklearn.decomposition import PCA

    from spotting_core.features.soccernet_pca import apply_pca, convert_official_pca

    rng = np.random.default_rng(seed + 1)
    basis = rng.normal(size=(256, 2048))
    data = (rng.normal(size=(3000, 256)) * np.linspace(3, 0.1, 256)) @ basis  # correlated 2048-d
    data = (data + rng.normal(0, 0.5, data.shape) + rng.uniform(0, 2, 2048)).astype(np.float32)
    train, held = data[:2744], data[2744:]
    average = np.mean(train, axis=0)              # ReduceFeaturesPCA.py: average, then PCA on the rest
    pca = PCA(n_components=512, svd_solver="full").fit(train - average)
    with open(work / "pca_512_TF2.pkl", "wb") as f:
        pickle.dump(pca, f)
    with open(work / "average_512_TF2.pkl", "wb") as f:
        pickle.dump(average, f)
    npz = convert_official_pca(work / "pca_512_TF2.pkl", work / "average_512_TF2.pkl", work / "pca.npz")
    x = np.concatenate([held, feats.astype(np.float32)])
    ref = pca.transform(x - average)
    ours = apply_pca(x, npz)
    diff = np.abs(ours.astype(np.float64) - ref)
    return float(diff.max() / np.abs(ref).max()), float(diff.max()), len(x), npz, pca, average


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tf-python", default=str(ROOT / ".venv-tf" / "bin" / "python"))
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--require-tf", action="store_true", help="fail (not skip) without the TF venv")
    p.add_argument("--tf-side", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.tf_side:
        tf_side(Path(args.tf_side), args.seed)
        return 0
    if not Path(args.tf_python).is_file():
        print(f"SKIPPED: no TensorFlow venv at {args.tf_python}; `make bench-soccernet-features` makes it")
        return 1 if args.require_tf else 0

    import cv2
    import torch

    from spotting_core.features.keras_resnet import KerasResNet152, convert_keras_h5, load_converted
    from spotting_core.features.soccernet import SoccerNetExtractor, SoccerNetNetwork, backbone_preprocess
    from spotting_core.features.soccernet_pca import read_pca_npz

    torch.manual_seed(args.seed)
    with tempfile.TemporaryDirectory(prefix="sn_features_") as tmp:
        work = Path(tmp)
        frames, source = load_frames(args.frames, args.seed)
        np.savez(work / "frames.npz", **{f"f{i:03d}": f for i, f in enumerate(frames)})
        t0 = time.perf_counter()
        subprocess.run([args.tf_python, str(Path(__file__).resolve()), "--tf-side", str(work),
                        "--seed", str(args.seed)], check=True)
        tf_wall = time.perf_counter() - t0
        meta = json.loads((work / "tf_meta.json").read_text())
        with np.load(work / "tf_features.npz") as z:
            ref = {k: z[k] for k in z.files}

        legacy = convert_keras_h5(work / "keras_legacy.h5", work / "legacy.pt")
        keras3 = convert_keras_h5(work / "keras3.weights.h5", work / "keras3.pt")
        sd_a = torch.load(legacy, weights_only=True)["state_dict"]
        sd_b = torch.load(keras3, weights_only=True)["state_dict"]
        same_files = sd_a.keys() == sd_b.keys() and all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)
        model = load_converted(KerasResNet152(), legacy)
        n_params = sum(t.numel() for k, t in sd_a.items() if not k.endswith("num_batches_tracked"))

        rgb = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames]  # what our decoder hands over
        ours, seconds = {}, 0.0
        for order in ("soccernet", "keras"):
            t0 = time.perf_counter()
            ours[order] = SoccerNetExtractor(model=model, pca=None, channel_order=order)(rgb)
            seconds += time.perf_counter() - t0
        pca_rel, pca_abs, pca_rows, npz, pca, average = pca_check(work, ref["soccernet"], args.seed)
        # The registry path `spot --backbone resnet152-soccernet` runs: native RGB frames ->
        # backbone_preprocess -> SoccerNetNetwork (ResNet + PCA in torch), vs TF + sklearn.
        net = SoccerNetNetwork(resnet=model, pca=read_pca_npz(npz)).eval()
        with torch.inference_mode():
            reg = np.concatenate([net(backbone_preprocess(torch.from_numpy(f)[None])).numpy() for f in rgb])
        reg_ref = pca.transform(ref["soccernet"] - average)
        reg_rel = float(np.abs(reg - reg_ref).max() / np.abs(reg_ref).max())

    print(f"frames: {source}; TF {meta['tf']} / Keras {meta['keras']} vs torch {torch.__version__}")
    print(f"parameters incl. BN moving stats: keras {meta['params']:,}  torch {n_params:,}")
    print(f"converter: legacy .h5 and Keras 3 .weights.h5 give identical state_dicts: {same_files}")
    ok = same_files and meta["params"] == n_params
    for order in ("soccernet", "keras"):
        row, elem = relative_errors(ours[order], ref[order])
        scale = float(np.abs(ref[order]).mean())
        print(f"2048-d [{order:9s}] max|torch-tf|/max|tf| = {row:.2e}   elementwise (>=1% of max) "
              f"= {elem:.2e}   mean|tf| = {scale:.3f}   tol {FEATURE_TOL:.0e}")
        ok &= row <= FEATURE_TOL
    order_gap = relative_errors(ref["keras"], ref["soccernet"])[0]
    print(f"sensitivity: TF features of BGR-order vs RGB-order input differ by {order_gap:.2e} (relative), "
          "so a wrong channel order would fail")
    print(f"PCA 2048->512 on {pca_rows} rows: max|ours-sklearn|/max|sklearn| = {pca_rel:.2e} "
          f"(abs {pca_abs:.2e})   tol {PCA_TOL:.0e}")
    ok &= pca_rel <= PCA_TOL
    print(f"registry network (frames -> ResNet -> PCA, torch float32) vs TF + sklearn: "
          f"max|diff|/max = {reg_rel:.2e}   tol {FEATURE_TOL:.0e}")
    ok &= reg_rel <= FEATURE_TOL
    print(f"time per frame (separate processes, indicative): torch {seconds / (2 * len(frames)) * 1e3:.0f} ms, "
          f"TF {meta['seconds_per_frame'] * 1e3:.0f} ms (TF subprocess wall incl. start {tf_wall:.0f} s)")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
