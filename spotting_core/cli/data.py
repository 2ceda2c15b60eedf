"""Data commands: `evaluate` (the official Average-mAP), `synth` (the synthetic benchmark), `download`.

Each command is `cmd_<name>(args)`; `register(sub)` adds its parsers. Imports of the library happen
inside the commands, so `spotting --help` and the metric stay light.
"""

from __future__ import annotations

import json
import os

from spotting_core.errors import SpottingError


def cmd_evaluate(args) -> int:
    # The metric does no linear algebra: starting OpenBLAS's thread pool (on numpy's import) would
    # cost more CPU than the metric itself. Only when numpy is not loaded yet and the user set nothing.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from spotting_core.engine.evaluate import METRICS, average_map_pairs, format_table, read_game_pairs

    metrics = METRICS if args.metric == "all" else (args.metric,)
    thresholds = rescorer = None
    if args.thresholds:  # precision / recall / F1 at the operating points, beside Average-mAP
        from spotting_core.engine.calibrate import read_thresholds, score_at
        from spotting_core.engine.rescore import reads_curves, rescore_games

        if args.tolerance <= 0:
            raise SpottingError(f"--tolerance must be positive seconds, not {args.tolerance:g}")
        thresholds = read_thresholds(args.thresholds)
        rescorer = thresholds.get("rescorer")   # `calibrate --context`: its thresholds hold for rescored confidences
    pairs = read_game_pairs(args.labels, args.predictions, label_file=args.label_file,
                            prediction_file=args.prediction_file,
                            curves=rescorer is not None and reads_curves(rescorer))   # every file read once
    results = average_map_pairs(pairs, metrics=metrics)
    out = dict(results) if args.metric == "all" else dict(results[args.metric])
    point = None
    if thresholds is not None:
        if rescorer:
            pairs = rescore_games(rescorer, pairs)
        point = score_at(pairs, thresholds, tolerance_s=args.tolerance)
        out.update({k: point[k] for k in ("precision", "recall", "f1")},
                   operating_point={"thresholds": str(args.thresholds), "rescored": bool(rescorer), **point})
    if args.json:  # one metric: its six keys; all: {metric: its six keys}; + the operating point's
        print(json.dumps(out))
        return 0
    print("\n\n".join(format_table(results[m], metric=m) for m in metrics))
    if point is not None:
        how = ", on context-rescored confidences" if out["operating_point"]["rescored"] else ""
        print(f"\nat the operating points of {args.thresholds} (+-{args.tolerance:g} s{how}): precision "
              f"{point['precision']:.4f}  recall {point['recall']:.4f}  F1 {point['f1']:.4f}  "
              f"(kept {point['kept']} of {point['candidates']} predictions, {point['labels']} labels)")
        for name, row in point["per_class"].items():
            print(f"  {name:<20} precision {row['precision']:.4f}  recall {row['recall']:.4f}  "
                  f"F1 {row['f1']:.4f}  kept {row['kept']:>6}  labels {row['labels']:>6}")
    return 0


def cmd_synth(args) -> int:
    from spotting_core.synth.benchmark import generate

    root = generate(args.out, games=args.games, seed=args.seed, timelines=args.timelines,
                    half_minutes=args.half_minutes, dim=args.dim)
    print(root)
    return 0


def cmd_download(args) -> int:
    from spotting_core.io.download import download

    download(args.dir, splits=args.split, files=args.files, password=args.password)
    return 0


def register(sub) -> None:
    e = sub.add_parser("evaluate", help="Average-mAP of predictions against labels (official semantics)")
    e.add_argument("labels", help="SoccerNet tree or .zip with Labels-v2.json per game")
    e.add_argument("predictions", help="tree or .zip with results_spotting.json per game")
    e.add_argument("--metric", choices=["loose", "tight", "all"], default="loose",
                   help="all: loose and tight in one pass over the files")
    e.add_argument("--json", action="store_true",
                   help="one JSON object with the official key names (--metric all: keyed by metric)")
    e.add_argument("--label-file", default="Labels-v2.json")
    e.add_argument("--prediction-file", default="results_spotting.json")
    e.add_argument("--thresholds", metavar="FILE", default=None,
                   help="also precision, recall and F1 at these operating points (`spotting calibrate`), "
                        "overall (top-level keys precision, recall, f1) and per class; a file from "
                        "`calibrate --context` rescores the predictions first (give it a model's own predictions, "
                        "with the <half>_scores.npy beside them when its rescorer read those)")
    e.add_argument("--tolerance", type=float, default=5.0,
                   help="seconds either side for --thresholds (default 5)")
    e.set_defaults(func=cmd_evaluate)

    y = sub.add_parser("synth", help="generate a synthetic SoccerNet-layout benchmark")
    y.add_argument("out")
    y.add_argument("--games", type=int, default=20)
    y.add_argument("--seed", type=int, default=0)
    y.add_argument("--timelines", default=None, help="take event timelines from these Labels-v2.json files")
    y.add_argument("--half-minutes", type=float, default=45.0)
    y.add_argument("--dim", type=int, default=512)
    y.set_defaults(func=cmd_synth)

    d = sub.add_parser("download", help="download SoccerNet features and labels (needs SoccerNet's servers)")
    d.add_argument("dir")
    d.add_argument("--split", nargs="+", default=["train", "valid", "test"])
    d.add_argument("--files", nargs="+", default=["1_ResNET_TF2_PCA512.npy", "2_ResNET_TF2_PCA512.npy", "Labels-v2.json"])
    d.add_argument("--password", default=None, help="only needed for videos")
    d.set_defaults(func=cmd_download)
