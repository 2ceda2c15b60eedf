"""Average-mAP: the official SoccerNet evaluator against ours, on the real CALF test predictions.

    .venv/bin/python bench/metric.py [--games N] [--repeats R] [--json]

Labels: ../shared/data/soccernet-v2/labels/test (100 games); predictions:
../shared/data/soccernet-v2/predictions/calf-test. For each metric (loose, tight), in this one
process and alternately:
  official: `SoccerNet.Evaluation.ActionSpotting.evaluate(..., dataset=None, version=2,
            EVENT_DICTIONARY=EVENT_DICTIONARY_V2)`, reading the files itself;
  ours:     `spotting_core.engine.evaluate.evaluate(...)`, also reading the files itself.
Printed: every figure's max |official - ours|, both wall-clock and CPU times, and the ratio of the
loose + tight totals. With `--repeats R` each is run R times and the fastest kept (the CPU is
shared with other work, so the minimum is the least disturbed figure).

Goal (issue 2): identical numbers (max |diff| ≤ 1e-9) and at least 20x faster on the 100 games.
Exit code 1 when either fails; 0 with a SKIP line when the shared data is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "soccernet-v2"
LABELS, PREDS = "Labels-v2.json", "results_spotting.json"
TOL, GOAL = 1e-9, 20.0


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--games", type=int, default=100, help="the first N test games (default: all 100)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    labels, preds = DATA / "labels" / "test", DATA / "predictions" / "calf-test"
    if not labels.is_dir() or not preds.is_dir():
        print(f"SKIP: real SoccerNet files not found under {DATA} (see ../shared/data/README.md)")
        return 0
    from spotting_core.engine.evaluate import evaluate

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        n_all = len(list(labels.glob(f"*/*/*/{LABELS}")))
        if args.games < n_all:
            labels, preds = subset(labels, preds, args.games, Path(tmp))
        for metric in ("loose", "tight"):
            best = {"official": (np.inf, np.inf), "ours": (np.inf, np.inf)}
            for _ in range(args.repeats):
                w, c, theirs = timed(lambda m=metric: run_official(labels, preds, m))
                best["official"] = min(best["official"], (w, c))
                w, c, ours = timed(lambda m=metric: evaluate(labels, preds, metric=m))
                best["ours"] = min(best["ours"], (w, c))
            rows.append({"metric": metric, "games": min(args.games, n_all),
                         "a_mAP_official": theirs["a_mAP"], "a_mAP_ours": ours["a_mAP"],
                         "a_mAP_visible": ours["a_mAP_visible"], "a_mAP_unshown": ours["a_mAP_unshown"],
                         "max_abs_diff": max_diff(ours, theirs),
                         "official_s": best["official"][0], "ours_s": best["ours"][0],
                         "official_cpu_s": best["official"][1], "ours_cpu_s": best["ours"][1]})

    total_off, total_ours = sum(r["official_s"] for r in rows), sum(r["ours_s"] for r in rows)
    cpu_off, cpu_ours = sum(r["official_cpu_s"] for r in rows), sum(r["ours_cpu_s"] for r in rows)
    summary = {"rows": rows, "official_s": total_off, "ours_s": total_ours, "ratio": total_off / total_ours,
               "cpu_ratio": cpu_off / cpu_ours, "max_abs_diff": max(r["max_abs_diff"] for r in rows)}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{'metric':<7}{'games':>6}{'a_mAP official':>16}{'a_mAP ours':>14}{'max|diff|':>11}"
              f"{'official s':>12}{'ours s':>9}{'ratio':>8}")
        for r in rows:
            print(f"{r['metric']:<7}{r['games']:>6}{r['a_mAP_official']:>16.10f}{r['a_mAP_ours']:>14.10f}"
                  f"{r['max_abs_diff']:>11.1e}{r['official_s']:>12.2f}{r['ours_s']:>9.3f}"
                  f"{r['official_s'] / r['ours_s']:>7.1f}x")
        print(f"loose + tight: official {total_off:.2f} s, ours {total_ours:.3f} s -> {summary['ratio']:.1f}x "
              f"(CPU time: {cpu_off:.2f} s vs {cpu_ours:.3f} s -> {summary['cpu_ratio']:.1f}x); "
              f"max |diff| over every figure {summary['max_abs_diff']:.1e}")
    ok = summary["max_abs_diff"] <= TOL and summary["ratio"] >= GOAL
    if not ok:
        print(f"FAIL: goal is max |diff| <= {TOL:g} and >= {GOAL:g}x", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
