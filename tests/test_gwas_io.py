"""Tests of psysc.gwas readers/writers against naive parsing of the real files and against scDRS.

tests/data/magma_ieu-a-298_AD_subset.genes.out holds verbatim lines of the MAGMA output
``ieu-a-298.genes.out`` of neurogenomics/MAGMA_Celltyping (commit db673da2, Alzheimer disease,
Lambert 2013): its header, the first 250 genes and every chromosome-19 gene (311 genes).
"""

from __future__ import annotations

import gzip
import importlib.machinery
import importlib.util
import logging
import shutil
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import psysc
from psysc.gwas import read_gene_list, read_gs, read_magma, write_gs

DATA = Path(__file__).parent / "data"
# the bundled file as installed (a regular package, so files() gives a real path)
BUNDLED_GS = Path(str(files("psysc.data").joinpath("magma_10kb_top1000_zscore.75_traits.rv1.gs.gz")))
MAGMA_AD = DATA / "magma_ieu-a-298_AD_subset.genes.out"


# ----------------------------------------------------------------------------------------------
# naive reference parsers (independent of psysc)
# ----------------------------------------------------------------------------------------------
def naive_gs(path: Path) -> dict[str, list[tuple[str, float]]]:
    with gzip.open(path, "rt") as fh:
        lines = fh.read().split("\n")
    assert lines[0] == "TRAIT\tGENESET"
    out = {}
    for line in lines[1:]:
        if not line:
            continue
        trait, geneset = line.split("\t")
        out[trait] = [(g.split(":")[0], float(g.split(":")[1])) for g in geneset.split(",")]
    return out


def naive_magma(path: Path) -> list[tuple[str, float, float]]:
    rows = []
    with open(path) as fh:
        header = fh.readline().split()
        for line in fh:
            f = dict(zip(header, line.split(), strict=True))
            rows.append((f["GENE"], float(f["ZSTAT"]), float(f["P"])))
    return rows


@pytest.fixture(scope="module")
def bundled_naive():
    return naive_gs(BUNDLED_GS)


@pytest.fixture(scope="module")
def scdrs_cli():
    """The scDRS command-line module (``munge_gs``), loaded from the installed ``scdrs`` script."""
    pytest.importorskip("scdrs")
    pytest.importorskip("fire")
    script = shutil.which("scdrs")
    if script is None:
        pytest.skip("scdrs command-line script not found")
    loader = importlib.machinery.SourceFileLoader("scdrs_cli_for_tests", script)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------------------------
# read_gs
# ----------------------------------------------------------------------------------------------
def test_read_gs_bundled_matches_naive_split(bundled_naive):
    gs = read_gs(BUNDLED_GS)
    assert list(gs) == list(bundled_naive)
    assert len(gs) == 75
    for trait, pairs in bundled_naive.items():
        s = gs[trait]
        assert s.name == trait
        assert s.dtype == np.float64
        assert list(s.index) == [g for g, _ in pairs]
        assert s.to_numpy().tolist() == [w for _, w in pairs]


def test_read_gs_traits_subset_and_missing(bundled_naive):
    gs = read_gs(BUNDLED_GS, traits=["UKB_460K.body_HEIGHTz", "PASS_Lupus"])
    assert list(gs) == ["UKB_460K.body_HEIGHTz", "PASS_Lupus"]
    assert dict(gs["PASS_Lupus"]) == dict(bundled_naive["PASS_Lupus"])
    assert list(read_gs(BUNDLED_GS, traits="PASS_Lupus")) == ["PASS_Lupus"]
    with pytest.raises(ValueError, match="available traits") as err:
        read_gs(BUNDLED_GS, traits=["PASS_Lupus", "NOT_A_TRAIT"])
    assert "NOT_A_TRAIT" in str(err.value) and "PASS_BIP_Mullins2021" in str(err.value)


def test_read_gs_unweighted_and_duplicates_like_scdrs(tmp_path, caplog):
    scdrs = pytest.importorskip("scdrs")
    path = tmp_path / "toy.gs"
    path.write_text("TRAIT\tGENESET\nA\tG1,G2,G3,G2\nB\tX:1.5,Y:-2,X:3.25,Z:1e-3,Y:7\n")
    with caplog.at_level(logging.WARNING, logger="psysc"):
        gs = read_gs(path)
    ref = scdrs.util.load_gs(str(path))
    for trait in ("A", "B"):
        assert list(gs[trait].index) == ref[trait][0]
        assert gs[trait].tolist() == ref[trait][1]
    # last weight wins, first position kept
    assert gs["B"].to_dict() == {"X": 3.25, "Y": 7.0, "Z": 0.001}
    assert gs["A"].to_dict() == {"G1": 1.0, "G2": 1.0, "G3": 1.0}
    messages = [r.getMessage() for r in caplog.records]
    assert any("1 duplicated gene entry" in m and "'A'" in m for m in messages)
    assert any("2 duplicated gene entries" in m and "'B'" in m for m in messages)


def test_read_gs_mixed_line_is_an_error(tmp_path):
    path = tmp_path / "mixed.gs"
    path.write_text("TRAIT\tGENESET\nOK\tA:1,B:2\nBAD\tA:1,B,C:3\n")
    with pytest.raises(ValueError, match=r"line 3: gene set 'BAD' mixes weighted"):
        read_gs(path)
    # the other trait is still readable on its own
    assert read_gs(path, traits="OK")["OK"].to_dict() == {"A": 1.0, "B": 2.0}


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("A\tG1,G2\n", "header"),
        ("TRAIT\tGENESET\nA\tG1:x\n", "not a number"),
        ("TRAIT\tGENESET\nA\tG1:nan\n", "finite"),
        ("TRAIT\tGENESET\nA\tG1\tG2\n", "2 tab-separated"),
        ("TRAIT\tGENESET\nA\tG1\nA\tG2\n", "already appeared"),
        ("TRAIT\tGENESET\nA\t \n", "empty"),
        ("", "empty"),
        ("TRAIT\tGENESET\nA\tG1 2.5,G2 1.0\n", r"entry 'G1 2.5' of gene set 'A' holds white space"),
        ("TRAIT\tGENESET\nA\tG1 G2 G3\n", "separate the genes with commas"),
    ],
)
def test_read_gs_format_errors(tmp_path, content, match):
    path = tmp_path / "bad.gs"
    path.write_text(content)
    with pytest.raises(ValueError, match=match):
        read_gs(path)


# ----------------------------------------------------------------------------------------------
# write_gs
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["out.gs", "out.gs.gz"])
def test_write_gs_roundtrip_with_scdrs(tmp_path, bundled_naive, name):
    scdrs = pytest.importorskip("scdrs")
    gene_sets = {
        t: pd.Series([w for _, w in bundled_naive[t]], index=[g for g, _ in bundled_naive[t]])
        for t in ("PASS_Schizophrenia_Pardinas2018", "ASD_Grove_et_al")
    }
    awkward = [1 / 3, 1e-20, -2.5, 123456789.123456789, 10.0, np.float32(0.1)]
    gene_sets["toy"] = pd.Series(awkward, index=[f"GENE{i}" for i in range(len(awkward))])
    path = tmp_path / name
    write_gs(gene_sets, path)
    if name.endswith(".gz"):
        assert path.read_bytes()[:2] == b"\x1f\x8b"
    ref = scdrs.util.load_gs(str(path))
    assert list(ref) == list(gene_sets)
    for trait, s in gene_sets.items():
        genes, weights = ref[trait]
        assert genes == list(s.index)
        assert weights == [float(w) for w in s]
    back = read_gs(path)
    for trait, s in gene_sets.items():
        assert back[trait].index.tolist() == s.index.tolist()
        assert back[trait].tolist() == [float(w) for w in s]


def test_write_gs_rejects_bad_input(tmp_path):
    path = tmp_path / "x.gs"
    with pytest.raises(ValueError, match="duplicated genes"):
        write_gs({"T": pd.Series([1.0, 2.0], index=["A", "A"])}, path)
    with pytest.raises(ValueError, match="contains one of"):
        write_gs({"T": pd.Series([1.0], index=["A:B"])}, path)
    with pytest.raises(ValueError, match="non-finite"):
        write_gs({"T": pd.Series([np.nan], index=["A"])}, path)
    with pytest.raises(ValueError, match="pandas Series"):
        write_gs({"T": ["A", "B"]}, path)
    with pytest.raises(ValueError, match="empty"):
        write_gs({}, path)
    assert not path.exists()


# ----------------------------------------------------------------------------------------------
# read_magma
# ----------------------------------------------------------------------------------------------
MAGMA_HEADER = "GENE       CHR      START       STOP  NSNPS  NPARAM      N        ZSTAT            P\n"


def _magma_line(gene, z, p):
    return f"{gene:<10} 1 100 200 10 2 5000 {z} {p}\n"


def test_read_magma_small_file_top_genes_and_clip(tmp_path, caplog):
    rows = [
        ("348", 12.5, 1e-30),
        ("54209", 4.2, 1.3e-5),
        ("1191", 2.9, 1.9e-3),
        ("999", 11.0, 1e-25),
        ("5", -1.0, 0.84),
    ]
    path = tmp_path / "toy_AD.genes.out"
    path.write_text(MAGMA_HEADER + "".join(_magma_line(*r) for r in rows))
    with caplog.at_level(logging.INFO, logger="psysc"):
        gs = read_magma(path, n_top=3)
    assert list(gs) == ["toy_AD"]
    s = gs["toy_AD"]
    assert s.name == "toy_AD"
    assert s.index.tolist() == ["348", "999", "54209"]  # by increasing P
    assert s.tolist() == [10.0, 10.0, 4.2]  # z clipped at 10
    assert any("Entrez" in r.getMessage() for r in caplog.records)
    uni = read_magma(path, n_top=2, weight="uniform", trait="AD")["AD"]
    assert uni.to_dict() == {"348": 1.0, "999": 1.0}
    # n_top larger than the file: every gene
    assert len(read_magma(path)["toy_AD"]) == 5
    # a header rewritten in lower case reads the same
    lower = tmp_path / "lower_AD.genes.out"
    lower.write_text(MAGMA_HEADER.lower() + "".join(_magma_line(*r) for r in rows))
    pd.testing.assert_series_equal(read_magma(lower, n_top=3)["lower_AD"], s.rename("lower_AD"))


def test_a_magma_genes_out_given_to_read_gene_stats_is_sent_to_read_magma(tmp_path):
    path = tmp_path / "toy_AD.genes.out"
    path.write_text(MAGMA_HEADER + _magma_line("348", 12.5, 1e-30) + _magma_line("999", 11.0, 1e-25))
    with pytest.raises(ValueError, match=r"MAGMA gene-analysis output .*psysc.gwas.read_magma\(path\)"):
        psysc.gwas.read_gene_stats(path)
    assert read_magma(path)["toy_AD"].index.tolist() == ["348", "999"]


def test_read_magma_real_subset_matches_naive_sort():
    rows = naive_magma(MAGMA_AD)
    assert len(rows) == 311
    ranked = sorted(rows, key=lambda r: r[2])
    n = 50
    assert ranked[n - 1][2] < ranked[n][2]  # no tie at the cut
    gs = read_magma(MAGMA_AD, n_top=n)
    (trait,) = gs
    assert trait == "magma_ieu-a-298_AD_subset"
    s = gs[trait]
    assert s.index.tolist() == [r[0] for r in ranked[:n]]
    assert s.tolist() == [min(r[1], 10.0) for r in ranked[:n]]
    assert all(isinstance(g, str) and g.isdigit() for g in s.index)  # Entrez IDs kept as strings


@pytest.mark.parametrize(("n_top", "fdr"), [(60, None), (1000, 0.05), (1000, 1e-6), (120, 0.05), (40, 0.05)])
def test_read_magma_selection_matches_scdrs_munge_gs(tmp_path, scdrs_cli, capsys, n_top, fdr):
    """Gene selection equals ``scdrs munge-gs --pval-file`` (weights: MAGMA z vs scDRS z from P)."""
    rows = naive_magma(MAGMA_AD)
    pval_file = tmp_path / "pval.tsv"
    pval_file.write_text("GENE\tAD\n" + "".join(f"{g}\t{p!r}\n" for g, _, p in rows))
    out = tmp_path / "AD.gs"
    scdrs_cli.munge_gs(out_file=str(out), pval_file=str(pval_file), weight="zscore", fdr=fdr, n_max=n_top)
    capsys.readouterr()
    ref = pd.read_csv(out, sep="\t")
    pairs = [g.split(":") for g in ref.loc[0, "GENESET"].split(",")]
    ref_genes = [g for g, _ in pairs]
    ref_w = np.array([float(w) for _, w in pairs])
    s = read_magma(MAGMA_AD, n_top=n_top, fdr=fdr, trait="AD")["AD"]
    assert sorted(s.index) == sorted(ref_genes)
    # scDRS converts P back to a z-score; MAGMA's ZSTAT agrees to the precision of the printed P
    ref_by_gene = dict(zip(ref_genes, ref_w, strict=True))
    np.testing.assert_allclose(s.to_numpy(), [ref_by_gene[g] for g in s.index], atol=2e-3)


def test_read_magma_fdr_count_matches_statsmodels(tmp_path):
    multipletests = pytest.importorskip("statsmodels.stats.multitest").multipletests
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(1e-12, 1e-4, 400), rng.uniform(0, 1, 1600)])
    p = np.clip(p, 1e-300, 1)
    genes = [f"G{i}" for i in range(len(p))]
    path = tmp_path / "sim.genes.out"
    path.write_text(MAGMA_HEADER + "".join(_magma_line(g, 3.0, repr(float(x))) for g, x in zip(genes, p, strict=True)))
    n_bh = int(multipletests(p, alpha=0.05, method="fdr_bh")[0].sum())
    assert 100 < n_bh < 1000
    s = read_magma(path, n_top=1000, fdr=0.05)["sim"]
    assert len(s) == n_bh
    assert set(s.index) == {genes[i] for i in np.argsort(p)[:n_bh]}


@pytest.mark.parametrize(
    ("bad_row", "match"),
    [
        (("7", "nan", 0.01), r"line 3 .*ZSTAT"),
        (("7", 2.0, "NA"), r"line 3 .*P is 'NA'"),
        (("7", 2.0, -0.1), r"line 3 .*outside \[0, 1\]"),
        (("7", 2.0, 1.5), r"line 3 .*outside \[0, 1\]"),
    ],
)
def test_read_magma_rejects_bad_values_with_line(tmp_path, bad_row, match):
    path = tmp_path / "bad.genes.out"
    path.write_text(MAGMA_HEADER + _magma_line("1", 3.0, 0.001) + _magma_line(*bad_row) + _magma_line("2", 1.0, 0.1))
    with pytest.raises(ValueError, match=match):
        read_magma(path)


def test_read_magma_takes_p_zero_as_underflow(tmp_path, caplog):
    """P = 0 (a P below the smallest float, as read_sumstats takes it): the most significant gene, with a warning."""
    path = tmp_path / "zero.genes.out"
    path.write_text(MAGMA_HEADER + _magma_line("1", 3.0, 0.001) + _magma_line("7", 9.0, 0) + _magma_line("2", 1.0, 0.1))
    with caplog.at_level(logging.WARNING, logger="psysc"):
        s = read_magma(path, n_top=2)["zero"]
    assert list(s.index) == ["7", "1"] and s["7"] == 9.0
    assert "1 gene(s) have P = 0 (numerical underflow)" in caplog.text
    # below any P the file writes, a subnormal one included
    path.write_text(MAGMA_HEADER + _magma_line("1", 38.3, 1.2e-320) + _magma_line("7", 40.0, 0))
    assert list(read_magma(path, n_top=None)["zero"].index) == ["7", "1"]


def test_read_magma_option_and_column_errors(tmp_path):
    path = tmp_path / "x.genes.out"
    path.write_text("GENE ZSTAT\n1 2.0\n")
    with pytest.raises(ValueError, match=r"\['P'\] missing"):
        read_magma(path)
    with pytest.raises(ValueError, match="n_top"):
        read_magma(MAGMA_AD, n_top=0)
    with pytest.raises(ValueError, match="fdr"):
        read_magma(MAGMA_AD, fdr=1.5)
    with pytest.raises(ValueError, match="weight"):
        read_magma(MAGMA_AD, weight="pvalue")
    ragged = tmp_path / "ragged.genes.out"
    ragged.write_text(MAGMA_HEADER + _magma_line("1", 3.0, 0.001) + _magma_line("2", 1.0, 0.1).rstrip("\n") + " 7\n")
    with pytest.raises(ValueError, match=r"ragged.genes.out is not a whitespace-separated MAGMA .genes.out table"):
        read_magma(ragged)


# ----------------------------------------------------------------------------------------------
# read_gene_list
# ----------------------------------------------------------------------------------------------
def test_read_gene_list_plain_file(tmp_path, caplog):
    path = tmp_path / "asd_genes.txt"
    path.write_text("# ASD genes\nSHANK3\n CHD8 \n\nSCN2A\nCHD8\n")
    with caplog.at_level(logging.WARNING, logger="psysc"):
        gs = read_gene_list(path)
    assert list(gs) == ["asd_genes"]
    assert gs["asd_genes"].to_dict() == {"SHANK3": 1.0, "CHD8": 1.0, "SCN2A": 1.0}
    assert any("1 duplicated gene entry" in r.getMessage() for r in caplog.records)
    gz = tmp_path / "asd.txt.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert read_gene_list(gz, trait="ASD")["ASD"].index.tolist() == ["SHANK3", "CHD8", "SCN2A"]
    # several fields on a line (genes, or a gene and a weight) are not one gene named "APOE TREM2"
    # nor is a later line with commas one gene named "NRXN1,NRXN2"
    for text in ("APOE TREM2 CLU\nSORL1\n", "APOE 2.5\nTREM2 1.0\n", "SHANK3\nNRXN1,NRXN2\n", "A\nB;C\n"):
        path.write_text(text)
        with pytest.raises(ValueError, match="several fields .*one gene per line"):
            read_gene_list(path)


def test_read_gmt_msigdb_enrichr_and_errors(tmp_path, caplog):
    # MSigDB: a URL as description; Enrichr: an empty description, trailing tabs, GENE,weight entries
    path = tmp_path / "sets.gmt"
    path.write_text(
        "# comment\n"
        "SYNGO_POSTSYNAPSE\thttps://www.syngoportal.org\tDLG4\tSHANK3\tGRIN2A\tDLG4\n"
        "\n"
        "ENRICHR_WEIGHTED\t\tDRD2,2.5\tAPOE,1.0\tNA\t\t\n"
    )
    with caplog.at_level(logging.INFO, logger="psysc"):
        gs = psysc.gwas.read_gmt(path)
    assert list(gs) == ["SYNGO_POSTSYNAPSE", "ENRICHR_WEIGHTED"]
    assert gs["SYNGO_POSTSYNAPSE"].to_dict() == {"DLG4": 1.0, "SHANK3": 1.0, "GRIN2A": 1.0}
    assert gs["ENRICHR_WEIGHTED"].to_dict() == {"DRD2": 2.5, "APOE": 1.0}  # 'NA' is no gene
    assert "1 duplicated gene entry" in caplog.text
    assert list(psysc.gwas.read_gmt(path, traits=["ENRICHR_WEIGHTED"])) == ["ENRICHR_WEIGHTED"]
    gz = tmp_path / "sets.gmt.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert psysc.gwas.read_gmt(gz)["ENRICHR_WEIGHTED"].to_dict() == {"DRD2": 2.5, "APOE": 1.0}
    # as the scoring takes it: the same as the genes given directly
    assert psysc._genesets.as_gene_sets(gs)["SYNGO_POSTSYNAPSE"].index.tolist() == ["DLG4", "SHANK3", "GRIN2A"]
    for text, message in (
        ("A\tNA\tX\nA\tNA\tY\n", "gene set 'A' already appeared on line 1"),
        ("APOE\nTREM2\n", "a GMT line is NAME<TAB>DESCRIPTION<TAB>GENE.*use psysc.gwas.read_gene_list"),
        ("A\tNA\tDRD2,high\n", "entry 'DRD2,high' of gene set 'A' is not GENE or GENE,weight"),
        ("A\tNA\t\t\n", "gene set 'A' lists no gene"),
        ("A\tNA\tDRD2,inf\n", "finite"),
        ("", "no gene set"),
    ):
        path.write_text(text)
        with pytest.raises(ValueError, match=message):
            psysc.gwas.read_gmt(path)
    path.write_text("A\tNA\tX\n")
    with pytest.raises(ValueError, match=r"gene set\(s\) \['B'\] not in .* available gene sets: \['A'\]"):
        psysc.gwas.read_gmt(path, traits="B")


def test_semicolon_tables_of_european_spreadsheets_are_read(tmp_path):
    for name in ("eu.csv", "eu.txt"):
        path = tmp_path / name
        path.write_text("gene;score\nSHANK3;1\nCHD8;2\n")
        assert read_gene_list(path, column="gene", weight_column="score")["eu"].to_dict() == {"SHANK3": 1.0,
                                                                                           "CHD8": 2.0}


@pytest.mark.parametrize(("name", "sep"), [("t.csv", ","), ("t.tsv", "\t"), ("t.txt", "\t"), ("t.dat", ",")])
def test_read_gene_list_table_columns_and_weights(tmp_path, name, sep):
    rows = [("ENSG01", "SHANK3", "1"), ("ENSG02", "CHD8", "2.5"), ("ENSG03", "", "3"), ("ENSG04", "NRXN1", "-1")]
    path = tmp_path / name
    path.write_text(sep.join(["ensembl", "symbol", "score"]) + "\n" + "".join(sep.join(r) + "\n" for r in rows))
    s = read_gene_list(path, column="symbol", weight_column="score")["t"]
    assert s.to_dict() == {"SHANK3": 1.0, "CHD8": 2.5, "NRXN1": -1.0}  # empty name dropped
    s = read_gene_list(path, column=0, trait="x")["x"]
    assert s.to_dict() == {"ENSG01": 1.0, "ENSG02": 1.0, "ENSG03": 1.0, "ENSG04": 1.0}
    with pytest.raises(ValueError, match="pass column="):
        read_gene_list(path)
    with pytest.raises(ValueError, match="available columns"):
        read_gene_list(path, column="gene")


def test_read_gene_list_bad_weight_and_direct_input(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("gene,w\nA,1\nB,oops\n")
    with pytest.raises(ValueError, match=r"row 2 .*'oops'"):
        read_gene_list(path, column="gene", weight_column="w")
    assert read_gene_list(["B", "A", None, "B"])["gene_list"].index.tolist() == ["B", "A"]
    assert read_gene_list({"A": 2, "B": 0.5}, trait="T")["T"].to_dict() == {"A": 2.0, "B": 0.5}
    assert read_gene_list({"Z", "A"})["gene_list"].index.tolist() == ["A", "Z"]
    with pytest.raises(ValueError, match="files only"):
        read_gene_list(["A"], column="gene")
    with pytest.raises(ValueError, match="no gene"):
        read_gene_list([None, ""])
    # a header-less single column file with column= reads its first line as the header
    one = tmp_path / "one.txt"
    one.write_text("symbol\nAPOE\nTREM2\n")
    assert read_gene_list(one, column="symbol")["one"].index.tolist() == ["APOE", "TREM2"]
    # without column=: a usual column name on the first line is a header too (no gene is named so); other lines
    # are genes
    assert read_gene_list(one)["one"].index.tolist() == ["APOE", "TREM2"]
    one.write_text("GENE\nAPOE\nsymbols\n")
    assert read_gene_list(one)["one"].index.tolist() == ["APOE", "symbols"]
    one.write_text("gene\n")
    assert read_gene_list(one)["one"].index.tolist() == ["gene"]  # a lone line: a gene


def test_one_gene_per_line_files_of_r_and_with_a_title(tmp_path, caplog):
    one = tmp_path / "one.txt"
    # R: write.table(genes, "one.txt") quotes the values under the header "x"; biomaRt names columns hgnc_symbol
    for text in ('"x"\n"APOE"\n"TREM2"\n', "'APOE'\nTREM2\n", "hgnc_symbol\nAPOE\nTREM2\n",
                 "Gene.name\nAPOE\nTREM2\n", "external_gene_name\nAPOE\nTREM2\n"):
        one.write_text(text)
        assert read_gene_list(one)["one"].index.tolist() == ["APOE", "TREM2"], text
    # a title of several words, none a gene, is not a gene named "SCZ risk genes"
    one.write_text("SCZ risk genes (Trubetskoy 2022)\nDRD2\nGRIN2A\n")
    with caplog.at_level(logging.WARNING, logger="psysc"):
        assert read_gene_list(one)["one"].index.tolist() == ["DRD2", "GRIN2A"]
    assert "first line 'SCZ risk genes (Trubetskoy 2022)' names no gene" in caplog.text
    # several genes on the first line are genes, not a title: an error, as on any other line
    for text in ("APOE TREM2 CLU\nSORL1\n", "risk genes: APOE CLU\nSORL1\n", "ENSG00000130203 x\nSORL1\n"):
        one.write_text(text)
        with pytest.raises(ValueError, match=r"read as one gene per line .* 1 line\(s\) hold several fields"):
            read_gene_list(one)


def test_read_magma_all_genes_raw_z_and_table(tmp_path):
    from pathlib import Path

    path = Path(__file__).parent / "data" / "magma_celltyping_ieu-a-298_AD_subset.genes.out"
    raw = pd.read_csv(path, sep=r"\s+", dtype={"GENE": str})
    s = read_magma(path, n_top=None, weight="zstat", trait="AD")["AD"]
    assert len(s) == len(raw) == 1355
    assert s.to_dict() == dict(zip(raw["GENE"], raw["ZSTAT"], strict=True))
    assert list(s.index) == list(raw.sort_values("P", kind="stable")["GENE"])
    assert read_magma(path, n_top=None, trait="AD")["AD"].equals(s)  # no z above 10 to clip in this file
    assert raw["ZSTAT"].max() < 10
    # genome-wide (n_top=None): z-scores as they are by default, as seismic and MAGMA regress them; a top-N
    # selection clips them at 10 by default, as scDRS
    strong = tmp_path / "strong.genes.out"
    strong.write_text("GENE CHR START STOP NSNPS NPARAM N ZSTAT P\n"
                      "APOE 19 1 2 10 5 1000 37.5 1e-300\nG2 1 1 2 10 5 1000 1.0 0.16\n")
    assert read_magma(strong, n_top=None)["strong"].to_dict() == {"APOE": 37.5, "G2": 1.0}
    assert read_magma(strong, n_top=2)["strong"].to_dict() == {"APOE": 10.0, "G2": 1.0}
    genome_wide = read_magma(strong, n_top=None, table=True)["strong"]
    assert genome_wide.loc["APOE", "ZSTAT"] == 37.5 and list(genome_wide.columns[-4:]) == ["NPARAM", "N", "ZSTAT", "P"]
    t = read_magma(path, n_top=5, weight="zstat", table=True)
    (trait, table), = t.items()
    assert table.attrs["trait"] == trait
    top = raw.sort_values("P", kind="stable").head(5).set_index("GENE")
    np.testing.assert_array_equal(table["START"], top["START"])
    np.testing.assert_array_equal(table["NSNPS"], top["NSNPS"])
    np.testing.assert_array_equal(table["ZSTAT"], top["ZSTAT"])
    # a table is a gene set for every tool
    from psysc._genesets import as_gene_sets

    assert as_gene_sets(t)[trait].to_dict() == top["ZSTAT"].to_dict()


def test_magma_multi_model_output_reads_the_combined_p(tmp_path):
    """MAGMA's multi-model .genes.out has P_MULTI (and the P of each model) instead of P."""
    path = tmp_path / "multi.genes.out"
    path.write_text(
        "GENE CHR START STOP NSNPS NPARAM N ZSTAT P_MULTI P_SNPWISE_MEAN P_SNPWISE_TOP1\n"
        "APOE 19 44905791 44909393 20 5 74046 12.1 5.1e-34 1e-30 1e-33\n"
        "CLU 8 27596917 27614700 15 4 74046 4.2 1.3e-05 2e-05 4e-05\n"
    )
    table = read_magma(path, table=True)["multi"]
    assert table.loc["APOE", "P"] == 5.1e-34 and table.loc["CLU", "P"] == 1.3e-05
    assert table.loc["CLU", "ZSTAT"] == 4.2


def test_magma_entrez_ids_named_by_the_gene_loc_of_the_run(caplog):
    """read_magma(gene_loc=) names MAGMA's Entrez IDs by the NAME column of the gene.loc, as a plain join does."""
    out = DATA / "magma_ieu-a-298_AD_subset.genes.out"
    loc_path = files("psysc.data") / "ad_gwas_subset.genes.loc"
    raw = pd.read_csv(out, sep=r"\s+", dtype={"GENE": str})
    loc = pd.read_csv(loc_path, sep="\t", header=None, names=["GENE", "CHR", "START", "STOP", "STRAND", "NAME"],
                      dtype={"GENE": str})
    joined = raw.merge(loc[["GENE", "NAME"]], on="GENE").sort_values("P", kind="stable")
    joined = joined.drop_duplicates("NAME", keep="first")
    expected = pd.Series(np.minimum(joined["ZSTAT"].to_numpy(), 10.0), index=joined["NAME"].to_numpy())
    with caplog.at_level(logging.INFO, logger="psysc"):
        got = read_magma(out, n_top=None, gene_loc=loc_path, trait="AD")["AD"]
    assert got.index.tolist() == expected.index.tolist()
    np.testing.assert_array_equal(got.to_numpy(), expected.to_numpy())
    n_unnamed = int((~raw["GENE"].isin(loc["GENE"])).sum())
    assert f"{n_unnamed} of {len(raw)} have no name there" in caplog.text
    with pytest.raises(ValueError, match="no NAME column"):
        read_magma(out, gene_loc=loc.drop(columns="NAME"))


def test_magma_genes_without_a_name_or_sharing_one(tmp_path, caplog):
    out = tmp_path / "T.genes.out"
    out.write_text("GENE CHR START STOP NSNPS NPARAM N ZSTAT P\n"
                   "1 1 100 200 5 1 1000 3.0 1e-3\n"  # named A
                   "2 1 300 400 5 1 1000 5.0 1e-6\n"  # named A too, smaller P: kept
                   "3 1 500 600 5 1 1000 2.0 1e-2\n"  # not in the gene.loc
                   "4 1 700 800 5 1 1000 4.0 1e-4\n")  # named B
    loc = pd.DataFrame({"GENE": ["1", "2", "4"], "CHR": ["1"] * 3, "START": [100, 300, 700], "STOP": [200, 400, 800],
                        "STRAND": ["+"] * 3, "NAME": ["A", "A", "B"]})
    with caplog.at_level(logging.INFO, logger="psysc"):
        got = read_magma(out, gene_loc=loc)["T"]
    assert got.to_dict() == {"A": 5.0, "B": 4.0}
    assert "1 of 4 have no name there and are left out, 1 share a name with a gene of smaller P" in caplog.text


def _raw_table(rng, n=40):
    chroms = np.repeat(["1", "2", "X"], [18, 14, n - 32])
    start = np.concatenate([np.sort(rng.integers(1, 10**7, k)) for k in (18, 14, n - 32)])
    return pd.DataFrame({
        "GENE": [str(1000 + i) for i in range(n)], "CHR": chroms, "START": start,
        "STOP": start + rng.integers(500, 50_000, n), "NSNPS": rng.integers(2, 80, n),
        "NPARAM": rng.integers(1, 20, n), "N": rng.integers(40_000, 50_000, n),
        "MAC": rng.uniform(50, 900, n), "ZSTAT": rng.normal(0.5, 1.5, n),
    })


def test_read_magma_genes_raw_table_and_correlations(tmp_path, caplog):
    """A .genes.raw gives the .genes.out columns plus MAC, P = 1 - Phi(Z), and the banded gene correlations."""
    from _magma_raw import banded_correlation, write_genes_raw
    from scipy import stats

    rng = np.random.default_rng(5)
    table = _raw_table(rng)
    R = banded_correlation(table["CHR"], rng)
    path = tmp_path / "SCZ.genes.raw"
    write_genes_raw(path, table, R)
    with caplog.at_level(logging.INFO, logger="psysc"):
        t = read_magma(path, n_top=None, table=True)["SCZ"]
    assert "MAGMA .genes.raw, 40 genes" in caplog.text
    order = np.argsort(-table["ZSTAT"].to_numpy(), kind="stable")  # increasing P
    assert t.index.tolist() == table["GENE"].iloc[order].tolist()
    for col in ("START", "STOP", "NSNPS", "NPARAM", "N"):
        np.testing.assert_array_equal(t[col].to_numpy(), table[col].to_numpy()[order])
    np.testing.assert_allclose(t["MAC"], table["MAC"].to_numpy()[order], rtol=1e-12)  # pandas text parsing
    np.testing.assert_allclose(t["ZSTAT"], table["ZSTAT"].to_numpy()[order], rtol=1e-12)
    np.testing.assert_allclose(t["P"], stats.norm.sf(table["ZSTAT"].to_numpy()[order]), rtol=1e-12)
    corr = t.attrs["gene_corr"]  # in the file's (genome) order
    assert list(corr.genes) == table["GENE"].tolist()
    np.testing.assert_allclose(corr.matrix.toarray(), R, rtol=1e-15, atol=0)
    # pandas operations that compare or deep-copy attrs work on the table and keep the same object
    both = pd.concat([t, t.copy()])
    assert len(both) == 80 and both.attrs["gene_corr"] is corr
    assert t.merge(t, left_index=True, right_index=True).shape[0] == 40 and "ZSTAT" in repr(t)
    assert t.loc[t.index[:5]].attrs["gene_corr"] is corr
    # a top-N selection keeps the correlations among the selected genes
    top = read_magma(path, n_top=7, table=True)["SCZ"]
    sel = np.sort(order[:7])
    assert list(top.attrs["gene_corr"].genes) == table["GENE"].iloc[sel].tolist()
    np.testing.assert_allclose(top.attrs["gene_corr"].matrix.toarray(), R[np.ix_(sel, sel)], rtol=1e-15, atol=0)
    # .genes.out-style reading of the same genes: the same weights
    s = read_magma(path, n_top=None)["SCZ"]
    np.testing.assert_allclose(s.to_numpy(), t["ZSTAT"].to_numpy())
    # gzip and genes renamed by a gene.loc file: the correlations follow the names
    gz = tmp_path / "SCZ.genes.raw.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    loc = pd.DataFrame({"GENE": table["GENE"], "CHR": table["CHR"], "START": table["START"], "STOP": table["STOP"],
                        "STRAND": "+", "NAME": [f"SYM{i}" for i in range(len(table))]})
    loc.loc[3, "NAME"] = ""  # unnamed: left out
    named = read_magma(gz, n_top=None, table=True, gene_loc=loc)["SCZ"]
    assert named.index.tolist() == [f"SYM{i}" for i in order if i != 3]
    keep = [i for i in range(len(table)) if i != 3]
    assert list(named.attrs["gene_corr"].genes) == [f"SYM{i}" for i in keep]
    np.testing.assert_allclose(named.attrs["gene_corr"].matrix.toarray(), R[np.ix_(keep, keep)], rtol=1e-15, atol=0)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda lines: lines[:2] + [lines[2] + " 0.5"] + lines[3:], r"line 3: 1 correlations, but only 0 genes"),
        (lambda lines: lines + [lines[3].replace("1000", "9999", 1)], r"chromosome 1 appears again"),
        (lambda lines: lines[:3] + [lines[3] + " 1.5"] + lines[4:], r"line 4:.*\[-1, 1\]"),
        (lambda lines: lines[:3] + [" ".join(lines[3].split()[:5])] + lines[4:], r"line 4: 5 fields"),
        # line numbers of the file (two header lines and a blank line before the rows)
        (lambda lines: lines[:2] + [""] + lines[2:5] + [lines[5].replace(lines[5].split()[8], "NA")] + lines[6:],
         r"line 7 \(gene '1003'\): ZSTAT is 'NA'"),
        (lambda lines: lines[:4] + [lines[4].replace("1002", "1001", 1)] + lines[5:], r"'1001' on lines \[4, 5\]"),
    ],
)
def test_read_magma_genes_raw_errors(tmp_path, edit, match):
    from _magma_raw import write_genes_raw

    rng = np.random.default_rng(2)
    table = _raw_table(rng)
    path = tmp_path / "T.genes.raw"
    write_genes_raw(path, table, np.eye(len(table)))
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")
    with pytest.raises(ValueError, match=match):
        read_magma(path, n_top=None, table=True)


# ----------------------------------------------------------------------------------------------
# read_gene_stats (gene x trait tables, scdrs munge-gs's input)
# ----------------------------------------------------------------------------------------------
def _stats_table(seed: int = 0, n: int = 3000):
    """Three traits of gene z-scores: a few hundred genes with signal, missing values in one trait."""
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(n)]
    z = rng.normal(size=(n, 3))
    z[:300, 0] += rng.uniform(3, 9, 300)
    z[1000:1150, 1] += rng.uniform(4, 12, 150)
    z[rng.choice(n, 200, replace=False), 2] = np.nan
    return pd.DataFrame(z, index=pd.Index(genes, name="GENE"), columns=["SCZ", "BIP", "ADHD"])


def _munge_gs(scdrs_cli, capsys, tmp_path, **kwargs) -> dict[str, dict[str, float]]:
    out = tmp_path / "munged.gs"
    scdrs_cli.munge_gs(out_file=str(out), **kwargs)
    capsys.readouterr()
    ref = pd.read_csv(out, sep="\t")
    return {t: {g: float(w) for g, w in (x.split(":") for x in gs.split(","))}
            for t, gs in zip(ref["TRAIT"], ref["GENESET"], strict=True)}


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("zscore", {"n_top": 100}),
        ("zscore", {"n_top": 1000, "fdr": 0.05}),
        ("zscore", {"n_top": 1000, "fwer": 0.05}),
        ("pval", {"n_top": 250}),
        ("pval", {"n_top": 1000, "fdr": 0.01}),
    ],
)
def test_read_gene_stats_matches_scdrs_munge_gs(tmp_path, scdrs_cli, capsys, kind, options):
    """Genes and weights of every trait equal ``scdrs munge-gs --zscore-file / --pval-file`` (printed to 5 digits)."""
    from scipy import stats

    z = _stats_table()
    table = z if kind == "zscore" else pd.DataFrame(stats.norm.sf(z.to_numpy()), index=z.index, columns=z.columns)
    path = tmp_path / f"{kind}.tsv"
    table.to_csv(path, sep="\t", float_format="%.17g", na_rep="NA")
    ref = _munge_gs(scdrs_cli, capsys, tmp_path, **{f"{kind}_file": str(path)}, weight="zscore",
                    fdr=options.get("fdr"), fwer=options.get("fwer"), n_max=options["n_top"])
    got = psysc.gwas.read_gene_stats(path, stat=kind, **options)
    assert list(got) == ["SCZ", "BIP", "ADHD"]  # the table's order (scdrs sorts them)
    assert set(got) == set(ref)
    for trait, s in got.items():
        assert set(s.index) == set(ref[trait]), trait
        np.testing.assert_allclose(s.to_numpy(), [ref[trait][g] for g in s.index], rtol=1e-4)
        assert s.index.is_unique and (np.diff(s.to_numpy()) <= 0).all()  # most significant first
    if "fwer" in options:  # the Bonferroni count: SCZ has 300, BIP 150 genes with signal; ADHD none (floor of 100)
        assert 100 < len(got["BIP"]) < len(got["SCZ"]) < 300 and len(got["ADHD"]) == 100


def test_read_gene_stats_infers_the_statistic_and_reads_csv(tmp_path, caplog):
    z = _stats_table().iloc[:400]
    zpath = tmp_path / "z.csv"
    z.to_csv(zpath, na_rep="")
    from scipy import stats

    ppath = tmp_path / "p.tsv.gz"
    with gzip.open(ppath, "wt") as fh:
        pd.DataFrame(stats.norm.sf(z.to_numpy()), index=z.index, columns=z.columns).to_csv(fh, sep="\t", na_rep="NA")
    with caplog.at_level(logging.INFO, logger="psysc"):
        from_z = psysc.gwas.read_gene_stats(zpath, n_top=20, traits="BIP")
        from_p = psysc.gwas.read_gene_stats(ppath, n_top=20, traits=["BIP"])
    assert "read as gene z-scores" in caplog.text and "read as gene P-values" in caplog.text
    assert list(from_z) == ["BIP"] and from_z["BIP"].index.tolist() == from_p["BIP"].index.tolist()
    expected = z["BIP"].sort_values(ascending=False).iloc[:20]
    assert from_z["BIP"].index.tolist() == expected.index.tolist()
    np.testing.assert_allclose(from_z["BIP"].to_numpy(), np.minimum(expected.to_numpy(), 10.0))
    np.testing.assert_allclose(from_p["BIP"].to_numpy(), from_z["BIP"].to_numpy(), rtol=1e-9)
    assert psysc.gwas.read_gene_stats(zpath, n_top=5, weight="uniform")["ADHD"].tolist() == [1.0] * 5
    # P-values declared z-scores: read as asked, with a warning that names the mistake and its fix
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="psysc"):
        wrong = psysc.gwas.read_gene_stats(ppath, n_top=20, traits="BIP", stat="zscore")
    assert "trait 'BIP': every value lies in [0, 1], as P-values do" in caplog.text and "stat='pval'" in caplog.text
    assert set(wrong["BIP"].index).isdisjoint(from_p["BIP"].index)  # the least significant genes
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.gwas.read_gene_stats(zpath, n_top=20, traits="BIP", stat="zscore")
    assert "as P-values do" not in caplog.text
    # inferred from the table (another trait's values lie outside [0, 1]): nothing the caller named to warn about
    mixed = z[["BIP", "ADHD"]].copy()
    mixed["BIP"] = stats.norm.sf(mixed["BIP"].to_numpy())
    mixed.to_csv(tmp_path / "mixed.csv", na_rep="")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="psysc"):
        psysc.gwas.read_gene_stats(tmp_path / "mixed.csv", n_top=20)
    assert "read as gene z-scores" in caplog.text and "as P-values do" not in caplog.text


def test_read_gene_stats_huge_z_and_zero_p(tmp_path, caplog):
    """Ranked by z (P = 1 - Phi(z) underflows past z ~ 38); P = 0 is an underflow, taken as the floor."""
    path = tmp_path / "z.tsv"
    path.write_text("GENE\tT\nA\t45\nB\t60\nC\t3\nD\t1\n")
    assert psysc.gwas.read_gene_stats(path, n_top=3, stat="zscore")["T"].index.tolist() == ["B", "A", "C"]
    path = tmp_path / "p.tsv"
    path.write_text("GENE\tT\nA\t0.01\nB\t0\nC\t0.5\n")
    with caplog.at_level(logging.WARNING, logger="psysc"):
        s = psysc.gwas.read_gene_stats(path, n_top=2, stat="pval")["T"]
    assert s.index.tolist() == ["B", "A"] and s["B"] == 10.0
    assert "1 gene(s) have P = 0" in caplog.text
    path.write_text("GENE\tT\nA\t1.2e-320\nB\t0\n")
    assert psysc.gwas.read_gene_stats(path, n_top=None, stat="pval")["T"].index.tolist() == ["B", "A"]
    path.write_text("GENE\tT\nA\t0.01\nB\t1\n")  # P = 1: a finite z-score
    s = psysc.gwas.read_gene_stats(path, n_top=None, stat="pval")["T"]
    assert np.isfinite(s.to_numpy()).all() and s["B"] < -8


@pytest.mark.parametrize(
    ("text", "kwargs", "match"),
    [
        ("GENE\n" + "A\nB\n", {}, "one column only"),
        ("GENE\tT\nA\t1\nA\t2\n", {}, r"duplicated genes \['A'\]"),
        ("GENE\tT\nA\t1\nB\tx2\n", {}, r"trait 'T', gene 'B': 'x2' is not a finite number"),
        ("GENE\tT\nA\t1\nB\t2\n", {"traits": "SCZ"}, r"trait\(s\) \['SCZ'\] not in the table; its traits are \['T'\]"),
        ("GENE\tT\tU\nA\t1\t\nB\t2\tNA\n", {"traits": ["T", "U"]}, "trait 'U' has no gene with a value"),
        ("GENE\tT\tT\nA\t1\t2\n", {}, r"column name\(s\) \['T'\] appear more than once"),
        ("GENE\tT\nA\t1.5\nB\t2\n", {}, r"one value column \('T'\): say whether it holds z-scores or P-values"),
        ("GENE\tT\nA\t0.1\nB\t2\n", {"stat": "pval"}, "P-values outside"),
        ("GENE\tT\nA\t1\n", {"stat": "z"}, "stat must be"),
        ("gene,A,B\nSHANK3,1,0\nCHD8,1,1\nAPOE,0,1\n", {}, "every value is 0 or 1, which reads as gene memberships"),
        ("GENE\tT\nA\t1\n", {"fdr": 0.1, "fwer": 0.1}, "at most one of fdr= and fwer="),
    ],
)
def test_read_gene_stats_errors(tmp_path, text, kwargs, match):
    path = tmp_path / "t.tsv"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        psysc.gwas.read_gene_stats(path, **kwargs)


def test_read_gene_stats_leaves_out_unnamed_genes_and_read_magma_points_to_it(tmp_path, caplog):
    path = tmp_path / "t.tsv"
    path.write_text("GENE\tT\nA\t5\n\t9\nNA\t8\nB\t1\n")
    with caplog.at_level(logging.WARNING, logger="psysc"):
        assert psysc.gwas.read_gene_stats(path, stat="zscore")["T"].index.tolist() == ["A", "B"]
    assert "2 row(s) without a gene name are left out" in caplog.text
    with pytest.raises(ValueError, match="read_gene_stats"):
        read_magma(path)


def test_read_magma_fwer_matches_bonferroni(tmp_path):
    rng = np.random.default_rng(1)
    p = np.concatenate([rng.uniform(1e-14, 1e-6, 300), rng.uniform(0, 1, 1700)])
    genes = [f"G{i}" for i in range(len(p))]
    path = tmp_path / "sim.genes.out"
    path.write_text(MAGMA_HEADER + "".join(_magma_line(g, 3.0, repr(float(x))) for g, x in zip(genes, p, strict=True)))
    n_bonf = int((p <= 0.05 / len(p)).sum())
    assert 100 < n_bonf < 1000
    s = read_magma(path, n_top=1000, fwer=0.05)["sim"]
    assert set(s.index) == {genes[i] for i in np.argsort(p)[:n_bonf]}


def test_read_gene_stats_table_layouts(tmp_path, caplog):
    """R's header without a gene column, trailing separators, comments, spaces, missing-value words, a lone column
    named after its statistic, and a trait without values (left out with a warning unless requested)."""
    expected = {"SCZ": {"APOE": 4.0, "DRD2": 0.3}, "BIP": {"DRD2": 6.1, "X": 2.0}}
    layouts = {
        "r_style.tsv": "SCZ\tBIP\nDRD2\t0.3\t6.1\nAPOE\t4\tN/A\nX\t-2\t2\n",
        "trailing.tsv": "GENE\tSCZ\tBIP\t\nDRD2\t0.3\t6.1\t\nAPOE\t4\tNA\t\nX\t-2\t2\t\n",
        "commented.txt": "# MAGMA z-scores\nGENE SCZ BIP\nDRD2 0.3 6.1\nAPOE 4 NULL\nX -2 2\n",
        "quoted.csv": '"GENE","SCZ","BIP"\n"DRD2","0.3","6.1"\n"APOE","4",""\n"X","-2","2"\n',
    }
    for name, text in layouts.items():
        path = tmp_path / name
        path.write_text(text)
        got = psysc.gwas.read_gene_stats(path, n_top=2)
        assert {t: s.to_dict() for t, s in got.items()} == expected, name
    path = tmp_path / "scz_magma.tsv"
    path.write_text("SYMBOL\tP\nDRD2\t1e-9\nAPOE\t0.15\nX\t0.84\n")
    got = psysc.gwas.read_gene_stats(path, n_top=2)
    assert list(got) == ["scz_magma"] and got["scz_magma"].index.tolist() == ["DRD2", "APOE"]
    assert psysc.gwas.read_gene_stats(path, n_top=2, traits="SCZ")["SCZ"].index.tolist() == ["DRD2", "APOE"]
    path = tmp_path / "empty_trait.tsv"
    path.write_text("GENE\tSCZ\tBIP\tEMPTY\nDRD2\t0.3\t6.1\t\nAPOE\t4\t1\tNA\n")
    with caplog.at_level(logging.WARNING, logger="psysc"):
        assert list(psysc.gwas.read_gene_stats(path)) == ["SCZ", "BIP"]
    assert "trait 'EMPTY' has no gene with a value; left out" in caplog.text


def test_fdr_and_fwer_counts_equal_statsmodels_on_the_thresholds(tmp_path):
    """P-values exactly on a BH or Bonferroni threshold count as statsmodels counts them."""
    multipletests = pytest.importorskip("statsmodels.stats.multitest").multipletests
    from psysc.gwas._io import _bh_n_significant, _select_top

    for n in range(2, 300):
        for alpha in (0.01, 0.05, 0.1, 0.3):
            p = np.full(n, alpha / n)  # on the Bonferroni threshold
            assert len(_select_top(p, p, n, None, alpha, "t")) == max(min(int(multipletests(
                p, alpha=alpha, method="bonferroni")[0].sum()), n), min(100, n))
            p = np.arange(1, n + 1) / n * alpha  # every P on its BH threshold
            assert _bh_n_significant(p, alpha) == int(multipletests(p, alpha=alpha, method="fdr_bh")[0].sum())


def test_one_column_csv_gene_list_warns_that_its_first_line_is_the_header(tmp_path, caplog):
    path = tmp_path / "asd.csv"
    path.write_text("SHANK3\nCHD8\nSCN2A\n")
    with caplog.at_level(logging.WARNING, logger="psysc"):
        assert read_gene_list(path)["asd"].index.tolist() == ["CHD8", "SCN2A"]
    assert "its first line 'SHANK3' is the header, not a gene" in caplog.text
    caplog.clear()
    path.write_text("gene\nSHANK3\nCHD8\n")
    with caplog.at_level(logging.WARNING, logger="psysc"):
        assert read_gene_list(path)["asd"].index.tolist() == ["SHANK3", "CHD8"]
    assert "is the header" not in caplog.text  # a usual header: no warning


def test_a_gene_list_drops_missing_names_as_the_identifier_mapping_does(tmp_path):
    path = tmp_path / "genes.txt"
    path.write_text("APOE\nNA\n\nnan\nTREM2\n")
    (s,) = psysc.gwas.read_gene_list(path).values()
    assert s.index.tolist() == ["APOE", "TREM2"]
    # a row without a gene needs no weight: it is dropped, not refused
    table = tmp_path / "genes.tsv"
    table.write_text("gene\tscore\nGRIN2A\t1\nNA\t\nSETD1A\t2.5\n\t\n")
    (s,) = psysc.gwas.read_gene_list(table, column="gene", weight_column="score").values()
    assert s.to_dict() == {"GRIN2A": 1.0, "SETD1A": 2.5}
    table.write_text("gene\tscore\nGRIN2A\t1\nSETD1A\t\n")
    with pytest.raises(ValueError, match=r"gene 'SETD1A'\): weight"):
        psysc.gwas.read_gene_list(table, column="gene", weight_column="score")


def test_one_gene_in_several_spellings_is_named(caplog):
    with caplog.at_level(logging.WARNING, logger="psysc"):
        (s,) = psysc.gwas.read_gene_list(["GRIN2A", "grin2a", "ENSG00000183454.12", "ENSG00000183454", "APOE"]).values()
    assert len(s) == 5  # kept apart, as given
    assert "names 2 gene(s) in more than one spelling" in caplog.text
    assert "GRIN2A / grin2a; ENSG00000183454.12 / ENSG00000183454" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.datasets.gwas_gene_sets()
    assert "spelling" not in caplog.text


def test_read_magma_skips_comment_lines_before_a_genes_out_header(tmp_path):
    rows = "GENE CHR START STOP NSNPS NPARAM N ZSTAT P\n1 1 1 2 3 1 100 2 0.02275\n2 1 5 9 3 1 100 1 0.1587\n"
    (tmp_path / "plain.genes.out").write_text(rows)
    (tmp_path / "commented.genes.out").write_text("# magma v1.10, run 2026-01-01\n#\n" + rows)
    want = psysc.gwas.read_magma(tmp_path / "plain.genes.out", n_top=None)["plain"]
    got = psysc.gwas.read_magma(tmp_path / "commented.genes.out", n_top=None)["commented"]
    pd.testing.assert_series_equal(got, want, check_names=False)
    (tmp_path / "comma.genes.out").write_text(rows.replace(" ", ","))
    with pytest.raises(ValueError, match=r"looks comma-separated"):
        psysc.gwas.read_magma(tmp_path / "comma.genes.out")
    # MAGMA's gene-set analysis output (.gsa.out) is not gene-level results
    gsa = ("# MEAN_SAMPLE_SIZE = 82315\n# TOTAL_GENES = 18383\n# TEST_DIRECTION = one-sided, positive (set), "
           "two-sided (covar)\n# CONDITIONED_INTERNAL = gene size, gene density, sample size, inverse mac, log(...)\n"
           "VARIABLE                   TYPE  NGENES        BETA    BETA_STD          SE           P\n"
           "neurons                    SET     412    0.080148    0.011339    0.024312  0.00049032\n")
    (tmp_path / "scz.gsa.out").write_text(gsa)
    with pytest.raises(ValueError, match=r"gene-set or gene-property analysis result .*reads the .genes.out"):
        psysc.gwas.read_magma(tmp_path / "scz.gsa.out")
    from psysc.cli import _InputError, _load_gene_sets

    with pytest.raises(_InputError, match=r"gene-set or gene-property analysis result"):  # psysc run --gene-sets
        _load_gene_sets(str(tmp_path / "scz.gsa.out"), None)


# ----------------------------------------------------------------------------------------------
# spreadsheets, FUMA's MAGMA output, long gene tables
# ----------------------------------------------------------------------------------------------
def _zip(path, members: dict[str, str]):
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return path


def test_spreadsheets_are_refused_with_their_sheets_and_the_way_to_csv(tmp_path):
    xlsx = _zip(tmp_path / "TableS5.xlsx", {
        "[Content_Types].xml": "<Types/>",
        "xl/workbook.xml": '<workbook><sheets><sheet name="Description" sheetId="3" r:id="rId1"/>'
                           '<sheet name="TADA genes (FDR &#8804; 0.1) &amp; more" sheetId="1" r:id="rId2"/></sheets>'
                           "</workbook>",
        "xl/worksheets/sheet1.xml": "<worksheet/>",
    })
    ods = _zip(tmp_path / "genes.ods", {
        "mimetype": "application/vnd.oasis.opendocument.spreadsheet",
        "content.xml": '<office:body><table:table table:name="Genes" table:style-name="ta1"></table:table>'
                       "</office:body>",
    })
    xls = tmp_path / "old.xls"
    xls.write_bytes(bytes.fromhex("d0cf11e0a1b11ae1") + bytes(504))
    with pytest.raises(ValueError, match=r"is an Excel workbook \(.xlsx\) \(sheets: 'Description', 'TADA genes "
                                         r"\(FDR ≤ 0.1\) & more'\), not a text table: save the sheet you want as CSV"):
        read_gene_list(xlsx)
    with pytest.raises(ValueError, match=r"OpenDocument spreadsheet \(.ods\) \(sheets: 'Genes'\)"):
        read_gs(ods)
    with pytest.raises(ValueError, match=r"Excel 97-2003 workbook \(.xls\).*pandas.read_excel"):
        read_magma(xls)
    # a zip of one text file is still read
    assert list(read_gene_list(_zip(tmp_path / "asd.txt.zip", {"asd.txt": "CHD8\nSCN2A\n"}))["asd"].index) == [
        "CHD8", "SCN2A"]


FUMA = ("GENE CHR START STOP NSNPS NPARAM N ZSTAT P SYMBOL\n"
        "ENSG00000130203 19 44905791 44909393 40 8 74046 12.1 5e-34 APOE\n"
        "ENSG00000095970 6 41158506 41163186 20 4 74046 4.2 1.3e-05 TREM2\n"
        "ENSG00000120885 8 27596917 27614700 30 6 74046 2.9 1.9e-03 CLU\n"
        "ENSG00000999999 8 27600000 27614700 30 6 74046 3.5 2.0e-04 CLU\n"
        "ENSG00000888888 1 1000 2000 3 1 74046 5.0 3.0e-07 NA\n")


def test_fuma_genes_out_named_by_its_symbol_column(tmp_path, caplog):
    """gene_column='SYMBOL' names FUMA's rows by symbol: rows without one left out, a repeated one kept once (the
    row of smaller P), as a plain join and drop_duplicates do."""
    path = tmp_path / "magma.genes.out"
    path.write_text(FUMA)
    table = pd.read_csv(path, sep=r"\s+", dtype=str, keep_default_na=False)
    table["P"] = table["P"].astype(float)
    expected = table[table["SYMBOL"] != "NA"].sort_values("P", kind="stable").drop_duplicates("SYMBOL")
    with caplog.at_level(logging.INFO, logger="psysc"):
        by_id = read_magma(path, trait="AD")["AD"]
    assert list(by_id.index[:2]) == ["ENSG00000130203", "ENSG00000888888"]
    assert "gene_column='SYMBOL'" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="psysc"):
        by_symbol = read_magma(path, trait="AD", gene_column="symbol")["AD"]
    assert list(by_symbol.index) == expected["SYMBOL"].tolist()
    assert by_symbol.to_dict() == {"APOE": 10.0, "TREM2": 4.2, "CLU": 3.5}
    assert "1 of 5 have no name there and are left out, 1 share a name with a gene of smaller P" in caplog.text
    with pytest.raises(ValueError, match=r"gene_column='NAME' is not a column; the columns are \['GENE'"):
        read_magma(path, gene_column="NAME")
    with pytest.raises(ValueError, match="gene_loc and gene_column='SYMBOL' both name the genes"):
        read_magma(path, gene_column="SYMBOL", gene_loc=pd.DataFrame())


def test_a_long_gene_table_gives_one_set_per_value_of_its_set_column(tmp_path, caplog):
    path = tmp_path / "risk_genes.tsv"
    path.write_text("gene\tsource\tscore\nCHD8\tASD_Ruzzo\t3\nSETD1A\tSCZ_SCHEMA\t2\nSCN2A\tASD_Ruzzo\t1\n"
                    "GRIN2A\t\t5\nNA\tSCZ_SCHEMA\t4\nCHD8\tSFARI\t1\n")
    table = pd.read_csv(path, sep="\t", keep_default_na=False)
    with caplog.at_level(logging.INFO, logger="psysc"):
        got = read_gene_list(path, column="gene", set_column="source", weight_column="score")
    named = table[(table["source"] != "") & (table["gene"] != "NA")]
    expected = {s: dict(zip(g["gene"], g["score"].astype(float), strict=True))
                for s, g in named.groupby("source", sort=False)}
    assert {k: v.to_dict() for k, v in got.items()} == expected
    assert list(got) == ["ASD_Ruzzo", "SCZ_SCHEMA", "SFARI"]  # the order of their first rows
    assert "1 row(s) without a set name in column 'source' left out" in caplog.text
    assert list(read_gene_list(path, column=0, set_column=1)["SFARI"].index) == ["CHD8"]
    with pytest.raises(ValueError, match="set_column and column are both 'gene'"):
        read_gene_list(path, column="gene", set_column="gene")
    with pytest.raises(ValueError, match="set_column names the gene sets by its values; trait names"):
        read_gene_list(path, column="gene", set_column="source", trait="X")
    with pytest.raises(ValueError, match="set_column='trait' is not a column"):
        read_gene_list(path, column="gene", set_column="trait")
    with pytest.raises(ValueError, match="apply to files only"):
        read_gene_list(["CHD8"], set_column="source")


def test_gene_names_a_spreadsheet_made_dates_of_are_warned_about(tmp_path, caplog):
    path = tmp_path / "copied.txt"
    path.write_text("GRIN2A\n1-Sep\nMar-02\nSETD1A\n2006-12-01\n")
    with caplog.at_level(logging.WARNING, logger="psysc"):
        got = read_gene_list(path)["copied"]
    assert list(got.index) == ["GRIN2A", "1-Sep", "Mar-02", "SETD1A", "2006-12-01"]  # kept, as given
    assert "gene set 'copied' holds 3 name(s) that are dates and match no gene (e.g. ['1-Sep', 'Mar-02'" in caplog.text
    assert "take the genes from the source file" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="psysc"):
        read_gene_list(["GRIN2A", "SEPTIN1", "MARCHF2"])
    assert "dates" not in caplog.text
