"""Cutting a reel plan into a video (and its edit lists): `spotting reel`.

    plan = plan_from_events(video, events, classes=..., min_confidence=..., half=1)   probe + select + plan
    cut_reel(plan, out, mode="fast" | "exact")        the reel (temp file, renamed) + edit lists beside it
    make_reel(video, events=..., out=..., snap_s=3)   both (`reel_command` is the CLI's entry)

Snapping (snap_s, with_replays) moves segment edges to shot changes (`media/snap.py`); in fast mode
the edit lists report where each stream copy really starts (its keyframe), not the requested time.

Modes:
    fast   stream copy + concat demuxer: no re-encode, each segment starts at the keyframe at or before
           its start (up to one GOP early), audio and video shifted together.
    exact  frame-accurate: each segment is decoded from its preceding keyframe and re-encoded (only the
           segments, never the whole source), then joined without another encode. Caption / title
           cards and fades (through moviepy) are available in this mode only.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

import pandas as pd

from spotting_core.errors import SpottingError
from spotting_core.io import soccernet
from spotting_core.io import video as vid
from spotting_core.media import cut
from spotting_core.media.edit_lists import write_edit_lists
from spotting_core.media.reels import DEFAULT_STATUSES, ReelPlan, plan_reel, select_events

Progress = Callable[[float, str], None]


def _check_out(video: Path, out: Path) -> None:
    if out.exists() and out.resolve() == video.resolve():
        raise SpottingError(f"{out}: is the source video; refusing to overwrite it, choose another --out")
    if out.suffix.lower() not in (".mp4", ".mov", ".mkv", ".m4v"):
        raise SpottingError(f"{out}: reel must be .mp4, .mov, .m4v or .mkv")


def render_reel(video: str | os.PathLike, plan: ReelPlan, out: str | os.PathLike, *, mode: str = "fast",
                progress: Progress | None = None, caption: bool = False, title: str | None = None,
                fade_s: float = 0.0, faststart: bool = True, spans: list | None = None) -> Path:
    """Cut and join the plan's segments into `out` (a temp file in out's folder, renamed at the end).

    faststart (MP4): index at the front so the reel plays while it downloads; costs one rewrite.
    spans (fast mode): gets the (start, end) in the source that each stream-copied segment really covers."""
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
                if spans is not None and mode == "fast":
                    spans.append(cut.copied_span(video, part, start=s.start))
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


def plan_from_events(video: str | os.PathLike, events: str | os.PathLike | pd.DataFrame, *,
                     pre: float | None = None, post: float | None = None,
                     classes: str | Sequence[str] | None = None, min_confidence: float = 0.5, half: int | None = 1,
                     max_duration: float | None = None, half_offset_s: float | None = None,
                     statuses: Collection[str] | None = DEFAULT_STATUSES, snap_s: float | None = None,
                     with_replays: bool = False, detector: str | None = None, device=None,
                     progress: Progress | None = None) -> ReelPlan:
    """The plan of the reel of `video`: its events selected, padded, snapped, merged and capped (`plan_reel`).

    half: which half's events (1 by default; None takes both, with half_offset_s for a whole-match file).
    snap_s / with_replays: snap to the video's shots (`media/shots.detect_shots`, cached beside it).
    """
    video = Path(video)
    info = vid.probe(video)
    kept = select_events(events, classes=classes, min_confidence=min_confidence, half=half, statuses=statuses)
    if kept.empty:
        raise SpottingError(f"{events if not isinstance(events, pd.DataFrame) else 'events'}: no event left "
                            f"(half {half}, min confidence {min_confidence}, classes {classes or 'all'})")
    if half_offset_s is None and kept["half"].nunique() > 1:
        raise SpottingError("events of both halves but one file: give the half (--half) or the half-time offset")
    shots = None
    if snap_s or with_replays:
        from spotting_core.media.shots import detect_shots

        shots = detect_shots(video, detector=detector, device=device, progress=progress)
    return plan_reel(kept, video=video, duration=info.duration, fps=info.fps or 25.0, pre=pre, post=post,
                     max_duration=max_duration, half_offset_s=half_offset_s, shots=shots, snap_s=snap_s,
                     with_replays=with_replays)


def cut_reel(plan: ReelPlan, out: str | os.PathLike, *, mode: str = "fast", edit_lists: bool = True,
             caption: bool = False, title: str | None = None, fade_s: float = 0.0,
             progress: Progress | None = None) -> Path:
    """Render `plan` into `out` and write its edit lists beside it; returns `out`."""
    cut_plan(plan, out, mode=mode, edit_lists=edit_lists, caption=caption, title=title, fade_s=fade_s,
             progress=progress)
    return Path(out)


def cut_plan(plan: ReelPlan, out: str | os.PathLike, *, mode: str = "fast", edit_lists: bool = True,
             caption: bool = False, title: str | None = None, fade_s: float = 0.0,
             progress: Progress | None = None) -> ReelPlan:
    """`cut_reel`, returning the plan as cut: in fast mode each segment starts at the keyframe the
    stream copy started from (and ends where the copy ended), `requested` holding the planned times.
    The edit lists carry those real times."""
    out = Path(out)
    spans: list[tuple[float, float]] = []
    render_reel(plan.video, plan, out, mode=mode, progress=progress, caption=caption, title=title, fade_s=fade_s,
                spans=spans)
    if spans:
        segments = [dataclasses.replace(s, start=a, end=b, requested=(s.start, s.end))
                    for s, (a, b) in zip(plan.segments, spans)]
        plan = dataclasses.replace(plan, segments=segments)
    if edit_lists:
        write_edit_lists(plan, out.with_suffix(""), title=out.stem.upper()[:60])
    return plan


def make_reel(video: str | os.PathLike, *, events: str | os.PathLike | pd.DataFrame, out: str | os.PathLike,
              mode: str = "fast", pre: float | None = None, post: float | None = None,
              classes: str | Sequence[str] | None = None, min_confidence: float = 0.5, half: int | None = 1,
              max_duration: float | None = None, half_offset_s: float | None = None,
              statuses: Collection[str] | None = DEFAULT_STATUSES, edit_lists: bool = True,
              caption: bool = False, title: str | None = None, fade_s: float = 0.0,
              progress: Progress | None = None, snap_s: float | None = None, with_replays: bool = False,
              detector: str | None = None) -> ReelPlan:
    """Events -> segments (snapped to shots with snap_s) -> the reel at `out` (+ edit lists beside it);
    returns the plan as cut (`cut_plan`)."""
    vid.probe(video)                # a bad video is reported first, then a bad --out, then the events
    _check_out(Path(video), Path(out))
    plan = plan_from_events(video, events, pre=pre, post=post, classes=classes, min_confidence=min_confidence,
                            half=half, max_duration=max_duration, half_offset_s=half_offset_s, statuses=statuses,
                            snap_s=snap_s, with_replays=with_replays, detector=detector, progress=progress)
    return cut_plan(plan, out, mode=mode, edit_lists=edit_lists, caption=caption, title=title, fade_s=fade_s,
                    progress=progress)


def reel_command(video: str | os.PathLike, *, events: str | os.PathLike | pd.DataFrame, out: str | os.PathLike,
                 mode: str = "fast", pre: float | None = None, post: float | None = None,
                 classes: str | Sequence[str] | None = None, min_confidence: float = 0.5, half: int | None = 1,
                 max_duration: float | None = None, **options) -> Path:
    """`spotting reel`: see make_reel (options: half_offset_s, statuses, edit_lists, caption, title,
    fade_s, progress, snap_s, with_replays, detector). Returns the reel's path."""
    make_reel(video, events=events, out=out, mode=mode, pre=pre, post=post, classes=classes,
              min_confidence=min_confidence, half=half, max_duration=max_duration, **options)
    return Path(out)


def reel_summary(plan: ReelPlan) -> str:
    """One line for the CLI / app: how many segments, how long, what was dropped."""
    line = f"{len(plan.segments)} segments, {plan.duration:.1f} s"
    if plan.dropped:
        line += f"; {len(plan.dropped)} segments ({sum(s.duration for s in plan.dropped):.1f} s) over the cap left out"
    return line
