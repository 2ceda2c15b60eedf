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

The greedy matching is sequential only inside chains of events whose candidate windows overlap;
those chains are processed rank by rank, every class, half and game at once.

Whole trees and tables are scored by `engine/evaluate.py`. This module needs numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from spotting_core.errors import SpottingError
from spotting_core.io.soccernet import (
    FPS,
    HALVES,
    frame_of,
)

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
Table = Mapping[str, Sequence]  # columns by name: a dict of arrays or a DataFrame


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
# Sparse events: every (half, class) is a "group"; keys are group * stride + frame
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Sparse:
    """Events and predictions as flat arrays sorted by (group, frame), one entry per cell."""

    num_classes: int
    stride: int  # more than any frame index
    gt_key: np.ndarray  # (G,) int64 group * stride + frame
    gt_value: np.ndarray  # (G,) nonzero: 1 visible, -1 unshown
    pr_key: np.ndarray  # (P,) int64
    pr_score: np.ndarray  # (P,) float64 ≥ 0

    @property
    def gt_group(self) -> np.ndarray:
        return self.gt_key // self.stride

    @property
    def pr_group(self) -> np.ndarray:
        return self.pr_key // self.stride


def _last_per_key(key: np.ndarray, *values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Keep the last entry of each key (the official vectors overwrite), sorted by key."""
    if key.size == 0:
        return (key, *values)
    uniq, first_in_reversed = np.unique(key[::-1], return_index=True)
    keep = key.size - 1 - first_in_reversed
    return (uniq, *(v[keep] for v in values))


def _sparse_from_cells(*, num_classes: int, stride: int,
                       gt_key: np.ndarray, gt_value: np.ndarray,
                       pr_key: np.ndarray, pr_score: np.ndarray) -> _Sparse:
    gt_key, gt_value = _last_per_key(gt_key.astype(np.int64), gt_value.astype(np.float64))
    nonzero = gt_value != 0
    pr_key, pr_score = _last_per_key(pr_key.astype(np.int64), pr_score.astype(np.float64))
    scored = pr_score >= 0  # the official "no prediction" is -1; NaN is no prediction either
    return _Sparse(num_classes=num_classes, stride=stride, gt_key=gt_key[nonzero], gt_value=gt_value[nonzero],
                   pr_key=pr_key[scored], pr_score=pr_score[scored])


def _sparse_from_dense(targets: Sequence[np.ndarray], detections: Sequence[np.ndarray]) -> _Sparse:
    if len(targets) != len(detections):
        raise SpottingError(f"average_map: {len(targets)} target halves but {len(detections)} detection halves")
    if len(targets) == 0:
        raise SpottingError("average_map: no halves to evaluate")
    shapes = {np.shape(t) for t in targets} | {np.shape(d) for d in detections}
    num_classes = np.shape(targets[0])[-1] if np.ndim(targets[0]) == 2 else -1
    for i, (t, d) in enumerate(zip(targets, detections)):
        if np.ndim(t) != 2 or np.shape(t) != np.shape(d) or np.shape(t)[1] != num_classes:
            raise SpottingError(f"average_map: half {i} needs (T, C) targets and detections of one shape "
                                f"and one C for all halves; got {sorted(shapes)}")
    stride = max(np.shape(t)[0] for t in targets) + 1
    gk, gv, pk, ps = [], [], [], []
    for h, (t, d) in enumerate(zip(targets, detections)):
        t, d = np.asarray(t), np.asarray(d, dtype=np.float64)
        rows, cols = np.nonzero(t)
        gk.append((h * num_classes + cols) * stride + rows)  # np.nonzero is row-major: (frame, class)
        gv.append(t[rows, cols])
        rows, cols = np.nonzero(d >= 0)
        pk.append((h * num_classes + cols) * stride + rows)
        ps.append(d[rows, cols])
    order_g, order_p = np.argsort(np.concatenate(gk), kind="stable"), np.argsort(np.concatenate(pk), kind="stable")
    return _Sparse(num_classes=num_classes, stride=stride,
                   gt_key=np.concatenate(gk)[order_g], gt_value=np.concatenate(gv)[order_g].astype(np.float64),
                   pr_key=np.concatenate(pk)[order_p], pr_score=np.concatenate(ps)[order_p])


def _sparse_from_tables(games: Sequence[tuple[Table, Table]], *, num_frames: Sequence[int],
                        num_classes: int, fps: float) -> _Sparse:
    """(labels, predictions) per game -> cells, as the official label2vector/predictions2vector.

    Tables are DataFrames or dicts of columns (`soccernet.label_arrays` / `result_arrays`). Frames
    are recomputed from `position_ms` at `fps` and clamped to each half's `num_frames`.
    """
    stride = int(max(num_frames)) + 1
    limits = np.asarray(num_frames, dtype=np.int64)
    gk, gv, pk, ps = [], [], [], []

    def cells(table: Table, game: int) -> np.ndarray:
        half = np.asarray(table["half"], dtype=np.int64)
        if np.any((half < 1) | (half > len(HALVES))):
            raise SpottingError(f"game {game}: half must be 1 or 2, got {sorted(set(half.tolist()))}")
        frame = np.asarray(frame_of(np.asarray(table["position_ms"], dtype=np.int64), fps), dtype=np.int64)
        frame = np.minimum(frame, limits[half - 1] - 1)
        cid = np.asarray(table["class_id"], dtype=np.int64)
        if np.any((cid < 0) | (cid >= num_classes)):
            raise SpottingError(f"game {game}: class_id must lie in 0..{num_classes - 1}")
        group = (game * len(HALVES) + half - 1) * num_classes + cid
        return group * stride + frame

    for g, (labels, preds) in enumerate(games):
        if len(labels["half"]):
            gk.append(cells(labels, g))
            gv.append(np.where(np.asarray(labels["visibility"]) == "not shown", -1.0, 1.0))
        if len(preds["half"]):
            pk.append(cells(preds, g))
            ps.append(np.asarray(preds["confidence"], dtype=np.float64))
    empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0, np.float64)
    return _sparse_from_cells(
        num_classes=num_classes, stride=stride,
        gt_key=np.concatenate(gk) if gk else empty_i, gt_value=np.concatenate(gv) if gv else empty_f,
        pr_key=np.concatenate(pk) if pk else empty_i, pr_score=np.concatenate(ps) if ps else empty_f)


# ---------------------------------------------------------------------------------------------
# The metric on sparse cells
# ---------------------------------------------------------------------------------------------
def _closest(sp: _Sparse) -> np.ndarray:
    """Visibility (+1/-1) of each prediction's closest event of its class and half; -1 if none."""
    if sp.pr_key.size == 0:
        return np.zeros(0)
    if sp.gt_key.size == 0:
        return np.full(sp.pr_key.size, -1.0)
    group, frame = sp.gt_group, sp.gt_key % sp.stride
    first = np.r_[True, group[1:] != group[:-1]]
    # event i owns the frames from (e_{i-1} + e_i) // 2 on; the first of a group from frame 0
    start = np.where(first, 0, (np.r_[0, frame[:-1]] + frame) // 2)
    owner = np.searchsorted(group * sp.stride + start, sp.pr_key, side="right") - 1
    valid = (owner >= 0) & (group[np.maximum(owner, 0)] == sp.pr_group)
    return np.where(valid, sp.gt_value[np.maximum(owner, 0)], -1.0)


def _match(sp: _Sparse, half_window: int) -> np.ndarray:
    """Greedy official matching for one tolerance: which predictions are true positives."""
    taken = np.zeros(sp.pr_key.size, dtype=bool)
    if sp.gt_key.size == 0 or sp.pr_key.size == 0:
        return taken
    frame = sp.gt_key % sp.stride
    base = sp.gt_key - frame
    lo = np.searchsorted(sp.pr_key, base + np.maximum(frame - half_window, 0), side="left")
    hi = np.searchsorted(sp.pr_key, base + np.minimum(frame + half_window, sp.stride - 1), side="right")
    counts = hi - lo
    # Chains: consecutive events of one group whose candidate ranges overlap must go in order.
    n = lo.size
    chained = np.r_[False, (base[1:] == base[:-1]) & (lo[1:] < hi[:-1])]
    chain_start = np.maximum.accumulate(np.where(chained, 0, np.arange(n)))
    rank = np.arange(n) - chain_start
    # One row per (event, candidate prediction): event-major, then score descending, then frame.
    total = int(counts.sum())
    if total == 0:
        return taken
    gt_of = np.repeat(np.arange(n), counts)
    pr_of = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(lo, counts)
    order = np.lexsort((pr_of, -sp.pr_score[pr_of], gt_of, rank[gt_of]))
    gt_of, pr_of = gt_of[order], pr_of[order]
    rank_of = rank[gt_of]
    bounds = np.searchsorted(rank_of, np.arange(int(rank_of[-1]) + 2), side="left")
    for r in range(int(rank_of[-1]) + 1):
        s, e = bounds[r], bounds[r + 1]
        cand_pr, cand_gt = pr_of[s:e], gt_of[s:e]
        free = np.flatnonzero(~taken[cand_pr])
        if free.size == 0:
            continue
        g = cand_gt[free]
        best = free[np.r_[True, g[1:] != g[:-1]]]  # first free candidate of each event
        taken[cand_pr[best]] = True
    return taken


def _ap_per_class(tp: np.ndarray, n_pred: np.ndarray, n_gt: np.ndarray) -> np.ndarray:
    """11-point AP from counts at the 200 thresholds: tp (D, C, 200), n_pred (C, 200), n_gt (C,)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.nan_to_num(tp / n_pred[None])
        recall = np.nan_to_num(tp / n_gt[None, :, None])
    ap = np.zeros(tp.shape[:2])
    for j in RECALL_POINTS:  # summed in the official order
        ap += np.where(recall >= j, precision, 0.0).max(axis=-1)
    return ap / 11


def _counts_above(index: np.ndarray, level: np.ndarray, size: int) -> np.ndarray:
    """For each row `index` (0..size-1), how many entries have `level` > j, for j = 0..199."""
    hist = np.bincount(index * 201 + level, minlength=size * 201).reshape(size, 201)
    return np.cumsum(hist[:, ::-1], axis=1)[:, ::-1][:, 1:]  # (size, 200)


def _average_map_sparse(sp: _Sparse, *, fps: float, deltas_s: np.ndarray) -> dict:
    C, D = sp.num_classes, len(deltas_s)
    cls_pred = (sp.pr_key // sp.stride) % C
    cls_gt = (sp.gt_key // sp.stride) % C
    level = np.searchsorted(THRESHOLDS, sp.pr_score, side="right")  # thresholds ≤ score: 0..200
    closest = _closest(sp)
    subsets = {"": np.ones(sp.pr_key.size, dtype=bool), "_visible": closest > 0.5, "_unshown": closest < -0.5}
    n_gt = {"": np.bincount(cls_gt, minlength=C).astype(np.int64),
            "_visible": np.bincount(cls_gt[sp.gt_value > 0], minlength=C).astype(np.int64),
            "_unshown": np.bincount(cls_gt[sp.gt_value < 0], minlength=C).astype(np.int64)}
    n_pred = {s: _counts_above(cls_pred[m], level[m], C).astype(np.float64) for s, m in subsets.items()}  # (C, 200)
    tp = {s: np.zeros((D, C, 200)) for s in subsets}
    for d, delta in enumerate(deltas_s):
        hit = _match(sp, math.floor(float(delta * fps) / 2))  # |Δ| ≤ δ/2 with integer Δ
        for s, m in subsets.items():
            sel = hit & m
            tp[s][d] = _counts_above(cls_pred[sel], level[sel], C)
    per_delta = {}
    for s in subsets:
        ap = _ap_per_class(tp[s], n_pred[s], n_gt[s])  # (D, C)
        per_delta[s] = (ap, [np.mean(ap[d]) for d in range(D)])

    out = {}
    for suffix, (ap, m) in per_delta.items():
        if D == 1:
            out["a_mAP" + suffix], out["a_mAP_per_class" + suffix] = float(m[0]), [float(x) for x in ap[0]]
            continue
        integral, integral_c = 0.0, np.zeros(C)
        for i in range(D - 1):
            integral += (m[i] + m[i + 1]) / 2
            integral_c += (ap[i] + ap[i + 1]) / 2
        value = integral / (D - 1)
        if suffix == "_unshown":
            value = value * 17 / 13  # the official's fixed factor (4 of 17 classes never unshown)
        out["a_mAP" + suffix] = float(value)
        out["a_mAP_per_class" + suffix] = [float(x) for x in integral_c / (D - 1)]
    return {k: out[k] for k in RESULT_KEYS}


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
    return _average_map_sparse(_sparse_from_dense(targets, detections), fps=fps, deltas_s=tolerances(metric, deltas))


def average_map_tables(games: Sequence[tuple[Table, Table]], *, num_frames: Sequence[int], num_classes: int,
                       fps: float = FPS, metrics: Sequence[str] = ("loose",),
                       deltas: Sequence[float] | None = None) -> dict[str, dict]:
    """Average-mAP of (labels, predictions) column tables per game, for each metric in `metrics`.

    Tables are dicts of columns (`io.soccernet.label_arrays` / `result_arrays`) or DataFrames with
    half, position_ms, class_id and visibility (labels) or confidence (predictions). The cells are
    built once and shared by every metric. Returns {metric: the six official keys}.
    """
    sp = _sparse_from_tables(games, num_frames=num_frames, num_classes=num_classes, fps=fps)
    return {m: _average_map_sparse(sp, fps=fps, deltas_s=tolerances(m, deltas)) for m in metrics}
