"""Disease scores, background correction and Monte Carlo p-values (scDRS steps 5-7).

All gene sets of all traits (each trait's disease set and its control sets) are scored in one pass
over the expression matrix: ``S = X @ W`` with ``W`` a sparse genes x sets weight matrix, computed
row block by row block with a compiled kernel that touches only the non-zero entries of both.
"""

from __future__ import annotations

import logging

import numba
import numpy as np
from numba import prange
from scipy import sparse

from ._blocks import balanced_row_bounds, iter_row_blocks
from ._memory import fresh_zeros

logger = logging.getLogger("psysc")


def vs_weights(gene_weight: np.ndarray, var_tech: np.ndarray, var: np.ndarray, weight: str) -> np.ndarray:
    """Per-gene score weights before normalisation to sum 1.

    ``"vs"``: ``w / sqrt(var_tech + 0.01)``; ``"inv_std"``: ``w / sqrt(var + 0.01)``; ``"uniform"``: ``w``.
    """
    if weight == "vs":
        return gene_weight / np.sqrt(var_tech + 1e-2)
    if weight == "inv_std":
        return gene_weight / np.sqrt(var + 1e-2)
    if weight == "uniform":
        return np.asarray(gene_weight, dtype=np.float64) * np.ones_like(var_tech, dtype=np.float64)
    raise ValueError(f"weight must be 'vs', 'inv_std' or 'uniform', not {weight!r}")


@numba.njit(parallel=True, cache=True)
def _spmm_csr_csr(indptr, indices, data, n_genes, w_indptr, w_cols, w_vals, dis, ctrl, row0, bounds):
    # trait by trait (its weights stay in cache), one pass over the non-zeros of X per trait:
    # acc[set] += x_cg * W_t[g, set]; set 0 is the disease set, set s > 0 control s - 1. The threads take the row
    # ranges bounds[p]:bounds[p + 1] (balanced_row_bounds).
    n_traits = dis.shape[0]
    n_local = ctrl.shape[2] + 1
    for t in range(n_traits):
        off = t * n_genes
        for p in prange(bounds.shape[0] - 1):
            acc = np.zeros(n_local, dtype=np.float64)
            for c in range(bounds[p], bounds[p + 1]):
                acc[:] = 0.0
                for k in range(indptr[c], indptr[c + 1]):
                    g = off + indices[k]
                    x = np.float64(data[k])
                    for j in range(w_indptr[g], w_indptr[g + 1]):
                        acc[w_cols[j]] += x * w_vals[j]
                dis[t, row0 + c] = acc[0]
                for s in range(1, n_local):
                    ctrl[t, row0 + c, s - 1] = acc[s]


@numba.njit(parallel=True, cache=True)
def _dense_times_csr(X, n_genes, w_indptr, w_cols, w_vals, dis, ctrl, row0):
    n, g_all = X.shape
    n_traits = dis.shape[0]
    n_local = ctrl.shape[2] + 1
    for t in range(n_traits):
        off = t * n_genes
        for c in prange(n):
            acc = np.zeros(n_local, dtype=np.float64)
            for g in range(g_all):
                x = np.float64(X[c, g])
                if x != 0.0:
                    for j in range(w_indptr[off + g], w_indptr[off + g + 1]):
                        acc[w_cols[j]] += x * w_vals[j]
            dis[t, row0 + c] = acc[0]
            for s in range(1, n_local):
                ctrl[t, row0 + c, s - 1] = acc[s]


def raw_scores(X, W: sparse.csr_matrix, n_ctrl: int, *, dtype=np.float32, block_size: int = 20_000, progress=None):
    """Scores of every trait's disease set and control sets for every cell of ``X``.

    ``W`` stacks one ``(n_genes, 1 + n_ctrl)`` weight matrix per trait vertically (trait ``t`` owns rows
    ``t * n_genes`` to ``(t + 1) * n_genes``); column 0 is the disease set, column ``1 + b`` control set ``b``.
    ``X`` may be sparse, dense, backed or dask-backed; it is read in row blocks. Sums are accumulated in
    float64 and touch only the non-zero entries of ``X`` and ``W``.

    Returns
    -------
    dis
        ``(n_traits, n_cells)`` float64 disease raw scores.
    ctrl
        ``(n_traits, n_cells, n_ctrl)`` control raw scores in ``dtype``.

    """
    n_genes = X.shape[1]
    W = sparse.csr_matrix(W)
    if W.shape[0] % n_genes or W.shape[1] != n_ctrl + 1:
        raise ValueError(f"W has shape {W.shape}; expected (n_traits * {n_genes}, {n_ctrl + 1})")
    n_traits = W.shape[0] // n_genes
    w_indptr = W.indptr.astype(np.int64)
    w_cols = W.indices.astype(np.int32)
    w_vals = W.data.astype(np.float64)
    dis = np.zeros((n_traits, X.shape[0]), dtype=np.float64)
    ctrl = fresh_zeros((n_traits, X.shape[0], n_ctrl), dtype)
    for start, stop, block in iter_row_blocks(X, block_size):
        if sparse.issparse(block):
            _spmm_csr_csr(block.indptr.astype(np.int64), block.indices, block.data, n_genes, w_indptr, w_cols, w_vals,
                          dis, ctrl, start, balanced_row_bounds(block.indptr, numba.get_num_threads()))
        else:
            _dense_times_csr(block, n_genes, w_indptr, w_cols, w_vals, dis, ctrl, start)
        if progress is not None:
            progress(stop - start)
    return dis, ctrl


@numba.njit(parallel=True, cache=True)
def _col_sums(M, n_parts):
    # float64 column sums of M
    n, m = M.shape
    step = (n + n_parts - 1) // n_parts
    partial = np.zeros((n_parts, m), dtype=np.float64)
    for t in prange(n_parts):
        for c in range(t * step, min(n, (t + 1) * step)):
            for j in range(m):
                partial[t, j] += M[c, j]
    return partial.sum(axis=0)


def _col_means(M):
    """float64 column means of ``M`` (no float64 copy)."""
    return _col_sums(M, numba.get_num_threads()) / M.shape[0]


@numba.njit(inline="always")
def _row_sum(row, mu, square):
    # sum over the row of row[j] - mu, or of its square, in float64 with eight interleaved accumulators (the
    # additions of one do not wait for those of another; the same order on every machine)
    b = row.shape[0]
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
    j = 0
    while j + 8 <= b:
        d0 = np.float64(row[j]) - mu
        d1 = np.float64(row[j + 1]) - mu
        d2 = np.float64(row[j + 2]) - mu
        d3 = np.float64(row[j + 3]) - mu
        d4 = np.float64(row[j + 4]) - mu
        d5 = np.float64(row[j + 5]) - mu
        d6 = np.float64(row[j + 6]) - mu
        d7 = np.float64(row[j + 7]) - mu
        if square:
            d0, d1, d2, d3, d4, d5, d6, d7 = d0 * d0, d1 * d1, d2 * d2, d3 * d3, d4 * d4, d5 * d5, d6 * d6, d7 * d7
        a0 += d0
        a1 += d1
        a2 += d2
        a3 += d3
        a4 += d4
        a5 += d5
        a6 += d6
        a7 += d7
        j += 8
    while j < b:
        d = np.float64(row[j]) - mu
        a0 += d * d if square else d
        j += 1
    return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))


@numba.njit(parallel=True, cache=True)
def _standardise_rows(raw, ctrl, ctrl_shift, ctrl_scale, raw_shift, norm, col_sum, col_min):
    # ctrl <- (ctrl - shift) / scale; then every cell's raw score and controls are standardised by the mean and
    # standard deviation (ddof 0) of its controls. A cell whose control scores have no spread (sd 0, or NaN from an
    # undefined scale) has no defined normalised score: norm NaN and its controls 0 (the caller decides what they
    # become). Each thread t takes a contiguous range of cells and adds the standardised controls (as stored) of
    # the others to col_sum[t] and their minima to col_min[t] (the next step's column centring and lowest score);
    # then a control score that was exactly 0 before the step is marked NaN (its final score is the lowest).
    n, b = ctrl.shape
    n_threads = col_sum.shape[0]
    step = (n + n_threads - 1) // n_threads
    for t in prange(n_threads):
        cs = col_sum[t]
        cm = col_min[t]
        zero = np.empty(b, dtype=np.bool_)
        for c in range(t * step, min(n, (t + 1) * step)):
            row = ctrl[c]
            for j in range(b):
                x = np.float64(row[j])
                zero[j] = x == 0.0
                row[j] = (x - ctrl_shift[j]) / ctrl_scale[j]
            mu = _row_sum(row, 0.0, False) / b
            sd = np.sqrt(_row_sum(row, mu, True) / b)
            if not sd > 0.0:
                norm[c] = np.nan
                row[:] = 0.0
                continue
            norm[c] = ((raw[c] - raw_shift) - mu) / sd
            for j in range(b):
                row[j] = (np.float64(row[j]) - mu) / sd
                v = np.float64(row[j])
                cs[j] += v
                cm[j] = min(cm[j], v)
                if zero[j]:
                    row[j] = np.nan


@numba.njit(parallel=True, cache=True)
def _finish_rows(ctrl, shift, lowest, flat, norm, counts):
    # the final control scores: ctrl - shift, lowest where ctrl is NaN (marked) and in flat rows; and per cell the
    # number of its final control scores >= norm[c] (0 for a NaN norm)
    n, b = ctrl.shape
    for c in prange(n):
        row = ctrl[c]
        q = norm[c]
        if flat[c]:
            row[:] = lowest
            counts[c] = b if lowest >= q else 0
            continue
        k = 0
        for j in range(b):
            v = np.float64(row[j]) - shift[j]
            row[j] = lowest if v != v else v
            k += np.float64(row[j]) >= q
        counts[c] = k


def correct_background(raw: np.ndarray, ctrl: np.ndarray, var_ratio: np.ndarray, *, trait: str = "trait",
                       counts: np.ndarray | None = None):
    """Normalise disease and control raw scores (scDRS's ``_correct_background``), ``ctrl`` in place.

    1. centre every score vector across cells, divide control ``b`` by ``sqrt(var_ratio[b])``;
    2. standardise every cell by the mean and standard deviation (ddof 0) of its control scores;
    3. centre every vector across cells again;
    4. cells whose raw score is exactly 0 get the smallest normalised score (minus 1e-3 for the disease).

    A cell whose control scores have no spread after step 1 (all equal, or undefined where a control set has no
    variance) cannot be standardised (scDRS gives NaN, which then spreads to every cell through the means). psysc
    leaves such cells out of the means of step 3; their control scores become the smallest score, and their
    disease score too when their raw score is 0 (as in step 4), else NaN (p-value 1 in
    :func:`monte_carlo_pvalues`). Both are counted in a warning that names ``trait``.

    Three passes over ``ctrl``, with no copy of it: column means, step 2 (with the column sums and minima of the
    result, and marks on the control scores that were exactly 0), steps 3-4. ``counts`` (int64, one per cell),
    when given, receives from the last pass the number of each cell's final control scores at or above its final
    score, for :func:`monte_carlo_pvalues`.

    Returns
    -------
    norm
        float64 normalised disease scores; ``ctrl`` holds the normalised control scores.

    """
    raw = np.asarray(raw, dtype=np.float64)
    n, b = ctrl.shape
    zero_raw = raw == 0
    ctrl_mean = _col_means(ctrl)
    norm = np.empty(n, dtype=np.float64)
    n_threads = numba.get_num_threads()
    col_sum = np.zeros((n_threads, b), dtype=np.float64)
    col_min = np.full((n_threads, b), np.inf, dtype=np.float64)
    _standardise_rows(raw, ctrl, ctrl_mean, np.sqrt(np.asarray(var_ratio, dtype=np.float64)), raw.mean(), norm,
                      col_sum, col_min)
    flat = np.isnan(norm)  # no spread among the controls (their rows of ctrl are 0)
    n_flat = int(flat.sum())
    shift = np.zeros(b, dtype=np.float64)
    if n_flat == n:
        lowest = 0.0
    else:
        norm -= np.nanmean(norm)
        shift = col_sum.sum(axis=0) / (n - n_flat)  # the flat rows add 0 to the column sums
        # the smallest final control score: rounding is monotone, so it is the rounded smallest of each column
        lowest_ctrl = (col_min.min(axis=0) - shift).astype(ctrl.dtype).min()
        lowest = min(np.nanmin(norm), float(lowest_ctrl))
    norm[zero_raw] = lowest - 1e-3
    if counts is None:
        counts = np.empty(n, dtype=np.int64)
    _finish_rows(ctrl, shift, lowest, flat, norm, counts)
    if n_flat:
        warn_flat_cells(trait, n_flat, n, int(np.isnan(norm).sum()))
    return norm


def warn_flat_cells(trait: str, n_flat: int, n: int, n_undefined: int) -> None:
    """The warning of :func:`correct_background` about cells without spread among their control scores."""
    logger.warning(
        "%s: %d of %d cells have no spread among their control scores (all equal, or undefined where a control "
        "set has no variance), so they cannot be standardised; their control scores are set to the lowest score, "
        "and their normalised score too where they express no disease gene (%d cells), else NaN with p-value 1 "
        "(%d cells)",
        trait, n_flat, n, n_flat - n_undefined, n_undefined,
    )


@numba.njit(parallel=True, cache=True)
def _mc_counts(norm, ctrl, out):
    n, b = ctrl.shape
    for c in prange(n):
        k = 0
        for j in range(b):
            if ctrl[c, j] >= norm[c]:
                k += 1
        out[c] = k


@numba.njit(inline="always")
def _bucket(v, lo, scale, top):
    # f(v) = trunc(clip((v - lo) * scale, 0, n_buckets - 1)), non-decreasing in v
    return int(min(max((v - lo) * scale, 0.0), top))


@numba.njit(inline="always")
def _queries_le(sorted_q, pos, v):
    # the number of queries <= v, from pos = starts[f(v)] (the queries of lower buckets, all < v) on: only the
    # queries of v's own bucket can be <= v. The first two are compared side by side, without branches (sorted:
    # if the first is > v, so is the second); the scan goes on only when the third is <= v too. sorted_q ends with
    # three +inf sentinels (_padded_queries), which end every scan of a finite v.
    n = pos + (sorted_q[pos] <= v) + (sorted_q[pos + 1] <= v)
    if sorted_q[pos + 2] <= v:
        n = pos + 2
        while sorted_q[n] <= v:
            n += 1
    return n


def rounded_queries(sorted_q: np.ndarray, null_dtype) -> np.ndarray:
    """The sorted queries in the precision of the null.

    Rounded up to float32 for a float32 null (for a float32 ``v``, ``q <= v`` exactly when ``v`` reaches the
    smallest float32 ``>= q``; half the bytes to keep in cache), float64 otherwise. Rounding up keeps them sorted.
    """
    if null_dtype == np.float32:
        q = sorted_q.astype(np.float32)
        low = q.astype(np.float64) < sorted_q
        q[low] = np.nextafter(q[low], np.float32(np.inf))
        return q
    return sorted_q.astype(np.float64)


def _padded_queries(sorted_q: np.ndarray, null_dtype) -> np.ndarray:
    """The sorted queries as :func:`_queries_le` compares them.

    :func:`rounded_queries`, then three ``+inf`` sentinels.
    """
    q = rounded_queries(sorted_q, null_dtype)
    return np.concatenate([q, np.full(3, np.inf, dtype=q.dtype)])


@numba.njit(parallel=True, cache=True)
def _pooled_hist(sorted_q, ctrl, starts, lo, scale, hist):
    # hist[t, j] += 1 for each null value v with exactly j queries <= v (t: the thread's row). The bucket f(v)
    # (_bucket) is non-decreasing in v, so the queries of lower buckets are < v and those of higher buckets > v
    # (starts[k] = number of queries in buckets < k): only the queries of v's own bucket are compared
    # (_queries_le). The caller picks the narrowest dtypes of starts and hist, to keep them in cache. A row's
    # buckets are computed first, in a loop of their own (vectorised), then its values are counted.
    n, b = ctrl.shape
    n_threads = hist.shape[0]
    m = sorted_q.shape[0] - 3  # less the sentinels
    top = np.float64(starts.shape[0] - 2)
    q_max = sorted_q[m - 1]
    step = (n + n_threads - 1) // n_threads
    for t in prange(n_threads):
        h = hist[t]
        row_bucket = np.empty(b, dtype=np.int32)
        for c in range(t * step, min(n, (t + 1) * step)):
            row = ctrl[c]
            for j in range(b):
                row_bucket[j] = _bucket(np.float64(row[j]), lo, scale, top)
            for j in range(b):
                v = row[j]
                h[m if v >= q_max else _queries_le(sorted_q, np.int64(starts[row_bucket[j]]), v)] += 1
    return hist.sum(axis=0, dtype=np.int64)


@numba.njit(parallel=True, cache=True, nogil=True)
def _grouped_pooled_hist(sorted_q, ctrl, starts, lo, scale, n_threads, shift, chunk_rows):
    # _pooled_hist for many queries (their arrays outgrow the caches): each thread takes chunk_rows rows of null
    # values at a time, groups them by range of buckets (2^shift buckets per group, a counting sort), and then
    # counts them group by group, so that the buckets, queries and counts it touches stay in cache. Only the
    # values are moved: a value's bucket is computed again in each of the three loops (cheaper than storing it).
    n, b = ctrl.shape
    m = sorted_q.shape[0] - 3  # less the sentinels
    n_buckets = starts.shape[0] - 1
    top = np.float64(n_buckets - 1)
    q_max = sorted_q[m - 1]
    n_groups = (n_buckets >> shift) + 1
    hist = np.zeros((n_threads, m + 1), dtype=np.int64)
    step = (n + n_threads - 1) // n_threads
    for t in prange(n_threads):
        rows = max(1, min(chunk_rows, step))
        grouped = np.empty(rows * b, dtype=ctrl.dtype)
        offset = np.zeros(n_groups + 1, dtype=np.int64)
        h = hist[t]
        r0, r_end = t * step, min(n, (t + 1) * step)
        while r0 < r_end:
            r1 = min(r_end, r0 + rows)
            offset[:] = 0
            for c in range(r0, r1):
                for j in range(b):
                    v = ctrl[c, j]
                    if v >= q_max:  # at or above every query: no lookup
                        h[m] += 1
                    else:
                        offset[(_bucket(np.float64(v), lo, scale, top) >> shift) + 1] += 1
            for g in range(n_groups):
                offset[g + 1] += offset[g]
            for c in range(r0, r1):
                for j in range(b):
                    v = ctrl[c, j]
                    if not v >= q_max:  # the values the first loop counted in offset (NaN too, as there)
                        g = _bucket(np.float64(v), lo, scale, top) >> shift
                        o = offset[g]
                        offset[g] = o + 1
                        grouped[o] = v
            for i in range(offset[n_groups - 1]):
                v = grouped[i]
                h[_queries_le(sorted_q, np.int64(starts[_bucket(np.float64(v), lo, scale, top)]), v)] += 1
            r0 = r1
    return hist.sum(axis=0)


#: from this many queries on, the pooled p-values group the null values first (:func:`_grouped_pooled_hist`)
GROUPED_QUERIES = 131_072
#: bytes of null values grouped at a time per thread (12 million float32 values)
_GROUP_BYTES = 48 * 2**20
#: buckets per group of :func:`_grouped_pooled_hist`, as a power of 2 (4,096: 16 KB of bucket table per group)
_GROUP_SHIFT = 12


def monte_carlo_pvalues(norm: np.ndarray, ctrl: np.ndarray, *, counts: np.ndarray | None = None):
    """Per-cell and pooled Monte Carlo p-values.

    ``mc_pval[c] = (1 + #{b: ctrl[c, b] >= norm[c]}) / (1 + B)``;
    ``pval[c] = (1 + #{all control scores >= norm[c]}) / (1 + N B)`` (the scDRS p-value), computed by
    sorting the N disease scores and binning the N*B control scores among them (no sort of the null).
    Cells with an undefined (NaN) score get p-value 1 (see :func:`correct_background`); their control scores
    stay in the pooled null. ``counts``: the per-cell counts of ``mc_pval`` when already known (from
    :func:`correct_background`), else counted here.
    """
    n, b = ctrl.shape
    if counts is None:
        counts = np.empty(n, dtype=np.int64)
        _mc_counts(norm, ctrl, counts)  # a NaN score counts no control
    mc_pval = (1.0 + counts) / (1.0 + b)
    finite = np.isfinite(norm)
    if finite.all():
        return mc_pval, _pooled_pvalues(norm, ctrl)
    mc_pval[~finite] = 1.0
    pooled = np.ones(n)
    if finite.any():
        pooled[finite] = _pooled_pvalues(norm[finite], ctrl)
    return mc_pval, pooled


def _pooled_pvalues(queries: np.ndarray, null: np.ndarray) -> np.ndarray:
    """``(1 + #{null values >= q}) / (1 + null.size)`` for every query ``q`` (finite), ``null`` 2-D."""
    m = queries.shape[0]
    order = np.argsort(queries, kind="stable")
    sorted_q = queries[order]
    grouped = m >= GROUPED_QUERIES
    n_buckets = 2 * m if grouped else 4 * m  # ungrouped: 4 buckets per query, starts in uint16, stay in cache
    lo, hi = float(sorted_q[0]), float(sorted_q[-1])
    scale = n_buckets / (hi - lo) if hi > lo else 0.0
    bucket = np.minimum(np.maximum((sorted_q - lo) * scale, 0.0), n_buckets - 1).astype(np.int64)
    starts = np.searchsorted(bucket, np.arange(n_buckets + 1), side="left")
    starts = starts.astype(np.uint16 if m < 2**16 else np.int32 if m < 2**31 else np.int64)
    n_threads = numba.get_num_threads()
    padded = _padded_queries(sorted_q, null.dtype)
    if grouped:
        chunk_rows = max(1, _GROUP_BYTES // (null.dtype.itemsize * max(1, null.shape[1])))
        hist = _grouped_pooled_hist(padded, null, starts, lo, scale, n_threads, _GROUP_SHIFT, chunk_rows)
    else:
        counts = np.zeros((n_threads, m + 1), dtype=np.int32 if null.size < 2**31 else np.int64)
        hist = _pooled_hist(padded, null, starts, lo, scale, counts)
    # a null value with j queries <= it counts for the queries at sorted positions 0..j-1
    ge = np.cumsum(hist[::-1])[::-1][1:]  # ge[i] = sum_{j > i} hist[j]
    pooled = np.empty(m, dtype=np.float64)
    pooled[order] = (1.0 + ge) / (1.0 + null.size)
    return pooled
