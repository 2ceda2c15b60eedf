"""Context rescoring: a candidate's confidence revised by the other candidates around it.

    rescorer, oof = out_of_fold(games, tolerance_s=5)  JSON-able, and the fitting games with out-of-fold
                                                       confidences; games as `engine.evaluate.read_game_pairs`
    conf = rescore(rescorer, preds)                    (P,) revised confidences of one game's candidates
    rescore_games(rescorer, games)                     the games with their predictions' confidences revised

Our extension, not one of the five papers. A spotting model scores each class from a few seconds of
features; a match has a grammar that those seconds miss. A throw-in follows a ball out of play, a
kick-off a goal, an indirect free-kick a foul or an offside, and an event the broadcast did not show
(a replay was on) has only that context to go by. For each candidate (class c at time t), the features
are its own confidence (as log-odds) and, for every class c' and every window of WINDOWS_S around t (same half), the
highest confidence of a candidate of c' there (0 when none; the candidate itself excluded). One
logistic regression per class maps them to the probability that the candidate is a true positive under
the matching rule of `engine/calibrate.py` at the tolerance (one-to-one, same class and half,
|dt| <= tolerance).

Fitting is two-fold on the fitting games (even / odd positions): each fold's model scores the other
fold's games (out-of-fold confidences, on which the operating points are then fitted) and both models,
averaged, score new games. A class with fewer than MIN_EXAMPLES true or false candidates keeps its
confidence. Measured on the demo benchmark's 100 test games (bench/calibration.py) and on the real
CALF test predictions (fitted on the even games, scored on the odd): see the README's Measured figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from spotting_core.engine.calibrate import DEFAULT_TOLERANCE_S, match_predictions

WINDOWS_S: tuple[tuple[float, float], ...] = ((-60, -20), (-20, -8), (-8, -2), (-2, 2), (2, 8), (8, 20), (20, 60))
MIN_EXAMPLES = 5
Columns = Mapping[str, Sequence]


def context_features(preds: Columns, num_classes: int, windows_s: Sequence[Sequence[float]] | None = None) -> np.ndarray:
    """(P, 1 + C * W): own confidence (log-odds), then per window and class the highest other confidence in it."""
    half, pos, cls = (np.asarray(preds[k], dtype=np.int64) for k in ("half", "position_ms", "class_id"))
    conf = np.asarray(preds["confidence"], dtype=np.float64)
    P, C = len(conf), int(num_classes)
    windows_s = WINDOWS_S if windows_s is None else windows_s
    out = np.zeros((P, 1 + C * len(windows_s)))
    clipped = np.clip(conf, 1e-6, 1 - 1e-6)
    out[:, 0] = np.log(clipped) - np.log1p(-clipped)              # its own confidence, as log-odds
    for h in np.unique(half):
        at = np.flatnonzero(half == h)                             # the candidates of this half
        for c in range(C):
            idx = at[cls[at] == c]                                 # those of class c, which they look at
            if len(idx) == 0:
                continue
            idx = idx[np.argsort(pos[idx], kind="stable")]
            table = _sparse_table(conf[idx])
            where = np.full(P, -1)
            where[idx] = np.arange(len(idx))
            self_rank = where[at]                                 # a candidate of c: its place among them
            for w, (a, b) in enumerate(windows_s):
                lo = np.searchsorted(pos[idx], pos[at] + a * 1000.0, side="left")
                hi = np.searchsorted(pos[idx], pos[at] + b * 1000.0, side="right")
                inside = (self_rank >= lo) & (self_rank < hi)      # the candidate itself is in its window
                best = np.maximum(_range_max(table, lo, np.where(inside, self_rank, hi)),
                                  _range_max(table, np.where(inside, self_rank + 1, hi), hi))
                out[at, 1 + w * C + c] = best
    return out


def _sparse_table(x: np.ndarray) -> list[np.ndarray]:
    levels = [x]
    while 2 ** len(levels) <= len(x):
        prev, k = levels[-1], 2 ** (len(levels) - 1)
        levels.append(np.maximum(prev[:-k], prev[k:]))
    return levels


def _range_max(table: list[np.ndarray], lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """max of x[lo:hi] per row (0 for an empty range)."""
    n = np.maximum(hi - lo, 0)
    out = np.zeros(len(lo))
    ok = n > 0
    if ok.any():
        k = np.floor(np.log2(n[ok])).astype(np.int64)
        vals = np.empty(int(ok.sum()))
        for level in np.unique(k):
            sel = k == level
            start, end = lo[ok][sel], hi[ok][sel] - 2 ** level
            vals[sel] = np.maximum(table[level][start], table[level][end])
        out[ok] = vals
    return out


def _fit_fold(X: np.ndarray, y: np.ndarray, cls: np.ndarray, num_classes: int) -> list[dict | None]:
    from sklearn.linear_model import LogisticRegression

    models: list[dict | None] = []
    for c in range(num_classes):
        sel = cls == c
        if y[sel].sum() < MIN_EXAMPLES or (~y[sel]).sum() < MIN_EXAMPLES:
            models.append(None)
            continue
        m = LogisticRegression(C=1.0, max_iter=2000).fit(X[sel], y[sel])
        models.append({"coef": m.coef_[0].tolist(), "intercept": float(m.intercept_[0])})
    return models


def _apply_fold(models: list[dict | None], X: np.ndarray, cls: np.ndarray) -> np.ndarray:
    out = 1.0 / (1.0 + np.exp(-X[:, 0]))                          # a class without a model: as it was
    for c, m in enumerate(models):
        sel = cls == c
        if m is not None and sel.any():
            out[sel] = 1.0 / (1.0 + np.exp(-(X[sel] @ np.asarray(m["coef"]) + m["intercept"])))
    return out


def _game_arrays(games, tolerance_s: float, num_classes: int, windows_s):
    X, y, cls = [], [], []
    for game in games:
        labels, preds = game[-2], game[-1]
        X.append(context_features(preds, num_classes, windows_s))
        y.append(match_predictions(labels, preds, tolerance_s=tolerance_s))
        cls.append(np.asarray(preds["class_id"], dtype=np.int64))
    return X, y, cls


def out_of_fold(games: Sequence, *, tolerance_s: float = DEFAULT_TOLERANCE_S, num_classes: int = 17):
    """(rescorer, the games with each candidate's out-of-fold revised confidence) from the fitting games."""
    windows = [list(w) for w in WINDOWS_S]
    X, y, cls = _game_arrays(games, tolerance_s, num_classes, windows)
    folds, revised = [], [None] * len(games)
    for part in (0, 1):
        fit_i = [i for i in range(len(games)) if i % 2 == part] or list(range(len(games)))
        models = _fit_fold(np.concatenate([X[i] for i in fit_i]), np.concatenate([y[i] for i in fit_i]),
                           np.concatenate([cls[i] for i in fit_i]), num_classes)
        folds.append(models)
        for i in range(len(games)):
            if i % 2 != part:
                revised[i] = _apply_fold(models, X[i], cls[i])
    for i in range(len(games)):
        if revised[i] is None:            # one game only: scored by both folds (both fitted on it)
            revised[i] = np.mean([_apply_fold(m, X[i], cls[i]) for m in folds], axis=0)
    rescorer = {"windows_s": windows, "tolerance_s": float(tolerance_s),
                "num_classes": int(num_classes), "folds": folds}
    scored = [(*g[:-1], {**{k: np.asarray(v) for k, v in g[-1].items()}, "confidence": r})
              for g, r in zip(games, revised)]
    return rescorer, scored


def rescore(rescorer: dict, preds: Columns) -> np.ndarray:
    """(P,) the candidates' revised confidences: the folds' probabilities, averaged."""
    conf = np.asarray(preds["confidence"], dtype=np.float64)
    if len(conf) == 0:
        return conf
    X = context_features(preds, rescorer["num_classes"], rescorer["windows_s"])
    cls = np.asarray(preds["class_id"], dtype=np.int64)
    return np.mean([_apply_fold(models, X, cls) for models in rescorer["folds"]], axis=0)


def check_rescorer(rescorer, num_classes: int) -> str | None:
    """What is wrong with a rescorer read from a file (None: nothing), for a one-line error."""
    try:
        windows = [(float(a), float(b)) for a, b in rescorer["windows_s"]]
        if int(rescorer["num_classes"]) != num_classes:
            return f"it rescores {rescorer['num_classes']} classes, not {num_classes}"
        width = 1 + num_classes * len(windows)
        for models in rescorer["folds"]:
            if len(models) != num_classes:
                return "a fold without one model (or null) per class"
            for m in models:
                if m is not None and (len(m["coef"]) != width or not np.isfinite([*m["coef"], m["intercept"]]).all()):
                    return f"a class model without {width} finite coefficients and an intercept"
        if not rescorer["folds"]:
            return "no folds"
    except (KeyError, TypeError, ValueError):
        return "expected windows_s pairs, num_classes and folds of per-class models"
    return None


def rescore_games(rescorer: dict, games: Sequence) -> list:
    """(..., labels, predictions) per game, as `read_game_pairs` returns them, with revised confidences."""
    return [(*g[:-1], {**g[-1], "confidence": rescore(rescorer, g[-1])}) for g in games]


def rescore_events(rescorer: dict, events):
    """An events table (`inference.spot_game`'s) with its confidences revised: a copy."""
    out = events.copy()
    out["confidence"] = rescore(rescorer, events)
    return out
