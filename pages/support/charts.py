"""The app's charts and thumbnails: the per-class timeline and the salient frames around an event.

    timeline_figure(arrays=, events=, labels=, half=, classes=, shots_s=, thresholds=)   plotly WebGL chart
    salient_frames(arrays, frame)                                 the k most salient frames near an event
    grab_frames(video, seconds)                                   RGB thumbnails at those times
    shot_ticks(video, offset)                                     cached shot boundaries, seconds into the half
    frames_at(video, seconds)                                     the exact frames on screen then (first / last of a cut)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from spotting_core.errors import SpottingError
from spotting_core.io.soccernet import CLASSES_V2, FPS, class_color


def downsample_max(values: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the maximum of each bucket at its own frame: peaks survive, (T,) -> (<= max_points,)."""
    values = np.asarray(values, dtype=np.float32)
    T = len(values)
    if T <= max_points:
        return np.arange(T), values
    step = int(np.ceil(T / max_points))
    n = int(np.ceil(T / step))
    padded = np.full(n * step, -np.inf, dtype=np.float32)
    padded[:T] = values
    buckets = padded.reshape(n, step)                 # (n, step)
    arg = buckets.argmax(axis=1)
    frames = np.arange(n) * step + arg
    return frames, buckets[np.arange(n), arg]


def timeline_figure(*, arrays: dict[str, np.ndarray] | None, events: pd.DataFrame, labels: pd.DataFrame | None,
                    half: int, classes: Iterable[str], all_classes: Sequence[str] = CLASSES_V2, fps: float = FPS,
                    max_points: int = 1200, selected_event: int | None = None,
                    shots_s: Sequence[float] | None = None, thresholds: Mapping[str, float] | None = None):
    """The per-class confidence chart of one half (minutes on x) with events, labels and saliency.

    Every trace is WebGL (Scattergl) and each curve is max-downsampled to `max_points`, so a
    90-minute half with 17 classes stays light. Curves have small markers so a click on them selects
    a point; detected events carry their event id in customdata. shots_s: shot boundaries (seconds
    into the half), drawn as ticks under the curves. thresholds: each class's operating point, a faint
    dashed line in its colour (grouped with its curve in the legend). Events sit at their confidence:
    after a checkpoint's context rescorer (engine/rescore.py) that is not the curve's value, and the
    operating points apply to the events.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    classes = [c for c in classes if c in all_classes]
    saliency = arrays.get("saliency") if arrays else None
    rows = 2 if saliency is not None else 1
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        row_heights=[0.72, 0.28] if rows == 2 else [1.0])
    scores = arrays.get("scores") if arrays else None
    if scores is not None:
        for name in classes:
            c = list(all_classes).index(name)
            if c >= scores.shape[1]:
                continue
            frames, ys = downsample_max(scores[:, c], max_points)
            fig.add_trace(go.Scattergl(
                x=frames / fps / 60.0, y=ys, mode="lines+markers", name=name, legendgroup=name,
                line={"width": 1.2, "color": class_color(c)}, marker={"size": 3, "color": class_color(c)},
                hovertemplate=f"{name}<br>%{{x:.2f}} min<br>confidence %{{y:.2f}}<extra></extra>",
            ), row=1, col=1)
    if thresholds and scores is not None and len(scores):
        end = len(scores) / fps / 60.0
        for name in classes:
            if name in thresholds:
                c = list(all_classes).index(name)
                fig.add_trace(go.Scattergl(
                    x=[0.0, end], y=[thresholds[name]] * 2, mode="lines", name=f"{name} operating point",
                    legendgroup=name, showlegend=False, opacity=0.35,
                    line={"width": 1, "dash": "dash", "color": class_color(c)},
                    hovertemplate=f"{name} operating point {thresholds[name]:.2f}<extra></extra>",
                ), row=1, col=1)
    ev = events[(events["half"] == half) & events["label"].isin(classes)]
    if len(ev):
        ids = ev["event_id"] if "event_id" in ev else ev.index
        status = ev["status"] if "status" in ev else pd.Series("pending", index=ev.index)
        symbols = status.map({"accepted": "star", "rejected": "x", "pending": "triangle-up"}).fillna("triangle-up")
        sizes = np.where(np.asarray(ids) == selected_event, 16, 10)
        fig.add_trace(go.Scattergl(
            x=ev["position_ms"] / 60000.0, y=ev["confidence"], mode="markers", name="detected events",
            marker={"size": sizes, "symbol": list(symbols), "color": [class_color(c) for c in ev["class_id"]],
                    "line": {"width": 1, "color": "#222"}},
            # plain lists: numpy arrays travel as binary blobs that selection events do not decode
            customdata=[[int(i), int(p)] for i, p in zip(ids, ev["position_ms"])],
            text=[f"{lbl} ({st})" for lbl, st in zip(ev["label"], status)],
            hovertemplate="%{text}<br>%{x:.2f} min<br>confidence %{y:.2f}<extra>event</extra>",
        ), row=1, col=1)
    if labels is not None and len(labels):
        gt = labels[(labels["half"] == half) & labels["label"].isin(classes)]
        if len(gt):
            fig.add_trace(go.Scattergl(
                x=gt["position_ms"] / 60000.0, y=np.full(len(gt), 1.06), mode="markers", name="ground truth",
                marker={"size": 9, "symbol": "diamond", "color": [class_color(c) for c in gt["class_id"]]},
                text=list(gt["label"]), hovertemplate="%{text} (label)<br>%{x:.2f} min<extra>ground truth</extra>",
            ), row=1, col=1)
    if saliency is not None:
        frames, ys = downsample_max(np.asarray(saliency), max_points)
        fig.add_trace(go.Scattergl(
            x=frames / fps / 60.0, y=ys, mode="lines+markers", name="frame saliency", fill="tozeroy",
            line={"width": 1, "color": "#555"}, marker={"size": 2, "color": "#555"},
            hovertemplate="saliency %{y:.3f}<br>%{x:.2f} min<extra></extra>",
        ), row=2, col=1)
        fig.update_yaxes(title_text="saliency", row=2, col=1)
    bottom = 0.0
    if shots_s is not None and len(shots_s):
        bottom = -0.1
        fig.add_trace(go.Scattergl(
            x=np.asarray(shots_s, dtype=float) / 60.0, y=np.full(len(shots_s), -0.05), mode="markers",
            name="shot boundaries", marker={"symbol": "line-ns-open", "size": 10, "color": "#444",
                                            "line": {"width": 1, "color": "#444"}},
            hovertemplate="shot change<br>%{x:.3f} min<extra></extra>",
        ), row=1, col=1)
    fig.update_yaxes(title_text="confidence", range=[bottom, 1.12], row=1, col=1)
    fig.update_xaxes(title_text=f"half {half}, minutes", row=rows, col=1)
    fig.update_layout(height=560 if rows == 2 else 420, margin={"l": 40, "r": 10, "t": 30, "b": 40},
                      legend={"orientation": "v", "x": 1.01, "y": 1.0, "font": {"size": 11}}, uirevision=f"half-{half}", clickmode="event+select",
                      hovermode="closest", dragmode="zoom")
    return fig


def event_at(events: pd.DataFrame, t_s: float, *, label: str | None = None, within_s: float = 1.0) -> int | None:
    """The event_id of the detected event nearest `t_s` (seconds into the half) within `within_s`, of
    `label` when given: a click on a curve's peak selects the event drawn there."""
    if events.empty:
        return None
    cand = events if label is None else events[events["label"] == label]
    if cand.empty:
        return None
    gap = (cand["position_ms"].to_numpy() / 1000.0 - float(t_s))
    i = int(np.argmin(np.abs(gap)))
    return int(cand["event_id"].iloc[i]) if abs(gap[i]) <= within_s else None


def salient_frames(arrays: dict[str, np.ndarray], frame: int, *, k: int = 6, radius_s: float = 15.0,
                   fps: float = FPS) -> list[tuple[int, float]]:
    """The k most salient frames around `frame`: (frame, weight), in time order.

    With per-window saliency (T, W) these are the weights the model gave the frames of the window
    centred on the event; otherwise the per-frame saliency within +-radius_s.
    """
    windows = arrays.get("saliency_windows")
    if windows is not None and len(windows):
        t = int(np.clip(frame, 0, len(windows) - 1))
        w = np.asarray(windows[t], dtype=np.float64)  # (W,)
        W = len(w)
        frames = t - W // 2 + np.arange(W)
        ok = (frames >= 0) & (frames < len(windows))
        frames, w = frames[ok], w[ok]
    elif arrays.get("saliency") is not None:
        sal = np.asarray(arrays["saliency"], dtype=np.float64)
        r = int(radius_s * fps)
        lo, hi = max(0, frame - r), min(len(sal), frame + r + 1)
        frames, w = np.arange(lo, hi), sal[lo:hi]
    else:
        return []
    top = np.argsort(-w, kind="stable")[:k]
    return sorted((int(frames[i]), float(w[i])) for i in top)


def shot_ticks(video: str | os.PathLike, offset: float = 0.0, until: float | None = None) -> tuple[float, ...] | None:
    """The video's shot boundaries (seconds from `offset`, the half's start in the file, up to `until`)
    when a detector already ran on it; None otherwise (the chart never starts a detection)."""
    from spotting_core.media.shots import cached_shots

    shots = cached_shots(video)
    if shots is None:
        return None
    return tuple(round(t - offset, 3) for t in shots.boundaries_s() if t >= offset and (until is None or t < until))


def frames_at(video: str | os.PathLike, seconds: Sequence[float], *, width: int = 200) -> list[np.ndarray]:
    """The frame on screen at each time (decode's sampling rule, to the frame, the file's last one too)."""
    from spotting_core.io.video import decode_array, probe

    info = probe(video)
    fps = info.fps or 25.0
    size = (width, max(2, int(round(width * info.height / info.width / 2)) * 2))
    out = []
    for s in seconds:
        got = decode_array(video, fps=fps, size=size, start=max(0.0, float(s)), duration=1.0 / fps, info=info,
                           strict=False)
        if not len(got):
            raise SpottingError(f"{video}: no frame at {s:.2f} s")
        out.append(got[0])
    return out


def grab_frames(video: str | os.PathLike, seconds: Sequence[float], *, width: int = 224) -> list[np.ndarray]:
    """RGB frames of a video at the given seconds (nearest frame), resized to `width`."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise SpottingError(f"{video}: cannot open the video")
    out = []
    try:
        for s in seconds:
            cap.set(cv2.CAP_PROP_POS_MSEC, max(0.0, float(s)) * 1000.0)
            ok, frame = cap.read()
            if not ok:
                raise SpottingError(f"{video}: no frame at {s:.1f} s (shorter than the features, or corrupt)")
            h, w = frame.shape[:2]
            frame = cv2.resize(frame, (width, max(1, int(h * width / w))), interpolation=cv2.INTER_AREA)
            out.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    return out
