"""Row-block access to in-memory, backed and dask-backed matrices."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextvars import ContextVar

import numpy as np
from scipy import sparse

logger = logging.getLogger("psysc")

#: backed CSC matrices already reported (file, dataset): one warning per matrix
_WARNED_CSC: set[tuple[str, str]] = set()

#: told the number of rows of each block :func:`iter_row_blocks` gives, when set (a progress bar over the passes
#: of a step, :func:`psysc._utils.reports_cells_read`)
ROWS_READ: ContextVar[Callable[[int], object] | None] = ContextVar("psysc_rows_read", default=None)


def n_rows(X) -> int:
    return int(X.shape[0])


def is_dask(X) -> bool:
    return type(X).__module__.startswith("dask.")


def as_csr(X) -> sparse.csr_matrix:
    """Any 2-D matrix (sparse of any format, dense, anndata's backed sparse dataset) as a ``csr_matrix``.

    In canonical form (sorted column indices, duplicated entries summed: :func:`_canonical`), so that per-entry
    work (tokens, ``log1p``) sees each cell's value once. scipy.sparse holds no float16: float16 values are taken as
    float32, which holds them exactly.
    """
    if hasattr(X, "to_memory"):  # anndata backed sparse dataset
        X = X.to_memory()
    if not sparse.issparse(X):
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (cells x genes), got shape {X.shape}")
    if X.dtype == np.float16:
        X = X.astype(np.float32)
    return _canonical(sparse.csr_matrix(X))  # also turns csr_array and the other formats into a csr_matrix


def _backed_csc_in_memory(X):
    """A backed CSC matrix (anndata's dataset) read whole, as CSR, with a warning; any other ``X`` as it is.

    Rows of a CSC matrix lie across the whole file: every block of rows would read all of it.
    """
    if not (hasattr(X, "to_memory") and getattr(X, "format", None) == "csc"):
        return X
    group = getattr(X, "group", None)
    key = (str(getattr(getattr(group, "file", None), "filename", "")), str(getattr(group, "name", "")))
    if key not in _WARNED_CSC:
        _WARNED_CSC.add(key)
        logger.warning(
            "the backed matrix %s of %s is stored by column (CSC): a block of rows cannot be read without reading all "
            "of it, so each pass reads it whole into memory (as CSR). For row-block streaming, write it by row "
            "once: adata = anndata.read_h5ad(path); adata.X = adata.X.tocsr(); adata.write_h5ad(path)",
            key[1] or "X", key[0] or "the file",
        )
    return as_csr(X)


def _canonical(block: sparse.csr_matrix) -> sparse.csr_matrix:
    """``block`` itself when its rows are sorted without duplicated entries, else a copy brought to that form.

    scipy allows duplicated entries in CSR (they add up); per-entry work such as ``log1p`` or squares would
    treat them as separate values, so every block is brought to this form first.
    """
    if block.has_canonical_format:
        return block
    block = block.copy()
    block.sum_duplicates()
    return block


def _read_rows(X, start: int, stop: int):
    """Rows ``start:stop`` of a backed, dask-backed or other matrix as canonical CSR or a C-contiguous ndarray."""
    block = X[start:stop]
    if is_dask(block):
        block = block.compute()
    if sparse.issparse(block):
        return _canonical(sparse.csr_matrix(block))
    return np.ascontiguousarray(np.asarray(block))


def iter_row_blocks(X, block_size: int = 10_000, *, prefetch: bool = False) -> Iterator[tuple[int, int, object]]:
    """Yield ``(start, stop, block)`` row blocks of ``X``.

    ``block`` is a CSR matrix in canonical form (sorted, no duplicated entries: a non-canonical block is
    copied and its duplicates summed) for sparse input and a C-contiguous ndarray for dense input. Works on
    in-memory arrays, h5py/anndata backed datasets (sliced block by block) and dask arrays (computed
    block by block), so the whole matrix is never densified or loaded at once.

    With ``prefetch=True``, a matrix that is not in memory (backed, dask) is read one block ahead in a
    background thread, so reading the next block overlaps the caller's work on this one (compiled kernels
    that release the GIL); one more block is then held in memory. A backed matrix stored by column (CSC) is
    read whole, once per call, with a warning (:func:`_backed_csc_in_memory`).
    """
    X = _backed_csc_in_memory(X)
    n = n_rows(X)
    told = ROWS_READ.get()
    if told is not None:
        for start, stop, block in _row_blocks(X, n, block_size, prefetch):
            yield start, stop, block
            told(stop - start)
        return
    yield from _row_blocks(X, n, block_size, prefetch)


def _row_blocks(X, n: int, block_size: int, prefetch: bool) -> Iterator[tuple[int, int, object]]:
    """:func:`iter_row_blocks` of ``X`` (``n`` rows)."""
    in_memory_csr = isinstance(X, sparse.csr_matrix | sparse.csr_array)
    if prefetch and not in_memory_csr and not isinstance(X, np.ndarray) and n > block_size:
        from concurrent.futures import ThreadPoolExecutor

        bounds = [(start, min(start + block_size, n)) for start in range(0, n, block_size)]
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="psysc-prefetch") as pool:
            pending = pool.submit(_read_rows, X, *bounds[0])
            for i, (start, stop) in enumerate(bounds):
                block = pending.result()
                if i + 1 < len(bounds):
                    pending = pool.submit(_read_rows, X, *bounds[i + 1])
                yield start, stop, block
        return
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        if in_memory_csr:  # a view on the rows, no copy of the data
            lo, hi = X.indptr[start], X.indptr[stop]
            # scipy's constructor "prunes" slices of larger arrays into copies: set the arrays directly
            view = sparse.csr_matrix((stop - start, X.shape[1]), dtype=X.dtype)
            view.data = X.data[lo:hi]
            view.indices = X.indices[lo:hi]
            view.indptr = X.indptr[start : stop + 1] - lo
            for flag in ("_has_canonical_format", "_has_sorted_indices"):  # flags cached for the empty matrix
                view.__dict__.pop(flag, None)
            yield start, stop, _canonical(view)
            continue
        yield start, stop, _read_rows(X, start, stop)


def balanced_row_bounds(indptr: np.ndarray, n_parts: int, row_cost: float = 16.0) -> np.ndarray:
    """Boundaries of ``n_parts`` contiguous row ranges of a CSR matrix with about equal work each.

    A row's work is taken as its number of non-zero entries plus ``row_cost`` (what every row costs, empty or not,
    in non-zero entries). Row ``i`` goes to the part in which its midpoint on the cumulative work falls, so each part
    is within one row of an equal share. Rows of cells differ in their number of genes, often by batch or cell type
    (stored together), so equal numbers of rows are not equal work.

    Returns ``(n_parts + 1,)`` int64 boundaries, from 0 to the number of rows, non-decreasing: part ``p`` is rows
    ``bounds[p]:bounds[p + 1]`` (possibly empty).
    """
    indptr = np.asarray(indptr, dtype=np.float64)
    n = indptr.shape[0] - 1
    n_parts = max(1, int(n_parts))
    work = (indptr - indptr[0]) + row_cost * np.arange(n + 1)  # work before each row, and the total
    mid = (work[:-1] + work[1:]) / 2
    share = work[-1] / n_parts if work[-1] > 0 else 1.0
    part_of = np.minimum((mid / share).astype(np.int64), n_parts - 1)  # non-decreasing in the row
    bounds = np.searchsorted(part_of, np.arange(n_parts + 1), side="left").astype(np.int64)
    bounds[-1] = n
    return bounds


def head_rows(X, k: int):
    """The first ``k`` rows of ``X`` (at most all of them) as :func:`iter_row_blocks` gives a block.

    Reads only those rows of a backed or dask-backed matrix.
    """
    k = min(int(k), n_rows(X))
    return next(iter_row_blocks(X, k))[2] if k > 0 else _read_rows(X, 0, 0)
