"""Reel plans: events -> padded, merged, capped segments on the source timeline (the `ReelPlan`).

    select_events(events, classes=, min_confidence=, half=)   results file / review table -> kept events
    plan_reel(events, duration=..., pre=, post=, max_duration=) -> ReelPlan
    plan_reel(..., shots=detect_shots(video), snap_s=3, with_replays=True)   cut on shot changes

The same ReelPlan is previewed by the app, cut by `media/render.py` and written as edit lists by
`media/edit_lists.py`.

Event times: a position is measured from the start of its half. For one file holding one half, the
file's start is that half's start (half 1 by default); with `half_offset_s` the file holds both
halves and half 2 starts that many seconds into it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from spotting_core.errors import SpottingError
from spotting_core.io import soccernet, tables
from spotting_core.media import snap
from spotting_core.media.shots import Shots

Progress = Callable[[float, str], None]

# Seconds kept before / after an event of each class: a goal keeps its build-up and its celebration,
# a throw-in only a moment.
DEFAULT_PADDING: dict[str, tuple[float, float]] = {
    "Goal": (15.0, 20.0),
    "Penalty": (8.0, 15.0),
    "Shots on target": (8.0, 5.0),
    "Shots off target": (8.0, 4.0),
    "Red card": (8.0, 10.0),
    "Yellow->red card": (8.0, 10.0),
    "Yellow card": (6.0, 6.0),
    "Foul": (5.0, 4.0),
    "Direct free-kick": (3.0, 8.0),
    "Indirect free-kick": (2.0, 5.0),
    "Corner": (3.0, 10.0),
    "Offside": (6.0, 3.0),
    "Substitution": (3.0, 5.0),
    "Kick-off": (2.0, 4.0),
    "Clearance": (4.0, 3.0),
    "Ball out of play": (3.0, 2.0),
    "Throw-in": (2.0, 3.0),
}
FALLBACK_PADDING = (5.0, 5.0)

# When the reel must be shortened, segments are kept by score = confidence x this weight.
CLASS_WEIGHT: dict[str, float] = {
    "Goal": 1.0, "Penalty": 0.95, "Red card": 0.9, "Yellow->red card": 0.9, "Shots on target": 0.8,
    "Shots off target": 0.7, "Yellow card": 0.6, "Direct free-kick": 0.55, "Corner": 0.5, "Foul": 0.45,
    "Substitution": 0.4, "Offside": 0.4, "Indirect free-kick": 0.35, "Kick-off": 0.3, "Clearance": 0.25,
    "Ball out of play": 0.2, "Throw-in": 0.2,
}  # fmt: skip
DEFAULT_STATUSES = ("pending", "accepted")


# ---------------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------------
def read_events(events: str | os.PathLike | pd.DataFrame) -> pd.DataFrame:
    """A results_spotting.json, a review CSV export (half, position_ms, label, confidence, status) or a table."""
    if isinstance(events, pd.DataFrame):
        df = events.copy()
        source = "events table"
    else:
        path = Path(events)
        source = str(path)
        if path.suffix.lower() == ".csv":
            if not path.is_file():
                raise SpottingError(f"{path}: file not found")
            try:
                df = pd.read_csv(path)
            except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
                raise SpottingError(f"{path}: not a readable CSV ({type(e).__name__})") from None
        else:
            df = tables.read_results(path)
    missing = {"half", "position_ms", "label"} - set(df.columns)
    if missing:
        raise SpottingError(f"{source}: events need columns half, position_ms, label; missing {', '.join(sorted(missing))}")
    if "confidence" not in df.columns:
        df["confidence"] = 1.0
    # an event a reviewer added by hand has no model confidence: it is certain
    df["confidence"] = pd.to_numeric(df["confidence"], errors="coerce").fillna(1.0)
    df["half"] = pd.to_numeric(df["half"], errors="coerce")
    df["position_ms"] = pd.to_numeric(df["position_ms"], errors="coerce")
    if df[["half", "position_ms"]].isna().any().any():
        raise SpottingError(f"{source}: half and position_ms must be numbers")
    return df.astype({"half": "int64", "position_ms": "int64"})


def select_events(events: str | os.PathLike | pd.DataFrame, *, classes: str | Sequence[str] | None = None,
                  min_confidence: float = 0.0, half: int | None = 1,
                  statuses: Collection[str] | None = DEFAULT_STATUSES) -> pd.DataFrame:
    """Events kept for a reel: by class, confidence, half (None: both) and review status (rejected ones out)."""
    df = read_events(events)
    if classes:
        wanted = [c.strip() for c in classes.split(",")] if isinstance(classes, str) else list(classes)
        unknown = sorted(set(wanted) - set(soccernet.CLASSES_V2) - set(df["label"]))
        if unknown:
            raise SpottingError(f"unknown class {', '.join(unknown)}; classes: {', '.join(soccernet.CLASSES_V2)}")
        df = df[df["label"].isin(wanted)]
    if "status" in df.columns and statuses is not None:
        df = df[df["status"].isin(tuple(statuses))]
    if half is not None:
        df = df[df["half"] == int(half)]
    df = df[df["confidence"] >= float(min_confidence)]
    return df.sort_values(["half", "position_ms"], kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Plan: padded, merged, capped segments on the source timeline
# ---------------------------------------------------------------------------------------------
@dataclass
class Segment:
    start: float                     # seconds in the source file
    end: float
    events: list[dict] = field(default_factory=list)   # half, position_ms, label, confidence, time (s in file)
    requested: tuple[float, float] | None = None       # (start, end) before snapping / before a fast cut moved them

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def score(self) -> float:
        return max((e["confidence"] * CLASS_WEIGHT.get(e["label"], 0.3) for e in self.events), default=0.0)

    @property
    def label(self) -> str:
        return " + ".join(dict.fromkeys(e["label"] for e in self.events))


@dataclass
class ReelPlan:
    video: Path
    segments: list[Segment]          # in source order: what the reel shows
    dropped: list[Segment]           # cut by max_duration, kept here so nothing vanishes silently
    fps: float

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.segments)

    def reel_starts(self) -> list[float]:
        return list(np.cumsum([0.0] + [s.duration for s in self.segments])[:-1])


def padding_for(label: str, pre: float | None, post: float | None) -> tuple[float, float]:
    dp, dq = DEFAULT_PADDING.get(label, FALLBACK_PADDING)
    return (dp if pre is None else float(pre)), (dq if post is None else float(post))


def plan_reel(events: pd.DataFrame, *, video: str | os.PathLike, duration: float | None, fps: float = 25.0,
              pre: float | None = None, post: float | None = None, max_duration: float | None = None,
              half_offset_s: float | None = None, merge_gap_s: float = 0.0, shots: Shots | None = None,
              snap_s: float | None = None, with_replays: bool = False) -> ReelPlan:
    """Pad each event (per class unless pre/post are given), snap the window to `shots` (its start
    back to a shot start, its end forward to a shot end, each within snap_s; with_replays: on to the
    end of a replay that follows the event, `media/snap.py`), merge windows that overlap (or lie
    within merge_gap_s), then, if the total exceeds max_duration, keep the best-scoring segments that fit."""
    if shots is not None and snap_s is not None and snap_s < 0:
        raise SpottingError(f"--snap {snap_s:g}: must be 0 (no snapping) or more seconds")
    windows = []
    for r in events.itertuples(index=False):
        offset = float(half_offset_s) if (half_offset_s is not None and int(r.half) == 2) else 0.0
        t = offset + r.position_ms / 1000.0
        a, b = padding_for(r.label, pre, post)
        start, end = max(0.0, t - a), t + b
        if duration is not None:
            end = min(end, duration)
        if end - start <= 0:
            where = f"{r.label} at half {r.half}, {r.position_ms} ms"
            raise SpottingError(f"{where}: lies beyond the end of {video} ({duration:.1f} s); wrong --half or events file?")
        requested = (start, end)
        if shots is not None and with_replays:
            end = snap.replay_end(event=t, end=end, label=r.label, shots=shots) or end
        if shots is not None and snap_s:
            start, end = snap.snap_window(start, end, event=t, shots=shots, snap_s=snap_s, duration=duration)
        windows.append(Segment(start, end, [{"half": int(r.half), "position_ms": int(r.position_ms), "label": r.label,
                                             "confidence": float(r.confidence), "time": t}], requested))
    windows.sort(key=lambda s: (s.start, s.end))
    merged: list[Segment] = []
    for w in windows:
        if merged and w.start <= merged[-1].end + merge_gap_s:
            merged[-1].end = max(merged[-1].end, w.end)
            if merged[-1].requested and w.requested:
                merged[-1].requested = (merged[-1].requested[0], max(merged[-1].requested[1], w.requested[1]))
            merged[-1].events.extend(w.events)
        else:
            merged.append(w)
    dropped: list[Segment] = []
    if max_duration is not None and sum(s.duration for s in merged) > max_duration:
        if max_duration <= 0:
            raise SpottingError(f"max duration must be positive, got {max_duration}")
        ranked = sorted(merged, key=lambda s: -s.score)
        kept, total = [], 0.0
        for s in ranked:
            if total + s.duration <= max_duration + 1e-9:
                kept.append(s)
                total += s.duration
            else:
                dropped.append(s)
        if not kept:  # even the best segment is too long: trim it around its best event
            best = ranked[0]
            dropped.remove(best)
            centre = max(best.events, key=lambda e: e["confidence"])["time"]
            a, b = padding_for(max(best.events, key=lambda e: e["confidence"])["label"], pre, post)
            lead = max_duration * a / max(a + b, 1e-9)
            start = min(max(best.start, centre - lead), best.end - max_duration)
            end = start + max_duration
            if shots is not None and snap_s:
                inside = snap.snap_inside(start, end, shots=shots, snap_s=snap_s)
                start, end = inside if inside[0] <= centre <= inside[1] else (start, end)
            kept = [Segment(start, end, [e for e in best.events if start <= e["time"] <= end], best.requested)]
        merged = sorted(kept, key=lambda s: s.start)
        dropped.sort(key=lambda s: s.start)
    return ReelPlan(video=Path(video), segments=merged, dropped=dropped, fps=fps)


def plan_to_dict(plan: ReelPlan) -> dict:
    """A plan as JSON-able data (a reel job carries the plan the page previewed)."""
    out = {}
    for f in dataclasses.fields(plan):
        value = getattr(plan, f.name)
        if isinstance(value, list) and all(isinstance(s, Segment) for s in value):
            value = [dataclasses.asdict(s) for s in value]
        out[f.name] = str(value) if isinstance(value, Path) else value
    return out


def plan_from_dict(data: dict) -> ReelPlan:
    """The inverse of `plan_to_dict`."""
    kinds = {f.name: f for f in dataclasses.fields(ReelPlan)}
    values = {}
    for name, value in data.items():
        if name not in kinds:
            continue
        if isinstance(value, list) and all(isinstance(s, dict) and "start" in s for s in value):
            value = [Segment(**s) for s in value]
        values[name] = Path(value) if name == "video" else value
    return ReelPlan(**values)
