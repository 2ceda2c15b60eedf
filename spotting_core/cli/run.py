"""Commands that run on a match: `spot`, `features`, `reel`, `demo`.

Each command is `cmd_<name>(args)`; `register(sub)` adds its parsers. Imports of the library happen
inside the commands, so `spotting --help` and the metric stay light.
"""

from __future__ import annotations

import sys


def cmd_spot(args) -> int:
    from spotting_core.engine.spot import spot_path

    out = spot_path(args.input, checkpoint=args.checkpoint, out_dir=args.out, backbone=args.backbone,
                    window_s=args.nms_window, threshold=args.threshold, method=args.nms,
                    device=args.device, half_offset_s=args.half_offset)
    print(out)
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
                     half=args.half, max_duration=args.max_duration,
                     snap_s=None if args.no_snap else args.snap, with_replays=args.with_replays,
                     detector=args.detector)
    print(f"reel: {reel_summary(plan)}; edit lists beside it (.csv .losslesscut.csv .llc .edl .srt .vtt "
          ".results_spotting.json)", file=sys.stderr)
    print(args.out)
    return 0


def cmd_demo(args) -> int:
    from spotting_core.synth.demo import ensure_demo

    print(ensure_demo(rebuild=args.rebuild))
    return 0


def register(sub) -> None:
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
    r.add_argument("--snap", type=float, default=3.0, metavar="S",
                   help="move each segment's start back to a shot start, its end forward to a shot end, within S s")
    r.add_argument("--no-snap", action="store_true", help="keep the padded times (no shot detection)")
    r.add_argument("--with-replays", action="store_true",
                   help="extend a segment to the end of a replay starting within 30 s after its event (capped per class)")
    r.add_argument("--detector", choices=["transnetv2", "content"], default=None,
                   help="shot detector for --snap (default: transnetv2 when installed)")
    r.set_defaults(func=cmd_reel)

    o = sub.add_parser("demo", help="build (once) and print the folder of the synthetic demo match")
    o.add_argument("--rebuild", action="store_true")
    o.set_defaults(func=cmd_demo)
