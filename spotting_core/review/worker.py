"""The job worker: a process that runs queued jobs (review/jobs.py) one at a time, apart from the app's pages.

    python -m spotting_core.review.worker [--queue FILE] [--slot 0] [--parent PID]
    start_workers(slots=1)        what the app calls: one worker per slot, each holding a lock file

A job runs `RUNNERS[kind](inputs, progress)`; progress reports double as heartbeats and as the point
where a cancel request stops the job. A SpottingError fails the job with its one line; any other error
fails it with one line too, its traceback going to the worker log (`<cache root>/jobs-worker.log`).
With `--parent`, the worker ends when that process (the app server) ends: its running jobs are then
marked interrupted by the next server's `JobQueue.recover()` and can be resumed.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from spotting_core.errors import SpottingError
from spotting_core.review.jobs import HEARTBEAT_S, JobQueue, pid_alive

ENV_SLOTS = "SPOTTING_JOB_SLOTS"


class JobCancelled(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# What a job can be
# ---------------------------------------------------------------------------------------------
def _spot_video(inputs: dict, progress) -> dict:
    from spotting_core.review.matches import open_video

    match = open_video(inputs["video"], inputs["checkpoint"], half2_offset_s=inputs.get("half2_offset_s"),
                       progress=progress, rebuild=bool(inputs.get("rebuild")))
    return {"folder": match.folder, "name": match.name}


def _spot_game(inputs: dict, progress) -> dict:
    from spotting_core.review.matches import open_game_folder

    match = open_game_folder(inputs["game_dir"], inputs["checkpoint"], progress=progress,
                             rebuild=bool(inputs.get("rebuild")))
    return {"folder": match.folder, "name": match.name}


def _reel(inputs: dict, progress) -> dict:
    from spotting_core.media.reels import plan_from_dict
    from spotting_core.media.render import cut_reel

    out = cut_reel(plan_from_dict(inputs["plan"]), inputs["out"], mode=inputs.get("mode", "fast"), progress=progress)
    return {"reel": str(out)}


def _pretrained(inputs: dict, progress) -> dict:
    from spotting_core.models.pretrained import fetch

    installed = fetch(inputs["name"], progress=progress)
    return {"name": inputs["name"], "installed": [str(p) for p in installed]}


RUNNERS: dict[str, Callable[[dict, Callable[[float, str], None]], dict]] = {
    "spot_video": _spot_video,
    "spot_game": _spot_game,
    "reel": _reel,
    "pretrained": _pretrained,
}


# ---------------------------------------------------------------------------------------------
# Running one job
# ---------------------------------------------------------------------------------------------
def run_job(queue: JobQueue, job: dict) -> str:
    """Run a claimed job to its end; returns its final state."""
    job_id, stop = job["id"], threading.Event()
    cancelled = threading.Event()

    def beat() -> None:  # heartbeats while the job computes between progress reports
        while not stop.wait(HEARTBEAT_S):
            if queue.report(job_id):
                cancelled.set()

    def progress(fraction: float, text: str = "") -> None:
        if queue.report(job_id, fraction, text) or cancelled.is_set():
            raise JobCancelled()

    threading.Thread(target=beat, daemon=True).start()
    try:
        result = RUNNERS[job["kind"]](job["inputs"], progress)
        queue.finish(job_id, state="done", message="done", result=result)
        return "done"
    except JobCancelled:
        queue.finish(job_id, state="cancelled", message="cancelled")
        return "cancelled"
    except SpottingError as e:
        queue.finish(job_id, state="failed", message=str(e))
        return "failed"
    except Exception as e:  # a bug: one line for the page, the traceback for the log
        traceback.print_exc(file=sys.stderr)
        first = (str(e).splitlines() or [""])[0][:200]
        queue.finish(job_id, state="failed", message=f"internal error: {type(e).__name__}: {first} (see the worker log)")
        return "failed"
    finally:
        stop.set()


def serve(queue: JobQueue, *, parent: int | None = None, idle_s: float = 0.5, once: bool = False) -> None:
    """Claim and run jobs until the parent process ends (or, with `once`, until the queue is empty)."""
    while parent is None or pid_alive(parent):
        job = queue.claim(os.getpid())
        if job is None:
            if once:
                return
            time.sleep(idle_s)
            continue
        run_job(queue, job)


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------
def _lock_path(queue: JobQueue, slot: int) -> Path:
    return queue.path.with_name(f"{queue.path.stem}.worker{int(slot)}.lock")


def slot_busy(queue: JobQueue, slot: int) -> bool:
    """True when a worker holds the lock of this slot."""
    path = _lock_path(queue, slot)
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
    return False


def job_slots() -> int:
    try:
        return max(1, int(os.environ.get(ENV_SLOTS, "1")))
    except ValueError:
        return 1


def start_workers(queue: JobQueue | None = None, *, slots: int | None = None, parent: int | None = None) -> list[int]:
    """Start a worker process for every free slot (default $SPOTTING_JOB_SLOTS or 1); returns their pids."""
    queue = queue or JobQueue()
    started = []
    for slot in range(slots or job_slots()):
        if slot_busy(queue, slot):
            continue
        log = open(queue.path.with_name("jobs-worker.log"), "a")
        cmd = [sys.executable, "-m", "spotting_core.review.worker", "--queue", str(queue.path), "--slot", str(slot),
               "--parent", str(parent or os.getpid())]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        started.append(proc.pid)
    return started


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m spotting_core.review.worker", description=__doc__.splitlines()[0])
    p.add_argument("--queue", default=None, help="jobs database (default: <cache root>/jobs.sqlite)")
    p.add_argument("--slot", type=int, default=0)
    p.add_argument("--parent", type=int, default=None, help="stop when this process ends")
    p.add_argument("--once", action="store_true", help="stop when the queue is empty")
    args = p.parse_args(argv)
    queue = JobQueue(args.queue)
    with open(_lock_path(queue, args.slot), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # this slot already has its worker
        serve(queue, parent=args.parent, once=args.once)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
