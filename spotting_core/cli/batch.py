"""`spotting batch TREE`: every game of a tree (or every match video of a folder) on Ray, resumable.

    spotting batch TREE --checkpoint CKPT [--out OUT] [--workers N] [--address ADDR] [--json]
    spotting batch TREE --features-only --backbone NAME [--out OUT]

Exit code 0 when every game succeeded, 1 when some failed (each named with its reason), 2 for bad
usage (unknown checkpoint, empty tree, bad address). Ray is imported inside the command only.
"""

from __future__ import annotations

import json
import sys


def cmd_batch(args) -> int:
    from tqdm import tqdm

    from spotting_core.engine.batch import features_job, spot_job
    from spotting_core.engine.batch_ray import run_batch
    from spotting_core.errors import SpottingError

    if args.features_only:
        if not args.backbone or args.checkpoint:
            raise SpottingError("--features-only needs --backbone NAME and no --checkpoint")
        job = features_job(args.backbone, fps=args.fps, half_offset_s=args.half_offset)
    else:
        if not args.checkpoint:
            raise SpottingError("--checkpoint CKPT is needed (or --features-only --backbone NAME)")
        from spotting_core.models import resolve_checkpoint

        args.checkpoint = str(resolve_checkpoint(args.checkpoint))  # a pretrained entry's name -> its file
        job = spot_job(args.checkpoint, backbone=args.backbone, window_s=args.nms_window,
                         threshold=args.threshold, method=args.nms, half_offset_s=args.half_offset)
    bar, counts = None, {"done": 0, "skipped": 0, "failed": 0}

    def plan(todo: int, skipped: int) -> None:
        counts["todo"], counts["skipped"] = todo, skipped
        what = "backbone" if args.features_only else "checkpoint"
        print(f"{todo} game(s) to run, {skipped} skipped (already done with this {what})", file=sys.stderr)

    def started(workers: list[dict]) -> None:
        nonlocal bar
        devices = sorted({f"{w['host']}:{w['device']}" for w in workers})
        print(f"{len(workers)} worker(s) on {', '.join(devices)}", file=sys.stderr)
        bar = tqdm(total=counts.pop("todo"), unit="game", desc="batch", file=sys.stderr, dynamic_ncols=True)
        bar.set_postfix(counts)

    def result(record: dict) -> None:
        counts["done" if record["status"] == "done" else "failed"] += 1
        if bar is not None:
            if record["status"] != "done":
                bar.write(f"failed: {record['game']}: {record['error']}", file=sys.stderr)
            bar.set_postfix(counts, refresh=False)
            bar.update(1)

    try:
        summary = run_batch(args.tree, job=job, checkpoint=args.checkpoint, out=args.out, workers=args.workers,
                            address=args.address, device=args.device,
                            video_suffix="" if args.features_only else "_spotting",
                            on_plan=plan, on_started=started, on_result=result)
    finally:
        if bar is not None:
            bar.close()
    failed = summary["failed"]
    print(f"{summary['done']} done, {summary['skipped']} skipped, {len(failed)} failed", file=sys.stderr)
    for f in failed:
        print(f"  {f['game']}: {f['error']}", file=sys.stderr)
    if args.json:
        print(json.dumps({k: summary[k] for k in ("done", "skipped", "failed")}))
    return 1 if failed else 0


def register(sub) -> None:
    b = sub.add_parser("batch", help="spot (or extract features of) every game of a tree on Ray, resumable")
    b.add_argument("tree", help="SoccerNet-layout tree (game folders with features or half videos) "
                                "or a folder of match videos")
    b.add_argument("--checkpoint", default=None, help="a .pt file or a pretrained entry's name")
    b.add_argument("--out", default=None, help="output tree (default: next to each input)")
    b.add_argument("--workers", type=int, default=None, help="default: the cores (the cluster's CPUs with --address)")
    b.add_argument("--address", default=None, help="join a Ray cluster: auto, ray://HOST:10001 or HOST:6379 "
                                                   "(default: start a local Ray)")
    b.add_argument("--json", action="store_true", help='print {"done", "skipped", "failed": [{"game", "error"}]}')
    b.add_argument("--features-only", action="store_true", help="write <half>_<features>.npy, no spotting")
    b.add_argument("--backbone", default=None, help="videos: the frame backbone (default: the checkpoint's)")
    b.add_argument("--fps", type=float, default=2.0, help="--features-only: frames per second")
    b.add_argument("--nms-window", type=float, default=None, help="seconds; default: the model's")
    b.add_argument("--threshold", type=float, default=None, help="NMS threshold; default: the model's")
    b.add_argument("--nms", choices=["hard", "linear", "gaussian"], default="hard")
    b.add_argument("--half-offset", type=float, default=None,
                   help="match videos: the second half starts this many seconds into each file")
    b.add_argument("--device", default=None, help="cpu / cuda (default: CUDA where the worker has it)")
    b.set_defaults(func=cmd_batch)
