"""Scoring whole SoccerNet trees and tables with the official Average-mAP (`engine/metrics.py`).

    evaluate(labels_root, predictions_root, metric="loose")   trees or .zip files, as the official tool
    evaluate_metrics(..., metrics=("loose", "tight"))          several metrics, every file read once
    pairs = read_game_pairs(labels_root, predictions_root)     (game, label columns, prediction columns)
    average_map_pairs(pairs, metrics=...)                      the same from pairs already read
    evaluate_tables(labels_df, events_df)                     one game from tables (the app, the review)
    format_table(results)                                      the per-class text table of the CLI
    frame_tables(targets, events)                              a game's per-frame arrays as tables (training)

Where the official reader silently skips or crashes, `evaluate` raises one `SpottingError` naming
the file: an unknown label, a half other than 1/2, a missing predictions file, malformed JSON. Games
are the folders holding `label_file` (the official lists every folder holding any .json, once per
.json file, so a folder with two .json files would count twice there).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from spotting_core.engine.metrics import Progress, average_map_tables, official_num_frames, tolerances
from spotting_core.errors import SpottingError
from spotting_core.io.columns import decode_labels, decode_results
from spotting_core.io.soccernet import (
    CLASSES_V1,
    CLASSES_V2,
    FPS,
    HALVES,
    LABELS_FILE,
    RESULTS_FILE,
    frame_of,
    game_file,
    label_arrays,
    list_games,
    read_bytes,
    read_json,
    result_arrays,
)

METRICS = ("loose", "tight")  # `spotting evaluate --metric all`


def _read_columns(root, game: str, filename: str, *, labels: bool, classes: Sequence[str]) -> dict:
    """The columns of one file: typed-decoded in bulk when clean (io/columns.py), else row by row."""
    path, inner = game_file(root, game, filename)
    raw = read_bytes(path, inner=inner)
    if tuple(classes) != CLASSES_V1:  # v1 labels map by key word
        columns = (decode_labels if labels else decode_results)(raw, tuple(classes))
        if columns is not None:
            return columns
    return (label_arrays if labels else result_arrays)(read_json(path, inner=inner, raw=raw), classes=classes,
                                                       source=os.path.join(str(root), game, filename))


def read_game_pairs(labels_root: str | os.PathLike, predictions_root: str | os.PathLike, *,
                    label_file: str = LABELS_FILE, prediction_file: str = RESULTS_FILE,
                    classes: Sequence[str] = CLASSES_V2,
                    progress: Progress | None = None, curves: bool = False) -> list[tuple[str, dict, dict]]:
    """(game, label columns, prediction columns) for every game of `labels_root`, in sorted order.

    The games are the folders of `labels_root` that hold `label_file` (the official `dataset=None`
    mode); each needs `prediction_file` at the same relative path under `predictions_root`.
    curves: also read the model's per-frame scores beside it (`<half>_scores.npy`, as `spot` writes
    them) into the prediction columns' "curves" {half: (T, C)}, for a game that has both halves' files.
    """
    games = list_games(labels_root, label_file)
    if not games:
        raise SpottingError(f"{labels_root}: no game folder holds a {label_file}")
    pred_games = set(list_games(predictions_root, prediction_file))
    members = _zip_members(predictions_root) if curves and Path(predictions_root).is_file() else None
    out = []
    for i, game in enumerate(games):
        if progress is not None:
            progress(i / len(games), f"reading {game}")
        if game not in pred_games:
            raise SpottingError(f"{os.path.join(str(predictions_root), game)}: no {prediction_file} for this game")
        preds = _read_columns(predictions_root, game, prediction_file, labels=False, classes=classes)
        if curves and (found := _read_curves(predictions_root, game, len(classes), members)):
            preds["curves"] = found
        out.append((game, _read_columns(labels_root, game, label_file, labels=True, classes=classes), preds))
    return out


def _read_curves(root, game: str, num_classes: int, members: set[str] | None) -> dict | None:
    """{half: (T, C) scores} from `<half>_scores.npy` beside a game's predictions; None unless both halves have
    one. members: the archive's member names when `root` is a zip (listed once for all games)."""
    import io

    out = {}
    for half in HALVES:
        path, inner = game_file(root, game, f"{half}_scores.npy")
        if not (path.is_file() if inner is None else inner in members):
            return None
        name = f"{path}!{inner}" if inner else str(path)
        try:
            scores = np.load(io.BytesIO(read_bytes(path, inner=inner)), allow_pickle=False)
        except ValueError as e:
            raise SpottingError(f"{name}: not a .npy array ({e})") from None
        if scores.ndim != 2 or scores.shape[1] != num_classes or not np.isfinite(scores).all():
            raise SpottingError(f"{name}: expected finite (T, {num_classes}) per-frame scores, got shape {scores.shape}")
        out[half] = scores
    return out


def _zip_members(path) -> set[str]:
    import zipfile

    with zipfile.ZipFile(path) as z:
        return set(z.namelist())


def average_map_pairs(pairs: Sequence[tuple[str, dict, dict]], *, metrics: Sequence[str] = METRICS,
                      classes: Sequence[str] = CLASSES_V2, fps: float = FPS,
                      deltas: Sequence[float] | None = None) -> dict[str, dict]:
    """{metric: the six official keys} of games as `read_game_pairs` returns them."""
    T = official_num_frames(fps)
    return average_map_tables([(labels, preds) for _, labels, preds in pairs], num_frames=(T, T),
                              num_classes=len(classes), fps=fps, metrics=tuple(metrics), deltas=deltas)


def evaluate(labels_root: str | os.PathLike, predictions_root: str | os.PathLike, *, metric: str = "loose",
             label_file: str = LABELS_FILE, prediction_file: str = RESULTS_FILE,
             classes: Sequence[str] = CLASSES_V2, fps: float = FPS, deltas: Sequence[float] | None = None,
             progress: Progress | None = None) -> dict:
    """Average-mAP of a predictions tree (or .zip) against a labels tree (or .zip).

    The games are the folders of `labels_root` that hold `label_file` (the official `dataset=None`
    mode); each needs `prediction_file` at the same relative path under `predictions_root`.
    """
    return evaluate_metrics(labels_root, predictions_root, metrics=(metric,), label_file=label_file,
                            prediction_file=prediction_file, classes=classes, fps=fps, deltas=deltas,
                            progress=progress)[metric]


def evaluate_metrics(labels_root: str | os.PathLike, predictions_root: str | os.PathLike, *,
                     metrics: Sequence[str] = METRICS, label_file: str = LABELS_FILE,
                     prediction_file: str = RESULTS_FILE, classes: Sequence[str] = CLASSES_V2, fps: float = FPS,
                     deltas: Sequence[float] | None = None, progress: Progress | None = None) -> dict[str, dict]:
    """`evaluate` for several metrics at once: {metric: the six official keys}.

    Every file is read once and the per-game work (cells, closest events, matching at a
    tolerance two metrics share) is done once for all of them.
    """
    for m in metrics:
        tolerances(m, deltas)  # a bad metric or tolerance list fails before any file is read
    pairs = read_game_pairs(labels_root, predictions_root, label_file=label_file, prediction_file=prediction_file,
                            classes=classes, progress=progress)
    if progress is not None:
        progress(1.0, f"Average-mAP ({', '.join(metrics)}) over {len(pairs)} games")
    return average_map_pairs(pairs, metrics=metrics, classes=classes, fps=fps, deltas=deltas)


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


def position_ms_of(frames: np.ndarray, fps: float = FPS) -> np.ndarray:
    """Positions in ms that `frame_of(..., fps)` maps back to exactly `frames` (any fps up to 1000)."""
    frames = np.asarray(frames, dtype=np.int64)
    ms = np.ceil(frames * 1000.0 / fps).astype(np.int64)
    return ms + (frame_of(ms, fps) < frames)  # a float rounding a hair below the frame


def frame_tables(targets: Sequence[np.ndarray], events, *, fps: float = FPS) -> tuple[dict, dict]:
    """One game as `average_map_tables` reads it, frame for frame: per-half (T, C) targets (1 visible,
    -1 unshown, `io.tables.events_per_frame`) and an events table with half, frame, class_id, confidence.

    Scoring these tables equals `metrics.average_map` on the dense arrays (the targets and
    `train.detections_from_events`), but holds only the events: validation on many games stays small.
    """
    rows = [np.nonzero(np.asarray(t)) for t in targets]                      # per half (frames, classes)
    value = np.concatenate([np.asarray(t)[f, c] for t, (f, c) in zip(targets, rows)]) if rows else np.zeros(0)
    frames = np.concatenate([f for f, _ in rows]) if rows else np.zeros(0, np.int64)
    labels = {"half": np.concatenate([np.full(len(f), h + 1) for h, (f, _) in enumerate(rows)]) if rows else frames,
              "position_ms": position_ms_of(frames, fps),
              "class_id": np.concatenate([c for _, c in rows]) if rows else frames,
              "visibility": np.where(value < 0, "not shown", "visible")}
    preds = {"half": events["half"].to_numpy(), "position_ms": position_ms_of(events["frame"].to_numpy(), fps),
             "class_id": events["class_id"].to_numpy(), "confidence": events["confidence"].to_numpy()}
    return labels, preds


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
