"""seismic specificity and cell-type regression: naive re-derivations, biology and bad input."""

from __future__ import annotations

import logging
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse, stats

import psysc
from psysc._core._cauchy import cauchy_combine
from psysc._core._specificity import group_moments, ols_one_sided, seismic_specificity
from psysc.tl._celltype import celltype_enrichment, celltype_specificity, specificity_table
from psysc.tl._contrast import disorder_contrast


def _random_data(seed=0, n_cells=150, n_genes=60, sizes=(50, 40, 35, 25)):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(sizes)), sizes)
    rng.shuffle(labels)
    # group-dependent expression with many zeros
    rate = rng.gamma(1.0, 1.0, size=(len(sizes), n_genes))
    dense = np.log1p(rng.poisson(rate[labels]).astype(np.float64))
    dense[rng.random(dense.shape) < 0.3] = 0.0
    dense[:, 0] = 0.0  # never expressed
    dense[:, 1] = 0.0
    dense[:3, 1] = 5.0  # expressed in too few cells
    dense[:, 2] = 0.0
    dense[:12, 2] = 0.05  # expressed but low mean
    return sparse.csr_matrix(dense), labels


def naive_specificity(dense, labels, *, min_cells_per_group=20, min_cells_expressed=10, min_mean=0.1,
                      return_all=False):
    """seismic's formula written directly with pandas/numpy/scipy."""
    df = pd.DataFrame(dense)
    lab = pd.Series(labels)
    sizes = lab.value_counts()
    keep = sorted(sizes.index[sizes >= min_cells_per_group])
    cells = lab.isin(keep).to_numpy()
    df, lab = df[cells].reset_index(drop=True), lab[cells].reset_index(drop=True)
    expressed = (df != 0).sum(axis=0) >= min_cells_expressed
    high = df.groupby(lab).mean().mean(axis=0) >= min_mean
    genes = np.flatnonzero((expressed & high).to_numpy())
    out = np.zeros((len(keep), genes.size))
    rels = np.zeros_like(out)
    means = np.zeros_like(out)
    for i, c in enumerate(keep):
        inn = (lab == c).to_numpy()
        for j, g in enumerate(genes):
            a = df.iloc[inn, g].to_numpy()
            b = df.iloc[~inn, g].to_numpy()
            rel = (a.mean() - b.mean()) / np.sqrt(
                np.var(a, ddof=1) / (a.size - 1) + np.var(b, ddof=1) / (b.size - 1)
            )
            out[i, j] = stats.norm.cdf(rel) * np.mean(a != 0)
            rels[i, j] = rel
            means[i, j] = a.mean()
    out /= out.sum(axis=0)
    if return_all:
        return out, np.asarray(keep), genes, rels, means
    return out, np.asarray(keep), genes


@pytest.mark.parametrize("block_size", [7, 1000])
@pytest.mark.parametrize("fmt", ["csr", "dense"])
def test_specificity_matches_naive(block_size, fmt):
    X, labels = _random_data()
    dense = X.toarray()
    mom = group_moments(X if fmt == "csr" else dense, labels, 4, block_size=block_size)
    res = seismic_specificity(mom, min_cells_per_group=30)
    exp, keep, genes = naive_specificity(dense, labels, min_cells_per_group=30)
    np.testing.assert_array_equal(res.groups, keep)
    np.testing.assert_array_equal(res.genes, genes)
    assert res.n_groups_dropped == 1  # the 25-cell group
    assert res.n_genes_dropped_expressed >= 2 and res.n_genes_dropped_mean >= 1
    np.testing.assert_allclose(res.spec, exp, rtol=1e-10, atol=0)
    np.testing.assert_allclose(res.spec.sum(axis=0), 1.0, rtol=1e-12)


def test_block_size_invariance_and_unlabelled_cells():
    X, labels = _random_data(seed=3)
    labels = labels.copy()
    labels[:5] = -1  # cells with no group are skipped
    a = seismic_specificity(group_moments(X, labels, 4, block_size=7))
    b = seismic_specificity(group_moments(X, labels, 4, block_size=1000))
    np.testing.assert_allclose(a.spec, b.spec, rtol=1e-12)
    exp, _, _ = naive_specificity(X.toarray()[5:], labels[5:])
    np.testing.assert_allclose(a.spec, exp, rtol=1e-10)


def test_anndata_specificity_matches_naive():
    X, labels = _random_data(seed=1)
    names = np.array(["a", "b", "c", "d"])
    adata = ad.AnnData(X, obs=pd.DataFrame({"ct": pd.Categorical(names[labels])},
                                           index=[f"c{i}" for i in range(X.shape[0])]),
                       var=pd.DataFrame(index=[f"g{i}" for i in range(X.shape[1])]))
    celltype_specificity(adata, "ct", block_size=7)
    exp, keep, genes = naive_specificity(X.toarray(), labels)
    got = specificity_table(adata, dropna=False)
    assert list(adata.uns["psysc"]["specificity_groups"]) == list(names[keep]) == list(got.columns)
    np.testing.assert_allclose(got.iloc[genes].to_numpy(), exp.T, rtol=1e-10)
    assert got.drop(index=got.index[genes]).isna().all().all()
    assert specificity_table(adata).index.equals(adata.var_names[genes])  # the filtered genes left out
    assert adata.uns["psysc"]["specificity_params"]["n_genes"] == genes.size


def test_ols_matches_linregress_and_statsmodels():
    rng = np.random.default_rng(5)
    n, k = 300, 4
    S = rng.random((n, k))
    z = 0.8 * S[:, 0] - 0.3 * S[:, 2] + rng.normal(size=n)
    beta, se, t, p = ols_one_sided(z, S)
    for j in range(k):
        lr = stats.linregress(S[:, j], z)
        assert beta[j] == pytest.approx(lr.slope, rel=1e-10)
        assert se[j] == pytest.approx(lr.stderr, rel=1e-10)
        # linregress gives the two-sided p: one-sided for beta > 0 is p/2 or 1 - p/2
        one = lr.pvalue / 2 if lr.slope > 0 else 1 - lr.pvalue / 2
        assert p[j] == pytest.approx(one, rel=1e-8)
    sm = pytest.importorskip("statsmodels.api")
    for j in range(k):
        fit = sm.OLS(z, sm.add_constant(S[:, j])).fit()
        assert beta[j] == pytest.approx(fit.params[1], rel=1e-10)
        assert se[j] == pytest.approx(fit.bse[1], rel=1e-10)
        assert t[j] == pytest.approx(fit.tvalues[1], rel=1e-10)
    b1, *_ = ols_one_sided(z, S[:, 0])
    assert b1 == pytest.approx(beta[0], rel=1e-14)
    assert np.isnan(ols_one_sided(z, np.ones(n))[0])


def test_ols_two_sided_p_of_large_negative_t_and_constant_response():
    """The two-sided p of a steep negative slope is statsmodels' (not 0 from 1 - sf rounding to 0); a constant z
    or one that the covariates explain leaves only rounding noise: NaN, not a "significant" slope."""
    rng = np.random.default_rng(11)
    n = 400
    S = rng.random((n, 2))
    z = -3.0 * S[:, 0] + 0.2 * rng.normal(size=n)
    beta, se, t, p = ols_one_sided(z, S, two_sided=True)
    sm = pytest.importorskip("statsmodels.api")
    fit = sm.OLS(z, sm.add_constant(S[:, 0])).fit()
    assert t[0] < -40 and p[0] > 0
    assert p[0] == pytest.approx(fit.pvalues[1], rel=1e-6)
    fit1 = sm.OLS(z, sm.add_constant(S[:, 1])).fit()
    assert p[1] == pytest.approx(fit1.pvalues[1], rel=1e-8)
    for flat in (np.full(n, 3.0), 3.0 * np.ones(n) + 1e-15 * rng.normal(size=n), 2.0 + 0.5 * S[:, 1]):
        out = ols_one_sided(flat, S[:, :1], covariates=S[:, 1:])
        assert all(np.isnan(v).all() for v in out)


def test_ols_keeps_covariates_of_small_units_and_drops_collinear_ones():
    """Collinearity is judged per covariate in its own units: a per-base rate beside a sample size of ~10^6 is a
    covariate (statsmodels' full model), while exact copies, multiples and combinations are dropped."""
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(3)
    n = 2_000
    size_n = rng.uniform(9e5, 1e6, n)
    rate = rng.normal(2e-3, 6e-6, n)  # varies in the 6th digit
    s = rng.random((n, 2))
    z = 0.3 * s[:, 0] + 4e4 * (rate - 2e-3) + rng.normal(size=n)
    beta, se, t, p = ols_one_sided(z, s, covariates=np.column_stack([size_n, rate]))
    for j in range(2):
        fit = sm.OLS(z, np.column_stack([s[:, j], np.ones(n), size_n, rate])).fit()
        # (a near-constant covariate costs both fits digits; dropping it changes beta in the 2nd digit)
        assert beta[j] == pytest.approx(fit.params[0], rel=1e-6)
        assert se[j] == pytest.approx(fit.bse[0], rel=1e-6)
        assert p[j] == pytest.approx(stats.t.sf(fit.tvalues[0], fit.df_resid), rel=1e-5)
    redundant = np.column_stack([size_n, rate, 2.5 * size_n, np.zeros(n), size_n - 1e3 * rate, np.ones(n)])
    again = ols_one_sided(z, s, covariates=redundant)
    for a, b in zip(again, (beta, se, t, p), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-7)


def _named_adata(seed=1):
    X, labels = _random_data(seed=seed, n_genes=80)
    names = np.array(["a", "b", "c", "d"])
    return ad.AnnData(X, obs=pd.DataFrame({"ct": pd.Categorical(names[labels])},
                                          index=[f"c{i}" for i in range(X.shape[0])]),
                      var=pd.DataFrame(index=[f"g{i}" for i in range(X.shape[1])])), labels, names


def test_stored_top_specific_genes_follow_top_fraction():
    """The top-specific gene sets kept in uns are those the regression used, computed afresh or reused."""
    adata, labels, names = _named_adata(seed=3)
    gs = {"T": pd.Series(np.random.default_rng(0).normal(size=30), index=adata.var_names[:30])}
    _, keep, genes, rel, _ = naive_specificity(adata.X.toarray(), labels, return_all=True)
    for fraction in (0.2, 0.1, 0.35):  # computed, then reused from uns twice
        celltype_enrichment(adata, gs, groupby="ct", method="top10", top_fraction=fraction)
        n_top = int(np.ceil(fraction * len(genes)))
        stored = psysc.tl.specific_gene_sets(adata)
        assert adata.uns["psysc"]["specificity_params"]["top_fraction"] == fraction
        for k, grp in enumerate(names[keep]):
            want = adata.var_names[genes][np.argsort(-rel[k], kind="stable")[:n_top]]
            assert set(stored[grp]) == set(want)


def _lstsq_slope(y, design, col):
    """Slope, standard error and one-sided p of column ``col`` of a full design (with intercept) by lstsq."""
    A = np.column_stack([np.ones(len(y)), design])
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = y - A @ coef
    df = len(y) - A.shape[1]
    cov = resid @ resid / df * np.linalg.inv(A.T @ A)
    se = np.sqrt(cov[col + 1, col + 1])
    return coef[col + 1], se, stats.t.sf(coef[col + 1] / se, df)


def test_ols_covariates_match_full_least_squares():
    rng = np.random.default_rng(9)
    n = 200
    S = rng.random((n, 3))
    C = rng.normal(size=(n, 2))
    z = 0.5 * S[:, 1] + C @ [0.3, -0.2] + rng.normal(size=n)
    beta, se, t, p = ols_one_sided(z, S, covariates=C)
    for j in range(3):
        b, s_, pp = _lstsq_slope(z, np.column_stack([S[:, j], C]), 0)
        assert beta[j] == pytest.approx(b, rel=1e-9)
        assert se[j] == pytest.approx(s_, rel=1e-9)
        assert p[j] == pytest.approx(pp, rel=1e-7)
    # a column collinear with a covariate has no slope
    assert np.isnan(ols_one_sided(z, 2 * C[:, 0] + 1, covariates=C)[0])


@pytest.mark.parametrize("universe", ["all", "set"])
def test_three_methods_match_naive(universe):
    adata, labels, names = _named_adata()
    rng = np.random.default_rng(4)
    set_genes = [f"g{i}" for i in rng.choice(80, size=30, replace=False)]
    s = pd.Series(rng.normal(1.0, 1.5, size=30), index=set_genes)
    cov = pd.DataFrame({"len": rng.normal(size=80)}, index=adata.var_names)
    t = celltype_enrichment(adata, {"T": s}, groupby="ct", method="all", universe=universe, covariates=cov,
                            inplace=False, top_fraction=0.2)
    spec, keep, genes, rel, mean = naive_specificity(adata.X.toarray(), labels, return_all=True)
    gnames = adata.var_names[genes]
    if universe == "all":
        z = pd.Series(0.0, index=gnames)
        inter = gnames.intersection(s.index)
        z[inter] = s[inter]
    else:
        z = s[gnames.intersection(s.index)]
    pos = pd.Series(np.arange(len(gnames)), index=gnames)[z.index].to_numpy()
    y, c = z.to_numpy(), cov.loc[z.index, "len"].to_numpy()
    n_top = int(np.ceil(0.2 * len(gnames)))
    for k, grp in enumerate(names[keep]):
        top = set(gnames[np.argsort(-rel[k], kind="stable")[:n_top]])
        designs = {
            "seismic": np.column_stack([spec[k, pos], c]),
            "magma": np.column_stack([mean[k, pos], mean[:, pos].mean(axis=0), c]),
            "top10": np.column_stack([z.index.isin(top).astype(float), c]),
        }
        for m, d in designs.items():
            row = t[(t.method == m) & (t.group == grp)].iloc[0]
            b, se, p = _lstsq_slope(y, d, 0)
            assert row["beta"] == pytest.approx(b, rel=1e-7), (m, grp)
            assert row["se"] == pytest.approx(se, rel=1e-7)
            assert row["pval"] == pytest.approx(p, rel=1e-6, abs=1e-12)
            assert row["n_genes"] == len(z)
    # BH within each method, from scipy
    for _, d in t.groupby("method"):
        np.testing.assert_allclose(d["fdr"], stats.false_discovery_control(d["pval"].to_numpy()), rtol=1e-12)


def test_universe_auto_and_magma_table_covariates(caplog):
    adata, labels, names = _named_adata(seed=6)
    rng = np.random.default_rng(1)
    genome_wide = pd.Series(rng.normal(size=80), index=adata.var_names)
    small = genome_wide.iloc[:15]  # a top-N set: 12 of its genes have a specificity
    with caplog.at_level(logging.INFO, logger="psysc"):
        celltype_enrichment(adata, {"GW": genome_wide, "TOP": small}, groupby="ct")
    params = adata.uns["psysc"]["celltype_enrichment_params"]
    assert params["universe"] == {"GW": "set", "TOP": "all"}
    assert "z = 0 outside the set" in caplog.text
    # a MAGMA .genes.out-like table: MAGMA's default gene covariates that it carries (gene size NSNPS, gene
    # density NPARAM/NSNPS, sample size N, and their logs) and the log gene length, in the MAGMA models
    table = pd.DataFrame({"START": rng.integers(1, 10**6, 80), "NSNPS": rng.integers(1, 50, 80)},
                         index=adata.var_names)
    table["STOP"] = table["START"] + rng.integers(100, 10**5, 80)
    table["NPARAM"] = np.maximum(1, (table["NSNPS"] * rng.uniform(0.1, 1, 80)).round())
    table["N"] = 50_000  # the same for every gene: no information
    table["ZSTAT"] = genome_wide.to_numpy()
    size, density = table["NSNPS"] * 1.0, table["NPARAM"] / table["NSNPS"]
    cov = pd.DataFrame({"l": np.log(table["STOP"] - table["START"] + 1.0), "s": size, "ls": np.log(size),
                        "d": density, "ld": np.log(density)})
    for m in ("magma", "top10"):
        a = celltype_enrichment(adata, {"GW": table}, groupby="ct", method=m, inplace=False)
        b = celltype_enrichment(adata, {"GW": genome_wide}, groupby="ct", method=m, covariates=cov, inplace=False)
        pd.testing.assert_frame_equal(a, b)
        c = celltype_enrichment(adata, {"GW": genome_wide}, groupby="ct", method=m, inplace=False)
        assert not np.allclose(a["beta"], c["beta"])
    # seismic regresses on the specificity alone (as published): a table's covariates are not added, explicit
    # covariates are
    a = celltype_enrichment(adata, {"GW": table}, groupby="ct", method="seismic", inplace=False)
    c = celltype_enrichment(adata, {"GW": genome_wide}, groupby="ct", method="seismic", inplace=False)
    pd.testing.assert_frame_equal(a, c)
    b = celltype_enrichment(adata, {"GW": genome_wide}, groupby="ct", method="seismic", covariates=cov, inplace=False)
    assert not np.allclose(b["beta"], c["beta"])


def test_contrast_is_regression_of_scaled_difference():
    adata, labels, names = _named_adata(seed=2)
    rng = np.random.default_rng(3)
    gs = {t: pd.Series(rng.normal(1, 2, 25), index=[f"g{i}" for i in rng.choice(80, 25, replace=False)])
          for t in ("A", "B", "C")}
    t = disorder_contrast(adata, gs, groupby="ct", contrasts=[("A", "B")], shared=["A", "B", "C"], inplace=False)
    assert set(t["contrast"]) == {"A - B", "shared", "A - shared", "B - shared", "C - shared"}
    spec, keep, genes, _, _ = naive_specificity(adata.X.toarray(), labels, return_all=True)
    gnames = adata.var_names[genes]
    Z = pd.DataFrame(0.0, index=gnames, columns=list(gs))
    for k, s in gs.items():
        inter = gnames.intersection(s.index)
        Z.loc[inter, k] = s[inter]
    Z = Z / Z.std(ddof=0)
    for k, grp in enumerate(names[keep]):
        x = spec[k]
        lr = stats.linregress(x, Z["A"] - Z["B"])
        row = t[(t.contrast == "A - B") & (t.group == grp)].iloc[0]
        assert row["beta"] == pytest.approx(lr.slope, rel=1e-9)
        assert row["pval"] == pytest.approx(lr.pvalue, rel=1e-7)  # two-sided
        assert row["beta_a"] == pytest.approx(stats.linregress(x, Z["A"]).slope, rel=1e-9)
        assert row["beta_b"] == pytest.approx(stats.linregress(x, Z["B"]).slope, rel=1e-9)
        lr = stats.linregress(x, Z.mean(axis=1))
        row = t[(t.contrast == "shared") & (t.group == grp)].iloc[0]
        assert row["pval"] == pytest.approx(lr.pvalue / 2 if lr.slope > 0 else 1 - lr.pvalue / 2, rel=1e-7)
        lr = stats.linregress(x, Z["C"] - Z[["A", "B"]].mean(axis=1))
        row = t[(t.contrast == "C - shared") & (t.group == grp)].iloc[0]
        assert row["beta"] == pytest.approx(lr.slope, rel=1e-9)
        assert row["pval"] == pytest.approx(lr.pvalue, rel=1e-7)


def test_contrast_of_a_trait_with_a_rescaled_copy_is_nan_and_symmetric(caplog):
    adata, _, _ = _named_adata(seed=2)
    rng = np.random.default_rng(3)
    a = pd.Series(rng.normal(1, 2, 25), index=[f"g{i}" for i in rng.choice(80, 25, replace=False)])
    b = pd.Series(rng.normal(1, 2, 25), index=[f"g{i}" for i in rng.choice(80, 25, replace=False)])
    gs = {"A": a, "A3": 3 * a, "B": b}
    with caplog.at_level(logging.WARNING, logger="psysc"):
        t = disorder_contrast(adata, gs, groupby="ct", contrasts=[("A", "A3"), ("A", "B"), ("B", "A")], shared=[],
                              inplace=False)
    copy = t[t.contrast == "A - A3"]
    assert copy[["beta", "se", "t", "pval", "fdr"]].isna().all().all()
    assert any("A - A3" in r.getMessage() and "nothing to contrast" in r.getMessage() for r in caplog.records)
    ab = t[t.contrast == "A - B"].set_index("group")
    ba = t[t.contrast == "B - A"].set_index("group")
    assert ab["pval"].notna().all()
    np.testing.assert_allclose(ab["pval"], ba["pval"], rtol=1e-12)  # the same two-sided test either way round
    np.testing.assert_allclose(ab["beta"], -ba["beta"], rtol=1e-12)


def test_constant_gene_scores_and_one_cell_groups_are_refused(caplog):
    adata, _, _ = _named_adata(seed=2)
    dup = adata.copy()
    dup.var_names = ["g1", *dup.var_names[1:]]
    with pytest.raises(ValueError, match="duplicated gene names.*var_names_make_unique"):
        celltype_enrichment(dup, {"T": pd.Series(1.0, index=dup.var_names[:30])}, groupby="ct", inplace=False)
    flat = {"U": pd.Series(1.0, index=adata.var_names[:60])}
    with caplog.at_level(logging.WARNING, logger="psysc"):
        t = celltype_enrichment(adata, flat, groupby="ct", universe="set", method="all", inplace=False)
    assert t["pval"].isna().all()
    assert any("all equal" in r.getMessage() and "universe='all'" in r.getMessage() for r in caplog.records)
    t = celltype_enrichment(adata, flat, groupby="ct", universe="all", inplace=False)
    assert t["pval"].notna().all()  # membership against z = 0 outside the list is a test
    with pytest.raises(ValueError, match="at least 2 cells"):
        celltype_specificity(adata, "ct", min_cells_per_group=1)


def test_contrast_conditions_on_each_traits_magma_covariates():
    """With MAGMA-like tables, a MAGMA-model contrast A - B is fitted with the gene covariates of A and of B, and
    beta_a with A's alone, as celltype_enrichment fits A (checked against numpy least squares); a seismic contrast
    regresses on the specificity alone, as seismic does."""
    adata, labels, names = _named_adata(seed=4)
    rng = np.random.default_rng(5)
    tables = {}
    for t in ("A", "B"):
        tab = pd.DataFrame({"START": rng.integers(1, 10**6, 80), "NSNPS": rng.integers(2, 60, 80)},
                           index=adata.var_names)
        tab["STOP"] = tab["START"] + rng.integers(100, 10**5, 80)
        tab["NPARAM"] = np.maximum(1, (tab["NSNPS"] * rng.uniform(0.2, 1, 80)).round())
        tab["ZSTAT"] = rng.normal(size=80) + 0.05 * tab["NSNPS"]  # confounded by gene size
        tables[t] = tab
    got = disorder_contrast(adata, tables, groupby="ct", contrasts=[("A", "B")], shared=[], method=["magma", "seismic"],
                            inplace=False)
    spec, keep, genes, _, mean = naive_specificity(adata.X.toarray(), labels, return_all=True)
    gnames = adata.var_names[genes]
    Z = pd.DataFrame({t: tab.loc[gnames, "ZSTAT"] for t, tab in tables.items()})
    Z = Z / Z.std(ddof=0)

    def covs(t):
        tab = tables[t].loc[gnames]
        size, dens = tab["NSNPS"] * 1.0, tab["NPARAM"] / tab["NSNPS"]
        return np.column_stack([np.log(tab["STOP"] - tab["START"] + 1.0), size, np.log(size), dens, np.log(dens)])

    def slope(y, x, *cov):
        design = np.column_stack([np.ones(len(y)), x, *cov])
        return np.linalg.lstsq(design, y, rcond=None)[0][1]

    one = celltype_enrichment(adata, {"A": tables["A"]}, groupby="ct", method="magma", inplace=False)
    e_avg = mean.mean(axis=0)
    for k, grp in enumerate(names[keep]):
        row = got[(got.contrast == "A - B") & (got.group == grp) & (got.method == "magma")].iloc[0]
        x = mean[k]
        assert row["beta"] == pytest.approx(slope(Z["A"] - Z["B"], x, e_avg, covs("A"), covs("B")), rel=1e-8)
        assert row["beta_a"] == pytest.approx(slope(Z["A"], x, e_avg, covs("A")), rel=1e-8)
        # the same model as celltype_enrichment's, on z scaled to unit variance
        sd_a = tables["A"].loc[gnames, "ZSTAT"].std(ddof=0)
        assert row["beta_a"] * sd_a == pytest.approx(one.set_index("group").loc[grp, "beta"], rel=1e-8)
        row = got[(got.contrast == "A - B") & (got.group == grp) & (got.method == "seismic")].iloc[0]
        assert row["beta"] == pytest.approx(slope(Z["A"] - Z["B"], spec[k]), rel=1e-8)


def test_cauchy_combination():
    # equal p-values combine to themselves; the formula written directly; tails keep precision
    for p in (1e-300, 1e-20, 0.003, 0.5, 0.97):
        assert cauchy_combine([p, p, p]) == pytest.approx(p, rel=1e-9)
    p = np.array([0.01, 0.2, 0.7])
    w = np.array([1.0, 2.0, 1.0])
    T = np.sum(w * np.tan((0.5 - p) * np.pi)) / w.sum()
    assert cauchy_combine(p, w) == pytest.approx(0.5 - np.arctan(T) / np.pi, rel=1e-12)
    assert cauchy_combine([1e-300, 0.5]) == pytest.approx(2e-300, rel=1e-9)
    assert cauchy_combine([np.nan, 0.04]) == pytest.approx(0.04, rel=1e-12)
    assert np.isnan(cauchy_combine([np.nan, np.nan]))
    assert cauchy_combine([0.0, 0.5]) == 0.0
    np.testing.assert_allclose(cauchy_combine(np.array([[0.1, 0.1], [0.3, 0.3]]), axis=1), [0.1, 0.3])
    with pytest.raises(ValueError, match="0, 1"):
        cauchy_combine([1.5])


def test_cauchy_combination_near_one_is_monotone_and_keeps_its_size():
    """P-values above 0.999 count as 0.999 (term -cot(pi/1000)); the combined P never falls as an input rises,
    and the rejection rates under independence and full dependence stay at the level."""
    cot = 1.0 / np.tan(np.pi * 0.001)
    others = np.array([0.001, 0.002, 0.003])
    T = (np.sum(np.tan((0.5 - others) * np.pi)) - cot) / 4
    for near_one in (0.9995, 1 - 1e-7, 1.0):  # a Monte Carlo P of 101/101, a one-sided t-test P of t.sf(-5, df)
        assert cauchy_combine([*others, near_one]) == pytest.approx(0.5 - np.arctan(T) / np.pi, rel=1e-12)
    rising = np.concatenate([np.linspace(0.9, 0.999999, 300), [1.0]])
    combined = cauchy_combine(np.column_stack([np.broadcast_to(others, (301, 3)), rising]), axis=1)
    assert np.all(np.diff(combined) >= 0)
    assert combined[-1] < 0.01  # one P near 1 does not cancel three small ones
    rng = np.random.default_rng(0)
    for m in (2, 3, 4):
        u = rng.random((400_000, m))
        for P in (u, np.repeat(u[:, :1], m, axis=1)):  # independent, and the same test m times
            comb = cauchy_combine(P, axis=1)
            for level in (0.1, 0.05, 0.01):
                assert np.mean(comb < level) / level == pytest.approx(1.0, abs=0.04)
    with pytest.raises(ValueError, match="0, 1"):
        cauchy_combine([1.5])


# ---------------------------------------------------------------- biology on Darmanis 2015

ADULT = ["neurons", "astrocytes", "oligodendrocytes", "OPC", "microglia", "endothelial"]
GLIA = ["astrocytes", "oligodendrocytes", "OPC", "microglia"]


@pytest.fixture(scope="module")
def darmanis():
    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)
    gs = psysc.gwas.panel("psychiatric")
    # microglia (16 cells) and OPC (18) are below seismic's 20-cell default: lower it to keep them
    celltype_enrichment(adata, gs, groupby="cell_type", method="all", min_cells_per_group=10)
    disorder_contrast(adata, gs, groupby="cell_type", contrasts=[("SCZ", "AD")], method="all",
                      min_cells_per_group=10)
    return adata


@pytest.fixture(scope="module")
def darmanis_table(darmanis):
    table = darmanis.uns["psysc"]["celltype_enrichment"]
    assert set(ADULT) <= set(table["group"])
    return table.set_index(["trait", "method", "group"]).sort_index()


def test_darmanis_table_shape(darmanis):
    t = darmanis.uns["psysc"]["celltype_enrichment"]
    assert list(t.columns) == ["trait", "group", "method", "beta", "se", "t", "pval", "fdr", "n_genes"]
    assert set(t["method"]) == {"seismic", "magma", "top10"}
    assert set(t["trait"]) == {"SCZ", "BIP", "MDD", "ADHD", "ASD", "AD", "HEIGHT"}
    assert t.groupby("trait")["n_genes"].nunique().eq(1).all()
    assert (t["n_genes"] > 5000).all()  # the top-1,000 sets are regressed genome-wide (z = 0 outside)


@pytest.mark.parametrize("method", ["seismic", "magma", "top10"])
def test_darmanis_scz_neurons_above_glia(darmanis_table, method):
    t = darmanis_table.loc[("SCZ", method), "t"]
    assert all(t["neurons"] > t[g] for g in GLIA), t.sort_values(ascending=False).to_dict()
    assert darmanis_table.loc[("SCZ", method, "neurons"), "pval"] < 0.05


@pytest.mark.parametrize("method", ["seismic", "magma", "top10"])
def test_darmanis_ad_microglia_first(darmanis_table, method):
    t = darmanis_table.loc[("AD", method), "t"]
    assert t.idxmax() == "microglia", t.sort_values(ascending=False).to_dict()
    assert darmanis_table.loc[("AD", method, "microglia"), "pval"] < 0.05


@pytest.mark.parametrize("method", ["seismic", "magma", "top10"])
def test_darmanis_height_no_neuronal_enrichment(darmanis_table, method):
    assert darmanis_table.loc[("HEIGHT", method, "neurons"), "pval"] > 0.05


@pytest.mark.parametrize("method", ["seismic", "magma", "top10"])
def test_darmanis_scz_vs_ad_separates_neurons_from_microglia(darmanis, method):
    c = darmanis.uns["psysc"]["disorder_contrast"]
    c = c[(c.contrast == "SCZ - AD") & (c.method == method)].set_index("group")
    assert c.loc["neurons", "beta"] > 0 > c.loc["microglia", "beta"]
    assert c.loc["microglia", "fdr"] < 0.05
    assert c.loc["neurons", "t"] - c.loc["microglia", "t"] > 3


def test_darmanis_combined_evidence(darmanis):
    adata = darmanis.copy()
    gs = psysc.gwas.panel("psychiatric")
    psysc.tl.score_disorders(adata, {k: gs[k] for k in ("SCZ", "AD")}, n_ctrl=100, seed=0)
    psysc.tl.disorder_enrichment(adata, groupby="cell_type", use_graph=None)
    psysc.tl.combine_evidence(adata)
    comb = adata.uns["psysc"]["combined_enrichment"]
    assert {"pval_cells", "pval_seismic", "pval_magma", "pval_top10"} <= set(comb.columns)
    both = comb[comb.trait.isin(["SCZ", "AD"])]
    P = both[["pval_cells", "pval_seismic", "pval_magma", "pval_top10"]].to_numpy()
    P = np.minimum(P, 0.999)  # the documented cap of P-values near 1
    T = np.tan((0.5 - P) * np.pi).mean(axis=1)
    np.testing.assert_allclose(both["pval"], 0.5 - np.arctan(T) / np.pi, rtol=1e-9)
    ad_ = comb[comb.trait == "AD"].set_index("group")
    assert ad_["pval"].idxmin() == "microglia"
    # traits without per-cell scores are combined from the cell-type tests alone
    assert (comb.loc[comb.trait == "HEIGHT", "n_tests"] == 3).all()
    # a per-cell test by another grouping since: the one of the cell-type table's grouping is still used
    adata.obs["half"] = np.where(np.arange(adata.n_obs) % 2, "odd", "even")
    psysc.tl.disorder_enrichment(adata, groupby="half", use_graph=None)
    pd.testing.assert_frame_equal(psysc.tl.combine_evidence(adata, inplace=False), comb)
    # one method named by a string, as in celltype_enrichment
    one = psysc.tl.combine_evidence(adata, methods="seismic", inplace=False)
    assert [c for c in one.columns if c.startswith("pval_")] == ["pval_cells", "pval_seismic"]
    pd.testing.assert_series_equal(one["pval_seismic"], comb["pval_seismic"])


def test_combined_evidence_takes_the_same_labels_in_another_order(darmanis, tmp_path):
    """What does not change any cell's group is no reason to refuse: saving to h5ad (which orders a text column's
    groups its own way), reordering the categories for a plot, or reordering the cells."""
    adata = darmanis.copy()
    sets = {"AD": psysc.gwas.panel("psychiatric")["AD"]}
    adata.obs["clu"] = np.array(["Ex0", "Ex5", "Ex10"])[np.arange(adata.n_obs) % 3]  # text, sorted otherwise
    psysc.tl.score_disorders(adata, sets, n_ctrl=30, seed=0)
    psysc.tl.disorder_enrichment(adata, groupby="clu", use_graph=None)
    celltype_enrichment(adata, sets, groupby="clu", min_cells_per_group=10)
    want = psysc.tl.combine_evidence(adata, inplace=False).set_index(["trait", "group"]).sort_index()
    adata.write_h5ad(tmp_path / "a.h5ad")  # turns obs["clu"] into a categorical
    back = ad.read_h5ad(tmp_path / "a.h5ad")
    back.obs["clu"] = back.obs["clu"].cat.reorder_categories(list(back.obs["clu"].cat.categories)[::-1])
    back = back[np.random.default_rng(1).permutation(back.n_obs)].copy()
    got = psysc.tl.combine_evidence(back, inplace=False).set_index(["trait", "group"]).sort_index()
    pd.testing.assert_frame_equal(got, want)


def test_combined_evidence_refuses_tables_of_other_cells_or_labels(darmanis):
    adata = darmanis.copy()
    gs = psysc.gwas.panel("psychiatric")
    sets = {k: gs[k] for k in ("SCZ", "AD")}
    psysc.tl.score_disorders(adata, sets, n_ctrl=50, seed=0)
    psysc.tl.disorder_enrichment(adata, groupby="cell_type", use_graph=None)
    # a subset since the per-cell table: its removed groups would enter the combination
    sub = adata[~adata.obs["cell_type"].isin(["hybrid", "neurons"])].copy()
    celltype_enrichment(sub, sets, groupby="cell_type", min_cells_per_group=10)
    with pytest.raises(ValueError, match=r"the disorder_enrichment table does not fit the data any more: it was "
                       rf"computed on {adata.n_obs} cells, the data has {sub.n_obs}; run "
                       r"psysc.tl.disorder_enrichment\(adata, groupby='cell_type'\)"):
        psysc.tl.combine_evidence(sub)
    psysc.tl.disorder_enrichment(sub, groupby="cell_type", use_graph=None)  # the fix it names
    assert "neurons" not in set(psysc.tl.combine_evidence(sub, inplace=False)["group"])
    # labels swapped since the per-cell table: same cells, same group names, other members
    swapped = adata.copy()
    swapped.obs["cell_type"] = swapped.obs["cell_type"].astype(str).replace(
        {"neurons": "astrocytes", "astrocytes": "neurons"})
    celltype_enrichment(swapped, sets, groupby="cell_type", min_cells_per_group=10)
    with pytest.raises(ValueError, match=r"disorder_enrichment table .*the labels of obs\['cell_type'\] changed"):
        psysc.tl.combine_evidence(swapped)
    # and the other way: the cell-type table is the older one
    psysc.tl.disorder_enrichment(swapped, groupby="cell_type", use_graph=None)
    swapped.obs["cell_type"] = adata.obs["cell_type"]
    psysc.tl.disorder_enrichment(swapped, groupby="cell_type", use_graph=None)
    with pytest.raises(ValueError, match=r"celltype_enrichment table .*changed since; run "
                       r"psysc.tl.celltype_enrichment\(adata, gene_sets, groupby='cell_type'\)"):
        psysc.tl.combine_evidence(swapped)


def test_combined_evidence_finds_the_per_cell_table_of_a_grouping_named_with_a_slash(darmanis):
    adata = darmanis.copy()
    adata.obs["type/x"] = adata.obs["cell_type"]
    gs = psysc.gwas.panel("psychiatric")
    psysc.tl.score_disorders(adata, {"AD": gs["AD"]}, n_ctrl=50, seed=0)
    psysc.tl.disorder_enrichment(adata, groupby="type/x", use_graph=None)
    cells = adata.uns["psysc"]["enrichment"].set_index("group")["assoc_pval"]
    celltype_enrichment(adata, {"AD": gs["AD"]}, groupby="type/x", method="seismic", min_cells_per_group=10)
    adata.obs["half"] = np.where(np.arange(adata.n_obs) % 2, "odd", "even")
    psysc.tl.disorder_enrichment(adata, groupby="half", use_graph=None)  # the latest per-cell table: another grouping
    comb = psysc.tl.combine_evidence(adata, inplace=False).set_index("group")
    pd.testing.assert_series_equal(comb["pval_cells"], cells.loc[comb.index], check_names=False)


# ---------------------------------------------------------------- bad input


def _small_adata():
    X, labels = _random_data(seed=2, sizes=(50, 40, 35, 5))
    names = np.array(["a", "b", "c", "tiny"])
    return ad.AnnData(X, obs=pd.DataFrame({"ct": names[labels]}, index=[f"c{i}" for i in range(X.shape[0])]),
                      var=pd.DataFrame(index=[f"g{i}" for i in range(X.shape[1])]))


def test_missing_groupby():
    adata = _small_adata()
    with pytest.raises(KeyError, match="nope"):
        celltype_specificity(adata, "nope")
    with pytest.raises(KeyError, match="nope"):
        celltype_enrichment(adata, {"T": pd.Series({"g3": 1.0})}, groupby="nope")
    with pytest.raises(ValueError, match="method 'ldsc' is not supported"):
        celltype_enrichment(adata, {"T": pd.Series({"g3": 1.0})}, groupby="ct", method="ldsc")
    with pytest.raises(ValueError, match="method 'ldsc' is not supported"):  # an array of names, as a list
        celltype_enrichment(adata, {"T": pd.Series({"g3": 1.0})}, groupby="ct", method=np.array(["seismic", "ldsc"]))
    every = celltype_enrichment(adata, {"T": pd.Series({"g3": 1.0, "g4": 2.0, "g5": 0.5, "g6": 1.5, "g7": 3.0})},
                                groupby="ct", method=["all"], min_cells_per_group=5, inplace=False)
    assert sorted(set(every["method"])) == ["magma", "seismic", "top10"]
    with pytest.raises(ValueError, match="an empty list of methods"):
        celltype_enrichment(adata, {"T": pd.Series({"g3": 1.0})}, groupby="ct", method=[])
    with pytest.raises(ValueError, match="gene names do not match"):
        celltype_enrichment(adata, {"T": pd.Series({"Gfap": 1.0, "Snap25": 2.0})}, groupby="ct")
    # mouse genes against human data: the message says so and names the fix
    human = _small_adata()
    human.var_names = ["GFAP", "SNAP25", "AQP4", "PLP1"] + [f"GENE{i}" for i in range(human.n_vars - 4)]
    mouse = {"T": pd.Series(1.0, index=["Gfap", "Snap25", "Aqp4", "Plp1", "Mbp"])}
    with pytest.raises(ValueError, match="different species.*to_species"):
        celltype_enrichment(human, mouse, groupby="ct")
    with pytest.raises(KeyError, match="not in gene_sets"):
        disorder_contrast(adata, {"T": pd.Series({"g3": 1.0})}, groupby="ct", contrasts=[("T", "U")])
    with pytest.raises(ValueError, match="nothing to contrast"):
        disorder_contrast(adata, {"T": pd.Series({"g3": 1.0})}, groupby="ct")


def test_small_groups_dropped_and_logged(caplog):
    adata = _small_adata()
    with caplog.at_level(logging.WARNING, logger="psysc"):
        celltype_specificity(adata, "ct")
    assert "1 group(s) with fewer than 20 cells dropped" in caplog.text and "tiny (5 cells)" in caplog.text
    assert list(adata.uns["psysc"]["specificity_groups"]) == ["a", "b", "c"]
    assert adata.uns["psysc"]["specificity_params"]["n_groups_dropped"] == 1
    rng = np.random.default_rng(0)
    gs = {"T": pd.Series(rng.normal(size=40), index=[f"g{i}" for i in range(40)])}
    celltype_enrichment(adata, gs, groupby="ct")
    t = adata.uns["psysc"]["celltype_enrichment"]
    assert list(t["group"]) == ["a", "b", "c"]
    assert t[["beta", "se", "pval", "fdr"]].notna().all().all()
    with pytest.raises(ValueError, match="needs 2 or more"):
        celltype_specificity(adata, "ct", min_cells_per_group=45)


def test_default_layer_from_prepare_scoring():
    adata = _small_adata()
    adata.layers["lognorm"] = adata.X.copy()
    adata.X = adata.X * 0 + sparse.random(*adata.shape, density=0.1, random_state=0, format="csr")
    adata.uns["psysc"] = {"prepare_scoring": {"layer": "lognorm"}}
    a = celltype_specificity(adata, "ct", inplace=False)
    b = celltype_specificity(adata, "ct", layer="lognorm", inplace=False)
    pd.testing.assert_frame_equal(a, b)


def test_group_moments_non_canonical_csr_and_backed(tmp_path):
    # duplicated entries (summed, as scipy does) and unsorted indices give the dense result
    rng = np.random.default_rng(11)
    rows = rng.integers(0, 40, 400)
    cols = rng.integers(0, 15, 400)
    vals = rng.random(400)
    X = sparse.csr_matrix((vals, (rows, cols)), shape=(40, 15))
    X_dup = sparse.csr_matrix((40, 15))
    X_dup.data, X_dup.indices = vals[np.lexsort((cols, rows))], cols[np.lexsort((cols, rows))].astype(np.int32)
    X_dup.indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=40))]).astype(np.int32)
    X_dup.has_canonical_format = False
    labels = rng.integers(-1, 3, 40)
    dense = X.toarray()
    for M in (X, X_dup):
        m = group_moments(M, labels, 3, block_size=7)
        for g in range(3):
            D = dense[labels == g]
            np.testing.assert_allclose(m.sum[g], D.sum(axis=0), rtol=1e-12)
            np.testing.assert_allclose(m.sumsq[g], (D * D).sum(axis=0), rtol=1e-12)
            np.testing.assert_array_equal(m.nnz[g], (D != 0).sum(axis=0))
    # a backed h5ad is streamed the same way
    adata = ad.AnnData(X.astype(np.float32), obs=pd.DataFrame({"ct": pd.Categorical(labels)},
                                                             index=[f"c{i}" for i in range(40)]))
    adata.write_h5ad(tmp_path / "x.h5ad")
    backed = ad.read_h5ad(tmp_path / "x.h5ad", backed="r")
    mb = group_moments(backed.X, labels, 3, block_size=9)
    mm = group_moments(X.astype(np.float32), labels, 3, block_size=9)
    np.testing.assert_array_equal(mb.sum, mm.sum)
    np.testing.assert_array_equal(mb.nnz, mm.nnz)


def _fresh(adata):
    """The same cells, genes and labels with no stored results: a specificity computed from scratch."""
    return ad.AnnData(adata.X.copy(), obs=adata.obs.copy(), var=pd.DataFrame(index=adata.var_names.copy()))


def test_stored_specificity_not_reused_for_other_cells_or_labels(caplog, tmp_path):
    adata, labels, names = _named_adata(seed=8)
    rng = np.random.default_rng(8)
    gs = {t: pd.Series(rng.normal(size=60), index=[f"g{i}" for i in rng.choice(80, 60, replace=False)])
          for t in ("A", "B")}
    celltype_specificity(adata, "ct")
    # a subset without group "d": the stored 4-group specificity must not be used
    sub = adata[adata.obs["ct"] != "d"].copy()
    assert "psysc_specificity" in sub.varm and "d" in list(sub.uns["psysc"]["specificity_groups"])
    with caplog.at_level(logging.INFO, logger="psysc"):
        got = celltype_enrichment(sub, gs, groupby="ct", method="all", inplace=False)
    want = celltype_enrichment(_fresh(sub), gs, groupby="ct", method="all", inplace=False)
    assert sorted(set(got["group"])) == ["a", "b", "c"]
    pd.testing.assert_frame_equal(got, want)
    assert "recomputing the specificity" in caplog.text and "computed on 150 cells, the data has" in caplog.text
    c_got = disorder_contrast(sub, gs, groupby="ct", contrasts=[("A", "B")], inplace=False)
    c_want = disorder_contrast(_fresh(sub), gs, groupby="ct", contrasts=[("A", "B")], inplace=False)
    pd.testing.assert_frame_equal(c_got, c_want)
    # the same cells re-labelled under the same key and the same group names (a new clustering)
    relab = adata.copy()
    relab.obs["ct"] = pd.Categorical(names[rng.permutation(labels)])
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="psysc"):
        celltype_enrichment(relab, gs, groupby="ct", method="all")
    want = celltype_enrichment(_fresh(relab), gs, groupby="ct", method="all", inplace=False)
    pd.testing.assert_frame_equal(relab.uns["psysc"]["celltype_enrichment"], want)
    assert "labels of obs['ct'] changed" in caplog.text
    fresh_spec = celltype_specificity(_fresh(relab), "ct", inplace=False)
    np.testing.assert_allclose(specificity_table(relab).loc[fresh_spec.index, fresh_spec.columns],
                               fresh_spec.to_numpy(), rtol=1e-12)
    # the fingerprint survives h5ad (strings and ints) and a matching one is reused, not recomputed
    relab.write_h5ad(tmp_path / "r.h5ad")
    back = ad.read_h5ad(tmp_path / "r.h5ad")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="psysc"):
        again = celltype_enrichment(back, gs, groupby="ct", method="all", inplace=False)
    assert "recomputing" not in caplog.text and "specificity of" not in caplog.text
    pd.testing.assert_frame_equal(again, want)


@pytest.mark.parametrize("store", ["h5ad", "zarr"])
def test_specific_genes_survive_h5ad_with_slash_in_group_names(tmp_path, store):
    X, labels = _random_data(seed=3, n_genes=80)
    names = np.array(["L2/3 IT", "L5/6 NP", "Astro", "Micro/PVM"])
    adata = ad.AnnData(X, obs=pd.DataFrame({"subclass": names[labels]}, index=[f"c{i}" for i in range(X.shape[0])]),
                       var=pd.DataFrame(index=[f"g{i}" for i in range(X.shape[1])]))
    celltype_specificity(adata, "subclass", top_fraction=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # anndata: slashes in keys will be refused in h5 stores
        if store == "h5ad":
            adata.write_h5ad(tmp_path / "slash.h5ad")
            back = ad.read_h5ad(tmp_path / "slash.h5ad")
        else:  # zarr refuses slashes in keys already
            adata.write_zarr(tmp_path / "slash.zarr")
            back = ad.read_zarr(tmp_path / "slash.zarr")
    exp_spec, keep_spec, genes_spec = naive_specificity(X.toarray(), labels)
    want_spec = pd.DataFrame(exp_spec.T, index=adata.var_names[genes_spec], columns=names[keep_spec])
    got_spec = specificity_table(back)
    assert sorted(got_spec.columns) == sorted(want_spec.columns) and got_spec.columns.name == "group"
    pd.testing.assert_frame_equal(got_spec, want_spec[got_spec.columns], check_names=False, rtol=1e-10)
    pd.testing.assert_frame_equal(specificity_table(back, "group_mean"), specificity_table(adata, "group_mean"))
    stored = back.uns["psysc"]["specific_genes"]
    groups = set(stored) if isinstance(stored, dict) else set(pd.DataFrame(stored)["group"].astype(str))
    assert groups == set(names)  # not split at "/" into nested keys
    # expected from the naive statistic: the 20 % of kept genes with the largest rel in each group
    _, keep, genes, rel, _ = naive_specificity(X.toarray(), labels, return_all=True)
    n_top = int(np.ceil(0.2 * genes.size))
    gnames = adata.var_names[genes]
    want = {str(names[k]): list(gnames[np.argsort(-rel[i], kind="stable")[:n_top]]) for i, k in enumerate(keep)}
    from psysc.tl._celltype import specific_gene_sets

    got = specific_gene_sets(back)
    assert sorted(got) == sorted(names) and got == want
    assert specific_gene_sets(adata) == want


def _codes(labels):
    return pd.Categorical(labels).codes


def test_too_few_matching_genes_or_covariates_raise(caplog):
    adata = _small_adata()
    kept = adata.var_names[naive_specificity(adata.X.toarray(), _codes(adata.obs["ct"]), return_all=True)[2]]
    rng = np.random.default_rng(5)
    other = [f"x{i}" for i in range(100)]
    few = pd.Series(rng.normal(size=106), index=list(kept[:6]) + other)
    with pytest.raises(ValueError, match=r"only 6 of the 106 genes of 'T' have a specificity score"):
        celltype_enrichment(adata, {"T": few}, groupby="ct")
    enough = pd.Series(rng.normal(size=112), index=list(kept[:12]) + other)  # 12 of 112: over 10 % of the set
    assert len(celltype_enrichment(adata, {"T": enough}, groupby="ct", inplace=False)) == 3
    panel = pd.Series(1.0, index=list(kept[:5]) + ["not_in_data"])  # a small curated panel: 5 of 6
    assert len(celltype_enrichment(adata, {"T": panel}, groupby="ct", inplace=False)) == 3
    with pytest.raises(ValueError, match=r"only 4 of the 5 genes"):
        celltype_enrichment(adata, {"T": pd.Series(1.0, index=list(kept[:4]) + ["x"])}, groupby="ct")
    # genes in the data but all filtered out of the specificity: the filters are named, not the gene names
    dropped = adata.var_names[~adata.var_names.isin(kept)]
    assert len(dropped) >= 5
    with pytest.raises(ValueError, match=rf"no gene of 'F' has a specificity score, although {len(dropped[:5])} of its "
                       r"6 genes are in var_names: .*lower min_cells_expressed / min_mean"):
        celltype_enrichment(adata, {"F": pd.Series(1.0, index=list(dropped[:5]) + ["x"])}, groupby="ct")
    # a weak trait beside a testable one is left out, named with its count; the other is tested as alone
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="psysc"):
        celltype_enrichment(adata, {"T": few, "OK": enough}, groupby="ct")
    assert "1 of 2 traits are left out: too few of their genes have a specificity score (T: 6 of 106)" in caplog.text
    assert "only 6 of the 106 genes of 'T'" in caplog.text
    table = adata.uns["psysc"]["celltype_enrichment"]
    assert set(table["trait"]) == {"OK"}
    assert adata.uns["psysc"]["celltype_enrichment_params"]["skipped"] == {"T": 6}
    alone = celltype_enrichment(adata, {"OK": enough}, groupby="ct", inplace=False)
    pd.testing.assert_frame_equal(table.reset_index(drop=True), alone.reset_index(drop=True))
    with pytest.raises(ValueError, match=r"none of the 2 traits can be tested: only 6 of the 106 genes of 'T'"):
        celltype_enrichment(adata, {"T": few, "T2": few.copy()}, groupby="ct")
    big = pd.Series(rng.normal(size=40), index=[f"g{i}" for i in range(40)])
    with pytest.raises(ValueError, match=r"only 6 of the 106 genes of 'T'"):
        disorder_contrast(adata, {"T": few, "U": big}, groupby="ct", contrasts=[("T", "U")])
    # mouse data, human gene set sharing one symbol: refused with the species hint
    mouse = _small_adata()
    mouse_names = [f"Gene{i}a" for i in range(mouse.n_vars)]
    mouse_names[adata.var_names.get_loc(kept[0])] = "C9orf72"  # a gene with a specificity
    mouse.var_names = mouse_names
    human = {"AD": pd.Series(1.0, index=["C9orf72", "APOE", "TREM2", "BIN1", "CLU", "PICALM", "CR1", "ABCA7"])}
    with pytest.raises(ValueError, match=r"only 1 of the 8 genes.*different species"):
        celltype_enrichment(mouse, human, groupby="ct")
    # covariates indexed by other IDs match nothing: refused with the ID hint; partial cover: a warning
    gs = {"T": pd.Series(rng.normal(size=60), index=adata.var_names)}
    ens = pd.DataFrame({"len": rng.normal(size=60)}, index=[f"ENSG{i:011d}" for i in range(60)])
    with pytest.raises(ValueError, match=r"covariates: none of their 60 rows.*Ensembl"):
        celltype_enrichment(adata, gs, groupby="ct", method="magma", covariates=ens)
    half = pd.DataFrame({"len": rng.normal(size=30)}, index=adata.var_names[:30])
    with caplog.at_level(logging.WARNING, logger="psysc"):
        celltype_enrichment(adata, gs, groupby="ct", method="magma", covariates=half, inplace=False)
    n_half = int(kept.isin(adata.var_names[:30]).sum())
    assert f"T: covariates cover {n_half} of the {len(kept)} genes in the regression" in caplog.text


def _genes_raw_tables(adata, rng, n_tables):
    """``n_tables`` MAGMA .genes.raw-like tables of adata's genes on two chromosomes (one LD reference: the same
    banded gene-gene correlation ``R``, z-scores correlated as ``R``), and ``R``."""
    from _magma_raw import banded_correlation

    n = adata.n_vars
    chroms = np.repeat(["1", "2"], [45, n - 45])
    start = np.concatenate([np.sort(rng.integers(1, 10**7, 45)), np.sort(rng.integers(1, 10**7, n - 45))])
    R = banded_correlation(chroms, rng, width=5, strength=0.9)
    tables = [pd.DataFrame({
        "GENE": adata.var_names, "CHR": chroms, "START": start, "STOP": start + rng.integers(500, 50_000, n),
        "NSNPS": rng.integers(2, 80, n), "NPARAM": rng.integers(1, 20, n), "N": rng.integers(40_000, 50_000, n),
        "MAC": rng.uniform(50, 900, n), "ZSTAT": np.linalg.cholesky(R) @ rng.normal(size=n) + 0.2,
    }) for _ in range(n_tables)]
    return tables, R


def test_genes_raw_fits_magma_models_by_gls_as_statsmodels(tmp_path, caplog):
    """With a .genes.raw table, "magma" and "top10" are GLS with its correlations (statsmodels GLS on the same
    design: the method's regressors, MAGMA's default covariates incl. inverse MAC, log gene length); seismic
    stays OLS."""
    import statsmodels.api as sm
    from _magma_raw import write_genes_raw

    adata, labels, names = _named_adata(seed=8)
    (table,), R = _genes_raw_tables(adata, np.random.default_rng(12), 1)
    n = adata.n_vars
    write_genes_raw(tmp_path / "T.genes.raw", table, R)
    gs = psysc.gwas.read_magma(tmp_path / "T.genes.raw", n_top=None, table=True)
    t = celltype_enrichment(adata, gs, groupby="ct", method="all", top_fraction=0.2, inplace=True)
    t = adata.uns["psysc"]["celltype_enrichment"]
    assert adata.uns["psysc"]["celltype_enrichment_params"]["fit"]["T"] == {
        "seismic": "ols", "magma": "gls", "top10": "gls"}
    spec, keep, genes, rel, mean = naive_specificity(adata.X.toarray(), labels, return_all=True)
    idx = genes  # the genes with a specificity, in var order (= genome order here)
    tab = table.iloc[idx]
    size, density, inv_mac = tab["NSNPS"] * 1.0, tab["NPARAM"] / tab["NSNPS"], 1.0 / tab["MAC"]
    cov = np.column_stack([np.log(tab["STOP"] - tab["START"] + 1.0), size, np.log(size), density, np.log(density),
                           tab["N"], np.log(tab["N"]), inv_mac, np.log(inv_mac)])
    y = tab["ZSTAT"].to_numpy()
    sigma = R[np.ix_(idx, idx)]
    n_top = int(np.ceil(0.2 * len(idx)))
    for k, grp in enumerate(names[keep]):
        top = np.isin(np.arange(len(idx)), np.argsort(-rel[k], kind="stable")[:n_top]).astype(float)
        designs = {
            "magma": (np.column_stack([mean[k], np.ones(len(idx)), mean.mean(axis=0), cov]), sigma),
            "top10": (np.column_stack([top, np.ones(len(idx)), cov]), sigma),
            "seismic": (np.column_stack([spec[k], np.ones(len(idx))]), np.eye(len(idx))),  # specificity alone
        }
        for m, (X, s) in designs.items():
            fit = sm.GLS(y, X, sigma=s).fit()
            row = t[(t.method == m) & (t.group == grp)].iloc[0]
            assert row["beta"] == pytest.approx(fit.params[0], rel=1e-6), (m, grp)
            assert row["se"] == pytest.approx(fit.bse[0], rel=1e-6), (m, grp)
            assert row["pval"] == pytest.approx(stats.t.sf(fit.tvalues[0], fit.df_resid), rel=1e-5, abs=1e-12)
    gls = adata.uns["psysc"]["celltype_enrichment_params"]["gls"]["T"]
    assert gls["n_genes_with_correlations"] == len(idx) and gls["shrinkage"] == 0.0
    # without the correlations (a .genes.out of the same genes) the same design is fitted by OLS
    out = gs["T"].copy()
    out.attrs = {}
    o = celltype_enrichment(adata, {"T": out}, groupby="ct", method="magma", inplace=False)
    g = t[t.method == "magma"].reset_index(drop=True)
    assert not np.allclose(o["se"], g["se"])
    # a table renamed after reading matches none of its correlations: OLS, said in a warning and in the params
    renamed = gs["T"].rename(index=lambda x: f"x{x}")
    renamed.index = gs["T"].index
    renamed.attrs["gene_corr"] = type(gs["T"].attrs["gene_corr"])(
        [f"other{i}" for i in range(n)], gs["T"].attrs["gene_corr"].matrix)
    with caplog.at_level(logging.WARNING, logger="psysc"):
        celltype_enrichment(adata, {"T": renamed}, groupby="ct", method="magma")
    assert "none of the 74 genes of the regression" in caplog.text and "fitted by OLS" in caplog.text
    assert adata.uns["psysc"]["celltype_enrichment_params"]["fit"]["T"] == {"magma": "ols"}
    pd.testing.assert_frame_equal(adata.uns["psysc"]["celltype_enrichment"], o)


def test_gls_whitener_shrinks_a_correlation_matrix_that_is_not_positive_definite(caplog):
    from psysc._core._gls import BandWhitener, GeneCorrelations

    # eigenvalue 1 - 0.9 * sqrt(2) < 0; a barely singular matrix is shrunk by at least 0.05 (the ridge of PoPS)
    R = np.array([[1.0, 0.9, 0.0], [0.9, 1.0, 0.9], [0.0, 0.9, 1.0]])
    genes = ["a", "b", "c", "d"]  # d: no correlations, taken as uncorrelated
    with caplog.at_level(logging.WARNING, logger="psysc"):
        w = BandWhitener(["c", "d", "a", "b"], GeneCorrelations(genes[:3], R))
    assert w.shrinkage == 0.5 and "not positive definite" in caplog.text
    assert np.linalg.eigvalsh(0.8 * R + 0.2 * np.eye(3)).min() < 0  # the grid's 0.2 is not enough
    singular = np.array([[1.0, 1.0], [1.0, 1.0]])  # two genes of correlation 1
    assert BandWhitener(["a", "b"], GeneCorrelations(["a", "b"], singular)).shrinkage == 0.05
    # a gene that duplicates its neighbour in a positive definite band: a rounding-size pivot counts as singular
    from _magma_raw import banded_correlation

    dup = banded_correlation(np.ones(50), np.random.default_rng(0))
    dup[11, :], dup[:, 11] = dup[10, :], dup[:, 10]
    dup[11, 11] = 1.0
    names = [f"g{i}" for i in range(50)]
    assert np.linalg.eigvalsh(dup).min() < 1e-12
    assert BandWhitener(names, GeneCorrelations(names, dup)).shrinkage == 0.05
    assert BandWhitener(names[:11], GeneCorrelations(names, dup)).shrinkage == 0.0  # without the duplicate
    shrunk = (1 - w.shrinkage) * R + w.shrinkage * np.eye(3)
    assert np.linalg.eigvalsh(shrunk).min() > 0
    assert w.bandwidth == 1 and w.n_matched == 3
    x = np.array([1.0, 2.0, 3.0, 4.0])  # rows c, d, a, b
    L = np.linalg.cholesky(shrunk)
    np.testing.assert_allclose(w(x), np.r_[np.linalg.solve(L, [3.0, 4.0, 1.0]), 2.0], rtol=1e-12)


def test_groups_keep_the_category_order_and_clusters_sort_as_numbers():
    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)
    order = ["oligodendrocytes", "neurons", "astrocytes", "OPC", "microglia", "endothelial", "fetal_quiescent",
             "fetal_replicating", "hybrid"]
    adata.obs["cell_type"] = adata.obs["cell_type"].cat.reorder_categories(order)
    celltype_specificity(adata, "cell_type", min_cells_per_group=10)
    kept = [g for g in order if (adata.obs["cell_type"] == g).sum() >= 10]
    assert list(specificity_table(adata).columns) == kept  # as disorder_enrichment and scanpy order groups
    gs = psysc.datasets.gwas_gene_sets(["SCZ"])
    t = celltype_enrichment(adata, gs, groupby="cell_type", method="seismic", min_cells_per_group=10, inplace=False)
    assert list(t["group"]) == kept
    # integer cluster labels (leiden-like, as plain strings): 2 before 10
    adata.obs["cluster"] = (np.arange(adata.n_obs) % 12).astype(str)
    t = celltype_enrichment(adata, gs, groupby="cluster", method="seismic", min_cells_per_group=10, inplace=False)
    assert list(t["group"]) == [str(i) for i in range(12)]


def test_another_key_added_finds_the_prepared_layer():
    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)  # layers["psysc_norm"], recorded in uns["psysc"]
    celltype_specificity(adata, "cell_type", min_cells_per_group=10, key_added="by_type")
    celltype_specificity(adata, "cell_type", min_cells_per_group=10)
    np.testing.assert_array_equal(adata.varm["by_type_specificity"], adata.varm["psysc_specificity"])
    assert adata.uns["by_type"]["specificity_params"]["layer"] == "psysc_norm"


def test_contrasts_of_genes_raw_tables_are_gls_as_statsmodels(tmp_path, caplog):
    """Traits read from .genes.raw files (one LD reference): the MAGMA-model contrast A - B and the shared mean are
    GLS with the correlations, as statsmodels GLS on the scaled responses with both traits' covariates; beta_a is
    celltype_enrichment's GLS slope of A; with a trait lacking correlations the contrast is OLS, with a warning."""
    import statsmodels.api as sm
    from _magma_raw import write_genes_raw

    adata, labels, names = _named_adata(seed=8)
    made, R = _genes_raw_tables(adata, np.random.default_rng(21), 2)
    tables, gs = dict(zip(("A", "B"), made, strict=True)), {}
    for trait in tables:
        write_genes_raw(tmp_path / f"{trait}.genes.raw", tables[trait], R)
        gs[trait] = psysc.gwas.read_magma(tmp_path / f"{trait}.genes.raw", n_top=None, table=True)[trait]
    got = disorder_contrast(adata, gs, groupby="ct", contrasts=[("A", "B")], shared=["A", "B"],
                            method=["magma", "seismic"], inplace=True)
    params = adata.uns["psysc"]["disorder_contrast_params"]
    assert params["fit"]["A - B"] == {"magma": "gls", "seismic": "ols"}
    assert params["fit"]["shared"]["magma"] == "gls"
    got = adata.uns["psysc"]["disorder_contrast"]
    spec, keep, idx, _, mean = naive_specificity(adata.X.toarray(), labels, return_all=True)
    sigma = R[np.ix_(idx, idx)]

    def covs(trait):
        tab = tables[trait].iloc[idx]
        size, density, inv_mac = tab["NSNPS"] * 1.0, tab["NPARAM"] / tab["NSNPS"], 1.0 / tab["MAC"]
        return np.column_stack([np.log(tab["STOP"] - tab["START"] + 1.0), size, np.log(size), density,
                                np.log(density), tab["N"], np.log(tab["N"]), inv_mac, np.log(inv_mac)])

    z = {t: tables[t]["ZSTAT"].to_numpy()[idx] for t in tables}
    z = {t: v / v.std() for t, v in z.items()}
    one = celltype_enrichment(adata, {"A": gs["A"]}, groupby="ct", method="magma", inplace=False).set_index("group")
    for k, grp in enumerate(names[keep]):
        design = [mean[k], np.ones(len(idx)), mean.mean(axis=0)]
        rows = got[(got.group == grp) & (got.method == "magma")].set_index("contrast")
        for contrast, y, cov, sided in (("A - B", z["A"] - z["B"], [covs("A"), covs("B")], "two"),
                                        ("shared", (z["A"] + z["B"]) / 2, [covs("A"), covs("B")], "one")):
            fit = sm.GLS(y, np.column_stack(design + cov), sigma=sigma).fit()
            assert rows.loc[contrast, "beta"] == pytest.approx(fit.params[0], rel=1e-6), (contrast, grp)
            assert rows.loc[contrast, "se"] == pytest.approx(fit.bse[0], rel=1e-6), (contrast, grp)
            p = fit.pvalues[0] if sided == "two" else stats.t.sf(fit.tvalues[0], fit.df_resid)
            assert rows.loc[contrast, "pval"] == pytest.approx(p, rel=1e-5, abs=1e-12)
        sd_a = tables["A"]["ZSTAT"].to_numpy()[idx].std()
        assert rows.loc["A - B", "beta_a"] * sd_a == pytest.approx(one.loc[grp, "beta"], rel=1e-6)
    # B without its correlations (a .genes.out of the same genes): the contrast is OLS, said in a warning
    plain_b = gs["B"].copy()
    plain_b.attrs = {}
    with caplog.at_level(logging.WARNING, logger="psysc"):
        mixed = disorder_contrast(adata, {"A": gs["A"], "B": plain_b}, groupby="ct", contrasts=[("A", "B")],
                                  shared=[], method="magma", inplace=False)
    assert "fitted by OLS" in caplog.text
    for k, grp in enumerate(names[keep]):
        fit = sm.OLS(z["A"] - z["B"], np.column_stack([mean[k], np.ones(len(idx)), mean.mean(axis=0), covs("A"),
                                                       covs("B")])).fit()
        assert mixed.set_index("group").loc[grp, "beta"] == pytest.approx(fit.params[0], rel=1e-6)


def test_groups_without_spread_give_infinite_or_zero_statistics_without_warnings():
    """No spread in either group: +-inf where the group means differ, 0 where they are equal; no numpy warning."""
    import warnings

    X = np.zeros((40, 3))
    X[:20, 0] = 1.5  # expressed only, and evenly, in group a
    X[:, 1] = 2.5  # the same everywhere
    X[20:, 2] = (np.arange(20) % 3) * 0.7
    adata = ad.AnnData(sparse.csr_matrix(X), obs=pd.DataFrame({"g": pd.Categorical(["a"] * 20 + ["b"] * 20)},
                                                               index=[str(i) for i in range(40)]))
    adata.var_names = ["x", "y", "z"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        psysc.tl.celltype_specificity(adata, groupby="g", min_cells_per_group=2, min_cells_expressed=0, min_mean=0)
    t = adata.varm["psysc_specificity_t"]
    np.testing.assert_array_equal(t[:2], [[np.inf, -np.inf], [0.0, 0.0]])
    assert t[2, 0] < 0 < t[2, 1]


def test_duplicated_genes_and_repeated_methods(darmanis):
    dup = darmanis[:, :2000].copy()
    dup.var_names = [*dup.var_names[:-1], dup.var_names[0]]
    with pytest.raises(ValueError, match="occur more than once in var_names.*var_names_make_unique"):
        psysc.tl.celltype_specificity(dup, "cell_type")
    gs = psysc.datasets.gwas_gene_sets(["SCZ"])
    once = psysc.tl.celltype_enrichment(darmanis, gs, groupby="cell_type", method="seismic", inplace=False)
    twice = psysc.tl.celltype_enrichment(darmanis, gs, groupby="cell_type", method=["seismic", "seismic"],
                                         inplace=False)
    pd.testing.assert_frame_equal(twice.reset_index(drop=True), once.reset_index(drop=True))


def test_a_set_too_small_is_told_so_and_a_refused_call_leaves_adata_as_it_was():
    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)
    psysc.tl.celltype_specificity(adata, "cell_type", min_cells_per_group=10)
    before = {k: v.copy() for k, v in adata.varm.items()}
    params = dict(adata.uns["psysc"]["specificity_params"])
    adata.obs["ct2"] = adata.obs["cell_type"].astype(str)
    with pytest.raises(ValueError, match=r"gene set 'X' has 3 genes, all in var_names .* at least 5 genes"):
        psysc.tl.celltype_enrichment(adata, {"X": ["GFAP", "AQP4", "SLC1A3"]}, groupby="ct2")
    assert adata.uns["psysc"]["specificity_params"] == params  # the specificity of groupby='cell_type' is kept
    for k, v in before.items():
        np.testing.assert_array_equal(adata.varm[k], v)
    # with a usable set, the specificity of the new grouping is computed and stored
    psysc.tl.celltype_enrichment(adata, {"ASTRO": ["GFAP", "AQP4", "SLC1A3", "ALDH1L1", "SLC1A2", "GJA1"]},
                                 groupby="ct2", min_cells_per_group=10)
    assert adata.uns["psysc"]["specificity_params"]["groupby"] == "ct2"
