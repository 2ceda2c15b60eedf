"""Official SoccerNet checkpoints -> ours: `spotting import-official FILE --out CKPT`.

    import_official_checkpoint("model.pth.tar", "out.ckpt")     pool, window and NMS from `model.log`

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


def import_official_checkpoint(path, out, *, pool: str | None = None, window_s: float | None = None,
                               feature_name: str = "ResNET_TF2_PCA512",
                               nms_window_s: float | None = None) -> Path:
    """Convert an official SoccerNet checkpoint into one `load_checkpoint` rebuilds; returns the path written.

    pool: its model, ours or the official spelling ("maxpool" / "MAX", "netvlad++" / "NetVLAD++");
        default the log's, else the architecture the weights fit (MAX when max/avg pooling cannot be
        told apart, the official default).
    window_s: its clip length in seconds (the weights do not tell it for max/avg pooling); default
        the log's window_size / chunk_size, else 20 s.
    nms_window_s: default the log's NMS_window, else the model's Config default.
    When the log is there, its pool and window must agree with the arguments.
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
    fits = []
    for name in candidates:
        layout = MODELS[name].official_layout(sd, log)
        if layout is not None:
            fits.append((name, *layout))
    if not fits:
        raise SpottingError(f"{path}: its weights fit no official architecture we know "
                            f"(keys: {', '.join(list(sd)[:8])}{', ...' if len(sd) > 8 else ''})")
    if len(fits) > 1:
        fits = [f for f in fits if f[0] == DEFAULT_POOL] or fits
    name, options, state = fits[0]
    num_classes = int(options.get("num_classes", 17))
    classes = {17: CLASSES_V2, 3: CLASSES_V1}.get(num_classes)
    if classes is None:
        raise SpottingError(f"{path}: {num_classes} classes; expected 17 (SoccerNet-v2) or 3 (v1)")
    options = {**options, "window_s": window}
    if "framerate" in log:
        options["fps"] = float(log["framerate"])
    if "NMS_threshold" in log:
        options["nms_threshold"] = float(log["NMS_threshold"])
    if nms_window_s is not None or "NMS_window" in log:
        options["nms_window_s"] = float(nms_window_s if nms_window_s is not None else log["NMS_window"])
    try:
        model = build_model(name, **options)
        model.load_state_dict(state)
    except (RuntimeError, ValueError, SpottingError) as e:
        raise SpottingError(f"{path}: weights do not fit our {name!r} model ({str(e).splitlines()[0][:200]})") from None
    extra = {"source": str(path), "epoch": ckpt.get("epoch"), "official_log": log}
    if ckpt.get("best_loss") is not None:
        extra["best_loss"] = float(ckpt["best_loss"])
    out = Path(out)
    if out.is_dir():
        out = out / f"{log_path.stem}-{name}.ckpt"
    try:
        return save_checkpoint(out, model, classes=classes, feature_name=feature_name, extra=extra)
    except (OSError, RuntimeError) as e:  # torch.save raises RuntimeError for an unwritable path
        raise SpottingError(f"{out}: cannot write the checkpoint ({str(e).splitlines()[0][:120]})") from None
