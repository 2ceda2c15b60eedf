"""Whole-match inference: per-frame scores (+ saliency) -> nms() -> events -> results_spotting.json.

    scores = spot_half(model, feats)             {"scores": (T, C), "saliency": (T,), ...} as numpy
    peaks  = nms(scores["scores"], window_s=30)  (N, 3) rows of (frame, class, confidence)
    events = events_from_scores(peaks, half=1)   rows for results_spotting.json
    spot_game(model, [feats1, feats2])           both halves -> events table + arrays
    prediction_columns(events, arrays)           the events as prediction columns, the scores under "curves"
    write_outputs(out_dir, events, arrays)       results_spotting.json + <half>_scores.npy ...

`nms` is the only non-maximum suppression in the project.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from spotting_core.errors import SpottingError
from spotting_core.io.soccernet import CLASSES_V2, FPS, HALVES, RESULTS_FILE, format_game_time
from spotting_core.io.tables import write_results

NMS_METHODS = ("hard", "linear", "gaussian")


# ---------------------------------------------------------------------------------------------
# NMS
# ---------------------------------------------------------------------------------------------
def nms(scores: np.ndarray, *, window_s: float, fps: float = FPS, threshold: float = 0.0,
        method: str = "hard", sigma_s: float | None = None) -> np.ndarray:
    """Non-maximum suppression over time, class by class, on per-frame scores (T, C).

    hard (the saliency paper's and NetVLAD++'s): take the highest remaining score of the class,
        keep it, blank the frames [t - w/2, t + w/2) around it (w = window_s * fps frames), repeat
        while the highest remaining score is >= threshold.
    linear / gaussian (soft-NMS): instead of blanking, scale the neighbours' scores by
        |dt| / (w/2) within the window (linear), or by 1 - exp(-dt^2 / sigma^2) (gaussian, sigma =
        sigma_s, default w/4 in frames); keep peaks while the highest remaining score >= threshold.

    Nothing is dropped silently: every kept peak has score >= threshold, and with threshold 0 every
    local peak is returned. Returns an (N, 3) float64 array of (frame, class, confidence), sorted
    by class then frame.
    """
    if method not in NMS_METHODS:
        raise ValueError(f"unknown NMS method {method!r}; choose from {', '.join(NMS_METHODS)}")
    s = np.array(scores, dtype=np.float64, copy=True)
    if s.ndim == 1:
        s = s[:, None]
    T, C = s.shape
    if T == 0:
        return np.zeros((0, 3))
    window = window_s * fps
    half = window / 2
    cols = np.arange(C)
    rows = []
    if method == "hard":
        alive = np.ones(C, dtype=bool)
        while True:
            peak = np.argmax(s, axis=0)           # (C,) first index of the max, as np.argmax
            value = s[peak, cols]
            alive &= value >= threshold
            if not alive.any():
                break
            for c in cols[alive]:
                t = int(peak[c])
                rows.append((t, c, value[c]))
                s[int(max(t - half, 0)):min(t + int(half), T), c] = -1 - abs(threshold)
            # every kept peak blanks at least its own frame, so the loop ends
        out = np.array(rows, dtype=np.float64).reshape(-1, 3)
    else:
        sigma = (sigma_s * fps) if sigma_s else max(window / 4, 1e-9)
        taken = np.zeros_like(s, dtype=bool)
        frames = np.arange(T)
        for c in cols:
            col = s[:, c]
            while True:
                masked = np.where(taken[:, c], -np.inf, col)
                t = int(np.argmax(masked))
                v = masked[t]
                if not np.isfinite(v) or v < threshold:
                    break
                rows.append((t, c, v))
                taken[t, c] = True
                d = np.abs(frames - t).astype(np.float64)
                if method == "linear":
                    decay = np.where(d < half, d / max(half, 1e-9), 1.0)
                else:
                    decay = 1.0 - np.exp(-(d ** 2) / sigma ** 2)
                decay[t] = 1.0
                col *= decay
        out = np.array(rows, dtype=np.float64).reshape(-1, 3)
    order = np.lexsort((out[:, 0], out[:, 1]))
    return out[order]


def events_from_scores(peaks: np.ndarray, *, half: int, fps: float = FPS,
                       classes: Sequence[str] = CLASSES_V2) -> pd.DataFrame:
    """NMS peaks (frame, class, confidence) -> events in the results_spotting.json sense.

    position_ms = int(frame / fps * 1000), as the official baselines write it.
    """
    peaks = np.asarray(peaks, dtype=np.float64).reshape(-1, 3)
    frame = peaks[:, 0].astype(np.int64)
    cid = peaks[:, 1].astype(np.int64)
    position = (frame / fps * 1000).astype(np.int64)
    return pd.DataFrame({
        "half": np.full(len(peaks), int(half), dtype=np.int64),
        "position_ms": position,
        "frame": frame,
        "label": [classes[c] for c in cid],
        "class_id": cid,
        "confidence": peaks[:, 2],
        "game_time": [format_game_time(half, p) for p in position],
    })


# ---------------------------------------------------------------------------------------------
# Running a model over a match
# ---------------------------------------------------------------------------------------------
def spot_half(model, feats: np.ndarray | torch.Tensor, *, batch_size: int = 256,
              entities: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Per-frame scores of one half: {"scores": (T, C), optional "saliency", "saliency_windows"}.

    feats: (T, D) features, or (T, H, W, 3) uint8 frames (H = input_dim) for a model whose
    `input_kind` is "frames" (kept uint8 here; the model converts one batch of windows at a time).
    entities: the half's precomputed (T, N, d) entity features and (T, N) mask, for a model with
    `entity_inputs` (ignored otherwise).
    """
    frames = model.input_kind == "frames"
    if not torch.is_tensor(feats):
        feats = np.asarray(feats)
        x = torch.as_tensor(feats if frames and feats.dtype == np.uint8 else feats.astype(np.float32, copy=False))
    else:
        x = feats
    if x.ndim != (4 if frames else 2) or x.shape[1] != model.input_dim:
        want = f"(T, {model.input_dim}, W, 3) frames" if frames else f"(T, {model.input_dim})"
        raise SpottingError(f"features have shape {tuple(x.shape)} but the model expects {want}")
    model.eval()
    kw = {}
    if entities is not None and model.entity_inputs:
        kw = {"entities": torch.as_tensor(entities[0]), "entity_mask": torch.as_tensor(entities[1])}
    out = model.sequence_scores(x, batch_size=batch_size, **kw)
    return {k: v.detach().float().cpu().numpy() for k, v in out.items()}


def spot_game(model, halves: Sequence[np.ndarray], *, classes: Sequence[str] = CLASSES_V2,
              window_s: float | None = None, threshold: float | None = None, method: str = "hard",
              batch_size: int = 256, progress: Callable[[float, str], None] | None = None,
              entities: Sequence[tuple[np.ndarray, np.ndarray]] | None = None
              ) -> tuple[pd.DataFrame, dict[int, dict[str, np.ndarray]]]:
    """Spot every half: the events table (RESULT_COLUMNS-like) and the per-half arrays.

    entities: per half, the precomputed (entities, mask) for models with `entity_inputs`.

    window_s / threshold default to the model's own `nms_window_s` / `nms_threshold` (its paper's).
    """
    paper_window, paper_threshold = model.nms_settings()
    window_s = paper_window if window_s is None else window_s
    threshold = paper_threshold if threshold is None else threshold
    tables, arrays = [], {}
    for i, feats in enumerate(halves):
        half = HALVES[i] if i < len(HALVES) else i + 1
        if progress:
            progress(i / len(halves), f"spotting half {half}")
        arrays[half] = spot_half(model, feats, batch_size=batch_size, entities=entities[i] if entities else None)
        peaks = nms(arrays[half]["scores"], window_s=window_s, fps=model.fps, threshold=threshold, method=method)
        tables.append(events_from_scores(peaks, half=half, fps=model.fps, classes=classes))
    if progress:
        progress(1.0, "done")
    events = pd.concat(tables, ignore_index=True) if tables else events_from_scores(np.zeros((0, 3)), half=1)
    return events, arrays


def prediction_columns(events: pd.DataFrame, arrays: dict[int, dict[str, np.ndarray]] | None = None) -> dict:
    """An events table as the prediction columns the metric and the calibration read (half, position_ms,
    class_id, confidence); with spot_game's arrays, each half's per-frame scores under "curves" too."""
    out = {k: events[k].to_numpy() for k in ("half", "position_ms", "class_id", "confidence")}
    if arrays is not None:
        out["curves"] = {half: named["scores"] for half, named in arrays.items()}
    return out


def write_outputs(out_dir: str | os.PathLike, events: pd.DataFrame, arrays: dict[int, dict[str, np.ndarray]],
                  *, url_local: str = "") -> Path:
    """Write results_spotting.json and `<half>_<array>.npy` (scores, saliency...) into out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for half, named in arrays.items():
        for key, arr in named.items():
            tmp = out_dir / f".{half}_{key}.tmp.npy"
            np.save(tmp, arr)
            os.replace(tmp, out_dir / f"{half}_{key}.npy")
    return write_results(out_dir / RESULTS_FILE, events, url_local=url_local)
