"""UGL end to end on CPU: train on a tiny generated video set whose events are visible on screen, show
the loss falls and spotting beats chance, and time each component.

    .venv/bin/python bench/ugl_e2e.py [--json] [--train-games 3] [--half-s 40] [--height 48]
                                      [--delta 16] [--epochs 12] [--seed 0] [--skip-train] [--skip-timing]

1. `spotting_core.synth.toys.make_toy_dataset`: SoccerNet layout (`1_224p.mkv`, `2_224p.mkv`,
   Labels-v2.json) in train/valid/test folders; a drifting noisy background where each event shows
   its class's shape (Goal: red square, Corner: green disc, Foul: blue bar) for 1 s from its time,
   about one event every 5 s. The test split has its own games.
2. `train.fit` (the same loop as `python -m spotting_core train --model ugl-e2e`): frames decoded at
   `--height` pixels, 2 fps, delta-frame snippets, AdamW + warm-up + cosine, focal loss (gamma 5),
   crop / jitter / mixup; RegNet-Y 400MF with GSM from random initialisation (no ImageNet weights
   offline); the best epoch on valid loose Average-mAP is kept.
3. Test: the checkpoint spots the test games (windows with delta/2 overlap, then NMS, through
   `inference.spot_game`), scored with `metrics.average_map` (loose and tight). Chance: uniform
   random per-frame scores through the same NMS and the same metric (mean of 20 draws). Reported:
   the official 17-class Average-mAP and its mean over the 3 classes the toy set uses.
4. Timings, in this process, for one snippet of `--time-frames` frames at 224 px high (16:9, 398 px
   wide): the RegNet-Y backbone with its GSMs switched off, the same with them (GSM overhead), the
   UGL head without entities (BiGRU) on delta = 100 frames, the entity branch (RoIAlign + adaptive
   attention + fusion, N = 8 boxes a frame), and the torchvision detector that would give the boxes
   (random weights: timing only). Parameter counts for 400MF and 800MF, with and without entities.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from spotting_core.engine.games import find_splits, load_games
from spotting_core.engine.inference import events_from_scores, nms
from spotting_core.engine.metrics import average_map
from spotting_core.engine.train import TrainConfig, detections_from_events, fit
from spotting_core.features.entities import DetectorExtractor, roi_entities
from spotting_core.models import build_model, count_parameters, load_checkpoint
from spotting_core.synth.toys import TOY_CLASSES, make_toy_dataset, toy_class_ids


def _best_of(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def chance(games, *, fps: float, window_s: float, threshold: float, draws: int = 20, seed: int = 0) -> dict:
    """Uniform random per-frame scores through the same NMS and metric: mean over `draws`."""
    rng = np.random.default_rng(seed)
    out = {"loose": [], "tight": [], "loose_toy": [], "tight_toy": []}
    targets = [e for g in games for e in g.events]
    for _ in range(draws):
        dets = []
        for g in games:
            tables = []
            for i, h in enumerate(g.halves):
                peaks = nms(rng.random((len(h), 17)), window_s=window_s, fps=fps, threshold=threshold)
                tables.append(events_from_scores(peaks, half=i + 1, fps=fps))
            dets += detections_from_events(pd.concat(tables, ignore_index=True), [len(h) for h in g.halves], 17)
        for m in ("loose", "tight"):
            r = average_map(targets, dets, fps=fps, metric=m)
            out[m].append(r["a_mAP"])
            out[f"{m}_toy"].append(float(np.mean([r["a_mAP_per_class"][c] for c in toy_class_ids()])))
    return {k: float(np.mean(v)) for k, v in out.items()}


def model_scores(model, games) -> dict:
    targets = [e for g in games for e in g.events]
    from spotting_core.engine.inference import spot_game

    dets = []
    for g in games:
        events, _ = spot_game(model, g.halves)
        dets += detections_from_events(events, [len(h) for h in g.halves], 17)
    out = {}
    for m in ("loose", "tight"):
        r = average_map(targets, dets, fps=model.fps, metric=m)
        out[m] = r["a_mAP"]
        out[f"{m}_toy"] = float(np.mean([r["a_mAP_per_class"][c] for c in toy_class_ids()]))
        out[f"{m}_per_toy_class"] = {TOY_CLASSES[i]: r["a_mAP_per_class"][c] for i, c in enumerate(toy_class_ids())}
    return out


def train_and_test(args, root: Path) -> dict:
    t0 = time.perf_counter()
    make_toy_dataset(root, games={"train": args.train_games, "valid": 1, "test": 2}, half_s=args.half_s,
                     size=(args.height, args.height), every_s=5.0, seed=args.seed)
    gen_s = time.perf_counter() - t0
    options = {"input_dim": args.height, "window_s": args.delta / 2.0, "weights": "random",
               "warmup_epochs": 2}
    cfg = TrainConfig(model="ugl-e2e", data=str(root), out=str(root / "ugl_e2e.pt"), epochs=args.epochs,
                      batch_size=8, lr=args.lr, seed=args.seed, model_options=options, evaluate_test=False)
    result = fit(cfg)
    model, _ = load_checkpoint(cfg.out)
    test_games = load_games(root, find_splits(root)["test"], "", frame_height=args.height)
    t = time.perf_counter()
    test = model_scores(model, test_games)
    infer_s = time.perf_counter() - t
    n_frames = sum(len(h) for g in test_games for h in g.halves)
    base = chance(test_games, fps=model.fps, window_s=model.cfg.nms_window_s, threshold=model.cfg.nms_threshold)
    losses = [row["train_loss"] for row in result["history"]]
    return {"generate_s": gen_s, "train_s": result["train_s"], "epochs": result["epochs"],
            "best_epoch": result["best_epoch"], "train_loss_first": losses[0], "train_loss_last": losses[-1],
            "train_loss_min": min(losses), "train_losses": losses,
            "valid_loose_best": result["best_valid_a_mAP_loose"], "test": test, "chance": base,
            "test_frames": n_frames, "infer_fps_cpu": n_frames / infer_s,
            "test_events": int(sum((e != 0).sum() for g in test_games for e in g.events))}


def timings(args) -> dict:
    torch.manual_seed(0)
    H, W, T = 224, 398, args.time_frames
    x = torch.randint(0, 256, (1, T, H, W, 3), dtype=torch.uint8)
    out = {"frames": T, "size": f"{W}x{H}"}
    for arch in ("regnet_y_400mf", "regnet_y_800mf"):
        m = build_model("ugl-e2e", input_dim=H, weights="random", arch=arch).eval()
        with torch.no_grad():
            m.backbone.set_gsm(active=False)
            plain = _best_of(lambda m=m: m.encode(x))
            m.backbone.set_gsm(active=True)
            gsm = _best_of(lambda m=m: m.encode(x))
        out[arch] = {"backbone_ms_per_frame": 1000 * plain / T, "backbone_gsm_ms_per_frame": 1000 * gsm / T,
                     "gsm_overhead": gsm / plain - 1.0,
                     "params": count_parameters(m),
                     "params_backbone": sum(p.numel() for p in m.backbone.parameters()),
                     "params_gsm": sum(p.numel() for g in m.backbone.gsms for p in g.parameters()),
                     "params_with_entities": count_parameters(
                         build_model("ugl-e2e", input_dim=H, weights="random", arch=arch, entities="precomputed",
                                     entity_dim=m.backbone.out_channels))}
    # head, delta = 100 frames, C = 440 (400MF)
    m = build_model("ugl-e2e", input_dim=H, weights="random").eval()
    me = build_model("ugl-e2e", input_dim=H, weights="random", entities="precomputed", entity_dim=440).eval()
    g = torch.randn(1, 100, 440)
    ent = torch.randn(1, 100, 8, 440)
    fmap = torch.randn(100, 440, 7, 13)
    boxes = [torch.tensor([[10.0 * i, 20.0, 10.0 * i + 60, 120.0] for i in range(8)])] * 100
    with torch.no_grad():
        head = _best_of(lambda: m.head(g))
        head_ent = _best_of(lambda: me.head(g, ent))
        roi = _best_of(lambda: roi_entities(fmap, boxes, max_entities=8, spatial_scale=7 / 224))
    out["head_gru_ms_per_100_frames"] = 1000 * head
    out["entity_branch_ms_per_100_frames"] = 1000 * (head_ent - head + roi)
    det = DetectorExtractor(random_init=True)
    frames = torch.randint(0, 256, (4, H, W, 3), dtype=torch.uint8)
    out["detector_ms_per_frame_random_weights"] = 1000 * _best_of(lambda: det.boxes(frames), 2) / 4
    out["detector_params"] = sum(p.numel() for p in det.parameters())
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true")
    p.add_argument("--train-games", type=int, default=3)
    p.add_argument("--half-s", type=float, default=40.0)
    p.add_argument("--height", type=int, default=48)
    p.add_argument("--delta", type=int, default=16)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-frames", type=int, default=8)
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--skip-timing", action="store_true")
    p.add_argument("--keep", default=None, help="folder to keep the generated data and checkpoint in")
    args = p.parse_args(argv)
    report = {"threads": torch.get_num_threads()}
    if not args.skip_train:
        if args.keep:
            report["train"] = train_and_test(args, Path(args.keep))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                report["train"] = train_and_test(args, Path(tmp))
    if not args.skip_timing:
        report["timing"] = timings(args)
    if args.json:
        print(json.dumps(report))
        return 0
    if "train" in report:
        r = report["train"]
        print(f"toy set: {args.train_games} train / 1 valid / 2 test games, halves of {args.half_s:g} s, "
              f"frames {args.height}x{args.height} at 2 fps, delta {args.delta}; {r['test_events']} test events")
        print(f"training: {r['epochs']} epochs in {r['train_s']:.0f} s; train loss {r['train_loss_first']:.4f} "
              f"(epoch 1) -> {r['train_loss_last']:.4f} (last), min {r['train_loss_min']:.4f}; best epoch "
              f"{r['best_epoch']} (valid loose {r['valid_loose_best']:.3f})")
        print(f"{'test Average-mAP':<28}{'model':>10}{'chance':>10}{'ratio':>8}")
        for k in ("loose", "tight", "loose_toy", "tight_toy"):
            a, b = r["test"][k], r["chance"][k]
            label = k.replace("_toy", " (3 toy classes)") if k.endswith("_toy") else f"{k} (17 classes)"
            print(f"{label:<28}{a:>10.4f}{b:>10.4f}{a / b if b else float('inf'):>8.1f}")
        print(f"per toy class, tight: {r['test']['tight_per_toy_class']}")
        print(f"inference on CPU: {r['infer_fps_cpu']:.1f} frames/s at {args.height} px (decode cached)")
    if "timing" in report:
        t = report["timing"]
        print(f"\ntimings on this CPU ({report['threads']} threads), {t['frames']} frames of {t['size']}:")
        for arch in ("regnet_y_400mf", "regnet_y_800mf"):
            a = t[arch]
            print(f"  {arch}: params {a['params']:,} (backbone {a['params_backbone']:,}, of which GSM "
                  f"{a['params_gsm']:,}; with entities {a['params_with_entities']:,}); backbone "
                  f"{a['backbone_ms_per_frame']:.1f} ms/frame without GSM, {a['backbone_gsm_ms_per_frame']:.1f} "
                  f"with (+{100 * a['gsm_overhead']:.0f} %)")
        print(f"  UGL head (BiGRU, no entities): {t['head_gru_ms_per_100_frames']:.1f} ms per 100 frames; "
              f"entity branch (RoIAlign + attention + fusion, 8 boxes/frame): "
              f"{t['entity_branch_ms_per_100_frames']:.1f} ms per 100 frames")
        print(f"  detector fasterrcnn_mobilenet_v3_large_fpn (random weights, timing only): "
              f"{t['detector_ms_per_frame_random_weights']:.0f} ms/frame, {t['detector_params']:,} params")
    if "train" in report and not report["train"]["test"]["tight_toy"] > 2 * report["train"]["chance"]["tight_toy"]:
        print("check failed: the model does not beat chance clearly (2x) on tight Average-mAP", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
