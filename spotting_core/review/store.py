"""The review store: editors' decisions on spotted events, in SQLite (WAL), keyed by match.

    store = ReviewStore(path)
    store.load_events(match_id, events_df)        the model's events, once per match (kept after)
    store.accept(match_id, event_id, editor=…) / reject / retime(…, position_ms) / relabel(…, label)
    store.add(match_id, half=1, position_ms=…, label=…)   an event the model missed
    store.undo(match_id, editor=…)                undo that editor's latest decision of the match
    store.events(match_id)                        current state: one row per event, with its status
    store.export_labels / export_results / export_csv      (review/exports.py)

Decisions are an append-only log; an event's state is its original row folded over its decisions in
order, and undo marks the latest live decision as undone. Every decision records its editor (the
signed-in user, or None); undo only ever undoes the asking editor's own decisions, and says when
another editor decided on the same event since. Every call opens its own connection, so
two browser tabs (two threads) or two server processes can edit the same match at once: WAL lets
readers run beside the writer, and each write is one short transaction.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from spotting_core.errors import SpottingError
from spotting_core.io.soccernet import CLASSES_V2, FPS, format_game_time, frame_of
from spotting_core.review.exports import STATUSES, ReviewExports
from spotting_core.runtime import cache_root

__all__ = ["ACTIONS", "EVENT_COLUMNS", "STATUSES", "ReviewStore", "default_path"]
ACTIONS = ("accept", "reject", "reset", "retime", "relabel", "add")
EVENT_COLUMNS = ["event_id", "half", "position_ms", "frame", "game_time", "label", "class_id", "confidence",
                 "status", "source", "original_position_ms", "original_label", "decisions", "decided_by"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    match_id     TEXT    NOT NULL,
    event_id     INTEGER NOT NULL,
    half         INTEGER NOT NULL,
    position_ms  INTEGER NOT NULL,
    label        TEXT    NOT NULL,
    confidence   REAL    NOT NULL,
    source       TEXT    NOT NULL,
    PRIMARY KEY (match_id, event_id)
);
CREATE TABLE IF NOT EXISTS decisions (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    match_id  TEXT    NOT NULL,
    event_id  INTEGER NOT NULL,
    action    TEXT    NOT NULL,
    value     TEXT,
    created   REAL    NOT NULL,
    undone    INTEGER NOT NULL DEFAULT 0,
    editor    TEXT
);
CREATE INDEX IF NOT EXISTS decisions_match ON decisions (match_id, id);
CREATE TABLE IF NOT EXISTS matches (
    match_id  TEXT PRIMARY KEY,
    meta      TEXT NOT NULL
);
"""


def default_path() -> Path:
    """The review store the app and the jobs share: `<cache root>/review.sqlite`."""
    return cache_root() / "review.sqlite"


class ReviewStore(ReviewExports):
    """Decisions on the events of many matches, in one SQLite file."""

    def __init__(self, path: str | os.PathLike, *, classes: Sequence[str] = CLASSES_V2, fps: float = FPS):
        self.path = Path(path)
        self.classes = tuple(classes)
        self.fps = fps
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.executescript(_SCHEMA)
                if "editor" not in {row[1] for row in db.execute("PRAGMA table_info(decisions)")}:
                    db.execute("ALTER TABLE decisions ADD COLUMN editor TEXT")  # a store from before editors
        except sqlite3.DatabaseError as e:
            raise SpottingError(f"{self.path}: not a usable review store ({e})") from None

    @contextmanager
    def _connect(self):
        db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=10000")
            yield db
        finally:
            db.close()

    # ----- matches and their events -------------------------------------------------------------
    def load_events(self, match_id: str, events: pd.DataFrame, *, meta: dict | None = None,
                    replace: bool = False) -> int:
        """Store the model's events of a match once; later calls keep the stored ones (and decisions).

        With replace=True the match's events and decisions are dropped first (a fresh spotting run).
        Returns the number of events stored for the match.
        """
        missing = {"half", "position_ms", "label", "confidence"} - set(events.columns)
        if missing:
            raise SpottingError(f"events of {match_id}: missing columns {', '.join(sorted(missing))}")
        for label in set(events["label"]):
            self._check_label(label)
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            if replace:
                db.execute("DELETE FROM events WHERE match_id = ?", (match_id,))
                db.execute("DELETE FROM decisions WHERE match_id = ?", (match_id,))
            (count,) = db.execute("SELECT COUNT(*) FROM events WHERE match_id = ? AND source = 'model'",
                                  (match_id,)).fetchone()
            (decided,) = db.execute("SELECT COUNT(*) FROM decisions WHERE match_id = ?", (match_id,)).fetchone()
            if count == 0 and decided == 0:
                ordered = events.sort_values(["half", "position_ms"], kind="stable")
                db.executemany(
                    "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, 'model')",
                    [(match_id, i, int(r.half), int(r.position_ms), str(r.label), float(r.confidence))
                     for i, r in enumerate(ordered.itertuples(index=False))],
                )
            if meta is not None:
                db.execute("INSERT OR REPLACE INTO matches VALUES (?, ?)", (match_id, json.dumps(meta)))
            (total,) = db.execute("SELECT COUNT(*) FROM events WHERE match_id = ?", (match_id,)).fetchone()
            db.execute("COMMIT")
        return int(total)

    def matches(self) -> pd.DataFrame:
        """Every match in the store with its event and decision counts."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT e.match_id, COUNT(*), "
                "(SELECT COUNT(*) FROM decisions d WHERE d.match_id = e.match_id AND d.undone = 0), "
                "(SELECT meta FROM matches m WHERE m.match_id = e.match_id) "
                "FROM events e GROUP BY e.match_id ORDER BY e.match_id").fetchall()
        return pd.DataFrame([(m, n, d, json.loads(meta) if meta else {}) for m, n, d, meta in rows],
                            columns=["match_id", "events", "decisions", "meta"])

    # ----- decisions ----------------------------------------------------------------------------
    def _check_label(self, label: str) -> None:
        if label not in self.classes:
            raise SpottingError(f"label {label!r} is not a known class; known: {', '.join(self.classes)}")

    def _decide(self, match_id: str, event_id: int, action: str, value: str | None = None,
                editor: str | None = None) -> int:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            found = db.execute("SELECT 1 FROM events WHERE match_id = ? AND event_id = ?",
                               (match_id, int(event_id))).fetchone()
            if not found:
                db.execute("ROLLBACK")
                raise SpottingError(f"match {match_id}: no event {event_id}")
            cur = db.execute("INSERT INTO decisions (match_id, event_id, action, value, created, editor) "
                             "VALUES (?, ?, ?, ?, ?, ?)", (match_id, int(event_id), action, value, time.time(), editor))
            db.execute("COMMIT")
            return int(cur.lastrowid)

    def accept(self, match_id: str, event_id: int, *, editor: str | None = None) -> int:
        return self._decide(match_id, event_id, "accept", editor=editor)

    def reject(self, match_id: str, event_id: int, *, editor: str | None = None) -> int:
        return self._decide(match_id, event_id, "reject", editor=editor)

    def reset(self, match_id: str, event_id: int, *, editor: str | None = None) -> int:
        """Back to pending (the retime and relabel decisions stay)."""
        return self._decide(match_id, event_id, "reset", editor=editor)

    def retime(self, match_id: str, event_id: int, position_ms: int, *, editor: str | None = None) -> int:
        """Move an event to `position_ms` within its half."""
        if int(position_ms) < 0:
            raise SpottingError(f"retime: position {int(position_ms)} ms is before the start of the half")
        return self._decide(match_id, event_id, "retime", str(int(position_ms)), editor)

    def nudge(self, match_id: str, event_id: int, delta_ms: int, *, editor: str | None = None) -> int:
        """Retime an event by `delta_ms` from where it stands now (clamped at the half's start)."""
        now = self.event(match_id, event_id)
        return self.retime(match_id, event_id, max(0, int(now["position_ms"]) + int(delta_ms)), editor=editor)

    def relabel(self, match_id: str, event_id: int, label: str, *, editor: str | None = None) -> int:
        self._check_label(label)
        return self._decide(match_id, event_id, "relabel", label, editor)

    def add(self, match_id: str, *, half: int, position_ms: int, label: str, editor: str | None = None) -> int:
        """An event the model missed, accepted by the editor. Returns its event id."""
        self._check_label(label)
        if int(half) not in (1, 2) or int(position_ms) < 0:
            raise SpottingError(f"add: half must be 1 or 2 and the position >= 0 (got {half}, {position_ms})")
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            (next_id,) = db.execute("SELECT COALESCE(MAX(event_id) + 1, 0) FROM events WHERE match_id = ?",
                                    (match_id,)).fetchone()
            db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, 1.0, 'manual')",
                       (match_id, next_id, int(half), int(position_ms), label))
            db.execute("INSERT INTO decisions (match_id, event_id, action, value, created, editor) "
                       "VALUES (?, ?, 'add', NULL, ?, ?)", (match_id, next_id, time.time(), editor))
            db.execute("COMMIT")
        return int(next_id)

    def undo(self, match_id: str, event_id: int | None = None, *, editor: str | None = None) -> dict | None:
        """Undo `editor`'s latest live decision of the match (or of one event); None: decisions made
        without an editor. Never another editor's. Returns it, with `later`: the other editors whose
        live decisions on the same event came after it (they still stand), or None if nothing to undo."""
        where, args = "match_id = ? AND undone = 0 AND editor IS ?", [match_id, editor]
        if event_id is not None:
            where += " AND event_id = ?"
            args.append(int(event_id))
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(f"SELECT id, event_id, action, value FROM decisions WHERE {where} ORDER BY id DESC LIMIT 1",
                             args).fetchone()
            if row is None:
                db.execute("ROLLBACK")
                return None
            db.execute("UPDATE decisions SET undone = 1 WHERE id = ?", (row[0],))
            later = db.execute("SELECT DISTINCT COALESCE(editor, '(no name)') FROM decisions WHERE match_id = ? AND "
                               "event_id = ? AND id > ? AND undone = 0 AND editor IS NOT ?",
                               (match_id, row[1], row[0], editor)).fetchall()
            db.execute("COMMIT")
        return {"id": row[0], "event_id": row[1], "action": row[2], "value": row[3], "editor": editor,
                "later": sorted(e for (e,) in later)}

    def history(self, match_id: str) -> pd.DataFrame:
        """Every decision of the match, oldest first, undone ones included."""
        with self._connect() as db:
            rows = db.execute("SELECT id, event_id, action, value, created, undone, editor FROM decisions "
                              "WHERE match_id = ? ORDER BY id", (match_id,)).fetchall()
        return pd.DataFrame(rows, columns=["id", "event_id", "action", "value", "created", "undone", "editor"])

    # ----- current state ------------------------------------------------------------------------
    def events(self, match_id: str) -> pd.DataFrame:
        """The match's events as they stand after every live decision (EVENT_COLUMNS)."""
        with self._connect() as db:
            base = db.execute("SELECT event_id, half, position_ms, label, confidence, source FROM events "
                              "WHERE match_id = ? ORDER BY event_id", (match_id,)).fetchall()
            decisions = db.execute("SELECT event_id, action, value, editor FROM decisions WHERE match_id = ? "
                                   "AND undone = 0 ORDER BY id", (match_id,)).fetchall()
        state = {}
        for event_id, half, pos, label, conf, source in base:
            state[event_id] = {"event_id": event_id, "half": half, "position_ms": pos, "label": label,
                               "confidence": conf, "status": "pending", "source": source,
                               "original_position_ms": pos, "original_label": label, "decisions": 0,
                               "decided_by": ""}
        for event_id, action, value, editor in decisions:
            ev = state.get(event_id)
            if ev is None:
                continue
            ev["decisions"] += 1
            ev["decided_by"] = editor or ""  # the editor of the latest live decision
            if action in ("accept", "add"):
                ev["status"] = "accepted"
            elif action == "reject":
                ev["status"] = "rejected"
            elif action == "reset":
                ev["status"] = "pending"
            elif action == "retime":
                ev["position_ms"] = int(value)
            elif action == "relabel":
                ev["label"] = value
        # a manual event whose "add" was undone no longer exists
        live_adds = {e for e, a, _, _ in decisions if a == "add"}
        rows = [ev for ev in state.values() if ev["source"] != "manual" or ev["event_id"] in live_adds]
        df = pd.DataFrame(rows, columns=[c for c in EVENT_COLUMNS if c not in ("frame", "game_time", "class_id")])
        df["frame"] = frame_of(df["position_ms"].to_numpy(), self.fps) if len(df) else pd.Series(dtype="int64")
        df["game_time"] = [format_game_time(h, p) for h, p in zip(df["half"], df["position_ms"])]
        df["class_id"] = [self.classes.index(lbl) if lbl in self.classes else -1 for lbl in df["label"]]
        df = df.astype({"event_id": "int64", "half": "int64", "position_ms": "int64", "confidence": "float64"})
        return df[EVENT_COLUMNS].sort_values(["half", "position_ms", "event_id"], kind="stable").reset_index(drop=True)

    def event(self, match_id: str, event_id: int) -> dict:
        df = self.events(match_id)
        row = df[df["event_id"] == int(event_id)]
        if row.empty:
            raise SpottingError(f"match {match_id}: no event {event_id}")
        return row.iloc[0].to_dict()
