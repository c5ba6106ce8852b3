"""Normalising user gene sets and matching them to the genes of a dataset."""

from __future__ import annotations

import contextvars
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property

import numpy as np
import pandas as pd

from ._utils import head_names

logger = logging.getLogger("psysc")

_ENSEMBL = re.compile(r"^ENS[A-Z]*G\d{6,}(\.\d+)?$")
#: human open reading frames (C9orf72, CXorf56): title case in human too, so they tell no species by case
_ORF = re.compile(r"^C(\d{1,2}|X|Y)orf\d+$")


def check_trait_name(trait) -> None:
    """Refuse a trait name that an .h5ad file cannot store in the keys psysc writes (it holds '/')."""
    if "/" in str(trait):
        raise ValueError(
            f"trait name {str(trait)!r} contains '/', which an .h5ad file cannot store in the keys psysc writes "
            f"(obs[\"psysc_<trait>_...\"]); rename it, e.g. {str(trait).replace('/', '_')!r}, or pass inplace=False "
            "(nothing stored)"
        )


def as_gene_sets(gene_sets) -> dict[str, pd.Series]:
    """Turn the accepted gene-set inputs into ``{trait: Series(gene -> weight)}``.

    Accepts a dict of Series, of dicts gene->weight, of gene lists (weight 1; also a Series of gene names with a
    default index, such as a table's column) or of MAGMA-like tables (a ``ZSTAT`` column, as
    :func:`psysc.gwas.read_magma` with ``table=True`` and :func:`psysc.gwas.sumstats_to_genes` return; genes in
    the index, or in a ``GENE`` column when the index is the default one); a single Series is one trait named by
    its ``name``, a single table one trait named by its ``attrs["trait"]``. A boolean Series (a column of a
    genes x traits membership table) is the set of the genes marked ``True``, weight 1; the others are counted in
    the log. Duplicated genes in a set keep their last weight (as scDRS), counted in the log. NaN or infinite
    weights are an error.
    """
    if isinstance(gene_sets, pd.Series):
        gene_sets = {gene_sets.name or "trait": gene_sets}
    elif isinstance(gene_sets, pd.DataFrame):
        if "ZSTAT" not in gene_sets.columns:
            raise TypeError(
                "gene_sets is a table without a ZSTAT column: for a genes x traits table of weights pass "
                "{trait: table[trait].dropna() for trait in table}; read a scDRS .gs file with psysc.gwas.read_gs "
                "and a gene x trait file with psysc.gwas.read_gene_stats"
            )
        gene_sets = {gene_sets.attrs.get("trait") or "trait": gene_sets}
    elif isinstance(gene_sets, str | os.PathLike):
        raise TypeError(
            f"gene_sets is a path ({os.fspath(gene_sets)!r}); read it first: psysc.gwas.read_gs(path) for a scDRS .gs "
            "file, psysc.gwas.read_magma(path, ...) for MAGMA .genes.out, psysc.gwas.read_gene_list(path) for a list"
        )
    if not isinstance(gene_sets, Mapping):
        raise TypeError(
            "gene_sets must be a dict {trait: genes}; psysc.datasets.gwas_gene_sets() and psysc.gwas.read_gs() "
            f"return one. Got {type(gene_sets).__name__}."
        )
    out: dict[str, pd.Series] = {}
    for trait, genes in gene_sets.items():
        if isinstance(genes, pd.Series) and isinstance(genes.dtype, pd.CategoricalDtype):
            genes = genes.astype(object)  # its values: names or weights, told apart below
        if isinstance(genes, pd.Series) and (pd.api.types.is_bool_dtype(genes.dtype)
                                             or pd.api.types.infer_dtype(genes, skipna=True) == "boolean"):
            member = pd.array(genes.to_numpy(), dtype="boolean").fillna(False).to_numpy(dtype=bool)
            if (~member).any():
                logger.info("gene set %r: a boolean Series, the set of its %d genes marked True (weight 1); %d "
                            "marked False or missing left out", trait, int(member.sum()), int((~member).sum()))
            genes = pd.Series(np.ones(int(member.sum())), index=genes.index[member], dtype=np.float64)
        if isinstance(genes, pd.DataFrame):
            if "ZSTAT" not in genes.columns:
                raise TypeError(
                    f"gene set {trait!r} is a table without a ZSTAT column; pass a Series gene -> weight or a "
                    "MAGMA-like table (psysc.gwas.read_magma(..., table=True), psysc.gwas.sumstats_to_genes)"
                )
            s = genes["ZSTAT"].astype(np.float64)
            if isinstance(genes.index, pd.RangeIndex) and "GENE" in genes.columns:  # e.g. pd.read_csv of .genes.out
                s.index = pd.Index(genes["GENE"].astype(str).to_numpy())
        elif (isinstance(genes, pd.Series) and pd.api.types.infer_dtype(genes, skipna=True) == "string"
              and pd.to_numeric(genes, errors="coerce").isna().all()):  # names, not weights written as text
            if not isinstance(genes.index, pd.RangeIndex):
                raise TypeError(
                    f"gene set {trait!r} is a Series of names ({head_names(genes)}...) indexed by "
                    f"{head_names(genes.index)}: a weighted set is a Series gene -> weight (genes in the index); a "
                    "list of genes is passed as a list, e.g. {t: list(genes)}"
                )
            s = pd.Series(np.ones(len(genes)), index=genes.to_numpy(), dtype=np.float64)  # a column of gene names
        elif isinstance(genes, pd.Series):
            s = genes.astype(np.float64)
        elif isinstance(genes, Mapping):
            s = pd.Series(genes, dtype=np.float64)
        elif isinstance(genes, Iterable) and not isinstance(genes, str):
            genes = list(genes)
            s = pd.Series(np.ones(len(genes)), index=genes, dtype=np.float64)
        else:
            raise TypeError(f"gene set {trait!r} must be a Series, a dict gene->weight or a list of genes")
        unnamed = pd.isna(s.index.to_series(index=None)).to_numpy() | (s.index.astype(str).str.strip() == "")
        if unnamed.any():  # a missing name (a blank spreadsheet cell) would become the gene "nan"
            logger.warning("gene set %r: %d gene(s) without a name (NaN or empty) left out", trait, int(unnamed.sum()))
            s = s[~unnamed]
        s.index = s.index.astype(str)
        n_dup = int(s.index.duplicated(keep="last").sum())
        if n_dup:
            logger.warning("gene set %r: %d duplicated genes, keeping the last weight of each", trait, n_dup)
            s = s[~s.index.duplicated(keep="last")]
        bad = ~np.isfinite(s.to_numpy())
        if bad.any():
            raise ValueError(
                f"gene set {trait!r} has {int(bad.sum())} NaN or infinite weights, e.g. {head_names(s.index[bad])}"
            )
        out[str(trait)] = s
    if not out:
        raise ValueError("gene_sets is empty")
    return out


def _id_kind(names) -> str:
    names = [str(x) for x in list(names)[:500]]
    if not names:
        return "empty"
    ens = np.mean([bool(_ENSEMBL.match(x)) for x in names])
    if ens > 0.5:
        return "ensembl"
    if np.mean([x.isdigit() for x in names]) > 0.5:
        return "Entrez-like numbers"
    letters = [x for x in names if x[:1].isalpha() and not _ORF.match(x)]
    if not letters:
        return "symbols" if any(_ORF.match(x) for x in names) else "other"
    upper = np.mean([x == x.upper() for x in letters])
    title = np.mean([x[:1].isupper() and x[1:] == x[1:].lower() and x != x.upper() for x in letters])
    if title > 0.5:
        return "mouse-like symbols"
    if upper > 0.5:
        return "human-like symbols"
    return "symbols"


def _upper_fraction(names) -> float:
    """The fraction of names (the first 2,000) that are all upper case (``str.isupper``)."""
    sample = [str(x) for x in list(names)[:2_000]]
    return sum(x.isupper() for x in sample) / max(1, len(sample))


def data_species_if_other(set_genes, var_names) -> str | None:
    """The species the data's gene names look like (``"human"`` or ``"mouse"``) when the gene sets look like the other.

    ``None`` when both look alike or either is not named by symbols.
    """
    return _other_species(_id_kind(set_genes), _id_kind(var_names))


def _other_species(set_kind: str, data_kind: str) -> str | None:
    """:func:`data_species_if_other` from the kinds of names (:func:`_id_kind`) of the gene sets and of the data."""
    species = {"human-like symbols": "human", "mouse-like symbols": "mouse"}
    if set_kind in species and data_kind in species and set_kind != data_kind:
        return species[data_kind]
    return None


def species_fix(target: str) -> str:
    """How to map gene sets to the ``target`` species: in Python, and with ``psysc run``.

    ``psysc run --species mouse`` maps its (human) gene sets to mouse data; mouse gene sets for human data are
    mapped before the run.
    """
    python = f"psysc.gwas.to_species(gene_sets, {target!r})"
    if target == "mouse":
        return f"{python} (psysc run --species mouse)"
    return (f"{python}; for psysc run, write the mapped sets to a file, psysc.gwas.write_gs({python}, "
            f"'{target}_gene_sets.gs'), and pass it as --gene-sets")


def _ensembl_species(names) -> str | None:
    """The species of names that are mostly Ensembl IDs, as :func:`psysc.gwas.guess_species` tells it, else ``None``."""
    if _id_kind(names) != "ensembl":
        return None
    from .gwas._ids import guess_species  # it reads this module's helpers: imported when needed

    species = guess_species(names)
    return None if species == "unknown" else species


def to_ensembl_call(var_names, set_genes=None) -> str:
    """The call that names gene sets by the Ensembl IDs of the data's species (mouse data: mouse IDs)."""
    if _ensembl_species(var_names) != "mouse":
        return "psysc.gwas.to_ensembl(gene_sets)"
    if set_genes is not None and _id_kind(set_genes) == "human-like symbols":
        return "psysc.gwas.to_species(gene_sets, 'mouse', gene_id='ensembl')"
    return "psysc.gwas.to_ensembl(gene_sets, species='mouse')"


def symbol_column_of(gene_set) -> str | None:
    """The column of gene symbols that the file of ``gene_set`` also had, else ``None``.

    Recorded by :func:`psysc.gwas.read_magma` when it named the genes by another column (FUMA's ``SYMBOL``).
    """
    attrs = getattr(gene_set, "attrs", None)
    column = attrs.get("symbol_column") if isinstance(attrs, dict) else None
    return str(column) if column else None


def overlap_hint(set_genes, var_names, *, symbol_column: str | None = None) -> str:
    """A sentence explaining why gene names may not match (ID type, species, version suffixes).

    ``symbol_column``: the gene sets' file names the genes by symbol in this column too (:func:`symbol_column_of`).
    """
    a, b = _id_kind(set_genes), _id_kind(var_names)
    shown = {"ensembl": "Ensembl IDs"}
    hints = [f"the gene sets look like {shown.get(a, a)}, var_names look like {shown.get(b, b)}" if a != b else
             f"the gene sets and var_names both look like {shown.get(a, a)}: these genes are not in "
             "the data, or are spelled another way there"]
    set_species, data_species = _ensembl_species(set_genes), _ensembl_species(var_names)
    if None not in (set_species, data_species) and set_species != data_species:
        return (f"the gene sets are {set_species} Ensembl IDs, var_names are {data_species} Ensembl IDs: the data and "
                f"the gene sets are of different species; map the gene sets to {data_species} IDs, "
                f"psysc.gwas.to_species(gene_sets, {data_species!r}, gene_id='ensembl')")
    if {a, b} == {"ensembl", "human-like symbols"} or ("ensembl" in (a, b) and a != b):
        hints.append("map one side to the other (symbols <-> Ensembl IDs)"
                     + (", e.g. set var_names from a symbol column" if b == "ensembl" else ""))
    if symbol_column is not None and a in ("Entrez-like numbers", "ensembl") and b not in ("ensembl", a):
        hints.append(f"the gene sets' file names the genes by symbol in its {symbol_column} column too: read it "
                     f"with gene_column={symbol_column!r}")
    elif a == "Entrez-like numbers":
        hints.append("MAGMA names genes by Entrez IDs: read its .genes.out with the gene.loc file of the run, "
                     "psysc.gwas.read_magma(path, gene_loc=...), to name them by gene symbol")
    target = _other_species(a, b)
    species_differ = target is not None
    if species_differ:
        hints.append("the data and the gene sets seem to be of different species: map the gene sets to the data's "
                     f"species, {species_fix(target)}")
    for side, names, kind in (("var_names", var_names, b), ("the gene sets", set_genes, a)):
        if kind == "ensembl" and any("." in str(x) for x in list(names)[:200]):
            hints.append(f"{side} carry Ensembl version suffixes (ENSG...\\.N): strip them (e.g. "
                         "names.str.replace(r'\\.\\d+$', '', regex=True))")
    exact = {str(x) for x in var_names}
    upper = {x.upper() for x in exact}
    n_case = sum(str(g) not in exact and str(g).upper() in upper for g in set_genes)
    if n_case and not species_differ:  # human and mouse orthologs often differ in case only, but are other genes
        set_upper, var_upper = _upper_fraction(set_genes), _upper_fraction(var_names)
        if var_upper > set_upper:
            fix = ("spell the gene sets as var_names do, e.g. {t: s.rename(index=str.upper) for t, s in "
                   "gene_sets.items()} for a dict of Series")
        elif set_upper > var_upper:
            fix = "spell var_names as the gene sets do, e.g. adata.var_names = adata.var_names.str.upper()"
        else:
            fix = "spell both the same way"
        hints.append(f"{n_case} gene-set genes match var_names when upper and lower case are ignored: the names differ "
                     f"in case only (human symbols are upper case); {fix}")
    return "; ".join(hints)


_OVERLAP_SAID = contextvars.ContextVar("psysc_overlap_said", default=False)


class DataGenes:
    """A dataset's gene names and what the overlap reports derive from them, made once for every gene set."""

    def __init__(self, var_names):
        self.names = pd.Index(var_names)
        self.fix_said = False  # whether a report gave the code of CURRENT_SYMBOLS_FIX (said once, not per set)

    @cached_property
    def set(self) -> set:
        return set(self.names)

    @cached_property
    def kind(self) -> str:
        return _id_kind(self.names)

    @cached_property
    def by_upper(self) -> dict[str, list[str]]:
        from .gwas._ids import names_by_upper

        return names_by_upper(self.names)


@contextmanager
def overlap_already_reported() -> Iterator[None]:
    """Keep :func:`report_overlap` silent within this block.

    A second function given the same gene sets and data (as ``psysc run`` gives them to the scoring and then to the
    cell-type level test) would repeat each line.
    """
    token = _OVERLAP_SAID.set(True)
    try:
        yield
    finally:
        _OVERLAP_SAID.reset(token)


def report_overlap(trait: str, set_genes, var_names, n_common: int, *, var: pd.DataFrame | None = None) -> None:
    """Log how many of a set's genes are in the data: a warning, with the likely cause, below half of them.

    The genes not found are left out of every test; when they are missing because the data were restricted to some
    genes, or are named in another way (a set mixing symbols and Ensembl IDs), the result would silently rest on
    part of the set. ``var_names``: the data's genes, or their :class:`DataGenes` (for many sets). ``var`` (the
    AnnData's) lets the warning name a column of gene symbols (:func:`symbol_column_hint`).
    """
    if _OVERLAP_SAID.get():
        return
    data = var_names if isinstance(var_names, DataGenes) else DataGenes(var_names)
    n_set = len(set_genes)
    missing = pd.Index(set_genes)[~pd.Index(set_genes).isin(data.names)]
    if n_common >= 0.5 * n_set:
        logger.info("%s: %d of %d genes found in the data%s", trait, n_common, n_set,
                    _other_symbols_note(missing, data))
        return
    same_kind = _id_kind(missing) == data.kind
    logger.warning(
        "%s: only %d of %d genes found in the data; %s", trait, n_common, n_set,
        "is the matrix gene-filtered? use all genes, not only the highly variable ones"
        + _other_symbols_note(missing, data) if same_kind
        else f"the missing ones (e.g. {head_names(missing)}) are named differently: "
        + overlap_hint(missing, data.names) + symbol_column_hint(var, missing),
    )


#: the code that brings the data's and the gene sets' symbols to the current ones (psysc run: --current-symbols)
CURRENT_SYMBOLS_FIX = ("adata.var_names = psysc.gwas.current_symbols(adata.var_names) and gene_sets = "
                       "psysc.gwas.current_symbols(gene_sets)")


def _other_symbols_note(missing: pd.Index, data: DataGenes) -> str:
    """``"; N more are in the data under another symbol ..."`` for human symbols, or ``""``."""
    if not len(missing) or _id_kind(missing) != "human-like symbols" or data.kind != "human-like symbols":
        return ""
    from .gwas._ids import other_symbols_in

    pairs = other_symbols_in(missing, data.names, by_upper=data.by_upper)
    if not pairs:
        return ""
    shown = ", ".join(f"{gene} as {name}" for gene, name in pairs[:3])
    fix = "as above" if data.fix_said else CURRENT_SYMBOLS_FIX
    data.fix_said = True
    return (f"; {len(pairs)} more {'is' if len(pairs) == 1 else 'are'} in the data under another symbol of the gene "
            f"(e.g. {shown}): bring both to current symbols, {fix}")


#: var columns that hold gene symbols in common files (CELLxGENE, 10x, scanpy)
_SYMBOL_COLUMNS = ("feature_name", "gene_symbols", "gene_symbol", "gene_name", "symbol", "gene")


#: the code that makes a var column of gene symbols the var_names (as plain strings: a Series named like the column
#: would name the index too, and anndata then refuses to write the file)
SYMBOLS_AS_VAR_NAMES = "adata.var_names = adata.var[{col!r}].astype(str).to_numpy(); adata.var_names_make_unique()"


def _ensembl_var_names(var: pd.DataFrame | None) -> bool:
    """Whether ``var`` is indexed by Ensembl IDs (most of its first names, as :func:`_id_kind` tells)."""
    return var is not None and len(var) > 0 and _id_kind(var.index) == "ensembl"


def symbol_column(var: pd.DataFrame | None) -> str | None:
    """The column of ``var`` with gene symbols (``feature_name``, ``gene_symbols``, ...) where var_names are Ensembl."""
    if not _ensembl_var_names(var):
        return None
    return next((col for col in _SYMBOL_COLUMNS if col in var.columns), None)


def ensembl_column(var: pd.DataFrame | None) -> str | None:
    """The column of ``var`` whose values are mostly Ensembl gene IDs (``gene_ids``, ``ensembl_id``, ...), if any."""
    if var is None or not len(var):
        return None
    for col in var.columns:
        if var[col].dtype == object or isinstance(var[col].dtype, pd.CategoricalDtype | pd.StringDtype):
            if _id_kind(var[col].dropna().astype(str).head(500)) == "ensembl":
                return str(col)
    return None


def symbol_column_hint(var: pd.DataFrame | None, set_genes=None) -> str:
    """A sentence naming a column of ``var`` with gene symbols to use as var_names, when var_names are Ensembl IDs.

    With ``set_genes`` of Ensembl IDs and var_names of symbols, the column of ``var`` with Ensembl IDs instead; with
    Ensembl IDs on both sides, nothing.
    """
    if var is not None and len(var) and set_genes is not None and _id_kind(set_genes) == "ensembl" \
            and _id_kind(var.index) != "ensembl":
        col = ensembl_column(var)
        if col is not None:
            return (f"; map the gene sets to symbols with psysc.gwas.to_symbols(gene_sets), or use the Ensembl IDs of "
                    f"adata.var[{col!r}] as var_names")
        return "; map the gene sets to symbols with psysc.gwas.to_symbols(gene_sets)"
    if not _ensembl_var_names(var) or (set_genes is not None and _id_kind(set_genes) == "ensembl"):
        return ""  # both sides Ensembl IDs: not a matter of symbols (versions, species: overlap_hint says)
    col = symbol_column(var)
    if col is not None:
        return (f"; adata.var[{col!r}] holds gene symbols: use them as var_names ("
                f"{SYMBOLS_AS_VAR_NAMES.format(col=col)}; psysc run --gene-symbols {col} does it) or map the gene "
                f"sets with {to_ensembl_call(var.index, set_genes)}")
    return (f"; map the gene sets to Ensembl IDs with {to_ensembl_call(var.index, set_genes)}, or the data's genes to "
            "symbols")


def match_gene_sets(gene_sets: dict[str, pd.Series], var_names: pd.Index, *, min_genes: int,
                    var: pd.DataFrame | None = None):
    """Restrict gene sets to the genes present; report what matched.

    Returns ``{trait: (gene_idx sorted by gene name, weights)}`` for traits with at least ``min_genes``
    genes, and ``{trait: n_matched}`` of the traits left out. ``var`` (the AnnData's ``var``) lets the error of no
    overlap name a column of gene symbols.
    """
    pos = pd.Series(np.arange(len(var_names)), index=var_names)
    data = DataGenes(var_names)
    kept, skipped = {}, {}
    total_matched = 0
    for trait, s in gene_sets.items():
        common = sorted(set(s.index) & data.set)
        total_matched += len(common)
        if len(common) < min_genes:  # not scored: said below
            skipped[trait] = len(common)
            continue
        report_overlap(trait, s.index, data, len(common), var=var)
        kept[trait] = (pos[common].to_numpy(), s[common].to_numpy(dtype=np.float64))
    if total_matched == 0:
        first = next(iter(gene_sets.values()))
        raise ValueError(
            "no gene of any gene set is in var_names (0 matches). "
            f"Gene sets start with {head_names(first.index)}, var_names with {head_names(var_names)}: "
            + overlap_hint(first.index, var_names, symbol_column=symbol_column_of(first))
            + symbol_column_hint(var, first.index)
            + "."
        )
    for trait, n in skipped.items():  # why: below half of the set found, the likely cause
        report_overlap(trait, gene_sets[trait].index, data, n, var=var)
    if skipped:
        logger.warning(
            "%d trait(s) have fewer than %d genes in the data and are not scored: %s (min_genes= sets the "
            "limit)",
            len(skipped),
            min_genes,
            ", ".join(f"{t} ({n} genes)" for t, n in skipped.items()),
        )
    if not kept:
        small = [t for t, n in skipped.items() if n == len(gene_sets[t])]  # every gene found: the set is small
        limit = max(1, min(skipped.values()))
        why = (
            f"the sets are that small (all their genes are in the data): pass min_genes={limit} or less to score "
            "them anyway"
            if len(small) == len(skipped)
            else overlap_hint(next(iter(gene_sets.values())).index, var_names)
        )
        raise ValueError(f"every trait has fewer than {min_genes} genes in the data ({skipped}); {why}")
    return kept, skipped
