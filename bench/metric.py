"""Average-mAP: the official SoccerNet evaluator against ours, on the real CALF test predictions.

    .venv/bin/python bench/metric.py [--games N] [--repeats R] [--ours-repeats K] [--json]

Labels: ../shared/data/soccernet-v2/labels/test (100 games); predictions:
../shared/data/soccernet-v2/predictions/calf-test. In this one process:
  official:   `SoccerNet.Evaluation.ActionSpotting.evaluate(..., dataset=None, version=2,
              EVENT_DICTIONARY=EVENT_DICTIONARY_V2)` for loose, then tight, reading the files itself
              (best of R runs; R = 1 by default, it takes ~15 s);
  ours:       `engine.evaluate.evaluate(..., metric=m)` for each metric alone, reading the files itself;
  ours, all:  `engine.evaluate.evaluate_metrics(...)`, loose and tight in one call (files read once);
  ours, CLI:  a fresh `python -m spotting_core evaluate L P --metric all --json` process, whole
              (interpreter, imports, reading, both metrics, JSON out).
Ours are the median of K runs (5). Printed: every figure's max |official - ours| (per class and
visible/unshown included, for each of the four), the times, and the ratios against the official
loose + tight total: in-process (one call for both) and as a whole CLI process.

Goals (issue 15): identical numbers (max |diff| <= 1e-9), >= 100x in-process, >= 50x as a process.
Exit code 1 when any fails; 0 with a SKIP line when the shared data is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "soccernet-v2"
LABELS, PREDS = "Labels-v2.json", "results_spotting.json"
TOL, GOAL_IN_PROCESS, GOAL_CLI = 1e-9, 100.0, 50.0


def subset(labels: Path, preds: Path, n: int, tmp: Path) -> tuple[Path, Path]:
    """The first n games as a tree of symlinked files (nothing copied)."""
    games = sorted(str(p.parent.relative_to(labels)) for p in labels.glob(f"*/*/*/{LABELS}"))[:n]
    for game in games:
        for src, sub, name in ((labels, "labels", LABELS), (preds, "preds", PREDS)):
            (tmp / sub / game).mkdir(parents=True)
            (tmp / sub / game / name).symlink_to((src / game / name).resolve())
    return tmp / "labels", tmp / "preds"


def timed(fn) -> tuple[float, float, dict]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def run_official(labels: Path, preds: Path, metric: str) -> dict:
    from SoccerNet.Evaluation.ActionSpotting import evaluate
    from SoccerNet.Evaluation.utils import EVENT_DICTIONARY_V2

    with contextlib.redirect_stderr(io.StringIO()):  # its tqdm bars
        r = evaluate(str(labels), str(preds), prediction_file=PREDS, dataset=None, version=2, metric=metric,
                     EVENT_DICTIONARY=EVENT_DICTIONARY_V2, label_files=LABELS)
    return {k: (float(v) if np.isscalar(v) else [float(x) for x in v]) for k, v in r.items()}


def max_diff(a: dict, b: dict) -> float:
    return max(float(np.max(np.abs(np.atleast_1d(a[k]) - np.atleast_1d(b[k])))) for k in a)


def run_cli(labels: Path, preds: Path) -> tuple[float, float, dict]:
    """One whole `spotting evaluate --metric all` process: wall, CPU (children), its JSON."""
    cmd = [sys.executable, "-m", "spotting_core", "evaluate", str(labels), str(preds), "--metric", "all", "--json"]
    before = os.times()
    wall = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    wall = time.perf_counter() - wall
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu, json.loads(out.stdout)


def median_of(k: int, fn) -> tuple[float, float, dict]:
    runs = [fn() for _ in range(k)]
    return (float(np.median([r[0] for r in runs])), float(np.median([r[1] for r in runs])), runs[-1][2])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--games", type=int, default=100, help="the first N test games (default: all 100)")
    p.add_argument("--repeats", type=int, default=1, help="official runs per metric (the fastest is kept)")
    p.add_argument("--ours-repeats", type=int, default=5, help="runs of each of ours (the median is kept)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    labels, preds = DATA / "labels" / "test", DATA / "predictions" / "calf-test"
    if not labels.is_dir() or not preds.is_dir():
        print(f"SKIP: real SoccerNet files not found under {DATA} (see ../shared/data/README.md)")
        return 0
    from spotting_core.engine.evaluate import evaluate, evaluate_metrics

    K = args.ours_repeats
    with tempfile.TemporaryDirectory() as tmp:
        n_all = len(list(labels.glob(f"*/*/*/{LABELS}")))
        if args.games < n_all:
            labels, preds = subset(labels, preds, args.games, Path(tmp))
        games = min(args.games, n_all)
        official, rows = {}, []
        for metric in ("loose", "tight"):
            best = (np.inf, np.inf)
            for _ in range(args.repeats):
                w, c, official[metric] = timed(lambda m=metric: run_official(labels, preds, m))
                best = min(best, (w, c))
            w, c, ours = median_of(K, lambda m=metric: timed(lambda: evaluate(labels, preds, metric=m)))
            rows.append({"what": metric, "games": games, "a_mAP_official": official[metric]["a_mAP"],
                         "a_mAP_ours": ours["a_mAP"], "max_abs_diff": max_diff(ours, official[metric]),
                         "official_s": best[0], "official_cpu_s": best[1], "ours_s": w, "ours_cpu_s": c})
        total_off = sum(r["official_s"] for r in rows)
        cpu_off = sum(r["official_cpu_s"] for r in rows)
        for what, fn in (("all, one call", lambda: timed(lambda: evaluate_metrics(labels, preds))),
                         ("all, CLI process", lambda: run_cli(labels, preds))):
            w, c, both = median_of(K, fn)
            rows.append({"what": what, "games": games, "a_mAP_official": official["loose"]["a_mAP"],
                         "a_mAP_ours": both["loose"]["a_mAP"],
                         "max_abs_diff": max(max_diff(both[m], official[m]) for m in official),
                         "official_s": total_off, "official_cpu_s": cpu_off, "ours_s": w, "ours_cpu_s": c})

    separate = rows[0]["ours_s"] + rows[1]["ours_s"]
    summary = {"rows": rows, "official_s": total_off, "ours_separate_s": separate,
               "ratio_separate": total_off / separate, "ratio_in_process": total_off / rows[2]["ours_s"],
               "ratio_cli": total_off / rows[3]["ours_s"], "cpu_ratio_cli": cpu_off / rows[3]["ours_cpu_s"],
               "max_abs_diff": max(r["max_abs_diff"] for r in rows)}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{'':<17}{'games':>6}{'a_mAP official':>16}{'a_mAP ours':>14}{'max|diff|':>11}"
              f"{'official s':>12}{'ours s':>9}{'ratio':>9}")
        for r in rows:
            print(f"{r['what']:<17}{r['games']:>6}{r['a_mAP_official']:>16.10f}{r['a_mAP_ours']:>14.10f}"
                  f"{r['max_abs_diff']:>11.1e}{r['official_s']:>12.2f}{r['ours_s']:>9.3f}"
                  f"{r['official_s'] / r['ours_s']:>8.1f}x")
        print(f"official loose + tight {total_off:.2f} s in-process. Ours (median of {K}): two calls "
              f"{separate:.3f} s -> {summary['ratio_separate']:.1f}x; one call {rows[2]['ours_s']:.3f} s -> "
              f"{summary['ratio_in_process']:.1f}x; one whole CLI process {rows[3]['ours_s']:.3f} s -> "
              f"{summary['ratio_cli']:.1f}x (CPU {summary['cpu_ratio_cli']:.1f}x); "
              f"max |diff| over every figure {summary['max_abs_diff']:.1e}")
    ok = (summary["max_abs_diff"] <= TOL and summary["ratio_in_process"] >= GOAL_IN_PROCESS
          and summary["ratio_cli"] >= GOAL_CLI)
    if not ok:
        print(f"FAIL: goal is max |diff| <= {TOL:g}, >= {GOAL_IN_PROCESS:g}x in-process and >= {GOAL_CLI:g}x "
              "as a CLI process", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
