"""`spotting batch` (engine/batch.py, engine/batch_ray.py, cli/batch.py): a generated season on a local
Ray with 2 CPUs (one Ray for the module), a broken game that fails alone, a rerun that skips, a
worker killed mid-batch, a bad address; and, without Ray, what counts as done."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from spotting_core.engine.batch import BatchWorker, find_units, is_done, pending, spot_job
from spotting_core.io.soccernet import CLASSES_V2, LABELS_FILE, RESULTS_FILE

BROKEN = "test/synthetic-league/season-0/game-003"


@pytest.fixture(scope="module")
def season(tmp_path_factory):
    """4 generated games (2 x 2 min, 16-d); the last one's half 1 is not an .npy file; a tiny checkpoint."""
    from spotting_core.models import build_model, save_checkpoint
    from spotting_core.synth.benchmark import feature_name, generate

    root = tmp_path_factory.mktemp("season")
    tree = generate(root / "tree", games=4, seed=0, half_minutes=2, dim=16)
    (tree / BROKEN / "1_synth16.npy").write_bytes(b"\x93NUMPY truncated")
    model = build_model("netvlad++", input_dim=16, num_classes=len(CLASSES_V2), fps=2)
    ckpt = save_checkpoint(root / "nv.pt", model, classes=CLASSES_V2, feature_name=feature_name(16))
    return tree, ckpt


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield ray
    ray.shutdown()


def good_games(tree: Path) -> list[str]:
    return [u.game for u in find_units(tree) if u.game != BROKEN]


def test_batch_spots_the_good_games_names_the_broken_one_and_resumes(season, local_ray, tmp_path, capsys):
    from spotting_core.cli import main
    from spotting_core.engine.evaluate import evaluate
    from spotting_core.engine.spot import spot_path

    tree, ckpt = season
    out = tmp_path / "out"
    argv = ["batch", str(tree), "--checkpoint", str(ckpt), "--out", str(out), "--workers", "2", "--json"]
    assert main(argv) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["done"] == 3 and summary["skipped"] == 0
    assert [f["game"] for f in summary["failed"]] == [BROKEN]
    assert "1_synth16.npy: not a readable .npy array" in summary["failed"][0]["error"]
    assert not (out / BROKEN / RESULTS_FILE).exists()
    for game in good_games(tree):                        # exactly what `spotting spot` writes for the game
        alone = spot_path(tree / game, checkpoint=ckpt, out_dir=tmp_path / "alone" / game)
        ours = json.loads((out / game / RESULTS_FILE).read_text())["predictions"]
        assert ours == json.loads((alone / RESULTS_FILE).read_text())["predictions"]
        assert (out / game / "1_scores.npy").read_bytes() == (alone / "1_scores.npy").read_bytes()
        (tmp_path / "labels" / game).mkdir(parents=True)
        shutil.copy(tree / game / LABELS_FILE, tmp_path / "labels" / game / LABELS_FILE)
    assert evaluate(tmp_path / "labels", out) == evaluate(tmp_path / "labels", tmp_path / "alone")

    manifests = {g: (out / g / "batch_manifest.json").stat().st_mtime_ns for g in good_games(tree)}
    assert main(argv) == 1                               # the broken game is tried again, and fails again
    again = json.loads(capsys.readouterr().out)
    assert again["done"] == 0 and again["skipped"] == 3 and [f["game"] for f in again["failed"]] == [BROKEN]
    assert manifests == {g: (out / g / "batch_manifest.json").stat().st_mtime_ns for g in good_games(tree)}


def test_a_worker_killed_mid_batch_still_completes_every_good_game(season, local_ray, tmp_path):
    from spotting_core.engine.batch_ray import run_batch

    tree, ckpt = season
    started = []

    def kill_one(workers):                              # the first games are already queued on both
        started.extend(w["pid"] for w in workers)
        os.kill(workers[1]["pid"], signal.SIGKILL)

    summary = run_batch(tree, job=spot_job(ckpt), checkpoint=ckpt, out=tmp_path / "out", workers=2,
                        on_started=kill_one)
    assert summary["done"] == 3 and [f["game"] for f in summary["failed"]] == [BROKEN]
    assert "not a readable .npy array" in summary["failed"][0]["error"]   # its reason, not the kill's
    assert all((tmp_path / "out" / g / RESULTS_FILE).is_file() for g in good_games(tree))
    pids = {r["pid"] for r in summary["records"]}
    assert started[1] not in pids and pids - set(started)   # the killed worker's games ran on its restart


def test_an_address_with_nothing_behind_it_is_one_line_and_exit_2(season, tmp_path):
    tree, ckpt = season
    with socket.socket() as s:                           # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run([sys.executable, "-m", "spotting_core", "batch", str(tree), "--checkpoint", str(ckpt),
                           "--out", str(tmp_path / "out"), "--address", f"ray://127.0.0.1:{port}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith(f"error: --address ray://127.0.0.1:{port}: nothing answers")
    assert not (tmp_path / "out").exists()


def test_auto_with_a_dead_recorded_head_is_one_line_not_a_hang(season, tmp_path):
    """`--address auto` joins RAY_ADDRESS, else the head `ray start` recorded; a dead one used to hang."""
    tree, ckpt = season
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "RAY_ADDRESS": f"127.0.0.1:{port}"}
    proc = subprocess.run([sys.executable, "-m", "spotting_core", "batch", str(tree), "--checkpoint", str(ckpt),
                           "--out", str(tmp_path / "out"), "--address", "auto"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("error: --address auto: the Ray head recorded on this machine")
    assert f":{port}, does not answer" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_what_counts_as_done(season, tmp_path):
    """Without Ray: a killed write (no manifest), another checkpoint, a changed input: all redone."""
    tree, ckpt = season
    job = spot_job(ckpt)
    units = [u for u in find_units(tree, tmp_path / "out") if u.game != BROKEN]
    worker = BatchWorker(job, str(ckpt), threads=1)
    assert {worker.run(u)["status"] for u in units} == {"done"}
    assert pending(units, job) == ([], units)
    first = units[0]
    (Path(first.out) / ".batch-leftover").mkdir()         # what a killed worker leaves: never counts
    (Path(first.out) / "batch_manifest.json").unlink()    # killed after moving the outputs, before the manifest
    assert not is_done(first, job)
    other = dict(job, checkpoint={"name": "other.pt", "sha256": "0" * 64})
    assert not any(is_done(u, other) for u in units)
    feats = Path(first.src) / "2_synth16.npy"
    os.utime(feats, ns=(feats.stat().st_atime_ns, feats.stat().st_mtime_ns + 10**9))
    assert worker.run(first)["status"] == "done" and is_done(first, job)
    assert not (Path(first.out) / ".batch-leftover").exists()
    os.utime(feats, ns=(feats.stat().st_atime_ns, feats.stat().st_mtime_ns + 10**9))
    assert not is_done(first, job)                        # the input changed after it was spotted
    assert pending(units, job)[0] == [first]


def test_features_only_then_spot_a_season_of_videos(tmp_path, monkeypatch):
    """Without Ray: the workers' two jobs on generated half videos (decoding and the backbone run in
    the worker); the feature tree they write is a SoccerNet-layout tree that a spotting batch reads.
    The features go through the videos' feature cache, so nothing after the first job extracts again."""
    import numpy as np

    from spotting_core.engine.batch import features_job
    from spotting_core.features import extract as fx
    from spotting_core.features.extract import extract_cached, extract_features
    from spotting_core.models import build_model, save_checkpoint
    from spotting_core.synth.toys import write_toy_video

    game = tmp_path / "videos" / "league" / "game-1"
    game.mkdir(parents=True)
    for half in (1, 2):
        write_toy_video(game / f"{half}_224p.mkv", [(1.0, half)], duration_s=4, seed=half)
    job = features_job("mobilenetv2-offline")
    (unit,) = find_units(tmp_path / "videos", tmp_path / "features", video_suffix="")
    record = BatchWorker(job, threads=1).run(unit)
    assert record["status"] == "done", record
    feats = np.load(tmp_path / "features" / "league" / "game-1" / "2_mobilenetv2-offline.npy")
    direct = extract_features(game / "2_224p.mkv", backbone="mobilenetv2-offline")
    assert feats.shape == (8, 1280) and np.array_equal(feats, direct)
    assert pending([unit], job) == ([], [unit])
    out = tmp_path / "features" / "league" / "game-1"
    assert (out / ".2_mobilenetv2-offline.npy.json").is_file()      # the cache's sidecar travels with the array
    assert (game / "2_mobilenetv2-offline.npy").samefile(out / "2_mobilenetv2-offline.npy")  # linked, not copied

    def no_network(*args, **kwargs):
        raise AssertionError("features were extracted again")
    monkeypatch.setattr(fx, "load_network", no_network)               # from here on, every read is a cache hit
    assert np.array_equal(extract_cached([game / "1_224p.mkv", game / "2_224p.mkv"],
                                         backbone="mobilenetv2-offline")[1], feats)
    (in_place,) = find_units(tmp_path / "videos")                      # default output: the game folder itself
    assert BatchWorker(job, threads=1).run(in_place)["status"] == "done" and is_done(in_place, job)

    model = build_model("maxpool", input_dim=1280, num_classes=len(CLASSES_V2), fps=2)
    ckpt = save_checkpoint(tmp_path / "mp.pt", model, classes=CLASSES_V2, feature_name="mobilenetv2-offline")
    spot = spot_job(ckpt)
    (on_features,) = find_units(tmp_path / "features")
    assert BatchWorker(spot, str(ckpt), threads=1).run(on_features)["status"] == "done"
    scores = np.load(Path(on_features.out) / "1_scores.npy")
    assert scores.shape == (8, len(CLASSES_V2)) and is_done(on_features, spot) and is_done(unit, job)
    (on_videos,) = find_units(tmp_path / "videos", tmp_path / "from-videos")   # the same game, from its videos
    assert BatchWorker(spot, str(ckpt), threads=1).run(on_videos)["status"] == "done"
    assert np.array_equal(np.load(Path(on_videos.out) / "1_scores.npy"), scores)
    assert is_done(on_videos, spot)          # its inputs: the videos it read (their features are cached since)


def test_bad_usage_is_exit_2_before_any_ray(season, tmp_path, capsys):
    from spotting_core.cli import main

    tree, ckpt = season
    (tmp_path / "empty").mkdir()
    cases = [(["batch", str(tmp_path / "empty"), "--checkpoint", str(ckpt)], "no games"),
             (["batch", str(tree), "--checkpoint", str(tmp_path / "missing.pt")], "checkpoint not found"),
             (["batch", str(tree), "--checkpoint", str(ckpt), "--workers", "0"], "--workers 0"),
             (["batch", str(tree), "--features-only"], "--features-only needs --backbone")]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1, err
