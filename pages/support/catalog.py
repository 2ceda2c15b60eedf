"""What the app lists on its Models page and in checkpoint pickers: models and checkpoints on disk.

    list_checkpoints()          checkpoints under assets/, the cache (incl. installed pretrained ones), the media root
    pretrained_choices()        the pretrained registry's checkpoints: ready, or what to fetch (models/pretrained.py)
    checkpoint_table(paths)     model, features, classes and training provenance of each
    models_table(input_dim)     the registry: parameters, window, NMS, paper
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from pages.support.server import CHECKPOINT_SUFFIXES, list_under, media_root
from spotting_core.errors import SpottingError
from spotting_core.review.matches import checkpoint_meta
from spotting_core.runtime import ASSETS, cache_path


def checkpoint_dirs() -> list[Path]:
    return [ASSETS, cache_path("checkpoints"), cache_path("pretrained"), media_root()]


def pretrained_choices() -> list[dict]:
    """Each checkpoint entry of the pretrained registry for a picker: `label`, `ready` (installed, with
    the features it reads for videos), `path` when installed, and `to_fetch` (entries, with sizes)."""
    from spotting_core.models.pretrained import ENTRIES, describe, entry

    out = []
    for name, e in ENTRIES.items():
        if e.kind != "checkpoint":
            continue
        row = describe(name)
        to_fetch = [f"{n} ({describe(n)['size']})" for n in row["missing"]]
        reported = f", reported Average-mAP {e.reported.value:.3f}" if e.reported else ""
        state = "ready" if not row["missing"] else "installed; videos need more" if row["installed"] else "not installed"
        out.append({"name": name, "label": f"{name}: {entry(name).title} ({row['features']}{reported}) · {state}",
                    "installed": row["installed"], "ready": not row["missing"], "to_fetch": to_fetch,
                    "missing": row["missing"], "path": row["path"] if row["installed"] else None})
    return out


def list_checkpoints(dirs: Iterable[Path] | None = None) -> list[Path]:
    seen, found = set(), []
    for d in dirs or checkpoint_dirs():
        for p in list_under(Path(d), CHECKPOINT_SUFFIXES, max_depth=3):
            if p.resolve() not in seen:
                seen.add(p.resolve())
                found.append(p)
    return found


def checkpoint_table(paths: Iterable[Path]) -> pd.DataFrame:
    """What each checkpoint is: model, features, classes, and what it was trained on (its `extra`)."""
    rows = []
    for p in paths:
        try:
            meta = checkpoint_meta(p)
            extra = meta.get("extra") or {}
            train = extra.get("train") if isinstance(extra.get("train"), dict) else {}
            scores = ", ".join(f"{k} {v:.3f}" for k, v in extra.items() if k.startswith("valid_") and isinstance(v, float))
            rows.append({"checkpoint": str(p), "model": meta["model"], "features": meta.get("features", {}).get("name"),
                         "dim": meta.get("features", {}).get("dim"), "classes": len(meta.get("classes") or []),
                         "trained on": extra.get("data") or train.get("data") or "",
                         "details": f"epoch {extra.get('epoch', '?')}; {scores}" if scores else
                         json.dumps(extra, default=str)[:300], "problem": ""})
        except SpottingError as e:
            rows.append({"checkpoint": str(p), "model": "", "features": "", "dim": None, "classes": None,
                         "trained on": "", "details": "", "problem": str(e)})
    return pd.DataFrame(rows, columns=["checkpoint", "model", "features", "dim", "classes", "trained on", "details",
                                       "problem"])


def _first_line(doc: str | None) -> str:
    return doc.strip().splitlines()[0] if doc and doc.strip() else ""


def models_table(input_dim: int = 512) -> pd.DataFrame:
    from spotting_core.models import MODELS, build_model, count_parameters

    rows = []
    for name, cls in MODELS.items():
        model = build_model(name, input_dim=input_dim)
        rows.append({"model": name, "parameters": count_parameters(model), "window_s": model.cfg.window_s,
                     "nms_window_s": model.cfg.nms_window_s, "output": model.output_mode,
                     "paper": _first_line(cls.__doc__) or _first_line(sys.modules[cls.__module__].__doc__)})
    return pd.DataFrame(rows)
