from __future__ import annotations

import logging
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse, stats

from .._core._control import scdrs_control_sets
from .._core._covariates import add_low_rank_scores
from .._core._scoring import correct_background, monte_carlo_pvalues, raw_scores, vs_weights
from .._core._shared import SharedControls, shared_raw_scores
from .._core._torch import correct_and_test_torch, raw_scores_torch, resolve_device
from .._genesets import as_gene_sets, check_trait_name, match_gene_sets
from .._settings import settings
from .._utils import (
    available_memory,
    check_anndata,
    check_unique_var_names,
    get_matrix,
    uns_namespace,
    whole_number,
)
from ..pp._prepare import check_fingerprint

logger = logging.getLogger("psysc")

SCORE_COLUMNS = ("raw_score", "norm_score", "mc_pval", "pval", "nlog10_pval", "zscore")


def _gene_stats(adata: AnnData, key: str) -> pd.DataFrame:
    cols = {name: f"{key}_{name}" for name in ("mean", "var", "var_tech", "mean_var")}
    missing = [c for c in cols.values() if c not in adata.var]
    prep = adata.uns.get(key, {}).get("prepare_scoring") if isinstance(adata.uns.get(key), dict) else None
    if missing or prep is None:
        prepared = [k for k, ns in adata.uns.items()
                    if k != key and isinstance(ns, dict) and "prepare_scoring" in ns and f"{k}_var_tech" in adata.var]
        other = (f", or score with the preparation made under key {prepared[0]!r}: prepare_key={prepared[0]!r}"
                 if prepared else "")
        what = (f"gene statistics {missing} not found in adata.var" if missing
                else f"adata.uns[{key!r}]['prepare_scoring'] not found")
        raise KeyError(
            f"{what}: run psysc.pp.prepare_scoring(adata, key_added={key!r}) before psysc.tl.score_disorders{other}."
        )
    return pd.DataFrame({name: adata.var[col].to_numpy() for name, col in cols.items()}, index=adata.var_names)


def _explicit_weights(per_trait, factor, var64, disease_w, disease_var, traits):
    """Stacked genes x sets weight matrix (trait by trait; column 0 the disease set) and variance ratios."""
    n_genes = len(factor)
    rows, cols, vals, var_ratio = [], [], [], {}
    for t, (ctrl_idx, ctrl_w) in enumerate(per_trait):
        n_ctrl = ctrl_idx.shape[0]
        idx = np.flatnonzero(disease_w[:, t])
        cw = factor[ctrl_idx] * ctrl_w[None, :]
        cw = cw / cw.sum(axis=1, keepdims=True)
        var_ratio[traits[t]] = (var64[ctrl_idx] * cw**2).sum(axis=1) / disease_var[t]
        rows += [t * n_genes + idx, t * n_genes + ctrl_idx.ravel()]
        cols += [np.zeros(len(idx), dtype=np.int64), 1 + np.repeat(np.arange(n_ctrl), ctrl_idx.shape[1])]
        vals += [disease_w[idx, t], cw.ravel()]
    W = sparse.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(per_trait) * n_genes, per_trait[0][0].shape[0] + 1),
    ).tocsr()
    W.sum_duplicates()
    return W, var_ratio


def _trait_weights(t, shared, factor, disease_w, W, n_genes):
    """Trait ``t``'s genes x (1 + n_ctrl) weight matrix."""
    if W is not None:
        return W[t * n_genes : (t + 1) * n_genes]
    per_trait = [shared.explicit(t)]
    W_t, _ = _explicit_weights(per_trait, factor, np.zeros(n_genes), disease_w[:, [t]], np.ones(1), ["t"])
    return W_t


def _check_null_exists(trait: str, idx: np.ndarray, w: np.ndarray, bins: np.ndarray, bin_size: pd.Series) -> None:
    """Refuse a gene set whose every control set would be the set itself.

    A control set takes, in each mean-variance bin, as many random genes of the bin as the set has there, with
    the set's weights (scDRS step 4). When the set holds every gene of each of its bins with equal weights in each,
    any such draw is the set itself: all control scores equal the disease score, and their spread, which
    normalises every cell, is rounding noise. ``bin_size``: the number of genes of each bin (``bins`` label).
    """
    in_bin = pd.Series(np.asarray(w, dtype=np.float64)).groupby(bins[idx]).agg(["size", "min", "max"])
    if all(row["size"] == bin_size[b] and row["min"] == row["max"] for b, row in in_bin.iterrows()):
        raise ValueError(
            f"gene set {trait!r}: its {len(idx)} genes are all the genes of the mean-variance bins they fall in "
            f"({len(in_bin)} bin(s)), with equal weights within each bin, so every matched control set is the gene set "
            "itself and there is no null to compare with; give the genes weights (e.g. MAGMA z-scores) or use a set "
            "that does not fill its bins"
        )


def _warn_constant_controls(trait: str, var_ratio: np.ndarray, disease_var: float) -> None:
    """Warn when some control sets of ``trait`` have no variance (their genes are all constant across cells).

    Their variance ratio is 0, so no cell can be standardised against them: every cell comes out without spread
    among its control scores (p-value 1). Not said again for a trait whose own genes do not vary (warned before).
    """
    if not np.isfinite(disease_var):
        return
    constant = int((~(np.asarray(var_ratio) > 0)).sum())
    if constant:
        logger.warning(
            "%s: %d of its %d control gene sets have no variance (all their genes are constant across cells: the "
            "trait's genes lie in mean-variance bins of genes that are hardly ever expressed), so no cell can be "
            "standardised and every p-value is 1; score genes that are expressed in these cells",
            trait, constant, len(var_ratio),
        )


def _trait_batches(n_traits: int, n_obs: int, n_ctrl: int, dtype: np.dtype, *, inplace: bool) -> list[list[int]]:
    """Traits scored together in one pass, so that their control scores fit in the memory available.

    With ``inplace=True`` every trait's control scores are kept, so all traits form one batch, and a
    ``MemoryError`` that names the fix is raised up front when they cannot fit. With ``inplace=False`` they are
    dropped after each batch: batches of as many traits as fit in half the available memory.
    """
    per_trait = n_obs * n_ctrl * np.dtype(dtype).itemsize
    avail = available_memory()
    everything = list(range(n_traits))
    if avail is None or n_traits * per_trait <= avail // 2:
        return [everything]
    gb = 1e9
    shape = f"{n_obs:,} cells x {n_ctrl} control sets x {np.dtype(dtype).itemsize} bytes"
    if per_trait > avail:
        raise MemoryError(
            f"the control scores of one trait need {per_trait / gb:.1f} GB ({shape}), more than the "
            f"{avail / gb:.1f} GB of memory available; lower n_ctrl or score a subset of the cells"
        )
    if inplace:
        if n_traits * per_trait > avail:
            raise MemoryError(
                f"keeping the control scores of {n_traits} traits needs {n_traits * per_trait / gb:.1f} GB ({shape} "
                f"per trait), more than the {avail / gb:.1f} GB of memory available; score fewer traits per call "
                "(each call adds its traits to adata), lower n_ctrl, or pass inplace=False (per-cell results only, "
                "traits scored in batches that fit)"
            )
        return [everything]
    size = max(1, int(avail // 2 // per_trait))
    logger.info("the control scores of %d traits do not fit in half the %.1f GB of memory available: scoring them "
                "%d at a time", n_traits, avail / gb, size)
    return [everything[i : i + size] for i in range(0, n_traits, size)]


def _refuse_clashing_names(traits: list[str], key_added: str) -> None:
    """Refuse traits whose obs columns would be the same (e.g. ``A``'s ``mc_pval`` and ``A_mc``'s ``pval``).

    ``traits``: those scored now and those an earlier call left in ``adata``.
    """
    owner: dict[str, str] = {}
    for trait in traits:
        for col in SCORE_COLUMNS:
            name = f"{key_added}_{trait}_{col}"
            if owner.setdefault(name, trait) != trait:
                raise ValueError(
                    f"traits {owner[name]!r} and {trait!r} would both write obs[{name!r}]; rename one of them "
                    "(e.g. {'A_mc': ...} -> {'A.mc': ...})"
                )


def stale_traits(adata, key: str, traits) -> list[str]:
    """The ``traits`` scored under ``key`` whose gene statistics a later :func:`psysc.pp.prepare_scoring` replaced.

    Replaced: prepared again on other cells, with other covariates or another normalisation (the same statistics
    keep their ``stats_id``). Traits scored before psysc recorded the id are not counted.
    """
    by_trait = dict(adata.uns.get(key, {}).get("score_disorders", {}).get("params_by_trait", {}))
    out = []
    for trait in traits:
        params = dict(by_trait.get(trait, {}))
        pkey, used = params.get("prepare_key", key), params.get("stats_id")
        now = dict(adata.uns.get(pkey, {}).get("prepare_scoring", {})).get("stats_id")
        if used and now and used != now:
            out.append(str(trait))
    return out


def _score_dtype(dtype) -> np.dtype:
    """``dtype`` of :func:`score_disorders` as a NumPy dtype: float32 or float64, else a ValueError.

    ``None`` is refused rather than read as NumPy reads it (float64).
    """
    try:
        parsed = None if dtype is None else np.dtype(dtype)
    except TypeError:
        parsed = None
    if parsed not in (np.float32, np.float64):
        raise ValueError(f"dtype must be 'float32' (default) or 'float64', not {dtype!r}")
    return parsed


def score_disorders(
    adata: AnnData,
    gene_sets,
    *,
    n_ctrl: int = 1000,
    seed: int | None = None,
    weight: str = "vs",
    rng: str = "numpy",
    dtype: str | np.dtype = "float32",
    min_genes: int = 10,
    inplace: bool = True,
    key_added: str = "psysc",
    block_size: int = 20_000,
    device: str | None = None,
    prepare_key: str | None = None,
) -> dict[str, pd.DataFrame] | None:
    """Score every cell for the genetic risk of each trait (scDRS statistics).

    For each trait, ``n_ctrl`` control gene sets matched to the disease genes by mean-variance bin
    are drawn; the weighted expression of the disease genes and of every control set is computed
    (all traits in one pass over the data), normalised per gene set and per cell, and turned into
    Monte Carlo p-values against the pooled control scores of all cells (Zhang et al. 2022).

    Parameters
    ----------
    adata
        Data prepared by :func:`psysc.pp.prepare_scoring`.
    gene_sets
        ``{trait: Series(gene -> weight)}`` (e.g. :func:`psysc.datasets.gwas_gene_sets`), or
        ``{trait: list of genes}`` for unweighted sets. Gene names must be of the kind of ``var_names``.
    n_ctrl
        Number of control gene sets per trait.
    seed
        Random seed (default ``psysc.settings.seed``). With ``rng="numpy"`` a trait's control sets
        depend on the seed and on its genes and weights only, not on its name nor on the other traits
        scored with it (the draws of each mean-variance bin are seeded by the seed and the bin, and
        shared, nested, by all traits: two traits with the same genes get the same control sets).
    weight
        ``"vs"``: gene weight / sqrt(technical variance + 0.01) (scDRS default); ``"inv_std"``;
        ``"uniform"``: the gene weights alone.
    rng
        ``"numpy"`` (fast vectorised draws) or ``"scdrs"``: the control gene sets scDRS 1.0.2 draws for the
        same seed, for one-to-one comparison with scDRS.
    dtype
        Precision of the control scores and of the results (per-cell columns, returned frames, stored
        control scores): ``"float32"`` (half the memory) or ``"float64"`` (the precision scDRS computes in; it
        returns float32, so results cast to float32 equal scDRS's to the last digit).
    min_genes
        Traits with fewer genes in the data are not scored (logged).
    inplace
        Write the results into ``adata`` (default) or return them. The control scores take
        ``n_cells x n_ctrl x 4`` bytes per trait in float32 (4 GB for a million cells and 1,000 control sets). With
        ``inplace=True`` they are kept for :func:`disorder_enrichment`, and a call whose traits cannot all fit
        in the available memory is refused up front; with ``inplace=False`` they are dropped, and traits are
        scored in batches that fit in half the available memory (same results).
    key_added
        Prefix of the written keys; also the key of the statistics written by ``prepare_scoring``, unless
        ``prepare_key`` names another.
    block_size
        Rows read at a time (backed and dask-backed matrices are streamed).
    device
        ``"cpu"`` (compiled multi-threaded kernels), ``"cuda"``/``"cuda:N"`` (the same kernels in torch on
        the GPU; needs ``psysc[torch]``) or ``"auto"`` (default ``psysc.settings.device``: CUDA when torch
        sees a GPU).
    prepare_key
        The ``key_added`` of the :func:`psysc.pp.prepare_scoring` whose statistics are used (default:
        ``key_added``): a second scoring run under its own ``key_added`` (other seeds, other gene sets) reuses one
        preparation, and its normalised layer, instead of normalising the counts again.

    Returns
    -------
    dict[str, pandas.DataFrame] or None
        With ``inplace=False``, ``{trait: DataFrame}`` indexed like ``adata.obs_names`` with scDRS's columns
        ``raw_score``, ``norm_score``, ``mc_pval``, ``pval``, ``nlog10_pval``, ``zscore`` (in ``dtype``).
        With ``inplace=True``, ``None``, and writes

        - ``adata.obs[f"{key_added}_{trait}_{column}"]`` for those six columns;
        - ``adata.obsm[f"{key_added}_{trait}_ctrl_norm_score"]``: normalised control scores (cells x n_ctrl);
        - ``adata.uns[key_added]["score_disorders"]``: traits, the number of genes used per trait (``n_genes``),
          parameters and provenance; a later call adds its traits, and ``["params_by_trait"]`` keeps the parameters
          each trait was scored with.

    Examples
    --------
    >>> import psysc
    >>> adata = psysc.datasets.darmanis2015()
    >>> psysc.pp.prepare_scoring(adata)
    >>> gene_sets = psysc.datasets.gwas_gene_sets(["SCZ", "AD"])
    >>> psysc.tl.score_disorders(adata, gene_sets, n_ctrl=200)
    >>> adata.obs[["psysc_SCZ_norm_score", "psysc_SCZ_pval"]].head()  # doctest: +SKIP

    """
    check_anndata(adata, writes=inplace)
    seed = settings.seed if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be a whole number from 0 to 2**32 - 1, not {seed!r}")
    seed = int(seed)
    dtype = _score_dtype(dtype)
    n_ctrl = whole_number("n_ctrl", n_ctrl, 2, " (control gene sets: each cell is standardised by the spread of its "
                          "control scores; scDRS uses 1,000)")
    min_genes = whole_number("min_genes", min_genes, 1)
    block_size = whole_number("block_size", block_size, 1, " (cells read at a time)")
    if rng not in ("numpy", "scdrs"):
        raise ValueError(f"rng must be 'numpy' or 'scdrs', not {rng!r}")
    pkey = key_added if prepare_key is None else prepare_key
    gstats = _gene_stats(adata, pkey)
    prep = adata.uns[pkey]["prepare_scoring"]
    layer = prep["layer"]
    if layer != "X" and layer not in adata.layers:
        raise KeyError(f"layer {layer!r}, written by psysc.pp.prepare_scoring, is no longer in adata.layers "
                       f"(available: {list(adata.layers)}); run psysc.pp.prepare_scoring(adata, key_added="
                       f"{pkey!r}) again")
    X = get_matrix(adata, None if layer == "X" else layer)
    check_fingerprint(adata, X, prep.get("data"), key_added=pkey,
                      matrix="adata.X" if layer == "X" else f"adata.layers[{layer!r}]")

    sets = as_gene_sets(gene_sets)
    if inplace:  # the names become keys of obs and obsm, whose columns must not collide (inplace=False writes none)
        for trait in sets:
            check_trait_name(trait)
        ns_before = adata.uns.get(key_added)
        earlier = ns_before.get("score_disorders", {}).get("traits", []) if isinstance(ns_before, dict) else []
        _refuse_clashing_names(list(dict.fromkeys([*map(str, earlier), *sets])), key_added)
    check_unique_var_names(adata, "before scoring, then run psysc.pp.prepare_scoring(adata) again")
    kept, skipped = match_gene_sets(sets, adata.var_names, min_genes=min_genes, var=adata.var)
    traits = list(kept)
    names = adata.var_names.to_numpy().astype(str)
    bins = gstats["mean_var"].to_numpy().astype(str)
    var = gstats["var"].to_numpy()
    var64 = var.astype(np.float64)
    var_tech = gstats["var_tech"].to_numpy(dtype=np.float64)

    device = resolve_device(device)
    n_genes = adata.n_vars
    factor = vs_weights(np.ones(n_genes), var_tech, var64, weight)  # per-gene part of the score weights
    disease_w = np.zeros((n_genes, len(traits)))
    bin_size = pd.Series(bins).value_counts()  # genes per mean-variance bin
    for t, trait in enumerate(traits):
        idx, w = kept[trait]
        n_negative = int((w < 0).sum())
        if n_negative:
            logger.warning(
                "%s: %d of its %d genes have negative weights (scDRS weights are meant to be positive, e.g. the "
                "z-scores of the top 1,000 MAGMA genes). A genome-wide z-score table is not a gene set: select its "
                "top genes (psysc.gwas.read_magma, read_gene_stats, genes_to_gene_set: n_top=1000); a table of "
                "fewer genes than n_top keeps them all, those with no association (z < 0) too: fdr= keeps the "
                "associated ones",
                trait, n_negative, len(w),
            )
        dw = factor[idx] * w
        if dw.sum() == 0:
            raise ValueError(
                f"gene set {trait!r}: the weights of its {len(idx)} genes found in var_names sum to 0, so they cannot "
                "be normalised; give the genes positive weights (e.g. MAGMA z-scores, or a list of genes for weight 1)"
            )
        disease_w[idx, t] = dw / dw.sum()
        _check_null_exists(trait, idx, w, bins, bin_size)
    disease_var = (var64[:, None] * disease_w**2).sum(axis=0)
    for t in np.flatnonzero(disease_var == 0):
        logger.warning("%s: none of its %d genes found in var_names varies across cells (all are unexpressed or "
                       "constant); its scores carry no information", traits[t], len(kept[traits[t]][0]))
    disease_var = np.where(disease_var == 0, np.nan, disease_var)  # variance ratios NaN: such cells come out flat

    batches = _trait_batches(len(traits), adata.n_obs, n_ctrl, dtype, inplace=inplace)
    covariates = None  # the implicit covariate correction's terms, read once for every batch
    if len(prep.get("covariates", [])) > 0:
        covariates = (
            np.asarray(adata.obsm[f"{pkey}_covariates"], dtype=np.float64),
            np.asarray(adata.varm[f"{pkey}_cov_beta"], dtype=np.float64).T,
            adata.var[f"{pkey}_cov_gene_mean"].to_numpy(dtype=np.float64),
        )
    from tqdm.auto import tqdm

    results: dict[str, pd.DataFrame] = {}
    stored: dict[str, np.ndarray] = {}
    for batch in batches:
        names_b = [traits[t] for t in batch]
        disease_w_b = disease_w[:, batch]
        if len(batches) > 1:
            logger.info("scoring %s (traits %d-%d of %d)", ", ".join(names_b), batch[0] + 1, batch[-1] + 1,
                        len(traits))
        shared, W = None, None
        if rng == "numpy":
            shared = SharedControls(names, bins, [kept[t] for t in names_b], n_ctrl=n_ctrl, seed=seed)
            ratios = shared.variance_sums(factor, var64, shared.set_weights(factor)) / disease_var[batch]
            var_ratio = {trait: ratios[:, i] for i, trait in enumerate(names_b)}
            per_trait = [shared.explicit(i) for i in range(len(batch))] if device != "cpu" else None
        else:
            per_trait = [
                scdrs_control_sets(names, bins, *kept[trait], n_ctrl=n_ctrl, seed=seed) for trait in names_b
            ]
        if per_trait is not None:
            W, var_ratio = _explicit_weights(per_trait, factor, var64, disease_w_b, disease_var[batch], names_b)
        for i, trait in enumerate(names_b):
            _warn_constant_controls(trait, var_ratio[trait], disease_var[batch[i]])

        with tqdm(total=adata.n_obs, desc=f"scoring {len(batch)} trait(s) x {n_ctrl + 1} gene sets on {device}",
                  unit="cell", disable=not settings.show_progress) as bar:
            if device != "cpu":
                dis, ctrl = raw_scores_torch(X, W, n_ctrl, dtype=dtype, device=device, block_size=block_size,
                                             progress=bar.update)
            elif shared is not None:
                dis, ctrl = shared_raw_scores(X, shared, factor, disease_w_b, dtype=dtype, block_size=block_size,
                                              progress=bar.update)
            else:
                dis, ctrl = raw_scores(X, W, n_ctrl, dtype=dtype, block_size=block_size, progress=bar.update)

        if covariates is not None:
            for i in range(len(batch)):
                add_low_rank_scores(*covariates, _trait_weights(i, shared, factor, disease_w_b, W, n_genes), dis[i],
                                    ctrl[i])

        for i, trait in enumerate(names_b):
            raw = dis[i].copy()
            if device == "cpu":
                counts = np.empty(adata.n_obs, dtype=np.int64)
                norm = correct_background(raw, ctrl[i], var_ratio[trait], trait=trait, counts=counts)
                mc_pval, pval = monte_carlo_pvalues(norm, ctrl[i], counts=counts)
            else:
                norm, mc_pval, pval = correct_and_test_torch(raw, ctrl[i], var_ratio[trait], device=device,
                                                             trait=trait)
            zscore = -stats.norm.ppf(pval).clip(min=-10, max=10)
            results[trait] = pd.DataFrame(
                {
                    "raw_score": raw,
                    "norm_score": norm,
                    "mc_pval": mc_pval,
                    "pval": pval,
                    "nlog10_pval": 0.0 - np.log10(pval),  # 0, not -0, for p = 1
                    "zscore": zscore,
                },
                index=adata.obs_names.copy(),
                dtype=dtype,
            )
            if inplace:
                stored[trait] = ctrl[i]
        del dis, ctrl  # with inplace=False, before the next batch is allocated
    n_genes_used = {trait: len(kept[trait][0]) for trait in traits}
    if not inplace:
        return results

    columns = {
        f"{key_added}_{trait}_{col}": results[trait][col].to_numpy() for trait in traits for col in SCORE_COLUMNS
    }
    replaced = [c for c in columns if c in adata.obs.columns]
    for c in replaced:  # re-scored traits keep their columns' places
        adata.obs[c] = columns.pop(c)
    if columns:  # the new ones in one block (one column at a time fragments the frame: slow, and pandas warns)
        adata.obs = pd.concat([adata.obs, pd.DataFrame(columns, index=adata.obs.index)], axis=1)
    for trait in traits:
        adata.obsm[f"{key_added}_{trait}_ctrl_norm_score"] = stored[trait]
    from .. import __version__

    ns = uns_namespace(adata, key_added)
    previous = ns.get("score_disorders", {})
    earlier = [t for t in skipped if t in previous.get("traits", [])]
    if earlier:
        logger.warning("%s not re-scored (too few genes in the data); the scores of an earlier call stay in adata",
                       ", ".join(map(str, earlier)))
    stale = [t for t in traits if t in previous.get("traits", [])]
    tables = {f"uns[{key_added!r}]['enrichment']": ns.get("enrichment")}
    for by, entry in dict(ns.get("enrichment_by_groupby", {})).items():
        if isinstance(entry, dict):
            tables[f"uns[{key_added!r}]['enrichment_by_groupby'][{by!r}]"] = entry.get("table")
    outdated = [name for name, table in tables.items()
                if stale and isinstance(table, pd.DataFrame) and "trait" in table and table["trait"].isin(stale).any()]
    if outdated:
        logger.warning("%s computed from earlier scores of %s: run psysc.tl.disorder_enrichment again",
                       " and ".join(outdated) + (" were" if len(outdated) > 1 else " was"), ", ".join(map(str, stale)))
    all_traits = list(dict.fromkeys(list(previous.get("traits", [])) + traits))
    params = {
        "n_ctrl": int(n_ctrl),
        "seed": int(seed),
        "weight": weight,
        "rng": rng,
        "dtype": str(dtype),
        "min_genes": int(min_genes),
        "layer": layer,
        "device": device,
        "prepare_key": pkey,
        "stats_id": str(prep.get("stats_id", "")),  # the gene statistics scored with (see stale_traits)
    }
    now = datetime.now(UTC).isoformat(timespec="seconds")
    ns["score_disorders"] = {
        "traits": all_traits,
        "n_genes": {**dict(previous.get("n_genes", {})), **n_genes_used},
        "skipped": {  # of every call, less the traits scored since
            **{k: v for k, v in dict(previous.get("skipped", {})).items() if k not in traits},
            **{str(k): int(v) for k, v in skipped.items()},
        },
        "params": params,  # of the last call
        # what each trait was scored with, when several calls added traits
        "params_by_trait": {
            **dict(previous.get("params_by_trait", {})),
            **{t: {**params, "psysc_version": __version__, "date": now} for t in traits},
        },
        "psysc_version": __version__,
        "date": now,
    }
    logger.info(
        "added obs[%s_<trait>_{%s}] and obsm[%s_<trait>_ctrl_norm_score] for %s",
        key_added,
        ",".join(SCORE_COLUMNS),
        key_added,
        ", ".join(traits),
    )
    return None
