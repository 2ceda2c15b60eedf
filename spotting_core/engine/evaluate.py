"""Scoring whole SoccerNet trees and tables with the official Average-mAP (`engine/metrics.py`).

    evaluate(labels_root, predictions_root, metric="loose")   trees or .zip files, as the official tool
    evaluate_tables(labels_df, events_df)                     one game from tables (the app, the review)
    format_table(results)                                      the per-class text table of the CLI

Where the official reader silently skips or crashes, `evaluate` raises one `SpottingError` naming
the file: an unknown label, a half other than 1/2, a missing predictions file, malformed JSON. Games
are the folders holding `label_file` (the official lists every folder holding any .json, once per
.json file, so a folder with two .json files would count twice there).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from spotting_core.engine.metrics import Progress, average_map_tables, official_num_frames, tolerances
from spotting_core.errors import SpottingError
from spotting_core.io.soccernet import (
    CLASSES_V2,
    FPS,
    HALVES,
    LABELS_FILE,
    RESULTS_FILE,
    label_arrays,
    list_games,
    read_game_json,
    result_arrays,
)


def _game_columns(labels_root, predictions_root, game, *, label_file, prediction_file, pred_games,
                  classes) -> tuple[dict, dict]:
    if game not in pred_games:
        raise SpottingError(f"{os.path.join(str(predictions_root), game)}: no {prediction_file} for this game")
    labels = label_arrays(read_game_json(labels_root, game, label_file), classes=classes,
                          source=os.path.join(str(labels_root), game, label_file))
    preds = result_arrays(read_game_json(predictions_root, game, prediction_file), classes=classes,
                          source=os.path.join(str(predictions_root), game, prediction_file))
    return labels, preds


def evaluate(labels_root: str | os.PathLike, predictions_root: str | os.PathLike, *, metric: str = "loose",
             label_file: str = LABELS_FILE, prediction_file: str = RESULTS_FILE,
             classes: Sequence[str] = CLASSES_V2, fps: float = FPS, deltas: Sequence[float] | None = None,
             progress: Progress | None = None) -> dict:
    """Average-mAP of a predictions tree (or .zip) against a labels tree (or .zip).

    The games are the folders of `labels_root` that hold `label_file` (the official `dataset=None`
    mode); each needs `prediction_file` at the same relative path under `predictions_root`.
    """
    tolerances(metric, deltas)  # a bad metric or tolerance list fails before any file is read
    games = list_games(labels_root, label_file)
    if not games:
        raise SpottingError(f"{labels_root}: no game folder holds a {label_file}")
    pred_games = set(list_games(predictions_root, prediction_file))
    tables = []
    for i, game in enumerate(games):
        if progress is not None:
            progress(i / len(games), f"reading {game}")
        tables.append(_game_columns(labels_root, predictions_root, game, label_file=label_file,
                                    prediction_file=prediction_file, pred_games=pred_games, classes=classes))
    if progress is not None:
        progress(1.0, f"Average-mAP ({metric}) over {len(games)} games")
    T = official_num_frames(fps)
    return average_map_tables(tables, num_frames=(T, T), num_classes=len(classes), fps=fps, metrics=(metric,),
                              deltas=deltas)[metric]


def evaluate_tables(labels, events, *, num_frames: int | Sequence[int] | None = None,
                    metric: str = "loose", fps: float = FPS, classes: Sequence[str] = CLASSES_V2,
                    deltas: Sequence[float] | None = None) -> dict:
    """Average-mAP of one game from its labels table (`io.tables.read_labels`) and events table
    (`io.tables.read_results`, `inference.events_from_scores`, the review store's events).

    Tables need half, position_ms, and class_id or label (by name in `classes`), plus visibility
    (labels) and confidence (events). `num_frames`: per-half frame count (or one for both), to
    clamp to; default the official 120-minute vector.
    """
    if num_frames is None:
        num_frames = official_num_frames(fps)
    halves = [int(num_frames)] * len(HALVES) if np.isscalar(num_frames) else [int(n) for n in num_frames]
    if len(halves) != len(HALVES) or min(halves) <= 0:
        raise SpottingError(f"num_frames: expected one positive count per half, got {num_frames!r}")
    tables = []
    for name, table, extra in (("labels", labels, "visibility"), ("events", events, "confidence")):
        missing = [c for c in ("half", "position_ms", extra) if c not in table.columns]
        if "class_id" not in table.columns and "label" not in table.columns:
            missing.append("class_id (or label)")
        if missing:
            raise SpottingError(f"{name} table: missing column(s) {', '.join(missing)}")
        if "class_id" not in table.columns:
            lookup = {c: i for i, c in enumerate(classes)}
            table = table.assign(class_id=[lookup.get(str(lbl), -1) for lbl in table["label"]])
        bad_class = ~table["class_id"].between(0, len(classes) - 1)
        if bad_class.any():
            row = table[bad_class].iloc[0]
            what = repr(row["label"]) if "label" in table.columns else f"class_id {row['class_id']}"
            raise SpottingError(f"{name} table: unknown class {what}; known labels: {', '.join(classes)}")
        if not table["half"].isin(HALVES).all():
            raise SpottingError(f"{name} table: half must be 1 or 2")
        if (table["position_ms"] < 0).any():
            raise SpottingError(f"{name} table: negative position")
        tables.append(table)
    return average_map_tables([tuple(tables)], num_frames=halves, num_classes=len(classes), fps=fps,
                              metrics=(metric,), deltas=deltas)[metric]


def format_table(results: dict, metric: str = "loose", *, classes: Sequence[str] = CLASSES_V2) -> str:
    """A readable per-class table of an `evaluate` / `average_map` result."""
    per = [results["a_mAP_per_class"], results["a_mAP_per_class_visible"], results["a_mAP_per_class_unshown"]]
    names = list(classes) if len(classes) == len(per[0]) else [f"class {i}" for i in range(len(per[0]))]
    width = max(len(n) for n in [*names, "Average-mAP"]) + 2
    lines = [f"Average-mAP ({metric})", f"{'class':<{width}}{'all':>8}{'visible':>9}{'unshown':>9}"]
    lines.append("-" * len(lines[-1]))
    for i, name in enumerate(names):
        lines.append(f"{name:<{width}}{per[0][i]:>8.4f}{per[1][i]:>9.4f}{per[2][i]:>9.4f}")
    lines.append("-" * len(lines[1]))
    lines.append(f"{'Average-mAP':<{width}}{results['a_mAP']:>8.4f}{results['a_mAP_visible']:>9.4f}"
                 f"{results['a_mAP_unshown']:>9.4f}")
    lines.append("(the unshown Average-mAP is scaled by 17/13 as the official does: 4 classes never occur unshown)")
    return "\n".join(lines)
