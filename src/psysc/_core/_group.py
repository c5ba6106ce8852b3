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
def _geary_sums(indptr, indices, weights, VT, means, num, den):
    # per vector k (a row of VT, in float64): num[k] = sum_ij w_ij (x_i - x_j)^2, den[k] = sum_i (x_i - mean_k)^2,
    # both accumulated over i in order
    m, n = VT.shape
    for k in prange(m):
        x = VT[k]
        total = 0.0
        for i in range(n):
            vi = np.float64(x[i])
            for e in range(indptr[i], indptr[i + 1]):
                d = vi - np.float64(x[indices[e]])
                total += weights[e] * d * d
        num[k] = total
        sq = 0.0
        for i in range(n):
            d = np.float64(x[i]) - means[k]
            sq += d * d
        den[k] = sq


def gearys_c_rows(graph: sparse.csr_matrix, VT: np.ndarray, means: np.ndarray | None = None) -> np.ndarray:
    """Geary's C of every row of ``VT`` (``(m, N)``: one vector of the ``N`` cells per row) on ``graph``.

    ``C = (N - 1) sum_ij w_ij (x_i - x_j)^2 / (2 W sum_i (x_i - mean)^2)``, in float64 from values in their own
    precision (no float64 copy of ``VT``: a vector's values are contiguous, read by one thread).

    Parameters
    ----------
    graph
        ``(N, N)`` weighted adjacency (CSR).
    VT
        ``(m, N)`` values, C-contiguous (else copied).
    means
        Means to centre each vector by (default: float64 means of ``VT``'s rows).

    """
    graph = sparse.csr_matrix(graph)
    VT = np.ascontiguousarray(VT)
    m, n = VT.shape
    if means is None:
        means = VT.mean(axis=1, dtype=np.float64)
    num, den = np.empty(m), np.empty(m)
    _geary_sums(graph.indptr.astype(np.int64), graph.indices.astype(np.int64), graph.data.astype(np.float64), VT,
                np.asarray(means, dtype=np.float64), num, den)
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


def distribution_match_rows(rows: np.ndarray, ref: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Give each row of ``rows`` (C-contiguous) the values of ``ref``, placed in the row's rank order.

    Ties are ranked by order of appearance, so only the spatial arrangement of each control differs
    from the disease scores. Into ``out`` (same shape) when given. Rows sorted in parallel (finite values;
    float32 rows by one integer-key sort each).
    """
    if out is None:
        out = np.empty(rows.shape, dtype=ref.dtype)
    if rows.dtype == np.float32 and rows.shape[1] < 2**32:
        _place_by_rank_float32(rows, np.sort(ref), out)
    else:
        _place_by_rank(rows, np.sort(ref), out)
    return out
