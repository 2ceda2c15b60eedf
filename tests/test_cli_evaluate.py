"""`spotting evaluate LABELS PREDICTIONS [--metric] [--json]`: output, exit codes, one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from spotting_core.cli import main
from spotting_core.engine.evaluate import evaluate
from spotting_core.engine.metrics import RESULT_KEYS
from spotting_core.io.soccernet import CLASSES_V2

GAME = "league/2019-2020/home 1 - 0 away"


def write_game(root, annotations, predictions):
    for sub, name, payload in (("labels", "Labels-v2.json", {"UrlLocal": GAME, "annotations": annotations}),
                               ("preds", "results_spotting.json", {"UrlLocal": GAME, "predictions": predictions})):
        (root / sub / GAME).mkdir(parents=True, exist_ok=True)
        (root / sub / GAME / name).write_text(json.dumps(payload))
    return root / "labels", root / "preds"


@pytest.fixture()
def game(tmp_path):
    anns = [{"gameTime": "1 - 01:00", "label": "Goal", "position": "60000", "visibility": "visible"},
            {"gameTime": "1 - 02:00", "label": "Corner", "position": "120000", "visibility": "not shown"},
            {"gameTime": "2 - 10:00", "label": "Foul", "position": "600000", "visibility": "visible"}]
    preds = [{"gameTime": "1 - 01:02", "label": "Goal", "position": "62000", "half": "1", "confidence": "0.9"},
             {"gameTime": "1 - 02:20", "label": "Corner", "position": "140000", "half": "1", "confidence": "0.4"},
             {"gameTime": "2 - 20:00", "label": "Foul", "position": "1200000", "half": "2", "confidence": "0.8"}]
    return write_game(tmp_path, anns, preds)


def test_json_output_via_python_m(game):
    labels, preds = game
    out = subprocess.run([sys.executable, "-m", "spotting_core", "evaluate", str(labels), str(preds), "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    assert list(results) == list(RESULT_KEYS)
    assert results == evaluate(labels, preds)
    assert len(results["a_mAP_per_class"]) == 17 and results["a_mAP_per_class"][2] > 0.9  # the Goal is found


def test_tight_and_zip_inputs(game, tmp_path, capsys):
    labels, preds = game
    zipped = shutil.make_archive(str(tmp_path / "preds_zip"), "zip", preds)
    assert main(["evaluate", str(labels), zipped, "--metric", "tight", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == evaluate(labels, preds, metric="tight")


def test_table_output(game, capsys):
    labels, preds = game
    assert main(["evaluate", str(labels), str(preds)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Average-mAP (loose)")
    assert all(name in out for name in CLASSES_V2)
    expected = evaluate(labels, preds)["a_mAP"]
    assert out.strip().splitlines()[-2].split()[1] == f"{expected:.4f}"


@pytest.mark.parametrize("breakage, message", [
    ("missing_preds", "no results_spotting.json for this game"),
    ("bad_json", "malformed JSON"),
    ("unknown_label", "unknown label 'Dunk'"),
    ("no_labels_root", "no such file or folder"),
])
def test_bad_input_exit_2_one_line(game, capsys, breakage, message):
    labels, preds = game
    pred_file = preds / GAME / "results_spotting.json"
    if breakage == "missing_preds":
        pred_file.unlink()
    elif breakage == "bad_json":
        pred_file.write_text('{"predictions": [')
    elif breakage == "unknown_label":
        pred_file.write_text(json.dumps({"predictions": [
            {"half": "1", "position": "1000", "label": "Dunk", "confidence": "0.5"}]}))
    elif breakage == "no_labels_root":
        labels = labels.parent / "nowhere"
    assert main(["evaluate", str(labels), str(preds), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_bad_input_subprocess_has_no_traceback(game):
    labels, preds = game
    (preds / GAME / "results_spotting.json").write_text("{broken")
    out = subprocess.run([sys.executable, "-m", "spotting_core", "evaluate", str(labels), str(preds)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stdout == "" and len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr and "malformed JSON" in out.stderr


def test_metric_all_one_call_keyed_by_metric(game, capsys):
    labels, preds = game
    assert main(["evaluate", str(labels), str(preds), "--metric", "all", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert list(results) == ["loose", "tight"]
    assert results["loose"] == evaluate(labels, preds, metric="loose")
    assert results["tight"] == evaluate(labels, preds, metric="tight")
    assert main(["evaluate", str(labels), str(preds), "--metric", "all"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Average-mAP (loose)") and "\n\nAverage-mAP (tight)" in out


def imported_modules(args: list[str]) -> set[str]:
    """Every module a fresh `python -X importtime -m spotting_core ARGS` process imports."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "spotting_core", *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return {line.rsplit("|", 1)[1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("heavy", ["torch", "pandas"])
def test_the_metric_process_never_imports_torch_or_pandas(game, heavy):
    """`spotting evaluate` (and `spotting --help`) stay light: every CLI module imports its library lazily."""
    labels, preds = game
    evaluate_modules = imported_modules(["evaluate", str(labels), str(preds), "--metric", "all", "--json"])
    assert "spotting_core.engine.metrics" in evaluate_modules  # the check sees the metric's imports
    for modules in (evaluate_modules, imported_modules(["--help"])):
        assert not {m for m in modules if m == heavy or m.startswith(heavy + ".")}


def test_real_metric_all_process_equals_official(shared_data, tmp_path):
    """Real CALF test predictions, 3 games: one whole `--metric all` process = the official
    evaluator (SoccerNet package) to 1e-9 on every figure, per class and visible/unshown included."""
    np = pytest.importorskip("numpy")
    from SoccerNet.Evaluation.ActionSpotting import evaluate as official_evaluate
    from SoccerNet.Evaluation.utils import EVENT_DICTIONARY_V2

    root = shared_data / "soccernet-v2"
    games = sorted(p.parent.relative_to(root / "labels" / "test")
                   for p in (root / "labels" / "test").glob("*/*/*/Labels-v2.json"))[:3]
    assert games
    for game in games:  # symlinks: no data copied
        for src, sub, name in (("labels/test", "labels", "Labels-v2.json"),
                               ("predictions/calf-test", "preds", "results_spotting.json")):
            (tmp_path / sub / game).mkdir(parents=True)
            (tmp_path / sub / game / name).symlink_to(root / src / game / name)
    labels, preds = tmp_path / "labels", tmp_path / "preds"
    out = subprocess.run([sys.executable, "-m", "spotting_core", "evaluate", str(labels), str(preds),
                          "--metric", "all", "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    ours = json.loads(out.stdout)
    assert list(ours) == ["loose", "tight"]
    for metric, result in ours.items():
        theirs = official_evaluate(str(labels), str(preds), prediction_file="results_spotting.json", dataset=None,
                                   version=2, metric=metric, EVENT_DICTIONARY=EVENT_DICTIONARY_V2,
                                   label_files="Labels-v2.json")
        assert list(result) == list(RESULT_KEYS)
        for key in RESULT_KEYS:
            a, b = np.atleast_1d(result[key]), np.atleast_1d(np.asarray(theirs[key], dtype=float))
            assert a.shape == b.shape and np.abs(a - b).max() <= 1e-9, (metric, key)
        assert result["a_mAP"] > 0.01
