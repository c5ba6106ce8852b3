"""Per-gene statistics used to match control genes (scDRS step 2).

The mean and variance follow scipy's sparse ``mean`` arithmetic exactly (values scaled by
``1/n`` in the data's precision, then accumulated cell by cell), so that the mean-variance bins,
which are sensitive to the last bit at bin edges, are the same as scDRS's on the same data.
The kernels stream row blocks and never copy the whole matrix.
"""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd
from scipy import sparse

from ._blocks import head_rows, iter_row_blocks, n_rows


@numba.njit(cache=True, nogil=True)
def _accumulate_sparse(indptr, indices, data, inv_n, s1, s2):
    # s1[g] += x / n, s2[g] += x^2 / n, in the dtype of s1/s2, cell by cell (scipy's order)
    for c in range(indptr.shape[0] - 1):
        for k in range(indptr[c], indptr[c + 1]):
            g = indices[k]
            x = data[k]
            s1[g] += x * inv_n
            s2[g] += (x * x) * inv_n


@numba.njit(parallel=True, cache=True, nogil=True)
def _csr_row_kinds(indptr, data, fractional, value):
    # per row: fractional[c] whether it holds a non-whole value (NaN and inf are not), value[c] the first such value,
    # else the row's largest value; a row's scan stops at its first non-whole value (log-normalised rows: at once)
    for c in numba.prange(indptr.shape[0] - 1):
        top = -np.inf
        for k in range(indptr[c], indptr[c + 1]):
            v = np.float64(data[k])
            if v != np.rint(v) and v == v:
                fractional[c] = True
                top = v
                break
            if v > top:
                top = v
        value[c] = top


def row_kinds(block) -> tuple[np.ndarray, np.ndarray]:
    """Per row of a block: whether it holds a non-whole value (NaN and inf are not), and a value.

    The value is the row's first non-whole value where it has one, else its largest stored value (``-inf`` for a
    row without stored values). Integer dtypes hold whole numbers only.
    """
    n = block.shape[0]
    fractional = np.zeros(n, dtype=bool)
    value = np.full(n, -np.inf)
    if sparse.issparse(block):
        block = block.tocsr()
        if np.issubdtype(block.dtype, np.integer) or np.issubdtype(block.dtype, np.bool_):
            if block.shape[1]:
                value = np.asarray(block.max(axis=1).todense(), dtype=np.float64).ravel()
            return fractional, value
        _csr_row_kinds(block.indptr, block.data, fractional, value)
        return fractional, value
    values = np.asarray(block, dtype=np.float64) if block.dtype.kind in "iub" else np.asarray(block)
    off = (values != np.rint(values)) & ~np.isnan(values)
    fractional = off.any(axis=1)
    first = off.argmax(axis=1)
    value = np.where(fractional, values[np.arange(n), first], values.max(axis=1, initial=-np.inf)).astype(np.float64)
    return fractional, value


def accumulation_dtype(X) -> np.dtype:
    """The precision of per-gene sums over cells.

    The data's for float32 and float64, float32 for float16 (whose sums overflow at 65,504), float64 for integers.
    """
    dtype = np.dtype(X.dtype)
    if not np.issubdtype(dtype, np.floating):
        return np.dtype(np.float64)
    return dtype if dtype.itemsize >= 4 else np.dtype(np.float32)


class SparseMoments:
    """Per-gene mean and population variance of sparse row blocks, and of their ``expm1``, in one pass.

    Blocks are added in row order (:meth:`add`); the sums follow scipy's sparse ``mean`` arithmetic (values
    scaled by ``1/n`` in the data's precision, accumulated cell by cell), so :meth:`result` is bit-identical to
    ``X.mean(axis=0)`` and ``X.power(2).mean(axis=0) - mean**2`` on the whole matrix, whatever the blocks.
    """

    def __init__(self, n_cells: int, n_genes: int, dtype, *, log: bool = True, expm1: bool = True):
        self.dtype = np.dtype(dtype)
        self.inv_n = self.dtype.type(1.0 / n_cells)
        self.sums = {kind: (np.zeros(n_genes, dtype=self.dtype), np.zeros(n_genes, dtype=self.dtype))
                     for kind, on in (("log", log), ("expm1", expm1)) if on}

    def add(self, block) -> None:
        """Add a CSR row block (the next rows)."""
        for kind, (s1, s2) in self.sums.items():
            data = block.data if kind == "log" else np.expm1(block.data)
            _accumulate_sparse(block.indptr, block.indices, data.astype(self.dtype, copy=False), self.inv_n, s1, s2)

    def result(self, kind: str = "log"):
        """``(mean, var)`` of the values (``"log"``) or of their ``expm1`` (``"expm1"``)."""
        s1, s2 = self.sums[kind]
        return s1, s2 - s1 * s1


def gene_mean_var(X, *, block_size: int = 10_000, expm1: bool = False):
    """Per-gene mean and population variance of ``X`` (or of ``expm1(X)``), streaming row blocks.

    For sparse input the result is bit-identical to ``X.mean(axis=0)`` and
    ``X.power(2).mean(axis=0) - mean**2`` computed by scipy on the whole matrix in memory.
    For dense input it follows ``numpy.mean``/``numpy.var`` (two passes, as scDRS for dense data): more
    accurate for highly expressed, nearly constant genes, so the same values stored dense and sparse can fall
    into other mean-variance bins at the bin edges.

    Returns
    -------
    mean, var
        Arrays of length ``n_genes`` in the floating dtype of the data (float64 for integer data).

    """
    n = n_rows(X)
    acc_dtype = accumulation_dtype(X)
    transform = np.expm1 if expm1 else None
    first = head_rows(X, 1)
    if sparse.issparse(first):
        moments = SparseMoments(n, X.shape[1], acc_dtype, log=not expm1, expm1=expm1)
        # expm1 makes a transformed copy of each block's values: smaller blocks bound that memory
        for _, _, block in iter_row_blocks(X, block_size if transform is None else max(1, block_size // 4)):
            moments.add(block)
        return moments.result("expm1" if expm1 else "log")
    # dense: numpy's two-pass mean/var (exact for in-memory data, blockwise sums otherwise)
    total = np.zeros(X.shape[1], dtype=acc_dtype)
    for _, _, block in iter_row_blocks(X, block_size):
        b = block.astype(acc_dtype, copy=False)
        total += (transform(b) if transform else b).sum(axis=0)
    mean = total / acc_dtype.type(n)
    sq = np.zeros(X.shape[1], dtype=acc_dtype)
    for _, _, block in iter_row_blocks(X, block_size):
        b = block.astype(acc_dtype, copy=False)
        d = (transform(b) if transform else b) - mean
        sq += (d * d).sum(axis=0)
    return mean, sq / acc_dtype.type(n)


def technical_variance(mean, var, ct_mean, ct_var, *, span: float = 0.3, degree: int = 2):
    """Technical variance of log expression from the count-scale mean-variance trend.

    A loess fit (``skmisc.loess``, span 0.3, degree 2) of ``log10 ct_var`` on ``log10 ct_mean`` over
    genes with non-zero count-scale variance gives the count-scale technical variance
    ``ct_var_tech``; it maps to the log scale as ``var_tech = var * ct_var_tech / ct_var``
    (Frost, NAR 2020), as in scDRS. Constant genes get ``var_tech = 0``.

    Returns
    -------
    ct_var_tech, var_tech
        float64 arrays.

    """
    from skmisc.loess import loess

    ct_var = np.asarray(ct_var)
    not_const = ct_var > 0
    fitted = np.zeros(ct_var.shape[0], dtype=np.float64)
    if not_const.sum() < 10:
        raise ValueError(
            f"only {int(not_const.sum())} genes vary across cells; the mean-variance trend needs at least 10. "
            "Is the matrix empty or constant?"
        )
    model = loess(np.log10(np.asarray(ct_mean)[not_const]), np.log10(ct_var[not_const]), span=span, degree=degree)
    model.fit()
    fitted[not_const] = model.outputs.fitted_values
    ct_var_tech = 10.0**fitted
    with np.errstate(divide="ignore", invalid="ignore"):
        var_tech = np.asarray(var, dtype=np.float64) * ct_var_tech / ct_var.astype(np.float64)
    var_tech[np.isnan(var_tech)] = 0.0
    return ct_var_tech, var_tech


def mean_var_bins(mean, var, *, n_mean_bin: int = 20, n_var_bin: int = 20) -> tuple[np.ndarray, int, int]:
    """Mean-variance bins used to match control genes (labels ``"i.j"``).

    Genes are cut into ``n_mean_bin`` quantile bins of mean expression, then each mean bin into
    ``n_var_bin`` quantile bins of variance (``pandas.qcut``, duplicate edges dropped). With fewer
    than ``10 * n_bin**2`` genes both counts fall to ``floor(sqrt(n_genes / 10))``.

    Returns
    -------
    labels, n_mean_bin, n_var_bin
        String labels per gene and the bin counts actually used.

    """
    n_genes = len(mean)
    n_bin_max = int(np.floor(np.sqrt(n_genes / 10)))
    if n_mean_bin > n_bin_max or n_var_bin > n_bin_max:
        n_mean_bin = n_var_bin = n_bin_max
    if n_mean_bin < 1:
        raise ValueError(f"{n_genes} genes are too few to build mean-variance bins (need at least 10).")
    mean_s = pd.Series(mean)
    var_s = pd.Series(var)
    mean_bin = pd.qcut(mean_s, n_mean_bin, labels=False, duplicates="drop").to_numpy()
    labels = np.empty(n_genes, dtype=object)
    for b in sorted(set(mean_bin)):
        sel = mean_bin == b
        var_bin = pd.qcut(var_s[sel], n_var_bin, labels=False, duplicates="drop").to_numpy()
        labels[sel] = [f"{b:d}.{v:d}" for v in var_bin]
    return labels.astype(str), n_mean_bin, n_var_bin
