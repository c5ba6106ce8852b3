"""MAGMA ``.genes.raw`` files written from a table and a correlation matrix, in MAGMA's documented layout.

Header lines ``# VERSION = 110`` and ``# COVAR = NSAMP MAC``; then per gene
``GENE CHR START STOP NSNPS NPARAM NSAMP MAC ZSTAT`` followed by its correlations with the genes before it
on its chromosome, the farthest first and the gene on the line before last (the layout PoPS'
``munge_magma_covariance_metadata`` reads).
"""

from __future__ import annotations

import numpy as np


def banded_correlation(chroms, rng, width=4, strength=0.6):
    """A positive definite correlation matrix with correlations only within ``width`` genes of one chromosome."""
    chroms = np.asarray(chroms)
    n = len(chroms)
    # a moving average of independent noise: positive definite, banded
    A = np.zeros((n, n + width))
    for i in range(n):
        A[i, i : i + width + 1] = rng.uniform(0.2, 1.0, width + 1) * strength ** np.arange(width + 1)[::-1]
    cov = A @ A.T
    same = chroms[:, None] == chroms[None, :]
    cov = np.where(same, cov, 0.0)  # another chromosome: uncorrelated (still PD: block diagonal of PD blocks)
    d = np.sqrt(np.diag(cov))
    return cov / d[:, None] / d[None, :]


def write_genes_raw(path, table, corr, *, digits=17):
    """Write ``table`` (columns GENE CHR START STOP NSNPS NPARAM N MAC ZSTAT, in genome order) and ``corr``."""
    lines = ["# VERSION = 110", "# COVAR = NSAMP MAC"]
    chrom = table["CHR"].astype(str).to_numpy()
    first = 0
    for i in range(len(table)):
        if i and chrom[i] != chrom[i - 1]:
            first = i
        row = table.iloc[i]
        fixed = [row["GENE"], chrom[i], row["START"], row["STOP"], row["NSNPS"], row["NPARAM"], row["N"],
                 f"{row['MAC']:.{digits}g}", f"{row['ZSTAT']:.{digits}g}"]
        before = corr[i, first:i]
        nz = np.flatnonzero(before)
        k = i - first - nz[0] if len(nz) else 0  # back to the farthest correlated gene
        values = [f"{v:.{digits}g}" for v in corr[i, i - k : i]]
        lines.append(" ".join(str(x) for x in fixed + values))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
