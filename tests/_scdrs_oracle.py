"""Access to scdrs 1.0.2 (the reference implementation) for the parity tests."""

import os

import numpy as np
import pytest

scdrs = pytest.importorskip("scdrs")
if not hasattr(np, "float_"):  # scdrs 1.0.2's Geary's C uses np.float_, removed in NumPy 2
    np.float_ = np.float64

DATA = os.path.join(os.path.dirname(scdrs.__file__), "data")


def toy():
    """scDRS's toy data (30 cells x 2,500 genes, log-normalised) and its 250-gene set."""
    import scanpy as sc

    adata = sc.read_h5ad(os.path.join(DATA, "toydata_mouse.h5ad"))
    gs = scdrs.util.load_gs(os.path.join(DATA, "toydata_mouse.gs"))
    genes, weights = gs[next(iter(gs))]
    return adata, list(genes), list(weights)
