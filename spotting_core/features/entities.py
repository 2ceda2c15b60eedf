"""Local entities for UGL end to end: per-frame boxes from a pluggable extractor, RoIAlign features pooled
from the backbone's feature map (the paper's Fig. 3), or precomputed entity features read from disk.

    ext = DetectorExtractor(name="fasterrcnn_mobilenet_v3_large_fpn", max_entities=8)
    boxes = ext.boxes(frames)                                  list of (n_i, 4) x1 y1 x2 y2 in pixels
    feats, mask = roi_entities(fmap, boxes, max_entities=8, spatial_scale=h / H)   (M, N, C), (M, N)
    feats, mask = load_precomputed(game_dir, half=1)            `{half}_entities.npy` + mask

The paper uses GLIP boxes, which cannot be downloaded here; any extractor with a `boxes(frames)`
method plugs in. The torchvision detectors need their COCO weights from the torch hub cache (fetched
when the network allows); offline that is a one-line SpottingError naming the file to place.
`random_init=True` builds a detector without weights: for tests only (its boxes mean nothing).

Precomputed file format: `<game>/<half>_entities.npy` holding either
    - a float array (T, N_max, d) plus `<half>_entities_mask.npy` (T, N_max) bool, or
    - a float array (T, N_max, d) alone, where rows that are all zero are padding (mask = any != 0).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from spotting_core.errors import SpottingError

DETECTORS = ("fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn_mobilenet_v3_large_320_fpn")


# ---------------------------------------------------------------------------------------------
# Extractors
# ---------------------------------------------------------------------------------------------
class DetectorExtractor(nn.Module):
    """A frozen torchvision detector as entity extractor: the top `max_entities` boxes per frame."""

    def __init__(self, *, name: str = DETECTORS[0], max_entities: int = 8, score_threshold: float = 0.3,
                 image_size: int = 320, random_init: bool = False):
        super().__init__()
        import torchvision.models.detection as det

        if name not in DETECTORS:
            raise SpottingError(f"detector {name!r}: choose from {', '.join(DETECTORS)}")
        enum = {"fasterrcnn_mobilenet_v3_large_fpn": det.FasterRCNN_MobileNet_V3_Large_FPN_Weights,
                "fasterrcnn_mobilenet_v3_large_320_fpn": det.FasterRCNN_MobileNet_V3_Large_320_FPN_Weights,
                }[name].COCO_V1
        net = getattr(det, name)(weights=None, weights_backbone=None, box_detections_per_img=max_entities,
                                 box_score_thresh=0.0 if random_init else score_threshold,
                                 min_size=image_size, max_size=max(image_size, int(image_size * 16 / 9)))
        if not random_init:
            from spotting_core.features.backbones import fetch_hub_weights

            path = fetch_hub_weights(enum.url, backbone=f"entity detector {name}")
            try:
                net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            except Exception as e:
                raise SpottingError(f"{path}: not the torchvision {name} COCO weights ({type(e).__name__}); "
                                    "delete it to fetch it again") from None
        self.net = net.eval().requires_grad_(False)
        self.max_entities = int(max_entities)

    def train(self, mode: bool = True):
        super().train(mode)
        self.net.eval()  # frozen: always inference mode
        return self

    @torch.no_grad()
    def boxes(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """frames (M, H, W, 3) uint8 or float in [0, 255] -> M tensors (n_i <= max_entities, 4) in pixels."""
        x = frames.permute(0, 3, 1, 2).float().div(255.0)                        # (M, 3, H, W)
        out = self.net(list(x))
        return [o["boxes"][: self.max_entities] for o in out]


# ---------------------------------------------------------------------------------------------
# RoIAlign
# ---------------------------------------------------------------------------------------------
def roi_entities(fmap: torch.Tensor, boxes: list[torch.Tensor], *, max_entities: int, spatial_scale: float,
                 output_size: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """RoIAlign of each frame's boxes on its feature map, average-pooled.

    fmap (M, C, h, w); boxes: M tensors (n_i, 4) x1 y1 x2 y2 in input pixels; spatial_scale = h / H.
    Returns (entities (M, N, C), mask (M, N) bool) with N = max_entities, padded with zeros / False.
    """
    from torchvision.ops import roi_align

    M, C = fmap.shape[:2]
    if len(boxes) != M:
        raise ValueError(f"{len(boxes)} box lists for {M} frames")
    out = fmap.new_zeros(M, max_entities, C)
    mask = torch.zeros(M, max_entities, dtype=torch.bool, device=fmap.device)
    rois = [b[:max_entities].to(fmap.dtype) for b in boxes]
    counts = [len(b) for b in rois]
    if sum(counts):
        pooled = roi_align(fmap, [b.to(fmap.device) for b in rois], output_size=output_size,
                           spatial_scale=spatial_scale, sampling_ratio=2, aligned=True)  # (R, C, s, s)
        pooled = pooled.mean(dim=(2, 3))                                           # (R, C)
        frame = torch.repeat_interleave(torch.arange(M, device=fmap.device),
                                        torch.tensor(counts, device=fmap.device))  # (R,)
        slot = torch.cat([torch.arange(n, device=fmap.device) for n in counts])    # (R,)
        out = out.index_put((frame, slot), pooled)
        mask[frame, slot] = True
    return out, mask


# ---------------------------------------------------------------------------------------------
# Precomputed
# ---------------------------------------------------------------------------------------------
def entities_path(game_dir: str | os.PathLike, half: int) -> Path:
    return Path(game_dir) / f"{half}_entities.npy"


def load_precomputed(game_dir: str | os.PathLike, half: int) -> tuple[np.ndarray, np.ndarray]:
    """`<game>/<half>_entities.npy` (T, N_max, d) float32 and its mask (T, N_max) bool (see module doc)."""
    path = entities_path(game_dir, half)
    if not path.is_file():
        raise SpottingError(f"{path}: no precomputed entities (expected (T, N_max, d) float features)")
    try:
        feats = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise SpottingError(f"{path}: not a readable .npy ({type(e).__name__})") from None
    if feats.ndim != 3 or not np.issubdtype(feats.dtype, np.floating):
        raise SpottingError(f"{path}: expected a float array (T, N_max, d), got {feats.dtype} {feats.shape}")
    mask_path = path.with_name(f"{half}_entities_mask.npy")
    if mask_path.is_file():
        try:
            mask = np.load(mask_path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise SpottingError(f"{mask_path}: not a readable .npy ({type(e).__name__})") from None
        if mask.shape != feats.shape[:2]:
            raise SpottingError(f"{mask_path}: mask shape {mask.shape} does not match entities {feats.shape[:2]}")
        mask = mask.astype(bool)
    else:
        mask = (feats != 0).any(axis=-1)
    if not np.isfinite(feats[mask]).all():
        raise SpottingError(f"{path}: holds NaN or infinite values")
    return np.ascontiguousarray(feats, dtype=np.float32), mask
