"""Operating points on real and demo data: does a per-class threshold give a review list worth reading?

    .venv/bin/python bench/calibration.py [--tolerance 5] [--json]

1. Real data (../shared/data): the real CALF predictions on the 100 SoccerNet-v2 test games. Thresholds
   are fitted (`engine/calibrate.py`) on the even-numbered games (sorted order) and scored on the odd
   ones: F1 with per-class thresholds, with one global threshold (fitted the same way), and with none
   (every candidate kept). Per-class thresholds must beat both. Then the same fit with a context
   rescorer first (`engine/rescore.py`, fitted on the even games too): F1 and the editors' list on the
   rescored odd games, and the odd games' Average-mAP before and after rescoring.
2. The demo match (built once, `spotting demo`): its default review list (the events above the demo
   checkpoint's editors' thresholds: the list sized at 1.3 rows per label on validation, on the
   confidences its context rescorer revised at spot time) against its
   true events: list size (goal <= 1.5x the true events) and recall at the tolerance (goal >= 85 %).
3. The same list on all 100 test games of the demo benchmark (the demo match is the first): rows per
   true event, recall, recall of the shown events, and how many games meet both goals.
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
from spotting_core.engine.evaluate import average_map_pairs, read_game_pairs  # noqa: E402
from spotting_core.engine.rescore import rescore_games  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "soccernet-v2"
KINDS = ("per_class", "global", "none", "review_list", "per_class_context", "review_list_context")


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
    # the same with a context rescorer fitted on the even games first (engine/rescore.py)
    context = fit_thresholds(fit, tolerance_s=tolerance, context=True)
    revised = rescore_games(context["rescorer"], held)
    out["per_class_context"] = score_at(revised, context, tolerance_s=tolerance)
    out["review_list_context"] = score_at(revised, context["review"], tolerance_s=tolerance)
    for k in KINDS:
        out[k] = {m: out[k][m] for m in ("precision", "recall", "f1", "kept", "candidates", "labels")}
    amap = [average_map_pairs(g, metrics=("loose", "tight")) for g in (held, revised)]
    out["a_mAP"] = {f"{m}_{name}": float(a[m]["a_mAP"]) for name, a in zip(("raw", "context"), amap) for m in a}
    return out


def demo(tolerance: float) -> dict:
    from spotting_core.io.soccernet import RESULTS_FILE, read_json, result_arrays
    from spotting_core.models import read_checkpoint
    from spotting_core.synth.demo import ensure_demo

    folder = ensure_demo()
    info = json.loads((folder / "demo.json").read_text())
    thresholds = read_checkpoint(info["checkpoint"]).get("extra", {}).get("thresholds")
    preds = result_arrays(read_json(folder / RESULTS_FILE))
    n_kept, found, shown = _default_list(folder, preds, thresholds, tolerance)
    n_true = len(found)
    return {"true_events": n_true, "candidates": int(len(preds["half"])), "default_list": n_kept,
            "found": int(found.sum()), "recall": float(found.sum() / max(n_true, 1)),
            "shown": int(shown.sum()), "found_shown": int((found & shown).sum()),
            "missed_unshown": int((~found & ~shown).sum()),
            "list_over_true": float(n_kept / max(n_true, 1)), "thresholds_in_checkpoint": thresholds is not None}


def _default_list(folder: Path, preds: dict, thresholds: dict | None, tolerance: float):
    """(rows of the default list, (L,) labels it finds, (L,) labels shown) of one game folder's labels."""
    from spotting_core.engine.calibrate import review_list
    from spotting_core.io.soccernet import LABELS_FILE, label_arrays, read_json
    from spotting_core.io.tables import read_labels

    n_kept, found = review_list(label_arrays(read_json(folder / LABELS_FILE)), preds, thresholds, tolerance_s=tolerance)
    shown = (read_labels(folder / LABELS_FILE)["visibility"] != "not shown").to_numpy()
    return n_kept, found, shown


def demo_test_split(tolerance: float) -> dict:
    """The default list of the demo checkpoint on every test game of its benchmark."""
    import tempfile

    import numpy as np

    from spotting_core.engine.inference import prediction_columns
    from spotting_core.engine.rescore import rescore_events
    from spotting_core.engine.spot import load_spotter, spot_input
    from spotting_core.io.soccernet import LABELS_FILE, label_arrays, read_json
    from spotting_core.models import read_checkpoint
    from spotting_core.synth.benchmark import split_sizes
    from spotting_core.synth.demo_model import (
        DEMO_BENCHMARK,
        demo_checkpoint,
        demo_recipe,
        generate_benchmark,
    )

    checkpoint = demo_checkpoint(demo_recipe())
    thresholds = read_checkpoint(checkpoint).get("extra", {}).get("thresholds")
    spotter = load_spotter(checkpoint, device="cpu")
    n_train, n_valid, n_test = split_sizes(DEMO_BENCHMARK["games"])
    rows = []   # per game: kept, found, true, shown true, shown found
    pairs = {"raw": [], "spotted": []}   # the model's own confidences; rescored as `spot` writes them
    with tempfile.TemporaryDirectory(prefix="spotting-bench-demo-") as tmp:
        bench = generate_benchmark(Path(tmp) / "bench", only=list(range(n_train + n_valid, n_train + n_valid + n_test)))
        for game in json.loads((bench / "synth.json").read_text())["splits"]["test"]:
            folder = bench / "test" / game
            raw, arrays, _ = spot_input(spotter, folder, rescore=False)
            events = rescore_events(spotter.rescorer, raw, arrays) if spotter.rescorer else raw   # as `spot` writes them
            preds = prediction_columns(events)
            n_kept, found, shown = _default_list(folder, preds, thresholds, tolerance)
            rows.append((n_kept, found.sum(), len(found), shown.sum(), (found & shown).sum()))
            labels = label_arrays(read_json(folder / LABELS_FILE))
            pairs["raw"].append((game, labels, prediction_columns(raw)))
            pairs["spotted"].append((game, labels, preds))
    amap = {f"{m}_{k}": float(v[m]["a_mAP"]) for k in pairs
            for v in [average_map_pairs(pairs[k], metrics=("loose", "tight"))] for m in v}
    r = np.array(rows, dtype=float)
    ok = (r[:, 1] >= 0.85 * r[:, 2]) & (r[:, 0] <= 1.5 * r[:, 2])
    return {"games": len(r), "rows_per_true_event": float(r[:, 0].sum() / r[:, 2].sum()),
            "recall": float(r[:, 1].sum() / r[:, 2].sum()), "recall_shown": float(r[:, 4].sum() / r[:, 3].sum()),
            "recall_unshown": float((r[:, 1] - r[:, 4]).sum() / max((r[:, 2] - r[:, 3]).sum(), 1)),
            "games_meeting_both_goals": int(ok.sum()), "a_mAP": amap, "rescored": spotter.rescorer is not None}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tolerance", type=float, default=5.0)
    p.add_argument("--json", action="store_true")
    p.add_argument("--skip-demo", action="store_true")
    args = p.parse_args()
    result = {"real": real_data(args.tolerance), "demo": None if args.skip_demo else demo(args.tolerance),
              "demo_test_split": None if args.skip_demo else demo_test_split(args.tolerance)}
    ok = True
    if result["real"]:
        r = result["real"]
        ok &= r["per_class"]["f1"] > max(r["global"]["f1"], r["none"]["f1"])
        print(f"real CALF test predictions, fit on {r['games_fit']} even games, scored on {r['games_scored']} odd "
              f"games, tolerance {args.tolerance:g} s:", file=sys.stderr)
        for k in KINDS:
            s = r[k]
            print(f"  {k:<19} F1 {s['f1']:.4f}  precision {s['precision']:.4f}  recall {s['recall']:.4f}  "
                  f"kept {s['kept']} of {s['candidates']} (labels {s['labels']})", file=sys.stderr)
        a = r["a_mAP"]
        print(f"  Average-mAP of the odd games, loose / tight: {a['loose_raw']:.4f} / {a['tight_raw']:.4f} as "
              f"predicted, {a['loose_context']:.4f} / {a['tight_context']:.4f} rescored", file=sys.stderr)
    if result["demo"]:
        d = result["demo"]
        ok &= d["list_over_true"] <= 1.5 and d["recall"] >= 0.85
        print(f"demo match: default list {d['default_list']} of {d['candidates']} candidates for {d['true_events']} "
              f"true events ({d['list_over_true']:.2f}x, goal <= 1.5x); recall {d['recall']:.1%} (goal >= 85 %): "
              f"{d['found']} of {d['true_events']}, shown events {d['found_shown']} of {d['shown']}, "
              f"{d['missed_unshown']} unshown missed", file=sys.stderr)
        t = result["demo_test_split"]
        print(f"demo benchmark, all {t['games']} test games: {t['rows_per_true_event']:.2f} rows per true event, "
              f"recall {t['recall']:.1%} (shown {t['recall_shown']:.1%}, unshown {t['recall_unshown']:.1%}); "
              f"{t['games_meeting_both_goals']} of {t['games']} games meet both goals", file=sys.stderr)
        a = t["a_mAP"]
        print(f"  their Average-mAP, loose / tight: {a['loose_raw']:.4f} / {a['tight_raw']:.4f} with the model's "
              f"confidences, {a['loose_spotted']:.4f} / {a['tight_spotted']:.4f} as spotted"
              f"{' (context-rescored)' if t['rescored'] else ''}", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
