"""Edit lists of a reel plan: what an editor imports instead of (or besides) the cut reel.

    write_edit_lists(plan, base)    base.csv, base.losslesscut.csv (start,end,label), base.llc (LosslessCut
                                    project), base.edl (CMX3600), base.srt, base.vtt (captions on the reel
                                    timeline), base.results_spotting.json (the kept events)

Every list carries the segments' times as cut: snapped to shots when the plan was, and in fast mode
the keyframe each stream copy really starts from (the csv keeps the requested times beside them).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from spotting_core.errors import SpottingError
from spotting_core.io import soccernet
from spotting_core.media.reels import ReelPlan


def timecode(seconds: float, fps: float) -> str:
    """HH:MM:SS:FF, non-drop frame, at the integer frame rate nearest `fps`."""
    rate = max(1, int(round(fps)))
    frames = int(math.floor(seconds * rate + 0.5))
    ff, s = frames % rate, frames // rate
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}:{ff:02d}"


def _clock(seconds: float, sep: str) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}{sep}{ms % 1000:03d}"


def edit_list_rows(plan: ReelPlan) -> list[dict]:
    rows = []
    for i, (s, r0) in enumerate(zip(plan.segments, plan.reel_starts()), start=1):
        asked = s.requested or (s.start, s.end)
        rows.append({"index": i, "source_start": round(s.start, 3), "source_end": round(s.end, 3),
                     "requested_start": round(asked[0], 3), "requested_end": round(asked[1], 3),
                     "reel_start": round(r0, 3), "reel_end": round(r0 + s.duration, 3),
                     "duration": round(s.duration, 3), "label": s.label,
                     "events": "; ".join(f"{e['label']} {soccernet.format_game_time(e['half'], e['position_ms'])} "
                                         f"({e['confidence']:.2f})" for e in s.events),
                     "max_confidence": round(max(e["confidence"] for e in s.events), 4)})
    return rows


def captions(plan: ReelPlan, *, before_s: float = 1.0, after_s: float = 3.0) -> list[tuple[float, float, str]]:
    """(start, end, text) on the reel timeline: one caption per event, kept inside its segment."""
    cues = []
    for s, r0 in zip(plan.segments, plan.reel_starts()):
        for e in sorted(s.events, key=lambda e: e["time"]):
            at = r0 + (e["time"] - s.start)
            cues.append((max(r0, at - before_s), min(r0 + s.duration, at + after_s),
                         f"{e['label']} - {soccernet.format_game_time(e['half'], e['position_ms'])}"))
    return cues


def write_edit_lists(plan: ReelPlan, base: str | os.PathLike, *, title: str = "REEL",
                     formats: Sequence[str] = ("csv", "losslesscut", "llc", "edl", "srt", "vtt", "json")) -> list[Path]:
    """Edit lists beside `base` (the reel's path without its suffix): base.csv, base.losslesscut.csv,
    base.llc, base.edl (CMX3600), base.srt, base.vtt, base.results_spotting.json (the kept events)."""
    base = Path(base)
    written = []
    rows = edit_list_rows(plan)
    for fmt in formats:
        if fmt == "csv":
            path = base.with_name(base.name + ".csv")
            text = pd.DataFrame(rows, columns=["index", "source_start", "source_end", "reel_start", "reel_end",
                                               "duration", "label", "events", "max_confidence", "requested_start",
                                               "requested_end"]).to_csv(index=False)
        elif fmt == "losslesscut":  # LosslessCut "Import CSV": start,end,label in seconds, no header
            path = base.with_name(base.name + ".losslesscut.csv")
            text = "".join(f"{r['source_start']:.3f},{r['source_end']:.3f},\"{r['label']}\"\n" for r in rows)
        elif fmt == "llc":  # LosslessCut project (JSON5; plain JSON is valid JSON5): File > Open project
            path = base.with_name(base.name + ".llc")
            text = json.dumps({"version": 1, "mediaFileName": plan.video.name,
                               "cutSegments": [{"start": r["source_start"], "end": r["source_end"], "name": r["label"]}
                                               for r in rows]}, indent=2) + "\n"
        elif fmt == "edl":
            path = base.with_name(base.name + ".edl")
            lines = [f"TITLE: {title}", "FCM: NON-DROP FRAME", ""]
            for r, s in zip(rows, plan.segments):
                lines.append(f"{r['index']:03d}  AX       AA/V  C        {timecode(s.start, plan.fps)} "
                             f"{timecode(s.end, plan.fps)} {timecode(r['reel_start'], plan.fps)} "
                             f"{timecode(r['reel_start'] + s.duration, plan.fps)}")
                lines.append(f"* FROM CLIP NAME: {plan.video.name}")
                lines.append(f"* COMMENT: {r['events']}")
                lines.append("")
            text = "\n".join(lines)
        elif fmt in ("srt", "vtt"):
            path = base.with_name(base.name + f".{fmt}")
            sep = "," if fmt == "srt" else "."
            blocks = [] if fmt == "srt" else ["WEBVTT", ""]
            for i, (a, b, t) in enumerate(captions(plan), start=1):
                blocks += ([str(i)] if fmt == "srt" else []) + [f"{_clock(a, sep)} --> {_clock(b, sep)}", t, ""]
            text = "\n".join(blocks)
        elif fmt == "json":
            path = base.with_name(base.name + ".results_spotting.json")
            kept = [e for s in plan.segments for e in s.events]
            data = soccernet.results_to_dict(kept, url_local=str(plan.video))
            data["dropped_by_max_duration"] = len([e for s in plan.dropped for e in s.events])
            text = json.dumps(data, indent=2)
        else:
            raise SpottingError(f"unknown edit-list format {fmt!r}; choose from csv, losslesscut, llc, edl, srt, vtt, json")
        soccernet.atomic_write_text(path, text)
        written.append(path)
    return written
