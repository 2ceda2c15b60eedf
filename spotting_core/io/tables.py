"""SoccerNet files as pandas tables: Labels-v2.json and results_spotting.json, and per-frame event arrays.

    read_labels(path)     one row per annotation (LABEL_COLUMNS)
    read_results(path)    one row per prediction (RESULT_COLUMNS)
    write_results(path, events)   the official schema, atomically
    events_per_frame(labels, [T1, T2])   per-half (T, C): 1 visible, -1 unshown, 0 elsewhere
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from spotting_core.io.soccernet import (
    CLASSES_V2,
    FPS,
    HALVES,
    atomic_write_text,
    format_game_time,
    frame_of,
    game_times,
    label_arrays,
    read_json,
    result_arrays,
    results_to_dict,
)

LABEL_COLUMNS = ["half", "position_ms", "frame", "label", "class_id", "team", "visibility", "game_time"]


RESULT_COLUMNS = ["half", "position_ms", "frame", "label", "class_id", "confidence", "game_time"]


def labels_from_dict(data: dict, *, classes: Sequence[str] = CLASSES_V2, fps: float = FPS,
                     source: str = "labels") -> pd.DataFrame:
    """Parse a Labels-v2.json object into a tidy table (one row per annotation, LABEL_COLUMNS)."""
    cols = label_arrays(data, classes=classes, source=source)
    cols["frame"] = np.asarray(frame_of(cols["position_ms"], fps), dtype=np.int64)
    return pd.DataFrame(cols, columns=LABEL_COLUMNS)


def read_labels(path: str | os.PathLike, *, classes: Sequence[str] = CLASSES_V2, fps: float = FPS) -> pd.DataFrame:
    """Read a Labels-v2.json file into a tidy table (see `labels_from_dict`)."""
    return labels_from_dict(read_json(path), classes=classes, fps=fps, source=str(path))


def labels_to_dict(df: pd.DataFrame, *, url_local: str = "") -> dict:
    """A labels table back to the Labels-v2.json object (for exporting reviewed events)."""
    anns = []
    for r in df.sort_values(["half", "position_ms"]).itertuples(index=False):
        anns.append({
            "gameTime": format_game_time(r.half, r.position_ms),
            "label": r.label,
            "position": str(int(r.position_ms)),
            "team": getattr(r, "team", "") or "not applicable",
            "visibility": getattr(r, "visibility", "") or "visible",
        })
    return {"UrlLocal": url_local, "annotations": anns}


def results_from_dict(data: dict, *, classes: Sequence[str] = CLASSES_V2, fps: float = FPS,
                      source: str = "predictions") -> pd.DataFrame:
    """Parse a results_spotting.json object into a table (RESULT_COLUMNS)."""
    cols = result_arrays(data, classes=classes, source=source)
    cols["frame"] = np.asarray(frame_of(cols["position_ms"], fps), dtype=np.int64)
    cols["game_time"] = game_times(cols["half"], cols["position_ms"])
    return pd.DataFrame(cols, columns=RESULT_COLUMNS)


def read_results(path: str | os.PathLike, *, classes: Sequence[str] = CLASSES_V2, fps: float = FPS) -> pd.DataFrame:
    """Read a results_spotting.json file into a table."""
    return results_from_dict(read_json(path), classes=classes, fps=fps, source=str(path))


def write_results(path: str | os.PathLike, events: pd.DataFrame | Iterable[dict], *, url_local: str = "") -> Path:
    """Write a results_spotting.json file (atomically)."""
    return atomic_write_text(path, json.dumps(results_to_dict(events, url_local=url_local), indent=2))


def events_per_frame(labels: pd.DataFrame, num_frames: Sequence[int], num_classes: int = len(CLASSES_V2)
                     ) -> list[np.ndarray]:
    """Per-half (T, C) float32 arrays: 1 where a visible event sits, -1 for unshown, 0 elsewhere.

    Frames past the end of a half's features are clamped to its last frame, as the official
    evaluator clamps to its 120-minute vector. Two events of one class on one frame: the later row
    wins, as the official `label2vector` overwrites.
    """
    out = []
    for half, T in zip(HALVES, num_frames):
        arr = np.zeros((int(T), num_classes), dtype=np.float32)
        sel = labels[labels["half"] == half]
        if len(sel):
            frames = np.minimum(sel["frame"].to_numpy(), int(T) - 1)
            classes = sel["class_id"].to_numpy()
            values = np.where(sel["visibility"].to_numpy() == "not shown", -1.0, 1.0)
            # the last row of each (frame, class) cell: first hit of the reversed rows
            _, first_reversed = np.unique((frames * num_classes + classes)[::-1], return_index=True)
            last = len(frames) - 1 - first_reversed
            arr[frames[last], classes[last]] = values[last]
        out.append(arr)
    return out
