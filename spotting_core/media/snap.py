"""Snapping reel segments to shots, so a reel cuts where the broadcast's editor cut (`plan_reel(shots=...)`).

    snap_window(start, end, event=t, shots=shots, snap_s=3)     start back to a shot start, end forward
                                                                 to a shot end, each within snap_s
    replay_end(event=t, end=end, label="Goal", shots=shots)     the end of a replay that follows the event
    snap_inside(start, end, shots=shots, snap_s=3)              a trimmed segment's ends moved inward

A shot's start is the time of its first clean frame; its end the instant after its last clean frame
(`Shots.starts_s` / `ends_s`), so an exact cut from a start to an end shows that shot's frames only.
When no shot edge lies within snap_s on the outer side, an edge that would show a sliver of an
adjacent shot (under SLIVER_S: the "one frame into the previous shot" cut) or land inside a gradual
transition moves inward to the shot edge instead, as long as the event stays inside the segment;
otherwise it stays where the padding put it (inside one shot, so still no foreign frame).
"""

from __future__ import annotations

import math

import numpy as np

from spotting_core.media.shots import Shots

REPLAY_AFTER_S = 30.0     # a replay must start within this many seconds after the event
# How far past its event a segment may run to take in a whole replay; longer replays are left out
# rather than cut in half.
REPLAY_CAP_S: dict[str, float] = {
    "Goal": 60.0, "Penalty": 50.0, "Red card": 45.0, "Yellow->red card": 45.0, "Shots on target": 40.0,
    "Shots off target": 35.0,
}
REPLAY_CAP_FALLBACK = 30.0
SLIVER_S = 1.0            # less of another shot than this at a segment's edge is a flash, not a shot


def _inside_transition(shots: Shots, frame: int):
    for t in shots.transitions:
        if t.before < frame < t.after:
            return t
    return None


def snap_window(start: float, end: float, *, event: float, shots: Shots, snap_s: float,
                duration: float | None = None) -> tuple[float, float]:
    """(start, end) moved to shot edges within snap_s: start back to the nearest shot start, end
    forward to the nearest shot end."""
    fps, eps = shots.fps, 0.25 / shots.fps
    starts, ends = shots.starts_s(), shots.ends_s()
    sliver = min(snap_s, SLIVER_S)
    near = starts[(starts <= start + eps) & (starts >= start - snap_s - eps)]
    inward = starts[(starts > start + eps) & (starts <= start + sliver + eps) & (starts <= event + eps)]
    t = _inside_transition(shots, int(math.floor(start * fps + eps)))
    if len(near):
        start = float(near.max())
    elif len(inward):
        start = float(inward.min())
    elif t is not None and t.after / fps <= event:
        start = t.after / fps
    near = ends[(ends >= end - eps) & (ends <= end + snap_s + eps)]
    inward = ends[(ends < end - eps) & (ends >= end - sliver - eps) & (ends >= event - eps)]
    t = _inside_transition(shots, int(math.ceil(end * fps - eps)) - 1)
    if len(near):
        end = float(near.min())
    elif len(inward):
        end = float(inward.max())
    elif t is not None and (t.before + 1) / fps >= event:
        end = (t.before + 1) / fps
    start = max(0.0, start)
    if duration is not None:
        end = min(end, duration)
    return start, end


def replay_end(*, event: float, end: float, label: str, shots: Shots) -> float | None:
    """The end of the first replay candidate starting within REPLAY_AFTER_S after the event, when it
    lies beyond `end` and within the class's cap (REPLAY_CAP_S); else None."""
    cap = REPLAY_CAP_S.get(label, REPLAY_CAP_FALLBACK)
    for a, b in shots.replays():
        if event <= a <= event + REPLAY_AFTER_S:
            return b if end < b <= event + cap else None
    return None


def snap_inside(start: float, end: float, *, shots: Shots, snap_s: float) -> tuple[float, float]:
    """A segment's start forward to the next shot start and its end back to the previous shot end,
    each within snap_s (so it never grows: used where a cap trimmed it)."""
    eps = 0.25 / shots.fps
    starts, ends = shots.starts_s(), shots.ends_s()
    later = starts[(starts >= start - eps) & (starts <= start + snap_s + eps)]
    earlier = ends[(ends <= end + eps) & (ends >= end - snap_s - eps)]
    new_start = float(later.min()) if len(later) else start
    new_end = float(earlier.max()) if len(earlier) else end
    return (new_start, new_end) if new_end - new_start > eps else (start, end)


def shot_edges_within(shots: Shots, start: float, end: float) -> np.ndarray:
    """Boundary times (s) inside [start, end]: what a preview shows on a segment."""
    b = np.asarray(shots.boundaries_s())
    return b[(b >= start) & (b <= end)]
