"""Losses that at least two models use, all in the with-logits form.

    focal_loss(logits, target, gamma=, alpha=)          softmax multi-class focal loss (UGL)
    sigmoid_focal_loss(logits, target, gamma=, alpha=)  the RetinaNet binary form, per class
    soft_cross_entropy(logits, target)                  cross-entropy against class indices or soft targets
    masked_mse(pred, target, mask)                      mean squared error over the rows of a mask (RMS-Net)

Every function takes logits (never probabilities) and a `reduction` of "mean", "sum" or "none".
The formulas are written in each docstring; tests/test_losses.py checks each against them on
hand-sized tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"unknown reduction {reduction!r}; choose from {', '.join(REDUCTIONS)}")


def _as_distribution(target: torch.Tensor, num_classes: int, like: torch.Tensor) -> torch.Tensor:
    """Class indices (...) -> one-hot (..., K); soft targets (..., K) pass through."""
    if target.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8):
        return F.one_hot(target.long(), num_classes).to(like.dtype)
    if target.shape != like.shape:
        raise ValueError(f"soft target shape {tuple(target.shape)} != logits shape {tuple(like.shape)}")
    return target.to(like.dtype)


def _class_weights(alpha, num_classes: int, like: torch.Tensor) -> torch.Tensor | None:
    if alpha is None:
        return None
    a = torch.as_tensor(alpha, dtype=like.dtype, device=like.device)
    if a.ndim != 1 or a.numel() != num_classes:
        raise ValueError(f"alpha must hold one weight per class ({num_classes}), got shape {tuple(a.shape)}")
    return a


def focal_loss(logits: torch.Tensor, target: torch.Tensor, *, gamma: float = 2.0,
               alpha: Sequence[float] | torch.Tensor | None = None, reduction: str = "mean") -> torch.Tensor:
    """Softmax focal loss (Lin et al. 2017, multi-class form), over the last dimension.

        p = softmax(logits)                         (..., K)
        FL = - sum_k  alpha_k * y_k * (1 - p_k)^gamma * log p_k

    logits: (..., K). target: class indices (...) or a distribution y (..., K) (one-hot, multi-hot
    normalised, or mixup-soft). alpha: None (all 1) or one weight per class (K,), the "alpha balance"
    (e.g. alpha for the event classes and 1 - alpha for background). With gamma = 0 and alpha None
    this is the cross-entropy. Returns one value per row (..., ) reduced by `reduction`.
    """
    K = logits.shape[-1]
    y = _as_distribution(target, K, logits)
    log_p = F.log_softmax(logits, dim=-1)
    weight = (1.0 - log_p.exp()).clamp_min(0.0).pow(gamma) if gamma else torch.ones_like(log_p)
    a = _class_weights(alpha, K, logits)
    if a is not None:
        weight = weight * a
    loss = -(y * weight * log_p).sum(dim=-1)  # (...,)
    return _reduce(loss, reduction)


def sigmoid_focal_loss(logits: torch.Tensor, target: torch.Tensor, *, gamma: float = 2.0,
                       alpha: float | None = 0.25, reduction: str = "mean") -> torch.Tensor:
    """Binary focal loss per element (RetinaNet; the form the UGL code uses with one-hot labels).

        p = sigmoid(x),  p_t = p * y + (1 - p) * (1 - y)
        alpha_t = alpha * y + (1 - alpha) * (1 - y)          (no weighting when alpha is None)
        FL = - alpha_t * (1 - p_t)^gamma * [y log p + (1 - y) log(1 - p)]

    logits, target: same shape, target in [0, 1]. Returns elementwise values reduced by `reduction`.
    """
    y = target.to(logits.dtype)
    ce = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    p = torch.sigmoid(logits)
    p_t = p * y + (1.0 - p) * (1.0 - y)
    loss = ce * (1.0 - p_t).pow(gamma)
    if alpha is not None:
        loss = (alpha * y + (1.0 - alpha) * (1.0 - y)) * loss
    return _reduce(loss, reduction)


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor, *,
                       weight: Sequence[float] | torch.Tensor | None = None,
                       reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy over the last dimension: CE = - sum_k w_k * y_k * log softmax(logits)_k.

    target: class indices (...) or a distribution (..., K). weight: None or one weight per class.
    Equals `focal_loss(..., gamma=0, alpha=weight)`; kept separate for readability at call sites.
    """
    return focal_loss(logits, target, gamma=0.0, alpha=weight, reduction=reduction)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of (pred - target)^2 over the rows where mask is True; 0 (with a gradient path) if none.

    pred, target: (N,) ; mask: (N,) bool. RMS-Net's offset loss is computed on clips that hold an event.
    """
    mask = mask.to(torch.bool)
    sq = (pred - target.to(pred.dtype)).pow(2)
    n = mask.sum()
    return torch.where(mask, sq, torch.zeros_like(sq)).sum() / n.clamp_min(1)


def clip_multilabel_targets(events: torch.Tensor) -> torch.Tensor:
    """(B, T, C) clip events -> (B, 1 + C) multi-label targets, background first.

    The official NetVLAD++ clip labels: every class with an event anywhere in the clip (unshown
    events count too), and background when there is none.
    """
    present = (events != 0).any(dim=1).to(torch.float32)     # (B, C)
    background = 1.0 - present.amax(dim=1, keepdim=True)     # (B, 1)
    return torch.cat([background, present], dim=1)


def clip_bce_loss(logits: torch.Tensor, events: torch.Tensor) -> dict[str, torch.Tensor]:
    """Multi-label BCE with logits of (B, 1 + C) clip logits against `clip_multilabel_targets`."""
    target = clip_multilabel_targets(events).to(logits)
    bce = F.binary_cross_entropy_with_logits(logits, target)
    return {"loss": bce, "bce": bce.detach()}
