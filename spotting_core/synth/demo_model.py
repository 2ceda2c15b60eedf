"""The demo's model: the synthetic benchmark it was trained on, its recipe guard, training and calibration.

    demo_checkpoint(recipe)          the shipped `assets/demo_saliency.pt` when it fits the current
                                     generator, else one trained here (cached per recipe)
    demo_game_index()                the demo match: the benchmark's first test game
    calibrate_checkpoint(path, bench) record its operating points (per-class thresholds fitted on the
                                     benchmark's valid games, engine/calibrate.py) in its `extra`

`python -m spotting_core.synth.demo --train OUT` rebuilds the shipped checkpoint, `--calibrate CKPT`
records the thresholds of an existing one (assets/README.md).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from spotting_core.io.soccernet import FPS, LABELS_FILE
from spotting_core.runtime import ASSETS, cache_path

Progress = Callable[[float, str], None]


# The synthetic benchmark behind the demo: `spotting synth <dir> --games 500 --seed 7 --half-minutes 5`
# (300 train / 100 valid / 100 test games; the demo match is the first test game, game 400: `demo_game_index()`).
DEMO_BENCHMARK = {"games": 500, "seed": 7, "half_minutes": 5.0, "dim": 512}
DEMO_CHECKPOINT = ASSETS / "demo_saliency.pt"
# How the shipped checkpoint was trained: `python -m spotting_core.synth.demo --train assets/demo_saliency.pt`.
# A 4 s clip (the paper's 15 s blurs where an event is: a clip is positive wherever the event falls in
# it; bench/demo_recipes.py chose 4 s over 2, 3, 6, 8 and 12 s on the valid games only), a 10 s NMS, and the
# best epoch chosen on the tight (1-5 s) Average-mAP: editors want seconds.
DEMO_TRAIN = {"model": "saliency", "epochs": 40, "eval_every": 1, "patience": 8, "seed": 0,
              "max_train_s": 600.0, "valid_metric": "tight",
              "model_options": {"embed_dim": "128", "window_s": "4", "nms_window_s": "10"}}


def generate_benchmark(out: Path, *, progress: Progress | None = None, only: list[int] | None = None) -> Path:
    """The demo benchmark (`only`: just these game indices, each as in the whole benchmark)."""
    from spotting_core.synth.benchmark import generate

    return generate(out, games=DEMO_BENCHMARK["games"], seed=DEMO_BENCHMARK["seed"],
                    half_minutes=DEMO_BENCHMARK["half_minutes"], dim=DEMO_BENCHMARK["dim"], progress=progress,
                    only=only)


def demo_game_index() -> int:
    """The demo match: the benchmark's first test game (after its train and valid games)."""
    from spotting_core.synth.benchmark import split_sizes

    n_train, n_valid, _ = split_sizes(DEMO_BENCHMARK["games"])
    return n_train + n_valid


def generator_fingerprint() -> str:
    """sha256 of what `synth.generate` writes for a tiny tree with the demo's seed and dim.

    Any change of the generator's output (motifs, signatures, noise, timelines, parameters)
    changes it; a refactor that writes the same bytes does not. A few hundredths of a second.
    """
    from spotting_core.synth.benchmark import feature_name, generate

    h = hashlib.sha256()
    with tempfile.TemporaryDirectory(prefix="spotting-demo-fp-") as tmp:
        root = generate(Path(tmp) / "fp", games=3, seed=DEMO_BENCHMARK["seed"], half_minutes=0.5,
                        dim=DEMO_BENCHMARK["dim"])
        name = feature_name(DEMO_BENCHMARK["dim"])
        for f in sorted(root.rglob("*")):
            if f.is_file() and (f.name == LABELS_FILE or f.name.endswith(f"_{name}.npy")):
                h.update(f.relative_to(root).as_posix().encode())
                h.update(np.load(f).tobytes() if f.suffix == ".npy" else f.read_bytes())
        params = json.loads((root / "synth.json").read_text())["params"]
    h.update(json.dumps(params, sort_keys=True).encode())
    return h.hexdigest()


def demo_recipe() -> dict:
    """What the demo data is made of, as the current code makes it: compared with the checkpoint's."""
    from spotting_core.synth.benchmark import feature_name

    return {"benchmark": dict(DEMO_BENCHMARK), "feature_name": feature_name(DEMO_BENCHMARK["dim"]), "fps": FPS,
            "generator": generator_fingerprint()}


def checkpoint_recipe(path: Path) -> dict | None:
    """The demo recipe a checkpoint was trained on (None when it records none)."""
    from spotting_core.models import read_checkpoint

    return read_checkpoint(path).get("extra", {}).get("demo_recipe")


def demo_train_config(bench: Path, out: Path, *, overrides: dict | None = None):
    """The `TrainConfig` of the demo model on the benchmark: DEMO_TRAIN, with `overrides` (TrainConfig
    fields, and "model_options" merged into DEMO_TRAIN's) for bench/demo_recipes.py's variants."""
    from spotting_core.engine.train import TrainConfig
    from spotting_core.synth.benchmark import feature_name

    recipe = {**DEMO_TRAIN, **(overrides or {})}
    recipe["model_options"] = {**DEMO_TRAIN["model_options"], **(overrides or {}).get("model_options", {})}
    return TrainConfig(data=str(bench), features=feature_name(DEMO_BENCHMARK["dim"]), out=str(out), **recipe)


def train_demo_checkpoint(bench: Path, out: Path, *, progress: Progress | None = None) -> dict:
    """Train the demo model on the benchmark, as `spotting train` does (see assets/README.md).

    Returns fit's result (best valid and test Average-mAP, epochs, seconds); the checkpoint records
    them and the recipe (`demo_recipe()`) in its `extra`.
    """
    from spotting_core.engine.train import fit

    result = fit(demo_train_config(bench, out), progress=progress)
    label_checkpoint(out, result=result)
    return result


def label_checkpoint(path: Path, *, result: dict | None = None) -> Path:
    """Record in the checkpoint what it was trained on (fit records the temporary folder's path)."""
    import torch

    from spotting_core.models import read_checkpoint

    ckpt = read_checkpoint(path)
    b = DEMO_BENCHMARK
    ckpt["extra"]["data"] = (f"synthetic benchmark (spotting synth --games {b['games']} --seed {b['seed']} "
                             f"--half-minutes {b['half_minutes']:g} --dim {b['dim']}), train split")
    ckpt["extra"]["demo_recipe"] = demo_recipe()
    if result is not None:
        ckpt["extra"]["fit"] = {"best_epoch": result["best_epoch"], "epochs": result["epochs"],
                                "train_s": round(float(result["train_s"]), 1),
                                f"valid_a_mAP_{DEMO_TRAIN['valid_metric']}":
                                    float(result[f"best_valid_a_mAP_{DEMO_TRAIN['valid_metric']}"]),
                                **{f"test_a_mAP_{k}": float(v) for k, v in result.get("test", {}).items()}}
    torch.save(ckpt, path)
    return path


def demo_checkpoint(recipe: dict, progress: Progress | None = None) -> Path:
    """The shipped checkpoint when it was trained on this recipe, else one trained here (cached per
    recipe) on the whole benchmark, generated for it in a temporary folder."""
    if DEMO_CHECKPOINT.is_file() and checkpoint_recipe(DEMO_CHECKPOINT) == recipe:
        return DEMO_CHECKPOINT
    cached = cache_path("checkpoints") / f"demo_saliency-{recipe['generator'][:12]}.pt"
    if not (cached.is_file() and checkpoint_recipe(cached) == recipe):
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="spotting-demo-bench-", dir=cached.parent) as tmp:
            bench = generate_benchmark(Path(tmp) / "bench", progress=progress_part(progress, 0.0, 0.1))
            train_demo_checkpoint(bench, cached, progress=progress_part(progress, 0.1, 1.0))
    return cached


def progress_part(progress: Progress | None, lo: float, hi: float) -> Progress | None:
    """A progress callback for the sub-range [lo, hi] of a whole build (None stays None)."""
    return None if progress is None else (lambda f, text: progress(lo + (hi - lo) * float(f), text))


def calibrate_checkpoint(path: Path, bench: Path, *, progress: Progress | None = None) -> dict:
    """Fit the checkpoint's operating points on the benchmark's valid games and store them in its `extra`."""
    from spotting_core.engine.games import find_splits, load_games
    from spotting_core.engine.train import evaluate_games
    from spotting_core.models import load_checkpoint, store_extra
    from spotting_core.synth.benchmark import feature_name

    model, _ = load_checkpoint(path)
    games = load_games(bench, find_splits(bench)["valid"], feature_name(DEMO_BENCHMARK["dim"]))
    thresholds = evaluate_games(model, games, metrics=("loose",), thresholds=True, progress=progress)["thresholds"]
    store_extra(path, thresholds=thresholds)
    return thresholds
