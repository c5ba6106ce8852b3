"""Rename a data matrix's genes one to one: orthologs of the other species, Ensembl IDs or symbols."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .._utils import check_anndata, uns_namespace
from ..gwas._ids import _N_EXAMPLES, _WARN_LOST, ONE_TO_ONE_REASONS, guess_species, one_to_one

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
        with every layer, ``varm`` and ``var`` column), renamed; ``var[key_added]`` holds the earlier names and
        ``uns["psysc"]["map_genes"]`` the options and the counts by reason.

    Raises
    ------
    ValueError
        If the species cannot be guessed, the genes are already of species ``to``, or no column maps.

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
    if to not in ("human", "mouse", "ensembl", "symbol"):
        raise ValueError(f"to={to!r} is not supported; choose 'human' or 'mouse' (orthologs), 'ensembl' or 'symbol'")
    if gene_id not in ("symbol", "ensembl"):
        raise ValueError(f"gene_id={gene_id!r} is not supported; choose 'symbol' or 'ensembl'")
    if source not in ("hcop", "scdrs"):
        raise ValueError(f"source={source!r} is not supported; choose 'hcop' or 'scdrs'")
    if isinstance(min_support, bool) or not isinstance(min_support, int | np.integer) or not 1 <= min_support <= 12:
        raise ValueError(f"min_support must be an integer from 1 to 12 (HCOP has 12 resources), got {min_support!r}")
    if not copy and adata.isbacked:
        raise ValueError("an AnnData opened in backed mode cannot drop columns in place: pass copy=True, which "
                         "returns the mapped data loaded into memory")
    names = adata.var_names
    if species is None:
        species = guess_species(names)
        if species == "unknown":
            raise ValueError(f"could not tell whether the genes (e.g. {list(names[:3])}) are human or mouse: pass "
                             "species='human' or species='mouse'")
    table = one_to_one(names, to, species=species, gene_id=gene_id, source=source, min_support=int(min_support),
                       aliases=aliases)
    keep = np.flatnonzero(table["gene"].notna().to_numpy())
    counts = table["status"].value_counts()
    what = {"human": f"human genes ({gene_id}s)", "mouse": f"mouse genes ({gene_id}s)",
            "ensembl": "Ensembl IDs", "symbol": "gene symbols"}[to]
    if not len(keep):
        raise ValueError(f"none of the {adata.n_vars:,} {species} genes (e.g. {list(names[:3])}) maps to {what}: "
                         + _reasons(table, counts) + "; check species= and to=")
    dropped = adata.n_vars - len(keep)
    msg = f"map_genes: {adata.n_vars:,} {species} genes -> {len(keep):,} {what}, one column each"
    if dropped:
        msg += f"; {dropped:,} left out: " + _reasons(table, counts)
    (logger.warning if dropped > _WARN_LOST * adata.n_vars else logger.info)(msg)

    old = pd.Index(names, dtype=object)
    if copy:
        out = adata[:, keep]
        out = out.to_memory() if adata.isbacked else out.copy()
    else:
        adata._inplace_subset_var(keep)
        out = adata
    out.var[key_added] = old[keep].to_numpy()
    out.var_names = pd.Index(table["gene"].to_numpy()[keep], dtype=object)
    uns_namespace(out, "psysc")["map_genes"] = {
        "to": to, "species": species, "gene_id": gene_id, "source": source, "min_support": int(min_support),
        "n_genes_in": int(len(table)), "n_genes_out": int(len(keep)),
        "n_left_out": {str(k): int(v) for k, v in counts.items() if k != "mapped"},
    }
    return out if copy else None


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
