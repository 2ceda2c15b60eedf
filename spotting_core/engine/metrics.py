"""Average-mAP for action spotting, with exactly the semantics of the official SoccerNet evaluator.

The reference is `SoccerNet.Evaluation.ActionSpotting` (`evaluate`, `average_mAP`; pip package
SoccerNet 0.2.0). This is our own, vectorised implementation of the same definition:

1. Labels and predictions live on a frame grid at `fps` (2): one value per (half, frame, class).
   A later annotation (or prediction) on the same cell overwrites an earlier one. The official
   files are turned into a 120-minute vector per half, so frames past it are clamped to its last row.
2. "Closest": every frame takes the visibility (+1 visible, -1 unshown) of the nearest event of its
   class, split at `(e_i + e_j) // 2`; a class with no event in a half is -1 everywhere. A
   prediction is "visible" when its closest event is visible, "unshown" otherwise.
3. Matching, per tolerance δ (in frames: seconds × fps): events of a class are taken in frame order;
   each takes the highest-scoring prediction not yet taken with |Δ| ≤ δ/2 (ties: earliest frame).
4. 200 confidence thresholds `linspace(0, 1, 200)`: precision TP/N and recall TP/#events (0 when
   undefined), for all events, visible ones (visible predictions against visible events) and
   unshown ones.
5. 11-point AP per class (max precision at recall ≥ 0, 0.1, ..., 1), mAP = mean over all classes
   (a class with no events counts 0), then the trapezoid rule over the tolerances:
   loose 5, 10, ..., 60 s; tight 1, ..., 5 s. The official multiplies the unshown Average-mAP (not
   its per-class values) by 17/13, as 4 of the 17 classes never occur unshown; we do the same. With
   a single tolerance the official skips the trapezoid and that factor; so do we.

The cells, the closest visibility and the matching are in `engine/cells.py`. Scoring several
metrics at once (loose and tight) builds the cells and the matcher once and matches each
tolerance once. Whole trees and tables are scored by `engine/evaluate.py`. This module needs numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from spotting_core.engine.cells import Cells, Matcher, cells_from_dense, cells_from_tables, closest_visibility
from spotting_core.errors import SpottingError
from spotting_core.io.soccernet import FPS

THRESHOLDS = np.linspace(0, 1, 200)  # the official confidence thresholds
RECALL_POINTS = np.arange(11) / 10  # 11-point interpolation, exactly as the official computes them
TOLERANCES_S: dict[str, np.ndarray] = {
    "loose": np.arange(12) * 5 + 5,  # 5, 10, ..., 60 s
    "tight": np.arange(5) * 1 + 1,  # 1, ..., 5 s
    **{f"at{s}": np.array([s]) for s in range(1, 6)},
}
OFFICIAL_HALF_MINUTES = 120  # the official label/prediction vectors hold 120 min per half
RESULT_KEYS = ("a_mAP", "a_mAP_per_class", "a_mAP_visible", "a_mAP_per_class_visible",
               "a_mAP_unshown", "a_mAP_per_class_unshown")

Progress = Callable[[float, str], None]


def official_num_frames(fps: float = FPS) -> int:
    """Rows of the official per-half vector: 120 minutes at `fps`."""
    return int(OFFICIAL_HALF_MINUTES * 60 * fps)


def tolerances(metric: str = "loose", deltas: Sequence[float] | None = None) -> np.ndarray:
    """The tolerances in seconds: `deltas` when given, else the official set for `metric`."""
    if deltas is not None:
        out = np.asarray(deltas)
        if out.ndim != 1 or out.size == 0 or np.any(out <= 0):
            raise SpottingError(f"deltas: expected a non-empty list of positive seconds, got {deltas!r}")
        return out
    if metric not in TOLERANCES_S:
        raise SpottingError(f"metric {metric!r}: expected one of {', '.join(TOLERANCES_S)}")
    return TOLERANCES_S[metric]


# ---------------------------------------------------------------------------------------------
# The metric on sparse cells (engine/cells.py)
# ---------------------------------------------------------------------------------------------
def _ap_per_class(tp: np.ndarray, n_pred: np.ndarray, n_gt: np.ndarray) -> np.ndarray:
    """11-point AP from counts at the 200 thresholds: tp (D, C, 200), n_pred (C, 200), n_gt (C,)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.nan_to_num(tp / n_pred[None])
        recall = np.nan_to_num(tp / n_gt[None, :, None])
    ap = np.zeros(tp.shape[:2])
    for j in RECALL_POINTS:  # summed in the official order
        ap += np.where(recall >= j, precision, 0.0).max(axis=-1)
    return ap / 11


def _counts_above(code: np.ndarray, level: np.ndarray, C: int) -> dict[str, np.ndarray]:
    """Per subset, class and threshold j: how many predictions have a score above THRESHOLDS[j].

    code: (N,) subset * C + class, subset 0 visible, 1 unshown, 2 neither; level: 0..200.
    Returns {"": (C, 200), "_visible": ..., "_unshown": ...} float64.
    """
    hist = np.bincount(code * 201 + level, minlength=3 * C * 201).reshape(3, C, 201)
    above = np.cumsum(hist[..., ::-1], axis=-1)[..., ::-1][..., 1:].astype(np.float64)  # (3, C, 200)
    return {"": above.sum(axis=0), "_visible": above[0], "_unshown": above[1]}


def _integrate(ap: np.ndarray, suffix: str) -> tuple[float, list[float]]:
    """(D, C) AP per tolerance -> the Average-mAP and its per-class values, as the official."""
    D, m = ap.shape[0], [np.mean(ap[d]) for d in range(ap.shape[0])]
    if D == 1:
        return float(m[0]), [float(x) for x in ap[0]]
    integral, integral_c = 0.0, np.zeros(ap.shape[1])
    for i in range(D - 1):
        integral += (m[i] + m[i + 1]) / 2
        integral_c += (ap[i] + ap[i + 1]) / 2
    value = integral / (D - 1)
    if suffix == "_unshown":
        value = value * 17 / 13  # the official's fixed factor (4 of 17 classes never unshown)
    return float(value), [float(x) for x in integral_c / (D - 1)]


def _average_map_cells(sp: Cells, *, fps: float, deltas_s: Mapping[str, np.ndarray]) -> dict[str, dict]:
    """{metric: the six official keys} for every metric's tolerances; shared work done once."""
    C = sp.num_classes
    cls_gt = (sp.gt_key // sp.stride) % C
    closest = closest_visibility(sp)
    code = np.where(closest > 0.5, 0, np.where(closest < -0.5, 1, 2)) * C + (sp.pr_key // sp.stride) % C
    level = np.searchsorted(THRESHOLDS, sp.pr_score, side="right")  # thresholds ≤ score: 0..200
    n_gt = {"": np.bincount(cls_gt, minlength=C).astype(np.int64),
            "_visible": np.bincount(cls_gt[sp.gt_value > 0], minlength=C).astype(np.int64),
            "_unshown": np.bincount(cls_gt[sp.gt_value < 0], minlength=C).astype(np.int64)}
    n_pred = _counts_above(code, level, C)  # (C, 200) per subset
    windows = {m: [math.floor(float(d * fps) / 2) for d in ds] for m, ds in deltas_s.items()}  # |Δ| ≤ δ/2
    match = Matcher(sp, max(max(w) for w in windows.values()))
    tp = {}
    for w in sorted({w for ws in windows.values() for w in ws}):  # a window shared by two metrics: once
        hit = match(w)
        tp[w] = _counts_above(code[hit], level[hit], C)
    out = {}
    for metric, ws in windows.items():
        result = {}
        for s in ("", "_visible", "_unshown"):
            ap = _ap_per_class(np.stack([tp[w][s] for w in ws]), n_pred[s], n_gt[s])  # (D, C)
            result["a_mAP" + s], result["a_mAP_per_class" + s] = _integrate(ap, s)
        out[metric] = {k: result[k] for k in RESULT_KEYS}
    return out


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------
def average_map(targets: Sequence[np.ndarray], detections: Sequence[np.ndarray], *, fps: float = FPS,
                metric: str = "loose", deltas: Sequence[float] | None = None) -> dict:
    """Average-mAP of per-half arrays, as the official `average_mAP` on the same arrays.

    targets: per-half (T, C) arrays, 1 for a visible event, -1 for an unshown one, 0 elsewhere
        (`io.tables.events_per_frame`). detections: per-half (T, C) confidences, -1 (any negative)
        where there is no prediction (the official `predictions2vector` convention). `deltas`
        (seconds) overrides the `metric`'s tolerances. Returns the six official keys.
    """
    deltas_s = {metric: tolerances(metric, deltas)}
    return _average_map_cells(cells_from_dense(targets, detections), fps=fps, deltas_s=deltas_s)[metric]


def average_map_tables(games: Sequence[tuple[Mapping, Mapping]], *, num_frames: Sequence[int], num_classes: int,
                       fps: float = FPS, metrics: Sequence[str] = ("loose",),
                       deltas: Sequence[float] | None = None) -> dict[str, dict]:
    """Average-mAP of (labels, predictions) column tables per game, for each metric in `metrics`.

    Tables are dicts of columns (`io.soccernet.label_arrays` / `result_arrays`) or DataFrames with
    half, position_ms, class_id and visibility (labels) or confidence (predictions). The cells are
    built once and shared by every metric. Returns {metric: the six official keys}.
    """
    deltas_s = {m: tolerances(m, deltas) for m in metrics}  # a bad metric fails before any work
    cells = cells_from_tables(games, num_frames=num_frames, num_classes=num_classes, fps=fps)
    return _average_map_cells(cells, fps=fps, deltas_s=deltas_s)
