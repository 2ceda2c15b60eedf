"""Blocks shared by at least two models.

    NetVLAD(num_clusters=K, dim=D)     (B, T, D) -> (B, D*K): learnable temporal pooling
    NetRVLAD(num_clusters=K, dim=D)    the same without the residual centres (official NetRVLAD)
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
        xz = torch.cat([xn, xn.new_zeros(length - 1, self.dim)]).double()     # (N + L - 1, D): zero rows past the end
        xd, ad, c2d = xz[: x.shape[0]], a.double(), c2.double()
        asum = windowed_sum(ad, length)                                       # (n, K)
        cross = windowed_sum(ad * (c2d.T @ xd.T).T, length)                   # (n, K); this order: 3x faster in MKL
        quad = self._windowed_quadratic(xz, ad, length)                       # (n, K)
        # ||v_k||^2 = quad - 2 A cross + A^2 ||c2_k||^2, in few ops (each op costs on a busy CPU)
        sq = torch.addcmul(quad, asum, torch.add(asum * (c2d * c2d).sum(0), cross, alpha=-2.0))
        norm = sq.clamp_min_(0.0).sqrt_()                                     # (n, K)
        scale = norm.clamp_min(NORM_EPS).reciprocal_()                        # intra-normalisation
        total = torch.linalg.vector_norm(norm * scale, dim=1).clamp_min_(NORM_EPS)  # (n,) the global norm
        centre_term = torch.einsum("cdk,dk->kc", weight, c2).double()         # (K, C): W[c,:,k] . c2[:,k]
        out = torch.bmm(num.double(), scale[:, :, None])[:, :, 0] - (asum * scale) @ centre_term
        return out / total[:, None]

    @staticmethod
    def _windowed_quadratic(xz: torch.Tensor, a: torch.Tensor, length: int) -> torch.Tensor:
        """sum_{i,j in window} a[i,k] a[j,k] x[i].x[j] for every window: (N + L - 1, D) frames with
        L - 1 zero rows appended, (N, K) -> (n, K).

        A window starting at s holds the pairs (i, i + delta) = (s + m, s + m + delta) with
        m + delta < L, each counted twice off the diagonal. With g[i, delta] = x[i].x[i+delta]
        (x2 for delta > 0) and the running sums over the lags
            run_j[i, k] = sum_{delta <= j} a[i+delta, k] g[i, delta],
        the pairs of a window that start at its m-th frame are a[s+m, k] run_{L-1-m}[s+m, k], so
            result[s, k] = sum_m a[s+m, k] run_{L-1-m}[s+m, k]:
        one banded Gram matrix, then 2 L in-place ops on (N, K) arrays that stay in cache (no
        (N, K, L) temporaries: on this CPU those cost more in memory traffic than in arithmetic).
        """
        N, K = a.shape
        L, n = length, N - length + 1
        gram = torch.bmm(xz[:N, None, :], xz.unfold(0, L, 1))[:, 0]          # (N, L): x[i].x[i+delta]
        gram[:, 1:] *= 2.0                                                    # (i, j) and (j, i)
        az = torch.cat([a, a.new_zeros(L - 1, K)])                            # zero assignments past the end
        run, out = a.new_zeros(N, K), a.new_zeros(n, K)
        for j in range(L):
            run.addcmul_(az[j:j + N], gram[:, j:j + 1])                       # + a[i+j] g[i, j]
            m = L - 1 - j                                                     # pairs starting at frame s + m
            out.addcmul_(run[m:m + n], a[m:m + n])
        return out


class NetRVLAD(NetVLAD):
    """NetRVLAD ("residual-less" VLAD, the official NetRVLAD / NetRVLAD++ layer): NetVLAD without centres.

        v[d, k] = sum_t a[t, k] x[t, d]

    then the same two normalisations and d-major flattening. That is NetVLAD with `clusters2` = 0, so
    `clusters2` is a fixed zero buffer here (not a parameter, not saved) and `forward` /
    `sliding_linear` are NetVLAD's. Parameters: D*K (`clusters` (D, K), the official name).
    """

    def __init__(self, *, num_clusters: int, dim: int):
        super().__init__(num_clusters=num_clusters, dim=dim)
        del self.clusters2
        self.register_buffer("clusters2", torch.zeros(1, dim, num_clusters), persistent=False)
