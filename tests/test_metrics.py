"""Average-mAP against the official SoccerNet evaluator (the oracle), to 1e-9 on every figure.

The official `evaluate` costs seconds per call whatever the data (200 thresholds × 17 classes ×
tolerances in Python), so the edge cases share a few trees: each class of the scenario tree holds
one situation, and per-class figures are compared one by one. The all-100-games comparison and the
timings live in bench/metric.py.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
from SoccerNet.Evaluation.ActionSpotting import average_mAP as official_average_mAP
from SoccerNet.Evaluation.ActionSpotting import evaluate as official_evaluate
from SoccerNet.Evaluation.utils import EVENT_DICTIONARY_V2

from spotting_core.engine.evaluate import evaluate, evaluate_metrics, evaluate_tables, format_table
from spotting_core.engine.metrics import RESULT_KEYS, average_map, average_map_tables, official_num_frames
from spotting_core.errors import SpottingError
from spotting_core.io.soccernet import CLASSES_V2, format_game_time
from spotting_core.io.tables import events_per_frame, read_labels, read_results

TOL = 1e-9
LABELS, PREDS = "Labels-v2.json", "results_spotting.json"


# ---------------------------------------------------------------------------------------------
# Helpers: tiny SoccerNet trees, the oracle, comparison
# ---------------------------------------------------------------------------------------------
def ann(half: int, ms: int, label: str, visible: bool = True, *, position: str | int | None = "str") -> dict:
    a = {"gameTime": format_game_time(half, ms), "label": label, "team": "home",
         "visibility": "visible" if visible else "not shown"}
    if position == "str":
        a["position"] = str(ms)
    elif position == "int":
        a["position"] = ms
    return a


def pred(half: int, ms: int, label: str, conf: float | str) -> dict:
    return {"gameTime": format_game_time(half, ms), "label": label, "position": str(ms), "half": str(half),
            "confidence": conf if isinstance(conf, str) else str(conf)}


def write_tree(root: Path, games: dict[str, tuple[list[dict], list[dict]]]) -> tuple[Path, Path]:
    """{game: (annotations, predictions)} -> (labels root, predictions root)."""
    for game, (anns, preds) in games.items():
        for sub, name, payload in (("labels", LABELS, {"UrlLocal": game, "annotations": anns}),
                                   ("preds", PREDS, {"UrlLocal": game, "predictions": preds})):
            d = root / sub / game
            d.mkdir(parents=True, exist_ok=True)
            (d / name).write_text(json.dumps(payload))
    return root / "labels", root / "preds"


def official(labels_root, preds_root, metric: str) -> dict:
    r = official_evaluate(str(labels_root), str(preds_root), prediction_file=PREDS, dataset=None, version=2,
                          metric=metric, EVENT_DICTIONARY=EVENT_DICTIONARY_V2, label_files=LABELS)
    return {k: (float(v) if np.isscalar(v) else [float(x) for x in v]) for k, v in r.items()}


def assert_same(ours: dict, theirs: dict, tol: float = TOL) -> None:
    assert list(ours) == list(RESULT_KEYS) and set(theirs) == set(RESULT_KEYS)
    for key in RESULT_KEYS:
        a, b = np.atleast_1d(ours[key]), np.atleast_1d(np.asarray(theirs[key], dtype=float))
        assert a.shape == b.shape, key
        diff = np.abs(a - b)
        assert diff.max() <= tol, f"{key}: max |diff| {diff.max():.3g} at {int(diff.argmax())}: {a} vs {b}"


# ---------------------------------------------------------------------------------------------
# The scenario tree: one situation per class
# ---------------------------------------------------------------------------------------------
def scenario_games() -> dict[str, tuple[list[dict], list[dict]]]:
    rng = random.Random(7)
    c = CLASSES_V2
    a1, p1, a2, p2 = [], [], [], []
    # 0 Penalty: no event anywhere, predictions in both games (closest -1: they count as "unshown")
    p1 += [pred(1, 100_000, c[0], 0.8), pred(1, 200_000, c[0], 0.3)]
    p2 += [pred(2, 41_000, c[0], 0.55)]
    # 1 Kick-off: events, no predictions at all
    a1 += [ann(1, 0, c[1]), ann(2, 0, c[1])]
    # 2 Goal: equal confidences on one event (the earlier frame wins), confidences exactly on thresholds
    th = np.linspace(0, 1, 200)
    a1 += [ann(1, 600_000, c[2]), ann(1, 1_200_000, c[2])]
    p1 += [pred(1, 598_000, c[2], 0.6), pred(1, 602_000, c[2], 0.6),
           pred(1, 1_199_000, c[2], repr(float(th[120]))), pred(1, 1_201_500, c[2], repr(float(th[120]))),
           pred(1, 2_000_000, c[2], repr(float(th[57])))]
    # 3 Substitution: events at frame 0 and 1, at the last row (14399) and past it (clamped)
    a1 += [ann(1, 0, c[3]), ann(1, 600, c[3]), ann(1, 7_199_999, c[3]), ann(2, 7_199_000, c[3]),
           ann(2, 9_000_000, c[3], False)]
    p1 += [pred(1, 0, c[3], 0.9), pred(1, 500, c[3], 0.4), pred(1, 7_199_500, c[3], 0.7)]
    p2 += [pred(2, 8_500_000, c[3], 0.95), pred(2, 10_000_000, c[3], 0.5), pred(2, 7_150_000, c[3], 0.2)]
    # 4 Offside: unshown events only
    a1 += [ann(1, 300_000, c[4], False), ann(1, 310_000, c[4], False), ann(2, 900_000, c[4], False)]
    p1 += [pred(1, 303_000, c[4], 0.5), pred(1, 309_000, c[4], 0.45)]
    p2 += [pred(2, 950_000, c[4], 0.9)]
    # 5 Shots on target: predictions far from every event
    a1 += [ann(1, 100_000, c[5]), ann(1, 1_000_000, c[5])]
    p1 += [pred(1, 1_200_000, c[5], 0.7), pred(1, 2_500_000, c[5], 0.2)]
    # 6 Shots off target: two predictions on one event; the spare one reaches the next event at δ ≥ 35 s
    a1 += [ann(1, 500_000, c[6]), ann(1, 520_000, c[6])]
    p1 += [pred(1, 498_000, c[6], 0.8), pred(1, 503_000, c[6], 0.7)]
    # 7 Clearance: a dense chain (every 3 s, mixed visibility), predictions every 2 s with tied scores
    for k in range(21):
        a1.append(ann(1, 1_000_000 + 3000 * k, c[7], k % 3 != 0))
    for k in range(32):
        p1.append(pred(1, 999_000 + 2000 * k, c[7], round(rng.random(), 1)))
    # 8 Ball out of play: visible/unshown neighbours, odd frame sum at the closest boundary
    a1 += [ann(1, 2_000_000, c[8]), ann(1, 2_007_500, c[8], False)]
    p1 += [pred(1, 2_003_000, c[8], 0.3), pred(1, 2_003_500, c[8], 0.6), pred(1, 2_006_500, c[8], 0.9)]
    # 9 Throw-in: two labels on one frame (the later, unshown, wins); two predictions on one frame
    a1 += [ann(1, 3_000_000, c[9]), ann(1, 3_000_400, c[9], False)]
    p1 += [pred(1, 3_001_000, c[9], 0.9), pred(1, 3_001_200, c[9], 0.3)]
    # 10 Foul: confidence 0, above 1, negative, and a negative one overwriting a positive one
    a1 += [ann(2, 100_000, c[10]), ann(2, 200_000, c[10])]
    p1 += [pred(2, 101_000, c[10], 0.0), pred(2, 99_000, c[10], 1.5), pred(2, 150_000, c[10], -0.5),
           pred(2, 200_000, c[10], 0.6), pred(2, 200_200, c[10], -1)]
    # 11 Indirect free-kick: events in half 2, predictions only in half 1 at the same times
    a1 += [ann(2, 50_000, c[11]), ann(2, 60_000, c[11])]
    p1 += [pred(1, 50_000, c[11], 0.9), pred(1, 60_000, c[11], 0.8)]
    # 12 Direct free-kick: predictions exactly at |Δ| = δ/2 and one frame beyond
    a1 += [ann(1, 500_000, c[12]), ann(1, 1_500_000, c[12])]
    p1 += [pred(1, 502_500, c[12], 0.4), pred(1, 503_000, c[12], 0.9), pred(1, 1_497_500, c[12], 0.5)]
    # 13 Corner: random events and predictions in both games and halves, 1-decimal scores (ties)
    for game_a, game_p in ((a1, p1), (a2, p2)):
        for _ in range(8):
            h, ms = rng.choice((1, 2)), rng.randrange(0, 2_700_000, 500)
            game_a.append(ann(h, ms, c[13], rng.random() < 0.7))
            for _ in range(rng.randrange(0, 4)):
                game_p.append(pred(h, max(0, ms + rng.randrange(-40_000, 40_000, 500)), c[13],
                                   round(rng.random(), 1)))
    # 14 Yellow card: labels without "position" (second precision from gameTime)
    a1 += [ann(1, 754_000, c[14], position=None), ann(2, 2_400_000, c[14], False, position=None)]
    p1 += [pred(1, 755_000, c[14], 0.7), pred(2, 2_404_000, c[14], 0.6)]
    # 15 Red card: numeric positions, minute past 45
    a1 += [ann(1, 2_850_000, c[15], position="int")]
    p1 += [pred(1, 2_851_000, c[15], 0.35)]
    # 16 Yellow->red card: one event, one exact prediction
    a2 += [ann(1, 1_234_500, c[16])]
    p2 += [pred(1, 1_234_500, c[16], 0.99)]
    return {"league/2020-2021/game one": (a1, p1), "league/2020-2021/game two": (a2, p2)}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    labels, preds = write_tree(tmp_path_factory.mktemp("scenario"), scenario_games())
    return labels, preds, official(labels, preds, "loose")


def test_scenarios_match_official_loose(scenario):
    labels, preds, theirs = scenario
    ours = evaluate(labels, preds, metric="loose")
    assert_same(ours, theirs)
    # the scenarios are not degenerate: some classes score, some score zero, unshown exists
    assert 0 < ours["a_mAP"] < 1 and ours["a_mAP_unshown"] > 0
    assert ours["a_mAP_per_class"][0] == 0.0  # Penalty: no events
    assert ours["a_mAP_per_class"][1] == 0.0  # Kick-off: no predictions
    assert ours["a_mAP_per_class"][16] == pytest.approx(1.0)


def test_scenarios_loose_and_tight_in_one_call(scenario):
    """Every file read once, the cells and the 5 s matching shared: each metric still the official's."""
    labels, preds, theirs = scenario
    both = evaluate_metrics(labels, preds, metrics=("loose", "tight", "at5"))
    assert list(both) == ["loose", "tight", "at5"]
    assert_same(both["loose"], theirs)
    assert_same(both["tight"], official(labels, preds, "tight"))
    assert_same(both["at5"], official(labels, preds, "at5"))


def test_scenarios_zip_equals_tree(scenario, tmp_path):
    import shutil

    labels, preds, theirs = scenario
    zl = shutil.make_archive(str(tmp_path / "labels"), "zip", labels)
    zp = shutil.make_archive(str(tmp_path / "preds"), "zip", preds)
    assert_same(evaluate(zl, zp), theirs)
    assert_same(evaluate(labels, zp), theirs)


def test_dense_api_equals_files(scenario):
    """average_map on official-size vectors (events_per_frame + predictions2vector form) = evaluate."""
    labels, preds, theirs = scenario
    T = official_num_frames()
    targets, detections = [], []
    for game in ("league/2020-2021/game one", "league/2020-2021/game two"):
        lab = read_labels(labels / game / LABELS)
        res = read_results(preds / game / PREDS)
        targets += events_per_frame(lab, [T, T])
        for half in (1, 2):
            det = np.full((T, len(CLASSES_V2)), -1.0)
            sel = res[res["half"] == half]
            det[np.minimum(sel["frame"].to_numpy(), T - 1), sel["class_id"].to_numpy()] = sel["confidence"].to_numpy()
            detections.append(det)
    assert_same(average_map(targets, detections, metric="loose"), theirs)


def test_no_predictions_at_all_and_single_tolerance(tmp_path):
    games = scenario_games()
    games = {g: (a, []) for g, (a, _) in games.items()}
    labels, preds = write_tree(tmp_path, games)
    ours, theirs = evaluate(labels, preds, metric="at2"), official(labels, preds, "at2")
    assert_same(ours, theirs)
    assert ours["a_mAP"] == 0.0 and ours["a_mAP_per_class"] == [0.0] * 17


# ---------------------------------------------------------------------------------------------
# Random dense arrays against the official average_mAP (3 classes keep the oracle fast)
# ---------------------------------------------------------------------------------------------
def reference_closest(target: np.ndarray) -> np.ndarray:
    """The official "closest" definition, written out plainly: each event owns the frames from
    (previous + own) // 2 up to (own + next) // 2; a class without events is -1 everywhere."""
    T, C = target.shape
    out = np.full((T, C), -1.0)
    for c in range(C):
        events = np.flatnonzero(target[:, c])
        for i, e in enumerate(events):
            start = 0 if i == 0 else (events[i - 1] + e) // 2
            stop = T if i == len(events) - 1 else (e + events[i + 1]) // 2
            out[start:stop, c] = target[e, c]
    return out


def random_halves(seed: int, *, C: int = 3) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    targets, detections = [], []
    for T in rng.integers(300, 900, size=4):
        t = np.zeros((T, C))
        d = np.full((T, C), -1.0)
        for c in range(C):
            # clusters of events a few frames apart make long greedy chains; some isolated ones
            centres = rng.integers(0, T, size=rng.integers(0, 6))
            frames = np.unique(np.clip(np.concatenate([cc + rng.integers(-12, 12, size=rng.integers(1, 6))
                                                       for cc in centres] or [np.zeros(0, int)]), 0, T - 1))
            t[frames, c] = np.where(rng.random(frames.size) < 0.75, 1.0, -1.0)
            near = np.clip(np.repeat(frames, 2) + rng.integers(-14, 15, size=2 * frames.size), 0, T - 1)
            spots = np.unique(np.concatenate([near, rng.integers(0, T, size=8), [0, T - 1]]))
            d[spots, c] = np.round(rng.random(spots.size), 1)  # many ties, some exactly 0 and 1
        targets.append(t)
        detections.append(d)
    return targets, detections


@pytest.mark.parametrize("seed, metric", [(0, "loose"), (1, "tight"), (2, "tight"), (3, "loose")])
def test_random_dense_matches_official_average_mAP(seed, metric):
    targets, detections = random_halves(seed)
    deltas = {"loose": np.arange(12) * 5 + 5, "tight": np.arange(5) + 1}[metric]
    theirs = official_average_mAP(targets, detections, [reference_closest(t) for t in targets], 2, deltas=deltas)
    ours = average_map(targets, detections, metric=metric)
    assert_same(ours, dict(zip(RESULT_KEYS, theirs)))
    assert ours["a_mAP"] > 0.05


def test_random_tables_every_metric_at_once_equals_one_by_one():
    """Chain-heavy random games: the shared matcher (widest window, masked) = a matcher per metric."""
    rng = np.random.default_rng(7)
    games = []
    for _ in range(3):
        n, m = int(rng.integers(50, 300)), int(rng.integers(50, 600))
        labels = {"half": rng.integers(1, 3, n), "position_ms": rng.integers(0, 600_000, n),
                  "class_id": rng.integers(0, 4, n), "visibility": rng.choice(["visible", "not shown"], n)}
        preds = {"half": rng.integers(1, 3, m), "position_ms": rng.integers(0, 600_000, m),
                 "class_id": rng.integers(0, 4, m), "confidence": np.round(rng.random(m), 1)}
        games.append((labels, preds))
    kw = {"num_frames": (1200, 1200), "num_classes": 4}
    together = average_map_tables(games, metrics=("loose", "tight", "at1", "at3"), **kw)
    for metric, result in together.items():
        assert result == average_map_tables(games, metrics=(metric,), **kw)[metric]
    assert together["loose"]["a_mAP"] > 0.1


def test_progress_reports_every_game(scenario):
    labels, preds, theirs = scenario
    calls = []
    assert_same(evaluate(labels, preds, progress=lambda f, text: calls.append((f, text))), theirs)
    assert [f for f, _ in calls] == [0.0, 0.5, 1.0] and "game two" in calls[1][1]


def test_evaluate_tables_matches_evaluate(scenario):
    labels, preds, _ = scenario
    game = "league/2020-2021/game one"
    lab, res = read_labels(labels / game / LABELS), read_results(preds / game / PREDS)
    one_game = write_tree(labels.parent / "one", {game: (json.loads((labels / game / LABELS).read_text())["annotations"],
                                                         json.loads((preds / game / PREDS).read_text())["predictions"])})
    assert evaluate_tables(lab, res) == evaluate(*one_game)
    # shorter halves clamp both labels and predictions to the last frame
    short = evaluate_tables(lab, res, num_frames=(2000, 3000))
    assert short != evaluate_tables(lab, res)
    with pytest.raises(SpottingError, match="num_frames"):
        evaluate_tables(lab, res, num_frames=(10,))
    with pytest.raises(SpottingError, match="events table: missing column.s. confidence"):
        evaluate_tables(lab, res.drop(columns=["confidence"]))
    # class by name when there is no class_id; an unknown one is named
    assert evaluate_tables(lab.drop(columns=["class_id"]), res.drop(columns=["class_id"])) == evaluate_tables(lab, res)
    relabelled = res.drop(columns=["class_id"]).assign(label=["Dunk"] + res["label"].tolist()[1:])
    with pytest.raises(SpottingError, match="events table: unknown class 'Dunk'"):
        evaluate_tables(lab, relabelled)


# ---------------------------------------------------------------------------------------------
# Errors and the table
# ---------------------------------------------------------------------------------------------
def test_missing_predictions_file_names_the_game(tmp_path):
    labels, preds = write_tree(tmp_path, {"l/s/g1": ([ann(1, 1000, "Goal")], []),
                                          "l/s/g2": ([ann(1, 1000, "Goal")], [])})
    os.remove(preds / "l/s/g2" / PREDS)
    with pytest.raises(SpottingError, match=r"g2: no results_spotting.json") as e:
        evaluate(labels, preds)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("payload, problem", [
    ("{not json", "malformed JSON"),
    (json.dumps({"predictions": [{"half": "1", "position": "10", "label": "Dunk", "confidence": "0.5"}]}),
     "unknown label 'Dunk'"),
    (json.dumps({"predictions": [{"half": "1", "position": "-10", "label": "Goal", "confidence": "0.5"}]}),
     "negative position"),
    (json.dumps({"predictions": [{"half": "3", "position": "10", "label": "Goal", "confidence": "0.5"}]}),
     "half 3 is not 1 or 2"),
    (json.dumps({"UrlLocal": "x"}), "no 'predictions' list"),
])
def test_bad_predictions_file_one_line_error(tmp_path, payload, problem):
    labels, preds = write_tree(tmp_path, {"l/s/g1": ([ann(1, 1000, "Goal")], [])})
    (preds / "l/s/g1" / PREDS).write_text(payload)
    with pytest.raises(SpottingError, match=problem) as e:
        evaluate(labels, preds)
    assert str(preds / "l/s/g1" / PREDS) in str(e.value) and "\n" not in str(e.value)


def test_bad_roots_and_metric(tmp_path):
    with pytest.raises(SpottingError, match="no such file"):
        evaluate(tmp_path / "nope", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpottingError, match="no game folder holds a Labels-v2.json"):
        evaluate(tmp_path / "empty", tmp_path)
    with pytest.raises(SpottingError, match="metric 'medium'"):
        evaluate(tmp_path, tmp_path, metric="medium")
    with pytest.raises(SpottingError, match="shape"):
        average_map([np.zeros((10, 3))], [np.zeros((11, 3))])


def test_format_table_lists_every_class(scenario):
    labels, preds, theirs = scenario
    text = format_table(theirs, "loose")
    lines = text.splitlines()
    assert lines[0] == "Average-mAP (loose)"
    for name, value in zip(CLASSES_V2, theirs["a_mAP_per_class"]):
        row = next(line for line in lines if line.startswith(name + " "))
        assert f"{value:.4f}" in row
    assert lines[-2].split()[1] == f"{theirs['a_mAP']:.4f}" and "17/13" in lines[-1]


# ---------------------------------------------------------------------------------------------
# Real data: the CALF predictions on the SoccerNet-v2 test labels
# ---------------------------------------------------------------------------------------------
def subset_tree(tmp_path: Path, labels_root: Path, preds_root: Path, n: int) -> tuple[Path, Path]:
    """The first `n` games as a tree of symlinked files (no data copied)."""
    games = sorted(str(p.parent.relative_to(labels_root)) for p in labels_root.glob(f"*/*/*/{LABELS}"))[:n]
    for game in games:
        for src, sub, name in ((labels_root, "labels", LABELS), (preds_root, "preds", PREDS)):
            d = tmp_path / sub / game
            d.mkdir(parents=True)
            (d / name).symlink_to((src / game / name).resolve())
    return tmp_path / "labels", tmp_path / "preds"


@pytest.fixture(scope="module")
def real(shared_data):
    root = shared_data / "soccernet-v2"
    return root / "labels" / "test", root / "predictions" / "calf-test"


@pytest.mark.parametrize("metric", ["loose", "tight"])
def test_real_subset_matches_official(real, tmp_path, metric):
    labels, preds = subset_tree(tmp_path, *real, n=5 if metric == "loose" else 3)
    ours, theirs = evaluate(labels, preds, metric=metric), official(labels, preds, metric)
    assert_same(ours, theirs)
    assert ours["a_mAP"] > 0.02


def test_real_all_games_match_published_figures(real):
    """The data README publishes the official figures on all 100 games: loose 0.2630, tight 0.0578."""
    labels, preds = real
    loose, tight = evaluate(labels, preds, metric="loose"), evaluate(labels, preds, metric="tight")
    assert round(loose["a_mAP"], 4) == 0.2630
    assert round(tight["a_mAP"], 4) == 0.0578
    assert evaluate_metrics(labels, preds) == {"loose": loose, "tight": tight}


def test_real_tables_path_equals_files(real, tmp_path):
    labels, preds = subset_tree(tmp_path, *real, n=1)
    game = next(p.parent for p in labels.glob(f"*/*/*/{LABELS}")).relative_to(labels)
    lab, res = read_labels(labels / game / LABELS), read_results(preds / game / PREDS)
    assert len(lab) > 100 and len(res) > 100
    ours = evaluate_tables(lab, res)
    assert ours == evaluate(labels, preds)
    assert 0 < ours["a_mAP"] < 1
