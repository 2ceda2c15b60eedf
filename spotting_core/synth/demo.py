"""The built-in demo match: synthetic, generated once on this machine and cached.

    ensure_demo(rebuild=False, progress=None) -> Path    a results folder the app opens like any other

What it holds (all made here, no downloads):
- features and Labels-v2.json of the first *test* game of the synthetic benchmark that the demo
  checkpoint was trained on (`DEMO_BENCHMARK`, rebuilt with `synth.generate`: deterministic per seed);
- `1_demo.mp4`, `2_demo.mp4`: a small H.264 video per half with a match clock and each labelled
  event written on screen when it happens, frame-aligned with the 2 fps features;
- the spotting results of the demo checkpoint (`assets/demo_saliency.pt`, the frame-saliency
  model, so the saliency track and thumbnails show): results_spotting.json, <half>_scores.npy,
  <half>_saliency.npy, <half>_saliency_windows.npy.

The checkpoint is rebuilt with the command in assets/README.md; when it is missing, or was trained
on data that the current `synth.generate` no longer writes (its `extra["demo_recipe"]` differs from
`demo_recipe()`), a matching one is trained here on first start (with progress) and kept in the
cache. The cached demo folder records the recipe and the checkpoint's hash, and is rebuilt when
either changes, so a new generator or a new checkpoint never shows stale results.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from spotting_core.errors import SpottingError
from spotting_core.io.feature_files import feature_path
from spotting_core.io.remote import sha256_file
from spotting_core.io.soccernet import CLASSES_V2, HALVES, LABELS_FILE, RESULTS_FILE, atomic_write_text
from spotting_core.io.tables import read_labels
from spotting_core.runtime import cache_root
from spotting_core.synth.broadcast import render_half_video
from spotting_core.synth.demo_model import (
    DEMO_BENCHMARK,
    calibrate_checkpoint,
    demo_checkpoint,
    demo_game_index,
    demo_recipe,
    generate_benchmark,
    progress_part,
    train_demo_checkpoint,
)

DEMO_VERSION = 3        # 3: the broadcast cuts between cameras and shows replays

Progress = Callable[[float, str], None]


def demo_dir() -> Path:
    return cache_root() / "demo"


# ---------------------------------------------------------------------------------------------
# The demo folder
# ---------------------------------------------------------------------------------------------
def _is_built(folder: Path) -> bool:
    """The cached demo is complete and made by this code: same version, same generator recipe, same checkpoint."""
    meta = folder / "demo.json"
    if not meta.is_file() or not (folder / RESULTS_FILE).is_file():
        return False
    try:
        info = json.loads(meta.read_text())
    except json.JSONDecodeError:
        return False
    checkpoint = Path(info.get("checkpoint") or "")
    return (info.get("version") == DEMO_VERSION and info.get("recipe") == demo_recipe()
            and checkpoint.is_file() and info.get("checkpoint_sha256") == sha256_file(checkpoint))


def _progress_file(folder: Path) -> Path:
    return folder.with_name(".demo-progress.json")


@contextmanager
def _build_lock(folder: Path, progress: Progress | None):
    """One demo build at a time, across threads and processes (an flock on a file beside the demo).

    Those who wait show the builder's progress, which it writes to `.demo-progress.json`.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.with_name(".demo-build.lock"), "a") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if progress:
                    try:
                        shared = json.loads(_progress_file(folder).read_text())
                        progress(float(shared["fraction"]), f"{shared['text']} (built by another session)")
                    except (OSError, ValueError, KeyError):
                        progress(0.0, "another session is building the demo match")
                time.sleep(0.3)
        try:
            yield
        finally:
            _progress_file(folder).unlink(missing_ok=True)
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_demo(rebuild: bool = False, progress: Progress | None = None) -> Path:
    """Build the demo match once (a few seconds; longer when the checkpoint must be trained) and return its folder.

    Exactly one build runs at a time (`_build_lock`); each build writes into its own temporary folder,
    renamed into place only when complete, so an interrupted build leaves nothing that looks built.
    """
    folder = demo_dir()
    if not rebuild and _is_built(folder):
        return folder
    with _build_lock(folder, progress):
        if not rebuild and _is_built(folder):  # built by another session while this one waited
            return folder

        last = [0.0]

        def shared(fraction: float, text: str) -> None:
            if time.monotonic() - last[0] > 0.25:
                last[0] = time.monotonic()
                atomic_write_text(_progress_file(folder), json.dumps({"fraction": float(fraction), "text": str(text)}))
            if progress:
                progress(fraction, text)

        work = Path(tempfile.mkdtemp(prefix=".demo-build-", dir=folder.parent))
        try:
            _build(folder, work, shared)
            if folder.exists():
                old = Path(tempfile.mkdtemp(prefix=".demo-old-", dir=folder.parent))
                os.replace(folder, old / folder.name)
                shutil.rmtree(old, ignore_errors=True)
            os.replace(work, folder)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if progress:
        progress(1.0, "demo match ready")
    return folder


def _build(folder: Path, work: Path, progress: Progress | None) -> None:
    from spotting_core.engine.spot import spot_path
    from spotting_core.review.matches import MATCH_FILE, Match
    from spotting_core.synth.benchmark import feature_name

    name = feature_name(DEMO_BENCHMARK["dim"])
    recipe = demo_recipe()
    with tempfile.TemporaryDirectory(prefix="spotting-demo-", dir=cache_root()) as tmp:
        bench = generate_benchmark(Path(tmp) / "bench", only=[demo_game_index()])   # the demo game alone
        info = json.loads((bench / "synth.json").read_text())
        game = info["splits"]["test"][0]
        game_dir = bench / "test" / game
        for half in HALVES:
            shutil.copy2(feature_path(game_dir, half, name), feature_path(work, half, name))
        shutil.copy2(game_dir / LABELS_FILE, work / LABELS_FILE)
    checkpoint = demo_checkpoint(recipe, progress=progress_part(progress, 0.0, 0.6))
    labels = read_labels(work / LABELS_FILE)
    labels["game_time"] = labels["game_time"].astype(str)
    seconds = DEMO_BENCHMARK["half_minutes"] * 60.0
    videos = {}
    for i, half in enumerate(HALVES):
        render_half_video(
            work / f"{half}_demo.mp4", half=half, seconds=seconds, events=labels[labels["half"] == half],
            seed=DEMO_BENCHMARK["seed"], progress=progress_part(progress, 0.6 + 0.15 * i, 0.75 + 0.15 * i))
        videos[str(half)] = str(folder / f"{half}_demo.mp4")
    spot_path(work, checkpoint=checkpoint, out_dir=work, progress=progress_part(progress, 0.9, 1.0))
    match = Match(folder=str(folder), name="Demo match (synthetic)", kind="demo", videos=videos,
                  video_offsets={"1": 0.0, "2": 0.0}, labels=str(folder / LABELS_FILE), checkpoint=str(checkpoint),
                  synthetic=True, source=f"synthetic benchmark {DEMO_BENCHMARK}, test game {game}")
    atomic_write_text(work / MATCH_FILE, json.dumps(asdict(match), indent=2))
    atomic_write_text(work / "demo.json", json.dumps({"version": DEMO_VERSION, "benchmark": DEMO_BENCHMARK,
                                                      "recipe": recipe, "checkpoint": str(checkpoint),
                                                      "checkpoint_sha256": sha256_file(checkpoint),
                                                      "game": game, "classes": list(CLASSES_V2)}, indent=2))


def check_demo(folder: Path) -> None:
    """Raise a one-line error if a demo folder is incomplete (used by the app before opening it)."""
    for f in (RESULTS_FILE, LABELS_FILE, "1_demo.mp4", "2_demo.mp4"):
        if not (folder / f).is_file():
            raise SpottingError(f"{folder}: demo incomplete, no {f}; rebuild it with `spotting demo --rebuild`")


def main(argv: list[str] | None = None) -> int:
    """`python -m spotting_core.synth.demo --train OUT`: rebuild the shipped demo checkpoint (see assets/README.md)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m spotting_core.synth.demo", description=main.__doc__)
    p.add_argument("--train", metavar="OUT", help="train the demo checkpoint on the demo benchmark into OUT")
    p.add_argument("--calibrate", metavar="CKPT", help="record the operating points of CKPT (demo benchmark's valid games)")
    p.add_argument("--rebuild", action="store_true", help="rebuild the cached demo match")
    args = p.parse_args(argv)
    try:
        if args.train:
            with tempfile.TemporaryDirectory(prefix="spotting-demo-bench-") as tmp:
                bench = generate_benchmark(Path(tmp) / "bench")
                result = train_demo_checkpoint(bench, Path(args.train))
            fit_info = {k: v for k, v in result.items() if k not in ("history",)}
            print(json.dumps(fit_info))
        elif args.calibrate:
            with tempfile.TemporaryDirectory(prefix="spotting-demo-bench-") as tmp:
                thresholds = calibrate_checkpoint(Path(args.calibrate), generate_benchmark(Path(tmp) / "bench"))
            rescorer = thresholds.pop("rescorer", None)   # its coefficients: in the checkpoint, not on screen
            if rescorer:
                thresholds["rescorer"] = f"{sum(m is not None for m in rescorer['folds'][0])} classes rescored"
            print(json.dumps(thresholds))
        else:
            print(ensure_demo(rebuild=args.rebuild))
    except SpottingError as e:
        print(f"error: {e}")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
