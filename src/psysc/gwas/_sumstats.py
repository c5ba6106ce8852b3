"""GWAS summary statistics: a tolerant reader and a fast SNP-to-gene aggregation.

- :func:`read_sumstats` reads a summary-statistics file (or DataFrame) with any of the common
  column spellings into standard columns ``SNP CHR BP A1 A2 P Z BETA SE OR N``;
- :func:`sumstats_to_genes` maps SNPs to gene windows and combines their P-values into one gene
  P-value (ACAT, Sidak-corrected minimum P, or Stouffer), returning a MAGMA ``.genes.out``-like
  table;
- :func:`genes_to_gene_set` turns that table into psysc's gene-set contract, selecting genes as
  ``scdrs munge-gs`` (and :func:`psysc.gwas.read_magma`) do.
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
import warnings
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from scipy import special, stats

from .._core._cauchy import cauchy_sf, cauchy_terms
from ._genes import gene_table
from ._io import _P_FLOOR, _base_name, _check_selection, _gene_weights, _read_text, _select_top, _split_line

logger = logging.getLogger("psysc")

#: Standard output columns of :func:`read_sumstats`, in output order.
STANDARD_COLUMNS = ("SNP", "CHR", "BP", "A1", "A2", "P", "Z", "BETA", "SE", "OR", "N")

#: Recognised spellings of each standard column, compared after lower-casing and removing every
#: character that is not a letter or a digit ("P-value", "p_value" and "PVALUE" all read "pvalue").
#: Within a standard column the first spelling found wins; ``LP`` is -log10(P), used when no P.
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "SNP": (
        "snp",
        "rsid",
        "rsids",
        "markername",
        "markerid",  # SAIGE
        "snpid",
        "rsnumber",
        "rs",
        "snpname",
        "marker",
        "variantid",
        "variant",
        "id",
        "rsidhg19",
        "rsidhg38",
    ),
    "CHR": (
        "chr",
        "chrom",
        "chromosome",
        "chromosomename",
        "chrname",
        "chrid",
        "hg38chr",
        "chrb38",
        "hg19chr",
        "chrb37",
    ),
    "BP": (
        "bp",
        "pos",
        "position",
        "basepairlocation",
        "basepair",
        "bppos",
        # both builds' columns in one file: GRCh38, the build of the bundled gene table, first
        "posb38",
        "posgrch38",
        "poshg38",
        "bphg38",
        "bpb38",
        "bpgrch38",
        "posb37",
        "posgrch37",
        "poshg19",
        "bphg19",
        "bpb37",
        "bpgrch37",
        "chrpos",
        "physicalposition",
        "genpos",  # regenie
    ),
    "A1": (
        "a1",
        "effectallele",
        "allele1",
        "alt",
        "ea",
        "testedallele",
        "effallele",
        "riskallele",
        "incallele",
        "altallele",
        "codedallele",
        "a1effect",
    ),
    "A2": (
        "a2",
        "otherallele",
        "noneffectallele",
        "allele2",
        "ref",
        "nea",
        "refallele",
        "otherallele",
        "noncodedallele",
        "a2other",
        "allele0",  # regenie, BOLT-LMM (ALLELE1 is their effect allele)
    ),
    "P": (
        "p",
        "pval",
        "pvalue",
        "pvalues",
        "pvals",
        "pvalgc",
        "pgc",
        "pbolt",
        "pboltlmm",
        "pboltlmminf",
        "pvaluegc",
        "pdl",
        "pmeta",
    ),
    "LP": (
        "lp",
        "log10p",
        "mlog10p",
        "neglog10p",
        "neglog10pval",
        "neglog10pvalue",
        "minuslog10p",
        "minuslog10pval",
        "mlogp",
        "logp10",
    ),
    "Z": ("z", "zscore", "zstat", "zstatistic", "zscores", "zval", "zvalue"),
    "BETA": ("beta", "b", "effect", "logor", "effects", "betas", "effectsize", "es", "lnor", "logodds"),
    "SE": ("se", "stderr", "standarderror", "sebeta", "betase", "stderror", "selogor", "lnorse", "seor", "logorse",
           "stderrlogor"),
    "OR": ("or", "oddsratio", "ors"),
    "N": (
        "n",
        "ntotal",
        "neff",
        "samplesize",
        "nsum",
        "totaln",
        "nsample",
        "nsamples",
        "nobs",
        "neffective",
        "totalsamplesize",
        "weight",
        "obsct",
    ),
}
#: Internal standard names that ``columns=`` may target (LP is read and turned into P).
_TARGETS = (*STANDARD_COLUMNS, "LP")

#: Cell values read as missing (compared lower-case, stripped).
_MISSING = frozenset({"", "na", "nan", "n/a", "null", "none", ".", "-", "#n/a", "nil"})

_MISSING_SPELLINGS = frozenset(
    {x for m in _MISSING for x in (m, m.upper(), m.capitalize())} | {"NaN", "N/A", "#N/A", " "}
)
_NUMERIC = ("BP", "P", "LP", "Z", "BETA", "SE", "OR", "N")

#: Chromosome codes used internally (sorting and interval keys).
_CHROM_ORDER = tuple(str(i) for i in range(1, 23)) + ("X", "Y", "MT")
_CHROM_CODE = {c: i + 1 for i, c in enumerate(_CHROM_ORDER)}
_KEY_SHIFT = np.int64(1) << np.int64(32)  # chromosome code * 2**32 + position: one sortable int64 key

_BUILDS = {
    "grch38": "GRCh38",
    "hg38": "GRCh38",
    "b38": "GRCh38",
    "38": "GRCh38",
    "grch37": "GRCh37",
    "hg19": "GRCh37",
    "b37": "GRCh37",
    "37": "GRCh37",
}
_METHODS = ("acat", "minp", "stouffer")
#: keys of a '##key=value' meta line that state the genome build (compared as _norm_name gives them)
_BUILD_KEYS = frozenset({"genomebuild", "build", "assembly", "genomeassembly", "referencebuild"})


# --------------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------------
def _norm_name(name) -> str:
    """Column name reduced to lower-case letters and digits (``'#CHROM'`` -> ``'chrom'``)."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _chrom_spelling(value) -> str:
    """A chromosome name lower-cased, without white space, ``chr`` prefix or ``.0`` suffix ('chr1.0' -> '1')."""
    s = str(value).strip().lower()
    if s.startswith("chr"):
        s = s[3:]
    if s.endswith(".0") and s[:-2].isdigit():
        s = s[:-2]
    return s


def _is_unplaced(value) -> bool:
    """Chromosome 0 (any spelling :func:`_chrom_spelling` reads): PLINK's code for variants of unknown position."""
    s = _chrom_spelling(value)
    return s.isdigit() and int(s) == 0


#: contigs that are not chromosomes, in GRCh37/GRCh38 spellings (after :func:`_chrom_spelling`): alternate
#: haplotypes and patches (6_ssto_hap7, 6_GL000250v2_alt, HSCHR6_MHC_COX), unlocalised and unplaced scaffolds
#: (1_KI270706v1_random, Un_gl000220, GL000192.1, KI270728.1), decoys (hs37d5, EBV)
_OTHER_CONTIG = re.compile(r"^(\d{1,2}|x|y|un)_|^(gl|ki|kn|jh|ml)\d|^hschr|^(nt|nw)_|^(un|hs37d5|ebv)$")


#: RefSeq accessions of the human chromosomes (GRCh37: NC_000001.10, GRCh38: NC_000001.11) and of the mitochondrion
_REFSEQ_CHROM = re.compile(r"^nc_(0000(?:0[1-9]|1\d|2[0-4])|012920)\.\d+$")


def _is_other_contig(value) -> bool:
    """A contig that is not a chromosome (:data:`_OTHER_CONTIG`): no gene of psysc's gene tables lies on one."""
    return _normalise_chrom_value(value) is None and bool(_OTHER_CONTIG.search(_chrom_spelling(value)))


def _normalise_chrom_value(value: str) -> str | None:
    """One chromosome name in psysc's spelling ('1'..'22', 'X', 'Y', 'MT'), or None if unknown.

    Accepts a ``chr`` prefix, leading zeros, integer-valued floats ('1.0'), and PLINK's numeric codes
    23 = X, 24 = Y, 25 = XY (the pseudo-autosomal region, which lies on X), 26 = MT; ``M`` is MT.
    """
    s = _chrom_spelling(value)
    refseq = _REFSEQ_CHROM.match(s)  # NC_000001.11: chromosome 1 (numbered as PLINK: 23 X, 24 Y); NC_012920.1: MT
    if refseq:
        s = "mt" if refseq.group(1) == "012920" else str(int(refseq.group(1)))
    if s.isdigit():
        i = int(s)
        if 1 <= i <= 22:
            return str(i)
        return {23: "X", 24: "Y", 25: "X", 26: "MT"}.get(i)
    # PLINK 2 names X's pseudo-autosomal regions PAR1 and PAR2 (positions on X)
    return {"x": "X", "y": "Y", "xy": "X", "par1": "X", "par2": "X", "m": "MT", "mt": "MT"}.get(s)


def _normalise_chroms(values: pd.Series) -> np.ndarray:
    """Vectorised :func:`_normalise_chrom_value` (maps the unique values only); unknown -> None."""
    return _Distinct(values).map(_normalise_chrom_value)


def _chrom_codes(chroms: np.ndarray) -> np.ndarray:
    """Integer code of each normalised chromosome (0 for None)."""
    codes, uniques = pd.factorize(pd.Series(chroms, dtype=object), use_na_sentinel=False)
    table = np.array([_CHROM_CODE.get(u, 0) for u in uniques], dtype=np.int64)
    return table[codes] if len(uniques) else np.array([], dtype=np.int64)


def _is_number_column(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


class _Distinct:
    """A column's distinct values, found once, to apply functions of a value to every row (or to some rows).

    The values are given to the functions in their string form (NaN/None as ``None``).
    """

    def __init__(self, col: pd.Series):
        self.codes, uniques = pd.factorize(col, use_na_sentinel=False)
        self.values = [None if (u is None or (isinstance(u, float) and math.isnan(u))) else str(u) for u in uniques]

    def map(self, func, rows: np.ndarray | None = None) -> np.ndarray:
        """``func`` of each row's value (object array), for the rows ``rows`` (positions) or all of them."""
        codes = self.codes if rows is None else self.codes[rows]
        if not self.values:
            return np.array([], dtype=object)
        return np.array([func(v) for v in self.values], dtype=object)[codes]


def _map_unique(col: pd.Series, func) -> np.ndarray:
    """``func`` applied to the string form of each distinct value (NaN/None -> ``func(None)``)."""
    return _Distinct(col).map(func)


def _is_missing_token(value: str | None) -> bool:
    return value is None or value.strip().lower() in _MISSING


def _missing_mask(col: pd.Series, distinct: _Distinct | None = None) -> np.ndarray:
    """True where a cell is missing (NaN/None or one of the missing tokens); ``distinct``: ``col``'s, when found."""
    if _is_number_column(col):
        return col.isna().to_numpy()
    return (distinct or _Distinct(col)).map(_is_missing_token).astype(bool)


#: a number written with a decimal comma: 0,05, -1,2, 6,334E-05
_DECIMAL_COMMA = re.compile(r"^[-+]?\d+,\d+([eE][-+]?\d+)?$")


def _parse_numeric(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Float values of a column and a mask of present-but-not-numeric cells (missing cells -> NaN)."""
    if _is_number_column(col):
        return col.to_numpy(dtype=np.float64, na_value=np.nan), np.zeros(len(col), dtype=bool)
    # Python's float() (through numpy) rounds correctly; pandas.to_numeric's fast parser can be off
    # by a few units in the last place, so it only locates the cells that are not numbers.
    try:
        return col.to_numpy(dtype=object).astype(np.float64), np.zeros(len(col), dtype=bool)
    except (ValueError, TypeError):
        pass
    parsed = pd.to_numeric(col, errors="coerce").notna().to_numpy()
    values = np.full(len(col), np.nan)
    values[parsed] = col.to_numpy(dtype=object)[parsed].astype(np.float64)
    rest = np.flatnonzero(~parsed)
    cells = col.iloc[rest]
    is_missing = _missing_mask(cells)
    bad = np.zeros(len(col), dtype=bool)
    for k, (i, cell) in enumerate(zip(rest, cells, strict=True)):  # only the cells pandas could not parse
        if is_missing[k]:
            continue
        try:
            values[i] = float(str(cell).strip())
        except ValueError:
            bad[i] = True
    return values, bad


_SCIENTIFIC = re.compile(r"^\s*\+?(\d*\.?\d+)[eE]([-+]?\d+)\s*$")


def _lp_of_underflowing_text(text: pd.Series, p: np.ndarray) -> np.ndarray:
    """``-log10 P`` of the P-values written in scientific notation that read as 0 (e.g. ``"1e-400"``), else NaN.

    From the mantissa and the exponent of the text, so that the Z of such a P keeps its order (``"1e-400"`` more
    extreme than ``"1e-320"``).
    """
    out = np.full(len(p), np.nan)
    for i in np.flatnonzero(p == 0):
        match = _SCIENTIFIC.match(str(text.iloc[i]))
        if match and float(match.group(1)) > 0:
            out[i] = -(math.log10(float(match.group(1))) + int(match.group(2)))
    return out


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


#: a P above 1 by at most this much is a rounding error of the software that wrote it, read as 1
_P_ABOVE_1 = 1e-5

#: ``attrs["build"]`` of gene-level results computed with a gene_loc table and no build= (its build is unknown)
GENE_LOC_BUILD = "that of gene_loc"


def _check_z_against_p(z, p, qc, where, rows, keep_idx, z_source: str) -> None:
    """Count (``qc["n_z_p_disagree"]``) and warn about rows whose P and Z tell different strengths of association.

    Z as given, or BETA/SE. A disagreement is a sign of a column read as what it is not (an SE that is a variance,
    an OR read as a BETA, the P of another test). Compared on the z scale, where rounding in the file matters
    least: ``|Z|`` and ``Phi^-1(1 - P/2)`` differ by more than ``1 + |z of P| / 4`` (P, BETA and SE given to two
    significant digits move a z by a few percent). Rows with P = 0 are left to the underflow rule.
    """
    both = ~np.isnan(z) & ~np.isnan(p) & (p > 0) & (p <= 1)
    qc["n_z_p_disagree"] = 0
    if not both.any():
        return
    z_of_p = stats.norm.isf(np.maximum(p[both], _P_FLOOR) / 2.0)
    off = np.zeros(len(z), dtype=bool)
    off[both] = np.abs(np.abs(z[both]) - z_of_p) > 1.0 + np.abs(z_of_p) / 4.0
    qc["n_z_p_disagree"] = int(off.sum())
    if off.any():
        i = int(np.argmax(off))
        logger.warning(
            "%s: %s a P far from the P of %s (first: %s, P %.3g but |Z| %.3g, whose P is %.3g): is each column what "
            "its name says (an SE that is a variance, an OR read as BETA, the P of another test)? Both are kept: gene "
            "scores use P", where, _plural(qc["n_z_p_disagree"], "row has", "rows have"), z_source,
            rows(int(keep_idx[i])), p[i], abs(z[i]), _p_from_z(z[i : i + 1])[0],
        )


def _shown(value) -> str:
    """A cell's value in a message: text quoted (its spaces and emptiness show), numbers as written ('1.01')."""
    return repr(value) if isinstance(value, str) else str(value)


def _p_from_z(z: np.ndarray) -> np.ndarray:
    """Two-sided P-value of z: ``2 * (1 - Phi(|z|))`` (``norm.sf``, exact far in the tail)."""
    return 2.0 * stats.norm.sf(np.abs(z))


# --------------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------------
class _RowNames:
    """Names rows of the input in error messages: 'data row k (line L)' for files, 'row k' for frames."""

    def __init__(self, header_line: int | None, index: pd.Index | None = None):
        self.header_line = header_line
        self.index = index

    def __call__(self, i: int) -> str:
        if self.header_line is not None:
            return f"data row {i + 1} (line {self.header_line + 1 + i} of the file)"
        label = self.index[i] if self.index is not None else i
        return f"row {i + 1} (index {label!r})"


#: rows parsed at a time; the numeric columns of each are kept as numbers, not as text, where they can be
_CHUNK_ROWS = 500_000


def _not_finite_and_positive(v: np.ndarray) -> np.ndarray:
    return ~(v > 0) | np.isinf(v)


#: the rule of each standard numeric column: the test of its known (not NaN) values that break it, and how an
#: error states it. Repairs that come first: a P above 1 by at most _P_ABOVE_1 is read as 1, an SE of 0 as missing
_VALUE_RULES: dict[str, tuple[Callable[[np.ndarray], np.ndarray], str]] = {
    "BP": (lambda v: (v < 1) | (v >= _KEY_SHIFT) | (v != np.floor(v)) | ~np.isfinite(v),
           "is not a position (an integer from 1 to 2^32 - 1; the longest human chromosome has 2.5e8 bases)"),
    "P": (lambda v: (v < 0) | (v > 1), "is outside [0, 1]"),
    "LP": (lambda v: v < 0, "is negative (LP = -log10 P must be >= 0)"),
    "SE": (_not_finite_and_positive, "is not a finite number > 0"),
    "OR": (_not_finite_and_positive, "is not a finite number > 0"),
    "N": (_not_finite_and_positive, "is not a finite number > 0"),
    "Z": (np.isinf, "is not finite"),
    "BETA": (np.isinf, "is not finite"),
}


def _unremarkable(std: str, values: np.ndarray) -> bool:
    """Whether parsed values of a standard column break none of the rules :func:`read_sumstats` checks or repairs.

    The rules are :data:`_VALUE_RULES`; a P of 0 (underflow, repaired from the text) and an infinite value (whose
    text may say more) count as breaking one too. A chunk of a column that breaks one is kept as text, so that the
    messages quote the cells as written and the repairs that read the text (a P that underflows, decimal commas,
    repeated headers) see it.
    """
    v = values[~np.isnan(values)]
    if np.isinf(v).any() or (std == "P" and (v == 0).any()):
        return False
    rule = _VALUE_RULES.get(std)
    return rule is None or not rule[0](v).any()


def _as_numbers(chunk: pd.DataFrame, numeric: Mapping[str, str]) -> pd.DataFrame:
    """``chunk`` with its columns of numbers as float64 where they can be.

    ``numeric``: source name -> standard name. A column is converted where every cell is a number or missing and
    none breaks a rule (:func:`_unremarkable`): 8 bytes a cell instead of a string's tens; the others stay text.
    """
    for name, std in numeric.items():
        if name in chunk.columns:
            values, bad = _parse_numeric(chunk[name])
            if not bad.any() and _unremarkable(std, values):
                chunk[name] = values
    return chunk


def header_position(text: str) -> tuple[int, int, int, str | None]:
    """Where the header of a summary-statistics text starts: ``(offset, lines before it, comments, stated build)``.

    VCF-style ``##`` meta lines (``##genome_build=GRCh37`` states the build), blank lines and ``#`` comments come
    before the header; a ``#`` line is the header itself, as PLINK 2's ``#CHROM POS ...``, unless a line below it
    (up to the first line without ``#``) names at least two known columns and no fewer than it does (a comment such
    as ``# SNP and P from the meta-analysis`` above the header names some too; rows of values name none).
    """
    pos, n_before, n_comments = 0, 0, 0
    stated_build = None
    while pos < len(text):
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        line = text[pos:end].strip()
        if line.startswith("##"):  # e.g. ##genome_build=GRCh37 (GWAS-VCF, GWAS-SSF-like headers)
            key, _, value = line[2:].partition("=")
            if _norm_name(key) in _BUILD_KEYS and _BUILDS.get(value.strip().lower()):
                stated_build = _BUILDS[value.strip().lower()]
        if line and not line.startswith("##"):
            if not line.startswith("#"):
                break
            below = _most_known_below(text, end)
            if not (below >= 2 and below >= _known_columns(line)):
                break
            n_comments += 1
        pos, n_before = end + 1, n_before + 1
    return pos, n_before, n_comments, stated_build


def _read_table(path: str | os.PathLike, sep: str | None, select=None,
                numeric=None) -> tuple[pd.DataFrame, int, dict]:
    """Read a delimited text file as strings; return (table, 1-based header line, field-count info).

    ``select``: a function of the header's names that returns the names of the columns to keep (the others are
    not read: a column of strings costs tens of bytes per row).
    """
    where = str(path)
    text = _read_text(path)
    pos, n_before, n_comments, stated_build = header_position(text)
    if n_comments:
        logger.info("%s: %s before the header skipped", where, _plural(n_comments, "comment line"))
    body = text[pos:]
    del text  # the body alone from here on (a large file is held once, then as bytes)
    if not body or body.isspace():
        raise ValueError(f"{where} is empty; expected a header line and one line per SNP")
    header = body.split("\n", 1)[0].rstrip("\r")
    if sep is None:
        sep = next((c for c in "\t,;" if c in header), r"\s+")
    if _r_row_names(header, body, sep):
        # R's write.table (row.names=TRUE, its default) names no column above the row names
        body = _ROW_NAMES + (sep if len(sep) == 1 else " ") + body
        header = body.split("\n", 1)[0].rstrip("\r")
        logger.info("%s: the header names one field fewer than the rows (R's write.table with row names): the first "
                    "column is read as row names (%r) and not used", where, _ROW_NAMES)
    data = body.encode("utf-8")  # what pandas parses (from bytes: no 4-byte-per-character copy of the text)
    quoted = '"' in body
    del body
    info = {"n_short": 0, "first_short": None}
    counted = False  # every line's fields counted here (then a line longer than the header has been refused)
    # Count the fields of every line (vectorised over the bytes) for single-character separators:
    # rows with fewer fields than the header are reported; rows with more are an error.
    if len(sep) == 1 and not quoted:
        raw = np.frombuffer(data, dtype=np.uint8)
        newlines = np.flatnonzero(raw == 10)
        starts = np.concatenate(([0], newlines + 1))
        ends = np.concatenate((newlines, [len(raw)]))
        n_fields = _field_counts(raw, ends, sep)
        length = ends - starts - (raw[np.maximum(ends - 1, 0)] == 13)  # ignore a '\r' before '\n'
        blank = length <= 0
        n_header = n_fields[0]
        data_fields, data_blank = n_fields[1:], blank[1:]
        long = np.flatnonzero((data_fields > n_header) & ~data_blank)
        if len(long):
            trimmed = _without_trailing_empty_fields(raw, sep, starts[1:][long], ends[1:][long], int(n_header))
            if trimmed is None:
                i = int(long[0])
                raise _too_many_fields(where, n_before + 2 + i, int(data_fields[i]), int(n_header), len(long), sep)
            data = trimmed
            logger.info("%s: %s end with empty fields beyond the header's %d (trailing separators); they are ignored",
                        where, _plural(len(long), "line"), int(n_header))
        short = np.flatnonzero((data_fields < n_header) & ~data_blank)
        info = {"n_short": len(short), "first_short": int(short[0]) if len(short) else None,
                "n_trailing_separators": len(long)}
        counted = True
        del raw, newlines, starts, ends, n_fields, length, blank, data_fields, data_blank  # tens of bytes a line
    elif sep == r"\s+" and not quoted:
        # white space: a missing value leaves no empty field, so the values after it move one column left; the
        # rows with fewer fields than the header are found here (a field starts where a gap ends)
        raw = np.frombuffer(data, dtype=np.uint8)
        n_fields = _field_counts(raw, np.append(np.flatnonzero(raw == 10), len(raw)), None)
        data_fields = n_fields[1:]
        long = np.flatnonzero(data_fields > n_fields[0])
        if len(long):
            i = int(long[0])
            raise _too_many_fields(where, n_before + 2 + i, int(data_fields[i]), int(n_fields[0]), len(long), sep)
        short = np.flatnonzero((data_fields < n_fields[0]) & (data_fields > 0))
        info = {"n_short": len(short), "first_short": int(short[0]) if len(short) else None, "short_rows": short}
        counted = True
        del raw, n_fields, data_fields
    options = {"sep": sep, "dtype": str, "keep_default_na": False, "na_filter": False, "engine": "c"}
    names: list[str] = []
    try:
        # the header's own names: pandas renames a repeated name (P, P.1), which would hide the clash
        names = [str(c).strip() or f"Unnamed: {i}"
                 for i, c in enumerate(pd.read_csv(io.StringIO(header), header=None, **options).iloc[0])]
    except (pd.errors.ParserError, ValueError) as err:
        raise ValueError(f"{where}: the header could not be read with separator {sep!r} ({err}); pass sep=") from err
    repeated = pd.Index(names)[pd.Index(names).duplicated()].unique().tolist()
    if repeated:
        raise ValueError(f"{where}: duplicated column names {repeated} in the header; rename them")
    wanted = set(names) if select is None else set(select(names))
    # unread columns only where every line's fields were counted: pandas drops the fields of a long line it does
    # not read, without a word
    kept = [i for i, n in enumerate(names) if n in wanted or not counted]
    as_numbers = {} if numeric is None else dict(numeric())
    try:
        with warnings.catch_warnings():
            # pandas only warns (and drops the extra fields) when a line has more fields than the header
            warnings.simplefilter("error", pd.errors.ParserWarning)
            columns = [names[i] for i in kept]
            parts: dict[str, list[np.ndarray]] = {name: [] for name in columns}
            for chunk in pd.read_csv(io.BytesIO(data), encoding="utf-8", skip_blank_lines=False, index_col=False,
                                     usecols=kept if len(kept) < len(names) else None, chunksize=_CHUNK_ROWS,
                                     **options):
                chunk.columns = columns
                chunk = _as_numbers(chunk, as_numbers)
                for name in columns:
                    parts[name].append(chunk[name].to_numpy())
                del chunk
    except (pd.errors.ParserWarning, pd.errors.ParserError, ValueError) as err:
        # a line with more fields than the header: a warning for the first data line, an error for a later one
        counts = [len(_split_fields(line, sep)) for line in data.decode("utf-8").split("\n")[1:]]
        long = [i for i, n in enumerate(counts) if n > len(names)]
        if names and long:
            raise _too_many_fields(where, n_before + 2 + long[0], counts[long[0]], len(names), len(long), sep) from None
        raise ValueError(f"{where} could not be read as a table with separator {sep!r} ({err}); pass sep=") from err
    del data
    # joined a column at a time (a column's chunks are freed as it is joined): no second copy of the whole table
    table = pd.DataFrame({name: _joined(parts.pop(name)) for name in columns}, copy=False)
    if len(kept) > len(wanted):  # read whole, then narrowed
        table = table[[n for n in table.columns if n in wanted]]
    info["build"] = stated_build
    return table, n_before + 1, info


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """One column from its chunks' arrays (emptied as they are read): numbers where every chunk has numbers.

    A column of numbers in some chunks and text in others becomes text throughout (objects), as
    :func:`pandas.concat` would make it.
    """
    if len(parts) <= 1:
        return parts.pop() if parts else np.empty(0, dtype=object)
    if len({a.dtype for a in parts}) > 1:
        parts = [a.astype(object) for a in parts]
    out = np.concatenate(parts)
    parts.clear()
    return out


#: the name given to a column of row names above which the header names nothing (R's write.table)
_ROW_NAMES = "row_names"


def _r_row_names(header: str, body: str, sep: str) -> bool:
    """Whether the rows start with row names that the header names no column for, as R's write.table writes them.

    The first 100 rows (fields split as CSV, quotes respected) all have one field more than the header, the last
    one not empty (not a trailing separator), and R's marks are there: a quoted header (``quote=TRUE``, the
    default) or row names ``1, 2, 3, ...`` on two rows or more (the default row names; a lone ``1`` may be a
    chromosome).
    """
    one = sep if len(sep) == 1 else None  # None: white space
    head = _split_line(header, one)
    rows = [_split_line(line.rstrip("\r"), one) for line in body.split("\n", 101)[1:101] if line.strip()]
    if not rows or not all(len(f) == len(head) + 1 and f[-1] for f in rows):
        return False
    quoted = all(h.startswith('"') and h.endswith('"') for h in header.strip().split(one) if h)
    numbered = len(rows) > 1 and [f[0] for f in rows] == [str(i + 1) for i in range(len(rows))]
    return quoted or numbered


def _field_counts(raw: np.ndarray, ends: np.ndarray, sep: str | None, chunk: int = 1 << 22) -> np.ndarray:
    """The number of fields on each line of the bytes ``raw`` (``ends``: each line's end, its newline or the end).

    One more than its separators for a one-character ``sep``; its runs of non-blank bytes for white space
    (``None``). Counted in chunks of whole lines of about ``chunk`` bytes, so that the temporary arrays (positions in
    int64) stay small whatever the size of the file.
    """
    counts = np.empty(len(ends), dtype=np.int64)
    line0, start = 0, 0
    while line0 < len(ends):
        line1 = min(len(ends), max(line0 + 1, int(np.searchsorted(ends, start + chunk, side="right"))))
        stop = int(ends[line1 - 1])
        part = raw[start:stop]
        local_ends = ends[line0:line1] - start
        if sep is not None:
            at = np.flatnonzero(part == ord(sep))
            counts[line0:line1] = np.bincount(np.searchsorted(local_ends, at), minlength=line1 - line0) + 1
        else:
            gap = (part == 32) | (part == 9) | (part == 13) | (part == 10)
            first = np.flatnonzero(~gap & np.concatenate(([True], gap[:-1])))  # a field starts where a gap ends
            counts[line0:line1] = np.bincount(np.searchsorted(local_ends, first), minlength=line1 - line0)
        line0, start = line1, stop + 1
    return counts


def _split_fields(line: str, sep: str) -> list[str]:
    line = line.rstrip("\r")
    if not line.strip():
        return []
    return line.split(sep) if len(sep) == 1 else re.split(sep, line.strip())


def _gene_of_each_symbol(genes: pd.DataFrame) -> pd.DataFrame:
    """The bundled table's rows less those of a symbol naming several genes that are not the gene it stands for.

    The gene a symbol stands for is the one :func:`psysc.gwas.to_ensembl` maps it to (HGNC's approved gene, else the
    only protein-coding one); a symbol it cannot settle keeps all its rows (the first location is used).
    """
    from ._ids import _lookup, _resolve_symbol

    shared = genes["ID"].duplicated(keep=False).to_numpy()
    if not shared.any():
        return genes
    lk = _lookup("human")
    drop = np.zeros(len(genes), dtype=bool)
    for symbol, rows in genes.index[shared].groupby(genes["ID"].to_numpy()[shared]).items():
        gid, _ = _resolve_symbol(lk, str(symbol), {}, True)
        ids = genes.loc[rows, "GENE"].to_numpy()
        if gid is not None and (ids == gid).any():
            drop[np.asarray(rows)[ids != gid]] = True
    return genes[~drop].reset_index(drop=True)


_KNOWN_NAMES = frozenset(sp for spellings in _SYNONYMS.values() for sp in spellings)


def _known_columns(line: str) -> int:
    """How many fields of a line (tab, comma, semicolon or white space separated) are known column names."""
    return sum(_norm_name(f) in _KNOWN_NAMES for f in re.split(r"[\t,;]|\s+", line.strip()) if f)


def _most_known_below(text: str, end: int) -> int:
    """The most known column names on one line after offset ``end`` (a newline).

    The lines looked at end with the first one that is neither blank nor a ``#`` line (included).
    """
    most = 0
    while end < len(text):
        nxt = text.find("\n", end + 1)
        nxt = len(text) if nxt < 0 else nxt
        line = text[end + 1 : nxt].strip()
        if line and not line.startswith("##"):
            most = max(most, _known_columns(line))
            if not line.startswith("#"):
                break
        end = nxt
    return most


def _without_trailing_empty_fields(raw: np.ndarray, sep: str, starts: np.ndarray, ends: np.ndarray,
                                   n_header: int) -> bytes | None:
    """The table's bytes with the long lines cut to the header's fields, when all they hold beyond is empty; or None.

    ``raw``: the bytes of the table; ``starts``/``ends``: the long lines' byte ranges (``ends`` at the newline).
    A line is cut at its ``n_header``-th separator when every byte from there to the end of the line (less a
    carriage return) is a separator; None when a line has a non-empty extra field.
    """
    seps = np.flatnonzero(raw == ord(sep))
    first = np.searchsorted(seps, starts)  # each line's first separator
    cut = seps[first + n_header - 1]
    line_end = ends - (raw[np.maximum(ends - 1, 0)] == 13)
    n_extra = np.searchsorted(seps, line_end) - (first + n_header - 1)  # separators from the cut on
    if not np.array_equal(line_end - cut, n_extra):
        return None
    delta = np.zeros(len(raw) + 1, dtype=np.int32)  # drop the bytes from each cut to its line's end
    np.add.at(delta, cut, -1)
    np.add.at(delta, line_end, 1)
    return raw[np.cumsum(delta[:-1]) == 0].tobytes()


def _too_many_fields(where: str, line_no: int, n_fields: int, n_header: int, n_long: int, sep: str) -> ValueError:
    return ValueError(
        f"{where}, line {line_no}: {n_fields} fields but the header has {n_header} "
        f"({_plural(n_long, 'line')} too long); fix those lines, or pass sep= if {sep!r} is not the file's separator"
    )


#: GWAS Catalog harmonised columns (GRCh38), preferred over the submitted ones when hm_chrom and hm_pos are there
_HARMONISED = {"hm_chrom": "CHR", "hm_pos": "BP", "hm_rsid": "SNP", "hm_effect_allele": "A1",
               "hm_other_allele": "A2", "hm_beta": "BETA", "hm_odds_ratio": "OR"}


def _build_of_column(name: str) -> str | None:
    """The genome build that a position column's name states (``pos_b37``, ``BP_hg38``...), else None."""
    n = _norm_name(name)
    if any(tag in n for tag in ("b37", "grch37", "hg19")):
        return "GRCh37"
    if any(tag in n for tag in ("b38", "grch38", "hg38")):
        return "GRCh38"
    return None


#: columns that are not statistics but are read: TEST (rows of other tests are left out), ALT (PLINK 2's other allele)
_READ_UNUSED = frozenset({"test", "alt"})


def _recognise_columns(names: list[str], columns: Mapping | None, where: str) -> tuple[dict[str, str], list[str]]:
    """Map source columns to standard names; return ({standard: source}, ignored sources)."""
    found: dict[str, str] = {}
    used: set[str] = set()
    if columns is not None:
        if not isinstance(columns, Mapping):
            raise ValueError(f"columns must be a dict source column -> standard name, not {type(columns).__name__}")
        for src, std in columns.items():
            if src not in names:
                raise ValueError(
                    f"columns={{{src!r}: {std!r}}}: {where} has no column {src!r}; its columns are {names}"
                )
            if std is None:  # explicitly ignored
                used.add(src)
                continue
            std_up = str(std).upper()
            if std_up not in _TARGETS:
                raise ValueError(
                    f"columns={{{src!r}: {std!r}}}: {std!r} is not a standard column; use one of {list(_TARGETS)} "
                    "(LP = -log10 P), or None to ignore the column"
                )
            if std_up in found:
                raise ValueError(
                    f"columns= maps both {found[std_up]!r} and {src!r} to {std_up!r}; map one column per name"
                )
            found[std_up] = src
            used.add(src)
    if {"hm_chrom", "hm_pos"} <= set(names) and not {"CHR", "BP"} & set(found):
        # GWAS Catalog harmonised file: the hm_* columns are the GRCh38 harmonisation (alleles and effect
        # oriented alike); the other columns keep the submitted build
        for src, std in _HARMONISED.items():
            if src in names and std not in found and src not in used:
                found[std] = src
                used.add(src)
    normed = {n: _norm_name(n) for n in names}
    for std, spellings in _SYNONYMS.items():
        if std in found:
            continue
        for spelling in spellings:
            hit = next((n for n in names if n not in used and normed[n] == spelling), None)
            if hit is not None:
                found[std] = hit
                used.add(hit)
                break
    explicit = set(columns or {})
    if (found.get("A1") == "Allele1" and found.get("A2") == "Allele2" and not {"Allele1", "Allele2"} & explicit
            and ({"AF_Allele2", "Tstat"} & set(names) or "p.value" in names)):
        # SAIGE: Allele2 is the effect allele (BETA, Tstat and AF_Allele2 refer to it)
        found["A1"], found["A2"] = "Allele2", "Allele1"
        logger.info("%s: SAIGE columns: Allele2 is taken as the effect allele A1, Allele1 as A2", where)
    ignored = [n for n in names if n not in used]
    return found, ignored


#: how SNP-level summary statistics become a gene set, said where a gene-level file is expected
SNP_TO_GENE_SET = (
    "map its SNPs to genes first: ss = psysc.gwas.read_sumstats(path); genes = psysc.gwas.sumstats_to_genes(ss, "
    "build='GRCh37' or 'GRCh38'); psysc.gwas.write_gs(psysc.gwas.genes_to_gene_set(genes), 'trait.gs'); then pass "
    "that .gs file (or run MAGMA and pass its .genes.out)"
)


def snp_level_columns(names, rows=()) -> list[str] | None:
    """The summary-statistics columns of a table that is SNP-level, else ``None``.

    SNP-level: a P, -log10 P, Z, BETA or OR column, as :func:`read_sumstats` recognises them, and a chromosome
    and a position, or a variant ID column whose values in ``rows`` (the first data rows, split into fields) are
    mostly rsIDs or ``chr:pos`` IDs (a gene table's ``id`` column holds genes).
    """
    names = [str(n) for n in names]
    try:
        found, _ = _recognise_columns(names, None, "the header")
    except ValueError:
        return None
    if not {"P", "LP", "Z", "BETA", "OR"} & set(found):
        return None
    if {"CHR", "BP"} <= set(found):
        return list(found.values())
    if "SNP" not in found:
        return None
    i = names.index(found["SNP"])
    ids = [str(r[i]).strip() for r in rows if len(r) > i]
    variants = [bool(re.match(r"^rs\d+$", v, re.IGNORECASE) or _POSITION_ID.match(v)) for v in ids]
    return list(found.values()) if ids and sum(variants) >= 0.5 * len(ids) else None


#: variant IDs that hold the position: 1:1000, chr1:1000, 1:1000:A:G, 1_1000_A_G, X:5000:C:T (METAL, Neale lab, ...)
_POSITION_ID = re.compile(r"^(?:chr)?([0-9]{1,2}|x|y|xy|m|mt)[:_](\d+)(?:[:_][A-Za-z*<>.-]+[:_][A-Za-z*<>.-]+)?$",
                          re.IGNORECASE)


def _positions_from_ids(raw: pd.DataFrame, found: dict[str, str], where: str, source: str = "SNP"):
    """CHR and BP from variant IDs such as ``1:1000:A:G`` when the file has no position columns.

    Used when most IDs (90% of the first 10,000 given) have that form; rows whose ID has not are left without a
    position (dropped and counted later). Returns the table and, for IDs that are rsIDs, a hint for the error of
    the missing columns: positions come from a reference of the file's build. ``source="BP"``: a position column
    that holds ``chr:pos`` (e.g. ``chr_pos`` = ``1:1000``) in a file without a chromosome column, split alike.
    """
    ids = raw[found[source]].astype(str).str.strip()
    sample = ids[~ids.str.lower().isin(_MISSING)].head(10_000)
    if not len(sample):
        return raw, ""
    parts = ids.str.extract(_POSITION_ID)
    if parts.loc[sample.index, 0].notna().mean() < 0.9:
        hint = ""
        if sample.str.match(r"^rs\d+$", case=False).mean() >= 0.5:
            hint = (f"The variants are named by rsID (e.g. {sample.iloc[0]!r}), which holds no position: if the file "
                    "has no position column, add each variant's chromosome and position from a reference of the "
                    "same genome build (e.g. merge with a PLINK .bim file or a dbSNP table on the SNP column). ")
        return raw, hint
    raw = raw.copy()
    new = {}
    origin = found[source]
    for std, part in (("CHR", 0), ("BP", 1)):
        if std not in found or std == source:
            col = f"{std} (from {origin})"
            raw[col] = parts[part].fillna("")
            found[std] = new[std] = col
    if source == "BP":
        logger.info("%s: no CHR column: CHR and BP read from %s, which holds chromosome:position (e.g. %r)", where,
                    origin, sample.iloc[0])
    else:
        logger.info("%s: no %s column: read from the variant IDs of %s (e.g. %r)", where, " or ".join(new), origin,
                    sample.iloc[0])
    return raw, ""


def _check_required(found: dict[str, str], names: list[str], where: str, hint: str = "") -> None:
    has_stat = (
        "P" in found
        or "LP" in found
        or "Z" in found
        or ("BETA" in found and "SE" in found)
        or ("OR" in found and "SE" in found)
    )
    missing = [c for c in ("CHR", "BP") if c not in found]
    if not has_stat:
        missing.append("one of P / Z / BETA+SE / OR+SE")
    if missing:
        recognised = ", ".join(f"{src} -> {std}" for std, src in found.items()) or "none"
        joined = [c for c in ",;|\t " if len(names) <= 2 and any(c in str(n) for n in names)]
        raise ValueError(
            f"{where}: cannot find {' and '.join(missing)}. "
            + (f"The header was read as {len(names)} column(s) holding {joined[0]!r}: pass sep={joined[0]!r} if that "
               "is the file's separator. " if joined else "")
            + hint
            + "SNP-to-gene mapping needs CHR, BP and one of "
            f"P / Z / BETA+SE / OR+SE. Columns present: {names}; recognised: {recognised}. If a column is there "
            "under another name, say which, e.g. read_sumstats(path, columns={'my_pos_col': 'BP', "
            "'my_p_col': 'P'})"
        )


class _KeptRows:
    """The kept rows of a table of strings, one column at a time.

    A copy of every column at once would double the memory that the table holds.
    """

    def __init__(self, table: pd.DataFrame, rows: np.ndarray):
        self.table, self.rows = table, rows
        self.columns = table.columns

    def __getitem__(self, column: str) -> pd.Series:
        return self.table[column].iloc[self.rows]


def _id_key(out: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The SNP ID as an integer key (and a constant second key)."""
    return pd.factorize(out["SNP"])[0].astype(np.int64), np.zeros(len(out), dtype=np.int64)


def _variant_key(out: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """CHR:BP and the two alleles in sorted order, as two integer keys.

    The same variant whichever allele is the effect allele.
    """
    position = _chrom_codes(out["CHR"].to_numpy(dtype=object)) * _KEY_SHIFT + out["BP"].to_numpy(dtype=np.int64)
    codes, alleles = pd.factorize(pd.concat([out["A1"], out["A2"]], ignore_index=True))
    a1, a2 = codes[: len(out)].astype(np.int64), codes[len(out) :].astype(np.int64)
    return position, np.minimum(a1, a2) * (len(alleles) + 1) + np.maximum(a1, a2)


def _rows_of(table: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """``table.iloc[rows]`` with a new RangeIndex, made a column at a time (each taken out of ``table`` once copied).

    Only one column is held twice at any time, not the whole table.
    """
    columns = {}
    for name in list(table.columns):
        columns[name] = table.pop(name).to_numpy()[rows]
    out = pd.DataFrame(columns, copy=False)
    out.attrs = dict(table.attrs)
    return out


def _best_of_each(major: np.ndarray, minor: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Positions (sorted) of the row with the smallest P (ties: the first) among the rows of each (major, minor).

    The rows whose key is unique are found by hashing and kept as they are; only the others are sorted.
    """
    n = len(p)
    shared = pd.DataFrame({"major": major, "minor": minor}, copy=False).duplicated(keep=False).to_numpy()
    if not shared.any():
        return np.arange(n)
    rows = np.flatnonzero(shared)
    m = len(rows)
    by_p = np.empty(m, dtype=np.int64)
    by_p[np.lexsort((rows, p[rows]))] = np.arange(m)  # rank of each row by P, then input order
    order = np.lexsort((by_p, minor[rows], major[rows]))
    first = np.ones(m, dtype=bool)
    first[1:] = (np.diff(major[rows][order]) != 0) | (np.diff(minor[rows][order]) != 0)
    keep = ~shared
    keep[rows[order[first]]] = True
    return np.flatnonzero(keep)


#: endings of summary-statistics file names, left out of the trait named after a file (PLINK 2 names its
#: outputs <prefix>.<phenotype>.glm.logistic[.hybrid] / .glm.linear / .glm.firth; PGC writes .vcf.tsv)
_SUMSTATS_ENDINGS = (".tsv", ".txt", ".csv", ".tab", ".sumstats", ".ma", ".assoc", ".vcf", ".regenie", ".hybrid",
                     ".logistic", ".linear", ".firth", ".glm")


def _trait_from_path(path) -> str:
    """The trait named after a file: its name without compression and summary-statistics endings."""
    name = _base_name(path)
    while True:
        ext = next((e for e in _SUMSTATS_ENDINGS if name.lower().endswith(e) and len(name) > len(e)), None)
        if ext is None:
            return name
        name = name[: -len(ext)]


def read_sumstats(
    path_or_frame,
    *,
    columns: Mapping[str, str | None] | None = None,
    sep: str | None = None,
    trait: str | None = None,
) -> pd.DataFrame:
    r"""Read GWAS summary statistics into standard columns.

    Column names are recognised case-insensitively, ignoring punctuation, among the usual
    spellings: ``SNP`` (SNP, rsid, MarkerName, SNPID, variant_id, ID...), ``CHR`` (CHR, chrom,
    chromosome, #CHROM...), ``BP`` (BP, POS, position, base_pair_location, pos_b37...), ``A1`` the
    effect allele (A1, effect_allele, ALT, Allele1...), ``A2`` (A2, other_allele,
    non_effect_allele, REF, Allele2...), ``P`` (P, pval, p_value, PVALUE, P-value...), ``Z`` (Z,
    zscore, Z_STAT...), ``BETA`` (BETA, b, effect, logOR...), ``SE`` (SE, stderr,
    standard_error...), ``OR`` (OR, odds_ratio), ``N`` (N, n_total, Neff...), and ``LP``
    (-log10 P, used when there is no P column). What was recognised as what, and what was
    ignored, is logged (INFO).

    Parameters
    ----------
    path_or_frame
        A path to a CSV, TSV or whitespace-separated file (gzip-compressed or not; VCF-style
        ``##`` lines before the header are skipped), or a :class:`pandas.DataFrame` (a named index, e.g. ``rsid``,
        is read as one of its columns).
    columns
        Overrides of the recognition, source column -> standard name, e.g.
        ``{"my_col": "P"}``; map a column to ``None`` to ignore it.
    sep
        Field separator; detected from the header line when ``None`` (tab, then comma, then semicolon, else runs
        of whitespace).
    trait
        Trait name stored in ``attrs["trait"]``; defaults to the file name without its extensions
        (or ``frame.attrs["trait"]``, else ``"sumstats"``, for a DataFrame).

    Returns
    -------
    pandas.DataFrame
        One row per SNP, in input order, with the standard columns that are available:
        ``SNP`` (``"CHR:BP[:A1:A2]"`` when the input has no SNP column), ``CHR`` (strings
        ``'1'``..``'22'``, ``'X'``, ``'Y'``, ``'MT'``), ``BP`` (int64), ``A1``, ``A2``
        (upper-case), ``P``, ``Z``, ``BETA``, ``SE``, ``OR``, ``N`` (float64). ``Z`` is derived when
        absent, from ``BETA/SE``, ``log(OR)/SE``, or from ``P`` with the sign of ``BETA`` or
        ``log(OR)`` (two-sided); ``P`` is derived from ``Z`` (two-sided) or ``LP`` when absent.
        ``attrs`` holds ``"trait"``, ``"columns_recognised"`` (source -> standard) and ``"qc"``
        (counts of the rows dropped, filled or replaced below), and ``"build"`` when the file states it: a GWAS
        Catalog harmonised file (``hm_chrom``, ``hm_pos``, ``hm_effect_allele``... columns) is read from its
        harmonised GRCh38 columns, whose alleles and effects are oriented alike.

    Raises
    ------
    ValueError
        If ``CHR``, ``BP`` or every statistic (P, Z, BETA+SE, OR+SE) is missing (the message lists
        the columns present and the ``columns=`` fix); if a value is impossible: P outside
        [0, 1], SE < 0, OR <= 0, N <= 0, BP < 1, >= 2^32 or not an integer, an unknown chromosome, or a
        non-numeric number (the message names the first bad row, as the 1-based data row and line
        of the file, and its value).

    Notes
    -----
    Cleaning, every step counted in ``attrs["qc"]`` and logged:

    - without CHR and BP columns, the chromosome and position are read from variant IDs that hold them
      (``1:1000``, ``chr1:1000:A:G``, ``1_1000_A_G``: METAL, the Neale lab's UK Biobank files), when 90% of them
      do (rsIDs hold none: the error of the missing columns says where to find them);
    - blank lines, '#' comment lines before the header and repeated header lines (e.g. from concatenated files)
      are dropped; a ``##genome_build=GRCh37``-like meta line sets ``attrs["build"]``;
    - rows with fewer fields than the header are read with the missing fields empty (tab-, comma- or
      semicolon-separated files) or dropped (white-space separated: the missing field is not told); rows with
      more, all of them empty (separators at the end of the line), are read without them;
    - rows without a chromosome, a position or any statistic are dropped, and rows on chromosome 0 or at position
      0 (PLINK's codes for unplaced variants) or on contigs that are not chromosomes (alternate haplotypes such as
      ``6_ssto_hap7`` or ``chr6_GL000250v2_alt``, scaffolds such as ``chrUn_gl000220`` or ``GL000192.1``,
      decoys such as ``hs37d5``);
    - a P above 1 by at most 1e-5 (rounding in the source) is read as 1, an SE of 0 as missing; a missing P is
      filled from ``LP``, else from ``Z`` / ``BETA/SE``;
    - P = 0 (underflow in the source) is replaced by the P-value of ``Z`` where ``Z`` (or
      ``BETA/SE``) is known, else by the smallest positive normal double (about 2.2e-308); a P below that
      double is stored as it, its ``Z`` computed from the P given;
    - ``Z`` from P takes the sign of ``BETA`` (or ``log(OR)``); a ``BETA`` of exactly 0 (``OR`` 1) beside a P
      below 1 leaves ``Z`` empty (the sign is unknown; the row is kept, with its P);
    - where P and ``Z`` (or ``BETA/SE``) are both given but tell clearly different strengths of association, both
      are kept and the rows are counted in a warning (a column may not be what its name says);
    - duplicated SNP IDs, then duplicated ``CHR:BP:A1:A2`` (the alleles in either order), keep the row with the
      smallest P.

    Chromosome codes: a ``chr`` prefix is dropped, ``M`` is ``MT`` and the numeric codes of
    PLINK 1.9 are read as 23 = X, 24 = Y, 25 = XY (pseudo-autosomal, on X) and 26 = MT; PLINK 2's PAR1 and PAR2
    are X.

    Examples
    --------
    >>> import tempfile, os
    >>> import psysc
    >>> path = os.path.join(tempfile.mkdtemp(), "scz.tsv")
    >>> with open(path, "w") as f:
    ...     _ = f.write(
    ...         "MarkerName\tchromosome\tbase_pair_location\teffect_allele\tother_allele\t"
    ...         "beta\tstandard_error\tp_value\n"
    ...         "rs1\tchr1\t1000\ta\tg\t0.05\t0.01\t5.7e-07\n"
    ...         "rs2\t23\t2000\tT\tC\t-0.02\t0.01\t0.0455\n"
    ...     )
    >>> df = psysc.gwas.read_sumstats(path)
    >>> df[["SNP", "CHR", "BP", "A1", "A2", "Z"]]
       SNP CHR    BP A1 A2    Z
    0  rs1   1  1000  A  G  5.0
    1  rs2   X  2000  T  C -2.0
    >>> df.attrs["trait"], df.attrs["columns_recognised"]["p_value"]
    ('scz', 'P')

    """
    if isinstance(path_or_frame, pd.DataFrame):
        # a named index (e.g. "SNP", "rsid") is a column of the table, recognised as the others are
        names = [n for n in path_or_frame.index.names if n is not None]
        keep_index = bool(names) and not set(map(str, names)) & set(map(str, path_or_frame.columns))
        raw = path_or_frame.reset_index(drop=not keep_index)
        raw.columns = [str(c).strip() for c in raw.columns]
        where = "the DataFrame"
        rows = _RowNames(None, path_or_frame.index)
        short = {"n_short": 0, "first_short": None}
        default_trait = path_or_frame.attrs.get("trait") or "sumstats"
        header, found, ignored = list(raw.columns), None, None  # recognised below, once the names are checked
    elif isinstance(path_or_frame, str | os.PathLike):
        where = str(path_or_frame)
        header, found, ignored = [], {}, []

        def needed(names: list[str]) -> list[str]:
            # the columns read: those used (a column of strings costs tens of bytes per row), and those that name
            # rows to leave out (TEST) or complete an allele (ALT), and those named in columns=
            header.extend(names)
            recognised, unused = _recognise_columns(names, columns, where)  # from every name (SAIGE: by some)
            found.update(recognised)
            ignored.extend(unused)
            keep = set(found.values()) | set(columns or {})
            return [n for n in names if n in keep or _norm_name(n) in _READ_UNUSED]

        raw, header_line, short = _read_table(
            path_or_frame, sep, select=needed,
            numeric=lambda: {src: std for std, src in found.items() if std in _NUMERIC})
        rows = _RowNames(header_line)
        default_trait = _trait_from_path(path_or_frame)
    else:
        raise ValueError(f"path_or_frame must be a file path or a pandas DataFrame, not {type(path_or_frame).__name__}")
    if trait is None:
        trait = default_trait
    if not isinstance(trait, str) or not trait:
        raise ValueError(f"trait must be a non-empty string, got {trait!r}")
    if len(set(raw.columns)) != raw.shape[1]:
        dup = pd.Index(raw.columns)[pd.Index(raw.columns).duplicated()].unique().tolist()
        raise ValueError(f"{where}: duplicated column names {dup}; rename them")
    if found is None:
        found, ignored = _recognise_columns(header, columns, where)

    hint = ""
    if "BP" in found and "CHR" not in found:
        raw, _ = _positions_from_ids(raw, found, where, source="BP")
    if "SNP" in found and ("CHR" not in found or "BP" not in found):
        raw, hint = _positions_from_ids(raw, found, where)
    _check_required(found, header, where, hint)
    logger.info(
        "%s: recognised columns %s; ignored %s",
        where,
        ", ".join(f"{src} -> {std}" for std, src in sorted(found.items(), key=lambda kv: _TARGETS.index(kv[0]))),
        ignored if ignored else "none",
    )
    n_read = len(raw)
    qc: dict[str, int] = {"n_rows_read": n_read}
    keep_idx = np.arange(n_read)

    # 1. blank rows and repeated header lines
    numeric = {std: _parse_numeric(raw[src]) for std, src in found.items() if std in _NUMERIC}
    # decimal commas (European spreadsheets: 0,05 and 6,334E-05) in the statistics: read with a decimal point (not
    # in N or BP, where 1,000 may be a thousands separator)
    commas = {}
    for std in [c for c in ("P", "LP", "Z", "BETA", "SE", "OR") if c in numeric]:
        bad = numeric[std][1]
        if bad.any():
            cells = [str(c).strip() for c in raw[found[std]].to_numpy(dtype=object)[bad]]
            cells = [c for c in cells if _norm_name(c) != _norm_name(found[std])]  # repeated header lines
            if cells and all(_DECIMAL_COMMA.match(c) for c in cells):
                numeric[std] = _parse_numeric(raw[found[std]].astype(str).str.replace(",", ".", regex=False))
                commas[found[std]] = cells[0]
    if commas:
        logger.info("%s: %s written with a decimal comma (e.g. %s); read with a decimal point", where,
                    ", ".join(commas), ", ".join(f"{c} {v!r}" for c, v in commas.items()))
    qc["n_se_zero"] = 0
    if "SE" in numeric:  # e.g. a monomorphic variant (BETA 0, SE 0, P 1): no Z from BETA/SE
        se, se_bad = numeric["SE"]
        se_zero = se == 0
        if se_zero.any():
            qc["n_se_zero"] = int(se_zero.sum())
            numeric["SE"] = (np.where(se_zero, np.nan, se), se_bad)
            logger.warning("%s: %s SE = 0 (a monomorphic variant?): their SE is read as missing (Z then comes from P "
                           "and the sign of the effect; a row without P is dropped with the rows without a statistic)",
                           where, _plural(qc["n_se_zero"], "row has", "rows have"))
    missing = {std: np.isnan(v) & ~bad for std, (v, bad) in numeric.items()}
    # the text columns' distinct values, found once for the rules below
    distinct = {std: _Distinct(raw[found[std]]) for std in ("CHR", "A1", "A2") if std in found}
    for std, values in distinct.items():
        missing[std] = _missing_mask(raw[found[std]], values)
    if "SNP" in found:  # many distinct values: compare with the usual spellings of missing only
        col = raw[found["SNP"]]
        missing["SNP"] = (col.isna() | col.isin(_MISSING_SPELLINGS)).to_numpy()
    blank = np.logical_and.reduce([missing[s] for s in found])
    chr_src, bp_src = found["CHR"], found["BP"]
    header_like = np.zeros(n_read, dtype=bool)
    if not _is_number_column(raw[chr_src]):
        header_like = distinct["CHR"].map(lambda v: v is not None and _norm_name(v) == _norm_name(chr_src))
        header_like = header_like.astype(bool)
        cand = np.flatnonzero(header_like)
        header_like[cand] = [_norm_name(v) == _norm_name(bp_src) for v in raw[bp_src].iloc[cand].astype(str)]
    qc["n_blank_rows"] = int(blank.sum())
    qc["n_header_rows"] = int(header_like.sum())
    if qc["n_header_rows"]:
        logger.info(
            "%s: %s repeating the header dropped (first: %s)",
            where,
            _plural(qc["n_header_rows"], "row"),
            rows(int(np.argmax(header_like))),
        )
    qc["n_short_rows"] = int(short["n_short"])
    qc["n_rows_with_trailing_separators"] = int(short.get("n_trailing_separators", 0))
    keep = ~blank & ~header_like
    shifted = np.zeros(n_read, dtype=bool)
    if "short_rows" in short:  # white space separated: which field is missing is unknown
        shifted[short["short_rows"]] = True
        shifted &= keep
    qc["n_dropped_short_rows"] = int(shifted.sum())
    if shifted.any():
        logger.warning(
            "%s: %s with fewer fields than the header dropped (first: %s): the fields are separated by white "
            "space, so a missing value leaves no empty field and the values after it would be read in the wrong "
            "columns (write missing values as NA, or separate the fields by tabs)",
            where, _plural(qc["n_dropped_short_rows"], "row"), rows(int(np.argmax(shifted))),
        )
        keep &= ~shifted
    elif short["n_short"]:
        logger.warning(
            "%s: %s fewer fields than the header (first: %s); their missing fields were read as empty",
            where,
            _plural(short["n_short"], "row has", "rows have"),
            rows(short["first_short"]),
        )

    # 1b. PLINK and regenie write one row per SNP and model term (TEST = ADD, covariates, interactions): the
    # SNP's own association is its additive test
    qc["n_other_tests"] = 0
    test_src = next((n for n in ignored if _norm_name(n) == "test"), None)
    if test_src is not None:
        tests = raw[test_src].astype(str).str.strip().str.upper().to_numpy()
        kinds = pd.unique(tests[keep])
        if len(kinds) > 1:
            if "ADD" not in set(kinds):
                raise ValueError(
                    f"{where}: column {test_src!r} names several tests ({', '.join(map(str, kinds[:8]))}) and none is "
                    f"ADD; keep the rows of one test before reading, or pass columns={{{test_src!r}: None}} to read "
                    "every row"
                )
            other = keep & (tests != "ADD")
            qc["n_other_tests"] = int(other.sum())
            logger.info(
                "%s: %s of other tests than the additive one dropped (column %r: %s; covariate and interaction "
                "terms of PLINK or regenie)",
                where, _plural(qc["n_other_tests"], "row"), test_src,
                ", ".join(str(k) for k in kinds[:8] if k != "ADD"),
            )
            keep &= ~other

    # 2. rows missing an essential value
    def present(std: str) -> np.ndarray:
        return ~missing[std] if std in missing else np.zeros(n_read, dtype=bool)

    has_stat = (
        present("P")
        | present("LP")
        | present("Z")
        | (present("BETA") & present("SE"))
        | (present("OR") & present("SE"))
    )
    essential = present("CHR") & present("BP") & has_stat
    dropped = keep & ~essential
    qc["n_dropped_missing"] = int(dropped.sum())
    if qc["n_dropped_missing"]:
        first = int(np.argmax(dropped))
        logger.warning(
            "%s: %s without chromosome, position or any statistic dropped (first: %s)",
            where,
            _plural(qc["n_dropped_missing"], "row"),
            rows(first),
        )
    keep &= essential
    # PLINK writes chromosome 0 (and position 0) for variants without a known position: no gene can hold them
    unplaced = keep & (distinct["CHR"].map(_is_unplaced).astype(bool) | (numeric["BP"][0] == 0))
    qc["n_dropped_unplaced"] = int(unplaced.sum())
    if qc["n_dropped_unplaced"]:
        logger.warning("%s: %s on chromosome 0 or at position 0 (unplaced, PLINK's code) dropped (first: %s)", where,
                       _plural(qc["n_dropped_unplaced"], "row"), rows(int(np.argmax(unplaced))))
    keep &= ~unplaced
    other = keep & distinct["CHR"].map(_is_other_contig).astype(bool)
    qc["n_dropped_other_contigs"] = int(other.sum())
    if qc["n_dropped_other_contigs"]:
        names = pd.unique(raw[found["CHR"]].astype(str).to_numpy()[other])
        logger.warning("%s: %s on %s that are not chromosomes (alternate haplotypes, unplaced scaffolds, decoys: "
                       "e.g. %s) dropped: no gene of the gene tables lies on them (first: %s)", where,
                       _plural(qc["n_dropped_other_contigs"], "row"), _plural(len(names), "contig"),
                       ", ".join(repr(n) for n in names[:3]), rows(int(np.argmax(other))))
    keep &= ~other
    keep_idx = np.flatnonzero(keep)
    if len(keep_idx) == 0:
        hint = ("; every row has fewer fields than the header: do the rows use another separator than the header? "
                "Pass sep=" if qc["n_short_rows"] and qc["n_short_rows"] >= int((~blank & ~header_like).sum()) else "")
        raise ValueError(f"{where}: no row has a chromosome, a position and a statistic; check the file{hint}")
    sub = _KeptRows(raw, keep_idx)
    sub_missing = {std: m[keep_idx] for std, m in missing.items()}

    # 3. values: numbers, chromosomes, alleles
    values: dict[str, np.ndarray] = {}
    every_row = len(keep_idx) == n_read  # the arrays as read (no copy; they are not changed in place below)
    for std in _NUMERIC:
        if std not in found:
            continue
        v, bad = numeric[std] if every_row else (numeric[std][0][keep_idx], numeric[std][1][keep_idx])
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"{where}, {rows(int(keep_idx[i]))}: {found[std]} ({std}) is {_shown(sub[found[std]].iloc[i])}, not a "
                f"number ({_plural(int(bad.sum()), 'row')}); fix or remove those rows, or map another column with "
                f"columns="
            )
        values[std] = v
    chrom = distinct["CHR"].map(_normalise_chrom_value, keep_idx)
    bad_chr = pd.isna(chrom)
    if bad_chr.any():
        i = int(np.argmax(bad_chr))
        raise ValueError(
            f"{where}, {rows(int(keep_idx[i]))}: unknown chromosome {_shown(sub[found['CHR']].iloc[i])} "
            f"({_plural(int(bad_chr.sum()), 'row')}); psysc reads 1-22, X, Y, MT (with or without 'chr'; 23 = X, "
            "24 = Y, 25 = XY, 26 = MT). Remove rows on other contigs before reading"
        )

    def fail_if(mask: np.ndarray, std: str, rule: str) -> None:
        if mask.any():
            i = int(np.argmax(mask))
            raise ValueError(
                f"{where}, {rows(int(keep_idx[i]))}: {found[std]} ({std}) = {_shown(sub[found[std]].iloc[i])} {rule} "
                f"({_plural(int(mask.sum()), 'row')}). Is {found[std]!r} really the {std} column? If so, fix or "
                "remove those rows"
            )

    def known(std: str) -> np.ndarray:
        return ~np.isnan(values[std])

    if "P" in values:
        p_src = values["P"]
        rounding = (p_src > 1) & (p_src <= 1 + _P_ABOVE_1)  # e.g. 1.0000001, from arithmetic in the source
        qc["n_p_rounded_to_1"] = int(rounding.sum())
        if rounding.any():
            values["P"] = np.where(rounding, 1.0, p_src)
            logger.info("%s: %s a P above 1 by at most %g (rounding in the source) read as 1", where,
                        _plural(qc["n_p_rounded_to_1"], "row has", "rows have"), _P_ABOVE_1)
    else:
        qc["n_p_rounded_to_1"] = 0
    for std, (breaks, rule) in _VALUE_RULES.items():
        if std in values:  # (every position is known: rows without one were dropped above)
            fail_if(known(std) & breaks(values[std]), std, rule)

    # 4. Z and P
    n = len(keep_idx)
    nan = np.full(n, np.nan)
    z_se = nan.copy()
    sign = nan.copy()
    if "BETA" in values:
        sign = np.sign(values["BETA"])
        if "SE" in values:
            z_se = values["BETA"] / values["SE"]
    if "OR" in values:
        log_or = np.log(values["OR"])
        sign = np.where(np.isnan(sign), np.sign(log_or), sign)
        if "SE" in values:
            z_se = np.where(np.isnan(z_se), log_or / values["SE"], z_se)
    z = values["Z"].copy() if "Z" in values else nan.copy()
    z_given = ~np.isnan(z)
    z = np.where(np.isnan(z), z_se, z)

    p = values["P"].copy() if "P" in values else nan.copy()
    _check_z_against_p(z, p, qc, where, rows, keep_idx,
                       "Z" if "Z" in found else "BETA/SE" if "BETA" in found else "log(OR)/SE")
    qc["n_p_filled"] = 0
    lp_z = nan.copy()
    # -log10 P: the LP column, else the P text that underflows a double (e.g. "1e-400"), exactly
    lp = _lp_of_underflowing_text(sub[found["P"]], p) if "P" in values else nan.copy()
    if "LP" in values:
        lp = np.where(np.isnan(values["LP"]), lp, values["LP"])
    if not np.isnan(lp).all():
        fill = np.isnan(p) & ~np.isnan(lp)
        if "P" in found and fill.any():
            logger.info("%s: P filled from %s (-log10 P) for %s", where, found["LP"], _plural(int(fill.sum()), "row"))
            qc["n_p_filled"] += int(fill.sum())
        p = np.where(fill, 10.0**-lp, p)
        # |z| of -log10 P without underflow: Phi^-1(P/2) computed from log(P/2)
        with np.errstate(invalid="ignore"):
            lp_z = -special.ndtri_exp(-lp * math.log(10.0) - math.log(2.0))
    fill = np.isnan(p) & ~np.isnan(z)
    if fill.any():
        if "P" in found or "LP" in found:
            logger.info("%s: P computed from Z (two-sided) for %s", where, _plural(int(fill.sum()), "row"))
            qc["n_p_filled"] += int(fill.sum())
        p = np.where(fill, _p_from_z(z), p)
    # P = 0: underflow in the source (or in 10^-LP, or in the P of a huge Z)
    zero = p == 0
    qc["n_p_zero"] = int(zero.sum())
    if zero.any():
        with np.errstate(invalid="ignore"):
            from_z = _p_from_z(z)
        p = np.where(zero, np.where(from_z > 0, from_z, _P_FLOOR), p)
        if not np.isnan(lp).all():  # -log10 P records a P too small for the P column (or for a float) exactly
            with np.errstate(over="ignore", invalid="ignore"):
                from_lp = np.maximum(10.0**-lp, _P_FLOOR)
            p = np.where(zero & ~np.isnan(lp), from_lp, p)
        logger.warning(
            "%s: %s P = 0 (numerical underflow); replaced by 10^-LP (at least %.3g) where -log10 P is given, else "
            "by the P-value of Z where Z or BETA/SE is known, else by %.3g",
            where,
            _plural(qc["n_p_zero"], "row has", "rows have"),
            _P_FLOOR,
            _P_FLOOR,
        )
    # Z from P with the sign of BETA / log(OR), where Z is still unknown (from LP where P underflowed)
    z_from_p = np.isnan(z) & ~np.isnan(sign) & ~np.isnan(p)
    no_sign = z_from_p & (sign == 0) & (p < 1)  # a BETA of 0 (rounded) or an OR of 1 beside a P below 1
    qc["n_sign_unknown"] = int(no_sign.sum())
    if no_sign.any():
        z_from_p &= ~no_sign
        logger.warning(
            "%s: %s %s of exactly %s but P < 1 (rounded in the file?): the effect's sign is unknown, Z is left "
            "empty (P is kept)", where, _plural(qc["n_sign_unknown"], "row has", "rows have"),
            "BETA" if "BETA" in values else "OR", "0" if "BETA" in values else "1",
        )
    subnormal = (p > 0) & (p < _P_FLOOR)  # below the smallest normal double: kept as that, Z from the exact P
    qc["n_p_below_floor"] = int(subnormal.sum())
    if z_from_p.any():
        abs_z = stats.norm.isf(np.maximum(p, _P_FLOOR) / 2.0)
        if subnormal.any():  # |z| of P/2 from its logarithm: P/2 is below what isf resolves
            abs_z[subnormal] = -special.ndtri_exp(np.log(p[subnormal]) - math.log(2.0))
        abs_z = np.where(zero & ~np.isnan(lp_z), lp_z, abs_z)
        z = np.where(z_from_p, sign * abs_z, z)
    if subnormal.any():
        logger.warning("%s: %s P below %.3g (the smallest normal double), stored as %.3g; Z is computed from the "
                       "P given", where, _plural(qc["n_p_below_floor"], "row has", "rows have"), _P_FLOOR, _P_FLOOR)
    p = np.maximum(p, _P_FLOOR)
    have_z = "Z" in found or "BETA" in found or "OR" in found
    if not have_z:
        logger.info("%s: no Z, BETA or OR column: Z is left out (the sign of the effect is unknown)", where)
    elif not z_given.all() and "Z" not in found:
        logger.info(
            "%s: Z derived from %s",
            where,
            "BETA/SE"
            if "BETA" in found and "SE" in found
            else "log(OR)/SE"
            if "OR" in found and "SE" in found
            else "P and the sign of BETA / log(OR)",
        )

    # 5. assemble
    out = pd.DataFrame(index=pd.RangeIndex(n))
    out["CHR"] = chrom  # a few strings, shared by the rows (_Distinct.map), none missing (refused above)
    out["BP"] = values["BP"].astype(np.int64)
    for std in ("A1", "A2"):
        if std in found:
            a = distinct[std].map(lambda v: "" if v is None else v.strip().upper(), keep_idx)
            a = np.where(sub_missing[std], "", a)
            out[std] = a
    if found.get("A2") == "REF" and "ALT" in sub.columns and "A1" in out:
        # PLINK 2: A1 (the counted, effect allele) may be REF or ALT; the other allele is the one A1 is not
        alt = _map_unique(sub["ALT"], lambda v: "" if v is None else v.strip().upper())
        is_ref = out["A1"].to_numpy() == out["A2"].to_numpy()
        out["A2"] = np.where(is_ref, alt, out["A2"].to_numpy())
        if is_ref.any():
            logger.info("%s: PLINK 2 columns: A2 is ALT where A1 is REF (%s)", where, _plural(int(is_ref.sum()), "row"))
    if "SNP" in found:
        snp = np.array([v.strip() if isinstance(v, str) else str(v).strip()
                        for v in sub[found["SNP"]].to_numpy(dtype=object)], dtype=object)
        no_id = sub_missing["SNP"]
    else:
        snp = np.full(n, "", dtype=object)
        no_id = np.ones(n, dtype=bool)
    if no_id.any():
        made = out["CHR"] + ":" + out["BP"].astype(str)
        if "A1" in out and "A2" in out:
            made = made + ":" + out["A1"] + ":" + out["A2"]
        snp = np.where(no_id, made.to_numpy(), snp)
        logger.info(
            "%s: %s without SNP ID named CHR:BP%s",
            where,
            _plural(int(no_id.sum()), "row"),
            ":A1:A2" if "A1" in out and "A2" in out else "",
        )
    out.insert(0, "SNP", snp)
    out["P"] = p
    if have_z:
        out["Z"] = z
    for std in ("BETA", "SE", "OR", "N"):
        if std in values:
            out[std] = values[std]
    order_rows = keep_idx
    # the text table is read: the memory it holds is given back
    raw = sub = numeric = missing = sub_missing = distinct = None

    # 6. duplicates: keep the smallest P
    n_dup = 0
    keys = [_id_key]
    if "A1" in out and "A2" in out:
        keys.append(_variant_key)
    for make_key in keys:
        major, minor = make_key(out)
        kept = _best_of_each(major, minor, out["P"].to_numpy())
        if len(kept) < len(out):
            n_dup += len(out) - len(kept)
            out = _rows_of(out, kept)
            order_rows = order_rows[kept]
    qc["n_duplicates"] = n_dup
    if n_dup:
        logger.warning(
            "%s: %s duplicated SNP (same ID or same CHR:BP:A1:A2) dropped; the row with the smallest P was kept",
            where,
            _plural(n_dup, "row of a", "rows of a"),
        )
    qc["n_rows_kept"] = len(out)
    out.attrs["trait"] = trait
    if found.get("CHR") == "hm_chrom" and found.get("BP") == "hm_pos":
        out.attrs["build"] = "GRCh38"  # the GWAS Catalog's harmonisation
        logger.info("%s: GWAS Catalog harmonised columns (hm_*) read: positions on GRCh38", where)
    elif (stated := _build_of_column(found["BP"])) is not None:
        out.attrs["build"] = stated
        logger.info("%s: positions read from column %r: on %s", where, found["BP"], out.attrs["build"])
    elif short.get("build"):
        out.attrs["build"] = short["build"]
        logger.info("%s: positions on %s, as the file's meta lines state", where, short["build"])
    out.attrs["columns_recognised"] = {src: std for std, src in found.items()}
    out.attrs["qc"] = qc
    logger.info("read %s of trait %r from %s", _plural(len(out), "SNP"), trait, where)
    return out


# --------------------------------------------------------------------------------------------------
# gene locations
# --------------------------------------------------------------------------------------------------
_GENE_LOC_ALIASES = {
    "GENE": ("gene", "geneid", "id", "entrez", "entrezid", "ensembl", "ensemblid"),
    "CHR": ("chr", "chrom", "chromosome"),
    "START": ("start", "txstart", "genestart"),
    "STOP": ("stop", "end", "txend", "geneend"),
    "STRAND": ("strand",),
    "NAME": ("name", "symbol", "genename", "genesymbol", "hgnc"),
}


def _read_gene_loc(gene_loc) -> tuple[pd.DataFrame, str]:
    """User gene locations as columns GENE CHR START STOP STRAND NAME (strings / int64)."""
    if isinstance(gene_loc, pd.DataFrame):
        where = "gene_loc"
        df = gene_loc.reset_index(drop=True)
        normed = {c: _norm_name(c) for c in df.columns}
        named = {}
        for std, aliases in _GENE_LOC_ALIASES.items():
            hit = next((c for a in aliases for c in df.columns if normed[c] == a), None)
            if hit is not None:
                named[std] = hit
        if all(k in named for k in ("GENE", "CHR", "START", "STOP")):
            df = pd.DataFrame({std: df[src] for std, src in named.items()})
        elif df.shape[1] >= 4 and not named:
            df = df.iloc[:, :6].copy()
            df.columns = ["GENE", "CHR", "START", "STOP", "STRAND", "NAME"][: df.shape[1]]
        else:
            raise ValueError(
                f"gene_loc DataFrame needs columns GENE, CHR, START, STOP (optionally STRAND, NAME), found "
                f"{list(gene_loc.columns)}; rename them (psysc.gwas.gene_table() columns gene_id, symbol, chrom, "
                "start, end, strand are also accepted)"
            )
    elif isinstance(gene_loc, str | os.PathLike):
        where = str(gene_loc)
        text = _read_text(gene_loc)
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
        if not lines:
            raise ValueError(f"{where} is empty; expected MAGMA gene.loc lines 'GENE CHR START STOP STRAND NAME'")
        first = lines[0].split()
        has_header = len(first) < 3 or not first[2].isdigit()
        df = pd.read_csv(
            io.StringIO("\n".join(lines)),
            sep=r"\s+",
            header=None,
            dtype=str,
            skiprows=1 if has_header else 0,
            keep_default_na=False,
        )
        if df.shape[1] < 4:
            raise ValueError(
                f"{where}: {df.shape[1]} column(s); a MAGMA gene.loc has 'GENE CHR START STOP STRAND [NAME]' "
                "separated by whitespace"
            )
        df = df.iloc[:, :6]
        df.columns = ["GENE", "CHR", "START", "STOP", "STRAND", "NAME"][: df.shape[1]]
    else:
        raise ValueError(f"gene_loc must be a path or a DataFrame, not {type(gene_loc).__name__}")
    out = pd.DataFrame({"GENE": df["GENE"].astype(str).str.strip()})
    out["CHR"] = _normalise_chroms(df["CHR"])
    for c in ("START", "STOP"):
        v, bad = _parse_numeric(df[c])
        if bad.any() or np.isnan(v).any() or (v != np.floor(v)).any():
            i = int(np.argmax(bad | np.isnan(v) | (v != np.floor(v))))
            raise ValueError(f"{where}, gene row {i + 1}: {c} = {_shown(df[c].iloc[i])} is not an integer position")
        out[c] = v.astype(np.int64)
    out["STRAND"] = _normalise_strands(df["STRAND"], where) if "STRAND" in df else "+"
    out["NAME"] = df["NAME"].astype(str).str.strip().to_numpy() if "NAME" in df else ""
    bad = (out["START"] < 1) | (out["STOP"] < out["START"])
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise ValueError(
            f"{where}, gene {out['GENE'].iloc[i]!r}: START {out['START'].iloc[i]} / STOP {out['STOP'].iloc[i]} "
            "is not an interval with 1 <= START <= STOP; fix the gene locations"
        )
    n_other = int(out["CHR"].isna().sum())
    if n_other:
        logger.info("%s: %s on chromosomes other than 1-22, X, Y, MT ignored", where, _plural(n_other, "gene"))
        out = out[out["CHR"].notna()].reset_index(drop=True)
    if len(out) == 0:
        raise ValueError(
            f"{where}: no gene is on a chromosome psysc knows (1-22, X, Y, MT, with or without 'chr'; found e.g. "
            f"{df['CHR'].astype(str).unique()[:5].tolist()}); rename the chromosomes of the gene locations"
        )
    return out, where


#: how gene tables write a strand: '+' / '-' (MAGMA, GTF), 1 / -1 (Ensembl BioMart), and an unknown one
_STRANDS = {"+": "+", "1": "+", "+1": "+", "1.0": "+", "-": "-", "-1": "-", "-1.0": "-", ".": ".", "": ".",
            "nan": ".", "?": ".", "*": ".", "0": "."}


def _normalise_strands(values: pd.Series, where: str) -> np.ndarray:
    """Strands as '+', '-' or '.' (unknown); any other code is refused with the row that has it."""
    text = values.astype(str).str.strip().str.lower()
    out = text.map(_STRANDS)
    if out.isna().any():
        i = int(np.argmax(out.isna().to_numpy()))
        raise ValueError(f"{where}, gene row {i + 1}: STRAND = {_shown(values.iloc[i])} is not a strand; psysc reads "
                         "+ / - (or 1 / -1, '.' for unknown)")
    return out.to_numpy(dtype=object)


def _bundled_gene_loc(biotypes) -> pd.DataFrame:
    table = gene_table("human")
    if biotypes is not None:
        if isinstance(biotypes, str):
            biotypes = (biotypes,)
        biotypes = tuple(biotypes)
        unknown = sorted(set(biotypes) - set(table["biotype"]))
        if unknown:
            raise ValueError(
                f"biotypes {unknown} are not in the bundled GENCODE v48 table; common ones: protein_coding, lncRNA "
                "(pass biotypes=None for every gene)"
            )
        table = table[table["biotype"].isin(biotypes)]
    out = pd.DataFrame(
        {
            "GENE": table["gene_id"].to_numpy(),
            "CHR": _normalise_chroms(table["chrom"]),
            "START": table["start"].to_numpy(np.int64),
            "STOP": table["end"].to_numpy(np.int64),
            "STRAND": table["strand"].to_numpy(),
            "NAME": table["symbol"].to_numpy(),
        }
    )
    # contigs (GL..., KI...) carry no GWAS SNPs of 1-22, X, Y, MT
    return out[out["CHR"].notna()].reset_index(drop=True)


def _gene_windows(genes: pd.DataFrame, window) -> tuple[np.ndarray, np.ndarray]:
    """[lo, hi] (1-based, inclusive) of every gene window; (upstream, downstream) follows the strand."""
    if isinstance(window, tuple | list):
        if len(window) != 2:
            raise ValueError(f"window must be an integer or a pair (upstream, downstream), got {window!r}")
        up, down = window
    else:
        up = down = window
    for w in (up, down):
        if isinstance(w, bool) or not isinstance(w, int | np.integer) or w < 0:
            raise ValueError(f"window must be a non-negative integer number of bases (or a pair), got {window!r}")
    start, stop = genes["START"].to_numpy(np.int64), genes["STOP"].to_numpy(np.int64)
    minus = (genes["STRAND"].astype(str) == "-").to_numpy()
    unknown = (genes["STRAND"].astype(str) == ".").to_numpy()
    if up != down and unknown.any():
        logger.warning("%s of the gene locations have no strand ('.'): their window (%d bases upstream, %d "
                       "downstream) is placed as for the + strand", _plural(int(unknown.sum()), "gene"), up, down)
    lo = start - np.where(minus, down, up)
    hi = stop + np.where(minus, up, down)
    return np.maximum(lo, 1), hi


# --------------------------------------------------------------------------------------------------
# liftover with a user-supplied UCSC chain file
# --------------------------------------------------------------------------------------------------
def _read_chain(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Aligned blocks of a UCSC chain file, sorted by source position.

    Format (https://genome.ucsc.edu/goldenPath/help/chain.html): a header line
    ``chain score tName tSize tStrand tStart tEnd qName qSize qStrand qStart qEnd id`` followed by
    lines ``size dt dq`` (an ungapped block of ``size`` bases, then gaps of ``dt`` / ``dq`` bases)
    and a last line ``size``; coordinates are 0-based, and on the reverse strand when
    ``qStrand == '-'``. ``t`` is the source assembly (e.g. hg19 in hg19ToHg38), ``q`` the target.
    """
    text = _read_text(path)
    t_code, t_start, size, q_chrom, q_start, q_minus, q_size = [], [], [], [], [], [], []
    tc = 0
    tpos = qpos = 0
    qname, qminus, qsz = None, False, 0
    for ln, line in enumerate(text.split("\n"), start=1):
        f = line.split()
        if not f or f[0].startswith("#"):
            continue
        if f[0] == "chain":
            if len(f) < 12:
                raise ValueError(f"{path}, line {ln}: a chain header needs 12 fields; is this a UCSC chain file?")
            tname = _normalise_chrom_value(f[2])
            tc = _CHROM_CODE.get(tname, 0) if tname else 0
            tpos, qname, qsz, qminus, qpos = int(f[5]), _normalise_chrom_value(f[7]), int(f[8]), f[9] == "-", int(f[10])
            continue
        try:
            nums = [int(x) for x in f]
        except ValueError:
            raise ValueError(f"{path}, line {ln}: expected 'size dt dq' numbers, found {line[:60]!r}") from None
        if tc and qname:
            t_code.append(tc)
            t_start.append(tpos)
            size.append(nums[0])
            q_chrom.append(qname)
            q_start.append(qpos)
            q_minus.append(qminus)
            q_size.append(qsz)
        if len(nums) == 3:
            tpos += nums[0] + nums[1]
            qpos += nums[0] + nums[2]
    if not t_code:
        raise ValueError(f"{path}: no aligned block between chromosomes 1-22, X, Y, MT; is this a UCSC chain file?")
    key = np.asarray(t_code, np.int64) * _KEY_SHIFT + np.asarray(t_start, np.int64)
    order = np.argsort(key, kind="stable")
    blocks = {
        "key": key[order],
        "size": np.asarray(size, np.int64)[order],
        "q_chrom": np.asarray(q_chrom, dtype=object)[order],
        "q_start": np.asarray(q_start, np.int64)[order],
        "q_minus": np.asarray(q_minus, bool)[order],
        "q_size": np.asarray(q_size, np.int64)[order],
    }
    ends = blocks["key"] + blocks["size"]
    blocks["overlapping"] = bool((blocks["key"][1:] < np.maximum.accumulate(ends)[:-1]).any())
    blocks["sorted_ends"] = np.sort(ends)
    return blocks


def _liftover(chrom: np.ndarray, bp: np.ndarray, blocks: dict) -> tuple[np.ndarray, np.ndarray]:
    """New (chromosome, 1-based position) of each SNP; None / -1 where unmapped. Vectorised."""
    x = _chrom_codes(chrom) * _KEY_SHIFT + (bp.astype(np.int64) - 1)  # 0-based key
    i = np.searchsorted(blocks["key"], x, side="right") - 1
    ok = (i >= 0) & (_chrom_codes(chrom) > 0)
    i = np.where(ok, i, 0)
    ok &= x < blocks["key"][i] + blocks["size"][i]
    if blocks["overlapping"]:  # a position in more than one block is ambiguous: unmapped (as liftOver)
        n_cover = np.searchsorted(blocks["key"], x, side="right") - np.searchsorted(blocks["sorted_ends"], x, "right")
        ok &= n_cover == 1
    offset = x - blocks["key"][i]
    q0 = blocks["q_start"][i] + offset
    q0 = np.where(blocks["q_minus"][i], blocks["q_size"][i] - 1 - q0, q0)
    new_chrom = np.where(ok, blocks["q_chrom"][i], None)
    return new_chrom, np.where(ok, q0 + 1, -1)


# --------------------------------------------------------------------------------------------------
# gene P-values
# --------------------------------------------------------------------------------------------------
def _gene_pvalues(p: np.ndarray, starts: np.ndarray, counts: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Gene (P, ZSTAT) from the SNP P-values ``p`` grouped contiguously (``starts``, ``counts``)."""
    m = counts.astype(np.float64)
    m_rep = np.repeat(counts, counts)
    # a P-value of exactly 1 (a rounded P close to 1) would make the Cauchy sum or the Stouffer sum -inf, and
    # the gene P 1 with ZSTAT -8.2 (the most negative finite z) whatever the other SNPs: it is set to 1 - 1/m,
    # m the gene's number of SNPs, a common convention of ACAT code; 1/2 for a lone SNP (z = 0), as for two
    p_use = np.where(p >= 1.0, 1.0 - 1.0 / np.maximum(m_rep, 2), p)
    if method == "acat":
        with np.errstate(over="ignore"):  # SNPs of P <= 1e-300 (APOE): a sum beyond float64 is +inf, gene P 0
            t = np.add.reduceat(cauchy_terms(p_use), starts) / m
        p_gene = cauchy_sf(t)
    elif method == "minp":
        pmin = np.minimum.reduceat(p_use, starts)
        p_gene = -np.expm1(m * np.log1p(-pmin))  # 1 - (1 - pmin)^m, exact for tiny pmin
    elif method == "stouffer":
        z = stats.norm.isf(p_use)
        zstat = np.add.reduceat(z, starts) / np.sqrt(m)
        return np.maximum(stats.norm.sf(zstat), _P_FLOOR), zstat
    else:  # pragma: no cover - checked by the caller
        raise ValueError(method)
    p_gene = np.clip(p_gene, _P_FLOOR, 1.0)
    zstat = stats.norm.isf(np.minimum(p_gene, np.nextafter(1.0, 0.0)))
    return p_gene, zstat


def sumstats_to_genes(
    sumstats,
    *,
    build: str | None = None,
    window: int | tuple[int, int] = 10_000,
    method: str = "acat",
    gene_loc=None,
    gene_id: str = "symbol",
    biotypes: tuple[str, ...] | None = ("protein_coding",),
    min_snps: int = 1,
    chain: str | os.PathLike | None = None,
    trait: str | None = None,
) -> pd.DataFrame:
    r"""Gene-level P-values from GWAS summary statistics (a fast approximation of MAGMA).

    Each SNP is assigned to every gene whose window ``[start - window, end + window]`` contains
    it, and the P-values of a gene's SNPs are combined into one gene P-value; the gene z-score is
    ``ZSTAT = Phi^-1(1 - P)``, as MAGMA's. Gene windows come from the bundled GENCODE v48 table
    (GRCh38; protein-coding genes by default) or from a MAGMA ``gene.loc`` file.

    Parameters
    ----------
    sumstats
        The output of :func:`read_sumstats`, or anything it reads (a path or a DataFrame).
    build
        Genome build of the SNP positions: ``"GRCh38"`` (``"hg38"``) or ``"GRCh37"`` (``"hg19"``). Nothing in
        a summary-statistics file says which build its positions are on, and many are GRCh37, whose positions
        silently hit the wrong genes on a GRCh38 table: when ``build`` is not given, the build that
        :func:`read_sumstats` found is used (GRCh38 for the GWAS Catalog's harmonised ``hm_*`` columns, a
        ``##genome_build`` line, a position column named after its build), else the build of ``gene_loc`` is
        assumed with a warning (``attrs["build_assumed"]`` True); without ``gene_loc`` it is an error.
        The bundled gene table is GRCh38; GRCh37 positions need ``gene_loc`` (e.g. MAGMA's
        ``NCBI37.3.gene.loc``) or ``chain``. With ``gene_loc``, the positions must be on the build of
        ``gene_loc``; ``build`` is then only recorded (without it, ``attrs["build"]`` reads
        ``"that of gene_loc"``).
    window
        Bases added on each side of a gene (MAGMA's ``window=10`` is ``10_000``), or a pair
        ``(upstream, downstream)`` oriented by the gene's strand (MAGMA.Celltyping's 35 kb up / 10 kb
        down is ``(35_000, 10_000)``).
    method
        ``"acat"`` (Cauchy combination), ``"minp"`` (Sidak-corrected top SNP) or ``"stouffer"``;
        see Notes.
    gene_loc
        Gene locations instead of the bundled table: a MAGMA ``gene.loc`` path (whitespace, no
        header: ``GENE CHR START STOP STRAND [NAME]``) or a DataFrame with those columns
        (case-insensitive; :func:`psysc.gwas.gene_table` columns are accepted too).
    gene_id
        Index of the result: ``"symbol"`` (gene symbol; with ``gene_loc``, its NAME column when
        there is one, else GENE) or ``"ensembl"`` (Ensembl ID of the bundled table, or GENE of
        ``gene_loc``; ``"gene_id"`` is taken alike), as in :func:`psysc.gwas.panel`. A symbol of the bundled
        table that names several genes stands for the gene :func:`psysc.gwas.to_ensembl` maps it to (e.g. PDE8B:
        ENSG00000113231); one it cannot settle, and an ID repeated in ``gene_loc``, are placed at their first
        location (logged).
    biotypes
        GENCODE biotypes of the bundled table to keep (``None``: all genes). MAGMA's gene.loc files
        hold protein-coding genes, hence the default.
    min_snps
        Genes with fewer SNPs are left out.
    chain
        Path to a UCSC chain file that lifts the SNP positions onto GRCh38 (the bundled table)
        before mapping, e.g. ``hg19ToHg38.over.chain.gz`` from
        https://hgdownload.soe.ucsc.edu/goldenPath/hg19/liftOver/. psysc does not ship one: UCSC
        licenses its chain files for non-commercial use only, so you download it under UCSC's
        terms. A position lifts when it lies in exactly one aligned block (reverse-strand chains
        are handled); the others are counted, logged and left out. Alleles are not complemented
        (gene P-values do not use them).
    trait
        Name stored in ``attrs["trait"]``; defaults to ``sumstats.attrs["trait"]``.

    Returns
    -------
    pandas.DataFrame
        Indexed by gene (``index.name == "GENE"``), sorted by ``P``, like MAGMA's ``.genes.out``:
        ``CHR``, ``START``, ``STOP`` (the gene window, as MAGMA reports it), ``NSNPS``, ``ZSTAT``,
        ``P`` and ``TOP_SNP`` (the gene's SNP with the smallest P). ``attrs``: ``"trait"``,
        ``"method"``, ``"build"`` (of the output coordinates), ``"build_assumed"``, ``"window"``.

    Raises
    ------
    ValueError
        If the build of the positions is neither given, nor stated by the file, nor that of ``gene_loc``; if no
        SNP lies in any gene window (the message tells whether the chromosome names or the
        build look wrong, and what to pass), or an argument is invalid. Fewer than 1 % of the
        SNPs in gene windows gives a warning.

    Notes
    -----
    What each method assumes about linkage disequilibrium (LD) between a gene's SNPs:

    - ``"acat"``: the Cauchy combination test (ACAT; Liu & Xie 2020 JASA 115:393; Liu et al. 2019
      AJHG 104:410, ACAT-V), equal weights. Its P-value stays valid under arbitrary dependence for
      small P-values, so it suits SNPs in LD; it is driven by the strongest SNPs. A SNP P-value of
      exactly 1 (a P close to 1, rounded) is set to ``1 - 1/m`` (m SNPs in the gene; 1/2 for a lone SNP) so
      that it cannot force the gene to P = 1 and ZSTAT to -8.2, the most negative finite z.
    - ``"minp"``: ``1 - (1 - p_min)^m``, the Sidak correction of the top SNP for m independent
      tests. Under LD the effective number of tests is smaller than m, so it is conservative. P = 1 as for
      ``"acat"``.
    - ``"stouffer"``: ``sum(z_i) / sqrt(m)`` with ``z_i = Phi^-1(1 - p_i)``. It assumes independent
      SNPs; under LD the sum's variance exceeds m, so it is anti-conservative, more so for large
      genes in strong LD. A SNP P-value of exactly 1 is set to ``1 - 1/m``, as for ``"acat"`` (kept as
      it is, it would add ``z = -8.2``, the most negative finite value, and dominate the sum).

    None of them models LD the way MAGMA does (SNP-wise mean model with an LD reference panel,
    gene size and density corrected in gene-property analyses). When a real MAGMA run (or the
    MAGMA gene z-scores that scDRS and seismic take as input) is available, use it
    (:func:`psysc.gwas.read_magma`); this function is a fast approximation for when only summary
    statistics are at hand. SNP-to-gene assignment is vectorised: SNPs are sorted once and each
    window is located with :func:`numpy.searchsorted`.

    Examples
    --------
    >>> import pandas as pd
    >>> import psysc
    >>> ss = psysc.gwas.read_sumstats(
    ...     pd.DataFrame({"SNP": ["rs429358", "rs7412", "rs1"], "CHR": [19, 19, 1],
    ...                   "BP": [44908684, 44908822, 1_000_000], "P": [1e-300, 1e-40, 0.5]}),
    ...     trait="AD",
    ... )
    >>> genes = psysc.gwas.sumstats_to_genes(ss, build="GRCh38", window=0)
    >>> genes.loc["APOE", ["CHR", "TOP_SNP"]].tolist(), int(genes.loc["APOE", "NSNPS"])
    (['19', 'rs429358'], 2)
    >>> genes.attrs["method"], genes.attrs["build"]
    ('acat', 'GRCh38')

    """
    if not (isinstance(sumstats, pd.DataFrame) and "columns_recognised" in sumstats.attrs):
        sumstats = read_sumstats(sumstats)
    for col in ("CHR", "BP", "P"):
        if col not in sumstats.columns:
            raise ValueError(f"sumstats has no {col} column; read it with psysc.gwas.read_sumstats")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if gene_id not in ("symbol", "ensembl", "gene_id"):
        raise ValueError(f"gene_id must be 'symbol' or 'ensembl', got {gene_id!r}")
    gene_id = "gene_id" if gene_id == "ensembl" else gene_id  # the column of the bundled table
    if isinstance(min_snps, bool) or not isinstance(min_snps, int | np.integer) or min_snps < 1:
        raise ValueError(f"min_snps must be a positive integer, got {min_snps!r}")
    stated = sumstats.attrs.get("build")  # known from the file (GWAS Catalog hm_* or pos_b37-like columns)
    if build is None and stated:
        build = stated
    elif stated and _BUILDS.get(str(build).lower()) not in (None, stated):
        logger.warning("build=%r given, but the file's position column is on %s; build=%r is used", build, stated,
                       build)
    build_assumed = build is None
    if build_assumed and gene_loc is not None:  # psysc cannot tell the build of a user's gene table
        logger.warning(
            "build not given: the SNP positions are taken to be on the build of gene_loc (MAGMA's NCBI37.3.gene.loc "
            "is GRCh37, NCBI38.gene.loc GRCh38); pass build= to check and record it"
        )
        build_std = GENE_LOC_BUILD
    else:
        if build_assumed:
            raise ValueError(
                "build not given, and the file does not state it: pass the genome build of the SNP positions, "
                "build='GRCh38' (hg38) or build='GRCh37' (hg19, with gene_loc= or chain=). Most GWAS files do not say "
                "it and many are on GRCh37 (e.g. the PGC's); taken as GRCh38, their positions would silently hit "
                "the wrong genes of the bundled GRCh38 table. The README of a GWAS, or its positions of known SNPs "
                "(rs429358 in APOE: 19:45411941 on GRCh37, 19:44908684 on GRCh38), tell the build."
            )
        build_std = _BUILDS.get(str(build).lower())
        if build_std is None:
            raise ValueError(f"build must be 'GRCh38' (hg38) or 'GRCh37' (hg19), got {build!r}")
    if trait is None:
        trait = sumstats.attrs.get("trait") or "sumstats"

    # gene locations
    if gene_loc is None:
        genes = _bundled_gene_loc(biotypes)
        where_genes = "the bundled GENCODE v48 GRCh38 table"
        if build_std != "GRCh38" and chain is None:
            raise ValueError(
                f"build={build!r}: the bundled gene table is on GRCh38. For GRCh37/hg19 positions pass "
                "gene_loc= a GRCh37 gene table, e.g. MAGMA's NCBI37.3.gene.loc (https://cncr.nl/research/magma, "
                "'Gene locations, build 37'), or chain= a UCSC hg19ToHg38.over.chain.gz that you downloaded, or "
                "lift the positions to GRCh38 first"
            )
        if build_std == "GRCh38" and chain is not None:
            raise ValueError("build='GRCh38' positions match the bundled table already; drop chain=")
    else:
        if chain is not None:
            raise ValueError(
                "chain= lifts positions onto the bundled GRCh38 gene table; with gene_loc=, give positions on the "
                "build of gene_loc and drop chain="
            )
        genes, where_genes = _read_gene_loc(gene_loc)
    if gene_id == "symbol":
        has_name = (genes["NAME"] != "").any()
        if gene_loc is not None and not has_name:
            logger.info("%s has no gene names: genes are named by its GENE column", where_genes)
            genes["ID"] = genes["GENE"]
        else:
            no_name = genes["NAME"] == ""
            if no_name.any():
                logger.info(
                    "%s: %s without a symbol left out (gene_id='ensembl' keeps them)",
                    where_genes,
                    _plural(int(no_name.sum()), "gene"),
                )
            genes = genes[~no_name].reset_index(drop=True)
            genes["ID"] = genes["NAME"]
    else:
        genes["ID"] = genes["GENE"]
    genes["code"] = _chrom_codes(genes["CHR"].to_numpy())
    genes = genes.sort_values(["code", "START", "STOP"], kind="stable").reset_index(drop=True)
    if gene_loc is None and gene_id == "symbol":
        genes = _gene_of_each_symbol(genes)
    dup = genes["ID"].duplicated()
    if dup.any():
        logger.info(
            "%s: %s with an ID already used kept only at the first location (%s)",
            where_genes,
            _plural(int(dup.sum()), "gene"),
            ", ".join(genes.loc[dup, "ID"].head(5)),
        )
        genes = genes[~dup].reset_index(drop=True)
    lo, hi = _gene_windows(genes, window)

    # SNP positions (lifted when a chain is given)
    chrom = sumstats["CHR"].astype(str).to_numpy()
    bp = sumstats["BP"].to_numpy(np.int64)
    p = sumstats["P"].to_numpy(np.float64)
    snp_ids = (
        sumstats["SNP"].astype(str).to_numpy()
        if "SNP" in sumstats
        else np.array([f"{c}:{b}" for c, b in zip(chrom, bp, strict=True)], dtype=object)
    )
    n_snps = len(bp)
    bad_p = ~((p > 0) & (p <= 1))
    if bad_p.any():
        raise ValueError(
            f"sumstats has {_plural(int(bad_p.sum()), 'P-value')} outside (0, 1] or missing; read the table with "
            "psysc.gwas.read_sumstats, which checks and cleans them"
        )
    out_build = build_std
    if chain is not None:
        blocks = _read_chain(chain)
        chrom, bp = _liftover(chrom, bp, blocks)
        unmapped = bp < 0
        logger.info(
            "lifted %s of %s with %s; %s did not map and are left out",
            _plural(int((~unmapped).sum()), "SNP"),
            n_snps,
            chain,
            _plural(int(unmapped.sum()), "SNP"),
        )
        if unmapped.all():
            raise ValueError(f"no SNP could be lifted with {chain}; is build={build!r} the build of the positions?")
        keep = ~unmapped
        chrom, bp, p, snp_ids = chrom[keep], bp[keep], p[keep], snp_ids[keep]
        out_build = "GRCh38"

    # SNP -> gene windows: one sorted int64 key (chromosome code * 2**32 + position), two searchsorted
    codes = _chrom_codes(chrom)
    key = codes * _KEY_SHIFT + bp
    order = np.argsort(key, kind="stable")
    key_sorted = key[order]
    g_code = genes["code"].to_numpy(np.int64)
    i0 = np.searchsorted(key_sorted, g_code * _KEY_SHIFT + lo, side="left")
    i1 = np.searchsorted(key_sorted, g_code * _KEY_SHIFT + hi, side="right")
    counts = i1 - i0
    has = counts >= min_snps
    n_pairs = int(counts.sum())
    in_any = np.zeros(len(key), dtype=bool)
    if n_pairs:
        seg = np.zeros(len(key) + 1, dtype=np.int64)  # mark sorted SNPs covered by some window
        np.add.at(seg, i0, 1)
        np.add.at(seg, i1, -1)
        in_any[order] = np.cumsum(seg[:-1]) > 0
    n_in = int(in_any.sum())
    shared = sorted(set(chrom[codes > 0]) & set(genes["CHR"]), key=lambda c: _CHROM_CODE[c])
    if n_in == 0:
        snp_chroms = sorted({str(c) for c in chrom}, key=lambda c: _CHROM_CODE.get(c, 99))
        if not shared:
            cause = (
                f"no chromosome is shared: SNPs are on {snp_chroms[:10]}, genes on "
                f"{sorted(set(genes['CHR']), key=lambda c: _CHROM_CODE[c])[:10]}... Check the chromosome column "
                "(read the table with psysc.gwas.read_sumstats, which normalises 'chr1'/'1', 23/X) and the "
                "gene locations"
            )
        elif gene_loc is not None:
            cause = (
                f"SNPs on chromosomes {shared[:10]} are all outside the gene windows of {where_genes} (window = "
                f"{window}). The positions are probably on another genome build than gene_loc: give the gene "
                "locations of the positions' build (MAGMA: NCBI37.3.gene.loc for GRCh37/hg19, NCBI38.gene.loc for "
                "GRCh38), or leave gene_loc out for GRCh38 positions (the bundled table), or check that BP is the "
                "base-pair position"
            )
        else:
            cause = (
                f"SNPs on chromosomes {shared[:10]} are all outside the gene windows of {where_genes} (window = "
                f"{window}). The positions are probably on another genome build than the gene locations "
                f"(build={build!r}): pass build='GRCh37' with gene_loc= (e.g. MAGMA's NCBI37.3.gene.loc) or "
                "chain= for hg19 positions, or check that BP is the base-pair position"
            )
        raise ValueError(f"none of the {n_snps} SNPs lies in a gene window: {cause}")
    n_used = len(key)
    frac = n_in / n_used
    logger.info(
        "%s of %d (%.1f%%) lie in no gene window of %s (window %s); they are left out",
        _plural(n_used - n_in, "SNP"),
        n_used,
        100 * (1 - frac),
        where_genes,
        window,
    )
    if frac < 0.01:
        msg = (
            f"only {n_in} of {n_used} SNPs ({100 * frac:.2f}%) lie in a gene window; genome-wide summary "
            "statistics usually have 30-70% in +/-10 kb windows. Check that build= matches the positions"
        )
        logger.warning(msg)
        warnings.warn(msg, UserWarning, stacklevel=2)

    # pairs (gene, SNP), contiguous per gene in gene order
    sel = np.flatnonzero(has)
    if len(sel) == 0:
        raise ValueError(f"no gene has at least min_snps={min_snps} SNPs; lower min_snps")
    c_sel = counts[sel]
    starts = np.concatenate(([0], np.cumsum(c_sel)[:-1]))
    within = np.arange(int(c_sel.sum())) - np.repeat(starts, c_sel)
    snp_idx = order[np.repeat(i0[sel], c_sel) + within]
    p_pairs = p[snp_idx]
    p_gene, zstat = _gene_pvalues(p_pairs, starts, c_sel, method)
    # top SNP: the smallest P within each gene (ties: the first by position)
    grp = np.repeat(np.arange(len(sel)), c_sel)
    best = np.lexsort((np.arange(len(p_pairs)), p_pairs, grp))[starts]
    top = snp_ids[snp_idx[best]]

    g = genes.iloc[sel]
    result = pd.DataFrame(
        {
            "CHR": g["CHR"].to_numpy(dtype=object),
            "START": lo[sel],
            "STOP": hi[sel],
            "NSNPS": c_sel.astype(np.int64),
            "ZSTAT": zstat,
            "P": p_gene,
            "TOP_SNP": top,
        },
        index=pd.Index(g["ID"].to_numpy(dtype=object), name="GENE"),
    )
    result = result.iloc[np.argsort(p_gene, kind="stable")]
    result.attrs.update({"trait": trait, "method": method, "build": out_build, "build_assumed": build_assumed,
                         "window": window})
    logger.info(
        "%s: %s with >= %d SNP(s) in a window (method %r); top gene %s (P = %.3g)",
        trait,
        _plural(len(result), "gene"),
        min_snps,
        method,
        result.index[0],
        result["P"].iloc[0],
    )
    return result


def genes_to_gene_set(
    table: pd.DataFrame | Mapping[str, pd.DataFrame],
    *,
    n_top: int | None = 1000,
    fdr: float | None = None,
    fwer: float | None = None,
    weight: str | None = None,
    trait: str | None = None,
) -> dict[str, pd.Series]:
    r"""Turn a gene table (from :func:`~psysc.gwas.sumstats_to_genes`) into a weighted gene set.

    Genes are selected as :func:`psysc.gwas.read_magma` and ``scdrs munge-gs`` do: the ``n_top``
    genes with the smallest ``P`` (ties kept in table order) or, with ``fdr`` (``fwer``), those passing a
    Benjamini-Hochberg FDR (Bonferroni FWER) threshold, their number capped to ``[min(100, n_top), n_top]``;
    weighted by ``ZSTAT`` clipped at 10 (selected genes of negative ZSTAT, whose weight is negative, are
    counted in the log).

    Parameters
    ----------
    table
        A DataFrame indexed by gene with columns ``P`` and ``ZSTAT`` (e.g. the output of
        :func:`sumstats_to_genes`), or a dict ``{trait: DataFrame}`` of them (:func:`read_magma` with ``table=True``),
        each made a gene set named by its key.
    n_top
        Number of genes to keep (all of them when the table is shorter; ``None``: every gene).
    fdr, fwer
        Keep the genes passing this FDR (Benjamini-Hochberg) or FWER (Bonferroni) level instead, at least
        ``min(100, n_top)`` and at most ``n_top`` of them (at most one of the two).
    weight
        ``"zscore"`` (ZSTAT clipped at 10; the default with ``n_top``), ``"zstat"`` (ZSTAT as it is; the default
        with ``n_top=None``) or ``"uniform"`` (every weight 1.0), as :func:`psysc.gwas.read_magma`.
    trait
        Name of the gene set; defaults to ``table.attrs["trait"]``.

    Returns
    -------
    dict[str, pandas.Series]
        ``{trait: Series}`` indexed by gene (``index.name == "gene"``) with float64 weights, by
        increasing P.

    Examples
    --------
    >>> import pandas as pd
    >>> import psysc
    >>> table = pd.DataFrame({"ZSTAT": [12.1, 4.2, 2.9], "P": [5e-34, 1.3e-5, 1.9e-3]},
    ...                      index=pd.Index(["APOE", "TREM2", "CLU"], name="GENE"))
    >>> table.attrs["trait"] = "AD"
    >>> psysc.gwas.genes_to_gene_set(table, n_top=2)["AD"].to_dict()
    {'APOE': 10.0, 'TREM2': 4.2}

    """
    if isinstance(table, Mapping):  # {trait: table}, as read_magma(..., table=True) returns
        if trait is not None:
            raise ValueError("trait= names one table; the tables of a dict are named by its keys")
        sets = {}
        for name, one in table.items():
            sets.update(genes_to_gene_set(one, n_top=n_top, fdr=fdr, fwer=fwer, weight=weight, trait=str(name)))
        return sets
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a DataFrame (the output of sumstats_to_genes) or a dict of them (as "
                        f"read_magma(..., table=True) returns), not {type(table).__name__}")
    missing = [c for c in ("P", "ZSTAT") if c not in table.columns]
    if missing:
        raise ValueError(
            f"table has no column(s) {missing} (found {list(table.columns)}); pass the output of "
            "psysc.gwas.sumstats_to_genes"
        )
    weight = _check_selection(n_top, fdr, fwer, weight)
    if trait is None:
        trait = table.attrs.get("trait")
    if not isinstance(trait, str) or not trait:
        raise ValueError("the table has no attrs['trait']; pass trait=")
    if table.index.has_duplicates:
        dup = table.index[table.index.duplicated()].unique().tolist()
        raise ValueError(f"table has duplicated genes {dup[:10]}; keep one row per gene")
    p = table["P"].to_numpy(dtype=np.float64)
    z = table["ZSTAT"].to_numpy(dtype=np.float64)
    if not (np.isfinite(p).all() and np.isfinite(z).all()):
        raise ValueError("table has missing or non-finite P / ZSTAT values; drop those genes")
    where = f"gene set {trait!r}"
    order = _select_top(p, p, n_top, fdr, fwer, where)
    weights = _gene_weights(z[order], weight, where, "ZSTAT")
    genes = pd.Index([str(g) for g in table.index[order]], dtype=object, name="gene")
    logger.info("gene set %r: %d of %d genes", trait, len(order), len(p))
    out = pd.Series(weights.astype(np.float64), index=genes, name=trait)
    if table.attrs.get("symbol_column"):  # read_magma(table=True) of a FUMA file: the no-overlap error names it
        out.attrs["symbol_column"] = table.attrs["symbol_column"]
    return {trait: out}


__all__ = ["genes_to_gene_set", "read_sumstats", "sumstats_to_genes"]
