"""Review: step through events with the video at each one; accept / reject / retime / relabel, undo; export."""

from __future__ import annotations

import json

import streamlit as st

from pages.common import (
    default_threshold,
    likely_switch,
    player,
    replay,
    require_match,
    reviewed_events,
    seek_to,
    store,
)
from pages.support.access import current_editor
from spotting_core.errors import SpottingError
from spotting_core.io.soccernet import CLASSES_V2
from spotting_core.review.store import STATUSES

match = require_match()
st.header("Review")
mid = match.match_id
editor = current_editor()  # recorded with every decision (None where nobody is asked who they are)
events = reviewed_events(match)
if events.empty:
    st.info("This match has no events to review. Add missed events below.")

f1, f2, f3, f4 = st.columns([3, 2, 2, 1])
classes = f1.multiselect("Classes", list(CLASSES_V2), key="rv_classes", placeholder="All classes")
shown, every = likely_switch(f2, events, match, key="rv_every")
min_conf = f2.slider("Minimum confidence", 0.0, 1.0, default_threshold(events) if every else 0.0, 0.01,
                     key="rv_min_conf", disabled=not every,
                     help="NMS keeps every local peak; over every candidate it starts on the top 20% of them.")
statuses = f3.multiselect("Status", list(STATUSES), default=list(STATUSES), key="rv_status")
advance = f4.toggle("Auto-advance", value=True, key="rv_advance", help="Go to the next event after accept/reject")

view = events[shown & (events["confidence"] >= (min_conf if every else 0.0)) & events["status"].isin(statuses or STATUSES)]
if classes:
    view = view[view["label"].isin(classes)]
view = view.reset_index(drop=True)


def _current_index() -> int | None:
    if view.empty:
        return None
    eid = st.session_state.get("event_id")
    hits = view.index[view["event_id"] == eid].tolist() if eid is not None else []
    return hits[0] if hits else None


def _go(i: int) -> None:
    if view.empty:
        return
    i = max(0, min(len(view) - 1, i))
    row = view.iloc[i]
    seek_to(int(row["half"]), row["position_ms"] / 1000.0, event_id=int(row["event_id"]))


if _current_index() is None and not view.empty:
    _go(0)
idx = _current_index()


def _step(delta: int) -> None:
    i = _current_index()
    _go((i if i is not None else -1) + delta)


def _decide(action: str, *args) -> None:
    """Apply a decision to the current event (a callback: it runs before the page is drawn again)."""
    i = _current_index()
    if i is None:
        return
    eid = int(view.iloc[i]["event_id"])
    try:
        getattr(store(), action)(mid, eid, *args, editor=editor)
    except SpottingError as e:
        st.session_state["rv_error"] = str(e)
        return
    if action in ("nudge", "retime"):
        ev = store().event(mid, eid)
        seek_to(int(ev["half"]), ev["position_ms"] / 1000.0, event_id=eid)
    elif advance and action in ("accept", "reject") and i + 1 < len(view):
        _go(i + 1)


def _undo() -> None:
    done = store().undo(mid, editor=editor)  # only ever this editor's own decisions
    if done is None:
        live = store().history(mid).query("undone == 0")
        other = live.iloc[-1]["editor"] if not live.empty else None
        st.session_state["rv_error"] = "Nothing to undo." if live.empty else (
            f"Nothing of yours to undo: the latest decision is {other or 'an unnamed editor'}'s, and undo "
            "only undoes your own (decide the event again to change it).")
        return
    ev = store().events(mid)
    row = ev[ev["event_id"] == done["event_id"]]
    if not row.empty:
        seek_to(int(row.iloc[0]["half"]), row.iloc[0]["position_ms"] / 1000.0, event_id=int(done["event_id"]))
    st.session_state["rv_info"] = f"Undid {done['action']} of event {done['event_id']}." + (
        f" {', '.join(done['later'])} decided on it since: that stands." if done["later"] else "")


def _relabel() -> None:
    _decide("relabel", st.session_state["rv_new_label"])


def _retime() -> None:
    _decide("retime", int(round(float(st.session_state["rv_new_time"]) * 1000)))


def _add() -> None:
    try:
        eid = store().add(mid, half=int(st.session_state["rv_add_half"]),
                          position_ms=int(round(float(st.session_state["rv_add_time"]) * 1000)),
                          label=st.session_state["rv_add_label"], editor=editor)
        st.session_state["rv_info"] = f"Added event {eid}."
        seek_to(int(st.session_state["rv_add_half"]), float(st.session_state["rv_add_time"]), event_id=eid)
    except SpottingError as e:
        st.session_state["rv_error"] = str(e)


for key, show in (("rv_error", st.error), ("rv_info", st.toast)):
    if st.session_state.get(key):
        show(st.session_state.pop(key))

left, right = st.columns([3, 2])
with left:
    if idx is None:
        st.info("No event matches the filters.")
    else:
        ev = view.iloc[idx]
        moved = "" if ev["position_ms"] == ev["original_position_ms"] else \
            f" (was {ev['original_position_ms'] / 1000:.1f} s)"
        relabelled = "" if ev["label"] == ev["original_label"] else f" (was {ev['original_label']})"
        st.subheader(f"{idx + 1}/{len(view)} · {ev['label']}{relabelled} · {ev['game_time']}{moved}")
        st.caption(f"confidence {ev['confidence']:.2f} · status **{ev['status']}** · {ev['source']} event "
                   f"· id {ev['event_id']}" + (f" · decided by **{ev['decided_by']}**" if ev["decided_by"] else ""))
        player(match, int(ev["half"]), key="rv_player")
        row1 = st.columns(4)
        row1[0].button("Previous", key="rv_prev", on_click=_step, args=(-1,), shortcut="P", icon=":material/skip_previous:")
        row1[1].button("Next", key="rv_next", on_click=_step, args=(1,), shortcut="N", icon=":material/skip_next:")
        row1[2].button("Replay", key="rv_replay", on_click=replay, shortcut="E", icon=":material/replay:")
        row1[3].button("Undo", key="rv_undo", on_click=_undo, shortcut="U", icon=":material/undo:")
        row2 = st.columns(4)
        row2[0].button("Accept", key="rv_accept", on_click=_decide, args=("accept",), shortcut="A", type="primary",
                       icon=":material/check:")
        row2[1].button("Reject", key="rv_reject", on_click=_decide, args=("reject",), shortcut="X", icon=":material/close:")
        row2[2].button("−1 s", key="rv_minus", on_click=_decide, args=("nudge", -1000), shortcut="Shift+Left")
        row2[3].button("+1 s", key="rv_plus", on_click=_decide, args=("nudge", 1000), shortcut="Shift+Right")
        with st.expander("Relabel or retime"):
            c1, c2 = st.columns(2)
            c1.selectbox("New class", list(CLASSES_V2), index=list(CLASSES_V2).index(ev["label"]), key="rv_new_label")
            c1.button("Relabel", key="rv_relabel", on_click=_relabel)
            c2.number_input("New time (seconds into the half)", min_value=0.0, value=ev["position_ms"] / 1000.0,
                            step=0.5, key="rv_new_time")
            c2.button("Retime", key="rv_retime", on_click=_retime)

with right:
    st.markdown(f"**Events** ({len(view)} shown of {len(events)})")
    table = view[["game_time", "label", "confidence", "status", "decided_by"]]
    picked = st.dataframe(table, key="rv_table", on_select="rerun", selection_mode="single-row", hide_index=True,
                          height=360, column_config={"confidence": st.column_config.ProgressColumn(
                              "confidence", min_value=0.0, max_value=1.0, format="%.2f")})
    rows = picked["selection"]["rows"] if picked is not None else []
    if rows and st.session_state.get("rv_table_pick") != rows[0]:
        st.session_state["rv_table_pick"] = rows[0]
        _go(int(rows[0]))
        st.rerun()
    with st.expander("Add a missed event"):
        a1, a2, a3 = st.columns(3)
        a1.selectbox("Half", [1, 2], key="rv_add_half")
        a2.number_input("Seconds into the half", min_value=0.0, value=0.0, step=1.0, key="rv_add_time")
        a3.selectbox("Class", list(CLASSES_V2), key="rv_add_label")
        st.button("Add event", key="rv_add", on_click=_add)

st.divider()
st.markdown("**Export the reviewed events**")
e1, e2, e3 = st.columns(3)
e1.download_button("Labels-v2.json (accepted)", json.dumps(store().labels_dict(mid, url_local=match.name), indent=2),
                   file_name="Labels-v2.json", mime="application/json", key="dl_labels", on_click="ignore",
                   help="Accepted events with their corrected times and classes: training data.")
e2.download_button("results_spotting.json (not rejected)", json.dumps(store().results_dict(mid, url_local=match.name),
                   indent=2), file_name="results_spotting.json", mime="application/json", key="dl_results",
                   on_click="ignore")
e3.download_button("CSV (all, with status)", store().csv_text(mid), file_name=f"{match.name}_review.csv",
                   mime="text/csv", key="dl_csv", on_click="ignore")
