"""Operating points on real and demo data: does a per-class threshold give a review list worth reading?

    .venv/bin/python bench/calibration.py [--tolerance 5] [--json]

1. Real data (../shared/data): the real CALF predictions on the 100 SoccerNet-v2 test games. Thresholds
   are fitted (`engine/calibrate.py`) on the even-numbered games (sorted order) and scored on the odd
   ones: F1 with per-class thresholds, with one global threshold (fitted the same way), and with none
   (every candidate kept). Per-class thresholds must beat both.
2. The demo match (built once, `spotting demo`): its default review list (the events above the demo
   checkpoint's editors' thresholds, F2) against its 25 true events: list size (goal <= 1.5x the true events) and
   recall at the tolerance (goal >= 85 %).
Exit code 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spotting_core.engine.calibrate import fit_thresholds, score_at  # noqa: E402
from spotting_core.engine.evaluate import read_game_pairs  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "soccernet-v2"


def real_data(tolerance: float) -> dict | None:
    labels, preds = DATA / "labels" / "test", DATA / "predictions" / "calf-test"
    if not preds.is_dir():
        print(f"real data not found at {preds}: skipped", file=sys.stderr)
        return None
    games = read_game_pairs(labels, preds)
    fit, held = games[0::2], games[1::2]
    per_class = fit_thresholds(fit, tolerance_s=tolerance)
    out = {"games_fit": len(fit), "games_scored": len(held), "tolerance_s": tolerance,
           "per_class": score_at(held, per_class, tolerance_s=tolerance),
           "global": score_at(held, per_class["global"], tolerance_s=tolerance),
           "none": score_at(held, None, tolerance_s=tolerance), "global_threshold": per_class["global"],
           "review_list": score_at(held, per_class["review"], tolerance_s=tolerance)}
    for k in ("per_class", "global", "none", "review_list"):
        out[k] = {m: out[k][m] for m in ("precision", "recall", "f1", "kept", "candidates", "labels")}
    return out


def demo(tolerance: float) -> dict:
    from spotting_core.engine.calibrate import match_predictions, threshold_vector
    from spotting_core.io.soccernet import (
        CLASSES_V2,
        LABELS_FILE,
        RESULTS_FILE,
        label_arrays,
        read_json,
        result_arrays,
    )
    from spotting_core.models import read_checkpoint
    from spotting_core.synth.demo import ensure_demo

    folder = ensure_demo()
    info = json.loads((folder / "demo.json").read_text())
    thresholds = read_checkpoint(info["checkpoint"]).get("extra", {}).get("thresholds")
    labels = label_arrays(read_json(folder / LABELS_FILE))
    preds = result_arrays(read_json(folder / RESULTS_FILE))
    keep = preds["confidence"] >= threshold_vector(thresholds, CLASSES_V2, review=True)[preds["class_id"]]
    kept = {k: ([v[i] for i in range(len(keep)) if keep[i]] if isinstance(v, list) else v[keep]) for k, v in preds.items()}
    hits = match_predictions(labels, kept, tolerance_s=tolerance)
    n_true = len(labels["half"])
    return {"true_events": n_true, "candidates": int(len(keep)), "default_list": int(keep.sum()),
            "found": int(hits.sum()), "recall": float(hits.sum() / max(n_true, 1)),
            "list_over_true": float(keep.sum() / max(n_true, 1)), "thresholds_in_checkpoint": thresholds is not None}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tolerance", type=float, default=5.0)
    p.add_argument("--json", action="store_true")
    p.add_argument("--skip-demo", action="store_true")
    args = p.parse_args()
    result = {"real": real_data(args.tolerance), "demo": None if args.skip_demo else demo(args.tolerance)}
    ok = True
    if result["real"]:
        r = result["real"]
        ok &= r["per_class"]["f1"] > max(r["global"]["f1"], r["none"]["f1"])
        print(f"real CALF test predictions, fit on {r['games_fit']} even games, scored on {r['games_scored']} odd "
              f"games, tolerance {args.tolerance:g} s:", file=sys.stderr)
        for k in ("per_class", "global", "none", "review_list"):
            s = r[k]
            print(f"  {k:<10} F1 {s['f1']:.4f}  precision {s['precision']:.4f}  recall {s['recall']:.4f}  "
                  f"kept {s['kept']} of {s['candidates']} (labels {s['labels']})", file=sys.stderr)
    if result["demo"]:
        d = result["demo"]
        ok &= d["list_over_true"] <= 1.5 and d["recall"] >= 0.85
        print(f"demo match: default list {d['default_list']} of {d['candidates']} candidates for {d['true_events']} "
              f"true events ({d['list_over_true']:.2f}x, goal <= 1.5x); recall {d['recall']:.1%} (goal >= 85 %)",
              file=sys.stderr)
    if args.json:
        print(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
