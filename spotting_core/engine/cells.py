"""The official Average-mAP's data, sparse: events and predictions as cells of the 2-fps grid, the
visibility of each prediction's closest event, and the official greedy matching (numpy only).

Every (game, half, class) is a "group"; a cell's key is `group * stride + frame`, so one sorted
int64 array holds every group in frame order. `engine/metrics.py` turns matches into Average-mAP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from spotting_core.errors import SpottingError
from spotting_core.io.soccernet import HALVES, frame_of

Table = Mapping[str, Sequence]  # columns by name: a dict of arrays or a DataFrame


@dataclass(frozen=True)
class Cells:
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
    n = key.size
    if key.min() >= 0 and int(key.max()) < (2**62) // n:  # one int64 sort of key * n + index
        packed = np.sort(key * n + np.arange(n))
        uniq, keep = packed // n, packed % n
        last = np.r_[uniq[1:] != uniq[:-1], True]
        uniq, keep = uniq[last], keep[last]
    else:
        uniq, first_in_reversed = np.unique(key[::-1], return_index=True)
        keep = n - 1 - first_in_reversed
    return (uniq, *(v[keep] for v in values))


def cells_from_keys(*, num_classes: int, stride: int, gt_key: np.ndarray, gt_value: np.ndarray,
                    pr_key: np.ndarray, pr_score: np.ndarray) -> Cells:
    """Cells from unsorted keys: the last write of a cell wins, zero events and negative scores drop."""
    gt_key, gt_value = _last_per_key(gt_key.astype(np.int64), gt_value.astype(np.float64))
    nonzero = gt_value != 0
    pr_key, pr_score = _last_per_key(pr_key.astype(np.int64), pr_score.astype(np.float64))
    scored = pr_score >= 0  # the official "no prediction" is -1; NaN is no prediction either
    return Cells(num_classes=num_classes, stride=stride, gt_key=gt_key[nonzero], gt_value=gt_value[nonzero],
                 pr_key=pr_key[scored], pr_score=pr_score[scored])


def cells_from_dense(targets: Sequence[np.ndarray], detections: Sequence[np.ndarray]) -> Cells:
    """Per-half (T, C) targets (±1 events, 0 elsewhere) and detections (negative: none)."""
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
    return Cells(num_classes=num_classes, stride=stride,
                 gt_key=np.concatenate(gk)[order_g], gt_value=np.concatenate(gv)[order_g].astype(np.float64),
                 pr_key=np.concatenate(pk)[order_p], pr_score=np.concatenate(ps)[order_p])


def cells_from_tables(games: Sequence[tuple[Table, Table]], *, num_frames: Sequence[int],
                      num_classes: int, fps: float) -> Cells:
    """(labels, predictions) per game -> cells, as the official label2vector/predictions2vector.

    Tables are DataFrames or dicts of columns (`soccernet.label_arrays` / `result_arrays`). Frames
    are recomputed from `position_ms` at `fps` and clamped to each half's `num_frames`. Every
    game's columns are concatenated first, so the work is a few array operations in all.
    """
    stride = int(max(num_frames)) + 1
    limits = np.asarray(num_frames, dtype=np.int64)

    def column(tables: list, name: str, dtype) -> np.ndarray:
        return np.concatenate([np.asarray(t[name], dtype=dtype) for t in tables]) if tables else np.zeros(0, dtype)

    def keys(rows: list[tuple[int, Table]]) -> np.ndarray:
        tables = [t for _, t in rows]
        game = np.repeat(np.asarray([g for g, _ in rows], dtype=np.int64), [len(t["half"]) for t in tables])
        half, cid = column(tables, "half", np.int64), column(tables, "class_id", np.int64)
        bad_half, bad_class = (half < 1) | (half > len(HALVES)), (cid < 0) | (cid >= num_classes)
        if bad_half.any():
            g = int(game[np.argmax(bad_half)])
            raise SpottingError(f"game {g}: half must be 1 or 2, got {sorted(set(half[game == g].tolist()))}")
        if bad_class.any():
            raise SpottingError(f"game {int(game[np.argmax(bad_class)])}: class_id must lie in 0..{num_classes - 1}")
        frame = np.asarray(frame_of(column(tables, "position_ms", np.int64), fps), dtype=np.int64)
        frame = np.minimum(frame, limits[half - 1] - 1)
        return ((game * len(HALVES) + half - 1) * num_classes + cid) * stride + frame

    labels = [(g, t) for g, (t, _) in enumerate(games) if len(t["half"])]
    preds = [(g, t) for g, (_, t) in enumerate(games) if len(t["half"])]
    unshown = [np.asarray(t["visibility"]) == "not shown" for _, t in labels]
    return cells_from_keys(
        num_classes=num_classes, stride=stride,
        gt_key=keys(labels), gt_value=np.where(np.concatenate(unshown) if unshown else np.zeros(0, bool), -1.0, 1.0),
        pr_key=keys(preds), pr_score=column([t for _, t in preds], "confidence", np.float64))


def closest_visibility(cells: Cells) -> np.ndarray:
    """Visibility (+1/-1) of each prediction's closest event of its class and half; -1 if none."""
    sp = cells
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


class Matcher:
    """The official greedy matching, for any half window up to `max_half_window` (frames).

    Events of a group are taken in frame order; each takes the highest-scoring prediction not yet
    taken with |Δ| ≤ half window (ties: the earliest frame). The (event, candidate) rows of the
    widest window are built and sorted once; a narrower window is a mask over them. Matching is
    sequential only inside chains of consecutive events that share a candidate; the chains are
    processed rank by rank, every class, half and game at once.
    """

    def __init__(self, cells: Cells, max_half_window: int):
        sp, n, W = cells, cells.gt_key.size, int(max_half_window)
        self.cells = cells
        frame = sp.gt_key % sp.stride
        base = sp.gt_key - frame
        lo = np.searchsorted(sp.pr_key, base + np.maximum(frame - W, 0), side="left")
        hi = np.searchsorted(sp.pr_key, base + np.minimum(frame + W, sp.stride - 1), side="right")
        counts = hi - lo
        gt_of = np.repeat(np.arange(n), counts)
        pr_of = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(lo, counts)
        order = np.lexsort((pr_of, -sp.pr_score[pr_of], gt_of))  # event, then score descending, then frame
        self.gt_of, self.pr_of = gt_of[order], pr_of[order]
        self.distance = np.abs(sp.pr_key[self.pr_of] - sp.gt_key[self.gt_of])
        # Event i shares a candidate with event i-1 (same group) from this half window on: the
        # best shared prediction is one of the two nearest their midpoint.
        big = np.iinfo(np.int64).max
        self.chain_window = np.full(n, big)
        if n > 1 and sp.pr_key.size:
            same = base[1:] == base[:-1]
            right = np.searchsorted(sp.pr_key, (sp.gt_key[1:] + sp.gt_key[:-1]) // 2, side="left")
            best = np.full(n - 1, big)
            for j in (right - 1, right):
                inside = (j >= 0) & (j < sp.pr_key.size)
                f = sp.pr_key[np.clip(j, 0, sp.pr_key.size - 1)]
                ok = same & inside & (f - f % sp.stride == base[1:])
                best = np.where(ok, np.minimum(best, np.maximum(sp.gt_key[1:] - f, f - sp.gt_key[:-1])), best)
            self.chain_window[1:] = best

    def __call__(self, half_window: int) -> np.ndarray:
        """Which predictions are true positives at this half window (|Δ| ≤ half_window frames)."""
        n = self.cells.gt_key.size
        taken = np.zeros(self.cells.pr_key.size, dtype=bool)
        keep = self.distance <= half_window
        g, p = self.gt_of[keep], self.pr_of[keep]
        if g.size == 0:
            return taken
        chained = self.chain_window <= half_window
        rank = (np.arange(n) - np.maximum.accumulate(np.where(chained, 0, np.arange(n))))[g]
        first = np.r_[True, g[1:] != g[:-1]]
        taken[p[first & (rank == 0)]] = True  # a chain's first event takes its best candidate
        later = np.flatnonzero(rank > 0)
        if later.size == 0:
            return taken
        g, p, rank = g[later], p[later], rank[later]
        top = int(rank.max())
        order = np.argsort(rank.astype(np.int16) if top < 2**15 else rank, kind="stable")  # radix for int16
        g, p = g[order], p[order]
        bounds = np.searchsorted(rank[order], np.arange(1, top + 2), side="left")
        for r in range(top):
            cand_pr, cand_gt = p[bounds[r]:bounds[r + 1]], g[bounds[r]:bounds[r + 1]]
            free = np.flatnonzero(~taken[cand_pr])
            if free.size:
                e = cand_gt[free]
                taken[cand_pr[free[np.r_[True, e[1:] != e[:-1]]]]] = True  # first free candidate of each event
        return taken
