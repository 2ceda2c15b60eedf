"""Shot boundaries of a video: `spotting shots VIDEO [--json] [--detector transnetv2|content]`.

    shots = detect_shots(video, detector="transnetv2")     cached next to the video, like features
    shots.boundaries_s()       first frame of each new shot (cuts); first and last frame of a gradual one
    shots.starts_s(), ends_s() clean shots: the first frame of each, the instant after its last
    shots.replays()            replay candidates (a heuristic, see `replay_candidates`)
    cached_shots(video)        the cached result only (None when no detector ran on it yet)

Frames are decoded at the video's own rate and 48x27 (`io/video.decode`: frame k shows t = k / fps).
A `Transition(before, after)` names the last clean frame of one shot and the first clean frame of
the next; the frames strictly between them belong to no shot (none for a hard cut, the mixed frames
of a dissolve or a logo wipe).

Detectors (`media/shot_detectors.py` computes their signals):
- transnetv2 (default): TransNetV2's transitions (single-frame probability >= 0.5, or >= 0.2 where
  the content value confirms a cut), extended over the frames its many-hot head marks; plus the
  content detector's gradual transitions where TransNetV2 has none: TransNetV2 was trained on cuts
  and dissolves and misses logo wipes (scores 0.05-0.25 on ours and on real La Liga wipes).
- content: a cut where the HSV content value is >= 3x its 4 neighbours' mean and >= 8 (PySceneDetect's
  adaptive rule); a gradual transition where the histogram distance stays above max(0.06, 2.5x its
  local median) for 3 frames to 2 s, its pixels change (mean content value >= 8) and the frames on
  either side differ by >= 0.15.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spotting_core.errors import SpottingError, warn
from spotting_core.media.shot_rules import (
    REPLAY_NOTE,
    VERSION,
    Transition,
    content_transitions,
    replay_candidates,
    transnetv2_transitions,
)

DETECTORS = ("transnetv2", "content")
SOURCES = ("transnetv2", "content")
Progress = Callable[[float, str], None]


@dataclass
class Shots:
    video: Path
    detector: str
    fps: float
    frames: int
    transitions: list[Transition] = field(default_factory=list)

    def boundaries_s(self) -> list[float]:
        times = []
        for t in self.transitions:
            times += [t.first / self.fps] if t.kind == "cut" else [t.first / self.fps, t.last / self.fps]
        return [round(x, 4) for x in times]

    def ranges(self) -> list[tuple[int, int]]:
        """(first, last) clean frame of every shot."""
        out, start = [], 0
        for t in self.transitions:
            if t.before >= start:
                out.append((start, t.before))
            start = t.after
        if start <= self.frames - 1:
            out.append((start, self.frames - 1))
        return out

    def starts_s(self) -> np.ndarray:
        return np.array([a / self.fps for a, _ in self.ranges()])

    def ends_s(self) -> np.ndarray:
        """The instant after each shot's last frame: a cut ending there shows no frame of the next."""
        return np.array([(b + 1) / self.fps for _, b in self.ranges()])

    def replays(self) -> list[tuple[float, float]]:
        """Replay candidates (start_s, end_s): clean frames between two short gradual transitions."""
        return [(a / self.fps, (b + 1) / self.fps) for a, b in replay_candidates(self.transitions, self.fps)]

    def to_dict(self) -> dict:
        return {"video": str(self.video), "detector": self.detector, "fps": self.fps, "frames": self.frames,
                "boundaries_s": self.boundaries_s(),
                "transitions": [{"kind": t.kind, "first_s": round(t.first / self.fps, 4),
                                 "last_s": round(t.last / self.fps, 4), "first_frame": t.first,
                                 "last_frame": t.last, "source": t.source} for t in self.transitions],
                "shots": len(self.ranges()),
                "replay_candidates": {"note": REPLAY_NOTE,
                                      "spans_s": [[round(a, 4), round(b, 4)] for a, b in self.replays()]}}


# ---------------------------------------------------------------------------------------------
# Detection (one decode pass, cached next to the video)
# ---------------------------------------------------------------------------------------------
def default_detector() -> str:
    from spotting_core.media.shot_detectors import transnetv2_available

    reason = transnetv2_available()
    if reason:
        warn(f"TransNetV2 unavailable ({reason}): shots come from the content detector")
        return "content"
    return "transnetv2"


class ShotPass:
    """Frames in (48x27 RGB at the video's rate, in order), Shots out: feed it from any decode loop."""

    def __init__(self, detector: str, *, device=None):
        from spotting_core.media.shot_detectors import ContentScorer, TransNetV2Scorer

        if detector not in DETECTORS:
            raise SpottingError(f"--detector {detector}: unknown; choose {' or '.join(DETECTORS)}")
        self.detector = detector
        self.content = ContentScorer()
        self.net = TransNetV2Scorer(device=device) if detector == "transnetv2" else None

    def feed(self, frames: np.ndarray) -> None:
        self.content.feed(frames)
        if self.net is not None:
            self.net.feed(frames)

    def result(self, video, fps: float) -> Shots:
        signals, hists = self.content.finish(), self.content.histograms()
        if self.net is not None:
            transitions = transnetv2_transitions(self.net.finish(), signals, hists, fps)
        else:
            transitions = content_transitions(signals, hists, fps)
        return Shots(Path(video), self.detector, float(fps), len(signals), transitions)


def cache_file(video: str | os.PathLike, detector: str) -> Path:
    from spotting_core.features.cache import cache_folder

    folder = cache_folder(video) / "shots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{Path(video).name}.{detector}.npy"


def _pack(shots: Shots) -> np.ndarray:
    rows = [[shots.frames, int(round(shots.fps * 1e6)), VERSION]]
    rows += [[t.before, t.after, SOURCES.index(t.source)] for t in shots.transitions]
    return np.asarray(rows, dtype=np.int64)


def _unpack(video, detector: str, arr: np.ndarray) -> Shots:
    frames, fps_u = int(arr[0, 0]), int(arr[0, 1])
    transitions = [Transition(int(a), int(b), SOURCES[int(s)]) for a, b, s in arr[1:]]
    return Shots(Path(video), detector, fps_u / 1e6, frames, transitions)


def _cache_key(identity: dict, detector: str, info) -> dict:
    """What a cached result must match: the file, the detector, the frame rate and these rules."""
    return {**identity, "detector": detector, "fps": info.fps or 25.0, "version": VERSION}


def _cached(video, detector: str, key: dict, npy: Path | None = None) -> Shots | None:
    from spotting_core.features.cache import read_array

    hit = read_array(npy or cache_file(video, detector), key)
    return None if hit is None else _unpack(video, detector, hit)


def detect_shots(video: str | os.PathLike, *, detector: str | None = None, device=None,
                 progress: Progress | None = None, cache: bool = True) -> Shots:
    """The shots of `video` (cached next to it, keyed on the file and the detector's rules)."""
    from spotting_core.features.cache import file_identity, write_array
    from spotting_core.io import video as vid

    info = vid.probe(video)
    detector = detector or default_detector()
    if detector not in DETECTORS:
        raise SpottingError(f"--detector {detector}: unknown; choose {' or '.join(DETECTORS)}")
    fps = info.fps or 25.0
    key = _cache_key(file_identity(video), detector, info)
    npy = cache_file(video, detector) if cache else None
    if npy is not None:
        hit = _cached(video, detector, key, npy)
        if hit is not None:
            return hit
    from tqdm import tqdm

    from spotting_core.media.shot_detectors import SIZE

    shot_pass = ShotPass(detector, device=device)
    total = info.num_samples(fps)
    if shot_pass.net is not None and shot_pass.net.device.type == "cpu" and (total or 0) > 15_000:
        warn(f"{Path(video).name}: TransNetV2 on the CPU reads about 50-100 frames/s here, so {total} frames take "
             f"minutes (once: cached beside the video); --detector content is about 20x faster")
    bar = tqdm(total=total, desc=f"shots ({detector})", unit="frame", file=sys.stderr, leave=False,
               disable=None)
    done = 0
    for batch in vid.decode(video, fps=fps, size=SIZE, info=info, batch_size=250):
        shot_pass.feed(batch)
        done += len(batch)
        bar.update(len(batch))
        if progress and total:
            progress(min(done / total, 0.99), f"shot boundaries ({detector}): {done}/{total} frames")
    bar.close()
    shots = shot_pass.result(video, fps)
    if npy is not None:
        write_array(npy, key, _pack(shots))
    if progress:
        progress(1.0, f"{len(shots.ranges())} shots ({detector})")
    return shots


def cached_shots(video: str | os.PathLike, detectors: tuple[str, ...] = DETECTORS) -> Shots | None:
    """The shots of `video` when a detector's result is already cached (first of `detectors`), else
    None: for views that must not start a detection."""
    from spotting_core.features.cache import file_identity
    from spotting_core.io import video as vid

    try:
        info = vid.probe(video)
        identity = file_identity(video)
    except (SpottingError, OSError):
        return None
    for detector in detectors:
        hit = _cached(video, detector, _cache_key(identity, detector, info))
        if hit is not None:
            return hit
    return None


def shots_command(video: str | os.PathLike, *, detector: str | None = None, as_json: bool = False,
                  device=None) -> str:
    """`spotting shots`: JSON ({"detector", "fps", "boundaries_s", ...}) or one line per transition."""
    shots = detect_shots(video, detector=detector, device=device)
    if as_json:
        return json.dumps(shots.to_dict(), indent=1)
    lines = [f"{shots.video.name}: {len(shots.ranges())} shots, {len(shots.transitions)} transitions "
             f"({shots.detector}, {shots.fps:g} fps)"]
    for t in shots.transitions:
        span = f"{t.first / shots.fps:9.3f}" if t.kind == "cut" else \
            f"{t.first / shots.fps:9.3f} - {t.last / shots.fps:.3f}"
        lines.append(f"{t.kind:8s} {span} s  [{t.source}]")
    for a, b in shots.replays():
        lines.append(f"replay?  {a:9.3f} - {b:.3f} s  [{REPLAY_NOTE.split(':')[0]}]")
    return "\n".join(lines)
