"""Peak memory of `spotting train` against the number of games: memory-mapped features (the default)
against every game read into RAM.

    .venv/bin/python bench/train_memory.py [--games 50 300] [--half-minutes 45] [--dim 512]
        [--model netvlad++] [--root bench/.cache/train_memory] [--in-ram-games 50] [--json]

One synthetic SoccerNet-layout tree of max(--games) games (`synth.benchmark.generate`: 2 x 45 min
at 2 fps, 512-d, 22 MB a game, 6.6 GB for 300) is written once under --root (default
bench/.cache/train_memory, git-ignored; reused while its synth.json matches) and each smaller tree
is a subset of its game folders (hard links, the same 60/20/20 split). For each size a fresh child
process trains one epoch (`TrainConfig(epochs=1, evaluate_test=False)`: the sampler over every
train game, then validation over every valid game) and reports its peak resident set: VmHWM
(= ru_maxrss, file-backed pages of memory maps included) and, polled every 20 ms, the peak of
RssAnon (the process's own memory) and RssFile (mapped file pages).

`--in-ram-games` also trains with `mmap=False` (every train and valid game read into RAM) on that
many games; its peak is then extrapolated to the largest size by the features it would add. The
loader before issue 12 held more still, which is computed: float32 instead of int8 per-frame
events for every game, and the valid games' dense (T, 17) targets and float64 detections.

Goal (issue 12): the peak on 300 games within 1.2x the peak on 50 games, and under 3 GB.
Exit code 1 when a goal is missed. Smoke test: --games 4 8 --half-minutes 1 --dim 64 --in-ram-games 4.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_RATIO, GOAL_GB = 1.2, 3.0
CLASSES = 17


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def child(args) -> None:
    """Train one epoch on args.child; print the peaks as JSON."""
    from spotting_core.engine.train import TrainConfig, fit
    from spotting_core.synth.benchmark import feature_name

    peaks = {"RssAnon": 0, "RssFile": 0}
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            for k in peaks:
                peaks[k] = max(peaks[k], _status_kb(k))
            time.sleep(0.02)

    base = _status_kb("VmRSS")
    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        fit(TrainConfig(model=args.model, data=args.child, features=feature_name(args.dim), out=str(Path(tmp) / "m.pt"),
                        epochs=1, evaluate_test=False, mmap=not args.in_ram, seed=0,
                        clips_per_epoch=args.clips_per_epoch))
        seconds = time.perf_counter() - t0
    stop.set()
    thread.join()
    print(json.dumps({"peak_mb": _status_kb("VmHWM") / 1024, "anon_mb": peaks["RssAnon"] / 1024,
                      "file_mb": peaks["RssFile"] / 1024, "start_mb": base / 1024, "train_s": seconds}))


def ensure_tree(root: Path, games: int, half_minutes: float, dim: int) -> Path:
    from spotting_core.synth.benchmark import INFO_FILE, generate

    tree = root / f"synth-{games}g-{dim}d-{half_minutes:g}min"
    info = tree / INFO_FILE
    if info.is_file():
        meta = json.loads(info.read_text())
        if (meta["games"], meta["dim"], meta["half_minutes"]) == (games, dim, half_minutes):
            return tree
    print(f"generating {games} games under {tree} ...", file=sys.stderr)
    generate(tree, games=games, seed=0, half_minutes=half_minutes, dim=dim)
    return tree


def subset(big: Path, games: int, dest: Path) -> Path:
    """A tree of `games` games: the first game folders of each split of `big`, linked."""
    from spotting_core.synth.benchmark import INFO_FILE, SPLIT_SHARES

    splits = json.loads((big / INFO_FILE).read_text())["splits"]
    n_valid = max(1, round(games * SPLIT_SHARES[1]))
    n_test = max(1, round(games * SPLIT_SHARES[2]))
    wanted = {"train": games - n_valid - n_test, "valid": n_valid, "test": n_test}
    for split, n in wanted.items():
        for rel in splits[split][:n]:
            folder = dest / split / rel
            folder.mkdir(parents=True, exist_ok=True)
            for f in (big / split / rel).iterdir():   # hard links: no copy, and found by every walk
                if not (folder / f.name).exists():
                    os.link(f, folder / f.name)
    return dest


def measure(tree: Path, args, *, in_ram: bool) -> dict:
    cmd = [sys.executable, __file__, "--child", str(tree), "--dim", str(args.dim), "--model", args.model]
    cmd += ["--in-ram"] if in_ram else []
    cmd += ["--clips-per-epoch", str(args.clips_per_epoch)] if args.clips_per_epoch else []
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode:
        sys.exit(f"child failed on {tree}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def tree_bytes(tree: Path, splits=("train", "valid")) -> int:
    return sum(p.stat().st_size for s in splits for p in (tree / s).rglob("*.npy"))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--games", type=int, nargs="+", default=[50, 300])
    p.add_argument("--half-minutes", type=float, default=45.0)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--model", default="netvlad++")
    p.add_argument("--root", default=str(ROOT / "bench" / ".cache" / "train_memory"))
    p.add_argument("--in-ram-games", type=int, default=50, help="0: skip the in-RAM run")
    p.add_argument("--clips-per-epoch", type=int, default=None, help="cap the epoch (default: every clip)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--in-ram", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return 0

    root = Path(args.root)
    sizes = sorted(set(args.games))
    big = ensure_tree(root, sizes[-1], args.half_minutes, args.dim)
    rows = []
    with tempfile.TemporaryDirectory(dir=root) as links:
        trees = {n: big if n == sizes[-1] else subset(big, n, Path(links) / f"{n}g") for n in sizes}
        for n in sizes:
            r = measure(trees[n], args, in_ram=False)
            rows.append({"games": n, "loader": "mmap", "features_mb": tree_bytes(trees[n]) / 2**20, **r})
            print(f"{n} games, memory-mapped: peak {r['peak_mb']:.0f} MB (anon {r['anon_mb']:.0f}, "
                  f"file {r['file_mb']:.0f}), {r['train_s']:.0f} s", file=sys.stderr)
        if args.in_ram_games:
            n = args.in_ram_games
            tree = trees.get(n) or subset(big, n, Path(links) / f"{n}g-ram")
            r = measure(tree, args, in_ram=True)
            rows.append({"games": n, "loader": "in RAM", "features_mb": tree_bytes(tree) / 2**20, **r})
            print(f"{n} games, in RAM: peak {r['peak_mb']:.0f} MB, {r['train_s']:.0f} s", file=sys.stderr)
            # the same loader on the largest tree: the train + valid features it would add
            extra = (tree_bytes(big) - tree_bytes(tree)) / 2**20
            frames = args.half_minutes * 60 * 2 * 2                     # per game, both halves at 2 fps
            n_valid = len(json.loads((big / "synth.json").read_text())["splits"]["valid"])
            n_games = sum(len(v) for k, v in json.loads((big / "synth.json").read_text())["splits"].items()
                          if k != "test")
            old = (n_games * frames * CLASSES * 3 + n_valid * frames * CLASSES * (4 + 8)) / 2**20
            rows.append({"games": sizes[-1], "loader": "in RAM (extrapolated)",
                         "peak_mb": r["peak_mb"] + extra, "features_mb": tree_bytes(big) / 2**20})
            rows.append({"games": sizes[-1], "loader": "before issue 12 (computed)",
                         "peak_mb": r["peak_mb"] + extra + old, "features_mb": tree_bytes(big) / 2**20})

    mm = {r["games"]: r["peak_mb"] for r in rows if r["loader"] == "mmap"}
    small, large = mm[sizes[0]], mm[sizes[-1]]
    ratio = large / small
    ok = ratio <= GOAL_RATIO and large / 1024 < GOAL_GB
    if args.json:
        print(json.dumps({"rows": rows, "ratio": ratio, "tree": str(big), "ok": ok}, indent=2))
    else:
        print(f"tree: {big} ({tree_bytes(big, ('train', 'valid', 'test')) / 2**30:.2f} GB)")
        print(f"{'games':>6}  {'loader':<28}{'features MB':>12}{'peak RSS MB':>13}{'anon MB':>9}{'file MB':>9}")
        for r in rows:
            print(f"{r['games']:>6}  {r['loader']:<28}{r['features_mb']:>12.0f}{r['peak_mb']:>13.0f}"
                  f"{r.get('anon_mb', float('nan')):>9.0f}{r.get('file_mb', float('nan')):>9.0f}")
        print(f"peak on {sizes[-1]} games / on {sizes[0]}: {ratio:.3f} (goal <= {GOAL_RATIO}); "
              f"{large / 1024:.2f} GB (goal < {GOAL_GB} GB): {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
