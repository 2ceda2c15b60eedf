"""Operating-point commands: `calibrate` (per-class thresholds fitted for F1 at a tolerance).

Imports of the library happen inside the command, so `spotting --help` stays light.
"""

from __future__ import annotations

import json


def cmd_calibrate(args) -> int:
    from spotting_core.engine.calibrate import fit_thresholds, write_thresholds
    from spotting_core.engine.evaluate import read_game_pairs
    from spotting_core.engine.rescore import reads_curves

    if not args.tolerance > 0:
        from spotting_core.errors import SpottingError

        raise SpottingError(f"--tolerance {args.tolerance}: must be positive (seconds)")
    games = read_game_pairs(args.labels, args.predictions, curves=args.context)
    thresholds = fit_thresholds(games, tolerance_s=args.tolerance, context=args.context)
    curves = reads_curves(thresholds.get("rescorer"))
    thresholds["fitted_on"] = {"labels": str(args.labels), "predictions": str(args.predictions)}
    write_thresholds(args.out, thresholds)
    if args.into:
        from spotting_core.models import store_extra

        store_extra(args.into, thresholds=thresholds)
    fitted = {k: thresholds[f"fit_{k}"] for k in ("precision", "recall", "kept", "candidates")}
    fitted["f1"] = thresholds["fit_f"]   # on the fitting games, as the fit counted them (no second matching)
    summary = {"out": str(args.out), "games": len(games), **{k: fitted[k] for k in ("precision", "recall", "f1", "kept", "candidates")}}
    if args.context:
        summary["rescorer_reads_curves"] = curves
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{args.out}: {len(games)} games, tolerance {args.tolerance:g} s; on these games: "
              f"precision {fitted['precision']:.3f}, recall {fitted['recall']:.3f}, f1 {fitted['f1']:.3f}, "
              f"{fitted['kept']} of {fitted['candidates']} candidates kept")
        if args.context:
            print("context rescorer: " + ("events and per-frame scores (<half>_scores.npy)" if curves else
                                          "events only (not every game has both <half>_scores.npy)"))
    return 0


def register(sub) -> None:
    c = sub.add_parser("calibrate", help="fit per-class confidence thresholds (max F1 at a tolerance)")
    c.add_argument("labels", help="SoccerNet tree or .zip with Labels-v2.json per game")
    c.add_argument("predictions", help="tree or .zip with results_spotting.json per game")
    c.add_argument("--out", required=True, help="thresholds JSON to write")
    c.add_argument("--tolerance", type=float, default=5.0, help="seconds either side (default 5)")
    c.add_argument("--into", metavar="CKPT", default=None,
                   help="also record them in this checkpoint (the app's default review lists use them)")
    c.add_argument("--context", action="store_true",
                   help="first fit a context rescorer (engine/rescore.py); the thresholds then hold for its revised "
                        "confidences, which `spot` applies with a checkpoint given --into. It also reads the "
                        "model's <half>_scores.npy when every game has them")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_calibrate)
