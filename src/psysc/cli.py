"""The ``psysc`` command line.

``psysc run`` scores every cell of a dataset for the GWAS gene sets of psychiatric disorders (and contrast
traits), tests the cell groups for enrichment and writes tables, figures and a self-contained HTML report::

    psysc run                                  # the embedded Darmanis 2015 cortex data, bundled gene sets
    psysc run --input brain.h5ad --groupby cell_state --traits SCZ,BIP,HEIGHT --out results/
    psysc run --gene-sets my_traits.gs --layer counts --quick
    psysc run --gene-sets scz.genes.out --gene-loc NCBI37.3.gene.loc   # MAGMA output named by Entrez IDs
    psysc run --gene-sets scz_sumstats.tsv.gz --build GRCh38          # GWAS summary statistics, SNPs -> genes

Bad input (missing file, unknown column or trait, expression that is not raw counts, duplicated gene names) is
reported on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import re
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ._pipeline import CELLTYPE_MIN_CELLS, MIN_GENES_PER_TRAIT

logger = logging.getLogger("psysc")

EXIT_OK = 0
EXIT_USAGE = 2
QUICK_N_CTRL = 200
QUICK_SCVI_EPOCHS = 20
DEFAULT_N_CTRL = 1000


class _InputError(Exception):
    """Bad command-line input: printed as one message, exit status 2."""


#: where the messages of psysc's Python functions name a parameter in prose ("pass stat=", "with gene_loc=", "(stat=
#: 'zscore')"), not in a line of code ("read_magma(path, gene_loc=...)")
_PROSE = r"(\b(?:pass|with|or|and) |\s\()"
#: the options of psysc's Python functions that psysc run has too, as the messages of those functions name them
_AS_OPTIONS = (
    (re.compile(_PROSE + r"stat='(zscore|pval)'"), r"\1--stat \2"),
    (re.compile(_PROSE + r"stat=(?=[\s,.;)]|$)"), r"\1--stat"),
    (re.compile(_PROSE + r"build='(GRCh3[78])'"), r"\1--build \2"),
    (re.compile(_PROSE + r"gene_loc=(?=[\s,.;)]|$)"), r"\1--gene-loc"),
    (re.compile(r"psysc\.gwas\.read_gene_list\(path, column=\.\.\., weight_column=\.\.\.\)"),
     "psysc run --gene-column ... --weight-column ..."),
    (re.compile(r"bring both to current symbols, adata\.var_names = psysc\.gwas\.current_symbols\(adata\.var_names\) "
                r"and gene_sets = psysc\.gwas\.current_symbols\(gene_sets\)"),
     "--current-symbols brings both to current symbols"),
    # a gene set of negative weights: psysc run keeps the top 1,000 genes of a table (every gene of a shorter one)
    (re.compile(r"select its top genes \(psysc\.gwas\.read_magma, read_gene_stats, genes_to_gene_set: n_top=1000\); "
                r"a table of fewer genes than n_top keeps them all, those with no association \(z < 0\) too: fdr= "
                r"keeps the associated ones"),
     "psysc run keeps the 1,000 genes of smallest P of a gene table, and every gene of a shorter one, those with no "
     "association (z < 0) too: give genome-wide statistics, or select the associated genes in Python "
     "(psysc.gwas.genes_to_gene_set(table, fdr=0.05)) and pass them as a .gs file (psysc.gwas.write_gs)"),
    # the limits psysc run sets: "(min_genes= sets the limit)", "pass min_genes=3 or less", "lower min_cells_per_group
    # of psysc.tl.celltype_specificity"
    (re.compile(_PROSE + r"min_genes=(\d+)"), r"\1--min-genes \2"),
    (re.compile(_PROSE + r"min_genes=(?=[\s,.;)]|$)"), r"\1--min-genes"),
    (re.compile(r"\bmin_cells_per_group of psysc\.tl\.celltype_specificity\b"), "--min-cells-per-group"),
    (re.compile(r"\bpass a smaller min_cells_per_group\b"), "pass a smaller --min-cells-per-group"),
    # seismic's gene filters are not options of psysc run: the Python route
    (re.compile(r"\b[Ll]ower min_cells_expressed / min_mean\b"),
     "in Python, lower min_cells_expressed / min_mean of psysc.tl.celltype_enrichment (psysc run keeps seismic's "
     "filters)"),
    # the gene-table readers' column options: "<file>: column='x' is not a column", "pass column= (the gene column)"
    (re.compile(r"(^|: |\b(?:pass|with|or|and) )(gene_|weight_|set_|)column=(?:'([^']*)')?"),
     lambda m: f"{m[1]}--{m[2][:-1] or 'gene'}-column" + (f" {m[3]!r}" if m[3] is not None else "")),
)


def _as_cli(message: str) -> str:
    """A message of psysc's Python functions with the options psysc run has named as on the command line."""
    for pattern, option in _AS_OPTIONS:
        message = pattern.sub(option, message)
    return message


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("psysc")
    except PackageNotFoundError:  # running from a source tree
        return "0.0.0"


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default unless it is None or its help already says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is None or action.default is False or "default" in text:
            return text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``psysc`` command."""
    parser = argparse.ArgumentParser(
        prog="psysc",
        description="Map the genetic risk of psychiatric disorders onto brain cell states (scDRS statistics).",
    )
    parser.add_argument("--version", action="version", version=f"psysc {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser(
        "run",
        help="score cells for GWAS gene sets, test cell groups, write tables, figures and a report",
        description=(
            "Score every cell for each trait's GWAS gene set, test each cell group for association and "
            "heterogeneity, regress the traits' gene z-scores on each group's specific expression, and write "
            "enrichment.tsv, scores.tsv.gz, heatmap.png, scores_<trait>.png, celltype_enrichment.tsv, "
            "celltype_dotplot.png, summary.json and report.html into --out."
        ),
        formatter_class=_HelpFormatter,
    )
    run.add_argument(
        "--input", metavar="H5AD",
        help="AnnData .h5ad file (or .zarr store) with raw counts (default: embedded Darmanis 2015 data)",
    )
    run.add_argument("--out", metavar="DIR", default="psysc-results/", help="output directory")
    run.add_argument(
        "--gene-sets",
        metavar="FILE",
        help="scDRS .gs file, MAGMA .genes.out/.genes.raw file, a gene x trait table of z-scores or P-values (the "
        "input of scdrs munge-gs; top 1,000 genes per trait; a single value column named ZSCORE, ZSTAT or P, or any "
        "name with --stat), a GMT file (MSigDB, Enrichr; one set per line), a list of genes, one per line, without "
        "weights, or a table of genes with --gene-column; "
        "told by name or header (default: the "
        "bundled MAGMA gene sets of 75 traits), or SNP-level GWAS summary statistics with --build",
    )
    run.add_argument(
        "--gene-column",
        metavar="NAME",
        help="the column of a --gene-sets table that names the genes: reads any table of genes (a CSV or TSV with a "
        "header, e.g. SFARI's or a supplementary table saved as CSV) as a gene list, weight 1 unless "
        "--weight-column; in a MAGMA .genes.out, the column that names its genes instead of GENE (FUMA's SYMBOL)",
    )
    run.add_argument(
        "--weight-column",
        metavar="NAME",
        help="with --gene-column: the column of numbers that weight the genes",
    )
    run.add_argument(
        "--set-column",
        metavar="NAME",
        help="with --gene-column: the column that names each gene's set (a long table of gene, set rows): one "
        "trait per value",
    )
    run.add_argument(
        "--stat",
        choices=["zscore", "pval"],
        help="what the values of a --gene-sets table are, gene z-scores or P-values (default: told from the "
        "column names, or from the values of several columns)",
    )
    run.add_argument(
        "--gene-loc",
        metavar="FILE",
        help="the MAGMA gene.loc file of the --gene-sets MAGMA run: names its genes (Entrez IDs) by gene symbol; "
        "with summary statistics and --build, the gene locations on that build (e.g. NCBI37.3.gene.loc for GRCh37)",
    )
    run.add_argument(
        "--build",
        choices=["GRCh38", "GRCh37", "hg38", "hg19"],
        help="genome build of SNP-level summary statistics given as --gene-sets: their SNPs are mapped to genes "
        "(ACAT of the SNPs within 10 kb of a gene; the bundled GENCODE GRCh38 genes, or --gene-loc for GRCh37) and "
        "the top 1,000 genes scored",
    )
    run.add_argument(
        "--traits",
        metavar="LIST",
        help="comma-separated traits (default: SCZ,BIP,MDD,ADHD,ASD and the contrasts AD,HEIGHT,LDL for the "
        "bundled gene sets, every trait of the file otherwise); aliases such as SCZ also pick their full names "
        "(PASS_Schizophrenia_Pardinas2018) in a --gene-sets file",
    )
    run.add_argument(
        "--species",
        choices=("human", "mouse"),
        default="human",
        help="species of the data's genes; with mouse, the (human) gene sets are mapped to their mouse orthologs "
        "(HCOP, as psysc.gwas.to_species) before scoring, and a --model embeds the cells under their human orthologs "
        "(psysc.pp.map_genes) (default: human)",
    )
    run.add_argument(
        "--current-symbols",
        action="store_true",
        help="bring the gene symbols of the data and of the gene sets to the current GENCODE/HGNC symbols before "
        "matching them (psysc.gwas.current_symbols), so that a gene named by an earlier symbol on one side is found "
        "on the other",
    )
    run.add_argument("--groupby", default="cell_type", help="column of obs with the cell groups to test")
    run.add_argument("--layer", default=None, help="layer with the raw counts (default: X)")
    run.add_argument(
        "--use-raw",
        action="store_true",
        help="score the raw counts in adata.raw (every gene of it, annotated by adata.raw.var), as "
        "adata.raw.to_adata() makes them; for files whose X holds normalised values, such as CELLxGENE's",
    )
    run.add_argument(
        "--gene-symbols",
        default=None,
        metavar="COLUMN",
        help="column of var with the gene symbols to match the gene sets with, instead of var_names (e.g. "
        "feature_name, where var_names are Ensembl IDs); repeated symbols are made unique as "
        "var_names_make_unique does",
    )
    run.add_argument(
        "--n-ctrl",
        type=int,
        default=None,
        metavar="N",
        help=f"control gene sets per trait (default: {DEFAULT_N_CTRL}, {QUICK_N_CTRL} with --quick)",
    )
    run.add_argument("--seed", type=int, default=0, help="random seed (controls, PCA, graph, UMAP), 0 to 2^32 - 1")
    run.add_argument(
        "--model",
        default=None,
        help="foundation model whose cell embedding builds the cell graph (default: PCA of the normalised "
        "expression): a name from psysc.models.available() (e.g. geneformer-v2-104m, scgpt-brain, scvi-census), "
        "a checkpoint directory, or 'scvi' to train an scVI model on the input (needs scvi-tools)",
    )
    run.add_argument(
        "--max-epochs",
        type=int,
        default=None,
        metavar="N",
        help=f"--model scvi only: scVI training epochs (default: scvi-tools' rule, min(400, 400 x 20,000 / cells); "
        f"{QUICK_SCVI_EPOCHS} with --quick)",
    )
    run.add_argument(
        "--min-genes", type=int, default=MIN_GENES_PER_TRAIT, metavar="N",
        help=f"genes of a gene set that must be in the data for it to be scored (default {MIN_GENES_PER_TRAIT})",
    )
    run.add_argument(
        "--min-cells-per-group", type=int, default=CELLTYPE_MIN_CELLS, metavar="N",
        help=f"smallest group of the cell-type level tests (default {CELLTYPE_MIN_CELLS}; smaller groups are left "
        "out of them, with a warning)",
    )
    run.add_argument(
        "--quick", action="store_true",
        help=f"smoke run: {QUICK_N_CTRL} control gene sets ({QUICK_SCVI_EPOCHS} training epochs with --model scvi)",
    )
    run.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    return parser


def _split_traits(text: str | None) -> list[str] | None:
    if text is None:
        return None
    traits = [t.strip() for t in text.split(",") if t.strip()]
    if not traits:
        raise _InputError("--traits is empty; give a comma-separated list such as SCZ,BIP,HEIGHT")
    return traits


def _read_input(path: str | None):
    import anndata as ad

    from . import datasets

    if path is None:
        logger.info("input: embedded Darmanis et al. 2015 human cortex data")
        return datasets.darmanis2015()
    p = Path(path)
    zarr = p.is_dir() and any((p / name).exists() for name in (".zgroup", ".zattrs", "zarr.json"))
    if p.is_dir() and not zarr:
        raise _InputError(f"--input {path!r} is a folder, but not an AnnData .zarr store; give an .h5ad file or a "
                          ".zarr store (adata.write_zarr); a 10x Genomics folder is read with "
                          "sc.read_10x_mtx(folder) and written with .write_h5ad(file)")
    if not p.exists():
        raise _InputError(f"--input {path!r}: no such file")
    kind = ".zarr store" if zarr else ".h5ad file"
    try:
        adata = ad.read_zarr(p) if zarr else ad.read_h5ad(p)
    except Exception as err:  # noqa: BLE001 - any reading failure is a bad input file
        hint = ""
        if p.suffix.lower() in {".loom", ".csv", ".tsv", ".txt", ".mtx", ".h5", ".rds"}:
            hint = (f"; psysc run reads AnnData (.h5ad or .zarr): convert {p.suffix} data with scanpy first (e.g. "
                    "sc.read_10x_h5, sc.read_loom, sc.read_csv, then adata.write_h5ad)")
        raise _InputError(f"--input {path!r} could not be read as an AnnData {kind}: {err}{hint}") from None
    logger.info("input: %s (%d cells x %d genes)", p, adata.n_obs, adata.n_vars)
    return adata


def _raw_as_data(adata, keep: str | None = None):
    """``adata.raw.to_adata()`` (``--use-raw``): every gene of ``adata.raw``, with ``adata.raw.var``.

    ``keep``: a column of ``adata.var`` (``--gene-symbols``) that ``adata.raw.var`` lacks is carried over for the genes
    of both (the others get none).
    """
    if adata.raw is None:
        raise _InputError("--use-raw: the input has no adata.raw; the raw counts must be in X, in adata.raw or in a "
                          "layer named with --layer")
    data = adata.raw.to_adata()
    if keep is not None and keep not in data.var.columns and keep in adata.var.columns:
        data.var[keep] = adata.var[keep].reindex(data.var_names).to_numpy(dtype=object)
    logger.info("--use-raw: scoring the counts of adata.raw (%d genes; X has %d)", data.n_vars, adata.n_vars)
    return data


def _symbols_as_var_names(adata, column: str):
    """The gene symbols of ``adata.var[column]`` as var_names (``--gene-symbols``), made unique.

    A gene without a symbol keeps its var_name; both those and the repeated symbols are counted in the log.
    """
    import numpy as np
    import pandas as pd

    if column not in adata.var.columns:
        raise _InputError(f"--gene-symbols {column!r} is not a column of adata.var; columns: "
                          f"{', '.join(map(str, adata.var.columns)) or 'none'}")
    values = adata.var[column].astype(object)
    text = values.astype(str).str.strip()
    missing = values.isna().to_numpy() | (text == "").to_numpy()
    names = np.where(missing, adata.var_names.astype(str).to_numpy(), text.to_numpy())
    adata.var_names = pd.Index(names.astype(str), dtype=object)
    n_repeated = int(adata.var_names.duplicated().sum())
    if n_repeated:
        adata.var_names_make_unique()
    logger.info("--gene-symbols %s: genes named by their symbols%s%s", column,
                f"; {int(missing.sum())} without one keep their name" if missing.any() else "",
                f"; {n_repeated} repeated symbols made unique (-1, -2, ...)" if n_repeated else "")
    return adata


def _gene_sets_kind(path: str | Path) -> str:
    """The kind of a gene-set file: ``"magma"``, ``"gmt"``, ``"gs"``, ``"table"``, ``"list"`` or ``"sumstats"``.

    MAGMA output and GMT files by their name, else by the content: MAGMA's columns (or the ``#`` lines of a
    ``.genes.raw``); GMT lines (name, a URL, ``NA`` or nothing, genes);
    ``TRAIT GENESET`` (scDRS ``.gs``); a gene column and trait columns with numbers below them (``scdrs
    munge-gs``'s z-score / p-value table: ``"table"``); one field, or a first line of words over lines of one field
    (a gene list, perhaps under a title); SNP-level summary statistics
    (``"sumstats"``, refused with the way to a gene set).
    """
    from .gwas._io import _MISSING_TOKENS, _read_head, _sep_of, _split_line, is_magma_header
    from .gwas._sumstats import header_position, snp_level_columns

    name = Path(path).name
    if any(suffix in name for suffix in (".genes.out", ".genes.raw", ".gsa.out", ".gpa.out")):
        return "magma"  # the gene-set analysis outputs: read_magma says what to give instead
    if ".gmt" in name.lower():
        return "gmt"
    try:
        text = _read_head(path)  # gzip told by its first bytes
    except ValueError as err:  # a spreadsheet, an archive of several files, zstd: the message says what to do
        raise _InputError(f"--gene-sets: {err}") from None
    except (OSError, EOFError):  # unreadable: the .gs reader says why
        return "gs"
    all_lines = [ln for ln in text.splitlines() if ln.strip()]
    if all_lines and all_lines[0].startswith("#") and ("VERSION" in all_lines[0] or "COVAR" in all_lines[0]):
        return "magma"  # a .genes.raw under another name
    # SNP-level statistics: the header where read_sumstats finds it (PLINK 2's '#CHROM POS ID ...', after a
    # '##' VCF-style preamble or '#' comments)
    table = [ln for ln in text[header_position(text)[0]:].splitlines() if ln.strip()]
    if table:
        header = table[0].lstrip("#").strip()
        sep = _sep_of(header)
        if snp_level_columns(_split_line(header, sep), [_split_line(line, sep) for line in table[1:21]]):
            return "sumstats"
    lines = [ln for ln in all_lines if not ln.lstrip().startswith("#")]
    if not lines:
        return "gs"

    sep = _sep_of(lines[0])
    fields = [f.upper() for f in _split_line(lines[0], sep)]
    if is_magma_header(fields):
        return "magma"
    if sep == "\t" and _is_gmt([line.split("\t") for line in lines[:20]]):
        return "gmt"
    if fields[:2] == ["TRAIT", "GENESET"]:
        return "gs"
    if len(fields) == 1:
        return "list"
    if sep is None and len(lines) > 1 and all(len(_split_line(line, None)) == 1 for line in lines[1:21]):
        return "list"  # one gene per line under a title line (read_gene_list tells a title from genes on a line)
    if len(lines) > 1:
        values = _split_line(lines[1], sep)[1:]
        if not all(_is_number(v) for v in values if v.upper() not in _MISSING_TOKENS):
            # 'TRAIT<TAB>GENE1,GENE2' (or 'GENE:weight' entries): a .gs file without its header; else a table of
            # genes and other columns (a gene list's source, e.g. SFARI's CSV)
            first_row = _split_line(lines[0], sep)
            if Path(path).suffix.lower() == ".gs" or (sep == "\t" and len(first_row) == 2
                                                        and any(c in first_row[1] for c in ",:")):
                return "gs"
            return "genes"
        return "table"
    return "gs"


def _is_gmt(rows: list[list[str]]) -> bool:
    """Whether tab-separated lines are GMT lines: a name, a description that is a URL, ``NA`` or empty, genes."""
    return all(len(r) >= 3 and (r[1].strip().upper() in ("", "NA") or r[1].strip().startswith(("http://", "https://")))
               for r in rows)


def _gene_table_hint(path: Path) -> str:
    """What to pass for a table of genes (``"genes"``): its columns, and the likely gene (and set) column."""
    import csv

    from .gwas._io import _GENE_HEADERS, _read_head, _sep_of

    head = _read_head(path)
    lines = [ln for ln in head.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if len(head) >= 60_000 and len(lines) > 2:  # the first 64 KB of a larger file: its last line may be cut
        lines = lines[:-1]
    sep = _sep_of(lines[0]) or " "
    rows = [[f.strip() for f in row] for row in csv.reader(lines, delimiter=sep, skipinitialspace=sep == " ")]
    header, body = rows[0], rows[1:]
    lower = [h.lower() for h in header]
    gene = next((h for h, low in zip(header, lower, strict=True) if low in _GENE_HEADERS), None) or next(
        (h for h, low in zip(header, lower, strict=True) if any(w in low for w in ("gene", "symbol", "ensembl"))),
        None)
    likely = ""
    if gene is not None:
        likely = f" (probably --gene-column {shlex.quote(gene)}"
        other = [i for i, h in enumerate(header) if h != gene]
        if len(header) == 2 and body:  # gene, set: the other column names a few sets, of several genes each
            values = [row[other[0]] for row in body if len(row) > other[0]]
            if values and len(set(values)) <= len(values) / 2 and not all(_is_number(v) for v in values):
                likely += f" --set-column {shlex.quote(header[other[0]])}"
        likely += ")"
    shown = ", ".join(map(repr, header[:8])) + (", ..." if len(header) > 8 else "")
    return (f"--gene-sets {str(path)!r} is a table of genes with {len(header)} columns ({shown}), not a scDRS .gs "
            f"file: name its column of gene names with --gene-column{likely}. --weight-column weights the genes by "
            "a column of numbers (default: weight 1); --set-column makes one gene set per value of a column "
            "(default: one set, named after the file)")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_header(path: Path) -> None:
    """Refuse a gene table whose first line holds genes and numbers where the column names belong (no header).

    A first line whose every field after the first is a number, and whose first field is no usual name of a gene
    column (a trait may be named by a number: a phecode such as 250.2, a UK Biobank field).
    """
    from .gwas._io import _GENE_HEADERS, _read_head, _sep_of, _split_line

    first = next(ln for ln in _read_head(path).splitlines() if ln.strip() and not ln.lstrip().startswith("#"))
    head, *rest = _split_line(first, _sep_of(first))
    try:
        numbers = [float(field) for field in rest]
    except ValueError:
        return
    if numbers and head.strip().lower() not in _GENE_HEADERS:
        raise _InputError(
            f"--gene-sets {str(path)!r}: its first line ({first.strip()!r}) holds numbers where a table names its "
            "columns: the file has no header. Give a table a header (GENE, then one column per trait, named after "
            "the trait; --stat says whether they are z-scores or P-values), or give the genes without weights, one "
            "per line"
        )


def _file_provenance(name: str, path: str | None) -> dict[str, str]:
    """``{f"{name}_sha256": digest}`` of a file the run read (nothing for a bundled input)."""
    if path is None:
        return {}
    from ._registry import sha256sum

    return {f"{name}_sha256": sha256sum(path)}


def _load_gene_sets(path: str | None, traits: list[str] | None, gene_loc: str | None = None,
                    build: str | None = None, stat: str | None = None, gene_column: str | None = None,
                    weight_column: str | None = None, set_column: str | None = None) -> tuple[dict, list[str]]:
    """The gene sets to score and their traits (keys of the dict, in the requested order)."""
    from . import datasets, gwas

    if (weight_column is not None or set_column is not None) and gene_column is None:
        raise _InputError("--weight-column and --set-column name columns of a table of genes: name its column of "
                          "gene names with --gene-column too")
    if gene_column is not None and path is None:
        raise _InputError("--gene-column names the column of genes of a --gene-sets file")
    kind = None if path is None else _gene_sets_kind(path)
    if gene_column is not None:
        if kind == "sumstats":
            raise _InputError(f"--gene-column: --gene-sets {path!r} holds SNP-level summary statistics, which have no "
                              "gene column; drop --gene-column and give --build")
        if kind == "magma" and (weight_column is not None or set_column is not None):
            raise _InputError("--weight-column and --set-column are for tables of genes; a MAGMA file's genes are "
                              "weighted by their ZSTAT")
        if kind == "magma" and gene_loc is not None:
            raise _InputError("--gene-loc and --gene-column both name the genes of the MAGMA file; give one of them")
        if kind == "gmt":
            raise _InputError(f"--gene-column: --gene-sets {path!r} is a GMT file, whose lines list their genes (no "
                              "gene column); drop --gene-column")
        if stat is not None:
            raise _InputError("--stat is for a gene x trait table of z-scores or P-values; with --gene-column the "
                              "table is read as a gene list (--weight-column for weights)")
        if kind != "magma":
            kind = "gene_column"
    if stat is not None and kind != "table":
        raise _InputError("--stat says what the values of a gene x trait --gene-sets table are (z-scores or "
                          "P-values); the --gene-sets file given is not such a table" if path else
                          "--stat is for a --gene-sets table of gene z-scores or P-values")
    if kind == "sumstats" and build is not None and build.lower() in ("grch37", "hg19") and gene_loc is None:
        raise _InputError(
            f"--build {build}: psysc's bundled gene locations are on GRCh38; give the gene locations on GRCh37 with "
            "--gene-loc (e.g. MAGMA's NCBI37.3.gene.loc), or lift the positions to GRCh38 first (in Python: "
            "psysc.gwas.sumstats_to_genes(..., chain='hg19ToHg38.over.chain.gz'))"
        )
    if gene_loc is not None:
        if kind not in ("magma", "sumstats"):
            raise _InputError("--gene-loc names the genes of a MAGMA --gene-sets file (.genes.out or .genes.raw), "
                              "or gives the gene locations of SNP-level summary statistics (with --build)")
        if not Path(gene_loc).is_file():
            raise _InputError(f"--gene-loc {gene_loc!r}: no such file")
    if build is not None and kind != "sumstats":
        raise _InputError("--build is the genome build of SNP-level summary statistics given as --gene-sets")
    if path is None:
        if traits is None:
            traits = [*datasets.PSYCHIATRIC_TRAITS, *datasets.CONTRAST_TRAITS]
        try:
            gene_sets = datasets.gwas_gene_sets(traits=traits)  # resolves aliases; lists the names when unknown
        except ValueError as err:
            raise _InputError(f"--traits: {err}") from None
        source = "bundled MAGMA gene sets"
    else:
        p = Path(path)
        if not p.is_file():
            raise _InputError(f"--gene-sets {path!r}: no such file")
        if kind == "sumstats" and build is None:
            from .gwas._sumstats import SNP_TO_GENE_SET

            raise _InputError(
                f"--gene-sets {path!r} holds SNP-level GWAS summary statistics, not genes: give the genome build of "
                "its positions, --build GRCh38 (or --build GRCh37 with --gene-loc, e.g. MAGMA's NCBI37.3.gene.loc), "
                f"to map its SNPs to genes here; or {SNP_TO_GENE_SET}"
            )
        if kind == "genes":
            raise _InputError(_gene_table_hint(p))
        what = {"magma": "MAGMA .genes.out/.genes.raw", "list": "gene list", "sumstats": "GWAS summary statistics",
                "gmt": "GMT",
                "table": "gene x trait z-score / P-value table", "gene_column": "table of genes"}.get(kind, "scDRS .gs")
        try:
            if kind == "sumstats":  # SNPs -> genes (ACAT in 10 kb windows) -> the top 1,000 genes, as read_magma
                genes = gwas.sumstats_to_genes(gwas.read_sumstats(p), build=build, gene_loc=gene_loc)
                gene_sets = dict(gwas.genes_to_gene_set(genes))
            elif kind == "magma":
                gene_sets = dict(gwas.read_magma(p, gene_loc=gene_loc, gene_column=gene_column or "GENE"))
            elif kind == "gene_column":
                gene_sets = dict(gwas.read_gene_list(p, column=gene_column, weight_column=weight_column,
                                                     set_column=set_column))
            elif kind == "gmt":  # one set per line, weight 1 (or GENE,weight entries)
                gene_sets = dict(gwas.read_gmt(p))
            elif kind == "list":  # one gene per line: a trait named after the file
                gene_sets = dict(gwas.read_gene_list(p))
            elif kind == "table":  # gene x trait z-scores or P-values: the top 1,000 genes of each trait
                _check_header(p)
                gene_sets = dict(gwas.read_gene_stats(p, stat=stat))
            else:
                gene_sets = dict(gwas.read_gs(p))
        except (ValueError, OSError, UnicodeDecodeError) as err:
            raise _InputError(f"--gene-sets {path!r} could not be read as a {what} file: {err}") from None
        source = f"{p} ({what})"
        if traits is not None:
            gene_sets = _select_traits(gene_sets, traits, path)
    keys = list(gene_sets)
    logger.info("gene sets: %s; %d trait(s): %s", source, len(keys), ", ".join(keys))
    return gene_sets, keys


def _select_traits(gene_sets: dict, traits: list[str], path: str) -> dict:
    """The ``--traits`` of a ``--gene-sets`` file, in that order.

    A name of the file, or an alias of :data:`psysc.datasets.TRAIT_ALIASES` (case-insensitive) whose full name is
    in the file (scDRS's published ``.gs`` files use those names): the set is then named by the alias.
    """
    from .datasets import TRAIT_ALIASES

    aliases = {alias.upper(): alias for alias in TRAIT_ALIASES}
    by_upper: dict[str, list[str]] = {}
    for name in gene_sets:
        by_upper.setdefault(name.upper(), []).append(name)
    out, missing, taken = {}, [], set()
    for t in dict.fromkeys(traits):
        alias = aliases.get(t.upper())
        same_case = by_upper.get(t.upper(), [])
        if t in gene_sets:
            key, name = t, t
        elif len(same_case) == 1:  # the file's name in another case
            key, name = same_case[0], same_case[0]
        elif alias is not None and TRAIT_ALIASES[alias] in gene_sets:
            key, name = alias, TRAIT_ALIASES[alias]
            logger.info("--traits %s: %s of --gene-sets", t, name)
        elif len(same_case) > 1:
            raise _InputError(f"--traits {t}: the --gene-sets file has {len(same_case)} traits of that name in other "
                              f"cases ({', '.join(same_case)}); give one of them as it is spelled")
        else:
            missing.append(t)
            continue
        if name in taken:
            logger.warning("--traits %s: the gene set %s is already selected; scored once", t, name)
            continue
        taken.add(name)
        out[key] = gene_sets[name]
    if missing:
        known = [a for a, name in TRAIT_ALIASES.items() if name in gene_sets]
        raise _InputError(
            f"trait(s) {missing} not in --gene-sets {path!r}; available traits: {', '.join(gene_sets)}"
            + (f" (or their aliases {', '.join(known)})" if known else "")
        )
    return out


def _options_named(record: logging.LogRecord) -> bool:
    """A log record whose message names the fixes as psysc run's options (:func:`_as_cli`); always kept."""
    text = record.getMessage()
    named = _as_cli(text)
    if named != text:
        record.msg, record.args = named, None
    return True


def _setup_logging(quiet: bool):
    """A timestamped stderr handler on the 'psysc' logger; returns a function undoing it."""
    from . import settings
    from ._settings import FallbackHandler

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", datefmt="%Y-%m-%d %H:%M:%S"))
    handler.addFilter(_options_named)
    old = (logger.level, logger.propagate, settings.verbosity)
    fallback = [h for h in logger.handlers if isinstance(h, FallbackHandler)]
    for h in fallback:  # this handler replaces it while the command runs
        logger.removeHandler(h)
    logger.addHandler(handler)
    logger.propagate = False
    settings.verbosity = 1 if quiet else 2  # also the logger level; bars when not quiet, on a terminal

    def restore():
        logger.removeHandler(handler)
        for h in fallback:
            logger.addHandler(h)
        logger.setLevel(old[0])
        logger.propagate = old[1]
        settings._verbosity = old[2]

    return restore


def _check_writable(out: Path, given: str) -> None:
    """Refuse an --out that cannot take files, before any work."""
    import tempfile

    if not given.strip():  # an empty shell variable: the files would land loose in the current directory
        raise _InputError("--out is empty: name the output directory (default psysc-results/); --out . writes into "
                          "the current directory")
    if out.exists() and not out.is_dir():
        raise _InputError(f"--out {given!r} exists and is not a directory")
    existing = out
    while not existing.exists():  # the folder is created only when the run starts: probe its nearest ancestor
        existing = existing.parent
    if not existing.is_dir():
        raise _InputError(f"--out {given!r}: {str(existing)!r} is a file, not a directory")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        import errno

        # a folder that exists but takes no files (/proc, /sys) answers "No such file or directory": say what it means
        why = ("it takes no new files" if err.errno == errno.ENOENT else err.strerror or str(err))
        raise _InputError(f"--out {given!r} cannot be written to: no file can be created in {existing} ({why}); "
                          "choose a folder you can write to") from None


def _remove_if_empty(out: Path, created: bool) -> None:
    """Remove the --out folder this run created when a failure left nothing in it."""
    if created and out.is_dir() and not any(out.iterdir()):
        out.rmdir()


def _run(args: argparse.Namespace) -> int:
    import matplotlib.pyplot as plt

    n_ctrl = args.n_ctrl if args.n_ctrl is not None else (QUICK_N_CTRL if args.quick else DEFAULT_N_CTRL)
    if n_ctrl < 2:
        raise _InputError(f"--n-ctrl must be at least 2 (scDRS uses 1000), not {n_ctrl}")
    if not 0 <= args.seed < 2**32:
        raise _InputError(f"--seed must be between 0 and 2^32 - 1, not {args.seed}")
    traits = _split_traits(args.traits)
    out = Path(args.out)
    _check_writable(out, args.out)

    from ._pipeline import InputError, run_pipeline

    embed_kwargs = {}
    if args.max_epochs is not None or (args.quick and args.model == "scvi"):
        if args.model != "scvi":
            raise _InputError("--max-epochs is for --model scvi, which trains scVI on the input; the other models are "
                              "pretrained and not trained here")
        epochs = QUICK_SCVI_EPOCHS if args.max_epochs is None else args.max_epochs
        if epochs < 1:
            raise _InputError(f"--max-epochs must be at least 1, not {epochs}")
        embed_kwargs["train_kwargs"] = {"max_epochs": epochs}
    if args.model == "scvi":  # trained on the input by psysc.tl.embed: needs scvi-tools
        import importlib.util

        if importlib.util.find_spec("scvi") is None:
            raise _InputError("--model scvi trains an scVI model with scvi-tools, which is not installed: "
                              "pip install scvi-tools (or pip install 'psysc[scvi]'), or use a pretrained model such "
                              "as --model scvi-census")
    elif args.model is not None:  # fail before any work or output
        from ._registry import check_model_ref

        try:
            check_model_ref(args.model)
        except ValueError as err:
            raise _InputError(f"--model: {err}") from None

    # the gene sets first: reading them is quick, reading a large --input is not
    gene_sets, traits = _load_gene_sets(args.gene_sets, traits, args.gene_loc, args.build, args.stat,
                                        args.gene_column, args.weight_column, args.set_column)
    if args.species != "human":
        from .gwas import to_species
        from .gwas._ids import SameSpeciesError

        try:
            gene_sets = to_species(gene_sets, args.species)
        except ValueError as err:
            if isinstance(err, SameSpeciesError):  # the Python fix (species=) is not the command line's
                raise _InputError(f"--species {args.species}: {str(err).split(';')[0]}; --species {args.species} maps "
                                  f"human gene sets to {args.species} genes: drop it to score these as they are"
                                  ) from None
            raise _InputError(f"--species {args.species}: {err}") from None
    adata = _read_input(args.input)  # run_pipeline checks it against the options before any work or output
    if args.use_raw:
        if args.layer is not None:
            raise _InputError(f"--use-raw scores the counts of adata.raw and --layer {args.layer} those of a layer: "
                              "pass one of them")
        adata = _raw_as_data(adata, keep=args.gene_symbols)
    if args.gene_symbols is not None:
        adata = _symbols_as_var_names(adata, args.gene_symbols)
    if args.current_symbols:
        from .gwas import current_symbols

        adata.var_names = current_symbols(adata.var_names, species=args.species)
        gene_sets = current_symbols(gene_sets, species=args.species)

    t0 = time.perf_counter()
    params = {
        "input": args.input or "psysc.datasets.darmanis2015()",
        "gene_sets": args.gene_sets or "psysc.datasets.gwas_gene_sets()",
        **_file_provenance("gene_sets", args.gene_sets),
        **({"gene_loc": args.gene_loc, **_file_provenance("gene_loc", args.gene_loc)} if args.gene_loc else {}),
        **({"build": args.build} if args.build else {}),
        **({"stat": args.stat} if args.stat else {}),
        **{option: value for option, value in (("gene_column", args.gene_column), ("weight_column", args.weight_column),
                                               ("set_column", args.set_column)) if value is not None},
        "quick": bool(args.quick),
        **({"max_epochs": embed_kwargs["train_kwargs"]["max_epochs"]} if embed_kwargs else {}),
        **({"use_raw": True} if args.use_raw else {}),
        **({"gene_symbols": args.gene_symbols} if args.gene_symbols is not None else {}),
        "species": args.species,
        "current_symbols": bool(args.current_symbols),
    }
    created = not out.exists()
    try:
        with plt.ioff():
            result = run_pipeline(
                adata,
                gene_sets,
                out=out,
                groupby=args.groupby,
                layer=args.layer,
                n_ctrl=n_ctrl,
                seed=args.seed,
                traits=traits,
                extra_params=params,
                model=args.model,
                embed_kwargs=embed_kwargs,
                min_genes=args.min_genes,
                min_cells_per_group=args.min_cells_per_group,
                phrase=_as_cli,
            )
    except InputError as err:
        _remove_if_empty(out, created)
        raise _InputError(str(err)) from None
    except (OSError, ImportError, ValueError) as err:  # OSError: a failed download, a missing file
        if args.model is None:
            raise
        _remove_if_empty(out, created)
        raise _InputError(f"--model {args.model!r}: {err}") from None
    logger.info("done in %.1f s; open %s", time.perf_counter() - t0, result["files"]["report.html"])
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``psysc`` command.

    Parameters
    ----------
    argv
        Command-line arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    The exit status: 0 on success, 2 for bad usage or bad input (the message is printed on stderr).

    Examples
    --------
    >>> from psysc.cli import main
    >>> main(["run", "--out", "psysc-results", "--traits", "SCZ,HEIGHT", "--quick"])  # doctest: +SKIP
    0

    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE

    restore = _setup_logging(args.quiet)
    try:
        if argv is None:
            import matplotlib

            matplotlib.use("Agg")  # a console script writes files only: never open windows
        return _run(args)
    except _InputError as err:
        print(f"psysc {args.command}: error: {_as_cli(str(err))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("psysc: interrupted", file=sys.stderr)
        return 130
    finally:
        restore()


if __name__ == "__main__":
    sys.exit(main())
