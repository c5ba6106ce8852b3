"""``psysc run``: the files it writes hold what the computation gave, and bad input fails cleanly."""

from __future__ import annotations

import base64
import contextlib
import gzip
import html
import io
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from scipy.stats import norm

import psysc
from psysc.cli import main

ENRICHMENT_COLUMNS = [
    "trait",
    "group",
    "n_cells",
    "assoc_pval",
    "assoc_z",
    "assoc_fdr",
    "hetero_pval",
    "hetero_z",
    "hetero_fdr",
    "frac_sig",
    "n_fdr_0.05",
    "n_fdr_0.1",
    "n_fdr_0.2",
]
TRAITS = ["SCZ", "HEIGHT"]


def _run(argv: list[str]) -> tuple[int, str]:
    """Run the command, returning its exit status and everything it wrote on stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, err.getvalue()


@pytest.fixture(scope="module")
def darmanis():
    return psysc.datasets.darmanis2015()


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("psysc-run") / "results"
    rc, log = _run(["run", "--out", str(out), "--quick", "--traits", ",".join(TRAITS)])
    assert rc == 0, log
    return out, log


def test_run_writes_every_file(quick_run):
    out, _ = quick_run
    expected = {"enrichment.tsv", "scores.tsv.gz", "heatmap.png", "summary.json", "report.html",
                "celltype_enrichment.tsv", "celltype_dotplot.png"}
    expected |= {f"scores_{t}.png" for t in TRAITS}
    assert {p.name for p in out.iterdir()} == expected
    for name in expected:
        assert (out / name).stat().st_size > 0
    for name in [n for n in expected if n.endswith(".png")]:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_progress_is_logged_on_stderr_with_timestamps(quick_run):
    _, log = quick_run
    lines = [line for line in log.splitlines() if " INFO " in line]
    assert lines and all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO ", line) for line in lines)
    assert any("QC: dropped" in line for line in lines)
    assert "Traceback" not in log
    assert "\r" not in log and "it/s" not in log  # stderr is not a terminal: no redrawn progress bars in the log
    # the scoring and the cell-type level test read the same gene sets in the same data: each overlap is said once
    for trait in TRAITS:
        said = re.findall(rf"INFO {trait}: (\d+) of (\d+) genes found in the data", log)
        assert len(said) == 1, said


def test_qc_matches_an_independent_count(quick_run, darmanis):
    out, _ = quick_run
    X = sparse.csr_matrix(darmanis.X)
    keep_cells = np.asarray((X > 0).sum(axis=1)).ravel() >= 200
    n_genes = int((np.asarray((X[keep_cells] > 0).sum(axis=0)).ravel() >= 3).sum())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"]["n_cells"] == keep_cells.sum()
    assert summary["data"]["n_genes"] == n_genes
    assert summary["data"]["n_cells_dropped"] == (~keep_cells).sum()
    assert summary["data"]["n_genes_dropped"] == darmanis.n_vars - n_genes
    scores = pd.read_csv(out / "scores.tsv.gz", sep="\t")
    assert scores["cell"].tolist() == darmanis.obs_names[keep_cells].tolist()


def test_enrichment_table(quick_run, darmanis):
    out, _ = quick_run
    table = pd.read_csv(out / "enrichment.tsv", sep="\t")
    assert list(table.columns) == ENRICHMENT_COLUMNS
    groups = sorted(darmanis.obs["cell_type"].astype(str).unique())
    assert len(table) == len(TRAITS) * len(groups)
    assert set(zip(table["trait"], table["group"], strict=True)) == {(t, g) for t in TRAITS for g in groups}
    for col in ("assoc_pval", "assoc_fdr", "hetero_pval", "hetero_fdr"):
        assert table[col].between(0, 1).all()
    # group sizes agree with the per-cell file
    scores = pd.read_csv(out / "scores.tsv.gz", sep="\t")
    sizes = scores["cell_type"].value_counts()
    for _, row in table.iterrows():
        assert row["n_cells"] == sizes[row["group"]]


def test_scores_file(quick_run):
    out, _ = quick_run
    scores = pd.read_csv(out / "scores.tsv.gz", sep="\t")
    expected = ["cell", "cell_type"] + [f"{t}_{c}" for t in TRAITS for c in ("norm_score", "pval", "zscore")]
    assert list(scores.columns) == expected
    for t in TRAITS:
        assert scores[f"{t}_pval"].between(0, 1, inclusive="right").all()
        # scDRS: the z-score is the standard-normal quantile of the p-value (upper tail), clipped to [-10, 10]
        z = np.clip(norm.isf(scores[f"{t}_pval"]), -10, 10)
        np.testing.assert_allclose(scores[f"{t}_zscore"], z, rtol=1e-4, atol=1e-4)


def test_summary(quick_run):
    out, _ = quick_run
    summary = json.loads((out / "summary.json").read_text())
    params = summary["parameters"]
    assert params["n_ctrl"] == 200 and params["seed"] == 0 and params["quick"] is True
    assert params["traits"] == TRAITS and params["groupby"] == "cell_type"
    assert summary["versions"]["psysc"] == psysc.__version__
    assert summary["runtime_s"] > 0
    assert set(summary["files"]) == {p.name for p in out.iterdir()}
    # the significant groups are those of the table at FDR < 0.1
    table = pd.read_csv(out / "enrichment.tsv", sep="\t")
    for t in TRAITS:
        sig = table.query("trait == @t and assoc_fdr < 0.1")["group"]
        assert sorted(summary["significant_groups"][t]) == sorted(sig)


def test_report_is_self_contained(quick_run):
    out, _ = quick_run
    report = (out / "report.html").read_text(encoding="utf-8")
    embedded = [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', report)]
    pngs = [(out / "heatmap.png").read_bytes()] + [(out / f"scores_{t}.png").read_bytes() for t in TRAITS]
    pngs.append((out / "celltype_dotplot.png").read_bytes())
    assert embedded == pngs  # the very images of the files, in this order
    assert not re.search(r'(src|href)="(?!data:)', report)  # nothing loaded from elsewhere
    table = pd.read_csv(out / "enrichment.tsv", sep="\t")
    assert report.count("<tr>") >= len(table)
    summary = json.loads((out / "summary.json").read_text())
    for t in TRAITS:
        assert html.escape(summary["interpretation"][t]) in report
    assert "<th>n_ctrl</th><td>200</td>" in report
    # the cell-type table lists traits, methods and groups in the order of the figures and of celltype_enrichment.tsv
    section = report[report.index("<h2>Cell-type level enrichment</h2>"):]
    section = section[section.index("<table"): section.index("</table>")]
    header, body = section.split("<tbody>")
    rows = [re.findall(r"<th[^>]*>([^<]*)</th>", r) for r in header.split("</tr>")[:2]]
    celltype = pd.read_csv(out / "celltype_enrichment.tsv", sep="\t")
    methods, groups = list(pd.unique(celltype["method"])), list(pd.unique(celltype["group"]))
    assert rows[0] == ["method", *methods] and rows[1] == ["group", *groups * len(methods)]
    assert re.findall(r"<th>([^<]+)</th>", body) == TRAITS


def test_interpretation_sentences():
    from psysc._pipeline import interpret

    table = pd.DataFrame(
        {
            "trait": ["SCZ", "SCZ", "SCZ", "LDL", "LDL"],
            "group": ["neurons", "OPC", "microglia", "neurons", "OPC"],
            "assoc_pval": [1e-4, 0.002, 0.5, 0.2, 0.03],
            "assoc_fdr": [3e-4, 0.05, 0.5, 0.2, 0.15],
            "hetero_fdr": [0.01, 0.9, 0.9, 0.9, 0.9],
        }
    )
    s = interpret(table, ["SCZ", "LDL", "BIP"])
    assert s["SCZ"].startswith("SCZ: 2 cell groups associated at FDR < 0.1: neurons (p = 0.0001")
    assert "neurons (p = 0.0001, FDR = 0.0003, heterogeneous within the group); OPC" in s["SCZ"]
    assert "microglia" not in s["SCZ"]
    assert s["LDL"] == "LDL: no cell group is associated at FDR < 0.1 (strongest: OPC, p = 0.03, FDR = 0.15)."
    assert s["BIP"] == "BIP: not tested."
    # the cell-type level joins each trait's sentence: seismic groups at FDR < 0.1, the other methods not named
    celltype = pd.DataFrame({
        "trait": ["SCZ", "SCZ", "LDL", "LDL", "LDL"], "group": ["neurons", "OPC", "microglia", "neurons", "OPC"],
        "method": ["seismic", "seismic", "seismic", "seismic", "magma"], "pval": [0.001, 0.2, 0.004, 0.5, 1e-6],
        "fdr": [0.004, 0.3, 0.04, 0.5, 1e-5],
    })
    s = interpret(table, ["SCZ", "LDL", "BIP"], celltype=celltype)
    assert s["LDL"].endswith("FDR = 0.15). Cell-type level (seismic): microglia (FDR = 0.04).")
    assert s["SCZ"].endswith(" Cell-type level (seismic): neurons (FDR = 0.004).")
    assert s["BIP"] == "BIP: not tested."
    celltype["fdr"] = 0.5
    assert interpret(table, ["SCZ"], celltype=celltype)["SCZ"].endswith(
        "Cell-type level (seismic): no group at FDR < 0.1.")


def test_interpretation_breaks_ties_of_the_pvalue_by_z():
    """Groups at the Monte Carlo floor share one p-value: the strongest named is the one of the highest z."""
    from psysc._pipeline import interpret

    floor = 1 / 51
    table = pd.DataFrame({"trait": "SCZ", "group": ["6", "12", "21", "3"], "assoc_pval": [floor, floor, floor, 0.4],
                          "assoc_z": [2.44, 2.5, 2.97, 0.1], "assoc_fdr": [0.13, 0.13, 0.13, 0.4]})
    assert "(strongest: 21, p = 0.02, FDR = 0.13)" in interpret(table, ["SCZ"])["SCZ"]
    table["assoc_fdr"] = [0.05, 0.05, 0.05, 0.4]
    assert interpret(table, ["SCZ"])["SCZ"].split(": ", 2)[2].startswith("21 (p = 0.02, FDR = 0.05); 12 (p")


def test_run_with_input_layer_and_gene_set_file(tmp_path, darmanis):
    """--input, --layer, --gene-sets (.gs) and --groupby on another column; also reproducible with --seed."""
    sub = darmanis[np.sort(np.random.default_rng(0).choice(darmanis.n_obs, 150, replace=False))].copy()
    sub.layers["counts"] = sub.X.copy()
    sub.X = sparse.csr_matrix(sub.X.shape, dtype=np.float32)  # X is not the counts: --layer must be used
    h5ad = tmp_path / "sub.h5ad"
    sub.write_h5ad(h5ad)
    gs = tmp_path / "two.gs"
    psysc.gwas.write_gs(psysc.datasets.gwas_gene_sets(["BIP", "LDL"]), gs)

    outs = []
    for i in range(2):
        out = tmp_path / f"out{i}"
        argv = ["run", "--input", str(h5ad), "--layer", "counts", "--gene-sets", str(gs), "--groupby", "stage"]
        rc, log = _run([*argv, "--n-ctrl", "50", "--seed", "3", "--out", str(out), "-q"])
        assert rc == 0, log
        assert " INFO " not in log  # --quiet
        outs.append(out)
    table = pd.read_csv(outs[0] / "enrichment.tsv", sep="\t")
    assert set(table["trait"]) == {"BIP", "LDL"}  # every trait of the file by default
    assert set(table["group"]) == set(sub.obs["stage"].astype(str))
    summary = json.loads((outs[0] / "summary.json").read_text())
    assert summary["parameters"]["n_ctrl"] == 50 and summary["parameters"]["layer"] == "counts"
    assert summary["data"]["n_cells_in"] == 150
    # same seed, same results
    pd.testing.assert_frame_equal(table, pd.read_csv(outs[1] / "enrichment.tsv", sep="\t"))
    pd.testing.assert_frame_equal(
        pd.read_csv(outs[0] / "scores.tsv.gz", sep="\t"), pd.read_csv(outs[1] / "scores.tsv.gz", sep="\t")
    )


# ------------------------------------------------------------------------------------ bad input


@pytest.fixture(scope="module")
def small_h5ad(tmp_path_factory, darmanis):
    path = tmp_path_factory.mktemp("input") / "small.h5ad"
    darmanis[:40].copy().write_h5ad(path)
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "does/not/exist.h5ad"], "no such file"),
        (["--groupby", "celltype"], "available columns: cell_type"),
        (["--traits", "SCZ,NOT_A_TRAIT"], "NOT_A_TRAIT"),
        (["--traits", ","], "--traits is empty"),
        (["--gene-sets", "missing.gs"], "no such file"),
        (["--layer", "counts"], "available layers"),
        (["--model", "geneformer"], "geneformer-v2-104m"),
        (["--n-ctrl", "0"], "--n-ctrl"),
        (["--max-epochs", "5"], "--max-epochs is for --model scvi"),
        (["--out", "/proc/nope"], "no file can be created in /proc"),
        (["--out", ""], "--out is empty"),
        (["--out", " "], "--out is empty"),
        (["--model", "scvi", "--max-epochs", "0"], "--max-epochs must be at least 1"),
    ],
)
def test_bad_input_exits_2_without_traceback(tmp_path, small_h5ad, args, message):
    argv = ["run", "--out", str(tmp_path / "out"), *args]
    if "--input" not in args:
        argv += ["--input", str(small_h5ad)]
    rc, err = _run(argv)
    assert rc == 2
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing was computed


def test_a_zarr_store_is_read_like_the_h5ad_of_the_same_data(tmp_path, darmanis):
    sub = darmanis[::3].copy()
    sub.write_h5ad(tmp_path / "d.h5ad")
    sub.write_zarr(tmp_path / "d.zarr")
    tables = {}
    for name in ("d.h5ad", "d.zarr"):
        out = tmp_path / f"out_{name}"
        rc, log = _run(["run", "--input", str(tmp_path / name), "--out", str(out), "--n-ctrl", "50", "--traits",
                        "SCZ"])
        assert rc == 0, log
        tables[name] = pd.read_csv(out / "enrichment.tsv", sep="\t")
    pd.testing.assert_frame_equal(tables["d.zarr"], tables["d.h5ad"])
    (tmp_path / "folder").mkdir()
    (tmp_path / "table.csv").write_text("cell,GAPDH\nc1,3\n")
    for name, message in (("folder", "is a folder, but not an AnnData .zarr store"),
                          ("table.csv", "psysc run reads AnnData (.h5ad or .zarr): convert .csv data with scanpy")):
        rc, err = _run(["run", "--input", str(tmp_path / name), "--out", str(tmp_path / "o")])
        assert rc == 2 and message in err and "Traceback" not in err


def test_gene_sets_are_checked_before_the_input_is_read(tmp_path, monkeypatch):
    import psysc.cli

    monkeypatch.setattr(psysc.cli, "_read_input", lambda *a: pytest.fail("--input read before --gene-sets"))
    rc, err = _run(["run", "--input", "big.h5ad", "--gene-sets", str(tmp_path / "missing.gs"), "--out",
                    str(tmp_path / "out")])
    assert rc == 2 and "no such file" in err and "missing.gs" in err
    rc, err = _run(["run", "--input", "big.h5ad", "--traits", "NOT_A_TRAIT", "--out", str(tmp_path / "out")])
    assert rc == 2 and "NOT_A_TRAIT" in err


@pytest.mark.parametrize("columns", ["SNP CHR BP A1 A2 BETA SE P", "SNP CHR BP P", "CHR BP LP"])
def test_summary_statistics_given_as_gene_sets_are_refused_with_the_way_to_a_gene_set(tmp_path, columns):
    """SNP-level files are not read as gene tables; the route the message names gives a .gs that psysc run takes."""
    ex = psysc.datasets.ad_gwas_subset()
    full = pd.read_csv(ex["sumstats"], sep="\t")
    path = tmp_path / "ad.tsv"
    full[columns.split()].to_csv(path, sep="\t", index=False)
    rc, err = _run(["run", "--gene-sets", str(path), "--out", str(tmp_path / "o")])
    assert rc == 2 and "SNP-level GWAS summary statistics" in err and "--build GRCh38" in err
    assert "sumstats_to_genes" in err
    with pytest.raises(ValueError, match="SNP-level GWAS summary statistics"):
        psysc.gwas.read_gene_stats(path)
    if "P" in columns.split():  # the route of the message
        ss = psysc.gwas.read_sumstats(path, trait="AD")
        genes = psysc.gwas.sumstats_to_genes(ss, build=ex["build"], gene_loc=ex["gene_loc"], window=0)
        psysc.gwas.write_gs(psysc.gwas.genes_to_gene_set(genes, n_top=50), tmp_path / "ad.gs")
        assert list(psysc.gwas.read_gs(tmp_path / "ad.gs")) == ["AD"]
    # gene x trait tables are still read as such, also with a gene column named like a variant ID column
    for text in ("GENE\tSCZ\tP\nDRD2\t6.1\t0.2\nGRIN2A\t12.4\t0.5\n", "id\tSCZ\tP\nDRD2\t6.1\t0.2\nGRIN2A\t12.4\t0.5\n",
                 "id\tZSCORE\nDRD2\t6.1\nGRIN2A\t12.4\n"):
        (tmp_path / "z.tsv").write_text(text)
        assert psysc.cli._gene_sets_kind(tmp_path / "z.tsv") == "table"
        first = next(iter(psysc.gwas.read_gene_stats(tmp_path / "z.tsv", n_top=2).values()))
        assert set(first.index) == {"DRD2", "GRIN2A"}


def test_summary_statistics_with_their_build_are_mapped_to_genes_and_scored(tmp_path):
    """--build maps the SNPs to genes as psysc.gwas does in Python (here a real GRCh37 GWAS with its gene.loc)."""
    ex = psysc.datasets.ad_gwas_subset()
    path = tmp_path / "ad.tsv"
    pd.read_csv(ex["sumstats"], sep="\t").to_csv(path, sep="\t", index=False)
    out = tmp_path / "res"
    rc, log = _run(["run", "--quick", "--gene-sets", str(path), "--build", "GRCh37", "--gene-loc", str(ex["gene_loc"]),
                    "--out", str(out)])
    assert rc == 0, log
    want = psysc.gwas.genes_to_gene_set(psysc.gwas.sumstats_to_genes(psysc.gwas.read_sumstats(path), build="GRCh37",
                                                                     gene_loc=ex["gene_loc"]))["ad"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["parameters"]["build"] == "GRCh37" and summary["parameters"]["gene_loc"] == str(ex["gene_loc"])
    assert set(pd.read_csv(out / "enrichment.tsv", sep="\t")["trait"]) == {"ad"}
    assert re.search(rf"ad: \d+ of {len(want)} genes found in the data", log)  # the genes of the Python route
    # a short table keeps every gene, some of negative z: the warning gives the command line's way, not n_top= / fdr=
    assert (want < 0).any() and "genes have negative weights" in log
    assert "psysc run keeps the 1,000 genes of smallest P of a gene table, and every gene of a shorter one" in log
    assert "genes_to_gene_set: n_top=1000" not in log and "fdr= keeps" not in log
    # --build belongs to summary statistics; GRCh37 needs the gene locations of that build
    rc, err = _run(["run", "--quick", "--build", "GRCh38", "--out", str(tmp_path / "o2")])
    assert rc == 2 and "--build is the genome build of SNP-level summary statistics" in err
    rc, err = _run(["run", "--quick", "--gene-sets", str(path), "--build", "GRCh37", "--out", str(tmp_path / "o3")])
    assert rc == 2 and "NCBI37.3.gene.loc" in err


def test_unknown_trait_lists_available(tmp_path, small_h5ad):
    rc, err = _run(["run", "--input", str(small_h5ad), "--out", str(tmp_path), "--traits", "FOO"])
    assert rc == 2 and "SCZ" in err and "HEIGHT" in err


def test_gene_set_file_trait_missing(tmp_path, small_h5ad):
    gs = tmp_path / "one.gs"
    psysc.gwas.write_gs(psysc.datasets.gwas_gene_sets(["SCZ"]), gs)
    argv = ["run", "--input", str(small_h5ad), "--out", str(tmp_path / "o"), "--gene-sets", str(gs)]
    rc, err = _run([*argv, "--traits", "BIP"])
    assert rc == 2 and "available traits: SCZ" in err


def test_gene_ids_not_matching_the_data(tmp_path, small_h5ad):
    magma = Path(__file__).parent / "data" / "magma_ieu-a-298_AD_subset.genes.out"
    rc, err = _run(["run", "--input", str(small_h5ad), "--out", str(tmp_path / "o"), "--gene-sets", str(magma)])
    assert rc == 2 and "var_names" in err and "Traceback" not in err


def test_control_scores_that_cannot_fit_exit_2_naming_the_options(tmp_path, small_h5ad, monkeypatch):
    import psysc.tl._score as score_module

    # memory for one trait's control scores (40 cells x 100 control sets, float32) but not for two
    monkeypatch.setattr(score_module, "available_memory", lambda: 40 * 100 * 4 * 3 // 2)
    argv = ["run", "--input", str(small_h5ad), "--out", str(tmp_path / "o"), "--traits", "SCZ,AD", "--n-ctrl", "100"]
    rc, err = _run(argv)
    assert rc == 2 and "Traceback" not in err
    assert "2 traits needs" in err and "--traits" in err and "--n-ctrl" in err


def test_unreadable_input(tmp_path):
    bad = tmp_path / "bad.h5ad"
    bad.write_text("not hdf5")
    rc, err = _run(["run", "--input", str(bad), "--out", str(tmp_path / "o")])
    assert rc == 2 and "could not be read" in err


def test_usage_errors_and_version(capsys):
    assert main([]) == 2
    assert main(["run", "--bogus"]) == 2
    assert main(["run", "--n-ctrl", "many"]) == 2
    capsys.readouterr()
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"psysc {psysc.__version__}"


def test_logging_state_is_restored(tmp_path):
    import logging

    logger = logging.getLogger("psysc")
    before = (list(logger.handlers), logger.level, logger.propagate, psysc.settings.verbosity)
    _run(["run", "--input", "nope.h5ad", "--out", str(tmp_path), "-q"])
    assert (list(logger.handlers), logger.level, logger.propagate, psysc.settings.verbosity) == before


def test_run_writes_the_cell_type_level(quick_run):
    out, _ = quick_run
    t = pd.read_csv(out / "celltype_enrichment.tsv", sep="\t")
    assert list(t.columns) == ["trait", "group", "method", "beta", "se", "t", "pval", "fdr", "n_genes"]
    assert set(t["method"]) == {"seismic", "magma", "top10"} and set(t["trait"]) == set(TRAITS)
    summary = json.loads((out / "summary.json").read_text())
    sizes = summary["data"]["group_sizes"]
    assert set(t["group"]) == {g for g, n in sizes.items() if n >= summary["parameters"]["celltype_min_cells"]}
    scz = t[(t.trait == "SCZ") & (t.method == "seismic")].set_index("group")["t"]
    assert scz["neurons"] > scz["microglia"]


def test_too_few_groups_skips_the_cell_type_level_with_a_warning(tmp_path, darmanis):
    ct = darmanis.obs["cell_type"].to_numpy()
    keep = np.flatnonzero(ct == "neurons").tolist() + np.flatnonzero(ct == "microglia")[:5].tolist()
    adata = darmanis[sorted(keep)].copy()  # 131 neurons and 5 microglia: one group of >= 10 cells
    path = tmp_path / "two.h5ad"
    adata.write_h5ad(path)
    out = tmp_path / "res"
    rc, log = _run(["run", "--input", str(path), "--out", str(out), "--quick", "--traits", "SCZ"])
    assert rc == 0, log
    assert "cell-type level enrichment skipped" in log
    assert not (out / "celltype_enrichment.tsv").exists()
    skipped = json.loads((out / "summary.json").read_text())["data"]["celltype_level_skipped"]
    assert skipped is not None and skipped in log  # the reason, where summary.json is read
    assert "pass a smaller --min-cells-per-group" in skipped  # worded for the command line, as in the log


def test_traits_with_too_few_genes_leave_the_others_scored_and_tested(tmp_path, darmanis):
    gs = tmp_path / "two.gs"
    sets = psysc.datasets.gwas_gene_sets(["SCZ"])
    # 12 genes detected in 3 to 9 cells: kept by the QC and scored, but too rare for a specificity score
    n_cells = np.asarray((darmanis.X > 0).sum(axis=0)).ravel()
    rare = list(darmanis.var_names[(n_cells >= 3) & (n_cells < 10)][:12])
    sets["TINY"] = pd.Series(1.0, index=rare)
    sets["FEW"] = pd.Series(1.0, index=list(darmanis.var_names[n_cells >= 50][:5]))  # too few to be scored at all
    psysc.gwas.write_gs(sets, gs)
    out = tmp_path / "res"
    rc, log = _run(["run", "--gene-sets", str(gs), "--out", str(out), "--quick"])
    assert rc == 0, log
    assert "1 of 2 traits are left out: too few of their genes have a specificity score (TINY: " in log
    assert json.loads((out / "summary.json").read_text())["data"]["traits_without_celltype_test"].keys() == {"TINY"}
    assert json.loads((out / "summary.json").read_text())["data"]["celltype_level_skipped"] is None
    assert set(pd.read_csv(out / "enrichment.tsv", sep="\t")["trait"]) == {"SCZ", "TINY"}  # scored per cell
    assert json.loads((out / "summary.json").read_text())["data"]["traits_not_scored"] == {"FEW": 5}
    t = pd.read_csv(out / "celltype_enrichment.tsv", sep="\t")
    assert set(t["trait"]) == {"SCZ"}


def _bad_values(adata, kind: str):
    """A copy of ``adata`` whose X (CSR) is log-normalised or holds a NaN, a negative value or a duplicated gene."""
    import scanpy as sc

    adata = adata.copy()
    if kind == "lognorm":
        sc.pp.normalize_total(adata, target_sum=1e4)
        sc.pp.log1p(adata)
    elif kind == "nan":
        adata.X.data[0] = np.nan
    elif kind == "negative":
        adata.X.data[0] = -3
    elif kind == "duplicated":
        names = list(adata.var_names)
        names[1] = names[0]
        adata.var_names = names
    return adata


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("lognorm", "not raw counts"),
        ("nan", "1 NaN"),
        ("negative", "1 negative values"),
        ("duplicated", "occur more than once in var_names"),
    ],
)
def test_bad_expression_values_exit_2_without_traceback(tmp_path, darmanis, kind, message):
    """Input that is not raw counts (log-normalised, NaN, negative) or has duplicated genes: a message, exit 2."""
    path = tmp_path / f"{kind}.h5ad"
    _bad_values(darmanis[:40], kind).write_h5ad(path)
    out = tmp_path / "out"
    rc, err = _run(["run", "--input", str(path), "--out", str(out), "--quick", "--traits", "SCZ"])
    assert rc == 2, err
    assert message in err
    assert "Traceback" not in err and "KeyError" not in err
    assert not out.exists()  # refused before any computation or output


def test_counts_that_are_not_whole_numbers_are_scored_as_counts(tmp_path, darmanis):
    """EM-quantified or ambient-corrected counts (not integers, large): normalised as counts, with a warning."""
    sub = darmanis[:120].copy()
    sub.write_h5ad(tmp_path / "int.h5ad")
    sub.X = sub.X * np.float32(1.25)  # scaled counts: the same cells after size-factor normalisation
    sub.write_h5ad(tmp_path / "frac.h5ad")
    runs = {}
    for name in ("int", "frac"):
        out = tmp_path / name
        rc, log = _run(["run", "--input", str(tmp_path / f"{name}.h5ad"), "--out", str(out), "--n-ctrl", "50",
                        "--traits", "SCZ"])
        assert rc == 0, log
        runs[name] = (pd.read_csv(out / "scores.tsv.gz", sep="\t"), log)
    assert "non-integer values up to" in runs["frac"][1] and "non-integer" not in runs["int"][1]
    np.testing.assert_allclose(runs["frac"][0]["SCZ_norm_score"], runs["int"][0]["SCZ_norm_score"], rtol=1e-4,
                               atol=1e-4)


def test_repeated_cell_names_are_refused_first_and_trait_names_with_a_slash_renamed(tmp_path, darmanis):
    sub = darmanis[:40].copy()
    sub.obs_names = [sub.obs_names[0]] * 2 + list(sub.obs_names[2:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # anndata's own note on repeated names
        sub.write_h5ad(tmp_path / "dup.h5ad")
    out = tmp_path / "o"
    rc, err = _run(["run", "--input", str(tmp_path / "dup.h5ad"), "--out", str(out), "--quick", "--traits", "SCZ"])
    assert rc == 2 and "occur more than once in obs_names" in err and "obs_names_make_unique" in err
    assert not out.exists()
    gs = tmp_path / "slash.gs"
    gs.write_text("TRAIT\tGENESET\nSCZ/PGC3\t" + ",".join(f"{g}:1" for g in darmanis.var_names[:200]) + "\n")
    rc, err = _run(["run", "--gene-sets", str(gs), "--out", str(out), "--quick", "--traits", "SCZ/PGC3"])
    assert rc == 0, err
    assert "'SCZ/PGC3' -> 'SCZ_PGC3'" in err
    assert set(pd.read_csv(out / "enrichment.tsv", sep="\t")["trait"]) == {"SCZ_PGC3"}
    gs.write_text(gs.read_text() + "SCZ_PGC3\t" + ",".join(f"{g}:1" for g in darmanis.var_names[:200]) + "\n")
    rc, err = _run(["run", "--gene-sets", str(gs), "--out", str(tmp_path / "o2"), "--quick"])
    assert rc == 2 and "clash with other names" in err and not (tmp_path / "o2").exists()


def test_a_trait_without_any_gene_in_the_data_is_left_out_and_named(tmp_path):
    gs = tmp_path / "mixed.gs"
    sets = psysc.datasets.gwas_gene_sets(["SCZ"])
    sets["NOMATCH"] = pd.Series([3.0, 2.0], index=["FAKEGENE1", "FAKEGENE2"])
    psysc.gwas.write_gs(sets, gs)
    out = tmp_path / "res"
    rc, log = _run(["run", "--gene-sets", str(gs), "--out", str(out), "--quick"])
    assert rc == 0, log
    assert "no gene of the gene set(s) of ['NOMATCH'] is in adata.var_names" in log and "not scored" in log
    assert set(pd.read_csv(out / "enrichment.tsv", sep="\t")["trait"]) == {"SCZ"}
    assert json.loads((out / "summary.json").read_text())["data"]["traits_not_scored"] == {"NOMATCH": 0}


def test_a_group_column_named_like_a_score_column_does_not_replace_it(tmp_path, darmanis):
    sub = darmanis[:150].copy()
    sub.obs["cell"] = sub.obs["cell_type"]
    sub.write_h5ad(tmp_path / "cellcol.h5ad")
    out = tmp_path / "res"
    rc, log = _run(["run", "--input", str(tmp_path / "cellcol.h5ad"), "--groupby", "cell", "--out", str(out),
                    "--n-ctrl", "50", "--traits", "SCZ"])
    assert rc == 0, log
    scores = pd.read_csv(out / "scores.tsv.gz", sep="\t", keep_default_na=False)
    assert set(scores["cell"]) <= set(sub.obs_names) and len(scores)
    assert (scores["group_cell"].to_numpy() == sub.obs.loc[scores["cell"], "cell_type"].astype(str).to_numpy()).all()


def test_bad_values_in_the_counts_layer_are_refused(tmp_path, darmanis):
    """The check applies to --layer, not X: good X but a log-normalised layer is refused and named."""
    sub = darmanis[:40].copy()
    sub.layers["counts"] = _bad_values(sub, "lognorm").X
    path = tmp_path / "layer.h5ad"
    sub.write_h5ad(path)
    rc, err = _run(["run", "--input", str(path), "--layer", "counts", "--out", str(tmp_path / "o"), "--quick"])
    assert rc == 2 and "adata.layers['counts']" in err and "not raw counts" in err and "Traceback" not in err


def test_missing_group_labels_stay_missing(tmp_path, darmanis):
    """Cells without a --groupby label belong to no group (no 'nan' group), and their number is reported."""
    sub = darmanis[np.sort(np.random.default_rng(1).choice(darmanis.n_obs, 150, replace=False))].copy()
    labels = sub.obs["cell_type"].astype(object)
    labels.iloc[::10] = np.nan  # 15 cells without a label
    sub.obs["cell_type"] = labels.astype("category")
    path = tmp_path / "nanlab.h5ad"
    sub.write_h5ad(path)
    out = tmp_path / "res"
    rc, log = _run(["run", "--input", str(path), "--out", str(out), "--n-ctrl", "50", "--traits", "SCZ"])
    assert rc == 0, log

    scores = pd.read_csv(out / "scores.tsv.gz", sep="\t", keep_default_na=False)
    kept = sub.obs.loc[scores["cell"], "cell_type"]
    n_missing = int(kept.isna().sum())
    assert n_missing > 0
    assert (scores["cell_type"] == "").sum() == n_missing  # written as empty fields, not "nan"
    assert "nan" not in set(scores["cell_type"])
    assert log.count(f"{n_missing} cells have no 'cell_type' label") == 1  # said (not dropped silently), once

    table = pd.read_csv(out / "enrichment.tsv", sep="\t", keep_default_na=False)
    assert "nan" not in set(table["group"])
    assert set(table["group"]) == set(kept.dropna().astype(str))
    assert table["n_cells"].sum() == len(scores) - n_missing
    summary = json.loads((out / "summary.json").read_text())
    assert "nan" not in summary["data"]["group_sizes"]
    assert summary["data"]["n_cells_without_group"] == n_missing


def test_tiny_groups_and_nan_text_labels_are_tested_with_one_warning_each(tmp_path, darmanis):
    """A label 'nan' (a NaN turned into text) and a group of 3 cells are kept as groups, each warned about once; the
    cell-type level test drops the tiny group, and its message names where the threshold can be changed."""
    sub = darmanis[::2].copy()
    labels = sub.obs["cell_type"].astype(object).to_numpy().copy()
    labels[:20] = np.nan
    labels[30:33] = "tiny"
    sub.obs["cell_type"] = [str(x) for x in labels]
    path = tmp_path / "textnan.h5ad"
    sub.write_h5ad(path)
    out = tmp_path / "res"
    rc, log = _run(["run", "--input", str(path), "--out", str(out), "--n-ctrl", "50", "--traits", "SCZ"])
    assert rc == 0, log
    table = pd.read_csv(out / "enrichment.tsv", sep="\t", keep_default_na=False).set_index("group")
    assert table.loc["nan", "n_cells"] == 20 and table.loc["tiny", "n_cells"] == 3
    small = re.findall(r"(\d+) group\(s\) of 'cell_type' have fewer than 10 cells: ([^;]*);", log)
    assert len(small) == 1
    want = {f"'{g}' ({n})" for g, n in table["n_cells"].items() if n < 10}
    assert "'tiny' (3)" in want and set(small[0][1].split(", ")) == want and int(small[0][0]) == len(want)
    assert log.count("obs['cell_type'] has label(s) 'nan', text that reads as a missing value") == 1
    dropped = re.findall(r"dropped from the specificity: (.*) \(lower --min-cells-per-group to keep them\)", log)
    assert len(dropped) == 1 and "tiny (3 cells)" in dropped[0].split(", ")


def test_groupby_without_any_label(tmp_path, small_h5ad):
    import anndata as ad

    adata = ad.read_h5ad(small_h5ad)
    adata.obs["empty"] = pd.Categorical([np.nan] * adata.n_obs, categories=["a"])
    path = tmp_path / "empty.h5ad"
    adata.write_h5ad(path)
    rc, err = _run(["run", "--input", str(path), "--groupby", "empty", "--out", str(tmp_path / "o"), "--quick"])
    assert rc == 2 and "no label" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_magma_genes_raw_is_read_as_a_magma_file(tmp_path, small_h5ad):
    raw = tmp_path / "T.genes.raw"
    raw.write_text("# VERSION = 110\n# COVAR = NSAMP MAC\n1 1 10 20 5 3 1000 50.5 2.1 0.3\n")
    rc, err = _run(["run", "--input", str(small_h5ad), "--out", str(tmp_path / "o"), "--gene-sets", str(raw)])
    assert rc == 2 and "Traceback" not in err
    assert "as a MAGMA .genes.out/.genes.raw file" in err and "line 3: 1 correlations" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seed", "-1"], "--seed must be between 0 and 2^32 - 1"),
        (["--seed", str(2**32)], "--seed must be between 0 and 2^32 - 1"),
        (["--n-ctrl", "1"], "--n-ctrl must be at least 2"),
        (["--gene-loc", "x.loc"], "--gene-loc names the genes of a MAGMA"),
    ],
)
def test_options_checked_before_any_work(tmp_path, small_h5ad, args, message):
    rc, err = _run(["run", "--input", str(small_h5ad), "--out", str(tmp_path / "out"), "--quick", *args])
    assert rc == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_unwritable_out_and_every_trait_too_small_exit_2(tmp_path, small_h5ad):
    (tmp_path / "afile").write_text("x")
    rc, err = _run(["run", "--input", str(small_h5ad), "--out", str(tmp_path / "afile" / "sub"), "--quick"])
    assert rc == 2 and "is a file, not a directory" in err
    gs = tmp_path / "small.gs"
    psysc.gwas.write_gs({"MYT": pd.Series(1.0, index=["NRGN", "DPYD", "GRIN2A"])}, gs)
    rc, err = _run(["run", "--input", str(small_h5ad), "--out", str(tmp_path / "o"), "--gene-sets", str(gs),
                    "--quick"])
    assert rc == 2 and "every trait has fewer than 10 of its genes in the data (MYT: 3)" in err
    assert "differ in case" not in err and "Traceback" not in err


def test_quick_run_trains_scvi_briefly(tmp_path, small_h5ad):
    """--model scvi trains on the input; --quick caps it at 20 epochs (scvi-tools' own rule gives 400 here)."""
    pytest.importorskip("scvi")
    out = tmp_path / "o"
    rc, err = _run(["run", "--input", str(small_h5ad), "--out", str(out), "--model", "scvi", "--quick", "--traits",
                    "SCZ"])
    assert rc == 0, err
    assert "up to 20 epochs" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["parameters"]["max_epochs"] == 20


def test_failed_model_download_exits_2_and_leaves_no_empty_folder(tmp_path, small_h5ad, monkeypatch):
    monkeypatch.setenv("PSYSC_MODEL_BASE_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("PSYSC_CACHE_DIR", str(tmp_path / "cache"))
    rc, err = _run(["run", "--input", str(small_h5ad), "--out", str(tmp_path / "o"), "--model",
                    "geneformer-v2-104m", "--quick", "--traits", "SCZ"])
    assert rc == 2 and "--model 'geneformer-v2-104m'" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_magma_entrez_ids_named_with_gene_loc_and_stale_outputs_removed(tmp_path, darmanis):
    """A MAGMA .genes.out named by Entrez IDs is scored from the command line with its gene.loc; a second run into
    the same folder removes the figures of traits it no longer scores, and the report names the traits left out."""
    rng = np.random.default_rng(0)
    genes = list(darmanis.var_names[np.asarray((darmanis.X > 0).sum(axis=0)).ravel() >= 50][:400])
    entrez = [str(1000 + i) for i in range(len(genes))]
    z = rng.normal(1.0, 1.5, len(genes))
    out_file = tmp_path / "T.genes.out"
    pd.DataFrame({"GENE": entrez, "CHR": 1, "START": np.arange(len(genes)) * 1000 + 1,
                  "STOP": np.arange(len(genes)) * 1000 + 500, "NSNPS": 10, "NPARAM": 5, "N": 1000, "ZSTAT": z,
                  "P": norm.sf(z)}).to_csv(out_file, sep=" ", index=False)
    loc = tmp_path / "NCBI37.3.gene.loc"
    pd.DataFrame({"GENE": entrez, "CHR": 1, "START": np.arange(len(genes)) * 1000 + 1,
                  "STOP": np.arange(len(genes)) * 1000 + 500, "STRAND": "+", "NAME": genes}).to_csv(
        loc, sep="\t", index=False, header=False)
    out = tmp_path / "res"
    rc, log = _run(["run", "--out", str(out), "--quick", "--traits", "SCZ,HEIGHT"])
    assert rc == 0, log
    assert (out / "scores_HEIGHT.png").is_file()
    rc, log = _run(["run", "--out", str(out), "--quick", "--gene-sets", str(out_file), "--gene-loc", str(loc)])
    assert rc == 0, log
    table = pd.read_csv(out / "enrichment.tsv", sep="\t")
    assert set(table["trait"]) == {"T"}
    assert not (out / "scores_HEIGHT.png").exists() and (out / "scores_T.png").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == summary["files"]
    import hashlib

    params = summary["parameters"]  # the files that named the genes, by path and content
    assert params["gene_loc"] == str(loc)
    assert params["gene_loc_sha256"] == hashlib.sha256(loc.read_bytes()).hexdigest()
    assert params["gene_sets_sha256"] == hashlib.sha256(out_file.read_bytes()).hexdigest()
    few = tmp_path / "few.gs"
    psysc.gwas.write_gs({"SCZ": psysc.datasets.gwas_gene_sets(["SCZ"])["SCZ"],
                         "FEW": pd.Series(1.0, index=genes[:5])}, few)
    rc, log = _run(["run", "--out", str(out), "--quick", "--gene-sets", str(few)])
    assert rc == 0, log
    assert "Not scored (fewer than 10 genes in the data): FEW (5 genes)" in (out / "report.html").read_text()


def test_counts_elsewhere_in_the_file_are_named(tmp_path, darmanis):
    """X empty, X log-normalised beside a counts layer, counts only in .raw: each refused (exit 2, before any work)
    with the option or step that fixes it; a continuous --groupby is refused too."""
    import anndata as ad
    import scanpy as sc

    sub = darmanis[:40].copy()
    cases = {}
    empty = ad.AnnData(obs=sub.obs, var=sub.var, layers={"counts": sub.X})
    cases["empty"] = (empty, [], "adata.X is empty")
    logged = sub.copy()
    logged.layers["counts"] = logged.X.copy()
    sc.pp.normalize_total(logged)
    sc.pp.log1p(logged)
    cases["layer"] = (logged, [], "layers['counts'] holds whole numbers, pass --layer counts")
    raw = sub.copy()
    raw.raw = sub.copy()  # the counts of every gene (a copy: raw = adata shares X); X: log-normalised, 2,000 genes
    sc.pp.normalize_total(raw)
    sc.pp.log1p(raw)
    raw = raw[:, :2000].copy()
    cases["raw"] = (raw, [], f"adata.raw holds whole numbers for {sub.n_vars:,} genes")
    scaled = sub.copy()  # scanpy's tutorial: raw = log-normalised, X scaled
    sc.pp.normalize_total(scaled)
    sc.pp.log1p(scaled)
    scaled.raw = scaled
    sc.pp.scale(scaled)
    cases["scaled"] = (scaled, [], "looks scaled or centred (sc.pp.scale?). psysc run needs raw counts: adata.raw "
                                   "holds no raw counts either")
    counts_in_x = sub.copy()
    counts_in_x.layers["lognorm"] = sc.pp.log1p(sc.pp.normalize_total(sub, copy=True).X)
    cases["counts_in_x"] = (counts_in_x, ["--layer", "lognorm"], "adata.X holds whole numbers, drop --layer lognorm")
    continuous = sub.copy()
    continuous.obs["depth"] = np.asarray(continuous.X.sum(axis=1)).ravel() + 0.5
    cases["continuous"] = (continuous, ["--groupby", "depth"], "looks continuous")
    for name, (adata, extra, message) in cases.items():
        path = tmp_path / f"{name}.h5ad"
        adata.write_h5ad(path)
        out = tmp_path / f"out_{name}"
        rc, err = _run(["run", "--input", str(path), "--out", str(out), "--quick", "--traits", "SCZ", *extra])
        assert rc == 2 and message in err and "Traceback" not in err, (name, err)
        assert not out.exists()
    # the fix the message gives for the counts in adata.raw: --use-raw scores every gene of adata.raw
    assert "pass --use-raw" in _run(["run", "--input", str(tmp_path / "raw.h5ad"), "--out", str(tmp_path / "o"),
                                     "--quick", "--traits", "SCZ"])[1]
    rc, err = _run(["run", "--input", str(tmp_path / "raw.h5ad"), "--out", str(tmp_path / "out_fixed"), "--quick",
                    "--traits", "SCZ", "--use-raw"])
    assert rc == 0, err
    summary = json.loads((tmp_path / "out_fixed" / "summary.json").read_text())
    assert summary["data"]["n_genes_in"] == sub.n_vars
    assert summary["parameters"]["use_raw"] is True
    rc, err = _run(["run", "--input", str(tmp_path / "counts_in_x.h5ad"), "--out", str(tmp_path / "o2"), "--quick",
                    "--use-raw"])
    assert rc == 2 and "no adata.raw" in err


def test_a_cellxgene_style_file_is_scored_with_use_raw_and_gene_symbols(tmp_path, darmanis):
    """Ensembl IDs as var_names, symbols in var['feature_name'], log-normalised X, counts in .raw: one message names
    both options, and with them the run scores the same genes as the file with symbols and counts in X."""
    import scanpy as sc

    sub = darmanis[:60].copy()
    sub = sub[:, sub.var["gene_ids"].astype(str) != ""].copy()
    symbols = sub.copy()
    symbols.write_h5ad(tmp_path / "symbols.h5ad")
    cxg = sub.copy()
    cxg.var["feature_name"] = cxg.var_names.astype(str)
    cxg.var_names = cxg.var["gene_ids"].astype(str).to_numpy()
    cxg.raw = cxg.copy()
    sc.pp.normalize_total(cxg, target_sum=1e4)
    sc.pp.log1p(cxg)
    cxg.write_h5ad(tmp_path / "cxg.h5ad")
    common = ["--out", str(tmp_path / "o"), "--quick", "--traits", "SCZ,AD", "--n-ctrl", "50"]
    rc, err = _run(["run", "--input", str(tmp_path / "cxg.h5ad"), *common])
    assert rc == 2 and "pass --gene-symbols feature_name" in err and "pass --use-raw" in err, err
    rc, err = _run(["run", "--input", str(tmp_path / "cxg.h5ad"), *common, "--use-raw", "--gene-symbols",
                    "feature_name"])
    assert rc == 0, err
    rc, err = _run(["run", "--input", str(tmp_path / "symbols.h5ad"), *common[:1], str(tmp_path / "ref"),
                    *common[2:]])
    assert rc == 0, err
    got = pd.read_csv(tmp_path / "o" / "enrichment.tsv", sep="\t")
    ref = pd.read_csv(tmp_path / "ref" / "enrichment.tsv", sep="\t")
    pd.testing.assert_frame_equal(got, ref)
    rc, err = _run(["run", "--input", str(tmp_path / "cxg.h5ad"), *common, "--gene-symbols", "no_such"])
    assert rc == 2 and "--gene-symbols 'no_such' is not a column of adata.var" in err
    rc, err = _run(["run", "--input", str(tmp_path / "cxg.h5ad"), *common, "--use-raw", "--layer", "x"])
    assert rc == 2 and "pass one of them" in err


def test_species_mouse_on_human_data_says_to_drop_the_option(tmp_path, darmanis):
    darmanis[:40].copy().write_h5ad(tmp_path / "human.h5ad")
    rc, err = _run(["run", "--input", str(tmp_path / "human.h5ad"), "--out", str(tmp_path / "o"), "--quick",
                    "--traits", "SCZ", "--species", "mouse"])
    assert rc == 2 and "drop --species mouse" in err and "write_gs" not in err, err


def test_gene_set_files_are_told_by_their_content(tmp_path):
    """A MAGMA table not named .genes.out is read as MAGMA output, a one-column file as a gene list."""
    from psysc.cli import _gene_sets_kind, _InputError, _load_gene_sets

    magma = tmp_path / "ad_magma.tsv"
    magma.write_text("GENE CHR START STOP NSNPS NPARAM N ZSTAT P\nAPOE 19 1 2 10 5 1000 6.0 1e-9\n"
                     "TREM2 6 1 2 10 5 1000 4.0 3e-5\n")
    genes = tmp_path / "asd.txt"
    genes.write_text("SHANK3\nCHD8\nSCN2A\n")
    gs = tmp_path / "two.gs"
    psysc.gwas.write_gs({"A": pd.Series(1.0, index=["APOE", "CLU"])}, gs)
    table = tmp_path / "zscores.tsv"  # scdrs munge-gs's z-score file: a gene column, one column per trait
    table.write_text("GENE\tSCZ\tAD\nDRD2\t6.1\t0.3\nAPOE\t0.2\tNA\nTREM2\t-1.0\t4.0\n")
    csv_table = tmp_path / "scz_pvals.csv"  # one value column named after its statistic: the trait is the file's
    csv_table.write_text("symbol,P\nDRD2,1e-8\nAPOE,0.4\n")
    renamed_magma = tmp_path / "scz_magma.tsv"  # MAGMA columns under another gene column name
    renamed_magma.write_text("SYMBOL\tZSTAT\tP\nDRD2\t6\t1e-9\n")
    gz_table = tmp_path / "zscores_gz"  # gzip without .gz
    gz_table.write_bytes(gzip.compress(table.read_bytes()))
    raw = tmp_path / "scz_raw"  # a .genes.raw under another name
    raw.write_text("# VERSION = 110\n# COVAR = NSAMP MAC\n348 19 1 2 10 5 1000 20 6.0\n")
    zstat = tmp_path / "scz_zstat.tsv"  # one value column named ZSTAT: a one-trait z-score table
    zstat.write_text("GENE\tZSTAT\nDRD2\t6.1\nAPOE\t0.2\n")
    weighted = tmp_path / "weighted.tsv"  # a gene list with weights: refused, not read as statistics
    weighted.write_text("gene\tweight\nSHANK3\t0.9\nCHD8\t0.8\n")
    plink2 = tmp_path / "scz.glm.logistic"  # PLINK 2: the header is a '#' line
    plink2.write_text("#CHROM\tPOS\tID\tREF\tALT\tA1\tTEST\tOBS_CT\tOR\tLOG(OR)_SE\tZ_STAT\tP\n"
                      "19\t44908684\trs429358\tT\tC\tC\tADD\t1000\t3.1\t0.05\t22.6\t1e-100\n")
    vcf_tsv = tmp_path / "bip.vcf.tsv"  # PGC's newer releases: '##' meta lines, then a '#CHROM' header
    vcf_tsv.write_text("##fileformat=GWAS-VCF-TSV\n##genome_build=GRCh38\n#CHROM\tPOS\tID\tA1\tA2\tBETA\tSE\tPVAL\n"
                       "19\t44908684\trs429358\tC\tT\t0.5\t0.05\t1e-20\n")
    files = (magma, genes, gs, table, csv_table, renamed_magma, gz_table, raw, zstat, weighted, plink2, vcf_tsv)
    kinds = [_gene_sets_kind(p) for p in files]
    assert kinds == ["magma", "list", "gs", "table", "table", "magma", "table", "magma", "table", "table",
                     "sumstats", "sumstats"]
    for snps in (plink2, vcf_tsv):  # read as SNP-level statistics: genes around the SNP
        assert "APOE" in _load_gene_sets(str(snps), None, build="GRCh38")[0][snps.name.split(".")[0]].index
    assert _load_gene_sets(str(zstat), None)[0]["scz_zstat"].to_dict() == {"DRD2": 6.1, "APOE": 0.2}
    sets, traits = _load_gene_sets(str(table), None)
    assert traits == ["SCZ", "AD"] and sets["AD"].to_dict() == {"TREM2": 4.0, "DRD2": 0.3}
    sets, traits = _load_gene_sets(str(csv_table), None)
    assert traits == ["scz_pvals"] and list(sets["scz_pvals"].index) == ["DRD2", "APOE"]
    with pytest.raises(_InputError, match=r"one value column \('weight'\)"):
        _load_gene_sets(str(weighted), None)
    headerless = tmp_path / "list_w.txt"  # genes and weights without a header: not read as a trait named '0.9'
    headerless.write_text("SHANK3\t0.9\nCHD8\t0.8\nSCN2A\t0.7\n")
    with pytest.raises(_InputError, match=r"first line \('SHANK3\\t0.9'\) holds numbers .* no header"):
        _load_gene_sets(str(headerless), None)
    phecodes = tmp_path / "phecodes.tsv"  # traits named by numbers (phecodes) under a header
    phecodes.write_text("GENE\t250.2\t296.22\nDRD2\t6.1\t0.3\nAPOE\t0.2\t4.0\n")
    assert _load_gene_sets(str(phecodes), None)[1] == ["250.2", "296.22"]
    sets, traits = _load_gene_sets(str(magma), None)
    assert traits == ["ad_magma"] and sets["ad_magma"].to_dict() == {"APOE": 6.0, "TREM2": 4.0}
    sets, traits = _load_gene_sets(str(genes), None)
    assert traits == ["asd"] and list(sets["asd"].index) == ["SHANK3", "CHD8", "SCN2A"]


def test_trait_aliases_resolve_in_a_gene_set_file_with_the_full_names(tmp_path):
    """scDRS's published .gs files name traits in full; --traits SCZ,height picks them and names them by alias."""
    from psysc.cli import _InputError, _load_gene_sets

    names = {"PASS_Schizophrenia_Pardinas2018": "SCZ", "UKB_460K.body_HEIGHTz": "HEIGHT"}
    bundled = psysc.datasets.gwas_gene_sets(list(names.values()))
    path = tmp_path / "scdrs_74.gs"
    psysc.gwas.write_gs({full: bundled[alias] for full, alias in names.items()}, path)
    sets, traits = _load_gene_sets(str(path), ["height", "SCZ"])
    assert traits == ["HEIGHT", "SCZ"]
    for alias in traits:
        pd.testing.assert_series_equal(sets[alias], bundled[alias], check_names=False)
    sets, traits = _load_gene_sets(str(path), ["PASS_Schizophrenia_Pardinas2018"])  # full names still work
    assert traits == ["PASS_Schizophrenia_Pardinas2018"]
    sets, traits = _load_gene_sets(str(path), ["ukb_460k.body_heightz", "SCZ", "PASS_Schizophrenia_Pardinas2018"])
    assert traits == ["UKB_460K.body_HEIGHTz", "SCZ"]  # a name in another case; one set asked twice is scored once
    with pytest.raises(_InputError, match=r"\['BIP'\] not in --gene-sets .*or their aliases SCZ, HEIGHT"):
        _load_gene_sets(str(path), ["BIP"])
    # two traits differing in case only: the exact name picks one, another spelling is refused (not a guess)
    path = tmp_path / "cases.gs"
    psysc.gwas.write_gs({"scz": bundled["SCZ"].iloc[:50], "SCZ": bundled["SCZ"]}, path)
    sets, traits = _load_gene_sets(str(path), ["scz"])
    assert traits == ["scz"] and len(sets["scz"]) == 50
    with pytest.raises(_InputError, match=r"--traits Scz: .* 2 traits of that name in other cases \(scz, SCZ\)"):
        _load_gene_sets(str(path), ["Scz"])


def test_cluster_numbers_keep_their_order_and_the_report_lists_warnings(tmp_path, darmanis):
    """Integer clusters stored as floats (NaN for unlabelled cells) are groups "2" before "10", not "2.0"; the
    report lists the run's warnings (here: too few control sets to reach FDR < 0.1) and the genes found."""
    sub = darmanis[np.sort(np.random.default_rng(3).choice(darmanis.n_obs, 150, replace=False))].copy()
    codes = sub.obs["cell_type"].cat.codes.to_numpy() * 5.0  # 0, 5, 10, ...
    codes[::25] = np.nan
    sub.obs["cluster"] = codes
    path = tmp_path / "clusters.h5ad"
    sub.write_h5ad(path)
    out = tmp_path / "res"
    rc, log = _run(["run", "--input", str(path), "--out", str(out), "--n-ctrl", "20", "--traits", "SCZ",
                    "--groupby", "cluster"])
    assert rc == 0, log
    table = pd.read_csv(out / "enrichment.tsv", sep="\t", dtype={"group": str})
    groups = list(dict.fromkeys(table["group"]))
    assert groups == sorted(groups, key=int) and not any("." in g for g in groups)
    assert "a single associated group cannot reach FDR < 0.1" in log
    report = (out / "report.html").read_text()
    assert "<h2>Warnings</h2>" in report and "cannot reach FDR &lt; 0.1" in report
    n_found = json.loads((out / "summary.json").read_text())["data"]["n_genes_per_trait"]["SCZ"]
    assert f"SCZ: {n_found} of 1000" in report


def test_species_mouse_maps_the_gene_sets_to_mouse_orthologs(tmp_path, darmanis):
    """Mouse-cased genes (Grin2a): without --species mouse few SCZ genes are found, which is refused with the fix;
    with it the human gene sets are mapped to mouse orthologs first, as psysc.gwas.to_species does."""
    sub = darmanis[np.sort(np.random.default_rng(4).choice(darmanis.n_obs, 150, replace=False))].copy()
    sub.var_names = [g[:1] + g[1:].lower() for g in sub.var_names]
    sub.var_names_make_unique()
    path = tmp_path / "mouse.h5ad"
    sub.write_h5ad(path)
    human = psysc.datasets.gwas_gene_sets(["SCZ"])["SCZ"]
    n_human = int(pd.Index(human.index).isin(sub.var_names).sum())
    assert 10 <= n_human < 100  # enough genes to score, but a small fraction of the set
    rc, log = _run(["run", "--input", str(path), "--out", str(tmp_path / "human"), "--n-ctrl", "20", "--traits",
                    "SCZ", "--species", "human"])
    assert rc == 2 and "look like human genes and the data like mouse genes" in log and "--species mouse" in log
    assert "Traceback" not in log and not (tmp_path / "human" / "report.html").exists()
    out = tmp_path / "mouse"
    rc, log = _run(["run", "--input", str(path), "--out", str(out), "--n-ctrl", "20", "--traits", "SCZ",
                    "--species", "mouse"])
    assert rc == 0, log
    summary = json.loads((out / "summary.json").read_text())
    found = summary["data"]["n_genes_per_trait"]["SCZ"]
    assert summary["parameters"]["species"] == "mouse"
    mapped = psysc.gwas.to_species(psysc.datasets.gwas_gene_sets(["SCZ"]), "mouse")["SCZ"]
    assert found > 5 * n_human
    # QC keeps genes detected in 3 or more cells: at most the mapped genes present, most of them
    present = int(pd.Index(mapped.index).isin(sub.var_names).sum())
    assert 0.5 * present < found <= present


def test_other_species_names_are_only_warned_about_when_many_genes_match(tmp_path, darmanis):
    """Title-case names for most genes but 30 % of the set's genes found as they are: scored, with the hint."""
    sub = darmanis[np.sort(np.random.default_rng(4).choice(darmanis.n_obs, 150, replace=False))].copy()
    scz = set(psysc.datasets.gwas_gene_sets(["SCZ"])["SCZ"].index)
    keep_case = [g in scz and i % 3 == 0 for i, g in enumerate(sub.var_names)]
    sub.var_names = [g if k else g[:1] + g[1:].lower() for g, k in zip(sub.var_names, keep_case, strict=True)]
    sub.var_names_make_unique()
    path = tmp_path / "mixed.h5ad"
    sub.write_h5ad(path)
    rc, log = _run(["run", "--input", str(path), "--out", str(tmp_path / "o"), "--n-ctrl", "20", "--traits", "SCZ"])
    assert rc == 0, log
    assert "psysc run --species mouse" in (tmp_path / "o" / "report.html").read_text()


def test_an_input_scored_before_is_run_afresh_without_stale_warnings(tmp_path, darmanis):
    adata = darmanis.copy()
    psysc.pp.prepare_scoring(adata)
    psysc.tl.score_disorders(adata, psysc.datasets.gwas_gene_sets(["SCZ"]), n_ctrl=20)
    psysc.tl.disorder_enrichment(adata, groupby="cell_type", use_graph=None)
    del adata.layers["psysc_norm"]  # the raw counts stay in X, the results in uns
    path = tmp_path / "scored.h5ad"
    adata.write_h5ad(path)
    rc, log = _run(["run", "--input", str(path), "--out", str(tmp_path / "out"), "--quick", "--traits", "SCZ"])
    assert rc == 0, log
    assert "computed from earlier scores" not in log and "replaced by this run" in log
    table = pd.read_csv(tmp_path / "out" / "enrichment.tsv", sep="\t")
    assert set(table["trait"]) == {"SCZ"}


def test_messages_name_the_options_of_the_command_line(tmp_path):
    """The fixes the Python functions name (stat=, build=, gene_loc=, species=) are given as psysc run's options."""
    from psysc.cli import _as_cli, _load_gene_sets

    code = "Filter them first (sc.pp.filter_cells(adata, min_genes=...)) to drop them."
    assert _as_cli(code) == code  # a line of code that names scanpy's parameter is left as it is
    assert _as_cli("FEW (2 genes) (min_genes= sets the limit); pass min_genes=2 or less") == \
        "FEW (2 genes) (--min-genes sets the limit); pass --min-genes 2 or less"
    one = tmp_path / "scz_genes.tsv"  # scdrs munge-gs's one-trait input: GENE and a column named after the trait
    one.write_text("GENE\tSCZ\nDRD2\t6.1\nAPOE\t0.2\nGRIN2A\t5.0\n")
    rc, err = _run(["run", "--gene-sets", str(one), "--out", str(tmp_path / "o1"), "--quick"])
    assert rc == 2 and "--stat zscore or --stat pval" in err and "stat='" not in err, err
    sets, traits = _load_gene_sets(str(one), None, stat="zscore")
    assert traits == ["SCZ"] and sets["SCZ"].to_dict() == {"DRD2": 6.1, "GRIN2A": 5.0, "APOE": 0.2}
    rc, err = _run(["run", "--gene-sets", str(one), "--stat", "pval", "--out", str(tmp_path / "o2"), "--quick"])
    assert rc == 2 and "is it a z-score table (--stat zscore)?" in err  # z-scores are no P-values
    rc, err = _run(["run", "--stat", "zscore", "--out", str(tmp_path / "o3"), "--quick"])
    assert rc == 2 and "--stat is for a --gene-sets table" in err
    # SNP-level statistics on GRCh37 without gene locations on that build: the option that fixes it
    ad_sumstats = tmp_path / "ad.tsv"
    pd.read_csv(psysc.datasets.ad_gwas_subset()["sumstats"], sep="\t").to_csv(ad_sumstats, sep="\t", index=False)
    rc, err = _run(["run", "--gene-sets", str(ad_sumstats), "--build", "GRCh37", "--out", str(tmp_path / "o4"),
                    "--quick"])
    assert rc == 2 and "--gene-loc" in err and "gene_loc=" not in err, err
    # mouse gene sets with --species mouse: drop the option (the Python fix, species=, is not the command line's)
    mouse = tmp_path / "mouse.gs"
    psysc.gwas.write_gs({"T": pd.Series(1.0, index=["Snap25", "Gfap", "Olig2", "Actb", "Gapdh", "Mbp"])}, mouse)
    rc, err = _run(["run", "--gene-sets", str(mouse), "--species", "mouse", "--out", str(tmp_path / "o5"),
                    "--quick"])
    assert rc == 2 and "drop it" in err and "species='" not in err, err
    # mouse gene sets on human data: --species (the data's species) cannot map them; the way that can
    rc, err = _run(["run", "--gene-sets", str(mouse), "--out", str(tmp_path / "o6"), "--quick"])
    assert rc == 2 and "--species human" not in err, err
    assert "psysc.gwas.write_gs(psysc.gwas.to_species(gene_sets, 'human'), 'human_gene_sets.gs')" in err, err
    assert _as_cli("pass build='GRCh37' with gene_loc= or stat='pval'; pass stat= to say (stat='zscore')?") == (
        "pass --build GRCh37 with --gene-loc or --stat pval; pass --stat to say (--stat zscore)?")
    code = ("psysc.gwas.read_magma(path, gene_loc=<the gene.loc file>); "
            "psysc.gwas.sumstats_to_genes(ss, build='GRCh37'); read_gene_stats(path, stat='pval')")
    assert _as_cli(code) == code  # Python code in a message stays Python


def test_groups_without_cells_are_named(tmp_path, darmanis):
    """An unused category of --groupby, and a group whose every cell the QC drops, are logged and listed."""
    sub = darmanis[:105].copy()
    X = sparse.lil_matrix(sub.X)
    for i in range(100, 105):  # five cells with 150 detected genes: below the QC's 200
        X[i, 150:] = 0
    sub.X = sparse.csr_matrix(X)
    sub.X.eliminate_zeros()
    labels = sub.obs["cell_type"].astype(str).to_numpy().copy()
    labels[100:] = "low_quality"
    assert (labels == "low_quality").sum() > 0
    sub.obs["ct"] = pd.Categorical(labels, categories=[*sorted(set(labels)), "pericytes"])
    path = tmp_path / "groups.h5ad"
    sub.write_h5ad(path)
    out = tmp_path / "res"
    rc, log = _run(["run", "--input", str(path), "--groupby", "ct", "--out", str(out), "--quick", "--traits", "SCZ"])
    assert rc == 0, log
    assert "group 'pericytes' of 'ct' is not tested: no cell in the input" in log
    assert "group 'low_quality' of 'ct' is not tested: every cell dropped by the QC" in log
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["data"]["groups_without_cells"]) == {"pericytes", "low_quality"}
    assert not {"pericytes", "low_quality"} & set(pd.read_csv(out / "enrichment.tsv", sep="\t")["group"])


def test_python_dash_m_runs_the_command():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "psysc", "run", "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "--gene-sets" in done.stdout and done.stdout.startswith("usage: psysc run")


def test_tables_of_genes_are_read_by_their_gene_column(tmp_path):
    """A table of genes with other columns (SFARI's CSV, a gene-source TSV) is told apart from a .gs file; without
    --gene-column the message names its columns and the likely options, with them it is read as read_gene_list
    reads it."""
    from psysc.cli import _gene_sets_kind, _InputError, _load_gene_sets

    sfari = tmp_path / "SFARI-Gene.csv"
    sfari.write_text('status,gene-symbol,gene-name,gene-score\n9,ABAT,"4-aminobutyrate aminotransferase",3\n'
                     '9,CHD8,"chromodomain helicase DNA binding protein 8",1\n9,SHANK3,"SH3 and ankyrin",1\n')
    long = tmp_path / "risk_genes.tsv"
    long.write_text("gene\tsource\nCHD8\tASD_Ruzzo\nSCN2A\tASD_Ruzzo\nSETD1A\tSCZ_SCHEMA\nGRIN2A\tSCZ_SCHEMA\n"
                    "CHD8\tSFARI\nSHANK3\tSFARI\n")
    headerless_gs = tmp_path / "sets.txt"  # a .gs file without its header is still a .gs file
    headerless_gs.write_text("SCZ\tDRD2:6.1,GRIN2A:5.0\nAD\tAPOE,TREM2\n")
    titled = tmp_path / "scz_genes.txt"  # one gene per line under a title: a gene list, not a table of 5 traits
    titled.write_text('SCZ risk genes (Trubetskoy 2022)\n"DRD2"\n"GRIN2A"\n')
    spaced = tmp_path / "z.txt"  # whitespace-separated z-scores: a table
    spaced.write_text("GENE SCZ AD\nDRD2 6.1 0.2\nAPOE 0.1 12.0\n")
    assert [_gene_sets_kind(p) for p in (sfari, long, headerless_gs, titled, spaced)] == [
        "genes", "genes", "gs", "list", "table"]
    sets, traits = _load_gene_sets(str(titled), None)
    assert traits == ["scz_genes"] and list(sets["scz_genes"].index) == ["DRD2", "GRIN2A"]
    with pytest.raises(_InputError, match=r"is a table of genes with 4 columns \('status', 'gene-symbol', "
                                          r"'gene-name', 'gene-score'\).*\(probably --gene-column gene-symbol\)"):
        _load_gene_sets(str(sfari), None)
    with pytest.raises(_InputError, match=r"\(probably --gene-column gene --set-column source\)"):
        _load_gene_sets(str(long), None)
    sets, traits = _load_gene_sets(str(sfari), None, gene_column="gene-symbol", weight_column="gene-score")
    assert traits == ["SFARI-Gene"] and sets["SFARI-Gene"].to_dict() == {"ABAT": 3.0, "CHD8": 1.0, "SHANK3": 1.0}
    sets, traits = _load_gene_sets(str(long), ["SCZ_SCHEMA", "SFARI"], gene_column="gene", set_column="source")
    expected = pd.read_csv(long, sep="\t").groupby("source")["gene"].apply(list).to_dict()
    assert traits == ["SCZ_SCHEMA", "SFARI"] and {t: list(s.index) for t, s in sets.items()} == {
        t: expected[t] for t in traits}
    for kwargs, message in (
        ({"set_column": "source"}, "--weight-column and --set-column name columns of a table of genes"),
        ({"gene_column": "gene", "stat": "zscore"}, "--stat is for a gene x trait table"),
    ):
        with pytest.raises(_InputError, match=message):
            _load_gene_sets(str(long), None, **kwargs)
    # the reader's messages name the options of the command line
    rc, err = _run(["run", "--gene-sets", str(sfari), "--gene-column", "symbol", "--out", str(tmp_path / "o"),
                    "--quick"])
    assert rc == 2 and "--gene-column 'symbol' is not a column; available columns: ['status', 'gene-symbol'" in err
    rc, err = _run(["run", "--gene-column", "gene", "--out", str(tmp_path / "o"), "--quick"])
    assert rc == 2 and "--gene-column names the column of genes of a --gene-sets file" in err


def test_gmt_files_are_read_as_gene_sets(tmp_path):
    """A GMT file (MSigDB's with a URL, Enrichr's without a description, under another name) is one set per line."""
    from psysc.cli import _gene_sets_kind, _InputError, _load_gene_sets

    msigdb = tmp_path / "syngo.gmt"
    msigdb.write_text("POSTSYNAPSE\thttps://www.syngoportal.org\tDLG4\tSHANK3\nPRESYNAPSE\tNA\tSYN1\tSNAP25\n")
    enrichr = tmp_path / "enrichr_library.txt"
    enrichr.write_text("SCZ_GWAS\t\tDRD2,2.0\tGRIN2A,1.0\t\nAD_GWAS\t\tAPOE,3.0\tTREM2,1.0\t\n")
    table = tmp_path / "z.tsv"  # a gene x trait table is no GMT file
    table.write_text("GENE\tSCZ\tAD\nDRD2\t6.1\t0.2\nAPOE\t0.1\t12.0\n")
    assert [_gene_sets_kind(p) for p in (msigdb, enrichr, table)] == ["gmt", "gmt", "table"]
    sets, traits = _load_gene_sets(str(enrichr), ["AD_GWAS"])
    assert traits == ["AD_GWAS"] and sets["AD_GWAS"].to_dict() == {"APOE": 3.0, "TREM2": 1.0}
    sets, traits = _load_gene_sets(str(msigdb), None)
    assert traits == ["POSTSYNAPSE", "PRESYNAPSE"] and list(sets["PRESYNAPSE"].index) == ["SYN1", "SNAP25"]
    with pytest.raises(_InputError, match="is a GMT file, whose lines list their genes"):
        _load_gene_sets(str(msigdb), None, gene_column="gene")
    msigdb.write_text("POSTSYNAPSE\tNA\tDLG4,x\n")
    with pytest.raises(_InputError, match=r"could not be read as a GMT file: .*'DLG4,x'"):
        _load_gene_sets(str(msigdb), None)


def test_fuma_magma_output_by_its_symbols_and_a_spreadsheet_named(tmp_path):
    import zipfile

    from psysc.cli import _gene_sets_kind, _InputError, _load_gene_sets

    fuma = tmp_path / "magma.genes.out"
    fuma.write_text("GENE CHR START STOP NSNPS NPARAM N ZSTAT P SYMBOL\n"
                    "ENSG00000130203 19 44905791 44909393 40 8 74046 12.1 5e-34 APOE\n"
                    "ENSG00000095970 6 41158506 41163186 20 4 74046 4.2 1.3e-05 TREM2\n")
    assert _load_gene_sets(str(fuma), None)[0]["magma"].index[0] == "ENSG00000130203"
    assert _load_gene_sets(str(fuma), None, gene_column="SYMBOL")[0]["magma"].to_dict() == {"APOE": 10.0,
                                                                                            "TREM2": 4.2}
    from psysc.cli import _as_cli

    assert _as_cli("magma.genes.out: ... (FUMA's output): pass gene_column='SYMBOL' to name them by it").endswith(
        "(FUMA's output): pass --gene-column 'SYMBOL' to name them by it")
    with pytest.raises(_InputError, match="--gene-loc and --gene-column both name the genes"):
        _load_gene_sets(str(fuma), None, gene_loc=str(fuma), gene_column="SYMBOL")
    with pytest.raises(_InputError, match="a MAGMA file's genes are weighted by their ZSTAT"):
        _load_gene_sets(str(fuma), None, gene_column="SYMBOL", weight_column="N")
    xlsx = tmp_path / "genes.xlsx"
    with zipfile.ZipFile(xlsx, "w") as archive:
        archive.writestr("xl/workbook.xml", '<workbook><sheets><sheet name="TADA" sheetId="1"/></sheets></workbook>')
        archive.writestr("xl/worksheets/sheet1.xml", "<worksheet/>")
    with pytest.raises(_InputError, match=r"^--gene-sets: '.*genes.xlsx' is an Excel workbook \(.xlsx\) \(sheets: "
                                          r"'TADA'\), not a text table"):
        _gene_sets_kind(xlsx)


def test_fuma_file_named_by_entrez_ids_points_at_its_symbol_column(tmp_path):
    """FUMA's magma.genes.out with Entrez IDs in GENE: the error names its SYMBOL column (psysc run --gene-column),
    not a gene.loc file, in the shell and in Python; read by its symbols, the genes are found."""
    symbols = list(psysc.datasets.gwas_gene_sets(["SCZ"])["SCZ"].index[:60])
    fuma = tmp_path / "magma.genes.out"
    fuma.write_text("GENE CHR START STOP NSNPS NPARAM N ZSTAT P SYMBOL\n" + "".join(
        f"{1000 + i} 1 {i} {i + 1} 10 3 10000 {8 - i / 10:.2f} {10.0 ** -(8 - i / 10):.3g} {g}\n"
        for i, g in enumerate(symbols)))
    rc, err = _run(["run", "--quick", "--gene-sets", str(fuma), "--out", str(tmp_path / "out")])
    assert rc == 2
    assert "the gene sets' file names the genes by symbol in its SYMBOL column too: read it with --gene-column " \
           "'SYMBOL'" in err
    assert "--gene-loc" not in err and "gene.loc" not in err
    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)
    with pytest.raises(ValueError, match=r"SYMBOL column too: read it with gene_column='SYMBOL'") as info:
        psysc.tl.score_disorders(adata, psysc.gwas.read_magma(fuma), n_ctrl=5)
    assert "gene.loc" not in str(info.value)
    # the same file as a table, made a gene set: the column is still named
    tables = psysc.gwas.read_magma(fuma, n_top=None, table=True)
    with pytest.raises(ValueError, match=r"SYMBOL column too: read it with gene_column='SYMBOL'"):
        psysc.tl.score_disorders(adata, psysc.gwas.genes_to_gene_set(tables), n_ctrl=5)
    by_symbol = psysc.gwas.read_magma(fuma, gene_column="SYMBOL")
    assert psysc.tl.score_disorders(adata, by_symbol, n_ctrl=5, inplace=False)["magma"]["norm_score"].notna().all()
    # a set of the file already named by symbols (its record kept by pandas), against mouse data: the species is
    # the matter, not the file's SYMBOL column
    renamed = psysc.gwas.read_magma(fuma)["magma"].rename(index=dict(zip([str(1000 + i) for i in range(60)], symbols,
                                                                          strict=True)))
    assert renamed.attrs.get("symbol_column") == "SYMBOL"
    mouse = adata.copy()
    mouse.var_names = [g[:1] + g[1:].lower() for g in mouse.var_names]
    mouse.var_names_make_unique()
    with pytest.raises(ValueError, match="different species") as info:
        psysc.tl.score_disorders(mouse, {"magma": renamed}, n_ctrl=5)
    assert "SYMBOL" not in str(info.value)


def test_current_symbols_option_finds_the_genes_named_otherwise(tmp_path):
    """Without --current-symbols the log says how many more genes the option finds; with it, the data's and the gene
    sets' symbols are renamed (psysc.gwas.current_symbols) before the run, and exactly those are found."""
    rc, err = _run(["run", "--traits", "SCZ", "--n-ctrl", "5", "--out", str(tmp_path / "plain")])
    assert rc == 0, err
    hint = re.search(r"SCZ: (\d+) of 1000 genes found in the data; (\d+) more are in the data under another symbol "
                     r"of the gene \(e.g. WBP1L as C10orf26.*\): --current-symbols brings both to current symbols", err)
    assert hint is not None and "adata.var_names =" not in err, err
    rc, err = _run(["run", "--traits", "SCZ", "--n-ctrl", "5", "--current-symbols", "--out", str(tmp_path / "cur")])
    assert rc == 0, err
    found = re.search(r"SCZ: (\d+) of 1000 genes found in the data\n", err)
    assert found is not None and int(found[1]) == int(hint[1]) + int(hint[2]) > int(hint[1]), err
    assert json.loads((tmp_path / "cur" / "summary.json").read_text())["parameters"]["current_symbols"] is True
    assert json.loads((tmp_path / "plain" / "summary.json").read_text())["parameters"]["current_symbols"] is False


def test_limits_the_warnings_name_are_options_of_the_command_line(tmp_path):
    """The smallest group of the cell-type tests and the genes a set needs are psysc run options, which the warnings
    name instead of the Python parameters; each changes what is tested."""
    sets = psysc.datasets.gwas_gene_sets(["SCZ"])
    gs = tmp_path / "sets.gs"
    psysc.gwas.write_gs({"SCZ": sets["SCZ"], "FEW": sets["SCZ"].iloc[:3]}, gs)
    out = tmp_path / "out"
    rc, err = _run(["run", "--quick", "--gene-sets", str(gs), "--min-cells-per-group", "20", "--out", str(out)])
    assert rc == 0, err
    assert "FEW (3 genes) (--min-genes sets the limit)" in err and "min_genes=" not in err
    assert "lower --min-cells-per-group to keep them" in err and "min_cells_per_group" not in err
    celltype = pd.read_csv(out / "celltype_enrichment.tsv", sep="\t")
    sizes = psysc.datasets.darmanis2015().obs["cell_type"].value_counts()
    assert set(celltype["group"]) == set(sizes[sizes >= 20].index)  # OPC (18) and microglia (16) left out
    params = json.loads((out / "summary.json").read_text())["parameters"]
    assert params["celltype_min_cells"] == 20 and params["min_genes"] == 10
    report = (out / "report.html").read_text()
    assert "Groups with fewer than 20 cells are left" in report
    # the report and summary.json word the warnings as the log does, with the options of the command line
    assert "--min-genes sets the limit" in report and "min_genes=" not in report
    assert any("--min-cells-per-group" in w for w in json.loads((out / "summary.json").read_text())["warnings"])
    rc, err = _run(["run", "--quick", "--gene-sets", str(gs), "--min-genes", "3", "--out", str(tmp_path / "o3")])
    assert rc == 0, err
    assert set(pd.read_csv(tmp_path / "o3" / "enrichment.tsv", sep="\t")["trait"]) == {"SCZ", "FEW"}
    for bad, message in ((["--min-genes", "0"], "--min-genes must be at least 1"),
                         (["--min-cells-per-group", "1"], "--min-cells-per-group must be at least 2")):
        rc, err = _run(["run", "--quick", *bad, "--out", str(tmp_path / "bad")])
        assert rc == 2 and message in err


def test_data_named_mostly_by_ensembl_ids_is_warned_with_the_options_that_fix_it(tmp_path, darmanis):
    """var_names of Ensembl IDs where a gene has one (symbols elsewhere), symbols in var['feature_name']: the run
    goes on with few genes, and its warnings name --gene-symbols, and seismic's filters as Python's, not as options."""
    adata = darmanis.copy()
    symbols = adata.var_names.to_numpy().astype(str)
    ids = adata.var["gene_ids"].astype(str).to_numpy()
    adata.var["feature_name"] = symbols
    adata.var_names = [i if i.startswith("ENSG") else s for i, s in zip(ids, symbols, strict=True)]
    adata.var_names_make_unique()
    path = tmp_path / "ensembl.h5ad"
    adata.write_h5ad(path)
    rc, log = _run(["run", "--quick", "--input", str(path), "--traits", "SCZ,AD", "--out", str(tmp_path / "o")])
    assert rc == 0, log
    assert "SCZ: only" in log and "psysc run --gene-symbols feature_name does it" in log
    assert "in Python, lower min_cells_expressed / min_mean of psysc.tl.celltype_enrichment" in log
    rc, log = _run(["run", "--quick", "--input", str(path), "--traits", "SCZ,AD", "--gene-symbols", "feature_name",
                    "--out", str(tmp_path / "o2")])
    assert rc == 0 and "SCZ: only" not in log and (tmp_path / "o2" / "celltype_enrichment.tsv").exists()
