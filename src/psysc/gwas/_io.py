"""Readers and writers of gene sets: scDRS ``.gs`` files, MAGMA ``.genes.out`` and gene lists.

All readers return psysc's gene-set contract: ``dict[str, pandas.Series]``, trait name -> Series
indexed by gene (``index.name == "gene"``, ``Series.name == trait``) holding float64 weights.
"""

from __future__ import annotations

import csv
import gzip
import html
import io
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .._core._gls import GeneCorrelations
from ._ids import _ENSEMBL_ID, _SPREADSHEET_DATE, SPREADSHEET_DATES, _clean_name, is_gene_name

logger = logging.getLogger("psysc")

_GZIP_MAGIC = b"\x1f\x8b"
#: Characters that cannot appear in a gene name of a ``.gs`` file (they are the file's separators).
_GS_FORBIDDEN_GENE = (",", ":", "\t", "\n", "\r")
_GS_FORBIDDEN_TRAIT = ("\t", "\n", "\r")
#: MAGMA z-scores are clipped to this value, as ``scdrs munge-gs`` does.
_MAX_ZSCORE = 10.0
#: Smallest positive normal double, used in place of P = 0 (underflow) and as the floor of gene P-values.
_P_FLOOR = float(np.finfo(np.float64).tiny)


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------
#: magic bytes of the compressions read (zstd: told, not read)
_MAGIC = {"gzip": _GZIP_MAGIC, "bzip2": b"BZh", "xz": b"\xfd7zXZ\x00", "zip": b"PK\x03\x04",
          "zstd": b"\x28\xb5\x2f\xfd", "ole2": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"}
#: the way from a spreadsheet to what psysc reads
_SPREADSHEET_FIX = ("save the sheet you want as CSV (in Excel or LibreOffice: Save As, CSV) and read that, or read it "
                    "in Python with pandas.read_excel(path, sheet_name=...) and pass the gene column to "
                    "psysc.gwas.read_gene_list")


def _compression(head: bytes) -> str | None:
    """The compression of a file from its first bytes (a key of :data:`_MAGIC`), or None."""
    return next((kind for kind, magic in _MAGIC.items() if head.startswith(magic)), None)


def _decompressed(raw: bytes, where: str) -> bytes:
    """``raw`` unpacked when it is gzip (or bgzip), bzip2, xz or a zip archive of one file."""
    import bz2
    import lzma
    import zipfile

    kind = _compression(raw[:8])
    if kind == "ole2":  # the container of Excel 97-2003 workbooks (and of other Office files of that time)
        raise ValueError(f"{where} is an Excel 97-2003 workbook (.xls) or another binary Office file, not a text "
                         f"table: {_SPREADSHEET_FIX}")
    if kind == "zstd":
        raise ValueError(f"{where} is compressed with zstd; decompress it first (zstd -d) or recompress it with gzip")
    try:
        if kind == "gzip":
            return gzip.decompress(raw)
        if kind == "bzip2":
            return bz2.decompress(raw)
        if kind == "xz":
            return lzma.decompress(raw)
        if kind == "zip":
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                _refuse_spreadsheet(archive, where)
                members = [m for m in archive.infolist() if not m.is_dir()]
                if len(members) != 1:
                    names = [m.filename for m in members][:5]
                    raise ValueError(f"{where} is a zip archive of {len(members)} files ({names}); unpack it and "
                                     "read the file you want")
                return archive.read(members[0])
    except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile) as err:
        raise ValueError(f"{where} could not be decompressed as {kind} ({err}); is the file complete (a download "
                         "cut short)?") from err
    return raw


def _refuse_spreadsheet(archive, where: str) -> None:
    """Refuse a zip archive that is an Excel (.xlsx) or OpenDocument (.ods) workbook, naming its sheets."""
    names = set(archive.namelist())
    if "xl/workbook.xml" in names:
        what, listing = "an Excel workbook (.xlsx)", archive.read("xl/workbook.xml")
    elif "mimetype" in names and b"opendocument.spreadsheet" in archive.read("mimetype"):
        what, listing = "an OpenDocument spreadsheet (.ods)", archive.read("content.xml") if "content.xml" in names \
            else b""
    else:
        return
    # the sheet names, by a pattern (no XML parser for a file from anywhere)
    found = re.findall(rb'<(?:sheet|table:table)\b[^>]*?\s(?:table:)?name="([^"]*)"', listing)
    sheets = [html.unescape(m.decode("utf-8", errors="replace")) for m in found]
    named = f" (sheets: {', '.join(map(repr, sheets[:10]))}{', ...' if len(sheets) > 10 else ''})" if sheets else ""
    raise ValueError(f"{where} is {what}{named}, not a text table: {_SPREADSHEET_FIX}")


def _read_text(path: str | os.PathLike) -> str:
    """Whole text of a plain or compressed file (gzip, bgzip, bzip2, xz or a one-file zip; told by the magic bytes)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {str(path)!r}; check the path")
    raw = _decompressed(path.read_bytes(), repr(str(path)))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"{str(path)!r} is not UTF-8 text ({err}); save it as UTF-8 (or gzip of UTF-8)") from err


def _read_head(path: str | os.PathLike, n_bytes: int = 1 << 16) -> str:
    """The first ``n_bytes`` (decompressed) of a plain or compressed file (:func:`_read_text`), as text.

    Undecodable bytes are replaced: enough to tell a file's kind without reading it whole.
    """
    with open(path, "rb") as fh:
        kind = _compression(fh.read(8))
    if kind not in (None, "gzip"):  # bzip2, xz, zip: read whole
        return _decompressed(Path(path).read_bytes(), repr(str(path)))[:n_bytes].decode("utf-8-sig", errors="replace")
    with gzip.open(path, "rb") if kind == "gzip" else open(path, "rb") as fh:
        return fh.read(n_bytes).decode("utf-8-sig", errors="replace")


def _sep_of(line: str) -> str | None:
    """The separator of a table from its header line.

    Tab, else comma, else semicolon (European spreadsheets), else ``None`` (whitespace).
    """
    return next((c for c in "\t,;" if c in line), None)


def _base_name(path: str | os.PathLike) -> str:
    """File name without a trailing compression suffix (``.gz``, ``.bgz``, ``.bz2``, ``.xz``, ``.zip``)."""
    name = Path(path).name
    for ext in (".gz", ".bgz", ".bz2", ".xz", ".zip"):
        if name.lower().endswith(ext) and len(name) > len(ext):
            return name[: -len(ext)]
    return name


def _to_series(trait: str, genes: list[str], weights: list[float], where: str) -> pd.Series:
    """Build a gene-set Series; a gene given twice keeps its first position and its last weight."""
    merged: dict[str, float] = {}
    for gene, w in zip(genes, weights, strict=True):
        merged[gene] = w
    n_dup = len(genes) - len(merged)
    if n_dup:
        logger.warning(
            "%s: %d duplicated gene entr%s in gene set %r; the last weight of each gene was kept",
            where,
            n_dup,
            "y" if n_dup == 1 else "ies",
            trait,
        )
    spelled: dict[str, list[str]] = {}  # one gene written twice in other ways: case, an Ensembl version suffix
    for gene in merged:
        spelled.setdefault(_ENSEMBL_ID.sub(r"\1\2\4", gene).upper(), []).append(gene)  # without the version
    twice = [names for names in spelled.values() if len(names) > 1]
    if twice:
        logger.warning(
            "%s: gene set %r names %d gene(s) in more than one spelling (case or Ensembl version), kept as separate "
            "entries: %s; map the set with psysc.gwas.to_ensembl or to_symbols to merge them", where, trait,
            len(twice), "; ".join(" / ".join(names) for names in twice[:3]),
        )
    dates = [gene for gene in merged if _SPREADSHEET_DATE.match(gene)]
    if dates:
        logger.warning("%s: gene set %r holds %d name(s) that are dates and match no gene (e.g. %s): %s", where, trait,
                       len(dates), dates[:3], SPREADSHEET_DATES)
    index = pd.Index(list(merged), dtype=object, name="gene")
    return pd.Series(np.fromiter(merged.values(), dtype=np.float64, count=len(merged)), index=index, name=trait)


def _refuse_repeated(raw: dict[str, tuple], name: str, lineno: int, where: str, what: str) -> None:
    """Refuse a set named on an earlier line too (``raw``: name -> (its text, its line)) of a one-set-per-line file."""
    if name in raw:
        raise ValueError(f"{where}, line {lineno}: {what} {name!r} already appeared on line {raw[name][1]}; give each "
                         f"{what} one line (merge or rename them)")


def _selected(names: list[str], traits: str | Iterable[str] | None, where: str, what: str) -> list[str]:
    """The ``traits`` asked for (all ``names`` for None), in that order; an error names the available ones."""
    if traits is None:
        return names
    selected = _as_trait_list(traits)
    missing = [t for t in selected if t not in set(names)]
    if missing:
        more = f" and {len(names) - 20} more" if len(names) > 20 else ""
        raise ValueError(f"{what}(s) {missing} not in {where}; available {what}s: {names[:20]}{more}")
    return selected


def _as_trait_list(traits: str | Iterable[str]) -> list[str]:
    if isinstance(traits, str):
        return [traits]
    try:
        out = list(dict.fromkeys(traits))
    except TypeError as err:
        raise ValueError(f"traits must be a trait name or a list of trait names, not {type(traits).__name__}") from err
    if not out:
        raise ValueError("traits is empty; pass None for all traits or at least one trait name")
    bad = [t for t in out if not isinstance(t, str)]
    if bad:
        raise ValueError(f"trait names must be strings; got {bad[:5]}")
    return out


# --------------------------------------------------------------------------------------------------
# scDRS .gs
# --------------------------------------------------------------------------------------------------
def _parse_geneset(trait: str, text: str, lineno: int, where: str) -> pd.Series:
    tokens = [tok.strip() for tok in text.split(",")]
    tokens = [tok for tok in tokens if tok]
    if not tokens:
        raise ValueError(
            f"{where}, line {lineno}: gene set {trait!r} is empty; give at least one gene or remove the line"
        )
    spaced = next((tok for tok in tokens if len(tok.partition(":")[0].split()) > 1), None)
    if spaced is not None:  # 'GENE 2.5' or 'GENE1 GENE2': gene names hold no white space
        raise ValueError(
            f"{where}, line {lineno}: entry {spaced!r} of gene set {trait!r} holds white space, which no gene name "
            "does; separate the genes with commas and write a weight after a colon: 'GENE1:2.5,GENE2:1.7' (or "
            "'GENE1,GENE2' without weights)"
        )
    n_colon = [tok.count(":") for tok in tokens]
    if any(c > 1 for c in n_colon):
        bad = tokens[next(i for i, c in enumerate(n_colon) if c > 1)]
        raise ValueError(
            f"{where}, line {lineno}: entry {bad!r} of gene set {trait!r} has more than one ':'; "
            "write each gene as 'gene:weight' (gene names cannot contain ':')"
        )
    n_weighted = sum(n_colon)
    if n_weighted == 0:
        return _to_series(trait, tokens, [1.0] * len(tokens), where)
    if n_weighted != len(tokens):
        first_bare = next(tok for tok, c in zip(tokens, n_colon, strict=True) if c == 0)
        raise ValueError(
            f"{where}, line {lineno}: gene set {trait!r} mixes weighted ('gene:weight') and unweighted "
            f"entries (e.g. {first_bare!r}); use 'gene:weight' for every gene or bare gene names for all"
        )
    genes, weights = [], []
    for tok in tokens:
        gene, _, w = tok.partition(":")
        gene, w = gene.strip(), w.strip()
        if not gene:
            raise ValueError(f"{where}, line {lineno}: entry {tok!r} of gene set {trait!r} has no gene name")
        try:
            value = float(w)
        except ValueError:
            raise ValueError(
                f"{where}, line {lineno}: weight {w!r} of gene {gene!r} in gene set {trait!r} is not a number; "
                "write weights as decimal numbers (e.g. 'GENE:2.5')"
            ) from None
        if not math.isfinite(value):
            raise ValueError(
                f"{where}, line {lineno}: weight of gene {gene!r} in gene set {trait!r} is {w!r}; "
                "weights must be finite numbers"
            )
        genes.append(gene)
        weights.append(value)
    return _to_series(trait, genes, weights, where)


def read_gs(path: str | os.PathLike, *, traits: str | Iterable[str] | None = None) -> dict[str, pd.Series]:
    r"""Read an scDRS gene-set (``.gs``) file.

    The file is tab-separated with the header ``TRAIT<TAB>GENESET`` and one trait per line. The
    ``GENESET`` field is either weighted, ``g1:w1,g2:w2,...``, or unweighted, ``g1,g2,...`` (every
    weight is then 1.0). Gzip-compressed files (``.gs.gz``) are read transparently.

    Parameters
    ----------
    path
        Path to the ``.gs`` or ``.gs.gz`` file.
    traits
        A trait name or a list of trait names to return (in that order); ``None`` returns every
        trait in file order.

    Returns
    -------
    dict[str, pandas.Series]
        Trait -> Series indexed by gene (``index.name == "gene"``) with float64 weights, genes in
        file order.

    Raises
    ------
    ValueError
        If the header is missing, a line does not have two tab-separated fields, a trait appears
        twice, a line mixes weighted and unweighted genes, a weight is not a finite number, or a
        requested trait is not in the file (the message lists the available ones).

    Notes
    -----
    A gene listed twice in one line keeps its first position and its last weight (as
    ``scdrs.util.load_gs`` does); the number of such duplicates is logged as a warning.

    Examples
    --------
    >>> import tempfile, os
    >>> import psysc
    >>> path = os.path.join(tempfile.mkdtemp(), "toy.gs")
    >>> with open(path, "w") as f:
    ...     _ = f.write("TRAIT\tGENESET\nSCZ\tDRD2:3.5,GRIN2A:2.0\nAD\tAPOE,TREM2\n")
    >>> gs = psysc.gwas.read_gs(path)
    >>> gs["SCZ"].to_dict()
    {'DRD2': 3.5, 'GRIN2A': 2.0}
    >>> gs["AD"].to_dict()
    {'APOE': 1.0, 'TREM2': 1.0}
    >>> list(psysc.gwas.read_gs(path, traits="AD"))
    ['AD']

    """
    where = str(path)
    text = _read_text(path)
    lines = text.splitlines()
    header_seen = False
    raw: dict[str, tuple[str, int]] = {}
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if not header_seen:
            if [f.strip().upper() for f in fields] != ["TRAIT", "GENESET"]:
                raise ValueError(
                    f"{where}: the first line must be the header 'TRAIT<TAB>GENESET', found {line[:60]!r}; "
                    "add that header line"
                )
            header_seen = True
            continue
        if len(fields) != 2:
            raise ValueError(
                f"{where}, line {lineno}: expected 2 tab-separated fields (TRAIT, GENESET), found {len(fields)}; "
                "separate the trait from its gene set with one tab and use commas between genes"
            )
        trait = fields[0].strip()
        if not trait:
            raise ValueError(f"{where}, line {lineno}: empty trait name; name the trait in the first column")
        _refuse_repeated(raw, trait, lineno, where, "trait")
        raw[trait] = (fields[1], lineno)
    if not header_seen:
        raise ValueError(
            f"{where}: the file is empty; a .gs file needs the header 'TRAIT<TAB>GENESET' and one line per trait"
        )
    if not raw:
        raise ValueError(f"{where}: the file has a header but no trait; add lines 'TRAIT<TAB>GENESET'")

    selected = _selected(list(raw), traits, where, "trait")
    out = {trait: _parse_geneset(trait, raw[trait][0], raw[trait][1], where) for trait in selected}
    logger.info("read %d gene set(s) from %s", len(out), where)
    return out


def read_gmt(path: str | os.PathLike, *, traits: str | Iterable[str] | None = None) -> dict[str, pd.Series]:
    r"""Read a GMT gene-set file (MSigDB, GSEA, Enrichr, SynGO exports): one gene set per line.

    Each line is tab-separated: the set's name, a description (a URL or ``NA`` in MSigDB's files; not used), then
    its genes, each in a field of its own. An entry ``GENE,w`` (the weighted libraries of Enrichr) gives the gene
    the weight ``w``; every other gene has weight 1.0. Empty fields (trailing tabs) and blank lines are skipped,
    lines starting with ``#`` are comments, and compressed files (``.gmt.gz``) are read transparently.

    Parameters
    ----------
    path
        Path to the ``.gmt`` file.
    traits
        A set name or a list of set names to return (in that order); ``None`` returns every set in file order.

    Returns
    -------
    dict[str, pandas.Series]
        Set name -> Series indexed by gene (``index.name == "gene"``) with float64 weights, genes in file order.
        A gene listed twice in a set keeps its first position and its last weight (counted in the log).

    Raises
    ------
    ValueError
        If a line has fewer than three fields (name, description, a gene), a set name appears twice, a weight is
        not a finite number, or a requested set is not in the file (the message lists the available ones).

    Examples
    --------
    >>> import tempfile, os
    >>> import psysc
    >>> path = os.path.join(tempfile.mkdtemp(), "synapse.gmt")
    >>> with open(path, "w") as f:
    ...     _ = f.write("POSTSYNAPTIC_DENSITY\tNA\tDLG4\tSHANK3\tGRIN2A\nWEIGHTED\thttp://x\tDRD2,2.5\tAPOE,1\n")
    >>> gs = psysc.gwas.read_gmt(path)
    >>> gs["POSTSYNAPTIC_DENSITY"].to_dict()
    {'DLG4': 1.0, 'SHANK3': 1.0, 'GRIN2A': 1.0}
    >>> gs["WEIGHTED"].to_dict()
    {'DRD2': 2.5, 'APOE': 1.0}

    """
    where = str(path)
    raw: dict[str, tuple[list[str], int]] = {}
    for lineno, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.rstrip("\r\n").split("\t")
        name = fields[0].strip()
        entries = [f.strip() for f in fields[2:] if f.strip()]
        if len(fields) < 3 or not name:
            raise ValueError(
                f"{where}, line {lineno}: a GMT line is NAME<TAB>DESCRIPTION<TAB>GENE<TAB>GENE...; found "
                f"{len(fields)} tab-separated field(s) in {line[:60]!r}"
                + ("; for one gene per line use psysc.gwas.read_gene_list" if len(fields) == 1 else "")
            )
        _refuse_repeated(raw, name, lineno, where, "gene set")
        raw[name] = (entries, lineno)
    if not raw:
        raise ValueError(f"{where}: no gene set; a GMT file has one line per set, NAME<TAB>DESCRIPTION<TAB>GENE...")
    selected = _selected(list(raw), traits, where, "gene set")
    out = {}
    for name in selected:
        entries, lineno = raw[name]
        if not entries:
            raise ValueError(f"{where}, line {lineno}: gene set {name!r} lists no gene")
        genes, weights = [], []
        for entry in entries:
            gene, comma, w = entry.rpartition(",") if "," in entry else (entry, "", "")
            try:
                weight = float(w) if comma else 1.0
            except ValueError:
                raise ValueError(f"{where}, line {lineno}: entry {entry!r} of gene set {name!r} is not GENE or "
                                 "GENE,weight (weight a number)") from None
            genes.append(gene.strip())
            weights.append(weight)
        out[name] = _listed_gene_set(name, genes, weights, f"{where}, line {lineno}")
    logger.info("read %d gene set(s) from %s", len(out), where)
    return out


def _check_gene_set(trait, genes) -> pd.Series:
    """Validate one entry of a gene-set dict for writing; return it as a float64 Series."""
    if not isinstance(trait, str) or not trait.strip():
        raise ValueError(f"trait names must be non-empty strings, got {trait!r}")
    if trait != trait.strip() or any(c in trait for c in _GS_FORBIDDEN_TRAIT):
        raise ValueError(f"trait name {trait!r} contains a tab, a newline or surrounding spaces; rename the trait")
    if not isinstance(genes, pd.Series):
        raise ValueError(
            f"gene set {trait!r} is a {type(genes).__name__}; gene sets must be pandas Series indexed by gene "
            "with weights as values, e.g. pd.Series(1.0, index=genes)"
        )
    if len(genes) == 0:
        raise ValueError(f"gene set {trait!r} is empty; drop it before writing")
    names = [str(g) for g in genes.index]
    for g in names:
        if not g or g != g.strip() or any(c in g for c in _GS_FORBIDDEN_GENE):
            raise ValueError(
                f"gene {g!r} of gene set {trait!r} is empty, has surrounding spaces or contains one of ', : tab "
                "newline'; clean or rename the gene"
            )
    if len(set(names)) != len(names):
        dup = pd.Index(names)[pd.Index(names).duplicated()].unique().tolist()
        raise ValueError(
            f"gene set {trait!r} has duplicated genes {dup[:10]}; aggregate them first, e.g. s.groupby(level=0).max()"
        )
    try:
        values = pd.to_numeric(genes, errors="raise").to_numpy(dtype=np.float64)
    except (ValueError, TypeError) as err:
        raise ValueError(f"weights of gene set {trait!r} must be numeric ({err}); convert them to numbers") from err
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(
            f"gene set {trait!r} has {int(bad.sum())} non-finite weight(s) (e.g. gene {names[int(np.argmax(bad))]!r}); "
            "drop those genes or give them a finite weight"
        )
    return pd.Series(values, index=pd.Index(names, dtype=object))


def write_gs(gene_sets: Mapping[str, pd.Series], path: str | os.PathLike) -> None:
    r"""Write gene sets to an scDRS ``.gs`` file (weighted form).

    Each trait is written as one line ``TRAIT<TAB>g1:w1,g2:w2,...`` under the header
    ``TRAIT<TAB>GENESET``. Weights are written with Python's shortest round-trip representation,
    so :func:`read_gs` and ``scdrs.util.load_gs`` read back exactly the same genes and weights. A path
    ending in ``.gz`` is gzip-compressed.

    Parameters
    ----------
    gene_sets
        Trait -> Series indexed by gene with numeric weights (psysc's gene-set contract).
    path
        Output path (``.gs`` or ``.gs.gz``); an existing file is overwritten.

    Raises
    ------
    ValueError
        If ``gene_sets`` is empty, a gene set is not a Series, is empty, has duplicated genes,
        non-finite weights, or a gene or trait name containing a separator of the format.

    Examples
    --------
    >>> import tempfile, os
    >>> import pandas as pd
    >>> import psysc
    >>> path = os.path.join(tempfile.mkdtemp(), "toy.gs")
    >>> psysc.gwas.write_gs({"SCZ": pd.Series([3.5, 2.0], index=["DRD2", "GRIN2A"])}, path)
    >>> open(path).read().splitlines()
    ['TRAIT\tGENESET', 'SCZ\tDRD2:3.5,GRIN2A:2.0']
    >>> psysc.gwas.read_gs(path)["SCZ"].to_dict()
    {'DRD2': 3.5, 'GRIN2A': 2.0}

    """
    if not isinstance(gene_sets, Mapping):
        raise ValueError(f"gene_sets must be a dict trait -> pandas Series, not {type(gene_sets).__name__}")
    if not gene_sets:
        raise ValueError("gene_sets is empty; nothing to write")
    out_lines = ["TRAIT\tGENESET"]
    for trait, genes in gene_sets.items():
        s = _check_gene_set(trait, genes)
        body = ",".join(f"{g}:{float(w)!r}" for g, w in zip(s.index, s.to_numpy(), strict=True))
        out_lines.append(f"{trait}\t{body}")
    data = ("\n".join(out_lines) + "\n").encode("utf-8")
    path = Path(path)
    if path.name.lower().endswith(".gz"):
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
            gz.write(data)
        data = buf.getvalue()
    path.write_bytes(data)
    logger.info("wrote %d gene set(s) to %s", len(gene_sets), path)


# --------------------------------------------------------------------------------------------------
# MAGMA
# --------------------------------------------------------------------------------------------------
def _bh_n_significant(pvals: np.ndarray, alpha: float) -> int:
    """Number of discoveries of the Benjamini-Hochberg procedure at level ``alpha``."""
    m = len(pvals)
    if m == 0:
        return 0
    p_sorted = np.sort(pvals)
    passed = np.nonzero(p_sorted <= np.arange(1, m + 1) / m * alpha)[0]  # statsmodels' threshold, to the bit
    return int(passed[-1] + 1) if len(passed) else 0


def _floor_zero_p(p: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Gene P-values with P = 0 set to the smallest normal double, with a warning; and the key that ranks them.

    P = 0 is an underflow, as read_sumstats takes it: the most significant genes, so they rank before every P the
    file writes, also a subnormal one such as 1e-320 (rank key -1).
    """
    zero = p == 0
    if zero.any():
        logger.warning("%s: %d gene(s) have P = 0 (numerical underflow), taken as %.3g and ranked first", where,
                       int(zero.sum()), _P_FLOOR)
        return np.where(zero, _P_FLOOR, p), np.where(zero, -1.0, p)
    return p, p


def _check_selection(n_top, fdr, fwer, weight) -> str:
    """Check the gene-selection options of the MAGMA-style readers; returns the weight option (default filled)."""
    if n_top is not None and (isinstance(n_top, bool) or not isinstance(n_top, int | np.integer) or n_top < 1):
        raise ValueError(f"n_top must be a positive integer or None (all genes), got {n_top!r}")
    for name, level in (("fdr", fdr), ("fwer", fwer)):
        if level is not None and (isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level <= 1):
            raise ValueError(f"{name} must be a number in (0, 1] or None, got {level!r}")
    if fdr is not None and fwer is not None:
        raise ValueError("give at most one of fdr= and fwer=")
    if weight is None:
        weight = "zstat" if n_top is None else "zscore"
    if weight not in ("zscore", "zstat", "uniform"):
        raise ValueError(f"weight must be 'zscore', 'zstat' or 'uniform', got {weight!r}")
    return weight


def _select_top(rank_key: np.ndarray, p: np.ndarray, n_top, fdr, fwer, where: str) -> np.ndarray:
    """Positions of the selected genes, most significant first (``scdrs munge-gs``'s selection).

    ``rank_key`` orders the genes (smallest first; ties in input order), ``p`` are their P-values for the
    FDR / FWER count. Without ``fdr`` and ``fwer`` the ``n_top`` first are kept (all with ``n_top=None``); with
    one of them, the number of discoveries capped to ``[min(100, n_top), n_top]``.
    """
    n_genes = len(p)
    n_top = n_genes if n_top is None else int(n_top)
    if fdr is None and fwer is None:
        n_sel = n_top
        if n_genes < n_top:
            logger.info("%s has only %d gene(s); all are kept (n_top=%d)", where, n_genes, n_top)
    else:
        if fdr is not None:
            n_sig, rule = _bh_n_significant(p, fdr), f"FDR < {fdr:g}"
        else:
            n_sig, rule = int((p <= fwer / n_genes).sum()), f"FWER < {fwer:g} (Bonferroni)"
        n_sel = max(min(n_sig, n_top), min(100, n_top))
        logger.info("%s: %d gene(s) pass %s; keeping %d", where, n_sig, rule, min(n_sel, n_genes))
    return np.argsort(rank_key, kind="stable")[: min(n_sel, n_genes)]


def _gene_weights(z: np.ndarray, weight: str, where: str, what: str) -> np.ndarray:
    """Weights of selected genes from their z-scores ``z``: clipped to 10, as they are, or 1.0."""
    if weight == "zscore":
        weights = np.minimum(z, _MAX_ZSCORE)
        n_neg = int((weights < 0).sum())
        if n_neg:
            logger.info("%s: %d selected gene(s) have a negative %s (weights < 0)", where, n_neg, what)
        return weights
    if weight == "zstat":
        return np.asarray(z, dtype=np.float64)
    return np.ones(len(z), dtype=np.float64)


def _magma_trait_name(path: str | os.PathLike) -> str:
    name = _base_name(path)
    for suffix in (".genes.out", ".genes.raw", ".out", ".raw"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return Path(name).stem or name


def read_magma(
    path: str | os.PathLike,
    *,
    n_top: int | None = 1000,
    fdr: float | None = None,
    fwer: float | None = None,
    weight: str | None = None,
    trait: str | None = None,
    table: bool = False,
    gene_loc=None,
    gene_column: str = "GENE",
) -> dict[str, pd.Series] | dict[str, pd.DataFrame]:
    r"""Read a MAGMA gene-level result (``.genes.out`` or ``.genes.raw``) as a weighted gene set.

    Genes are selected as ``scdrs munge-gs`` does: the ``n_top`` genes with the smallest MAGMA
    P-value or, when ``fdr`` (or ``fwer``) is given, the genes passing a Benjamini-Hochberg FDR (Bonferroni
    FWER) threshold, their number capped to ``[min(100, n_top), n_top]``. The weight of a gene is its MAGMA
    ``ZSTAT`` clipped to at most 10 (``weight="zscore"``) or 1.0 (``weight="uniform"``). Tables of many traits
    (the z-score and p-value files of ``scdrs munge-gs``) are read by :func:`read_gene_stats`.

    Parameters
    ----------
    path
        MAGMA ``.genes.out`` file (whitespace-separated, header with at least ``GENE``, ``ZSTAT``
        and ``P``; usually ``GENE CHR START STOP NSNPS NPARAM N ZSTAT P``), or MAGMA's ``.genes.raw`` file
        (recognised by its ``#`` header lines): ``GENE CHR START STOP NSNPS NPARAM`` and the ``# COVAR``
        columns (``NSAMP MAC``: sample size, mean minor allele count), ``ZSTAT``, then the correlations of the
        gene's z-score with those of the genes before it on its chromosome (the last value is the gene just
        before). P is ``1 - Phi(ZSTAT)``, as MAGMA's ``ZSTAT = Phi^-1(1 - P)``. May be gzip-compressed.
    n_top
        Maximum number of genes kept (the number kept without ``fdr``); ``None`` keeps every gene
        (the genome-wide input of :func:`psysc.tl.celltype_enrichment`, as seismic and MAGMA's
        gene-property analysis use).
    fdr
        Optional FDR level in (0, 1]; the number of genes is then the number of BH discoveries,
        capped to ``[min(100, n_top), n_top]``.
    fwer
        Optional family-wise error rate in (0, 1], instead of ``fdr``: the number of genes is the number with
        ``P * n_genes <= fwer`` (Bonferroni), capped in the same way.
    weight
        ``"zscore"`` (MAGMA z-score clipped to 10, as scDRS), ``"zstat"`` (the z-score as is) or
        ``"uniform"`` (1.0 for every gene). Default: ``"zscore"`` for a selection of top genes (scDRS's gene
        sets), ``"zstat"`` with ``n_top=None`` (the genome-wide input that seismic and MAGMA's gene-property
        analysis regress as is).
    trait
        Name of the trait; by default the file name without ``.genes.out`` or ``.genes.raw`` (or ``.out``).
    table
        Return the selected rows as a table (``GENE`` as index; ``CHR``, ``START``, ``STOP``,
        ``NSNPS``, ``NPARAM``, ``N``, ``MAC`` where present, ``ZSTAT`` as weighted, ``P``) instead of a
        Series: gene size, gene density, sample size, inverse minor allele count and gene length then enter
        :func:`psysc.tl.celltype_enrichment` and :func:`psysc.tl.disorder_contrast` as covariates. From a
        ``.genes.raw`` file the table also carries the gene-gene correlations of the selected genes in
        ``attrs["gene_corr"]`` (an object with ``genes``, in the file's order, and a symmetric sparse ``matrix``
        with unit diagonal),
        with which :func:`psysc.tl.celltype_enrichment` fits MAGMA's models by generalised least squares.
    gene_loc
        The MAGMA ``gene.loc`` file the analysis used (``GENE CHR START STOP STRAND NAME``; a path or a
        DataFrame, as in :func:`psysc.gwas.sumstats_to_genes`): genes are then named by its ``NAME`` column
        (gene symbols for NCBI's ``NCBI37.3.gene.loc``) instead of MAGMA's ``GENE`` IDs (Entrez IDs). Genes
        without a name are left out, and of genes with the same name the one with the smallest P is kept; both
        are counted in the log.
    gene_column
        The column that names the genes: ``GENE`` (MAGMA's gene IDs), or another column of the file, such as the
        ``SYMBOL`` column that FUMA adds to its ``magma.genes.out`` (whose ``GENE`` holds Ensembl IDs). Rows
        without a name, and rows whose name a gene of smaller P has, are left out as with ``gene_loc``.

    Returns
    -------
    dict[str, pandas.Series]
        ``{trait: Series}`` indexed by gene (as strings, e.g. Entrez IDs), sorted by increasing P
        (``{trait: DataFrame}`` with ``table=True``).

    Raises
    ------
    ValueError
        If a required column is missing, a ``ZSTAT`` or ``P`` value is missing or not numeric, a
        P-value is outside [0, 1] (the message gives the line; P = 0, an underflow, is taken as the smallest
        positive double with a warning), genes are duplicated, or an option is invalid.

    Notes
    -----
    MAGMA usually reports Entrez gene IDs; they are kept as strings. When every gene is numeric,
    an info message reminds that they must be mapped to the symbols or Ensembl IDs of the
    expression data before scoring.

    Examples
    --------
    >>> import tempfile, os
    >>> import psysc
    >>> path = os.path.join(tempfile.mkdtemp(), "AD.genes.out")
    >>> with open(path, "w") as f:
    ...     _ = f.write(
    ...         "GENE CHR START STOP NSNPS NPARAM N ZSTAT P\n"
    ...         "348 19 45409011 45412650 20 5 74046 12.1 5.1e-34\n"
    ...         "54209 6 41126244 41130924 15 4 74046 4.2 1.3e-05\n"
    ...         "1191 8 27454434 27472548 30 6 74046 2.9 1.9e-03\n"
    ...     )
    >>> gs = psysc.gwas.read_magma(path, n_top=2)
    >>> gs["AD"].to_dict()
    {'348': 10.0, '54209': 4.2}

    """
    weight = _check_selection(n_top, fdr, fwer, weight)
    where = str(path)
    if not isinstance(gene_column, str) or not gene_column.strip():
        raise ValueError(f"gene_column must be the name of a column, not {gene_column!r}")
    gene_column = gene_column.strip()
    gene_col = gene_column.upper()  # the file's columns are read in upper case
    if gene_loc is not None and gene_col != "GENE":
        raise ValueError(f"gene_loc and gene_column={gene_column!r} both name the genes; pass one of them")
    if trait is None:
        trait = _magma_trait_name(path)
    if not isinstance(trait, str) or not trait:
        raise ValueError(f"trait must be a non-empty string, got {trait!r}")

    text = _read_text(path)
    if not text.strip():
        raise ValueError(f"{where} is empty; expected a MAGMA .genes.out table")
    corr = None
    lines = text.splitlines()
    first = next((ln.split() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")), [""])
    if first[0].upper() in ("VARIABLE", "SET", "COVAR") and "NGENES" in (f.upper() for f in first):
        raise ValueError(
            f"{where} is a MAGMA gene-set or gene-property analysis result (.gsa.out/.gpa.out: {' '.join(first[:4])} "
            "...), not gene-level results: read_magma reads the .genes.out (or .genes.raw) that MAGMA's gene analysis "
            "writes (magma --bfile ... --gene-annot ... --pval ... --out <prefix>)"
        )
    # a .genes.raw file: '# VERSION = ...' / '# COVAR = ...' lines, then rows without a header; a .genes.out has a
    # header (GENE ...), after comment lines when someone added them
    if text.lstrip().startswith("#") and first[0].upper() != "GENE":
        df, corr = _parse_genes_raw(text, where)
    else:
        body = "\n".join(ln for ln in lines if not ln.lstrip().startswith("#"))
        try:
            df = pd.read_csv(io.StringIO(body), sep=r"\s+", dtype=str, keep_default_na=False)
        except pd.errors.ParserError as err:  # a row with more fields than the header
            raise ValueError(
                f"{where} is not a whitespace-separated MAGMA .genes.out table ({err}); is it another format (an "
                "scDRS gene x trait z-score or p-value table is read by psysc.gwas.read_gene_stats)? Fix the row or "
                "rewrite the file with one row per gene"
            ) from err
        upper = [str(c).upper() for c in df.columns]
        if len(set(upper)) == len(upper):  # MAGMA writes upper case; a rewritten file may not
            df.columns = upper
    for combined in ("P_MULTI", "P_JOINT"):  # MAGMA's multi-model output: the combined P of the models
        if "P" not in df.columns and combined in df.columns:
            df["P"] = df[combined]
            logger.info("%s: MAGMA multi-model output, P read from %s", where, combined)
    required = ["GENE", "ZSTAT", "P"]
    missing = [c for c in required if c not in df.columns]
    if missing:
        commas = len(df.columns) == 1 and "," in str(df.columns[0])
        raise ValueError(
            f"{where}: column(s) {missing} missing (found {list(df.columns)}); "
            + ("the file looks comma-separated, and MAGMA writes whitespace-separated tables: rewrite it with tabs or "
               "spaces between the fields; " if commas else "")
            + "pass a MAGMA .genes.out file "
            "whose header is 'GENE CHR START STOP NSNPS NPARAM N ZSTAT P' (a table with one column per trait, as "
            "scdrs munge-gs reads, is read by psysc.gwas.read_gene_stats)"
        )
    if gene_col not in df.columns:
        raise ValueError(f"{where}: gene_column={gene_column!r} is not a column; the columns are {list(df.columns)}")
    if len(df) == 0:
        raise ValueError(f"{where} has a header but no gene; check that MAGMA finished")
    df["_row"] = np.arange(len(df))  # position in the file (the order of the correlation matrix)
    genes = df["GENE"].str.strip()
    line_of = df["_line"].to_numpy() if "_line" in df.columns else np.arange(len(df)) + 2  # a row's line in the file
    z = pd.to_numeric(df["ZSTAT"], errors="coerce").to_numpy(dtype=np.float64)
    p = pd.to_numeric(df["P"], errors="coerce").to_numpy(dtype=np.float64)
    for name, values in (("ZSTAT", z), ("P", p)):
        bad = np.nonzero(~np.isfinite(values))[0]
        if len(bad):
            i = int(bad[0])
            raise ValueError(
                f"{where}, line {line_of[i]} (gene {genes.iloc[i]!r}): {name} is {df[name].iloc[i]!r}; "
                f"{len(bad)} row(s) have a missing or non-numeric {name}. Remove those genes from the file"
            )
    bad = np.nonzero((p < 0) | (p > 1))[0]
    if len(bad):
        i = int(bad[0])
        raise ValueError(
            f"{where}, line {line_of[i]} (gene {genes.iloc[i]!r}): P = {df['P'].iloc[i]} is outside [0, 1]; "
            f"{len(bad)} row(s) affected. Is the P column really a MAGMA P-value?"
        )
    p, rank_key = _floor_zero_p(p, where)
    empty = genes == ""
    if empty.any():
        raise ValueError(f"{where}, line {line_of[int(np.argmax(empty.to_numpy()))]}: empty gene name; fix the GENE "
                         "column")
    if genes.duplicated().any():
        dup = genes[genes.duplicated()].unique().tolist()
        lines = line_of[(genes == dup[0]).to_numpy()].tolist()
        raise ValueError(f"{where}: duplicated genes {dup[:10]} ({dup[0]!r} on lines {lines}); keep one row per gene")
    if gene_loc is not None:
        df, genes, z, p, rank_key = _name_genes(df, genes, z, p, rank_key, gene_loc, where)
    elif gene_col != "GENE":
        df, genes, z, p, rank_key = _rename_genes(df, genes, z, p, rank_key, df[gene_col], f"its column {gene_col}",
                                                  where, f"fill in the {gene_col} column")
    symbol_column = None
    if gene_loc is None and gene_col == "GENE" and "SYMBOL" in df.columns:
        symbol_column = "SYMBOL"  # recorded: an error about gene names not matching the data names the column
        logger.info("%s: genes named by its GENE column; the file names them in a SYMBOL column too (FUMA's output): "
                    "pass gene_column='SYMBOL' to name them by it", where)

    n_genes = len(genes)
    order = _select_top(rank_key, p, n_top, fdr, fwer, where)
    n_sel = len(order)
    sel_genes = genes.to_numpy()[order].tolist()
    weights = _gene_weights(z[order], weight, where, "MAGMA z-score")
    if table:
        cols = [c for c in ("CHR", "START", "STOP", "NSNPS", "NPARAM", "N", "MAC") if c in df.columns]
        out = df.iloc[order][cols].apply(pd.to_numeric, errors="coerce")
        if "CHR" in out.columns:
            out["CHR"] = df["CHR"].iloc[order].to_numpy()
        out["ZSTAT"] = weights.astype(np.float64)
        out["P"] = p[order]
        out.index = pd.Index(sel_genes, dtype=object, name="GENE")
        out.attrs["trait"] = trait
        if symbol_column is not None:
            out.attrs["symbol_column"] = symbol_column
        if corr is not None:
            rows = df["_row"].to_numpy()[order]
            in_file = np.argsort(rows, kind="stable")  # genome order: the correlations form a band
            out.attrs["gene_corr"] = GeneCorrelations(np.asarray(sel_genes, dtype=object)[in_file],
                                                      corr[rows[in_file]][:, rows[in_file]])
        logger.info("read MAGMA gene table %r: %d of %d genes", trait, n_sel, n_genes)
        return {trait: out}
    s = pd.Series(weights.astype(np.float64), index=pd.Index(sel_genes, dtype=object, name="gene"), name=trait)
    if symbol_column is not None:
        s.attrs["symbol_column"] = symbol_column
    elif all(g.isdigit() for g in sel_genes):
        logger.info(
            "%s: the genes look like Entrez IDs; name them with the gene.loc file of the MAGMA run "
            "(read_magma(..., gene_loc=...)) to match the gene symbols of your expression data",
            where,
        )
    logger.info("read MAGMA gene set %r: %d of %d genes", trait, n_sel, n_genes)
    return {trait: s}


#: Usual headers of a gene column (lower case): a one-column table with another first line is warned about.
#: R's write.table names a vector's column "x"; biomaRt's attributes (hgnc_symbol, external_gene_name, ...) and
#: read.csv's names (gene.name) are common too.
_GENE_HEADERS = frozenset({"gene", "genes", "symbol", "symbols", "gene_symbol", "gene_symbols", "gene-symbol",
                           "gene symbol", "gene.symbol", "gene_name", "gene name", "gene.name", "genename",
                           "approved_symbol", "approved symbol", "hgnc_symbol", "hgnc symbol", "mgi_symbol",
                           "external_gene_name", "ensembl", "ensembl_id", "ensembl_gene_id", "gene_id", "gene id",
                           "entrez", "entrez_id", "entrezgene_id", "name", "id", "x"})
#: Tokens read as a missing value in gene tables (upper case).
_MISSING_TOKENS = frozenset({"", "NA", "N/A", "NAN", "NULL", "NONE", ".", "-"})
#: A gene table's lone value column named after its statistic -> the statistic.
_STAT_COLUMNS = {"Z": "zscore", "ZSCORE": "zscore", "ZSTAT": "zscore", "Z_SCORE": "zscore", "P": "pval",
                 "PVAL": "pval", "PVALUE": "pval", "P_VALUE": "pval"}


def _is_missing(values: pd.Series) -> np.ndarray:
    return values.str.strip().str.upper().isin(_MISSING_TOKENS).to_numpy()


def _split_line(line: str, sep: str | None) -> list[str]:
    if sep is None:
        return line.split()
    return [f.strip().strip('"') for f in next(csv.reader([line], delimiter=sep))]


def _parse_gene_table(text: str, where: str) -> tuple[list[str], list[str], str]:
    """A gene table's header names, its data lines and its separator (a regex for whitespace).

    Lines starting with ``#`` are comments. Tab-separated when the header has a tab, comma-separated when it has a
    comma, else whitespace. A header one field short of the rows names no gene column (as R writes tables): it is
    named ``GENE``. Empty fields after the last column (a trailing separator) are ignored.
    """
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise ValueError(f"{where} is empty; expected a table with a gene column and one column per trait")
    sep = _sep_of(lines[0])
    header = _split_line(lines[0], sep)
    while len(header) > 1 and header[-1] == "":
        header.pop()
    if len(lines) > 1:
        row = _split_line(lines[1], sep)
        while len(row) > len(header) and row[-1] == "":
            row.pop()
        if len(row) == len(header) + 1:
            header = ["GENE", *header]
            logger.info("%s: the header names no gene column (as R writes tables); the first column is the genes",
                        where)
    if len(set(header)) < len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise ValueError(f"{where}: column name(s) {dup} appear more than once in the header; name each trait once")
    return header, lines[1:], sep if sep is not None else r"\s+"


def is_magma_header(fields) -> bool:
    """Whether a table's header is a MAGMA gene-analysis output's (``NSNPS`` / ``NPARAM``, or ``ZSTAT`` and ``P``).

    A lone ``ZSTAT`` column is a gene x trait table of one trait, as :func:`read_gene_stats` reads.
    """
    fields = {str(f).strip().upper() for f in fields}
    return bool({"NSNPS", "NPARAM"} & fields) or {"ZSTAT", "P"} <= fields


def read_gene_stats(
    path: str | os.PathLike,
    *,
    stat: str | None = None,
    traits: str | Iterable[str] | None = None,
    n_top: int | None = 1000,
    fdr: float | None = None,
    fwer: float | None = None,
    weight: str | None = None,
) -> dict[str, pd.Series]:
    r"""Read a gene x trait table of gene-level z-scores or P-values as one weighted gene set per trait.

    The input of ``scdrs munge-gs`` (``--zscore-file`` / ``--pval-file``): a tab-separated table (comma-separated
    if its header has no tab; may be gzip-compressed) whose first column holds the genes (header preferably
    ``GENE``; a header without a name for it, as R writes tables, works too) and every other column one trait,
    e.g. MAGMA's ``ZSTAT`` of several GWAS side by side; lines starting with ``#`` are comments. Each trait's
    genes are selected and weighted as ``scdrs munge-gs`` and :func:`read_magma` do: genes without a value for the
    trait are left out, then the ``n_top`` most significant genes (or the FDR / FWER discoveries, capped to
    ``[min(100, n_top), n_top]``) are kept, weighted by their one-sided z-score clipped to 10 (``weight="zscore"``,
    the default with ``n_top``; with ``n_top=None`` the z-score as is, see ``weight``).

    Parameters
    ----------
    path
        The table.
    stat
        ``"zscore"`` (one-sided gene z-scores; ``P = 1 - Phi(z)``) or ``"pval"`` (gene P-values;
        ``z = Phi^-1(1 - P)``). By default, for a table of several traits, ``"pval"`` when every value lies in
        [0, 1], else ``"zscore"`` (logged). A table with one value column must say it: ``stat=``, or the column
        named ``ZSCORE`` / ``Z`` / ``ZSTAT`` or ``P`` / ``PVAL`` / ``PVALUE`` (the trait is then named after the
        file, or by ``traits``).
    traits
        The traits (column names) to read; default all, in the table's order (a trait without any value is then
        left out, with a warning).
    n_top, fdr, fwer, weight
        As in :func:`read_magma`.

    Returns
    -------
    dict[str, pandas.Series]
        ``{trait: Series}`` indexed by gene, most significant first, in the table's column order.

    Raises
    ------
    ValueError
        If the table has no trait column, a gene or a trait is listed twice, a value is not numeric, a P-value is
        outside [0, 1], a requested trait is not in the table or has no gene with a value, the statistic of a
        one-column table is not given, a table to infer has only 0s and 1s (gene memberships), or an option is
        invalid.

    Notes
    -----
    Where this differs from ``scdrs munge-gs``: traits keep the table's order (munge-gs sorts them); genes with
    equal statistics keep the table's order (munge-gs's sort leaves their order unspecified); z-score tables are
    ranked by z (munge-gs ranks by ``P = 1 - Phi(z)``, which is 0 for every z above about 38); ``P = 1`` gives a
    z-score of -8.2 (munge-gs: ``-inf``) and ``P = 0`` the smallest double (both as :func:`read_magma`); missing
    values are empty, ``NA``, ``N/A``, ``NaN``, ``NULL``, ``None``, ``.`` or ``-``; numeric gene names (Entrez IDs)
    stay as written.

    Examples
    --------
    >>> import tempfile, os
    >>> import psysc
    >>> path = os.path.join(tempfile.mkdtemp(), "zscores.tsv")
    >>> with open(path, "w") as f:
    ...     _ = f.write("GENE\tSCZ\tHEIGHT\nDRD2\t6.1\t0.2\nGRIN2A\t12.4\t-0.5\nHMGA2\t0.3\t9.8\n")
    >>> gs = psysc.gwas.read_gene_stats(path, n_top=2)
    >>> gs["SCZ"].to_dict(), gs["HEIGHT"].to_dict()
    ({'GRIN2A': 10.0, 'DRD2': 6.1}, {'HMGA2': 9.8, 'DRD2': 0.2})

    """
    from scipy import stats

    weight = _check_selection(n_top, fdr, fwer, weight)
    if stat not in (None, "zscore", "pval"):
        raise ValueError(f"stat must be 'zscore', 'pval' or None (inferred), got {stat!r}")
    from ._sumstats import SNP_TO_GENE_SET, snp_level_columns

    where = str(path)
    header, rows, sep = _parse_gene_table(_read_text(path), where)
    snp_columns = snp_level_columns(header, [_split_line(line, None if sep == r"\s+" else sep) for line in rows[:20]])
    if snp_columns:
        raise ValueError(f"{where} looks like SNP-level GWAS summary statistics (columns {snp_columns}), not a gene "
                         f"table: {SNP_TO_GENE_SET}")
    if is_magma_header(header):
        raise ValueError(f"{where} is a MAGMA gene-analysis output (columns {header}), not a gene x trait table: read "
                         "it with psysc.gwas.read_magma(path), which takes its ZSTAT as one trait's gene z-scores")
    if len(header) < 2:
        raise ValueError(
            f"{where}: one column only ({header}); expected the genes in the first column and one column per trait, "
            "tab-separated (a single trait's MAGMA .genes.out is read by psysc.gwas.read_magma)"
        )
    df = pd.read_csv(io.StringIO("\n".join(rows)), sep=sep, header=None, names=header, dtype=str,
                     keep_default_na=False, index_col=False, skipinitialspace=True)
    genes = df[header[0]].str.strip()
    missing_name = _is_missing(genes)
    if missing_name.any():
        logger.warning("%s: %d row(s) without a gene name are left out", where, int(missing_name.sum()))
        df, genes = df[~missing_name], genes[~missing_name]
    if genes.duplicated().any():
        dup = genes[genes.duplicated()].unique().tolist()
        raise ValueError(f"{where}: duplicated genes {dup[:10]}; keep one row per gene")
    columns = header[1:]
    single = None  # a lone value column named after its statistic: the trait is named after the file
    if len(columns) == 1 and columns[0].upper() in _STAT_COLUMNS:
        single = columns[0]
        if stat is None:
            stat = _STAT_COLUMNS[columns[0].upper()]
    chosen = columns if traits is None or single is not None else _as_trait_list(traits)
    unknown = [t for t in chosen if t not in columns]
    if unknown:
        raise ValueError(f"{where}: trait(s) {unknown} not in the table; its traits are {columns}")
    values = {}
    for trait in chosen:
        raw = df[trait].str.strip()
        blank = _is_missing(raw)
        v = pd.to_numeric(raw.where(~blank), errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(np.isnan(v) & ~blank | np.isinf(v))
        if len(bad):
            i = int(bad[0])
            raise ValueError(f"{where}: trait {trait!r}, gene {genes.iloc[i]!r}: {raw.iloc[i]!r} is not a finite "
                             f"number ({len(bad)} such value(s)); leave a missing value empty or NA")
        if np.isnan(v).all():
            if traits is not None:
                raise ValueError(f"{where}: trait {trait!r} has no gene with a value")
            logger.warning("%s: trait %r has no gene with a value; left out", where, trait)
            continue
        values[trait] = v
    if not values:
        raise ValueError(f"{where}: no trait has a gene with a value")
    stat_named = stat is not None  # by the caller (else inferred below, from every trait's values)
    if stat is None:
        if len(columns) == 1:
            raise ValueError(
                f"{where}: one value column ({columns[0]!r}): say whether it holds z-scores or P-values with "
                "stat='zscore' or stat='pval', or name the column ZSCORE or P (a gene list with weights is read by "
                "psysc.gwas.read_gene_list(path, column=..., weight_column=...))"
            )
        finite = np.concatenate([v[~np.isnan(v)] for v in values.values()])
        if np.isin(finite, (0.0, 1.0)).all():
            raise ValueError(
                f"{where}: every value is 0 or 1, which reads as gene memberships, not z-scores or P-values; read a "
                "gene list with psysc.gwas.read_gene_list(path, column=..., weight_column=...), or pass stat= if "
                "these are statistics"
            )
        stat = "pval" if len(finite) and finite.min() >= 0 and finite.max() <= 1 else "zscore"
        logger.info("%s: read as gene %s (pass stat= to say which)", where, "P-values" if stat == "pval" else
                    "z-scores")
    out = {}
    for trait, v in values.items():
        name = trait
        if single is not None:  # named by traits= (one name), else after the file
            name = _as_trait_list(traits)[0] if traits is not None else Path(_base_name(path)).stem
        known = ~np.isnan(v)
        if (~known).any():
            logger.info("%s: trait %r: %d gene(s) without a value left out", where, name, int((~known).sum()))
        g = genes.to_numpy()[known]
        v = v[known]
        if stat == "pval":
            if v.min() < 0 or v.max() > 1:
                raise ValueError(f"{where}: trait {name!r} has P-values outside [0, 1]; is it a z-score table "
                                 "(stat='zscore')?")
            p, key = _floor_zero_p(v, f"{where}: trait {name!r}")
            p = np.minimum(p, np.nextafter(1.0, 0.0))  # P = 1: z -8.2
            z = stats.norm.isf(p)
        else:
            if stat_named and len(v) >= 20 and v.min() >= 0 and v.max() <= 1:  # as P-values: the top z, the largest P
                logger.warning(
                    "%s: trait %r: every value lies in [0, 1], as P-values do, and is read as a z-score "
                    "(stat='zscore'): the genes of the largest values are selected, which are the least significant "
                    "if these are P-values; pass stat='pval' if they are", where, name,
                )
            z, key = v, -v  # ranked by z: P = 1 - Phi(z) underflows beyond z ~ 38
            p = stats.norm.sf(z)
        order = _select_top(key, p, n_top, fdr, fwer, f"{where} ({name})")
        weights = _gene_weights(z[order], weight, f"{where} ({name})", "z-score")
        out[name] = pd.Series(weights.astype(np.float64), index=pd.Index(g[order].tolist(), dtype=object,
                                                                         name="gene"), name=name)
        logger.info("read gene set %r: %d of %d genes", name, len(order), len(g))
    return out


def _parse_genes_raw(text: str, where: str):
    """MAGMA ``.genes.raw`` -> (string table as a ``.genes.out``'s plus ``MAC``, sparse gene-gene correlations).

    Each row is ``GENE CHR START STOP NSNPS NPARAM <COVAR columns> ZSTAT r_1 ... r_K``: ``r_K`` is the
    correlation with the gene on the line before, ``r_1`` with the gene K lines before, all on the same
    chromosome (rows of a chromosome are consecutive).
    """
    from scipy import sparse, stats

    covar = ["NSAMP", "MAC"]
    rows, line_nos, seen = [], [], set()
    ri, ci, vals = [], [], []
    chrom_prev, first_of_chrom = None, 0
    for line_no, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            key, _, value = line[1:].partition("=")
            if key.strip().upper() == "COVAR":
                covar = value.split()
            continue
        tok = line.split()
        n_fixed = 6 + len(covar) + 1
        if len(tok) < n_fixed:
            raise ValueError(f"{where}, line {line_no}: {len(tok)} fields, fewer than the {n_fixed} of a MAGMA "
                             f".genes.raw row (GENE CHR START STOP NSNPS NPARAM {' '.join(covar)} ZSTAT)")
        i = len(rows)
        if tok[1] != chrom_prev:
            if tok[1] in seen:
                raise ValueError(f"{where}, line {line_no}: chromosome {tok[1]} appears again after other "
                                 "chromosomes; a .genes.raw file lists each chromosome's genes together")
            seen.add(tok[1])
            chrom_prev, first_of_chrom = tok[1], i
        corr = tok[n_fixed:]
        k = len(corr)
        if k > i - first_of_chrom:
            raise ValueError(f"{where}, line {line_no}: {k} correlations, but only {i - first_of_chrom} genes of "
                             f"chromosome {tok[1]} before it; is this a MAGMA .genes.raw file?")
        if k:
            try:
                r = np.array(corr, dtype=np.float64)
            except ValueError as err:
                raise ValueError(f"{where}, line {line_no}: a correlation is not a number ({err})") from err
            if not (np.abs(r) <= 1).all():
                raise ValueError(f"{where}, line {line_no}: correlations must lie in [-1, 1]")
            ri.append(np.full(k, i))
            ci.append(np.arange(i - k, i))
            vals.append(r)
        rows.append(tok[:n_fixed])
        line_nos.append(line_no)
    if not rows:
        raise ValueError(f"{where} has header lines but no gene; check that MAGMA finished")
    names = ["GENE", "CHR", "START", "STOP", "NSNPS", "NPARAM", *covar, "ZSTAT"]
    df = pd.DataFrame(rows, columns=names).rename(columns={"NSAMP": "N"})
    df["_line"] = line_nos  # for the messages of read_magma
    z = pd.to_numeric(df["ZSTAT"], errors="coerce").to_numpy(dtype=np.float64)
    df["P"] = [repr(float(v)) for v in np.maximum(stats.norm.sf(z), _P_FLOOR)]
    n = len(df)
    ri = np.concatenate(ri) if ri else np.zeros(0, dtype=np.int64)
    ci = np.concatenate(ci) if ci else np.zeros(0, dtype=np.int64)
    vals = np.concatenate(vals) if vals else np.zeros(0)
    lower = sparse.coo_matrix((vals, (ri, ci)), shape=(n, n))
    corr = (lower + lower.T + sparse.identity(n, format="coo")).tocsr()
    corr.eliminate_zeros()
    logger.info("%s: MAGMA .genes.raw, %d genes, %d gene-gene correlations", where, n, int(len(vals)))
    return df, corr


def _name_genes(df, genes, z, p, rank_key, gene_loc, where):
    """The rows of a MAGMA result renamed by the NAME column of ``gene_loc`` (:func:`_rename_genes`)."""
    from ._sumstats import _read_gene_loc

    loc, loc_where = _read_gene_loc(gene_loc)
    if (loc["NAME"] == "").all():
        raise ValueError(f"{loc_where} has no NAME column (the 6th column of a MAGMA gene.loc, the gene symbol), so "
                         "it cannot name the genes")
    names = genes.map(dict(zip(loc["GENE"], loc["NAME"], strict=True)))
    return _rename_genes(df, genes, z, p, rank_key, names, loc_where, where,
                         "is it the gene.loc file of this MAGMA run?")


def _rename_genes(df, genes, z, p, rank_key, names: pd.Series, source: str, where: str, fix: str):
    """The rows of a MAGMA result renamed by ``names`` (one per row; missing or empty: unnamed), from ``source``.

    Unnamed rows are left out; of rows with one name, the one ranked first (``rank_key``, smallest P) is kept.
    """
    text = names.astype(str).str.strip()
    named = names.notna().to_numpy() & ~text.str.upper().isin(_MISSING_TOKENS).to_numpy()
    order = np.flatnonzero(named)[np.argsort(rank_key[named], kind="stable")]
    first = ~pd.Index(text.to_numpy()[order]).duplicated(keep="first")
    keep = np.sort(order[first])
    n_unnamed, n_dup = int((~named).sum()), int((~first).sum())
    level = logging.WARNING if n_unnamed > 0.1 * len(genes) else logging.INFO
    logger.log(level, "%s: genes named by %s; %d of %d have no name there and are left out, %d share a name with a "
               "gene of smaller P and are left out", where, source, n_unnamed, len(genes), n_dup)
    if len(keep) == 0:
        raise ValueError(f"no gene of {where} is named by {source}: {fix}")
    renamed = pd.Series(text.to_numpy()[keep], index=genes.index[keep])
    return df.iloc[keep], renamed, z[keep], p[keep], rank_key[keep]


# --------------------------------------------------------------------------------------------------
# plain gene lists
# --------------------------------------------------------------------------------------------------
def _unquoted(text: str) -> str:
    """``text`` without one pair of surrounding quotes (``"APOE"``, ``'APOE'``)."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1].strip()
    return text


def _several_fields(line: str) -> bool:
    """Whether a line of a one-gene-per-line file holds several fields: gene names hold no spaces or commas."""
    return len(line.split()) > 1 or any(c in line for c in ",;")


def _gene_str(g) -> str:
    """Gene name as a stripped string; missing values (None, NaN) become ''."""
    if g is None or (isinstance(g, float) and math.isnan(g)):
        return ""
    return str(g).strip()


def _split_by_set(genes: list[str], weights: list[float], sets: list[str], scol: str, where: str
                  ) -> dict[str, pd.Series]:
    """One gene set per value of ``sets`` (a table's set column), in the order of their first rows."""
    named = [_clean_name(s) is not None for s in sets]
    n_unnamed = named.count(False)
    if n_unnamed:
        logger.warning("%s: %d row(s) without a set name in column %r left out", where, n_unnamed, scol)
    rows: dict[str, list[int]] = {}
    for i, (s, ok) in enumerate(zip(sets, named, strict=True)):
        if ok:
            rows.setdefault(s, []).append(i)
    if not rows:
        raise ValueError(f"{where}: column {scol!r} names no set; check set_column")
    out = {}
    for name, idx in rows.items():
        out[name] = _listed_gene_set(name, [genes[i] for i in idx], [weights[i] for i in idx], f"{where}, set {name!r}")
    logger.info("read %d gene sets from %s (by column %r): %s", len(out), where, scol,
                ", ".join(f"{k} ({len(v)} genes)" for k, v in out.items()))
    return out


def _pick_column(df: pd.DataFrame, column: str | int, what: str, where: str) -> str:
    if isinstance(column, bool):
        raise ValueError(f"{what} must be a column name or a 0-based position, not {column!r}")
    if isinstance(column, int | np.integer):
        if not 0 <= column < df.shape[1]:
            raise ValueError(
                f"{where}: {what}={column} is out of range; the table has {df.shape[1]} column(s): {list(df.columns)}"
            )
        return df.columns[int(column)]
    if column not in df.columns:
        raise ValueError(f"{where}: {what}={column!r} is not a column; available columns: {list(df.columns)}")
    return column


def read_gene_list(
    path_or_list,
    *,
    column: str | int | None = None,
    weight_column: str | int | None = None,
    trait: str | None = None,
    set_column: str | int | None = None,
) -> dict[str, pd.Series]:
    r"""Read a gene list (one gene per line, or a column of a CSV/TSV table) as a gene set, or as several.

    Parameters
    ----------
    path_or_list
        Either a path to a text file (plain, or compressed with gzip, bzip2, xz or zip), or the genes
        themselves: a list, tuple, array, :class:`pandas.Index`, Series of gene names, a set (sorted),
        or a mapping gene -> weight. A file whose first line holds no tab, comma or semicolon (and whose
        name does not end in ``.csv``/``.tsv``/``.tab``) is read as one gene per line, without header (a
        first line that is a usual column name, such as ``gene``, ``symbol`` or R's ``x``, is taken as one, and
        so is a title of several words none of which is a gene, with a warning; another line with several fields
        is an error); quotes around a name (R's ``write.table``) are removed; lines starting with ``#`` and blank
        lines are skipped.
        Otherwise the file is read as a table with a header row, tab-separated if the first line
        contains a tab (or the name ends in ``.tsv``/``.tab``), else comma-separated, or
        semicolon-separated when the first line has semicolons and no comma (European spreadsheets).
    column
        Name or 0-based position of the gene column of a table; required when the table has more
        than one column. Given with a one-gene-per-line file, the first line is read as its header.
    weight_column
        Name or 0-based position of a numeric column with gene weights; all weights are 1.0 when
        omitted.
    trait
        Name of the gene set; defaults to the file name without extension, or ``"gene_list"`` for
        genes given directly.
    set_column
        Name or 0-based position of a column of a table that names each gene's set (a long table of
        ``gene, set`` rows, as decoupler's networks and many curated lists are): one gene set per value of the
        column, named by it, in the order of their first rows. Rows without a set name are left out (counted in
        the log). Not with ``trait``.

    Returns
    -------
    dict[str, pandas.Series]
        ``{trait: Series}`` indexed by gene (stripped of spaces) with float64 weights, in input order (one entry
        per set with ``set_column``). Empty and missing gene names (``NA``, ``nan``, ...) are dropped; a gene listed
        twice keeps its first position and its last weight (the number of duplicates is logged).

    Raises
    ------
    ValueError
        If the table has several columns and ``column`` is not given, a column is not found, a
        weight is missing or not numeric, or no gene is left.

    Examples
    --------
    >>> import psysc
    >>> psysc.gwas.read_gene_list(["SHANK3", "CHD8", "SCN2A"], trait="ASD")["ASD"].to_dict()
    {'SHANK3': 1.0, 'CHD8': 1.0, 'SCN2A': 1.0}

    A table with a weight column:

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "sfari.csv")
    >>> with open(path, "w") as f:
    ...     _ = f.write("gene-symbol,gene-score\nSHANK3,1\nCHD8,1\nNRXN1,2\n")
    >>> gs = psysc.gwas.read_gene_list(path, column="gene-symbol", weight_column="gene-score")
    >>> gs["sfari"].to_dict()
    {'SHANK3': 1.0, 'CHD8': 1.0, 'NRXN1': 2.0}

    A long table, one gene set per value of a column:

    >>> path = os.path.join(tempfile.mkdtemp(), "risk_genes.tsv")
    >>> with open(path, "w") as f:
    ...     _ = f.write("gene\tsource\nCHD8\tASD\nSCN2A\tASD\nSETD1A\tSCZ\n")
    >>> {k: list(v.index) for k, v in psysc.gwas.read_gene_list(path, column="gene", set_column="source").items()}
    {'ASD': ['CHD8', 'SCN2A'], 'SCZ': ['SETD1A']}

    """
    if trait is not None and (not isinstance(trait, str) or not trait):
        raise ValueError(f"trait must be a non-empty string, got {trait!r}")

    if set_column is not None and trait is not None:
        raise ValueError("set_column names the gene sets by its values; trait names a file's single set: pass one")
    if not isinstance(path_or_list, str | os.PathLike):
        if column is not None or weight_column is not None or set_column is not None:
            raise ValueError("column, weight_column and set_column apply to files only; pass the genes (and weights) "
                             "directly")
        where = "gene list"
        if isinstance(path_or_list, Mapping):
            genes = [_gene_str(g) for g in path_or_list]
            try:
                weights = [float(w) for w in path_or_list.values()]
            except (TypeError, ValueError) as err:
                raise ValueError(f"weights of the gene mapping must be numbers ({err})") from err
        elif isinstance(path_or_list, set | frozenset):
            genes = sorted(_gene_str(g) for g in path_or_list)
            weights = [1.0] * len(genes)
        elif isinstance(path_or_list, list | tuple | np.ndarray | pd.Index | pd.Series):
            genes = [_gene_str(g) for g in path_or_list]
            weights = [1.0] * len(genes)
        else:
            raise ValueError(f"path_or_list must be a file path or a list of genes, not {type(path_or_list).__name__}")
        trait = trait or "gene_list"
    else:
        where = str(path_or_list)
        base = _base_name(path_or_list)
        ext = Path(base).suffix.lower()
        trait = trait or (Path(base).stem if ext else base)
        text = _read_text(path_or_list)
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        if not lines:
            raise ValueError(f"{where} has no gene; add one gene per line")
        if ext == ".csv":  # European spreadsheets write ';' into their .csv files
            sep = ";" if ";" in lines[0] and "," not in lines[0] else ","
        elif ext in (".tsv", ".tab"):
            sep = "\t"
        else:
            sep = _sep_of(lines[0])
        if sep is None and column is None and weight_column is None and set_column is None:
            genes = [_unquoted(ln.strip()) for ln in lines]  # R's write.table quotes its values
            if len(genes) > 1 and genes[0].lower() in _GENE_HEADERS:
                logger.info("%s: first line %r read as a header, not a gene", where, genes[0])
                genes = genes[1:]
            elif (len(genes) > 1 and _several_fields(genes[0]) and not any(_several_fields(g) for g in genes[1:])
                  and not any(is_gene_name(w) for w in re.split(r"[\s,;]+", genes[0]) if w)):
                logger.warning("%s: first line %r names no gene (several words, none a gene name or ID); read as a "
                               "title, not a gene", where, genes[0])
                genes = genes[1:]
            spaced = [g for g in genes if _several_fields(g)]
            if spaced:  # several genes on a line, or a gene and a weight: gene names hold no spaces or commas
                raise ValueError(
                    f"{where} is read as one gene per line (its first line holds no tab, comma or semicolon), but "
                    f"{len(spaced)} line(s) hold several fields (separated by spaces, commas or semicolons), e.g. "
                    f"{spaced[0]!r}; write one gene per line, or make it a tab- or comma-separated table and pass "
                    "column= (and weight_column=)"
                )
            weights = [1.0] * len(genes)
        else:
            df = pd.read_csv(
                io.StringIO("\n".join(lines)), sep=sep or "\t", dtype=str, keep_default_na=False, skipinitialspace=True
            )
            if column is None:
                if df.shape[1] != 1:
                    raise ValueError(
                        f"{where} is a table with {df.shape[1]} columns; pass column= (the gene column), one of "
                        f"{list(df.columns)}"
                    )
                column = 0
                head = str(df.columns[0]).strip()
                (logger.info if head.lower() in _GENE_HEADERS else logger.warning)(
                    "%s: read as a one-column table: its first line %r is the header, not a gene (a file whose name "
                    "does not end in .csv/.tsv/.tab is read as one gene per line)", where, head,
                )
            gcol = _pick_column(df, column, "column", where)
            genes_s = df[gcol].astype(str).str.strip()
            if weight_column is not None:
                wcol = _pick_column(df, weight_column, "weight_column", where)
                w = pd.to_numeric(df[wcol].str.strip(), errors="coerce").to_numpy(dtype=np.float64)
                keep = genes_s.map(_clean_name).notna().to_numpy()  # rows without a gene are dropped below
                bad = np.nonzero(~np.isfinite(w) & keep)[0]
                if len(bad):
                    i = int(bad[0])
                    raise ValueError(
                        f"{where}, table row {i + 1} (gene {genes_s.iloc[i]!r}): weight {df[wcol].iloc[i]!r} in column "
                        f"{wcol!r} is not a finite number ({len(bad)} row(s)); fill in or remove those weights"
                    )
                weights = w.tolist()
            else:
                weights = [1.0] * len(genes_s)
            genes = genes_s.tolist()
            if set_column is not None:
                scol = _pick_column(df, set_column, "set_column", where)
                if scol == gcol:
                    raise ValueError(f"{where}: set_column and column are both {scol!r}; set_column names the sets")
                return _split_by_set(genes, weights, df[scol].astype(str).str.strip().tolist(), scol, where)

    s = _listed_gene_set(trait, genes, weights, where)
    logger.info("read gene list %r: %d genes", trait, len(s))
    return {trait: s}


def _listed_gene_set(trait: str, genes: list, weights: list[float], where: str) -> pd.Series:
    """A gene set from a list's names and weights: missing names (``NA``, empty, ...) dropped and counted."""
    genes = [_clean_name(g) or "" for g in genes]  # missing names as the identifier mapping reads them: "NA", ...
    n_empty = sum(1 for g in genes if not g)
    if n_empty:
        logger.info("%s: %d empty or missing gene name(s) (e.g. 'NA') dropped", where, n_empty)
        pairs = [(g, w) for g, w in zip(genes, weights, strict=True) if g]
        genes = [g for g, _ in pairs]
        weights = [w for _, w in pairs]
    if not genes:
        raise ValueError(f"{where}: no gene left after dropping empty names; check the gene column")
    if any(not math.isfinite(w) for w in weights):
        raise ValueError(f"{where}: weights must be finite numbers; fix or drop the non-finite ones")
    return _to_series(trait, genes, weights, where)
