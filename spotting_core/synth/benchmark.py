"""A synthetic SoccerNet-v2 benchmark whose difficulty is real.

Real SoccerNet features cannot be downloaded here, so `generate()` writes a tree with the official
layout that every model, the training loop and the metric can run on:

    out/synth.json                                   how it was made (seed, feature name, splits)
    out/<split>/<league>/<season>/<game>/Labels-v2.json
    out/<split>/<league>/<season>/<game>/1_synth512.npy, 2_synth512.npy    (T, D) float32, 2 fps

with <split> in train / valid / test (`spotting_core.engine.games.find_splits` reads those folders).

What makes it hard, and why temporal context matters:
- Timelines: the events of real Labels-v2.json files when `timelines` is given (class frequencies,
  clusters such as a ball out of play followed by a throw-in, unshown events), otherwise drawn from
  `CLASS_STATS`, the per-game rates and "not shown" shares of the 200 SoccerNet-v2 valid and test
  games.
- Every class leaves a signature before its timestamp and another after it (`recipe.SIGNATURES`): each
  is one of a small vocabulary of "motifs" (an attack, a whistle, a ball going out...), a sparse
  direction of feature space. Classes share motifs: Goal, Shots on and off target and Ball out of
  play share their pre-event context and differ after it. Five pairs, each play stopping and play
  restarting (Ball out of play / Throw-in, Foul / Penalty, Corner / Clearance, Goal / Kick-off,
  Offside / Indirect free-kick), use the same two motifs in opposite orders, so a frame-wise
  max-pool over a window (which sees the set of motifs, not their order) cannot tell them apart;
  a model that knows what came before and what came after the centre can.
- Unshown events ("not shown", e.g. during a replay) carry only the after-context, weaker.
- Per event: random amplitude, duration and a frame of timing jitter; per game: a perturbed copy
  of the motifs (a different broadcaster).
- Distractors: motifs that appear with no event (an attack that leads nowhere).
- Background: a slow drift (low-rank, ~20 s correlation), camera cuts that switch between shot
  types (wide, close-up, crowd...), with cuts more frequent around events, and per-frame noise.

Deterministic per seed; one 45-minute game takes a few hundredths of a second.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from spotting_core.errors import SpottingError
from spotting_core.io.feature_files import feature_path
from spotting_core.io.soccernet import (
    CLASSES_V2,
    FPS,
    HALVES,
    LABELS_FILE,
    atomic_write_text,
    frame_of,
    list_games,
)
from spotting_core.io.tables import labels_to_dict, read_labels
from spotting_core.synth.recipe import CLASS_STATS, MOTIFS, SIGNATURES, SynthParams

SPLITS = ("train", "valid", "test")
SPLIT_SHARES = (0.6, 0.2, 0.2)
INFO_FILE = "synth.json"


def feature_name(dim: int = 512) -> str:
    """The feature file suffix of a synthetic tree: `1_<name>.npy`."""
    return f"synth{int(dim)}"


# ---------------------------------------------------------------------------------------------
# Timelines
# ---------------------------------------------------------------------------------------------
def _builtin_timeline(rng: np.random.Generator, half_frames: int) -> pd.DataFrame:
    """Events of one game drawn from CLASS_STATS: Poisson counts, uniform times, a kick-off per half."""
    rows = []
    half_ms = half_frames / FPS * 1000
    for half in HALVES:
        rows.append((half, int(rng.uniform(0, 2000)), "Kick-off", "visible"))
        for label, (per_game, unshown) in CLASS_STATS.items():
            rate = per_game / 2 - (1.0 if label == "Kick-off" else 0.0)
            n = rng.poisson(max(rate, 0.0) * half_ms / (45 * 60 * 1000))
            for pos in rng.uniform(0, half_ms, size=n):
                rows.append((half, int(pos), label, "not shown" if rng.random() < unshown else "visible"))
    df = pd.DataFrame(rows, columns=["half", "position_ms", "label", "visibility"])
    return df


def _timeline_sources(timelines: str | os.PathLike) -> list[Path]:
    root = Path(timelines)
    games = list_games(root, LABELS_FILE)
    if not games:
        raise SpottingError(f"{root}: no {LABELS_FILE} files to take timelines from")
    return [root / g for g in games]


# ---------------------------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------------------------
def _sparse_directions(rng: np.random.Generator, n: int, dim: int, support: int, norm: float) -> np.ndarray:
    """n directions of `norm`, each on `support` random dimensions: (n, dim)."""
    support = max(1, min(support, dim))
    out = np.zeros((n, dim), dtype=np.float64)
    for i in range(n):
        idx = rng.choice(dim, size=support, replace=False)
        v = rng.standard_normal(support)
        out[i, idx] = v / np.linalg.norm(v) * norm
    return out


def _smooth_noise(rng: np.random.Generator, T: int, rank: int, sigma_frames: float) -> np.ndarray:
    """(T, rank) Gaussian-smoothed white noise with unit variance per column."""
    radius = int(3 * sigma_frames)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_frames) ** 2)
    kernel /= np.sqrt((kernel ** 2).sum())
    white = rng.standard_normal((T + 2 * radius, rank))
    return np.stack([np.convolve(white[:, r], kernel, mode="valid") for r in range(rank)], axis=1)


def _ramp(n: int, start: float, end: float) -> np.ndarray:
    return np.linspace(start, end, n) if n > 1 else np.full(n, end)


def synth_half(rng: np.random.Generator, *, T: int, frames: np.ndarray, classes: np.ndarray,
               visible: np.ndarray, motifs: np.ndarray, shots: np.ndarray, drift_basis: np.ndarray,
               params: SynthParams) -> np.ndarray:
    """(T, D) float32 features of one half with these events (frame, class id, visible)."""
    p = params
    K, D = motifs.shape
    motif_index = {m: i for i, m in enumerate(MOTIFS)}
    act = np.zeros((T, K), dtype=np.float64)  # motif activations over time

    # events: before-context ramps up to the timestamp, after-context decays from it
    for f, c, vis in zip(frames, classes, visible):
        before, after = (motif_index[m] for m in SIGNATURES[CLASSES_V2[int(c)]])
        t0 = int(f) + int(np.round(rng.normal(0.0, p.timing_jitter_frames)))
        amp = rng.uniform(*p.amplitude_range)
        n_pre = max(1, int(round(p.pre_s * FPS * rng.uniform(1 - p.duration_jitter, 1 + p.duration_jitter))))
        n_post = max(1, int(round(p.post_s * FPS * rng.uniform(1 - p.duration_jitter, 1 + p.duration_jitter))))
        if vis:
            a, b = max(t0 - n_pre, 0), min(max(t0, 0), T)
            if b > a:
                act[a:b, before] += amp * _ramp(n_pre, 0.3, 1.0)[n_pre - (b - a):]
        else:
            amp *= p.unshown_gain
        a, b = max(t0, 0), min(t0 + n_post, T)
        if b > a:
            act[a:b, after] += amp * _ramp(n_post, 1.0, 0.3)[a - t0:b - t0]

    # distractors: a motif with no event around it
    n_distract = rng.poisson(p.distractors_per_min * T / FPS / 60)
    for _ in range(n_distract):
        k = rng.integers(K)
        n = int(rng.integers(int(2 * FPS), int(6 * FPS) + 1))
        t0 = int(rng.integers(0, T))
        b = min(t0 + n, T)
        act[t0:b, k] += rng.uniform(*p.distractor_gain) * np.hanning(n + 2)[1:-1][: b - t0]

    # camera cuts: shot types switching, plus extra cuts around events
    gaps = rng.exponential(p.shot_mean_s * FPS, size=int(T / (p.shot_mean_s * FPS) * 2) + 8)
    cuts = np.cumsum(np.maximum(gaps, 2.0)).astype(np.int64)
    near = frames[rng.random(len(frames)) < p.cut_near_event]
    near = near + rng.integers(-4 * int(FPS), 4 * int(FPS) + 1, size=len(near))
    cuts = np.unique(np.concatenate([cuts[cuts < T], np.clip(near, 1, T - 1)]).astype(np.int64))
    shot_of_segment = rng.integers(0, len(shots), size=len(cuts) + 1)
    jitter = rng.standard_normal((len(cuts) + 1, D)) * 0.3
    segment = np.searchsorted(cuts, np.arange(T), side="right")  # (T,) index of the shot of each frame

    x = rng.standard_normal((T, D)) * p.noise                                   # (T, D)
    x += act @ motifs                                                           # (T, K) @ (K, D)
    x += shots[shot_of_segment[segment]] + jitter[segment]                      # (T, D)
    x += _smooth_noise(rng, T, drift_basis.shape[0], p.drift_s * FPS) @ drift_basis  # (T, r) @ (r, D)
    return x.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# The tree
# ---------------------------------------------------------------------------------------------
def split_sizes(games: int) -> tuple[int, int, int]:
    """(train, valid, test) game counts: games 0.. are train, then valid, then test."""
    if games < 3:
        raise SpottingError(f"--games {games}: need at least 3 games (one each for train, valid and test)")
    n_valid = max(1, int(round(games * SPLIT_SHARES[1])))
    n_test = max(1, int(round(games * SPLIT_SHARES[2])))
    return games - n_valid - n_test, n_valid, n_test


def generate(out: str | os.PathLike, *, games: int, seed: int, timelines: str | os.PathLike | None = None,
             half_minutes: float = 45.0, dim: int = 512, params: SynthParams | None = None,
             progress: Callable[[float, str], None] | None = None, only: Sequence[int] | None = None) -> Path:
    """Write a synthetic SoccerNet-layout tree under `out` (see the module docstring); returns `out`.

    only: write just these game indices (the others are left out of the tree and of synth.json);
    each game written is the same as in the whole tree, for a game depends on the seed and its index.

    Halves last `half_minutes`; events of real timelines past that are left out. With real
    timelines, game i takes the timeline of the i-th file of a seeded shuffle (cycling when there
    are more games than files) and keeps its league/season/game path (with a suffix on reuse).
    """
    params = params or SynthParams()
    if dim < 8:
        raise SpottingError(f"--dim {dim}: feature dimension must be at least 8")
    if half_minutes <= 0:
        raise SpottingError(f"--half-minutes {half_minutes}: must be positive")
    sizes = split_sizes(int(games))
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SpottingError(f"{out}: exists and is not a folder")

    rng = np.random.default_rng(seed)
    K = len(MOTIFS)
    motifs = _sparse_directions(rng, K, dim, params.motif_support, params.motif_norm)
    shots = _sparse_directions(rng, params.shot_types, dim, dim // 4, params.shot_norm)
    drift_basis = rng.standard_normal((params.drift_rank, dim)) * params.drift_norm / np.sqrt(dim * params.drift_rank)

    sources = _timeline_sources(timelines) if timelines is not None else []
    order = rng.permutation(len(sources)) if sources else np.zeros(0, dtype=np.int64)
    split_of = np.repeat(np.arange(3), sizes)
    T = max(1, int(round(half_minutes * 60 * FPS)))
    name = feature_name(dim)
    written = {s: [] for s in SPLITS}
    class_id = {c: i for i, c in enumerate(CLASSES_V2)}

    wanted = range(int(games)) if only is None else sorted({int(g) for g in only if 0 <= int(g) < int(games)})
    for n, g in enumerate(wanted):
        grng = np.random.default_rng([int(seed), g])
        if sources:
            src = sources[order[g % len(sources)]]
            labels = read_labels(src / LABELS_FILE)
            rel = src.relative_to(Path(timelines)).as_posix()
            if g >= len(sources):
                rel = f"{rel} (copy {g // len(sources)})"
            url = rel
        else:
            labels = _builtin_timeline(grng, T)
            rel = f"synthetic-league/season-{seed}/game-{g:03d}"
            url = rel
        labels = labels[frame_of(labels["position_ms"].to_numpy()) < T].reset_index(drop=True)
        if "team" not in labels:
            labels["team"] = np.where(grng.random(len(labels)) < 0.5, "home", "away")

        # each game's broadcaster sees the motifs a little differently
        wobble = _sparse_directions(grng, K, dim, params.motif_support, params.motif_norm)
        game_motifs = motifs + params.game_perturbation * wobble

        split = SPLITS[split_of[g]]
        game_dir = out / split / rel
        game_dir.mkdir(parents=True, exist_ok=True)
        for half in HALVES:
            sel = labels[labels["half"] == half]
            feats = synth_half(
                grng, T=T, frames=frame_of(sel["position_ms"].to_numpy()),
                classes=sel["label"].map(class_id).to_numpy(),
                visible=(sel["visibility"] != "not shown").to_numpy(),
                motifs=game_motifs, shots=shots, drift_basis=drift_basis, params=params)
            dest = feature_path(game_dir, half, name)
            tmp = dest.with_name(f".{dest.stem}.tmp.npy")
            np.save(tmp, feats)
            os.replace(tmp, dest)
        atomic_write_text(game_dir / LABELS_FILE, json.dumps(labels_to_dict(labels, url_local=url), indent=2))
        written[split].append(rel)
        if progress:
            progress((n + 1) / len(wanted), f"game {n + 1}/{len(wanted)}")

    info = {"seed": int(seed), "games": int(games), "feature_name": name, "dim": int(dim), "fps": FPS,
            "half_minutes": float(half_minutes), "timelines": str(timelines) if timelines is not None else None,
            "splits": written, "params": asdict(params)}
    atomic_write_text(out / INFO_FILE, json.dumps(info, indent=2))
    return out


def motif_signature(feats: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Projection of (T, D) features on a unit `direction`: how strongly a motif is present per frame."""
    d = np.asarray(direction, dtype=np.float64)
    return np.asarray(feats, dtype=np.float64) @ (d / np.linalg.norm(d))


def motif_directions(*, seed: int, dim: int = 512, params: SynthParams | None = None) -> dict[str, np.ndarray]:
    """The shared (not per-game) motif directions a tree of this seed was built from."""
    params = params or SynthParams()
    rng = np.random.default_rng(seed)
    motifs = _sparse_directions(rng, len(MOTIFS), dim, params.motif_support, params.motif_norm)
    return dict(zip(MOTIFS, motifs))
