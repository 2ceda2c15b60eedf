"""Commands on a video's pictures: `shots`.

`register(sub)` adds the parsers; the library is imported inside the command (light `--help`).
"""

from __future__ import annotations


def cmd_shots(args) -> int:
    from spotting_core.media.shots import shots_command

    print(shots_command(args.video, detector=args.detector, as_json=args.json, device=args.device))
    return 0


def register(sub) -> None:
    s = sub.add_parser("shots", help="shot boundaries of a video (cuts, dissolves, logo wipes; cached beside it)")
    s.add_argument("video")
    s.add_argument("--json", action="store_true",
                   help='print {"detector", "fps", "boundaries_s", "transitions", "replay_candidates", ...}')
    s.add_argument("--detector", choices=["transnetv2", "content"], default=None,
                   help="default: transnetv2 (TransNetV2 + wipes) when installed, else content")
    s.add_argument("--device", default=None, help="transnetv2: cpu or cuda (default: cuda when available)")
    s.set_defaults(func=cmd_shots)
