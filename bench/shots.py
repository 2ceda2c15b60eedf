"""Shot detection: speed on 720p against the decode alone, and accuracy on generated video with known shots.

    .venv/bin/python bench/shots.py [--seconds 120] [--videos 6] [--reps 1] [--json]

Speed, on bench/decode.py's 720p broadcast file (the real mvfoul clips upscaled, looped), each run in
this process, interleaved so that load from other jobs hits every variant alike:
- decode 2 fps        `io/video.decode(fps=2, size=224)`, what feature extraction reads: the reference
- decode 25 fps 48x27 the shot frames alone
- split decode        both from one ffmpeg pass (`io/split_decode.py`), nothing else
- content / transnetv2 the split decode feeding `media/shots.ShotPass` (detection included)
- transnetv2 network  the network alone on frames decoded beforehand (where the time goes)
Each line: wall and CPU seconds (self + ffmpeg), video frames per second, and the ratio to the
2 fps decode. The goal: TransNetV2 adds at most 30 % to the 2 fps decode (ratio <= 1.3).

Accuracy, on --videos generated 320x180 videos (`synth/shots.py`: hard cuts between distinct
scenes with pans and moving objects, 12-frame dissolves, logo wipes, replays between two wipes):
precision and recall of the boundaries within one frame (a cut: the first frame of the new shot;
a gradual transition: its first and last frame), and of the replay candidates (both ends within one frame).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from decode import bench_video, cpu_time  # noqa: E402

from spotting_core.io import video as vid  # noqa: E402
from spotting_core.io.split_decode import decode_split  # noqa: E402
from spotting_core.media.shot_detectors import SIZE, TransNetV2Scorer, transnetv2_available  # noqa: E402
from spotting_core.media.shots import ShotPass, detect_shots  # noqa: E402
from spotting_core.synth.shots import render_shot_video, shot_script  # noqa: E402


def timed(fn) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), cpu_time()
    fn()
    return time.perf_counter() - w0, cpu_time() - c0


def speed(seconds: float, reps: int, detectors: list[str]) -> list[dict]:
    src = bench_video(seconds)
    info = vid.probe(src)
    frames = info.num_samples(info.fps)

    def drain(it) -> None:
        for _ in it:
            pass

    def split_with(detector: str | None):
        def run():
            shot_pass = ShotPass(detector) if detector else None
            for kind, batch in decode_split(src, fps=2.0, size=224, info=info):
                if kind == "shots" and shot_pass is not None:
                    shot_pass.feed(batch)
            if shot_pass is not None:
                shot_pass.result(src, info.fps)
        return run

    variants = {"decode 2 fps (reference)": lambda: drain(vid.decode(src, fps=2.0, size=224, info=info)),
                "decode 25 fps 48x27": lambda: drain(vid.decode(src, fps=info.fps, size=SIZE, info=info)),
                "split decode (both streams)": split_with(None)}
    for d in detectors:
        variants[f"split decode + {d}"] = split_with(d)
    if "transnetv2" in detectors:
        TransNetV2Scorer()                                       # load the weights outside the timings
        shot_frames = vid.decode_array(src, fps=info.fps, size=SIZE, info=info)
        for precision in ("float32", "bfloat16"):
            def net_only(p=precision):
                s = TransNetV2Scorer(precision=p)
                s.feed(shot_frames)
                s.finish()
            variants[f"transnetv2 network alone ({precision})"] = net_only
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
    for _ in range(reps):
        for name, fn in variants.items():
            runs[name].append(timed(fn))
    ref_w = statistics.median(w for w, _ in runs["decode 2 fps (reference)"])
    ref_c = statistics.median(c for _, c in runs["decode 2 fps (reference)"])
    rows = []
    for name, rs in runs.items():
        w, c = statistics.median(x for x, _ in rs), statistics.median(x for _, x in rs)
        rows.append({"what": name, "wall_s": round(w, 2), "cpu_s": round(c, 2), "frames_per_s": round(frames / w, 1),
                     "wall_ratio": round(w / ref_w, 2), "cpu_ratio": round(c / ref_c, 2)})
    return rows


def match_within(found: list[int], truth: list[int], tol: int = 1) -> int:
    """How many true items have a distinct found item within tol (greedy, in order)."""
    used, hits = set(), 0
    for t in truth:
        near = [i for i, f in enumerate(found) if i not in used and abs(f - t) <= tol]
        if near:
            used.add(min(near, key=lambda i: abs(found[i] - t)))
            hits += 1
    return hits


def accuracy(n_videos: int, detectors: list[str]) -> list[dict]:
    totals = {d: {"tp": 0, "found": 0, "truth": 0, "r_tp": 0, "r_found": 0, "r_truth": 0} for d in detectors}
    with tempfile.TemporaryDirectory(prefix="bench-shots-") as tmp:
        for i in range(n_videos):
            script = shot_script(seconds=40, dissolves=2, wipes=1, replays=1, seed=100 + i)
            video = render_shot_video(Path(tmp) / f"g{i}.mp4", script)
            truth = script.boundaries()
            for d in detectors:
                shots = detect_shots(video, detector=d, cache=False)
                found = []
                for t in shots.transitions:
                    found += [t.first] if t.kind == "cut" else [t.first, t.last]
                tot = totals[d]
                tot["tp"] += match_within(found, truth)
                tot["found"] += len(found)
                tot["truth"] += len(truth)
                spans = [(round(a * script.fps), round(b * script.fps) - 1) for a, b in shots.replays()]
                tot["r_tp"] += sum(any(abs(a - x) <= 1 and abs(b - y) <= 1 for a, b in spans) for x, y in script.replays)
                tot["r_found"] += len(spans)
                tot["r_truth"] += len(script.replays)
    rows = []
    for d, t in totals.items():
        rows.append({"detector": d, "videos": n_videos, "boundaries": t["truth"],
                     "precision": round(t["tp"] / max(t["found"], 1), 3), "recall": round(t["tp"] / max(t["truth"], 1), 3),
                     "replays": t["r_truth"], "replay_precision": round(t["r_tp"] / max(t["r_found"], 1), 3),
                     "replay_recall": round(t["r_tp"] / max(t["r_truth"], 1), 3)})
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=120.0, help="length of the 720p file for the speed runs")
    p.add_argument("--reps", type=int, default=1)
    p.add_argument("--videos", type=int, default=6, help="generated videos (40 s each) for the accuracy")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    detectors = ["content"] + (["transnetv2"] if transnetv2_available() is None else [])
    if len(detectors) == 1:
        print(f"transnetv2 skipped: {transnetv2_available()}", file=sys.stderr)
    result = {"speed": speed(args.seconds, args.reps, detectors), "accuracy": accuracy(args.videos, detectors),
              "settings": {"seconds": args.seconds, "reps": args.reps, "videos": args.videos,
                           "torch_threads": __import__("torch").get_num_threads()}}
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"speed, {args.seconds:g} s of 720p at 25 fps, median of {args.reps}:")
    for r in result["speed"]:
        print(f"  {r['what']:38s} wall {r['wall_s']:7.2f} s  cpu {r['cpu_s']:7.2f} s  {r['frames_per_s']:7.1f} frames/s"
              f"  x{r['wall_ratio']:.2f} wall, x{r['cpu_ratio']:.2f} cpu of the 2 fps decode")
    print("accuracy within one frame, generated video:")
    for r in result["accuracy"]:
        print(f"  {r['detector']:10s} boundaries {r['boundaries']}: precision {r['precision']:.3f} recall {r['recall']:.3f};"
              f" replays {r['replays']}: precision {r['replay_precision']:.3f} recall {r['replay_recall']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
