"""What the app serves and where users may open files: the media root, the media routes, uploads.

    media_root()                 $SPOTTING_MEDIA_ROOT or the working directory: the only folder users open by path
    confine(text, kind="file")   a user-typed path, refused if it leaves the media root
    media_routes(), media_url()  /media-files/root and /media-files/cache over HTTP (Range requests)
    servable(rel, folders)       what those routes serve: media files only (SERVED_SUFFIXES, CACHE_MEDIA_FOLDERS)
    store_upload(data, name)     an upload under <cache>/uploads with a random name (only its suffix is kept)
    list_under(root, suffixes)   files for pickers

The routes serve video, audio, captions and images, never dotfiles or dot-folders, and from the cache
only its demo, uploads, reels and thumbnails folders: everything else (the review store, checkpoints,
features, JSON, source) is a 404. Who may ask is pages/support/access.py's `media_access`.
App-only (no streamlit import, nothing in spotting_core imports it).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from spotting_core.errors import SpottingError
from spotting_core.io.video import VIDEO_SUFFIXES
from spotting_core.runtime import cache_path, cache_root

ENV_MEDIA_ROOT = "SPOTTING_MEDIA_ROOT"


ENV_MAX_UPLOAD_MB = "SPOTTING_MAX_UPLOAD_MB"


MEDIA_PREFIX = "/media-files"


CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".tar")


# What the media routes serve: the pages play videos (matches, reels) with captions, show images.
MEDIA_SUFFIXES = {
    "video": VIDEO_SUFFIXES,
    "audio": (".mp3", ".m4a", ".aac", ".wav", ".ogg", ".oga", ".opus", ".flac"),
    "captions": (".vtt", ".srt"),
    "thumbnails": (".jpg", ".jpeg", ".png", ".webp", ".gif"),
}
SERVED_SUFFIXES = tuple(s for group in MEDIA_SUFFIXES.values() for s in group)


UPLOADS = "uploads"
CACHE_MEDIA_FOLDERS = ("demo", UPLOADS, "reels", "thumbnails")  # the cache's folders that hold media


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


def servable(rel: str | os.PathLike, folders: Sequence[str] | None = None) -> bool:
    """Whether the media routes serve this path (relative to its mount): a media suffix, no dot part,
    and, for the cache (`folders`), inside one of its media folders."""
    parts = PurePosixPath(Path(rel).as_posix()).parts
    if not parts or any(p.startswith(".") or p == "__pycache__" for p in parts):
        return False
    if folders is not None and (len(parts) < 2 or parts[0] not in folders):
        return False
    return parts[-1].lower().endswith(SERVED_SUFFIXES)


def store_upload(data, name: str, *, suffixes: Sequence[str] = VIDEO_SUFFIXES) -> Path:
    """Write uploaded bytes to <cache>/uploads/<random>.<suffix>: the user's file name is never a path
    component, only its suffix is kept, and only one of `suffixes`."""
    suffix = Path(str(name).replace("\\", "/")).suffix.lower()
    if suffix not in suffixes:
        raise SpottingError(f"{name}: not an accepted file type ({', '.join(suffixes)})")
    path = cache_path(UPLOADS) / f"{secrets.token_hex(16)}{suffix}"
    part = path.with_name(f".{path.name}.part")
    try:
        with open(part, "wb") as f:
            f.write(data)
        os.replace(part, path)
    except OSError as e:
        part.unlink(missing_ok=True)
        raise SpottingError(f"{name}: cannot store the upload under {path.parent} ({e.strerror})") from None
    return path


class MediaFiles:
    """StaticFiles behind two checks: who asks (`allow(scope)`: None, or a refusal's status and text)
    and what (`servable`, on the path as asked and on where it really leads). Range requests: 206."""

    def __init__(self, directory: Path, *, folders: Sequence[str] | None,
                 allow: Callable[[dict], tuple[int, str] | None]):
        from starlette.staticfiles import StaticFiles

        self.root, self.folders, self.allow = Path(directory), folders, allow
        self.files = StaticFiles(directory=str(directory), check_dir=False)  # follow_symlink=False

    def _servable(self, rel: str) -> bool:
        if not servable(rel, self.folders):
            return False
        real = (self.root / rel).resolve()  # a link may lead elsewhere: the target must pass too
        root = self.root.resolve()
        return root in real.parents and servable(real.relative_to(root), self.folders)

    async def __call__(self, scope, receive, send) -> None:
        from starlette.responses import PlainTextResponse

        if scope["type"] != "http":  # no websockets here: returning unanswered makes the server refuse
            return
        refused = self.allow(scope)
        if refused is None and self._servable(self.files.get_path(scope)):
            await self.files(scope, receive, send)
            return
        status, text = refused or (404, "Not Found")
        await PlainTextResponse(text, status_code=status)(scope, receive, send)


_MOUNTS: dict[str, Path] = {}


def media_routes() -> list:
    """Starlette mounts for st.App: /media-files/root -> the media root, /media-files/cache -> the
    cache's media folders; media files only (`servable`), to whoever `access.media_access` lets in.

    StaticFiles answers Range requests (206), so a browser seeks in a 2 GB match without the server
    reading the file into memory; it also refuses paths that leave the mounted folder.
    """
    from starlette.routing import Mount

    from pages.support.access import media_access

    _MOUNTS.clear()
    _MOUNTS.update({"cache": cache_root(), "root": media_root()})
    folders = {"cache": CACHE_MEDIA_FOLDERS, "root": None}
    return [Mount(f"{MEDIA_PREFIX}/{name}", app=MediaFiles(path, folders=folders[name], allow=media_access),
                  name=f"media-{name}") for name, path in _MOUNTS.items()]


def media_mounted() -> bool:
    """True when this process serves the media routes (under `streamlit run app.py`; not in AppTest)."""
    return bool(_MOUNTS)


def media_url(path: str | os.PathLike) -> str | None:
    """The URL of a file under a mounted folder, or None when no mount holds it or serves it."""
    path = Path(path).resolve()
    mounts = _MOUNTS or {"cache": cache_root(), "root": media_root()}
    for name, root in mounts.items():
        if root in path.parents:
            rel = path.relative_to(root).as_posix()
            if servable(rel, CACHE_MEDIA_FOLDERS if name == "cache" else None):
                return f"{MEDIA_PREFIX}/{name}/{quote(rel)}"
    return None
