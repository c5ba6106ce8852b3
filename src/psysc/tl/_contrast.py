"""Disorder-specific cell states: contrasts between traits, the shared component, and combined evidence."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from .._core._cauchy import cauchy_combine
from .._core._group import bh_fdr
from .._core._specificity import ols_one_sided
from .._utils import check_anndata, same_trait, uns_namespace
from ._celltype import (
    _GLS_METHODS,
    _check_methods,
    _check_overlap,
    _covariate_matrix,
    _design,
    _filters,
    _gene_z,
    _specificity_for,
    _split_inputs,
    _universe_of,
    _whitener,
    _with_covariates,
    labels_changed,
    labels_fingerprint,
    top_specific_genes,
)
from ._enrichment import kept_enrichment

logger = logging.getLogger("psysc")

_COLUMNS = ["contrast", "trait_a", "trait_b", "group", "method", "beta", "se", "t", "pval", "fdr", "beta_a",
            "beta_b", "n_genes"]


def _default_contrasts(traits: list[str]) -> list[tuple[str, str]]:
    from ..datasets import CONTRAST_TRAITS, PSYCHIATRIC_TRAITS

    psych = [t for t in traits if t in PSYCHIATRIC_TRAITS]
    other = [t for t in traits if t in CONTRAST_TRAITS]
    return [(a, b) for a in psych for b in other]


def _standardised(gene_sets, genes: pd.Index, universe: str) -> tuple[pd.DataFrame, str]:
    """Genes x traits z-scores over one universe shared by all traits, each scaled to unit variance."""
    kind = "set" if all(_universe_of(s, genes, universe) == "set" for s in gene_sets.values()) else "all"
    rows = genes
    if kind == "set":  # genome-wide tables: the genes every one of them has
        for s in gene_sets.values():
            rows = rows.intersection(s.index)
    Z = pd.DataFrame({t: _gene_z(s, rows, kind)[0] for t, s in gene_sets.items()})
    sd = Z.std(axis=0, ddof=0)
    flat = sd.index[~(sd > 0)]
    if len(flat):
        raise ValueError(f"traits {list(flat)} have constant z-scores over the {len(Z)} genes; nothing to contrast")
    return Z / sd, kind


def _difference(za: np.ndarray, zb: np.ndarray, name: str) -> np.ndarray:
    """``za - zb``; all NaN, with a warning, when the two scaled z-score vectors are equal up to rounding.

    Two traits whose gene scores differ only by a scale (or are the same) have nothing to contrast: their
    difference is rounding noise, whose regressions would give arbitrary, even "significant", p-values.
    """
    d = za - zb
    scale = max(float(np.abs(za).max(initial=0.0)), float(np.abs(zb).max(initial=0.0)))
    if not np.abs(d).max(initial=0.0) > 1e-10 * scale:
        logger.warning("%s: the two sides have the same scaled gene z-scores (one trait is the other up to a "
                       "scale); nothing to contrast, NaN", name)
        return np.full_like(d, np.nan)
    return d


def disorder_contrast(
    adata: AnnData,
    gene_sets,
    *,
    groupby: str,
    contrasts: Sequence[tuple[str, str]] | None = None,
    shared: Sequence[str] | None = None,
    method: str | Sequence[str] = "seismic",
    universe: str = "auto",
    top_fraction: float = 0.1,
    layer: str | None = None,
    key_added: str = "psysc",
    min_cells_per_group: int = 20,
    min_cells_expressed: int = 10,
    min_mean: float = 0.1,
    inplace: bool = True,
) -> pd.DataFrame | None:
    """Which cell states are enriched for one disorder beyond another, and which for all of them.

    Uses the regressions of :func:`celltype_enrichment` on the same specificity matrix. Each trait's
    gene z-scores are scaled to unit variance over a common gene universe (so that traits with
    stronger GWAS are comparable), and the regressor of the method is fitted to:

    - ``"A - B"`` for each pair of ``contrasts``: the difference ``z_A - z_B``. Its slope is
      ``beta_A - beta_B`` (least squares is linear in the response; exactly so when neither trait
      brings gene covariates, otherwise the MAGMA models fit the difference with both traits' covariates
      and each side with its own; seismic takes none, as in :func:`celltype_enrichment`), and its standard error
      accounts for the genes the two traits share (it is the regression of the difference, not two
      independent fits). Two-sided p-value: positive ``beta`` means the group is more enriched for
      A, negative for B.
    - ``"shared"``: the mean of the scaled z-scores of the ``shared`` traits (one-sided, beta > 0):
      the component common to the psychiatric disorders.
    - ``"A - shared"`` for each shared trait A: ``z_A`` minus the mean of the *other* shared traits
      (two-sided): enrichment specific to A beyond the shared component.

    Benjamini-Hochberg FDR across the groups of each contrast and method.

    As in :func:`celltype_enrichment`, the ``"magma"`` and ``"top10"`` models are fitted by generalised least
    squares with MAGMA's gene-gene correlations when the traits are ``.genes.raw`` tables
    (:func:`psysc.gwas.read_magma` with ``table=True``): each trait's gene z-scores are correlated as ``R``
    (LD between neighbouring genes), so a difference or a mean of them has a covariance proportional to ``R``
    when the traits' correlations come from one LD reference; those of the first trait of each response are
    used. A response with a trait without correlations is fitted by OLS (with a warning). seismic is OLS.
    ``uns[key_added]["disorder_contrast_params"]["fit"]`` records which, per contrast and method.

    As in :func:`celltype_enrichment`, the stored specificity is reused only while it was computed
    for the same ``groupby``, filters, cells and labels (else recomputed), and each trait needs enough
    genes with a specificity score (else a ValueError).

    Parameters
    ----------
    adata
        Annotated data with log-normalised expression.
    gene_sets
        ``{trait: Series(gene -> z-score)}`` with every trait named in ``contrasts`` and ``shared``
        (e.g. ``psysc.gwas.panel("psychiatric")``).
    groupby
        Column of ``adata.obs`` with the groups.
    contrasts
        Pairs ``(A, B)``. Default: every psychiatric trait present (SCZ, BIP, MDD, ADHD, ASD) against
        every contrast trait present (AD, HEIGHT, LDL).
    shared
        Traits whose common component is tested. Default: the psychiatric traits present, when two
        or more; ``[]`` for none.
    method
        ``"seismic"``, ``"magma"``, ``"top10"``, a list of them, or ``"all"``
        (see :func:`celltype_enrichment`).
    universe
        ``"auto"``, ``"all"`` or ``"set"`` as in :func:`celltype_enrichment`; a contrast needs one
        universe for all traits: genome-wide tables use the genes they share, otherwise all genes with
        a specificity (z = 0 outside each set).
    top_fraction, layer, key_added, min_cells_per_group, min_cells_expressed, min_mean
        As in :func:`celltype_enrichment`.
    inplace
        Store the table in ``adata.uns[key_added]["disorder_contrast"]`` (default) or return it.

    Returns
    -------
    pandas.DataFrame or None
        A tidy DataFrame with one row per contrast, method and group: ``contrast``, ``trait_a``,
        ``trait_b``, ``group``, ``method``, ``beta``, ``se``, ``t``, ``pval``, ``fdr``, ``beta_a`` and
        ``beta_b`` (the slope of each side alone, on the scaled z-scores), ``n_genes``.

    Examples
    --------
    >>> import psysc
    >>> adata = psysc.datasets.darmanis2015()
    >>> psysc.pp.prepare_scoring(adata)
    >>> gs = psysc.gwas.panel("psychiatric")
    >>> psysc.tl.disorder_contrast(adata, gs, groupby="cell_type", contrasts=[("SCZ", "AD")],
    ...                            min_cells_per_group=10)
    >>> c = adata.uns["psysc"]["disorder_contrast"].set_index(["contrast", "group"])
    >>> bool(c.loc[("SCZ - AD", "neurons"), "beta"] > 0 > c.loc[("SCZ - AD", "microglia"), "beta"])
    True

    """
    check_anndata(adata, writes=inplace)
    methods = _check_methods(method)
    gene_sets, gene_tables, correlations = _split_inputs(gene_sets)
    traits = list(gene_sets)
    contrasts = _default_contrasts(traits) if contrasts is None else [tuple(c) for c in contrasts]
    if shared is None:
        from ..datasets import PSYCHIATRIC_TRAITS

        shared = [t for t in traits if t in PSYCHIATRIC_TRAITS]
        shared = shared if len(shared) >= 2 else []
    shared = [same_trait(t, traits) for t in shared]  # "scz" names the gene set "SCZ"
    if any(len(c) != 2 for c in contrasts):
        raise ValueError(f"contrasts must be pairs (A, B), got {contrasts}")
    contrasts = [(same_trait(a, traits), same_trait(b, traits)) for a, b in contrasts]
    needed = {t for c in contrasts for t in c} | set(shared)
    missing = sorted(needed - set(traits))
    if missing:
        raise KeyError(f"traits {missing} are not in gene_sets (available: {traits})")
    if not contrasts and not shared:
        raise ValueError(
            "nothing to contrast: pass contrasts=[('SCZ', 'AD'), ...] or shared=[...] (the defaults need psychiatric "
            f"and contrast traits among {traits})"
        )
    if len(shared) == 1:
        raise ValueError(f"shared needs two or more traits, got {shared}")
    filters = _filters(min_cells_per_group, min_cells_expressed, min_mean)
    tables, store = _specificity_for(adata, groupby, layer=layer, key_added=key_added, filters=filters,
                                     inplace=inplace, top_fraction=top_fraction)
    top = top_specific_genes(tables.tstat, top_fraction)
    groups = list(tables.spec.columns)
    used = sorted(needed, key=traits.index)
    for t in used:
        _check_overlap(t, gene_sets[t], tables.spec.index, adata.var_names)
    store()  # the inputs are checked: adata changes from here on
    Z, kind = _standardised({t: gene_sets[t] for t in used}, tables.spec.index, universe)
    logger.info("contrasts over %d genes (universe=%r); z-scores scaled to unit variance per trait", len(Z), kind)

    responses: list[tuple] = []
    for a, b in contrasts:
        za, zb = Z[a].to_numpy(), Z[b].to_numpy()
        responses.append((f"{a} - {b}", a, b, _difference(za, zb, f"{a} - {b}"), True, za, zb))
    if shared:
        mean = Z[shared].mean(axis=1).to_numpy()
        responses.append(("shared", "+".join(shared), "", mean, False, mean, None))
        for a in shared:
            rest = Z[[t for t in shared if t != a]].mean(axis=1).to_numpy()
            za = Z[a].to_numpy()
            responses.append((f"{a} - shared", a, "shared", _difference(za, rest, f"{a} - shared"), True, za, rest))

    cov_cache: dict[tuple[str, ...], np.ndarray | None] = {}

    def gene_covariates(*sides: str):
        # the MAGMA-like covariates of every trait on these sides (a side may be "A+B+C", "shared" or ""),
        # built once for all methods and responses
        names = tuple(dict.fromkeys(t for side in sides for t in (shared if side == "shared" else side.split("+"))
                                    if t in gene_tables))
        if names not in cov_cache:
            parts = [gene_tables[t].add_prefix(f"{t}:") for t in names]
            cov_cache[names] = (_covariate_matrix(Z.index, pd.concat(parts, axis=1), None, "+".join(names))[0]
                                if parts else None)
        return cov_cache[names]

    whiteners: dict[str, object] = {}
    mixed: set[tuple[str, ...]] = set()

    def whitener(*sides: str):
        # GLS for the MAGMA models when every trait on these sides carries MAGMA gene-gene correlations: each
        # trait's z-scores have correlation ~R (LD), so a difference or a mean of them has covariance ~R; the
        # correlations of the first of them are used (one LD reference)
        names = tuple(dict.fromkeys(t for side in sides for t in (shared if side == "shared" else side.split("+"))
                                    if t))
        with_r = [t for t in names if t in correlations]
        if not with_r:
            return None
        if len(with_r) < len(names):
            if names not in mixed:
                mixed.add(names)
                logger.warning("%s: only %s carry MAGMA gene-gene correlations; fitted by OLS", " / ".join(names),
                               with_r)
            return None
        if names[0] not in whiteners:
            whiteners[names[0]] = _whitener(names[0], Z.index, *correlations[names[0]])
        return whiteners[names[0]]

    fitted_by: dict[str, dict[str, str]] = {}
    rows = []
    for m in methods:
        X, extra = _design(m, tables, Z.index, top)
        fits = {}

        def fit(y, *sides, X=X, extra=extra, m=m, two_sided=False):
            # the method's design, its own covariates and (MAGMA models) the gene covariates of the traits on these
            # sides, by GLS where they carry correlations; seismic regresses on the specificity alone, by OLS
            genes_cov = None if m == "seismic" else gene_covariates(*sides)
            whiten = whitener(*sides) if m in _GLS_METHODS else None
            return ols_one_sided(y, X, covariates=_with_covariates(extra, genes_cov), whiten=whiten,
                                 two_sided=two_sided), whiten is not None

        for name, a, b, y, two_sided, ya, yb in responses:
            (beta, se, t, p), gls = fit(y, a, b, two_sided=two_sided)
            fitted_by.setdefault(name, {})[m] = "gls" if gls else "ols"
            beta_a = fits[a] if a in fits else fit(ya, a)[0][0]
            if yb is None:
                beta_b = np.full(len(groups), np.nan)
            else:
                beta_b = fits[b] if b in fits else fit(yb, b)[0][0]
            if b != "shared":  # "shared" on the B side is a leave-one-out mean that depends on A
                fits.setdefault(a, beta_a)
                fits.setdefault(b, beta_b)
            fdr = bh_fdr(p)
            for j, g in enumerate(groups):
                rows.append((name, a, b, g, m, beta[j], se[j], t[j], p[j], fdr[j], beta_a[j], beta_b[j], len(Z)))
    table = pd.DataFrame(rows, columns=_COLUMNS)
    if not inplace:
        return table
    ns = uns_namespace(adata, key_added)
    ns["disorder_contrast"] = table
    ns["disorder_contrast_params"] = {
        "groupby": groupby, "methods": methods, "contrasts": [list(c) for c in contrasts], "shared": shared,
        "universe": kind, "fit": fitted_by,
    }
    logger.info("added uns[%r]['disorder_contrast'] (%d contrasts x %d groups)", key_added, len(responses), len(groups))
    return None


def _cells_part(table) -> pd.DataFrame:
    t = pd.DataFrame(table)
    return t[["trait", "group", "assoc_pval"]].rename(columns={"assoc_pval": "pval_cells"})


def combine_evidence(
    adata: AnnData,
    *,
    key: str = "psysc",
    traits: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    cells: bool = True,
    inplace: bool = True,
) -> pd.DataFrame | None:
    """Combine per-cell and cell-type level evidence of each trait and group by a Cauchy combination.

    Joins, on trait and group, the per-cell association test of :func:`disorder_enrichment`
    (``assoc_pval``: scDRS scores of the cells of the group against their control-set scores) and
    the cell-type regressions of :func:`celltype_enrichment` (one p-value per method), and combines
    the p-values with the Cauchy combination test (Liu & Xie, JASA 2020), which stays valid when the
    tests are dependent, as these are (they use the same GWAS genes). Equal weights; P-values above 0.999 count
    as 0.999 (so the combined p-value never falls when an input rises);
    Benjamini-Hochberg FDR across the groups of each trait.

    Both tables must come from the same ``groupby``: the per-cell table of the cell-type table's ``groupby`` is
    taken from those :func:`disorder_enrichment` keeps for each grouping it ran. A group missing from one table
    (e.g. dropped by the specificity's minimum group size) is combined from the p-values it has; ``n_tests``
    says how many.

    Parameters
    ----------
    adata
        Annotated data on which :func:`disorder_enrichment` and/or :func:`celltype_enrichment` ran.
    key
        Namespace of the results (their ``key`` / ``key_added``).
    traits
        Traits to combine (default: all in the tables).
    methods
        Cell-type methods to include (default: all in the table).
    cells
        Include the per-cell association p-value (default True).
    inplace
        Store the table in ``adata.uns[key]["combined_enrichment"]`` (default) or return it.

    Returns
    -------
    pandas.DataFrame or None
        A tidy DataFrame: ``trait``, ``group``, one ``pval_<source>`` column per input test
        (``pval_cells``, ``pval_seismic``, ...), ``n_tests``, ``pval`` (combined), ``fdr``.

    Examples
    --------
    >>> import psysc
    >>> adata = psysc.datasets.darmanis2015()
    >>> psysc.pp.prepare_scoring(adata)
    >>> gs = psysc.gwas.panel("psychiatric")
    >>> psysc.tl.score_disorders(adata, gs, n_ctrl=200)
    >>> psysc.tl.disorder_enrichment(adata, groupby="cell_type", use_graph=None)
    >>> psysc.tl.celltype_enrichment(adata, gs, groupby="cell_type", method="all", min_cells_per_group=10)
    >>> psysc.tl.combine_evidence(adata)
    >>> adata.uns["psysc"]["combined_enrichment"].head()  # doctest: +SKIP

    """
    check_anndata(adata, writes=inplace)
    ns = adata.uns.get(key)
    if not isinstance(ns, dict):
        raise KeyError(f"adata.uns[{key!r}] not found: run psysc.tl.disorder_enrichment and/or celltype_enrichment")
    if isinstance(methods, str):
        methods = [methods]
    parts = []
    groupbys, records = {}, {}
    celltype_groupby = ns.get("celltype_enrichment_params", {}).get("groupby") if "celltype_enrichment" in ns else None
    kept = kept_enrichment(ns, celltype_groupby)
    if cells and kept is not None:
        parts.append(_cells_part(kept["table"]))  # the per-cell table of the cell-type table's grouping
        groupbys["disorder_enrichment"] = celltype_groupby
        records["disorder_enrichment"] = kept.get("params", {})
    elif cells and "enrichment" in ns:
        parts.append(_cells_part(ns["enrichment"]))
        groupbys["disorder_enrichment"] = ns.get("enrichment_params", {}).get("groupby")
        records["disorder_enrichment"] = ns.get("enrichment_params", {})
    if "celltype_enrichment" in ns:
        t = pd.DataFrame(ns["celltype_enrichment"])
        if methods is not None:
            unknown = sorted(set(methods) - set(t["method"]))
            if unknown:
                raise KeyError(f"methods {unknown} are not in the cell-type table (it has {sorted(set(t['method']))})")
            t = t[t["method"].isin(methods)]
        wide = t.pivot_table(index=["trait", "group"], columns="method", values="pval", aggfunc="first", dropna=False)
        wide.columns = [f"pval_{c}" for c in wide.columns]
        parts.append(wide.reset_index())
        groupbys["celltype_enrichment"] = ns.get("celltype_enrichment_params", {}).get("groupby")
        records["celltype_enrichment"] = ns.get("celltype_enrichment_params", {})
    if not parts:
        raise KeyError(
            f"no enrichment tables in adata.uns[{key!r}]: run psysc.tl.disorder_enrichment (per cell) and/or "
            "psysc.tl.celltype_enrichment first"
        )
    if len({g for g in groupbys.values() if g is not None}) > 1:
        raise ValueError(f"the tables were computed for different groupings: {groupbys}; rerun them with one groupby")
    now = {}  # the data's fingerprint by grouping, made once (one grouping, checked above)
    for source, record in records.items():  # each table on the cells and labels adata has now
        groupby = groupbys[source]
        if groupby in adata.obs and groupby not in now:
            now[groupby] = labels_fingerprint(adata, groupby)
        why = labels_changed(adata, groupby, record, now[groupby]) if groupby in adata.obs else (
            f"obs[{groupby!r}] is no longer in adata" if groupby is not None else None)
        if why is not None:
            call = "(adata, gene_sets, " if source == "celltype_enrichment" else "(adata, "
            raise ValueError(f"the {source} table does not fit the data any more: {why}; run "
                             f"psysc.tl.{source}{call}groupby={groupby!r}) again before combining")
    table = parts[0]
    for p in parts[1:]:
        table = table.merge(p, on=["trait", "group"], how="outer")
    for col in ("trait", "group"):
        table[col] = table[col].astype(str)
    if traits is not None:
        traits = [same_trait(t, set(table["trait"])) for t in ([traits] if isinstance(traits, str) else traits)]
        unknown = sorted(set(traits) - set(table["trait"]))
        if unknown:
            raise KeyError(f"traits {unknown} are not in the tables (they have {sorted(set(table['trait']))})")
        table = table[table["trait"].isin(traits)]
    pcols = [c for c in table.columns if c.startswith("pval_")]
    P = table[pcols].to_numpy(dtype=np.float64)
    table = table.reset_index(drop=True)
    table["n_tests"] = (~np.isnan(P)).sum(axis=1)
    table["pval"] = cauchy_combine(P, axis=1)
    table["fdr"] = np.nan
    for _, idx in table.groupby("trait").groups.items():
        table.loc[idx, "fdr"] = bh_fdr(table.loc[idx, "pval"].to_numpy())
    if not inplace:
        return table
    ns = uns_namespace(adata, key)
    ns["combined_enrichment"] = table
    ns["combined_enrichment_params"] = {"sources": [c[5:] for c in pcols], "groupby": next(iter(groupbys.values()))}
    logger.info("added uns[%r]['combined_enrichment'] (%d rows, sources: %s)", key, len(table), ", ".join(pcols))
    return None
