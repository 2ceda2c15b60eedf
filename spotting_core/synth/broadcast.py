"""A synthetic broadcast video of one half: a pitch, moving players, a clock and every event on screen.

    render_half_video(out, half=1, seconds=300, events=labels_of_half, seed=7)

The demo match's video (synth/demo.py): frame k shows time k / VIDEO_FPS of the half (the clock and
the event banners always follow it), so the events a model spots can be checked by eye. Like a
broadcast it cuts between cameras: the wide view, close-ups on the ball every 15-35 s, and after a
goal or a shot a replay of it (zoomed, tagged REPLAY) wrapped in two logo wipes (`camera_plan`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from spotting_core.io.ffmpeg import VideoWriter
from spotting_core.io.soccernet import FPS, class_color
from spotting_core.synth.shots import logo_wipe

VIDEO_FPS = 10
VIDEO_SIZE = (384, 216)  # width, height: multiples of 8 for H.264
Progress = Callable[[float, str], None]
REPLAYED = ("Goal", "Penalty", "Shots on target", "Shots off target")
WIPE_FRAMES, REPLAY_S = 8, 6.0


def camera_plan(n: int, events: pd.DataFrame, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict]:
    """Per frame the match time shown and the zoom (1 wide, 2 close-up, 1.6 replay), and the wipe
    frames: {frame: (i, frames, (time, zoom) before, (time, zoom) after)}."""
    shown, zoom = np.arange(n) / VIDEO_FPS, np.ones(n)
    k = int(rng.uniform(15, 35) * VIDEO_FPS)
    while k < n:
        length = int(rng.uniform(3, 6) * VIDEO_FPS)
        zoom[k:k + length] = 2.0
        k += length + int(rng.uniform(15, 35) * VIDEO_FPS)
    wipes, free_from = {}, 0
    for p in sorted(events.loc[events["label"].isin(REPLAYED), "position_ms"] / 1000.0):
        a = int((p + rng.uniform(4, 8)) * VIDEO_FPS)
        r0, r1 = a + WIPE_FRAMES, a + WIPE_FRAMES + int(REPLAY_S * VIDEO_FPS)
        if a < free_from or r1 + WIPE_FRAMES + VIDEO_FPS >= n:
            continue
        live_in, live_out = zoom[a], zoom[r1 + WIPE_FRAMES]
        replay_t = p - REPLAY_S / 2 + (np.arange(r0 - WIPE_FRAMES, r1 + WIPE_FRAMES) - r0) / VIDEO_FPS
        for i in range(WIPE_FRAMES):
            wipes[a + i] = (i, WIPE_FRAMES, (shown[a + i], live_in), (replay_t[i], 1.6))
            j = r1 + i
            wipes[j] = (i, WIPE_FRAMES, (replay_t[j - a], 1.6), (shown[j], live_out))
        shown[r0:r1], zoom[r0:r1] = replay_t[WIPE_FRAMES:WIPE_FRAMES + r1 - r0], 1.6
        free_from = r1 + WIPE_FRAMES + 3 * VIDEO_FPS
    return shown, zoom, wipes


def _pitch(width: int, height: int) -> np.ndarray:
    import cv2

    img = np.zeros((height, width, 3), np.uint8)
    stripe = max(1, width // 12)
    for i in range(0, width, stripe):
        img[:, i:i + stripe] = (40, 120, 40) if (i // stripe) % 2 else (48, 136, 48)  # BGR
    white = (235, 235, 235)
    m = 12
    cv2.rectangle(img, (m, m + 18), (width - m, height - m), white, 1)
    cv2.line(img, (width // 2, m + 18), (width // 2, height - m), white, 1)
    cv2.circle(img, (width // 2, (height + 18) // 2), height // 7, white, 1)
    box_h = height // 3
    cy = (height + 18) // 2
    cv2.rectangle(img, (m, cy - box_h // 2), (m + width // 9, cy + box_h // 2), white, 1)
    cv2.rectangle(img, (width - m - width // 9, cy - box_h // 2), (width - m, cy + box_h // 2), white, 1)
    return img


def _hex_bgr(color: str) -> tuple[int, int, int]:
    color = color.lstrip("#")
    r, g, b = (int(color[i:i + 2], 16) for i in (0, 2, 4))
    return b, g, r


def render_half_video(out: Path, *, half: int, seconds: float, events: pd.DataFrame, seed: int,
                      progress: Progress | None = None) -> Path:
    """A synthetic broadcast of one half: players, a ball, the clock, and every event on screen.

    Frame k of the video shows time k / VIDEO_FPS of the half; an event at position p is written in
    a banner from p - 1 s to p + 4 s, with a marker flashing on its exact frame.
    """
    import cv2

    width, height = VIDEO_SIZE
    base = _pitch(width, height)
    rng = np.random.default_rng([seed, half])
    n = int(round(seconds * VIDEO_FPS))
    t = np.arange(n) / VIDEO_FPS
    # 10 players per side and a ball moving along smooth random paths
    freqs = rng.uniform(0.01, 0.05, size=(21, 2))
    phases = rng.uniform(0, 2 * np.pi, size=(21, 2))
    centres = np.column_stack([rng.uniform(0.15, 0.85, 21), rng.uniform(0.3, 0.85, 21)])
    ev = events.sort_values("position_ms")
    ev_t = ev["position_ms"].to_numpy() / 1000.0
    shown, zoom, wipes = camera_plan(n, ev, rng)
    crowd = cv2.GaussianBlur(rng.integers(20, 230, (height, 3 * width, 3)).astype(np.uint8), (3, 3), 0)

    def view(at: float, z: float) -> np.ndarray:
        """The pitch at match time `at`, filmed at zoom z around the ball."""
        img = base.copy()
        pos = centres + 0.12 * np.sin(2 * np.pi * freqs * at + phases)              # (21, 2)
        for i, (x, y) in enumerate(pos):
            xy = (int(x * width), int(y * height))
            if i == 20:
                cv2.circle(img, xy, 3, (255, 255, 255), -1)
            else:
                cv2.circle(img, xy, 4, (40, 40, 210) if i < 10 else (210, 120, 30), -1)
        if z > 1.0:
            w, h = int(width / z), int(height / z)
            x0 = int(np.clip(pos[20, 0] * width - w / 2, 0, width - w))
            y0 = int(np.clip(pos[20, 1] * height - h / 2, 0, height - h))
            img = cv2.resize(img[y0:y0 + h, x0:x0 + w], (width, height), interpolation=cv2.INTER_LINEAR)
            stands = int(height * (0.35 if z == 2.0 else 0.25))          # a low camera sees the stands
            pan = int(pos[20, 0] * width)
            img[:stands] = crowd[:stands, pan:pan + width] // (1 if z == 2.0 else 2)
            if z != 2.0:
                cv2.putText(img, "REPLAY", (width - 80, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 215, 255), 2,
                            cv2.LINE_AA)
        return img

    with VideoWriter(out, size=(width, height), fps=VIDEO_FPS, crf=30, preset="veryfast", gop=2 * VIDEO_FPS,
                     faststart=True) as writer:
        for k in range(n):
            if k in wipes:
                i, frames, old, new = wipes[k]
                img = logo_wipe(view(*old), view(*new), i, frames)
            else:
                img = view(shown[k], zoom[k])
            cv2.rectangle(img, (0, 0), (width, 18), (20, 20, 20), -1)
            clock = f"{half}H {int(t[k]) // 60:02d}:{int(t[k]) % 60:02d}"
            cv2.putText(img, clock, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
            cv2.putText(img, "SYNTHETIC DEMO", (width - 122, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 215, 255), 1,
                        cv2.LINE_AA)
            live = np.nonzero((ev_t - 1.0 <= t[k]) & (t[k] < ev_t + 4.0))[0]
            for j, idx in enumerate(live[-2:]):
                row = ev.iloc[idx]
                color = _hex_bgr(class_color(int(row["class_id"])))
                y0 = height - 24 - 22 * j
                cv2.rectangle(img, (0, y0), (width, y0 + 20), color, -1)
                text = f"{row['label'].upper()}  {row['game_time'][4:] if 'game_time' in row else ''}"
                if row.get("visibility") == "not shown":
                    text += "  (not shown)"
                cv2.putText(img, text, (6, y0 + 15), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
                if abs(t[k] - ev_t[idx]) < 0.5 / FPS:
                    cv2.circle(img, (width - 14, y0 + 10), 7, (255, 255, 255), -1)
            writer.write(np.ascontiguousarray(img[:, :, ::-1]))                      # BGR -> RGB
            if progress and k % 200 == 0:
                progress(k / n, f"rendering the half-{half} video ({k}/{n} frames)")
    return out
