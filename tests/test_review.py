"""The review store: decisions, undo, persistence, concurrent writers, exports."""

from __future__ import annotations

import csv
import io
import sqlite3
import threading

import pandas as pd
import pytest

from spotting_core.errors import SpottingError
from spotting_core.io.tables import labels_from_dict, results_from_dict
from spotting_core.review.store import ReviewStore


def _events() -> pd.DataFrame:
    return pd.DataFrame({
        "half": [1, 1, 2],
        "position_ms": [65_000, 10_000, 3_000],
        "label": ["Goal", "Corner", "Foul"],
        "confidence": [0.9, 0.4, 0.7],
    })


@pytest.fixture()
def store(tmp_path):
    s = ReviewStore(tmp_path / "review.sqlite")
    s.load_events("m1", _events())
    return s


def test_events_sorted_with_pending_status(store):
    df = store.events("m1")
    assert list(df["label"]) == ["Corner", "Goal", "Foul"]  # half, then time
    assert set(df["status"]) == {"pending"}
    assert list(df["game_time"]) == ["1 - 00:10", "1 - 01:05", "2 - 00:03"]
    assert list(df["frame"]) == [20, 130, 6]


def test_accept_reject_retime_relabel_and_undo(store):
    goal = int(store.events("m1").query("label == 'Goal'")["event_id"].iloc[0])
    store.accept("m1", goal)
    store.retime("m1", goal, 63_500)
    store.relabel("m1", goal, "Shots on target")
    ev = store.event("m1", goal)
    assert (ev["status"], ev["position_ms"], ev["label"]) == ("accepted", 63_500, "Shots on target")
    assert (ev["original_position_ms"], ev["original_label"]) == (65_000, "Goal")

    undone = store.undo("m1")
    assert undone["action"] == "relabel"
    assert store.event("m1", goal)["label"] == "Goal"
    store.undo("m1")
    assert store.event("m1", goal)["position_ms"] == 65_000
    store.undo("m1")
    assert store.event("m1", goal)["status"] == "pending"
    assert store.undo("m1") is None
    assert list(store.history("m1")["undone"]) == [1, 1, 1]


def test_nudge_clamps_at_half_start_and_reject(store):
    corner = int(store.events("m1").query("label == 'Corner'")["event_id"].iloc[0])
    store.nudge("m1", corner, 1000)
    assert store.event("m1", corner)["position_ms"] == 11_000
    store.nudge("m1", corner, -60_000)
    assert store.event("m1", corner)["position_ms"] == 0
    store.reject("m1", corner)
    assert store.event("m1", corner)["status"] == "rejected"


def test_bad_inputs_are_one_line_errors(store, tmp_path):
    with pytest.raises(SpottingError, match="not a known class"):
        store.relabel("m1", 0, "Dunk")
    with pytest.raises(SpottingError, match="no event 99"):
        store.accept("m1", 99)
    with pytest.raises(SpottingError, match="before the start"):
        store.retime("m1", 0, -5)
    bad = tmp_path / "not.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SpottingError, match="not a usable review store"):
        ReviewStore(bad)


def test_decisions_survive_a_restart_and_reloading_keeps_them(store):
    store.reject("m1", 0)
    again = ReviewStore(store.path)  # a server restart: a new store object on the same file
    assert again.load_events("m1", _events().iloc[:1]) == 3  # the stored events win
    assert again.event("m1", 0)["status"] == "rejected"
    assert again.load_events("m1", _events().iloc[:1], replace=True) == 1
    assert again.event("m1", 0)["status"] == "pending"


def test_wal_mode_and_two_writers_at_once(store):
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other = ReviewStore(store.path)  # a second browser tab or process
    errors = []

    def work(s, action):
        try:
            for _ in range(25):
                getattr(s, action)("m1", 1)
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(store, "accept")),
               threading.Thread(target=work, args=(other, "reject"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    hist = store.history("m1")
    assert len(hist) == 50
    last = hist.iloc[-1]["action"]
    assert store.event("m1", 1)["status"] == {"accept": "accepted", "reject": "rejected"}[last]


def test_add_missed_event_and_undo_removes_it(store):
    new = store.add("m1", half=2, position_ms=1_000, label="Penalty")
    assert store.event("m1", new)["status"] == "accepted"
    assert store.event("m1", new)["source"] == "manual"
    store.undo("m1")
    assert new not in set(store.events("m1")["event_id"])


def test_exports_parse_back_with_the_official_readers(store, tmp_path):
    store.accept("m1", 0)
    store.retime("m1", 0, 9_000)
    store.reject("m1", 2)
    labels = labels_from_dict(store.labels_dict("m1"))
    assert list(labels[["half", "position_ms", "label"]].itertuples(index=False, name=None)) == [(1, 9_000, "Corner")]
    results = results_from_dict(store.results_dict("m1"))
    assert sorted(results["label"]) == ["Corner", "Goal"]  # the rejected Foul is out
    path = store.export_labels("m1", tmp_path / "out" / "Labels-v2.json")
    assert path.is_file()
    rows = list(csv.DictReader(io.StringIO(store.csv_text("m1"))))
    assert {r["status"] for r in rows} == {"accepted", "pending", "rejected"}
    assert rows[0]["original_position_ms"] == "10000" and rows[0]["position_ms"] == "9000"
    with pytest.raises(SpottingError, match="unknown status"):
        store.labels_dict("m1", statuses=["maybe"])


def test_matches_are_kept_apart(store):
    store.load_events("m2", _events().iloc[:2], meta={"name": "second"})
    store.accept("m2", 0)
    assert set(store.events("m1")["status"]) == {"pending"}
    table = store.matches().set_index("match_id")
    assert table.loc["m2", "events"] == 2 and table.loc["m2", "decisions"] == 1
    assert table.loc["m2", "meta"] == {"name": "second"}


def test_each_decision_records_its_editor_and_undo_only_takes_back_ones_own(store):
    store.accept("m1", 0, editor="alice")
    store.nudge("m1", 0, 500, editor="alice")
    store.reject("m1", 0, editor="bob")
    new = store.add("m1", half=1, position_ms=5_000, label="Penalty", editor="bob")
    assert list(store.history("m1")["editor"]) == ["alice", "alice", "bob", "bob"]
    assert store.event("m1", 0)["decided_by"] == "bob" and store.event("m1", new)["decided_by"] == "bob"
    assert store.undo("m1", editor="carol") is None and store.undo("m1") is None  # nothing of theirs
    done = store.undo("m1", editor="alice")  # her retime, though bob decided on the event since
    assert (done["action"], done["editor"], done["later"]) == ("retime", "alice", ["bob"])
    ev = store.event("m1", 0)
    assert (ev["position_ms"], ev["status"], ev["decided_by"]) == (10_000, "rejected", "bob")
    assert store.undo("m1", editor="bob")["action"] == "add"  # bob's latest, not alice's accept
    assert new not in set(store.events("m1")["event_id"])


def test_the_editor_goes_into_the_csv_and_labels_exports(store):
    store.accept("m1", 0, editor="alice")
    store.accept("m1", 1, editor="bob@example.org")
    store.accept("m1", 2)  # no editor known: nothing is made up
    store.add("m1", half=1, position_ms=10_000, label="Foul", editor="carol")  # same time as event 0
    rows = list(csv.DictReader(io.StringIO(store.csv_text("m1"))))
    assert [(r["label"], r["decided_by"]) for r in rows] == [
        ("Corner", "alice"), ("Foul", "carol"), ("Goal", "bob@example.org"), ("Foul", "")]
    anns = store.labels_dict("m1")["annotations"]
    assert [(a["label"], a.get("reviewedBy")) for a in anns] == [
        ("Corner", "alice"), ("Foul", "carol"), ("Goal", "bob@example.org"), ("Foul", None)]
    assert len(labels_from_dict(store.labels_dict("m1"))) == 4  # the official reader still reads it


def test_a_store_from_before_editors_opens_and_keeps_its_decisions(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript("""
            CREATE TABLE events (match_id TEXT NOT NULL, event_id INTEGER NOT NULL, half INTEGER NOT NULL,
                position_ms INTEGER NOT NULL, label TEXT NOT NULL, confidence REAL NOT NULL, source TEXT NOT NULL,
                PRIMARY KEY (match_id, event_id));
            CREATE TABLE decisions (id INTEGER PRIMARY KEY AUTOINCREMENT, match_id TEXT NOT NULL,
                event_id INTEGER NOT NULL, action TEXT NOT NULL, value TEXT, created REAL NOT NULL,
                undone INTEGER NOT NULL DEFAULT 0);
            INSERT INTO events VALUES ('m1', 0, 1, 1000, 'Goal', 0.9, 'model');
            INSERT INTO decisions (match_id, event_id, action, value, created) VALUES ('m1', 0, 'accept', NULL, 1.0);
        """)
    store = ReviewStore(path)
    assert store.event("m1", 0)["status"] == "accepted" and store.event("m1", 0)["decided_by"] == ""
    store.reject("m1", 0, editor="alice")
    assert list(store.history("m1")["editor"].fillna("-")) == ["-", "alice"]
    assert store.undo("m1")["action"] == "accept"  # the old, unnamed decision is the unnamed editor's
