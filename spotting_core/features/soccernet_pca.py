"""The official SoccerNet PCA (2048 -> 512), read from its pickles with numpy alone, no scikit-learn.

    convert_official_pca(pca_pkl, average_pkl, out_npz)    once: the two pickles -> one .npz
    pca = read_pca_npz(npz);  f512 = apply_pca(f2048, pca)  `pca.transform(features - average)`
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from spotting_core.errors import SpottingError


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


def random_pca(*, dim_in: int = 2048, dim_out: int = 512, seed: int = 0) -> dict[str, np.ndarray]:
    """An orthonormal random projection in the .npz layout, for `random_init` tests only."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim_in, dim_out)))
    return {"average": np.zeros(dim_in, np.float32), "mean": np.zeros(dim_in), "components": q.T,
            "explained_variance": np.ones(dim_out), "whiten": np.asarray(False)}
