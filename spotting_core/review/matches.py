"""What the review app needs besides widgets: where files live, opening matches, charts, media URLs.

    cache_dir(), media_root()            configured by SPOTTING_CACHE / SPOTTING_MEDIA_ROOT
    confine(text)                        a user-typed path, refused if it leaves the media root
    media_routes(), media_url(path)      serve the media root and the cache over HTTP (Range requests)
    Match                                a results folder: results_spotting.json, per-frame arrays, match.json
    open_results_folder / open_game_folder / open_video    -> Match (spotting cached by input and checkpoint)
    timeline_figure(...)                 plotly WebGL chart: confidence per class, events, saliency
    salient_frames(...), grab_frames(...) the thumbnails strip of the most salient frames around an event

No streamlit here (pages import this). torch is only imported inside the functions that run a model.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

from spotting_core.errors import SpottingError
from spotting_core.io.soccernet import CLASSES_V2, FPS, LABELS_FILE, RESULTS_FILE, atomic_write_text
from spotting_core.io.tables import read_labels, read_results

ENV_CACHE = "SPOTTING_CACHE"
ENV_MEDIA_ROOT = "SPOTTING_MEDIA_ROOT"
ENV_MAX_UPLOAD_MB = "SPOTTING_MAX_UPLOAD_MB"
MEDIA_PREFIX = "/media-files"
MATCH_FILE = "match.json"
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v")
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".tar")
REPO_ASSETS = Path(__file__).resolve().parents[2] / "assets"

Progress = Callable[[float, str], None]


# ---------------------------------------------------------------------------------------------
# Where things live
# ---------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """The app's own files (demo, results, reels, uploads, review store): $SPOTTING_CACHE or ~/.cache/spotting."""
    env = os.environ.get(ENV_CACHE)
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "spotting"
    base.mkdir(parents=True, exist_ok=True)
    return base.resolve()


def media_root() -> Path:
    """The only folder whose files users may open by typing a path: $SPOTTING_MEDIA_ROOT or the cwd."""
    return Path(os.environ.get(ENV_MEDIA_ROOT) or Path.cwd()).expanduser().resolve()


def max_upload_mb() -> int:
    try:
        return max(1, int(os.environ.get(ENV_MAX_UPLOAD_MB, "200")))
    except ValueError:
        return 200


def review_store_path() -> Path:
    return cache_dir() / "review.sqlite"


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


# ---------------------------------------------------------------------------------------------
# Media over HTTP
# ---------------------------------------------------------------------------------------------
_MOUNTS: dict[str, Path] = {}


def media_routes() -> list:
    """Starlette mounts for st.App: /media-files/root -> the media root, /media-files/cache -> the cache.

    StaticFiles answers Range requests (206), so a browser seeks in a 2 GB match without the server
    reading the file into memory; it also refuses paths that leave the mounted folder.
    """
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    _MOUNTS.clear()
    _MOUNTS.update({"cache": cache_dir(), "root": media_root()})
    return [Mount(f"{MEDIA_PREFIX}/{name}", app=StaticFiles(directory=str(path), check_dir=False), name=f"media-{name}")
            for name, path in _MOUNTS.items()]


def media_mounted() -> bool:
    """True when this process serves the media routes (under `streamlit run app.py`; not in AppTest)."""
    return bool(_MOUNTS)


def media_url(path: str | os.PathLike) -> str | None:
    """The URL of a file under a mounted folder, or None when no mount holds it."""
    path = Path(path).resolve()
    mounts = _MOUNTS or {"cache": cache_dir(), "root": media_root()}
    for name, root in mounts.items():
        if root == path or root in path.parents:
            rel = path.relative_to(root).as_posix()
            return f"{MEDIA_PREFIX}/{name}/{quote(rel)}"
    return None


# ---------------------------------------------------------------------------------------------
# Matches
# ---------------------------------------------------------------------------------------------
@dataclass
class Match:
    """One opened match: a folder with results_spotting.json (+ <half>_scores.npy...) and match.json."""

    folder: str
    name: str
    kind: str = "results"                                 # demo | game | results | video
    videos: dict[str, str] = field(default_factory=dict)  # half ("1"/"2") -> video file
    video_offsets: dict[str, float] = field(default_factory=dict)  # half -> seconds into that file
    labels: str | None = None
    checkpoint: str | None = None
    synthetic: bool = False
    source: str = ""

    @property
    def match_id(self) -> str:
        return hashlib.sha1(str(Path(self.folder).resolve()).encode()).hexdigest()[:16]

    def save(self) -> Path:
        return atomic_write_text(Path(self.folder) / MATCH_FILE, json.dumps(asdict(self), indent=2))

    def video(self, half: int) -> tuple[Path, float] | None:
        """The video holding `half` and the second in it where the half starts, or None."""
        path = self.videos.get(str(half))
        if not path:
            return None
        return Path(path), float(self.video_offsets.get(str(half), 0.0))


def _find_videos(folder: Path) -> dict[str, str]:
    videos = {}
    for half in ("1", "2"):
        hits = sorted(p for p in folder.glob(f"{half}*") if p.suffix.lower() in VIDEO_SUFFIXES
                      and re.match(rf"^{half}([_.-]|$)", p.stem + "."))
        if hits:
            videos[half] = str(hits[0])
    return videos


def open_results_folder(folder: str | os.PathLike) -> Match:
    """A folder written by `spotting spot` (or by this app): results_spotting.json and friends."""
    folder = Path(folder)
    if not (folder / RESULTS_FILE).is_file():
        raise SpottingError(f"{folder}: no {RESULTS_FILE} (pick a folder written by `spotting spot`)")
    meta_path = folder / MATCH_FILE
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
            meta["folder"] = str(folder)
            match = Match(**meta)
        except (json.JSONDecodeError, TypeError) as e:
            raise SpottingError(f"{meta_path}: malformed match file ({e})") from None
    else:
        labels = folder / LABELS_FILE
        match = Match(folder=str(folder), name=folder.name, kind="results", videos=_find_videos(folder),
                      labels=str(labels) if labels.is_file() else None, source=str(folder))
    read_results(folder / RESULTS_FILE)  # fail now, with the file's name, if it is malformed
    if match.labels:
        read_labels(match.labels)
    return match


def _fingerprint(*paths: Path, extra: str = "") -> str:
    h = hashlib.sha1(extra.encode())
    for p in paths:
        st = p.stat()
        h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def _checkpoint_meta(checkpoint: Path) -> dict:
    from spotting_core.models import read_checkpoint

    ckpt = read_checkpoint(checkpoint)
    return {k: v for k, v in ckpt.items() if k != "state_dict"}


def open_game_folder(game_dir: str | os.PathLike, checkpoint: str | os.PathLike, *,
                     progress: Progress | None = None, rebuild: bool = False) -> Match:
    """A SoccerNet game folder (1_<features>.npy, 2_<features>.npy, maybe Labels-v2.json, videos).

    Spotted by `spot.spot_path` (as `spotting spot`); the results are cached under the cache folder by
    (features, checkpoint), so reopening is instant.
    """
    from spotting_core.io.feature_files import feature_names, feature_path

    game_dir, checkpoint = Path(game_dir), Path(checkpoint)
    if not game_dir.is_dir():
        raise SpottingError(f"{game_dir}: not a folder")
    if not feature_names(game_dir):
        raise SpottingError(f"{game_dir}: no feature files (1_<name>.npy and 2_<name>.npy)")
    trained = _checkpoint_meta(checkpoint).get("features", {}).get("name", "")
    files = [p for p in (feature_path(game_dir, h, trained) for h in (1, 2)) if p.is_file()]
    key = _fingerprint(*files, checkpoint, extra=f"{game_dir.resolve()}|{trained}")
    out = cache_dir() / "results" / key
    labels = game_dir / LABELS_FILE
    match = Match(folder=str(out), name=game_dir.name, kind="game", videos=_find_videos(game_dir),
                  labels=str(labels) if labels.is_file() else None, checkpoint=str(checkpoint),
                  source=str(game_dir))
    if match.labels:
        read_labels(match.labels)  # a malformed labels file is reported before any spotting
    if rebuild or not (out / RESULTS_FILE).is_file():
        from spotting_core.engine.spot import spot_path

        spot_path(game_dir, checkpoint=checkpoint, out_dir=out, progress=progress)
    match.save()
    return match


def open_video(video: str | os.PathLike, checkpoint: str | os.PathLike, *, half2_offset_s: float | None = None,
               progress: Progress | None = None, rebuild: bool = False) -> Match:
    """A match video: probe it, extract (cached) features, spot; half 2 starts at half2_offset_s if given."""
    from spotting_core.io.video import probe

    video, checkpoint = Path(video), Path(checkpoint)
    probe(video)  # a corrupt or unreadable video fails here with its name
    _checkpoint_meta(checkpoint)  # so does a bad checkpoint, before any feature extraction
    key = _fingerprint(video, checkpoint, extra=f"{half2_offset_s}")
    out = cache_dir() / "results" / key
    if rebuild or not (out / RESULTS_FILE).is_file():
        from spotting_core.engine.spot import spot_path

        spot_path(video, checkpoint=checkpoint, out_dir=out, half_offset_s=half2_offset_s, progress=progress)
    videos = {"1": str(video)}
    offsets = {"1": 0.0}
    if half2_offset_s is not None:
        videos["2"], offsets["2"] = str(video), float(half2_offset_s)
    match = Match(folder=str(out), name=video.stem, kind="video", videos=videos, video_offsets=offsets,
                  checkpoint=str(checkpoint), source=str(video))
    match.save()
    if progress:
        progress(1.0, "done")
    return match


def load_events(match: Match) -> pd.DataFrame:
    return read_results(Path(match.folder) / RESULTS_FILE)


def load_labels(match: Match) -> pd.DataFrame | None:
    return read_labels(match.labels) if match.labels else None


def load_arrays(match: Match) -> dict[int, dict[str, np.ndarray]]:
    """Per-half arrays written next to the results: {half: {"scores": (T, C), "saliency": (T,), ...}}."""
    arrays: dict[int, dict[str, np.ndarray]] = {}
    for path in sorted(Path(match.folder).glob("[12]_*.npy")):
        half, key = int(path.name[0]), path.stem[2:]
        if key not in ("scores", "saliency", "saliency_windows"):
            continue
        try:
            arrays.setdefault(half, {})[key] = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as e:
            raise SpottingError(f"{path}: not a readable .npy array ({e})") from None
    return arrays


# ---------------------------------------------------------------------------------------------
# The timeline chart
# ---------------------------------------------------------------------------------------------
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d")


def class_color(class_id: int) -> str:
    return PALETTE[int(class_id) % len(PALETTE)]


def downsample_max(values: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the maximum of each bucket at its own frame: peaks survive, (T,) -> (<= max_points,)."""
    values = np.asarray(values, dtype=np.float32)
    T = len(values)
    if T <= max_points:
        return np.arange(T), values
    step = int(np.ceil(T / max_points))
    n = int(np.ceil(T / step))
    padded = np.full(n * step, -np.inf, dtype=np.float32)
    padded[:T] = values
    buckets = padded.reshape(n, step)                 # (n, step)
    arg = buckets.argmax(axis=1)
    frames = np.arange(n) * step + arg
    return frames, buckets[np.arange(n), arg]


def timeline_figure(*, arrays: dict[str, np.ndarray] | None, events: pd.DataFrame, labels: pd.DataFrame | None,
                    half: int, classes: Iterable[str], all_classes: Sequence[str] = CLASSES_V2, fps: float = FPS,
                    max_points: int = 1200, selected_event: int | None = None):
    """The per-class confidence chart of one half (minutes on x) with events, labels and saliency.

    Every trace is WebGL (Scattergl) and each curve is max-downsampled to `max_points`, so a
    90-minute half with 17 classes stays light. Curves have small markers so a click on them selects
    a point; detected events carry their event id in customdata.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    classes = [c for c in classes if c in all_classes]
    saliency = arrays.get("saliency") if arrays else None
    rows = 2 if saliency is not None else 1
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        row_heights=[0.72, 0.28] if rows == 2 else [1.0])
    scores = arrays.get("scores") if arrays else None
    if scores is not None:
        for name in classes:
            c = list(all_classes).index(name)
            if c >= scores.shape[1]:
                continue
            frames, ys = downsample_max(scores[:, c], max_points)
            fig.add_trace(go.Scattergl(
                x=frames / fps / 60.0, y=ys, mode="lines+markers", name=name, legendgroup=name,
                line={"width": 1.2, "color": class_color(c)}, marker={"size": 3, "color": class_color(c)},
                hovertemplate=f"{name}<br>%{{x:.2f}} min<br>confidence %{{y:.2f}}<extra></extra>",
            ), row=1, col=1)
    ev = events[(events["half"] == half) & events["label"].isin(classes)]
    if len(ev):
        ids = ev["event_id"] if "event_id" in ev else ev.index
        status = ev["status"] if "status" in ev else pd.Series("pending", index=ev.index)
        symbols = status.map({"accepted": "star", "rejected": "x", "pending": "triangle-up"}).fillna("triangle-up")
        sizes = np.where(np.asarray(ids) == selected_event, 16, 10)
        fig.add_trace(go.Scattergl(
            x=ev["position_ms"] / 60000.0, y=ev["confidence"], mode="markers", name="detected events",
            marker={"size": sizes, "symbol": list(symbols), "color": [class_color(c) for c in ev["class_id"]],
                    "line": {"width": 1, "color": "#222"}},
            # plain lists: numpy arrays travel as binary blobs that selection events do not decode
            customdata=[[int(i), int(p)] for i, p in zip(ids, ev["position_ms"])],
            text=[f"{lbl} ({st})" for lbl, st in zip(ev["label"], status)],
            hovertemplate="%{text}<br>%{x:.2f} min<br>confidence %{y:.2f}<extra>event</extra>",
        ), row=1, col=1)
    if labels is not None and len(labels):
        gt = labels[(labels["half"] == half) & labels["label"].isin(classes)]
        if len(gt):
            fig.add_trace(go.Scattergl(
                x=gt["position_ms"] / 60000.0, y=np.full(len(gt), 1.06), mode="markers", name="ground truth",
                marker={"size": 9, "symbol": "diamond", "color": [class_color(c) for c in gt["class_id"]]},
                text=list(gt["label"]), hovertemplate="%{text} (label)<br>%{x:.2f} min<extra>ground truth</extra>",
            ), row=1, col=1)
    if saliency is not None:
        frames, ys = downsample_max(np.asarray(saliency), max_points)
        fig.add_trace(go.Scattergl(
            x=frames / fps / 60.0, y=ys, mode="lines+markers", name="frame saliency", fill="tozeroy",
            line={"width": 1, "color": "#555"}, marker={"size": 2, "color": "#555"},
            hovertemplate="saliency %{y:.3f}<br>%{x:.2f} min<extra></extra>",
        ), row=2, col=1)
        fig.update_yaxes(title_text="saliency", row=2, col=1)
    fig.update_yaxes(title_text="confidence", range=[0, 1.12], row=1, col=1)
    fig.update_xaxes(title_text=f"half {half}, minutes", row=rows, col=1)
    fig.update_layout(height=560 if rows == 2 else 420, margin={"l": 40, "r": 10, "t": 30, "b": 40},
                      legend={"orientation": "v", "x": 1.01, "y": 1.0, "font": {"size": 11}}, uirevision=f"half-{half}", clickmode="event+select",
                      hovermode="closest", dragmode="zoom")
    return fig


# ---------------------------------------------------------------------------------------------
# Saliency thumbnails (the saliency paper's Fig. 5)
# ---------------------------------------------------------------------------------------------
def salient_frames(arrays: dict[str, np.ndarray], frame: int, *, k: int = 6, radius_s: float = 15.0,
                   fps: float = FPS) -> list[tuple[int, float]]:
    """The k most salient frames around `frame`: (frame, weight), in time order.

    With per-window saliency (T, W) these are the weights the model gave the frames of the window
    centred on the event; otherwise the per-frame saliency within +-radius_s.
    """
    windows = arrays.get("saliency_windows")
    if windows is not None and len(windows):
        t = int(np.clip(frame, 0, len(windows) - 1))
        w = np.asarray(windows[t], dtype=np.float64)  # (W,)
        W = len(w)
        frames = t - W // 2 + np.arange(W)
        ok = (frames >= 0) & (frames < len(windows))
        frames, w = frames[ok], w[ok]
    elif arrays.get("saliency") is not None:
        sal = np.asarray(arrays["saliency"], dtype=np.float64)
        r = int(radius_s * fps)
        lo, hi = max(0, frame - r), min(len(sal), frame + r + 1)
        frames, w = np.arange(lo, hi), sal[lo:hi]
    else:
        return []
    top = np.argsort(-w, kind="stable")[:k]
    return sorted((int(frames[i]), float(w[i])) for i in top)


def grab_frames(video: str | os.PathLike, seconds: Sequence[float], *, width: int = 224) -> list[np.ndarray]:
    """RGB frames of a video at the given seconds (nearest frame), resized to `width`."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise SpottingError(f"{video}: cannot open the video")
    out = []
    try:
        for s in seconds:
            cap.set(cv2.CAP_PROP_POS_MSEC, max(0.0, float(s)) * 1000.0)
            ok, frame = cap.read()
            if not ok:
                raise SpottingError(f"{video}: no frame at {s:.1f} s (shorter than the features, or corrupt)")
            h, w = frame.shape[:2]
            frame = cv2.resize(frame, (width, max(1, int(h * width / w))), interpolation=cv2.INTER_AREA)
            out.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    return out


# ---------------------------------------------------------------------------------------------
# Models and checkpoints
# ---------------------------------------------------------------------------------------------
def checkpoint_dirs() -> list[Path]:
    return [REPO_ASSETS, cache_dir() / "checkpoints", media_root()]


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
            meta = _checkpoint_meta(p)
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
