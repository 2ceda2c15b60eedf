"""Highlights: choose events, preview the edit list, cut the reel, play it, download it and its edit lists."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from pages.common import INLINE_VIDEO_MB, default_threshold, require_match, reviewed_events, served_url
from spotting_core.errors import SpottingError
from spotting_core.io.soccernet import CLASSES_V2
from spotting_core.io.video import probe
from spotting_core.media.edit_lists import edit_list_rows
from spotting_core.media.reels import plan_reel, select_events
from spotting_core.media.render import cut_reel, reel_summary
from spotting_core.runtime import cache_root

match = require_match()
st.header("Highlights")
events = reviewed_events(match)
if not match.videos:
    st.info("This match has no video, so there is nothing to cut. Open it with its video on the Match page.")
    st.stop()


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
which = c2.radio("Events", ["Accepted only", "Not rejected, above a confidence"], key="hl_which")
min_conf = c3.slider("Minimum confidence", 0.0, 1.0, start_conf, 0.01, key="hl_min_conf",
                     disabled=which == "Accepted only")
d1, d2, d3, d4 = st.columns(4)
halves = sorted(int(h) for h in match.videos)
half = d1.selectbox("Half", halves, key="hl_half")
per_class = d2.toggle("Per-class padding", value=True, key="hl_per_class",
                      help="A goal keeps its build-up and celebration, a throw-in only a moment.")
pre = d3.number_input("Seconds before", 0.0, 120.0, 5.0, 1.0, key="hl_pre", disabled=per_class)
post = d4.number_input("Seconds after", 0.0, 120.0, 5.0, 1.0, key="hl_post", disabled=per_class)
e1, e2 = st.columns(2)
cap = e1.number_input("Maximum reel length (s, 0 = no cap)", 0.0, 7200.0, 0.0, 10.0, key="hl_cap")
mode = e2.segmented_control("Cut", ["fast", "exact"], default="fast", key="hl_mode", required=True,
                            help="fast: stream copy from the keyframe before each cut (instant, up to one GOP early); "
                                 "exact: frame-accurate, re-encodes only the segments.")

statuses = ("accepted",) if which == "Accepted only" else ("pending", "accepted")
threshold = 0.0 if which == "Accepted only" else float(min_conf)
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
                            + ("" if which == "Accepted only" else f" above {threshold:.2f}")
                            + (" (accept some on the Review page)" if which == "Accepted only" else ""))
    plan = plan_reel(kept, video=video, duration=duration, fps=fps, **opts)
except SpottingError as e:
    st.warning(str(e))
    st.stop()

st.markdown(f"**Edit list**: {reel_summary(plan)}")
st.dataframe(pd.DataFrame(edit_list_rows(plan)), hide_index=True, key="hl_edit_list")

out_dir = cache_root() / "reels" / match.match_id
out = out_dir / f"{Path(video).stem}_half{half}_{mode}.mp4"
if st.button("Cut the reel", key="hl_cut", type="primary", icon=":material/content_cut:"):
    bar = st.progress(0.0, text="Cutting")
    try:
        cut_reel(plan, out, mode=mode, progress=lambda f, t: bar.progress(min(1.0, max(0.0, f)), text=t))
        st.session_state["hl_reel"] = str(out)
    except SpottingError as e:
        st.error(str(e))
    bar.empty()

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
    cols = st.columns(4)
    for col, (suffix, label, mime) in zip(cols, [(".losslesscut.csv", "LosslessCut CSV", "text/csv"),
                                                 (".edl", "CMX3600 EDL", "text/plain"),
                                                 (".srt", "SRT captions", "text/plain"),
                                                 (".vtt", "VTT captions", "text/vtt")]):
        f = reel.with_name(reel.stem + suffix)
        if f.is_file():
            col.download_button(label, f.read_text(), file_name=f.name, mime=mime, key=f"hl_dl{suffix}",
                                on_click="ignore")
