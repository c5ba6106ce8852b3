"""Small helpers shared by the AnnData-level functions."""

from __future__ import annotations

import logging

logger = logging.getLogger("psysc")


def get_matrix(adata, layer: str | None):
    """Return ``adata.X`` or ``adata.layers[layer]``, with a clear error for a missing layer."""
    if layer is None:
        return adata.X
    if layer not in adata.layers:
        raise KeyError(f"layer {layer!r} not found; available layers: {list(adata.layers)}")
    return adata.layers[layer]


def uns_namespace(adata, key: str) -> dict:
    """The dictionary ``adata.uns[key]``, created when absent."""
    ns = adata.uns.get(key)
    if ns is None:
        ns = adata.uns[key] = {}
    return ns
