"""Scoring refuses data other than the data prepare_scoring computed its statistics on; a refused call changes
nothing; what does not change the data (a file round trip, another sparse format or dtype) is not refused."""

import logging

import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from scipy import sparse
from test_scoring import random_sets, synthetic_counts

import psysc


@pytest.fixture
def prepared():
    adata = synthetic_counts(300, 1200, seed=5)
    psysc.pp.prepare_scoring(adata)
    return adata, random_sets(adata, 2, size=60)


def log_normalised_and_prepared(seed: int):
    """Log-normalised counts prepared for scoring (the statistics are those of adata.X itself), and one gene set."""
    adata = synthetic_counts(300, 1200, seed=seed)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    psysc.pp.prepare_scoring(adata)
    return adata, random_sets(adata, 1, size=60)

def test_a_subset_of_cells_is_refused_until_prepared_again(prepared, caplog):
    adata, sets = prepared
    psysc.tl.score_disorders(adata, {"early": sets["t1"]}, n_ctrl=20)
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.pp.prepare_scoring(adata)  # the same data again: the same statistics, nothing to say
    assert "earlier" not in caplog.text
    sub = adata[:200].copy()
    again = r"prepare_scoring\(adata, key_added='psysc'\) again"
    with pytest.raises(ValueError, match=rf"cells .*300 cells then, 200 now.*{again}"):
        psysc.tl.score_disorders(sub, sets, n_ctrl=20)
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.pp.prepare_scoring(sub)
    assert "adata holds scores of early from an earlier psysc.pp.prepare_scoring(key_added='psysc')" in caplog.text
    # the same cells with other statistics (a covariate regressed out), and scores kept under another key
    psysc.tl.score_disorders(adata, {"other": sets["t1"]}, n_ctrl=20, key_added="run2", prepare_key="psysc")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.pp.prepare_scoring(adata, covariates=pd.DataFrame({"d": np.arange(adata.n_obs) % 7},
                                                                index=adata.obs_names))
    assert "adata holds scores of early, other (key 'run2') from an earlier" in caplog.text
    psysc.tl.score_disorders(sub, sets, n_ctrl=20)
    assert np.isfinite(sub.obs["psysc_t0_norm_score"]).all()


def test_reordered_or_renamed_cells_and_genes_keep_their_statistics(prepared):
    # the gene statistics are per gene, over the cells (in any order): these changes leave them valid
    adata, sets = prepared
    expected = psysc.tl.score_disorders(adata, sets, n_ctrl=20, inplace=False)
    order = np.random.default_rng(0).permutation(adata.n_obs)
    shuffled = adata[order].copy()
    got = psysc.tl.score_disorders(shuffled, sets, n_ctrl=20, inplace=False)
    for t in sets:
        pd.testing.assert_frame_equal(got[t].loc[adata.obs_names], expected[t], rtol=1e-5, atol=1e-6)
    renamed = adata.copy()
    renamed.obs_names = [f"cell{i}" for i in range(adata.n_obs)]
    renamed.var_names = [f"gene_{g}" for g in adata.var_names]
    renamed_sets = {t: s.rename(index=lambda g: f"gene_{g}") for t, s in sets.items()}
    got = psysc.tl.score_disorders(renamed, renamed_sets, n_ctrl=20, inplace=False)
    np.testing.assert_array_equal(got["t0"]["norm_score"], expected["t0"]["norm_score"])
    psysc.tl.score_disorders(adata[:, :1000].copy(), sets, n_ctrl=20)  # a subset of the genes


def test_values_changed_in_place_after_preparing_are_refused():
    adata, sets = log_normalised_and_prepared(seed=6)
    changed = adata.copy()
    changed.X = changed.X * 1.01
    with pytest.raises(ValueError, match=r"adata.X, the expression .* has changed since"):
        psysc.tl.score_disorders(changed, sets, n_ctrl=20)
    shuffled = changed[np.random.default_rng(1).permutation(adata.n_obs)].copy()  # found by cell name
    with pytest.raises(ValueError, match="has changed since"):
        psysc.tl.score_disorders(shuffled, sets, n_ctrl=20)
    renamed = changed.copy()  # renamed cells: their first rows compared by position
    renamed.obs_names = [f"x{i}" for i in range(renamed.n_obs)]
    with pytest.raises(ValueError, match=r"has changed since .*cells were renamed"):
        psysc.tl.score_disorders(renamed, sets, n_ctrl=20)
    psysc.tl.score_disorders(adata, sets, n_ctrl=20)  # unchanged
    # scaled since: preparing it again would be refused too, so the message names what works instead
    scaled = adata.copy()
    scaled.layers["log"] = scaled.X.copy()
    sc.pp.scale(scaled)
    with pytest.raises(ValueError, match=r"has been scaled or centred since .* layer='log' in psysc.pp.prepare"):
        psysc.tl.score_disorders(scaled, sets, n_ctrl=20)
    with pytest.raises(ValueError, match=r"negative values: it looks scaled .*adata.raw.to_adata\(\)"):
        psysc.pp.prepare_scoring(scaled)
    psysc.pp.prepare_scoring(scaled, layer="log")  # the fix named
    got = psysc.tl.score_disorders(scaled, sets, n_ctrl=20, inplace=False)
    want = psysc.tl.score_disorders(adata, sets, n_ctrl=20, inplace=False)
    pd.testing.assert_frame_equal(got["t0"], want["t0"])


def test_values_changed_after_a_subset_of_the_genes_are_refused():
    """The scanpy route (highly variable genes, then sc.pp.scale) is caught after the gene subset too."""
    adata, sets = log_normalised_and_prepared(seed=9)
    keep = np.random.default_rng(2).permutation(adata.n_vars)[:700]  # a subset, in another order
    sub = adata[:, keep].copy()
    sub.var_names = [f"gene_{g}" for g in sub.var_names]  # and renamed: each gene keeps its statistics
    sub_sets = {t: s.rename(index=lambda g: f"gene_{g}") for t, s in sets.items()}
    psysc.tl.score_disorders(sub.copy(), sub_sets, n_ctrl=20)
    scaled = sub.copy()
    sc.pp.scale(scaled)
    with pytest.raises(ValueError, match=r"has been scaled or centred since"):
        psysc.tl.score_disorders(scaled, sub_sets, n_ctrl=20)
    # a fingerprint written by an earlier psysc (no smallest value) still names the fix for scaled data
    old = adata.copy()
    del old.uns["psysc"]["prepare_scoring"]["data"]["min"]
    sc.pp.scale(old)
    with pytest.raises(ValueError, match=r"has been scaled or centred since"):
        psysc.tl.score_disorders(old, sets, n_ctrl=20)
    doubled = sub.copy()
    doubled.X = doubled.X * 2
    with pytest.raises(ValueError, match=r"has changed since"):
        psysc.tl.score_disorders(doubled, sub_sets, n_ctrl=20)
    one_gene = sub.copy()  # one value changed, in the first cell
    one_gene.X.data[0] += 1.0
    with pytest.raises(ValueError, match=r"has changed since"):
        psysc.tl.score_disorders(one_gene, sub_sets, n_ctrl=20)


def test_the_same_data_in_another_form_is_accepted(prepared, tmp_path):
    adata, sets = prepared
    expected = psysc.tl.score_disorders(adata, sets, n_ctrl=20, inplace=False)
    adata.write_h5ad(tmp_path / "a.h5ad")
    back = sc.read_h5ad(tmp_path / "a.h5ad")
    back.layers["psysc_norm"] = sparse.csc_matrix(back.layers["psysc_norm"]).astype(np.float64)
    got = psysc.tl.score_disorders(back, sets, n_ctrl=20, inplace=False)
    for t in sets:
        np.testing.assert_allclose(got[t]["norm_score"], expected[t]["norm_score"], rtol=1e-5, atol=1e-6)


def test_a_refused_prepare_scoring_leaves_adata_as_it_was():
    adata = synthetic_counts(300, 1200, seed=7)
    cov = pd.DataFrame({"depth": np.log1p(np.asarray(adata.X.sum(axis=1)).ravel())}, index=adata.obs_names)
    psysc.pp.prepare_scoring(adata, covariates=cov)
    sets = random_sets(adata, 1, size=60)
    expected = psysc.tl.score_disorders(adata, sets, n_ctrl=20, inplace=False)
    keys = (set(adata.obsm), set(adata.varm), set(adata.layers), set(adata.var.columns))
    with pytest.raises(ValueError, match="covariates cover 0 of 300 cells"):
        psysc.pp.prepare_scoring(adata, covariates=cov.reset_index(drop=True))
    assert (set(adata.obsm), set(adata.varm), set(adata.layers), set(adata.var.columns)) == keys
    got = psysc.tl.score_disorders(adata, sets, n_ctrl=20, inplace=False)
    np.testing.assert_array_equal(got["t0"]["norm_score"], expected["t0"]["norm_score"])


def test_non_integer_counts_are_normalised_when_the_user_says_they_are_counts():
    adata = synthetic_counts(300, 1200, seed=8)
    adata.X = adata.X * np.float32(0.75)  # e.g. EM-quantified counts
    with pytest.raises(ValueError, match="normalize=True to normalise them as counts"):
        psysc.pp.prepare_scoring(adata)
    psysc.pp.prepare_scoring(adata, normalize=True)
    ref = adata.copy()
    ref.X = ref.X.copy()
    sc.pp.normalize_total(ref, target_sum=1e4)
    sc.pp.log1p(ref)
    np.testing.assert_allclose(adata.layers["psysc_norm"].toarray(), ref.X.toarray(), rtol=1e-6, atol=1e-6)


def test_reordered_cells_that_cannot_be_gathered_by_name_are_accepted(tmp_path, caplog):
    # a backed file of the cells in another order, and cell names that repeat: the cells are there, not renamed
    import anndata as ad

    adata, sets = log_normalised_and_prepared(seed=8)
    expected = psysc.tl.score_disorders(adata, sets, n_ctrl=20, inplace=False)["t0"]
    order = np.random.default_rng(2).permutation(adata.n_obs)
    adata[order].copy().write_h5ad(tmp_path / "reordered.h5ad")
    backed = ad.read_h5ad(tmp_path / "reordered.h5ad", backed="r")
    with caplog.at_level(logging.INFO, logger="psysc"):
        got = psysc.tl.score_disorders(backed, sets, n_ctrl=20, inplace=False)["t0"]
    assert "the values are not checked" in caplog.text
    pd.testing.assert_frame_equal(got.loc[expected.index], expected, rtol=1e-5, atol=1e-6)
    repeated = adata.copy()  # prepared with names that repeat, then reordered
    repeated.obs_names = [f"c{i % 150}" for i in range(adata.n_obs)]
    psysc.pp.prepare_scoring(repeated)
    psysc.tl.score_disorders(repeated[order].copy(), sets, n_ctrl=20, inplace=False)


def test_cells_replaced_by_others_of_the_same_number_are_refused():
    # 100 cells swapped for 100 new ones (same number of cells; the others still there): other gene statistics
    import anndata as ad

    adata, sets = log_normalised_and_prepared(seed=9)
    new = adata[:100].copy()
    new.obs_names = [f"new{i}" for i in range(100)]
    new.X = new.X * 1.5
    swapped = ad.concat([adata[100:], new])
    swapped.uns, swapped.var = adata.uns, adata.var
    with pytest.raises(ValueError, match=r"has changed since .*replaced by others"):
        psysc.tl.score_disorders(swapped, sets, n_ctrl=20)
    # the same cells renamed so that old names name other cells, or partly renamed: accepted (same values)
    shifted = adata.copy()
    shifted.obs_names = [f"c{i + 1}" for i in range(adata.n_obs)]
    psysc.tl.score_disorders(shifted, sets, n_ctrl=20)
    partly = adata.copy()
    partly.obs_names = [f"s2_{c}" if i % 2 else c for i, c in enumerate(adata.obs_names)]
    psysc.tl.score_disorders(partly, sets, n_ctrl=20)


def test_names_made_unique_after_preparing_are_accepted():
    # two samples with the same barcodes, prepared together, then obs_names_make_unique() (anndata's advice)
    import anndata as ad

    first, second = synthetic_counts(150, 800, seed=10), synthetic_counts(150, 800, seed=11)
    both = ad.concat([first, second])
    assert not both.obs_names.is_unique
    psysc.pp.prepare_scoring(both)
    sets = random_sets(both, 1, size=40)
    expected = psysc.tl.score_disorders(both, sets, n_ctrl=20, inplace=False)["t0"]
    both.obs_names_make_unique()
    got = psysc.tl.score_disorders(both, sets, n_ctrl=20, inplace=False)["t0"]
    np.testing.assert_array_equal(got["norm_score"].to_numpy(), expected["norm_score"].to_numpy())


def test_enrichment_warns_about_traits_scored_before_the_statistics_changed(caplog):
    adata, sets = log_normalised_and_prepared(3)
    adata.obs["group"] = pd.Categorical(np.where(np.arange(adata.n_obs) % 2, "a", "b"))
    sc.pp.pca(adata, n_comps=10)
    sc.pp.neighbors(adata, n_neighbors=10)
    psysc.tl.score_disorders(adata, {"early": sets["t0"]}, n_ctrl=20)
    psysc.pp.prepare_scoring(adata)  # the same statistics: the scores stay valid
    psysc.tl.score_disorders(adata, {"same": sets["t0"]}, n_ctrl=20)
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.tl.disorder_enrichment(adata, groupby="group")
    assert "since replaced" not in caplog.text
    covariates = pd.DataFrame({"d": np.arange(adata.n_obs) % 7}, index=adata.obs_names)
    psysc.pp.prepare_scoring(adata, covariates=covariates)  # other statistics
    psysc.tl.score_disorders(adata, {"late": sets["t0"]}, n_ctrl=20)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.tl.disorder_enrichment(adata, groupby="group")
    assert "early, same were scored with gene statistics that psysc.pp.prepare_scoring has since" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.tl.disorder_enrichment(adata, groupby="group", traits=["late"])
    assert "since replaced" not in caplog.text
