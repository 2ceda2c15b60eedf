"""Operating points: per-class confidence thresholds fitted for F1 at a tolerance, and scoring at them.

    thr = fit_thresholds(games, tolerance_s=5)       {"classes": {name: threshold}, "global": ..., ...}
    fit_thresholds(games, context=True)              the same on context-rescored confidences (engine/rescore.py),
                                                     with the rescorer under "rescorer"
    score_at(games, thr, tolerance_s=5)              precision / recall / F1, overall and per class
    match_predictions(labels, preds) / matched_labels(labels, preds)   the matching rule, per prediction / label
    review_list(labels, preds, thr)                  one game's editors' list: its rows, the labels it finds
    games = engine.evaluate.read_game_pairs(labels_tree, predictions_tree)   (game, labels, predictions)

Average-mAP needs every candidate; an editor needs a list worth reading. Matching rule: a prediction
is a true positive when it is matched one-to-one to a label of its class, in the same half, within
±tolerance (|Δ| <= tolerance). Predictions are matched greedily by descending confidence (ties:
earlier position first), each to the nearest unmatched label (ties: the earlier label). Unshown
labels count. Because the greedy order is by confidence, the matches of the predictions kept by any
threshold are a prefix of one matching of all of them, so one pass gives F1 at every threshold.

Thresholds maximise the overall (micro) F1 of all classes together on the fitting games: start from
the global threshold (the one value that maximises it), then, class by class and for a few sweeps,
move each class's threshold to the value that maximises the overall F1 given the others (keep
predictions >= it; above the class's top confidence keeps none of it). Each step can only raise the
fitted F1, so the result is never below the global threshold's on the fitting games. (Maximising each
class's own F1 instead over-fits the rare classes: on the real CALF test games it scored below one
global threshold on held-out games.) A class with no prediction there keeps the global threshold.

The editors' default review list, stored under "review", is sized rather than scored: an editor reads
every row, and a missed goal is lost while a false candidate costs one key press. Its per-class
thresholds keep the most true positives in a list of at most REVIEW_RATIO (1.3) rows per label of the
fitting games: for a price lambda per row, each class takes the cut maximising its TP - lambda * kept,
lambda is the lowest (bisection) whose list fits, and the rows that price leaves unused go, one
extension at a time, to the class cut that gains the most true positives per row. 1.3 leaves room under an editor's "at most 1.5x
the true events" on games the fit has not seen, whose lists vary around the fitted ratio.
"""

from __future__ import annotations

import json
import os
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from spotting_core.errors import SpottingError
from spotting_core.io.soccernet import (
    CLASSES_V2,
    atomic_write_text,
    read_json,
)

DEFAULT_TOLERANCE_S = 5.0
REVIEW_RATIO = 1.3  # the editors' list: at most this many rows per true event on the fitting games
Columns = Mapping[str, Sequence]  # half, position_ms, class_id (+ confidence for predictions)


# ---------------------------------------------------------------------------------------------
# Matching
# ---------------------------------------------------------------------------------------------
def match_predictions(labels: Columns, preds: Columns, *, tolerance_s: float = DEFAULT_TOLERANCE_S) -> np.ndarray:
    """(P,) bool: which predictions of one game are true positives under the matching rule above."""
    return _match(labels, preds, tolerance_s) >= 0


def matched_labels(labels: Columns, preds: Columns, *, tolerance_s: float = DEFAULT_TOLERANCE_S) -> np.ndarray:
    """(L,) bool: which labels of one game a true positive matched (the same matching, seen from the labels)."""
    found = np.zeros(len(labels["half"]), dtype=bool)
    label_of = _match(labels, preds, tolerance_s)
    found[label_of[label_of >= 0]] = True
    return found


def _match(labels: Columns, preds: Columns, tolerance_s: float) -> np.ndarray:
    """(P,) int: the index of the label each prediction is matched to, -1 for none."""
    tol = float(tolerance_s) * 1000.0
    l_half, l_pos, l_cls = (np.asarray(labels[k], dtype=np.int64) for k in ("half", "position_ms", "class_id"))
    p_half, p_pos, p_cls = (np.asarray(preds[k], dtype=np.int64) for k in ("half", "position_ms", "class_id"))
    conf = np.asarray(preds["confidence"], dtype=np.float64)
    label_of = np.full(len(conf), -1, dtype=np.int64)
    free: dict[tuple[int, int], tuple[list[int], list[int]]] = {}   # (half, class) -> unmatched (positions, indices)
    for h, c, p, j in sorted(zip(l_half.tolist(), l_cls.tolist(), l_pos.tolist(), range(len(l_pos)))):
        pos, idx = free.setdefault((h, c), ([], []))
        pos.append(p)
        idx.append(j)
    for i in np.lexsort((p_pos, -conf)):          # descending confidence, then earlier position
        pool = free.get((int(p_half[i]), int(p_cls[i])))
        if not pool or not pool[0]:
            continue
        pos, idx = pool
        x = int(p_pos[i])
        j = bisect_left(pos, x)
        best = None
        for k in (j - 1, j):                      # the nearest label: just before or at/after x
            if 0 <= k < len(pos) and abs(pos[k] - x) <= tol and (best is None or abs(pos[k] - x) < abs(pos[best] - x)):
                best = k
        if best is not None:
            label_of[i] = idx[best]
            del pos[best], idx[best]
    return label_of


def _flat(games, tolerance_s: float, num_classes: int):
    """Per prediction (class, confidence, hit) over all games, and the number of labels per class."""
    cls, conf, hit, n_labels = [], [], [], np.zeros(num_classes, dtype=np.int64)
    for game in games:
        labels, preds = game[-2], game[-1]
        cls.append(np.asarray(preds["class_id"], dtype=np.int64))
        conf.append(np.asarray(preds["confidence"], dtype=np.float64))
        hit.append(match_predictions(labels, preds, tolerance_s=tolerance_s))
        n_labels += np.bincount(np.asarray(labels["class_id"], dtype=np.int64), minlength=num_classes)[:num_classes]
    if not cls:
        raise SpottingError("no games to calibrate on")
    return np.concatenate(cls), np.concatenate(conf), np.concatenate(hit), n_labels


def _f1(tp, n_pred, n_gt):
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(n_pred > 0, tp / np.maximum(n_pred, 1), 0.0)
        r = np.where(n_gt > 0, tp / np.maximum(n_gt, 1), 0.0)
        f = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-300), 0.0)
    return p, r, f


def _f1_of(tp, n_pred, n_gt):
    """F1 from counts: 2 TP / (kept + labels)."""
    return 2 * tp / np.maximum(n_pred + n_gt, 1e-300)


def _best_cut(conf: np.ndarray, hit: np.ndarray, n_gt: int) -> tuple[float, float]:
    """(threshold, F1) maximising F1 when keeping predictions with confidence >= threshold."""
    order = np.argsort(-conf, kind="stable")
    c, tp = conf[order], np.cumsum(hit[order])
    last = np.r_[c[1:] != c[:-1], True]           # cut only after the last of equal confidences
    n = np.arange(1, len(c) + 1)[last]
    f = _f1_of(tp[last].astype(float), n.astype(float), float(n_gt))
    k = int(np.argmax(f))
    return float(c[last][k]), float(f[k])


# ---------------------------------------------------------------------------------------------
# Fitting and scoring
# ---------------------------------------------------------------------------------------------
def fit_thresholds(games: Sequence, *, tolerance_s: float = DEFAULT_TOLERANCE_S,
                   classes: Sequence[str] = CLASSES_V2, sweeps: int = 5, review_ratio: float | None = REVIEW_RATIO,
                   context: bool = False) -> dict:
    """Per-class thresholds maximising the overall F1 at `tolerance_s` (module docstring), and under
    "review" the editors' list: the most true positives in at most `review_ratio` rows per label.

    games: (..., label columns, prediction columns) per game, as `engine.evaluate.read_game_pairs` returns them.
    context: first fit a context rescorer (`engine/rescore.py`), stored under "rescorer", and fit the
    thresholds on its out-of-fold confidences: they hold for `rescore(out["rescorer"], preds)`, which
    `spot` applies for a checkpoint that carries them (scoring here never rescores).
    """
    C = len(classes)
    rescorer = None
    if context:
        from spotting_core.engine.rescore import out_of_fold

        rescorer, games = out_of_fold(games, tolerance_s=tolerance_s, num_classes=C)
    flat = _flat(games, tolerance_s, C)
    if len(flat[1]) == 0:
        raise SpottingError("no predictions to calibrate on")
    out = {"tolerance_s": float(tolerance_s), **_fit(flat, classes, sweeps=sweeps), "games": len(games)}
    if review_ratio is not None:
        out["review"] = _fit_list(flat, classes, ratio=review_ratio, fallback=out["global"])
    if rescorer is not None:
        out["rescorer"] = rescorer
    return out


def _cut_curves(cls, conf, hit, C: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per class: its candidate thresholds (inf = none kept, then its distinct confidences, descending)
    and the (tp, kept) counts at each."""
    out = []
    for c in range(C):
        sel = cls == c
        order = np.argsort(-conf[sel], kind="stable")
        cc, tp = conf[sel][order], np.cumsum(hit[sel][order])
        last = np.r_[cc[1:] != cc[:-1], True] if len(cc) else np.zeros(0, bool)
        out.append((np.r_[np.inf, cc[last]], np.r_[0, tp[last]].astype(float),
                    np.r_[0, np.flatnonzero(last) + 1].astype(float)))
    return out


def _threshold_of(thr: np.ndarray, k: int, fallback: float) -> float:
    """The threshold of cut k (a class with no candidate keeps `fallback`; "none kept" is just above its top)."""
    if len(thr) == 1:
        return float(fallback)
    return float(thr[k]) if np.isfinite(thr[k]) else float(np.nextafter(thr[1], np.inf))


def _fit_list(flat, classes: Sequence[str], *, ratio: float, fallback: float) -> dict:
    """The editors' list (module docstring): most TP within `ratio` x labels kept, per-class cuts by a row price."""
    cls, conf, hit, n_labels = flat
    curves = _cut_curves(cls, conf, hit, len(classes))
    budget = float(ratio) * float(n_labels.sum())

    def cuts(price: float) -> list[int]:
        return [int(np.argmax(tp - price * n)) for _, tp, n in curves]   # ties: the shorter cut

    def kept(ks: list[int]) -> float:
        return sum(n[k] for (_, _, n), k in zip(curves, ks))

    lo, hi = 0.0, 1.0            # a price of 1 per row keeps nothing that is not all true positives
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if kept(cuts(mid)) <= budget else (mid, hi)
    ks = cuts(hi)
    while True:   # the room the price leaves (its cuts lie on each curve's hull): the best extension that fits
        room, best = budget - kept(ks), None
        for c, (_, tp, n) in enumerate(curves):
            more = np.flatnonzero((n > n[ks[c]]) & (n - n[ks[c]] <= room) & (tp > tp[ks[c]]))
            if len(more):
                rate = (tp[more] - tp[ks[c]]) / (n[more] - n[ks[c]])
                j = int(more[np.argmax(rate)])
                if best is None or rate.max() > best[0]:
                    best = (rate.max(), c, j)
        if best is None:
            break
        ks[best[1]] = best[2]
    tp = sum(t[k] for (_, t, _), k in zip(curves, ks))
    return {"ratio": float(ratio), "global": float(fallback),
            "classes": {name: _threshold_of(curves[c][0], ks[c], fallback) for c, name in enumerate(classes)},
            "fitted_classes": [name for c, name in enumerate(classes) if len(curves[c][0]) > 1],
            "fit_recall": float(tp / max(n_labels.sum(), 1)), "fit_rows_per_label": float(kept(ks) / max(n_labels.sum(), 1))}


def _fit(flat, classes: Sequence[str], *, sweeps: int) -> dict:
    """Coordinate ascent on the overall F1 from the best single threshold (module docstring)."""
    cls, conf, hit, n_labels = flat
    C, L = len(classes), float(n_labels.sum())
    global_thr, global_f = _best_cut(conf, hit, int(L))
    # per class: candidate thresholds (its distinct confidences, descending, then "none kept") and the
    # (tp, kept) counts at each
    cands = _cut_curves(cls, conf, hit, C)
    pick = [int(np.searchsorted(-t, -global_thr, side="right") - 1) for t, _, _ in cands]  # >= global kept
    tp_c = np.array([cands[c][1][pick[c]] for c in range(C)])
    n_c = np.array([cands[c][2][pick[c]] for c in range(C)])
    for _ in range(sweeps):
        moved = False
        for c in range(C):
            thr, tp, n = cands[c]
            if len(thr) == 1:
                continue
            tp_o, n_o = tp_c.sum() - tp_c[c], n_c.sum() - n_c[c]
            f = _f1_of(tp_o + tp, n_o + n, L)
            k = int(np.argmax(f))
            if f[k] > _f1_of(tp_o + tp_c[c], n_o + n_c[c], L) + 1e-12:
                pick[c], tp_c[c], n_c[c], moved = k, tp[k], n[k], True
        if not moved:
            break
    per_class = {name: _threshold_of(cands[c][0], pick[c], global_thr) for c, name in enumerate(classes)}
    return {"classes": per_class, "global": global_thr,
            "fitted_classes": [name for c, name in enumerate(classes) if len(cands[c][0]) > 1],
            "fit_f_global": global_f, "fit_f": float(_f1_of(tp_c.sum(), n_c.sum(), L)),
            "fit_precision": float(tp_c.sum() / max(n_c.sum(), 1)), "fit_recall": float(tp_c.sum() / max(L, 1)),
            "fit_kept": int(n_c.sum()), "fit_candidates": int(len(conf))}


def threshold_vector(thresholds: dict | float | None, classes: Sequence[str] = CLASSES_V2, *,
                     review: bool = False) -> np.ndarray:
    """(C,) thresholds: a fitted dict (its F1 operating point, or with `review` its editors' list when it
    has one), one value for every class, or None (keep everything: 0)."""
    if review and isinstance(thresholds, dict) and thresholds.get("review"):
        thresholds = thresholds["review"]
    if thresholds is None:
        return np.zeros(len(classes))
    if np.isscalar(thresholds):
        return np.full(len(classes), float(thresholds))
    per = thresholds.get("classes", {})
    fallback = float(thresholds.get("global", 0.0))
    return np.array([float(per.get(name, fallback)) for name in classes])


def score_at(games: Sequence, thresholds: dict | float | None, *, tolerance_s: float = DEFAULT_TOLERANCE_S,
             classes: Sequence[str] = CLASSES_V2) -> dict:
    """Precision, recall and F1 of the predictions kept by `thresholds`: overall (micro) and per class."""
    C = len(classes)
    cls, conf, hit, n_labels = _flat(games, tolerance_s, C)
    kept = conf >= threshold_vector(thresholds, classes)[cls]
    tp = np.bincount(cls[kept & hit], minlength=C).astype(float)
    n_pred = np.bincount(cls[kept], minlength=C).astype(float)
    p, r, f = _f1(tp, n_pred, n_labels.astype(float))
    P, R, F = _f1(tp.sum(), n_pred.sum(), float(n_labels.sum()))
    return {"precision": float(P), "recall": float(R), "f1": float(F), "tolerance_s": float(tolerance_s),
            "kept": int(kept.sum()), "candidates": int(len(conf)), "labels": int(n_labels.sum()),
            "per_class": {name: {"precision": float(p[c]), "recall": float(r[c]), "f1": float(f[c]),
                                 "kept": int(n_pred[c]), "labels": int(n_labels[c])}
                          for c, name in enumerate(classes)}}


def review_list(labels: Columns, preds: Columns, thresholds: dict | float | None, *,
                tolerance_s: float = DEFAULT_TOLERANCE_S, classes: Sequence[str] = CLASSES_V2) -> tuple[int, np.ndarray]:
    """One game's default review list (the editors' thresholds, else the F1 ones): (its rows, (L,) bool
    which labels it finds under the matching rule)."""
    conf = np.asarray(preds["confidence"], dtype=np.float64)
    keep = conf >= threshold_vector(thresholds, classes, review=True)[np.asarray(preds["class_id"], dtype=np.int64)]
    kept = {k: np.asarray(preds[k])[keep] for k in ("half", "position_ms", "class_id", "confidence")}
    return int(keep.sum()), matched_labels(labels, kept, tolerance_s=tolerance_s)


def write_thresholds(path: str | os.PathLike, thresholds: dict) -> Path:
    return atomic_write_text(path, json.dumps(thresholds, indent=2))


def read_thresholds(path: str | os.PathLike, classes: Sequence[str] = CLASSES_V2) -> dict:
    """A thresholds file written by `spotting calibrate` (or `spotting train`), checked."""
    data = read_json(path)
    per = data.get("classes")
    if not isinstance(per, dict) or not all(isinstance(v, (int, float)) for v in per.values()):
        raise SpottingError(f"{path}: not a thresholds file (expected a 'classes' object of numbers)")
    unknown = sorted(set(per) - set(classes))
    if unknown:
        raise SpottingError(f"{path}: unknown class {', '.join(unknown)}; known labels: {', '.join(classes)}")
    if "rescorer" in data:
        from spotting_core.engine.rescore import check_rescorer

        if (problem := check_rescorer(data["rescorer"], len(classes))) is not None:
            raise SpottingError(f"{path}: its context rescorer is not usable ({problem})")
    return data
