"""Cell-type expression specificity (seismic) and its regression on gene-level GWAS z-scores.

Array kernels only, no AnnData. The specificity score is the one of seismic (Lai et al., Nat Commun
2025; ``seismicGWAS::calc_specificity``); the association is the per-cell-type ordinary least squares
regression of gene z-scores on specificity with a one-sided p-value (``get_ct_trait_associations``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numba
import numpy as np
from numba import prange
from scipy import sparse
from scipy import stats as sstats

from ._blocks import balanced_row_bounds, iter_row_blocks

logger = logging.getLogger("psysc")


@dataclass
class GroupMoments:
    """Per group and gene sums over the cells of each group (float64).

    ``n``: cells per group (n_groups,); ``sum``, ``sumsq``, ``nnz``: (n_groups, n_genes).
    """

    n: np.ndarray
    sum: np.ndarray
    sumsq: np.ndarray
    nnz: np.ndarray


# per-thread accumulators beyond this many bytes in total: fewer threads
_ACC_BUDGET = 1 << 29


@numba.njit(parallel=True, cache=True)
def _csr_group_moments(data, indices, indptr, lab, acc, bounds):  # pragma: no cover
    """Add each row's values, squares and non-zero counts to its group's row of one accumulator per part.

    ``acc`` is ``(n_parts, 3, n_groups, n_genes)``: the rows are split into ``n_parts`` contiguous ranges
    ``bounds[t]:bounds[t + 1]`` (of about equal work: :func:`~psysc._core._blocks.balanced_row_bounds`) summed in
    parallel, each into its own accumulator (reduced by the caller once, after the last block). Rows with a
    label < 0 are skipped.
    """
    n_parts = acc.shape[0]
    for t in prange(n_parts):
        for r in range(bounds[t], bounds[t + 1]):
            g = lab[r]
            if g < 0:
                continue
            for k in range(indptr[r], indptr[r + 1]):
                v = np.float64(data[k])
                if v != 0.0:
                    j = indices[k]
                    acc[t, 0, g, j] += v
                    acc[t, 1, g, j] += v * v
                    acc[t, 2, g, j] += 1.0


def group_moments(X, labels, n_groups: int, block_size: int = 10_000) -> GroupMoments:
    """Accumulate per group and gene: cell count, sum, sum of squares and non-zero count.

    Parameters
    ----------
    X
        Cells x genes matrix: CSR/dense in memory, backed or dask (read in row blocks, never densified
        as a whole; sparse blocks stay sparse).
    labels
        Integer group code per cell in ``0..n_groups-1``; negative codes (no group) are skipped.
    n_groups
        Number of groups.
    block_size
        Rows per block.

    """
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape[0] != X.shape[0]:
        raise ValueError(f"labels has {labels.shape[0]} entries for {X.shape[0]} cells")
    if labels.size and labels.max() >= n_groups:
        raise ValueError(f"label code {labels.max()} >= n_groups={n_groups}")
    n_genes = int(X.shape[1])
    s = np.zeros((n_groups, n_genes))
    ss = np.zeros((n_groups, n_genes))
    nz = np.zeros((n_groups, n_genes))
    ok_all = labels >= 0
    n = np.bincount(labels[ok_all], minlength=n_groups).astype(np.float64)
    acc = None  # per-thread accumulators of sparse blocks, allocated at the first one
    for start, stop, block in iter_row_blocks(X, block_size):
        lab = labels[start:stop]
        ok = lab >= 0
        rows = np.flatnonzero(ok)
        if rows.size == 0:
            continue
        if sparse.issparse(block):  # canonical (iter_row_blocks): no duplicated entries
            if acc is None:
                n_parts = max(1, min(numba.get_num_threads(), _ACC_BUDGET // max(1, 24 * n_groups * n_genes)))
                acc = np.zeros((n_parts, 3, n_groups, n_genes))
            _csr_group_moments(block.data, block.indices, block.indptr, lab, acc,
                               balanced_row_bounds(block.indptr, acc.shape[0], row_cost=1.0))
            continue
        # dense block: one product with a group indicator (n_groups x block rows) per statistic
        G = sparse.csr_matrix(
            (np.ones(rows.size), (lab[rows], rows)), shape=(n_groups, stop - start)
        )
        B = np.asarray(block, dtype=np.float64)
        s += G @ B
        ss += G @ (B * B)
        nz += G @ (B != 0).astype(np.float64)
    if acc is not None:
        total = acc.sum(axis=0)
        s += total[0]
        ss += total[1]
        nz += total[2]
    return GroupMoments(n=n, sum=s, sumsq=ss, nnz=nz)


@dataclass
class Specificity:
    """Result of :func:`seismic_specificity`.

    ``spec``: (n_kept_groups, n_kept_genes) specificity, each gene's column summing to 1;
    ``tstat``: the same shape, the Welch-type statistic ``rel`` of the group against all other cells
    (the ranking of LDSC-SEG style top-specific gene sets); ``mean``: the group means;
    ``groups``/``genes``: indices of the kept groups and genes; ``n_groups_dropped``,
    ``n_genes_dropped_expressed``, ``n_genes_dropped_mean``: what the filters removed.
    """

    spec: np.ndarray
    tstat: np.ndarray
    mean: np.ndarray
    groups: np.ndarray
    genes: np.ndarray
    n_groups_dropped: int
    n_genes_dropped_expressed: int
    n_genes_dropped_mean: int


def _var(s, ss, n):
    """Unbiased variance from sum and sum of squares (clipped at 0 against rounding)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        v = (ss - s * s / n) / (n - 1)
    return np.maximum(v, 0.0)


def seismic_specificity(
    moments: GroupMoments,
    *,
    min_cells_per_group: int = 20,
    min_cells_expressed: int = 10,
    min_mean: float = 0.1,
) -> Specificity:
    """Seismic's specificity score from per-group moments.

    Filters, in seismic's order: groups with fewer than ``min_cells_per_group`` cells are dropped;
    then, over the cells of the kept groups, genes expressed (non-zero) in fewer than
    ``min_cells_expressed`` cells and genes whose mean of the group means is below ``min_mean``
    are dropped. Per kept gene g and group c, with the out-group being all other cells of the kept
    groups::

        rel = (mu_gc - mu_g,-c) / sqrt(s2_gc / (n_c - 1) + s2_g,-c / (n_-c - 1))
        spec = Phi(rel) * ratio_gc,      ratio_gc = fraction of cells of c expressing g

    (variances unbiased; the extra ``/(n-1)`` is seismic's), normalised per gene to sum 1 over
    groups. When both variances are 0 the z is +-inf by the sign of the mean difference, or 0
    (Phi = 0.5) when the means are equal too.
    """
    n = np.asarray(moments.n, dtype=np.float64)
    keep_g = np.flatnonzero(n >= min_cells_per_group)
    n_dropped = int(n.size - keep_g.size)
    if keep_g.size < 2:
        raise ValueError(
            f"{keep_g.size} group(s) have at least {min_cells_per_group} cells; specificity needs 2 or more "
            f"(group sizes: {n.astype(int).tolist()}): pass a smaller min_cells_per_group if the small groups are "
            "meant to be tested"
        )
    n_c = n[keep_g][:, None]
    s = moments.sum[keep_g]
    ss = moments.sumsq[keep_g]
    nz = moments.nnz[keep_g]
    expressed = nz.sum(axis=0) >= min_cells_expressed
    mean_c = s / n_c
    high = mean_c.mean(axis=0) >= min_mean
    genes = np.flatnonzero(expressed & high)
    n_drop_expr = int((~expressed).sum())
    n_drop_mean = int((expressed & ~high).sum())
    if genes.size == 0:
        raise ValueError(
            f"no gene passes the specificity filters: {n_drop_expr} genes are expressed in fewer than "
            f"{min_cells_expressed} cells and {n_drop_mean} have a mean of group means below {min_mean}; is the "
            "matrix log-normalised (psysc.pp.prepare_scoring)? Lower min_cells_expressed / min_mean if intended"
        )
    s, ss, nz, mean_c = s[:, genes], ss[:, genes], nz[:, genes], mean_c[:, genes]

    N = n_c.sum()
    s_out = s.sum(axis=0)[None, :] - s
    ss_out = ss.sum(axis=0)[None, :] - ss
    n_out = N - n_c
    var_c = _var(s, ss, n_c)
    var_out = _var(s_out, ss_out, n_out)
    mean_out = s_out / n_out
    diff = mean_c - mean_out
    denom = np.sqrt(var_c / (n_c - 1) + var_out / (n_out - 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = diff / denom
    # no spread in either group: +-inf where the means differ, 0 where they are equal
    rel = np.where(denom > 0, rel, np.where(diff != 0, np.copysign(np.inf, diff), 0.0))
    ratio = nz / n_c
    spec = sstats.norm.cdf(rel) * ratio
    tot = spec.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        spec = np.where(tot > 0, spec / tot, 0.0)
    return Specificity(
        spec=spec,
        tstat=rel,
        mean=mean_c,
        groups=keep_g,
        genes=genes,
        n_groups_dropped=n_dropped,
        n_genes_dropped_expressed=n_drop_expr,
        n_genes_dropped_mean=n_drop_mean,
    )


def _independent_columns(C: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """Which columns of ``C`` to keep, in order, so that none is a combination of the kept ones before it.

    A column is dropped when the part of it that the columns before it do not explain is below ``tol`` times
    its own norm: each column is judged in its own units, so a covariate of small values (a per-base mutation
    rate beside a sample size of 10^6) is kept while it varies, and an all-zero column is dropped.
    """
    norms = np.linalg.norm(C, axis=0)
    keep = norms > 0
    if not keep.any():
        return keep
    cols = np.flatnonzero(keep)
    _, R = np.linalg.qr(C[:, cols] / norms[cols])  # unit columns: |R_jj| is the unexplained fraction of column j
    diag = np.abs(np.diag(R))
    while True:  # a dropped column must not lend its (noise) direction to the columns after it
        bad = diag <= tol
        if not bad.any():
            break
        first = int(np.flatnonzero(bad)[0])
        keep[cols[first]] = False
        cols = np.delete(cols, first)
        if not len(cols):
            break
        _, R = np.linalg.qr(C[:, cols] / norms[cols])
        diag = np.abs(np.diag(R))
    return keep


def ols_one_sided(z, s, covariates=None, whiten=None, *, two_sided=False):
    """Per column of ``s``: OLS of ``z`` on that column, an intercept and optional covariates.

    With ``whiten`` (``x -> L^-1 x`` for the correlation ``R = L L^T`` of the errors, e.g.
    :class:`psysc._core._gls.BandWhitener`) the models are fitted by generalised least squares: the same
    computation on ``L^-1 z``, ``L^-1 s`` and ``L^-1 [1, covariates]``.

    Parameters
    ----------
    z
        (n_genes,) gene z-scores.
    s
        (n_genes,) or (n_genes, n_groups) regressors, each tested in its own model.
    covariates
        Optional (n_genes, k) covariates shared by every model (the intercept is always added).
    whiten
        Optional ``x -> L^-1 x`` (see above): generalised least squares instead of OLS.
    two_sided
        Return the two-sided p-value ``P(|T| >= |t|)`` instead.

    Returns
    -------
    ``(beta, se, t, p)``, each (n_groups,) (or scalars for 1-D ``s``): the slope of the column, its
    standard error, t statistic and the one-sided p-value P(T >= t) for beta > 0, T ~ Student t with
    n - 2 - k degrees of freedom. NaN where fewer than 3 + k genes, where the column is constant
    (or collinear with the covariates), and everywhere when ``z`` is constant (or a combination of the
    covariates): what is left of it then is rounding noise, whose slopes would look significant.

    Notes
    -----
    Each model is fitted through the Frisch-Waugh-Lovell theorem: ``z`` and the columns are
    residualised on ``[1, covariates]`` once, and each slope is then a simple regression of
    residuals; this gives the coefficient, standard error and degrees of freedom of the full model.

    """
    z = np.asarray(z, dtype=np.float64)
    s_arr = np.asarray(s, dtype=np.float64)
    one_d = s_arr.ndim == 1
    S = s_arr[:, None] if one_d else s_arr
    n = z.shape[0]
    if S.shape[0] != n:
        raise ValueError(f"z has {n} genes, s has {S.shape[0]}")
    C = np.ones((n, 1))
    if covariates is not None:
        cov = np.asarray(covariates, dtype=np.float64).reshape(n, -1)
        if not np.isfinite(cov).all():
            raise ValueError("covariates contain NaN or infinite values")
        C = np.column_stack([C, cov])
    if whiten is not None:
        z, S, C = whiten(z), whiten(S), whiten(C)
    keep = _independent_columns(C) if n else np.zeros(C.shape[1], dtype=bool)
    rank = int(keep.sum())
    df = n - rank - 1
    if df < 1:
        nan = np.full(S.shape[1], np.nan)
        out = (nan, nan.copy(), nan.copy(), nan.copy())
        return tuple(float(a[0]) for a in out) if one_d else out
    Q, _ = np.linalg.qr(C[:, keep])  # collinear covariates dropped
    zc = z - Q @ (Q.T @ z)
    Sc = S - Q @ (Q.T @ S)
    sxx = np.einsum("ij,ij->j", Sc, Sc)
    sxy = Sc.T @ zc
    syy = zc @ zc
    with np.errstate(invalid="ignore", divide="ignore"):
        beta = sxy / sxx
        ssr = np.maximum(syy - beta * sxy, 0.0)
        se = np.sqrt(ssr / df / sxx)
        t = beta / se
    # a column constant or collinear with the covariates keeps only rounding noise after residualising
    bad = ~(sxx > 1e-12 * np.maximum(np.einsum("ij,ij->j", S, S), np.finfo(float).tiny))
    if not syy > 1e-24 * max(float(z @ z), np.finfo(float).tiny):  # z has no variation of its own
        bad[:] = True
    beta[bad] = se[bad] = t[bad] = np.nan
    p = 2.0 * sstats.t.sf(np.abs(t), df) if two_sided else sstats.t.sf(t, df)
    if one_d:
        return float(beta[0]), float(se[0]), float(t[0]), float(p[0])
    return beta, se, t, p
