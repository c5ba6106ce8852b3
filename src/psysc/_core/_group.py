"""Group-level statistics on per-cell scores (scDRS step 8): association, heterogeneity, FDR."""

from __future__ import annotations

import numba
import numpy as np
from numba import prange
from scipy import sparse


def bh_fdr(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (NaN kept as NaN)."""
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    ranked = q[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    adj = np.empty(m)
    adj[order] = np.minimum(ranked, 1.0)
    out[ok] = adj
    return out


@numba.njit(parallel=True, cache=True)
def _geary_numerators(indptr, indices, weights, V, out):
    # out[k] = sum_ij w_ij (V[i, k] - V[j, k])^2, rows accumulated in order per column
    n, m = V.shape
    for k in prange(m):
        total = 0.0
        for i in range(n):
            vi = V[i, k]
            for e in range(indptr[i], indptr[i + 1]):
                d = vi - V[indices[e], k]
                total += weights[e] * d * d
        out[k] = total


def gearys_c(graph: sparse.csr_matrix, V: np.ndarray, means: np.ndarray | None = None) -> np.ndarray:
    """Geary's C of every column of ``V`` on ``graph`` (all columns at once).

    ``C = (N - 1) sum_ij w_ij (x_i - x_j)^2 / (2 W sum_i (x_i - mean)^2)``.

    Parameters
    ----------
    graph
        ``(N, N)`` weighted adjacency (CSR).
    V
        ``(N, m)`` values.
    means
        Column means to centre by (default: float64 means of ``V``).
    """
    graph = sparse.csr_matrix(graph)
    V64 = np.ascontiguousarray(V, dtype=np.float64)
    n = V64.shape[0]
    num = np.empty(V64.shape[1], dtype=np.float64)
    _geary_numerators(graph.indptr.astype(np.int64), graph.indices.astype(np.int64),
                      graph.data.astype(np.float64), V64, num)
    if means is None:
        means = V64.mean(axis=0)
    den = ((V64 - np.asarray(means, dtype=np.float64)) ** 2).sum(axis=0)
    W = graph.data.astype(np.float64).sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        return (n - 1) * num / (2.0 * W * den)


def distribution_match(values: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Give each column of ``values`` the values of ``ref``, placed in the column's rank order.

    Ties are ranked by order of appearance, so only the spatial arrangement of each control differs
    from the disease scores.
    """
    order = np.argsort(values, axis=0, kind="stable")
    out = np.empty(values.shape, dtype=ref.dtype)
    np.put_along_axis(out, order, np.sort(ref)[:, None], axis=0)
    return out
