"""Data commands: `evaluate` (the official Average-mAP), `synth` (the synthetic benchmark), `download`.

Each command is `cmd_<name>(args)`; `register(sub)` adds its parsers. Imports of the library happen
inside the commands, so `spotting --help` and the metric stay light.
"""

from __future__ import annotations

import json


def cmd_evaluate(args) -> int:
    from spotting_core.engine.evaluate import evaluate, format_table

    results = evaluate(args.labels, args.predictions, metric=args.metric,
                       prediction_file=args.prediction_file, label_file=args.label_file)
    print(json.dumps(results) if args.json else format_table(results, metric=args.metric))
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
    e.add_argument("--metric", choices=["loose", "tight"], default="loose")
    e.add_argument("--json", action="store_true", help="one JSON object with the official key names")
    e.add_argument("--label-file", default="Labels-v2.json")
    e.add_argument("--prediction-file", default="results_spotting.json")
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
