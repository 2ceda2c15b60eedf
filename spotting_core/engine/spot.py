"""`spot`: a trained checkpoint on a game folder, a features file or a video -> events + per-frame arrays.

    spot_path("game_dir/", checkpoint="nv.pt")              both halves' `<half>_<features>.npy`
    spot_path("2_ResNET_TF2_PCA512.npy", checkpoint=...)    one half (half 2 when the name says so)
    spot_path("match.mp4", checkpoint=..., backbone=...)    frames -> features (features.extract_cached)

An end-to-end checkpoint (`model.input_kind == "frames"`, e.g. ugl-e2e) reads the video (or a game
folder's videos) as frames at its input height through `spotting_core.features.frames` instead.

Writes `results_spotting.json` and `<half>_scores.npy` (+ `<half>_saliency.npy` where the model has
it) through `inference.write_outputs`, and returns the output folder. The default folder: the game
folder itself (the SoccerNet layout, so `evaluate TREE TREE` reads it), or `<name>_spotting/` next to
a features file or a video.

The checkpoint names the features it was trained on (name and dimension); other features are
refused with a one-line error rather than spotted silently wrong.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from spotting_core.engine.games import load_entities
from spotting_core.engine.inference import NMS_METHODS, spot_game, write_outputs
from spotting_core.engine.train import resolve_device
from spotting_core.errors import SpottingError
from spotting_core.io.soccernet import HALVES, feature_names, feature_path, load_features, load_half_features
from spotting_core.models import load_checkpoint

_HALF_FILE = re.compile(r"^([12])_(.+)$")


def _check_dim(source: str, halves: list[np.ndarray], trained: str, dim: int, name: str) -> None:
    for h in halves:
        if h.shape[1] != dim:
            raise SpottingError(f"{source}: checkpoint was trained on {trained} (dim {dim}), "
                                f"these features are {name} (dim {h.shape[1]})")


def _video_features(video: Path, *, trained: str, dim: int, backbone: str | None, fps: float, device,
                    half_offset_s: float | None, progress) -> list[np.ndarray]:
    from spotting_core.features import extract as features

    # A backbone fits when it computes the features the checkpoint was trained on (its feature_name:
    # `resnet152-soccernet` computes SoccerNet's ResNET_TF2_PCA512, for example).
    computes = sorted(n for n, b in features.BACKBONES.items() if b.feature_name == trained)
    if not computes:
        raise SpottingError(f"{video}: checkpoint was trained on {trained} features, which no video backbone "
                            f"here computes (backbones: {', '.join(sorted(features.BACKBONES))}); spot a game "
                            "folder or a features file instead")
    backbone = backbone or computes[0]
    if features.get_backbone(backbone).feature_name != trained:
        raise SpottingError(f"{video}: checkpoint was trained on {trained} (dim {dim}), "
                            f"--backbone asks for {backbone}; spot the video with --backbone {' or '.join(computes)}")
    halves = features.extract_cached(video, backbone=backbone, fps=fps, device=device,
                                     half_offset_s=half_offset_s, progress=progress)
    return [np.asarray(h, dtype=np.float32) for h in halves]


def spot_path(input: str | os.PathLike, *, checkpoint: str | os.PathLike, out_dir: str | os.PathLike | None = None,
              backbone: str | None = None, window_s: float | None = None, threshold: float | None = None,
              method: str = "hard", device: str | None = None, half_offset_s: float | None = None,
              progress: Callable[[float, str], None] | None = None) -> Path:
    """Spot the events of a game folder, a (T, D) .npy half or a video; returns the output folder."""
    src = Path(input)
    if not src.exists():
        raise SpottingError(f"{src}: no such file or folder")
    dev = resolve_device(device)
    model, meta = load_checkpoint(checkpoint, device=dev)
    trained = str(meta.get("features", {}).get("name", "?"))
    dim = int(meta.get("features", {}).get("dim", model.input_dim))
    classes = meta.get("classes") or None
    if classes is not None and len(classes) != model.num_classes:
        raise SpottingError(f"{checkpoint}: lists {len(classes)} classes for a model of {model.num_classes}")
    if window_s is not None and window_s <= 0:
        raise SpottingError(f"--nms-window {window_s}: must be positive")
    if method not in NMS_METHODS:
        raise SpottingError(f"--nms {method}: choose from {', '.join(NMS_METHODS)}")
    is_video = src.is_file() and src.suffix.lower() != ".npy"
    if not is_video and (half_offset_s is not None or backbone is not None):
        raise SpottingError(f"{src}: --half-offset and --backbone apply to a video only")

    half_numbers = list(HALVES)
    if model.input_kind == "frames":  # an end-to-end model: frames decoded at its input height, no features
        from spotting_core.features import frames

        if backbone is not None:
            raise SpottingError(f"{checkpoint}: model {model.name} reads video frames itself; --backbone does not apply")
        if src.is_file() and src.suffix.lower() == ".npy":
            raise SpottingError(f"{src}: checkpoint model {model.name} reads video frames, not a features file")
        if src.is_dir():
            halves = frames.load_game_frames(src, height=dim, fps=model.fps, progress=progress)
            default_out = src
        else:
            halves, half_numbers = frames.video_frames(src, height=dim, fps=model.fps, half_offset_s=half_offset_s)
            default_out = src.with_name(f"{src.stem}_spotting")
        name = trained
    elif src.is_dir():
        present = feature_names(src)
        if trained not in present:
            if any(feature_path(src, h, trained).is_file() for h in HALVES):
                missing = [h for h in HALVES if not feature_path(src, h, trained).is_file()]
                raise SpottingError(f"{src}: missing half {missing[0]}: no {feature_path(src, missing[0], trained).name}")
            have = ", ".join(present) if present else "none"
            raise SpottingError(f"{src}: checkpoint was trained on {trained} (dim {dim}), this folder has no "
                                f"1_{trained}.npy / 2_{trained}.npy (features here: {have})")
        halves = list(load_features(src, trained))
        name = trained
        default_out = src
    elif src.suffix.lower() == ".npy":
        halves = [load_half_features(src)]
        m = _HALF_FILE.match(src.stem)
        name = m.group(2) if m else src.stem
        if m:
            half_numbers = [int(m.group(1))]
        default_out = src.with_name(f"{src.stem}_spotting")
    else:
        halves = _video_features(src, trained=trained, dim=dim, backbone=backbone, fps=model.fps, device=dev,
                                 half_offset_s=half_offset_s, progress=progress)
        name = backbone or trained
        default_out = src.with_name(f"{src.stem}_spotting")
    _check_dim(str(src), halves, trained, dim, name)
    # precomputed entity features (<half>_entities.npy) of a game folder, for models that read them
    entities = load_entities(src, halves) if model.entity_inputs and src.is_dir() else None

    kwargs = {"classes": classes} if classes is not None else {}
    with torch.no_grad():
        events, arrays = spot_game(model, halves, window_s=window_s, threshold=threshold, method=method,
                                   progress=progress, entities=entities, **kwargs)
    if half_numbers != list(HALVES)[: len(halves)]:  # a lone second half: renumber
        renumber = dict(zip(list(HALVES)[: len(halves)], half_numbers))
        events = events.assign(half=events["half"].map(renumber))
        events = events.assign(game_time=[f"{h} - {gt.split(' - ', 1)[1]}" for h, gt in
                                          zip(events["half"], events["game_time"])])
        arrays = {renumber[h]: a for h, a in arrays.items()}
    out = Path(out_dir) if out_dir is not None else default_out
    write_outputs(out, events, arrays, url_local=str(src))
    return out
