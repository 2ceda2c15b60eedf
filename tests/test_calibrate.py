"""Operating points: the matching rule on hand-made cases, fitted thresholds, scoring, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spotting_core.cli import main
from spotting_core.engine.calibrate import (
    fit_thresholds,
    match_predictions,
    read_thresholds,
    review_list,
    score_at,
    threshold_vector,
)
from spotting_core.engine.evaluate import read_game_pairs
from spotting_core.errors import SpottingError
from spotting_core.io.soccernet import CLASSES_V2


def cols(rows, conf=False):
    """rows: (half, position_ms, class_id[, confidence])."""
    keys = ["half", "position_ms", "class_id"] + (["confidence"] if conf else [])
    return {k: [r[i] for r in rows] for i, k in enumerate(keys)}


def test_a_prediction_takes_the_nearest_free_label_of_its_class_and_half():
    labels = cols([(1, 10_000, 2), (1, 16_000, 2), (2, 10_000, 2), (1, 10_000, 5)])
    preds = cols([(1, 12_000, 2, 0.9),     # nearest: 10 s (2 s away), not 16 s (4 s)
                  (1, 11_000, 2, 0.8),     # 10 s is taken: 16 s is 5 s away -> matched (|d| <= 5 s)
                  (1, 10_500, 2, 0.7),     # both taken: false positive
                  (2, 15_001, 2, 0.6),     # 5.001 s from the half-2 label: outside the tolerance
                  (1, 10_000, 3, 0.95)],   # right time, wrong class
                 conf=True)
    assert match_predictions(labels, preds, tolerance_s=5).tolist() == [True, True, False, False, False]


def test_greedy_by_confidence_not_by_time():
    labels = cols([(1, 10_000, 0)])
    preds = cols([(1, 10_000, 0, 0.2), (1, 13_000, 0, 0.9)], conf=True)
    # the more confident prediction takes the label even though the other one is exact
    assert match_predictions(labels, preds, tolerance_s=5).tolist() == [False, True]
    ties = cols([(1, 14_000, 0, 0.5), (1, 6_000, 0, 0.5)], conf=True)  # equal confidence: earlier first
    assert match_predictions(labels, ties, tolerance_s=5).tolist() == [False, True]
    equidistant = cols([(1, 4_000, 1), (1, 8_000, 1)])
    assert match_predictions(equidistant, cols([(1, 6_000, 1, 0.5), (1, 9_000, 1, 0.4)], conf=True),
                             tolerance_s=5).tolist() == [True, True]   # 6 s takes the earlier label (4 s)


def _game(labels, preds):
    return ("g", cols(labels), cols(preds, conf=True))


def test_fitted_threshold_maximises_f1_and_scores_are_the_counts():
    # class 0: 3 labels; predictions 0.9 (hit), 0.8 (miss), 0.7 (hit), 0.3 (hit), 0.2 (miss)
    labels = [(1, t, 0) for t in (10_000, 40_000, 70_000)]
    preds = [(1, 10_000, 0, 0.9), (1, 25_000, 0, 0.8), (1, 40_000, 0, 0.7), (1, 70_000, 0, 0.3), (1, 90_000, 0, 0.2)]
    games = [_game(labels, preds)]
    # F1 at >= 0.9: 1/1, 1/3 -> 0.5; >= 0.7: 2/3, 2/3 -> 0.667; >= 0.3: 3/4, 1 -> 0.857; >= 0.2: 3/5, 1 -> 0.75
    thr = fit_thresholds(games, tolerance_s=5)
    assert thr["classes"]["Penalty"] == 0.3 and thr["fitted_classes"] == ["Penalty"]
    assert thr["classes"]["Goal"] == thr["global"] == 0.3          # no label of Goal: the global threshold
    s = score_at(games, thr, tolerance_s=5)
    assert (s["precision"], s["recall"]) == (0.75, 1.0) and s["f1"] == pytest.approx(6 / 7)
    assert s["kept"] == 4 and s["candidates"] == 5 and s["per_class"]["Penalty"]["kept"] == 4
    none = score_at(games, None, tolerance_s=5)
    assert (none["precision"], none["recall"], none["kept"]) == (0.6, 1.0, 5)
    assert score_at(games, 0.95, tolerance_s=5)["f1"] == 0.0


def test_per_class_thresholds_differ_where_classes_differ():
    labels = [(1, 10_000, 0), (1, 10_000, 1), (1, 50_000, 1)]
    preds = [(1, 10_000, 0, 0.9), (1, 30_000, 0, 0.6),              # class 0: only 0.9 is right
             (1, 10_000, 1, 0.3), (1, 50_000, 1, 0.2), (1, 80_000, 1, 0.1)]  # class 1: low but right
    thr = fit_thresholds([_game(labels, preds)])
    assert thr["classes"]["Penalty"] == 0.9 and thr["classes"]["Kick-off"] == 0.2
    v = threshold_vector(thr)
    assert v.shape == (17,) and v[0] == 0.9 and v[1] == 0.2
    assert score_at([_game(labels, preds)], thr)["f1"] == 1.0


def test_cli_calibrate_then_evaluate_reads_the_file(tmp_path, capsys):
    for split, conf in (("labels", None), ("preds", 0.8)):
        game = tmp_path / split / "league" / "2020" / "g1"
        game.mkdir(parents=True)
        if conf is None:
            data = {"annotations": [{"gameTime": "1 - 00:10", "label": "Goal", "position": "10000",
                                     "visibility": "visible"}]}
            (game / "Labels-v2.json").write_text(json.dumps(data))
        else:
            preds = [{"gameTime": "1 - 00:11", "label": "Goal", "position": "11000", "half": "1", "confidence": "0.8"},
                     {"gameTime": "1 - 01:00", "label": "Goal", "position": "60000", "half": "1", "confidence": "0.1"}]
            (game / "results_spotting.json").write_text(json.dumps({"UrlLocal": "", "predictions": preds}))
    out = tmp_path / "thr.json"
    assert main(["calibrate", str(tmp_path / "labels"), str(tmp_path / "preds"), "--out", str(out)]) == 0
    thr = read_thresholds(out)
    assert thr["classes"]["Goal"] == 0.8 and thr["tolerance_s"] == 5.0
    assert "f1 1.000" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"classes": {"Gol": 0.5}}))
    with pytest.raises(SpottingError, match="unknown class Gol"):
        read_thresholds(bad)
    assert main(["calibrate", str(tmp_path / "labels"), str(tmp_path / "nothing"), "--out", str(out)]) == 2
    from spotting_core.models import build_model, read_checkpoint, save_checkpoint

    ckpt = save_checkpoint(tmp_path / "m.pt", build_model("maxpool"), classes=CLASSES_V2, feature_name="x")
    assert main(["calibrate", str(tmp_path / "labels"), str(tmp_path / "preds"), "--out", str(out),
                 "--into", str(ckpt)]) == 0
    assert read_checkpoint(ckpt)["extra"]["thresholds"]["classes"]["Goal"] == 0.8


def test_every_class_gets_a_threshold():
    thr = fit_thresholds([_game([(1, 1000, 4)], [(1, 1000, 4, 0.5)])])
    assert set(thr["classes"]) == set(CLASSES_V2) and np.isfinite(list(thr["classes"].values())).all()


REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "soccernet-v2"


@pytest.mark.skipif(not (REAL / "predictions" / "calf-test").is_dir(), reason="../shared/data not on this machine")
def test_evaluate_at_operating_points_on_real_predictions(tmp_path, capsys):
    """Fit on 4 real games, score on 4 others: evaluate --thresholds gives score_at's figures beside Average-mAP."""
    import shutil

    labels, preds = REAL / "labels" / "test", REAL / "predictions" / "calf-test"
    games = sorted(p.parent.relative_to(preds) for p in preds.rglob("results_spotting.json"))[:8]
    trees = {}
    for part, chosen in (("fit", games[0::2]), ("held", games[1::2])):
        for kind, root, name in (("labels", labels, "Labels-v2.json"), ("preds", preds, "results_spotting.json")):
            for g in chosen:
                (tmp_path / part / kind / g).mkdir(parents=True)
                shutil.copy(root / g / name, tmp_path / part / kind / g / name)
        trees[part] = (str(tmp_path / part / "labels"), str(tmp_path / part / "preds"))
    thr = tmp_path / "thr.json"
    assert main(["calibrate", *trees["fit"], "--out", str(thr), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)        # the fit's own counts, as scoring counts them
    on_fit = score_at(read_game_pairs(*trees["fit"]), read_thresholds(thr), tolerance_s=5.0)
    assert {k: summary[k] for k in ("precision", "recall", "kept", "candidates")} == \
        {k: on_fit[k] for k in ("precision", "recall", "kept", "candidates")}
    assert summary["f1"] == pytest.approx(on_fit["f1"], abs=1e-12) and summary["games"] == 4
    assert main(["evaluate", *trees["held"], "--metric", "all", "--thresholds", str(thr), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    want = score_at(read_game_pairs(*trees["held"]), read_thresholds(thr), tolerance_s=5.0)
    assert {k: got[k] for k in ("precision", "recall", "f1")} == {k: want[k] for k in ("precision", "recall", "f1")}
    assert got["operating_point"]["per_class"] == want["per_class"] and 0 < got["f1"] < 1
    assert set(got) >= {"loose", "tight"} and "a_mAP" in got["loose"]
    assert main(["evaluate", *trees["held"], "--thresholds", str(thr), "--tolerance", "1"]) == 0
    text = capsys.readouterr().out
    assert "at the operating points" in text and "+-1 s" in text and "Throw-in" in text
    assert main(["evaluate", *trees["held"], "--thresholds", str(tmp_path / "missing.json")]) == 2


def test_editors_list_keeps_the_most_true_events_its_size_allows():
    """The review list: the most true positives in at most ratio x labels rows (hand-made case: a
    per-row price alone stops at 2 of 4 in 2 rows; the room left takes the next best extension)."""
    labels = {"half": [1, 1, 1, 1], "position_ms": [10_000, 60_000, 110_000, 160_000], "class_id": [0, 0, 0, 1]}
    preds = {"half": [1] * 6, "position_ms": [10_000, 60_000, 200_000, 110_000, 30_000, 160_000],
             "class_id": [0, 0, 0, 0, 1, 1], "confidence": [0.9, 0.8, 0.7, 0.6, 0.95, 0.5]}
    games = [("g", labels, preds)]
    four = fit_thresholds(games, review_ratio=1.0)["review"]                  # 4 rows for 4 labels
    assert four["fit_rows_per_label"] == 1.0 and four["fit_recall"] == 0.75  # 3 of 4: no 4 rows find more
    kept = score_at(games, four)
    assert (kept["kept"], kept["recall"]) == (4, 0.75)
    two = fit_thresholds(games, review_ratio=0.5)["review"]                   # 2 rows: the two sure ones
    assert two["classes"][CLASSES_V2[0]] == 0.8 and two["classes"][CLASSES_V2[1]] > 0.95
    assert score_at(games, two)["kept"] == 2 and score_at(games, two)["recall"] == 0.5
    every = fit_thresholds(games, review_ratio=10.0)["review"]                # room for all: up to the last hit
    assert score_at(games, every)["recall"] == 1.0 and score_at(games, every)["kept"] == 6


def test_review_list_reads_the_editors_thresholds_of_one_game():
    """A game's default list: the "review" thresholds when fitted (else the F1 ones), rows and labels found."""
    labels = {"half": [1, 1, 2], "position_ms": [10_000, 60_000, 10_000], "class_id": [0, 1, 0]}
    preds = {"half": [1, 1, 1, 2], "position_ms": [12_000, 61_000, 90_000, 30_000], "class_id": [0, 1, 1, 0],
             "confidence": [0.5, 0.3, 0.9, 0.8], "label": ["Penalty", "Kick-off", "Kick-off", "Penalty"]}
    thr = {"classes": {"Penalty": 0.9, "Kick-off": 0.9}, "global": 0.9,
           "review": {"classes": {"Penalty": 0.4, "Kick-off": 0.25}, "global": 0.5}}
    rows, found = review_list(labels, preds, thr)
    assert rows == 4 and found.tolist() == [True, True, False]      # half 2's is 20 s off: not found
    rows, found = review_list(labels, preds, {k: v for k, v in thr.items() if k != "review"})
    assert rows == 1 and found.tolist() == [False, False, False]     # the F1 point keeps the 0.9 only
    rows, found = review_list(labels, preds, None, tolerance_s=25)
    assert rows == 4 and found.tolist() == [True, True, True]
