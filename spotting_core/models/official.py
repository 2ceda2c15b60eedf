"""Official SoccerNet checkpoints -> ours: `spotting import-official FILE --out CKPT`.

    import_official_checkpoint("model.pth.tar", "out.ckpt")     pool, window and NMS from `model.log`

Every official architecture of SoccerNet/sn-spotting imports, with the same scores: the Pooling
benchmark (MAX, and NetVLAD with centroids + a 1x1 conv: `netvlad`, fc columns re-ordered),
TemporallyAwarePooling (NetVLAD++, NetRVLAD++, MAX++, AVG++, NetVLAD, NetRVLAD, MAX, AVG, with the
optional `feature_extractor`) and CALF (`ContextAwareModel`: its Conv2d layers as our Linear/Conv1d).

An official file is a torch dict {epoch, state_dict, best_loss, optimizer}, saved on CUDA. Each paper
says in its own file how its official weights map onto our model (`SpottingModel.official_layout`);
this module reads the file and its training log, asks every registered model, and writes the one
that fits. The log next to the file (`<name>.log`, or the first `*.log` beside `model.pth.tar`)
gives the pool / model, the window, the frame rate and the NMS settings.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch

from spotting_core.errors import SpottingError
from spotting_core.io.soccernet import CLASSES_V1, CLASSES_V2
from spotting_core.models import MODELS, build_model, save_checkpoint

_LOG_PARAM = re.compile(r"\]\s+(\w+)\s*:\s*(.+?)\s*$")
DEFAULT_POOL = "maxpool"   # the official Pooling benchmark's --pool default (MAX)
DEFAULT_WINDOW_S = 20.0    # the window of the published Pooling checkpoints (chunk_size 20)


def read_official_log(path: str | Path) -> dict[str, str]:
    """The `name : value` parameters an official training log starts with (empty if none)."""
    params: dict[str, str] = {}
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return params
    for line in lines:
        if "Parameters" in line:
            continue
        m = _LOG_PARAM.search(line)
        if m and m.group(1) not in params:
            params[m.group(1)] = m.group(2)
    return params


def official_log_path(path: Path) -> Path:
    """`<name>.log` for `<name>.pth.tar`."""
    name = path.name
    for suffix in (".pth.tar", ".pth", ".pt", ".tar"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return path.with_name(name + ".log")


def official_model_name(pool: str) -> str | None:
    """Our registry name for an official --pool / model name ("MAX" -> "maxpool"), or None."""
    key = str(pool).strip().lower()
    for name, cls in MODELS.items():
        if key == name or key in cls.official_names:
            return name
    return None


def read_official_file(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(the whole torch dict, its state_dict), with one-line errors for anything else."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file
        raise SpottingError(f"{path}: not a readable torch file ({type(e).__name__})") from None
    sd = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(sd, dict) or not sd or not all(torch.is_tensor(v) for v in sd.values()):
        raise SpottingError(f"{path}: not an official SoccerNet checkpoint (expected a dict with a 'state_dict' of tensors)")
    return ckpt, sd


def describe_keys(sd: dict[str, torch.Tensor], limit: int = 8) -> str:
    """`name (shape)` of the first `limit` entries of a state_dict, for one-line errors."""
    items = [f"{k} {tuple(v.shape)}" for k, v in list(sd.items())[:limit]]
    return ", ".join(items) + (f", ... ({len(sd)} in all)" if len(sd) > limit else "")


def fit_official(sd: dict[str, torch.Tensor], log: dict[str, str], candidates: list[str]
                 ) -> tuple[list[tuple[str, dict, dict]], list[tuple[str, str]]]:
    """(models whose layout fits and whose weights load: (name, options, state), (name, why) of those
    whose layout fits but whose weights do not load)."""
    fits, refused = [], []
    for name in candidates:
        layout = MODELS[name].official_layout(sd, log)
        if layout is None:
            continue
        options, state = layout
        try:
            build_model(name, **options).load_state_dict(state)
        except (RuntimeError, ValueError, SpottingError) as e:
            refused.append((name, str(e).splitlines()[0][:200]))
            continue
        fits.append((name, options, state))
    return fits, refused


def import_official_checkpoint(path, out, *, pool: str | None = None, window_s: float | None = None,
                               feature_name: str = "ResNET_TF2_PCA512",
                               nms_window_s: float | None = None, nms_threshold: float | None = None,
                               extra: dict | None = None) -> Path:
    """Convert an official SoccerNet checkpoint into one `load_checkpoint` rebuilds; returns the path written.

    pool: its model, ours or the official spelling ("maxpool" / "MAX", "netvlad++" / "NetVLAD++");
        default the log's, else the architecture the weights fit (MAX when max/avg pooling cannot be
        told apart, the official default).
    window_s: its clip length in seconds (the weights do not tell it for max/avg pooling); default
        the log's window_size / chunk_size, else 20 s.
    nms_window_s, nms_threshold: default the log's NMS_window / NMS_threshold, else the Config's.
    extra: provenance merged into the checkpoint's `extra` (models/pretrained.py: entry, URL, hash).
    When the log is there, its pool and window must agree with the arguments. Every registered
    model is asked for its `official_layout`; one whose weights then load is written.
    """
    path = Path(path)
    if not path.is_file():
        raise SpottingError(f"{path}: checkpoint not found")
    wanted = None
    if pool is not None:
        wanted = official_model_name(pool)
        if wanted is None:
            known = sorted({n for c in MODELS.values() for n in c.official_names})
            raise SpottingError(f"pool {pool!r} is not an official pooling; choose from {', '.join(known)}")
    ckpt, sd = read_official_file(path)
    log_path = official_log_path(path)
    log = read_official_log(log_path)
    if log.get("pool"):
        logged = official_model_name(log["pool"])
        if wanted is not None and logged != wanted:
            raise SpottingError(f"{log_path}: the model was trained with pool {log['pool']}, not {pool}")
        wanted = wanted or logged
    log_window = log.get("window_size", log.get("chunk_size"))
    if window_s is not None and log_window is not None and not math.isclose(float(log_window), float(window_s)):
        raise SpottingError(f"{log_path}: the model was trained on {log_window} s windows, not {window_s} s (--window)")
    window = float(window_s if window_s is not None else log_window if log_window is not None else DEFAULT_WINDOW_S)

    candidates = [wanted] if wanted else list(MODELS)
    fits, refused = fit_official(sd, log, candidates)
    if not fits and refused:
        name, why = refused[0]
        raise SpottingError(f"{path}: weights do not fit our {name!r} model ({why})")
    if not fits:
        which = f"the official {wanted} layout" if wanted else "no official architecture we know"
        raise SpottingError(f"{path}: its weights fit {which} (keys found: {describe_keys(sd)})")
    if len(fits) > 1:  # max and avg pooling have the same weights: MAX, the official default
        fits = [f for f in fits if f[0] in (DEFAULT_POOL, DEFAULT_POOL + "++")] or fits
    name, options, state = fits[0]
    num_classes = int(options.get("num_classes", 17))
    classes = {17: CLASSES_V2, 3: CLASSES_V1}.get(num_classes)
    if classes is None:
        raise SpottingError(f"{path}: {num_classes} classes; expected 17 (SoccerNet-v2) or 3 (v1)")
    if "window_s" in options:  # the weights tell the window (CALF's chunk): the log and --window must agree
        given = window_s if window_s is not None else log_window
        if given is not None and not math.isclose(float(given), float(options["window_s"])):
            raise SpottingError(f"{path}: its weights take {options['window_s']:g} s chunks, not {given} s (--window)")
        window = float(options["window_s"])
    options = {**options, "window_s": window}
    if "framerate" in log:
        options["fps"] = float(log["framerate"])
    if nms_threshold is not None or "NMS_threshold" in log:
        options["nms_threshold"] = float(nms_threshold if nms_threshold is not None else log["NMS_threshold"])
    if nms_window_s is not None or "NMS_window" in log:
        options["nms_window_s"] = float(nms_window_s if nms_window_s is not None else log["NMS_window"])
    try:
        model = build_model(name, **options)
        model.load_state_dict(state)
    except (RuntimeError, ValueError, SpottingError) as e:
        raise SpottingError(f"{path}: weights do not fit our {name!r} model ({str(e).splitlines()[0][:200]})") from None
    extra = {"source": str(path), "epoch": ckpt.get("epoch"), "official_log": log, **(extra or {})}
    if ckpt.get("best_loss") is not None:
        extra["best_loss"] = float(ckpt["best_loss"])
    out = Path(out)
    if out.is_dir():
        out = out / f"{log_path.stem}-{name}.ckpt"
    try:
        return save_checkpoint(out, model, classes=classes, feature_name=feature_name, extra=extra)
    except (OSError, RuntimeError) as e:  # torch.save raises RuntimeError for an unwritable path
        raise SpottingError(f"{out}: cannot write the checkpoint ({str(e).splitlines()[0][:120]})") from None
