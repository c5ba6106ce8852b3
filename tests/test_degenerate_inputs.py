"""Degenerate inputs of the scoring: cells without spread among their control scores, gene sets that cannot be
normalised or stored, missing covariates, raw counts where log-normalised values are needed, and psysc's messages."""

import copy
import logging
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import psysc
from psysc._core._scoring import correct_background, monte_carlo_pvalues


def naive_correct_and_test(raw, ctrl, var_ratio):
    """The documented rule of correct_background + monte_carlo_pvalues, written out in plain numpy."""
    raw = np.asarray(raw, np.float64)
    c0 = np.asarray(ctrl, np.float64)
    r = raw - raw.mean()
    c = (c0 - c0.mean(axis=0)) / np.sqrt(var_ratio)
    mu, sd = c.mean(axis=1), c.std(axis=1)
    flat = ~(sd > 0)
    ok = ~flat
    norm = np.full(len(raw), np.nan)
    norm[ok] = (r[ok] - mu[ok]) / sd[ok]
    cn = np.zeros_like(c)
    cn[ok] = (c[ok] - mu[ok, None]) / sd[ok, None]
    norm[ok] -= norm[ok].mean()
    cn[ok] -= cn[ok].mean(axis=0)
    cn = cn.astype(np.float32).astype(np.float64)  # the control scores are kept in float32
    lowest = min(norm[ok].min(), cn[ok].min()) if ok.any() else 0.0
    norm[raw == 0] = lowest - 1e-3
    cn[c0 == 0] = lowest
    cn[flat] = lowest
    pooled = np.ones(len(raw))
    mc = np.ones(len(raw))
    null = np.sort(cn.ravel())
    for i in np.flatnonzero(np.isfinite(norm)):
        pooled[i] = (1 + null.size - np.searchsorted(null, norm[i], side="left")) / (1 + null.size)
        mc[i] = (1 + np.sum(cn[i] >= norm[i])) / (1 + cn.shape[1])
    return norm, cn, mc, pooled


def scores_with_flat_cells(seed=0, n=300, b=40):
    """Scores where 7 cells have control scores equal to the column means, so that nothing is left of them after
    the column centring (sd 0). With real data this happens when no cell expresses any control gene (see the
    Darmanis test below); whole numbers keep the means exact here."""
    rng = np.random.default_rng(seed)
    raw = rng.gamma(2.0, 1.0, n)
    ctrl = rng.integers(0, 5, (n, b)).astype(np.float32)
    flat = np.arange(7)
    others = np.setdiff1d(np.arange(n), flat)
    ctrl[others[-1]] += 2 * len(others) - ctrl[others].sum(axis=0)  # the column means of the others are 2
    ctrl[flat] = 2.0  # ... and so of every cell
    raw[:3] = 0  # three of the flat cells express no disease gene either
    raw[10:14] = 0
    assert (ctrl.astype(np.float64).mean(axis=0) == 2.0).all()
    return raw, ctrl, rng.uniform(0.5, 2.0, b)


def test_cells_without_control_spread_match_the_naive_rule(caplog):
    raw, ctrl, var_ratio = scores_with_flat_cells()
    exp_norm, exp_ctrl, exp_mc, exp_pooled = naive_correct_and_test(raw, ctrl, var_ratio)
    got_ctrl = ctrl.copy()
    with caplog.at_level(logging.WARNING, logger="psysc"):
        norm = correct_background(raw, got_ctrl, var_ratio, trait="T")
    mc, pooled = monte_carlo_pvalues(norm, got_ctrl)
    np.testing.assert_array_equal(np.isnan(norm), np.isnan(exp_norm))
    assert np.isnan(norm).sum() == 4  # the 4 cells with a disease score but no spread among their controls
    np.testing.assert_allclose(norm, exp_norm, rtol=1e-6, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(got_ctrl, exp_ctrl, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mc, exp_mc, rtol=1e-12)
    np.testing.assert_allclose(pooled, exp_pooled, rtol=1e-12)
    assert (pooled[np.isnan(norm)] == 1).all() and (mc[np.isnan(norm)] == 1).all()
    assert "T: 7 of 300 cells have no spread among their control scores" in caplog.text
    assert "disease gene (3 cells), else NaN with p-value 1 (4 cells)" in caplog.text
    # the per-cell counts taken in correct_background's last pass (as score_disorders does) give the same p-values
    counts = np.full(len(raw), -1, dtype=np.int64)
    again = ctrl.copy()
    norm2 = correct_background(raw, again, var_ratio, trait="T", counts=counts)
    mc2, pooled2 = monte_carlo_pvalues(norm2, again, counts=counts)
    np.testing.assert_array_equal(again, got_ctrl)
    np.testing.assert_allclose(mc2, exp_mc, rtol=1e-12)
    np.testing.assert_allclose(pooled2, exp_pooled, rtol=1e-12)


def test_torch_path_treats_flat_cells_alike():
    pytest.importorskip("torch")
    from psysc._core._torch import correct_and_test_torch

    raw, ctrl, var_ratio = scores_with_flat_cells(seed=1)
    exp_norm, exp_ctrl, exp_mc, exp_pooled = naive_correct_and_test(raw, ctrl, var_ratio)
    got_ctrl = ctrl.copy()
    norm, mc, pooled = correct_and_test_torch(raw, got_ctrl, var_ratio, device="torch-cpu", trait="T")
    np.testing.assert_allclose(norm, exp_norm, rtol=1e-5, atol=1e-5, equal_nan=True)
    np.testing.assert_allclose(got_ctrl, exp_ctrl, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(mc, exp_mc, rtol=1e-12)
    np.testing.assert_allclose(pooled, exp_pooled, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("chunk_rows", [None, 7])
def test_torch_path_in_row_chunks_equals_the_compiled_path(dtype, chunk_rows):
    """The torch path works on a few cells at a time (chunk_rows; 7 cells: 43 chunks, the last one short) with the
    roundings of the compiled path: the same float32 control scores and p-values, float64 to rounding error."""
    pytest.importorskip("torch")
    from psysc._core._torch import correct_and_test_torch

    raw, ctrl, var_ratio = scores_with_flat_cells(seed=2)
    ctrl = ctrl.astype(dtype)
    ctrl[20:40] += np.random.default_rng(0).normal(size=(20, ctrl.shape[1])).astype(dtype)  # not whole numbers
    exp_ctrl = ctrl.copy()
    counts = np.empty(len(raw), dtype=np.int64)
    exp_norm = correct_background(raw, exp_ctrl, var_ratio, counts=counts)
    exp_mc, exp_pooled = monte_carlo_pvalues(exp_norm, exp_ctrl, counts=counts)
    got_ctrl = ctrl.copy()
    norm, mc, pooled = correct_and_test_torch(raw, got_ctrl, var_ratio, device="torch-cpu", chunk_rows=chunk_rows)
    np.testing.assert_array_equal(np.isnan(norm), np.isnan(exp_norm))
    np.testing.assert_allclose(norm, exp_norm, rtol=1e-12, atol=1e-12, equal_nan=True)
    if dtype == np.float32:
        np.testing.assert_array_equal(got_ctrl, exp_ctrl)
    else:
        np.testing.assert_allclose(got_ctrl, exp_ctrl, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(mc, exp_mc)
    np.testing.assert_array_equal(pooled, exp_pooled)


def test_unexpressed_gene_set_gives_p_one_like_scdrs(caplog):
    import scanpy as sc
    from _scdrs_oracle import scdrs

    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)
    unexpressed = list(adata.var_names[adata.var["psysc_mean"].to_numpy() == 0][:30])
    with caplog.at_level(logging.WARNING, logger="psysc"):
        res = psysc.tl.score_disorders(adata, {"none": unexpressed}, n_ctrl=50, rng="scdrs", inplace=False)["none"]
    assert "none: none of its 30 genes found in var_names varies across cells" in caplog.text
    assert "none: 466 of 466 cells have no spread among their control scores" in caplog.text
    assert "control gene sets have no variance" not in caplog.text  # its own genes do not vary: said once
    ref = psysc.datasets.darmanis2015()
    sc.pp.normalize_total(ref, target_sum=1e4)
    sc.pp.log1p(ref)
    scdrs.preprocess(ref)
    expected = scdrs.score_cell(ref, unexpressed, n_ctrl=50, random_seed=0, verbose=False)
    np.testing.assert_array_equal(res["pval"].to_numpy(), expected["pval"].to_numpy())
    assert (res["pval"] == 1).all() and (res["mc_pval"] == 1).all()
    assert np.isfinite(res["norm_score"]).all()


def test_gene_set_with_zero_total_weight_is_refused():
    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)
    weights = pd.Series(0.0, index=adata.var_names[1000:1050])
    with pytest.raises(ValueError, match=r"gene set 'w': the weights of its 50 genes .* sum to 0"):
        psysc.tl.score_disorders(adata, {"w": weights}, n_ctrl=10)


def test_trait_name_that_h5ad_cannot_store_is_refused(tmp_path):
    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)
    genes = list(adata.var_names[:200])
    with pytest.raises(ValueError, match=r"'SCZ/BIP' contains '/'.*'SCZ_BIP'"):
        psysc.tl.score_disorders(adata, {"SCZ/BIP": genes}, n_ctrl=10)
    # nothing is stored with inplace=False: the name is kept
    assert list(psysc.tl.score_disorders(adata, {"SCZ/BIP": genes}, n_ctrl=10, inplace=False)) == ["SCZ/BIP"]
    # the name it suggests round-trips through an h5ad file
    psysc.tl.score_disorders(adata, {"SCZ_BIP": genes}, n_ctrl=10)
    adata.write_h5ad(tmp_path / "a.h5ad")
    back = __import__("anndata").read_h5ad(tmp_path / "a.h5ad")
    np.testing.assert_array_equal(back.obs["psysc_SCZ_BIP_pval"], adata.obs["psysc_SCZ_BIP_pval"])


def test_missing_covariates_are_counted_in_the_log_and_uns(caplog):
    adata = psysc.datasets.darmanis2015()
    cov = pd.DataFrame({"n_genes": np.asarray((adata.X > 0).sum(axis=1)).ravel().astype(float)},
                       index=adata.obs_names)
    cov.iloc[:40, 0] = np.nan
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.pp.prepare_scoring(adata, covariates=cov)
    assert "covariates: 40 missing values in 40 of 466 cells filled with the column means" in caplog.text
    assert adata.uns["psysc"]["prepare_scoring"]["n_cells_covariates_filled"] == 40


def test_covariates_named_by_obs_columns_equal_the_table():
    adata = psysc.datasets.darmanis2015()
    adata.obs["n_genes"] = np.asarray((adata.X > 0).sum(axis=1)).ravel().astype(float)
    adata.obs["half"] = np.where(np.arange(adata.n_obs) % 2, "odd", "even")
    by_table = psysc.pp.prepare_scoring(adata, covariates=adata.obs[["n_genes", "half"]], copy=True)
    for keys in (["n_genes", "half"], ("n_genes", "half")):
        by_name = psysc.pp.prepare_scoring(adata, covariates=keys, copy=True)
        pd.testing.assert_frame_equal(by_name.var, by_table.var)
        np.testing.assert_array_equal(by_name.obsm["psysc_covariates"], by_table.obsm["psysc_covariates"])
    one = psysc.pp.prepare_scoring(adata, covariates="n_genes", copy=True)
    np.testing.assert_array_equal(
        one.obsm["psysc_covariates"],
        psysc.pp.prepare_scoring(adata, covariates=adata.obs[["n_genes"]], copy=True).obsm["psysc_covariates"])
    with pytest.raises(KeyError, match=r"covariates \['depth'\] are not columns of adata.obs"):
        psysc.pp.prepare_scoring(adata, covariates=["n_genes", "depth"])


def test_covariates_need_unique_cell_names():
    adata = psysc.datasets.darmanis2015()
    adata.obs_names = ["c"] * 2 + list(adata.obs_names[2:])
    cov = pd.DataFrame({"x": np.arange(adata.n_obs, dtype=float)}, index=adata.obs_names)
    with pytest.raises(ValueError, match=r"obs_names are not unique.*obs_names_make_unique"):
        psysc.pp.prepare_scoring(adata, covariates=cov)
    adata.obs_names_make_unique()
    cov = pd.DataFrame({"x": np.arange(adata.n_obs, dtype=float)}, index=list(adata.obs_names[:-1]) + ["c"])
    cov.index = list(cov.index[:-2]) + [cov.index[0], cov.index[0]]
    with pytest.raises(ValueError, match=r"duplicated cell names"):
        psysc.pp.prepare_scoring(adata, covariates=cov)


def test_celltype_specificity_refuses_raw_counts():
    adata = psysc.datasets.darmanis2015()  # raw counts in X, no prepare_scoring yet
    with pytest.raises(ValueError, match=r"adata.X looks like raw counts.*psysc.pp.prepare_scoring"):
        psysc.tl.celltype_specificity(adata, "cell_type")
    # prepared under another key: its layer is named, and both fixes it names work
    other = adata.copy()
    psysc.pp.prepare_scoring(other, key_added="run1")
    with pytest.raises(ValueError, match=r"raw counts.*pass layer='run1_norm'.*or key_added='run1'"):
        psysc.tl.celltype_specificity(other, "cell_type", min_cells_per_group=10)
    by_layer = psysc.tl.celltype_specificity(other, "cell_type", layer="run1_norm", min_cells_per_group=10,
                                             inplace=False)
    psysc.tl.celltype_specificity(other, "cell_type", key_added="run1", min_cells_per_group=10)
    stored = psysc.tl.specificity_table(other, key="run1")
    pd.testing.assert_frame_equal(stored.loc[by_layer.index, by_layer.columns], by_layer, check_names=False)
    psysc.pp.prepare_scoring(adata)
    psysc.tl.celltype_specificity(adata, "cell_type", min_cells_per_group=10)


def test_celltype_specificity_refuses_scaled_and_unlogged_values():
    """Scaled values (sc.pp.scale) made HEIGHT 'enriched' in astrocytes over a sixth of the genes, and CPM or
    non-integer counts passed unnoticed: each is refused, naming the fix."""
    import scanpy as sc

    base = psysc.datasets.darmanis2015()
    base.layers["counts"] = base.X.copy()
    sc.pp.normalize_total(base, target_sum=1e4)
    sc.pp.log1p(base)
    scaled = base.copy()
    sc.pp.scale(scaled, max_value=10)
    cpm = base.copy()
    cpm.X = sc.pp.normalize_total(base, target_sum=1e6, layer="counts", inplace=False)["X"]
    fractional = base.copy()
    fractional.X = base.layers["counts"].astype(np.float32)
    fractional.X.data += 0.5
    empty = base.copy()
    empty.X = None
    for adata, message in ((scaled, r"adata.X holds negative values .* looks scaled or centred .*adata.raw"),
                           (cpm, r"adata.X reaches .*: it is not log-transformed \(CPM/TPM"),
                           (fractional, r"adata.X reaches .*: it is not log-transformed"),
                           (empty, r"adata.X is None: name the layer")):
        with pytest.raises(ValueError, match=message):
            psysc.tl.celltype_specificity(adata, "cell_type", min_cells_per_group=10)
    psysc.tl.celltype_specificity(base, "cell_type", min_cells_per_group=10)  # log-normalised X


CODE = """
import logging, sys
if sys.argv[1] == "configured":
    logging.basicConfig(stream=sys.stdout, format="app: %(message)s")
import psysc
adata = psysc.datasets.darmanis2015()
psysc.pp.prepare_scoring(adata)
"""


@pytest.mark.parametrize("mode", ["plain", "configured"])
def test_messages_are_printed_once(mode):
    out = subprocess.run([sys.executable, "-c", CODE, mode], capture_output=True, text=True, check=True)
    line = "added layers['psysc_norm']"
    if mode == "plain":  # no logging set up by the application: psysc prints its messages on stderr
        assert out.stderr.count(line) == 1
    else:  # the application's handler prints them (through propagation), psysc's own handler stays silent
        assert line not in out.stderr
        assert out.stdout.count(f"app: {line}") == 1


def test_provenance_of_several_calls_is_kept(tmp_path):
    import anndata
    import scanpy as sc

    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)
    sc.pp.pca(adata, layer="psysc_norm", n_comps=10)
    sc.pp.neighbors(adata)
    sets = psysc.datasets.gwas_gene_sets(["SCZ", "AD"])
    psysc.tl.score_disorders(adata, {"SCZ": sets["SCZ"]}, n_ctrl=30, seed=1)
    psysc.tl.score_disorders(adata, {"AD": sets["AD"]}, n_ctrl=20, seed=2)
    adata.obs["half"] = pd.Categorical(np.where(np.arange(adata.n_obs) % 2, "odd", "even"))
    psysc.tl.disorder_enrichment(adata, groupby="cell_type")
    psysc.tl.disorder_enrichment(adata, groupby="half")
    adata.write_h5ad(tmp_path / "a.h5ad")
    ns = anndata.read_h5ad(tmp_path / "a.h5ad").uns["psysc"]
    by_trait = ns["score_disorders"]["params_by_trait"]
    assert (by_trait["SCZ"]["n_ctrl"], by_trait["SCZ"]["seed"]) == (30, 1)
    assert (by_trait["AD"]["n_ctrl"], by_trait["AD"]["seed"]) == (20, 2)
    assert sorted(ns["score_disorders"]["traits"]) == ["AD", "SCZ"]
    assert ns["enrichment_params"]["groupby"] == "half"
    by_group = ns["enrichment_by_groupby"]
    assert set(by_group["cell_type"]["table"]["group"]) == set(adata.obs["cell_type"])
    assert set(by_group["half"]["table"]["group"]) == {"odd", "even"}
    assert "date" in ns["prepare_scoring"] and "psysc_version" in ns["prepare_scoring"]


def test_no_overlap_error_points_at_a_case_mismatch():
    adata = psysc.datasets.darmanis2015()
    adata.var_names = adata.var_names.str.lower()
    psysc.pp.prepare_scoring(adata)
    sets = psysc.datasets.gwas_gene_sets(["SCZ"])
    expected = len({g.upper() for g in sets["SCZ"].index} & {g.upper() for g in adata.var_names})
    with pytest.raises(ValueError, match=rf"0 matches.* {expected} gene-set genes match var_names when upper and "
                                         "lower case are ignored"):
        psysc.tl.score_disorders(adata, sets, n_ctrl=10)


def test_no_overlap_error_names_the_column_of_gene_symbols_and_both_fixes_work(tmp_path):
    from psysc._genesets import SYMBOLS_AS_VAR_NAMES

    adata = psysc.datasets.darmanis2015()
    adata = adata[:, adata.var["gene_ids"] != ""].copy()
    adata.var["gene_symbols"] = pd.Categorical(adata.var_names.astype(str))  # as CELLxGENE's feature_name
    adata.var_names = adata.var["gene_ids"].astype(str)
    adata.var_names_make_unique()
    psysc.pp.prepare_scoring(adata)
    sets = psysc.datasets.gwas_gene_sets(["SCZ"])
    with pytest.raises(ValueError, match=r"adata.var\['gene_symbols'\] holds gene symbols: use them as var_names .*"
                                         r"psysc.gwas.to_ensembl\(gene_sets\)") as err:
        psysc.tl.score_disorders(adata, sets, n_ctrl=10)
    by_id = psysc.tl.score_disorders(adata, psysc.gwas.to_ensembl(sets), n_ctrl=10, inplace=False)["SCZ"]
    assert by_id["norm_score"].notna().all()
    # the code the message gives, run as written: the AnnData can be written again (for psysc run)
    code = SYMBOLS_AS_VAR_NAMES.format(col="gene_symbols")
    assert code in str(err.value)
    scope = {"adata": adata}
    exec(code, scope)
    adata = scope["adata"]
    adata.write_h5ad(tmp_path / "symbols.h5ad")
    psysc.pp.prepare_scoring(adata)
    by_symbol = psysc.tl.score_disorders(adata, sets, n_ctrl=10, inplace=False)["SCZ"]
    assert by_symbol["norm_score"].notna().all()


def test_ensembl_gene_sets_on_symbol_var_names_are_told_the_ensembl_column_and_to_symbols():
    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)
    sets = psysc.gwas.to_ensembl(psysc.datasets.gwas_gene_sets(["SCZ"]))
    with pytest.raises(ValueError, match=r"psysc.gwas.to_symbols\(gene_sets\), or use the Ensembl IDs of "
                                         r"adata.var\['gene_ids'\] as var_names") as err:
        psysc.tl.score_disorders(adata, sets, n_ctrl=10)
    assert "set var_names from a symbol column" not in str(err.value)  # they are symbols already
    back = psysc.tl.score_disorders(adata, psysc.gwas.to_symbols(sets), n_ctrl=10, inplace=False)["SCZ"]
    assert back["norm_score"].notna().all()


def test_no_overlap_error_points_at_version_suffixes_on_either_side():
    adata = psysc.datasets.darmanis2015()
    adata = adata[:, adata.var["gene_ids"].str.startswith("ENSG")].copy()
    adata.var_names = adata.var["gene_ids"].astype(str).to_numpy()
    psysc.pp.prepare_scoring(adata)
    versioned = [f"{g}.7" for g in adata.var_names[:300]]
    with pytest.raises(ValueError, match=r"0 matches.*the gene sets carry Ensembl version suffixes"):
        psysc.tl.score_disorders(adata, {"T": versioned}, n_ctrl=10)
    adata.var_names = [f"{g}.3" for g in adata.var_names]
    with pytest.raises(ValueError, match=r"0 matches.*var_names carry Ensembl version suffixes") as err:
        psysc.tl.score_disorders(adata, {"T": [g.split(".")[0] for g in versioned]}, n_ctrl=10)
    # Ensembl IDs on both sides: no advice to map the gene sets to Ensembl IDs, nor the data to symbols
    assert "to_ensembl" not in str(err.value) and "symbols" not in str(err.value)


def test_no_overlap_error_points_at_magma_entrez_ids():
    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)
    entrez = {"AD": pd.Series(1.0, index=["348", "54209", "1191", "274", "5663"])}
    with pytest.raises(ValueError, match=r"0 matches.*Entrez-like numbers.*read_magma\(path, gene_loc=\.\.\.\)"):
        psysc.tl.score_disorders(adata, entrez, n_ctrl=10)


def test_a_trait_left_out_for_its_spelling_is_told_why(caplog):
    """One set matches, the other differs in case only: the skipped one gets the case hint, not only min_genes."""
    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)
    genes = list(adata.var_names[:300])
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.tl.score_disorders(adata, {"OK": genes, "LOW": [g.lower() for g in genes]}, n_ctrl=10)
    assert "psysc_OK_norm_score" in adata.obs and "psysc_LOW_norm_score" not in adata.obs
    n_case = sum(g.lower() != g for g in genes)  # names with letters: lower-casing changes them
    assert f"LOW: only {300 - n_case} of 300 genes found in the data" in caplog.text
    assert f"{n_case} gene-set genes match var_names when upper and lower case are ignored" in caplog.text


def test_a_column_of_gene_names_is_a_gene_list():
    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)
    table = pd.DataFrame({"gene": adata.var_names[:200].to_numpy()})  # e.g. pd.read_csv of a gene list
    got = psysc.tl.score_disorders(adata, {"T": table["gene"]}, n_ctrl=10, inplace=False)["T"]
    want = psysc.tl.score_disorders(adata, {"T": list(table["gene"])}, n_ctrl=10, inplace=False)["T"]
    pd.testing.assert_frame_equal(got, want)
    with pytest.raises(TypeError, match=r"Series of names .* a list of genes is passed as a list"):
        psysc.tl.score_disorders(adata, {"T": table["gene"].set_axis(table["gene"])}, n_ctrl=10)
    # weights read as text (pd.read_csv(dtype=str)) are weights
    as_text = pd.Series(np.linspace(1, 5, 200).astype(str), index=table["gene"].to_numpy())
    got = psysc.tl.score_disorders(adata, {"T": as_text}, n_ctrl=10, inplace=False)["T"]
    want = psysc.tl.score_disorders(adata, {"T": as_text.astype(float)}, n_ctrl=10, inplace=False)["T"]
    pd.testing.assert_frame_equal(got, want)
    # a MAGMA-like table read with pandas: genes in a GENE column, not the index
    magma = pd.DataFrame({"GENE": adata.var_names[:200].to_numpy(), "ZSTAT": np.linspace(1, 5, 200)})
    got = psysc.tl.score_disorders(adata, {"T": magma}, n_ctrl=10, inplace=False)["T"]
    want = psysc.tl.score_disorders(adata, {"T": magma.set_index("GENE")["ZSTAT"]}, n_ctrl=10, inplace=False)["T"]
    pd.testing.assert_frame_equal(got, want)


def test_categorical_and_boolean_columns_are_gene_sets(caplog):
    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)
    genes = list(adata.var_names[:300])
    want = psysc.tl.score_disorders(adata, {"T": genes[:200]}, n_ctrl=10, inplace=False)["T"]
    # a categorical column of names (pd.read_csv(dtype="category"), an obs-like table)
    names = pd.Series(genes[:200], dtype="category")
    got = psysc.tl.score_disorders(adata, {"T": names}, n_ctrl=10, inplace=False)["T"]
    pd.testing.assert_frame_equal(got, want)
    # a column of a genes x traits membership table: the genes marked True, weight 1 (not False as weight 0)
    member = pd.Series(np.arange(300) < 200, index=genes)
    with caplog.at_level(logging.INFO, logger="psysc"):
        got = psysc.tl.score_disorders(adata, {"T": member}, n_ctrl=10, inplace=False)["T"]
    pd.testing.assert_frame_equal(got, want)
    assert "the set of its 200 genes marked True (weight 1); 100 marked False or missing left out" in caplog.text
    nullable = member.astype("boolean")
    nullable.iloc[250] = pd.NA
    got = psysc.tl.score_disorders(adata, {"T": nullable}, n_ctrl=10, inplace=False)["T"]
    pd.testing.assert_frame_equal(got, want)
    # categorical weights are weights
    weights = pd.Series(pd.Categorical(np.repeat([1.0, 2.0], 100)), index=genes[:200])
    got = psysc.tl.score_disorders(adata, {"T": weights}, n_ctrl=10, inplace=False)["T"]
    want = psysc.tl.score_disorders(adata, {"T": weights.astype(float)}, n_ctrl=10, inplace=False)["T"]
    pd.testing.assert_frame_equal(got, want)


def test_a_trait_scored_by_a_later_call_leaves_the_skipped_list():
    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)
    with pytest.raises(ValueError):  # the only trait has too few genes: nothing is scored
        psysc.tl.score_disorders(adata, {"T": list(adata.var_names[:5])}, n_ctrl=10)
    psysc.tl.score_disorders(adata, {"T": list(adata.var_names[:5]), "U": list(adata.var_names[:300])}, n_ctrl=10)
    assert adata.uns["psysc"]["score_disorders"]["skipped"] == {"T": 5}
    psysc.tl.score_disorders(adata, {"T": list(adata.var_names[:300])}, n_ctrl=10)
    assert adata.uns["psysc"]["score_disorders"]["skipped"] == {}
    assert sorted(adata.uns["psysc"]["score_disorders"]["traits"]) == ["T", "U"]


@pytest.mark.parametrize("n_ctrl", [0, 1, 20.0, True])
def test_n_ctrl_must_be_a_whole_number_of_at_least_two(n_ctrl):
    adata = psysc.datasets.darmanis2015()[:50].copy()
    psysc.pp.prepare_scoring(adata)
    with pytest.raises(ValueError, match="at least 2"):
        psysc.tl.score_disorders(adata, {"T": list(adata.var_names[:300])}, n_ctrl=n_ctrl)


def test_group_tests_leave_out_cells_without_a_score_and_keep_the_category_order(caplog):
    """Cells with an undefined (NaN) score are left out of the group tests (a NaN quantile used to count no control
    set above it: the smallest p-value); groups follow the categories, or numeric order for cluster numbers."""
    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)
    psysc.tl.score_disorders(adata, psysc.datasets.gwas_gene_sets(["SCZ"]), n_ctrl=50)
    norm = adata.obs["psysc_SCZ_norm_score"].to_numpy().copy()
    ctrl = adata.obsm["psysc_SCZ_ctrl_norm_score"]
    neurons = np.flatnonzero(adata.obs["cell_type"].to_numpy() == "neurons")
    norm[neurons[:40]] = np.nan
    adata.obs["psysc_SCZ_norm_score"] = norm
    with caplog.at_level(logging.WARNING, logger="psysc"):
        t = psysc.tl.disorder_enrichment(adata, groupby="cell_type", use_graph=None, inplace=False)
    assert "40 cells have no normalised score" in caplog.text
    row = t.set_index("group").loc["neurons"]
    keep = neurons[40:]
    v = norm[keep].astype(np.float32)
    q_ctrl = np.quantile(np.asarray(ctrl, np.float32)[keep], 0.95, axis=0)
    want = (np.sum(q_ctrl >= np.quantile(v, 0.95)) + 1) / (ctrl.shape[1] + 1)
    assert row["assoc_pval"] == pytest.approx(want) and row["n_cells"] == len(neurons)
    assert list(t["group"]) == list(adata.obs["cell_type"].cat.categories)
    adata.obs["cluster"] = (np.arange(adata.n_obs) % 12).astype(str)  # plain strings "0".."11"
    t = psysc.tl.disorder_enrichment(adata, groupby="cluster", traits="SCZ", use_graph=None, inplace=False)
    assert list(t["group"]) == [str(i) for i in range(12)]
    # integer clusters stored as floats because some cells have none: "5", as psysc run writes them, not "5.0"
    clusters = (np.arange(adata.n_obs) % 3 * 5).astype(float)
    clusters[:7] = np.nan
    adata.obs["leiden_f"] = clusters
    t = psysc.tl.disorder_enrichment(adata, groupby="leiden_f", traits="SCZ", use_graph=None, inplace=False)
    assert list(t["group"]) == ["0", "5", "10"] and t["n_cells"].sum() == adata.n_obs - 7
    spec = psysc.tl.celltype_specificity(adata, "leiden_f", inplace=False)
    assert list(spec.columns) == ["0", "5", "10"]


def test_tiny_groups_and_missing_values_written_as_text_are_warned_about(caplog):
    """Groups of a few cells and a 'nan' text label (a NaN turned into text) are tested, each with a warning."""
    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)
    psysc.tl.score_disorders(adata, psysc.datasets.gwas_gene_sets(["SCZ"]), n_ctrl=50)
    labels = adata.obs["cell_type"].astype(object).to_numpy().copy()
    labels[:2] = "singleton"  # a group of 2 cells
    labels[5:30] = np.nan
    adata.obs["typed"] = pd.Series(labels, index=adata.obs_names).astype(str)  # NaN -> "nan"
    with caplog.at_level(logging.WARNING, logger="psysc"):
        t = psysc.tl.disorder_enrichment(adata, groupby="typed", use_graph=None, inplace=False)
    sizes = t.set_index("group")["n_cells"]
    assert sizes["singleton"] == 2 and sizes["nan"] == 25  # tested, not dropped
    small = sorted(f"'{g}' ({n})" for g, n in sizes.items() if n < 10)
    assert small == ["'singleton' (2)"]
    assert "1 group(s) of 'typed' have fewer than 10 cells: 'singleton' (2)" in caplog.text
    assert "obs['typed'] has label(s) 'nan', text that reads as a missing value" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.tl.disorder_enrichment(adata, groupby="cell_type", use_graph=None, inplace=False)
    assert "fewer than" not in caplog.text and "missing value" not in caplog.text  # Darmanis: 16 cells and more


def test_partial_overlap_and_stale_results_are_warned_about(caplog):
    adata = psysc.datasets.darmanis2015()
    hvg = adata[:, :3000].copy()  # as if only some genes had been kept
    psysc.pp.prepare_scoring(hvg)
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.tl.score_disorders(hvg, psysc.datasets.gwas_gene_sets(["SCZ"]), n_ctrl=10)
    sc_genes = psysc.datasets.gwas_gene_sets(["SCZ"])["SCZ"].index
    n_found = int(sc_genes.isin(hvg.var_names).sum())
    assert f"SCZ: only {n_found} of {len(sc_genes)} genes found" in caplog.text and "gene-filtered" in caplog.text

    psysc.pp.prepare_scoring(adata)
    psysc.tl.score_disorders(adata, {"T": list(adata.var_names[:300])}, n_ctrl=10)
    psysc.tl.disorder_enrichment(adata, groupby="cell_type", use_graph=None)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.tl.score_disorders(adata, {"T": list(adata.var_names[:5]), "U": list(adata.var_names[:300])}, n_ctrl=10)
    assert "T not re-scored" in caplog.text and "earlier call stay" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.tl.score_disorders(adata, {"T": list(adata.var_names[:200])}, n_ctrl=10)
    assert "computed from earlier scores of T" in caplog.text
    # the tables of every grouping are named, not only the last one's
    adata.obs["half"] = pd.Categorical(np.where(np.arange(adata.n_obs) % 2, "odd", "even"))
    psysc.tl.disorder_enrichment(adata, groupby="half", use_graph=None)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.tl.score_disorders(adata, {"T": list(adata.var_names[:250])}, n_ctrl=10)
    assert ("uns['psysc']['enrichment'] and uns['psysc']['enrichment_by_groupby']['cell_type'] and "
            "uns['psysc']['enrichment_by_groupby']['half'] were computed from earlier scores of T") in caplog.text
    # the cell-type level test, after a new specificity; not when celltype_enrichment computes one itself
    gs = {"T": pd.Series(1.0, index=adata.var_names[:300])}
    psysc.tl.celltype_enrichment(adata, gs, groupby="cell_type", min_cells_per_group=10)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.tl.celltype_enrichment(adata, gs, groupby="half", min_cells_per_group=10)
    assert "computed from the specificity before" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.tl.celltype_specificity(adata, "cell_type", min_cells_per_group=10)
    assert ("uns['psysc']['celltype_enrichment'] was computed from the specificity before this one (groupby 'half'): "
            "run psysc.tl.celltype_enrichment again") in caplog.text


def test_a_gene_set_half_in_another_id_type_is_warned_about(caplog):
    # half of the SCZ genes named by Ensembl ID, the data by symbol: that half would silently count as no risk gene
    adata = psysc.datasets.darmanis2015()
    sc = psysc.datasets.gwas_gene_sets(["SCZ"])["SCZ"]
    sc = sc[sc.index.isin(adata.var_names)]
    ids = adata.var["gene_ids"].reindex(sc.index)
    swap = (np.arange(len(sc)) % 3 != 0) & (ids != "").to_numpy()  # two thirds become Ensembl IDs
    mixed = pd.Series(sc.to_numpy(), index=np.where(swap, ids, sc.index))
    n_symbols = int((~swap).sum())
    psysc.pp.prepare_scoring(adata)
    for run in (lambda: psysc.tl.score_disorders(adata, {"SCZ": mixed}, n_ctrl=10),
                lambda: psysc.tl.celltype_enrichment(adata, {"SCZ": mixed}, groupby="cell_type", method="seismic",
                                                     min_cells_per_group=10, inplace=False)):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="psysc"):
            run()
        assert f"SCZ: only {n_symbols} of {len(mixed)} genes found" in caplog.text
        assert "named differently" in caplog.text and "Ensembl" in caplog.text


def _same(a, b) -> bool:
    if isinstance(a, pd.DataFrame | pd.Series):
        return isinstance(b, type(a)) and a.equals(b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and bool((a == b).all())
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def test_results_written_on_a_view_never_reach_its_parent():
    from anndata import ImplicitModificationWarning

    adata = psysc.datasets.darmanis2015()
    gs = psysc.datasets.gwas_gene_sets(["SCZ", "HEIGHT"])
    psysc.pp.prepare_scoring(adata)
    psysc.tl.score_disorders(adata, gs, n_ctrl=20)
    psysc.tl.disorder_enrichment(adata, groupby="cell_type", use_graph=None)
    kw = {"groupby": "cell_type", "min_cells_per_group": 10}
    psysc.tl.celltype_enrichment(adata, gs, method="seismic", **kw)
    before = copy.deepcopy(dict(adata.uns["psysc"]))
    two = adata.obs["cell_type"].isin(["neurons", "astrocytes"]).to_numpy()
    steps = {
        "prepare_scoring": lambda v: psysc.pp.prepare_scoring(v, layer="psysc_norm", n_mean_bin=5, n_var_bin=5),
        "disorder_enrichment": lambda v: psysc.tl.disorder_enrichment(v, groupby="cell_type", use_graph=None),
        "celltype_enrichment": lambda v: psysc.tl.celltype_enrichment(v, gs, method="seismic", **kw),
        "disorder_contrast": lambda v: psysc.tl.disorder_contrast(v, gs, contrasts=[("SCZ", "HEIGHT")], **kw),
        # the subset's own tables first: those of the parent were computed on other cells, and are refused
        "combine_evidence": lambda v: (psysc.tl.disorder_enrichment(v, groupby="cell_type", use_graph=None),
                                       psysc.tl.celltype_enrichment(v, gs, method="seismic", **kw),
                                       psysc.tl.combine_evidence(v)),
    }
    for name, step in steps.items():
        view = adata[two]
        with pytest.warns(ImplicitModificationWarning):
            step(view)
        assert not view.is_view, name
        assert _same(dict(adata.uns["psysc"]), before), f"{name} wrote into the parent"
    # the subset's own provenance describes the subset
    view = adata[two]
    with pytest.warns(ImplicitModificationWarning):
        psysc.pp.prepare_scoring(view, layer="psysc_norm", n_mean_bin=5, n_var_bin=5)
    assert view.uns["psysc"]["prepare_scoring"]["n_mean_bin"] == 5
    assert adata.uns["psysc"]["prepare_scoring"]["n_mean_bin"] == 20


def test_views_of_a_backed_anndata_are_refused_where_results_would_be_written(tmp_path):
    """anndata cannot copy a view of a backed AnnData into memory by itself: each writing step says so first, with
    the fix; the steps that only return results read the view."""
    import anndata
    import scanpy as sc

    adata = psysc.datasets.darmanis2015()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    adata.write_h5ad(tmp_path / "log.h5ad")
    backed = anndata.read_h5ad(tmp_path / "log.h5ad", backed="r")
    view = backed[backed.obs["cell_type"] != "hybrid"]
    gs = psysc.datasets.gwas_gene_sets(["SCZ", "AD"])
    steps = (lambda v: psysc.pp.prepare_scoring(v),
             lambda v: psysc.tl.celltype_specificity(v, "cell_type", min_cells_per_group=10),
             lambda v: psysc.tl.celltype_enrichment(v, gs, groupby="cell_type", min_cells_per_group=10),
             lambda v: psysc.tl.disorder_contrast(v, gs, groupby="cell_type", contrasts=[("SCZ", "AD")],
                                                  min_cells_per_group=10),
             lambda v: psysc.tl.combine_evidence(v))
    for step in steps:
        with pytest.raises(ValueError, match=r"view of an AnnData opened in backed mode.*\.to_memory\(\)") as err:
            step(view)
        # prepare_scoring has no option that returns its results instead: the message offers none
        assert ("inplace=False" in str(err.value)) == (step is not steps[0])
    spec = psysc.tl.celltype_specificity(view, "cell_type", min_cells_per_group=10, inplace=False)
    mem = view.to_memory()
    want = psysc.tl.celltype_specificity(mem, "cell_type", min_cells_per_group=10, inplace=False)
    pd.testing.assert_frame_equal(spec, want)


def test_nothing_to_test_and_multimodal_containers_are_clear_errors():
    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)
    psysc.tl.score_disorders(adata, psysc.datasets.gwas_gene_sets(["SCZ"]), n_ctrl=10)
    with pytest.raises(ValueError, match="no trait to test"):
        psysc.tl.disorder_enrichment(adata, groupby="cell_type", traits=[], use_graph=None)
    adata.obs["unlabelled"] = pd.Categorical([None] * adata.n_obs, categories=["a"])
    with pytest.raises(ValueError, match="has no label"):
        psysc.tl.disorder_enrichment(adata, groupby="unlabelled", use_graph=None)

    class MuDataLike:  # what psysc sees of a MuData: modalities in .mod, not an AnnData
        def __init__(self, rna):
            self.mod = {"rna": rna}

    mdata = MuDataLike(psysc.datasets.darmanis2015())
    gs = psysc.datasets.gwas_gene_sets(["SCZ"])
    for step in (lambda: psysc.pp.prepare_scoring(mdata),
                 lambda: psysc.tl.score_disorders(mdata, gs),
                 lambda: psysc.tl.celltype_specificity(mdata, "cell_type"),
                 lambda: psysc.tl.celltype_enrichment(mdata, gs, groupby="cell_type")):
        with pytest.raises(TypeError, match=r"MuData with modalities \['rna'\].*mdata\['rna'\]"):
            step()


def test_groupby_names_with_a_slash_are_stored_under_a_writable_key(tmp_path):
    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)
    psysc.tl.score_disorders(adata, psysc.datasets.gwas_gene_sets(["SCZ"]), n_ctrl=10)
    adata.obs["type_a"] = adata.obs["cell_type"]
    adata.obs["type/b"] = adata.obs["cell_type"]  # anndata only warns for a "/" in a column name
    adata.obs["type_b"] = adata.obs["cell_type"]
    for by in ("type_a", "type/b", "type_b"):
        psysc.tl.disorder_enrichment(adata, groupby=by, use_graph=None)
    kept = adata.uns["psysc"]["enrichment_by_groupby"]
    assert len(kept) == 3  # "type/b" and "type_b" each keep their own table
    assert {entry["params"]["groupby"] for entry in kept.values()} == {"type_a", "type/b", "type_b"}
    import anndata

    adata.write_h5ad(tmp_path / "a.h5ad")
    back = anndata.read_h5ad(tmp_path / "a.h5ad").uns["psysc"]["enrichment_by_groupby"]
    assert {entry["params"]["groupby"] for entry in back.values()} == {"type_a", "type/b", "type_b"}


def test_a_gene_set_that_fills_its_bins_with_equal_weights_is_refused():
    """Every control set would be the set itself (scDRS gives p-values from rounding noise there): a clear error;
    the same genes with unequal weights, or one gene fewer, still have a null and are scored."""
    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)
    bins = adata.var["psysc_mean_var"]
    counts = bins.value_counts()
    label = counts.index[len(counts) // 2]
    genes = list(bins.index[bins == label])
    with pytest.raises(ValueError, match="every matched control set is the gene set itself"):
        psysc.tl.score_disorders(adata, {"x": genes}, n_ctrl=20, inplace=False)
    weighted = pd.Series(np.linspace(1, 3, len(genes)), index=genes)
    out = psysc.tl.score_disorders(adata, {"x": weighted, "y": genes[1:]}, n_ctrl=20, inplace=False)
    assert all(np.isfinite(df["norm_score"]).mean() > 0.5 for df in out.values())


def test_a_lower_case_gene_set_is_told_to_change_its_own_case():
    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)
    sets = {t: s.rename(index=str.lower) for t, s in psysc.datasets.gwas_gene_sets(["SCZ"]).items()}
    with pytest.raises(ValueError, match=r"spell the gene sets as var_names do"):
        psysc.tl.score_disorders(adata, sets, n_ctrl=10)


def test_arguments_of_the_wrong_kind_are_clear_errors(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from anndata import AnnData

    adata = psysc.datasets.darmanis2015()
    with pytest.raises(ValueError, match=r"adata.X is None: .*layers: \['counts'\]"):
        psysc.pp.prepare_scoring(AnnData(obs=adata.obs, var=adata.var, layers={"counts": adata.X}))
    with pytest.raises(ValueError, match="1 cell: .*at least 2 cells"):
        psysc.pp.prepare_scoring(adata[:1].copy())
    psysc.pp.prepare_scoring(adata)
    sets = psysc.datasets.gwas_gene_sets(["SCZ", "AD"])
    for seed in (1.5, -1, 2**32, True):
        with pytest.raises(ValueError, match="seed must be a whole number"):
            psysc.tl.score_disorders(adata, sets, n_ctrl=10, seed=seed)
    for dtype in (None, "float16", "floot32", np.int32, [1]):  # None is not NumPy's float64 here
        with pytest.raises(ValueError, match=r"dtype must be 'float32' \(default\) or 'float64'"):
            psysc.tl.score_disorders(adata, sets, n_ctrl=10, dtype=dtype)
    # genes of the data's kind that it lacks, named by NumPy strings: printed as plain names, and no identifier hint
    with pytest.raises(ValueError, match=r"Gene sets start with \['NOTAGENE1', 'NOTAGENE2'\].*both look like human-like"
                       r" symbols: these genes are not in the data") as err:
        psysc.tl.score_disorders(adata, {"t": list(np.array(["NOTAGENE1", "NOTAGENE2"]))}, n_ctrl=10)
    assert "np.str_" not in str(err.value)
    with pytest.raises(TypeError, match=r"gene_sets is a path .*psysc.gwas.read_gs"):
        psysc.tl.score_disorders(adata, str(tmp_path / "sets.gs"), n_ctrl=10)
    with pytest.raises(TypeError, match=r"table without a ZSTAT column: .*table\[trait\].dropna\(\)"):
        psysc.tl.score_disorders(adata, pd.DataFrame({"SCZ": sets["SCZ"]}), n_ctrl=10)
    psysc.tl.score_disorders(adata, sets, n_ctrl=20)
    with pytest.raises(TypeError, match="groupby must be the name of one column"):
        psysc.tl.disorder_enrichment(adata, groupby=["cell_type", "stage"], use_graph=None)
    with pytest.raises(TypeError, match="trait is the name of one trait"):
        psysc.pl.scores(adata, ["SCZ", "AD"], show=False)
    with pytest.raises(TypeError, match="sets the colour from trait"):
        psysc.pl.scores(adata, "SCZ", color="cell_type", show=False)
    del adata.obsm["psysc_AD_ctrl_norm_score"]
    with pytest.raises(KeyError, match=r"scores of \[.*AD.*\] are no longer all in adata"):
        psysc.tl.disorder_enrichment(adata, groupby="cell_type", use_graph=None)


def test_a_lone_fdr_threshold_and_a_trait_named_twice_are_taken_as_meant():
    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)
    psysc.tl.score_disorders(adata, psysc.datasets.gwas_gene_sets(["SCZ"]), n_ctrl=20)
    table = psysc.tl.disorder_enrichment(adata, groupby="cell_type", use_graph=None, traits=["SCZ", "SCZ"],
                                         fdr_thresholds=0.1, inplace=False)
    n_groups = adata.obs["cell_type"].nunique()
    assert len(table) == n_groups and table["group"].is_unique
    assert "n_fdr_0.1" in table.columns and "n_fdr_0.05" not in table.columns
    from scipy.stats import false_discovery_control  # Benjamini-Hochberg

    fdr = false_discovery_control(adata.obs["psysc_SCZ_pval"].to_numpy(np.float64))
    counts = pd.Series(fdr < 0.1).groupby(adata.obs["cell_type"].astype(str).to_numpy()).sum()
    assert table.set_index("group")["n_fdr_0.1"].to_dict() == counts.to_dict()
    twice = psysc.tl.disorder_enrichment(adata, groupby="cell_type", use_graph=None, fdr_thresholds=(0.1, 0.1000001),
                                         inplace=False)
    assert [c for c in twice.columns if c.startswith("n_fdr")] == ["n_fdr_0.1"]
    for bad in ((2,), (0.0, 0.1), (-0.1,)):
        with pytest.raises(ValueError, match=r"fdr_thresholds must lie in \(0, 1\]"):
            psysc.tl.disorder_enrichment(adata, groupby="cell_type", use_graph=None, fdr_thresholds=bad)


def test_a_trait_given_a_number_as_name_is_found_by_that_number():
    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)
    psysc.tl.score_disorders(adata, {1: list(adata.var_names[:200])}, n_ctrl=20)
    by_number = psysc.tl.disorder_enrichment(adata, groupby="cell_type", use_graph=None, traits=[1], inplace=False)
    by_name = psysc.tl.disorder_enrichment(adata, groupby="cell_type", use_graph=None, traits=["1"], inplace=False)
    pd.testing.assert_frame_equal(by_number, by_name)
    assert set(by_number["trait"]) == {"1"}


def test_scoring_many_traits_writes_obs_without_pandas_warnings():
    import warnings

    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)
    sets = psysc.datasets.gwas_gene_sets()
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.PerformanceWarning)
        psysc.tl.score_disorders(adata, sets, n_ctrl=10)
    first = adata.obs.columns[: adata.obs.shape[1] - 6 * len(sets)].tolist()
    assert first == psysc.datasets.darmanis2015().obs.columns.tolist()  # the columns there before come first
    assert {f"psysc_{t}_pval" for t in sets} <= set(adata.obs.columns)


def test_a_distance_graph_for_the_heterogeneity_test_is_warned_about(caplog):
    import scanpy as sc

    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)
    psysc.tl.score_disorders(adata, psysc.datasets.gwas_gene_sets(["SCZ"]), n_ctrl=20)
    sc.pp.pca(adata, layer="psysc_norm", n_comps=10)
    sc.pp.neighbors(adata)
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.tl.disorder_enrichment(adata, groupby="cell_type", use_graph="connectivities")
    assert "graph of distances" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.tl.disorder_enrichment(adata, groupby="cell_type", use_graph="distances")
    assert "looks like a graph of distances" in caplog.text


def test_traits_whose_columns_would_clash_and_a_negative_min_genes_are_refused():
    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)
    genes = list(adata.var_names[:100])
    with pytest.raises(ValueError, match=r"traits 'A' and 'A_mc' would both write obs\['psysc_A_mc_pval'\]"):
        psysc.tl.score_disorders(adata, {"A": genes, "A_mc": genes}, n_ctrl=10)
    psysc.tl.score_disorders(adata, {"A": genes}, n_ctrl=10)
    before = adata.obs["psysc_A_mc_pval"].copy()
    with pytest.raises(ValueError, match="would both write"):  # with a trait scored by an earlier call
        psysc.tl.score_disorders(adata, {"A_mc": genes[::-1][:50]}, n_ctrl=10)
    pd.testing.assert_series_equal(adata.obs["psysc_A_mc_pval"], before)
    psysc.tl.score_disorders(adata, {"A": genes[:60]}, n_ctrl=10)  # re-scoring the same trait is not a clash
    # inplace=False writes no obs column: both names are scored and returned
    both = psysc.tl.score_disorders(adata, {"A": genes, "A_mc": genes}, n_ctrl=10, inplace=False)
    assert set(both) == {"A", "A_mc"}
    pd.testing.assert_frame_equal(both["A"], both["A_mc"])  # the same genes, the same control sets
    with pytest.raises(ValueError, match="min_genes must be a whole number of at least 1"):
        psysc.tl.score_disorders(adata, {"B": genes}, n_ctrl=10, min_genes=-3)


def test_a_second_key_reuses_one_preparation():
    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)  # raw counts: one normalised layer
    sets = psysc.datasets.gwas_gene_sets(["SCZ"])
    layers = set(adata.layers)
    with pytest.raises(KeyError, match=r"prepare_scoring\(adata, key_added='run2'\).*prepare_key='psysc'") as err:
        psysc.tl.score_disorders(adata, sets, n_ctrl=20, key_added="run2")
    assert "gene statistics ['run2_mean'," in str(err.value) and "[]" not in str(err.value)
    # the statistics there but their record gone: the message names what is missing
    record = adata.uns["psysc"].pop("prepare_scoring")
    with pytest.raises(KeyError, match=r"adata.uns\['psysc'\]\['prepare_scoring'\] not found: run"):
        psysc.tl.score_disorders(adata, sets, n_ctrl=20)
    adata.uns["psysc"]["prepare_scoring"] = record
    psysc.tl.score_disorders(adata, sets, n_ctrl=20, seed=3, key_added="run2", prepare_key="psysc")
    assert set(adata.layers) == layers  # nothing normalised again
    want = psysc.tl.score_disorders(adata, sets, n_ctrl=20, seed=3, inplace=False)["SCZ"]
    np.testing.assert_array_equal(adata.obs["run2_SCZ_norm_score"].to_numpy(), want["norm_score"].to_numpy(np.float32))
    assert adata.uns["run2"]["score_disorders"]["params_by_trait"]["SCZ"]["prepare_key"] == "psysc"
    table = psysc.tl.disorder_enrichment(adata, groupby="cell_type", key="run2", use_graph=None, inplace=False)
    assert set(table["trait"]) == {"SCZ"}


def test_target_sum_is_a_positive_number_of_any_numeric_type():
    adata = psysc.datasets.darmanis2015()[:60].copy()
    reference = psysc.pp.prepare_scoring(adata, copy=True)
    for value in (np.float32(1e4), np.int64(10_000), 10_000):
        other = psysc.pp.prepare_scoring(adata, target_sum=value, copy=True)
        np.testing.assert_array_equal(other.var["psysc_mean"], reference.var["psysc_mean"])
    for bad in (None, 0, -5.0, True, "1e4"):
        with pytest.raises(ValueError, match="target_sum must be a positive number"):
            psysc.pp.prepare_scoring(adata, target_sum=bad, copy=True)


def test_traits_differing_only_in_case_and_continuous_groupings():
    """A trait named in another case finds the one scored so ("scz" -> "SCZ") in the group tests, the plots and the
    contrasts; a per-cell number as groupby (genes per cell, a fractional value) is refused, cluster numbers are not."""
    import matplotlib

    matplotlib.use("Agg")
    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)
    psysc.tl.score_disorders(adata, psysc.datasets.gwas_gene_sets(["SCZ", "AD"]), n_ctrl=30)
    lower = psysc.tl.disorder_enrichment(adata, groupby="cell_type", traits=["scz"], use_graph=None, inplace=False)
    upper = psysc.tl.disorder_enrichment(adata, groupby="cell_type", traits=["SCZ"], use_graph=None, inplace=False)
    pd.testing.assert_frame_equal(lower, upper)
    with pytest.raises(KeyError, match=r"\['BIP'\] were not scored under key 'psysc'; scored traits: "
                       r"\['SCZ', 'AD'\]\"$"):
        psysc.tl.disorder_enrichment(adata, groupby="cell_type", traits=["BIP"], use_graph=None, inplace=False)
    adata.obsm["X_umap"] = np.random.default_rng(0).normal(size=(adata.n_obs, 2))
    fig = psysc.pl.scores(adata, "scz", show=False, return_fig=True)
    assert fig is not None
    # a trait scored under another key: that key is named, and passing it works
    psysc.tl.score_disorders(adata, psysc.datasets.gwas_gene_sets(["BIP"]), n_ctrl=20, key_added="run2",
                             prepare_key="psysc")
    with pytest.raises(KeyError, match=r"not scored under key 'psysc'.*'BIP' is scored under key='run2': "
                       r"pass key='run2'"):
        psysc.tl.disorder_enrichment(adata, groupby="cell_type", traits=["BIP"], use_graph=None, inplace=False)
    with pytest.raises(KeyError, match=r"'bip' is scored under key='run2': pass key='run2'"):
        psysc.pl.scores(adata, "bip", show=False)
    with pytest.raises(KeyError, match=r"no disease scores under key 'zz'; traits are scored under key='psysc'"):
        psysc.tl.disorder_enrichment(adata, groupby="cell_type", use_graph=None, key="zz")
    run2 = psysc.tl.disorder_enrichment(adata, groupby="cell_type", traits=["bip"], use_graph=None, key="run2",
                                        inplace=False)
    assert set(run2["trait"]) == {"BIP"}
    assert psysc.pl.scores(adata, "bip", key="run2", show=False, return_fig=True) is not None
    adata.obs["n_genes"] = np.asarray((adata.X > 0).sum(axis=1)).ravel()
    with pytest.raises(ValueError, match=r"obs\['n_genes'\]: it has \d+ different values .* looks continuous"):
        psysc.tl.disorder_enrichment(adata, groupby="n_genes", use_graph=None, inplace=False)
    adata.obs["depth"] = np.log1p(adata.obs["n_genes"].to_numpy()) % 3  # three values, fractional
    with pytest.raises(ValueError, match="looks continuous"):
        psysc.tl.disorder_enrichment(adata, groupby="depth", use_graph=None, inplace=False)
    adata.obs["leiden"] = np.arange(adata.n_obs) % 25  # 25 integer clusters of ~19 cells
    t = psysc.tl.disorder_enrichment(adata, groupby="leiden", traits="AD", use_graph=None, inplace=False)
    assert len(t) == 25
    gs = psysc.datasets.gwas_gene_sets(["SCZ", "AD", "HEIGHT"])
    got = psysc.tl.disorder_contrast(adata, gs, groupby="cell_type", contrasts=[("scz", "ad")], shared=[],
                                     inplace=False)
    want = psysc.tl.disorder_contrast(adata, gs, groupby="cell_type", contrasts=[("SCZ", "AD")], shared=[],
                                      inplace=False)
    pd.testing.assert_frame_equal(got, want)
    # the tables stored, then read back by a trait or contrast named in another case
    psysc.tl.disorder_enrichment(adata, groupby="cell_type", use_graph=None)
    psysc.tl.celltype_enrichment(adata, gs, groupby="cell_type")
    psysc.tl.disorder_contrast(adata, gs, groupby="cell_type", contrasts=[("SCZ", "AD")], shared=[])
    pd.testing.assert_frame_equal(psysc.tl.combine_evidence(adata, traits=["scz"], inplace=False),
                                  psysc.tl.combine_evidence(adata, traits=["SCZ"], inplace=False))
    assert set(psysc.tl.combine_evidence(adata, traits="ad", inplace=False)["trait"]) == {"AD"}
    heat = psysc.pl.enrichment_heatmap(adata, traits=["ad", "scz"], show=False, return_fig=True)
    assert [t.get_text() for t in heat.axes[0].get_yticklabels()] == ["AD", "SCZ"]
    assert psysc.pl.enrichment_dotplot(adata, traits=["scz"], show=False, return_fig=True) is not None
    bars = psysc.pl.contrast(adata, "scz - ad", show=False, return_fig=True)
    assert "SCZ - AD" in bars.axes[0].get_title() + bars.axes[0].get_xlabel()


@pytest.mark.parametrize("raw_first", [True, False])
def test_cells_mixing_raw_counts_and_normalised_values_are_refused_and_named(raw_first):
    import anndata
    import scanpy as sc

    raw = psysc.datasets.darmanis2015()
    norm = raw.copy()
    sc.pp.normalize_total(norm, target_sum=1e4)
    sc.pp.log1p(norm)
    # more cells of the first kind than the integrality check of the first rows reads (2,000): the kind of the
    # first rows alone would decide
    parts = [raw, norm] if raw_first else [norm, raw]
    first = anndata.concat([parts[0]] * 5, index_unique="-")
    mixed = anndata.concat([first, parts[1][:40]], index_unique="-")
    assert mixed.n_obs > 2_000
    counts_cells = 40 if not raw_first else first.n_obs
    with pytest.raises(ValueError, match=rf"mixes raw counts and other values: {counts_cells} cells hold whole"):
        psysc.pp.prepare_scoring(mixed)
    with pytest.raises(ValueError, match="mixes raw counts"):
        mixed.X = mixed.X.toarray()
        psysc.pp.prepare_scoring(mixed)
    psysc.pp.prepare_scoring(raw)  # one kind throughout: no complaint
    psysc.pp.prepare_scoring(norm)


def test_options_of_the_wrong_value_are_clear_errors_not_wrong_results(tmp_path):
    adata = psysc.datasets.darmanis2015()
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="n_mean_bin must be a whole number of at least 1"):
            psysc.pp.prepare_scoring(adata, n_mean_bin=bad)
    with pytest.raises(ValueError, match="n_var_bin must be a whole number"):
        psysc.pp.prepare_scoring(adata, n_var_bin=0)
    psysc.pp.prepare_scoring(adata)
    sets = psysc.datasets.gwas_gene_sets(["SCZ"])
    for bad in (0, -5):
        with pytest.raises(ValueError, match="block_size must be a whole number of at least 1"):
            psysc.tl.score_disorders(adata, sets, n_ctrl=10, block_size=bad)
    psysc.tl.score_disorders(adata, sets, n_ctrl=10)
    with pytest.raises(TypeError, match="fdr_thresholds must be numbers"):
        psysc.tl.disorder_enrichment(adata, groupby="cell_type", use_graph=None, fdr_thresholds="0.1")
    # gene names made non-unique after the preparation (e.g. symbols from a var column)
    names = adata.var_names.to_numpy().copy()
    names[1] = names[0]
    adata.var_names = names
    with pytest.raises(ValueError, match=r"1 duplicated gene names: .*var_names_make_unique"):
        psysc.tl.score_disorders(adata, sets, n_ctrl=10)


def test_n_jobs_sets_the_threads_of_the_compiled_kernels():
    import numba

    try:
        psysc.settings.n_jobs = 1
        assert numba.get_num_threads() == 1
        psysc.settings.n_jobs = None
        assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS
        with pytest.raises(ValueError, match="n_jobs must be None"):
            psysc.settings.n_jobs = 0
    finally:
        psysc.settings.n_jobs = None


def test_log1p_in_another_base_is_warned_about(caplog):
    import scanpy as sc

    adata = psysc.datasets.darmanis2015()[:120].copy()
    sc.pp.normalize_total(adata, target_sum=1e4)
    natural = adata.copy()
    sc.pp.log1p(adata, base=2)
    sc.pp.log1p(natural)
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.pp.prepare_scoring(natural)
    assert "base=" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.pp.prepare_scoring(adata)
    assert "sc.pp.log1p(base=2): adata.X holds log2(1 + x), not the natural log1p" in caplog.text


def test_control_sets_without_variance_are_named_as_the_cause(caplog):
    """Genes of a bin of hardly expressed genes: some control sets hold only constant genes (variance ratio 0), so
    no cell can be standardised; the warning says so (scDRS gives NaN scores here)."""
    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)
    var = adata.var
    in_bin = var.index[var["psysc_mean_var"] == var["psysc_mean_var"].iloc[int(np.argmin(var["psysc_var"]))]]
    varying = [g for g in in_bin if var.loc[g, "psysc_var"] > 0][:2]
    constant = [g for g in in_bin if var.loc[g, "psysc_var"] == 0][:8]
    assert len(varying) == 2 and len(constant) == 8
    with caplog.at_level(logging.WARNING, logger="psysc"):
        res = psysc.tl.score_disorders(adata, {"low": varying + constant}, n_ctrl=100, inplace=False)["low"]
    # the sets with no variance: all their 10 genes among the bin's constant ones
    from psysc._core._shared import SharedControls

    bins = var["psysc_mean_var"].to_numpy().astype(str)
    idx = np.flatnonzero(adata.var_names.isin(varying + constant))
    shared = SharedControls(adata.var_names.to_numpy().astype(str), bins, [(idx, np.ones(len(idx)))], n_ctrl=100,
                            seed=0)
    n_constant = int((var["psysc_var"].to_numpy()[shared.genes] == 0).all(axis=1).sum())
    assert n_constant > 0
    assert f"low: {n_constant} of its 100 control gene sets have no variance" in caplog.text
    assert (res["pval"] == 1).all()


def test_background_correction_of_sparse_control_scores_makes_no_copy():
    """Control scores that are mostly exact zeros (small sets, sparse data) are marked in place: the extra memory
    stays far below the size of the scores (a copy of the rows with zeros and index arrays took 2-5x)."""
    import tracemalloc

    rng = np.random.default_rng(4)
    n, b = 4_000, 500
    ctrl = rng.gamma(2.0, size=(n, b)).astype(np.float32)
    ctrl[rng.random((n, b)) < 0.8] = 0  # 80 % zeros
    raw = rng.gamma(2.0, size=n)
    raw[:50] = 0
    var_ratio = rng.uniform(0.5, 2.0, b)
    exp_norm, exp_ctrl, _, _ = naive_correct_and_test(raw, ctrl, var_ratio)
    correct_background(raw[:10], ctrl[:10].copy(), var_ratio)  # compiled before the measurement
    tracemalloc.start()
    try:
        norm = correct_background(raw, ctrl, var_ratio)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.1 * ctrl.nbytes, peak
    np.testing.assert_allclose(norm, exp_norm, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ctrl, exp_ctrl, rtol=1e-5, atol=1e-5)
