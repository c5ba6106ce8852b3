"""Sparse matrices in the forms scipy allows beyond the canonical one."""

from __future__ import annotations

import numpy as np
from scipy import sparse


def with_duplicated_entries(X) -> sparse.csr_matrix:
    """``X`` (CSR) with every value of 2 or more stored as two entries of the same cell that add up to it.

    The duplicates follow their cell's entry (indices stay sorted, with repeats): ``toarray()`` is unchanged.
    """
    coo = sparse.coo_matrix(X)
    split = coo.data >= 2
    half = np.floor(coo.data[split] / 2)
    data = coo.data.astype(np.float64)
    data[split] -= half
    rows = np.concatenate([coo.row, coo.row[split]])
    cols = np.concatenate([coo.col, coo.col[split]])
    data = np.concatenate([data, half])
    order = np.lexsort((cols, rows))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=X.shape[0]))])
    out = sparse.csr_matrix((data[order].astype(X.dtype), cols[order], indptr), shape=X.shape)
    assert not out.has_canonical_format
    return out


def check_duplicated_entries_embed_as_their_sum(adata, model) -> None:
    """``psysc.tl.embed`` gives the same embedding whether ``adata.X``'s values are stored once or split in two."""
    import psysc

    reference = adata.copy()
    psysc.tl.embed(reference, model, device="cpu", key_added="e")
    split = adata.copy()
    split.X = with_duplicated_entries(adata.X)
    assert np.array_equal(split.X.toarray(), reference.X.toarray())
    psysc.tl.embed(split, model, device="cpu", key_added="e")
    np.testing.assert_array_equal(split.obsm["e"], reference.obsm["e"])
