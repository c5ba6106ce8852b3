"""Cell-type level enrichment of GWAS signal: specificity, three regression tests and contrasts."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from .._core._blocks import head_rows
from .._core._gls import BandWhitener
from .._core._group import bh_fdr
from .._core._specificity import group_moments, ols_one_sided, seismic_specificity
from .._genesets import DataGenes, as_gene_sets, overlap_hint, report_overlap
from .._utils import (
    check_anndata,
    check_unique_var_names,
    get_matrix,
    group_order,
    head_names,
    label_text,
    reports_cells_read,
    uns_namespace,
    warn_missing_words,
)

logger = logging.getLogger("psysc")

METHODS = ("seismic", "magma", "top10")
_TABLE_COLUMNS = ["trait", "group", "method", "beta", "se", "t", "pval", "fdr", "n_genes"]
MIN_GENES = 5  # genes of a set with a specificity score, at least
MIN_FRACTION = 0.1  # ... and this fraction of the set, unless MIN_GENES_ANY_FRACTION or more
MIN_GENES_ANY_FRACTION = 50
TOP_FRACTION = 0.1  # the most specific genes of each group that make its top-specific gene set


def too_few_genes(n_in: int, n_set: int) -> bool:
    """Whether ``n_in`` of a set's ``n_set`` genes are too few to test.

    Too few: fewer than :data:`MIN_GENES`, or fewer than :data:`MIN_FRACTION` of the set and fewer than
    :data:`MIN_GENES_ANY_FRACTION` (mismatched gene names or species, rather than a small panel).
    """
    return n_in < MIN_GENES or (n_in < MIN_GENES_ANY_FRACTION and n_in < MIN_FRACTION * n_set)


def _filters(min_cells_per_group, min_cells_expressed, min_mean) -> dict:
    """Seismic's filters as stored in ``uns`` (and compared to decide whether a stored specificity fits)."""
    if int(min_cells_per_group) < 2:
        raise ValueError(
            f"min_cells_per_group={min_cells_per_group}: a group needs at least 2 cells for the variance of its "
            "expression (the specificity t statistic); use 2 or more"
        )
    return {"min_cells_per_group": int(min_cells_per_group), "min_cells_expressed": int(min_cells_expressed),
            "min_mean": float(min_mean)}


def _prepared_layer(adata: AnnData, key) -> str | None | bool:
    """The log-normalised layer ``prepare_scoring`` recorded under ``uns[key]``.

    Its name, ``None`` for ``X``, or ``False`` when ``uns[key]`` holds no such record.
    """
    ns = adata.uns.get(key)
    prep = ns.get("prepare_scoring") if isinstance(ns, dict) else None
    if not isinstance(prep, dict):
        return False
    layer = prep.get("layer")
    return str(layer) if layer and layer != "X" else None


def _default_layer(adata: AnnData, key: str) -> str | None:
    """The log-normalised layer ``prepare_scoring`` recorded under ``uns[key]``, else under ``uns["psysc"]``."""
    for k in dict.fromkeys((key, "psysc")):
        layer = _prepared_layer(adata, k)
        if layer is not False:
            return layer
    return None


def _labels(adata: AnnData, groupby: str, *, warn: bool = True):
    """Per-cell group codes (-1: no label) and the group names (strings, in :func:`group_order`)."""
    if groupby not in adata.obs:
        raise KeyError(f"groupby={groupby!r} is not a column of adata.obs; columns: {list(adata.obs.columns)}")
    lab = adata.obs[groupby]
    if warn and lab.isna().any():
        logger.warning("%d cells have no %r label and belong to no group", int(lab.isna().sum()), groupby)
    text = label_text(lab)
    names = group_order(lab, set(text.dropna()))
    if warn:
        warn_missing_words(groupby, names)
    cat = pd.Categorical(text, categories=names)
    return np.asarray(cat.codes, dtype=np.int64), np.asarray(names, dtype=str)


#: the keys of :func:`labels_fingerprint`
_FINGERPRINT = ("n_obs", "n_vars", "labels_digest")


def labels_fingerprint(adata: AnnData, groupby: str, codes=None, names=None) -> dict:
    """What a result by ``groupby`` was computed on: the data's shape and a digest of each cell's group label.

    Stored with the specificity and the enrichment tables (h5ad-writable ints and a hex string) and compared
    before reusing or combining them, so that a subset, a re-labelled ``obs[groupby]`` or a different AnnData is
    not given stale groups. The digest hashes the sorted hashes of the pairs (cell name, label text): it does not
    change with the order of the cells or of the categories (a plot's order, or the one ``write_h5ad`` gives a
    text column).
    """
    if codes is None:
        codes, names = _labels(adata, groupby, warn=False)
    codes = np.asarray(codes, dtype=np.int64)
    labels = np.asarray(names, dtype=object)[np.maximum(codes, 0)] if len(names) else np.empty(len(codes), object)
    labels[codes < 0] = "\x00"  # no label (not a label text)
    pairs = pd.DataFrame({"cell": np.asarray(adata.obs_names, dtype=str).astype(object), "label": labels})
    rows = np.sort(pd.util.hash_pandas_object(pairs, index=False).to_numpy())  # a hash per pair, in no cell order
    digest = hashlib.blake2b(rows.tobytes(), digest_size=16).hexdigest()
    return {"n_obs": int(adata.n_obs), "n_vars": int(adata.n_vars), "labels_digest": digest}


@dataclass
class _SpecTables:
    """Genes x groups tables of the kept genes and groups."""

    spec: pd.DataFrame
    tstat: pd.DataFrame
    mean: pd.DataFrame
    info: dict


def _prepared_layers(adata: AnnData) -> list[tuple[str, str]]:
    """``(key, layer)`` of each ``prepare_scoring`` in ``adata.uns`` whose log-normalised layer is in ``layers``."""
    found = [(str(k), _prepared_layer(adata, k)) for k in adata.uns]
    return [(k, layer) for k, layer in found if layer and layer in adata.layers]


def _refuse_non_log(X, where: str, *, n_rows: int = 2_000, prepared: list[tuple[str, str]] = ()) -> None:
    """Raise unless the first rows of ``X`` look log-normalised (the specificity compares mean log expression).

    Refused, each with its fix: no matrix; raw counts (whole numbers above 1); scaled or centred values (negative,
    ``sc.pp.scale``: means near 0 drop genes and flip the regression); values above
    :data:`~psysc.pp._prepare.LOG_MAX` (CPM/TPM or non-integer counts, not log-transformed).
    """
    from ..pp._prepare import LOG_MAX

    if X is None:
        raise ValueError(f"{where} is None: name the layer with log-normalised expression (layer=...), or run "
                         "psysc.pp.prepare_scoring(adata) first (it adds layers['psysc_norm'], used by default)")
    if X.shape[0] == 0:
        return
    block = head_rows(X, n_rows)
    data = block.data if sparse.issparse(block) else np.asarray(block).ravel()
    data = data[np.isfinite(data)]
    if not data.size:
        return
    fix = ("run psysc.pp.prepare_scoring(adata) first (it adds layers['psysc_norm'], used by default) or pass "
           "layer=<a log-normalised layer>")
    if prepared:  # prepared under another key: its layer is there
        key, layer = prepared[0]
        fix = (f"pass layer={layer!r}, the log-normalised layer of psysc.pp.prepare_scoring(adata, key_added={key!r}) "
               f"(or key_added={key!r}, whose preparation is used by default)")
    head = f"in its first {block.shape[0]} cells"
    if data.min() < 0:
        raise ValueError(
            f"{where} holds negative values {head}: it looks scaled or centred (sc.pp.scale?), and the cell-type "
            f"specificity needs log-normalised expression, not centred: {fix}; scanpy keeps the log-normalised "
            "values in adata.raw when it was set before scaling (adata.raw.to_adata())"
        )
    if data.max() > 1 and np.all(data == np.round(data)):
        raise ValueError(
            f"{where} looks like raw counts (whole numbers up to {data.max():g} {head}); the cell-type specificity "
            f"needs log-normalised expression: {fix}"
        )
    if data.max() > LOG_MAX:
        raise ValueError(
            f"{where} reaches {data.max():.4g} {head}: it is not log-transformed (CPM/TPM, or non-integer counts); "
            f"the cell-type specificity needs log-normalised expression: {fix} (sc.pp.log1p for normalised values)"
        )


def _compute_specificity(adata, groupby, *, layer, block_size, filters) -> _SpecTables:
    X = get_matrix(adata, layer)
    _refuse_non_log(X, f"layers[{layer!r}]" if layer else "adata.X", prepared=[] if layer else _prepared_layers(adata))
    codes, names = _labels(adata, groupby)
    mom = group_moments(X, codes, len(names), block_size=block_size)
    res = seismic_specificity(mom, **filters)
    if res.n_groups_dropped:
        kept = set(res.groups.tolist())
        dropped = [f"{names[i]} ({int(mom.n[i])} cell{'' if mom.n[i] == 1 else 's'})" for i in range(len(names))
                   if i not in kept]
        logger.warning(
            "%d group(s) with fewer than %d cells dropped from the specificity: %s (lower min_cells_per_group of "
            "psysc.tl.celltype_specificity to keep them)",
            res.n_groups_dropped, filters["min_cells_per_group"], ", ".join(dropped),
        )
    logger.info(
        "specificity of %d genes x %d groups; dropped %d genes expressed in < %d cells and %d with mean of group "
        "means < %g",
        res.genes.size, res.groups.size, res.n_genes_dropped_expressed, filters["min_cells_expressed"],
        res.n_genes_dropped_mean, filters["min_mean"],
    )
    groups = [str(names[i]) for i in res.groups]
    index = adata.var_names[res.genes]
    info = {
        **labels_fingerprint(adata, groupby, codes, names),
        "n_groups_dropped": int(res.n_groups_dropped),
        "n_genes_dropped_expressed": int(res.n_genes_dropped_expressed),
        "n_genes_dropped_mean": int(res.n_genes_dropped_mean),
    }
    frame = lambda a: pd.DataFrame(a.T, index=index, columns=groups)  # noqa: E731
    return _SpecTables(frame(res.spec), frame(res.tstat), frame(res.mean), info)


def top_specific_genes(tstat: pd.DataFrame, fraction: float = 0.1) -> dict[str, list[str]]:
    """The ``fraction`` of genes with the highest specificity statistic of each group (LDSC-SEG style)."""
    if not 0 < fraction < 1:
        raise ValueError(f"top_fraction must be in (0, 1), got {fraction}")
    n_top = max(1, int(np.ceil(fraction * tstat.shape[0])))
    out = {}
    for g in tstat.columns:
        order = np.argsort(-tstat[g].to_numpy(), kind="stable")[:n_top]
        out[str(g)] = [str(x) for x in tstat.index[order]]
    return out


def _specific_genes_table(top: dict[str, list[str]]) -> pd.DataFrame:
    """``{group: genes}`` as a long table (``group``, ``gene``, ``rank``) that survives h5ad with any group name.

    Group names are values, never keys: h5ad reads "/" in a key as nesting ("L2/3 IT" -> "L2" / "3 IT").
    """
    groups = list(top)
    return pd.DataFrame({
        "group": pd.Categorical([g for g in groups for _ in top[g]], categories=groups),
        "gene": np.asarray([x for g in groups for x in top[g]], dtype=object),
        "rank": np.concatenate([np.arange(1, len(top[g]) + 1) for g in groups]).astype(np.int64)
        if groups else np.zeros(0, dtype=np.int64),
    })


def specific_gene_sets(adata: AnnData, key: str = "psysc") -> dict[str, list[str]]:
    """The top-specific gene sets stored by :func:`~psysc.tl.celltype_specificity`, as ``{group: genes}``.

    Genes of each group are ordered from the most specific. Reads ``adata.uns[key]["specific_genes"]``
    (a table with columns ``group``, ``gene``, ``rank``; also the ``{group: genes}`` mapping of files
    written by earlier versions).

    The same with pandas alone::

        t = adata.uns["psysc"]["specific_genes"].sort_values("rank")
        sets = {g: d["gene"].tolist() for g, d in t.groupby("group", observed=True)}

    Examples
    --------
    >>> import psysc
    >>> adata = psysc.datasets.darmanis2015()
    >>> psysc.pp.prepare_scoring(adata)
    >>> psysc.tl.celltype_specificity(adata, "cell_type", min_cells_per_group=10)
    >>> "CD74" in psysc.tl.specific_gene_sets(adata)["microglia"]
    True

    """
    ns = adata.uns.get(key)
    if not isinstance(ns, Mapping) or "specific_genes" not in ns:
        raise KeyError(f"adata.uns[{key!r}]['specific_genes'] not found; run psysc.tl.celltype_specificity first")
    stored = ns["specific_genes"]
    if isinstance(stored, Mapping):  # written by an earlier version
        return {str(g): [str(x) for x in v] for g, v in stored.items()}
    t = pd.DataFrame(stored)
    order = [str(g) for g in ns.get("specificity_groups", [])]
    groups = pd.unique(t["group"].astype(str))
    groups = [g for g in order if g in set(groups)] + [g for g in groups if g not in set(order)]
    t = t.assign(group=t["group"].astype(str)).sort_values(["group", "rank"], kind="stable")
    by = {g: d["gene"].astype(str).tolist() for g, d in t.groupby("group", sort=False)}
    return {g: by[g] for g in groups}


_SPECIFICITY_TABLES = ("specificity", "specificity_t", "group_mean")


def specificity_table(adata: AnnData, which: str = "specificity", *, key: str = "psysc",
                      dropna: bool = True) -> pd.DataFrame:
    """A table stored by :func:`~psysc.tl.celltype_specificity`, as a genes x groups DataFrame.

    The table is ``adata.varm[f"{key}_{which}"]`` with ``var_names`` as index and
    ``adata.uns[key]["specificity_groups"]`` as columns; stored as a plain array, it writes to h5ad and zarr
    whatever the group names.

    Parameters
    ----------
    adata
        Data on which :func:`celltype_specificity` ran.
    which
        ``"specificity"`` (seismic's specificity score), ``"specificity_t"`` (the statistic ``rel``) or
        ``"group_mean"`` (mean expression of each group).
    key
        The ``key_added`` of :func:`celltype_specificity`.
    dropna
        Leave out the genes that the filters removed (all NaN); ``False`` keeps every gene of ``var_names``.

    Examples
    --------
    >>> import psysc
    >>> adata = psysc.datasets.darmanis2015()
    >>> psysc.pp.prepare_scoring(adata)
    >>> psysc.tl.celltype_specificity(adata, "cell_type", min_cells_per_group=10)
    >>> psysc.tl.specificity_table(adata, "group_mean").loc["P2RY12"].idxmax()
    'microglia'

    """
    if which not in _SPECIFICITY_TABLES:
        raise ValueError(f"which must be one of {list(_SPECIFICITY_TABLES)}, not {which!r}")
    ns = adata.uns.get(key)
    name = f"{key}_{which}"
    if not isinstance(ns, Mapping) or "specificity_groups" not in ns or name not in adata.varm:
        raise KeyError(f"adata.varm[{name!r}] not found; run psysc.tl.celltype_specificity(adata, groupby, "
                       f"key_added={key!r}) first")
    groups = [str(g) for g in ns["specificity_groups"]]
    values = np.asarray(adata.varm[name], dtype=np.float64)
    if values.shape[1] != len(groups):
        raise ValueError(f"adata.varm[{name!r}] has {values.shape[1]} columns but uns[{key!r}]['specificity_groups'] "
                         f"names {len(groups)} groups; run psysc.tl.celltype_specificity again")
    table = pd.DataFrame(values, index=adata.var_names.copy(), columns=pd.Index(groups, name="group"))
    return table.dropna(how="all") if dropna else table


@reports_cells_read("celltype_specificity (cells read, every pass)")
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
    top_fraction: float = TOP_FRACTION,
    inplace: bool = True,
) -> pd.DataFrame | None:
    """Seismic's cell-type specificity score of every gene, and the top-specific gene sets.

    For each gene g and group c (Lai et al., Nat Commun 2025; ``seismicGWAS::calc_specificity``)::

        rel_gc  = (mu_gc - mu_g,-c) / sqrt(s2_gc / (n_c - 1) + s2_g,-c / (n_-c - 1))
        spec_gc = Phi(rel_gc) * ratio_gc

    with in-group mean and unbiased variance ``mu_gc, s2_gc``, the same over all other cells
    ``mu_g,-c, s2_g,-c``, and ``ratio_gc`` the fraction of cells of c in which g is non-zero; each
    gene's scores are normalised to sum 1 over groups. As in seismic, groups with fewer than
    ``min_cells_per_group`` cells are dropped, then genes expressed in fewer than
    ``min_cells_expressed`` cells or with a mean of group means below ``min_mean``; the numbers
    removed are logged and stored. The statistic ``rel`` also ranks genes for the top-specific gene
    sets of LDSC-SEG style analyses (Finucane et al., Nat Genet 2018: the top 10 % of genes by a
    t-statistic of the group against all other cells). One streaming pass over row blocks of the
    matrix (in-memory, backed or dask; sparse blocks are never densified).

    Parameters
    ----------
    adata
        Annotated data with log-normalised expression (for a MuData, pass the RNA modality).
    groupby
        Column of ``adata.obs`` with the groups (cell types, clusters, states); cells with no label
        are skipped.
    layer
        Layer of log-normalised expression. Default: the layer written by
        :func:`psysc.pp.prepare_scoring` (``adata.uns[key_added]["prepare_scoring"]["layer"]``) when
        present, else ``X``.
    key_added
        Namespace of the stored results (see Returns).
    block_size
        Cells per row block.
    min_cells_per_group, min_cells_expressed, min_mean
        seismic's filters (defaults 20, 10, 0.1).
    top_fraction
        Fraction of the kept genes in each group's top-specific gene set.
    inplace
        Store the results (default) or return the specificity table.

    Returns
    -------
    pandas.DataFrame or None
        With ``inplace=False``, a genes x groups DataFrame of the specificity score of the kept genes
        and groups. With ``inplace=True`` (all genes x kept groups; filtered genes are NaN):

        - ``adata.varm[f"{key_added}_specificity"]``: the seismic specificity score;
        - ``adata.varm[f"{key_added}_specificity_t"]``: the statistic ``rel``;
        - ``adata.varm[f"{key_added}_group_mean"]``: the mean expression of each group;

          three float64 arrays (genes x groups, columns in the order of ``specificity_groups``), so that
          group names such as ``"L2/3 IT"`` never become keys of an h5ad or zarr store;
          :func:`psysc.tl.specificity_table` returns each as a labelled DataFrame;
        - ``adata.uns[key_added]["specific_genes"]``: the top-specific gene sets as a long table with
          columns ``group``, ``gene`` and ``rank`` (1 = most specific), one row per gene of each set;
          group names are values, not keys, so names such as ``"L2/3 IT"`` survive ``write_h5ad``.
          :func:`psysc.tl.specific_gene_sets` returns ``{group: genes}``;
        - ``adata.uns[key_added]["specificity_groups"]``: the kept groups, in the column order of the
          ``varm`` tables;
        - ``adata.uns[key_added]["specificity_params"]``: groupby, layer, filters, ``top_fraction``, the
          numbers of genes and groups removed, and what the specificity was computed on (``n_obs``,
          ``n_vars`` and ``labels_digest``, a hash of every cell's group label): :func:`celltype_enrichment`
          and :func:`psysc.tl.disorder_contrast` reuse the stored specificity only while these still
          match the data.

    Examples
    --------
    >>> import psysc
    >>> adata = psysc.datasets.darmanis2015()
    >>> psysc.pp.prepare_scoring(adata)
    >>> psysc.tl.celltype_specificity(adata, "cell_type", min_cells_per_group=10)
    >>> psysc.tl.specificity_table(adata).loc["GFAP"].idxmax()
    'astrocytes'
    >>> t = adata.uns["psysc"]["specific_genes"]
    >>> "CD74" in set(t.loc[t["group"] == "microglia", "gene"])
    True

    """
    check_anndata(adata, writes=inplace)
    check_unique_var_names(adata, "before computing the specificity")
    if layer is None:
        layer = _default_layer(adata, key_added)
    filters = _filters(min_cells_per_group, min_cells_expressed, min_mean)
    if not inplace:
        tables = _compute_specificity(adata, groupby, layer=layer, block_size=block_size, filters=filters)
        tables.spec.attrs.update(tables.info)
        return tables.spec
    ns = adata.uns.get(key_added)
    earlier = ns.get("celltype_enrichment_params") if isinstance(ns, Mapping) else None
    if isinstance(earlier, Mapping) and "celltype_enrichment" in ns:
        logger.warning("uns[%r]['celltype_enrichment'] was computed from the specificity before this one (groupby %r): "
                       "run psysc.tl.celltype_enrichment again", key_added, earlier.get("groupby"))
    _store_specificity(adata, groupby, layer=layer, key_added=key_added, block_size=block_size, filters=filters,
                       top_fraction=top_fraction)
    return None


def _store_specificity(adata, groupby, *, layer, key_added, block_size, filters, top_fraction,
                       tables: _SpecTables | None = None) -> None:
    """Write the specificity into ``adata`` (varm tables, ``uns[key_added]``), computed here unless ``tables``."""
    if tables is None:
        tables = _compute_specificity(adata, groupby, layer=layer, block_size=block_size, filters=filters)
    top = top_specific_genes(tables.tstat, top_fraction)
    rows = adata.var_names.get_indexer(tables.spec.index)
    for suffix, table in (("specificity", tables.spec), ("specificity_t", tables.tstat), ("group_mean", tables.mean)):
        # a plain array: group names (e.g. "L2/3 IT") are not keys of the file, see specificity_table
        full = np.full((adata.n_vars, table.shape[1]), np.nan)
        full[rows] = table.to_numpy(dtype=np.float64)
        adata.varm[f"{key_added}_{suffix}"] = full
    ns = uns_namespace(adata, key_added)
    ns["specificity_groups"] = np.asarray(list(tables.spec.columns), dtype=object)
    ns["specific_genes"] = _specific_genes_table(top)
    ns["specificity_params"] = {
        "groupby": groupby,
        "layer": layer or "X",
        **filters,
        "top_fraction": float(top_fraction),
        "n_genes": int(tables.spec.shape[0]),
        **tables.info,
    }
    logger.info(
        "added varm[%r], varm[%r], varm[%r] and uns[%r]['specific_genes']",
        f"{key_added}_specificity", f"{key_added}_specificity_t", f"{key_added}_group_mean", key_added,
    )


def _stale_reason(adata, groupby, *, params, layer, filters, keys) -> str | None:
    """Why the stored specificity does not fit the data and arguments (None: it fits)."""
    if not all(k in adata.varm for k in keys) or not isinstance(params, Mapping):
        return "no stored specificity"
    if params.get("groupby") != groupby:
        return f"it was computed for groupby={params.get('groupby')!r}, not {groupby!r}"
    if layer is not None and params.get("layer") != layer:
        return f"it was computed on layer {params.get('layer')!r}, not {layer!r}"
    changed = [k for k, v in filters.items() if params.get(k) != v]
    if changed:
        return "its filters differ (" + ", ".join(f"{k}={params.get(k)!r}, now {filters[k]!r}" for k in changed) + ")"
    if "labels_digest" not in params:
        return "it carries no record of the cells and labels it was computed on (stored by an earlier version)"
    if int(params.get("n_vars", -1)) != adata.n_vars:
        return f"it was computed on {params.get('n_vars')} genes, the data has {adata.n_vars}"
    return labels_changed(adata, groupby, params)


def labels_changed(adata: AnnData, groupby: str, record: Mapping, now: Mapping | None = None) -> str | None:
    """Why a result computed on the cells and labels that ``record`` describes does not fit ``adata`` now.

    ``record`` holds ``n_obs`` and ``labels_digest`` of :func:`labels_fingerprint`; ``None`` when the result fits, or
    when ``record`` does not hold them (stored by an earlier version). ``now``: the data's fingerprint, when known.
    """
    if not isinstance(record, Mapping) or "labels_digest" not in record:
        return None
    now = labels_fingerprint(adata, groupby) if now is None else now
    if int(record.get("n_obs", -1)) != now["n_obs"]:
        return f"it was computed on {record.get('n_obs')} cells, the data has {now['n_obs']}"
    if str(record["labels_digest"]) != now["labels_digest"]:
        return f"the labels of obs[{groupby!r}] changed since"
    return None


def _nothing_to_write() -> None:
    """What :func:`_specificity_for` returns as the store of a call that leaves ``adata`` as it is."""


def _specificity_for(adata, groupby, *, layer, key_added, filters, inplace, top_fraction):
    """The stored specificity when it fits the arguments and the data, else computed; and what stores it.

    Returns the tables and a function of no arguments that writes into ``adata`` what the call changes (a computed
    specificity when ``inplace``; the stored top-specific gene sets of another ``top_fraction``), for the caller
    to call once its inputs are checked: a refused call leaves ``adata`` as it was.
    """
    check_unique_var_names(adata, "before computing the specificity (a gene's specificity needs one name per gene)")
    ns = adata.uns.get(key_added)
    params = ns.get("specificity_params") if isinstance(ns, Mapping) else None
    keys = [f"{key_added}_{s}" for s in _SPECIFICITY_TABLES]
    reason = _stale_reason(adata, groupby, params=params, layer=layer, filters=filters, keys=keys)
    store = _nothing_to_write
    if reason is not None:
        if reason != "no stored specificity":
            logger.info("recomputing the specificity: the stored one does not fit (%s)", reason)
        if layer is None:
            layer = _default_layer(adata, key_added)
        tables = _compute_specificity(adata, groupby, layer=layer, block_size=10_000, filters=filters)
        if inplace:
            store = partial(_store_specificity, adata, groupby, layer=layer, key_added=key_added, block_size=10_000,
                            filters=filters, top_fraction=top_fraction, tables=tables)
    else:
        params = adata.uns[key_added]["specificity_params"]
        # the stored fingerprint: _stale_reason found it to be the data's own
        tables = _SpecTables(*[specificity_table(adata, which, key=key_added) for which in _SPECIFICITY_TABLES],
                             info={k: params[k] for k in _FINGERPRINT})
        if inplace and float(params.get("top_fraction", TOP_FRACTION)) != float(top_fraction):

            def store() -> None:
                adata.uns[key_added]["specific_genes"] = _specific_genes_table(
                    top_specific_genes(tables.tstat, top_fraction))
                params["top_fraction"] = float(top_fraction)
                logger.info("uns[%r]['specific_genes'] now holds the top %g of each group", key_added, top_fraction)

    for f in (tables.spec, tables.tstat, tables.mean):
        f.columns.name = None
    return tables, store


# ---------------------------------------------------------------- gene z-scores and covariates


def _split_inputs(gene_sets) -> tuple[dict[str, pd.Series], dict[str, pd.DataFrame], dict[str, tuple]]:
    """Gene sets and, for MAGMA-like tables, their gene covariates and gene-gene correlations.

    The covariates that MAGMA's gene-property analysis conditions on by default, as far as the table carries
    them: gene size ``NSNPS`` and its log, gene density ``NPARAM / NSNPS`` and its log, sample size ``N`` and
    its log, inverse minor allele count ``1 / MAC`` and its log (``MAC`` is in ``.genes.raw``, not in
    ``.genes.out``); plus the log gene length from ``START``/``STOP``. MAGMA's manual (automatic corrections of the
    gene-level analysis) defines gene density as the effective gene size, the number of principal components left
    after pruning (``NPARAM``), over the number of SNPs in the gene (``NSNPS``). A covariate without variance (e.g. the
    same ``N`` for every gene) adds nothing to the fit (:func:`psysc._core._specificity.ols_one_sided` drops
    covariates collinear with the intercept). The correlations are a table's ``attrs["gene_corr"]``
    (:func:`psysc.gwas.read_magma` of a ``.genes.raw``), kept with the table's genes.
    """
    sets = as_gene_sets(gene_sets)
    if isinstance(gene_sets, pd.DataFrame):
        gene_sets = {next(iter(sets)): gene_sets}
    tables, correlations = {}, {}
    if isinstance(gene_sets, Mapping):
        for trait, value in gene_sets.items():
            if not isinstance(value, pd.DataFrame):
                continue
            if value.attrs.get("gene_corr") is not None:  # with the table's genes, as they are now named
                correlations[str(trait)] = (value.attrs["gene_corr"], value.index.astype(str))
            cols = {c: pd.to_numeric(value[c], errors="coerce").astype(float)
                    for c in ("START", "STOP", "NSNPS", "NPARAM", "N", "MAC") if c in value.columns}
            cov = {}
            if "START" in cols and "STOP" in cols:
                cov["log_gene_length"] = np.log(np.maximum(cols["STOP"] - cols["START"] + 1, 1.0))
            if "NSNPS" in cols:
                size = np.maximum(cols["NSNPS"], 1.0)
                cov["nsnps"], cov["log_nsnps"] = size, np.log(size)
                if "NPARAM" in cols:
                    density = np.maximum(cols["NPARAM"], 1e-3) / size
                    cov["gene_density"], cov["log_gene_density"] = density, np.log(density)
            if "N" in cols:
                n = np.maximum(cols["N"], 1.0)
                cov["n"], cov["log_n"] = n, np.log(n)
            if "MAC" in cols:
                inv_mac = 1.0 / np.maximum(cols["MAC"], 1e-3)
                cov["inverse_mac"], cov["log_inverse_mac"] = inv_mac, np.log(inv_mac)
            if cov:
                frame = pd.DataFrame(cov)
                frame.index = value.index.astype(str)
                tables[str(trait)] = frame[~frame.index.duplicated(keep="last")]
    return sets, tables, correlations


_UNIVERSES = ("auto", "all", "set")


def _universe_of(s: pd.Series, genes: pd.Index, universe: str) -> str:
    """Resolve ``universe="auto"`` for one gene set.

    ``"set"`` when the set covers at least half of ``genes`` (a genome-wide MAGMA table), else ``"all"``.
    """
    if universe != "auto":
        return universe
    return "set" if len(genes.intersection(s.index)) >= 0.5 * len(genes) else "all"


def _gene_z(s: pd.Series, genes: pd.Index, universe: str) -> tuple[pd.Series, str]:
    """Gene z-scores over the regression universe, and the universe used.

    ``"set"``: the genes of the set that have a specificity; ``"all"``: every gene with a specificity,
    z = 0 for genes outside the set; ``"auto"``: see :func:`_universe_of`.
    """
    universe = _universe_of(s, genes, universe)
    common = genes.intersection(s.index)
    if universe == "set":
        return s.loc[common].astype(np.float64), universe
    z = pd.Series(0.0, index=genes)
    z.loc[common] = s.loc[common].to_numpy(dtype=np.float64)
    return z, universe


def _no_match(message: str, left: tuple[str, pd.Index], right: tuple[str, pd.Index], fix: str) -> ValueError:
    """An error for two gene lists that share no name: their first names and why they may differ."""
    (a, ia), (b, ib) = left, right
    return ValueError(f"{message} ({a}: {head_names(ia)}, {b}: {head_names(ib)}); {overlap_hint(ia, ib)}. {fix}")


def _check_overlap(trait: str, s: pd.Series, genes: pd.Index, var_names: pd.Index,
                   data: DataGenes | None = None) -> int:
    """Number of the set's genes with a specificity; a ValueError when they are too few (:func:`too_few_genes`).

    ``data``: the :class:`~psysc._genesets.DataGenes` of ``var_names``, when made for several sets.
    """
    n_in = int(genes.isin(s.index).sum())
    n_in_data = int(s.index.isin(var_names).sum())
    if n_in == 0 and n_in_data:
        raise ValueError(
            f"no gene of {trait!r} has a specificity score, although {n_in_data} of its {len(s)} genes are in "
            "var_names: they were filtered out of the specificity (too few cells expressing them, or too low a mean); "
            "lower min_cells_expressed / min_mean, or check that the expression is log-normalised"
        )
    if n_in == 0:
        raise _no_match(f"no gene of {trait!r} has a specificity score: gene names do not match adata.var_names",
                        ("set", s.index), ("data", var_names), "Map them with psysc.gwas.to_symbols / to_ensembl / "
                        "to_species")
    unmatched = s.index[~s.index.isin(var_names)]
    if too_few_genes(n_in, len(s)) and len(s) < MIN_GENES and not len(unmatched):
        raise ValueError(f"gene set {trait!r} has {len(s)} genes, all in var_names ({n_in} with a specificity score): "
                         f"the regression needs a set of at least {MIN_GENES} genes")
    if too_few_genes(n_in, len(s)):
        raise ValueError(
            f"only {n_in} of the {len(s)} genes of {trait!r} have a specificity score (at least {MIN_GENES}, and "
            f"{MIN_FRACTION:.0%} of the set unless {MIN_GENES_ANY_FRACTION} or more, are needed: fewer suggests gene "
            f"names that do not match); matched: {head_names(genes[genes.isin(s.index)], 5)}. "
            + (f"If the gene names should match more widely: {overlap_hint(unmatched, var_names)}. Map them with "
               "psysc.gwas.to_symbols / to_ensembl / to_species; " if len(unmatched) else "")
            + f"{n_in_data} of the set's genes are in var_names: lower min_cells_expressed "
            "/ min_mean if they were filtered out of the specificity"
        )
    report_overlap(trait, s.index, var_names if data is None else data, n_in_data)
    return n_in


def _usable_traits(gene_sets: dict, genes: pd.Index, var_names: pd.Index) -> tuple[dict, dict]:
    """``({trait: genes with a specificity}, {trait: the same, of the traits left out})``.

    A trait with too few genes with a specificity (:func:`_check_overlap`) is left out with a WARNING that names
    it and its count, when another trait can be tested; when none can, the first trait's error is raised.
    """
    usable, skipped, errors = {}, {}, []
    data = DataGenes(var_names)
    for t, s in gene_sets.items():
        try:
            usable[t] = _check_overlap(t, s, genes, var_names, data)
        except ValueError as err:
            skipped[t] = int(genes.isin(s.index).sum())
            errors.append(err)
    if not usable:
        if len(errors) == 1:
            raise errors[0]
        raise ValueError(f"none of the {len(errors)} traits can be tested: {errors[0]}") from errors[0]
    if skipped:
        logger.warning(
            "%d of %d traits are left out: too few of their genes have a specificity score (%s); the first: %s",
            len(skipped), len(gene_sets), ", ".join(f"{t}: {n} of {len(gene_sets[t])}" for t, n in skipped.items()),
            errors[0],
        )
    return usable, skipped


def _check_user_covariates(user: pd.DataFrame | None, genes: pd.Index, trait: str) -> None:
    """Refuse ``covariates`` that match none of the regression's genes; warn when they match only part."""
    if user is None:
        return
    n_match = int(genes.isin(user.index).sum())
    if n_match == 0:
        raise _no_match(f"covariates: none of their {len(user)} rows matches one of the {len(genes)} genes of the "
                        f"{trait!r} regression", ("covariates index", user.index), ("genes", genes),
                        "Index covariates by adata.var_names")
    if n_match < len(genes):
        logger.warning(
            "%s: covariates cover %d of the %d genes in the regression; the other %d get the covariate means",
            trait, n_match, len(genes), len(genes) - n_match,
        )


def _covariate_matrix(index: pd.Index, table: pd.DataFrame | None, user: pd.DataFrame | None, trait: str):
    parts = [t for t in (table, user) if t is not None]
    if not parts:
        return None, []
    cov = pd.concat(parts, axis=1)
    cov = cov.loc[:, ~cov.columns.duplicated()]
    cov = cov.reindex(index)
    missing = cov.isna().any(axis=1)
    if missing.any():
        # genes outside a top-N table have no covariate: fill with the mean (a neutral value)
        logger.info("%s: %d genes without covariates get the covariate means", trait, int(missing.sum()))
        cov = cov.fillna(cov.mean())
    cov = cov.fillna(0.0)
    return cov.to_numpy(dtype=np.float64), list(cov.columns)


def _with_covariates(extra: np.ndarray | None, cov: np.ndarray | None) -> np.ndarray | None:
    """The covariates a method adds itself (``extra``, from :func:`_design`) beside the gene covariates."""
    return extra if cov is None else (cov if extra is None else np.column_stack([extra, cov]))


#: methods that MAGMA fits by GLS with the gene-gene correlations (seismic fits by OLS)
_GLS_METHODS = frozenset({"magma", "top10"})


def _whitener(trait: str, genes: pd.Index, gene_corr, table_genes: pd.Index):
    """The GLS whitening of a trait's regression with its table's gene-gene correlations.

    ``None``, with a warning, when none of the regression's genes has correlations (e.g. a table renamed after
    reading); a warning when fewer than half of the table's genes in the regression have them.
    """
    w = BandWhitener(genes, gene_corr)
    in_table = int(genes.isin(table_genes).sum())
    if w.n_matched == 0:
        logger.warning(
            "%s: none of the %d genes of the regression is among the %d genes of the table's gene-gene correlations "
            "(was the table renamed after read_magma? pass gene_loc= to read_magma instead); fitted by OLS",
            trait, len(genes), len(gene_corr.genes),
        )
        return None
    level = logging.WARNING if w.n_matched < 0.5 * in_table else logging.INFO
    logger.log(level, "%s: GLS with the gene-gene correlations of %d of the %d genes of the regression (%d of them "
               "from the table; band width %d); the others are taken as uncorrelated",
               trait, w.n_matched, len(genes), in_table, w.bandwidth)
    return w


def _design(method: str, tables: _SpecTables, genes: pd.Index, top: dict[str, list[str]]):
    """Regressors (genes x groups) of a method, and the covariates it adds itself."""
    if method == "seismic":
        return tables.spec.loc[genes].to_numpy(), None
    if method == "magma":
        mean = tables.mean.loc[genes].to_numpy()
        return mean, mean.mean(axis=1, keepdims=True)
    X = np.column_stack([genes.isin(top[g]).astype(np.float64) for g in tables.spec.columns])
    return X, None


def _check_methods(method) -> list[str]:
    if isinstance(method, str):
        methods = list(METHODS) if method == "all" else [method]
    else:
        methods = [str(m) for m in method]  # a list, tuple or array of names
        if "all" in methods:  # ["all"]: as "all"
            methods = list(METHODS) + [m for m in methods if m not in (*METHODS, "all")]
    methods = list(dict.fromkeys(methods))  # a method named twice is run once
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        what = f"method {', '.join(map(repr, bad))}" if bad else "an empty list of methods"
        raise ValueError(f"{what} is not supported; choose from {METHODS} (or 'all', or a list of them)")
    return methods


def celltype_enrichment(
    adata: AnnData,
    gene_sets,
    *,
    groupby: str,
    method: str | Sequence[str] = "seismic",
    universe: str = "auto",
    covariates: pd.DataFrame | None = None,
    top_fraction: float = TOP_FRACTION,
    layer: str | None = None,
    key_added: str = "psysc",
    min_cells_per_group: int = 20,
    min_cells_expressed: int = 10,
    min_mean: float = 0.1,
    inplace: bool = True,
) -> pd.DataFrame | None:
    """Which cell types' specifically expressed genes carry each trait's GWAS signal.

    Three tests the field uses, on the same groups and the same gene z-scores; each regresses the
    gene z-scores (the weights of the gene set, e.g. MAGMA z) on a per-gene property of the group,
    with an intercept, and tests a positive slope (one-sided p-value from the t distribution;
    Benjamini-Hochberg FDR across the groups of each trait and method):

    - ``"seismic"`` (Lai et al., Nat Commun 2025): ``z ~ 1 + spec_c``, with ``spec_c`` seismic's
      specificity score (:func:`celltype_specificity`); the gene covariates of a MAGMA-like table are not
      added (seismic regresses on the specificity alone), ``covariates`` passed explicitly are.
    - ``"magma"``: the MAGMA gene-property model of cell-type analyses (de Leeuw et al., PLoS Comput
      Biol 2015; Watanabe et al., Nat Commun 2019): ``z ~ 1 + E_c + E_avg [+ covariates]``, with
      ``E_c`` the mean log expression in group c and ``E_avg`` its average over the groups. Gene
      covariates are added where the input has them: from a MAGMA-like table (as
      :func:`psysc.gwas.read_magma` with ``table=True`` or :func:`psysc.gwas.sumstats_to_genes` return)
      those of MAGMA's default gene covariates that it carries, gene size (``NSNPS``; PoPS takes ``NPARAM``),
      gene density (``NPARAM / NSNPS``), sample size (``N``) and inverse minor allele count (``1 / MAC``, in
      ``.genes.raw`` only), each also logged; psysc adds the log gene length (``START``/``STOP``); and any
      ``covariates``. The test is one-sided (beta > 0) as in MAGMA cell-type analyses
      (``--model direction=pos``); MAGMA's own default for a gene covariate is two-sided.
      MAGMA fits this model by generalised least squares (GLS) with the gene-gene correlations of its LD
      reference, which its ``.genes.raw`` output holds: a table read from a ``.genes.raw`` file is fitted
      so. Without them (``.genes.out``, other tables) this is ordinary least squares, and neighbouring,
      correlated genes are treated as independent (p-values too small where risk genes cluster).
    - ``"top10"``: a competitive gene-set test (MAGMA gene-set analysis, LDSC-SEG's top 10 %
      sets): ``z ~ 1 + 1[g in top_c]`` with ``top_c`` the ``top_fraction`` most specific genes of
      c by the statistic of :func:`celltype_specificity`; GLS with a ``.genes.raw`` table, as MAGMA.
      ``"seismic"`` is always OLS, as seismic fits it.

    **Which genes enter the regression** (``universe``). seismic and MAGMA regress the z-scores of
    all genes. A genome-wide table (a MAGMA ``.genes.out`` read with ``n_top=None``,
    :func:`psysc.gwas.sumstats_to_genes`) is used as is (``"set"``: its genes that have a
    specificity). A top-N gene set (the bundled MAGMA top-1,000 sets, an exome gene list) covers a
    small part of the genome: genes outside it get z = 0 (``"all"``), the null expectation of a
    gene z-score. ``"auto"`` (default) picks ``"set"`` when the set covers at least half of the
    genes with a specificity, else ``"all"``; the choice is logged and stored.

    The specificity is computed (and stored when ``inplace``) unless the one in ``adata.varm`` was
    computed for the same ``groupby``, filters (and ``layer``, when given) on the same cells and
    labels (``n_obs``, ``n_vars`` and a digest of ``obs[groupby]`` in ``specificity_params``; after
    subsetting or re-labelling it is recomputed, with an INFO line saying why).

    Each trait needs at least 5 genes with a specificity score, and 10 % of its genes unless 50 or more.
    A trait with fewer is left out of the table with a WARNING that names it, its count
    and the likely cause (other species, other gene IDs), and is listed under ``"skipped"`` in the parameters;
    when no trait has enough, a ValueError says so. ``covariates`` that match none of these genes raise a
    ValueError; covering only part of them logs a WARNING (the others get the covariate means).

    Parameters
    ----------
    adata
        Annotated data with log-normalised expression.
    gene_sets
        ``{trait: Series(gene -> z-score)}`` (the readers of ``psysc.gwas``, :func:`psysc.gwas.panel`,
        :func:`psysc.datasets.gwas_gene_sets`), or MAGMA-like tables with a ``ZSTAT`` column.
    groupby
        Column of ``adata.obs`` with the groups.
    method
        ``"seismic"``, ``"magma"``, ``"top10"``, a list of them, or ``"all"``.
    universe
        ``"auto"``, ``"all"`` or ``"set"`` (see above).
    covariates
        Optional genes x covariates table (index: ``adata.var_names``) added to every model (e.g.
        gene length, SNP density).
    top_fraction
        Fraction of genes in the top-specific sets of ``"top10"``.
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
    pandas.DataFrame or None
        A tidy DataFrame (returned with ``inplace=False``) with one row per trait, method and group:
        ``trait``, ``group``, ``method``, ``beta`` (slope), ``se``, ``t``, ``pval`` (one-sided,
        beta > 0), ``fdr``, ``n_genes`` (genes in the regression). With ``inplace``, the parameters go to
        ``uns[key_added]["celltype_enrichment_params"]``, with ``"fit"``: ``"ols"`` or ``"gls"`` per trait and
        method, and ``"skipped"``: ``{trait: genes with a specificity}`` of the traits left out.

    Examples
    --------
    >>> import psysc
    >>> adata = psysc.datasets.darmanis2015()
    >>> psysc.pp.prepare_scoring(adata)
    >>> gs = psysc.gwas.panel("psychiatric")
    >>> psysc.tl.celltype_enrichment(adata, gs, groupby="cell_type", method="all", min_cells_per_group=10)
    >>> t = adata.uns["psysc"]["celltype_enrichment"]
    >>> t[(t.trait == "AD") & (t.method == "seismic")].sort_values("pval").iloc[0]["group"]
    'microglia'

    """
    check_anndata(adata, writes=inplace)
    methods = _check_methods(method)
    if universe not in _UNIVERSES:
        raise ValueError(f"universe={universe!r}; choose from {_UNIVERSES}")
    if groupby not in adata.obs:
        raise KeyError(f"groupby={groupby!r} is not a column of adata.obs; columns: {list(adata.obs.columns)}")
    gene_sets, gene_tables, correlations = _split_inputs(gene_sets)
    if covariates is not None:
        covariates = pd.DataFrame(covariates)
        covariates.index = covariates.index.astype(str)
    filters = _filters(min_cells_per_group, min_cells_expressed, min_mean)
    tables, store = _specificity_for(adata, groupby, layer=layer, key_added=key_added, filters=filters,
                                     inplace=inplace, top_fraction=top_fraction)
    top = top_specific_genes(tables.tstat, top_fraction)
    groups = list(tables.spec.columns)
    # every trait before any regression, and before adata is changed
    n_with_spec, skipped = _usable_traits(gene_sets, tables.spec.index, adata.var_names)
    store()
    gene_sets = {t: s for t, s in gene_sets.items() if t in n_with_spec}
    rows, universes, fitted_by, gls_info = [], {}, {}, {}
    for trait, s in gene_sets.items():
        z, used = _gene_z(s, tables.spec.index, universe)
        universes[trait] = used
        n_in = n_with_spec[trait]
        logger.info(
            "%s: %d of %d genes have a specificity; regression over %d genes (universe=%r%s)",
            trait, n_in, len(s), len(z), used, ", z = 0 outside the set" if used == "all" else "",
        )
        zv = z.to_numpy()
        if len(zv) and not np.ptp(zv) > 1e-12 * np.abs(zv).max():
            logger.warning(
                "%s: its gene z-scores are all equal over the %d genes of the regression (universe=%r): nothing to "
                "regress, NaN%s", trait, len(zv), used,
                "; a gene list of equal weights is tested with universe='all' (z = 0 outside the list)"
                if used == "set" else "",
            )
        _check_user_covariates(covariates, z.index, trait)
        cov, _ = _covariate_matrix(z.index, gene_tables.get(trait), covariates, trait)
        # seismic regresses on the specificity alone: a MAGMA table's gene covariates are MAGMA's, not seismic's
        cov_seismic = cov if trait not in gene_tables else _covariate_matrix(z.index, None, covariates, trait)[0]
        whiten = None
        if set(methods) & _GLS_METHODS and trait in correlations:
            whiten = _whitener(trait, z.index, *correlations[trait])
        if whiten is not None:
            fitted_by[trait] = {m: "gls" if m in _GLS_METHODS else "ols" for m in methods}
            gls_info[trait] = {"n_genes_with_correlations": whiten.n_matched, "shrinkage": whiten.shrinkage,
                               "band_width": whiten.bandwidth}
        for m in methods:
            X, extra = _design(m, tables, z.index, top)
            beta, se, t, p = ols_one_sided(z.to_numpy(), X,
                                           covariates=_with_covariates(extra, cov_seismic if m == "seismic" else cov),
                                           whiten=whiten if m in _GLS_METHODS else None)
            fdr = bh_fdr(p)
            for j, g in enumerate(groups):
                rows.append((trait, g, m, beta[j], se[j], t[j], p[j], fdr[j], len(z)))
    table = pd.DataFrame(rows, columns=_TABLE_COLUMNS)
    if not inplace:
        return table
    ns = uns_namespace(adata, key_added)
    ns["celltype_enrichment"] = table
    ns["celltype_enrichment_params"] = {
        **{k: tables.info[k] for k in _FINGERPRINT},  # the specificity's: the cells and labels it was computed on
        "groupby": groupby, "methods": methods, "traits": list(gene_sets), "universe": universes,
        "top_fraction": float(top_fraction), "fit": {t: fitted_by.get(t, dict.fromkeys(methods, "ols"))
                                                     for t in gene_sets},
        "gls": gls_info, "skipped": skipped,
    }
    logger.info(
        "added uns[%r]['celltype_enrichment'] (%d traits x %d methods x %d groups)",
        key_added, len(gene_sets), len(methods), len(groups),
    )
    return None
