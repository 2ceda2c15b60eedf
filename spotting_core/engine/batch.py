"""`spotting batch`: a season of games as units of work, each one resumable and written atomically.

    units = find_units(tree, out=None)           a Unit per game folder (features or half videos) or match video
    job = spot_job("nv.pt")                      or features_job("mobilenetv2-offline") for --features-only
    todo, skipped = pending(units, job)          a game whose manifest records this job and these inputs is done
    worker = BatchWorker(job, "nv.pt")           what each Ray actor holds (engine/batch_ray.py): the model, once
    record = worker.run(unit)                    {"game", "status": "done" | "failed", "error", "seconds", "pid"}

A game's outputs are written into a temporary folder inside its output folder, moved into place, and
the manifest `batch_manifest.json` (`batch_features.json` for --features-only: the job, the identity
of every input file read, the outputs' sizes) is written last. A game counts as done only when its manifest matches, so a batch killed half-way never
leaves a half-written game that a rerun would skip. A bad game fails alone: `run` returns its one-line
reason instead of raising. This module never imports Ray.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from spotting_core.errors import SpottingError
from spotting_core.io.feature_files import feature_names, feature_parts, feature_path, has_features
from spotting_core.io.remote import sha256_file
from spotting_core.io.soccernet import HALVES, LABELS_FILE, atomic_write_text
from spotting_core.io.video import VIDEO_SUFFIXES

MANIFESTS = {"spot": "batch_manifest.json", "features": "batch_features.json"}  # one per kind of job
MANIFEST_VERSION = 1
OUTPUT_ARRAYS = ("scores", "saliency", "saliency_windows", "segmentation", "offset")  # <half>_<key>.npy we write


@dataclass(frozen=True)
class Unit:
    """One game: its name in the tree, its input (a game folder or a video file) and its output folder."""

    game: str
    src: str
    out: str


# ---------------------------------------------------------------------------------------------
# Finding the games
# ---------------------------------------------------------------------------------------------
def _is_video(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith(".")


def is_game_folder(folder: Path) -> bool:
    """Labels-v2.json, a pair of `<half>_<name>.npy` features (not our outputs), or half videos (1_224p.mkv)."""
    if (folder / LABELS_FILE).is_file():
        return True
    if any(n not in OUTPUT_ARRAYS for n in feature_names(folder)):
        return True
    return any(_is_video(p) and p.name.startswith(("1_", "2_")) for p in folder.iterdir())


def find_units(tree: str | os.PathLike, out: str | os.PathLike | None = None, *,
               video_suffix: str = "_spotting") -> list[Unit]:
    """Every game of a SoccerNet-layout tree, or every match video of a folder, in path order.

    Output folders: `out/<game path>` (`out/<video path without suffix>`), or by default the game
    folder itself (SoccerNet layout) and `<video stem><video_suffix>/` next to a video (`spotting
    spot`'s `<stem>_spotting/`; --features-only: `<stem>/`, where the feature cache puts them).
    """
    root = Path(tree).resolve()                # absolute: workers may run elsewhere (shared storage)
    out = Path(out).resolve() if out is not None else None
    if not root.is_dir():
        raise SpottingError(f"{root}: not a folder (give a SoccerNet-layout tree or a folder of match videos)")
    units = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        videos = {Path(f).stem for f in files if Path(f).suffix.lower() in VIDEO_SUFFIXES}
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in videos)  # <stem>/: a video's cache
        rel = here.relative_to(root)
        if is_game_folder(here):
            dirs[:] = []
            dest = Path(out) / rel if out is not None else here
            units.append(Unit(game=rel.as_posix(), src=str(here), out=str(dest)))
            continue
        if any((here / m).is_file() for m in MANIFESTS.values()):   # an output folder of an earlier batch
            continue
        for name in sorted(files):
            video = here / name
            if _is_video(video):
                dest = Path(out) / rel / video.stem if out is not None else video.with_name(video.stem + video_suffix)
                units.append(Unit(game=(rel / name).as_posix(), src=str(video), out=str(dest)))
    if not units:
        raise SpottingError(f"{root}: no games (no folder holds {LABELS_FILE}, 1_<features>.npy + 2_<features>.npy "
                            f"or half videos, and no match video ({', '.join(VIDEO_SUFFIXES)}))")
    return units


# ---------------------------------------------------------------------------------------------
# Jobs, fingerprints and manifests
# ---------------------------------------------------------------------------------------------
def spot_job(checkpoint: str | os.PathLike, *, backbone: str | None = None, window_s: float | None = None,
             threshold: float | None = None, method: str = "hard",
             half_offset_s: float | None = None) -> dict:
    """What a spotting batch does; the checkpoint is loaded here once, so a bad one stops it early.

    The checkpoint is named by its content (SHA-256), not by its path: a moved checkpoint redoes nothing.
    """
    from spotting_core.engine.spot import load_spotter

    spotter = load_spotter(checkpoint, device="cpu")
    return {"kind": "spot", "checkpoint": {"name": Path(checkpoint).name, "sha256": sha256_file(checkpoint)},
            "features": spotter.trained, "options": {"backbone": backbone, "window_s": window_s,
                                                     "threshold": threshold, "method": method,
                                                     "half_offset_s": half_offset_s}}


def features_job(backbone: str, *, fps: float = 2.0, half_offset_s: float | None = None) -> dict:
    """Frame features of every game's videos, written as `<half>_<feature name>.npy` (--features-only)."""
    from spotting_core.features.backbones import get_backbone

    bb = get_backbone(backbone)
    return {"kind": "features", "backbone": bb.name, "feature_name": bb.feature_name, "fps": float(fps),
            "half_offset_s": half_offset_s}


def input_files(unit: Unit, job: dict) -> list[Path]:
    """The files this job reads for this game: the checkpoint's features when the folder has them, else videos."""
    src = Path(unit.src)
    if src.is_file():
        return [src]
    name = job.get("features")
    if job["kind"] == "spot" and name and has_features(src, name):
        return [feature_path(src, h, part) for part in feature_parts(name) for h in HALVES]
    from spotting_core.features.frames import game_videos

    return game_videos(src)


def fingerprint(unit: Unit, job: dict) -> dict:
    """Name -> identity (size, mtime, hash of the first and last MiB) of every input file."""
    from spotting_core.features.cache import file_identity

    return {p.name: file_identity(p) for p in input_files(unit, job)}


def read_manifest(out: str | os.PathLike, kind: str = "spot") -> dict | None:
    try:
        data = json.loads((Path(out) / MANIFESTS[kind]).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_done(unit: Unit, job: dict) -> bool:
    """The manifest records this job and these inputs, and every output it lists is there, whole."""
    m = read_manifest(unit.out, job["kind"])
    if not m or m.get("version") != MANIFEST_VERSION or m.get("job") != job:
        return False
    outputs = m.get("outputs") or {}
    if not outputs or any(not (Path(unit.out) / n).is_file() or (Path(unit.out) / n).stat().st_size != size
                          for n, size in outputs.items()):
        return False
    from spotting_core.features.cache import file_identity

    recorded = m.get("input") or {}
    src = Path(unit.src)
    try:   # the files it read then (a video game's features cached since do not make it new)
        return bool(recorded) and all(file_identity(src if src.is_file() else src / name) == identity
                                      for name, identity in recorded.items())
    except OSError:
        return False


def pending(units: list[Unit], job: dict) -> tuple[list[Unit], list[Unit]]:
    """(games to run, games already done)."""
    done = [u for u in units if is_done(u, job)]
    finished = set(done)
    return [u for u in units if u not in finished], done


def commit(unit: Unit, job: dict, inputs: dict, write, *, started: float) -> None:
    """`write(folder)` into a temporary folder, move each file into `unit.out`, then the manifest, last."""
    out, manifest_file = Path(unit.out), Path(unit.out) / MANIFESTS[job["kind"]]
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".batch-*"):         # what a killed worker left
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=".batch-", dir=out))
    try:
        write(tmp)
        names = sorted(p.name for p in tmp.iterdir() if p.is_file())
        old = (read_manifest(out, job["kind"]) or {}).get("outputs") or {}
        manifest_file.unlink(missing_ok=True)   # from here until the new manifest the game is not done
        for name in names:
            os.replace(tmp / name, out / name)
        for name in set(old) - set(names) - set(inputs):
            (out / name).unlink(missing_ok=True)   # an earlier job's output this one does not write
        manifest = {"version": MANIFEST_VERSION, "job": job, "input": inputs, "source": unit.src,
                    "outputs": {n: (out / n).stat().st_size for n in names},
                    "seconds": round(time.perf_counter() - started, 3), "host": socket.gethostname(),
                    "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        atomic_write_text(manifest_file, json.dumps(manifest, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# The worker
# ---------------------------------------------------------------------------------------------
def _quiet(fraction: float, text: str) -> None:
    """A progress callback that shows nothing (no progress bars inside workers)."""


def one_line(e: BaseException) -> str:
    if isinstance(e, SpottingError):
        return str(e)
    text = (str(e).strip().splitlines() or [""])[0][:200]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


class BatchWorker:
    """Holds the model (or the frame backbone) once; `run(unit)` does one game and never raises."""

    def __init__(self, job: dict, checkpoint: str | None = None, *, device: str | None = None,
                 threads: int | None = None):
        import torch

        if threads:
            torch.set_num_threads(int(threads))
        self.job, self.device = job, device
        self.networks = {}   # frame backbones loaded once per worker (features jobs, video spotting)
        if job["kind"] == "spot":
            from spotting_core.engine.spot import load_spotter

            if checkpoint is None or not Path(checkpoint).is_file():
                raise SpottingError(f"{checkpoint}: checkpoint not found on {socket.gethostname()}; on a cluster "
                                    "put it, the tree and the output on storage every machine sees")
            if sha256_file(checkpoint) != job["checkpoint"]["sha256"]:
                raise SpottingError(f"{checkpoint}: on {socket.gethostname()} this file differs from the one "
                                    "the batch was started with")
            self.spotter = load_spotter(checkpoint, device=device)
        else:
            from spotting_core.features.backbones import get_backbone, load_network

            self.backbone = get_backbone(job["backbone"])
            self.networks[self.backbone.name] = load_network(self.backbone, device=device)

    def info(self) -> dict:
        return {"pid": os.getpid(), "host": socket.gethostname(),
                "device": str(self.spotter.device) if self.job["kind"] == "spot" else str(self.device or "auto")}

    def run(self, unit: Unit) -> dict:
        started = time.perf_counter()
        record = {"game": unit.game, "out": unit.out, "pid": os.getpid()}
        try:
            inputs = fingerprint(unit, self.job)   # before reading: a file changed meanwhile is redone next time
            write = self._spot(unit) if self.job["kind"] == "spot" else self._features(unit)
            commit(unit, self.job, inputs, write, started=started)
            record.update(status="done", error=None)
        except Exception as e:  # one game's failure is its own: reported, never raised
            record.update(status="failed", error=one_line(e))
        record["seconds"] = time.perf_counter() - started
        return record

    def _spot(self, unit: Unit):
        from spotting_core.engine.inference import write_outputs
        from spotting_core.engine.spot import spot_input

        events, arrays, _ = spot_input(self.spotter, unit.src, progress=_quiet, networks=self.networks,
                                       **self.job["options"])
        return lambda folder: write_outputs(folder, events, arrays, url_local=unit.src)

    def _features(self, unit: Unit):
        """The features land in the videos' feature cache (resumable per piece, and `spotting spot` of
        that video finds them), then are placed in the game's output folder with their cache sidecars."""
        from spotting_core.features.cache import place_array
        from spotting_core.features.extract import cached_files, extract_cached
        from spotting_core.features.frames import game_videos

        src = Path(unit.src)
        videos = [src] if src.is_file() else game_videos(src)
        options = {"backbone": self.backbone.name, "fps": self.job["fps"], "half_offset_s": self.job["half_offset_s"]}
        extract_cached(videos, device=self.device, networks=self.networks, progress=_quiet, **options)
        cached = [npy for *_, npy in cached_files(videos, **options)]

        def write(folder: Path) -> None:
            for npy in cached:
                place_array(npy, folder)
        return write
