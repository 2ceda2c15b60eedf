"""Feature extraction speed per backbone: network alone, and streamed from a 720p file (decode + network).

    .venv/bin/python bench/features.py [--seconds 60] [--batches 3] [--backbones mobilenetv2-offline,resnet152]

For each backbone: frames/s of the network on preprocessed 224x224 batches (wall, and frames per
CPU-second, which other processes on this shared machine disturb less), then frames/s of
`features.extract_features` on the first --seconds of the 720p bench file (bench/decode.py), where
decoding runs in a thread beside the network.

resnet152: its ImageNet weights cannot be fetched on this offline machine; the script says so and
measures its speed with random weights (speed does not depend on the values of the weights).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from decode import bench_video, cpu_time  # noqa: E402

from spotting_core.errors import SpottingError  # noqa: E402
from spotting_core.features import backbones  # noqa: E402
from spotting_core.features import extract as features  # noqa: E402


def network(name: str) -> tuple[torch.nn.Module, str]:
    try:
        return backbones.load_network(name, device="cpu"), "pretrained"
    except SpottingError as e:
        print(f"  {name}: {e}")
        print(f"  {name}: measuring speed with random weights instead (speed only, never used for features)")
        return backbones.load_network(name, device="cpu", random_init=True), "random weights"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the 720p part to extract")
    ap.add_argument("--batches", type=int, default=3)
    ap.add_argument("--backbones", default="mobilenetv2-offline,resnet152")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu")
    path = bench_video(180.0)
    for name in args.backbones.split(","):
        bb = backbones.get_backbone(name)
        net, weights = network(name)
        frames = torch.randint(0, 256, (bb.batch_size, 224, 398, 3), dtype=torch.uint8)
        with torch.inference_mode():
            x = bb.preprocess(frames if isinstance(bb.decode_size, int) else frames[:, :, :224])
            net(x)  # warm-up
            t0, c0 = time.perf_counter(), cpu_time()
            for _ in range(args.batches):
                net(x)
            wall, cpu = time.perf_counter() - t0, cpu_time() - c0
        n = args.batches * bb.batch_size
        print(f"{name} ({weights}, {bb.dim}-d, batch {bb.batch_size}): network {n / wall:.1f} frames/s wall, "
              f"{n / cpu:.1f} frames per CPU-second")
        t0, c0 = time.perf_counter(), cpu_time()
        out = features.extract_features(path, backbone=bb, duration=args.seconds, net=net)
        wall, cpu = time.perf_counter() - t0, cpu_time() - c0
        print(f"{name}: streamed from 720p ({args.seconds:g} s -> {len(out)} frames at 2 fps): "
              f"{len(out) / wall:.1f} frames/s wall, {len(out) / cpu:.1f} frames per CPU-second, "
              f"{args.seconds / wall:.1f}x realtime")


if __name__ == "__main__":
    main()
