"""What the app serves and where users may open files: the media root, the media routes, uploads.

    media_root()                 $SPOTTING_MEDIA_ROOT or the working directory: the only folder users open by path
    confine(text, kind="file")   a user-typed path, refused if it leaves the media root
    media_routes(), media_url()  /media-files/root and /media-files/cache over HTTP (Range requests)
    list_under(root, suffixes)   files for pickers

App-only (no streamlit import, nothing in spotting_core imports it).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from spotting_core.errors import SpottingError
from spotting_core.runtime import cache_root

ENV_MEDIA_ROOT = "SPOTTING_MEDIA_ROOT"


ENV_MAX_UPLOAD_MB = "SPOTTING_MAX_UPLOAD_MB"


MEDIA_PREFIX = "/media-files"


CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".tar")


def media_root() -> Path:
    """The only folder whose files users may open by typing a path: $SPOTTING_MEDIA_ROOT or the cwd."""
    return Path(os.environ.get(ENV_MEDIA_ROOT) or Path.cwd()).expanduser().resolve()


def max_upload_mb() -> int:
    try:
        return max(1, int(os.environ.get(ENV_MAX_UPLOAD_MB, "200")))
    except ValueError:
        return 200


def confine(text: str | os.PathLike, *, root: Path | None = None, kind: str | None = None) -> Path:
    """Resolve a user-typed path under `root` (default: the media root); refuse anything outside it.

    Relative paths are taken from the root. `kind` "file" or "dir" also checks what the path is.
    """
    root = (root or media_root()).resolve()
    raw = str(text).strip().strip('"').strip("'")
    if not raw:
        raise SpottingError("no path given")
    if "\x00" in raw:
        raise SpottingError(f"{raw!r}: not a valid path")
    path = Path(raw).expanduser()
    path = (path if path.is_absolute() else root / path).resolve()
    if path != root and root not in path.parents:
        raise SpottingError(f"{raw}: outside the media root {root} (set {ENV_MEDIA_ROOT} to open other folders)")
    if kind and not path.exists():
        raise SpottingError(f"{raw}: no such {'folder' if kind == 'dir' else 'file'}")
    if kind == "file" and not path.is_file():
        raise SpottingError(f"{raw}: is a folder, not a file")
    if kind == "dir" and not path.is_dir():
        raise SpottingError(f"{raw}: is a file, not a folder")
    return path


def list_under(root: Path, suffixes: Sequence[str], *, limit: int = 500, max_depth: int = 5) -> list[Path]:
    """Files with these suffixes under root (hidden folders skipped), for pickers."""
    found = []
    root = Path(root)
    if not root.is_dir():
        return found
    for dirpath, dirnames, files in os.walk(root):
        depth = len(Path(dirpath).relative_to(root).parts)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in ("node_modules", "__pycache__")
                             and depth < max_depth)
        for f in sorted(files):
            if f.lower().endswith(tuple(suffixes)):
                found.append(Path(dirpath) / f)
                if len(found) >= limit:
                    return found
    return found


_MOUNTS: dict[str, Path] = {}


def media_routes() -> list:
    """Starlette mounts for st.App: /media-files/root -> the media root, /media-files/cache -> the cache.

    StaticFiles answers Range requests (206), so a browser seeks in a 2 GB match without the server
    reading the file into memory; it also refuses paths that leave the mounted folder.
    """
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    _MOUNTS.clear()
    _MOUNTS.update({"cache": cache_root(), "root": media_root()})
    return [Mount(f"{MEDIA_PREFIX}/{name}", app=StaticFiles(directory=str(path), check_dir=False), name=f"media-{name}")
            for name, path in _MOUNTS.items()]


def media_mounted() -> bool:
    """True when this process serves the media routes (under `streamlit run app.py`; not in AppTest)."""
    return bool(_MOUNTS)


def media_url(path: str | os.PathLike) -> str | None:
    """The URL of a file under a mounted folder, or None when no mount holds it."""
    path = Path(path).resolve()
    mounts = _MOUNTS or {"cache": cache_root(), "root": media_root()}
    for name, root in mounts.items():
        if root == path or root in path.parents:
            rel = path.relative_to(root).as_posix()
            return f"{MEDIA_PREFIX}/{name}/{quote(rel)}"
    return None
