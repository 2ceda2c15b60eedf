"""Pretrained weights: the official SoccerNet-trained models and their feature extractor, verified.

    spotting pretrained list                       what exists, what is installed
    spotting pretrained fetch soccernet-netvlad++   download (resumed), verify, convert, install (+ its features)
    spotting pretrained import NAME FILE...        the same from files downloaded by hand (offline machines)
    spotting spot match.mp4 --checkpoint soccernet-netvlad++

    ENTRIES["soccernet-netvlad++"]   files (URL, published hash, size), features, classes, NMS, reported mAP
    fetch(name, progress=cb)         a plain function with a progress(fraction, text) callback (the app)
    installed_checkpoint(name)       the installed checkpoint of an entry (`--checkpoint NAME` everywhere)

Checkpoint entries are the official files of SoccerNet/sn-spotting at a fixed commit, checked against
the git blob sha1 that git records for them (`git hash-object FILE`), then converted by
models/official.py into our checkpoint format (model, config, classes, features, NMS, provenance) in
`<cache>/pretrained/<name>.ckpt`. Feature entries install into `features.soccernet.soccernet_dir()`
(the Keras ResNet-152 .h5, md5 as the Keras source publishes it, converted once to torch; the
official PCA pickles, converted once to .npz). A checkpoint entry requires its features' entries
and `fetch` brings those too.

`SPOTTING_PRETRAINED_MIRROR=BASE_URL` replaces every origin with BASE_URL/<entry name>/<file name>.
Downloads go to `<cache>/pretrained/.downloads/` and resume from there; a file is installed only
once whole and verified, in one step, so an interrupted or corrupted download installs nothing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from spotting_core.errors import SpottingError, UnknownName
from spotting_core.features import soccernet as sn

ENV_MIRROR = "SPOTTING_PRETRAINED_MIRROR"
SN_REPO = "SoccerNet/sn-spotting"
SN_COMMIT = "9842826f94e1419580a9d17219c11aca7225f7ce"  # main on 2024-02-07, the commit the hashes were read at
SN_RAW = f"https://raw.githubusercontent.com/{SN_REPO}/{SN_COMMIT}/"
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class RemoteFile:
    """One file of an entry: where it comes from and the hash it must have."""

    name: str                       # file name (also under the mirror: BASE/<entry>/<name>)
    url: str
    git_sha1: str | None = None     # git blob sha1, as `git ls-tree` / `git hash-object` give it
    md5: str | None = None          # as the Keras source publishes it
    size: int | None = None         # bytes, where the repository's tree gives it
    approx_mb: float | None = None  # estimate where it does not (parameters x 4 bytes x 3 for Adam's state)
    path: str = ""                  # path in its repository

    def size_text(self) -> str:
        if self.size is not None:
            return f"{self.size / 1e6:.2f} MB" if self.size >= 1e5 else f"{self.size / 1e3:.1f} kB"
        return f"~{self.approx_mb:g} MB" if self.approx_mb is not None else "?"


@dataclass(frozen=True)
class Reported:
    """The Average-mAP the authors report, and where."""

    value: float
    metric: str
    source: str


@dataclass(frozen=True)
class Entry:
    name: str
    title: str
    kind: str                                  # "checkpoint" or "features"
    files: tuple[RemoteFile, ...]
    features: tuple[str, int]                  # read (checkpoint) or computed (features): name, dimension
    requires: tuple[str, ...] = ()             # entries its features need
    model: str = ""                            # our registry name (checkpoints)
    window_s: float | None = None              # clip length (None: the weights tell it)
    nms: tuple[float, float] = (0.0, 0.0)      # (window s, threshold) of the official test code
    classes: str = ""                          # "SoccerNet-v2 (17)" / "SoccerNet-v1 (3)"
    reported: Reported | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def _sn_file(path: str, sha1: str, *, size: int | None = None, approx_mb: float | None = None) -> RemoteFile:
    return RemoteFile(name=path.rsplit("/", 1)[1], url=SN_RAW + quote(path), git_sha1=sha1, size=size,
                      approx_mb=approx_mb, path=f"{SN_REPO}/{path}")


PCA = ("keras-resnet152", "soccernet-pca512")
V2, V1 = "SoccerNet-v2 (17)", "SoccerNet-v1 (3)"
TAP, POOLING = "Benchmarks/TemporallyAwarePooling/models", "Benchmarks/Pooling/models"
_ENTRIES = [
    Entry("soccernet-netvlad++", "NetVLAD++ (Giancola & Ghanem, CVPR-W 2021), the TemporallyAwarePooling baseline",
          "checkpoint", (_sn_file(f"{TAP}/NetVLAD++/model.pth.tar", "0c9f6a2b915369b983d2d225ef2183febb16a8da",
                                  approx_mb=20.5),),
          ("ResNET_TF2", 2048), ("keras-resnet152",), model="netvlad++", window_s=15.0, nms=(30.0, 0.0),
          classes=V2, reported=Reported(0.5324, "loose Average-mAP, SoccerNet-v2 test",
                                        f"{SN_REPO}/{TAP}/NetVLAD++/2021-03-03_00-09-55.log"),
          notes=("feature_extractor Linear(2048 -> 512), vocabulary 64 (32 before + 32 after the centre)",)),
    Entry("soccernet-calf", "CALF (Cioppa et al., CVPR 2020), the SoccerNet-v2 benchmark model", "checkpoint",
          (_sn_file("Benchmarks/CALF/models/CALF_benchmark/model.pth.tar", "a132f187fbff45c0784257280d56521c60057732",
                    approx_mb=6.9),),
          ("ResNET_TF2_PCA512", 512), PCA, model="calf", window_s=None, nms=(20.0, 0.0), classes=V2,
          reported=Reported(0.4161, "loose Average-mAP, SoccerNet-v2 test", f"{SN_REPO}/README.md (benchmark table)"),
          notes=("chunks of 120 s, receptive field 40 s, 15 detections per chunk",)),
    Entry("soccernet-netvlad-v2", "NetVLAD pooling baseline (SoccerNet, CVPR-W 2018) on SoccerNet-v2", "checkpoint",
          (_sn_file(f"{POOLING}/NETVLAD_v2/model.pth.tar", "ad96b56764f89d7d1953fb0a2773cd59583251d9",
                    approx_mb=7.9),),
          ("ResNET_TF2_PCA512", 512), PCA, model="netvlad", window_s=20.0, nms=(20.0, 0.5), classes=V2,
          reported=Reported(0.3137, "loose Average-mAP, SoccerNet-v2 test",
                            f"{SN_REPO}/{POOLING}/NETVLAD_v2/2021-02-05_15-55-50.log")),
    Entry("soccernet-maxpool-v2", "Max-pooling baseline (SoccerNet, CVPR-W 2018) on SoccerNet-v2", "checkpoint",
          (_sn_file(f"{POOLING}/MAXPOOL_v2/model.pth.tar", "902a6af82a0526ed6350fd546207135027330a8d", size=113_445),),
          ("ResNET_TF2_PCA512", 512), PCA, model="maxpool", window_s=20.0, nms=(20.0, 0.0), classes=V2,
          reported=Reported(0.1858, "loose Average-mAP, SoccerNet-v2 test",
                            f"{SN_REPO}/{POOLING}/MAXPOOL_v2/2021-02-05_15-55-45.log")),
    Entry("soccernet-netvlad-v1", "NetVLAD pooling baseline (SoccerNet, CVPR-W 2018) on SoccerNet-v1", "checkpoint",
          (_sn_file(f"{POOLING}/NETVLAD_v1/model.pth.tar", "373fdd4b2e8fc33ab638781d50b1d20e9772e92c", size=2_363_803),),
          ("ResNET_TF2_PCA512", 512), PCA, model="netvlad", window_s=20.0, nms=(20.0, 0.5), classes=V1,
          reported=Reported(0.4467, "Average-mAP, SoccerNet-v1 test (card 0.302, subs 0.474, goal 0.565)",
                            f"{SN_REPO}/{POOLING}/NETVLAD_v1/2021-02-05_15-56-18.log")),
    Entry("soccernet-pca512", "SoccerNet's PCA 2048 -> 512 and the feature average before it", "features",
          (_sn_file(f"Features/{sn.PCA_PKL}", "7c3391c946d890c6db391eeccb9fabc7dd887310", approx_mb=8.4),
           _sn_file(f"Features/{sn.AVERAGE_PKL}", "341e12f15e0a314f02ee9af2b58d1717a45d76c6", size=8_349)),
          ("ResNET_TF2_PCA512", 512), ("keras-resnet152",)),
    Entry("keras-resnet152", "Keras' ResNet-152 ImageNet weights (no top): SoccerNet's ResNET_TF2 extractor", "features",
          (RemoteFile(sn.KERAS_H5_FILES[0], sn.KERAS_WEIGHTS_URL + sn.KERAS_H5_FILES[0],
                      md5="ee4c566cf9a93f14d82f913c2dc6dd0c", approx_mb=234,
                      path="keras-applications storage (md5 in keras/applications/resnet.py WEIGHTS_HASHES)"),),
          ("ResNET_TF2", 2048)),
]
ENTRIES: dict[str, Entry] = {e.name: e for e in _ENTRIES}


def entry(name: str) -> Entry:
    try:
        return ENTRIES[name]
    except KeyError:
        raise UnknownName(f"unknown pretrained entry {name!r}; choose from {', '.join(ENTRIES)}") from None


def file_url(e: Entry, f: RemoteFile) -> str:
    """The file's origin, or BASE/<entry>/<file> under $SPOTTING_PRETRAINED_MIRROR."""
    base = os.environ.get(ENV_MIRROR, "").strip()
    return f"{base.rstrip('/')}/{quote(e.name)}/{quote(f.name)}" if base else f.url


def with_requirements(names: Iterable[str]) -> list[str]:
    """The entries and everything they require, requirements first, each once."""
    out: list[str] = []

    def add(name: str) -> None:
        for dep in entry(name).requires:
            add(dep)
        if name not in out:
            out.append(name)
    for n in names:
        add(n)
    return out


# ---------------------------------------------------------------------------------------------
# Where things are installed
# ---------------------------------------------------------------------------------------------
def pretrained_dir() -> Path:
    from spotting_core.runtime import cache_path

    return cache_path("pretrained")


def checkpoint_path(name: str) -> Path:
    """Where a checkpoint entry is installed (whether it is or not)."""
    return pretrained_dir() / f"{entry(name).name}.ckpt"


def is_installed(name: str) -> bool:
    e = entry(name)
    if e.kind == "checkpoint":
        return checkpoint_path(name).is_file()
    return sn.has_resnet_weights() if name == "keras-resnet152" else sn.has_pca()


def missing(name: str) -> list[str]:
    """The entry and its requirements that are not installed, requirements first."""
    return [n for n in with_requirements([name]) if not is_installed(n)]


def fetch_command(name: str) -> str:
    return f"spotting pretrained fetch {name}"


def installed_checkpoint(name: str) -> Path | None:
    """The installed checkpoint of entry `name`; None when `name` is no checkpoint entry; one line with
    the fetch command when it is one that is not installed."""
    e = ENTRIES.get(name)
    if e is None or e.kind != "checkpoint":
        return None
    path = checkpoint_path(name)
    if not path.is_file():
        raise SpottingError(f"{name}: pretrained checkpoint not installed; run `{fetch_command(name)}` "
                            f"(offline: download {e.files[0].url} and run `spotting pretrained import {name} FILE`)")
    return path


def describe(name: str) -> dict:
    """One row of `spotting pretrained list` / the app's picker."""
    e = entry(name)
    miss = missing(name)
    row = {"name": e.name, "kind": e.kind, "installed": name not in miss, "title": e.title,
           "files": [{"name": f.name, "url": f.url, "size": f.size_text(), "git_sha1": f.git_sha1, "md5": f.md5}
                     for f in e.files],
           "size": " + ".join(f.size_text() for f in e.files), "features": f"{e.features[0]} ({e.features[1]}-d)",
           "requires": list(e.requires), "missing": miss}
    if e.kind == "checkpoint":
        row.update({"model": e.model, "classes": e.classes, "nms": {"window_s": e.nms[0], "threshold": e.nms[1]},
                    "reported": None if e.reported is None else
                    {"average_map": e.reported.value, "metric": e.reported.metric, "source": e.reported.source},
                    "path": str(checkpoint_path(name))})
    return row


# ---------------------------------------------------------------------------------------------
# Fetch and import
# ---------------------------------------------------------------------------------------------
def _staging(name: str) -> Path:
    return pretrained_dir() / ".downloads" / name


def _verify(e: Entry, f: RemoteFile, path: Path, *, keep: bool = False) -> None:
    from spotting_core.io.remote import verify

    verify(path, git_sha1=f.git_sha1, md5=f.md5, what=f"{e.name}: {f.name}", keep=keep)


def _install(e: Entry, files: dict[str, Path], progress: Progress | None) -> list[Path]:
    """Verified files (by name) -> installed; on any failure nothing of the entry stays installed."""
    from spotting_core.io.remote import install_file

    if e.kind == "checkpoint":
        from spotting_core.models.official import import_official_checkpoint

        f = e.files[0]
        if progress is not None:
            progress(1.0, f"{e.name}: converting to our checkpoint format")
        provenance = {"pretrained": {"entry": e.name, "url": f.url, "git_sha1": f.git_sha1, "path": f.path,
                                     "reported": None if e.reported is None else
                                     {"average_map": e.reported.value, "metric": e.reported.metric,
                                      "source": e.reported.source}}}
        return [import_official_checkpoint(files[f.name], checkpoint_path(e.name), pool=e.model,
                                           window_s=e.window_s, feature_name=e.features[0],
                                           nms_window_s=e.nms[0], nms_threshold=e.nms[1], extra=provenance)]
    folder = sn.soccernet_dir()
    placed: list[Path] = []
    try:
        for f in e.files:
            placed.append(install_file(files[f.name], folder / f.name))
        if progress is not None:
            progress(1.0, f"{e.name}: converting")
        if e.name == "keras-resnet152":
            from spotting_core.features.keras_resnet import convert_keras_h5

            placed.append(convert_keras_h5(placed[0], folder / sn.WEIGHTS_PT))
        else:
            from spotting_core.features.soccernet_pca import convert_official_pca

            placed.append(convert_official_pca(placed[0], placed[1], folder / sn.PCA_NPZ))
    except (SpottingError, OSError) as err:
        for p in placed:
            p.unlink(missing_ok=True)
        if isinstance(err, SpottingError):
            raise
        raise SpottingError(f"{folder}: cannot install {e.name} ({err.strerror}); set {sn.ENV_DIR} "
                            "to a writable folder") from None
    return placed


def _overall(progress: Progress | None, i: int, n: int) -> Progress | None:
    if progress is None:
        return None
    return lambda frac, text: progress(min(1.0, (i + frac) / n), text)


def fetch_entry(name: str, *, progress: Progress | None = None) -> list[Path]:
    """Download (resuming), verify and install one entry, without its requirements."""
    from spotting_core.io.remote import Truncated, Unreachable, download

    e = entry(name)
    staging = _staging(name)
    got: dict[str, Path] = {}
    for i, f in enumerate(e.files):
        url = file_url(e, f)
        part, done = staging / f"{f.name}.part", staging / f.name
        if done.is_file():  # whole and verified by an earlier, interrupted fetch of this entry
            got[f.name] = done
            continue
        try:
            download(url, part, size=f.size, label=f"{name}: {f.name}", progress=_overall(progress, i, len(e.files)))
        except Unreachable as err:
            files = " ".join(g.name for g in e.files)
            raise SpottingError(f"cannot download {url} ({err.reason}); offline, download it by hand "
                                f"and run `spotting pretrained import {name} {files}`") from None
        except Truncated as err:
            raise SpottingError(f"{name}: {err}; nothing was installed, run `{fetch_command(name)}` again "
                                "to resume") from None
        _verify(e, f, part)
        os.replace(part, done)
        got[f.name] = done
    try:
        return _install(e, got, progress)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch(name: str, *, deps: bool = True, force: bool = False, progress: Progress | None = None) -> list[Path]:
    """Fetch `name` (and, with `deps`, every entry it requires that is not installed). `force`: fetch
    `name` again even when it is installed. Returns the installed files."""
    todo = [n for n in (with_requirements([name]) if deps else [entry(name).name])
            if (force and n == name) or not is_installed(n)]
    out: list[Path] = []
    for i, n in enumerate(todo):
        out += fetch_entry(n, progress=_overall(progress, i, len(todo)))
    return out


def import_files(name: str, files: Iterable[str | os.PathLike], *, progress: Progress | None = None) -> list[Path]:
    """Install entry `name` from files downloaded by hand: each is matched to the entry's files by its
    hash (so its name does not matter) and copied; the user's files are left as they are."""
    from spotting_core.io.remote import git_blob_sha1, md5_file

    e = entry(name)
    given: dict[str, Path] = {}
    for raw in files:
        p = Path(raw)
        if not p.is_file():
            raise SpottingError(f"{p}: no such file")
        sha1, md5 = (git_blob_sha1(p) if any(f.git_sha1 for f in e.files) else None,
                     md5_file(p) if any(f.md5 for f in e.files) else None)
        match = [f for f in e.files if (f.git_sha1 and f.git_sha1 == sha1) or (f.md5 and f.md5 == md5)]
        if not match:
            want = "; ".join(f"{f.name} {'git blob sha1 ' + f.git_sha1 if f.git_sha1 else 'md5 ' + str(f.md5)}"
                             for f in e.files)
            got = f"git blob sha1 {sha1}" if sha1 else f"md5 {md5}"
            raise SpottingError(f"{p}: not a file of {name} ({got}; expected {want}); nothing was installed")
        given[match[0].name] = p
    absent = [f.name for f in e.files if f.name not in given]
    if absent:
        raise SpottingError(f"{name}: also give {', '.join(absent)} (from {', '.join(f.url for f in e.files if f.name in absent)})")
    staging = _staging(name)
    try:
        staging.mkdir(parents=True, exist_ok=True)
        copies = {}
        for fname, src in given.items():
            copies[fname] = Path(shutil.copyfile(src, staging / fname))
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise SpottingError(f"{staging}: cannot copy the files ({err.strerror}); set SPOTTING_CACHE to a "
                            "writable folder") from None
    try:
        return _install(e, copies, progress)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
