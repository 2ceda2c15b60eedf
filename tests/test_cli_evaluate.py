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
