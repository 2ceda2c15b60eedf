"""Plain HTTP(S) downloads: a temporary file, a progress bar, resume, hash checks, atomic install.

    download("https://...", part)                  into `part` (resumed with a Range request if it exists)
    verify(path, git_sha1="...") / verify(path, md5="...")     the file's hash, or it is deleted
    git_blob_sha1(path), md5_file(path)            the hashes git and Keras publish
    install_file(src, dest)                        moved into place in one step (no half-written dest)

Errors are one line (`SpottingError`); `Unreachable` says the server could not be reached at all
(offline, DNS, refused), so callers can tell the user where to download the file by hand.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from spotting_core.errors import SpottingError

CHUNK = 1 << 20
USER_AGENT = "spotting-core (pretrained weights)"
Progress = Callable[[float, str], None]


class Unreachable(SpottingError):
    """The server could not be reached (no network, DNS, connection refused, timeout before any byte)."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"cannot reach {url} ({reason})")
        self.url, self.reason = url, reason


class Truncated(SpottingError):
    """The transfer stopped before the end of the file; the part kept on disk resumes next time."""


# ---------------------------------------------------------------------------------------------
# Hashes
# ---------------------------------------------------------------------------------------------
def _digest(path: Path, h, header: bytes = b"") -> str:
    h.update(header)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def git_blob_sha1(path: str | os.PathLike) -> str:
    """`git hash-object FILE`: sha1(b"blob <size>\\0" + content)."""
    path = Path(path)
    return _digest(path, hashlib.sha1(), b"blob %d\0" % path.stat().st_size)


def md5_file(path: str | os.PathLike) -> str:
    return _digest(Path(path), hashlib.md5())


def sha256_file(path: str | os.PathLike) -> str:
    """The file's SHA-256 (what names a checkpoint by its content), read in blocks."""
    return _digest(Path(path), hashlib.sha256())


def verify(path: str | os.PathLike, *, git_sha1: str | None = None, md5: str | None = None,
           what: str | None = None, keep: bool = False) -> None:
    """Check the file against its published hash; on a mismatch delete it (unless `keep`) and raise one line."""
    path = Path(path)
    checks = [("git blob sha1", git_sha1, git_blob_sha1), ("md5", md5, md5_file)]
    for name, want, fn in checks:
        if want is None:
            continue
        got = fn(path)
        if got != want.lower():
            if not keep:
                path.unlink(missing_ok=True)
            deleted = "" if keep else "; the file was deleted"
            raise SpottingError(f"{what or path}: {name} {got} is not the published {want} "
                                f"(corrupted or not the right file){deleted}")


# ---------------------------------------------------------------------------------------------
# Download
# ---------------------------------------------------------------------------------------------
def _reason(e: BaseException) -> str:
    inner = getattr(e, "reason", None)
    text = str(inner if inner is not None else e).splitlines()[0][:160] if str(e) else ""
    return f"{type(inner if isinstance(inner, BaseException) else e).__name__}: {text}".rstrip(": ")


def _open(url: str, start: int, timeout: float):
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start:  # nothing after `start`: the part may already be whole
            return None
        raise SpottingError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        raise Unreachable(url, _reason(e)) from None


def _bar(total: int | None, label: str, start: int, progress: Progress | None):
    """(update(n_bytes_so_far), close()) for a callback or a tqdm bar on stderr."""
    if progress is not None:
        def update(n: int) -> None:
            progress(min(1.0, n / total) if total else 0.0, f"{label}: {n / 1e6:.1f} MB"
                     + (f" of {total / 1e6:.1f} MB" if total else ""))
        return update, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=total, initial=start, unit="B", unit_scale=True, desc=label, file=sys.stderr,
               dynamic_ncols=True, leave=False)

    def update_bar(n: int) -> None:
        bar.update(n - bar.n)
    return update_bar, bar.close


def download(url: str, part: str | os.PathLike, *, size: int | None = None, label: str | None = None,
             progress: Progress | None = None, timeout: float = 30.0) -> Path:
    """Download `url` into `part`, resuming from the bytes already there (HTTP Range).

    `size`: the expected byte count when it is published. A transfer that stops early keeps `part`
    (the next call resumes) and raises `Truncated`; a server out of reach raises `Unreachable`.
    """
    part = Path(part)
    try:
        part.parent.mkdir(parents=True, exist_ok=True)
        start = part.stat().st_size if part.is_file() else 0
        if size is not None and start > size:
            part.unlink()
            start = 0
    except OSError as e:
        raise SpottingError(f"{part.parent}: cannot write the download ({e.strerror}); "
                            "set SPOTTING_CACHE to a writable folder") from None
    label = label or part.name.removesuffix(".part")
    if size is not None and start == size:
        return part
    resp = _open(url, start, timeout)
    if resp is None:
        if size is None:
            return part
        part.unlink(missing_ok=True)
        return download(url, part, size=size, label=label, progress=progress, timeout=timeout)
    with resp:
        resumed = start > 0 and resp.status == 206
        if not resumed:
            start = 0
        length = resp.headers.get("Content-Length")
        total = start + int(length) if length is not None and length.isdigit() else size
        update, close = _bar(total, label, start, progress)
        got = start
        try:
            with open(part, "ab" if resumed else "wb") as f:
                while True:
                    try:
                        block = resp.read(CHUNK)
                    except (http.client.IncompleteRead, OSError) as e:  # resets and timeouts are OSErrors
                        raise Truncated(f"{url}: the transfer stopped after {got:,} bytes ({_reason(e)})") from None
                    if not block:
                        break
                    f.write(block)
                    got += len(block)
                    update(got)
        except OSError as e:
            raise SpottingError(f"{part}: cannot write the download ({e.strerror}); "
                                "set SPOTTING_CACHE to a writable folder") from None
        finally:
            close()
    if total is not None and got < total:  # total: from Content-Length, else the known size
        raise Truncated(f"{url}: the transfer stopped after {got:,} of {total:,} bytes")
    return part


def install_file(src: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Move `src` to `dest` in one step: copied beside `dest` first when they sit on different disks."""
    src, dest = Path(src), Path(dest)
    tmp = dest.with_name(f".{dest.name}.installing")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(src), str(tmp))
        os.replace(tmp, dest)
    except OSError as e:
        if tmp.is_file():
            tmp.unlink()
        raise SpottingError(f"{dest}: cannot install the file ({e.strerror}); "
                            "set SPOTTING_CACHE (or SPOTTING_SOCCERNET_DIR) to a writable folder") from None
    return dest
