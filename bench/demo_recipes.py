"""Recipes of the demo model, judged on the valid games only: does any of them find the unshown events?

    .venv/bin/python bench/demo_recipes.py [--variants base,window2,window3,window6,window8,window12,embed256] [--json]

The demo's recall goal (>= 85 % of the true events in a list of <= 1.5x their number) is missed on the
demo match by its unshown events (bench/calibration.py). This bench asks whether another recipe of the
same model (`saliency`) would find more of them, without looking at a test game:
1. the demo benchmark (`synth/demo_model.py`: 300 train / 100 valid games; the test games are not
   written) is generated once in a temporary folder;
2. each variant trains exactly as `python -m spotting_core.synth.demo --train` does
   (`demo_model.demo_train_config`, DEMO_TRAIN with the variant's overrides, best epoch on the valid
   tight Average-mAP), with no test evaluation;
3. its predictions on the 100 valid games are split in two folds (even / odd games); the editors' list
   (`engine/calibrate.py`, 1.3 rows per label) is fitted on one fold and read on the other, both ways,
   on the model's own confidences: the checkpoint's context rescorer (`engine/rescore.py`) was fitted on
   these valid games, so it is left out here; bench/calibration.py measures it on the test games.
Printed per variant: best valid tight Average-mAP, epochs, rows per true event, recall, recall of the
shown and of the unshown events, and the share of valid games meeting both goals.
About four minutes per variant on the 2-core CPU (23 min for the seven defaults).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = {
    "base": {},                                              # the shipped recipe (DEMO_TRAIN)
    "embed256": {"model_options": {"embed_dim": "256"}},     # the model Config's default width
    "window2": {"model_options": {"window_s": "2"}},         # shorter clips than the shipped 4 s
    "window3": {"model_options": {"window_s": "3"}},
    "window6": {"model_options": {"window_s": "6"}},         # longer clips than the shipped 4 s
    "window8": {"model_options": {"window_s": "8"}},         # the recipe shipped before the 4 s one
    "window12": {"model_options": {"window_s": "12"}},       # a clip that holds a whole after-context
    "lr1e-3": {"lr": 1e-3},
}


def valid_games(bench: Path) -> list[tuple[Path, dict, np.ndarray]]:
    from spotting_core.io.soccernet import LABELS_FILE, label_arrays, read_json
    from spotting_core.io.tables import read_labels

    out = []
    for game in json.loads((bench / "synth.json").read_text())["splits"]["valid"]:
        folder = bench / "valid" / game
        shown = (read_labels(folder / LABELS_FILE)["visibility"] != "not shown").to_numpy()
        out.append((folder, label_arrays(read_json(folder / LABELS_FILE)), shown))
    return out


def cross_validated(games, preds: list[dict], tolerance: float) -> dict:
    """The editors' list fitted on one fold of the valid games and read on the other, both ways."""
    from spotting_core.engine.calibrate import fit_thresholds, review_list

    rows = []   # per game: rows, found, true, shown, found shown
    for fit_part, read_part in ((0, 1), (1, 0)):
        thr = fit_thresholds([(g[1], p) for g, p in list(zip(games, preds))[fit_part::2]], tolerance_s=tolerance)
        for (_, labels, shown), p in list(zip(games, preds))[read_part::2]:
            n, found = review_list(labels, p, thr, tolerance_s=tolerance)
            rows.append((n, found.sum(), len(found), shown.sum(), (found & shown).sum()))
    r = np.array(rows, dtype=float)
    ok = (r[:, 1] >= 0.85 * r[:, 2]) & (r[:, 0] <= 1.5 * r[:, 2])
    return {"rows_per_true_event": float(r[:, 0].sum() / r[:, 2].sum()), "recall": float(r[:, 1].sum() / r[:, 2].sum()),
            "recall_shown": float(r[:, 4].sum() / r[:, 3].sum()),
            "recall_unshown": float((r[:, 1] - r[:, 4]).sum() / max((r[:, 2] - r[:, 3]).sum(), 1)),
            "unshown_share": float((r[:, 2] - r[:, 3]).sum() / r[:, 2].sum()), "games_meeting_both_goals": float(ok.mean())}


def run_variant(name: str, bench: Path, games, tmp: Path, tolerance: float) -> dict:
    from spotting_core.engine.inference import prediction_columns
    from spotting_core.engine.spot import load_spotter, spot_input
    from spotting_core.engine.train import fit
    from spotting_core.synth.demo_model import DEMO_TRAIN, demo_train_config

    cfg = demo_train_config(bench, tmp / f"{name}.pt", overrides={**VARIANTS[name], "evaluate_test": False})
    t0 = time.perf_counter()
    result = fit(cfg, progress=lambda f, text: None)
    train_s = time.perf_counter() - t0
    spotter = load_spotter(cfg.out, device="cpu")
    preds = []
    for folder, _, _ in games:
        events, _, _ = spot_input(spotter, folder, rescore=False)   # its rescorer was fitted on these games
        preds.append(prediction_columns(events))
    metric = DEMO_TRAIN["valid_metric"]
    return {"variant": name, "overrides": VARIANTS[name], f"valid_a_mAP_{metric}": float(result[f"best_valid_a_mAP_{metric}"]),
            "best_epoch": result["best_epoch"], "epochs": result["epochs"], "train_s": round(train_s, 1),
            **cross_validated(games, preds, tolerance)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default="base,window2,window3,window6,window8,window12,embed256",
                   help=f"comma-separated, of: {', '.join(VARIANTS)}")
    p.add_argument("--tolerance", type=float, default=5.0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown or not names:
        print(f"bench/demo_recipes.py: unknown variant {', '.join(unknown) or '(none given)'}; known: "
              f"{', '.join(VARIANTS)}", file=sys.stderr)
        return 2

    from spotting_core.synth.benchmark import split_sizes
    from spotting_core.synth.demo_model import DEMO_BENCHMARK, generate_benchmark

    out = []
    with tempfile.TemporaryDirectory(prefix="spotting-bench-recipes-") as tmp:
        n_train, n_valid, _ = split_sizes(DEMO_BENCHMARK["games"])
        bench = generate_benchmark(Path(tmp) / "bench", only=list(range(n_train + n_valid)))
        games = valid_games(bench)
        for name in names:
            r = run_variant(name, bench, games, Path(tmp), args.tolerance)
            out.append(r)
            print(f"{name:<9} valid tight a-mAP {r['valid_a_mAP_tight']:.4f} (best epoch {r['best_epoch']} of "
                  f"{r['epochs']}, {r['train_s']:.0f} s)  list {r['rows_per_true_event']:.2f} rows/true event, "
                  f"recall {r['recall']:.1%} (shown {r['recall_shown']:.1%}, unshown {r['recall_unshown']:.1%} of "
                  f"{r['unshown_share']:.1%} of the events), valid games meeting both goals {r['games_meeting_both_goals']:.0%}",
                  file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
