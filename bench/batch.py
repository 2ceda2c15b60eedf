"""`spotting batch` throughput: games per minute with 1 and 2 Ray workers, and what Ray adds per game
over a plain in-process loop, on generated feature trees and on short generated videos.

    .venv/bin/python bench/batch.py [--games 24] [--half-minutes 45] [--dim 512] [--videos 4]
        [--video-seconds 30] [--workers 1 2] [--model netvlad++] [--threads N] [--work DIR] [--json]

Inputs, written under --work (default: a temporary folder, removed at the end):
  features: a synthetic tree (`synth.benchmark.generate`, --games games of 2 x --half-minutes, --dim),
            spotted with an untrained --model checkpoint (the work per game does not depend on training);
  videos:   --videos game folders of two --video-seconds half videos (`synth.toys`, 398x224 at 25 fps),
            spotted from frames: decoding and mobilenetv2-offline features inside the worker, then a
            maxpool++ head. Each run starts without the cached features (they are removed first).
For each input: a plain loop (`engine.batch.BatchWorker` in this process, every core's threads),
then on one local Ray (started once, as many CPUs as cores) `run_batch` with each --workers. The
clock of a Ray run starts when its workers hold the model (`on_started`), so Ray's start-up (a few
seconds, once per batch) is reported apart. Printed: games/minute, the ratio of the 2-worker to the
1-worker rate (goal on 2 cores: approaching 2x), and Ray's overhead per game:
(1-worker time - plain loop time) / games, and, less sensitive to other load on the machine, the
workers' time outside games per game (workers x wall time - the games' own seconds) / games:
with 1 worker that is Ray's dispatch cost alone. `--threads 1` gives every worker and the plain loop one
torch thread: on a loaded machine a 2-thread worker loses far more to descheduled threads than it
gains, so this compares like with like.
Smoke test: --games 4 --half-minutes 2 --dim 32 --videos 2 --video-seconds 4.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from spotting_core.engine.batch import BatchWorker, find_units, spot_job
from spotting_core.engine.batch_ray import run_batch
from spotting_core.io.soccernet import CLASSES_V2
from spotting_core.models import build_model, save_checkpoint

BACKBONE = "mobilenetv2-offline"


def make_features(work: Path, args) -> tuple[Path, Path]:
    from spotting_core.synth.benchmark import feature_name, generate

    tree = generate(work / "features", games=args.games, seed=0, half_minutes=args.half_minutes, dim=args.dim)
    model = build_model(args.model, input_dim=args.dim, num_classes=len(CLASSES_V2), fps=2)
    return tree, save_checkpoint(work / "features.pt", model, classes=CLASSES_V2, feature_name=feature_name(args.dim))


def make_videos(work: Path, args) -> tuple[Path, Path]:
    from spotting_core.features.backbones import get_backbone
    from spotting_core.synth.toys import write_toy_video

    tree = work / "videos"
    for g in range(args.videos):
        game = tree / f"game-{g:02d}"
        game.mkdir(parents=True, exist_ok=True)
        for half in (1, 2):
            events = [(t, (t // 5) % 3) for t in range(2, int(args.video_seconds), 5)]
            write_toy_video(game / f"{half}_224p.mkv", events, duration_s=args.video_seconds, size=(398, 224),
                            fps=25, seed=10 * g + half)
    bb = get_backbone(BACKBONE)
    model = build_model("maxpool++", input_dim=bb.dim, num_classes=len(CLASSES_V2), fps=2)
    return tree, save_checkpoint(work / "videos.pt", model, classes=CLASSES_V2, feature_name=bb.feature_name)


def clear_feature_cache(tree: Path) -> None:
    """Features cached next to the videos by an earlier run: each run decodes and extracts again."""
    for p in tree.rglob(f"*{BACKBONE}*"):
        p.unlink()


def plain_loop(tree: Path, ckpt: Path, out: Path, threads: int | None) -> float:
    """Every game through one in-process worker (the model loaded before the clock starts)."""
    job = spot_job(ckpt)
    worker = BatchWorker(job, str(ckpt), threads=threads or os.cpu_count())
    units = find_units(tree, out)
    t0 = time.perf_counter()
    for u in units:
        r = worker.run(u)
        if r["status"] != "done":
            sys.exit(f"plain loop: {u.game}: {r['error']}")
    return time.perf_counter() - t0


def on_ray(tree: Path, ckpt: Path, out: Path, workers: int, threads: int | None) -> tuple[float, float, float]:
    """(seconds from the workers holding the model to the last game, seconds to get there, the games'
    own seconds inside the workers, summed)."""
    marks = {"call": time.perf_counter()}
    summary = run_batch(tree, job=spot_job(ckpt), checkpoint=ckpt, out=out, workers=workers, threads=threads,
                        on_started=lambda infos: marks.setdefault("started", time.perf_counter()))
    end = time.perf_counter()
    if summary["failed"] or not summary["done"]:
        sys.exit(f"ray, {workers} worker(s): {summary['failed'] or 'nothing done'}")
    return end - marks["started"], marks["started"] - marks["call"], sum(r["seconds"] for r in summary["records"])


def bench_input(name: str, tree: Path, ckpt: Path, work: Path, args) -> dict:
    n = len(find_units(tree))
    clear_feature_cache(tree)
    plain = plain_loop(tree, ckpt, work / f"out-{name}-plain", args.threads)
    row = {"input": name, "games": n, "plain_s": plain, "plain_games_per_min": 60 * n / plain}
    for w in args.workers:
        clear_feature_cache(tree)
        seconds, startup, in_games = on_ray(tree, ckpt, work / f"out-{name}-{w}w", w, args.threads)
        row[f"ray{w}_s"], row[f"ray{w}_startup_s"] = seconds, startup
        row[f"ray{w}_idle_s_per_game"] = (w * seconds - in_games) / n   # worker time outside games
        row[f"ray{w}_games_per_min"] = 60 * n / seconds
        print(f"{name}: {w} worker(s): {60 * n / seconds:.1f} games/min (start-up {startup:.1f} s)", file=sys.stderr)
    if 1 in args.workers:
        row["ray_overhead_s_per_game"] = (row["ray1_s"] - plain) / n
    if {1, 2} <= set(args.workers):
        row["ratio_2_vs_1"] = row["ray2_games_per_min"] / row["ray1_games_per_min"]
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--games", type=int, default=24)
    p.add_argument("--half-minutes", type=float, default=45.0)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--model", default="netvlad++")
    p.add_argument("--videos", type=int, default=4, help="0: skip the video run")
    p.add_argument("--video-seconds", type=float, default=30.0)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per worker and in the plain loop (default: each worker's CPU share, "
                        "the plain loop every core: what `spotting batch` does)")
    p.add_argument("--work", default=None, help="where the inputs and outputs go (default: a temporary folder)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    import ray

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-batch-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"inputs and outputs under {work}", file=sys.stderr)
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        rows = [bench_input("features", *make_features(work, args), work, args)]
        if args.videos:
            rows.append(bench_input("videos", *make_videos(work, args), work, args))
    finally:
        ray.shutdown()
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{os.cpu_count()} cores; features: {args.games} games of 2 x {args.half_minutes:g} min, {args.dim}-d, "
          f"{args.model}; videos: {args.videos} games of 2 x {args.video_seconds:g} s 398x224, {BACKBONE} + maxpool++")
    print(f"{'input':<10}{'plain g/min':>12}" + "".join(f"{f'{w}w g/min':>11}{f'{w}w start s':>12}" for w in args.workers)
          + f"{'2w / 1w':>9}{'Ray s/game':>12}{'1w idle s/game':>16}")
    for r in rows:
        cells = "".join(f"{r[f'ray{w}_games_per_min']:>11.1f}{r[f'ray{w}_startup_s']:>12.1f}" for w in args.workers)
        print(f"{r['input']:<10}{r['plain_games_per_min']:>12.1f}{cells}{r.get('ratio_2_vs_1', float('nan')):>9.2f}"
              f"{r.get('ray_overhead_s_per_game', float('nan')):>12.3f}{r.get('ray1_idle_s_per_game', float('nan')):>16.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
