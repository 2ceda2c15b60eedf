"""io/columns.py: the fast JSON path gives exactly what json.loads and the row-by-row readers give."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spotting_core.errors import SpottingError
from spotting_core.io import columns
from spotting_core.io.soccernet import CLASSES_V2, parse_game_time

CLASSES = tuple(CLASSES_V2)


def reference_labels(doc: dict) -> dict:
    """Labels-v2.json row by row, written out plainly (int(float(position)), str(...))."""
    rows = []
    for a in doc["annotations"]:
        half, from_time = parse_game_time(a["gameTime"])
        position = int(float(a["position"])) if "position" in a else from_time
        if position < 0:
            raise SpottingError("negative")
        rows.append((half, position, str(a["label"]), CLASSES.index(str(a["label"])), str(a.get("team", "")),
                     str(a.get("visibility", "visible")), a["gameTime"]))
    return {k: list(v) for k, v in zip(columns.LABEL_FIELDS, zip(*rows))} if rows else None


def reference_results(doc: dict) -> dict:
    rows = []
    for p in doc["predictions"]:
        half, position, confidence = int(p["half"]), int(float(p["position"])), float(p["confidence"])
        if half not in (1, 2) or position < 0 or not np.isfinite(confidence):
            raise SpottingError("bad row")
        rows.append((half, position, str(p["label"]), CLASSES.index(str(p["label"])), confidence))
    return {k: list(v) for k, v in zip(columns.RESULT_FIELDS, zip(*rows))} if rows else None


@pytest.mark.parametrize("text", [
    '{"a": 1, "a": 2}', '{"a": NaN, "b": Infinity}', '{"a": 1e400}', '{"a": "\\ud800"}',
    '{"a": 123456789012345678901234567890}', '{"a": -0.0, "b": 1.0000000000000002}', '\ufeff{"a": 1}',
    '[1, "x", null, true]',
])
def test_loads_is_json_loads(text):
    raw = text.encode("utf-8")
    expected, got = json.loads(raw), columns.loads(raw)
    assert repr(got) == repr(expected)  # repr: NaN == NaN, -0.0 vs 0.0, int vs float


@pytest.mark.parametrize("text", ['{"a": 1', '{"a": 1} x', b'{"a": "\xff"}'])
def test_loads_raises_what_json_raises(text):
    raw = text if isinstance(text, bytes) else text.encode()
    with pytest.raises(Exception) as theirs:
        json.loads(raw)
    with pytest.raises(type(theirs.value)):
        columns.loads(raw)


def same_columns(fast: dict, expected: dict | None):
    """`expected` holds plain lists (None: no rows); arrays must be int64 / float64 of the same values."""
    assert list(fast) == list(columns.LABEL_FIELDS if "team" in fast else columns.RESULT_FIELDS)
    for k, x in fast.items():
        if isinstance(x, np.ndarray):
            assert x.dtype == (np.float64 if k == "confidence" else np.int64), k
        got = x.tolist() if isinstance(x, np.ndarray) else list(x)
        assert got == (expected[k] if expected else []), k


ANNOTATIONS = [
    {"gameTime": "1 - 00:10", "label": "Goal", "position": "10000", "team": "home", "visibility": "visible"},
    {"gameTime": "2 - 45:01", "label": "Corner", "position": 2701000.9, "visibility": "not shown"},
    {"gameTime": "1 - 100:00", "label": "Kick-off", "position": 6000000, "team": "away"},
]


@pytest.mark.parametrize("anns", [
    ANNOTATIONS,
    [],
    [{**ANNOTATIONS[0], "gameTime": " 1 - 00:10"}],  # not canonical: row by row, same answer
    [{k: v for k, v in ANNOTATIONS[0].items() if k != "position"}],  # position from the gameTime
    [{**ANNOTATIONS[0], "team": None}],  # str(None), row by row
    [{**ANNOTATIONS[0], "position": True}],
])
def test_label_fast_paths_equal_the_rows(anns):
    doc = {"UrlLocal": "x", "annotations": anns}
    expected = reference_labels(json.loads(json.dumps(doc)))
    decoded = columns.decode_labels(json.dumps(doc).encode(), CLASSES)
    parsed = columns.label_columns(json.loads(json.dumps(doc))["annotations"], columns.class_table(CLASSES))
    for fast in (decoded, parsed):
        if fast is not None:
            same_columns(fast, expected)
    if anns is ANNOTATIONS:
        assert decoded is not None and decoded["half"].tolist() == [1, 2, 1]


PREDICTIONS = [
    {"gameTime": "1 - 00:13", "half": "1", "position": "13000", "label": "Goal", "confidence": "0.38531407713890076"},
    {"half": 2, "position": 13500.7, "label": "Foul", "confidence": 0.25},
    {"half": "2", "position": 0, "label": "Corner", "confidence": "1e-3"},
    {"half": 1, "position": "7200000", "label": "Penalty", "confidence": 2},
]


@pytest.mark.parametrize("preds", [
    PREDICTIONS,
    [],
    [{**PREDICTIONS[0], "half": " 1"}],  # int(" 1") == 1, row by row
    [{**PREDICTIONS[0], "half": 1.0}],
    [{**PREDICTIONS[0], "position": "1_000"}],  # float("1_000") == 1000.0, row by row
])
def test_result_fast_paths_equal_the_rows(preds):
    doc = {"UrlLocal": "x", "predictions": preds}
    expected = reference_results(json.loads(json.dumps(doc)))
    decoded = columns.decode_results(json.dumps(doc).encode(), CLASSES)
    parsed = columns.result_columns(json.loads(json.dumps(doc))["predictions"], columns.class_table(CLASSES))
    for fast in (decoded, parsed):
        if fast is not None:
            same_columns(fast, expected)
    if preds is PREDICTIONS:
        assert decoded is not None and decoded["confidence"].tolist() == [0.38531407713890076, 0.25, 0.001, 2.0]


@pytest.mark.parametrize("bad", [
    {"half": "0"}, {"half": "1.0"}, {"half": [1]}, {"label": "Dunk"}, {"label": 2}, {"position": "-40"},
    {"position": None}, {"confidence": "nan"}, {"confidence": "inf"}, {"confidence": None},
])
def test_doubtful_predictions_go_row_by_row(bad):
    """Whatever the row reader refuses (or might read otherwise), the fast paths leave to it."""
    doc = {"predictions": [PREDICTIONS[0], {**PREDICTIONS[1], **bad}]}
    assert columns.decode_results(json.dumps(doc).encode(), CLASSES) is None
    assert columns.result_columns(doc["predictions"], columns.class_table(CLASSES)) is None


@pytest.mark.parametrize("bad", [
    {"label": "Dunk"}, {"position": "ten"}, {"position": "-40"}, {"gameTime": "first half"}, {"gameTime": 5},
    {"visibility": 1},
])
def test_doubtful_annotations_go_row_by_row(bad):
    doc = {"annotations": [ANNOTATIONS[0], {**ANNOTATIONS[1], **bad}]}
    assert columns.decode_labels(json.dumps(doc).encode(), CLASSES) is None
    assert columns.label_columns(doc["annotations"], columns.class_table(CLASSES)) is None


def test_real_files_fast_equals_rows(shared_data):
    """Real label and prediction files: the typed decode equals json + the plain row reader."""
    root = shared_data / "soccernet-v2"
    files = sorted((root / "labels" / "test").glob("*/*/*/Labels-v2.json"))[:20]
    files += sorted((root / "predictions" / "calf-test").glob("*/*/*/results_spotting.json"))[:20]
    for path in files:
        raw = path.read_bytes()
        labels = path.name == "Labels-v2.json"
        fast = (columns.decode_labels if labels else columns.decode_results)(raw, CLASSES)
        assert fast is not None, path
        same_columns(fast, (reference_labels if labels else reference_results)(json.loads(raw)))
