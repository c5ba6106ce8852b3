"""Tests of read_sumstats / sumstats_to_genes / genes_to_gene_set.

References are independent of the code under test: plain pandas parsing of the real files in
tests/data (see tests/data/README.md), scipy formulas, naive per-gene loops, a real MAGMA gene
analysis of the same GWAS, and coordinates of known variants from dbSNP.

What the real files are (checked by hand, and asserted below with plain pandas):

- mungesumstats_ieu-a-298_AD_subset.tsv.gz: Alzheimer GWAS ieu-a-298 (GRCh37), 417 data rows on
  chromosomes 1 and 22 ONLY -- there is no chr19, hence no APOE signal in it. Data row 407
  (rs11578902) lacks its ID and P fields (LP, BETA, SE are there); data row 408 is a broken line
  holding only "rs75283360<TAB>0.0016...". The file has no repeated header line: the
  header-repeat handling is tested on the same file concatenated with itself.
- mungesumstats_eduAttainOkbay.txt: 93 lead SNPs of Okbay 2016 educational attainment (GRCh37).
- magma_celltyping_ieu-a-298_AD_subset.genes.out: MAGMA's own gene analysis of the AD GWAS
  (1,355 genes genome-wide, Entrez IDs, NCBI 37.3 coordinates whose START/STOP already include
  the 35 kb up / 10 kb down window of MAGMA.Celltyping), computed on a SNP subset that largely
  matches the sumstats subset on chr1/22 (NSNPS agree for 79 of the 82 genes both cover).
"""

from __future__ import annotations

import gzip
import logging
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from psysc.gwas import read_gene_list, read_magma
from psysc.gwas._genes import gene_table
from psysc.gwas._sumstats import genes_to_gene_set, read_sumstats, sumstats_to_genes

DATA = Path(__file__).parent / "data"
AD = DATA / "mungesumstats_ieu-a-298_AD_subset.tsv.gz"
EA = DATA / "mungesumstats_eduAttainOkbay.txt"
MAGMA = DATA / "magma_celltyping_ieu-a-298_AD_subset.genes.out"

# dbSNP: rs429358 (APOE e4) is at chr19:44908684 on GRCh38 and chr19:45411941 on GRCh37.
RS429358_GRCH38 = 44908684
RS429358_GRCH37 = 45411941


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def magma_table() -> pd.DataFrame:
    return pd.read_csv(MAGMA, sep=r"\s+", dtype={"GENE": str, "CHR": str})


def magma_gene_loc(tmp_path: Path) -> Path:
    """A MAGMA-style gene.loc (no header: GENE CHR START STOP STRAND) from the real genes.out."""
    g = magma_table()
    lines = [f"{r.GENE}\t{r.CHR}\t{r.START}\t{r.STOP}\t+" for r in g.itertuples()]
    return write(tmp_path / "NCBI37_from_magma.gene.loc", "\n".join(lines) + "\n")


# ----------------------------------------------------------------------------------------------
# read_sumstats: real files
# ----------------------------------------------------------------------------------------------
def test_read_ad_real_file_quirks_counted():
    # independent inspection of the raw file with plain pandas / text
    raw = pd.read_csv(AD, sep="\t", dtype=str)
    lines = gzip.open(AD, "rt").read().rstrip("\n").split("\n")
    n_fields = [line.count("\t") + 1 for line in lines]
    assert len(raw) == len(lines) - 1 == 417
    n_short = sum(n < n_fields[0] for n in n_fields[1:])
    broken = raw["BP"].isna()  # the broken line: no position at all
    p_missing_lp_present = raw["P"].isna() & raw["LP"].notna() & raw["BP"].notna()
    assert (n_short, int(broken.sum()), int(p_missing_lp_present.sum())) == (2, 1, 1)
    assert set(raw.loc[~broken, "CHR"]) == {"1", "22"}  # no chr19: no APOE region in this subset

    df = read_sumstats(AD)
    qc = df.attrs["qc"]
    assert qc["n_rows_read"] == len(raw)
    assert qc["n_short_rows"] == n_short
    assert qc["n_dropped_missing"] == int(broken.sum())
    assert qc["n_p_filled"] == int(p_missing_lp_present.sum())
    assert qc["n_header_rows"] == 0 and qc["n_duplicates"] == 0 and qc["n_p_zero"] == 0
    assert len(df) == len(raw) - int(broken.sum())
    assert df.attrs["trait"] == "mungesumstats_ieu-a-298_AD_subset"
    rec = df.attrs["columns_recognised"]
    assert rec == {
        "SNP": "SNP",
        "CHR": "CHR",
        "BP": "BP",
        "A1": "A1",
        "A2": "A2",
        "P": "P",
        "LP": "LP",
        "BETA": "BETA",
        "SE": "SE",
        "N": "N",
    }

    # values equal the raw ones; the row without P got P = 10^-LP
    good = raw[~broken].reset_index(drop=True)
    assert df["SNP"].tolist() == good["SNP"].tolist()
    assert df["BP"].tolist() == good["BP"].astype(int).tolist()
    has_p = good["P"].notna().to_numpy()
    np.testing.assert_array_equal(df["P"].to_numpy()[has_p], good["P"].astype(float).to_numpy()[has_p])
    filled = df.loc[~has_p].iloc[0]
    assert filled["SNP"] == "rs11578902"
    assert filled["P"] == pytest.approx(10 ** -float(good.loc[~has_p, "LP"].iloc[0]), rel=1e-12)
    np.testing.assert_allclose(df["Z"], good["BETA"].astype(float) / good["SE"].astype(float), rtol=1e-12)


def test_read_ad_concatenated_twice_drops_header_and_duplicates(tmp_path):
    text = gzip.open(AD, "rt").read()
    doubled = write(tmp_path / "ad_twice.tsv", text + text)  # a real file concatenated with itself
    n_header_lines = sum(line.startswith("SNP\t") for line in doubled.read_text().split("\n"))
    assert n_header_lines == 2
    once = read_sumstats(AD)
    df = read_sumstats(doubled)
    assert df.attrs["qc"]["n_header_rows"] == n_header_lines - 1
    assert df.attrs["qc"]["n_duplicates"] == len(once)
    assert df["SNP"].tolist() == once["SNP"].tolist()
    np.testing.assert_array_equal(df["P"], once["P"])


def test_read_ea_real_file(caplog):
    raw = pd.read_csv(EA, sep="\t")
    with caplog.at_level(logging.INFO, logger="psysc"):
        df = read_sumstats(EA)
    assert df.attrs["columns_recognised"] == {
        "MarkerName": "SNP",
        "CHR": "CHR",
        "POS": "BP",
        "A1": "A1",
        "A2": "A2",
        "Pval": "P",
        "Beta": "BETA",
        "SE": "SE",
    }
    log = caplog.text
    assert "MarkerName -> SNP" in log and "POS -> BP" in log and "Pval -> P" in log and "EAF" in log
    assert len(df) == len(raw) == 93
    assert df["SNP"].tolist() == raw["MarkerName"].tolist()
    assert df["CHR"].tolist() == raw["CHR"].astype(str).tolist()
    np.testing.assert_array_equal(df["P"], raw["Pval"])
    # Z derived = BETA / SE
    np.testing.assert_allclose(df["Z"], raw["Beta"] / raw["SE"], rtol=1e-12)
    assert list(df.columns) == ["SNP", "CHR", "BP", "A1", "A2", "P", "Z", "BETA", "SE"]


# ----------------------------------------------------------------------------------------------
# read_sumstats: column spellings, derivations
# ----------------------------------------------------------------------------------------------
def test_gwas_catalog_spellings_and_override(tmp_path):
    path = tmp_path / "cat.tsv.gz"
    text = (
        "variant_id\tchromosome\tbase_pair_location\teffect_allele\tother_allele\tbeta\tstandard_error\tp_value\t"
        "n_total\n"
        "rs1\t1\t100\tA\tG\t0.1\t0.05\t0.0455\t1000\n"
        "rs2\t2\t200\tC\tT\t-0.2\t0.1\t0.0455\t1000\n"
    )
    path.write_bytes(gzip.compress(text.encode()))
    df = read_sumstats(path)
    assert df.attrs["columns_recognised"] == {
        "variant_id": "SNP",
        "chromosome": "CHR",
        "base_pair_location": "BP",
        "effect_allele": "A1",
        "other_allele": "A2",
        "beta": "BETA",
        "standard_error": "SE",
        "p_value": "P",
        "n_total": "N",
    }
    assert df.attrs["trait"] == "cat"
    # VCF-like header, whitespace separated, LP instead of P
    path2 = write(tmp_path / "vcf_like.txt", "##fileformat=x\n#CHROM  POS  ID  REF ALT  LP\n1 10 rs9 G A 3\n")
    df2 = read_sumstats(path2)
    assert df2.attrs["columns_recognised"] == {
        "#CHROM": "CHR",
        "POS": "BP",
        "ID": "SNP",
        "REF": "A2",
        "ALT": "A1",
        "LP": "LP",
    }
    assert df2["P"].iloc[0] == pytest.approx(1e-3, rel=1e-12)
    assert "Z" not in df2  # no sign information
    # override: an unrecognised name, and a recognised column ignored
    frame = pd.DataFrame({"rs": ["rs1"], "c": ["3"], "location": [55], "pvalue_x": [0.2], "P": [0.9]})
    with pytest.raises(ValueError, match="cannot find CHR and BP") as err:
        read_sumstats(frame)
    assert "columns=" in str(err.value) and "'location'" in str(err.value)
    out = read_sumstats(frame, columns={"c": "CHR", "location": "BP", "pvalue_x": "P", "P": None})
    assert out[["SNP", "CHR", "BP", "P"]].iloc[0].tolist() == ["rs1", "3", 55, 0.2]


def test_missing_columns_error_lists_them(tmp_path):
    path = write(tmp_path / "bad.tsv", "SNP\tCHR\tFRQ\tINFO\nrs1\t1\t0.2\t0.9\n")
    with pytest.raises(ValueError) as err:
        read_sumstats(path)
    msg = str(err.value)
    for needed in ("BP", "one of P / Z / BETA+SE / OR+SE", "['SNP', 'CHR', 'FRQ', 'INFO']", "columns="):
        assert needed in msg


@pytest.mark.parametrize("sep", ["\t", ",", " "])
def test_a_repeated_header_name_is_refused(tmp_path, sep):
    # pandas would read the second P as "P.1" and the reader would use the first one without a word
    head = sep.join(["SNP", "CHR", "BP", "A1", "A2", "P", "P"])
    path = write(tmp_path / "dup.txt", head + "\n" + sep.join(["rs1", "1", "100", "A", "G", "0.01", "0.5"]) + "\n")
    with pytest.raises(ValueError, match=r"duplicated column names \['P'\]"):
        read_sumstats(path)


def test_a_line_with_more_whitespace_fields_than_the_header_is_refused(tmp_path):
    # with a whitespace separator pandas keeps the first fields of a longer line and drops the rest
    text = "SNP CHR BP A1 A2 P\nrs1 1 100 A G 0.01\nrs2 1 200 A G 0.5 extra\n"
    with pytest.raises(ValueError, match=r"line 3: 7 fields but the header has 6"):
        read_sumstats(write(tmp_path / "long.txt", text))


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_data_lines_ending_in_separators_read_as_the_same_lines_without(tmp_path, newline, caplog):
    clean = ["SNP\tCHR\tBP\tA1\tA2\tP\tBETA", "rs1\t1\t100\tA\tG\t0.01\t0.2", "rs2\t2\t200\tC\tT\t0.5\t-0.1",
             "rs3\t3\t300\tC\tT\t0.2\t"]  # rs3: BETA missing, as many fields as the header
    trailing = [clean[0], clean[1] + "\t", clean[2] + "\t\t", clean[3]]
    want = read_sumstats(write(tmp_path / "clean.tsv", newline.join(clean) + newline))
    with caplog.at_level(logging.INFO, logger="psysc"):
        got = read_sumstats(write(tmp_path / "clean.tsv", newline.join(trailing) + newline))
    assert got.attrs["qc"].pop("n_rows_with_trailing_separators") == 2
    assert want.attrs["qc"].pop("n_rows_with_trailing_separators") == 0
    pd.testing.assert_frame_equal(got, want)
    assert "2 lines end with empty fields beyond the header's 7 (trailing separators)" in caplog.text
    with pytest.raises(ValueError, match=r"line 3: 8 fields but the header has 7 \(1 line too long\)"):
        read_sumstats(write(tmp_path / "long.tsv", newline.join([clean[0], clean[1], clean[2] + "\tx"]) + newline))


def test_empty_trailing_header_fields_are_not_duplicates(tmp_path):
    text = "SNP\tCHR\tBP\tA1\tA2\tP\t\t\nrs1\t1\t100\tA\tG\t0.01\t\t\n"
    out = read_sumstats(write(tmp_path / "trailing.tsv", text))
    assert out["P"].tolist() == [0.01]


def test_comment_lines_before_the_header_are_skipped_but_a_hash_header_is_read(tmp_path, caplog):
    rows = "rs1\t1\t100\t0.01\nrs2\t2\t200\t0.5\n"
    want = read_sumstats(write(tmp_path / "plain.tsv", "SNP\tCHR\tBP\tP\n" + rows))
    with caplog.at_level(logging.INFO, logger="psysc"):
        comments = "# GWAS of X, 2026\n#\n\n# build GRCh37\n"
        got = read_sumstats(write(tmp_path / "plain.tsv", comments + "SNP\tCHR\tBP\tP\n" + rows))
    assert "3 comment lines before the header skipped" in caplog.text
    pd.testing.assert_frame_equal(got, want)
    # PLINK 2 writes its header as '#CHROM POS ID ...': that line is the header
    plink2_rows = "1\t100\trs1\t0.01\n2\t200\trs2\t0.5\n"
    plink2 = read_sumstats(write(tmp_path / "plain.tsv", "#CHROM\tPOS\tID\tP\n" + plink2_rows))
    pd.testing.assert_frame_equal(plink2, want)
    # a comment that names columns too is still a comment when the header below names as many or more
    named = "# SNP and P from the meta-analysis\n# CHR, BP: GRCh37\n"
    got = read_sumstats(write(tmp_path / "plain.tsv", named + "SNP\tCHR\tBP\tP\n" + rows))
    pd.testing.assert_frame_equal(got, want)
    hashed = read_sumstats(write(tmp_path / "plain.tsv", "# SNP and P\n#CHROM\tPOS\tID\tP\n" + plink2_rows))
    pd.testing.assert_frame_equal(hashed, want)


def test_a_zero_beta_beside_a_small_p_leaves_z_empty_and_tiny_p_keeps_its_z(caplog):
    frame = pd.DataFrame({"SNP": ["a", "b", "c", "d", "e"], "CHR": "1", "BP": [1, 2, 3, 4, 5],
                          "P": [1e-10, 1e-320, 1.0, 0.5, 1e-300], "BETA": [0.0, 0.3, 0.0, -0.1, -2.0]})
    with caplog.at_level(logging.WARNING, logger="psysc"):
        out = read_sumstats(frame).set_index("SNP")
    assert np.isnan(out.loc["a", "Z"]) and out.loc["a", "P"] == 1e-10
    assert out.loc["c", "Z"] == 0.0  # P = 1: a zero effect
    assert out.loc["d", "Z"] == pytest.approx(-stats.norm.isf(0.25), rel=1e-12)
    assert out.loc["e", "Z"] == pytest.approx(-stats.norm.isf(0.5e-300), rel=1e-12)
    # P = 1e-320 is below the smallest normal double: stored as that, Z from the P given (log tail of scipy)
    assert out.loc["b", "P"] == np.finfo(np.float64).tiny
    assert stats.norm.logsf(out.loc["b", "Z"]) == pytest.approx(math.log(0.5e-320), rel=1e-9)
    qc = out.attrs["qc"]
    assert (qc["n_sign_unknown"], qc["n_p_below_floor"]) == (1, 1)
    assert "1 row has BETA of exactly 0 but P < 1" in caplog.text
    assert "1 row has P below 2.23e-308" in caplog.text


def test_a_p_far_from_the_p_of_beta_over_se_is_counted_in_a_warning(caplog):
    """An SE that is in truth a variance (row b: z 2 read as 20) or a P of another test (row c) disagrees with P;
    rounding in the file (row d: BETA 0.027, SE 0.003 beside P 2.7e-24, Okbay et al. 2016) does not."""
    frame = pd.DataFrame({"SNP": list("abcde"), "CHR": "1", "BP": [1, 2, 3, 4, 5],
                          "BETA": [0.2, 0.02, -0.5, 0.027, 0.1], "SE": [0.1, 0.001, 0.1, 0.003, 0.1],
                          "P": [2 * stats.norm.sf(2.0), 2 * stats.norm.sf(2.0), 0.5, 2.693e-24, 0.3173]})
    with caplog.at_level(logging.WARNING, logger="psysc"):
        out = read_sumstats(frame).set_index("SNP")
    z_of_p = stats.norm.isf(frame["P"].to_numpy() / 2)
    z = (frame["BETA"] / frame["SE"]).abs().to_numpy()
    assert np.abs(z - z_of_p).round(2).tolist() == [0.0, 18.0, 4.33, 1.17, 0.0]  # what the rule compares
    assert out.attrs["qc"]["n_z_p_disagree"] == 2
    assert "2 rows have a P far from the P of BETA/SE (first: row 2 (index 1), P 0.0455 but |Z| 20" in caplog.text
    assert out.loc["b", "P"] == frame["P"][1] and out.loc["b", "Z"] == pytest.approx(20.0)  # both kept as given
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="psysc"):
        assert read_sumstats(frame.iloc[[0, 3, 4]]).attrs["qc"]["n_z_p_disagree"] == 0
    assert "far from" not in caplog.text


def test_white_space_rows_with_a_missing_field_are_dropped_not_shifted(tmp_path, caplog):
    """With white space between fields an empty INFO (two spaces) would move OR, SE and P one column left (rs2 read
    as OR 0.05, SE 0.84, P from Z); padding spaces (rs3, aligned columns) are not missing fields."""
    text = ("CHR SNP BP A1 A2 INFO OR SE P\n1 rs1 1000 A G 0.98 1.2 0.05 0.00026\n1 rs2 2000 A G  1.01 0.05 0.84\n"
            "1   rs3   3000 A G 0.9 1.1 0.05 0.06\n\n")
    with caplog.at_level(logging.WARNING, logger="psysc"):
        out = read_sumstats(write(tmp_path / "daner.txt", text))
    assert out["SNP"].tolist() == ["rs1", "rs3"]
    assert out.set_index("SNP").loc["rs3", ["OR", "SE", "P"]].tolist() == [1.1, 0.05, 0.06]
    assert (out.attrs["qc"]["n_short_rows"], out.attrs["qc"]["n_dropped_short_rows"]) == (1, 1)
    assert "1 row with fewer fields than the header dropped (first: data row 2 (line 3 of the file))" in caplog.text
    # the same row in a tab-separated file keeps its place: the empty field is seen, INFO is read as missing
    tabbed = "CHR\tSNP\tBP\tA1\tA2\tINFO\tOR\tSE\tP\n1\trs2\t2000\tA\tG\t\t1.01\t0.05\t0.84\n"
    tabbed = read_sumstats(write(tmp_path / "daner.tsv", tabbed))
    assert tabbed.loc[0, ["SNP", "OR", "SE", "P"]].tolist() == ["rs2", 1.01, 0.05, 0.84]


def test_bzip2_xz_and_zip_files_are_read_as_gzip_ones(tmp_path):
    import bz2
    import lzma
    import zipfile

    text = b"SNP\tCHR\tBP\tP\nrs1\t1\t100\t0.01\nrs2\t2\t200\t0.5\n"
    want = read_sumstats(write(tmp_path / "x.tsv", text.decode()))
    (tmp_path / "x.tsv.bz2").write_bytes(bz2.compress(text))
    (tmp_path / "x.tsv.xz").write_bytes(lzma.compress(text))
    with zipfile.ZipFile(tmp_path / "x.zip", "w") as z:
        z.writestr("x.tsv", text)
    for name in ("x.tsv.bz2", "x.tsv.xz", "x.zip"):
        got = read_sumstats(tmp_path / name)
        pd.testing.assert_frame_equal(got, want, check_like=True)
        assert got.attrs["trait"] == "x"
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as z:
        z.writestr("a.tsv", text)
        z.writestr("b.tsv", text)
    with pytest.raises(ValueError, match=r"zip archive of 2 files \(\['a.tsv', 'b.tsv'\]\); unpack it"):
        read_sumstats(tmp_path / "two.zip")
    (tmp_path / "x.tsv.zst").write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00" * 20)
    with pytest.raises(ValueError, match="compressed with zstd; decompress it first"):
        read_sumstats(tmp_path / "x.tsv.zst")
    (tmp_path / "genes.txt.bz2").write_bytes(bz2.compress(b"SHANK3\nCHD8\n"))
    assert read_gene_list(tmp_path / "genes.txt.bz2")["genes"].index.tolist() == ["SHANK3", "CHD8"]


def test_positions_are_read_from_variant_ids_when_the_file_has_no_position_columns(tmp_path, caplog):
    """METAL's MarkerName 1:1000, the Neale lab's variant 1:15791:C:T; an ID without a position is dropped and
    counted; rsIDs alone hold no position: an error that names the fix."""
    neale = ("variant\tminor_allele\tbeta\tse\tpval\n1:15791:C:T\tT\t0.1\t0.05\t0.0455\n"
             "chrX_5000_A_G\tG\t0.2\t0.05\t6.3e-05\n")
    with caplog.at_level(logging.INFO, logger="psysc"):
        got = read_sumstats(write(tmp_path / "neale.tsv", neale))
    assert got[["SNP", "CHR", "BP"]].values.tolist() == [["1:15791:C:T", "1", 15791], ["chrX_5000_A_G", "X", 5000]]
    assert "no CHR or BP column: read from the variant IDs of variant" in caplog.text
    rows = [f"{i % 22 + 1}:{1000 + i}\ta\tg\t0.1\t0.02\t0.5" for i in range(19)] + ["rs999\ta\tg\t0.1\t0.02\t0.5"]
    metal = read_sumstats(write(tmp_path / "metal.tbl",
                                "MarkerName\tAllele1\tAllele2\tEffect\tStdErr\tP-value\n" + "\n".join(rows) + "\n"))
    assert len(metal) == 19 and metal.attrs["qc"]["n_dropped_missing"] == 1  # rs999: no position, counted
    assert metal["BP"].tolist() == [1000 + i for i in range(19)]
    with pytest.raises(ValueError, match=r"cannot find CHR and BP. The variants are named by rsID \(e.g. 'rs1'\)"
                                         r".*merge with a PLINK .bim file"):
        read_sumstats(write(tmp_path / "ldsc.sumstats", "SNP\tA1\tA2\tN\tZ\nrs1\tA\tG\t1000\t2.0\n"))


def test_a_p_above_1_by_a_rounding_error_is_read_as_1():
    frame = pd.DataFrame({"SNP": ["a", "b"], "CHR": "1", "BP": [1, 2], "P": [1.0000001, 0.5]})
    out = read_sumstats(frame)
    assert out["P"].tolist() == [1.0, 0.5] and out.attrs["qc"]["n_p_rounded_to_1"] == 1
    with pytest.raises(ValueError, match=r"P \(P\) = 1.01 is outside \[0, 1\]"):  # not a rounding error
        read_sumstats(frame.assign(P=[1.01, 0.5]))


def test_decimal_commas_in_the_statistics_are_read_with_a_decimal_point(tmp_path, caplog):
    """A European spreadsheet's export: ';' between fields, ',' before the decimals; N keeps its thousands."""
    want = read_sumstats(write(tmp_path / "x.tsv", "SNP\tCHR\tBP\tBETA\tSE\tP\nrs1\t1\t100\t0.2\t0.05\t6.334E-05\n"
                                                   "rs2\t1\t200\t-0.01\t0.05\t0.84\n"))
    with caplog.at_level(logging.INFO, logger="psysc"):
        got = read_sumstats(write(tmp_path / "x.txt", "SNP;CHR;BP;BETA;SE;P\nrs1;1;100;0,2;0,05;6,334E-05\n"
                                                      "rs2;1;200;-0,01;0,05;0,84\n"))
    pd.testing.assert_frame_equal(got, want)
    assert ("P, BETA, SE written with a decimal comma (e.g. P '6,334E-05', BETA '0,2', SE '0,05'); read with a "
            "decimal point") in caplog.text
    with pytest.raises(ValueError, match=r"N \(N\) is '1,5x', not a number"):
        read_sumstats(write(tmp_path / "y.txt", "SNP;CHR;BP;P;N\nrs1;1;100;0,5;1,5x\n"))


@pytest.mark.parametrize("sep", ["\t", None])
@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 22])
def test_field_counts_in_chunks_equal_a_split_of_each_line(sep, chunk):
    from psysc.gwas._sumstats import _field_counts

    rng = np.random.default_rng(3)
    words = ["rs1", "", "0.5", "A", "  ", "x y", "1e-8"]
    lines = [(sep or " ").join(rng.choice(words, rng.integers(0, 9))) for _ in range(300)] + [""]
    raw = np.frombuffer("\n".join(lines).encode(), dtype=np.uint8)
    ends = np.append(np.flatnonzero(raw == 10), len(raw))
    want = [len(line.split(sep)) if sep else len(line.split()) for line in lines]
    assert _field_counts(raw, ends, sep, chunk=chunk).tolist() == want


def test_columns_not_used_are_not_read_but_still_named(tmp_path, caplog):
    """A PGC daner file's 19 columns: the frequencies, INFO, Direction, ... are not read into memory, and the log
    still lists them as ignored; the result equals that of the used columns alone."""
    head = "CHR SNP BP A1 A2 FRQ_A_1000 FRQ_U_2000 INFO OR SE P ngt Direction Nca Nco Neff"
    rows = ["1 rs1 1000 A G 0.3 0.31 0.98 1.2 0.05 0.00026 0 ++-+ 1000 2000 2500",
            "2 rs2 2000 C T 0.1 0.12 0.91 0.9 0.04 0.0085 0 --+- 1000 2000 2500"]
    with caplog.at_level(logging.INFO, logger="psysc"):
        got = read_sumstats(write(tmp_path / "daner.txt", "\n".join([head, *rows]) + "\n"))
    assert "ignored ['FRQ_A_1000', 'FRQ_U_2000', 'INFO', 'ngt', 'Direction', 'Nca', 'Nco']" in caplog.text
    used = [0, 1, 2, 3, 4, 8, 9, 10, 15]
    narrow = "\n".join(" ".join(line.split()[i] for i in used) for line in [head, *rows]) + "\n"
    pd.testing.assert_frame_equal(got, read_sumstats(write(tmp_path / "daner.txt", narrow)), check_like=True)


@pytest.mark.parametrize("sep", [" ", "\t", ","])
def test_r_write_table_row_names_are_read_as_a_column_of_their_own(tmp_path, sep):
    """R's write.table writes row names below a header that names no column for them, and quotes text."""
    want = read_sumstats(write(tmp_path / "x.tsv", "SNP\tCHR\tBP\tP\nrs1\t1\t100000\t0.01\nrs2\t2\t200\t0.5\n"))
    text = sep.join(['"SNP"', '"CHR"', '"BP"', '"P"']) + "\n" + "".join(
        sep.join([f'"{i + 1}"', f'"{snp}"', chrom, bp, p]) + "\n"
        for i, (snp, chrom, bp, p) in enumerate([("rs1", "1", "1e+05", "0.01"), ("rs2", "2", "200", "0.5")]))
    got = read_sumstats(write(tmp_path / "x.txt", text))
    pd.testing.assert_frame_equal(got, want, check_like=True)
    # a trailing separator on every row is not a row name
    trailing = read_sumstats(write(tmp_path / "t.tsv", "SNP\tCHR\tBP\tP\nrs1\t1\t100000\t0.01\t\n"))
    assert trailing["SNP"].tolist() == ["rs1"] and trailing.attrs["qc"]["n_rows_with_trailing_separators"] == 1


def test_lines_longer_than_the_header_stay_errors_when_columns_are_left_unread(tmp_path):
    """Columns not used are not read; pandas would then drop a long line's extra fields without a word."""
    for name, text in (("a.txt", "SNP CHR BP P INFO\nrs1 1 100 0.5 0.9\nrs2 1 200 0.01 0.8 extra\n"),
                       ("b.csv", 'SNP,CHR,BP,P,INFO\n"rs1",1,100,0.5,0.9\n"rs2",1,200,0.01,0.8,7\n'),
                       ("t.txt", "CHR BP P\n1 100 0.5 7\n")):  # one row numbered 1 is a chromosome, not a row name
        with pytest.raises(ValueError, match=r"line \d: \d fields but the header has \d"):
            read_sumstats(write(tmp_path / name, text))
    # a quoted field with the separator inside is one field (not an R row name shifting the header)
    got = read_sumstats(write(tmp_path / "q.csv", 'SNP,CHR,BP,P,GENE\nrs1,1,100,0.5,"A,B"\nrs2,1,200,0.01,"C,D"\n'))
    assert got[["SNP", "P"]].values.tolist() == [["rs1", 0.5], ["rs2", 0.01]]


def test_header_and_columns_errors_are_said_plainly(tmp_path):
    path = write(tmp_path / "c.tsv", "SNP\tCHR\tBP\tP\tP\nrs1\t1\t1\t0.1\t0.2\n")
    with pytest.raises(ValueError, match=r"^\S*c.tsv: duplicated column names \['P'\] in the header; rename them$"):
        read_sumstats(path)
    path = write(tmp_path / "d.tsv", "SNP\tCHR\tBP\tP\nrs1\t1\t1\t0.1\n")
    with pytest.raises(ValueError, match=r"^columns=\{'pos': 'BP'\}: \S*d.tsv has no column 'pos'"):
        read_sumstats(path, columns={"pos": "BP"})


def test_an_se_of_zero_without_p_leaves_the_row_without_a_statistic(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="psysc"):
        got = read_sumstats(write(tmp_path / "f.tsv", "SNP\tCHR\tBP\tBETA\tSE\nrs1\t1\t1000\t0.1\t0.05\n"
                                                      "rs2\t1\t1100\t0\t0\n"))
    assert got["SNP"].tolist() == ["rs1"] and got["P"].notna().all()
    assert (got.attrs["qc"]["n_se_zero"], got.attrs["qc"]["n_dropped_missing"]) == (1, 1)


def test_refseq_chromosome_names_are_read_and_unknown_names_stay_errors(tmp_path):
    got = read_sumstats(pd.DataFrame({"SNP": ["a", "b", "c", "d"], "BP": [1, 2, 3, 4], "P": 0.5,
                                      "CHR": ["NC_000001.11", "NC_000023.10", "NC_000024.10", "NC_012920.1"]}))
    assert got["CHR"].tolist() == ["1", "X", "Y", "MT"]
    for chrom in ("chr_1", "unknown", "NC_000025.1"):
        with pytest.raises(ValueError, match=f"unknown chromosome '{chrom}'"):
            read_sumstats(pd.DataFrame({"SNP": ["a"], "CHR": [chrom], "BP": [1], "P": [0.5]}))


def test_decimal_commas_are_read_beside_a_repeated_header_line(tmp_path):
    got = read_sumstats(write(tmp_path / "d.txt", "SNP;CHR;BP;P\nrs1;1;100;0,05\nSNP;CHR;BP;P\nrs2;1;200;0,5\n"))
    assert got["P"].tolist() == [0.05, 0.5] and got.attrs["qc"]["n_header_rows"] == 1


def test_a_damaged_compressed_file_is_a_clear_error(tmp_path):
    import lzma

    data = lzma.compress(b"SNP\tCHR\tBP\tP\n" + b"rs1\t1\t100\t0.01\n" * 1000)
    (tmp_path / "cut.tsv.xz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut.tsv.xz' could not be decompressed as xz .*is the file complete"):
        read_sumstats(tmp_path / "cut.tsv.xz")


def test_separator_mismatches_are_named(tmp_path):
    want = read_sumstats(write(tmp_path / "x.tsv", "SNP\tCHR\tBP\tP\nrs1\t1\t100\t0.01\n"))
    got = read_sumstats(write(tmp_path / "x.txt", "SNP;CHR;BP;P\nrs1;1;100;0.01\n"))  # European CSV
    pd.testing.assert_frame_equal(got, want)
    got = read_sumstats(write(tmp_path / "x.txt", "# exported 2026-01-01\nSNP;CHR;BP;P\nrs1;1;100;0.01\n"))
    pd.testing.assert_frame_equal(got, want)
    with pytest.raises(ValueError, match=r"read as 1 column\(s\) holding '\|': pass sep='\|'"):
        read_sumstats(write(tmp_path / "x.txt", "SNP|CHR|BP|P\nrs1|1|100|0.01\n"))
    with pytest.raises(ValueError, match=r"every row has fewer fields than the header.*Pass sep="):
        read_sumstats(write(tmp_path / "x.tsv", "SNP\tCHR\tBP\tP\nrs1 1 100 0.01\nrs2 1 200 0.5\n"))
    assert read_sumstats(write(tmp_path / "scz.regenie", "SNP CHR BP P\nrs1 1 100 0.01\n")).attrs["trait"] == "scz"
    path = tmp_path / "bip.tsv.bgz"
    path.write_bytes(gzip.compress(b"SNP\tCHR\tBP\tP\nrs1\t1\t100\t0.01\n"))
    assert read_sumstats(path).attrs["trait"] == "bip"


def test_chromosome_normalisation():
    given = ["chr1", "01", "22", "23", "chrX", "x", "24", "Y", "25", "26", "M", "chrM", "MT", "XY", 7, "7.0"]
    # PLINK 1.9 codes: 23 X, 24 Y, 25 XY (pseudo-autosomal, on X), 26 MT
    expected = ["1", "1", "22", "X", "X", "X", "Y", "Y", "X", "MT", "MT", "MT", "MT", "X", "7", "7"]
    frame = pd.DataFrame(
        {"SNP": [f"rs{i}" for i in range(len(given))], "CHR": given, "BP": np.arange(1, len(given) + 1), "P": 0.5}
    )
    assert read_sumstats(frame)["CHR"].tolist() == expected
    frame.loc[3, "CHR"] = "chr6.5"
    with pytest.raises(ValueError, match=r"row 4 .*unknown chromosome 'chr6.5'"):
        read_sumstats(frame)


def test_z_and_p_derivations_match_scipy():
    beta = np.array([0.3, -0.2, 0.05, -1.0])
    se = np.array([0.1, 0.05, 0.1, 0.2])
    # BETA + SE only -> Z = BETA/SE, P = 2 sf(|Z|)
    df = read_sumstats(pd.DataFrame({"CHR": 1, "BP": [1, 2, 3, 4], "BETA": beta, "SE": se}))
    np.testing.assert_allclose(df["Z"], beta / se, rtol=1e-15)
    np.testing.assert_allclose(df["P"], 2 * stats.norm.sf(np.abs(beta / se)), rtol=1e-12)
    # OR + SE -> Z = log(OR)/SE
    odds = np.exp(beta)
    df = read_sumstats(pd.DataFrame({"CHR": 1, "BP": [1, 2, 3, 4], "OR": odds, "SE": se}))
    np.testing.assert_allclose(df["Z"], np.log(odds) / se, rtol=1e-12)
    # Z only -> P two-sided
    z = np.array([0.0, 1.959963984540054, -3.0, 37.0, 40.0])
    df = read_sumstats(pd.DataFrame({"CHR": 1, "BP": [1, 2, 3, 4, 5], "zscore": z}))
    np.testing.assert_allclose(df["P"][:4], 2 * stats.norm.sf(np.abs(z[:4])), rtol=1e-12)
    assert df["P"].iloc[1] == pytest.approx(0.05, rel=1e-12)
    assert 2 * stats.norm.sf(40.0) == 0.0  # underflow in double precision ...
    assert df["P"].iloc[4] == np.finfo(float).tiny  # ... floored at the smallest normal double
    # P + sign of BETA (no SE) -> Z = sign * Phi^-1(1 - P/2)
    p = np.array([0.05, 1e-10, 0.5, 1e-300])
    df = read_sumstats(pd.DataFrame({"CHR": 1, "BP": [1, 2, 3, 4], "P": p, "BETA": beta}))
    np.testing.assert_allclose(df["Z"], np.sign(beta) * stats.norm.isf(p / 2), rtol=1e-12)


def test_duplicates_keep_smallest_p(caplog):
    frame = pd.DataFrame(
        {
            "SNP": ["rs1", "rs2", "rs1", "rs3", "rs4"],
            "CHR": ["1", "1", "1", "2", "2"],
            "BP": [10, 20, 10, 30, 30],
            "A1": ["A", "C", "A", "G", "G"],
            "A2": ["G", "T", "G", "T", "T"],
            "P": [0.2, 0.5, 0.01, 0.3, 0.04],
        }
    )
    with caplog.at_level(logging.INFO, logger="psysc"):
        df = read_sumstats(frame)
    # rs1 twice (same ID), rs3/rs4 same CHR:BP:A1:A2 under two IDs
    assert df.attrs["qc"]["n_duplicates"] == 2
    assert df[["SNP", "P"]].values.tolist() == [["rs2", 0.5], ["rs1", 0.01], ["rs4", 0.04]]
    assert "2 rows of a duplicated SNP" in caplog.text
    # the same variant with the alleles the other way round (another effect allele) is a duplicate too; a variant
    # with other alleles at the same position (multi-allelic) is not
    swapped = pd.concat([frame, pd.DataFrame({"SNP": ["2:30_b", "2:30_c"], "CHR": ["2", "2"], "BP": [30, 30],
                                              "A1": ["T", "A"], "A2": ["G", "T"], "P": [0.001, 0.3]})])
    df = read_sumstats(swapped)
    assert df.attrs["qc"]["n_duplicates"] == 3  # rs1 once more; rs3, rs4 and 2:30_b are one variant
    assert df[["SNP", "P"]].values.tolist() == [["rs2", 0.5], ["rs1", 0.01], ["2:30_b", 0.001], ["2:30_c", 0.3]]


def test_best_of_each_matches_pandas():
    # the row kept per key: the smallest P, ties and missing P by input order, as pandas' sort + drop_duplicates
    from psysc.gwas._sumstats import _best_of_each

    rng = np.random.default_rng(7)
    for n in (0, 1, 2, 5, 40, 300):
        for _ in range(20):
            major = rng.integers(0, max(1, n // 2), n)
            minor = rng.integers(0, 3, n)
            p = rng.choice([1e-8, 0.1, 0.5, np.nan], n)
            frame = pd.DataFrame({"major": major, "minor": minor, "P": p, "row": np.arange(n)})
            expected = (frame.sort_values("P", kind="stable", na_position="last")
                        .drop_duplicates(["major", "minor"])["row"].sort_values().to_numpy())
            np.testing.assert_array_equal(_best_of_each(major, minor, p), expected)


def test_p_zero_replaced(caplog):
    frame = pd.DataFrame(
        {
            "SNP": ["a", "b", "c"],
            "CHR": 1,
            "BP": [1, 2, 3],
            "P": [0.0, 0.0, 0.3],
            "BETA": [5.0, np.nan, 0.1],
            "SE": [0.1, np.nan, 0.1],
        }
    )
    with caplog.at_level(logging.INFO, logger="psysc"):
        df = read_sumstats(frame)
    assert df.attrs["qc"]["n_p_zero"] == 2
    assert "2 rows have P = 0" in caplog.text
    assert df["P"].iloc[0] == pytest.approx(2 * stats.norm.sf(50.0), rel=1e-12)  # from Z = 5.0 / 0.1
    assert df["P"].iloc[1] == np.finfo(float).tiny  # nothing else known
    # with -log10 P given, P = 0 is 10^-LP (at least the smallest float), not the P of a coarse BETA/SE
    frame = frame.assign(BETA=[0.5, 0.5, 0.1], SE=0.1, LP=[350.0, 200.0, -np.log10(0.3)])
    df = read_sumstats(frame)
    assert df["P"].iloc[0] == np.finfo(float).tiny
    assert df["P"].iloc[1] == pytest.approx(1e-200, rel=1e-12, abs=0)  # not 5.7e-7 from Z = 5
    assert df["P"].iloc[2] == 0.3


@pytest.mark.parametrize(
    ("column", "value", "rule"),
    [
        ("P", "1.5", "outside"),
        ("P", "-0.1", "outside"),
        ("SE", "-0.2", "not a finite number > 0"),  # SE 0 is read as missing, BP 0 as unplaced (tests below)
        ("SE", "inf", "not a finite number > 0"),
        ("OR", "0", "not a finite number > 0"),
        ("OR", "Inf", "not a finite number > 0"),
        ("N", "0", "not a finite number > 0"),
        ("N", "inf", "not a finite number > 0"),
        ("BP", "-5", "not a position"),
        ("BP", "12.5", "not a position"),
        ("BP", "4294967396", "not a position"),  # 2^32 + 100: would share a key with chromosome + 1, position 100
        ("P", "abc", "not a number"),
    ],
)
def test_impossible_values_name_the_row(tmp_path, column, value, rule):
    rows = [["rs1", "1", "100", "0.1", "0.05", "1.1", "1000"]] * 5
    rows = [[f"rs{i}", *r[1:]] for i, r in enumerate(rows)]
    header = ["SNP", "CHR", "BP", "SE", "P", "OR", "N"]
    rows[2][header.index(column)] = value
    text = "\n".join("\t".join(r) for r in [header, *rows]) + "\n"
    path = write(tmp_path / "x.tsv", text)
    with pytest.raises(ValueError) as err:
        read_sumstats(path)
    msg = str(err.value)
    assert "data row 3 (line 4 of the file)" in msg and repr(value) in msg and rule in msg


def test_rows_missing_essentials_dropped(tmp_path, caplog):
    text = "SNP\tCHR\tBP\tP\nrs1\t1\t10\t0.1\nrs2\t\t20\t0.2\nrs3\t1\tNA\t0.3\nrs4\t1\t40\tNA\n\nrs5\t1\t50\t0.5\n"
    with caplog.at_level(logging.INFO, logger="psysc"):
        df = read_sumstats(write(tmp_path / "m.tsv", text))
    assert df["SNP"].tolist() == ["rs1", "rs5"]
    assert df.attrs["qc"]["n_dropped_missing"] == 3 and df.attrs["qc"]["n_blank_rows"] == 1
    assert "3 rows without chromosome, position or any statistic dropped (first: data row 2 (line 3" in caplog.text


# ----------------------------------------------------------------------------------------------
# sumstats_to_genes vs a naive implementation
# ----------------------------------------------------------------------------------------------
def naive_gene_table(ss: pd.DataFrame, loc: pd.DataFrame, up: int, down: int, method: str) -> pd.DataFrame:
    """Loop over genes; scipy formulas written from the papers' definitions."""
    rows = {}
    for g in loc.itertuples():
        lo = g.START - (down if g.STRAND == "-" else up)
        hi = g.STOP + (up if g.STRAND == "-" else down)
        lo = max(lo, 1)
        hit = ss[(ss["CHR"] == str(g.CHR)) & (ss["BP"] >= lo) & (ss["BP"] <= hi)]
        if len(hit) == 0:
            continue
        p = hit["P"].to_numpy()
        m = len(p)
        if method == "acat":
            t = np.mean(np.tan((0.5 - p) * np.pi))
            pg = stats.cauchy.sf(t)
            z = stats.norm.isf(pg)
        elif method == "minp":
            pg = 1 - (1 - p.min()) ** m
            z = stats.norm.isf(pg)
        else:
            z = np.sum(stats.norm.ppf(1 - p)) / math.sqrt(m)
            pg = stats.norm.sf(z)
        top = hit["SNP"].iloc[int(np.argmin(p))]
        rows[g.GENE] = dict(CHR=str(g.CHR), START=lo, STOP=hi, NSNPS=m, ZSTAT=z, P=pg, TOP_SNP=top)
    return pd.DataFrame.from_dict(rows, orient="index")


@pytest.fixture(scope="module")
def synthetic():
    rng = np.random.default_rng(0)
    n = 3000
    ss = pd.DataFrame(
        {
            "SNP": [f"rs{i}" for i in range(n)],
            "CHR": rng.choice(["1", "2", "X"], n),
            "BP": rng.integers(1, 2_000_000, n),
            "P": rng.uniform(1e-6, 0.999, n) ** 2,  # skewed towards small P; all in (0, 1)
        }
    )
    genes = []
    for i in range(120):
        chrom = ["1", "2", "X", "5"][i % 4]  # chromosome 5 has no SNP
        start = int(rng.integers(1, 1_950_000))
        genes.append((f"G{i}", chrom, start, start + int(rng.integers(1, 60_000)), "+-"[i % 2]))
    loc = pd.DataFrame(genes, columns=["GENE", "CHR", "START", "STOP", "STRAND"])
    return read_sumstats(ss, trait="toy"), loc


@pytest.mark.parametrize("method", ["acat", "minp", "stouffer"])
@pytest.mark.parametrize("window", [0, 10_000, (35_000, 10_000)])
def test_sumstats_to_genes_matches_naive(synthetic, method, window):
    ss, loc = synthetic
    up, down = window if isinstance(window, tuple) else (window, window)
    got = sumstats_to_genes(ss, gene_loc=loc, window=window, method=method)
    want = naive_gene_table(ss, loc, up, down, method)
    assert set(got.index) == set(want.index) and len(got) == len(want) > 50
    want = want.loc[got.index]
    for col in ("CHR", "START", "STOP", "NSNPS", "TOP_SNP"):
        assert got[col].tolist() == want[col].tolist(), col
    np.testing.assert_allclose(got["P"], want["P"].astype(float), rtol=1e-7)
    np.testing.assert_allclose(got["ZSTAT"], want["ZSTAT"].astype(float), rtol=1e-7, atol=1e-9)
    assert (np.diff(got["P"].to_numpy()) >= 0).all()  # sorted by P
    assert got.attrs == {"trait": "toy", "method": method, "build": "that of gene_loc", "build_assumed": True,
                         "window": window}
    # min_snps drops the genes with fewer SNPs
    got3 = sumstats_to_genes(ss, gene_loc=loc, window=window, method=method, min_snps=3)
    assert set(got3.index) == set(want.index[want["NSNPS"] >= 3])


def test_acat_and_stouffer_numerics_at_the_extremes():
    loc = pd.DataFrame(
        {
            "GENE": ["one", "two", "withone"],
            "CHR": ["1", "1", "1"],
            "START": [100, 1000, 5000],
            "STOP": [100, 1001, 5001],
        }
    )
    ss = read_sumstats(
        pd.DataFrame(
            {
                "SNP": list("abcde"),
                "CHR": "1",
                "BP": [100, 1000, 1001, 5000, 5001],
                "P": [1e-300, 1e-300, 0.5, 1e-6, 1.0],
            }
        )
    )
    got = sumstats_to_genes(ss, gene_loc=loc, window=0, method="acat")
    # one SNP: the Cauchy combination returns its P-value
    assert got.loc["one", "P"] == pytest.approx(1e-300, rel=1e-9)
    # {1e-300, 0.5}: T = (cot(pi 1e-300) + cot(pi/2)) / 2 = 1 / (2 pi 1e-300); P ~ 1 / (pi T) = 2e-300
    assert got.loc["two", "P"] == pytest.approx(2e-300, rel=1e-9)
    # P = 1 is set to 1 - 1/m = 0.5 (m = 2), whose Cauchy term is 0: P ~ 2 * 1e-6, not 1
    assert got.loc["withone", "P"] == pytest.approx(stats.cauchy.sf(1 / np.tan(np.pi * 1e-6) / 2), rel=1e-9)
    assert np.isfinite(got["ZSTAT"]).all()
    assert got.loc["one", "ZSTAT"] == pytest.approx(stats.norm.isf(1e-300), rel=1e-12)
    # Stouffer takes the same 1 - 1/m for P = 1: {1e-6, 0.5} -> (isf(1e-6) + isf(0.5)) / sqrt(2), not a z of -8.2
    got = sumstats_to_genes(ss, gene_loc=loc, window=0, method="stouffer")
    z = (stats.norm.isf(1e-6) + 0.0) / np.sqrt(2)
    assert got.loc["withone", "ZSTAT"] == pytest.approx(z, rel=1e-9)
    assert got.loc["withone", "P"] == pytest.approx(stats.norm.sf(z), rel=1e-9)


@pytest.mark.parametrize("method", ["acat", "minp", "stouffer"])
def test_snp_p_of_one_gives_no_outlying_gene_z(method):
    """P = 1 (a rounded P close to 1) is 1 - 1/m, 1/2 for a lone SNP: a gene of one such SNP has P = 1/2 and
    z = 0, like a gene of two (not P = 1 and z = -8.2, the most negative finite z, beside z = 0 for two)."""
    loc = pd.DataFrame({"GENE": ["lone", "pair"], "CHR": "19", "START": [100, 5000], "STOP": [200, 5100]})
    ss = read_sumstats(pd.DataFrame({"SNP": ["a", "b", "c"], "CHR": 19, "BP": [150, 5010, 5020],
                                     "P": [1.0, 1.0, 1.0]}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no divide-by-zero from log1p(-1)
        got = sumstats_to_genes(ss, gene_loc=loc, window=0, method=method)
    assert got.loc["lone", "P"] == pytest.approx(0.5, rel=1e-12)
    assert got.loc["lone", "ZSTAT"] == pytest.approx(0.0, abs=1e-12)
    expected_pair = {"acat": 0.5, "stouffer": 0.5, "minp": 1 - 0.5**2}[method]  # two SNPs at P 1/2
    assert got.loc["pair", "P"] == pytest.approx(expected_pair, rel=1e-12)
    assert (got["ZSTAT"] > -1).all()


# ----------------------------------------------------------------------------------------------
# real data against MAGMA
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ad():
    return read_sumstats(AD)


@pytest.mark.parametrize(("method", "min_rho"), [("acat", 0.9), ("minp", 0.85), ("stouffer", 0.7)])
def test_ad_subset_agrees_with_magma(tmp_path, ad, method, min_rho):
    magma = magma_table().set_index("GENE")
    # MAGMA's START/STOP already include its 35 kb / 10 kb window: window=0 reproduces its annotation
    got = sumstats_to_genes(ad, gene_loc=magma_gene_loc(tmp_path), window=0, method=method, build="GRCh37")
    both = got.join(magma[["NSNPS", "ZSTAT", "P"]], rsuffix="_MAGMA", how="inner")
    assert len(both) == len(got) == 82  # every gene with a SNP of the subset is in MAGMA's output
    assert (both["NSNPS"] == both["NSNPS_MAGMA"]).mean() > 0.9
    # measured Spearman rho: acat 0.96, minp 0.91, stouffer 0.78
    rho = stats.spearmanr(both["ZSTAT"], both["ZSTAT_MAGMA"])[0]
    assert rho > min_rho
    # genes with one SNP: every method returns that SNP's P, as MAGMA does (5 significant digits)
    one = both[(both["NSNPS"] == 1) & (both["NSNPS_MAGMA"] == 1)]
    assert len(one) > 30
    np.testing.assert_allclose(one["P"], one["P_MAGMA"], rtol=1e-4)
    # the strongest chr1 signal of the subset (153.1 Mb) is MAGMA's top gene among these genes
    if method != "stouffer":
        assert got.index[0] == both["P_MAGMA"].idxmin() == "6706"
    # LD behaviour on genes with >= 5 SNPs: Sidak conservative, Stouffer anti-conservative vs MAGMA
    big = both[(both["NSNPS"] >= 5) & (both["NSNPS"] == both["NSNPS_MAGMA"])]
    assert len(big) >= 10
    if method == "minp":
        assert (big["P"] > big["P_MAGMA"]).all()
    if method == "stouffer":
        assert (big["P"] < big["P_MAGMA"]).all()


def test_ea_lead_snps_land_in_the_genes_that_contain_them(tmp_path):
    ea = read_sumstats(EA)
    magma = magma_table()
    got = sumstats_to_genes(ea, gene_loc=magma_gene_loc(tmp_path), window=0, method="minp", build="GRCh37")
    # naive containment check of every lead SNP against MAGMA's GRCh37 gene intervals
    contains = {}
    for snp in ea.itertuples():
        hit = magma[(magma["CHR"] == snp.CHR) & (magma["START"] <= snp.BP) & (magma["STOP"] >= snp.BP)]
        for gene in hit["GENE"]:
            contains.setdefault(gene, []).append(snp.SNP)
    # the genes.out covers 1,355 genes only: 7 EA lead SNPs fall in 6 of them
    assert len(contains) == 6 and sum(map(len, contains.values())) == 7
    assert set(got.index) == set(contains)
    for gene, snps in contains.items():
        assert got.loc[gene, "NSNPS"] == len(snps)
        assert got.loc[gene, "TOP_SNP"] == ea.set_index("SNP").loc[snps, "P"].idxmin()
    # NEGR1 (NCBI Gene 257194, chr1:72 Mb), an EA/BMI locus, holds two lead SNPs
    assert sorted(contains["257194"]) == ["rs2568955", "rs34305371"]
    assert got.loc["257194", "TOP_SNP"] == "rs34305371"
    # its gene P: Sidak on the smaller P of the two
    assert got.loc["257194", "P"] == pytest.approx(1 - (1 - 3.762e-14) ** 2, rel=1e-9)


# ----------------------------------------------------------------------------------------------
# bundled GRCh38 genes, builds, liftover, bad input
# ----------------------------------------------------------------------------------------------
# GRCh38 gene intervals as Ensembl 114 (= GENCODE v48) publishes them: 1-based, both ends included
ENSEMBL_114 = {"APOE": ("chr19", 44_905_791, 44_909_393), "GAPDH": ("chr12", 6_534_512, 6_538_374)}


def test_bundled_gene_intervals_are_one_based_inclusive():
    table = gene_table("human").set_index("symbol")
    for symbol, (chrom, start, end) in ENSEMBL_114.items():
        assert (table.loc[symbol, "chrom"], table.loc[symbol, "start"], table.loc[symbol, "end"]) == (chrom, start, end)
    # window 0: a SNP on the gene's first or last base is in it, one base outside is not
    chrom, start, end = ENSEMBL_114["APOE"]
    ss = read_sumstats(pd.DataFrame({"SNP": ["first", "before", "last", "after"], "CHR": [chrom] * 4,
                                     "BP": [start, start - 1, end, end + 1], "P": [1e-4, 1e-9, 1e-3, 1e-9]}))
    got = sumstats_to_genes(ss, window=0, build="GRCh38")
    assert got.loc["APOE", "NSNPS"] == 2 and got.loc["APOE", "TOP_SNP"] == "first"


def test_bundled_grch38_apoe():
    table = gene_table("human")
    apoe = table[table["symbol"] == "APOE"].iloc[0]
    assert apoe["start"] <= RS429358_GRCH38 <= apoe["end"]  # the variant is in APOE on GRCh38
    ss = read_sumstats(
        pd.DataFrame(
            {
                "SNP": ["rs429358", "rsfar"],
                "CHR": ["chr19", "19"],
                "BP": [RS429358_GRCH38, 100_000_000],
                "P": [1e-30, 0.5],
            }
        )
    )
    got = sumstats_to_genes(ss, window=0, build="GRCh38")
    assert got.index[0] == "APOE" and got.loc["APOE", "TOP_SNP"] == "rs429358"
    assert got.loc["APOE", "START"] == apoe["start"] and got.loc["APOE", "STOP"] == apoe["end"]
    by_id = sumstats_to_genes(ss, window=0, gene_id="ensembl", build="GRCh38")
    pd.testing.assert_frame_equal(sumstats_to_genes(ss, window=0, gene_id="gene_id", build="GRCh38"), by_id)
    assert by_id.index[0] == apoe["gene_id"]
    # the GRCh37 position of the same variant is ~500 kb away: not in APOE on GRCh38
    ss37 = ss.assign(BP=[RS429358_GRCH37, 100_000_000])
    near37 = table[
        (table["chrom"] == "chr19")
        & (table["start"] - 10_000 <= RS429358_GRCH37)
        & (table["end"] + 10_000 >= RS429358_GRCH37)
        & (table["biotype"] == "protein_coding")
    ]
    got37 = sumstats_to_genes(ss37, window=10_000, build="GRCh38")  # GRCh37 positions said to be GRCh38
    assert "APOE" not in got37.index
    assert set(got37.index) == set(near37["symbol"])  # whatever GRCh38 genes lie there instead


def test_ea_top_snp_strand_oriented_window():
    # The EA lead SNP rs12987662 (chr2:100821548 on GRCh37) is at chr2:100205086 on GRCh38 (lifted with
    # UCSC's hg19ToHg38 chain at development time; the chain is not shipped). It is intergenic: 12.7 kb
    # beyond the 5' end of AFF3, a minus-strand gene, so only an upstream window of > 12.7 kb reaches it.
    table = gene_table("human")
    aff3 = table[table["symbol"] == "AFF3"].iloc[0]
    assert aff3["strand"] == "-" and 10_000 < 100205086 - aff3["end"] < 35_000
    ea = read_sumstats(EA)
    top = ea[ea["SNP"] == "rs12987662"].assign(BP=100205086)
    got = sumstats_to_genes(top, window=(35_000, 10_000), build="GRCh38")  # MAGMA.Celltyping's 35 kb up / 10 down
    assert got.index.tolist() == ["AFF3"] and got.loc["AFF3", "STOP"] == aff3["end"] + 35_000
    with pytest.raises(ValueError, match="none of the 1 SNPs lies in a gene window"):
        sumstats_to_genes(top, window=10_000, build="GRCh38")


def test_gene_loc_strands_written_as_numbers_orient_the_window(caplog):
    """BioMart writes strands 1 / -1: a window (35 kb up, 10 kb down) of a minus-strand gene lies 3' of it."""
    ss = read_sumstats(pd.DataFrame({"SNP": ["rs1", "rs2"], "CHR": "1", "BP": [130_000, 70_000], "P": [0.01, 0.02]}))
    for minus in ("-", -1, "-1"):
        loc = pd.DataFrame({"gene_id": ["G1"], "chromosome": ["1"], "start": [100_000], "end": [110_000],
                            "strand": [minus], "symbol": ["GENEA"]})
        got = sumstats_to_genes(ss, gene_loc=loc, build="GRCh37", window=(35_000, 10_000))
        assert (got.loc["GENEA", "START"], got.loc["GENEA", "STOP"]) == (90_000, 145_000)  # 10 kb 3' (left), 35 kb 5'
        assert got.loc["GENEA", "NSNPS"] == 1  # the SNP at 130 kb, not the one at 70 kb
    loc["strand"] = "."
    with caplog.at_level(logging.WARNING, logger="psysc"):
        got = sumstats_to_genes(ss, gene_loc=loc, build="GRCh37", window=(35_000, 10_000))
    assert (got.loc["GENEA", "START"], got.loc["GENEA", "STOP"]) == (65_000, 120_000)
    assert "1 gene of the gene locations have no strand" in caplog.text
    loc["strand"] = "x"
    with pytest.raises(ValueError, match=r"gene row 1: STRAND = 'x' is not a strand"):
        sumstats_to_genes(ss, gene_loc=loc, build="GRCh37", window=(35_000, 10_000))


def test_grch37_without_gene_loc_is_a_clear_error(ad):
    with pytest.raises(ValueError, match="NCBI37.3.gene.loc"):
        sumstats_to_genes(ad, build="hg19")


def test_liftover_with_chain(tmp_path):
    # A hand-written chain in UCSC format (0-based; t = GRCh37, q = GRCh38):
    # chr19: one block of 4,000 bases t[45409000, 45413000) -> q[44905743, 44909743), built from the
    #   dbSNP positions of rs429358 in both builds (offset 503,257);
    # chr1: blocks t[100, 200) -> q[200, 300), gap (t 50, q 60), t[250, 400) -> q[360, 510);
    # chr2: reverse strand, t[0, 100) -> q- [100, 200) on a q chromosome of 800 bases.
    chain = (
        "chain 1000 chr19 59128983 + 45409000 45413000 chr19 58617616 + 44905743 44909743 1\n4000\n\n"
        "chain 900 chr1 249250621 + 100 400 chr1 248956422 + 200 510 2\n100\t50\t60\n150\n\n"
        "chain 800 chr2 243199373 + 0 100 chr2 800 - 100 200 3\n100\n"
    )
    path = tmp_path / "toy.over.chain.gz"
    path.write_bytes(gzip.compress(chain.encode()))
    from psysc.gwas._sumstats import _liftover, _read_chain

    blocks = _read_chain(path)
    chrom = np.array(["19", "1", "1", "1", "1", "2", "2", "3"], dtype=object)
    bp = np.array([RS429358_GRCH37, 101, 200, 230, 300, 1, 100, 5])
    new_chrom, new_bp = _liftover(chrom, bp, blocks)
    # by hand: 1-based x -> 0-based x-1 -> q0 = qStart + (x-1 - tStart) -> 1-based q0+1;
    # reverse strand: q0' = qSize - 1 - q0
    assert new_bp.tolist() == [RS429358_GRCH38, 201, 300, -1, 410, 700, 601, -1]
    assert new_chrom.tolist() == ["19", "1", "1", None, "1", "2", "2", None]

    ss = read_sumstats(
        pd.DataFrame({"SNP": ["rs429358", "rsx"], "CHR": ["19", "3"], "BP": [RS429358_GRCH37, 5], "P": [1e-20, 0.5]})
    )
    got = sumstats_to_genes(ss, build="GRCh37", chain=path, window=0)
    assert got.index[0] == "APOE" and got.attrs["build"] == "GRCh38"
    with pytest.raises(ValueError, match="drop chain"):
        sumstats_to_genes(ss, build="GRCh38", chain=path)


def test_mixed_builds_and_chromosome_names_are_clear_errors(tmp_path, ad):
    loc = magma_gene_loc(tmp_path)
    # positions from "another build": shifted past the end of every gene
    shifted = ad.assign(BP=ad["BP"] + 300_000_000)
    for build in (None, "GRCh37"):  # the advice is not to pass what was passed
        with pytest.raises(ValueError, match="another genome build than gene_loc: give the gene locations of the "
                                             "positions' build") as err:
            sumstats_to_genes(shifted, gene_loc=loc, window=0, build=build)
        assert "pass build='GRCh37' with gene_loc=" not in str(err.value)
    # gene locations named with RefSeq accessions (NC_000019.9 is chromosome 19 of GRCh37) are read as such
    g = magma_table()
    refseq = g.assign(CHR="NC_0000" + g["CHR"].str.zfill(2) + ".9")[["GENE", "CHR", "START", "STOP"]]
    plain = g[["GENE", "CHR", "START", "STOP"]]
    pd.testing.assert_frame_equal(sumstats_to_genes(ad, gene_loc=refseq, window=0, build="GRCh37"),
                                  sumstats_to_genes(ad, gene_loc=plain, window=0, build="GRCh37"))
    # names psysc cannot read at all are an error that says so
    with pytest.raises(ValueError, match="rename the chromosomes"):
        sumstats_to_genes(ad, gene_loc=g.assign(CHR="chrom" + g["CHR"])[["GENE", "CHR", "START", "STOP"]], window=0)
    # genes only on chromosomes the SNPs are not on
    other = g[g["CHR"] == "5"][["GENE", "CHR", "START", "STOP"]]
    with pytest.raises(ValueError, match="no chromosome is shared"):
        sumstats_to_genes(ad, gene_loc=other, window=0)


def test_a_symbol_naming_several_genes_takes_the_gene_to_ensembl_maps_it_to():
    from psysc.gwas import gene_table, to_ensembl

    table = gene_table("human")
    symbols = ["PDE8B", "HERC3", "MATR3", "PINX1", "KYAT1", "POLR2J3"]  # two GENCODE genes each
    rows = []
    for sym in symbols:
        genes = table[table["symbol"] == sym]
        assert len(genes) >= 2
        (gid,) = to_ensembl([sym])
        own = genes[genes["gene_id"] == gid].iloc[0]
        rows.append((f"{sym}_in", own["chrom"].removeprefix("chr"), (own["start"] + own["end"]) // 2, 1e-9))
        other = genes[genes["gene_id"] != gid]
        # a position inside another gene of the symbol and more than the window away from the symbol's gene
        far = [p for p in np.r_[other["start"].to_numpy() + 50, other["end"].to_numpy() - 50]
               if p < own["start"] - 20_000 or p > own["end"] + 20_000]
        if far:
            rows.append((f"{sym}_other", own["chrom"].removeprefix("chr"), far[0], 1e-12))
    snps = pd.DataFrame(rows, columns=["SNP", "CHR", "BP", "P"])
    got = sumstats_to_genes(snps, build="GRCh38")
    for sym in symbols:
        own = table[table["gene_id"] == to_ensembl([sym])[0]].iloc[0]
        assert got.loc[sym, "START"] == own["start"] - 10_000 and got.loc[sym, "STOP"] == own["end"] + 10_000
        assert got.loc[sym, "TOP_SNP"] == f"{sym}_in"
    assert any(r[0].endswith("_other") for r in rows)


def test_few_snps_in_windows_warns():
    n = 2000
    ss = read_sumstats(
        pd.DataFrame({"SNP": [f"s{i}" for i in range(n)], "CHR": "1", "BP": np.arange(n) * 100 + 1_000_000, "P": 0.5})
    )
    loc = pd.DataFrame({"GENE": ["g"], "CHR": ["1"], "START": [1_000_000], "STOP": [1_000_500]})
    with pytest.warns(UserWarning, match="only 6 of 2000 SNPs"):
        got = sumstats_to_genes(ss, gene_loc=loc, window=0)
    assert got.loc["g", "NSNPS"] == 6


# ----------------------------------------------------------------------------------------------
# genes_to_gene_set vs read_magma
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("weight", ["zscore", "zstat", "uniform"])
def test_genes_to_gene_set_selects_like_read_magma(tmp_path, ad, weight):
    table = sumstats_to_genes(ad, gene_loc=magma_gene_loc(tmp_path), window=0, build="GRCh37")
    table.loc[table.index[0], "ZSTAT"] = 12.5  # exercise the clipping at 10
    out = tmp_path / "AD.genes.out"
    with open(out, "w") as fh:  # the same table as a MAGMA .genes.out
        fh.write("GENE CHR START STOP NSNPS NPARAM N ZSTAT P\n")
        for gene, r in table.iterrows():
            fh.write(f"{gene} {r.CHR} {r.START} {r.STOP} {r.NSNPS} 1 74046 {r.ZSTAT!r} {r.P!r}\n")
    from statsmodels.stats.multitest import multipletests

    p, z = table["P"].to_numpy(), table["ZSTAT"].to_numpy()
    for n_top, fdr, fwer in ((10, None, None), (1000, None, None), (None, None, None), (1000, 0.2, None),
                             (50, None, 0.5)):
        kw = {"n_top": n_top, "fdr": fdr, "fwer": fwer, "weight": weight, "trait": "AD"}
        got = genes_to_gene_set(table, **kw)["AD"]
        pd.testing.assert_series_equal(got, read_magma(out, **kw)["AD"])
        # the rule written out: the n_top smallest P, or the FDR / FWER discoveries capped to [min(100, n_top), n_top]
        cap = len(p) if n_top is None else n_top
        n_sel = cap
        if fdr is not None or fwer is not None:
            n_sig = int(multipletests(p, alpha=fdr or fwer, method="fdr_bh" if fdr else "bonferroni")[0].sum())
            n_sel = max(min(n_sig, cap), min(100, cap))
        order = np.argsort(p, kind="stable")[:n_sel]
        assert list(got.index) == [str(g) for g in table.index[order]]
        want_w = {"zscore": np.minimum(z[order], 10.0), "uniform": np.ones(len(order)), "zstat": z[order]}[weight]
        np.testing.assert_array_equal(got.to_numpy(), want_w)
    assert list(genes_to_gene_set(table)) == [ad.attrs["trait"]]
    np.testing.assert_array_equal(genes_to_gene_set(table, n_top=None, trait="AD")["AD"].to_numpy(),
                                  z[np.argsort(p, kind="stable")])  # all genes: ZSTAT as it is, as read_magma
    # read_magma's tables (a dict of them, table=True): each becomes the set read_magma itself would select
    tables = read_magma(out, n_top=None, table=True)
    assert list(tables) == ["AD"]
    pd.testing.assert_series_equal(genes_to_gene_set(tables, n_top=10, weight=weight)["AD"],
                                   read_magma(out, n_top=10, weight=weight)["AD"])
    with pytest.raises(ValueError, match="named by its keys"):
        genes_to_gene_set(tables, trait="X")
    with pytest.raises(TypeError, match=r"a dict of them .*not list"):
        genes_to_gene_set([table])


def test_lp_underflow_keeps_an_exact_z():
    # -log10 P = 400: P underflows in double precision; |Z| comes from LP without passing through P
    df = read_sumstats(
        pd.DataFrame({"SNP": ["a", "b"], "CHR": 1, "BP": [1, 2], "LP": [400.0, 2.0], "BETA": [-0.5, 0.1]})
    )
    assert df["P"].iloc[0] == np.finfo(float).tiny and df.attrs["qc"]["n_p_zero"] == 1
    z = df["Z"].to_numpy()
    assert z[0] < 0 and z[1] > 0
    # check with mpmath: two-sided P of |z| is 10^-LP
    mpmath = pytest.importorskip("mpmath")
    for zi, lp in zip(z, [400.0, 2.0], strict=True):
        p_two_sided = mpmath.erfc(mpmath.mpf(abs(zi)) / mpmath.sqrt(2))
        assert float(-mpmath.log10(p_two_sided)) == pytest.approx(lp, rel=1e-9)


def test_an_unstated_build_is_an_error_that_names_both_builds(caplog):
    """A file's positions carry no build: without build= (and without gene_loc=), nothing is assumed."""
    table = gene_table()
    apoe = table[table["symbol"] == "APOE"].iloc[0]
    ss = pd.DataFrame({"SNP": ["rs1"], "CHR": ["19"], "BP": [int(apoe["start"]) + 10], "P": [1e-9]})
    with pytest.raises(ValueError, match=r"build not given.* build='GRCh38' \(hg38\) or build='GRCh37'"):
        sumstats_to_genes(ss, window=0)
    with caplog.at_level(logging.WARNING, logger="psysc"):
        stated = sumstats_to_genes(ss, window=0, build="GRCh38")
    assert "build not given" not in caplog.text and stated.attrs["build_assumed"] is False
    assert list(stated.index) == ["APOE"]
    # a file that states its build needs no build=
    harmonised = pd.DataFrame({"hm_rsid": ["rs1"], "hm_chrom": ["19"], "hm_pos": [int(apoe["start"]) + 10],
                               "p_value": [1e-9]})
    assert list(sumstats_to_genes(harmonised, window=0).index) == ["APOE"]


def test_without_build_the_positions_are_taken_on_the_build_of_gene_loc(tmp_path, ad, caplog):
    """psysc cannot know the build of a user's gene table: it is not called GRCh38, and build= is recorded."""
    loc = magma_gene_loc(tmp_path)
    with caplog.at_level(logging.WARNING, logger="psysc"):
        got = sumstats_to_genes(ad, gene_loc=loc, window=0)
    assert "taken to be on the build of gene_loc" in caplog.text and "taken as GRCh38" not in caplog.text
    assert got.attrs["build"] == "that of gene_loc" and got.attrs["build_assumed"] is True
    stated = sumstats_to_genes(ad, gene_loc=loc, window=0, build="hg19")
    assert stated.attrs["build"] == "GRCh37" and stated.attrs["build_assumed"] is False
    pd.testing.assert_series_equal(got["P"], stated["P"])


@pytest.mark.parametrize(
    ("name", "text", "alleles"),
    [
        # regenie step 2: ALLELE1 is the tested (effect) allele, ALLELE0 the other; GENPOS the position
        ("regenie", "CHROM GENPOS ID ALLELE0 ALLELE1 A1FREQ N TEST BETA SE CHISQ LOG10P\n"
                    "1 1000 rs1 A G 0.1 100 ADD 0.1 0.02 25 6.2\n", [("G", "A")]),
        # SAIGE: BETA, Tstat and AF_Allele2 refer to Allele2
        ("saige", "CHR\tPOS\tMarkerID\tAllele1\tAllele2\tAF_Allele2\tN\tBETA\tSE\tTstat\tp.value\n"
                  "1\t1000\trs1\tA\tG\t0.1\t100\t0.1\t0.02\t1\t1e-5\n", [("G", "A")]),
        # PLINK 2 .glm: A1 is the counted allele, REF or ALT
        ("plink2", "#CHROM\tPOS\tID\tREF\tALT\tA1\tTEST\tOBS_CT\tBETA\tSE\tT_STAT\tP\n"
                   "1\t1000\trs1\tA\tG\tA\tADD\t100\t0.1\t0.02\t5\t1e-6\n"
                   "1\t2000\trs2\tC\tT\tT\tADD\t100\t0.1\t0.02\t5\t1e-6\n", [("A", "G"), ("T", "C")]),
    ],
)
def test_effect_alleles_of_common_gwas_tools(tmp_path, name, text, alleles):
    path = tmp_path / f"{name}.txt"
    path.write_text(text)
    ss = read_sumstats(path)
    assert list(zip(ss["A1"], ss["A2"], strict=True)) == alleles
    assert ss["SNP"].str.startswith("rs").all() and (ss["BP"] >= 1000).all()


def test_gwas_catalog_harmonised_columns_are_preferred(tmp_path, caplog):
    """hm_* columns are the GWAS Catalog's GRCh38 harmonisation: read them, not the submitted (here GRCh37) ones.

    The header is that of the Catalog's harmonised ``.h.tsv`` files, all 24 columns in their order; here the
    harmonisation flipped the alleles, so the submitted effect is the opposite of the harmonised one."""
    apoe = gene_table().query("symbol == 'APOE'").iloc[0]
    hm_pos = int(apoe["start"]) + 100
    path = tmp_path / "ad.h.tsv"
    path.write_text(
        "hm_variant_id\thm_rsid\thm_chrom\thm_pos\thm_other_allele\thm_effect_allele\thm_beta\thm_odds_ratio\t"
        "hm_ci_lower\thm_ci_upper\thm_effect_allele_frequency\thm_code\tvariant_id\tchromosome\tbase_pair_location\t"
        "effect_allele\tother_allele\teffect_allele_frequency\tbeta\tstandard_error\tp_value\todds_ratio\tci_lower\t"
        "ci_upper\n"
        f"19_{hm_pos}_C_T\trs429358\t19\t{hm_pos}\tC\tT\t1.2\tNA\tNA\tNA\t0.15\t11\trs429358\t19\t"
        f"{hm_pos - 500_000}\tC\tT\t0.85\t-1.2\t0.05\t1e-300\tNA\tNA\tNA\n"
    )
    ss = read_sumstats(path)
    row = ss.iloc[0]
    assert (row["CHR"], row["BP"], row["A1"], row["A2"], row["BETA"]) == ("19", hm_pos, "T", "C", 1.2)
    assert (row["SE"], row["P"]) == (0.05, 1e-300)  # not harmonised: the submitted columns
    assert ss.attrs["build"] == "GRCh38"
    with caplog.at_level(logging.WARNING, logger="psysc"):
        genes = sumstats_to_genes(ss, window=0)
    assert "build not given" not in caplog.text and genes.attrs["build_assumed"] is False
    assert list(genes.index) == ["APOE"]


PLINK2_GLM = (
    "#CHROM\tPOS\tID\tREF\tALT\tA1\tTEST\tOBS_CT\tOR\tLOG(OR)_SE\tZ_STAT\tP\n"
    "19\t44908684\trs429358\tT\tC\tC\tADD\t5000\t3.1\t0.05\t22.6\t1e-100\n"
    "19\t44908684\trs429358\tT\tC\tC\tPC1\t5000\t0.9\t0.01\t-10.5\t1e-200\n"
    "19\t44908684\trs429358\tT\tC\tC\tSEX\t5000\t1.0\t0.02\t0.5\t0.6\n"
    "1\t1000000\trs1\tA\tG\tG\tADD\t5000\t1.01\t0.05\t0.2\t0.84\n"
    "1\t1000000\trs1\tA\tG\tG\tPC1\t5000\t0.9\t0.01\t-10.5\t1e-200\n"
)


def test_plink_covariate_rows_do_not_replace_the_snps_additive_test(tmp_path, caplog):
    """PLINK/regenie write a row per model term; the SNP's association is its TEST = ADD row, not a covariate's."""
    path = tmp_path / "plink2.glm.logistic"
    path.write_text(PLINK2_GLM)
    with caplog.at_level(logging.INFO, logger="psysc"):
        ss = read_sumstats(path).set_index("SNP")
    assert ss.loc["rs429358", "P"] == 1e-100 and ss.loc["rs1", "P"] == 0.84
    assert ss.loc["rs429358", "OR"] == 3.1
    # PLINK 2's LOG(OR)_SE is the SE of log(OR), its OBS_CT the sample size; Z_STAT is log(OR)/SE
    assert ss.loc["rs429358", "SE"] == 0.05 and ss.loc["rs1", "N"] == 5000
    assert ss.attrs["columns_recognised"]["LOG(OR)_SE"] == "SE" and ss.attrs["qc"]["n_z_p_disagree"] == 0
    assert ss.attrs["qc"]["n_other_tests"] == 3 and ss.attrs["qc"]["n_duplicates"] == 0
    assert "3 rows of other tests than the additive one dropped" in caplog.text and "PC1, SEX" in caplog.text
    # regenie interaction output: ADD-INT_* rows are left out too
    regenie = ("CHROM GENPOS ID ALLELE0 ALLELE1 A1FREQ N TEST BETA SE CHISQ LOG10P\n"
               "1 1000 rs1 A G 0.3 5000 ADD 0.10 0.02 25.0 6.2\n"
               "1 1000 rs1 A G 0.3 5000 ADD-INT_SNPxAGE 0.50 0.02 625.0 137.0\n")
    (tmp_path / "r.regenie").write_text(regenie)
    r = read_sumstats(tmp_path / "r.regenie")
    assert len(r) == 1 and r.loc[0, "BETA"] == 0.10
    # several tests without an additive one: refused; columns={"TEST": None} reads every row
    (tmp_path / "dom.txt").write_text(PLINK2_GLM.replace("ADD", "DOM").replace("PC1", "REC").replace("SEX", "REC"))
    with pytest.raises(ValueError, match="several tests .*none is ADD"):
        read_sumstats(tmp_path / "dom.txt")
    every = read_sumstats(tmp_path / "dom.txt", columns={"TEST": None})
    assert every.attrs["qc"]["n_duplicates"] == 3


def test_a_meta_line_that_states_the_build_is_read(tmp_path, caplog):
    text = "##fileformat=GWAS\n##genome_build=GRCh37\nSNP\tCHR\tBP\tP\nrs429358\t19\t45411941\t1e-50\n"
    ss = read_sumstats(write(tmp_path / "ad.tsv", text))
    assert ss.attrs["build"] == "GRCh37"
    with pytest.raises(ValueError, match="GRCh37"):  # not silently mapped on the GRCh38 table
        sumstats_to_genes(ss, window=0)
    plain = read_sumstats(write(tmp_path / "ad.tsv", text.replace("##genome_build=GRCh37\n", "")))
    assert "build" not in plain.attrs


def test_position_columns_that_name_a_build(tmp_path, caplog):
    """pos_b37/pos_b38-like columns state the build; with both, GRCh38 (the bundled table's) is read."""
    both = pd.DataFrame({"rsid": ["rs429358"], "chr": ["19"], "pos_b37": [45411941], "pos_b38": [44908684],
                         "p": [1e-50]})
    ss = read_sumstats(both)
    assert ss.loc[0, "BP"] == 44908684 and ss.attrs["build"] == "GRCh38"
    assert list(sumstats_to_genes(ss, window=0).index) == ["APOE"]
    only37 = read_sumstats(both.drop(columns="pos_b38"))
    assert only37.loc[0, "BP"] == 45411941 and only37.attrs["build"] == "GRCh37"
    with pytest.raises(ValueError, match="GRCh37"):  # not silently mapped on the GRCh38 table
        sumstats_to_genes(only37, window=0)
    with caplog.at_level(logging.WARNING, logger="psysc"):
        forced = sumstats_to_genes(ss, window=0, build="GRCh38")
    assert list(forced.index) == ["APOE"] and "build=" not in caplog.text


def test_a_frame_indexed_by_snp_keeps_its_snp_ids():
    df = pd.DataFrame({"CHR": ["1", "1"], "BP": [100, 200], "A1": ["A", "C"], "A2": ["G", "T"], "P": [1e-3, 0.5],
                       "BETA": [0.1, -0.1], "SE": [0.02, 0.05]}, index=pd.Index(["rs11", "rs22"], name="rsid"))
    assert read_sumstats(df)["SNP"].tolist() == ["rs11", "rs22"]
    unnamed = df.reset_index(drop=True)  # a plain row index is not a column
    assert "rs11" not in read_sumstats(unnamed)["SNP"].tolist()


def test_unplaced_variants_on_chromosome_0_are_dropped_and_counted(caplog):
    df = pd.DataFrame({"SNP": ["rs1", "rs2", "rs3"], "CHR": ["1", "0", "2"], "BP": [100, 200, 300],
                       "A1": ["A", "C", "G"], "A2": ["G", "T", "A"], "P": [1e-3, 0.5, 0.2]})
    with caplog.at_level(logging.WARNING, logger="psysc"):
        out = read_sumstats(df)
    assert out["SNP"].tolist() == ["rs1", "rs3"]
    assert out.attrs["qc"]["n_dropped_unplaced"] == 1 and "chromosome 0" in caplog.text
    assert out.attrs["qc"]["n_dropped_other_contigs"] == 0
    # position 0 is PLINK's code for an unknown position too; PLINK 2's PAR1/PAR2 lie on X
    out = read_sumstats(df.assign(BP=[100, 200, 0], CHR=["PAR1", "1", "2"]))
    assert out[["SNP", "CHR"]].values.tolist() == [["rs1", "X"], ["rs2", "1"]]
    assert out.attrs["qc"]["n_dropped_unplaced"] == 1


def test_an_se_of_zero_is_read_as_missing_and_counted(caplog):
    """A monomorphic variant (BETA 0, SE 0, P 1) does not refuse the file: Z comes from P and the sign of BETA."""
    df = pd.DataFrame({"SNP": ["rs1", "rs2"], "CHR": "1", "BP": [1, 2], "BETA": [0.0, -0.2], "SE": [0.0, 0.05],
                       "P": [1.0, 6.3e-5]})
    with caplog.at_level(logging.WARNING, logger="psysc"):
        out = read_sumstats(df).set_index("SNP")
    assert out.attrs["qc"]["n_se_zero"] == 1 and "1 row has SE = 0" in caplog.text
    assert out.loc["rs1", "P"] == 1.0 and out.loc["rs1", "Z"] == 0.0 and np.isnan(out.loc["rs1", "SE"])
    assert out.loc["rs2", "Z"] == pytest.approx(-4.0)
    with pytest.raises(ValueError, match=r"SE \(SE\) = -0.1 is not a finite number > 0"):
        read_sumstats(df.assign(SE=[-0.1, 0.05]))


@pytest.mark.parametrize("contig", ["6_ssto_hap7", "chr6_GL000250v2_alt", "chr1_KI270706v1_random", "chrUn_gl000220",
                                    "GL000192.1", "HSCHR6_MHC_COX", "hs37d5", "chrEBV", "Un"])
def test_variants_on_contigs_that_are_not_chromosomes_are_dropped_and_counted(caplog, contig):
    df = pd.DataFrame({"SNP": ["rs1", "rs2", "rs3", "rs4"], "CHR": ["1", contig, "X", contig],
                       "BP": [100, 200, 300, 400], "P": [1e-3, 0.5, 0.2, 0.3]})
    with caplog.at_level(logging.WARNING, logger="psysc"):
        out = read_sumstats(df)
    assert out["SNP"].tolist() == ["rs1", "rs3"] and out["CHR"].tolist() == ["1", "X"]
    assert out.attrs["qc"]["n_dropped_other_contigs"] == 2
    assert f"2 rows on 1 contig that are not chromosomes (alternate haplotypes, unplaced scaffolds, decoys: e.g. " \
           f"{contig!r}) dropped" in caplog.text


@pytest.mark.parametrize("chrom", ["27", "chrZ", "foo", "W"])
def test_unknown_chromosome_names_stay_errors(chrom):
    df = pd.DataFrame({"SNP": ["rs1", "rs2"], "CHR": ["1", chrom], "BP": [100, 200], "P": [1e-3, 0.5]})
    with pytest.raises(ValueError, match=f"unknown chromosome '{chrom}'"):  # a typo or another organism
        read_sumstats(df)


def test_p_text_below_the_smallest_double_keeps_its_order_and_exact_z(tmp_path):
    """"1e-400" reads as 0 in a double: its Z comes from the text's exponent, so it stays more extreme than
    "1e-320" (a subnormal P) and "1e-300"."""
    path = tmp_path / "tiny.tsv"
    path.write_text("SNP\tCHR\tBP\tBETA\tP\n" "a\t1\t10\t0.5\t1e-400\n" "b\t1\t20\t-0.5\t2.5E-320\n"
                    "c\t1\t30\t0.5\t1e-300\n" "d\t1\t40\t0.5\t0\n")
    df = read_sumstats(path)
    z = df.set_index("SNP")["Z"]
    assert z["a"] > -z["b"] > z["c"] > 0
    mpmath = pytest.importorskip("mpmath")
    # a subnormal double keeps only a few digits of "2.5e-320"
    for snp, p, rel in (("a", "1e-400", 1e-12), ("b", "2.5e-320", 1e-7)):
        two_sided = mpmath.erfc(mpmath.mpf(abs(z[snp])) / mpmath.sqrt(2))
        assert float(mpmath.log10(two_sided)) == pytest.approx(float(mpmath.log10(mpmath.mpf(p))), rel=rel)
    assert df.attrs["qc"]["n_p_zero"] == 2  # "1e-400" and "0"; the latter's Z is unknown beyond the floor


def test_acat_of_several_extreme_snps_is_silent():
    import warnings

    loc = pd.DataFrame({"GENE": ["APOE"], "CHR": ["19"], "START": [100], "STOP": [200]})
    n = 20  # P = 0 is read as 2.2e-308, whose Cauchy term is 1.4e307: twenty of them overflow the sum
    ss = read_sumstats(pd.DataFrame({"SNP": [f"s{i}" for i in range(n)], "CHR": "19", "BP": np.arange(n) + 110,
                                     "P": [0.0] * (n - 2) + [1e-305, 1e-300]}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = sumstats_to_genes(ss, gene_loc=loc, window=0, method="acat")
    assert got.loc["APOE", "P"] <= 1e-300


def test_stderrlogor_is_the_se_of_log_or(tmp_path):
    path = tmp_path / "mdd.tsv"  # the column names of Howard et al. 2019 (MDD)
    path.write_text("MarkerName\tCHR\tBP\tA1\tA2\tLogOR\tStdErrLogOR\tP\n"
                    "rs1\t1\t10\tA\tG\t0.1\t0.02\t5.7e-07\n" "rs2\t1\t20\tC\tT\t-0.05\t0.02\t0.0124\n")
    df = read_sumstats(path)
    np.testing.assert_allclose(df["Z"], [0.1 / 0.02, -0.05 / 0.02])


def test_a_position_column_holding_chromosome_and_position_is_split(tmp_path, caplog):
    path = tmp_path / "chrpos.tsv"
    path.write_text("SNP\tchr_pos\tP\nrs1\t1:1000\t0.01\nrs2\tchrX:52000\t0.2\nrs3\t22:7\t0.5\n")
    with caplog.at_level(logging.INFO, logger="psysc"):
        df = read_sumstats(path)
    assert df[["SNP", "CHR", "BP"]].values.tolist() == [["rs1", "1", 1000], ["rs2", "X", 52000], ["rs3", "22", 7]]
    assert "CHR and BP read from chr_pos, which holds chromosome:position" in caplog.text
    # the GWAS Catalog's CHR_POS beside CHR_ID is a plain position
    path.write_text("SNP\tCHR_ID\tCHR_POS\tP\nrs1\t1\t1000\t0.01\n")
    assert read_sumstats(path)[["CHR", "BP"]].values.tolist() == [["1", 1000]]


def test_reading_in_chunks_gives_the_same_table_and_messages(tmp_path, monkeypatch):
    """Numbers are kept as numbers chunk by chunk; chunks with cells that need their text (underflow, repeated
    header, decimal commas, impossible values) stay text, so the result and the messages do not depend on it."""
    import psysc.gwas._sumstats as ss_module

    lines = ["SNP\tCHR\tBP\tA1\tA2\tBETA\tSE\tP\tN"]
    rng = np.random.default_rng(0)
    for i in range(30):
        lines.append(f"rs{i}\t{1 + i % 3}\t{1000 + 37 * i}\tA\tG\t{rng.normal():.4f}\t0.05\t{rng.uniform():.5g}\t5000")
    lines[8] = "rs7\t1\t1259\tA\tG\t0.5\t0.01\t1e-400\t5000"  # underflows
    lines[14] = "SNP\tCHR\tBP\tA1\tA2\tBETA\tSE\tP\tN"  # a repeated header
    lines[20] = "rs19\t2\t1703\tA\tG\t0.2\tNA\t0.03\t"  # missing values
    path = tmp_path / "ss.tsv"
    path.write_text("\n".join(lines) + "\n")
    whole = read_sumstats(path)
    monkeypatch.setattr(ss_module, "_CHUNK_ROWS", 4)
    chunked = read_sumstats(path)
    pd.testing.assert_frame_equal(chunked, whole)
    assert chunked.attrs["qc"] == whole.attrs["qc"]
    assert chunked.set_index("SNP").loc["rs7", "P"] == np.finfo(float).tiny
    clean = tmp_path / "clean.tsv"  # every cell a plain number: held as float64, not as strings
    clean.write_text("\n".join(lines[:8]) + "\n")
    raw, _, _ = ss_module._read_table(clean, None, numeric=lambda: {"P": "P", "BETA": "BETA", "BP": "BP"})
    assert [str(raw[c].dtype) for c in ("P", "BETA", "BP", "SE", "SNP")] == ["float64"] * 3 + ["object"] * 2
    lines[26] = "rs25\t1\t12.5\tA\tG\t0.1\t0.05\t0.2\t5000"  # a chunk of its own, read as numbers but for this
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"BP \(BP\) = '12.5' is not a position"):
        read_sumstats(path)
