"""Model commands: `models` (the registry), `train`, `import-official` (official SoccerNet checkpoints).

Each command is `cmd_<name>(args)`; `register(sub)` adds its parsers. Imports of the library happen
inside the commands, so `spotting --help` and the metric stay light.
"""

from __future__ import annotations

import json

from spotting_core.errors import SpottingError


def cmd_models(args) -> int:
    if args.input_dim < 1:
        raise SpottingError(f"--input-dim must be a positive feature dimension, not {args.input_dim}")
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


def cmd_import_official(args) -> int:
    from spotting_core.models.official import import_official_checkpoint

    out = import_official_checkpoint(args.checkpoint, args.out, pool=args.pool, window_s=args.window,
                                     feature_name=args.features)
    print(out)
    return 0


def register(sub) -> None:
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

    i = sub.add_parser("import-official", help="convert an official SoccerNet checkpoint (Pooling, "
                                               "TemporallyAwarePooling, CALF); `spotting pretrained` fetches them")
    i.add_argument("checkpoint")
    i.add_argument("--out", required=True)
    i.add_argument("--pool", default=None, help="the official model's pooling (default: its log's, else what its weights fit)")
    i.add_argument("--window", type=float, default=None, help="its window in seconds (default: its log's, else 20)")
    i.add_argument("--features", default="ResNET_TF2_PCA512")
    i.set_defaults(func=cmd_import_official)
