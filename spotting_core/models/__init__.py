"""The model registry and checkpoints.

    MODELS = {"netvlad++": NetVLADpp, ...}   one entry per model; each class lives in models/<paper>.py
    model_class(name, backbone=None)        a registered class, or a feature head on a frame backbone
    build_model(name, **config_overrides)   the model with its paper defaults, overridden
                                            (`backbone="regnety_400mf"`: end to end on frames, models/compose.py)
    frame_pairings()                        every (feature head, frame backbone) the registry offers
    convert_options(Config, {"lr": "3e-3"}) `--set key=value` strings -> Config field types
    save_checkpoint(path, model, ...)       {"model", "config", "state_dict", "classes", "features", "fps"}
    load_checkpoint(path)                   rebuilds the model from the file alone
    resolve_checkpoint(path_or_name)        a path, or an installed pretrained entry's (models/pretrained.py)

Every model follows the contract in models/base.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from dataclasses import fields
from pathlib import Path

import torch

from spotting_core.errors import SpottingError, UnknownName
from spotting_core.models.base import SpottingModel
from spotting_core.models.calf import CALF
from spotting_core.models.pooling import (
    AvgPool,
    AvgPoolpp,
    MaxPool,
    MaxPoolpp,
    NetRVLADPool,
    NetRVLADpp,
    NetVLADPool,
    NetVLADpp,
)
from spotting_core.models.rmsnet import RMSNet
from spotting_core.models.saliency import SaliencyWeighting
from spotting_core.models.ugl import UGL
from spotting_core.models.ugl_e2e import UGLEndToEnd

MODELS: dict[str, type[SpottingModel]] = {
    "netvlad++": NetVLADpp,
    "maxpool++": MaxPoolpp,
    "avgpool++": AvgPoolpp,
    "maxpool": MaxPool,
    "avgpool": AvgPool,
    "netvlad": NetVLADPool,
    "netrvlad++": NetRVLADpp,
    "netrvlad": NetRVLADPool,
    "saliency": SaliencyWeighting,
    "calf": CALF,
    "rms-net": RMSNet,
    "ugl": UGL,
    "ugl-e2e": UGLEndToEnd,
}

for _name, _cls in MODELS.items():
    _cls.name = _name

CHECKPOINT_VERSION = 1


def model_class(name: str, *, backbone: str | None = None) -> type[SpottingModel]:
    """The registered class `name`; with a frame `backbone`, the head composed with it (models/compose.py).

    An unknown name raises `UnknownName` (a KeyError, and a one-line SpottingError for the CLI).
    """
    try:
        cls = MODELS[name]
    except KeyError:
        raise UnknownName(f"unknown model {name!r}; registered models: {', '.join(sorted(MODELS))}") from None
    if backbone is None:
        return cls
    from spotting_core.models.compose import FRAME_BACKBONES, frames_variant

    if backbone not in FRAME_BACKBONES:
        raise SpottingError(f"backbone {backbone!r}: choose from {', '.join(FRAME_BACKBONES)}")
    return frames_variant(cls)


def frame_pairings() -> list[tuple[str, str]]:
    """(feature head, frame backbone) for every feature model and every frame backbone."""
    from spotting_core.models.compose import FRAME_BACKBONES

    return [(name, bb) for name, cls in MODELS.items() if cls.input_kind == "features" for bb in FRAME_BACKBONES]


def build_model(name: str, **overrides) -> SpottingModel:
    """Build a registered model from its Config defaults, overridden by keyword (`backbone` composes)."""
    cls = model_class(name, backbone=overrides.get("backbone"))
    known = {f.name for f in fields(cls.Config)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise SpottingError(f"model {name!r} has no option {', '.join(unknown)}; options: {', '.join(sorted(known))}")
    return cls(cls.Config(**overrides))


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def save_checkpoint(path: str | os.PathLike, model: SpottingModel, *, classes, feature_name: str,
                    extra: dict | None = None) -> Path:
    """Save everything `load_checkpoint` needs to rebuild `model` with no other knowledge."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ckpt = {
        "version": CHECKPOINT_VERSION,
        "model": model.name,
        "config": model.config_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "classes": list(classes),
        "features": {"name": feature_name, "dim": int(model.input_dim)},
        "fps": float(model.fps),
        "extra": dict(extra or {}),
    }
    return _write_checkpoint(ckpt, path)


def _write_checkpoint(ckpt: dict, path: Path) -> Path:
    """torch.save into a temporary file beside `path`, then one rename; errors are one line."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        torch.save(ckpt, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        tmp.unlink(missing_ok=True)
        raise SpottingError(f"{path}: cannot write the checkpoint ({str(e).splitlines()[0][:120]})") from None
    return path


def resolve_checkpoint(spec: str | os.PathLike) -> Path:
    """A checkpoint file for `spec`: an existing path, else an installed pretrained entry of that name
    (models/pretrained.py). A registry name that is not installed -> one line with its fetch command."""
    path = Path(spec)
    if path.is_file():
        return path
    from spotting_core.models.pretrained import installed_checkpoint

    found = installed_checkpoint(str(spec))
    return path if found is None else found


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The raw checkpoint dict, validated; errors are one line naming the file. `path` may also be
    the name of an installed pretrained checkpoint (`resolve_checkpoint`)."""
    path = resolve_checkpoint(path)
    if not path.is_file():
        raise SpottingError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file
        raise SpottingError(f"{path}: not a readable checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    if not isinstance(ckpt, dict) or not {"model", "config", "state_dict"} <= set(ckpt):
        raise SpottingError(f"{path}: not a spotting_core checkpoint (no model/config/state_dict); "
                            "official SoccerNet checkpoints go through `spotting import-official`")
    if ckpt["model"] not in MODELS:
        raise SpottingError(f"{path}: model {ckpt['model']!r} is not registered here; "
                            f"registered: {', '.join(sorted(MODELS))}")
    return ckpt


def store_extra(path: str | os.PathLike, **extra) -> Path:
    """Add entries to a checkpoint's `extra` (e.g. its operating points), rewritten atomically."""
    path = resolve_checkpoint(path)
    ckpt = read_checkpoint(path)
    ckpt.setdefault("extra", {}).update(extra)
    return _write_checkpoint(ckpt, path)


def load_checkpoint(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> tuple[SpottingModel, dict]:
    """Rebuild the model of a checkpoint (in eval mode) and return it with the checkpoint's metadata."""
    ckpt = read_checkpoint(path)
    cls = model_class(ckpt["model"], backbone=ckpt["config"].get("backbone"))
    model = cls(cls.Config(**ckpt["config"]))
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise SpottingError(f"{path}: weights do not fit model {ckpt['model']!r} ({str(e).splitlines()[0][:160]})") from None
    meta = {k: v for k, v in ckpt.items() if k != "state_dict"}
    return model.to(device).eval(), meta


def _parse(text: str, kind, name: str):
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(kind)
        if text.strip().lower() in ("none", "null", "") and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _parse(text, a, name)
            except (ValueError, SpottingError) as e:
                errors.append(str(e))
        raise SpottingError(f"--set {name}={text}: {'; '.join(errors)}")
    if origin in (tuple, list):
        items = [t for t in text.strip("()[] ").split(",") if t.strip()]
        args = [a for a in typing.get_args(kind) if a is not Ellipsis] or [str]
        values = [_parse(t.strip(), args[0] if len(args) == 1 else args[i], name) for i, t in enumerate(items)]
        return origin(values)
    if kind is bool:
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise SpottingError(f"--set {name}={text}: expected true or false")
    if kind in (int, float):
        try:
            value = float(text) if kind is float else int(text)
        except ValueError:
            raise SpottingError(f"--set {name}={text}: expected {'a number' if kind is float else 'an integer'}") from None
        return value
    if kind is str:
        return text
    if kind is typing.Any:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    raise SpottingError(f"--set {name}={text}: cannot read a value of type {kind} from the command line")


def convert_options(config_cls: type, options: dict) -> dict:
    """`--set key=value` strings -> values of the Config field types (other values pass through)."""
    hints = typing.get_type_hints(config_cls)
    names = {f.name for f in dataclasses.fields(config_cls)}
    out = {}
    for key, value in (options or {}).items():
        key = str(key).strip().replace("-", "_")
        if key not in names:
            raise SpottingError(f"--set {key}: no such model option; options: {', '.join(sorted(names))}")
        out[key] = _parse(value, hints[key], key) if isinstance(value, str) else value
    return out
