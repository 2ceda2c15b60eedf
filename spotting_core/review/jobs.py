"""Long work as jobs: a SQLite queue that a worker process (review/worker.py) drains, outside any page run.

    q = JobQueue()                                   <cache root>/jobs.sqlite
    job_id = q.submit("spot_video", {"video": ..., "checkpoint": ...})   an identical live request joins it
    q.get(job_id) / q.jobs()                         kind, inputs, state, progress, message, result, times
    q.cancel(job_id); q.recover(); q.resume(job_id)

States: queued -> running -> done | failed | cancelled; a running job whose worker died (its process is
gone, or its heartbeat stopped) is marked interrupted by `recover()` and can be resumed (queued again
with the same inputs: the work it finished, such as extracted feature chunks, is cached and reused).
Every call opens its own connection (WAL), so pages, workers and several server processes share it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path

from spotting_core.errors import SpottingError
from spotting_core.runtime import cache_root

STATES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
LIVE = ("queued", "running")
HEARTBEAT_S = 2.0          # a running job's worker touches it this often
STALE_S = 30.0             # ... and is presumed dead after this long without a touch

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    kind      TEXT NOT NULL,
    inputs    TEXT NOT NULL,
    key       TEXT NOT NULL,
    state     TEXT NOT NULL,
    progress  REAL NOT NULL DEFAULT 0,
    message   TEXT NOT NULL DEFAULT '',
    result    TEXT,
    cancel    INTEGER NOT NULL DEFAULT 0,
    worker    INTEGER,
    heartbeat REAL,
    created   REAL NOT NULL,
    started   REAL,
    finished  REAL,
    attempts  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, id);
CREATE INDEX IF NOT EXISTS jobs_key ON jobs (key, state);
"""


def default_path() -> Path:
    return cache_root() / "jobs.sqlite"


def job_key(kind: str, inputs: dict) -> str:
    """Two requests are the same job when their kind and inputs are equal."""
    return hashlib.sha1(json.dumps([kind, inputs], sort_keys=True, default=str).encode()).hexdigest()


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (dead, not yet reaped by its parent) counts as dead
        with open(f"/proc/{int(pid)}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


class JobQueue:
    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else default_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.executescript(_SCHEMA)
        except (sqlite3.DatabaseError, OSError) as e:
            raise SpottingError(f"{self.path}: not a usable job queue ({e})") from None

    @contextmanager
    def _connect(self):
        db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=10000")
            yield db
        finally:
            db.close()

    @staticmethod
    def _row(r: sqlite3.Row | None) -> dict | None:
        if r is None:
            return None
        d = dict(r)
        d["inputs"] = json.loads(d["inputs"])
        d["result"] = json.loads(d["result"]) if d["result"] else None
        return d

    # ----- pages --------------------------------------------------------------------------------
    def submit(self, kind: str, inputs: dict) -> int:
        """Queue a job, or return the id of the identical job already queued or running."""
        from spotting_core.review.worker import RUNNERS

        if kind not in RUNNERS:
            raise SpottingError(f"unknown job kind {kind!r}; kinds: {', '.join(sorted(RUNNERS))}")
        key = job_key(kind, inputs)
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            same = db.execute("SELECT id FROM jobs WHERE key = ? AND state IN ('queued', 'running') AND cancel = 0",
                              (key,)).fetchone()
            if same is not None:
                db.execute("COMMIT")
                return int(same["id"])
            cur = db.execute("INSERT INTO jobs (kind, inputs, key, state, created) VALUES (?, ?, ?, 'queued', ?)",
                             (kind, json.dumps(inputs, default=str), key, time.time()))
            db.execute("COMMIT")
            return int(cur.lastrowid)

    def get(self, job_id: int) -> dict | None:
        with self._connect() as db:
            return self._row(db.execute("SELECT * FROM jobs WHERE id = ?", (int(job_id),)).fetchone())

    def jobs(self, *, limit: int = 50, states: tuple[str, ...] = STATES) -> list[dict]:
        """The latest jobs, newest first."""
        marks = ",".join("?" * len(states))
        with self._connect() as db:
            rows = db.execute(f"SELECT * FROM jobs WHERE state IN ({marks}) ORDER BY id DESC LIMIT ?",
                              (*states, int(limit))).fetchall()
        return [self._row(r) for r in rows]

    def cancel(self, job_id: int) -> None:
        """A queued job is cancelled at once; a running one at its worker's next progress report."""
        with self._connect() as db:
            db.execute("UPDATE jobs SET state = 'cancelled', finished = ?, message = 'cancelled' "
                       "WHERE id = ? AND state = 'queued'", (time.time(), int(job_id)))
            db.execute("UPDATE jobs SET cancel = 1 WHERE id = ? AND state = 'running'", (int(job_id),))

    def recover(self) -> list[int]:
        """Mark running jobs whose worker is gone (dead process or stale heartbeat) as interrupted."""
        now, lost = time.time(), []
        with self._connect() as db:
            for r in db.execute("SELECT id, worker, heartbeat FROM jobs WHERE state = 'running'").fetchall():
                if not pid_alive(r["worker"]) or (r["heartbeat"] or 0) < now - STALE_S:
                    lost.append(int(r["id"]))
            for job_id in lost:
                db.execute("UPDATE jobs SET state = 'interrupted', finished = ?, message = "
                           "'interrupted: its worker stopped (server restart or crash); resume it to continue' "
                           "WHERE id = ? AND state = 'running'", (now, job_id))
        return lost

    def resume(self, job_id: int) -> int:
        """Queue an interrupted (or failed, or cancelled) job again, with the same inputs."""
        with self._connect() as db:
            cur = db.execute("UPDATE jobs SET state = 'queued', cancel = 0, progress = 0, message = 'resumed', "
                             "worker = NULL, finished = NULL WHERE id = ? AND state IN "
                             "('interrupted', 'failed', 'cancelled')", (int(job_id),))
        if cur.rowcount == 0:
            raise SpottingError(f"job {job_id} is not interrupted, failed or cancelled: nothing to resume")
        return int(job_id)

    # ----- workers ------------------------------------------------------------------------------
    def claim(self, worker: int) -> dict | None:
        """The oldest queued job, now running on `worker` (atomic: one worker gets it)."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            r = db.execute("SELECT * FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1").fetchone()
            if r is None:
                db.execute("COMMIT")
                return None
            now = time.time()
            db.execute("UPDATE jobs SET state = 'running', worker = ?, heartbeat = ?, started = ?, "
                       "attempts = attempts + 1, message = 'started' WHERE id = ?", (int(worker), now, now, r["id"]))
            db.execute("COMMIT")
        return self.get(int(r["id"]))

    def report(self, job_id: int, progress: float | None = None, message: str | None = None) -> bool:
        """Progress and a heartbeat of a running job; returns True when it was asked to cancel."""
        sets, args = ["heartbeat = ?"], [time.time()]
        if progress is not None:
            sets.append("progress = ?")
            args.append(min(1.0, max(0.0, float(progress))))
        if message is not None:
            sets.append("message = ?")
            args.append(str(message)[:300])
        with self._connect() as db:
            db.execute(f"UPDATE jobs SET {', '.join(sets)} WHERE id = ? AND state = 'running'", (*args, int(job_id)))
            r = db.execute("SELECT cancel FROM jobs WHERE id = ?", (int(job_id),)).fetchone()
        return bool(r and r["cancel"])

    def finish(self, job_id: int, *, state: str, message: str = "", result: dict | None = None) -> None:
        if state not in ("done", "failed", "cancelled"):
            raise ValueError(f"finish: state {state!r}")
        with self._connect() as db:
            db.execute("UPDATE jobs SET state = ?, message = ?, result = ?, finished = ?, "
                       "progress = CASE WHEN ? = 'done' THEN 1 ELSE progress END WHERE id = ?",
                       (state, str(message)[:300], json.dumps(result) if result is not None else None, time.time(),
                        state, int(job_id)))
