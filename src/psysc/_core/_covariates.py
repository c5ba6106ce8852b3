"""Covariate correction without densifying the data ("implicit" correction, as scDRS does).

The corrected expression is ``X - C beta + gene_mean`` (OLS residuals plus each gene's mean, so
values stay on the log scale), with ``beta`` solved from the normal equations. ``X`` stays sparse:
gene statistics are computed on dense row blocks of the corrected matrix, and a gene-set score is
``X w - C (beta w) + gene_mean . w``, a low-rank correction added to the sparse product.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import sparse

from .._utils import head_names
from ._blocks import iter_row_blocks

logger = logging.getLogger("psysc")


def design_matrix(covariates: pd.DataFrame, obs_names: pd.Index) -> pd.DataFrame:
    """Numeric design matrix for the cells of ``obs_names``.

    Categorical columns become indicator columns (first level among these cells dropped; categories no cell
    has are left out), missing values take the column mean, and a constant column is added unless the
    covariates already span one exactly (up to rounding). scDRS adds it only when the covariates are more
    than 0.01 (mean squared residual) away from a constant, which leaves it out for a covariate with a small
    coefficient of variation (log library size: about 13 +- 0.5), fitting every gene through the origin.
    """
    if not isinstance(covariates, pd.DataFrame):
        raise TypeError("covariates must be a pandas DataFrame indexed by cell (obs_names)")
    if not obs_names.is_unique:
        raise ValueError("adata.obs_names are not unique, so covariates cannot be matched to cells; run "
                         "adata.obs_names_make_unique() first")
    cov = covariates.copy()
    cov.index = cov.index.astype(str)
    if not cov.index.is_unique:
        dup = cov.index[cov.index.duplicated()].unique()
        raise ValueError(f"the covariates' index has {len(dup)} duplicated cell names, e.g. {head_names(dup)}; "
                         "give one row per cell")
    matched = obs_names.astype(str).isin(cov.index)
    if matched.mean() < 0.75:
        raise ValueError(
            f"covariates cover {int(matched.sum())} of {len(obs_names)} cells; index them by adata.obs_names "
            "(at least 75% must match; cells without covariates get the column means)."
        )
    df = pd.DataFrame(index=obs_names.astype(str)).join(cov)
    categorical = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    for col in categorical:
        if isinstance(df[col].dtype, pd.CategoricalDtype):
            df[col] = df[col].cat.remove_unused_categories()  # an empty indicator would make the design singular
        dummies = pd.get_dummies(df[col], drop_first=True, dtype=float)
        dummies.columns = [f"{col}_{level}" for level in dummies.columns]
        dummies.loc[df[col].isna(), :] = np.nan
        df = pd.concat([df.drop(columns=col), dummies], axis=1)
    df = df.astype(np.float64)
    n_missing = int(df.isna().sum().sum())
    n_cells_filled = int(df.isna().any(axis=1).sum())
    if n_missing:
        logger.warning("covariates: %d missing values in %d of %d cells filled with the column means", n_missing,
                       n_cells_filled, len(df))
    df = df.fillna(df.mean())
    df.attrs["n_cells_filled"] = n_cells_filled
    ones = np.ones(len(df))
    C = df.to_numpy()
    if C.shape[1] == 0 or np.mean((ones - C @ np.linalg.lstsq(C, ones, rcond=None)[0]) ** 2) > 1e-10:
        df["const"] = 1.0
    rank = np.linalg.matrix_rank(df.to_numpy())
    if rank < df.shape[1]:
        logger.warning(
            "covariates: the %d design columns (%s) span only %d dimensions (collinear columns, e.g. one "
            "that is constant or a sum of others); the correction removes their span", df.shape[1],
            ", ".join(map(str, df.columns)), rank,
        )
    return df


def fit(X, C: np.ndarray, *, block_size: int = 10_000):
    """OLS coefficients ``beta`` (n_cov x n_genes) of every gene on ``C``, and the gene means of ``X``."""
    n = C.shape[0]
    cty = np.zeros((C.shape[1], X.shape[1]), dtype=np.float64)
    total = np.zeros(X.shape[1], dtype=np.float64)
    for start, stop, block in iter_row_blocks(X, block_size):
        cb = C[start:stop]
        if sparse.issparse(block):
            cty += np.asarray((block.T @ cb).T)
            total += np.bincount(block.indices, weights=block.data.astype(np.float64), minlength=X.shape[1])
        else:
            cty += cb.T @ block
            total += block.sum(axis=0)
    # least squares on the normal equations, columns scaled to unit norm: with collinear columns, the
    # minimum-norm coefficients (the fitted values, hence the corrected data, are the same for any solution)
    gram = C.T @ C
    scale = np.sqrt(np.diag(gram))
    scale[scale == 0] = 1.0
    sol = np.linalg.lstsq(gram / np.outer(scale, scale), cty / scale[:, None], rcond=1e-10)[0]
    return sol / scale[:, None], total / n


def corrected_mean_var(X, C: np.ndarray, beta: np.ndarray, gene_mean: np.ndarray, *, expm1: bool = False,
                       block_size: int = 2_000):
    """Mean and population variance of every gene of the corrected matrix (or of its ``expm1``).

    Two-pass moments within each dense row block, merged across blocks with Chan's formula, so
    near-constant genes keep an accurate (not cancelled) variance.
    """
    n_done = 0
    mean = np.zeros(X.shape[1], dtype=np.float64)
    m2 = np.zeros(X.shape[1], dtype=np.float64)
    for start, stop, block in iter_row_blocks(X, block_size):
        dense = block.toarray() if sparse.issparse(block) else np.asarray(block, dtype=np.float64)
        corrected = dense - C[start:stop] @ beta + gene_mean
        if expm1:
            corrected = np.expm1(corrected)
        nb = stop - start
        b_mean = corrected.mean(axis=0)
        b_m2 = ((corrected - b_mean) ** 2).sum(axis=0)
        delta = b_mean - mean
        total = n_done + nb
        mean = mean + delta * (nb / total)
        m2 = m2 + b_m2 + delta**2 * (n_done * nb / total)
        n_done = total
    var = m2 / n_done
    # genes constant in the corrected data keep rounding noise (~1e-30) from the regression: call them constant
    var[var < 1e-24 * np.maximum(mean * mean, 1.0)] = 0.0
    return mean, var


def add_low_rank_scores(C: np.ndarray, beta: np.ndarray, gene_mean: np.ndarray, W: sparse.spmatrix,
                        dis: np.ndarray, ctrl: np.ndarray, *, block_values: int = 1 << 24) -> None:
    """Add ``-C (beta W) + gene_mean W``, the correction of ``X W`` (cells x sets), to the scores in place.

    Column 0 of ``W`` is the disease set (added to ``dis``), the others the control sets (added to ``ctrl``, in its
    precision). Computed in float64 by blocks of cells of about ``block_values`` values (128 MB): the working
    memory is one block, not a float64 copy of every cell's control scores.
    """
    W = sparse.csc_matrix(W)
    bw = np.asarray((W.T @ beta.T).T)  # (n_cov, n_sets)
    mw = np.asarray(W.T @ gene_mean).ravel()
    block_rows = max(1, block_values // max(1, bw.shape[1]))
    for start in range(0, C.shape[0], block_rows):
        stop = min(start + block_rows, C.shape[0])
        low = C[start:stop] @ bw
        np.subtract(mw, low, out=low)  # -(C beta W) + gene_mean W, in place
        dis[start:stop] += low[:, 0]
        ctrl[start:stop] += low[:, 1:].astype(ctrl.dtype)
