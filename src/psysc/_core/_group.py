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


@numba.njit(parallel=True, cache=True)
def _place_by_rank(columns, sorted_ref, out):
    # out[j, i] = sorted_ref[rank of columns[j, i] in row j], ties by position (a stable sort); rows in parallel
    for j in prange(columns.shape[0]):
        order = np.argsort(columns[j], kind="mergesort")
        for r in range(order.shape[0]):
            out[j, order[r]] = sorted_ref[r]


@numba.njit(parallel=True, cache=True)
def _place_by_rank_float32(columns, sorted_ref, out):
    # _place_by_rank for float32 rows (fewer than 2^32 cells): one sort of 64-bit keys, the float's bits mapped
    # to an unsigned integer of the same order in the high half and the position in the low half (ties by
    # position, as a stable sort), instead of an argsort
    n = columns.shape[1]
    sign = np.uint32(0x80000000)
    low = np.uint64(0xFFFFFFFF)
    for j in prange(columns.shape[0]):
        keys = np.empty(n, dtype=np.uint64)
        bits = (columns[j] + np.float32(0.0)).view(np.uint32)  # -0.0 + 0.0 = +0.0: equal values, equal keys
        for i in range(n):
            u = bits[i]
            u = ~u if u & sign else u | sign
            keys[i] = (np.uint64(u) << np.uint64(32)) | np.uint64(i)
        keys.sort()
        for r in range(n):
            out[j, keys[r] & low] = sorted_ref[r]


def distribution_match(values: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Give each column of ``values`` the values of ``ref``, placed in the column's rank order.

    Ties are ranked by order of appearance, so only the spatial arrangement of each control differs
    from the disease scores. The columns are sorted as contiguous rows of a transposed copy, in parallel
    (finite values; float32 columns by one integer-key sort each).
    """
    values = np.asarray(values)
    out_t = np.empty((values.shape[1], values.shape[0]), dtype=ref.dtype)
    columns = np.ascontiguousarray(values.T)
    if columns.dtype == np.float32 and values.shape[0] < 2**32:
        _place_by_rank_float32(columns, np.sort(ref), out_t)
    else:
        _place_by_rank(columns, np.sort(ref), out_t)
    return out_t.T
