"""Context rescoring: a candidate's confidence revised by the other candidates around it.

    rescorer, oof = out_of_fold(games, tolerance_s=5)  JSON-able, and the fitting games with out-of-fold
                                                       confidences; games as `engine.evaluate.read_game_pairs`
    conf = rescore(rescorer, preds)                    (P,) revised confidences of one game's candidates
                                                       (preds["curves"]: the model's per-frame scores, when it reads them)
    rescore_games(rescorer, games)                     the games with their predictions' confidences revised
    rescore_events(rescorer, events, arrays)           spot_game's events table, revised (arrays: its curves)

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
confidence.

When every fitting game also carries the model's per-frame score curves (preds["curves"] = {half: (T, C)
scores at `fps`}, what `spot` writes as <half>_scores.npy), the rescorer reads them too: the candidate's
own class's score (log-odds) every second of CURVE_OFFSETS_S["own"] around it, and every class's score
every 2 s of CURVE_OFFSETS_S["all"]. NMS keeps one peak of each bump of a curve and drops its shape; the
shape is what tells an event the broadcast did not show (a long after-context, nothing before) from a
distractor (a short bump). On the demo benchmark's valid games (2-fold) list recall rose from 90.5 to
91.4 % at the same size. Such a rescorer records `curves` (offsets and fps) and needs the curves to
score (a one-line error without them). Measured on the demo benchmark's 100 test games (bench/calibration.py) and on the real
CALF test predictions (fitted on the even games, scored on the odd): see the README's Measured figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from spotting_core.engine.calibrate import DEFAULT_TOLERANCE_S, match_predictions
from spotting_core.io.soccernet import FPS

WINDOWS_S: tuple[tuple[float, float], ...] = ((-60, -20), (-20, -8), (-8, -2), (-2, 2), (2, 8), (8, 20), (20, 60))
CURVE_OFFSETS_S = {"own": tuple(range(-8, 9)), "all": tuple(range(-6, 7, 2))}
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


def curve_features(preds: Columns, curves: Mapping, spec: Mapping, num_classes: int) -> np.ndarray:
    """(P, O + C * A): the own class's score (log-odds) at each "own" offset, every class's at each "all" one.

    curves: {half: (T, C) per-frame scores at spec["fps"]}; an offset past either end reads the end frame.
    """
    from spotting_core.errors import SpottingError

    half, pos, cls = (np.asarray(preds[k], dtype=np.int64) for k in ("half", "position_ms", "class_id"))
    fps, C = float(spec["fps"]), int(num_classes)
    own, every = (np.round(np.asarray(spec[k], dtype=np.float64) * fps).astype(np.int64)
                  for k in ("own_offsets_s", "all_offsets_s"))
    out = np.zeros((len(half), len(own) + C * len(every)))
    for h in np.unique(half):
        s = curves.get(int(h)) if isinstance(curves, Mapping) else None
        s = None if s is None else np.asarray(s, dtype=np.float64)
        if s is None or s.ndim != 2 or s.shape[1] != C or len(s) == 0:
            raise SpottingError(f"half {int(h)}: the context rescorer reads the model's per-frame scores, a (T, {C}) "
                                f"<half>_scores.npy, and these predictions have none")
        at = np.flatnonzero(half == h)
        frame = np.clip(np.round(pos[at] / 1000.0 * fps).astype(np.int64), 0, len(s) - 1)
        mine = np.clip(frame[:, None] + own[None], 0, len(s) - 1)
        p = np.clip(s[mine, cls[at][:, None]], 1e-4, 1 - 1e-4)
        out[at, : len(own)] = np.log(p) - np.log1p(-p)
        out[at, len(own):] = s[np.clip(frame[:, None] + every[None], 0, len(s) - 1)].reshape(len(at), -1)
    return out


def features(rescorer: Mapping, preds: Columns) -> np.ndarray:
    """The rescorer's input for one game's candidates: context_features, then curve_features when it reads curves."""
    X = context_features(preds, rescorer["num_classes"], rescorer["windows_s"])
    if reads_curves(rescorer):
        X = np.hstack([X, curve_features(preds, preds.get("curves") or {}, rescorer["curves"], rescorer["num_classes"])])
    return X


def reads_curves(rescorer: Mapping | None) -> bool:
    """Whether a rescorer (None: no rescorer) reads score curves, so its predictions must carry them."""
    return bool(rescorer and rescorer.get("curves"))


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


def _game_arrays(games, tolerance_s: float, spec: Mapping):
    X, y, cls = [], [], []
    for game in games:
        labels, preds = game[-2], game[-1]
        X.append(features(spec, preds))
        y.append(match_predictions(labels, preds, tolerance_s=tolerance_s))
        cls.append(np.asarray(preds["class_id"], dtype=np.int64))
    return X, y, cls


def out_of_fold(games: Sequence, *, tolerance_s: float = DEFAULT_TOLERANCE_S, num_classes: int = 17,
                fps: float = FPS):
    """(rescorer, the games with each candidate's out-of-fold revised confidence) from the fitting games.

    It reads score curves (at `fps`) when every game's predictions carry them under "curves".
    """
    spec = {"windows_s": [list(w) for w in WINDOWS_S], "num_classes": int(num_classes), "curves": None}
    if games and all(g[-1].get("curves") for g in games):
        spec["curves"] = {"fps": float(fps), "own_offsets_s": list(CURVE_OFFSETS_S["own"]),
                          "all_offsets_s": list(CURVE_OFFSETS_S["all"])}
    X, y, cls = _game_arrays(games, tolerance_s, spec)
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
    rescorer = {**spec, "tolerance_s": float(tolerance_s), "folds": folds}
    scored = [(*g[:-1], {**{k: v if k == "curves" else np.asarray(v) for k, v in g[-1].items()}, "confidence": r})
              for g, r in zip(games, revised)]
    return rescorer, scored


def rescore(rescorer: dict, preds: Columns) -> np.ndarray:
    """(P,) the candidates' revised confidences: the folds' probabilities, averaged."""
    conf = np.asarray(preds["confidence"], dtype=np.float64)
    if len(conf) == 0:
        return conf
    X = features(rescorer, preds)
    cls = np.asarray(preds["class_id"], dtype=np.int64)
    return np.mean([_apply_fold(models, X, cls) for models in rescorer["folds"]], axis=0)


def check_rescorer(rescorer, num_classes: int) -> str | None:
    """What is wrong with a rescorer read from a file (None: nothing), for a one-line error."""
    try:
        windows = [(float(a), float(b)) for a, b in rescorer["windows_s"]]
        if int(rescorer["num_classes"]) != num_classes:
            return f"it rescores {rescorer['num_classes']} classes, not {num_classes}"
        width = 1 + num_classes * len(windows)
        if spec := rescorer.get("curves"):
            if not float(spec["fps"]) > 0:
                return "curves at a non-positive fps"
            width += len(spec["own_offsets_s"]) + num_classes * len(spec["all_offsets_s"])
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
    from spotting_core.errors import SpottingError

    out = []
    for g in games:
        try:
            out.append((*g[:-1], {**g[-1], "confidence": rescore(rescorer, g[-1])}))
        except SpottingError as e:
            raise SpottingError(f"{g[0]}: {e}") from None
    return out


def rescore_events(rescorer: dict, events, arrays: Mapping | None = None):
    """An events table (`inference.spot_game`'s) with its confidences revised: a copy.

    arrays: spot_game's per-half arrays, whose per-frame scores a rescorer that reads curves needs.
    """
    from spotting_core.engine.inference import prediction_columns

    out = events.copy()
    out["confidence"] = rescore(rescorer, prediction_columns(events, arrays))
    return out
