"""Blocks shared by at least two models.

    NetVLAD(num_clusters=K, dim=D)     (B, T, D) -> (B, D*K): learnable temporal pooling
    windowed_sum(x, length)            sums of every window of `length` rows, summed directly
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

NORM_EPS = 1e-12  # F.normalize's default eps: a vector is divided by max(||v||, eps)


def windowed_sum(x: torch.Tensor, length: int) -> torch.Tensor:
    """Sums of the windows x[s : s + length] along dim 0, for s = 0 .. len(x) - length.

    (N, ...) -> (N - length + 1, ...), in x's dtype. Summed directly over a strided view: no
    cumulative sums, so no cancellation between far-apart frames (and faster than cumsum on CPU).
    """
    return x.unfold(0, length, 1).sum(-1)


class NetVLAD(nn.Module):
    """NetVLAD over time, as in the official NetVLAD++ code (its LOUPE-style variant).

    Frames are L2-normalised (the official `add_batch_norm=True` path: no batch-norm parameters),
    soft-assigned to K clusters by a softmax of x @ clusters, and their assignment-weighted
    residuals to a second set of centres (`clusters2`) are summed over time:

        v[d, k] = sum_t a[t, k] x[t, d] - (sum_t a[t, k]) c2[d, k]

    then L2-normalised per cluster (over d), flattened d-major (index d*K + k) and L2-normalised
    again. Parameters: 2*D*K (`clusters` (D, K), `clusters2` (1, D, K); the official names, so
    official state dicts load as they are).
    """

    def __init__(self, *, num_clusters: int, dim: int):
        super().__init__()
        self.num_clusters = num_clusters
        self.dim = dim
        self.clusters = nn.Parameter(torch.randn(dim, num_clusters) / math.sqrt(dim))
        self.clusters2 = nn.Parameter(torch.randn(1, dim, num_clusters) / math.sqrt(dim))

    def assign(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., D) frames -> (normalised frames (..., D), soft assignments (..., K))."""
        x = F.normalize(x, p=2, dim=-1, eps=NORM_EPS)
        return x, torch.softmax(x @ self.clusters, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D)
        x, a = self.assign(x)                                        # (B, T, D), (B, T, K)
        vlad = torch.einsum("btk,btd->bdk", a, x)                    # (B, D, K)
        vlad = vlad - a.sum(dim=1, keepdim=True) * self.clusters2    # (B, 1, K) * (1, D, K)
        vlad = F.normalize(vlad, p=2, dim=1, eps=NORM_EPS)           # intra-normalisation
        vlad = vlad.reshape(x.shape[0], self.dim * self.num_clusters)  # (B, D*K), d-major
        return F.normalize(vlad, p=2, dim=1, eps=NORM_EPS)

    @torch.no_grad()
    def sliding_linear(self, x: torch.Tensor, weight: torch.Tensor, *, length: int) -> torch.Tensor:
        """weight . forward(window) for every window x[s : s + length] of a sequence, exactly.

        x: (N, D) frames; weight: (C, D, K), a linear map applied to this layer's (D*K) output
        (d-major, as `forward` flattens). Returns (N - length + 1, C) in float64.

        The aggregation is a sum over frames, so windows share the work instead of redoing it:
          numerator  sum_d W[c,d,k] v[d,k] = sum_t a[t,k] (W[c,:,k] . x[t]) - A[k] (W[c,:,k] . c2[:,k])
                     -> one per-frame projection (the one big matmul), then windowed sums;
          norms      ||v[:,k]||^2 = sum_{i,j} a[i,k] a[j,k] x[i].x[j] - 2 A[k] sum_t a[t,k] x[t].c2[:,k]
                                    + A[k]^2 ||c2[:,k]||^2, with A[k] = sum_t a[t,k]
                     -> the banded Gram matrix x[i].x[i+delta], delta < length, then masked
                        windowed sums (float64, `_windowed_quadratic`);
          the two normalisations then only rescale each cluster's term and the sum.
        """
        K, n = self.num_clusters, x.shape[0] - length + 1
        if n < 1:
            raise ValueError(f"sequence of {x.shape[0]} frames is shorter than the window ({length})")
        C = weight.shape[0]
        xn, a = self.assign(x)                                                # (N, D), (N, K)
        c2 = self.clusters2[0]                                                # (D, K)
        # numerator: per-frame projection on each class's cluster block, summed over windows
        proj = (xn @ weight.permute(1, 0, 2).reshape(self.dim, C * K)).view(-1, C, K)  # (N, C, K)
        num = windowed_sum(proj * a[:, None, :], length)                      # (n, C, K)
        # squared norms of the residual sums, from the banded Gram matrix, all in float64
        xd, ad, c2d = xn.double(), a.double(), c2.double()
        asum = windowed_sum(ad, length)                                       # (n, K)
        cross = windowed_sum(ad * (xd @ c2d), length)                         # (n, K)
        quad = self._windowed_quadratic(xd, ad, length)                       # (n, K)
        # ||v_k||^2 = quad - 2 A cross + A^2 ||c2_k||^2, in few ops (each op costs on a busy CPU)
        sq = torch.addcmul(quad, asum, torch.add(asum * (c2d * c2d).sum(0), cross, alpha=-2.0))
        norm = sq.clamp_min_(0.0).sqrt_()                                     # (n, K)
        scale = norm.clamp_min(NORM_EPS).reciprocal_()                        # intra-normalisation
        total = torch.linalg.vector_norm(norm * scale, dim=1).clamp_min_(NORM_EPS)  # (n,) the global norm
        centre_term = torch.einsum("cdk,dk->kc", weight, c2).double()         # (K, C): W[c,:,k] . c2[:,k]
        out = torch.bmm(num.double(), scale[:, :, None])[:, :, 0] - (asum * scale) @ centre_term
        return out / total[:, None]

    @staticmethod
    def _windowed_quadratic(x: torch.Tensor, a: torch.Tensor, length: int) -> torch.Tensor:
        """sum_{i,j in window} a[i,k] a[j,k] x[i].x[j] for every window: (N, D), (N, K) -> (n, K).

        A window starting at s holds the pairs (i, i + delta) = (s + m, s + m + delta) with
        m + delta < L. So, with mask[delta, m] = [m + delta < L] (x2 off the diagonal):
            w[i, k, m] = a[i,k] sum_delta a[i+delta, k] x[i].x[i+delta] mask[delta, m]   (one bmm)
            result[s, k] = sum_m w[s + m, k, m]                                          (a strided sum)
        A handful of large ops, not one per lag: many small multi-threaded ops stall on a busy CPU.
        """
        N, K = a.shape
        L, n = length, N - length + 1
        xz = torch.cat([x, x.new_zeros(L - 1, x.shape[1])])                   # zero rows past the end
        gram = torch.bmm(x[:, None, :], xz.unfold(0, L, 1))[:, 0]            # (N, L): x[i].x[i+delta]
        d = torch.arange(L, device=x.device)
        mask = ((d[:, None] + d[None]) < L).to(x.dtype) * torch.where(d == 0, 1.0, 2.0).to(x.dtype)[:, None]
        az = torch.cat([a, a.new_zeros(L - 1, K)])
        w = torch.bmm(az.unfold(0, L, 1), gram[:, :, None] * mask)           # (N, K, L): over delta
        w = (w * a[:, :, None]).contiguous()
        return w.as_strided((n, K, L), (K * L, L, K * L + 1)).sum(-1)         # w[s + m, k, m] summed over m
