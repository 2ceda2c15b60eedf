"""Matches: a results folder the review app opens, and spotting a game folder or a video into one.

    Match                                   results_spotting.json, per-frame arrays, match.json, videos
    open_results_folder(folder)             a folder written by `spotting spot`
    open_game_folder(game, checkpoint)      spotted once, cached by (features, checkpoint)
    open_video(video, checkpoint)           features extracted (cached next to the video), spotted
    load_events / load_labels / load_arrays

Spotting results are cached under `<cache root>/results/<key>`. torch is only imported when a model runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from spotting_core.errors import SpottingError
from spotting_core.io.soccernet import CLASSES_V2, LABELS_FILE, RESULTS_FILE, atomic_write_text
from spotting_core.io.tables import read_labels, read_results
from spotting_core.io.video import VIDEO_SUFFIXES
from spotting_core.runtime import cache_path

MATCH_FILE = "match.json"

Progress = Callable[[float, str], None]


# ---------------------------------------------------------------------------------------------
# Matches
# ---------------------------------------------------------------------------------------------
@dataclass
class Match:
    """One opened match: a folder with results_spotting.json (+ <half>_scores.npy...) and match.json."""

    folder: str
    name: str
    kind: str = "results"                                 # demo | game | results | video
    videos: dict[str, str] = field(default_factory=dict)  # half ("1"/"2") -> video file
    video_offsets: dict[str, float] = field(default_factory=dict)  # half -> seconds into that file
    labels: str | None = None
    checkpoint: str | None = None
    synthetic: bool = False
    source: str = ""

    @property
    def match_id(self) -> str:
        return hashlib.sha1(str(Path(self.folder).resolve()).encode()).hexdigest()[:16]

    def save(self) -> Path:
        return atomic_write_text(Path(self.folder) / MATCH_FILE, json.dumps(asdict(self), indent=2))

    def video(self, half: int) -> tuple[Path, float] | None:
        """The video holding `half` and the second in it where the half starts, or None."""
        path = self.videos.get(str(half))
        if not path:
            return None
        return Path(path), float(self.video_offsets.get(str(half), 0.0))


def _find_videos(folder: Path) -> dict[str, str]:
    videos = {}
    for half in ("1", "2"):
        hits = sorted(p for p in folder.glob(f"{half}*") if p.suffix.lower() in VIDEO_SUFFIXES
                      and re.match(rf"^{half}([_.-]|$)", p.stem + "."))
        if hits:
            videos[half] = str(hits[0])
    return videos


def open_results_folder(folder: str | os.PathLike) -> Match:
    """A folder written by `spotting spot` (or by this app): results_spotting.json and friends."""
    folder = Path(folder)
    if not (folder / RESULTS_FILE).is_file():
        raise SpottingError(f"{folder}: no {RESULTS_FILE} (pick a folder written by `spotting spot`)")
    meta_path = folder / MATCH_FILE
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
            meta["folder"] = str(folder)
            match = Match(**meta)
        except (json.JSONDecodeError, TypeError) as e:
            raise SpottingError(f"{meta_path}: malformed match file ({e})") from None
    else:
        labels = folder / LABELS_FILE
        match = Match(folder=str(folder), name=folder.name, kind="results", videos=_find_videos(folder),
                      labels=str(labels) if labels.is_file() else None, source=str(folder))
    read_results(folder / RESULTS_FILE)  # fail now, with the file's name, if it is malformed
    if match.labels:
        read_labels(match.labels)
    return match


def _fingerprint(*paths: Path, extra: str = "") -> str:
    h = hashlib.sha1(extra.encode())
    for p in paths:
        st = p.stat()
        h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def checkpoint_meta(checkpoint: Path) -> dict:
    from spotting_core.models import read_checkpoint

    ckpt = read_checkpoint(checkpoint)
    return {k: v for k, v in ckpt.items() if k != "state_dict"}


def game_folder_match(game_dir: str | os.PathLike, checkpoint: str | os.PathLike) -> tuple[Match, bool]:
    """The match a game folder spots into, checked before any spotting (features present and of the
    checkpoint's dimension, labels readable), and whether its results are already cached."""
    from spotting_core.io.feature_files import feature_names, feature_path
    from spotting_core.models import resolve_checkpoint  # a pretrained entry's name -> its file

    game_dir, checkpoint = Path(game_dir), resolve_checkpoint(checkpoint)
    if not game_dir.is_dir():
        raise SpottingError(f"{game_dir}: not a folder")
    if not feature_names(game_dir):
        raise SpottingError(f"{game_dir}: no feature files (1_<name>.npy and 2_<name>.npy)")
    features = checkpoint_meta(checkpoint).get("features", {})
    trained = features.get("name", "")
    files = [p for p in (feature_path(game_dir, h, trained) for h in (1, 2)) if p.is_file()]
    for f in files:
        try:
            shape = np.load(f, mmap_mode="r", allow_pickle=False).shape
        except (ValueError, OSError) as e:
            raise SpottingError(f"{f}: not a readable .npy array ({e})") from None
        if len(shape) != 2 or shape[1] != features.get("dim", shape[-1]):
            raise SpottingError(f"{f}: features of shape {shape}, the checkpoint was trained on {trained} "
                                f"(dim {features.get('dim')})")
    key = _fingerprint(*files, checkpoint, extra=f"{game_dir.resolve()}|{trained}")
    out = cache_path("results", key)
    labels = game_dir / LABELS_FILE
    match = Match(folder=str(out), name=game_dir.name, kind="game", videos=_find_videos(game_dir),
                  labels=str(labels) if labels.is_file() else None, checkpoint=str(checkpoint),
                  source=str(game_dir))
    if match.labels:
        read_labels(match.labels)  # a malformed labels file is reported before any spotting
    return match, (out / RESULTS_FILE).is_file() and (out / MATCH_FILE).is_file()


def open_game_folder(game_dir: str | os.PathLike, checkpoint: str | os.PathLike, *,
                     progress: Progress | None = None, rebuild: bool = False) -> Match:
    """A SoccerNet game folder (1_<features>.npy, 2_<features>.npy, maybe Labels-v2.json, videos).

    Spotted by `spot.spot_path` (as `spotting spot`); the results are cached under the cache folder by
    (features, checkpoint), so reopening is instant.
    """
    match, cached = game_folder_match(game_dir, checkpoint)
    if rebuild or not cached:
        from spotting_core.engine.spot import spot_path

        spot_path(game_dir, checkpoint=checkpoint, out_dir=match.folder, progress=progress)
    match.save()
    return match


def video_match(video: str | os.PathLike, checkpoint: str | os.PathLike, *,
                half2_offset_s: float | None = None) -> tuple[Match, bool]:
    """The match a video spots into, checked first (a readable video, a readable checkpoint), and
    whether its results are already cached."""
    from spotting_core.io.video import probe
    from spotting_core.models import resolve_checkpoint

    video, checkpoint = Path(video), resolve_checkpoint(checkpoint)
    probe(video)  # a corrupt or unreadable video fails here with its name
    checkpoint_meta(checkpoint)  # so does a bad checkpoint, before any feature extraction
    out = cache_path("results", _fingerprint(video, checkpoint, extra=f"{half2_offset_s}"))
    videos, offsets = {"1": str(video)}, {"1": 0.0}
    if half2_offset_s is not None:
        videos["2"], offsets["2"] = str(video), float(half2_offset_s)
    match = Match(folder=str(out), name=video.stem, kind="video", videos=videos, video_offsets=offsets,
                  checkpoint=str(checkpoint), source=str(video))
    return match, (out / RESULTS_FILE).is_file() and (out / MATCH_FILE).is_file()


def open_video(video: str | os.PathLike, checkpoint: str | os.PathLike, *, half2_offset_s: float | None = None,
               progress: Progress | None = None, rebuild: bool = False) -> Match:
    """A match video: probe it, extract (cached) features, spot; half 2 starts at half2_offset_s if given."""
    match, cached = video_match(video, checkpoint, half2_offset_s=half2_offset_s)
    if rebuild or not cached:
        from spotting_core.engine.spot import spot_path

        spot_path(video, checkpoint=checkpoint, out_dir=match.folder, half_offset_s=half2_offset_s, progress=progress)
    match.save()
    if progress:
        progress(1.0, "done")
    return match


def load_events(match: Match) -> pd.DataFrame:
    return read_results(Path(match.folder) / RESULTS_FILE)


def load_labels(match: Match) -> pd.DataFrame | None:
    return read_labels(match.labels) if match.labels else None


def load_arrays(match: Match) -> dict[int, dict[str, np.ndarray]]:
    """Per-half arrays written next to the results: {half: {"scores": (T, C), "saliency": (T,), ...}}."""
    arrays: dict[int, dict[str, np.ndarray]] = {}
    for path in sorted(Path(match.folder).glob("[12]_*.npy")):
        half, key = int(path.name[0]), path.stem[2:]
        if key not in ("scores", "saliency", "saliency_windows"):
            continue
        try:
            arrays.setdefault(half, {})[key] = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as e:
            raise SpottingError(f"{path}: not a readable .npy array ({e})") from None
    return arrays


def match_thresholds(match: Match) -> dict | None:
    """The operating points of the checkpoint that spotted the match (its `extra["thresholds"]`), or None."""
    if not match.checkpoint or not Path(match.checkpoint).is_file():
        return None
    try:
        return checkpoint_meta(Path(match.checkpoint)).get("extra", {}).get("thresholds") or None
    except SpottingError:
        return None


def review_thresholds(thresholds: dict, classes=CLASSES_V2) -> dict[str, float]:
    """Each class's threshold of the editors' list (fitted on validation data, `engine/calibrate.py`)."""
    from spotting_core.engine.calibrate import threshold_vector

    return dict(zip(classes, map(float, threshold_vector(thresholds, classes, review=True))))


def likely_events(events: pd.DataFrame, thresholds: dict | None, classes=CLASSES_V2) -> pd.Series:
    """The events of the default review list: at or above their class's threshold of the editors' list
    (`review_thresholds`), plus every event a reviewer accepted or added. With no thresholds, all."""
    if thresholds is None or events.empty:
        return pd.Series(True, index=events.index)
    lookup = review_thresholds(thresholds, classes)
    above = events["confidence"].to_numpy() >= events["label"].map(lookup).fillna(0.0).to_numpy()
    kept = pd.Series(above, index=events.index)
    if "status" in events:
        kept |= events["status"].eq("accepted")
    if "source" in events:
        kept |= events["source"].ne("model")
    return kept
