"""Downloads: SoccerNet's own files through its official downloader.

    download(dir, splits=["train", "valid", "test"], files=[...])    features and labels (needs its servers)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from spotting_core.errors import SpottingError
from spotting_core.io.soccernet import LABELS_FILE

SPLITS = ("train", "valid", "test")


def _network_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError]  # urllib, requests and huggingface_hub errors are OSErrors
    for module in ("httpx2", "httpx"):
        try:
            errors.append(__import__(module).HTTPError)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def download(directory: str | os.PathLike, *, splits: Sequence[str] = SPLITS,
             files: Sequence[str] = ("1_ResNET_TF2_PCA512.npy", "2_ResNET_TF2_PCA512.npy", LABELS_FILE),
             password: str | None = None) -> Path:
    """Download SoccerNet features and labels with the official `SoccerNetDownloader`.

    Needs SoccerNet's servers (Hugging Face); a failure to reach them raises a one-line
    SpottingError. Videos need the password of SoccerNet's NDA.
    """
    from SoccerNet.Downloader import SoccerNetDownloader

    directory = Path(directory)
    known = (set(SoccerNetDownloader._HF_FEATURE_BRANCH_BY_FILE) | set(SoccerNetDownloader._HF_LABEL_FILES)
             | set(SoccerNetDownloader._HF_VIDEO_BRANCH_BY_FILE))
    unknown = [f for f in files if f not in known]
    if unknown:
        raise SpottingError(f"--files: SoccerNet's downloader does not serve {', '.join(unknown)}; "
                            f"known files: {', '.join(sorted(known))}")
    bad = [s for s in splits if s not in (*SPLITS, "challenge")]
    if bad:
        raise SpottingError(f"--split: unknown split {', '.join(bad)}; choose from train, valid, test, challenge")
    directory.mkdir(parents=True, exist_ok=True)
    downloader = SoccerNetDownloader(LocalDirectory=str(directory))
    downloader.password = password
    try:
        downloader.downloadGames(files=list(files), split=list(splits), verbose=False)
    except _network_errors() as e:
        first = str(e).splitlines()[0][:200] if str(e) else ""
        raise SpottingError(f"cannot reach SoccerNet's servers: {type(e).__name__}: {first} "
                            f"(download the files elsewhere and copy them under {directory})") from None
    from SoccerNet.utils import getListGames

    missing = [g for s in splits for g in getListGames(s)
               if not all((directory / g / f).is_file() for f in files if s != "challenge" or f != LABELS_FILE)]
    if missing:
        raise SpottingError(f"{directory}: after the download {len(missing)} games still miss some of "
                            f"{', '.join(files)} (first: {missing[0]})")
    return directory
