"""Widgets every page shares: the sidebar, the opened match, the video player, keyboard shortcuts.

Not a page itself (app.py registers the pages explicitly with st.navigation).
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import streamlit as st

from pages.support.server import ENV_MEDIA_ROOT, media_mounted, media_root, media_url
from spotting_core.errors import SpottingError
from spotting_core.review.matches import (
    Match,
    likely_events,
    load_arrays,
    load_events,
    load_labels,
    match_thresholds,
    open_results_folder,
)
from spotting_core.review.store import ReviewStore
from spotting_core.review.store import default_path as review_store_path

PREROLL_S = 3.0          # the player starts this many seconds before an event
INLINE_VIDEO_MB = 200    # without the media route (AppTest), st.video reads files up to this size
SHORTCUTS = [
    ("N / P", "next / previous event"),
    ("A", "accept the event"),
    ("X", "reject the event"),
    ("Shift+Left / Shift+Right", "nudge the event -1 s / +1 s"),
    ("U", "undo the last decision"),
    ("E", "replay the event (seek again)"),
    ("K", "play / pause the video"),
    ("J / L", "video back / forward 5 s"),
]

# K / J / L act on the page's <video> in the browser (no server round trip), as in video editors.
_KEYS_JS = """
<script>
(function () {
  const doc = window.parent && window.parent.document ? window.parent.document : document;
  if (doc.__spottingKeys) { return; }
  doc.__spottingKeys = true;
  doc.addEventListener("keydown", function (e) {
    const t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable)) { return; }
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    const v = doc.querySelector("video");
    if (!v) { return; }
    const k = e.key.toLowerCase();
    if (k === "k") { if (v.paused) { v.play(); } else { v.pause(); } e.preventDefault(); }
    else if (k === "j") { v.currentTime = Math.max(0, v.currentTime - 5); e.preventDefault(); }
    else if (k === "l") { v.currentTime = v.currentTime + 5; e.preventDefault(); }
  });
})();
</script>
"""


# ---------------------------------------------------------------------------------------------
# Errors: caught in one place, shown as one line
# ---------------------------------------------------------------------------------------------
def guarded(run) -> None:
    """Run the sidebar or a page; a user error shows its one line, a bug one line too (traceback to the log).

    Streamlit's own control flow (st.stop, st.rerun, st.switch_page) is not an Exception and passes.
    """
    try:
        run()
    except SpottingError as e:
        st.error(str(e), icon=":material/error:")
    except Exception as e:
        logging.getLogger("spotting.app").exception("error while drawing the page")
        first = (str(e).splitlines() or [""])[0][:200]
        st.error(f"Something went wrong ({type(e).__name__}: {first}); the details are in the server log.",
                 icon=":material/error:")


# ---------------------------------------------------------------------------------------------
# The opened match
# ---------------------------------------------------------------------------------------------
@st.cache_resource
def review_store(path: str) -> ReviewStore:
    return ReviewStore(path)


def store() -> ReviewStore:
    return review_store(str(review_store_path()))


def current_match() -> Match | None:
    data = st.session_state.get("match")
    return Match(**data) if data else None


def set_match(match: Match) -> None:
    """Make `match` the opened one: its model events go into the review store (once per match)."""
    events = load_events(match)
    store().load_events(match.match_id, events, meta={"name": match.name, "folder": match.folder, "kind": match.kind})
    st.session_state["match"] = asdict(match)
    for key in ("seek", "event_id", "timeline_sel", "last_start", "review_filter_sig"):
        st.session_state.pop(key, None)


def require_match() -> Match:
    match = current_match()
    if match is None:
        st.info("No match is open. Open one on the Match page (the built-in demo is one click there).")
        st.page_link("pages/match.py", label="Go to the Match page", icon=":material/movie:")
        st.stop()
    return match


@st.cache_data(show_spinner=False)
def _thresholds(checkpoint: str, mtime: float) -> dict | None:
    return match_thresholds(Match(folder="", name="", checkpoint=checkpoint))


def thresholds_of(match: Match) -> dict | None:
    """The operating points of the match's checkpoint (cached), or None."""
    if not match.checkpoint or not Path(match.checkpoint).is_file():
        return None
    return _thresholds(match.checkpoint, Path(match.checkpoint).stat().st_mtime)


def likely_switch(container, events: pd.DataFrame, match: Match, *, key: str) -> tuple[pd.Series, bool]:
    """The "likely events / every candidate" switch: the mask of the events it shows, and whether
    that is every candidate (always, for a model without operating points)."""
    thresholds = thresholds_of(match)
    if thresholds is None:
        container.caption("No operating points for this model: every candidate is listed "
                          "(`spotting calibrate ... --into CHECKPOINT` adds them).")
        return pd.Series(True, index=events.index), True
    every = container.toggle("Every candidate", value=False, key=key,
                             help=f"Off: the likely events, above each class's operating point for editors (the most "
                                  f"true events within {thresholds.get('tolerance_s', 5):g} s in a list of about "
                                  "1.3 rows per event, on validation data). On: every "
                                  "candidate the model wrote, as Average-mAP needs them.")
    return (pd.Series(True, index=events.index) if every else likely_events(events, thresholds)), every


def default_threshold(events: pd.DataFrame, keep: float = 0.2) -> float:
    """A starting confidence filter that shows the top `keep` share of events (NMS keeps every local peak)."""
    if events.empty:
        return 0.0
    return float(np.floor(events["confidence"].quantile(1.0 - keep) * 100) / 100)


def reviewed_events(match: Match) -> pd.DataFrame:
    """The match's events with their review status (the store is the single source of truth)."""
    return store().events(match.match_id)


@st.cache_data(show_spinner=False)
def _labels(path: str, mtime: float) -> pd.DataFrame | None:
    return load_labels(Match(folder="", name="", labels=path))


def match_labels(match: Match) -> pd.DataFrame | None:
    if not match.labels:
        return None
    try:
        return _labels(match.labels, Path(match.labels).stat().st_mtime)
    except (SpottingError, OSError) as e:
        st.warning(f"Labels not shown: {e}")
        return None


def match_arrays(match: Match) -> dict[int, dict]:
    try:
        return load_arrays(match)
    except SpottingError as e:
        st.warning(f"Per-frame scores not shown: {e}")
        return {}


# ---------------------------------------------------------------------------------------------
# The video player
# ---------------------------------------------------------------------------------------------
def seek_to(half: int, position_s: float, *, event_id: int | None = None) -> None:
    """Ask the player to show `half` at `position_s` (seconds into the half), a little before it."""
    st.session_state["seek"] = {"half": int(half), "t": float(position_s)}
    if event_id is not None:
        st.session_state["event_id"] = int(event_id)


def replay() -> None:
    """Seek again to the same moment (st.video only re-seeks when start_time changes)."""
    seek = st.session_state.get("seek")
    if seek:
        st.session_state["seek"] = dict(seek, replay=not seek.get("replay", False))


def player(match: Match, half: int, *, subtitles: str | None = None, key: str = "player") -> None:
    """The video of `half`, started PREROLL_S before the requested moment; served over HTTP when possible."""
    where = match.video(half)
    if where is None:
        st.info(f"No video for half {half} of this match: the timeline and review work on scores alone.")
        return
    path, offset = where
    if not path.is_file():
        st.error(f"{path}: video file not found")
        return
    seek = st.session_state.get("seek") or {}
    t = float(seek.get("t", 0.0)) if seek.get("half") == half else 0.0
    start = int(max(0.0, offset + t - PREROLL_S))
    if seek.get("replay"):  # same second again would not re-seek: move by one second
        start = start + 1 if start == 0 else start - 1
    st.session_state[f"{key}_start"] = start
    url = served_url(path)
    if url is None:
        size_mb = path.stat().st_size / 1e6
        if size_mb > INLINE_VIDEO_MB:
            st.error(f"{path.name} ({size_mb:.0f} MB) can only be streamed by the media route: start the app with "
                     "`streamlit run app.py`, and keep the video under the media root.")
            return
        url = str(path)
    kwargs = {"subtitles": {"Events": subtitles.encode()}} if subtitles else {}
    st.video(url, start_time=start, muted=True, autoplay=bool(seek), **kwargs)
    st.caption(f"{path.name} · half {half} · starts at {start // 60:02d}:{start % 60:02d} "
               f"({PREROLL_S:.0f} s before the moment) · K play/pause, J/L ∓5 s")


def served_url(path: Path) -> str | None:
    """The absolute http URL of a file under a mounted folder (st.video needs a full URL), or None."""
    rel = media_url(path) if media_mounted() else None
    page = st.context.url
    if rel is None or not page:
        return None
    parts = urlsplit(page)
    return f"{parts.scheme}://{parts.netloc}{rel}"


def keyboard_shortcuts() -> None:
    st.html(_KEYS_JS, unsafe_allow_javascript=True)


# ---------------------------------------------------------------------------------------------
# The shared sidebar
# ---------------------------------------------------------------------------------------------
def open_demo(container=None) -> None:
    from spotting_core.synth.demo import check_demo, ensure_demo

    where = container or st
    bar = where.progress(0.0, text="Preparing the synthetic demo match (first start only)")
    folder = ensure_demo(progress=lambda f, text: bar.progress(min(1.0, max(0.0, f)), text=text))
    bar.empty()
    check_demo(folder)
    set_match(open_results_folder(folder))


def reopen(match_id: str) -> None:
    """Reopen a match of the review store by id (after a browser refresh: the id is in the URL)."""
    known = store().matches()
    row = known[known["match_id"] == match_id]
    folder = row.iloc[0]["meta"].get("folder") if not row.empty else None
    if not folder:
        st.warning(f"Match {match_id} from the link is not in the review store; opening the default.")
        return
    try:
        set_match(open_results_folder(folder))
    except SpottingError as e:
        st.warning(f"Match {match_id} cannot be reopened: {e}")


def sidebar() -> None:
    from pages.jobs_panel import follow_jobs

    keyboard_shortcuts()
    with st.sidebar:
        follow_jobs()  # a spotting job this browser started and that has finished opens its match
        if "match" not in st.session_state and st.query_params.get("match"):
            reopen(st.query_params["match"])
        if "match" not in st.session_state and os.environ.get("SPOTTING_AUTOLOAD_DEMO", "1") != "0" \
                and not st.session_state.get("demo_failed"):
            try:
                open_demo(st.sidebar)
            except SpottingError as e:
                st.session_state["demo_failed"] = True
                st.error(f"Demo match unavailable: {e}")
        match = current_match()
        if match is not None and st.query_params.get("match") != match.match_id:
            st.query_params["match"] = match.match_id  # a browser refresh reopens this match
        if match is None:
            st.caption("No match open.")
        else:
            st.markdown(f"**{match.name}**")
            if match.synthetic:
                st.warning("Synthetic demo: generated video, features and labels, not a real match.",
                           icon=":material/science:")
            counts = reviewed_events(match)["status"].value_counts()
            st.caption(" · ".join(f"{counts.get(s, 0)} {s}" for s in ("pending", "accepted", "rejected")))
        with st.expander("Keyboard shortcuts"):
            st.markdown("\n".join(f"- `{k}`: {v}" for k, v in SHORTCUTS))
        st.caption(f"Media root: `{media_root()}` (set {ENV_MEDIA_ROOT} to change it)")
