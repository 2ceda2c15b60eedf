"""SoccerNet file formats: class dictionaries, Labels-v2.json, results_spotting.json, games, features."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from SoccerNet.Evaluation.ActionSpotting import label2vector, predictions2vector
from SoccerNet.Evaluation.utils import EVENT_DICTIONARY_V2 as OFFICIAL_V2

from spotting_core.errors import SpottingError
from spotting_core.io.feature_files import load_features, load_half_features
from spotting_core.io.soccernet import (
    CLASSES_V1,
    CLASSES_V2,
    EVENT_DICTIONARY_V2,
    class_index,
    format_game_time,
    game_times,
    list_games,
    parse_game_time,
    read_game_json,
)
from spotting_core.io.tables import (
    LABEL_COLUMNS,
    RESULT_COLUMNS,
    events_per_frame,
    labels_from_dict,
    read_labels,
    read_results,
    results_from_dict,
    write_results,
)


def labels_doc(*anns) -> dict:
    return {"UrlLocal": "l/s/g", "annotations": list(anns)}


GOOD_LABELS = labels_doc(
    {"gameTime": "1 - 00:10", "label": "Goal", "position": "10400", "team": "home", "visibility": "visible"},
    {"gameTime": "2 - 44:59", "label": "Corner", "position": 2699999, "team": "away", "visibility": "not shown"},
    {"gameTime": "1 - 12:34", "label": "Yellow card", "team": "home", "visibility": "visible"},
)


# ---------------------------------------------------------------------------------------------
# Classes and times
# ---------------------------------------------------------------------------------------------
def test_class_dictionary_is_the_official_one():
    assert EVENT_DICTIONARY_V2 == OFFICIAL_V2 and list(CLASSES_V2) == list(OFFICIAL_V2)
    assert [class_index(name) for name in OFFICIAL_V2] == list(OFFICIAL_V2.values())
    assert class_index("y-card", CLASSES_V1) == 0 and class_index("soccer-ball", CLASSES_V1) == 2
    with pytest.raises(SpottingError, match="unknown label 'Dunk'"):
        class_index("Dunk")


def test_game_time_format_and_parse():
    assert format_game_time(1, 323_400) == "1 - 05:23"
    assert parse_game_time("2 - 47:05") == (2, 2_825_000)
    assert parse_game_time("1 - 0:13") == (1, 13_000)  # the real CALF files write single-digit minutes
    with pytest.raises(SpottingError, match="gameTime '3 - 00:10'"):
        parse_game_time("3 - 00:10")
    rng = np.random.default_rng(0)
    half, pos = rng.integers(1, 3, 500), rng.integers(0, 20_000_000, 500)  # past the 4-hour table too
    assert game_times(half, pos) == [format_game_time(h, p) for h, p in zip(half, pos)]


# ---------------------------------------------------------------------------------------------
# Labels-v2.json
# ---------------------------------------------------------------------------------------------
def test_labels_table(tmp_path):
    path = tmp_path / "Labels-v2.json"
    path.write_text(json.dumps(GOOD_LABELS))
    df = read_labels(path)
    assert list(df.columns) == LABEL_COLUMNS
    assert df["half"].tolist() == [1, 2, 1]
    assert df["position_ms"].tolist() == [10_400, 2_699_999, 754_000]  # no "position": from gameTime
    assert df["frame"].tolist() == [20, 5399, 1508]
    assert df["class_id"].tolist() == [2, 13, 14]
    assert df["visibility"].tolist() == ["visible", "not shown", "visible"]
    assert read_labels(path, fps=25.0)["frame"].tolist() == [260, 67499, 18850]
    # the official vector agrees on every cell
    ours = events_per_frame(df, [14400, 14400])
    theirs = label2vector(GOOD_LABELS, num_classes=17, framerate=2, version=2, EVENT_DICTIONARY=OFFICIAL_V2)
    for o, t in zip(ours, theirs):
        np.testing.assert_array_equal(o, t)


def test_events_per_frame_overwrites_and_clamps():
    df = labels_from_dict(labels_doc(
        {"gameTime": "1 - 00:05", "label": "Foul", "position": "5000", "visibility": "visible"},
        {"gameTime": "1 - 00:05", "label": "Foul", "position": "5400", "visibility": "not shown"},  # same frame
        {"gameTime": "2 - 99:00", "label": "Goal", "position": "5940000", "visibility": "visible"},
    ))
    first, second = events_per_frame(df, [100, 50])
    assert first[10, 10] == -1.0 and np.count_nonzero(first) == 1  # the later row wins
    assert second[49, 2] == 1.0  # clamped to the last frame of a short half


@pytest.mark.parametrize("doc, problem", [
    ("{oops", "malformed JSON"),
    ("[1, 2]", "expected a JSON object"),
    (json.dumps({"UrlLocal": "x"}), "no 'annotations' list"),
    (json.dumps(labels_doc({"gameTime": "1 - 00:10", "label": "Dunk", "position": "10000"})),
     "annotation 0: unknown label 'Dunk'"),
    (json.dumps(labels_doc({"gameTime": "1 - 00:10", "label": "Goal", "position": "10000"},
                           {"gameTime": "1 - 00:10", "label": "Goal", "position": "-40"})),
     "annotation 1: negative position -40 ms"),
    (json.dumps(labels_doc({"gameTime": "1 - 00:10", "label": "Goal", "position": "ten"})), "not a number of ms"),
    (json.dumps(labels_doc({"gameTime": "first half", "label": "Goal"})), "not of the form 'H - MM:SS'"),
    (json.dumps(labels_doc({"label": "Goal"})), "needs 'gameTime' and 'label'"),
])
def test_bad_labels_file_one_clear_error(tmp_path, doc, problem):
    path = tmp_path / "Labels-v2.json"
    path.write_text(doc)
    with pytest.raises(SpottingError, match=problem) as e:
        read_labels(path)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(SpottingError, match="Labels-v2.json: file not found"):
        read_labels(tmp_path / "Labels-v2.json")


# ---------------------------------------------------------------------------------------------
# results_spotting.json
# ---------------------------------------------------------------------------------------------
def test_results_round_trip_in_the_official_schema(tmp_path):
    events = pd.DataFrame({
        "half": [2, 1, 1], "position_ms": [61_500, 754_000, 0],
        "label": ["Goal", "Corner", "Kick-off"], "confidence": [0.123456789012345678, 1.0, 0.0],
    })
    path = write_results(tmp_path / "g" / "results_spotting.json", events, url_local="l/s/g")
    raw = json.loads(path.read_text())
    assert list(raw) == ["UrlLocal", "predictions"] and raw["UrlLocal"] == "l/s/g"
    assert raw["predictions"][0] == {"gameTime": "1 - 00:00", "label": "Kick-off", "position": "0", "half": "1",
                                     "confidence": "0.0"}
    for p in raw["predictions"]:
        assert list(p) == ["gameTime", "label", "position", "half", "confidence"]
        assert all(isinstance(v, str) for v in p.values())
    df = read_results(path)
    assert list(df.columns) == RESULT_COLUMNS
    assert df["game_time"].tolist() == ["1 - 00:00", "1 - 12:34", "2 - 01:01"]
    assert df["confidence"].tolist() == [0.0, 1.0, 0.123456789012345678]  # exact, not rounded
    assert df["frame"].tolist() == [0, 1508, 123]
    # the official reader sees the same vector
    ours = np.full((14400, 17), -1.0)
    ours[df.loc[df.half == 2, "frame"], df.loc[df.half == 2, "class_id"]] = df.loc[df.half == 2, "confidence"]
    theirs = predictions2vector(raw, num_classes=17, version=2, framerate=2, EVENT_DICTIONARY=OFFICIAL_V2)[1]
    np.testing.assert_array_equal(ours, theirs)


def test_results_bulk_and_row_paths_agree():
    """Numbers or strings, the bulk reader gives what int()/float() give row by row."""
    preds = [{"half": h, "position": p, "label": lab, "confidence": c} for h, p, lab, c in [
        ("1", "13000", "Goal", "0.38531407713890076"), (2, 13500.7, "Foul", 0.25), ("2", 0, "Corner", "1e-3"),
        (1, "7200000", "Penalty", 2.5)]]
    fast = results_from_dict({"predictions": preds})
    assert fast["half"].tolist() == [1, 2, 2, 1]
    assert fast["position_ms"].tolist() == [13000, 13500, 0, 7200000]
    assert fast["confidence"].tolist() == [0.38531407713890076, 0.25, 0.001, 2.5]
    assert fast["class_id"].tolist() == [2, 10, 13, 0]
    empty = results_from_dict({"predictions": []})
    assert list(empty.columns) == RESULT_COLUMNS and len(empty) == 0


@pytest.mark.parametrize("pred, problem", [
    ({"half": "1", "position": "10", "label": "Dunk", "confidence": "0.5"}, "prediction 1: unknown label 'Dunk'"),
    ({"half": "1", "position": "-1000", "label": "Goal", "confidence": "0.5"}, "prediction 1: negative position"),
    ({"half": "0", "position": "10", "label": "Goal", "confidence": "0.5"}, "prediction 1: half 0 is not 1 or 2"),
    ({"half": "1", "position": "10", "label": "Goal", "confidence": "nan"}, "prediction 1: confidence 'nan'"),
    ({"half": "1", "position": "10", "label": "Goal"}, "prediction 1: missing field 'confidence'"),
    ({"half": "1", "position": None, "label": "Goal", "confidence": "0.5"}, "prediction 1: needs half, position"),
    ({"half": [1], "position": "10", "label": "Goal", "confidence": "0.5"}, "prediction 1: needs half, position"),
])
def test_bad_results_file_one_clear_error(tmp_path, pred, problem):
    ok = {"half": "1", "position": "10", "label": "Goal", "confidence": "0.5"}
    path = tmp_path / "results_spotting.json"
    path.write_text(json.dumps({"UrlLocal": "", "predictions": [ok, pred]}))
    with pytest.raises(SpottingError, match=problem) as e:
        read_results(path)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


# ---------------------------------------------------------------------------------------------
# Games in a tree or a zip
# ---------------------------------------------------------------------------------------------
@pytest.fixture()
def tree(tmp_path):
    root = tmp_path / "tree"
    for game in ("england_epl/2015-2016/g b", "england_epl/2014-2015/g a", "spain_laliga/2016-2017/g c"):
        (root / game).mkdir(parents=True)
        (root / game / "Labels-v2.json").write_text(json.dumps(GOOD_LABELS))
    (root / "spain_laliga/2016-2017/g c/results_spotting.json").write_text('{"predictions": []}')
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("not a game")
    return root


def test_games_in_tree_and_zip(tree, tmp_path):
    expected = ["england_epl/2014-2015/g a", "england_epl/2015-2016/g b", "spain_laliga/2016-2017/g c"]
    assert list_games(tree, "Labels-v2.json") == expected
    assert list_games(tree, "results_spotting.json") == ["spain_laliga/2016-2017/g c"]
    assert list_games(tree) == expected  # any .json, as the official infers games
    archive = tmp_path / "tree.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted(tree.rglob("*")):
            z.write(p, p.relative_to(tree).as_posix())
    assert list_games(archive, "Labels-v2.json") == expected
    assert read_game_json(archive, expected[0], "Labels-v2.json") == GOOD_LABELS
    assert read_game_json(tree, expected[0], "Labels-v2.json") == GOOD_LABELS
    with pytest.raises(SpottingError, match="not in the archive"):
        read_game_json(archive, "england_epl/x", "Labels-v2.json")


def test_bad_roots(tmp_path):
    with pytest.raises(SpottingError, match="no such file or folder"):
        list_games(tmp_path / "missing")
    (tmp_path / "x.zip").write_text("not a zip")
    with pytest.raises(SpottingError, match="neither a folder nor a .zip"):
        list_games(tmp_path / "x.zip")


# ---------------------------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------------------------
def test_features_both_halves(tmp_path):
    np.save(tmp_path / "1_PCA.npy", np.ones((30, 8), dtype=np.float64))
    np.save(tmp_path / "2_PCA.npy", np.zeros((25, 8), dtype=np.float32))
    a, b = load_features(tmp_path, "PCA")
    assert a.shape == (30, 8) and b.shape == (25, 8) and a.dtype == np.float32


def test_features_errors_name_the_file(tmp_path):
    np.save(tmp_path / "1_PCA.npy", np.ones((30, 8), dtype=np.float32))
    with pytest.raises(SpottingError, match="missing half 2: no 2_PCA.npy"):
        load_features(tmp_path, "PCA")
    np.save(tmp_path / "2_PCA.npy", np.ones((30, 4), dtype=np.float32))
    with pytest.raises(SpottingError, match="disagree on feature dimension"):
        load_features(tmp_path, "PCA")
    np.save(tmp_path / "3.npy", np.ones(5, dtype=np.float32))
    with pytest.raises(SpottingError, match=r"3.npy: expected a \(T, D\) array"):
        load_half_features(tmp_path / "3.npy")
    (tmp_path / "4.npy").write_text("garbage")
    with pytest.raises(SpottingError, match="4.npy: not a readable .npy"):
        load_half_features(tmp_path / "4.npy")
