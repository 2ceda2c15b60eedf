"""The fast path from JSON to the columns of Labels-v2.json and results_spotting.json.

`loads` parses with `msgspec` when it is installed and gives `json.loads`'s result: anything msgspec
refuses (NaN, lone surrogates, a byte-order mark...) is parsed again by `json`. `decode_labels` /
`decode_results` go from bytes straight to columns through typed msgspec structs, which skip the
fields the columns do not need. `label_columns` / `result_columns` convert already-parsed rows.
All four keep the semantics of the row-by-row readers of `io/soccernet.py` (`int()`, `float()`,
`str()`) and return None on any doubt: the caller then reads row by row, so the error names the
first bad row. numpy only (msgspec optional).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

try:
    import msgspec
except ImportError:  # optional: requirements.txt installs it; the json module does the same, slower
    msgspec = None
_ANY = msgspec.json.Decoder() if msgspec is not None else None

LABEL_FIELDS = ("half", "position_ms", "label", "class_id", "team", "visibility", "game_time")
RESULT_FIELDS = ("half", "position_ms", "label", "class_id", "confidence")
_CANONICAL_TIMES = re.compile(r"(?:[12] - \d{1,3}:\d{2}\n)*")  # "1 - 05:23" lines; anything else: row by row
_BULK_ERRORS = (KeyError, TypeError, ValueError, OverflowError, AttributeError)


def loads(raw: bytes | str):
    """JSON text -> Python objects, exactly as `json.loads` (raises its errors)."""
    if msgspec is not None:
        try:
            return _ANY.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):  # NaN, 1e999, a BOM...: json decides
            pass
    return json.loads(raw)


@functools.lru_cache(maxsize=8)
def class_table(classes: Sequence[str]) -> dict[str, int]:
    """`label -> class index` of a (hashable) class list."""
    return {name: i for i, name in enumerate(classes)}


@functools.lru_cache(maxsize=8)
def _decoders(classes: tuple[str, ...]) -> tuple:
    """Typed decoders of the two files for these classes: only the fields the columns need.

    The label is a Literal: an unknown one fails the decode, and a known one comes back as the
    class name itself, whose hash is cached (the class lookup is then cheap). The half too: 1, 2,
    "1" or "2" (anything else int() reads, " 1" or 1.0, goes row by row). gc=False: flat rows.
    """
    label, number = Literal[classes], int | float | str
    annotation = msgspec.defstruct("Annotation", [("gameTime", str), ("label", label), ("position", number),
                                                  ("team", str, ""), ("visibility", str, "visible")], gc=False)
    prediction = msgspec.defstruct("Prediction", [("half", Literal[1, 2, "1", "2"]), ("position", number),
                                                  ("label", label), ("confidence", float | str)], gc=False)
    return (msgspec.json.Decoder(msgspec.defstruct("Labels", [("annotations", list[annotation])])),
            msgspec.json.Decoder(msgspec.defstruct("Results", [("predictions", list[prediction])])))


_HALF = {1: 1, 2: 2, "1": 1, "2": 2}


def _class_ids(labels: list, classes: Mapping[str, int]) -> np.ndarray:
    return np.fromiter(map(classes.__getitem__, labels), dtype=np.int64, count=len(labels))  # only str keys match


def _numbers(values: list, dtype) -> np.ndarray:
    """`float(v)` (or `int(v)`) of every value, in C: numpy's object casts call the same protocols."""
    out = np.array(values, dtype=object).astype(dtype) if values else np.zeros(0, dtype)
    if out.shape != (len(values),):  # lists as values
        raise ValueError("not one number per row")
    return out


def _label_lists(times: list, labels: list, positions: list, teams: list, visibility: list,
                 classes: Mapping[str, int]) -> dict | None:
    try:
        position = _numbers(positions, np.float64)
        class_ids = _class_ids(labels, classes)
        joined = "\n".join(times) + "\n"  # a TypeError unless every one is a str
        "".join(teams + visibility)  # the same for these
    except _BULK_ERRORS:
        return None
    if not _CANONICAL_TIMES.fullmatch(joined) or not np.all((position >= 0) & (position < 2**62)):
        return None
    half = np.fromiter((t[0] == "2" for t in times), dtype=bool, count=len(times)).astype(np.int64) + 1
    return dict(zip(LABEL_FIELDS, (half, position.astype(np.int64), labels, class_ids, teams, visibility, times)))


def _result_lists(halves: list | np.ndarray, positions: list, labels: list, confidences: list,
                  classes: Mapping[str, int]) -> dict | None:
    try:
        half = halves if isinstance(halves, np.ndarray) else _numbers(halves, np.int64)
        position = _numbers(positions, np.float64)
        confidence = _numbers(confidences, np.float64)
        class_ids = _class_ids(labels, classes)
    except _BULK_ERRORS:
        return None
    ok = (np.all((half == 1) | (half == 2)) and np.all((position >= 0) & (position < 2**62))
          and np.all(np.isfinite(confidence)))
    return dict(zip(RESULT_FIELDS, (half, position.astype(np.int64), labels, class_ids, confidence))) if ok else None


def label_columns(anns: list, classes: Mapping[str, int]) -> dict | None:
    """LABEL_FIELDS of clean annotations (dicts), else None.

    Clean: a canonical "H - MM:SS" gameTime string, a known label string, a position, and string
    team / visibility when present.
    """
    try:
        lists = ([a["gameTime"] for a in anns], [a["label"] for a in anns], [a["position"] for a in anns],
                 [a.get("team", "") for a in anns], [a.get("visibility", "visible") for a in anns])
    except _BULK_ERRORS:
        return None
    return _label_lists(*lists, classes)


def result_columns(preds: list, classes: Mapping[str, int]) -> dict | None:
    """RESULT_FIELDS of clean predictions (dicts), else None."""
    try:
        lists = ([p["half"] for p in preds], [p["position"] for p in preds], [p["label"] for p in preds],
                 [p["confidence"] for p in preds])
    except _BULK_ERRORS:
        return None
    return _result_lists(*lists, classes)


def decode_labels(raw: bytes, classes: tuple[str, ...]) -> dict | None:
    """LABEL_FIELDS straight from a clean Labels-v2.json's bytes, else None (msgspec missing too)."""
    if msgspec is None:
        return None
    try:
        anns = _decoders(classes)[0].decode(raw).annotations
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return _label_lists([a.gameTime for a in anns], [a.label for a in anns], [a.position for a in anns],
                        [a.team for a in anns], [a.visibility for a in anns], class_table(classes))


def decode_results(raw: bytes, classes: tuple[str, ...]) -> dict | None:
    """RESULT_FIELDS straight from a clean results_spotting.json's bytes, else None."""
    if msgspec is None:
        return None
    try:
        preds = _decoders(classes)[1].decode(raw).predictions
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    halves = np.fromiter(map(_HALF.__getitem__, [p.half for p in preds]), dtype=np.int64, count=len(preds))
    return _result_lists(halves, [p.position for p in preds], [p.label for p in preds],
                         [p.confidence for p in preds], class_table(classes))
