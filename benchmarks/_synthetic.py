"""Synthetic single-cell count data and GWAS-like gene sets for the benchmarks.

The count model is a negative binomial (gamma-Poisson) per cell and gene:

- gene baseline means are log-normal (a few highly expressed genes, a long tail of rare ones);
- a handful of "cell types" each up- or down-regulate a random 5% of the genes (log-normal fold changes),
  so that the matrix has some biological structure besides noise;
- cells differ in library size (log-normal size factors);
- the over-dispersion of each gene is log-normal around 0.3 (variance = mean + phi * mean^2);
- one global scale factor is calibrated (bisection on the expected fraction of non-zeros) so that about
  ``density`` of the entries are non-zero.

Counts are sampled row block by row block by inverse-CDF sampling that shares one uniform draw per entry:
an entry is zero when ``u <= P(X = 0)``, and only the non-zero entries (a ``density`` fraction of them) walk up
the negative-binomial CDF. No dense ``n_cells x n_genes`` array is ever built: peak memory is a few arrays of
``block x n_genes`` float32 plus the growing CSR parts.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["make_counts", "make_gene_set", "gene_names"]


def gene_names(n_genes: int) -> list[str]:
    """Gene names ``G00000``, ``G00001``, ..."""
    width = max(5, len(str(n_genes - 1)))
    return [f"G{i:0{width}d}" for i in range(n_genes)]


def _expected_density(scale: float, mu_type: np.ndarray, size_f: np.ndarray, r: np.ndarray) -> float:
    """Expected fraction of non-zero entries for a global mean scale (cells given by a sample)."""
    # mean per (sampled cell, gene) = scale * size factor * type-specific gene mean
    m = scale * size_f[:, None] * mu_type
    p0 = np.exp(r[None, :] * np.log(r[None, :] / (r[None, :] + m)))
    return float(1.0 - p0.mean())



def _sample_block(u, mu_type, cell_type, size_f, r, r32):
    """Negative-binomial counts of one row block from its uniforms ``u`` (see the module docstring)."""
    m = mu_type[cell_type]  # (block, n_genes) float32, fresh copy
    m *= size_f[:, None].astype(np.float32)
    # P(X = 0) = (r / (r + m)) ** r
    p0 = r32 / (r32 + m)
    np.log(p0, out=p0)
    p0 *= r32
    np.exp(p0, out=p0)
    rows, cols = np.nonzero(u > p0)  # row-major order: already CSR-sorted
    del p0
    # inverse-CDF walk for the non-zero entries only (float64 for accuracy)
    mm = m[rows, cols].astype(np.float64)
    del m
    uu = u[rows, cols].astype(np.float64)
    rr = r[cols]
    q = mm / (rr + mm)
    pk = np.exp(rr * np.log(rr / (rr + mm)))  # P(X = 0)
    cdf = pk.copy()
    counts = np.zeros(len(mm), dtype=np.float32)
    active = np.arange(len(mm))
    k = 0
    while active.size:
        # P(X = k + 1) = P(X = k) * (k + r) / (k + 1) * q
        pk = pk * (k + rr[active]) / (k + 1) * q[active]
        cdf = cdf + pk
        k += 1
        done = (uu[active] <= cdf) | (pk < 1e-300) | (k >= 1_000_000)
        # counts of the finished entries: k
        counts[active[done]] = k
        keep = ~done
        active, pk, cdf = active[keep], pk[keep], cdf[keep]
    return counts, cols.astype(np.int32), np.bincount(rows, minlength=u.shape[0])


def make_counts(
    n_cells: int = 50_000,
    n_genes: int = 20_000,
    density: float = 0.10,
    seed: int = 0,
    *,
    n_types: int = 8,
    block_size: int = 1_000,
    return_cell_types: bool = False,
    workers: int | None = None,
    sink=None,
):
    """Sparse raw UMI-like counts with realistic structure.

    Parameters
    ----------
    n_cells, n_genes
        Shape of the matrix.
    density
        Target fraction of non-zero entries (reached within about 1% relative).
    seed
        Seed of every random choice (the result is deterministic for a given seed and shape).
    n_types
        Number of synthetic cell types (gene-expression programmes).
    block_size
        Cells sampled at once; the memory used while sampling is about
        ``5 * block_size * n_genes * 4`` bytes per worker.
    return_cell_types
        Also return the cell-type label of every cell.
    workers
        Threads that sample the row blocks (default: the CPU count, at most 16). The result does not depend on it.
    sink
        Optional ``sink(start, counts, cols, row_nnz)`` called with every row block in order (its non-zero counts,
        their column indices and the number per row) instead of keeping the blocks: data larger than memory are
        streamed to disk this way. ``make_counts`` then returns ``None`` (or only the cell types).

    Returns
    -------
    ``scipy.sparse.csr_matrix`` (float32 holding integer counts, ``n_cells x n_genes``, sorted indices), and the
    cell types (``numpy.ndarray`` of int) when ``return_cell_types``.
    """
    if not 0 < density < 1:
        raise ValueError(f"density must be in (0, 1), not {density}")
    rng = np.random.default_rng(seed)

    # --- gene parameters -------------------------------------------------------------------------------------
    log_mu = rng.normal(0.0, 1.6, n_genes)  # log-normal baseline means (scale fixed below)
    mu = np.exp(log_mu)
    phi = np.exp(rng.normal(np.log(0.3), 0.5, n_genes)).clip(0.02, 5.0)  # over-dispersion
    r = (1.0 / phi).astype(np.float64)  # NB size parameter

    # cell-type programmes: each type changes a random 5% of genes by a log-normal fold change
    fc = np.ones((n_types, n_genes))
    n_de = max(1, n_genes // 20)
    for t in range(n_types):
        de = rng.choice(n_genes, n_de, replace=False)
        fc[t, de] = np.exp(rng.normal(0.0, 1.0, n_de))
    mu_type = mu[None, :] * fc

    # --- cell parameters -------------------------------------------------------------------------------------
    cell_type = rng.integers(0, n_types, n_cells)
    size_f = np.exp(rng.normal(0.0, 0.45, n_cells))
    size_f /= size_f.mean()

    # --- calibrate the global scale to the target density (bisection in log space on a cell sample) ------------
    n_cal = min(n_cells, 400)
    cal = rng.choice(n_cells, n_cal, replace=False)
    mu_cal, sf_cal = mu_type[cell_type[cal]], size_f[cal]
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if _expected_density(np.exp(mid), mu_cal, sf_cal, r) < density:
            lo = mid
        else:
            hi = mid
    scale = np.exp(0.5 * (lo + hi))
    mu_type = (mu_type * scale).astype(np.float32)
    r32 = r.astype(np.float32)

    # --- sample counts, row block by row block ------------------------------------------------------------------
    # The uniforms are drawn here, block after block, from the one generator; the rest of a block's work is
    # deterministic given them, so it runs in worker threads (NumPy releases the GIL) without changing the result.
    data_parts: list[np.ndarray] = []
    index_parts: list[np.ndarray] = []
    row_nnz = np.zeros(n_cells, dtype=np.int64)
    n_workers = max(1, min(os.cpu_count() or 1, 16)) if workers is None else max(1, int(workers))

    starts = range(0, n_cells, block_size)
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        pending: deque = deque()
        for i, start in enumerate(starts):
            stop = min(start + block_size, n_cells)
            u = rng.random((stop - start, n_genes), dtype=np.float32)
            pending.append((start, pool.submit(_sample_block, u, mu_type, cell_type[start:stop],
                                               size_f[start:stop], r, r32)))
            # keep at most n_workers blocks in memory; collect them all after the last one, in order
            while len(pending) > (n_workers if i < len(starts) - 1 else 0):
                first, future = pending.popleft()
                counts, cols, nnz = future.result()
                if sink is not None:
                    sink(first, counts, cols, nnz)
                    continue
                data_parts.append(counts)
                index_parts.append(cols)
                row_nnz[first : first + len(nnz)] = nnz

    if sink is not None:
        return cell_type if return_cell_types else None

    indptr = np.zeros(n_cells + 1, dtype=np.int64)
    np.cumsum(row_nnz, out=indptr[1:])
    if indptr[-1] < np.iinfo(np.int32).max:
        indptr = indptr.astype(np.int32)
    data = np.concatenate(data_parts)
    del data_parts
    indices = np.concatenate(index_parts)
    del index_parts
    X = sp.csr_matrix((data, indices, indptr), shape=(n_cells, n_genes))
    X.has_sorted_indices = True
    if return_cell_types:
        return X, cell_type
    return X


def make_gene_set(gene_names: list[str] | pd.Index, n: int = 1_000, seed: int = 0) -> pd.Series:
    """A GWAS-like gene set: ``n`` random genes with MAGMA-like z-score weights.

    Weights are ``|N(0, 1)| + 3`` clipped at 10 (top MAGMA genes have z-scores of about 3 to 10).
    The Series is indexed by gene name and sorted by decreasing weight, like a ``.gs`` file.
    """
    rng = np.random.default_rng(seed)
    names = np.asarray(gene_names)
    if n > len(names):
        raise ValueError(f"n={n} is larger than the number of genes ({len(names)})")
    genes = names[rng.choice(len(names), n, replace=False)]
    z = np.clip(np.abs(rng.normal(0.0, 1.0, n)) + 3.0, None, 10.0)
    s = pd.Series(z, index=pd.Index(genes, name="gene"), name="weight")
    return s.sort_values(ascending=False)
