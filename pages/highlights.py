"""Highlights: choose events, snap them to shots, preview the edit list and each segment's first and last
frame, cut the reel, play it, download it and its edit lists."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from pages.common import (
    INLINE_VIDEO_MB,
    default_threshold,
    require_match,
    reviewed_events,
    served_url,
    thresholds_of,
)
from pages.jobs_panel import queue, submit
from pages.support.charts import frames_at
from spotting_core.errors import SpottingError
from spotting_core.io.soccernet import CLASSES_V2
from spotting_core.io.video import probe
from spotting_core.media.edit_lists import edit_list_rows
from spotting_core.media.reels import plan_reel, plan_to_dict, select_events
from spotting_core.media.render import reel_summary
from spotting_core.media.shots import cached_shots, detect_shots
from spotting_core.media.snap import shot_edges_within
from spotting_core.review.matches import likely_events
from spotting_core.runtime import cache_root

match = require_match()
st.header("Highlights")
events = reviewed_events(match)
if not match.videos:
    st.info("This match has no video, so there is nothing to cut. Open it with its video on the Match page.")
    st.stop()


PREVIEW_MAX = 12      # segments previewed with thumbnails


@st.cache_data(show_spinner=False, max_entries=256)
def _thumbs(path: str, mtime: float, seconds: tuple[float, ...]):
    return frames_at(path, seconds, width=200)


@st.cache_data(show_spinner=False)
def _probe(path: str, mtime: float) -> tuple[float | None, float]:
    info = probe(path)
    return info.duration, info.fps or 25.0


c1, c2, c3 = st.columns([3, 2, 2])
start_conf = default_threshold(events, keep=0.1)
likely = set(events.loc[events["confidence"] >= start_conf, "label"])  # classes with confident events
preferred = [c for c in ("Goal", "Penalty", "Red card", "Shots on target", "Yellow card", "Corner") if c in likely]
classes = c1.multiselect("Classes", list(CLASSES_V2), key="hl_classes",
                         default=preferred or sorted(likely, key=list(CLASSES_V2).index))
operating_points = thresholds_of(match)
choices = (["Likely events"] if operating_points else []) + ["Accepted only", "Not rejected, above a confidence"]
which = c2.radio("Events", choices, key="hl_which",
                 help="Likely events: not rejected and above each class's operating point (the model's "
                      "calibrated thresholds), plus every accepted event.")
min_conf = c3.slider("Minimum confidence", 0.0, 1.0, start_conf, 0.01, key="hl_min_conf",
                     disabled=which != "Not rejected, above a confidence")
d1, d2, d3, d4 = st.columns(4)
halves = sorted(int(h) for h in match.videos)
half = d1.selectbox("Half", halves, key="hl_half")
per_class = d2.toggle("Per-class padding", value=True, key="hl_per_class",
                      help="A goal keeps its build-up and celebration, a throw-in only a moment.")
pre = d3.number_input("Seconds before", 0.0, 120.0, 5.0, 1.0, key="hl_pre", disabled=per_class)
post = d4.number_input("Seconds after", 0.0, 120.0, 5.0, 1.0, key="hl_post", disabled=per_class)
e1, e2, e3, e4, e5 = st.columns([2, 1, 1, 1, 2])
cap = e1.number_input("Maximum reel length (s, 0 = no cap)", 0.0, 7200.0, 0.0, 10.0, key="hl_cap")
snap_on = e2.toggle("Snap to shots", value=True, key="hl_snap",
                    help="Start each segment at a shot start and end it at a shot end (within the seconds "
                         "beside), so the reel cuts where the broadcast did.")
snap_s = e3.number_input("Snap within (s)", 0.5, 30.0, 3.0, 0.5, key="hl_snap_s", disabled=not snap_on)
with_replays = e4.toggle("With replays", value=False, key="hl_replays", disabled=not snap_on,
                         help="Extend a segment to the end of a replay that starts within 30 s after its event "
                              "(replays are found by a heuristic: a run of shots between two logo wipes).")
mode = e5.segmented_control("Cut", ["fast", "exact"], default="fast", key="hl_mode", required=True,
                            help="fast: stream copy from the keyframe before each cut (instant, up to one GOP early); "
                                 "exact: frame-accurate, re-encodes only the segments.")

statuses = ("accepted",) if which == "Accepted only" else ("pending", "accepted")
threshold = float(min_conf) if which == "Not rejected, above a confidence" else 0.0
if which == "Likely events":
    events = events[likely_events(events, operating_points)]
video, offset = match.video(half)
shared_file = len(set(match.videos.values())) == 1 and len(match.videos) == 2 and offset > 0
opts = {"pre": None if per_class else float(pre), "post": None if per_class else float(post),
        "max_duration": float(cap) or None, "half_offset_s": offset if shared_file else None}

try:
    if not classes:
        raise SpottingError("choose at least one class")
    duration, fps = _probe(str(video), video.stat().st_mtime) if video.is_file() else (None, 25.0)
    if not video.is_file():
        raise SpottingError(f"{video}: video file not found")
    kept = select_events(events, classes=classes, min_confidence=threshold, half=half, statuses=statuses)
    if kept.empty:
        raise SpottingError(f"no {' or '.join(statuses)} event of these classes in half {half}"
                            + {"Accepted only": "", "Likely events": " above its operating point"}.get(
                                which, f" above {threshold:.2f}")
                            + (" (accept some on the Review page)" if which == "Accepted only" else ""))
    shots = None
    if snap_on:
        shots = cached_shots(video)
        if shots is None:
            bar = st.progress(0.0, text="Detecting shot boundaries (once per video, cached beside it)")
            shots = detect_shots(video, progress=lambda f, t: bar.progress(min(1.0, max(0.0, f)), text=t))
            bar.empty()
    plan = plan_reel(kept, video=video, duration=duration, fps=fps, shots=shots,
                     snap_s=float(snap_s) if snap_on else None, with_replays=bool(snap_on and with_replays), **opts)
except SpottingError as e:
    st.warning(str(e))
    st.stop()

st.markdown(f"**Edit list**: {reel_summary(plan)}")
if shots is not None:
    st.caption(f"Snapped to {len(shots.ranges())} shots ({shots.detector}); requested_start / requested_end are "
               "the padded times before snapping.")
st.dataframe(pd.DataFrame(edit_list_rows(plan)), hide_index=True, key="hl_edit_list")

with st.expander(f"Segments: first and last frame ({len(plan.segments)})", expanded=True):
    mtime = Path(video).stat().st_mtime
    for i, s in enumerate(plan.segments[:PREVIEW_MAX], start=1):
        first, last = s.start + 0.25 / fps, max(s.start, s.end - 0.75 / fps)
        left, right, text = st.columns([1, 1, 2])
        try:
            images = _thumbs(str(video), mtime, (first, last))
            left.image(images[0], caption=f"first frame · {s.start:.2f} s")
            right.image(images[1], caption=f"last frame · {s.end - 1 / fps:.2f} s")
        except SpottingError as e:
            left.caption(f"No thumbnails: {e}")
        edges = shot_edges_within(shots, s.start, s.end) if shots is not None else []
        asked = s.requested or (s.start, s.end)
        text.markdown(f"**{i}. {s.label}** · {s.start:.2f} to {s.end:.2f} s ({s.duration:.1f} s)  \n"
                      f"padded: {asked[0]:.2f} to {asked[1]:.2f} s  \n"
                      + (f"shot changes inside: {', '.join(f'{t:.2f}' for t in edges)} s" if len(edges)
                         else ("one shot" if shots is not None else "not snapped")))
    if len(plan.segments) > PREVIEW_MAX:
        st.caption(f"and {len(plan.segments) - PREVIEW_MAX} more segments (all in the edit list above)")

out_dir = cache_root() / "reels" / match.match_id
out = out_dir / f"{Path(video).stem}_half{half}_{mode}.mp4"
if st.button("Cut the reel", key="hl_cut", type="primary", icon=":material/content_cut:",
             help="Runs as a job: it goes on when you change page, refresh or close the tab."):
    st.session_state["hl_job"] = submit("reel", {"plan": plan_to_dict(plan), "out": str(out), "mode": mode})
    st.session_state.pop("hl_reel", None)


@st.fragment(run_every=1.0)
def _reel_job(job_id: int) -> None:
    """The reel job's progress; once it is done the page shows the reel."""
    job = queue().get(job_id)
    if job is None:
        return
    if job["state"] in ("queued", "running"):
        st.progress(float(job["progress"]), text=job["message"] or "Cutting (queued)")
    elif job["state"] == "done" and not st.session_state.get("hl_reel"):
        st.session_state["hl_reel"] = job["result"]["reel"]
        st.rerun(scope="app")
    elif job["state"] in ("failed", "cancelled", "interrupted"):
        st.error(job["message"] or job["state"])


if st.session_state.get("hl_job") is not None:
    _reel_job(int(st.session_state["hl_job"]))

reel = st.session_state.get("hl_reel")
if reel and Path(reel).is_file():
    reel = Path(reel)
    vtt = reel.with_suffix(".vtt")
    size_mb = reel.stat().st_size / 1e6
    st.success(f"Reel: `{reel.name}` · {size_mb:.1f} MB", icon=":material/movie:")
    url = served_url(reel)
    subtitles = {"Events": vtt.read_bytes()} if vtt.is_file() else None
    if url is not None:
        st.video(url, subtitles=subtitles)
        st.markdown(f'<a href="{url}" download="{reel.name}">Download the reel ({size_mb:.1f} MB)</a>',
                    unsafe_allow_html=True)
    elif size_mb <= INLINE_VIDEO_MB:
        st.video(str(reel), subtitles=subtitles)
        st.download_button("Download the reel", reel.read_bytes(), file_name=reel.name, mime="video/mp4",
                           key="hl_dl_reel", on_click="ignore")
    cols = st.columns(5)
    for col, (suffix, label, mime) in zip(cols, [(".losslesscut.csv", "LosslessCut CSV", "text/csv"),
                                                 (".llc", "LosslessCut project", "application/json"),
                                                 (".edl", "CMX3600 EDL", "text/plain"),
                                                 (".srt", "SRT captions", "text/plain"),
                                                 (".vtt", "VTT captions", "text/vtt")]):
        f = reel.with_name(reel.stem + suffix)
        if f.is_file():
            col.download_button(label, f.read_text(), file_name=f.name, mime=mime, key=f"hl_dl{suffix}",
                                on_click="ignore")
