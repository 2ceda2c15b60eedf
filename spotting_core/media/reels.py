"""Highlight reels: events -> padded, merged segments -> a cut video and its edit lists.

    select_events(events, classes=, min_confidence=, half=)   results file / review table -> kept events
    plan_reel(events, duration=..., pre=, post=, max_duration=) -> ReelPlan (segments on the source timeline)
    write_edit_lists(plan, base)     CSV, LosslessCut CSV (start,end,label), CMX3600 EDL, SRT, VTT, results JSON
    render_reel(video, plan, out, mode="fast" | "exact")        the reel, written to a temp file then renamed
    reel_command(video, events=..., out=..., ...)                all of it (`spotting reel`)

Modes:
    fast   stream copy + concat demuxer: no re-encode, each segment starts at the keyframe at or before
           its start (up to one GOP early), audio and video shifted together.
    exact  frame-accurate: each segment is decoded from its preceding keyframe and re-encoded (only the
           segments, never the whole source), then joined without another encode. Caption / title
           cards and fades (through moviepy) are available in this mode only.

Event times: a position is measured from the start of its half. For one file holding one half, the
file's start is that half's start (half 1 by default); with `half_offset_s` the file holds both
halves and half 2 starts that many seconds into it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from spotting_core.errors import SpottingError
from spotting_core.io import soccernet, tables
from spotting_core.io import video as vid
from spotting_core.media import cut

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
              half_offset_s: float | None = None, merge_gap_s: float = 0.0) -> ReelPlan:
    """Pad each event (per class unless pre/post are given), merge windows that overlap (or lie within
    merge_gap_s), then, if the total exceeds max_duration, keep the best-scoring segments that fit."""
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
        windows.append(Segment(start, end, [{"half": int(r.half), "position_ms": int(r.position_ms), "label": r.label,
                                             "confidence": float(r.confidence), "time": t}]))
    windows.sort(key=lambda s: (s.start, s.end))
    merged: list[Segment] = []
    for w in windows:
        if merged and w.start <= merged[-1].end + merge_gap_s:
            merged[-1].end = max(merged[-1].end, w.end)
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
            kept = [Segment(start, start + max_duration, [e for e in best.events
                                                          if start <= e["time"] <= start + max_duration])]
        merged = sorted(kept, key=lambda s: s.start)
        dropped.sort(key=lambda s: s.start)
    return ReelPlan(video=Path(video), segments=merged, dropped=dropped, fps=fps)


# ---------------------------------------------------------------------------------------------
# Edit lists
# ---------------------------------------------------------------------------------------------
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
        rows.append({"index": i, "source_start": round(s.start, 3), "source_end": round(s.end, 3),
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
                     formats: Sequence[str] = ("csv", "losslesscut", "edl", "srt", "vtt", "json")) -> list[Path]:
    """Edit lists beside `base` (the reel's path without its suffix): base.csv, base.losslesscut.csv,
    base.edl (CMX3600), base.srt, base.vtt, base.results_spotting.json (the kept events)."""
    base = Path(base)
    written = []
    rows = edit_list_rows(plan)
    for fmt in formats:
        if fmt == "csv":
            path = base.with_name(base.name + ".csv")
            text = pd.DataFrame(rows, columns=["index", "source_start", "source_end", "reel_start", "reel_end",
                                               "duration", "label", "events", "max_confidence"]).to_csv(index=False)
        elif fmt == "losslesscut":  # LosslessCut "Import CSV": start,end,label in seconds, no header
            path = base.with_name(base.name + ".losslesscut.csv")
            text = "".join(f"{r['source_start']:.3f},{r['source_end']:.3f},\"{r['label']}\"\n" for r in rows)
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
            raise SpottingError(f"unknown edit-list format {fmt!r}; choose from csv, losslesscut, edl, srt, vtt, json")
        soccernet.atomic_write_text(path, text)
        written.append(path)
    return written


# ---------------------------------------------------------------------------------------------
# Render
# ---------------------------------------------------------------------------------------------
def _check_out(video: Path, out: Path) -> None:
    if out.exists() and out.resolve() == video.resolve():
        raise SpottingError(f"{out}: is the source video; refusing to overwrite it, choose another --out")
    if out.suffix.lower() not in (".mp4", ".mov", ".mkv", ".m4v"):
        raise SpottingError(f"{out}: reel must be .mp4, .mov, .m4v or .mkv")


def render_reel(video: str | os.PathLike, plan: ReelPlan, out: str | os.PathLike, *, mode: str = "fast",
                progress: Progress | None = None, caption: bool = False, title: str | None = None,
                fade_s: float = 0.0, faststart: bool = True) -> Path:
    """Cut and join the plan's segments into `out` (a temp file in out's folder, renamed at the end).

    faststart (MP4): index at the front so the reel plays while it downloads; costs one rewrite."""
    video, out = Path(video), Path(out)
    _check_out(video, out)
    if mode not in ("fast", "exact"):
        raise SpottingError(f"unknown reel mode {mode!r}; choose fast or exact")
    if not plan.segments:
        raise SpottingError(f"{video}: no events left after filtering: nothing to put in a reel")
    if (caption or title or fade_s) and mode != "exact":
        raise SpottingError("captions, title cards and fades need --mode exact (fast mode never re-encodes)")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.stem}.", dir=out.parent))
    tmp_out = work / f"reel{out.suffix}"
    try:
        if caption or title or fade_s:
            _render_moviepy(video, plan, tmp_out, caption=caption, title=title, fade_s=fade_s, progress=progress)
        else:
            parts = []
            n = len(plan.segments)
            info = vid.probe(video) if mode == "exact" else None   # fast mode needs no probe
            for i, s in enumerate(plan.segments):
                if progress:
                    progress(i / (n + 1), f"cutting segment {i + 1}/{n} ({mode})")
                part = work / f"part{i:04d}{out.suffix}"
                cutter = cut.cut_copy if mode == "fast" else cut.cut_exact
                cutter(video, part, start=s.start, end=s.end, info=info)
                parts.append(part)
            if progress:
                progress(n / (n + 1), "joining segments")
            cut.concat(parts, tmp_out, faststart=faststart)
        os.replace(tmp_out, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if progress:
        progress(1.0, f"reel written: {out.name}")
    return out


def _render_moviepy(video: Path, plan: ReelPlan, out: Path, *, caption: bool, title: str | None,
                    fade_s: float, progress: Progress | None) -> None:
    """Exact mode with cards and fades: moviepy composes, libx264 + AAC encodes once."""
    from moviepy import (
        ColorClip,
        CompositeVideoClip,
        TextClip,
        VideoFileClip,
        afx,
        concatenate_videoclips,
        vfx,
    )

    src = VideoFileClip(str(video))
    try:
        w, h = src.size
        font_size = max(12, h // 18)
        clips = []
        if title:
            card = ColorClip((w, h), color=(0, 0, 0), duration=2.0)
            text = TextClip(text=title, font_size=font_size * 2, color="white", duration=2.0).with_position("center")
            clips.append(CompositeVideoClip([card, text], size=(w, h)).with_duration(2.0))
        for s in plan.segments:
            clip = src.subclipped(s.start, min(s.end, src.duration))
            if caption:
                layers = [clip]
                for e in s.events:
                    at = max(0.0, e["time"] - s.start - 1.0)
                    dur = max(0.1, min(4.0, clip.duration - at))
                    txt = f"{e['label']}  {soccernet.format_game_time(e['half'], e['position_ms'])}"
                    layers.append(TextClip(text=txt, font_size=font_size, color="white", bg_color="black",
                                           duration=dur).with_start(at).with_position(("center", "bottom")))
                clip = CompositeVideoClip(layers, size=(w, h)).with_duration(clip.duration)
                if src.audio is not None:
                    clip = clip.with_audio(src.audio.subclipped(s.start, min(s.end, src.duration)))
            if fade_s:
                effects = [vfx.FadeIn(fade_s), vfx.FadeOut(fade_s)]
                clip = clip.with_effects(effects)
                if clip.audio is not None:
                    clip = clip.with_audio(clip.audio.with_effects([afx.AudioFadeIn(fade_s), afx.AudioFadeOut(fade_s)]))
            clips.append(clip)
        reel = concatenate_videoclips(clips, method="chain")
        if progress:
            progress(0.1, "encoding reel with cards/fades (moviepy)")
        reel.write_videofile(str(out), codec="libx264", audio_codec="aac", preset="veryfast",
                             fps=src.fps, logger=None, temp_audiofile_path=str(out.parent))
    finally:
        src.close()


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------
def make_reel(video: str | os.PathLike, *, events: str | os.PathLike | pd.DataFrame, out: str | os.PathLike,
              mode: str = "fast", pre: float | None = None, post: float | None = None,
              classes: str | Sequence[str] | None = None, min_confidence: float = 0.5, half: int | None = 1,
              max_duration: float | None = None, half_offset_s: float | None = None,
              statuses: Collection[str] | None = DEFAULT_STATUSES, edit_lists: bool = True,
              caption: bool = False, title: str | None = None, fade_s: float = 0.0,
              progress: Progress | None = None) -> ReelPlan:
    """Events -> segments -> the reel at `out` (+ edit lists beside it); returns the plan it cut.

    half: which half's events (1 by default; None takes both, with half_offset_s for a whole-match file).
    """
    video, out = Path(video), Path(out)
    info = vid.probe(video)
    _check_out(video, out)
    kept = select_events(events, classes=classes, min_confidence=min_confidence, half=half, statuses=statuses)
    if kept.empty:
        raise SpottingError(f"{events if not isinstance(events, pd.DataFrame) else 'events'}: no event left "
                            f"(half {half}, min confidence {min_confidence}, classes {classes or 'all'})")
    if half_offset_s is None and kept["half"].nunique() > 1:
        raise SpottingError("events of both halves but one file: give the half (--half) or the half-time offset")
    plan = plan_reel(kept, video=video, duration=info.duration, fps=info.fps or 25.0, pre=pre, post=post,
                     max_duration=max_duration, half_offset_s=half_offset_s)
    render_reel(video, plan, out, mode=mode, progress=progress, caption=caption, title=title, fade_s=fade_s)
    if edit_lists:
        write_edit_lists(plan, out.with_suffix(""), title=out.stem.upper()[:60])
    return plan


def reel_command(video: str | os.PathLike, *, events: str | os.PathLike | pd.DataFrame, out: str | os.PathLike,
                 mode: str = "fast", pre: float | None = None, post: float | None = None,
                 classes: str | Sequence[str] | None = None, min_confidence: float = 0.5, half: int | None = 1,
                 max_duration: float | None = None, **options) -> Path:
    """`spotting reel`: see make_reel (options: half_offset_s, statuses, edit_lists, caption, title,
    fade_s, progress). Returns the reel's path."""
    make_reel(video, events=events, out=out, mode=mode, pre=pre, post=post, classes=classes,
              min_confidence=min_confidence, half=half, max_duration=max_duration, **options)
    return Path(out)


def reel_summary(plan: ReelPlan) -> str:
    """One line for the CLI / app: how many segments, how long, what was dropped."""
    line = f"{len(plan.segments)} segments, {plan.duration:.1f} s"
    if plan.dropped:
        line += f"; {len(plan.dropped)} segments ({sum(s.duration for s in plan.dropped):.1f} s) over the cap left out"
    return line
