"""The end-to-end job behind ``psysc run``: QC, scoring, enrichment, figures and a report.

:func:`run_pipeline` is importable so that notebooks and tests run exactly what the command line runs.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import platform
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

from ._genesets import (
    data_species_if_other,
    overlap_already_reported,
    overlap_hint,
    species_fix,
    symbol_column,
    symbol_column_hint,
    symbol_column_of,
)
from ._utils import continuous_grouping, group_order, head_names, label_text

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger("psysc")

#: QC thresholds (mild, suited to small full-length datasets such as Darmanis 2015)
MIN_GENES_PER_CELL = 200
MIN_CELLS_PER_GENE = 3
#: genes of a gene set that must be in the data for it to be scored (score_disorders' min_genes)
MIN_GENES_PER_TRAIT = 10
#: graph construction
N_PCS = 20
N_NEIGHBORS = 15
N_TOP_GENES = 2000
#: FDR threshold of the report's interpretation
REPORT_FDR = 0.1
#: smallest group of the cell-type level tests (seismic's default is 20; small datasets have small groups)
CELLTYPE_MIN_CELLS = 10
#: below this fraction of a gene set's genes in the data, names that look like the other species' genes are refused
SPECIES_MIN_FRACTION = 0.1
#: per-cell columns of ``scores.tsv.gz``
SCORE_COLUMNS = ("norm_score", "pval", "zscore")


class InputError(ValueError):
    """Invalid user input (missing column, unknown trait, ...): reported without a traceback by the CLI."""


def _pkg_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def safe_name(name: str) -> str:
    """A file-name-safe version of a trait name (``UKB_460K.body_HEIGHTz`` stays as it is)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._") or "trait"


def check_inputs(adata: AnnData, gene_sets: Mapping[str, pd.Series], *, groupby: str, layer: str | None, traits,
                 mapped_to: str | None = None, min_genes: int = MIN_GENES_PER_TRAIT):
    """Validate the user's choices before any computation; raise :class:`InputError` naming the fix.

    ``mapped_to``: the species the gene sets were mapped to (``--species``), for the message when the data are not.
    ``min_genes``: the genes of a set that must be in the data (``--min-genes``).
    """
    if groupby not in adata.obs.columns:
        raise InputError(f"--groupby {groupby!r} is not a column of adata.obs; available columns: "
                         f"{', '.join(map(str, adata.obs))}")
    if layer is not None and layer not in adata.layers:
        raise InputError(f"--layer {layer!r} not found; available layers: {list(adata.layers) or 'none (use X)'}")
    if not gene_sets:
        raise InputError("the gene set collection is empty")
    traits = list(gene_sets) if traits is None else list(traits)
    if not traits:
        raise InputError("no trait to score")
    missing = [t for t in traits if t not in gene_sets]
    if missing:
        raise InputError(f"trait(s) {missing} not in the gene sets; available traits: {list(gene_sets)}")
    if len(set(traits)) != len(traits):
        raise InputError(f"duplicated traits in {traits}")
    if len({safe_name(t) for t in traits}) != len(traits):
        raise InputError(f"traits {traits} give clashing file names")
    if adata.obs_names.has_duplicates:
        dup = adata.obs_names[adata.obs_names.duplicated()].unique()
        raise InputError(
            f"{len(dup)} cell name(s) occur more than once in obs_names (e.g. {head_names(dup)}), so the per-cell "
            "scores could not be told apart: make them unique first (adata.obs_names_make_unique()) and write the "
            "file again"
        )
    if not adata.obs[groupby].notna().any():
        raise InputError(f"--groupby {groupby!r} has no label: the column is missing for every cell")
    continuous = continuous_grouping(adata.obs[groupby])
    if continuous is not None:
        raise InputError(f"--groupby {groupby!r}: {continuous}; pass a column of cell types or clusters")
    genes = pd.Index(adata.var_names.astype(str))
    found = {t: int(pd.Index(gene_sets[t].index).astype(str).isin(genes).sum()) for t in traits}
    no_overlap = [t for t in traits if found[t] == 0]
    if no_overlap:
        example = head_names(gene_sets[no_overlap[0]].index)
        in_file = symbol_column_of(gene_sets[no_overlap[0]])  # a FUMA file's SYMBOL column
        why = (
            f"no gene of the gene set(s) of {no_overlap} is in adata.var_names: map the gene identifiers "
            f"(e.g. {example}) to those of the data (e.g. {head_names(genes)}) first; "
            + overlap_hint(gene_sets[no_overlap[0]].index, genes, symbol_column=in_file)
            + _symbols_option_hint(adata.var)
            + ("; from the command line: psysc run --gene-loc <the gene location file of the MAGMA run>"
               if all(str(g).isdigit() for g in example) and in_file is None else "")
        )
        if len(no_overlap) == len(traits):
            raise InputError(why)
        logger.warning("%s. They are not scored; the other traits are (--traits chooses the traits)", why)
    species = data_species_if_other(gene_sets[traits[0]].index, genes)
    fraction = max(found[t] / max(1, len(gene_sets[t])) for t in traits)
    if species is not None and fraction < SPECIES_MIN_FRACTION and mapped_to not in (None, "human", species):
        raise InputError(
            f"--species {mapped_to} mapped the gene sets to {mapped_to} genes, but the data's genes look like "
            f"{species} genes (at most {fraction:.0%} of a set's genes are in the data): drop --species {mapped_to}"
        )
    if species is not None and fraction < SPECIES_MIN_FRACTION:
        raise InputError(
            f"the gene sets look like {'mouse' if species == 'human' else 'human'} genes and the data like {species} "
            f"genes, and at most {fraction:.0%} of a set's genes are in the data: map the gene sets to the data's "
            f"species, {species_fix(species)}"
        )
    if all(n < min_genes for n in found.values()):
        raise InputError(
            f"every trait has fewer than {min_genes} of its genes in the data ("
            + ", ".join(f"{t}: {n}" for t, n in found.items())
            + "): a gene set needs at least that many to be scored against matched control gene sets; "
            + overlap_hint(gene_sets[traits[0]].index, genes)
        )
    return traits


def _symbols_option_hint(var: pd.DataFrame) -> str:
    """The ``--gene-symbols`` option that would match symbol gene sets with Ensembl var_names, as a sentence's end."""
    column = symbol_column(var)
    if column is not None:
        return f"; adata.var[{column!r}] holds gene symbols: pass --gene-symbols {column}"
    return symbol_column_hint(var)


def counts_problem(adata: AnnData, layer: str | None) -> str | None:
    """What :func:`check_counts` would refuse in ``adata``, or ``None``."""
    try:
        check_counts(adata, layer)
    except InputError as err:
        return str(err)
    return None


def storable_trait_names(gene_sets: Mapping[str, pd.Series], traits):
    """Gene sets and requested traits with ``/`` in a name replaced by ``_`` (an .h5ad cannot store it in a key).

    KEGG and Reactome sets of GMT files have such names ("Glycolysis / Gluconeogenesis"); each renamed one is logged.
    """
    renamed = {t: str(t).replace("/", "_") for t in gene_sets if "/" in str(t)}
    if not renamed:
        return gene_sets, traits
    clash = [new for new in renamed.values() if new in gene_sets]
    if clash or len(set(renamed.values())) < len(renamed):
        raise InputError(f"gene sets {list(renamed)} contain '/', and their names with '_' instead "
                         f"({list(renamed.values())}) clash with other names; rename them in the gene-set file")
    logger.info("%d gene set name(s) contain '/', which an .h5ad cannot store in a key: named with '_' instead (%s)",
                len(renamed), ", ".join(f"{old!r} -> {new!r}" for old, new in list(renamed.items())[:5]))
    gene_sets = {renamed.get(t, t): genes for t, genes in gene_sets.items()}
    if traits is not None:
        traits = [str(t).replace("/", "_") if "/" in str(t) else t for t in traits]
    return gene_sets, traits


def check_counts(adata: AnnData, layer: str | None) -> None:
    """Refuse expression that is not raw counts, before any computation; raise :class:`InputError` naming the fix.

    The checks of :func:`psysc.pp.prepare_scoring` with ``normalize=True`` (unique ``var_names``; finite,
    non-negative values; integers, or non-integer counts larger than 50 somewhere, with a warning), on the whole
    input, so that ``prepare_scoring`` cannot refuse the data after QC.
    """
    from .pp._prepare import NegativeValuesError, check_expression, reads_as_counts

    where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
    X = adata.X if layer is None else adata.layers[layer]
    if X is None:
        raise InputError(f"adata.X is empty; the raw counts must be in X or in a layer named with --layer "
                         f"(layers: {list(adata.layers) or 'none'})")
    try:
        info = check_expression(adata, X, where, max_rows=adata.n_obs)  # one pass, integrality of every cell
    except ValueError as err:  # duplicated gene names, NaN, infinite or negative values, empty data
        if adata.var_names.has_duplicates:
            raise InputError(str(err)) from None
        message = str(err)
        if isinstance(err, NegativeValuesError):  # the fixes of prepare_scoring's message are Python's: the CLI's
            message = message.split(":")[0] + ": it looks scaled or centred (sc.pp.scale?)."
        raise InputError(f"{message} psysc run needs raw counts{_counts_elsewhere(adata, layer)}.") from None
    if reads_as_counts(info, normalize=True) and not info["integer"]:  # as prepare_scoring(normalize=True) does
        logger.warning(
            "%s holds non-integer values up to %.3g: read as counts that are not whole numbers (EM-quantified, "
            "ambient-corrected or scaled counts) and normalised as counts", where, info["max"],
        )
    elif not info["integer"]:
        raise InputError(
            f"{where} holds non-integer values no larger than {info['max']:.3g}, so it is not raw counts "
            "(log-normalised?). psysc run needs the raw "
            f"counts{_counts_elsewhere(adata, layer)}. To score log-normalised data, use "
            "psysc.pp.prepare_scoring(adata, normalize=False) and psysc.tl.score_disorders in Python."
        )


#: the code that makes the counts of adata.raw (every gene of it) the AnnData psysc run reads
RAW_AS_X = "adata = adata.raw.to_adata()"


def _counts_elsewhere(adata: AnnData, layer: str | None) -> str:
    """Where else the file seems to hold raw counts, as the end of a sentence of :func:`check_counts`."""
    from .pp._prepare import check_expression

    def whole_numbers(X, where: str) -> bool:
        try:
            return bool(check_expression(adata, X, where, max_rows=min(adata.n_obs, 500))["integer"])
        except ValueError:
            return False

    if layer is not None and adata.X is not None and whole_numbers(adata.X, "adata.X"):
        return f": adata.X holds whole numbers, drop --layer {layer}"
    candidates = [name for name, X in adata.layers.items() if name != layer and whole_numbers(X, f"layers[{name!r}]")]
    if candidates:
        return f": layers[{candidates[0]!r}] holds whole numbers, pass --layer {candidates[0]}"
    if adata.raw is not None:
        if whole_numbers(adata.raw.X, "adata.raw.X"):
            return (f": adata.raw holds whole numbers for {adata.raw.n_vars:,} genes: pass --use-raw to score them "
                    f"(every gene of adata.raw, as {RAW_AS_X} makes them)")
        return (": adata.raw holds no raw counts either (non-integer values: scanpy's adata.raw usually keeps the "
                "log-normalised data); store the raw counts in the file (in X, or in a layer named with --layer)")
    return ": store them in the file (in X, or in a layer named with --layer)"


def _qc(adata: AnnData, layer: str | None) -> tuple[AnnData, dict[str, int], np.ndarray]:
    """Drop cells with < MIN_GENES_PER_CELL detected genes, then genes detected in < MIN_CELLS_PER_GENE cells.

    Returns the filtered copy, the counts of what was kept and dropped, and the mask of the kept cells.
    """
    X = adata.X if layer is None else adata.layers[layer]
    detected = (X > 0) if sparse.issparse(X) else sparse.csr_matrix(np.asarray(X) > 0)
    genes_per_cell = np.asarray(detected.sum(axis=1)).ravel()
    keep_cells = genes_per_cell >= MIN_GENES_PER_CELL
    cells_per_gene = np.asarray(detected[keep_cells].sum(axis=0)).ravel()
    keep_genes = cells_per_gene >= MIN_CELLS_PER_GENE
    stats = {
        "n_cells_in": int(adata.n_obs),
        "n_genes_in": int(adata.n_vars),
        "n_cells_dropped": int((~keep_cells).sum()),
        "n_genes_dropped": int((~keep_genes).sum()),
        "n_cells": int(keep_cells.sum()),
        "n_genes": int(keep_genes.sum()),
    }
    logger.info(
        "QC: dropped %d of %d cells with < %d detected genes and %d of %d genes detected in < %d cells",
        stats["n_cells_dropped"],
        stats["n_cells_in"],
        MIN_GENES_PER_CELL,
        stats["n_genes_dropped"],
        stats["n_genes_in"],
        MIN_CELLS_PER_GENE,
    )
    if stats["n_cells"] < N_NEIGHBORS + 2:
        raise InputError(f"only {stats['n_cells']} cells pass QC (>= {MIN_GENES_PER_CELL} detected genes): too few")
    return adata[keep_cells, keep_genes].copy(), stats, keep_cells


def _human_genes_for(model, cells: AnnData, species: str):
    """The loaded ``model`` and ``cells`` renamed to the human genes it reads (the models are human models).

    :func:`psysc.pp.map_genes` one to one: human symbols for scGPT, human Ensembl IDs for Geneformer and scVI.
    """
    from .models import load
    from .pp import map_genes

    if isinstance(model, str | Path):
        model = load(model)
    gene_id = "symbol" if model.info.family == "scgpt" else "ensembl"
    logger.info("--species %s: the %s model reads human genes; the data's genes are renamed to their human "
                "orthologs (%s) for it", species, model.info.name, gene_id)
    return model, map_genes(cells, "human", species=species, gene_id=gene_id, copy=True)


def _graph(adata: AnnData, *, seed: int, model=None, cells: AnnData | None = None,
           embed_kwargs: Mapping[str, Any] | None = None) -> str:
    """Build the kNN graph and UMAP in ``adata``: on a foundation-model embedding, or on PCA of the normalised layer.

    With ``model``, ``cells`` holds the raw counts (in ``X``) of the cells of ``adata`` with every gene of the input
    (the QC keeps fewer genes for scoring): the model embeds them, as :func:`psysc.tl.embed` on the input would.
    Returns the representation used (an ``obsm`` key).
    """
    import scanpy as sc

    if model is not None:
        from .tl import embed

        key = "X_embedding"
        embed(cells, model, key_added=key, **(embed_kwargs or {}))
        provenance = cells.uns["psysc"]["embed"][key]
        if provenance["n_filtered_cells"]:  # Geneformer embeds only the cells with obs["filter_pass"] == 1
            raise InputError(
                f"{provenance['n_filtered_cells']} cells have obs['filter_pass'] != 1, which the model leaves out (as "
                "its official tokenizer does), so they have no embedding and cannot be on the cell graph: drop them "
                "from the input (adata = adata[adata.obs['filter_pass'] == 1].copy()) or remove the column"
            )
        usable = ~np.isnan(cells.obsm[key]).any(axis=1)
        if not usable.all():
            raise InputError(
                f"{int((~usable).sum())} cells express no gene of the model's vocabulary and have no embedding; "
                "filter them out first or run without --model"
            )
        adata.obsm[key] = cells.obsm[key]  # the embedding and its provenance go with the QC'd cells
        adata.uns.setdefault("psysc", {}).setdefault("embed", {})[key] = provenance
        sc.pp.neighbors(adata, n_neighbors=N_NEIGHBORS, use_rep=key, random_state=seed)
        sc.tl.umap(adata, random_state=seed)
        logger.info("graph: %d-NN graph and UMAP on the %s embedding (obsm[%r])", N_NEIGHBORS,
                    getattr(getattr(model, "info", None), "name", model), key)
        return key

    n_pcs = min(N_PCS, adata.n_obs - 1, adata.n_vars - 1)
    n_top = min(N_TOP_GENES, adata.n_vars)
    sc.pp.highly_variable_genes(adata, layer="psysc_norm", n_top_genes=n_top, flavor="seurat")
    sc.pp.pca(adata, n_comps=n_pcs, layer="psysc_norm", mask_var="highly_variable", random_state=seed)
    sc.pp.neighbors(adata, n_neighbors=N_NEIGHBORS, n_pcs=n_pcs, use_rep="X_pca", random_state=seed)
    sc.tl.umap(adata, random_state=seed)
    logger.info(
        "graph: PCA (%d comps, %d variable genes of psysc_norm), %d-NN graph, UMAP; added obsm['X_pca'], "
        "obsm['X_umap'], obsp['connectivities'], obsp['distances']",
        n_pcs,
        n_top,
        N_NEIGHBORS,
    )
    return "X_pca"


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _fmt(x: float) -> str:
    return f"{x:.2g}" if np.isfinite(x) else "nan"


def _strongest_first(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows of the enrichment table by association p-value, ties (e.g. at the Monte Carlo floor) by z-score."""
    if "assoc_z" not in rows.columns:
        return rows.sort_values("assoc_pval", kind="stable")
    return rows.sort_values(["assoc_pval", "assoc_z"], ascending=[True, False], kind="stable")


def interpret(table: pd.DataFrame, traits: Sequence[str], fdr: float = REPORT_FDR,
              celltype: pd.DataFrame | None = None) -> dict[str, str]:
    """One plain-language sentence per trait: the cell groups associated at ``assoc_fdr < fdr``.

    With ``celltype`` (the table of :func:`psysc.tl.celltype_enrichment`), a second sentence names the groups
    whose specifically expressed genes carry the trait's signal (seismic, ``fdr < fdr``).
    """
    sentences = {}
    for trait in traits:
        sub = _strongest_first(table[table["trait"].astype(str) == str(trait)])
        sig = sub[sub["assoc_fdr"] < fdr]
        if len(sig):
            parts = []
            for _, row in sig.iterrows():
                part = f"{row['group']} (p = {_fmt(row['assoc_pval'])}, FDR = {_fmt(row['assoc_fdr'])}"
                if "hetero_fdr" in row and row["hetero_fdr"] < fdr:
                    part += ", heterogeneous within the group"
                parts.append(part + ")")
            sentences[trait] = (
                f"{trait}: {len(sig)} cell group{'s' if len(sig) > 1 else ''} associated at FDR < {fdr:g}: "
                + "; ".join(parts)
                + "."
            )
        elif len(sub):
            top = sub.iloc[0]
            sentences[trait] = (
                f"{trait}: no cell group is associated at FDR < {fdr:g} "
                f"(strongest: {top['group']}, p = {_fmt(top['assoc_pval'])}, FDR = {_fmt(top['assoc_fdr'])})."
            )
        else:
            sentences[trait] = f"{trait}: not tested."
        if celltype is not None and str(trait) in set(celltype["trait"].astype(str)):
            ct = celltype[(celltype["trait"].astype(str) == str(trait)) & (celltype["method"] == "seismic")]
            ct = ct[ct["fdr"] < fdr].sort_values("pval")
            sentences[trait] += (
                " Cell-type level (seismic): " + "; ".join(f"{r['group']} (FDR = {_fmt(r['fdr'])})"
                                                           for _, r in ct.iterrows()) + "."
                if len(ct) else f" Cell-type level (seismic): no group at FDR < {fdr:g}."
            )
    return sentences


def _celltype_level(adata: AnnData, gene_sets, *, traits, groupby: str, min_cells: int = CELLTYPE_MIN_CELLS
                    ) -> tuple[pd.DataFrame | None, str | None]:
    """Cell-type level enrichment (seismic, MAGMA gene-property, top-10 %) of the traits, and why it was skipped.

    Returns ``(table, None)``, or ``(None, reason)`` when impossible: groups need at least ``min_cells``
    cells; with fewer than two such groups the step is skipped (logged as a warning).
    """
    from . import tl

    try:
        tl.celltype_specificity(adata, groupby, min_cells_per_group=min_cells)
        with overlap_already_reported():  # by the scoring, of the same gene sets in the same data
            # traits with too few genes with a specificity are left out, with a warning
            tl.celltype_enrichment(adata, {tr: gene_sets[tr] for tr in traits}, groupby=groupby, method="all",
                                   min_cells_per_group=min_cells)
    except ValueError as err:
        logger.warning("cell-type level enrichment skipped: %s", err)
        return None, str(err)
    table = adata.uns["psysc"]["celltype_enrichment"]
    return (table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)), None


def _remove_stale_outputs(out: Path, written: set[str]) -> None:
    """Delete the files of an earlier run that this run does not write.

    Only files listed in the earlier ``out/summary.json`` go (e.g. the score figures of traits not asked for
    now), so the folder holds one run; other files are left alone.
    """
    path = out / "summary.json"
    try:
        earlier = json.loads(path.read_text(encoding="utf-8")).get("files", [])
    except (OSError, ValueError, AttributeError):
        return
    stale = [f for f in earlier if isinstance(f, str) and f not in written and Path(f).name == f
             and (out / f).is_file()]
    for f in stale:
        (out / f).unlink()
    if stale:
        logger.info("removed %d file(s) of an earlier run in %s: %s", len(stale), out, ", ".join(stale))


def _report_html(
    *, summary: dict, table: pd.DataFrame, sentences: dict[str, str], heatmap: bytes, umaps: dict[str, bytes],
    celltype: pd.DataFrame | None = None, dotplot: bytes | None = None,
) -> str:
    def img(png: bytes, alt: str) -> str:
        data = base64.b64encode(png).decode("ascii")
        return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'

    params = summary["parameters"]
    rep = str(params.get("graph_representation", "X_pca"))
    graph_name = "PCA of the normalised expression" if rep == "X_pca" else f"{params.get('model')} embedding, {rep}"
    not_scored = summary["data"].get("traits_not_scored") or {}
    not_scored_html = (
        "<p class=\"note\">Not scored (fewer than " + str(params.get("min_genes", MIN_GENES_PER_TRAIT))
        + " genes in the data): "
        + ", ".join(f"{html.escape(str(t))} ({n} genes)" for t, n in not_scored.items()) + ".</p>"
        if not_scored else ""
    )
    param_rows = "\n".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(json.dumps(v) if not isinstance(v, str) else v)}</td></tr>"
        for k, v in params.items()
    )
    data = dict(summary["data"])
    found, sizes = data.pop("n_genes_per_trait", {}), data.pop("gene_set_sizes", {})
    data["genes found per trait"] = ", ".join(f"{t}: {n} of {sizes.get(t, '?')}" for t, n in found.items())
    data["group sizes"] = ", ".join(f"{g}: {n}" for g, n in data.pop("group_sizes", {}).items())
    data_rows = "\n".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in data.items()
        if isinstance(v, int | float | str)
    )
    warned = summary.get("warnings") or []
    warnings_html = (
        '<h2>Warnings</h2>\n<ul class="warnings">\n'
        + "\n".join(f"<li>{html.escape(w)}</li>" for w in warned)
        + "\n</ul>\n"
        if warned else ""
    )
    versions = ", ".join(f"{html.escape(k)} {html.escape(str(v))}" for k, v in summary["versions"].items())
    shown = table.copy()
    float_cols = shown.select_dtypes("number").columns.difference(["n_cells", "n_fdr_0.05", "n_fdr_0.1", "n_fdr_0.2"])
    for c in float_cols:
        shown[c] = shown[c].map(lambda v: f"{v:.3g}")
    table_html = shown.to_html(index=False, border=0, classes="enrichment", escape=True)
    items = "\n".join(f"<li>{html.escape(s)}</li>" for s in sentences.values())
    celltype_html = ""
    if celltype is not None and dotplot is not None:
        wide = celltype.pivot_table(index="trait", columns=["method", "group"], values="t", aggfunc="first")
        # in the order of the figures (pivot_table sorts the traits and groups as text)
        wide = wide.reindex(index=pd.unique(celltype["trait"]),
                            columns=pd.MultiIndex.from_frame(celltype[["method", "group"]].drop_duplicates()))
        wide = wide.map(lambda v: f"{v:.2f}")
        celltype_html = f"""<h2>Cell-type level enrichment</h2>
<p class="note">Regression of the traits' gene z-scores (genes outside a gene set: z = 0) on each group's
specificity (seismic), on its mean expression with the average over groups as covariate (MAGMA gene-property
model), and on membership of its 10 % most specific genes (top10); one-sided t statistics below, p-values and
FDR in celltype_enrichment.tsv. Dot plot: seismic; colour: t, dot size: -log<sub>10</sub> P, ring:
FDR &lt; {REPORT_FDR:g}. Groups with fewer than {params.get("celltype_min_cells", CELLTYPE_MIN_CELLS)} cells are left
out.</p>
{img(dotplot, "cell-type enrichment dot plot")}
{wide.to_html(border=0, classes="enrichment", escape=True)}
"""
    umap_html = "\n".join(
        f"<figure>{img(png, f'UMAP coloured by the {t} score')}<figcaption>{html.escape(t)}</figcaption></figure>"
        for t, png in umaps.items()
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>psysc report</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; }}
h1, h2 {{ font-weight: 600; }}
table {{ border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1.5em; }}
th, td {{ padding: 0.25em 0.6em; border-bottom: 1px solid #ddd; text-align: left; }}
table.enrichment td {{ text-align: right; }}
img {{ max-width: 100%; }}
.umaps {{ display: flex; flex-wrap: wrap; gap: 1em; }}
.umaps figure {{ margin: 0; width: 360px; }}
figcaption {{ text-align: center; font-size: 0.9em; }}
.note {{ color: #555; font-size: 0.9em; }}
.warnings li {{ color: #8a4b00; }}
</style>
</head>
<body>
<h1>psysc: genetic risk of psychiatric disorders across cell states</h1>
<p class="note">Generated {html.escape(summary["finished"])} in {summary["runtime_s"]:.1f} s by psysc
{html.escape(summary["versions"]["psysc"])}. Cells are scored for each trait's GWAS gene set against matched
control gene sets (scDRS statistics); each cell group is tested for association (the 95th percentile of its
scores) and for heterogeneity (Geary's C of the scores on the cell graph) against the same statistics of the
control gene sets.</p>

<h2>Findings</h2>
<ul>
{items}
</ul>
{not_scored_html}
{warnings_html}
<h2>Enrichment heatmap</h2>
<p class="note">Colour: -log10 association p-value; * association FDR &lt; {REPORT_FDR:g};
× heterogeneity FDR &lt; {REPORT_FDR:g}.</p>
{img(heatmap, "enrichment heatmap")}

<h2>Per-cell scores</h2>
<p class="note">Normalised disease score of each cell on the UMAP of the cell graph
({html.escape(graph_name)}).</p>
<div class="umaps">
{umap_html}
</div>

<h2>Enrichment table</h2>
{table_html}

{celltype_html}

<h2>Data</h2>
<table>
{data_rows}
</table>

<h2>Parameters</h2>
<table>
{param_rows}
</table>
<p class="note">Versions: {versions}.</p>
</body>
</html>
"""


def run_pipeline(
    adata: AnnData,
    gene_sets: Mapping[str, pd.Series],
    *,
    out: str | Path = "psysc-results",
    groupby: str = "cell_type",
    layer: str | None = None,
    n_ctrl: int = 1000,
    seed: int = 0,
    traits: Sequence[str] | None = None,
    extra_params: Mapping[str, Any] | None = None,
    model: str | None = None,
    embed_kwargs: Mapping[str, Any] | None = None,
    min_genes: int = MIN_GENES_PER_TRAIT,
    min_cells_per_group: int = CELLTYPE_MIN_CELLS,
    phrase: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """Run the whole psysc job on one dataset and write its results.

    Steps: :func:`check_counts` (raw counts, unique gene names), QC (drop cells with < 200 detected genes, then
    genes detected in < 3 cells),
    :func:`psysc.pp.prepare_scoring`, PCA (20 components on the 2,000 most variable genes of the
    normalised layer ``psysc_norm``), a 15-nearest-neighbour graph and UMAP, :func:`psysc.tl.score_disorders`
    and :func:`psysc.tl.disorder_enrichment`; the cell-type level tests of :func:`psysc.tl.celltype_enrichment`
    (seismic, MAGMA gene-property, top-10 %; groups of at least 10 cells, skipped with a warning when fewer than
    two groups qualify); then the figures and files below.

    Parameters
    ----------
    adata
        Raw counts (in ``X`` or ``layers[layer]``) with the cell groups in ``obs[groupby]``. Not modified.
        Cells with a missing label belong to no group (counted in the log and in ``summary.json``).
    gene_sets
        Trait -> gene weights, as returned by :func:`psysc.datasets.gwas_gene_sets` or :func:`psysc.gwas.read_gs`.
    out
        Output directory (created).
    groupby
        Column of ``adata.obs`` with the cell groups to test.
    layer
        Layer with the raw counts; ``None`` uses ``X``.
    n_ctrl
        Number of control gene sets per trait.
    seed
        Seed of every random choice (control gene sets, PCA, graph, UMAP).
    traits
        Traits of ``gene_sets`` to score; default all.
    extra_params
        More parameters to record in ``summary.json`` (e.g. the input path).
    model
        A foundation model (name from :func:`psysc.models.available` or a local checkpoint directory):
        the kNN graph is built on its cell embedding (:func:`psysc.tl.embed` of the raw counts of the cells
        that pass QC, with all their genes: the gene filter of the QC is for scoring only) instead of PCA.
    embed_kwargs
        More keyword arguments of :func:`psysc.tl.embed` for ``model`` (e.g. ``{"train_kwargs": {"max_epochs": 20}}``
        for ``model="scvi"``).
    min_genes
        Genes of a gene set that must be in the data (after QC) for it to be scored (``min_genes`` of
        :func:`psysc.tl.score_disorders`; ``psysc run --min-genes``).
    min_cells_per_group
        Smallest group of the cell-type level tests (``psysc run --min-cells-per-group``).
    phrase
        Rewords the warnings and reasons that ``summary.json`` and the report record (``psysc run`` names its own
        options there, as in its log); default: as logged.

    Returns
    -------
    A dict with ``adata`` (the processed copy, with scores, graph and ``uns["psysc"]["enrichment"]``),
    ``enrichment`` (the tidy table), ``summary`` (what ``summary.json`` holds) and ``files``
    (name -> path of every file written): ``enrichment.tsv``, ``scores.tsv.gz``, ``heatmap.png``,
    ``scores_<trait>.png`` per trait, ``celltype_enrichment.tsv`` and ``celltype_dotplot.png`` (when the
    cell-type level ran), ``summary.json`` and ``report.html`` (self-contained).

    Examples
    --------
    >>> import psysc
    >>> from psysc._pipeline import run_pipeline
    >>> adata = psysc.datasets.darmanis2015()
    >>> gs = psysc.datasets.gwas_gene_sets(["SCZ", "HEIGHT"])  # doctest: +SKIP
    >>> res = run_pipeline(adata, gs, out="psysc-results", n_ctrl=200)  # doctest: +SKIP
    >>> res["enrichment"].query("assoc_fdr < 0.1")  # doctest: +SKIP

    """
    once = _EachWarningOnce()  # the steps share inputs: e.g. both group analyses count the unlabelled cells
    logger.addFilter(once)
    try:
        return _run(adata, gene_sets, out=out, groupby=groupby, layer=layer, n_ctrl=n_ctrl, seed=seed,
                    traits=traits, extra_params=extra_params, model=model, embed_kwargs=embed_kwargs,
                    warned=once.warnings, min_genes=min_genes, min_cells_per_group=min_cells_per_group,
                    phrase=phrase or str)
    finally:
        logger.removeFilter(once)


class _EachWarningOnce(logging.Filter):
    """Lets a warning through the first time its text is logged (infos and debug messages always)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()
        self.warnings: list[str] = []  # in order, for the report

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        text = record.getMessage()
        if text in self.seen:
            return False
        self.seen.add(text)
        self.warnings.append(text)
        return True


def _run(adata, gene_sets, *, out, groupby, layer, n_ctrl, seed, traits, extra_params, model, embed_kwargs=None,
         warned: list[str] | None = None, min_genes: int = MIN_GENES_PER_TRAIT,
         min_cells_per_group: int = CELLTYPE_MIN_CELLS, phrase: Callable[[str], str]) -> dict[str, Any]:
    import matplotlib

    from . import __version__, pl, pp, tl

    t0 = time.perf_counter()
    started = datetime.now(UTC)
    if min_genes < 1:
        raise InputError(f"--min-genes must be at least 1, not {min_genes}")
    if min_cells_per_group < 2:
        raise InputError(f"--min-cells-per-group must be at least 2 (a group's variance needs two cells), not "
                         f"{min_cells_per_group}")
    gene_sets, traits = storable_trait_names(gene_sets, traits)
    try:
        traits = check_inputs(adata, gene_sets, groupby=groupby, layer=layer, traits=traits,
                              mapped_to=(extra_params or {}).get("species"), min_genes=min_genes)
    except InputError as err:  # every problem of the input at once, not one per run
        other = counts_problem(adata, layer) if layer is None or layer in adata.layers else None
        if other is None:
            raise
        raise InputError(f"{err}. Also: {other}") from None
    if n_ctrl < 2:
        raise InputError(f"n_ctrl must be at least 2, not {n_ctrl}")
    check_counts(adata, layer)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    logger.info(
        "psysc run: %d cells x %d genes, %d trait(s) %s, groupby=%r, n_ctrl=%d, seed=%d",
        adata.n_obs,
        adata.n_vars,
        len(traits),
        traits,
        groupby,
        n_ctrl,
        seed,
    )

    counts_in = adata
    adata, qc, kept_cells = _qc(adata, layer)
    if "psysc" in adata.uns:  # results of an earlier run in the input file: this run writes its own
        logger.info("the input holds psysc results (uns['psysc']); they are replaced by this run's")
        del adata.uns["psysc"]
    labels = adata.obs[groupby]
    # group names as strings, in the column's own order (categories, or numbers as numbers: cluster 2 before
    # 10; float labels, whole numbers since check_inputs refuses fractional ones, e.g. integers stored as floats
    # because of missing labels, are written without ".0"); missing labels stay missing (not "nan"): those cells
    # belong to no group
    names = label_text(labels)
    adata.obs[groupby] = pd.Categorical(names, categories=group_order(labels, set(names.dropna())))
    n_unlabelled = int(labels.isna().sum())
    # groups that have no cell here: none in the input (an unused category), or none left by the QC
    labels_in = counts_in.obs[groupby]  # (a subset of an AnnData drops the categories it does not use)
    in_input = set(label_text(labels_in).dropna())
    categories = ([str(c) for c in labels_in.cat.categories] if isinstance(labels_in.dtype, pd.CategoricalDtype)
                  else [])
    groups_without_cells = {
        **{g: "no cell in the input (an unused category)" for g in categories if g not in in_input},
        **{g: "every cell dropped by the QC" for g in sorted(in_input - set(names.dropna()))},
    }
    for g, why in groups_without_cells.items():
        logger.warning("group %r of %r is not tested: %s", g, groupby, why)
    n_groups = adata.obs[groupby].nunique()
    if n_groups / (n_ctrl + 1) >= REPORT_FDR:
        logger.warning(
            "with --n-ctrl %d the smallest association p-value is 1/%d = %.3g, so among %d groups a single "
            "associated group cannot reach FDR < %g: use more control gene sets (--n-ctrl 1000, the default)",
            n_ctrl, n_ctrl + 1, 1 / (n_ctrl + 1), n_groups, REPORT_FDR,
        )

    t = time.perf_counter()
    pp.prepare_scoring(adata, layer=layer, normalize=True)  # raw counts, checked by check_counts
    logger.info("prepare_scoring done in %.1f s", time.perf_counter() - t)

    t = time.perf_counter()
    cells = None
    if model is not None:  # the kept cells with all their genes, for the model's tokenisation
        from anndata import AnnData

        X = counts_in.X if layer is None else counts_in.layers[layer]
        cells = AnnData(X=X[kept_cells], obs=counts_in.obs.iloc[kept_cells].copy(), var=counts_in.var.copy())
        if (extra_params or {}).get("species", "human") != "human" and model != "scvi":
            model, cells = _human_genes_for(model, cells, (extra_params or {})["species"])
    representation = _graph(adata, seed=seed, model=model, cells=cells, embed_kwargs=embed_kwargs)
    logger.info("graph done in %.1f s", time.perf_counter() - t)

    t = time.perf_counter()
    try:
        tl.score_disorders(adata, {tr: gene_sets[tr] for tr in traits}, n_ctrl=n_ctrl, seed=seed,
                           min_genes=min_genes)
    except ValueError as err:  # every trait too small after QC
        raise InputError(str(err)) from None
    except MemoryError as err:
        fix = "fewer traits with --traits, or a lower --n-ctrl" if len(traits) > 1 else "a lower --n-ctrl"
        raise InputError(f"{err}. From the command line: {fix}") from None
    logger.info("score_disorders done in %.1f s", time.perf_counter() - t)
    not_scored = dict(adata.uns["psysc"]["score_disorders"]["skipped"])  # too few genes: logged by score_disorders
    traits = [tr for tr in traits if tr not in not_scored]

    t = time.perf_counter()
    tl.disorder_enrichment(adata, groupby=groupby, traits=traits)
    table = adata.uns["psysc"]["enrichment"]
    table = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
    logger.info("disorder_enrichment done in %.1f s", time.perf_counter() - t)

    t = time.perf_counter()
    celltype, celltype_skipped = _celltype_level(adata, gene_sets, traits=traits, groupby=groupby,
                                                 min_cells=min_cells_per_group)
    logger.info("celltype_enrichment done in %.1f s", time.perf_counter() - t)

    # ---- files
    t = time.perf_counter()
    matplotlib_backend = matplotlib.get_backend()
    files: dict[str, Path] = {}

    path = out / "enrichment.tsv"
    table.to_csv(path, sep="\t", index=False)
    files["enrichment.tsv"] = path

    score_columns = {f"{tr}_{col}": adata.obs[f"psysc_{tr}_{col}"].to_numpy() for tr in traits for col in SCORE_COLUMNS}
    group_column = groupby if groupby not in {"cell", *score_columns} else f"group_{groupby}"  # no column replaced
    per_cell = pd.DataFrame({"cell": adata.obs_names, group_column: adata.obs[groupby].astype(object).to_numpy(),
                             **score_columns})
    path = out / "scores.tsv.gz"
    per_cell.to_csv(path, sep="\t", index=False, compression={"method": "gzip", "mtime": 0})
    files["scores.tsv.gz"] = path

    heatmap = _png(pl.enrichment_heatmap(table, traits=traits, fdr=REPORT_FDR, show=False, return_fig=True))
    path = out / "heatmap.png"
    path.write_bytes(heatmap)
    files["heatmap.png"] = path

    dotplot = None
    if celltype is not None:
        path = out / "celltype_enrichment.tsv"
        celltype.to_csv(path, sep="\t", index=False)
        files["celltype_enrichment.tsv"] = path
        tested = [tr for tr in traits if tr in set(celltype["trait"])]
        dotplot = _png(pl.enrichment_dotplot(celltype, method="seismic", traits=tested, fdr=REPORT_FDR, show=False,
                                             return_fig=True))
        path = out / "celltype_dotplot.png"
        path.write_bytes(dotplot)
        files["celltype_dotplot.png"] = path

    umaps = {}
    for tr in traits:
        umaps[tr] = _png(pl.scores(adata, tr, basis="umap", show=False, return_fig=True))
        path = out / f"scores_{safe_name(tr)}.png"
        path.write_bytes(umaps[tr])
        files[path.name] = path

    sentences = interpret(table, traits, celltype=celltype)
    for s in sentences.values():
        logger.info("%s", s)
    sig = {
        tr: table.loc[(table["trait"].astype(str) == str(tr)) & (table["assoc_fdr"] < REPORT_FDR), "group"]
        .astype(str)
        .tolist()
        for tr in traits
    }
    score_info = adata.uns["psysc"].get("score_disorders", {})
    n_genes = score_info.get("n_genes", {}) if isinstance(score_info, Mapping) else {}
    params = {
        "groupby": groupby,
        "layer": layer,
        "n_ctrl": int(n_ctrl),
        "seed": int(seed),
        "traits": list(traits),
        "min_genes_per_cell": MIN_GENES_PER_CELL,
        "min_cells_per_gene": MIN_CELLS_PER_GENE,
        "n_top_genes": N_TOP_GENES,
        "n_pcs": N_PCS,
        "n_neighbors": N_NEIGHBORS,
        "report_fdr": REPORT_FDR,
        "min_genes": int(min_genes),
        "celltype_min_cells": int(min_cells_per_group),
        "graph_representation": representation,
        **dict(extra_params or {}),
        "model": str(model) if model is not None else None,
    }
    if model is not None:
        params["embedding"] = adata.uns["psysc"]["embed"][representation]
    summary = {
        "parameters": params,
        "data": {
            **qc,
            "n_groups": int(adata.obs[groupby].nunique()),
            "n_cells_without_group": n_unlabelled,
            "groups_without_cells": groups_without_cells,
            "group_sizes": {str(k): int(v) for k, v in adata.obs[groupby].value_counts(sort=False).items()},
            "n_genes_per_trait": {str(k): int(v) for k, v in dict(n_genes).items()},
            "gene_set_sizes": {str(tr): int(len(gene_sets[tr])) for tr in traits},
            "traits_not_scored": {str(k): int(v) for k, v in not_scored.items()},  # genes found, too few
            "traits_without_celltype_test": {  # genes with a specificity, too few (this run's: uns was cleared)
                str(k): int(v)
                for k, v in adata.uns["psysc"].get("celltype_enrichment_params", {}).get("skipped", {}).items()
            },
            # why no trait has a cell-type level test, or None
            "celltype_level_skipped": None if celltype_skipped is None else phrase(celltype_skipped),
        },
        "significant_groups": sig,
        "interpretation": sentences,
        "warnings": [phrase(w) for w in warned or []],
        "versions": {
            "psysc": __version__,
            "python": platform.python_version(),
            "scanpy": _pkg_version("scanpy"),
            "anndata": _pkg_version("anndata"),
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "scipy": _pkg_version("scipy"),
            "matplotlib": matplotlib.__version__,
            "umap-learn": _pkg_version("umap-learn"),
        },
        "platform": platform.platform(),
        "started": started.isoformat(timespec="seconds"),
        "files": [],
    }
    summary["files"] = sorted([*files, "summary.json", "report.html"])
    _remove_stale_outputs(out, set(summary["files"]))
    summary["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    summary["runtime_s"] = round(time.perf_counter() - t0, 2)

    path = out / "report.html"
    path.write_text(
        _report_html(summary=summary, table=table, sentences=sentences, heatmap=heatmap, umaps=umaps,
                     celltype=celltype, dotplot=dotplot),
        encoding="utf-8",
    )
    files["report.html"] = path
    path = out / "summary.json"
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    files["summary.json"] = path
    logger.info(
        "wrote %d files to %s in %.1f s (matplotlib backend %s); total %.1f s",
        len(files),
        out,
        time.perf_counter() - t,
        matplotlib_backend,
        summary["runtime_s"],
    )
    return {"adata": adata, "enrichment": table, "summary": summary, "files": files}
