"""scGPT's zero-shot input pipeline: binning against the official rule, tokens, sampling, gene matching, bad input.

The "official" functions below are written from ``scgpt/preprocess.py`` (``binning``, ``_digitize(side="both")``)
and ``scgpt/tasks/cell_emb.py`` (``embed_data``): numpy quantile edges, ``np.digitize`` both ways, a uniform draw
between them.
"""

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from scipy import sparse

import psysc
from psysc.models.scgpt import ScGPTTokenizer, bin_values, cell_keys, official_args, official_vocab, read_vocab_json
from psysc.models.scgpt._tokenizer import STREAM_BINNING, stream_uniform

SHARED = Path(os.environ.get("PSYSC_SHARED_DATA", "/work/shared/data")) / "models" / "scgpt"


def official_binning(values, n_bins=51, rng=None):
    """scgpt.preprocess.binning of the non-zero values of one cell (row.min() > 0 branch), with its random draw."""
    rng = np.random.default_rng(0) if rng is None else rng
    bins = np.quantile(values, np.linspace(0, 1, n_bins - 1))
    left = np.digitize(values, bins)
    right = np.digitize(values, bins, right=True)
    rands = rng.random(len(values))
    return np.ceil(rands * (right - left) + left).astype(np.int64), left, right


# ----------------------------------------------------------------------------------- binning
@pytest.mark.parametrize("n", [2, 3, 7, 49, 50, 51, 99, 148, 500, 1199, 2451, 4000])
def test_binning_equals_the_official_rule_on_cells_without_ties(n):
    rng = np.random.default_rng(n)
    for scale in (1.0, 0.37, 1e4):
        values = (rng.permutation(np.arange(1, n + 1)) * scale + rng.random(n) * 0.01 * scale).astype(np.float32)
        assert len(np.unique(values)) == n
        expected, left, right = official_binning(values, rng=rng)
        assert ((left - right) <= 1).all()  # no tie: the draw cannot move the level
        np.testing.assert_array_equal(bin_values(values), expected)
        np.testing.assert_array_equal(bin_values(values, uniforms=rng.random(n)), expected)


def test_binning_of_a_single_value_is_random_over_all_levels():
    _, left, right = official_binning(np.array([5.0], dtype=np.float32))
    assert (left[0], right[0]) == (50, 0)  # every edge equals the value: the official draw is uniform in 1..50
    assert bin_values([5.0], uniforms=[0.0]).tolist() == [50]
    assert bin_values([5.0], uniforms=[1 - 1e-12]).tolist() == [1]
    assert len({int(bin_values([5.0], seed=s)[0]) for s in range(200)}) > 30


def test_binning_with_ties_draws_in_the_official_range():
    rng = np.random.default_rng(1)
    n_same, n_values, n_lower_by_one = 0, 0, 0
    for _ in range(300):
        n = int(rng.integers(2, 3000))
        values = (rng.negative_binomial(1, 0.3, n) + 1).astype(np.float32)  # counts: many ties
        _, left, right = official_binning(values, rng=rng)
        hi = bin_values(values, uniforms=np.zeros(n))  # u = 0: the top of the range
        lo = bin_values(values, uniforms=np.full(n, 1 - 1e-12))  # u -> 1: the bottom of the range
        np.testing.assert_array_equal(hi, left)
        official_lo = np.where(left > right, right + 1, left)
        same = lo == official_lo
        # exact arithmetic vs numpy's float interpolation: an edge at an integer virtual index can land a hair below
        # a tied value in numpy, which then starts its range one level higher
        assert ((lo == official_lo) | (lo == official_lo - 1)).all()
        n_same += same.sum()
        n_lower_by_one += (~same).sum()
        n_values += n
        draws = bin_values(values, seed=int(rng.integers(1 << 30)), name="c")
        assert ((draws >= lo) & (draws <= hi)).all()
    assert n_lower_by_one / n_values < 0.01, (n_lower_by_one, n_values)


def test_tie_breaking_is_uniform_over_the_range():
    values = np.r_[np.ones(600), np.arange(2, 402)].astype(np.float32)  # 600 tied ones, 400 distinct values
    _, left, right = official_binning(values)
    lo, hi = right[0] + 1, left[0]
    assert (lo, hi) == (1, 30)
    draws = np.concatenate([bin_values(values, seed=s, name="cell")[:600] for s in range(20)])
    counts = np.bincount(draws, minlength=hi + 1)[lo:]
    assert counts.min() > 0.7 * counts.mean() and counts.max() < 1.3 * counts.mean()
    u = stream_uniform(cell_keys(["x"] * 10_000, 0), np.arange(10_000), STREAM_BINNING)
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.01


# ----------------------------------------------------------------------------------- tokens
def _adata(X, genes, names=None):
    n = X.shape[0]
    return AnnData(X=sparse.csr_matrix(np.asarray(X, dtype=np.float32)),
                   obs=pd.DataFrame(index=names or [f"c{i}" for i in range(n)]), var=pd.DataFrame(index=genes))


def test_tokens_follow_the_official_zero_shot_path():
    tk = ScGPTTokenizer("brain")
    vocab = official_vocab("brain")
    genes = ["SNAP25", "gapdh", "GAPDH", "<cls>", "NOT_A_GENE", "RBFOX3", "MBP", "AQP4"]
    X = np.array([[4, 9, 0, 5, 7, 0, 3, 8],
                  [0, 0, 0, 3, 3, 0, 0, 0],   # only non-vocabulary genes: empty sequence
                  [0, 0, 2, 0, 0, 0, 0, 0]])
    ids = tk.harmonize(genes)
    assert ids.tolist() == [vocab.index("SNAP25"), -1, vocab.index("GAPDH"), -1, -1, vocab.index("RBFOX3"),
                            vocab.index("MBP"), vocab.index("AQP4")]  # case-sensitive, specials never genes
    t = tk.tokenize(X, ids, cell_keys(["a", "b", "c"]))
    assert t.lengths.tolist() == [4, 0, 2]
    # <cls> first with -2 (embed_data inserts pad_value), then the non-zero vocabulary genes in column order
    nz = [g for g, x, i in zip(genes, X[0], ids, strict=True) if x and i >= 0]
    assert [vocab[i] for i in t.cell(0)] == ["<cls>", *nz]
    vals = t.values[t.offsets[0]: t.offsets[1]]
    assert vals[0] == -2.0 and vals.dtype == np.float32
    np.testing.assert_array_equal(vals[1:], official_binning(X[0][[0, 6, 7]].astype(np.float32))[0])
    assert [vocab[i] for i in t.cell(2)] == ["<cls>", "GAPDH"] and 1 <= t.values[-1] <= 50  # one gene: random level


def test_cells_longer_than_1199_genes_are_sampled_after_binning():
    tk = ScGPTTokenizer("human")
    genes = list(official_vocab("human")[5000:6500])
    rng = np.random.default_rng(0)
    X = np.tile(rng.permutation(np.arange(1, 1501)).astype(np.float32), (200, 1))  # same counts, 200 names
    ids = tk.harmonize(genes)
    t = tk.tokenize(X, ids, cell_keys([f"cell{i}" for i in range(200)], seed=0))
    assert (t.lengths == 1200).all()
    full = ScGPTTokenizer("human", max_length=5000).tokenize(X[:1], ids, cell_keys(["cell0"]))
    level_of = dict(zip(full.cell(0)[1:].tolist(), full.values[1:].tolist(), strict=True))
    included = np.zeros(len(genes))
    col_of = {int(i): c for c, i in enumerate(ids)}
    for c in range(200):
        seq, vals = t.cell(c), t.values[t.offsets[c]: t.offsets[c + 1]]
        assert seq[0] == tk.cls_id and vals[0] == -2
        cols = [col_of[int(i)] for i in seq[1:]]
        assert cols == sorted(set(cols))  # distinct genes, kept in column order
        if c == 0:  # levels of the whole cell (binning happens before sampling)
            assert all(level_of[int(i)] == v for i, v in zip(seq[1:], vals[1:], strict=True))
        included[cols] += 1
    assert abs(included.mean() - 200 * 1199 / 1500) < 1e-9
    assert included.min() > 130 and included.max() < 190  # each gene kept with probability ~0.8
    again = tk.tokenize(X[:3], ids, cell_keys(["cell0", "cell1", "cell2"], seed=0))
    np.testing.assert_array_equal(again.ids, t.ids[: t.offsets[3]])
    other = tk.tokenize(X[:1], ids, cell_keys(["cell0"], seed=1))
    assert not np.array_equal(other.ids, t.cell(0))


def test_shipped_vocabularies_and_args():
    for model in ("human", "brain"):
        v = official_vocab(model)
        assert len(v) == 60_697 and v[:2] == ("A1BG", "A1BG-AS1")
        assert v[60_694:] == ("<pad>", "<cls>", "<eoc>")
        a = official_args(model)
        assert (a["nlayers"], a["nheads"], a["embsize"], a["d_hid"], a["n_bins"], a["max_seq_len"], a["pad_value"],
                a["input_emb_style"], a["input_style"]) == (12, 8, 512, 512, 51, 1200, -2, "continuous", "binned")
    assert official_vocab("human") == official_vocab("brain")
    assert "brain" in official_args("brain")["data_source"]
    if not (SHARED / "brain" / "vocab.json").exists():
        pytest.skip("the official vocab.json files are not available here")
    for model in ("human", "brain"):
        assert tuple(read_vocab_json(SHARED / model / "vocab.json")) == official_vocab(model)


# ----------------------------------------------------------------------------------- genes and bad input
@pytest.fixture(scope="module")
def darmanis():
    return psysc.datasets.darmanis2015()[:20].copy()


def test_ensembl_ids_are_mapped_to_symbols(darmanis):
    tk = ScGPTTokenizer("brain")
    sym_label, _, sym_ids = tk.choose_gene_ids(darmanis)
    ens = darmanis[:, darmanis.var["gene_ids"].astype(str) != ""].copy()
    ens.var_names = ens.var["gene_ids"].astype(str).to_numpy()
    ens.var = ens.var.drop(columns=["gene_ids"])
    label, names, ids = tk.choose_gene_ids(ens)
    assert label == "var_names (Ensembl IDs mapped to symbols with psysc.gwas.to_symbols)"
    assert (ids >= 0).sum() > 0.8 * len(ids) and len(np.unique(ids[ids >= 0])) == (ids >= 0).sum()
    # a symbol column wins over the IDs, feature_name (the official gene_col) first
    both = ens.copy()
    both.var["feature_name"] = darmanis.var_names[darmanis.var["gene_ids"].astype(str) != ""].to_numpy()
    assert tk.choose_gene_ids(both)[0] == "var['feature_name']"
    assert tk.choose_gene_ids(both, gene_col=None)[0].startswith("var_names (Ensembl IDs mapped")
    t_ens = tk.tokenize_adata(ens)
    t_sym = tk.tokenize_adata(both, gene_col="feature_name")
    assert abs(int(t_ens.lengths.sum()) - int(t_sym.lengths.sum())) < 0.01 * t_sym.lengths.sum() + 1


def test_too_few_vocabulary_genes_is_a_clear_error(darmanis, caplog):
    tk = ScGPTTokenizer("brain")
    lower = darmanis.copy()
    lower.var_names = [g.lower() for g in darmanis.var_names]
    lower.var = lower.var.drop(columns=["gene_ids"])
    with pytest.raises(ValueError, match=r"(?s)case-sensitively.*var\['feature_name'\].*model\.gene_col"):
        tk.tokenize_adata(lower)
    mouse = lower.copy()
    mouse.var_names = [g[:1].upper() + g[1:] for g in lower.var_names]
    with pytest.raises(ValueError, match="mouse symbols.*map_genes") as err:
        tk.tokenize_adata(mouse)
    # the code the message suggests runs, and gives each human gene the counts of its mouse ortholog
    from psysc.models.scgpt._tokenizer import MOUSE_TO_HUMAN_COLUMNS

    assert MOUSE_TO_HUMAN_COLUMNS in str(err.value)
    scope = {"adata": mouse.copy(), "psysc": psysc, "pd": pd}
    exec(MOUSE_TO_HUMAN_COLUMNS, scope)
    human = scope["adata"]
    assert tk.tokenize_adata(human).lengths.sum() > 0
    # one to one: ACTG1 keeps Actg1's counts, not Actb's (HCOP also lists ACTG1 as an ortholog of Actb)
    for gene in ("SNAP25", "GFAP", "OLIG2", "ACTB", "ACTG1", "A2M"):
        np.testing.assert_array_equal(human[:, gene].X.toarray(), darmanis[:, gene].X.toarray())
    assert human.var_names.is_unique and human.var["original_gene"].is_unique
    # mouse Ensembl IDs: the same fix, and no warning about mapping IDs to human symbols on the way
    ids = psysc.pp.map_genes(mouse, "ensembl", species="mouse", copy=True)
    assert ids.var_names.str.startswith("ENSMUSG").all()
    with caplog.at_level(logging.WARNING, logger="psysc"), pytest.raises(ValueError, match="mouse Ensembl.*map_genes"):
        tk.tokenize_adata(ids)
    assert "to_species" not in caplog.text
    exec(MOUSE_TO_HUMAN_COLUMNS, {"adata": ids, "psysc": psysc})
    assert tk.tokenize_adata(ids).lengths.sum() > 0
    none = lower.copy()
    none.var_names = [f"gene{i}" for i in range(none.n_vars)]
    with pytest.raises(ValueError, match=r"only 0 of"):
        tk.tokenize_adata(none)


def test_bad_values_are_refused():
    tk = ScGPTTokenizer("brain")
    ids = tk.harmonize(["GAPDH", "ACTB"])
    keys = cell_keys(["a"])
    with pytest.raises(ValueError, match="non-negative.*scaled"):
        tk.tokenize(np.array([[1.0, -0.5]]), ids, keys)
    with pytest.raises(ValueError, match="NaN"):
        tk.tokenize(np.array([[1.0, np.nan]]), ids, keys)
    with pytest.raises(ValueError, match="one key per cell"):
        tk.tokenize(np.array([[1.0, 2.0]]), ids, cell_keys(["a", "b"]))
    with pytest.raises(ValueError, match="gene_token_ids"):
        tk.tokenize(np.array([[1.0, 2.0]]), np.array([60695, 3]), keys)  # <cls> as a gene
