"""Timeline: per-class confidence over match time, events, ground truth, saliency, the salient frames."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from pages.common import (
    default_threshold,
    match_arrays,
    match_labels,
    player,
    replay,
    require_match,
    reviewed_events,
    seek_to,
    thresholds_of,
)
from pages.support.charts import event_at, grab_frames, salient_frames, shot_ticks, timeline_figure
from spotting_core.errors import SpottingError
from spotting_core.io.soccernet import CLASSES_V2, FPS
from spotting_core.review.matches import Match, load_arrays, review_thresholds

match = require_match()
st.header("Timeline")
events = reviewed_events(match)
labels = match_labels(match)
arrays = match_arrays(match)

seek = st.session_state.get("seek") or {}
top = st.columns([1, 4, 2])
half = top[0].segmented_control("Half", [1, 2], default=seek.get("half", 1), key="tl_half", required=True)
# default: the classes of the most confident events (all 17 are one toggle away)
best = events.sort_values("confidence", ascending=False)["label"].drop_duplicates().head(5)
preferred = sorted(best, key=list(CLASSES_V2).index) or list(CLASSES_V2)
all_classes = top[0].toggle("All 17", key="tl_all", help="Show every class")
classes = top[1].multiselect("Classes", list(CLASSES_V2), default=preferred, key="tl_classes",
                             disabled=all_classes)
classes = list(CLASSES_V2) if all_classes else classes
min_conf = top[2].slider("Show events above confidence", 0.0, 1.0, default_threshold(events), 0.01, key="tl_min_conf",
                         help="Events under it stay in the review list; this only declutters the chart.")
shown = events[(events["confidence"] >= min_conf) & (events["status"] != "rejected")]
half_events = shown[(shown["half"] == half) & shown["label"].isin(classes)].reset_index(drop=True)


@st.cache_data(max_entries=16, show_spinner=False)
def _figure(folder: str, stamp: float, half: int, classes: tuple[str, ...], shown, labels, shots_s=None,
            thresholds=None):
    """The chart, cached per results (and their time stamp), half, classes and events (a click reuses it)."""
    arrays = load_arrays(Match(folder=folder, name=""))
    fig = timeline_figure(arrays=arrays.get(half), events=shown, labels=labels, half=half, classes=classes,
                          shots_s=shots_s, thresholds=dict(thresholds) if thresholds else None)
    return fig.to_plotly_json()


def _shots_of_half(half: int) -> tuple[tuple[float, ...] | None, Path | None]:
    """Shot boundaries of this half's video (cached ones only) and the video, if there is one."""
    where = match.video(half)
    if where is None or not where[0].is_file():
        return None, None
    path, offset = where
    other = match.video(2) if half == 1 else None
    until = other[1] if other and other[0] == path and other[1] > 0 else None   # one file, both halves
    return shot_ticks(path, offset, until), path


def _detect_shots(path: Path) -> None:
    from spotting_core.media.shots import detect_shots

    bar = st.progress(0.0, text="Detecting shot boundaries")
    try:
        detect_shots(path, progress=lambda f, t: bar.progress(min(1.0, max(0.0, f)), text=t))
    except SpottingError as e:
        st.session_state["tl_shots_error"] = str(e)
    bar.empty()


# the figure must not depend on the selection: a changed figure is a new chart, which would lose the zoom
stamp = max((p.stat().st_mtime for p in Path(match.folder).glob(f"{half}_*.npy")), default=0.0)
shots_s, shots_video = _shots_of_half(half)
operating_points = thresholds_of(match)
lines = tuple(review_thresholds(operating_points).items()) if operating_points else None
fig = _figure(match.folder, stamp, half, tuple(classes), shown[shown["half"] == half], labels, shots_s, lines)
if not arrays.get(half):
    st.caption("No per-frame scores saved with these results: only the events are drawn.")
elif operating_points and operating_points.get("rescorer"):
    st.caption("Curves: the model's per-frame confidence. Events: their confidence revised by the events "
               "around them (context rescoring); the dashed operating points apply to the events.")
if shots_s is not None:
    st.caption(f"Ticks under the curves: {len(shots_s)} shot boundaries of the video.")
elif shots_video is not None:
    st.button("Detect shot boundaries", key="tl_detect_shots", on_click=_detect_shots, args=(shots_video,),
              help="TransNetV2 (or the content detector) over every frame of this half's video, cached beside it; "
                   "the Highlights page does it when it snaps a reel.", icon=":material/view_week:")
if st.session_state.get("tl_shots_error"):
    st.warning(f"Shot boundaries unavailable: {st.session_state.pop('tl_shots_error')}")
state = st.plotly_chart(fig, key="timeline", on_select="rerun", selection_mode="points",
                        config={"scrollZoom": True, "displaylogo": False})

# A click on a curve point, an event marker or the saliency track moves the player there.
points = []
if state is not None:
    try:
        points = state["selection"]["points"] or []
    except (KeyError, TypeError):
        points = []
if points:
    p = points[0]
    signature = (half, round(float(p["x"]), 4), p.get("curve_number"))
    if st.session_state.get("timeline_sel") != signature:
        st.session_state["timeline_sel"] = signature
        custom = p.get("customdata")
        try:  # an event marker carries [event_id, position_ms]
            seek_to(half, float(custom[1]) / 1000.0, event_id=int(custom[0]))
        except (TypeError, KeyError, IndexError, ValueError):  # a curve point: its time (its event, at a peak)
            name = p.get("legendgroup")                 # a class curve's group is its class name
            t = float(p["x"]) * 60.0
            seek_to(half, t, event_id=event_at(half_events, t, label=name if name in CLASSES_V2 else None))


def _step(delta: int) -> None:
    if half_events.empty:
        return
    t_now = (st.session_state.get("seek") or {}).get("t", -1.0)
    ms = half_events["position_ms"].to_numpy() / 1000.0
    if delta > 0:
        later = [i for i, t in enumerate(ms) if t > t_now + 0.5]
        i = later[0] if later else len(ms) - 1
    else:
        earlier = [i for i, t in enumerate(ms) if t < t_now - 0.5]
        i = earlier[-1] if earlier else 0
    row = half_events.iloc[i]
    seek_to(half, row["position_ms"] / 1000.0, event_id=int(row["event_id"]))


left, right = st.columns([3, 2])
with right:
    nav = st.columns(3)
    nav[0].button("Previous event", key="tl_prev", on_click=_step, args=(-1,), shortcut="P", icon=":material/skip_previous:")
    nav[1].button("Next event", key="tl_next", on_click=_step, args=(1,), shortcut="N", icon=":material/skip_next:")
    nav[2].button("Replay", key="tl_replay", on_click=replay, shortcut="E", icon=":material/replay:")
    player(match, half, key="tl_player")
    now = (st.session_state.get("seek") or {}).get("t")
    if now is not None:
        st.caption(f"Moment: half {half}, {int(now) // 60:02d}:{int(now) % 60:02d}")

with left:
    selected = st.session_state.get("event_id")  # a click above may have just changed it
    ev_row = events[events["event_id"] == selected] if selected is not None else events.iloc[0:0]
    if ev_row.empty:
        st.info("Click an event marker (triangles) or a point on a curve to jump the video there and see "
                "the frames the model looked at.")
    else:
        ev = ev_row.iloc[0]
        st.subheader(f"{ev['label']} · {ev['game_time']} · confidence {ev['confidence']:.2f} · {ev['status']}")
        half_arrays = arrays.get(int(ev["half"])) or {}
        top_frames = salient_frames(half_arrays, int(ev["frame"]), k=6)
        if not top_frames:
            st.caption("This model gives no frame saliency, so there is no strip of salient frames.")
        else:
            st.caption("The frames the model weighted most in the window around this event (saliency weight).")
            where = match.video(int(ev["half"]))
            if where is None:
                st.dataframe({"time": [f"{f / FPS:.1f} s" for f, _ in top_frames], "saliency": [w for _, w in top_frames]},
                             hide_index=True)
            else:
                path, offset = where
                try:
                    images = grab_frames(path, [offset + f / FPS for f, _ in top_frames], width=200)
                    cols = st.columns(len(images))
                    for col, img, (f, w) in zip(cols, images, top_frames):
                        col.image(img, caption=f"{int(f / FPS) // 60:02d}:{f / FPS % 60:04.1f} · {w:.2f}")
                except SpottingError as e:
                    st.warning(f"Thumbnails unavailable: {e}")
