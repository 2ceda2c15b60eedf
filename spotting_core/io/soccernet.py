"""SoccerNet file formats without pandas: class dictionaries, game times, JSON in trees and zips,
the columns of Labels-v2.json and results_spotting.json, atomic writes.

Tables (pandas) of the same files are in `io/tables.py`, feature files in `io/feature_files.py`.
Every problem with a file raises one `SpottingError` that names the file and the problem.

Positions are kept in milliseconds within a half, as the official files do. A frame index at `fps`
is `int(fps * position_ms / 1000)`, the official evaluator's rounding (towards zero).
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from spotting_core.errors import SpottingError
from spotting_core.io.columns import class_table, label_columns, loads, result_columns

FPS = 2.0  # SoccerNet features and the official metric both run at 2 frames per second
HALVES = (1, 2)
LABELS_FILE = "Labels-v2.json"
RESULTS_FILE = "results_spotting.json"

# SoccerNet-v2, in the official order (SoccerNet.Evaluation.utils.EVENT_DICTIONARY_V2).
CLASSES_V2: tuple[str, ...] = (
    "Penalty", "Kick-off", "Goal", "Substitution", "Offside", "Shots on target", "Shots off target",
    "Clearance", "Ball out of play", "Throw-in", "Foul", "Indirect free-kick", "Direct free-kick",
    "Corner", "Yellow card", "Red card", "Yellow->red card",
)  # fmt: skip
# SoccerNet-v1 (Labels.json): "soccer-ball", "y-card", "substitution-in"... map by key word.
CLASSES_V1: tuple[str, ...] = ("card", "subs", "soccer")

# A display colour per class (the timeline, the demo video's banners), by class index.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d")

EVENT_DICTIONARY_V2 = {name: i for i, name in enumerate(CLASSES_V2)}
EVENT_DICTIONARY_V1 = {name: i for i, name in enumerate(CLASSES_V1)}


_GAME_TIME = re.compile(r"^\s*([12])\s*-\s*(\d{1,3}):(\d{2})\s*$")


# ---------------------------------------------------------------------------------------------
# Classes and times
# ---------------------------------------------------------------------------------------------
def class_color(class_id: int) -> str:
    """The display colour of a class index (the timeline, the demo video's banners)."""
    return PALETTE[int(class_id) % len(PALETTE)]


def class_index(label: str, classes: Sequence[str] = CLASSES_V2, *, source: str = "") -> int:
    """Index of `label` in `classes`, by name. v1 labels ("y-card", "soccer-ball") map by key word."""
    if tuple(classes) == CLASSES_V1:
        for i, key in enumerate(CLASSES_V1):
            if key in label:
                return i
    else:
        try:
            return list(classes).index(label)
        except ValueError:
            pass
    where = f"{source}: " if source else ""
    raise SpottingError(f"{where}unknown label {label!r}; known labels: {', '.join(classes)}")


def _class_lookup(classes: Sequence[str]):
    """A fast `label -> index` for many rows: a dict hit, else `class_index` (key words, the error)."""
    table = {name: i for i, name in enumerate(classes)}

    def lookup(label: str, source: str) -> int:
        i = table.get(label)
        return i if i is not None else class_index(label, classes, source=source)

    return lookup


def format_game_time(half: int, position_ms: float) -> str:
    """(1, 323_400) -> '1 - 05:23', the official gameTime string."""
    seconds = int(position_ms // 1000)
    return f"{int(half)} - {seconds // 60:02d}:{seconds % 60:02d}"


@functools.cache
def _game_time_table() -> np.ndarray:  # built on first use: importing this module stays cheap
    return np.array([[format_game_time(h, 1000 * s) for s in range(4 * 3600)] for h in HALVES], dtype=object)


def game_times(half: np.ndarray, position_ms: np.ndarray) -> list[str]:
    """`format_game_time` over arrays (a table lookup for the first 4 hours of a half)."""
    seconds = np.asarray(position_ms, dtype=np.int64) // 1000
    half = np.asarray(half, dtype=np.int64)
    table = _game_time_table()
    if half.size and ((seconds < 0) | (seconds >= table.shape[1]) | (half < 1) | (half > 2)).any():
        return [format_game_time(h, p) for h, p in zip(half.tolist(), np.asarray(position_ms).tolist())]
    return table[half - 1, seconds].tolist()


def parse_game_time(text: str, *, source: str = "") -> tuple[int, int]:
    """'1 - 05:23' -> (1, 323_000): the half and the position in ms (second precision)."""
    m = _GAME_TIME.match(str(text))
    if not m:
        where = f"{source}: " if source else ""
        raise SpottingError(f"{where}gameTime {text!r} is not of the form 'H - MM:SS' with H 1 or 2")
    return int(m.group(1)), (int(m.group(2)) * 60 + int(m.group(3))) * 1000


def frame_of(position_ms: np.ndarray | float, fps: float = FPS) -> np.ndarray | int:
    """Frame index at `fps` of a position in ms, rounded as the official evaluator does."""
    if np.isscalar(position_ms):
        return int(fps * (int(position_ms) / 1000))
    return (fps * (np.asarray(position_ms, dtype=np.int64) / 1000)).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# JSON in a folder or in a .zip
# ---------------------------------------------------------------------------------------------
def read_bytes(path: str | os.PathLike, *, inner: str | None = None) -> bytes:
    """A file's bytes; with `inner`, those of the member `inner` of the zip archive `path`."""
    name = f"{path}!{inner}" if inner else str(path)
    try:
        if inner is not None:
            with zipfile.ZipFile(path) as z:
                return z.read(inner)
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise SpottingError(f"{name}: file not found") from None
    except KeyError:
        raise SpottingError(f"{name}: not in the archive") from None
    except (zipfile.BadZipFile, IsADirectoryError, PermissionError) as e:
        raise SpottingError(f"{name}: cannot read ({e})") from None


def read_json(path: str | os.PathLike, *, inner: str | None = None, raw: bytes | None = None) -> dict:
    """Load a JSON file; with `inner`, the member `inner` of the zip archive `path`; `raw`: its bytes."""
    name = f"{path}!{inner}" if inner else str(path)
    try:
        data = loads(read_bytes(path, inner=inner) if raw is None else raw)  # msgspec when installed
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SpottingError(f"{name}: malformed JSON ({e})") from None
    if not isinstance(data, dict):
        raise SpottingError(f"{name}: expected a JSON object at the top level")
    return data


def list_games(root: str | os.PathLike, filename: str | None = None) -> list[str]:
    """Games under a SoccerNet tree or a .zip of one, as relative `<league>/<season>/<game>` paths.

    A game is a folder that holds `filename` (any .json when None, as the official evaluator
    infers it). The list is sorted so every caller sees the games in the same order.
    """
    root = Path(root)
    if not root.exists():
        raise SpottingError(f"{root}: no such file or folder")

    def wanted(name: str) -> bool:
        return name.endswith(".json") if filename is None else os.path.basename(name) == filename

    if root.is_file():
        if not zipfile.is_zipfile(root):
            raise SpottingError(f"{root}: neither a folder nor a .zip archive")
        with zipfile.ZipFile(root) as z:
            games = {os.path.dirname(n) for n in z.namelist() if wanted(n)}
    else:
        games = set()
        for dirpath, _, files in os.walk(root):
            if any(wanted(f) for f in files):
                games.add(os.path.relpath(dirpath, root).replace(os.sep, "/"))
    return sorted(games)


def game_file(root: str | os.PathLike, game: str, filename: str) -> tuple[Path, str | None]:
    """Where `root/game/filename` is: (the file, None) in a tree, (the archive, its member) in a zip."""
    root = Path(root)
    if root.is_file():
        return root, f"{game}/{filename}" if game not in ("", ".") else filename
    return root / game / filename, None


def read_game_json(root: str | os.PathLike, game: str, filename: str) -> dict:
    """`root/game/filename` from a tree or from a zip archive."""
    path, inner = game_file(root, game, filename)
    return read_json(path, inner=inner)


# ---------------------------------------------------------------------------------------------
# Labels-v2.json
# ---------------------------------------------------------------------------------------------
def label_arrays(data: dict, *, classes: Sequence[str] = CLASSES_V2, source: str = "labels") -> dict:
    """The columns of a Labels-v2.json object (LABEL_COLUMNS but `frame`): int64 arrays and lists.

    The building block of `labels_from_dict`, for callers that need no DataFrame (the metric).
    """
    anns = data.get("annotations")
    if not isinstance(anns, list):
        raise SpottingError(f"{source}: no 'annotations' list")
    if tuple(classes) != CLASSES_V1 and (columns := label_columns(anns, class_table(tuple(classes)))) is not None:
        return columns  # the bulk path (io/columns.py); v1 labels map by key word, row by row
    lookup = _class_lookup(classes)
    halves, positions, labels, class_ids, teams, visibilities, game_times_ = [], [], [], [], [], [], []
    match = _GAME_TIME.match
    for i, a in enumerate(anns):
        if not isinstance(a, dict) or "gameTime" not in a or "label" not in a:
            raise SpottingError(f"{source}: annotation {i}: needs 'gameTime' and 'label'")
        game_time = a["gameTime"]
        m = match(str(game_time))
        if m is None:
            parse_game_time(game_time, source=f"{source}: annotation {i}")  # raises the one-line error
        if "position" in a:
            try:
                position = int(float(a["position"]))
            except (TypeError, ValueError, OverflowError):
                raise SpottingError(f"{source}: annotation {i}: position {a['position']!r} is not a number of ms"
                                    ) from None
        else:
            position = (int(m.group(2)) * 60 + int(m.group(3))) * 1000
        if position < 0:
            raise SpottingError(f"{source}: annotation {i}: negative position {position} ms")
        label = str(a["label"])
        class_ids.append(lookup(label, f"{source}: annotation {i}"))
        halves.append(int(m.group(1)))
        positions.append(position)
        labels.append(label)
        teams.append(str(a.get("team", "")))
        visibilities.append(str(a.get("visibility", "visible")))
        game_times_.append(game_time)
    return {"half": np.asarray(halves, dtype=np.int64), "position_ms": np.asarray(positions, dtype=np.int64),
            "label": labels, "class_id": np.asarray(class_ids, dtype=np.int64), "team": teams,
            "visibility": visibilities, "game_time": game_times_}


# ---------------------------------------------------------------------------------------------
# results_spotting.json
# ---------------------------------------------------------------------------------------------
def _result_columns_checked(preds: list, classes: Sequence[str], source: str) -> tuple:
    """Columns of predictions, row by row, raising one SpottingError at the first bad row."""
    lookup = _class_lookup(classes)
    halves, positions, labels, class_ids, confidences = [], [], [], [], []
    for i, p in enumerate(preds):
        try:
            half, position, label, conf = int(p["half"]), int(float(p["position"])), str(p["label"]), float(p["confidence"])
        except KeyError as e:
            raise SpottingError(f"{source}: prediction {i}: missing field {e.args[0]!r}") from None
        except (TypeError, ValueError, OverflowError):
            raise SpottingError(f"{source}: prediction {i}: needs half, position and confidence as numbers") from None
        if half not in HALVES:
            raise SpottingError(f"{source}: prediction {i}: half {half} is not 1 or 2")
        if position < 0:
            raise SpottingError(f"{source}: prediction {i}: negative position {position} ms")
        if not math.isfinite(conf):
            raise SpottingError(f"{source}: prediction {i}: confidence {p['confidence']!r} is not finite")
        class_ids.append(lookup(label, f"{source}: prediction {i}"))
        halves.append(half)
        positions.append(position)
        labels.append(label)
        confidences.append(conf)
    return (np.asarray(halves, dtype=np.int64), np.asarray(positions, dtype=np.int64), labels,
            np.asarray(class_ids, dtype=np.int64), np.asarray(confidences, dtype=np.float64))


def result_arrays(data: dict, *, classes: Sequence[str] = CLASSES_V2, source: str = "predictions") -> dict:
    """The columns of a results_spotting.json object: half, position_ms, label, class_id, confidence.

    Clean files take a bulk path; a file with any doubtful row is re-read row by row, so the error
    names the first bad prediction.
    """
    preds = data.get("predictions")
    if not isinstance(preds, list):
        raise SpottingError(f"{source}: no 'predictions' list")
    if tuple(classes) != CLASSES_V1 and (columns := result_columns(preds, class_table(tuple(classes)))) is not None:
        return columns  # the bulk path (io/columns.py)
    half, position, labels, class_ids, conf = _result_columns_checked(preds, classes, source)
    return {"half": half, "position_ms": position, "label": labels, "class_id": class_ids, "confidence": conf}


def results_to_dict(events: Iterable[dict], *, url_local: str = "") -> dict:
    """Events (half, position_ms, label, confidence) -> the official results_spotting.json object.

    Field order and types follow the official schema exactly: gameTime "H - MM:SS", label,
    position (ms as a string), half ("1"/"2"), confidence (as a string).
    """
    records = events.to_dict("records") if hasattr(events, "to_dict") else list(events)  # a DataFrame too
    records.sort(key=lambda r: (int(r["half"]), int(r["position_ms"]), str(r["label"])))
    preds = [{
        "gameTime": format_game_time(r["half"], r["position_ms"]),
        "label": str(r["label"]),
        "position": str(int(r["position_ms"])),
        "half": str(int(r["half"])),
        "confidence": str(float(r["confidence"])),
    } for r in records]
    return {"UrlLocal": url_local, "predictions": preds}


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write through a temp file in the same folder, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
