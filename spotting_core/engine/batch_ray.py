"""A batch on Ray: a local Ray with N workers, or an existing cluster (`address="auto"`, `ray://host:port`).

    summary = run_batch(tree, job=spot_job("nv.pt"), checkpoint="nv.pt", workers=2)
                                                 {"done", "skipped", "failed", "records"}

Each worker is a Ray actor holding `engine.batch.BatchWorker` (the model, loaded once from the
checkpoint's path and checked against its SHA-256; `num_gpus` where the cluster has GPUs); each game
is one actor task, two in flight per worker so that no worker waits on the driver. A worker process that dies is restarted by Ray (`max_restarts`) and its games are
retried (`max_task_retries`); a game that still kills its worker after the retries fails alone.
`ray.util.ActorPool` hands back results without the value they were computed for, so the games of a
dead worker could not be named: the tasks are tracked here with `ray.wait` instead.
Ray is imported inside these functions only: no other command pays for it.
"""

from __future__ import annotations

import os
import re
import socket
from collections import deque
from collections.abc import Callable
from pathlib import Path

from spotting_core.engine.batch import BatchWorker, Unit, find_units, pending
from spotting_core.errors import SpottingError
from spotting_core.runtime import resolve_device

RETRIES = 2          # task retries after its worker died (Ray's max_task_retries)
IN_FLIGHT = 2        # games queued on each worker at a time
PING_S = 120.0       # how long a restarting worker may take to answer again


def ray_reason(e: BaseException) -> str:
    """The one line that says why, from a Ray error (its last line: the remote exception, traceback dropped)."""
    lines = [ln.strip() for ln in re.sub(r"\x1b\[[0-9;]*m", "", str(e)).splitlines() if ln.strip()]
    last = lines[-1] if lines else type(e).__name__
    return re.sub(r"^spotting_core\.errors\.SpottingError: ", "", last)[:300]


def check_address(address: str) -> None:
    """One line, before Ray tries for minutes, when nothing listens at HOST:PORT (or at the head `auto`
    finds: RAY_ADDRESS, else the one `ray start` recorded, which a killed head leaves behind)."""
    if address == "auto":
        recorded = _auto_address()
        if recorded is None:
            return
        try:
            check_address(recorded)
        except SpottingError as e:
            raise SpottingError(f"--address auto: the Ray head recorded on this machine, {recorded}, does not "
                                "answer (a head that was killed?); start one with `ray start --head`") from e
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise SpottingError(f"--address {address}: expected auto, ray://HOST:PORT (Ray client) or HOST:PORT (head)")
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as e:
        raise SpottingError(f"--address {address}: nothing answers at {host}:{port} ({e.strerror or e}); "
                            "start the head there with `ray start --head`") from None


def _auto_address() -> str | None:
    """HOST:PORT that `ray.init(address="auto")` would join; None when this Ray cannot say (ray.init does)."""
    try:
        from ray._private.services import canonicalize_bootstrap_address  # Ray's own lookup, not public API
    except ImportError:
        return None
    try:
        return canonicalize_bootstrap_address("auto")
    except ConnectionError:  # Ray's "Could not find any running Ray instance"
        raise SpottingError("--address auto: no Ray head runs on this machine; start one with "
                            "`ray start --head`, or give the head's HOST:6379") from None
    except Exception:  # noqa: BLE001 - a lookup that changed shape: ray.init says why
        return None


def start_ray(address: str | None, workers: int | None) -> bool:
    """Join `address`, or start a local Ray with `workers` CPUs; False when Ray was already running here."""
    import ray

    if ray.is_initialized():
        return False
    quiet = {"logging_level": "ERROR", "log_to_driver": False}
    if address is None:
        ray.init(num_cpus=workers or os.cpu_count() or 1, include_dashboard=False, **quiet)
        return True
    check_address(address)
    try:
        ray.init(address=address, **quiet)
    except (ConnectionError, ValueError, RuntimeError, TimeoutError) as e:
        hint = ("" if os.environ.get("RAY_AUTH_MODE") else "; a head of Ray 2.59 or later asks for its token: "
                "export RAY_AUTH_MODE=token RAY_AUTH_TOKEN=<`ray get-auth-token` on the head>")
        raise SpottingError(f"--address {address}: {ray_reason(e)}{hint}") from None
    return True


def make_workers(job: dict, checkpoint: str | None, workers: int | None, device: str | None,
                 threads: int | None = None) -> tuple[list, list[dict]]:
    """The actors, each holding the model once, and what each reports (pid, host, device).
    Each has its share of the CPUs, and as many torch threads (or `threads`)."""
    import ray

    cluster = ray.cluster_resources()
    cpus, gpus = float(cluster.get("CPU", 1)), float(cluster.get("GPU", 0))
    n = int(workers or max(1, int(cpus)))
    share = cpus / n
    options = {"num_cpus": share if share < 1 else int(share), "max_restarts": -1, "max_task_retries": RETRIES}
    if gpus and device != "cpu":
        options["num_gpus"] = min(1.0, gpus / n)
    remote = ray.remote(**options)(BatchWorker)
    actors = [remote.remote(job, checkpoint, device=device, threads=threads or max(1, int(share))) for _ in range(n)]
    try:
        infos = ray.get([a.info.options(max_task_retries=0).remote() for a in actors])
    except ray.exceptions.RayError as e:
        raise SpottingError(f"the workers could not start: {ray_reason(e)}") from None
    return actors, infos


def _alive(actor) -> bool:
    import ray

    try:
        ray.get(actor.info.remote(), timeout=PING_S)
        return True
    except (ray.exceptions.RayError, TimeoutError):
        return False


def run_units(units: list[Unit], actors: list, *, on_result: Callable[[dict], None] | None = None,
              on_started: Callable[[], None] | None = None) -> list[dict]:
    """Every unit on the actors; one record per unit, in the order they finish."""
    import ray

    queue, inflight, load, live, records = deque(units), {}, [0] * len(actors), set(range(len(actors))), []

    def submit(i: int, upto: int = IN_FLIGHT) -> None:
        while queue and load[i] < upto and i in live:
            unit = queue.popleft()
            inflight[actors[i].run.remote(unit)] = (i, unit)
            load[i] += 1

    for level in range(1, IN_FLIGHT + 1):   # round robin: the first games spread over every worker
        for i in range(len(actors)):
            submit(i, level)
    if on_started:
        on_started()
    while inflight:
        [ref], _ = ray.wait(list(inflight), num_returns=1)
        i, unit = inflight.pop(ref)
        load[i] -= 1
        try:
            record = ray.get(ref)
        except ray.exceptions.RayActorError as e:
            if i in live and not _alive(actors[i]):
                live.discard(i)
            if i not in live and live:     # the worker is gone for good: the game goes to another one
                queue.appendleft(unit)
                record = None
            else:
                record = {"game": unit.game, "out": unit.out, "pid": None, "status": "failed", "seconds": None,
                          "error": f"its worker died {RETRIES + 1} times ({ray_reason(e)})"}
        if record is not None:
            records.append(record)
            if on_result:
                on_result(record)
        for j in sorted(live, key=lambda j: load[j]):
            submit(j)
        if not live and not inflight:
            while queue:
                unit = queue.popleft()
                records.append({"game": unit.game, "out": unit.out, "pid": None, "status": "failed",
                                "seconds": None, "error": "no worker left (every worker died)"})
                if on_result:
                    on_result(records[-1])
    return records


def run_batch(tree, *, job: dict, checkpoint=None, out=None, workers: int | None = None,
              address: str | None = None, device: str | None = None, video_suffix: str = "_spotting",
              threads: int | None = None,
              on_plan: Callable[[int, int], None] | None = None, on_result: Callable[[dict], None] | None = None,
              on_started: Callable[[list[dict]], None] | None = None) -> dict:
    """Every game of `tree` not already done with this job, on Ray. `on_plan(todo, skipped)` comes first;
    `on_started(worker infos)` once the workers hold the model and the first games are submitted.
    A cluster (`address`) is joined first, so a bad address fails before anything else; a local Ray
    starts only when there is a game to run."""
    import ray

    if workers is not None and workers < 1:
        raise SpottingError(f"--workers {workers}: must be at least 1")
    units = find_units(tree, out, video_suffix=video_suffix)
    if address is None and device is not None:
        resolve_device(device)                 # a local worker would fail the same way, less readably
    owned = start_ray(address, workers) if address is not None else False
    records, skipped = [], []
    try:
        todo, skipped = pending(units, job)
        if on_plan:
            on_plan(len(todo), len(skipped))
        if todo:
            if address is None:
                owned = start_ray(None, workers)
            actors, infos = make_workers(job, str(Path(checkpoint).resolve()) if checkpoint else None, workers, device,
                                         threads)
            try:
                records = run_units(todo, actors, on_result=on_result,
                                    on_started=(lambda: on_started(infos)) if on_started else None)
            finally:
                for a in actors:
                    ray.kill(a)
    finally:
        if owned:
            ray.shutdown()
    failed = [{"game": r["game"], "error": r["error"]} for r in records if r["status"] != "done"]
    return {"done": len(records) - len(failed), "skipped": len(skipped), "failed": failed, "records": records}
