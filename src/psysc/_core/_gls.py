"""Generalised least squares with MAGMA's gene-gene correlations.

MAGMA's gene-property and gene-set analyses model the gene z-scores as ``z = X b + e`` with
``e ~ N(0, s^2 R)`` and ``R`` the correlations between the z-scores of nearby genes (from the LD
reference, in its ``.genes.raw`` output; de Leeuw et al., PLoS Comput Biol 2015). The model is fitted by
ordinary least squares on whitened data, ``L^-1 z = L^-1 X b + u`` with ``R = L L^T``. ``R`` lists
correlations only between genes close on one chromosome, so in the file's gene order it is a band
matrix, and its Cholesky factor is computed and applied in band storage: O(n w^2) for ``n`` genes and
band width ``w``.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import linalg, sparse

logger = logging.getLogger("psysc")

#: shrinkage towards the identity tried, in order, when the correlation matrix is not positive definite
_SHRINKAGE = (1e-3, 1e-2, 0.05, 0.1, 0.2, 0.5)


class BandWhitener:
    """``x -> L^-1 x`` for the correlation matrix ``R = L L^T`` of a list of genes.

    Parameters
    ----------
    genes
        The genes of the regression, in the order of the rows to be whitened.
    gene_corr
        ``{"genes": names, "matrix": sparse R}`` (as :func:`psysc.gwas.read_magma` stores in ``attrs``);
        ``R``'s rows are in the genes' order along the genome. Genes not in it are taken as uncorrelated.

    Attributes
    ----------
    n_matched
        Genes of the regression that have correlations.
    bandwidth
        Largest distance (in sorted gene positions) of a non-zero correlation.
    shrinkage
        ``a`` of ``(1 - a) R + a I`` used to make ``R`` positive definite (0 when it is).
    """

    def __init__(self, genes, gene_corr: dict):
        names = np.asarray(gene_corr["genes"]).astype(str)
        matrix = sparse.csr_matrix(gene_corr["matrix"])
        if matrix.shape != (len(names), len(names)):
            raise ValueError(f"gene_corr: matrix of shape {matrix.shape} for {len(names)} genes")
        lookup = {g: i for i, g in enumerate(names)}
        genes = np.asarray(genes).astype(str)
        pos = np.array([lookup.get(g, -1) for g in genes], dtype=np.int64)
        present = np.flatnonzero(pos >= 0)
        present = present[np.argsort(pos[present], kind="stable")]
        self.n = len(genes)
        self.n_matched = len(present)
        # whitened rows: the genes with correlations in genome order, then the others (unchanged)
        self.order = np.concatenate([present, np.flatnonzero(pos < 0)])
        sub = matrix[pos[present]][:, pos[present]].tocoo()
        low = sub.row >= sub.col
        i, j, v = sub.row[low], sub.col[low], sub.data[low]
        self.bandwidth = int((i - j).max()) if len(i) else 0
        ab = np.zeros((self.bandwidth + 1, len(present)))
        ab[i - j, j] = v
        self.shrinkage = 0.0
        self.factor = self._cholesky(ab)

    def _cholesky(self, ab: np.ndarray) -> np.ndarray:
        if ab.shape[1] == 0:
            return ab
        try:
            return linalg.cholesky_banded(ab, lower=True)
        except linalg.LinAlgError:
            pass
        for a in _SHRINKAGE:
            shrunk = ab * (1 - a)
            shrunk[0] += a
            try:
                factor = linalg.cholesky_banded(shrunk, lower=True)
            except linalg.LinAlgError:
                continue
            self.shrinkage = a
            logger.warning(
                "the gene-gene correlation matrix of %d genes is not positive definite; it is shrunk towards the "
                "identity, (1 - a) R + a I with a = %g, as the smallest such a that makes it so", ab.shape[1], a,
            )
            return factor
        raise ValueError("the gene-gene correlations cannot be made positive definite; check the .genes.raw file")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``L^-1 x`` for ``x`` of shape ``(n,)`` or ``(n, k)`` (rows in the order of ``genes``)."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape[0] != self.n:
            raise ValueError(f"x has {x.shape[0]} rows for {self.n} genes")
        out = x[self.order].copy()
        m = self.n_matched
        if m:
            out[:m] = linalg.solve_banded((self.bandwidth, 0), self.factor, out[:m])
        return out
