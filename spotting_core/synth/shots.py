"""Generated video with known shots: hard cuts between distinct scenes, dissolves, logo wipes, replays.

    script = shot_script(seconds=20, dissolves=1, wipes=2, replays=1, seed=0)   what happens on which frame
    render_shot_video(out, script)                                            H.264 (+ its truth, frame exact)

Every shot films its own scene (a textured world in its own colours) with a moving camera (a pan
of 1-4 px per frame) and objects crossing it, so a detector is tested on motion inside shots too.
A dissolve mixes the two shots over `DISSOLVE_FRAMES` frames; a logo wipe sweeps a bright band with
a logo across the screen, revealing the next shot behind it. A replay is a run of shots opened and
closed by a logo wipe, as broadcasts do. Frame n also carries n in a strip of 12 small blocks at its
bottom left (`read_frame_index`), so a cut reel can be read back frame by frame.

Transitions follow `media/shots.py`: (last clean frame of the previous shot, first clean frame of
the next); the frames strictly between them are the transition's (none for a cut).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from spotting_core.io.ffmpeg import VideoWriter

DISSOLVE_FRAMES = 12
WIPE_FRAMES = 10
CODE_BITS, CODE_BLOCK = 12, 6          # the frame index strip: 12 blocks of 6 x 6 px


@dataclass
class ShotScript:
    fps: float
    size: tuple[int, int]                                  # width, height
    frames: int
    shots: list[tuple[int, int, int]]                      # (first frame, last frame, scene) of each clean shot
    transitions: list[tuple[int, int, str]]                # (last clean frame before, first clean after, look)
    replays: list[tuple[int, int]] = field(default_factory=list)   # (first, last) clean frame inside the wipes
    seed: int = 0

    def boundaries(self) -> list[int]:
        """The frames a detector must report: the first frame of a new shot after a cut, the first and
        last frame of a gradual transition (a dissolve or a wipe)."""
        out = []
        for a, b, kind in self.transitions:
            out += [b] if kind == "cut" else [a + 1, b - 1]
        return sorted(out)


def shot_script(*, seconds: float = 20.0, fps: float = 25.0, size: tuple[int, int] = (320, 180),
                dissolves: int = 1, wipes: int = 0, replays: int = 0, seed: int = 0,
                min_shot_s: float = 1.6, max_shot_s: float = 4.0) -> ShotScript:
    """A random sequence of shots filling `seconds`: hard cuts, `dissolves` dissolves, `wipes` single
    logo wipes, and `replays` replays (a wipe, 2-3 shots over 5-12 s, a wipe)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fps))
    kinds = ["dissolve"] * dissolves + ["wipe"] * wipes + ["replay"] * replays
    rng.shuffle(kinds)
    lo, hi = int(min_shot_s * fps), int(max_shot_s * fps)
    shots, transitions, replay_ranges = [], [], []
    scene, start = 0, 0
    special = list(kinds)
    while True:
        length = int(rng.integers(lo, hi + 1))
        if start + length >= n:
            shots.append((start, n - 1, scene))
            break
        shots.append((start, start + length - 1, scene))
        last = start + length - 1
        kind = "cut"
        if special and len(transitions) % 2 == 1:          # every other transition, cuts between
            kind = special.pop(0)
        if kind == "replay":
            wipe_in = (last, last + WIPE_FRAMES + 1)
            t = wipe_in[1]
            inner_end = t + int(rng.integers(int(5 * fps), int(12 * fps)))
            if inner_end + WIPE_FRAMES + lo >= n:
                special.insert(0, "replay")
                kind = "cut"
            else:
                transitions.append((*wipe_in, "wipe"))
                parts = int(rng.integers(2, 4))                   # 2-3 shots, each at least min_shot_s
                parts = max(1, min(parts, (inner_end - t) // lo))
                points = [t + (inner_end - t) * j // parts for j in range(1, parts)]
                first = t
                for p in points:
                    scene += 1
                    shots.append((first, int(p) - 1, scene))
                    transitions.append((int(p) - 1, int(p), "cut"))
                    first = int(p)
                scene += 1
                shots.append((first, inner_end, scene))
                replay_ranges.append((t, inner_end))
                transitions.append((inner_end, inner_end + WIPE_FRAMES + 1, "wipe"))
                start, scene = inner_end + WIPE_FRAMES + 1, scene + 1
                continue
        width = {"cut": 0, "dissolve": DISSOLVE_FRAMES, "wipe": WIPE_FRAMES}[kind]
        if last + width + 1 + lo >= n:
            shots[-1] = (start, n - 1, scene)
            break
        transitions.append((last, last + width + 1, kind))
        start, scene = last + width + 1, scene + 1
    return ShotScript(fps=fps, size=size, frames=n, shots=shots, transitions=transitions,
                      replays=replay_ranges, seed=seed)


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------
class _Scene:
    """A textured world in its own colours, filmed by a panning camera, with objects crossing it."""

    def __init__(self, index: int, size: tuple[int, int], seed: int):
        import cv2

        rng = np.random.default_rng([seed, index])
        w, h = size
        self.w, self.h = w, h
        big = (w * 3, h * 2)
        hue = (index * 0.381966 + rng.random() * 0.1) % 1.0                    # golden-ratio spaced hues
        coarse = rng.random((9, 14, 3)).astype(np.float32)
        fine = rng.random((h // 4, w // 4, 1)).astype(np.float32)
        tex = cv2.resize(coarse, big, interpolation=cv2.INTER_CUBIC) * 0.7 + \
            cv2.resize(fine, big, interpolation=cv2.INTER_LINEAR)[..., None] * 0.3
        hsv = np.empty((big[1], big[0], 3), np.float32)
        hsv[..., 0] = ((hue + 0.08 * (tex[..., 0] - 0.5)) % 1.0) * 180
        hsv[..., 1] = 120 + 120 * tex[..., 1]
        hsv[..., 2] = 70 + 170 * tex[..., 2]
        world = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB)
        for x in range(0, big[0], int(rng.integers(40, 90))):                   # stripes: structure to pan over
            cv2.line(world, (x, 0), (x + int(rng.integers(-60, 60)), big[1]), (235, 235, 235), 1)
        self.world = world
        self.start = rng.uniform([0, 0], [w * 1.2, h * 0.6])
        self.velocity = rng.uniform(1.0, 4.0, 2) * rng.choice([-1, 1], 2) * [1.0, 0.3]
        self.objects = [(rng.uniform(0, w), rng.uniform(h * 0.2, h * 0.9), rng.uniform(-6, 6), rng.uniform(-2, 2),
                         tuple(int(c) for c in rng.integers(0, 256, 3))) for _ in range(6)]

    def frame(self, k: int) -> np.ndarray:
        import cv2

        big_h, big_w = self.world.shape[:2]
        x, y = self.start + self.velocity * k
        x = int(abs((x % (2 * (big_w - self.w))) - (big_w - self.w)))         # bounce inside the world
        y = int(abs((y % (2 * (big_h - self.h))) - (big_h - self.h)))
        img = self.world[y:y + self.h, x:x + self.w].copy()
        for ox, oy, vx, vy, colour in self.objects:
            cx = int((ox + vx * k) % self.w)
            cy = int(np.clip(oy + vy * k, 5, self.h - 5))
            cv2.circle(img, (cx, cy), 5, colour, -1)
        return img


def logo_wipe(old: np.ndarray, new: np.ndarray, i: int, frames: int) -> np.ndarray:
    """Frame i (0..frames-1) of a left-to-right wipe: a bright band with a logo on it sweeps across,
    the new shot behind it; frame -1 is all old, frame `frames` all new."""
    import cv2

    h, w = old.shape[:2]
    band = w // 4
    front = int(round((i + 1) / (frames + 1) * (w + band)))          # the band's leading edge
    img = old.copy()
    behind = min(max(front - band, 0), w)
    img[:, :behind] = new[:, :behind]
    lo, hi = behind, min(front, w)
    if hi > lo:
        img[:, lo:hi] = (250, 250, 250)
        cv2.circle(img, ((lo + hi) // 2, h // 2), max(4, min(hi - lo, h) // 3), (200, 20, 40), -1)
    return img


def write_frame_index(img: np.ndarray, n: int) -> None:
    for bit in range(CODE_BITS):
        y, x = img.shape[0] - CODE_BLOCK - 2, 2 + bit * CODE_BLOCK
        img[y:y + CODE_BLOCK, x:x + CODE_BLOCK] = 255 if (n >> bit) & 1 else 0


def read_frame_index(img: np.ndarray) -> int:
    """The frame index `render_shot_video` wrote into a frame (at its own size)."""
    n = 0
    for bit in range(CODE_BITS):
        y, x = img.shape[0] - CODE_BLOCK - 2, 2 + bit * CODE_BLOCK
        if img[y + 2:y + CODE_BLOCK - 2, x + 2:x + CODE_BLOCK - 2].mean() > 128:
            n |= 1 << bit
    return n


def render_shot_video(out: str | os.PathLike, script: ShotScript, *, gop: int | None = 50) -> Path:
    """The script as an H.264 file, and `<out>.json` beside it holding the script (the truth)."""
    w, h = script.size
    scenes: dict[int, _Scene] = {}
    shot_of = np.full(script.frames, -1)
    for i, (a, b, _) in enumerate(script.shots):
        shot_of[a:b + 1] = i

    def shot_frame(i: int, n: int) -> np.ndarray:
        a, _, scene = script.shots[i]
        if scene not in scenes:
            scenes[scene] = _Scene(scene, script.size, script.seed)
        return scenes[scene].frame(n - a + 40)          # the camera has been moving before the shot starts

    with VideoWriter(out, size=(w, h), fps=script.fps, crf=18, preset="veryfast", gop=gop) as writer:
        t = 0
        for n in range(script.frames):
            if shot_of[n] >= 0:
                img = shot_frame(int(shot_of[n]), n)
            else:
                while not (script.transitions[t][0] < n < script.transitions[t][1]):
                    t += 1
                a, b, look = script.transitions[t]
                before = int(shot_of[a])
                old, new = shot_frame(before, n), shot_frame(before + 1, n)
                i, width = n - a - 1, b - a - 1
                if look == "dissolve":
                    alpha = (i + 1) / (width + 1)
                    img = np.clip(old * (1 - alpha) + new * alpha + 0.5, 0, 255).astype(np.uint8)
                else:
                    img = logo_wipe(old, new, i, width)
            write_frame_index(img, n)
            writer.write(img)
    meta = {k: v for k, v in asdict(script).items()}
    Path(f"{out}.json").write_text(json.dumps(meta))
    return Path(out)
