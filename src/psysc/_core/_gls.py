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

#: shrinkage towards the identity tried, in order, when the correlation matrix is not positive definite. At least
#: 0.05, as the ridge of PoPS (Weeks et al. 2023) beyond the negative eigenvalue: a barely positive definite matrix
#: (e.g. two genes of correlation 1) would give a few whitened genes most of the weight of the fit.
_SHRINKAGE = (0.05, 0.1, 0.2, 0.5)


#: smallest variance of a gene's z-score given the genes before it for the matrix to count as positive definite
_MIN_PIVOT = 1e-8


class GeneCorrelations:
    """Correlations between the z-scores of genes: names and a symmetric sparse matrix with unit diagonal.

    Kept in ``DataFrame.attrs["gene_corr"]`` of a MAGMA table (:func:`psysc.gwas.read_magma` of a ``.genes.raw``):
    it compares and copies by identity, so pandas operations that compare or deep-copy ``attrs`` (``concat``,
    ``merge``, selections) neither fail on its arrays nor copy the matrix.

    Attributes
    ----------
    genes
        Gene names, in the order of the matrix (genome order).
    matrix
        ``scipy.sparse.csr_matrix`` of the correlations.

    """

    def __init__(self, genes, matrix):
        self.genes = np.asarray(genes, dtype=object)
        self.matrix = sparse.csr_matrix(matrix)
        if self.matrix.shape != (len(self.genes), len(self.genes)):
            raise ValueError(f"gene correlations: matrix of shape {self.matrix.shape} for {len(self.genes)} genes")

    def __eq__(self, other):
        return self is other

    __hash__ = object.__hash__

    def __deepcopy__(self, memo):
        return self

    def __repr__(self) -> str:
        n_pairs = (self.matrix.nnz - len(self.genes)) // 2
        return f"GeneCorrelations({len(self.genes)} genes, {n_pairs} correlated pairs)"


class BandWhitener:
    """``x -> L^-1 x`` for the correlation matrix ``R = L L^T`` of a list of genes.

    Parameters
    ----------
    genes
        The genes of the regression, in the order of the rows to be whitened.
    gene_corr
        :class:`GeneCorrelations` (as :func:`psysc.gwas.read_magma` stores in ``attrs``), its genes in their
        order along the genome. Genes not in it are taken as uncorrelated.

    Attributes
    ----------
    n_matched
        Genes of the regression that have correlations.
    bandwidth
        Largest distance (in sorted gene positions) of a non-zero correlation.
    shrinkage
        ``a`` of ``(1 - a) R + a I`` used to make ``R`` positive definite (0 when it is).

    """

    def __init__(self, genes, gene_corr: GeneCorrelations):
        names = gene_corr.genes.astype(str)
        matrix = gene_corr.matrix
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
            factor = linalg.cholesky_banded(ab, lower=True)
            # a pivot of rounding size: a gene that its neighbours determine (correlation 1), numerically singular
            if (factor[0] ** 2).min() > _MIN_PIVOT:
                return factor
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
                "identity, (1 - a) R + a I with a = %g (the smallest of %s that makes it so)", ab.shape[1], a,
                ", ".join(map(str, _SHRINKAGE)),
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
