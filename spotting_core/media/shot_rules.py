"""Signals -> shot transitions: the rules of both detectors and the replay heuristic (`media/shots.py`).

    Transition(before, after)                       last clean frame before, first clean frame after
    transnetv2_transitions(scores, signals, hists)  TransNetV2's transitions + the content detector's wipes
    content_transitions(signals, hists)             the content detector alone
    replay_candidates(transitions, fps)             runs of shots between two short gradual transitions

The signals come from `media/shot_detectors.py`; the thresholds are described in `media/shots.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VERSION = 2                  # of the rules below: part of the cache key
CUT_RATIO, CUT_MIN = 3.0, 8.0
GRADUAL_MIN, GRADUAL_NET, GRADUAL_MAX_S = 0.06, 0.15, 2.0
REPLAY_MIN_S, REPLAY_MAX_S, REPLAY_WIPE_MAX_S = 4.0, 40.0, 1.2
REPLAY_NOTE = ("heuristic: a run of shots opened and closed by short gradual transitions (<= 1.2 s, "
               "as logo wipes are) 4-40 s apart; not a replay classifier")


@dataclass(frozen=True)
class Transition:
    before: int              # last clean frame of the shot before
    after: int               # first clean frame of the shot after
    source: str = "transnetv2"

    @property
    def kind(self) -> str:
        return "cut" if self.after == self.before + 1 else "gradual"

    @property
    def first(self) -> int:
        """A cut: the first frame of the new shot; a gradual transition: its first frame."""
        return self.before + 1

    @property
    def last(self) -> int:
        """A cut: the first frame of the new shot; a gradual transition: its last frame."""
        return max(self.after - 1, self.first)


# ---------------------------------------------------------------------------------------------
# Signals -> transitions
# ---------------------------------------------------------------------------------------------
def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each run of True."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.diff(m.astype(np.int8))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1))


def content_cuts(content: np.ndarray) -> np.ndarray:
    """Frames t starting a new shot: content value >= CUT_RATIO x the mean of t-2, t-1, t+1, t+2."""
    n = len(content)
    if n < 2:
        return np.zeros(0, int)
    pad = np.pad(content, 2, mode="edge")
    neighbours = (pad[0:n] + pad[1:n + 1] + pad[3:n + 3] + pad[4:n + 4]) / 4.0
    hit = (content >= CUT_RATIO * np.maximum(neighbours, 1.0)) & (content >= CUT_MIN)
    hit[0] = False
    return np.flatnonzero(hit)


def content_gradual(distance: np.ndarray, hists: np.ndarray, fps: float,
                    content: np.ndarray | None = None) -> list[Transition]:
    """Runs of high histogram distance (3 frames to GRADUAL_MAX_S) whose two sides differ by
    GRADUAL_NET and whose pixels change (mean content value >= CUT_MIN): a graphic fading in does not."""
    n = len(distance)
    if n < 4:
        return []
    half = min(50, (n - 1) // 2)
    local = np.median(np.lib.stride_tricks.sliding_window_view(np.pad(distance, half, mode="edge"), 2 * half + 1),
                      axis=1)
    hot = distance >= np.maximum(GRADUAL_MIN, 2.5 * local)
    hot[0] = False
    hot[1:-1] |= hot[:-2] & hot[2:]                          # one quiet frame does not end a transition
    out = []
    for s, e in _runs(hot):
        if 3 <= e - s + 1 <= GRADUAL_MAX_S * fps and s >= 1:
            moving = content is None or float(np.mean(content[s:e + 1])) >= CUT_MIN
            if moving and 0.5 * np.abs(hists[s - 1] - hists[e]).sum() >= GRADUAL_NET:
                out.append(Transition(int(s - 1), int(e), "content"))
    return out


def content_transitions(signals: np.ndarray, hists: np.ndarray, fps: float) -> list[Transition]:
    gradual = content_gradual(signals[:, 1], hists, fps, signals[:, 0])
    cuts = [Transition(int(t - 1), int(t), "content") for t in content_cuts(signals[:, 0])
            if not any(g.before < t <= g.after for g in gradual)]
    return _tidy(cuts + gradual)


def transnetv2_transitions(scores: np.ndarray, signals: np.ndarray, hists: np.ndarray,
                           fps: float) -> list[Transition]:
    single, many = scores[:, 0], scores[:, 1]
    confirmed = np.zeros(len(single), bool)
    cuts = content_cuts(signals[:, 0])
    confirmed[cuts[cuts >= 1] - 1] = True                     # the model marks a cut's last old frame
    hot = (single >= 0.5) | ((single >= 0.2) & confirmed)
    many_runs = _runs(many >= 0.5)
    found = []
    for r0, r1 in _runs(hot):
        e0, e1 = r0, r1
        for m0, m1 in many_runs:
            if m0 <= r1 + 1 and m1 >= r0 - 1:
                e0, e1 = min(e0, m0), max(e1, m1)
        if e1 - e0 + 1 >= 3:
            found.append(Transition(int(e0 - 1), int(e1 + 1), "transnetv2"))
        else:
            found.append(Transition(int(r1), int(r1 + 1), "transnetv2"))
    for g in content_gradual(signals[:, 1], hists, fps, signals[:, 0]):       # logo wipes: TransNetV2 misses them
        if any(t.kind == "gradual" and t.before < g.after and g.before < t.after for t in found):
            continue
        found = [t for t in found if not (g.before <= t.before and t.after <= g.after)] + [g]
    return _tidy(found)


def _tidy(transitions: list[Transition]) -> list[Transition]:
    """Sorted, no two overlapping (the earlier one kept), none outside the frames."""
    out: list[Transition] = []
    for t in sorted(transitions, key=lambda t: (t.before, t.after)):
        if t.before < 0:
            continue
        if out and t.before < out[-1].after:
            continue
        out.append(t)
    return out


def replay_candidates(transitions: list[Transition], fps: float) -> list[tuple[int, int]]:
    """(first, last) clean frame of each run of shots between two consecutive short gradual
    transitions REPLAY_MIN_S-REPLAY_MAX_S apart. A heuristic (see REPLAY_NOTE)."""
    wipes = [t for t in transitions if t.kind == "gradual" and (t.after - t.before - 1) / fps <= REPLAY_WIPE_MAX_S]
    out, i = [], 0
    while i + 1 < len(wipes):
        a, b = wipes[i], wipes[i + 1]
        span = (b.before + 1 - a.after) / fps
        if REPLAY_MIN_S <= span <= REPLAY_MAX_S:
            out.append((a.after, b.before))
            i += 2
        else:
            i += 1
    return out
