"""Every command, fed the mistakes users make: one line on stderr, exit code 2, no traceback, nothing written.

One table: (command line, what the line must say). Paths in a case are relative to a folder of broken
inputs built once (`bad`): missing files, empty folders, NaN features, 0-byte and text "videos",
truncated JSON, a checkpoint that is not one.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from spotting_core.cli import main
from spotting_core.runtime import ASSETS

DEMO_CKPT = ASSETS / "demo_saliency.pt"


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad")
    (root / "empty").mkdir()
    nan = np.random.default_rng(0).normal(size=(40, 512)).astype(np.float32)
    nan[17, 3] = np.nan
    np.save(root / "nan.npy", nan)
    game = root / "tree" / "league" / "season" / "game"
    game.mkdir(parents=True)
    np.save(game / "1_synth512.npy", nan)
    np.save(game / "2_synth512.npy", nan)
    (game / "Labels-v2.json").write_text("{\"annotations\": [")          # truncated JSON
    (root / "zero.mp4").write_bytes(b"")
    (root / "text.mp4").write_text("not a video\n")
    (root / "not_a_checkpoint.pt").write_bytes(b"\x00garbage" * 10)
    (root / "events.json").write_text(json.dumps({"predictions": "not a list"}))
    (root / "file").write_text("a file where a folder is expected\n")
    (root / "bad_rescorer.json").write_text(json.dumps({"classes": {"Goal": 0.5}, "rescorer": {"windows_s": "x"}}))
    scored = root / "scored" / "league" / "season" / "game"      # predictions without their <half>_scores.npy
    scored.mkdir(parents=True)
    goal = {"gameTime": "1 - 00:10", "label": "Goal", "position": "10000", "half": "1"}
    (scored / "Labels-v2.json").write_text(json.dumps({"annotations": [goal]}))
    (scored / "results_spotting.json").write_text(json.dumps({"predictions": [{**goal, "confidence": "0.8"}]}))
    curves = {"windows_s": [[-2, 2]], "num_classes": 17, "tolerance_s": 5.0, "folds": [[None] * 17],
              "curves": {"fps": 2.0, "own_offsets_s": [0, 2], "all_offsets_s": [0]}}
    (root / "curves_rescorer.json").write_text(json.dumps({"classes": {"Goal": 0.5}, "rescorer": curves}))
    return root


# (argv, substring of the one error line); "{bad}" is the folder above, "{ckpt}" the demo checkpoint
CASES = [
    # evaluate
    (["evaluate", "{bad}/missing", "{bad}/empty"], "missing"),
    (["evaluate", "{bad}/tree", "{bad}/empty"], ""),
    (["evaluate", "{bad}/empty", "{bad}/empty", "--metric", "nope"], "invalid choice"),
    (["evaluate", "{bad}/empty", "{bad}/empty", "--thresholds", "{bad}/bad_rescorer.json"], "context rescorer"),
    (["evaluate", "{bad}/scored", "{bad}/scored", "--thresholds", "{bad}/curves_rescorer.json"], "_scores.npy"),
    # synth
    (["synth", "{bad}/out", "--games", "0"], "games"),
    (["synth", "{bad}/out", "--half-minutes", "-1"], "minutes"),
    (["synth", "{bad}/out", "--games", "two"], "invalid int"),
    # models
    (["models", "--input-dim", "0"], "input"),
    # train
    (["train", "--model", "NO_SUCH_MODEL", "--data", "{bad}/tree", "--out", "{bad}/x.pt"], "netvlad++"),
    (["train", "--model", "netvlad++", "--data", "{bad}/missing", "--out", "{bad}/x.pt"], "missing"),
    (["train", "--model", "netvlad++", "--data", "{bad}/empty", "--out", "{bad}/x.pt"], ""),
    (["train", "--model", "netvlad++", "--data", "{bad}/tree", "--out", "{bad}/x.pt", "--set", "lr"], "KEY=VALUE"),
    (["train", "--model", "netvlad++", "--data", "{bad}/tree", "--out", "{bad}/x.pt", "--set", "nope=1"], "nope"),
    (["train", "--model", "netvlad++", "--data", "{bad}/tree", "--out", "{bad}/x.pt", "--epochs", "0"], "epochs"),
    # import-official
    (["import-official", "{bad}/missing.pth.tar", "--out", "{bad}/x.pt"], "missing"),
    (["import-official", "{bad}/not_a_checkpoint.pt", "--out", "{bad}/x.pt"], "not_a_checkpoint"),
    # spot
    (["spot", "{bad}/nan.npy", "--checkpoint", "{ckpt}", "--out", "{bad}/o"], "frame 17"),
    (["spot", "{bad}/nan.npy", "--checkpoint", "{bad}/missing.pt", "--out", "{bad}/o"], "missing"),
    (["spot", "{bad}/nan.npy", "--checkpoint", "{bad}/not_a_checkpoint.pt", "--out", "{bad}/o"], "checkpoint"),
    (["spot", "{bad}/nan.npy", "--checkpoint", "soccernet-no-such", "--out", "{bad}/o"], "not found"),
    (["spot", "{bad}/zero.mp4", "--checkpoint", "{ckpt}", "--out", "{bad}/o"], "zero.mp4"),
    (["spot", "{bad}/text.mp4", "--checkpoint", "{ckpt}", "--out", "{bad}/o"], "text.mp4"),
    (["spot", "{bad}/empty", "--checkpoint", "{ckpt}", "--out", "{bad}/o"], "empty"),
    (["spot", "{bad}/missing.mp4", "--checkpoint", "{ckpt}", "--out", "{bad}/o"], "missing"),
    # features
    (["features", "{bad}/zero.mp4", "--backbone", "NO_SUCH_BACKBONE"], "NO_SUCH_BACKBONE"),
    (["features", "{bad}/zero.mp4", "--out", "{bad}/f.npy"], "zero.mp4"),
    (["features", "{bad}/missing.mp4", "--out", "{bad}/f.npy"], "missing"),
    # reel
    (["reel", "{bad}/text.mp4", "--events", "{bad}/events.json", "--out", "{bad}/r.mp4"], ""),
    (["reel", "{bad}/missing.mp4", "--events", "{bad}/events.json", "--out", "{bad}/r.mp4"], "missing"),
    (["reel", "{bad}/zero.mp4", "--events", "{bad}/events.json", "--out", "{bad}/r.mp4", "--mode", "slow"],
     "invalid choice"),
    # calibrate
    (["calibrate", "{bad}/missing", "{bad}/empty", "--out", "{bad}/t.json"], "missing"),
    (["calibrate", "{bad}/empty", "{bad}/empty", "--out", "{bad}/t.json"], ""),
    (["calibrate", "{bad}/tree", "{bad}/empty", "--out", "{bad}/t.json", "--tolerance", "-1"], "tolerance"),
    # batch (the usage is checked before Ray starts)
    (["batch", "{bad}/empty", "--checkpoint", "{ckpt}"], "empty"),
    (["batch", "{bad}/missing", "--checkpoint", "{ckpt}"], "missing"),
    (["batch", "{bad}/tree", "--checkpoint", "{bad}/missing.pt"], "missing"),
    (["batch", "{bad}/tree", "--checkpoint", "{ckpt}", "--workers", "0"], "workers"),
    # shots
    (["shots", "{bad}/zero.mp4"], "zero.mp4"),
    (["shots", "{bad}/text.mp4"], "text.mp4"),
    (["shots", "{bad}/missing.mp4"], "missing"),
    (["shots", "{bad}/zero.mp4", "--detector", "magic"], "invalid choice"),
    # pretrained
    (["pretrained", "fetch", "NO_SUCH_ENTRY"], "soccernet-netvlad++"),
    (["pretrained", "import", "soccernet-maxpool-v2", "{bad}/missing.pth.tar"], "missing"),
    (["pretrained", "import", "soccernet-maxpool-v2", "{bad}/not_a_checkpoint.pt"], "not_a_checkpoint"),
    (["pretrained", "nope"], "invalid choice"),
    # no command at all
    ([], "required"),
]


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as e:         # argparse's usage errors
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("argv,says", CASES, ids=[" ".join(c[0][:2]) + f"#{i}" for i, c in enumerate(CASES)])
def test_bad_input_is_one_line_and_exit_2(bad, argv, says, monkeypatch, tmp_path):
    monkeypatch.setenv("SPOTTING_CACHE", str(tmp_path / "cache"))
    before = sorted(p.relative_to(bad) for p in bad.rglob("*"))
    argv = [a.format(bad=bad, ckpt=DEMO_CKPT) for a in argv]
    rc, out, err = _run(argv)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning:")]
    assert rc == 2, (argv, rc, err[-2000:])
    assert len(lines) == 1, (argv, err[-2000:])
    assert "Traceback" not in err and lines[0].startswith("error:"), err
    assert says.lower() in lines[0].lower(), (says, lines[0])
    after = sorted(p.relative_to(bad) for p in bad.rglob("*"))
    assert after == before, f"{argv} wrote {set(after) - set(before)}"


def test_every_command_has_a_bad_input_case():
    from spotting_core.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    covered = {argv[0] for argv, _ in CASES if argv}
    assert set(sub.choices) - covered <= {"download", "demo"}, set(sub.choices) - covered
