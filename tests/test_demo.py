"""The shipped demo checkpoint matches the data `spotting_core.synth.demo` generates, and the cache notices when not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spotting_core.engine.games import find_splits, load_games
from spotting_core.engine.train import evaluate_games
from spotting_core.io.remote import sha256_file
from spotting_core.io.soccernet import RESULTS_FILE
from spotting_core.models import load_checkpoint, read_checkpoint
from spotting_core.synth import demo, demo_model
from spotting_core.synth.benchmark import generate

# The demo checkpoint scores ~0.5 loose Average-mAP on fresh games of its generator; one trained on
# an older generator scored ~0.1. Below this floor the editors' demo shows no clear peaks.
SCORE_FLOOR = 0.3


@pytest.fixture(scope="module")
def recipe() -> dict:
    return demo_model.demo_recipe()


def test_shipped_checkpoint_records_the_current_recipe(recipe):
    assert demo_model.DEMO_CHECKPOINT.is_file(), "assets/demo_saliency.pt is missing"
    ckpt = read_checkpoint(demo_model.DEMO_CHECKPOINT)
    assert ckpt["model"] == demo_model.DEMO_TRAIN["model"]
    assert ckpt["features"] == {"name": recipe["feature_name"], "dim": demo_model.DEMO_BENCHMARK["dim"]}
    assert ckpt["config"]["input_dim"] == demo_model.DEMO_BENCHMARK["dim"]
    assert ckpt["fps"] == ckpt["config"]["fps"] == recipe["fps"]
    assert demo_model.checkpoint_recipe(demo_model.DEMO_CHECKPOINT) == recipe, (
        "assets/demo_saliency.pt was trained on another synth generator or demo benchmark; retrain it with "
        "`python -m spotting_core.synth.demo --train assets/demo_saliency.pt` (assets/README.md)")
    assert demo_model.DEMO_CHECKPOINT.stat().st_size < 3 * 2**20


def test_shipped_checkpoint_spots_fresh_games_of_the_demo_generator(tmp_path):
    # same seed and dim as the demo benchmark, so the same motifs; these 3 games' timelines and noise are new
    b = demo_model.DEMO_BENCHMARK
    root = generate(tmp_path / "fresh", games=3, seed=b["seed"], half_minutes=b["half_minutes"], dim=b["dim"])
    splits = find_splits(root)
    names = splits["train"] + splits["valid"] + splits["test"]
    model, _ = load_checkpoint(demo_model.DEMO_CHECKPOINT)
    games = load_games(root, names, demo_model.demo_recipe()["feature_name"])
    score = evaluate_games(model, games, metrics=("loose",))["loose"]
    assert score > SCORE_FLOOR, f"demo checkpoint: loose Average-mAP {score:.3f} on fresh demo-generator games"


def test_generator_fingerprint_follows_the_generator_output(monkeypatch, recipe):
    assert demo_model.generator_fingerprint() == recipe["generator"]  # deterministic
    monkeypatch.setitem(demo_model.DEMO_BENCHMARK, "seed", demo_model.DEMO_BENCHMARK["seed"] + 1)
    assert demo_model.generator_fingerprint() != recipe["generator"]


def _fake_built(folder: Path, recipe: dict, checkpoint: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RESULTS_FILE).write_text("{}")
    (folder / "demo.json").write_text(json.dumps({
        "version": demo.DEMO_VERSION, "recipe": recipe, "checkpoint": str(checkpoint),
        "checkpoint_sha256": sha256_file(checkpoint)}))


def test_cached_demo_is_rebuilt_when_recipe_or_checkpoint_changes(tmp_path, recipe):
    checkpoint = tmp_path / "ckpt.pt"
    checkpoint.write_bytes(b"weights v1")
    folder = tmp_path / "demo"
    _fake_built(folder, recipe, checkpoint)
    assert demo._is_built(folder)
    checkpoint.write_bytes(b"weights v2")            # a retrained checkpoint
    assert not demo._is_built(folder)
    _fake_built(folder, {**recipe, "generator": "0" * 64}, checkpoint)  # an older generator
    assert not demo._is_built(folder)
    _fake_built(folder, recipe, checkpoint)
    assert demo._is_built(folder)


def test_concurrent_first_starts_build_the_demo_once(tmp_path, monkeypatch):
    """Three sessions at once on a fresh cache (two threads of this process and another process): one
    build, the same complete folder for all, nothing half-built left behind."""
    import subprocess
    import sys
    import threading

    monkeypatch.setenv("SPOTTING_CACHE", str(tmp_path / "cache"))
    calls, results, errors = [], [], []
    real = demo._build
    monkeypatch.setattr(demo, "_build", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    other = subprocess.Popen([sys.executable, "-m", "spotting_core", "demo"], stdout=subprocess.PIPE, text=True,
                             env={**__import__("os").environ, "SPOTTING_CACHE": str(tmp_path / "cache")})
    seen = []

    def session():
        try:
            results.append(demo.ensure_demo(progress=lambda f, text: seen.append(text)))
        except Exception as e:  # any failure of a session is the bug under test
            errors.append(repr(e))

    threads = [threading.Thread(target=session) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out, _ = other.communicate(timeout=300)
    assert not errors and other.returncode == 0
    assert {str(r) for r in results} == {out.strip()} == {str(tmp_path / "cache" / "demo")}
    assert len(calls) <= 1                         # this process built it at most once (or the other did)
    demo.check_demo(results[0])
    assert not list((tmp_path / "cache").glob(".demo-build-*")) and not list((tmp_path / "cache").glob(".demo-old-*"))
