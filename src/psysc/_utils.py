"""Small helpers shared by the AnnData-level functions."""

from __future__ import annotations

import logging

import numpy as np
from scipy import sparse

logger = logging.getLogger("psysc")


def get_matrix(adata, layer: str | None):
    """Return ``adata.X`` or ``adata.layers[layer]``, with a clear error for a missing layer."""
    if layer is None:
        return adata.X
    if layer not in adata.layers:
        raise KeyError(f"layer {layer!r} not found; available layers: {list(adata.layers)}")
    return adata.layers[layer]


def as_csr(X, dtype=None):
    """Return X as CSR (sparse) or a C-contiguous ndarray (dense), without copying when possible."""
    if sparse.issparse(X):
        X = sparse.csr_matrix(X) if not isinstance(X, sparse.csr_matrix) else X
        if dtype is not None and X.dtype != dtype:
            X = X.astype(dtype)
        return X
    X = np.asarray(X)
    return np.ascontiguousarray(X, dtype=dtype) if dtype is not None else np.ascontiguousarray(X)


def uns_namespace(adata, key: str) -> dict:
    """The dictionary ``adata.uns[key]``, created when absent."""
    ns = adata.uns.get(key)
    if ns is None:
        ns = adata.uns[key] = {}
    return ns
