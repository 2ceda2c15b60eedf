"""The command line: `python -m spotting_core COMMAND ...` (also installed as `spotting`).

Each command is a small function `cmd_<name>(args)` that calls into the library. A `SpottingError`
(bad input) is printed as one line on stderr with exit code 2; nothing else is caught.
"""

from __future__ import annotations

import argparse
import json
import sys

from spotting_core.errors import SpottingError


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------
def cmd_evaluate(args) -> int:
    from spotting_core.engine.evaluate import evaluate, format_table

    results = evaluate(args.labels, args.predictions, metric=args.metric,
                       prediction_file=args.prediction_file, label_file=args.label_file)
    print(json.dumps(results) if args.json else format_table(results, metric=args.metric))
    return 0


def cmd_models(args) -> int:
    from spotting_core.models import MODELS, build_model, count_parameters

    rows = []
    for name in MODELS:
        model = build_model(name, input_dim=args.input_dim)
        rows.append({"name": name, "params": count_parameters(model)})
    if args.json:
        print(json.dumps(rows))
    else:
        print(f"{'model':<16}{'params (D=' + str(args.input_dim) + ')':>20}")
        for r in rows:
            print(f"{r['name']:<16}{r['params']:>20,}")
    return 0


def cmd_train(args) -> int:
    from spotting_core.engine.train import TrainConfig, fit

    bad = [kv for kv in args.set or [] if "=" not in kv]
    if bad:
        raise SpottingError(f"--set {bad[0]}: expected KEY=VALUE")
    overrides = dict(kv.split("=", 1) for kv in args.set or [])
    cfg = TrainConfig(model=args.model, data=args.data, features=args.features, out=args.out,
                      epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      patience=args.patience, device=args.device, model_options=overrides)
    result = fit(cfg)
    summary = {k: v for k, v in result.items() if k != "history"}
    print(json.dumps(summary))
    return 0


def cmd_spot(args) -> int:
    from spotting_core.engine.spot import spot_path

    out = spot_path(args.input, checkpoint=args.checkpoint, out_dir=args.out, backbone=args.backbone,
                    window_s=args.nms_window, threshold=args.threshold, method=args.nms,
                    device=args.device, half_offset_s=args.half_offset)
    print(out)
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


def cmd_features(args) -> int:
    from spotting_core.features.extract import extract_to_file

    out = extract_to_file(args.video, backbone=args.backbone, fps=args.fps, out=args.out, device=args.device)
    print(out)
    return 0


def cmd_reel(args) -> int:
    from spotting_core.media.render import make_reel, reel_summary

    plan = make_reel(args.video, events=args.events, out=args.out, mode=args.mode, pre=args.pre,
                     post=args.post, classes=args.classes, min_confidence=args.min_confidence,
                     half=args.half, max_duration=args.max_duration)
    print(f"reel: {reel_summary(plan)}; edit lists beside it (.csv .losslesscut.csv .edl .srt .vtt "
          ".results_spotting.json)", file=sys.stderr)
    print(args.out)
    return 0


def cmd_import_official(args) -> int:
    from spotting_core.models.official import import_official_checkpoint

    out = import_official_checkpoint(args.checkpoint, args.out, pool=args.pool, window_s=args.window,
                                     feature_name=args.features)
    print(out)
    return 0


def cmd_demo(args) -> int:
    from spotting_core.synth.demo import ensure_demo

    print(ensure_demo(rebuild=args.rebuild))
    return 0


# ---------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spotting", description="Action spotting in soccer broadcasts.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    e = sub.add_parser("evaluate", help="Average-mAP of predictions against labels (official semantics)")
    e.add_argument("labels", help="SoccerNet tree or .zip with Labels-v2.json per game")
    e.add_argument("predictions", help="tree or .zip with results_spotting.json per game")
    e.add_argument("--metric", choices=["loose", "tight"], default="loose")
    e.add_argument("--json", action="store_true", help="one JSON object with the official key names")
    e.add_argument("--label-file", default="Labels-v2.json")
    e.add_argument("--prediction-file", default="results_spotting.json")
    e.set_defaults(func=cmd_evaluate)

    m = sub.add_parser("models", help="list the registered models and their parameter counts")
    m.add_argument("--input-dim", type=int, default=512)
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_models)

    t = sub.add_parser("train", help="train a model on SoccerNet-layout features")
    t.add_argument("--model", required=True)
    t.add_argument("--data", required=True, help="SoccerNet tree (or one with train/valid/test folders)")
    t.add_argument("--features", default="ResNET_TF2_PCA512", help="feature file suffix: 1_<features>.npy")
    t.add_argument("--out", required=True, help="checkpoint path to write")
    t.add_argument("--epochs", type=int, default=None, help="default: the model's own")
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--lr", type=float, default=None)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--patience", type=int, default=None, help="early stopping on valid Average-mAP")
    t.add_argument("--device", default=None, help="cuda / cpu (default: cuda when available)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="model option override, repeatable")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("spot", help="spot events in a video, a game folder or a features file")
    s.add_argument("input", help="video file, SoccerNet game folder, or a (T, D) .npy features file")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--out", default=None, help="output folder (default: next to the input)")
    s.add_argument("--backbone", default=None, help="video only; default: the checkpoint's features")
    s.add_argument("--nms-window", type=float, default=None, help="seconds; default: the model's")
    s.add_argument("--threshold", type=float, default=None, help="NMS threshold; default: the model's")
    s.add_argument("--nms", choices=["hard", "linear", "gaussian"], default="hard")
    s.add_argument("--half-offset", type=float, default=None,
                   help="video only: second half starts this many seconds into the file")
    s.add_argument("--device", default=None)
    s.set_defaults(func=cmd_spot)

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

    f = sub.add_parser("features", help="extract (T, D) frame features from a video")
    f.add_argument("video")
    f.add_argument("--backbone", default="mobilenetv2-offline")
    f.add_argument("--fps", type=float, default=2.0)
    f.add_argument("--out", default=None, help="default: cached next to the video")
    f.add_argument("--device", default=None)
    f.set_defaults(func=cmd_features)

    r = sub.add_parser("reel", help="cut a highlight reel from a video and its events")
    r.add_argument("video")
    r.add_argument("--events", required=True, help="results_spotting.json (or a review export)")
    r.add_argument("--out", required=True)
    r.add_argument("--mode", choices=["fast", "exact"], default="fast")
    r.add_argument("--pre", type=float, default=None, help="seconds before each event (default: per class)")
    r.add_argument("--post", type=float, default=None, help="seconds after each event (default: per class)")
    r.add_argument("--classes", default=None, help="comma-separated class names")
    r.add_argument("--min-confidence", type=float, default=0.5)
    r.add_argument("--half", type=int, choices=[1, 2], default=1)
    r.add_argument("--max-duration", type=float, default=None, help="cap on the reel's length in seconds")
    r.set_defaults(func=cmd_reel)

    i = sub.add_parser("import-official", help="convert an official SoccerNet pooling checkpoint")
    i.add_argument("checkpoint")
    i.add_argument("--out", required=True)
    i.add_argument("--pool", default="maxpool", help="the official model's pooling (default: maxpool)")
    i.add_argument("--window", type=float, default=20.0, help="its window in seconds (default: 20)")
    i.add_argument("--features", default="ResNET_TF2_PCA512")
    i.set_defaults(func=cmd_import_official)

    o = sub.add_parser("demo", help="build (once) and print the folder of the synthetic demo match")
    o.add_argument("--rebuild", action="store_true")
    o.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SpottingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
