"""Cell-type level enrichment of GWAS signal: seismic specificity and regression."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from anndata import AnnData

from .._core._group import bh_fdr
from .._core._specificity import group_moments, ols_one_sided, seismic_specificity
from .._genesets import as_gene_sets
from .._utils import get_matrix, uns_namespace

logger = logging.getLogger("psysc")

METHODS = ("seismic",)


def _default_layer(adata: AnnData, key: str) -> str | None:
    ns = adata.uns.get(key)
    if isinstance(ns, dict) and isinstance(ns.get("prepare_scoring"), dict):
        layer = ns["prepare_scoring"].get("layer")
        if layer and layer != "X":
            return str(layer)
    return None


def _labels(adata: AnnData, groupby: str):
    if groupby not in adata.obs:
        raise KeyError(f"groupby={groupby!r} is not a column of adata.obs; columns: {list(adata.obs.columns)}")
    lab = adata.obs[groupby]
    if lab.isna().any():
        logger.warning("%d cells have no %r label and belong to no group", int(lab.isna().sum()), groupby)
    cat = pd.Categorical(lab.astype("string").where(lab.notna(), None).astype(object))
    names = np.asarray(cat.categories.astype(str))
    return np.asarray(cat.codes, dtype=np.int64), names


def celltype_specificity(
    adata: AnnData,
    groupby: str,
    *,
    layer: str | None = None,
    key_added: str = "psysc",
    block_size: int = 10_000,
    min_cells_per_group: int = 20,
    min_cells_expressed: int = 10,
    min_mean: float = 0.1,
    inplace: bool = True,
) -> pd.DataFrame | None:
    """seismic's cell-type specificity score of every gene.

    For each gene g and group c (Lai et al., Nat Commun 2025; ``seismicGWAS::calc_specificity``)::

        rel_gc  = (mu_gc - mu_g,-c) / sqrt(s2_gc / (n_c - 1) + s2_g,-c / (n_-c - 1))
        spec_gc = Phi(rel_gc) * ratio_gc

    with in-group mean and unbiased variance ``mu_gc, s2_gc``, the same over all other cells
    ``mu_g,-c, s2_g,-c``, and ``ratio_gc`` the fraction of cells of c in which g is non-zero; each
    gene's scores are normalised to sum 1 over groups. As in seismic, groups with fewer than
    ``min_cells_per_group`` cells are dropped, then genes expressed in fewer than
    ``min_cells_expressed`` cells or with a mean of group means below ``min_mean``; the numbers
    removed are logged and stored. One streaming pass over row blocks of the matrix (in-memory,
    backed or dask; sparse blocks are never densified).

    Parameters
    ----------
    adata
        Annotated data with log-normalised expression.
    groupby
        Column of ``adata.obs`` with the groups (cell types); cells with no label are skipped.
    layer
        Layer of log-normalised expression. Default: the layer written by
        :func:`psysc.pp.prepare_scoring` (``adata.uns[key_added]["prepare_scoring"]["layer"]``) when
        present, else ``X``.
    key_added
        Namespace: the table goes to ``adata.varm[f"{key_added}_specificity"]`` and the group names
        and filter counts to ``adata.uns[key_added]``.
    block_size
        Cells per row block.
    min_cells_per_group, min_cells_expressed, min_mean
        seismic's filters (defaults 20, 10, 0.1).
    inplace
        Store the result (default) or return it.

    Returns
    -------
    With ``inplace=False``, a genes x groups DataFrame of the kept genes and groups. With
    ``inplace=True``, ``adata.varm[f"{key_added}_specificity"]`` (all genes x kept groups; filtered
    genes are NaN) and ``adata.uns[key_added]["specificity_groups"]`` and
    ``adata.uns[key_added]["specificity_params"]``.

    Examples
    --------
    >>> import psysc
    >>> adata = psysc.datasets.darmanis2015()
    >>> psysc.pp.prepare_scoring(adata)
    >>> psysc.tl.celltype_specificity(adata, "cell_type")
    >>> adata.varm["psysc_specificity"].loc["GFAP"].idxmax()  # doctest: +SKIP
    'astrocytes'
    """
    if layer is None:
        layer = _default_layer(adata, key_added)
    X = get_matrix(adata, layer)
    codes, names = _labels(adata, groupby)
    mom = group_moments(X, codes, len(names), block_size=block_size)
    res = seismic_specificity(
        mom, min_cells_per_group=min_cells_per_group, min_cells_expressed=min_cells_expressed, min_mean=min_mean
    )
    if res.n_groups_dropped:
        dropped = [f"{names[i]} ({int(mom.n[i])} cells)" for i in range(len(names)) if i not in set(res.groups)]
        logger.warning(
            "%d group(s) with fewer than %d cells dropped from the specificity: %s",
            res.n_groups_dropped, min_cells_per_group, ", ".join(dropped),
        )
    logger.info(
        "specificity of %d genes x %d groups; dropped %d genes expressed in < %d cells and %d with mean of group "
        "means < %g",
        res.genes.size, res.groups.size, res.n_genes_dropped_expressed, min_cells_expressed,
        res.n_genes_dropped_mean, min_mean,
    )
    groups = [str(names[i]) for i in res.groups]
    table = pd.DataFrame(res.spec.T, index=adata.var_names[res.genes], columns=groups)
    if not inplace:
        table.attrs.update(
            n_groups_dropped=res.n_groups_dropped,
            n_genes_dropped_expressed=res.n_genes_dropped_expressed,
            n_genes_dropped_mean=res.n_genes_dropped_mean,
        )
        return table
    full = pd.DataFrame(np.nan, index=adata.var_names, columns=groups)
    full.iloc[res.genes, :] = res.spec.T
    adata.varm[f"{key_added}_specificity"] = full
    ns = uns_namespace(adata, key_added)
    ns["specificity_groups"] = np.asarray(groups, dtype=object)
    ns["specificity_params"] = {
        "groupby": groupby,
        "layer": layer or "X",
        "min_cells_per_group": int(min_cells_per_group),
        "min_cells_expressed": int(min_cells_expressed),
        "min_mean": float(min_mean),
        "n_genes": int(res.genes.size),
        "n_groups_dropped": int(res.n_groups_dropped),
        "n_genes_dropped_expressed": int(res.n_genes_dropped_expressed),
        "n_genes_dropped_mean": int(res.n_genes_dropped_mean),
    }
    return None


def celltype_enrichment(
    adata: AnnData,
    gene_sets,
    *,
    groupby: str,
    method: str = "seismic",
    layer: str | None = None,
    key_added: str = "psysc",
    min_cells_per_group: int = 20,
    min_cells_expressed: int = 10,
    min_mean: float = 0.1,
    inplace: bool = True,
) -> pd.DataFrame | None:
    """Which cell types' specifically expressed genes carry each trait's GWAS signal (seismic).

    Per trait and group, the gene z-scores are regressed on the group's specificity score (from
    :func:`celltype_specificity`) by ordinary least squares with an intercept; the group is
    enriched when the slope is positive (one-sided p-value from the t distribution with
    n_genes - 2 degrees of freedom; Benjamini-Hochberg FDR across the groups of each trait).

    **Which genes enter the regression.** The gene z-scores are the weights of the gene set, and only
    the genes of the set that are in the data and passed the specificity filters are used; genes
    outside the set are *not* added (with z = 0 or otherwise). seismic itself regresses MAGMA z-scores
    of *all* genes (a MAGMA ``.genes.out`` table): pass such a table (``psysc.gwas.read_magma``) as
    the gene set to reproduce it. With a top-1,000 gene set (as ``psysc.datasets.gwas_gene_sets``
    returns, z capped at 10) the regression runs over those genes only, so it asks whether, *among the
    trait's top genes*, the more strongly associated ones are more specific to the group: a narrower
    question with less power than seismic's genome-wide regression.

    The specificity is computed (and stored when ``inplace``) unless ``adata.varm[f"{key_added}_specificity"]``
    holds one computed for the same ``groupby``, filters (and ``layer``, when given).

    Parameters
    ----------
    adata
        Annotated data with log-normalised expression.
    gene_sets
        ``{trait: Series(gene -> z-score)}`` (see :mod:`psysc.gwas`, :func:`psysc.datasets.gwas_gene_sets`).
    groupby
        Column of ``adata.obs`` with the groups.
    method
        ``"seismic"`` (the only method for now).
    layer
        Expression layer for the specificity, as in :func:`celltype_specificity`.
    key_added
        Namespace of the specificity and of the result.
    min_cells_per_group, min_cells_expressed, min_mean
        seismic's filters, passed to :func:`celltype_specificity` (defaults 20, 10, 0.1).
    inplace
        Store the table in ``adata.uns[key_added]["celltype_enrichment"]`` (default) or return it.

    Returns
    -------
    A tidy DataFrame (returned with ``inplace=False``) with one row per trait and group: ``trait``,
    ``group``, ``method``, ``beta``, ``se``, ``pval`` (one-sided, beta > 0), ``fdr``, ``n_genes``.

    Examples
    --------
    >>> import psysc
    >>> adata = psysc.datasets.darmanis2015()
    >>> psysc.pp.prepare_scoring(adata)
    >>> gs = psysc.datasets.gwas_gene_sets(["SCZ", "AD"])
    >>> psysc.tl.celltype_enrichment(adata, gs, groupby="cell_type")
    >>> adata.uns["psysc"]["celltype_enrichment"].sort_values("pval").head()  # doctest: +SKIP
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not supported; choose from {METHODS}")
    if groupby not in adata.obs:
        raise KeyError(f"groupby={groupby!r} is not a column of adata.obs; columns: {list(adata.obs.columns)}")
    gene_sets = as_gene_sets(gene_sets)
    key = f"{key_added}_specificity"
    ns = adata.uns.get(key_added)
    params = ns.get("specificity_params") if isinstance(ns, dict) else None
    filters = {"min_cells_per_group": int(min_cells_per_group), "min_cells_expressed": int(min_cells_expressed),
               "min_mean": float(min_mean)}
    cached = (
        key in adata.varm
        and isinstance(params, dict)
        and params.get("groupby") == groupby
        and (layer is None or params.get("layer") == layer)
        and all(params.get(k) == v for k, v in filters.items())
    )
    if cached:
        spec = pd.DataFrame(np.asarray(adata.varm[key], dtype=np.float64), index=adata.var_names,
                            columns=[str(c) for c in ns["specificity_groups"]]).dropna(how="all")
    elif inplace:
        celltype_specificity(adata, groupby, layer=layer, key_added=key_added, inplace=True, **filters)
        ns = adata.uns[key_added]
        spec = pd.DataFrame(np.asarray(adata.varm[key], dtype=np.float64), index=adata.var_names,
                            columns=[str(c) for c in ns["specificity_groups"]]).dropna(how="all")
    else:
        spec = celltype_specificity(adata, groupby, layer=layer, key_added=key_added, inplace=False, **filters)
    groups = list(spec.columns)
    rows = []
    for trait, s in gene_sets.items():
        common = spec.index.intersection(s.index)
        n_in_data = int(adata.var_names.isin(s.index).sum())
        logger.info(
            "%s: %d of %d genes in the data, %d of them pass the specificity filters",
            trait, n_in_data, len(s), len(common),
        )
        if len(common) < 3:
            logger.warning("%s: %d genes with a specificity score; no regression", trait, len(common))
        z = s.loc[common].to_numpy(dtype=np.float64)
        S = spec.loc[common].to_numpy(dtype=np.float64)
        beta, se, _, p = ols_one_sided(z, S)
        fdr = bh_fdr(p)
        for j, g in enumerate(groups):
            rows.append({"trait": trait, "group": g, "method": method, "beta": beta[j], "se": se[j],
                         "pval": p[j], "fdr": fdr[j], "n_genes": len(common)})
    table = pd.DataFrame(rows, columns=["trait", "group", "method", "beta", "se", "pval", "fdr", "n_genes"])
    if not inplace:
        return table
    ns = uns_namespace(adata, key_added)
    ns["celltype_enrichment"] = table
    ns["celltype_enrichment_params"] = {"groupby": groupby, "method": method, "traits": list(gene_sets)}
    logger.info("added uns[%r]['celltype_enrichment'] (%d traits x %d groups)", key_added, len(gene_sets), len(groups))
    return None
