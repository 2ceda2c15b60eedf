"""Training: `TrainConfig` + `fit()`, with early stopping on validation Average-mAP.

    cfg = TrainConfig(model="netvlad++", data="SoccerNet/", features="ResNET_TF2_PCA512", out="nv.pt")
    result = fit(cfg)          {"history": [...], "best_epoch", "best_valid_a_mAP", "checkpoint", "test"}

One loop for every model, through the contract of models/base.py only (it never looks at a model's
name): clips from `engine.sampler.ClipSampler` in the order of `model.epoch_clips`, `model.augment`, `model.loss`
(every term is logged; "loss" is back-propagated), Adam, ReduceLROnPlateau on the validation
Average-mAP, early stopping after `patience` evaluations without improvement, and the best model
on validation saved with `models.save_checkpoint`. Validation runs the real inference
(`inference.spot_game`: sliding windows + NMS) on the validation games and scores it with
`metrics.average_map`.

Defaults left as None come from `model.training_defaults()`: the model's Config when it has the field
(`lr`, `batch_size`, `epochs`, `patience`: the paper's values), otherwise `models.base.TRAINING_DEFAULTS`.
The optimizer and the learning rate schedule too (`make_optimizer`): Adam + ReduceLROnPlateau unless
the Config names others.
A model whose `input_kind` is "frames" (end to end) trains on the games' videos, decoded at its
input height (`input_dim`) through `spotting_core.features.frames`, instead of feature files.
Feature files are memory-mapped (`mmap`, default): peak memory is about one batch + the model + one
validation game, whatever the number of games (`bench/train_memory.py`).
"""

from __future__ import annotations

import dataclasses
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from spotting_core.engine.calibrate import fit_thresholds
from spotting_core.engine.evaluate import frame_tables
from spotting_core.engine.games import GameData, attach_entities, find_splits, load_games
from spotting_core.engine.inference import prediction_columns, spot_game
from spotting_core.engine.metrics import average_map_tables
from spotting_core.engine.sampler import ClipSampler
from spotting_core.errors import SpottingError
from spotting_core.io.feature_files import release_heap, release_pages
from spotting_core.io.soccernet import CLASSES_V2, FPS
from spotting_core.models import build_model, convert_options, count_parameters, model_class, save_checkpoint
from spotting_core.runtime import resolve_device

Progress = Callable[[float, str], None]


@dataclass
class TrainConfig:
    """What `fit` trains, on what, and how. None = the model's `training_defaults()`."""

    model: str
    data: str
    features: str = "ResNET_TF2_PCA512"
    out: str = "model.pt"
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    seed: int = 0
    patience: int | None = None        # evaluations without a better valid Average-mAP before stopping
    device: str | None = None          # "cuda" / "cpu"; None: CUDA when available
    model_options: dict = field(default_factory=dict)  # Config overrides; strings are converted
    clips_per_epoch: int | None = None  # cap on the sampler's clips per epoch (None: all of them)
    eval_every: int = 1                # epochs between validations
    max_train_s: float | None = None   # stop (after validating) once training has taken this long
    valid_metric: str = "loose"        # Average-mAP used for early stopping: loose / tight
    evaluate_test: bool = True         # score the best model on the test split when there is one
    amp: bool = True                   # mixed precision on CUDA (ignored on the CPU)
    mmap: bool = True                  # memory-map feature files (bounded memory); False reads every game into RAM


# ---------------------------------------------------------------------------------------------
# Options and defaults
# ---------------------------------------------------------------------------------------------


def resolve(cfg: TrainConfig) -> TrainConfig:
    """A copy of `cfg` with every None filled from the model's `training_defaults()`."""
    model_cls = model_class(cfg.model, backbone=(cfg.model_options or {}).get("backbone"))
    options = convert_options(model_cls.Config, cfg.model_options)
    defaults = model_cls.training_defaults(options)
    given = dataclasses.asdict(cfg)
    filled = {k: defaults[k] if given[k] is None else given[k] for k in ("epochs", "batch_size", "lr", "patience")}
    for key in ("epochs", "batch_size", "patience"):
        if int(filled[key]) < 1:
            raise SpottingError(f"--{key.replace('_', '-')} {filled[key]}: must be at least 1")
    if not float(filled["lr"]) > 0:
        raise SpottingError(f"--lr {filled['lr']}: must be positive")
    if cfg.valid_metric not in ("loose", "tight"):
        raise SpottingError(f"valid_metric {cfg.valid_metric!r}: choose loose or tight")
    return dataclasses.replace(cfg, epochs=int(filled["epochs"]), batch_size=int(filled["batch_size"]),
                               lr=float(filled["lr"]), patience=int(filled["patience"]), model_options=options)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------
def detections_from_events(events, num_frames: Sequence[int], num_classes: int) -> list[np.ndarray]:
    """An events table (inference.spot_game) -> per-half (T, C) confidences, -1 where nothing was spotted."""
    out = []
    for i, T in enumerate(num_frames):
        det = np.full((int(T), num_classes), -1.0)
        sel = events[events["half"] == i + 1]
        det[np.minimum(sel["frame"].to_numpy(), int(T) - 1), sel["class_id"].to_numpy()] = sel["confidence"].to_numpy()
        out.append(det)
    return out


@torch.no_grad()
def evaluate_games(model, games: Sequence[GameData], *, metrics: Sequence[str] = ("loose", "tight"),
                   classes: Sequence[str] = CLASSES_V2, progress: Progress | None = None,
                   thresholds: bool = False, keep_pairs: bool = False) -> dict:
    """Average-mAP of `model` (its own NMS settings) over `games`, all halves pooled: {metric: value}.

    thresholds: also fit the per-class operating points on these games (`engine/calibrate.py`,
    F1 at 5 s), returned under "thresholds"; keep_pairs: return what they are fitted from under
    "pairs" instead (`operating_points(pairs)`), for a caller that fits only when it needs them. One game's features are in memory at a time (memory-mapped
    games are read, spotted and handed back); what is kept per game is its events (`frame_tables`),
    and for the thresholds its events and per-frame scores (the rescorer reads them)."""
    was_training = model.training
    model.eval()
    tables, pairs, longest = [], [], 1
    for i, g in enumerate(games):
        halves = [h if h.flags.writeable else np.array(h) for h in g.halves]   # a memory map: one game in RAM
        for h in g.halves:
            release_pages(h)
        events, arrays = spot_game(model, halves, classes=classes, entities=g.entities)
        tables.append(frame_tables(g.events, events, fps=model.fps))
        longest = max(longest, *(len(h) for h in halves))
        del halves
        release_heap()                          # else the freed game's pages stay resident (io/feature_files)
        if thresholds or keep_pairs:
            pairs.append((g.name, g.labels, prediction_columns(events, arrays)))
        if progress:
            progress((i + 1) / len(games), f"evaluating {g.name}")
    model.train(was_training)
    scores = average_map_tables(tables, num_frames=(longest, longest), num_classes=len(classes), fps=model.fps,
                                metrics=metrics)
    out: dict = {m: float(scores[m]["a_mAP"]) for m in metrics}
    if thresholds:
        out["thresholds"] = operating_points(pairs, classes=classes)
    if keep_pairs:
        out["pairs"] = pairs
    return out


def operating_points(pairs, *, classes: Sequence[str] = CLASSES_V2) -> dict | None:
    """The per-class thresholds fitted on (game, labels, predictions) pairs, with the context rescorer they
    assume (`engine/rescore.py`, reading the score curves the predictions carry; `spot` applies it); None
    when nothing was spotted."""
    return fit_thresholds(pairs, classes=classes, context=True) if any(len(e["half"]) for _, _, e in pairs) else None


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------
OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("plateau", "warmup_cosine")


def make_optimizer(model, *, lr: float, epochs: int, steps_per_epoch: int, patience: int):
    """(optimizer, scheduler, per_step) from the model's `training_defaults()`:

    optimizer: "adam" (default) or "adamw", with `weight_decay` (default 0);
    schedule:  "plateau" (default): ReduceLROnPlateau on the valid Average-mAP, stepped per evaluation;
               "warmup_cosine": linear warm-up over `warmup_epochs`, then cosine decay to 0 at the last
               step, stepped per batch (per_step True).
    """
    recipe = model.training_defaults(model.config_dict())
    name, schedule = recipe["optimizer"], recipe["schedule"]
    if name not in OPTIMIZERS or schedule not in SCHEDULES:
        raise SpottingError(f"model {model.name!r}: optimizer {name!r} / schedule {schedule!r}; "
                            f"choose from {', '.join(OPTIMIZERS)} / {', '.join(SCHEDULES)}")
    opt_cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
    optimizer = opt_cls(model.parameters(), lr=lr, weight_decay=float(recipe["weight_decay"]))
    if schedule == "plateau":
        return optimizer, torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=0.1, patience=max(1, patience // 3)), False
    total = max(1, epochs * steps_per_epoch)
    warm = min(int(recipe["warmup_epochs"]) * steps_per_epoch, total - 1)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / (warm + 1)
        return 0.5 * (1.0 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor), True


def _to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def fit(cfg: TrainConfig, progress: Progress | None = None) -> dict:
    """Train `cfg.model` on the train split of `cfg.data`; keep the best on valid. See the module doc."""
    started = time.perf_counter()
    cfg = resolve(cfg)
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    model_cls = model_class(cfg.model, backbone=cfg.model_options.get("backbone"))
    frame_height = None
    if model_cls.input_kind == "frames":  # end to end: the videos, decoded at the model's input height
        frame_height = int(cfg.model_options.get("input_dim", model_cls.Config().input_dim))
    feature_name = f"frames{frame_height}p" if frame_height else cfg.features

    splits = find_splits(cfg.data)
    for s in ("train", "valid"):
        if not splits[s]:
            raise SpottingError(f"{cfg.data}: no {s} games (need train/ and valid/ folders or SoccerNet's lists)")
    if progress:
        progress(0.0, "loading features")
    train_games = load_games(cfg.data, splits["train"], cfg.features, frame_height=frame_height, mmap=cfg.mmap)
    valid_games = load_games(cfg.data, splits["valid"], cfg.features, frame_height=frame_height, mmap=cfg.mmap)
    dim = train_games[0].dim
    if valid_games[0].dim != dim:
        raise SpottingError(f"{cfg.data}: {cfg.features} has dimension {dim} in train but {valid_games[0].dim} in valid")

    options = {k: v for k, v in cfg.model_options.items() if k not in ("input_dim", "num_classes", "fps")}
    for key, value in (("input_dim", dim), ("num_classes", len(CLASSES_V2)), ("fps", FPS)):
        if key in cfg.model_options and cfg.model_options[key] != value:
            raise SpottingError(f"--set {key}={cfg.model_options[key]}: the data has {key} {value}")
    model = build_model(cfg.model, input_dim=dim, num_classes=len(CLASSES_V2), fps=FPS, **options).to(device)
    if model.entity_inputs:  # precomputed <half>_entities.npy, where the games have them
        attach_entities(cfg.data, train_games)
        attach_entities(cfg.data, valid_games)
    sampler = ClipSampler(train_games, clip_frames=model.clip_frames, batch_size=cfg.batch_size,
                          clips=model.epoch_clips, seed=cfg.seed, clips_per_epoch=cfg.clips_per_epoch,
                          num_classes=len(CLASSES_V2))
    optimizer, scheduler, per_step = make_optimizer(model, lr=cfg.lr, epochs=cfg.epochs,
                                                    steps_per_epoch=len(sampler), patience=cfg.patience)
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    history, best, best_epoch, stale = [], -math.inf, 0, 0
    n_batches = len(sampler)
    loop_start = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        sums: dict[str, float] = {}
        bar = tqdm(sampler.batches(epoch), total=n_batches, desc=f"{cfg.model} epoch {epoch}/{cfg.epochs}",
                   leave=False, dynamic_ncols=True)
        for step, batch in enumerate(bar):
            batch = model.augment(_to(batch, device))
            with torch.autocast(device_type=device.type, enabled=use_amp):
                outputs = model.forward_batch(batch)                  # x: (B, T, D) [+ entities]
                terms = model.loss(outputs, batch)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(terms["loss"]).backward()
            scaler.step(optimizer)
            scaler.update()
            if per_step:
                scheduler.step()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            bar.set_postfix(loss=f"{sums['loss'] / (step + 1):.4f}")
            if progress:
                progress(((epoch - 1) + (step + 1) / n_batches) / cfg.epochs, f"epoch {epoch}: training")
        bar.close()
        row = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"],
               **{f"train_{k}": v / max(n_batches, 1) for k, v in sums.items()},
               "train_s": time.perf_counter() - t0}
        time_up = cfg.max_train_s is not None and time.perf_counter() - loop_start >= cfg.max_train_s
        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs or time_up:
            scored = evaluate_games(model, valid_games, metrics=(cfg.valid_metric,), keep_pairs=True)
            score = scored[cfg.valid_metric]
            row[f"valid_a_mAP_{cfg.valid_metric}"] = score
            if not per_step:
                scheduler.step(score)
            if score > best:
                best, best_epoch, stale = score, epoch, 0
                save_checkpoint(cfg.out, model, classes=CLASSES_V2, feature_name=feature_name,
                                extra={"epoch": epoch, f"valid_a_mAP_{cfg.valid_metric}": score,
                                       "thresholds": operating_points(scored["pairs"]),  # best epochs only
                                       "train": {k: v for k, v in dataclasses.asdict(cfg).items()
                                                 if k != "model_options"}})
            else:
                stale += 1
        history.append(row)
        tqdm.write(f"{cfg.model} epoch {epoch}: " + ", ".join(
            f"{k} {v:.4g}" for k, v in row.items() if k != "epoch" and isinstance(v, float)), file=sys.stderr)
        if stale >= cfg.patience or time_up:
            break

    result = {"history": history, "best_epoch": best_epoch, f"best_valid_a_mAP_{cfg.valid_metric}": best,
              "epochs": len(history), "checkpoint": str(Path(cfg.out)), "params": count_parameters(model),
              "train_s": time.perf_counter() - started}
    if cfg.evaluate_test and splits["test"]:
        from spotting_core.models import load_checkpoint

        best_model, _ = load_checkpoint(cfg.out, device=device)
        test_games = load_games(cfg.data, splits["test"], cfg.features, frame_height=frame_height, mmap=cfg.mmap)
        if best_model.entity_inputs:
            attach_entities(cfg.data, test_games)
        result["test"] = evaluate_games(best_model, test_games)
    if progress:
        progress(1.0, "done")
    return result
