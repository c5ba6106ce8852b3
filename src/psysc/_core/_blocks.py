"""Row-block access to in-memory, backed and dask-backed matrices."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy import sparse


def n_rows(X) -> int:
    return int(X.shape[0])


def is_dask(X) -> bool:
    return type(X).__module__.startswith("dask.")


def iter_row_blocks(X, block_size: int = 10_000) -> Iterator[tuple[int, int, object]]:
    """Yield ``(start, stop, block)`` row blocks of ``X``.

    ``block`` is a CSR matrix for sparse input and a C-contiguous ndarray for dense input. Works on
    in-memory arrays, h5py/anndata backed datasets (sliced block by block) and dask arrays (computed
    block by block), so the whole matrix is never densified or loaded at once.
    """
    n = n_rows(X)
    in_memory_csr = isinstance(X, sparse.csr_matrix | sparse.csr_array)
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        if in_memory_csr:  # a view on the rows, no copy of the data
            lo, hi = X.indptr[start], X.indptr[stop]
            # scipy's constructor "prunes" slices of larger arrays into copies: set the arrays directly
            view = sparse.csr_matrix((stop - start, X.shape[1]), dtype=X.dtype)
            view.data = X.data[lo:hi]
            view.indices = X.indices[lo:hi]
            view.indptr = X.indptr[start : stop + 1] - lo
            yield start, stop, view
            continue
        block = X[start:stop]
        if is_dask(block):
            block = block.compute()
        if sparse.issparse(block):
            block = sparse.csr_matrix(block)
        else:
            block = np.ascontiguousarray(np.asarray(block))
        yield start, stop, block
