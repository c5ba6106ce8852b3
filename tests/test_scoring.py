"""Behaviour of the scoring tools against naive re-derivations, invariances and null calibration."""

import builtins
import io
import logging
import sys
import warnings

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
from scipy import sparse, stats

import psysc
from psysc._core._group import bh_fdr, distribution_match_rows, gearys_c_rows
from psysc._core._scoring import GROUPED_QUERIES, monte_carlo_pvalues
from psysc._core._stats import gene_mean_var


def synthetic_counts(n_cells=400, n_genes=1500, seed=0, density=0.2):
    rng = np.random.default_rng(seed)
    mu = rng.lognormal(0, 1.2, n_genes) * density * 3
    size = rng.lognormal(0, 0.3, n_cells)
    X = rng.poisson(np.outer(size, mu)).astype(np.float32)
    adata = ad.AnnData(sparse.csr_matrix(X))
    adata.var_names = [f"g{i}" for i in range(n_genes)]
    adata.obs_names = [f"c{i}" for i in range(n_cells)]
    adata.obs["group"] = pd.Categorical(rng.choice(["a", "b", "c"], n_cells))
    return adata


@pytest.fixture(scope="module")
def prepared():
    adata = synthetic_counts()
    psysc.pp.prepare_scoring(adata)
    return adata


def random_sets(adata, n_sets, size=100, seed=1):
    rng = np.random.default_rng(seed)
    return {
        f"t{i}": pd.Series(rng.uniform(1, 5, size), index=rng.choice(adata.var_names, size, replace=False))
        for i in range(n_sets)
    }


# --- kernels against naive implementations -------------------------------------------------------------


@pytest.mark.parametrize("block_size", [1, 7, 1000])
def test_streamed_gene_stats_equal_scipy_in_memory(block_size):
    X = sparse.random(53, 40, density=0.3, format="csr", dtype=np.float32, random_state=0)
    mean, var = gene_mean_var(X, block_size=block_size)
    np.testing.assert_array_equal(mean, np.asarray(X.mean(axis=0)).ravel())
    np.testing.assert_array_equal(var, np.asarray(X.power(2).mean(axis=0)).ravel() - mean**2)
    ct_mean, _ = gene_mean_var(X, block_size=block_size, expm1=True)
    np.testing.assert_array_equal(ct_mean, np.asarray(X.copy().expm1().mean(axis=0)).ravel())
    dmean, dvar = gene_mean_var(X.toarray(), block_size=block_size)
    np.testing.assert_allclose(dmean, X.toarray().mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(dvar, X.toarray().var(axis=0), rtol=1e-5)


def test_log_normalised_input_is_read_once_with_scipys_statistics(monkeypatch, tmp_path):
    """prepare_scoring reads log-normalised sparse data in one pass (checks and gene statistics together), with
    the statistics of scipy on the whole matrix; raw counts still get the statistics of their normalised layer."""
    import psysc._core._stats as stats_module
    import psysc.pp._prepare as prepare_module

    counts = synthetic_counts(n_cells=25_000, n_genes=60, seed=3)
    logn = counts.copy()
    logn.X = logn.X.multiply(1e4 / logn.X.sum(axis=1)).tocsr().astype(np.float32)
    logn.X.data = np.log1p(logn.X.data)
    X = logn.X.copy()
    passes = []
    for module in (stats_module, prepare_module):
        def counting(M, block_size=10_000, _inner=module.iter_row_blocks, **kw):
            if block_size > 1:
                passes.append(block_size)
            return _inner(M, block_size, **kw)
        monkeypatch.setattr(module, "iter_row_blocks", counting)
    psysc.pp.prepare_scoring(logn)
    assert len(passes) == 1  # 3 blocks of 10,000 rows, one pass
    mean = np.asarray(X.mean(axis=0)).ravel()
    np.testing.assert_array_equal(logn.var["psysc_mean"], mean)
    np.testing.assert_array_equal(logn.var["psysc_var"], np.asarray(X.power(2).mean(axis=0)).ravel() - mean**2)
    E = X.copy()
    E.data = np.expm1(E.data)
    ct_mean = np.asarray(E.mean(axis=0)).ravel()
    np.testing.assert_array_equal(logn.var["psysc_ct_mean"], ct_mean)
    np.testing.assert_array_equal(logn.var["psysc_ct_var"], np.asarray(E.power(2).mean(axis=0)).ravel() - ct_mean**2)
    # raw counts: normalised first, statistics of psysc_norm (equal to those of the same log-normalised values)
    passes.clear()
    psysc.pp.prepare_scoring(counts)
    assert len(passes) == 4  # check, normalisation (one block in memory), the two statistics of the new layer
    N = counts.layers["psysc_norm"]
    np.testing.assert_array_equal(counts.var["psysc_mean"], np.asarray(N.mean(axis=0)).ravel())
    # a backed file gives the same statistics in one pass
    path = tmp_path / "logn.h5ad"
    ad.AnnData(X, var=pd.DataFrame(index=logn.var_names)).write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    passes.clear()
    psysc.pp.prepare_scoring(backed)
    assert len(passes) == 1
    pd.testing.assert_frame_equal(backed.var.filter(like="psysc_"), logn.var.filter(like="psysc_"))


def _split_entries(M):
    """``M`` (CSR) with every stored value split into two duplicated entries: the same matrix for scipy."""
    C = M.tocoo()
    half = (C.data / 2).astype(C.data.dtype)
    rows, cols, vals = np.r_[C.row, C.row], np.r_[C.col, C.col], np.r_[half, C.data - half]
    order = np.argsort(rows, kind="stable")
    indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=M.shape[0]))]
    D = sparse.csr_matrix((vals[order], cols[order], indptr), shape=M.shape)
    assert D.nnz == 2 * M.nnz and abs(D - M).max() < 1e-6
    return D


def test_backed_counts_and_duplicated_entries_are_normalised_as_scanpy(tmp_path):
    """Raw counts in a backed h5ad are normalised block by block, and a CSR matrix with duplicated entries (which
    add up in scipy) is normalised and summarised as the same matrix without them: scanpy on the plain matrix."""
    import scanpy as sc

    counts = synthetic_counts(n_cells=500, n_genes=80, seed=4)
    ref = counts.copy()
    sc.pp.normalize_total(ref, target_sum=1e4)
    sc.pp.log1p(ref)
    want = ref.X.toarray()
    mean = want.mean(axis=0, dtype=np.float64)
    var = want.astype(np.float64).var(axis=0)

    counts.write_h5ad(tmp_path / "counts.h5ad")
    backed = ad.read_h5ad(tmp_path / "counts.h5ad", backed="r")
    split = counts.copy()
    split.X = _split_entries(counts.X)
    logn = counts.copy()
    logn.X = _split_entries(sparse.csr_matrix(ref.X))
    for adata in (backed, split, logn):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(psysc.pp._prepare, "NORMALISE_BLOCK", 64)  # the backed file in 8 blocks
            psysc.pp.prepare_scoring(adata)
        layer = adata.uns["psysc"]["prepare_scoring"]["layer"]
        got = adata.X if layer == "X" else adata.layers[layer]
        got = got.toarray() if sparse.issparse(got) else np.asarray(got)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(adata.var["psysc_mean"], mean, rtol=1e-5)
        np.testing.assert_allclose(adata.var["psysc_var"], var, rtol=1e-4, atol=1e-9)
    scores = [psysc.tl.score_disorders(a, random_sets(a, 2, size=10), n_ctrl=20, inplace=False)
              for a in (backed, split, logn)]
    for other in scores[1:]:
        for t in scores[0]:
            np.testing.assert_allclose(other[t]["norm_score"], scores[0][t]["norm_score"], rtol=1e-4, atol=1e-5)


def test_pooled_pvalues_equal_naive_counts():
    rng = np.random.default_rng(0)
    norm = rng.normal(size=60)
    ctrl = rng.normal(size=(60, 30))
    ctrl[3, 4] = norm[7]  # an exact tie counts as ">="
    mc, pooled = monte_carlo_pvalues(norm, ctrl)
    null = ctrl.ravel()
    naive = np.array([(1 + np.sum(null >= v)) / (1 + null.size) for v in norm])
    naive_mc = np.array([(1 + np.sum(ctrl[i] >= norm[i])) / 31 for i in range(60)])
    np.testing.assert_allclose(pooled, naive, rtol=0, atol=0)
    np.testing.assert_allclose(mc, naive_mc, rtol=0, atol=0)


def test_gearys_c_equals_double_loop():
    rng = np.random.default_rng(0)
    A = sparse.random(40, 40, density=0.15, random_state=1, format="csr")
    A = A + A.T
    V = rng.normal(size=(40, 5))
    got = gearys_c_rows(A, V.T)  # one vector per row
    dense = A.toarray()
    for k in range(5):
        x = V[:, k]
        num = sum(dense[i, j] * (x[i] - x[j]) ** 2 for i in range(40) for j in range(40))
        expected = (40 - 1) * num / (2 * dense.sum() * ((x - x.mean()) ** 2).sum())
        assert got[k] == pytest.approx(expected, rel=1e-12)


def test_bh_fdr_equals_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = np.random.default_rng(0).uniform(size=200) ** 3
    np.testing.assert_allclose(bh_fdr(p), multipletests(p, method="fdr_bh")[1], rtol=1e-12)


def test_distribution_match_keeps_rank_order_and_values():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=20)
    vals = rng.normal(size=(20, 3))
    out = distribution_match_rows(np.ascontiguousarray(vals.T), ref).T
    for k in range(3):
        np.testing.assert_array_equal(np.sort(out[:, k]), np.sort(ref))
        np.testing.assert_array_equal(stats.rankdata(out[:, k]), stats.rankdata(vals[:, k]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_distribution_match_breaks_ties_by_position_as_numpys_stable_sort(dtype):
    rng = np.random.default_rng(3)
    vals = (rng.integers(-3, 4, size=(300, 5)) * rng.choice([0.5, 1e-30, 3e30], 5)).astype(dtype)  # many ties
    vals[:40, 0] = -0.0  # equal to +0.0
    vals[40:80, 0] = 0.0
    vals[80:90, 1] = -np.inf
    vals[90:95, 1] = np.inf
    ref = rng.normal(size=300).astype(np.float32)
    out = distribution_match_rows(np.ascontiguousarray(vals.T), ref).T
    expected = np.empty(vals.shape, dtype=np.float32)
    for k in range(vals.shape[1]):
        expected[np.argsort(vals[:, k], kind="stable"), k] = np.sort(ref)
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.float32


# --- invariances -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inplace_and_returned_results_agree(prepared, dtype):
    adata = prepared.copy()
    sets = random_sets(adata, 2)
    returned = psysc.tl.score_disorders(adata, sets, n_ctrl=50, inplace=False, dtype=dtype)
    psysc.tl.score_disorders(adata, sets, n_ctrl=50, dtype=dtype)
    for trait, df in returned.items():
        assert (df.dtypes == dtype).all()  # the precision asked for, in every result
        for col in df.columns:
            np.testing.assert_array_equal(adata.obs[f"psysc_{trait}_{col}"], df[col])
            assert adata.obs[f"psysc_{trait}_{col}"].dtype == dtype
        assert adata.obsm[f"psysc_{trait}_ctrl_norm_score"].shape == (adata.n_obs, 50)
        assert adata.obsm[f"psysc_{trait}_ctrl_norm_score"].dtype == dtype
    assert adata.uns["psysc"]["score_disorders"]["traits"] == list(sets)
    assert adata.uns["psysc"]["score_disorders"]["params"]["n_ctrl"] == 50


def test_scores_do_not_depend_on_block_size_dense_input_or_other_traits(prepared):
    sets = random_sets(prepared, 3)
    full = psysc.tl.score_disorders(prepared, sets, n_ctrl=40, inplace=False, dtype="float64")
    blocks = psysc.tl.score_disorders(prepared, sets, n_ctrl=40, inplace=False, dtype="float64", block_size=17)
    alone = psysc.tl.score_disorders(prepared, {"t1": sets["t1"]}, n_ctrl=40, inplace=False, dtype="float64")
    dense = prepared.copy()
    dense.layers["psysc_norm"] = dense.layers["psysc_norm"].toarray()
    dense_res = psysc.tl.score_disorders(dense, sets, n_ctrl=40, inplace=False, dtype="float64")
    for trait in sets:
        pd.testing.assert_frame_equal(full[trait], blocks[trait], rtol=1e-6)
        pd.testing.assert_frame_equal(full[trait], dense_res[trait], rtol=1e-6)
    pd.testing.assert_frame_equal(full["t1"], alone["t1"], rtol=1e-6)


@pytest.mark.parametrize("kind", ["counts", "log"])
def test_dense_float16_input_is_scored_as_its_float32_copy(kind):
    """float16 sums overflow at 65,504 (a cell's counts, a gene's expm1 moments): psysc sums them in float32, so
    float16 data give the statistics and scores of the same values in float32, without overflow warnings."""
    import scanpy as sc

    base = synthetic_counts(n_cells=300, n_genes=400, seed=3)
    base.X = base.X.multiply(300).tocsr()  # cells of ~10^5 counts: beyond float16's sums
    if kind == "log":
        sc.pp.normalize_total(base, target_sum=1e4)
        sc.pp.log1p(base)
    half = base.copy()
    half.X = base.X.toarray().astype(np.float16)
    single = base.copy()
    single.X = half.X.astype(np.float32)
    sets = random_sets(base, 2, size=40)
    res = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for name, adata in (("half", half), ("single", single)):
            psysc.pp.prepare_scoring(adata)
            res[name] = psysc.tl.score_disorders(adata, sets, n_ctrl=30, inplace=False)
    pd.testing.assert_frame_equal(half.var, single.var)
    for trait in sets:
        pd.testing.assert_frame_equal(res["half"][trait], res["single"][trait])
    # the cells in another order are found by name, their sums taken in float64 as when prepared
    if kind == "log":
        shuffled = half[np.r_[1, 0, 2 : half.n_obs]].copy()
        psysc.tl.score_disorders(shuffled, sets, n_ctrl=30, inplace=False)


@pytest.mark.parametrize("rng", ["numpy", "scdrs"])
def test_traits_are_scored_in_batches_that_fit_in_memory(prepared, monkeypatch, caplog, rng):
    import psysc.tl._score as score_module

    sets = random_sets(prepared, 5)
    n_ctrl = 40
    per_trait = prepared.n_obs * n_ctrl * 4  # float32 control scores
    full = psysc.tl.score_disorders(prepared, sets, n_ctrl=n_ctrl, inplace=False, rng=rng)
    # room for two traits' control scores in half the memory: batches of 2, 2 and 1
    monkeypatch.setattr(score_module, "available_memory", lambda: 4 * per_trait + 10)
    with caplog.at_level(logging.INFO, logger="psysc"):
        batched = psysc.tl.score_disorders(prepared, sets, n_ctrl=n_ctrl, inplace=False, rng=rng)
    assert "scoring them 2 at a time" in caplog.text and "traits 5-5 of 5" in caplog.text
    assert list(batched) == list(full)
    for trait in sets:
        pd.testing.assert_frame_equal(batched[trait], full[trait], check_exact=True)
    # keeping every trait's control scores cannot fit: refused before any work, with the ways out
    adata = prepared.copy()
    with pytest.raises(MemoryError, match=r"5 traits needs .*inplace=False.*"):
        psysc.tl.score_disorders(adata, sets, n_ctrl=n_ctrl, rng=rng)
    assert not any(k.endswith("_ctrl_norm_score") for k in adata.obsm)
    monkeypatch.setattr(score_module, "available_memory", lambda: per_trait - 1)
    with pytest.raises(MemoryError, match="one trait need .*lower n_ctrl"):
        psysc.tl.score_disorders(prepared, sets, n_ctrl=n_ctrl, inplace=False, rng=rng)


def test_a_cgroup_limit_counts_its_inactive_file_cache_as_free(tmp_path, monkeypatch):
    # a batch job's cgroup v2: 10 GB limit, 9 GB charged of which 6 GB is page cache of a file read once
    import psysc._utils as utils

    (tmp_path / "memory.max").write_text(f"{10 * 2**30}\n")
    (tmp_path / "memory.current").write_text(f"{9 * 2**30}\n")
    (tmp_path / "memory.stat").write_text(f"anon {3 * 2**30}\nfile {6 * 2**30}\ninactive_file {6 * 2**30}\n")
    monkeypatch.setattr(utils, "CGROUP", tmp_path)
    monkeypatch.setitem(sys.modules, "psutil", None)  # the system's MemAvailable, larger here
    monkeypatch.setattr(builtins, "open", _meminfo_of(64 * 2**30))
    assert utils.available_memory() == 7 * 2**30  # 10 - (9 - 6) GB
    (tmp_path / "memory.max").write_text("max\n")  # no limit: the system's
    assert utils.available_memory() == 64 * 2**30


def _meminfo_of(available: int):
    real = builtins.open

    def fake(path, *args, **kwargs):
        if str(path) == "/proc/meminfo":
            return io.StringIO(f"MemTotal: {2 * available // 1024} kB\nMemAvailable: {available // 1024} kB\n")
        return real(path, *args, **kwargs)
    return fake


def test_available_memory_is_within_the_machine_memory():
    from pathlib import Path

    from psysc._utils import available_memory

    meminfo = Path("/proc/meminfo")
    if not meminfo.exists():
        pytest.skip("no /proc/meminfo")
    total_kb = next(int(line.split()[1]) for line in meminfo.read_text().splitlines() if line.startswith("MemTotal:"))
    avail = available_memory()
    assert 0 < avail <= total_kb * 1024


def test_backed_h5ad_is_streamed_with_the_same_result(prepared, tmp_path):
    adata = prepared.copy()
    adata.X = adata.layers.pop("psysc_norm")
    adata.uns["psysc"]["prepare_scoring"]["layer"] = "X"
    sets = random_sets(adata, 1)
    expected = psysc.tl.score_disorders(adata, sets, n_ctrl=30, inplace=False)
    adata.write_h5ad(tmp_path / "a.h5ad")
    backed = ad.read_h5ad(tmp_path / "a.h5ad", backed="r")
    got = psysc.tl.score_disorders(backed, sets, n_ctrl=30, inplace=False, block_size=64)
    pd.testing.assert_frame_equal(got["t0"], expected["t0"])


def test_same_seed_same_result_other_seed_other_controls(prepared):
    sets = random_sets(prepared, 1)
    a = psysc.tl.score_disorders(prepared, sets, n_ctrl=30, seed=3, inplace=False)["t0"]
    b = psysc.tl.score_disorders(prepared, sets, n_ctrl=30, seed=3, inplace=False)["t0"]
    c = psysc.tl.score_disorders(prepared, sets, n_ctrl=30, seed=4, inplace=False)["t0"]
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["norm_score"], c["norm_score"])
    np.testing.assert_array_equal(a["raw_score"], c["raw_score"])  # the disease set itself is the same


# --- calibration -----------------------------------------------------------------------------------------


def null_pvalues(data_seed=5, set_seed=9, score_seed=None, n_ctrl=200):
    """Pooled and per-cell Monte Carlo p-values of 10 random 200-gene sets on 600 cells without signal."""
    adata = synthetic_counts(n_cells=600, n_genes=2000, seed=data_seed)
    psysc.pp.prepare_scoring(adata)
    res = psysc.tl.score_disorders(
        adata, random_sets(adata, 10, size=200, seed=set_seed), n_ctrl=n_ctrl, seed=score_seed, inplace=False
    )
    p = np.concatenate([df["pval"].to_numpy() for df in res.values()])
    mc = np.concatenate([df["mc_pval"].to_numpy() for df in res.values()])
    return p, mc


def assert_uniform_pvalues(p, mc, n_ctrl, n_sd=4.5, ks_alpha=1e-3):
    """Null p-values against U(0, 1), with bounds from the number of p-values rather than hand-picked.

    - the fraction with p <= alpha within ``n_sd`` binomial standard deviations sqrt(alpha (1 - alpha) / n) of
      alpha (the pooled null has 600 x n_ctrl scores, so its 1 / (n_null + 1) grid is negligible);
    - the Kolmogorov-Smirnov statistic below its critical value at level ``ks_alpha`` for n p-values;
    - a cell's Monte Carlo p-value (1 + k) / (n_ctrl + 1) is <= 0.05 when k <= floor(0.05 (n_ctrl + 1)) - 1 of its
      exchangeable controls beat it, which has probability floor(0.05 (n_ctrl + 1)) / (n_ctrl + 1) exactly.

    The p-values of one trait share a gene set and a null pool, so they are not independent; over 21 runs (data,
    gene-set and control seeds 0..4, one at a time and all together) the largest deviation was 2.8 binomial SDs
    and the largest KS statistic 0.011 (critical value 0.025 for n = 6,000), so 4.5 SDs leave room without
    hiding miscalibration: normalised scores inflated 1.1x are 6-7 SDs off at alpha <= 0.1 (1.3x: 17-23 SDs).
    """
    n = p.size
    for alpha in (0.01, 0.05, 0.1, 0.5):
        band = n_sd * np.sqrt(alpha * (1 - alpha) / n)
        assert abs(np.mean(p <= alpha) - alpha) <= band, (alpha, np.mean(p <= alpha), band)
    ks = stats.kstest(p, "uniform").statistic
    assert ks < stats.kstwo.ppf(1 - ks_alpha, n), ks
    q = np.floor(0.05 * (n_ctrl + 1)) / (n_ctrl + 1)
    band = n_sd * np.sqrt(q * (1 - q) / mc.size)
    assert abs(np.mean(mc <= 0.05) - q) <= band, (np.mean(mc <= 0.05), q, band)


def test_null_pvalues_are_uniform():
    """Random gene sets on data without signal: p-values are uniform (default RNG)."""
    p, mc = null_pvalues()
    assert_uniform_pvalues(p, mc, n_ctrl=200)


def test_causal_cells_are_found():
    """Cells that over-express the disease genes get small p-values; others do not."""
    adata = synthetic_counts(n_cells=500, n_genes=2000, seed=2)
    genes = adata.var_names[:: 20][:100]
    X = adata.X.toarray()
    X[:25, :][:, np.arange(0, 2000, 20)[:100]] *= 3
    adata.X = sparse.csr_matrix(X)
    psysc.pp.prepare_scoring(adata)
    res = psysc.tl.score_disorders(adata, {"d": list(genes)}, n_ctrl=300, inplace=False)["d"]
    assert np.median(res["pval"].iloc[:25]) < 0.01
    assert np.median(res["pval"].iloc[25:]) > 0.2


# --- enrichment ------------------------------------------------------------------------------------------


def test_enrichment_table_contract_and_errors(prepared):
    import scanpy as sc

    adata = prepared.copy()
    sc.pp.pca(adata, layer="psysc_norm", n_comps=10, random_state=0)
    sc.pp.neighbors(adata, n_neighbors=10, random_state=0)
    with pytest.raises(KeyError, match="score_disorders"):
        psysc.tl.disorder_enrichment(adata, groupby="group")
    psysc.tl.score_disorders(adata, random_sets(adata, 2), n_ctrl=30)
    psysc.tl.disorder_enrichment(adata, groupby="group")
    table = adata.uns["psysc"]["enrichment"]
    for col in ["trait", "group", "n_cells", "assoc_pval", "assoc_z", "hetero_pval", "hetero_z", "frac_sig"]:
        assert col in table
    assert len(table) == 2 * 3
    assert table.groupby("trait")["n_cells"].sum().eq(adata.n_obs).all()
    assert table["assoc_pval"].between(1 / 31, 1).all()
    no_graph = psysc.tl.disorder_enrichment(adata, groupby="group", use_graph=None, inplace=False)
    assert no_graph["hetero_pval"].isna().all()
    np.testing.assert_array_equal(no_graph["assoc_pval"], table["assoc_pval"])
    with pytest.raises(KeyError, match="columns"):
        psysc.tl.disorder_enrichment(adata, groupby="nope")
    with pytest.raises(KeyError, match="sc.pp.neighbors"):
        psysc.tl.disorder_enrichment(adata, groupby="group", use_graph="other")
    with pytest.raises(KeyError, match="scored traits"):
        psysc.tl.disorder_enrichment(adata, groupby="group", traits=["SCZ"])


# --- bad input -------------------------------------------------------------------------------------------


def test_normalised_data_where_counts_are_required_and_the_reverse():
    import scanpy as sc

    adata = synthetic_counts(100, 300)
    logged = adata.copy()
    sc.pp.normalize_total(logged, target_sum=1e4)
    sc.pp.log1p(logged)
    with pytest.raises(ValueError, match="not raw counts"):
        psysc.pp.prepare_scoring(logged, normalize=True)
    with pytest.raises(ValueError, match="looks like raw counts"):
        psysc.pp.prepare_scoring(adata, normalize=False)
    cpm = adata.copy()
    cpm.X = sparse.csr_matrix(cpm.X.multiply(1e6 / cpm.X.sum(axis=1)).astype(np.float32) + 0)
    cpm.X.data += 0.5
    with pytest.raises(ValueError, match="not log-transformed"):
        psysc.pp.prepare_scoring(cpm)
    psysc.pp.prepare_scoring(logged)  # log-normalised data is used as it is
    assert "psysc_norm" not in logged.layers
    assert logged.uns["psysc"]["prepare_scoring"]["normalized_here"] is False


def test_log1p_of_counts_not_normalised_per_cell_is_normalised_as_counts_with_a_warning(caplog):
    """sc.pp.log1p without sc.pp.normalize_total first: the counts are recovered (expm1) and normalised."""
    import scanpy as sc

    adata = synthetic_counts(200, 300)
    reference = adata.copy()
    psysc.pp.prepare_scoring(reference)  # from the raw counts
    unnormalised = adata.copy()
    sc.pp.log1p(unnormalised)
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.pp.prepare_scoring(unnormalised)
    assert "log1p of raw counts that were not normalised per cell" in caplog.text
    assert unnormalised.uns["psysc"]["prepare_scoring"]["counts_from_log1p"] is True
    expected = sc.pp.log1p(sc.pp.normalize_total(adata, target_sum=1e4, copy=True), copy=True).X.toarray()
    np.testing.assert_allclose(unnormalised.layers["psysc_norm"].toarray(), expected, rtol=1e-6, atol=1e-6)
    for col in ("psysc_mean", "psysc_var", "psysc_var_tech"):
        np.testing.assert_allclose(unnormalised.var[col], reference.var[col], rtol=1e-6, atol=1e-9)
    # dense input too; with normalize=False the values are used as they are, with the warning
    dense = adata.copy()
    dense.X = np.log1p(dense.X.toarray())
    psysc.pp.prepare_scoring(dense)
    np.testing.assert_allclose(dense.layers["psysc_norm"], expected, rtol=1e-6, atol=1e-6)
    caplog.clear()
    as_given = adata.copy()
    sc.pp.log1p(as_given)
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.pp.prepare_scoring(as_given, normalize=False)
    assert "used as given (normalize=False)" in caplog.text
    assert "psysc_norm" not in as_given.layers
    # log-normalised data (normalize_total, then log1p) is not taken for it
    caplog.clear()
    normalised = sc.pp.log1p(sc.pp.normalize_total(adata, target_sum=1e4, copy=True), copy=True)
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.pp.prepare_scoring(normalised)
    assert "log1p of raw counts" not in caplog.text
    assert normalised.uns["psysc"]["prepare_scoring"]["counts_from_log1p"] is False


def test_nan_negative_duplicated_and_empty_inputs():
    adata = synthetic_counts(50, 300)
    bad = adata.copy()
    bad.X = bad.X.toarray()
    bad.X[0, 0] = np.nan
    with pytest.raises(ValueError, match="1 NaN"):
        psysc.pp.prepare_scoring(bad)
    neg = adata.copy()
    neg.X = neg.X.toarray() - 1
    with pytest.raises(ValueError, match="negative"):
        psysc.pp.prepare_scoring(neg)
    dup = adata.copy()
    dup.var_names = ["g0"] + list(dup.var_names[1:-1]) + ["g0"]
    with pytest.raises(ValueError, match="var_names_make_unique"):
        psysc.pp.prepare_scoring(dup)
    with pytest.raises(ValueError, match="empty"):
        psysc.pp.prepare_scoring(adata[:0].copy())
    with pytest.raises(KeyError, match="prepare_scoring"):
        psysc.tl.score_disorders(adata, {"t": list(adata.var_names[:20])})



def test_genes_without_a_name_are_left_out_and_counted(caplog):
    """A blank spreadsheet cell (NaN) in a gene set is left out with a warning, not read as a gene called "nan"."""
    adata = synthetic_counts(50, 300)
    adata.var_names = [f"g{i}" for i in range(299)] + ["nan"]
    psysc.pp.prepare_scoring(adata)
    genes = list(adata.var_names[:19]) + ["nan"]
    with caplog.at_level(logging.WARNING, logger="psysc"):
        got = psysc.tl.score_disorders(adata, {"t": pd.Series(1.0, index=genes[:19] + [np.nan])}, n_ctrl=20,
                                       inplace=False)
    assert "1 gene(s) without a name (NaN or empty) left out" in caplog.text
    expected = psysc.tl.score_disorders(adata, {"t": genes[:19]}, n_ctrl=20, inplace=False)
    pd.testing.assert_frame_equal(got["t"], expected["t"])


def test_all_zero_cells_are_kept_counted_and_least_significant(caplog):
    adata = synthetic_counts(120, 600)
    X = adata.X.toarray()
    X[:3] = 0
    adata.X = sparse.csr_matrix(X)
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.pp.prepare_scoring(adata)
    assert "3 of 120 cells have no detected expression" in caplog.text
    res = psysc.tl.score_disorders(adata, {"t": list(adata.var_names[:60])}, n_ctrl=50, inplace=False)["t"]
    assert len(res) == 120
    assert (res["pval"].iloc[:3] == res["pval"].max()).all()
    assert (res["norm_score"].iloc[:3] < res["norm_score"].iloc[3:].min()).all()
    assert (res["pval"].iloc[:3] == 1).all() and not np.signbit(res["nlog10_pval"]).any()  # 0, not -0


def test_gene_sets_without_overlap_explain_why(prepared):
    with pytest.raises(ValueError, match=r"0 matches.*Ensembl"):
        psysc.tl.score_disorders(prepared, {"t": [f"ENSG{i:011d}" for i in range(50)]})
    mouse = prepared.copy()
    mouse.var_names = [f"Gene{i}x" for i in range(mouse.n_vars)]
    with pytest.raises(ValueError, match="different species"):
        psysc.tl.score_disorders(mouse, {"t": ["GFAP", "SNAP25", "OLIG2", "AQP4"]})


def test_small_gene_sets_are_skipped_with_a_log(prepared, caplog):
    sets = {"big": list(prepared.var_names[:50]), "tiny": list(prepared.var_names[:3]) + ["absent"]}
    with caplog.at_level(logging.WARNING, logger="psysc"):
        res = psysc.tl.score_disorders(prepared, sets, n_ctrl=20, inplace=False)
    assert list(res) == ["big"]
    assert "tiny (3 genes)" in caplog.text
    with pytest.raises(ValueError, match="NaN"):
        psysc.tl.score_disorders(prepared, {"t": pd.Series([1.0, np.nan], index=prepared.var_names[:2])})
    signed = pd.Series(np.r_[np.ones(30), -np.ones(20)], index=prepared.var_names[:50])
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.tl.score_disorders(prepared, {"signed": signed}, n_ctrl=20, inplace=False)
    assert "signed: 20 of its 50 genes have negative weights" in caplog.text
    # only small sets, every gene found: the limit is named, not a species or identifier mismatch
    with pytest.raises(ValueError, match=r"all their genes are in the data\): pass min_genes=3") as err:
        psysc.tl.score_disorders(prepared, {"t": list(prepared.var_names[:3])}, n_ctrl=20)
    assert "look like" not in str(err.value)
    with pytest.raises(ValueError, match="look like"):  # genes missing: the identifier hint
        psysc.tl.score_disorders(prepared, {"t": list(prepared.var_names[:3]) + ["ENSG00000130203"]}, n_ctrl=20)


def test_implicit_covariate_correction_equals_explicit_dense_regression():
    adata = synthetic_counts(300, 1200, seed=4)
    rng = np.random.default_rng(0)
    cov = pd.DataFrame(
        {"depth": rng.normal(size=300), "batch": rng.choice(["b1", "b2", "b3"], 300)}, index=adata.obs_names
    )
    psysc.pp.prepare_scoring(adata, covariates=cov)
    assert adata.uns["psysc"]["prepare_scoring"]["covariates"] == ["depth", "batch_b2", "batch_b3", "const"]
    # naive reference: dense least squares on the normalised data, residuals plus the gene means
    X = adata.layers["psysc_norm"].toarray().astype(np.float64)
    C = np.column_stack([cov["depth"], cov["batch"] == "b2", cov["batch"] == "b3", np.ones(300)]).astype(float)
    resid = X - C @ np.linalg.lstsq(C, X, rcond=None)[0] + X.mean(axis=0)
    explicit = ad.AnnData(resid, obs=adata.obs, var=pd.DataFrame(index=adata.var_names))
    psysc.pp.prepare_scoring(explicit, normalize=False)
    np.testing.assert_allclose(adata.var["psysc_mean"], explicit.var["psysc_mean"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(adata.var["psysc_var"], explicit.var["psysc_var"], rtol=1e-7, atol=1e-12)
    sets = random_sets(adata, 2)
    implicit = psysc.tl.score_disorders(adata, sets, n_ctrl=30, dtype="float64", inplace=False)
    for col in ["mean", "var", "var_tech", "mean_var"]:  # same statistics, so same control sets
        explicit.var[f"psysc_{col}"] = adata.var[f"psysc_{col}"].to_numpy()
    dense = psysc.tl.score_disorders(explicit, sets, n_ctrl=30, dtype="float64", inplace=False)
    for trait in sets:
        pd.testing.assert_frame_equal(implicit[trait], dense[trait], rtol=1e-6)


def test_covariate_designs_keep_the_intercept_and_survive_unused_or_collinear_columns(caplog):
    """A covariate far from 0 with little spread (log library size) still gets an intercept (scDRS's 0.01 rule
    would leave it out); unused categories and collinear columns do not break the fit: the gene statistics are
    those of the dense least-squares residuals with an intercept (numpy)."""
    adata = synthetic_counts(300, 400, seed=6)
    depth = np.log1p(np.asarray(adata.X.sum(axis=1)).ravel())
    assert depth.std() / depth.mean() < 0.1
    stage = np.where(np.arange(300) % 3 == 0, "adult", "fetal")
    X = None

    def naive(C):
        A = np.column_stack([C, np.ones(300)])
        return X - A @ np.linalg.lstsq(A, X, rcond=None)[0] + X.mean(axis=0)

    designs = {
        "small_cv": (pd.DataFrame({"depth": depth}, index=adata.obs_names), depth[:, None]),
        "unused_category": (
            pd.DataFrame({"stage": pd.Categorical(stage, categories=["adult", "fetal", "other"])},
                         index=adata.obs_names),
            (stage == "fetal")[:, None].astype(float)),
        "collinear": (pd.DataFrame({"depth": depth, "twice": 2 * depth}, index=adata.obs_names), depth[:, None]),
    }
    for name, (cov, C) in designs.items():
        a = adata.copy()
        with caplog.at_level(logging.WARNING, logger="psysc"):
            caplog.clear()
            psysc.pp.prepare_scoring(a, covariates=cov)
        assert "const" in a.uns["psysc"]["prepare_scoring"]["covariates"], name
        assert ("collinear" in caplog.text) == (name == "collinear"), name
        X = a.layers["psysc_norm"].toarray().astype(np.float64)
        resid = naive(C)
        np.testing.assert_allclose(a.var["psysc_mean"], resid.mean(axis=0), rtol=1e-9, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(a.var["psysc_var"], resid.var(axis=0), rtol=1e-6, atol=1e-12, err_msg=name)


def test_covariates_must_cover_the_cells():
    adata = synthetic_counts(100, 400)
    with pytest.raises(ValueError, match="75%"):
        psysc.pp.prepare_scoring(adata, covariates=pd.DataFrame({"x": [1.0, 2.0]}, index=["c0", "c1"]))


def test_in_memory_csr_row_blocks_are_views():
    from psysc._core._blocks import iter_row_blocks

    X = sparse.random(100, 30, density=0.2, format="csr", random_state=0)
    blocks = list(iter_row_blocks(X, 32))
    assert all(np.shares_memory(b.data, X.data) for _, _, b in blocks)
    assert (sparse.vstack([b for _, _, b in blocks]) != X).nnz == 0


def test_prefetched_row_blocks_equal_the_plain_ones(tmp_path):
    """Backed and dask matrices read one block ahead give the same blocks, in order, and stop cleanly early."""
    da = pytest.importorskip("dask.array")
    from psysc._core._blocks import iter_row_blocks

    X = sparse.random(1000, 30, density=0.2, format="csr", dtype=np.float32, random_state=0)
    ad.AnnData(X).write_h5ad(tmp_path / "x.h5ad")
    backed = ad.read_h5ad(tmp_path / "x.h5ad", backed="r")
    for M in (backed.X, da.from_array(X.toarray(), chunks=(100, -1))):
        plain = list(iter_row_blocks(M, 64))
        ahead = list(iter_row_blocks(M, 64, prefetch=True))
        assert [(a, b) for a, b, _ in ahead] == [(a, b) for a, b, _ in plain] == [
            (i, min(i + 64, 1000)) for i in range(0, 1000, 64)]
        for (_, _, p), (_, _, q) in zip(plain, ahead, strict=True):
            assert type(p) is type(q)
            np.testing.assert_array_equal(p.toarray() if sparse.issparse(p) else p,
                                          q.toarray() if sparse.issparse(q) else q)
        first = next(iter(iter_row_blocks(M, 64, prefetch=True)))  # abandoned after one block
        assert first[:2] == (0, 64)


@pytest.mark.parametrize("k", [0, 1, 7, 40, 500])
def test_head_rows_are_the_first_rows_of_any_matrix(tmp_path, k):
    """head_rows gives X[:k] (at most all rows) of in-memory, dense, backed and dask matrices, and of no rows."""
    da = pytest.importorskip("dask.array")
    from psysc._core._blocks import head_rows

    X = sparse.random(40, 12, density=0.3, format="csr", dtype=np.float32, random_state=1)
    ad.AnnData(X).write_h5ad(tmp_path / "x.h5ad")
    backed = ad.read_h5ad(tmp_path / "x.h5ad", backed="r")
    dense = X.toarray()
    for M in (X, X.tocsc(), dense, backed.X, da.from_array(dense, chunks=(9, -1)), X[:0]):
        head = head_rows(M, k)
        got = head.toarray() if sparse.issparse(head) else np.asarray(head)
        np.testing.assert_array_equal(got, dense[: min(k, M.shape[0])])


@pytest.mark.parametrize("n_cells", [GROUPED_QUERIES, GROUPED_QUERIES + 777])
def test_pooled_pvalues_of_many_cells_equal_naive_counts(n_cells):
    """From GROUPED_QUERIES cells on, the null values are grouped before counting: still the exact counts."""
    rng = np.random.default_rng(5)
    norm = rng.normal(size=n_cells)
    ctrl = rng.normal(size=(n_cells, 3)).astype(np.float32)
    norm[:1000] = ctrl[:1000, 0]  # ties with float32 null values
    ctrl[5, 0], ctrl[6, 1], ctrl[7, 2] = np.inf, -np.inf, norm.max()
    _, pooled = monte_carlo_pvalues(norm, ctrl)
    null = np.sort(ctrl.ravel().astype(np.float64))
    naive = (1 + null.size - np.searchsorted(null, norm, side="left")) / (1 + null.size)
    np.testing.assert_array_equal(pooled, naive)


def test_grouped_pooled_pvalues_over_many_chunks_equal_naive_counts(monkeypatch):
    """Null values grouped a few rows at a time (many chunks per thread, a short last one): the exact counts."""
    import psysc._core._scoring as scoring

    rng = np.random.default_rng(8)
    n_cells = GROUPED_QUERIES + 5
    norm = rng.normal(size=n_cells)
    ctrl = rng.normal(size=(n_cells, 7)).astype(np.float32)
    norm[:500] = ctrl[:500, 3]  # ties
    ctrl[9, :] = norm.max()  # at the largest query: counted without a lookup
    monkeypatch.setattr(scoring, "_GROUP_BYTES", 4 * 7 * 1_000)  # 1,000 rows per chunk
    _, pooled = monte_carlo_pvalues(norm, ctrl)
    null = np.sort(ctrl.ravel().astype(np.float64))
    naive = (1 + null.size - np.searchsorted(null, norm, side="left")) / (1 + null.size)
    np.testing.assert_array_equal(pooled, naive)


def test_pooled_pvalues_with_ties_and_extremes_equal_naive_counts():
    rng = np.random.default_rng(1)
    norm = np.round(rng.normal(size=500), 2)  # many exact ties among cells
    ctrl = np.round(rng.normal(size=(500, 40)) * 1.5, 2)  # ties with cells, values beyond the cells' range
    ctrl[0, :5] = norm.min()
    ctrl[1, :5] = norm.max()
    _, pooled = monte_carlo_pvalues(norm, ctrl)
    null = ctrl.ravel()
    naive = np.array([(1 + np.sum(null >= v)) / (1 + null.size) for v in norm])
    np.testing.assert_array_equal(pooled, naive)


@pytest.mark.parametrize("case", ["float32", "constant", "outliers"])
def test_pooled_pvalues_equal_naive_counts_on_bucket_edges(case):
    """The bucketed count is exact: float32 nulls, all cells tied, nulls far outside the cells' range."""
    rng = np.random.default_rng(2)
    norm = rng.normal(size=300)
    ctrl = rng.normal(size=(300, 30)).astype(np.float32)
    if case == "float32":  # cells' scores equal to float32 null values, i.e. on the bucket boundaries
        norm[:100] = ctrl[:100, 0].astype(np.float64)
    elif case == "constant":
        norm[:] = 0.25
        ctrl[::3] = 0.25
    else:
        ctrl[:10] *= 1e30
        ctrl[10:20] = -np.inf
        ctrl[20:30] = np.inf
    _, pooled = monte_carlo_pvalues(norm, ctrl)
    null = ctrl.astype(np.float64).ravel()
    naive = np.array([(1 + np.sum(null >= v)) / (1 + null.size) for v in norm])
    np.testing.assert_array_equal(pooled, naive)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vector_additions_equal_numpy(dtype):
    """add_from4/add_from8 against numpy's additions in the arrays' precision, add_scaled4/add_scaled8 (float64)
    against numpy's products and additions, at unaligned offsets; prefetch changes nothing, even past the end of an
    array.
    """
    import numba

    from psysc._core._simd import add_from4, add_from8, add_scaled4, add_scaled8, prefetch

    @numba.njit
    def run_from(acc, offsets, src, src_offsets, width):
        for i in range(offsets.shape[0]):
            prefetch(acc, offsets[i] + 10_000_000)
            if width == 4:
                add_from4(acc, offsets[i], src, src_offsets[i])
            else:
                add_from8(acc, offsets[i], src, src_offsets[i])

    @numba.njit
    def run_scaled(acc, offsets, src, src_offsets, xs, width):
        for i in range(offsets.shape[0]):
            if width == 4:
                add_scaled4(acc, offsets[i], src, src_offsets[i], xs[i])
            else:
                add_scaled8(acc, offsets[i], src, src_offsets[i], xs[i])

    rng = np.random.default_rng(0)
    for width in (4, 8):
        acc = rng.normal(size=103).astype(dtype)  # offsets not multiples of the width: unaligned vectors
        offsets = rng.integers(0, 103 - width, 500)
        src = rng.normal(size=37).astype(dtype)
        src_offsets = rng.integers(0, 37 - width, 500)
        expected = acc.copy()
        for o, so in zip(offsets, src_offsets, strict=True):
            for i in range(width):
                expected[o + i] = dtype(expected[o + i] + src[so + i])  # numpy scalar arithmetic in dtype
        run_from(acc, offsets, src, src_offsets, width)
        assert acc.dtype == dtype
        np.testing.assert_array_equal(acc, expected)
        if dtype != np.float64:
            continue
        xs = rng.normal(size=500) * 10.0 ** rng.integers(-3, 4, 500)
        expected = acc.copy()
        for o, so, x in zip(offsets, src_offsets, xs, strict=True):
            expected[o : o + width] = expected[o : o + width] + src[so : so + width] * x  # rounded product, then sum
        run_scaled(acc, offsets, src, src_offsets, xs, width)
        np.testing.assert_array_equal(acc, expected)


def test_membership_runs_list_every_gene_set_slot_once():
    """The gene -> (slot, control sets) runs of the shared kernel are exactly the control-set table, read by gene."""
    from psysc._core._shared import SharedControls

    rng = np.random.default_rng(3)
    names = np.array([f"G{i:04d}" for i in range(600)])
    bins = rng.integers(0, 12, 600).astype(str)
    disease = [(np.sort(rng.choice(600, 40, replace=False)), rng.uniform(1, 5, 40)) for _ in range(3)]
    shared = SharedControls(names, bins, disease, n_ctrl=30, seed=1)
    for slots in (None, shared.slot_weight[:, 2] != 0):
        g_ptr, run_slot, run_ptr, codes, shift, max_runs = shared.runs(600, slots=slots)
        assert codes.dtype == np.uint16  # 30 sets: 5 bits; a few runs per gene
        codes = codes.astype(np.int64)
        got = set()
        for g in range(600):
            for r in range(g_ptr[g], g_ptr[g + 1]):
                code = codes[run_ptr[r] : run_ptr[r + 1]]
                members = code & ((1 << shift) - 1)
                assert np.all(np.diff(members) > 0)  # sets ascending, no repeats, within one run
                assert np.all(code >> shift == r - g_ptr[g])  # the run's place among the gene's runs
                got.update((g, int(run_slot[r]), int(b)) for b in members)
        kept = np.ones(shared.genes.shape[1], bool) if slots is None else slots
        expected = {(int(shared.genes[b, sl]), sl, b) for b in range(30) for sl in np.flatnonzero(kept)}
        assert got == expected
        assert run_ptr[-1] == len(codes) == len(expected)
        assert max_runs == max(1, int(np.diff(g_ptr.astype(np.int64)).max()))  # the most runs of one gene


@pytest.mark.parametrize(
    ("n_traits", "n_ctrl"), [(1, 25), (3, 25), (6, 25), (11, 25), (1, 1100), (6, 1100), (3, 33_000)]
)
def test_shared_kernel_equals_explicit_weight_kernel(n_traits, n_ctrl):
    """The one-pass multi-trait kernel against the per-trait sparse product on the same control draws.

    1 trait: scalar kernel; 3: 4-lane vectors; 6: 8-lane vectors; 11: a group of 8 and a group of 3. Memberships
    are coded in 16 bits (here up to 1,024 control sets with a few runs per gene), in 32 with 33,000 (the
    trait scored alone too: scalar kernel).
    """
    from psysc._core._scoring import raw_scores
    from psysc._core._shared import SharedControls, shared_raw_scores
    from psysc.tl._score import _explicit_weights

    adata = synthetic_counts(200, 1500, seed=7)
    psysc.pp.prepare_scoring(adata)
    X = adata.layers["psysc_norm"]
    rng = np.random.default_rng(0)
    disease = [(np.sort(rng.choice(1500, 60, replace=False)), rng.uniform(1, 5, 60)) for _ in range(n_traits)]
    shared = SharedControls(adata.var_names, adata.var["psysc_mean_var"], disease, n_ctrl=n_ctrl, seed=0)
    var = adata.var["psysc_var"].to_numpy(np.float64)
    factor = 1 / np.sqrt(adata.var["psysc_var_tech"].to_numpy() + 0.01)
    dw = np.zeros((1500, n_traits))
    for t, (idx, w) in enumerate(disease):
        dw[idx, t] = factor[idx] * w / (factor[idx] * w).sum()
        ctrl_idx, ctrl_w = shared.explicit(t)
        # every control set takes, bin by bin, as many genes as the trait has disease genes there
        bins = adata.var["psysc_mean_var"].to_numpy()
        for b in range(n_ctrl):
            assert sorted(bins[ctrl_idx[b]]) == sorted(bins[idx])
        np.testing.assert_array_equal(np.sort(ctrl_w), np.sort(w))
    assert shared.runs(1500)[3].dtype == (np.uint16 if n_ctrl < 32_768 else np.uint32)
    dis, ctrl = shared_raw_scores(X, shared, factor, dw, dtype=np.float64, block_size=70)
    names = [f"t{t}" for t in range(n_traits)]
    W, _ = _explicit_weights([shared.explicit(t) for t in range(n_traits)], factor, var, dw, np.ones(n_traits), names)
    dis2, ctrl2 = raw_scores(X, W, n_ctrl, dtype=np.float64)
    np.testing.assert_allclose(dis, dis2, rtol=1e-12)
    np.testing.assert_allclose(ctrl, ctrl2, rtol=1e-12)
    # float32 control scores are summed in float32: close to the float64 sums, disease sums still float64
    dis32, ctrl32 = shared_raw_scores(X, shared, factor, dw, dtype=np.float32, block_size=70)
    assert ctrl32.dtype == np.float32
    np.testing.assert_array_equal(dis32, dis)
    np.testing.assert_allclose(ctrl32, ctrl2, rtol=1e-5)
    if n_traits > 1:  # and a trait's scores are the same bits when scored alone (scalar float32 additions)
        alone = SharedControls(adata.var_names, adata.var["psysc_mean_var"], disease[:1], n_ctrl=n_ctrl, seed=0)
        dis1, ctrl1 = shared_raw_scores(X, alone, factor, dw[:, :1], dtype=np.float32, block_size=70)
        np.testing.assert_array_equal(ctrl1[0], ctrl32[0])
        np.testing.assert_array_equal(dis1[0], dis32[0])


@pytest.mark.parametrize("n_parts", [1, 2, 3, 7])
def test_balanced_row_bounds_give_each_part_an_equal_share_within_one_row(n_parts):
    """Rows split by work (non-zeros + a cost per row), not by count: uneven rows, runs of empty rows."""
    from psysc._core._blocks import balanced_row_bounds

    rng = np.random.default_rng(n_parts)
    nnz = np.concatenate([rng.integers(0, 3000, 40), np.zeros(30, int), rng.integers(0, 50, 100), [20_000]])
    indptr = np.concatenate([[5], 5 + np.cumsum(nnz)])  # a block's indptr need not start at 0
    for row_cost in (0.0, 16.0):
        bounds = balanced_row_bounds(indptr, n_parts, row_cost)
        assert bounds.shape == (n_parts + 1,) and bounds[0] == 0 and bounds[-1] == len(nnz)
        assert np.all(np.diff(bounds) >= 0)
        work = nnz + row_cost
        share = work.sum() / n_parts
        part_work = np.array([work[a:b].sum() for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
        assert np.all(np.abs(part_work - share) <= work.max())
    # rows of equal work are split into equal counts; no work at all: every row still in exactly one part
    np.testing.assert_array_equal(balanced_row_bounds(np.arange(0, 1001, 10), 4), [0, 25, 50, 75, 100])
    np.testing.assert_array_equal(balanced_row_bounds(np.zeros(9, int), 2, 0.0)[[0, -1]], [0, 8])


def test_uneven_rows_are_scored_like_a_dense_product():
    """Cells of very different sizes (dense rows, empty rows) in one block: the kernels against numpy on X."""
    import numba

    from psysc._core._scoring import raw_scores
    from psysc._core._shared import SharedControls, shared_raw_scores
    from psysc.tl._score import _explicit_weights

    rng = np.random.default_rng(3)
    n_genes, n_ctrl = 400, 40
    dense = rng.gamma(1.0, 1.0, (60, n_genes)) * (rng.random((60, n_genes)) < 0.1)
    dense[:5] = rng.gamma(1.0, 1.0, (5, n_genes))  # five cells express every gene
    dense[30:50] = 0.0  # twenty express none
    X = sparse.csr_matrix(dense)
    bins = np.repeat(np.arange(8), n_genes // 8).astype(str)
    names = np.array([f"g{i:03d}" for i in range(n_genes)])
    disease = [(np.sort(rng.choice(n_genes, 30, replace=False)), rng.uniform(1, 5, 30)) for _ in range(2)]
    factor = rng.uniform(0.5, 2.0, n_genes)
    dw = np.zeros((n_genes, 2))
    for t, (idx, w) in enumerate(disease):
        dw[idx, t] = w / w.sum()
    shared = SharedControls(names, bins, disease, n_ctrl=n_ctrl, seed=0)
    W, _ = _explicit_weights([shared.explicit(t) for t in range(2)], factor, np.ones(n_genes), dw, np.ones(2),
                             ["a", "b"])
    W = W.toarray()
    threads = numba.get_num_threads()
    try:
        for n_threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(n_threads)
            for sets in (disease, disease[:1]):  # 4-lane and scalar kernels
                k = len(sets)
                one = SharedControls(names, bins, sets, n_ctrl=n_ctrl, seed=0) if k == 1 else shared
                dis, ctrl = shared_raw_scores(X, one, factor, dw[:, :k], dtype=np.float64, block_size=45)
                for t in range(k):
                    expected = dense @ W[t * n_genes : (t + 1) * n_genes]
                    np.testing.assert_allclose(dis[t], expected[:, 0], rtol=1e-12, atol=1e-15)
                    np.testing.assert_allclose(ctrl[t], expected[:, 1:], rtol=1e-12, atol=1e-15)
            dis, ctrl = raw_scores(X, sparse.csr_matrix(W), n_ctrl, dtype=np.float64, block_size=45)
            for t in range(2):
                expected = dense @ W[t * n_genes : (t + 1) * n_genes]
                np.testing.assert_allclose(ctrl[t], expected[:, 1:], rtol=1e-12, atol=1e-15)
    finally:
        numba.set_num_threads(threads)


def test_dask_backed_matrix_is_scored_block_by_block(prepared):
    da = pytest.importorskip("dask.array")
    sets = random_sets(prepared, 2)
    expected = psysc.tl.score_disorders(prepared, sets, n_ctrl=30, inplace=False, dtype="float64")
    lazy = prepared.copy()
    lazy.layers["psysc_norm"] = da.from_array(prepared.layers["psysc_norm"].toarray(), chunks=(64, -1))
    got = psysc.tl.score_disorders(lazy, sets, n_ctrl=30, inplace=False, dtype="float64", block_size=64)
    for trait in sets:
        pd.testing.assert_frame_equal(got[trait], expected[trait], rtol=1e-6)


def test_fresh_zeros_behave_as_numpy_zeros(monkeypatch, tmp_path):
    """Arrays of ordinary pages: zeros, writable, alive after the call, and scores computed in them unchanged."""
    import gc
    import mmap

    from psysc._core import _memory

    assert _memory.compacts_on_fault("always defer defer+madvise [madvise] never\n")
    assert _memory.compacts_on_fault("[always] defer defer+madvise madvise never")
    assert not _memory.compacts_on_fault("always defer defer+madvise madvise [never]")
    assert not _memory.compacts_on_fault("always [defer] defer+madvise madvise never")
    assert not _memory.compacts_on_fault("")

    adata = synthetic_counts(300, 800, seed=3)
    rng = np.random.default_rng(1)
    gene_sets = {f"T{i}": pd.Series(rng.uniform(1, 3, 40), index=rng.choice(adata.var_names, 40, replace=False))
                 for i in range(3)}
    psysc.pp.prepare_scoring(adata)
    monkeypatch.setattr(_memory, "_ON_DEMAND", False)
    expected = psysc.tl.score_disorders(adata, gene_sets, n_ctrl=30, inplace=False)
    monkeypatch.setattr(_memory, "_ON_DEMAND", True)
    monkeypatch.setattr(_memory, "_MIN_BYTES", 0)
    a = _memory.fresh_zeros((4, 5, 6), np.float32)
    owner = a
    while isinstance(owner, np.ndarray | memoryview):
        owner = owner.obj if isinstance(owner, memoryview) else owner.base
    assert isinstance(owner, mmap.mmap)  # its own memory map, not numpy's allocator
    assert a.dtype == np.float32 and a.shape == (4, 5, 6) and a.flags.c_contiguous and a.flags.writeable
    np.testing.assert_array_equal(a, np.zeros((4, 5, 6), np.float32))
    a[1, 2] = 7.0
    gc.collect()
    assert a.sum() == 42.0
    got = psysc.tl.score_disorders(adata, gene_sets, n_ctrl=30, inplace=False)
    for trait in gene_sets:
        pd.testing.assert_frame_equal(got[trait], expected[trait])
    psysc.tl.score_disorders(adata, gene_sets, n_ctrl=30)
    stored = adata.obsm["psysc_T1_ctrl_norm_score"]
    adata.write_h5ad(tmp_path / "a.h5ad")
    back = ad.read_h5ad(tmp_path / "a.h5ad")
    np.testing.assert_array_equal(back.obsm["psysc_T1_ctrl_norm_score"], stored)


@pytest.mark.parametrize("n_cells", [2**16 - 1, 2**16])
def test_pooled_pvalues_equal_naive_counts_at_the_width_of_the_bucket_table(n_cells):
    """Up to 65,535 cells the bucket table is uint16 (its largest entry is the number of cells); beyond, int32."""
    rng = np.random.default_rng(11)
    norm = rng.normal(size=n_cells)
    ctrl = rng.normal(size=(n_cells, 2)).astype(np.float32)
    norm[:500] = ctrl[:500, 1]
    ctrl[0, 0] = norm.max()  # a null value at the last query: counted for every cell
    _, pooled = monte_carlo_pvalues(norm, ctrl)
    null = np.sort(ctrl.ravel().astype(np.float64))
    naive = (1 + null.size - np.searchsorted(null, norm, side="left")) / (1 + null.size)
    np.testing.assert_array_equal(pooled, naive)


def test_a_backed_matrix_stored_by_column_is_read_once_per_pass_with_the_fix_named(tmp_path, caplog):
    # rows of a CSC file lie across all of it: psysc reads it whole once per pass (as CSR) and says how to store it
    import psysc._core._blocks as blocks

    base = synthetic_counts(n_cells=600, n_genes=300, seed=5)
    sets = random_sets(base, 1, size=30)
    reference = base.copy()
    psysc.pp.prepare_scoring(reference)
    expected = psysc.tl.score_disorders(reference, sets, n_ctrl=20, inplace=False)
    by_column = base.copy()
    by_column.X = by_column.X.tocsc()
    by_column.write_h5ad(tmp_path / "csc.h5ad")
    backed = ad.read_h5ad(tmp_path / "csc.h5ad", backed="r")
    reads = []
    original = backed.X.__class__.to_memory
    with caplog.at_level(logging.WARNING, logger="psysc"):
        blocks._WARNED_CSC.clear()
        try:
            backed.X.__class__.to_memory = lambda self, *a, **k: reads.append(1) or original(self, *a, **k)
            rows = list(blocks.iter_row_blocks(backed.X, 100))
        finally:
            backed.X.__class__.to_memory = original
        psysc.pp.prepare_scoring(backed)
        got = psysc.tl.score_disorders(backed, sets, n_ctrl=20, inplace=False)
    assert len(rows) == 6 and len(reads) == 1  # six blocks of rows from one read
    warnings_ = [r.getMessage() for r in caplog.records if "stored by column (CSC)" in r.getMessage()]
    assert len(warnings_) == 1 and "adata.X = adata.X.tocsr()" in warnings_[0]
    for trait, table in expected.items():
        pd.testing.assert_frame_equal(got[trait], table)


def test_the_covariate_correction_is_added_block_by_block_as_the_whole_product():
    from psysc._core._covariates import add_low_rank_scores

    rng = np.random.default_rng(3)
    n, n_genes, n_cov, n_sets = 50, 30, 3, 6
    C, beta = rng.standard_normal((n, n_cov)), rng.standard_normal((n_cov, n_genes))
    gene_mean = rng.random(n_genes)
    W = sparse.random(n_genes, n_sets, density=0.4, format="csc", random_state=4)
    dis, ctrl = rng.standard_normal(n), rng.standard_normal((n, n_sets - 1)).astype(np.float32)
    expected = -(C @ beta @ W.toarray()) + gene_mean @ W.toarray()  # the correction written out
    want_dis, want_ctrl = dis + expected[:, 0], ctrl + expected[:, 1:].astype(np.float32)
    add_low_rank_scores(C, beta, gene_mean, W, dis, ctrl, block_values=7 * n_sets)  # blocks of 7 cells
    np.testing.assert_allclose(dis, want_dis, rtol=1e-12)
    np.testing.assert_allclose(ctrl, want_ctrl, rtol=1e-6)


def test_counts_too_large_to_normalise_in_memory_go_through_a_file(tmp_path, monkeypatch):
    """write_normalized writes the layer prepare_scoring would keep, block by block, from a backed file; prepared from
    that file (backed), the scores equal those of the counts in memory; a layer that cannot fit names this route."""
    import scanpy as sc

    counts = synthetic_counts(n_cells=700, n_genes=150, seed=12)
    counts.obs["cell_type"] = np.where(np.arange(700) % 2, "a", "b")
    counts.write_h5ad(tmp_path / "counts.h5ad")
    backed = ad.read_h5ad(tmp_path / "counts.h5ad", backed="r")
    monkeypatch.setattr(psysc.pp._prepare, "NORMALISE_BLOCK", 128)  # six appended blocks
    with pytest.raises(ValueError, match="is the file adata is backed by"):
        psysc.pp.write_normalized(backed, tmp_path / "counts.h5ad")
    psysc.pp.write_normalized(backed, tmp_path / "lognorm.h5ad")
    written = ad.read_h5ad(tmp_path / "lognorm.h5ad")
    reference = counts.copy()
    sc.pp.normalize_total(reference, target_sum=1e4)
    sc.pp.log1p(reference)
    assert (written.X != sparse.csr_matrix(reference.X, dtype=np.float32)).nnz == 0
    pd.testing.assert_frame_equal(written.obs, counts.obs)
    assert list(written.var_names) == list(counts.var_names)
    sets = random_sets(counts, 2, size=20)
    in_memory = counts.copy()
    psysc.pp.prepare_scoring(in_memory)
    from_file = ad.read_h5ad(tmp_path / "lognorm.h5ad", backed="r")
    psysc.pp.prepare_scoring(from_file)
    assert "psysc_norm" not in from_file.layers  # read in blocks: no layer in memory
    want = psysc.tl.score_disorders(in_memory, sets, n_ctrl=30, inplace=False)
    got = psysc.tl.score_disorders(from_file, sets, n_ctrl=30, inplace=False)
    for trait in sets:
        pd.testing.assert_frame_equal(got[trait], want[trait])
    with h5py.File(tmp_path / "lognorm.h5ad") as f:
        assert f["X/indptr"].dtype == np.int64  # appending past 2^31 entries needs 64-bit offsets
    # too little memory for the layer: refused before normalising, with this route named with the call's options;
    # the code of the message runs as written and gives the scores of the counts in memory
    monkeypatch.setattr(psysc.pp._prepare, "available_memory", lambda: 1000)
    fresh = counts.copy()
    fresh.layers["counts"] = fresh.X.copy()
    fresh.X = fresh.X * 2.0  # not the counts
    with pytest.raises(MemoryError, match=r"psysc.pp.write_normalized\(adata, 'lognorm.h5ad', layer='counts'\)") as err:
        psysc.pp.prepare_scoring(fresh, layer="counts", key_added="run2")
    assert "psysc" not in fresh.uns and "run2" not in fresh.uns and list(fresh.layers) == ["counts"]
    code = str(err.value).split("read in blocks: ")[1]
    (tmp_path / "fix").mkdir()
    monkeypatch.chdir(tmp_path / "fix")  # where the code writes its lognorm.h5ad
    scope = {"adata": fresh, "anndata": ad, "psysc": psysc}
    exec(code, scope)
    assert "run2" in scope["adata"].uns
    got = psysc.tl.score_disorders(scope["adata"], sets, n_ctrl=30, key_added="run2", prepare_key="run2",
                                   inplace=False)
    for trait in sets:
        pd.testing.assert_frame_equal(got[trait], want[trait])
    with pytest.raises(ValueError, match="not raw counts"):
        psysc.pp.write_normalized(written, tmp_path / "again.h5ad")
    psysc.pp.write_normalized(counts[:1].copy(), tmp_path / "one.h5ad")  # one cell: written (scoring needs 2)
    assert ad.read_h5ad(tmp_path / "one.h5ad").n_obs == 1


def test_the_code_of_the_file_route_keeps_the_options_of_the_call():
    from psysc.pp._prepare import write_normalized_code

    assert write_normalized_code() == ("psysc.pp.write_normalized(adata, 'lognorm.h5ad'); adata = anndata.read_h5ad("
                                       "'lognorm.h5ad', backed='r'); psysc.pp.prepare_scoring(adata)")
    code = write_normalized_code(layer="counts", target_sum=1e6, key_added="k", covariates=("depth", "batch"))
    assert "write_normalized(adata, 'lognorm.h5ad', layer='counts', target_sum=1e+06)" in code
    assert code.endswith("prepare_scoring(adata, key_added='k', covariates=['depth', 'batch'])")
    assert write_normalized_code(covariates="depth").endswith("covariates='depth')")
    assert write_normalized_code(covariates=pd.DataFrame({"d": [1.0]})).endswith("covariates=covariates)")
