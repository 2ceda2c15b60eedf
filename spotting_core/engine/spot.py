"""`spot`: a trained checkpoint on a game folder, a features file or a video -> events + per-frame arrays.

    spot_path("game_dir/", checkpoint="nv.pt")              both halves' `<half>_<features>.npy`
    spot_path("2_ResNET_TF2_PCA512.npy", checkpoint=...)    one half (half 2 when the name says so)
    spot_path("match.mp4", checkpoint=..., backbone=...)    frames -> features (features.extract_cached)
    spot_path("game_dir/", ...)                             no such features but 1_224p.mkv / 2_224p.mkv: those
    spotter = load_spotter("nv.pt"); spot_input(spotter, src)   the model loaded once, many inputs (batch)

A frame-input checkpoint (`model.input_kind == "frames"`: ugl-e2e, or a head trained with a frame
backbone) reads the video (or a game folder's videos) as frames at its input height instead.
`read_input` picks one small reader per kind of input; each returns the halves and where they go.

Writes `results_spotting.json` and `<half>_scores.npy` (+ `<half>_saliency.npy` where the model has
it) through `inference.write_outputs`, and returns the output folder. The default folder: the game
folder itself (the SoccerNet layout, so `evaluate TREE TREE` reads it), or `<name>_spotting/` next to
a features file or a video.

When the checkpoint's operating points carry a context rescorer (`engine/rescore.py`, fitted by
`train`), the events' confidences are revised by it before they are written (`rescore=False`: not).

The checkpoint names the features it was trained on (name and dimension); other features are
refused with a one-line error rather than spotted silently wrong.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from spotting_core.engine.games import load_entities
from spotting_core.engine.inference import NMS_METHODS, spot_game, write_outputs
from spotting_core.errors import SpottingError
from spotting_core.io.feature_files import (
    feature_names,
    feature_path,
    has_features,
    load_features,
    load_half_features,
)
from spotting_core.io.soccernet import HALVES
from spotting_core.models import load_checkpoint
from spotting_core.runtime import resolve_device

_HALF_FILE = re.compile(r"^([12])_(.+)$")
Progress = Callable[[float, str], None]


@dataclass
class Request:
    """What a reader needs: the input, the checkpoint's model and what it was trained on."""

    src: Path
    model: torch.nn.Module
    trained: str                  # the checkpoint's feature name ("ResNET_TF2_PCA512", "A+B", "frames224p")
    dim: int
    backbone: str | None
    half_offset_s: float | None
    device: torch.device
    progress: Progress | None
    networks: dict | None = None   # a batch worker's loaded frame backbones, reused across videos


@dataclass
class SpotInput:
    halves: list[np.ndarray]      # per half (T, D) features or (T, H, W, 3) frames
    default_out: Path
    name: str                     # what these features are called (for the dimension check)
    half_numbers: list[int] = field(default_factory=lambda: list(HALVES))
    entities: list | None = None  # per half (entities, mask), for models with entity_inputs


# ---------------------------------------------------------------------------------------------
# One reader per kind of input
# ---------------------------------------------------------------------------------------------
def _frames(req: Request) -> SpotInput:
    """A frame-input model: frames decoded at its input height from a video or a game folder's videos."""
    from spotting_core.features import frames

    if req.backbone is not None:
        raise SpottingError(f"model {req.model.name} reads video frames itself; --backbone does not apply")
    if req.src.is_file() and req.src.suffix.lower() == ".npy":
        raise SpottingError(f"{req.src}: checkpoint model {req.model.name} reads video frames, not a features file")
    if req.src.is_dir():
        halves = frames.load_game_frames(req.src, height=req.dim, fps=req.model.fps, progress=req.progress)
        entities = load_entities(req.src, halves) if req.model.entity_inputs else None
        return SpotInput(halves=halves, default_out=req.src, name=req.trained, entities=entities)
    halves, numbers = frames.video_frames(req.src, height=req.dim, fps=req.model.fps, half_offset_s=req.half_offset_s)
    return SpotInput(halves=halves, default_out=req.src.with_name(f"{req.src.stem}_spotting"), name=req.trained,
                     half_numbers=numbers)


def _game_folder(req: Request) -> SpotInput:
    """A SoccerNet game folder holding `1_<features>.npy` and `2_<features>.npy` (+ entities)."""
    src, trained = req.src, req.trained
    if not has_features(src, trained):
        present = feature_names(src)
        for part in trained.split("+"):
            missing = [h for h in HALVES if not feature_path(src, h, part).is_file()]
            if missing and len(missing) < len(HALVES):
                raise SpottingError(f"{src}: missing half {missing[0]}: no {feature_path(src, missing[0], part).name}")
        have = ", ".join(present) if present else "none"
        files = " + ".join(f"1_{p}.npy / 2_{p}.npy" for p in trained.split("+"))
        raise SpottingError(f"{src}: checkpoint was trained on {trained} (dim {req.dim}), this folder has no "
                            f"{files} (features here: {have})")
    halves = list(load_features(src, trained))
    entities = load_entities(src, halves) if req.model.entity_inputs else None
    return SpotInput(halves=halves, default_out=src, name=trained, entities=entities)


def _features_file(req: Request) -> SpotInput:
    """One half's (T, D) `.npy`; `2_<name>.npy` is half 2."""
    m = _HALF_FILE.match(req.src.stem)
    return SpotInput(halves=[load_half_features(req.src)], default_out=req.src.with_name(f"{req.src.stem}_spotting"),
                     name=m.group(2) if m else req.src.stem, half_numbers=[int(m.group(1))] if m else [1])


def _video(req: Request, videos: list[Path] | None = None) -> SpotInput:
    """A video (or a game folder's half `videos`): frame features from a backbone that computes the
    checkpoint's features (cached next to the video)."""
    from spotting_core.features import backbones
    from spotting_core.features import extract as features

    video, trained = req.src, req.trained
    # A backbone fits when it computes the features the checkpoint was trained on (its feature_name:
    # `resnet152-soccernet` computes SoccerNet's ResNET_TF2_PCA512, for example).
    computes = sorted(n for n, b in backbones.BACKBONES.items() if b.feature_name == trained)
    if not computes:
        raise SpottingError(f"{video}: checkpoint was trained on {trained} features, which no video backbone "
                            f"here computes (backbones: {', '.join(sorted(backbones.BACKBONES))}); spot a game "
                            "folder or a features file instead")
    backbone = req.backbone or computes[0]
    if backbones.get_backbone(backbone).feature_name != trained:
        raise SpottingError(f"{video}: checkpoint was trained on {trained} (dim {req.dim}), "
                            f"--backbone asks for {backbone}; spot the video with --backbone {' or '.join(computes)}")
    source = list(videos) if videos else video
    halves = features.extract_cached(source, backbone=backbone, fps=req.model.fps, device=req.device,
                                     half_offset_s=req.half_offset_s, progress=req.progress, networks=req.networks)
    return SpotInput(halves=[np.asarray(h, dtype=np.float32) for h in halves],
                     default_out=video if videos else video.with_name(f"{video.stem}_spotting"), name=backbone)


def _game_videos(req: Request) -> SpotInput:
    """A game folder without the checkpoint's features but with its halves' videos (1_224p.mkv...)."""
    from spotting_core.features.frames import game_videos

    return _video(req, game_videos(req.src))


def has_videos(game_dir: Path) -> bool:
    """Whether a folder holds a video file (`io.video.VIDEO_SUFFIXES`)."""
    from spotting_core.io.video import VIDEO_SUFFIXES

    return any(p.suffix.lower() in VIDEO_SUFFIXES for p in game_dir.iterdir() if p.is_file())


def read_input(req: Request) -> SpotInput:
    """The reader for this input and model."""
    is_video = req.src.is_file() and req.src.suffix.lower() != ".npy"
    video_game = (req.src.is_dir() and req.model.input_kind != "frames" and not has_features(req.src, req.trained)
                  and has_videos(req.src))
    if not (is_video or video_game) and (req.half_offset_s is not None or req.backbone is not None):
        raise SpottingError(f"{req.src}: --half-offset and --backbone apply to a video only")
    if req.model.input_kind == "frames":
        reader = _frames
    elif req.src.is_dir():
        reader = _game_videos if video_game else _game_folder
    elif not is_video:
        reader = _features_file
    else:
        reader = _video
    got = reader(req)
    if req.model.input_kind != "frames":
        for h in got.halves:
            if h.shape[1] != req.dim:
                raise SpottingError(f"{req.src}: checkpoint was trained on {req.trained} (dim {req.dim}), "
                                    f"these features are {got.name} (dim {h.shape[1]})")
    return got


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------
def _renumber(events, arrays, half_numbers: list[int]):
    """Events and arrays of a lone second half carry its number."""
    renumber = dict(zip(list(HALVES)[: len(half_numbers)], half_numbers))
    events = events.assign(half=events["half"].map(renumber))
    events = events.assign(game_time=[f"{h} - {gt.split(' - ', 1)[1]}" for h, gt in zip(events["half"], events["game_time"])])
    return events, {renumber[h]: a for h, a in arrays.items()}


@dataclass
class Spotter:
    """A checkpoint loaded once, for any number of inputs (a batch worker holds one)."""

    model: torch.nn.Module
    classes: list[str] | None
    trained: str                  # the features it was trained on
    dim: int
    device: torch.device
    rescorer: dict | None = None  # its operating points' context rescorer (engine/rescore.py), if any


def load_spotter(checkpoint: str | os.PathLike, *, device: str | None = None) -> Spotter:
    """The checkpoint's model on `device` (None: CUDA when available), with what it was trained on."""
    dev = resolve_device(device)
    model, meta = load_checkpoint(checkpoint, device=dev)
    classes = meta.get("classes") or None
    if classes is not None and len(classes) != model.num_classes:
        raise SpottingError(f"{checkpoint}: lists {len(classes)} classes for a model of {model.num_classes}")
    features = meta.get("features", {})
    rescorer = ((meta.get("extra") or {}).get("thresholds") or {}).get("rescorer")
    return Spotter(model=model, classes=classes, trained=str(features.get("name", "?")),
                   dim=int(features.get("dim", model.input_dim)), device=dev, rescorer=rescorer)


def spot_input(spotter: Spotter, input: str | os.PathLike, *, backbone: str | None = None,
               window_s: float | None = None, threshold: float | None = None, method: str = "hard",
               half_offset_s: float | None = None, progress: Progress | None = None, networks: dict | None = None,
               rescore: bool = True):
    """(events table, per-half arrays, default output folder) of one input; nothing is written.

    networks: frame backbones already loaded (by name), used and filled when a video needs features.
    rescore: apply the checkpoint's context rescorer to the events' confidences (when it has one).
    """
    src = Path(input)
    if not src.exists():
        raise SpottingError(f"{src}: no such file or folder")
    if window_s is not None and window_s <= 0:
        raise SpottingError(f"--nms-window {window_s}: must be positive")
    if method not in NMS_METHODS:
        raise SpottingError(f"--nms {method}: choose from {', '.join(NMS_METHODS)}")
    req = Request(src=src, model=spotter.model, trained=spotter.trained, dim=spotter.dim, backbone=backbone,
                  half_offset_s=half_offset_s, device=spotter.device, progress=progress, networks=networks)
    got = read_input(req)
    kwargs = {"classes": spotter.classes} if spotter.classes is not None else {}
    with torch.no_grad():
        events, arrays = spot_game(spotter.model, got.halves, window_s=window_s, threshold=threshold, method=method,
                                   progress=progress, entities=got.entities, **kwargs)
    if rescore and spotter.rescorer and len(events):
        from spotting_core.engine.rescore import rescore_events

        events = rescore_events(spotter.rescorer, events, arrays)
    if got.half_numbers != list(HALVES)[: len(got.halves)]:
        events, arrays = _renumber(events, arrays, got.half_numbers)
    return events, arrays, got.default_out


def spot_path(input: str | os.PathLike, *, checkpoint: str | os.PathLike, out_dir: str | os.PathLike | None = None,
              backbone: str | None = None, window_s: float | None = None, threshold: float | None = None,
              method: str = "hard", device: str | None = None, half_offset_s: float | None = None,
              progress: Progress | None = None) -> Path:
    """Spot the events of a game folder, a (T, D) .npy half or a video; returns the output folder."""
    if not Path(input).exists():
        raise SpottingError(f"{Path(input)}: no such file or folder")
    spotter = load_spotter(checkpoint, device=device)
    events, arrays, default_out = spot_input(spotter, input, backbone=backbone, window_s=window_s,
                                             threshold=threshold, method=method, half_offset_s=half_offset_s,
                                             progress=progress)
    out = Path(out_dir) if out_dir is not None else default_out
    write_outputs(out, events, arrays, url_local=str(input))
    return out
