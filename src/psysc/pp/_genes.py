"""Rename a data matrix's genes one to one: orthologs of the other species, Ensembl IDs or symbols."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .._utils import check_anndata, head_names, uns_namespace
from ..gwas._genes import _check_species
from ..gwas._ids import (
    _N_EXAMPLES,
    _WARN_LOST,
    ONE_TO_ONE_REASONS,
    check_ortholog_options,
    guess_species,
    one_to_one,
)

logger = logging.getLogger("psysc")


def map_genes(
    adata,
    to: str,
    *,
    species: str | None = None,
    gene_id: str = "symbol",
    source: str = "hcop",
    min_support: int = 3,
    aliases=None,
    key_added: str = "original_gene",
    copy: bool = False,
):
    """Rename the genes (``var_names``) of a data matrix one to one, keeping each column's values.

    For data a model or gene set names differently: mouse nuclei for a human model (``to="human"``), gene symbols for
    a model of Ensembl IDs (``to="ensembl"``, e.g. the CELLxGENE Census scVI model), or IDs to symbols. Each column is
    renamed as a whole or left out, so no gene is given another gene's counts and no count is used twice: a mouse
    gene with several human orthologs is not copied into each of them, and a human gene with several mouse
    orthologs takes the column of one of them, not their sum.

    The rule, per column: its best target is the ortholog with the most supporting HCOP resources (or, for
    identifiers, the gene :func:`psysc.gwas.to_ensembl` resolves the name to); a column whose best targets tie is
    left out. A target named by several columns keeps the one that names it most strongly (more supporting
    resources; an ID or current symbol before a case-insensitive or synonym match); when they tie, all are left out.
    E.g. mouse ``Actb`` becomes ``ACTB`` (9 of 12 resources) and is not also ``ACTG1`` (3), which ``Actg1`` (10)
    becomes; ``A2m`` becomes ``A2M``; ``Mug1`` and ``Mug2`` both name ``PZP`` most strongly (5 each) and are left
    out. Every column left out is counted in the log, with examples and the reason.

    Parameters
    ----------
    adata
        The data (an :class:`~anndata.AnnData`; for a MuData, one modality, e.g. ``mdata["rna"]``).
    to
        ``"human"`` or ``"mouse"``: orthologs of the other species (see :func:`psysc.gwas.to_species`);
        ``"ensembl"``: unversioned Ensembl IDs; ``"symbol"``: current GENCODE symbols.
    species
        The species of ``adata``'s genes, ``"human"`` or ``"mouse"``; guessed from the names when ``None`` (see
        :func:`psysc.gwas.guess_species`).
    gene_id
        Orthologs only: name them by ``"symbol"`` or ``"ensembl"`` ID.
    source
        Orthologs only: ``"hcop"`` or ``"scdrs"`` (which has no support counts: a gene with several orthologs
        there is left out), as in :func:`psysc.gwas.to_species`.
    min_support
        Orthologs from HCOP: only pairs supported by at least this many of its 12 resources count.
    aliases
        Extra synonyms for ``to="ensembl"`` / ``"symbol"``, as in :func:`psysc.gwas.to_ensembl`.
    key_added
        ``var`` column that keeps each gene's name before the mapping.
    copy
        Return a new AnnData instead of changing ``adata`` (needed for an AnnData opened in backed mode, whose
        copy is loaded into memory).

    Returns
    -------
    anndata.AnnData or None
        With ``copy=True`` the mapped AnnData, else ``None``: ``adata`` keeps the mapped columns (in their order,
        with every layer, ``varm`` and ``var`` column; a ``var`` column keeps its source gene's value, e.g. a mouse
        ID in ``var["gene_ids"]``), renamed; ``var[key_added]`` holds the names before the mapping (before the first
        one, when ``adata`` was mapped before) and ``uns["psysc"]["map_genes"]`` the options and the counts by reason
        (an earlier call's record under ``"earlier"``). ``adata.raw``, which has genes of its own, is renamed by
        the same rule.

    Raises
    ------
    ValueError
        If the species cannot be guessed, the genes are already of species ``to``, no column maps, or
        ``var[key_added]`` exists but not from an earlier call.

    Notes
    -----
    A ``species`` that the names contradict (mouse-like names with ``species="human"``) is logged as a warning:
    such names match only by case.

    Examples
    --------
    Mouse nuclei for scGPT, which reads human gene symbols:

    >>> import psysc
    >>> adata = psysc.datasets.darmanis2015()[:, ["SNAP25", "GFAP", "ACTB", "ACTG1"]].copy()
    >>> adata.var_names = ["Snap25", "Gfap", "Actb", "Actg1"]  # as mouse data would name them
    >>> psysc.pp.map_genes(adata, "human")
    >>> list(adata.var_names), list(adata.var["original_gene"])
    (['SNAP25', 'GFAP', 'ACTB', 'ACTG1'], ['Snap25', 'Gfap', 'Actb', 'Actg1'])

    """
    check_anndata(adata)
    to = str(to).lower()
    if to not in ("human", "mouse", "ensembl", "symbol"):
        raise ValueError(f"to={to!r} is not supported; choose 'human' or 'mouse' (orthologs), 'ensembl' or 'symbol'")
    check_ortholog_options(source, min_support, gene_id)
    if not copy and adata.isbacked:
        raise ValueError("an AnnData opened in backed mode cannot drop columns in place: pass copy=True, which "
                         "returns the mapped data loaded into memory")
    if adata.n_vars == 0:
        raise ValueError("adata has no genes to map")
    names = adata.var_names
    if species is None:
        species = guess_species(names)
        if species == "unknown":
            raise ValueError(f"could not tell whether the genes (e.g. {head_names(names)}) are human or mouse: pass "
                             "species='human' or species='mouse'")
    else:
        species = _check_species(species)
        looks = guess_species(names)
        if looks not in ("unknown", species):
            logger.warning("map_genes: species=%r, but the genes look like %s genes (e.g. %s); they are mapped as %s "
                           "genes, matching names of the other species by case only", species, looks,
                           list(names[:3]), species)
    prior = adata.uns.get("psysc", {}).get("map_genes") if isinstance(adata.uns.get("psysc"), dict) else None
    if key_added in adata.var.columns and not prior:
        raise ValueError(f"adata.var[{key_added!r}] exists already: pass key_added= naming a new column for the names "
                         "before the mapping")
    options = {"to": to, "species": species}
    if to in ("human", "mouse"):
        options.update(gene_id=gene_id, source=source, min_support=int(min_support))
    table, keep, record = _map_names(names, options, aliases, "")
    raw = None
    if adata.raw is not None:  # .raw keeps its own genes: renamed by the same rule, so that its names match
        raw_in = adata.raw.to_adata()
        raw_table, raw_keep, _ = _map_names(raw_in.var_names, options, aliases, ".raw: ")
        raw = raw_in[:, raw_keep].copy()
        _rename(raw, raw_in.var_names, raw_table, raw_keep, key_added, raw_in.var.get(key_added) if prior else None)

    # the names before the first mapping, when adata was mapped before (var[key_added] holds them)
    earliest = adata.var[key_added].to_numpy() if key_added in adata.var.columns else None
    old = pd.Index(names, dtype=object, name=names.name)
    if copy:
        source_data = adata.to_memory() if adata.isbacked else adata  # a view of a backed file too
        out = source_data[:, keep].copy()
    else:
        adata._inplace_subset_var(keep)
        out = adata
    _rename(out, old, table, keep, key_added, earliest)
    if raw is not None:
        out.raw = raw
    if prior:
        record["earlier"] = prior
    uns_namespace(out, "psysc")["map_genes"] = record
    return out if copy else None


def _map_names(names, options: dict, aliases, label: str) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """The one-to-one table of ``names``, the positions of the columns kept and the record of the call; logged."""
    to, species = options["to"], options["species"]
    table = one_to_one(names, **options, aliases=aliases)  # to, species and, for orthologs, their options
    keep = np.flatnonzero(table["gene"].notna().to_numpy())
    counts = table["status"].value_counts()
    what = {"human": f"human genes ({options.get('gene_id')})", "mouse": f"mouse genes ({options.get('gene_id')})",
            "ensembl": f"{species} Ensembl IDs", "symbol": f"{species} gene symbols"}[to]
    n = len(table)
    if not len(keep):
        raise ValueError(f"{label}none of the {n:,} {species} genes (e.g. {head_names(names)}) maps to {what}: "
                         + _reasons(table, counts) + "; check species= and to=")
    msg = f"map_genes: {label}{n:,} {species} genes -> {len(keep):,} {what}, one column each"
    if n - len(keep):
        msg += f"; {n - len(keep):,} left out: " + _reasons(table, counts)
        dups = pd.Index(names)[pd.Index(names).duplicated()].unique()
        if len(dups):
            msg += (f". {len(dups):,} names occur more than once (e.g. {head_names(dups)}): their columns tie and are "
                    "left out; sum or rename them first")
    (logger.warning if n - len(keep) > _WARN_LOST * n else logger.info)(msg)
    record = {**options, "n_genes_in": int(n), "n_genes_out": int(len(keep)),
              "n_left_out": {str(k): int(v) for k, v in counts.items() if k != "mapped"}}
    return table, keep, record


def _rename(out, old: pd.Index, table: pd.DataFrame, keep: np.ndarray, key_added: str, earliest) -> None:
    """``out`` (the kept columns) renamed, with the names before the (first) mapping in ``var[key_added]``."""
    out.var[key_added] = (old.to_numpy() if earliest is None else np.asarray(earliest))[keep]
    out.var_names = pd.Index(table["gene"].to_numpy()[keep], dtype=object, name=old.name)


def _reasons(table: pd.DataFrame, counts: pd.Series) -> str:
    """``"12 without an ortholog (e.g. Gm123, ...), 3 ..."`` for the log and errors."""
    parts = []
    for status, n in counts.items():
        if status == "mapped":
            continue
        rows = table[table["status"] == status].head(_N_EXAMPLES)
        ex = [f"{r.name} (by {r.taken_by})" if isinstance(r.taken_by, str) else str(r.name)
              for r in rows.itertuples()]
        parts.append(f"{n:,} {ONE_TO_ONE_REASONS.get(status, status)} (e.g. {', '.join(ex)})")
    return ", ".join(parts)
