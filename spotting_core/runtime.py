"""Where files go and what runs the work: the one cache root and the one device resolver.

    cache_root()              $SPOTTING_CACHE, else $XDG_CACHE_HOME/spotting, else ~/.cache/spotting
    cache_path("features")    a folder under it (created)
    resolve_device("cuda")    a torch.device, CUDA when available by default; one-line error otherwise
    ASSETS                    the repository's assets/ folder (the demo checkpoint)

Every module that caches something (features of a read-only video, demo match, results, reels, the
review store, SoccerNet weights, pretrained checkpoints, job state) does it under `cache_root()`.
"""

from __future__ import annotations

import os
from pathlib import Path

from spotting_core.errors import SpottingError

ENV_CACHE = "SPOTTING_CACHE"
ASSETS = Path(__file__).resolve().parents[1] / "assets"


def cache_root() -> Path:
    """The root of every cache: $SPOTTING_CACHE, else $XDG_CACHE_HOME/spotting, else ~/.cache/spotting."""
    env = os.environ.get(ENV_CACHE)
    base = Path(env).expanduser() if env else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "spotting"
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SpottingError(f"{base}: cannot create the cache folder ({e.strerror}); set {ENV_CACHE} "
                            "to a writable folder") from None
    return base.resolve()


def cache_path(*parts: str) -> Path:
    """A folder under the cache root, created."""
    path = cache_root().joinpath(*parts)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SpottingError(f"{path}: cannot create the cache folder ({e.strerror}); set {ENV_CACHE} "
                            "to a writable folder") from None
    return path


def resolve_device(device=None):
    """The requested torch device, or CUDA when available; a one-line error for an unusable one."""
    import torch

    if device is None or str(device) == "":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, torch.device):
        dev = device
    else:
        try:
            dev = torch.device(str(device))
        except RuntimeError:
            raise SpottingError(f"--device {device}: not a device (use cpu or cuda)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SpottingError(f"--device {device}: CUDA is not available on this machine")
    return dev
