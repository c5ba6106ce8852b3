from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from .._core._group import bh_fdr, distribution_match_rows, gearys_c_rows
from .._settings import settings
from .._utils import (
    check_anndata,
    continuous_grouping,
    group_order,
    label_text,
    same_trait,
    scored_elsewhere,
    scored_traits,
    uns_namespace,
    warn_missing_words,
)
from ._celltype import labels_fingerprint
from ._score import stale_traits

logger = logging.getLogger("psysc")

FDR_THRESHOLDS = (0.05, 0.1, 0.2)


def _group_stats(norm, ctrl, graph, cells):
    """Association and heterogeneity of one group (cells in the given order).

    The group's control scores are taken once, one control set per row (``ctrl.T[:, cells]``), and the
    heterogeneity vectors are built in the same layout: the working memory is about twice the group's control
    scores (float32), whatever the group's size.
    """
    v = norm[cells]
    n_ctrl = ctrl.shape[1]
    if len(cells) == 0:
        return np.nan, np.nan, np.nan, np.nan
    c_rows = np.empty((n_ctrl, len(cells)), dtype=ctrl.dtype)  # (n_ctrl, group), gathered in slices of cells
    for j in range(0, len(cells), 4096):
        c_rows[:, j : j + 4096] = ctrl[cells[j : j + 4096]].T
    q = np.quantile(v, 0.95)
    q_ctrl = np.quantile(c_rows, 0.95, axis=1)
    assoc_p = (np.sum(q_ctrl >= q) + 1) / (n_ctrl + 1)
    with np.errstate(invalid="ignore", divide="ignore"):  # equal control percentiles: z undefined (as scDRS)
        assoc_z = (q - q_ctrl.mean()) / q_ctrl.std()
    if graph is None or len(cells) < 2:
        return assoc_p, assoc_z, np.nan, np.nan
    sub = graph[cells][:, cells]
    VT = np.empty((n_ctrl + 1, len(cells)), dtype=v.dtype)  # the disease scores, then the matched controls
    VT[0] = v
    distribution_match_rows(c_rows, v, out=VT[1:])
    del c_rows
    # centre each vector by its own mean in its own precision (float32 pairwise mean, as 1-D numpy means)
    C = gearys_c_rows(sub, VT, means=VT.mean(axis=1))
    if np.isnan(C[0]):
        return assoc_p, assoc_z, np.nan, np.nan
    null = C[1:]
    hetero_p = (np.sum(C[0] > null) + 1) / (n_ctrl + 1)
    with np.errstate(invalid="ignore", divide="ignore"):  # equal control Geary's C: z undefined (as scDRS)
        hetero_z = -(C[0] - null.mean()) / null.std(ddof=1)
    return assoc_p, assoc_z, hetero_p, hetero_z


#: groups with fewer cells are tested, with a warning
FEW_CELLS = 10


def _warn_small_groups(groupby: str, groups: list[str], members: dict[str, np.ndarray]) -> None:
    small = [f"{g!r} ({len(members[g])})" for g in groups if len(members[g]) < FEW_CELLS]
    if small:
        logger.warning(
            "%d group(s) of %r have fewer than %d cells: %s; their association test compares the 95th percentile of "
            "a few scores and their heterogeneity test has few neighbours to compare, so read them with care (or "
            "merge them into larger groups)", len(small), groupby, FEW_CELLS, ", ".join(small),
        )


def _groupby_key(groupby) -> str:
    """The key of a grouping in ``uns[key]["enrichment_by_groupby"]``, one per grouping.

    An .h5ad key cannot hold '/': written ``%2F`` (and '%' as ``%25``), so that no two groupings share a key
    ("sub/class" and "sub_class").
    """
    return str(groupby).replace("%", "%25").replace("/", "%2F")


def kept_enrichment(ns, groupby) -> dict | None:
    """The per-cell enrichment entry (``table``, ``params``) :func:`disorder_enrichment` kept for ``groupby``.

    ``ns``: ``adata.uns[key]``. ``None`` when none was kept for that grouping (the entry's own ``groupby`` decides,
    for entries written under an earlier form of the key).
    """
    entry = dict(ns.get("enrichment_by_groupby", {})).get(_groupby_key(groupby))
    if entry is None or dict(entry.get("params", {})).get("groupby") != groupby:
        return None
    return entry


def disorder_enrichment(
    adata: AnnData,
    *,
    groupby: str,
    traits: list[str] | None = None,
    use_graph: str | None = "connectivities",
    key: str = "psysc",
    fdr_thresholds: tuple[float, ...] = FDR_THRESHOLDS,
    inplace: bool = True,
) -> pd.DataFrame | None:
    """Which groups of cells (cell types, clusters, states) carry each trait's risk.

    For every trait scored by :func:`psysc.tl.score_disorders` and every group of ``groupby``
    (the scDRS group analysis, Zhang et al. 2022):

    - **association**: the 95th percentile of the group's normalised disease scores against the same
      percentile of each control gene set's scores (Monte Carlo p-value and z-score);
    - **heterogeneity**: Geary's C of the disease scores on the group's kNN subgraph against the
      control scores given the same value distribution (only their arrangement on the graph differs);
      a low p-value means the risk concentrates in a part of the group;
    - the number and fraction of cells significant at FDR thresholds (Benjamini-Hochberg over all cells).

    The graph can come from any representation (PCA, a foundation-model embedding, ...).

    Parameters
    ----------
    adata
        Data scored by :func:`psysc.tl.score_disorders`.
    groupby
        Column of ``adata.obs`` with the groups.
    traits
        Traits to test (default: every scored trait).
    use_graph
        Key in ``adata.obsp`` of the kNN connectivities (``sc.pp.neighbors`` writes ``"connectivities"``);
        ``None`` skips the heterogeneity test.
    key
        Key under which the scores were written (``key_added`` of ``score_disorders``).
    fdr_thresholds
        Cell-level FDR thresholds to count significant cells at.
    inplace
        Store the table in ``adata.uns[key]["enrichment"]`` (default; the plots read it there) or return it. The
        table of each ``groupby`` is also kept in ``adata.uns[key]["enrichment_by_groupby"][groupby]`` (with its
        parameters; a "/" in the column name is written "%2F" there and a "%" "%25", as an h5ad key cannot hold a
        "/"), so a second call with another grouping does not lose the first.

    Returns
    -------
    pandas.DataFrame or None
        A tidy DataFrame (returned with ``inplace=False``) with one row per trait and group: ``trait``, ``group``,
        ``n_cells``, ``assoc_pval``, ``assoc_z``, ``assoc_fdr``, ``hetero_pval``, ``hetero_z``, ``hetero_fdr``,
        ``frac_sig`` (fraction of cells with FDR < 0.1), ``n_fdr_<t>`` per threshold. FDRs are
        Benjamini-Hochberg across the groups of each trait. Groups come in the order of the categories of a
        categorical ``groupby``, else in numeric order when every label is a number (clusters ``"2"`` before
        ``"10"``), else alphabetically. Cells without a normalised score (no control gene expressed, p-value 1;
        see :func:`psysc.tl.score_disorders`) are left out of the association and heterogeneity tests, with a
        warning. Groups of fewer than 10 cells, and labels that read as a missing value written out as text
        (``"nan"``, ``"None"``, ...), are tested with a warning. A z-score is not finite (NaN or inf; its p-value
        stays defined) where the control statistics have no spread, e.g. a group in which every control scores
        alike, as in scDRS.

    Examples
    --------
    >>> import psysc, scanpy as sc
    >>> adata = psysc.datasets.darmanis2015()
    >>> psysc.pp.prepare_scoring(adata)
    >>> sc.pp.pca(adata, layer="psysc_norm", n_comps=20)
    >>> sc.pp.neighbors(adata, n_neighbors=15)
    >>> psysc.tl.score_disorders(adata, psysc.datasets.gwas_gene_sets(["SCZ", "AD"]), n_ctrl=200)
    >>> psysc.tl.disorder_enrichment(adata, groupby="cell_type")
    >>> adata.uns["psysc"]["enrichment"].head()  # doctest: +SKIP

    """
    check_anndata(adata, writes=inplace)
    scored = scored_traits(adata, key)
    if not scored:
        raise KeyError(f"no disease scores under key {key!r}"
                       + (scored_elsewhere(adata, key) or ": run psysc.tl.score_disorders(adata, gene_sets) first."))
    if traits is None:
        traits = scored
    elif isinstance(traits, str):
        traits = [traits]
    # stored by name (str); "scz" is the scored "SCZ"; a trait named twice is tested once
    traits = list(dict.fromkeys(same_trait(t, scored) for t in traits))
    missing = [t for t in traits if t not in scored]
    if missing:
        raise KeyError(f"traits {missing} were not scored under key {key!r}; scored traits: {scored}"
                       + scored_elsewhere(adata, key, missing[0]))
    if not traits:
        raise ValueError(f"no trait to test: traits={traits!r}; scored traits: {scored}")
    stale = stale_traits(adata, key, traits)
    if stale:
        logger.warning("%s were scored with gene statistics that psysc.pp.prepare_scoring has since replaced (other "
                       "cells, covariates or normalisation): their results rest on the earlier ones; score them "
                       "again (psysc.tl.score_disorders) first", ", ".join(stale))
    if not isinstance(groupby, str):
        raise TypeError(f"groupby must be the name of one column of adata.obs, not {groupby!r}; to group by several "
                        "columns, join them into one first, e.g. adata.obs['a_b'] = adata.obs['a'].astype(str) + "
                        "'_' + adata.obs['b'].astype(str)")
    if isinstance(fdr_thresholds, int | float):
        fdr_thresholds = (fdr_thresholds,)
    if isinstance(fdr_thresholds, str) or not all(
        isinstance(t, int | float | np.integer | np.floating) and not isinstance(t, bool) for t in fdr_thresholds
    ):
        raise TypeError(f"fdr_thresholds must be numbers (FDR levels, e.g. (0.1, 0.2)), not {fdr_thresholds!r}")
    named: dict[str, float] = {}  # each threshold one column, named by the threshold as :g writes it (the first)
    for t in fdr_thresholds:
        named.setdefault(f"{float(t):g}", float(t))
    fdr_thresholds = tuple(named.values())
    if not all(0 < t <= 1 for t in fdr_thresholds):
        raise ValueError(f"fdr_thresholds must lie in (0, 1] (FDR levels, e.g. (0.1, 0.2)), got {fdr_thresholds}")
    lost = [t for t in traits
            if f"{key}_{t}_ctrl_norm_score" not in adata.obsm or f"{key}_{t}_norm_score" not in adata.obs]
    if lost:
        raise KeyError(
            f"the scores of {lost} are no longer all in adata (obs[\"{key}_<trait>_norm_score\"] and "
            f"obsm[\"{key}_<trait>_ctrl_norm_score\"] are needed): score them again with psysc.tl.score_disorders"
        )
    if groupby not in adata.obs:
        raise KeyError(f"groupby={groupby!r} is not a column of adata.obs; columns: {list(adata.obs.columns)}")
    graph = None
    if use_graph is not None:
        if use_graph not in adata.obsp:
            raise KeyError(
                f"graph {use_graph!r} not in adata.obsp (have {list(adata.obsp)}): build one with "
                "sc.pp.neighbors(adata, use_rep=...) or pass use_graph=None to skip the heterogeneity test."
            )
        graph = sparse.csr_matrix(adata.obsp[use_graph])
        if "distances" in str(use_graph):
            logger.warning(
                "use_graph=%r looks like a graph of distances: Geary's C weighs neighbours by the graph's values, so "
                "distances (large for far neighbours) turn the heterogeneity test around; use the connectivities "
                "(use_graph='connectivities', or '<key>_connectivities' of sc.pp.neighbors(key_added=<key>))",
                use_graph,
            )

    labels = adata.obs[groupby]
    continuous = continuous_grouping(labels)
    if continuous is not None:
        raise ValueError(f"obs[{groupby!r}]: {continuous}. Pass a column of cell types or clusters (a column of "
                         "cluster numbers is fine)")
    if labels.isna().any():
        logger.warning("%d cells have no %r label and belong to no group", int(labels.isna().sum()), groupby)
    # cells in sorted name order within each group: a fixed order for tie-breaking
    name_order = np.argsort(adata.obs_names.to_numpy().astype(str), kind="stable")
    label_arr = label_text(labels).astype(str).to_numpy()[name_order]
    valid = labels.notna().to_numpy()[name_order]
    groups = group_order(labels, set(label_arr[valid]))
    members = {g: name_order[(label_arr == g) & valid] for g in groups}
    if not groups:
        raise ValueError(f"obs[{groupby!r}] has no label (every value is missing): no group to test")
    _warn_small_groups(groupby, groups, members)
    warn_missing_words(groupby, groups)

    from tqdm.auto import tqdm

    rows = []
    with tqdm(total=len(traits) * len(groups), desc="group tests (association, heterogeneity)", unit="group",
              disable=not settings.show_progress) as bar:
        for trait in traits:
            norm = adata.obs[f"{key}_{trait}_norm_score"].to_numpy(dtype=np.float32)
            pval = adata.obs[f"{key}_{trait}_pval"].to_numpy(dtype=np.float64)
            ctrl = np.asarray(adata.obsm[f"{key}_{trait}_ctrl_norm_score"], dtype=np.float32)
            fdr = bh_fdr(pval)
            undefined = ~np.isfinite(norm)
            if undefined.any():
                logger.warning(
                    "%s: %d cells have no normalised score (no spread among their control scores; p-value 1); they "
                    "are left out of the groups' association and heterogeneity tests (still counted in n_cells and "
                    "frac_sig)", trait, int(undefined.sum()),
                )
            for g in groups:
                cells = members[g]
                assoc_p, assoc_z, hetero_p, hetero_z = _group_stats(norm, ctrl, graph, cells[~undefined[cells]])
                row = {
                    "trait": trait,
                    "group": g,
                    "n_cells": len(cells),
                    "assoc_pval": assoc_p,
                    "assoc_z": assoc_z,
                    "hetero_pval": hetero_p,
                    "hetero_z": hetero_z,
                }
                for thr in fdr_thresholds:
                    row[f"n_fdr_{thr:g}"] = int(np.sum(fdr[cells] < thr))
                row["frac_sig"] = float(np.mean(fdr[cells] < 0.1)) if len(cells) else np.nan
                rows.append(row)
                bar.update()
    table = pd.DataFrame(rows)
    for col in ("assoc", "hetero"):
        by_trait = table.groupby("trait", sort=False)[f"{col}_pval"]
        table[f"{col}_fdr"] = by_trait.transform(lambda p: bh_fdr(p.to_numpy()))
    order = ["trait", "group", "n_cells", "assoc_pval", "assoc_z", "assoc_fdr", "hetero_pval", "hetero_z",
             "hetero_fdr", "frac_sig"] + [f"n_fdr_{t:g}" for t in fdr_thresholds]
    table = table[order]
    if not inplace:
        return table
    ns = uns_namespace(adata, key)
    params = {"groupby": groupby, "use_graph": use_graph or "", "traits": list(traits),
              "fdr_thresholds": [float(t) for t in fdr_thresholds], **labels_fingerprint(adata, groupby)}
    ns["enrichment"] = table
    ns["enrichment_params"] = params
    by = dict(ns.get("enrichment_by_groupby", {}))
    by[_groupby_key(groupby)] = {"table": table, "params": params}
    ns["enrichment_by_groupby"] = by
    logger.info("added uns[%r]['enrichment'] (%d traits x %d groups of %r; the tables of every groupby are kept in "
                "uns[%r]['enrichment_by_groupby'])", key, len(traits), len(groups), groupby, key)
    return None
