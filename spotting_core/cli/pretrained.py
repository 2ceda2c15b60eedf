"""`spotting pretrained list | fetch NAME... | import NAME FILE...`: the official weights, verified.

    spotting pretrained list [--json]                  every entry: installed or not, size, reported Average-mAP
    spotting pretrained fetch soccernet-netvlad++      + the entries it requires (--no-deps: only it)
    spotting pretrained import soccernet-netvlad-v1 model.pth.tar    offline: files downloaded by hand

The registry is models/pretrained.py; an installed checkpoint entry's name works as `--checkpoint`.
"""

from __future__ import annotations

import json
import sys


def cmd_list(args) -> int:
    from spotting_core.models.pretrained import ENTRIES, describe

    rows = [describe(name) for name in ENTRIES]
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'name':<22}{'installed':<11}{'size':<20}{'features':<26}{'classes':<19}{'NMS':<12}reported Average-mAP")
    for r in rows:
        nms = f"{r['nms']['window_s']:g} s/{r['nms']['threshold']:g}" if "nms" in r else ""
        rep = f"{r['reported']['average_map']:.4f} ({r['reported']['metric']})" if r.get("reported") else ""
        state = "yes" if r["installed"] else "no"
        print(f"{r['name']:<22}{state:<11}{r['size']:<20}{r['features']:<26}{r.get('classes', ''):<19}{nms:<12}{rep}".rstrip())
    print("fetch one with `spotting pretrained fetch NAME` (it brings the entries it requires); "
          "use an installed checkpoint with `--checkpoint NAME`", file=sys.stderr)
    return 0


def _report(paths, names) -> None:
    for p in paths:
        print(p)
    if not paths:
        print(f"already installed: {', '.join(names)} (--force to fetch again)", file=sys.stderr)


def cmd_fetch(args) -> int:
    from spotting_core.models.pretrained import entry, fetch, missing

    for name in args.names:
        entry(name)  # every name checked before anything is downloaded
    for name in args.names:
        _report(fetch(name, deps=not args.no_deps, force=args.force), [name])
        still = missing(name)
        if still:
            print(f"{name}: video input also needs {', '.join(still)} (`spotting pretrained fetch {' '.join(still)}`)",
                  file=sys.stderr)
    return 0


def cmd_import(args) -> int:
    from spotting_core.models.pretrained import import_files, missing

    for p in import_files(args.name, args.files):
        print(p)
    still = [n for n in missing(args.name) if n != args.name]
    if still:
        print(f"{args.name}: video input also needs {', '.join(still)} (fetch or import them too)", file=sys.stderr)
    return 0


def register(sub) -> None:
    p = sub.add_parser("pretrained", help="the official SoccerNet-trained weights: list, fetch, import")
    psub = p.add_subparsers(dest="pretrained_command", required=True, metavar="ACTION")

    ls = psub.add_parser("list", help="every entry, whether it is installed, its size and reported Average-mAP")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)

    f = psub.add_parser("fetch", help="download, verify, convert and install (with the entries it requires)")
    f.add_argument("names", nargs="+", metavar="NAME")
    f.add_argument("--no-deps", action="store_true", help="only the named entries, not their feature extractors")
    f.add_argument("--force", action="store_true", help="fetch again even when installed")
    f.set_defaults(func=cmd_fetch)

    i = psub.add_parser("import", help="verify and install files downloaded by hand (offline machines)")
    i.add_argument("name", metavar="NAME")
    i.add_argument("files", nargs="+", metavar="FILE")
    i.set_defaults(func=cmd_import)
