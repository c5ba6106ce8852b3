"""Geneformer tokenizer: parity with an independent re-implementation of the official algorithm.

The reference below (``official_reference``) follows ctheodoris/Geneformer ``geneformer/tokenizer.py``
(HF revision 05fcbeb8a27d49e0a7a4349152202ee2c1cbfd28) step by step, with pandas and dense float64 arrays:
``TranscriptomeTokenizer.__init__`` (mapping dict restricted to token-dictionary values),
``sum_ensembl_ids`` (h5ad path: the collapse decision, ``str.upper().map``, ``Counter`` of duplicates,
``concat([unique, summed])``), ``tokenize_anndata`` (``X / n_counts * 10_000 / median``), ``tokenize_cell`` /
``rank_genes`` (``np.argsort(-x)`` on the non-zero entries) and ``format_cell_features`` (truncation,
``<cls>``/``<eos>``). It reads the shipped dictionary files with its own parser and never calls the
tokenizer's internals. Tests never read ../shared.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import pickle
from collections import Counter
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import psysc
import psysc.models.geneformer as gf_pkg
from psysc.models.geneformer import GeneformerTokenizer, choose_gene_ids
from psysc.models.geneformer import _dictionaries as gd

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(gf_pkg.__file__).parent / "data"
SAMPLE = Path(__file__).parent / "data" / "geneformer_dict_sample.json"
CORPUS = {"V1": "gc30M", "V2": "gc104M"}

# Independent facts (foundation-models.md §1.2 and §6.1): entry counts and official Git LFS oids.
N_ENTRIES = {
    "token_dictionary_gc30M": 25_426,
    "gene_median_dictionary_gc30M": 25_424,
    "gene_name_id_dict_gc30M": 40_248,
    "ensembl_mapping_dict_gc30M": 25_424,
    "token_dictionary_gc104M": 20_275,
    "gene_median_dictionary_gc104M": 42_005,
    "gene_name_id_dict_gc104M": 63_675,
    "ensembl_mapping_dict_gc104M": 173_697,
}
OFFICIAL_SHA256 = {
    "token_dictionary_gc30M": "ab9dc40973fa5224d77b793e2fd114cacf3d08423ed9c4c49caf0ba9c7f218f1",
    "gene_median_dictionary_gc30M": "b3b589bb5ec75040d05fc44dd6bf0184cf87f3c362cf158d196a6ed3b7fe5f39",
    "gene_name_id_dict_gc30M": "55e67962e79c0039a6c32d43c5c99f38e51964bbcfa32f736150ee1e285c438c",
    "ensembl_mapping_dict_gc30M": "eac0fb0b3007267871b6305ac0003ceba19d4f28d85686cb9067ecf142787869",
    "token_dictionary_gc104M": "67c445f4385127adfc48dcc072320cd65d6822829bf27dd38070e6e787bc597f",
    "gene_median_dictionary_gc104M": "a51c53f6a771d64508dfaf61529df70e394c53bd20856926117ae5d641a24bf5",
    "gene_name_id_dict_gc104M": "fabfa0c2f49c598c59ae432a32c3499a5908c033756c663b5e0cddf58deea8e1",
    "ensembl_mapping_dict_gc104M": "0819bcbd869cfa14279449b037eb9ed1d09a91310e77bd1a19d927465030e95c",
}


# ----------------------------------------------------------------------------- independent reference
def _read_tsv(stem: str, version: str) -> pd.DataFrame:
    """The test's own reader of a shipped file (pandas; no NA parsing; exact float64 via round_trip)."""
    return pd.read_csv(
        DATA / f"{stem}_{CORPUS[version]}.tsv.gz", sep="\t", dtype=str, keep_default_na=False, na_filter=False
    )


class RefDicts:
    def __init__(self, version):
        tok = _read_tsv("token_dictionary", version)
        self.token = dict(zip(tok.iloc[:, 0], tok.iloc[:, 1].astype(np.int64), strict=True))
        med = _read_tsv("gene_median_dictionary", version)
        self.median = {g: float(m) for g, m in zip(med.iloc[:, 0], med.iloc[:, 1], strict=True)}
        mp = _read_tsv("ensembl_mapping_dict", version)
        mapping = dict(zip(mp.iloc[:, 0], mp.iloc[:, 1], strict=True))
        # official TranscriptomeTokenizer.__init__: keep items whose value is in the token dictionary
        keys = set(self.token)
        self.mapping = {k: v for k, v in mapping.items() if v in keys}
        gn = _read_tsv("gene_name_id_dict", version)
        self.name_id = dict(zip(gn.iloc[:, 0], gn.iloc[:, 1], strict=True))


_REF = {}


def ref_dicts(version) -> RefDicts:
    if version not in _REF:
        _REF[version] = RefDicts(version)
    return _REF[version]


def official_reference(X, ensembl_ids, version):
    """Token sequences of every cell, following the official h5ad code path step by step."""
    d = ref_dicts(version)
    counts = np.asarray(X.toarray() if sparse.issparse(X) else X, dtype=np.float64)
    n_counts = counts.sum(axis=1)  # obs["n_counts"]: total counts of the cell, all genes
    var = pd.DataFrame({"ensembl_id": pd.Series(list(ensembl_ids), dtype=object)})
    # --- sum_ensembl_ids
    genes_in_map = [g for g in var.ensembl_id if g in d.mapping]
    vals_from_map = [d.mapping.get(g) for g in genes_in_map]
    collapsed = var.ensembl_id.str.upper().map(d.mapping)
    if len(set(genes_in_map)) == len(set(vals_from_map)):
        frame = pd.DataFrame(counts, columns=pd.Index(collapsed, dtype=object))
    else:
        frame = pd.DataFrame(counts[:, collapsed.notna().to_numpy()], columns=list(collapsed.dropna()))
        dup_genes = [g for g, c in Counter(frame.columns).items() if c > 1]
        unique_part = frame.loc[:, ~frame.columns.isin(dup_genes)]
        summed = [frame.loc[:, frame.columns == g].sum(axis=1).rename(g) for g in dup_genes]
        frame = pd.concat([unique_part, *summed], axis=1)
    # --- tokenize_anndata
    gene_list = [g for g in frame.columns if isinstance(g, str) and g in d.token]
    loc = np.where([isinstance(g, str) and g in d.token for g in frame.columns])[0]
    norm_factor = np.array([d.median[g] for g in gene_list])
    tokens = np.array([d.token[g] for g in gene_list], dtype=np.int64)
    X_view = frame.to_numpy()[:, loc]
    X_norm = X_view / n_counts[:, None] * 10_000 / norm_factor
    out = []
    for i in range(X_norm.shape[0]):
        row = X_norm[i]
        nz = np.nonzero(row)[0]  # tokenize_cell
        ranked = tokens[nz][np.argsort(-row[nz])]  # rank_genes
        if ranked.size == 0:
            out.append(ranked)  # official drops the cell; psysc keeps an empty sequence
        elif version == "V2":  # format_cell_features, special_token=True, model_input_size=4096
            out.append(np.concatenate([[d.token["<cls>"]], ranked[: 4096 - 2], [d.token["<eos>"]]]))
        else:
            out.append(ranked[:2048])
    return out


def assert_same_tokens(tokens, expected):
    assert tokens.n_cells == len(expected)
    for i, exp in enumerate(expected):
        np.testing.assert_array_equal(tokens.cell(i), exp, err_msg=f"cell {i}")


@pytest.fixture(scope="module")
def darmanis():
    return psysc.datasets.darmanis2015()


# ----------------------------------------------------------------------------- (a) parity on Darmanis
@pytest.mark.parametrize("version", ["V1", "V2"])
def test_parity_darmanis_ensembl_ids(darmanis, version):
    tk = GeneformerTokenizer(version)
    ids = tk.harmonize(darmanis.var["gene_ids"])
    d = ref_dicts(version)
    official_ids = darmanis.var["gene_ids"].str.upper().map(d.mapping).map(d.token).fillna(-1).astype(np.int64)
    np.testing.assert_array_equal(ids, official_ids.to_numpy())
    tokens = tk.tokenize(darmanis.X, ids)
    assert_same_tokens(tokens, official_reference(darmanis.X, darmanis.var["gene_ids"], version))
    # the same through the AnnData entry point and on a dense matrix
    assert_same_tokens(
        tk.tokenize_adata(darmanis, gene_ids="gene_ids", rows=slice(100, 150)),
        [tokens.cell(i) for i in range(100, 150)],
    )
    assert_same_tokens(tk.tokenize(darmanis.X[:20].toarray(), ids), [tokens.cell(i) for i in range(20)])


def test_parity_darmanis_v2_symbols_with_collapsing(darmanis):
    """V2's mapping dict has upper-case symbol keys: symbols collapse (42 genes summed) as in the official code."""
    tk = GeneformerTokenizer("V2")
    ids = tk.harmonize(darmanis.var_names)
    d = ref_dicts("V2")
    official_ids = pd.Series(darmanis.var_names).str.upper().map(d.mapping).map(d.token).fillna(-1).astype(np.int64)
    np.testing.assert_array_equal(ids, official_ids.to_numpy())
    assert tk.overlap_report(ids)["n_merged"] > 0  # the collapse path is exercised
    assert_same_tokens(tk.tokenize(darmanis.X, ids), official_reference(darmanis.X, darmanis.var_names, "V2"))


# ----------------------------------------------------------------------------- (b) dictionaries
@pytest.mark.parametrize("name", sorted(N_ENTRIES))
def test_dictionary_sizes_and_provenance(name):
    stem, corpus = name.rsplit("_", 1)
    version = {v: k for k, v in CORPUS.items()}[corpus]
    loader = {
        "token_dictionary": gd.token_dictionary,
        "gene_median_dictionary": gd.gene_medians,
        "gene_name_id_dict": gd.gene_name_id,
        "ensembl_mapping_dict": gd.ensembl_mapping,
    }[stem]
    assert len(loader(version)) == N_ENTRIES[name]
    meta = gd.sources()["files"][f"{name}.tsv.gz"]
    assert meta["source_sha256"] == OFFICIAL_SHA256[name]
    assert meta["n_entries"] == N_ENTRIES[name]


def test_dictionary_invariants():
    v1, v2 = gd.token_dictionary("V1"), gd.token_dictionary("V2")
    assert {k: v for k, v in v1.items() if k.startswith("<")} == {"<pad>": 0, "<mask>": 1}
    assert {k: v for k, v in v2.items() if k.startswith("<")} == {"<pad>": 0, "<mask>": 1, "<cls>": 2, "<eos>": 3}
    for tok, n_special in ((v1, 2), (v2, 4)):
        genes = [g for g in tok if not g.startswith("<")]
        assert genes == sorted(genes)
        assert [tok[g] for g in genes] == list(range(n_special, n_special + len(genes)))
    assert sum(g.startswith("ENSGR") for g in v1) == 19
    assert len(set(v1) & set(v2) - {"<pad>", "<mask>"}) == 19_623
    for version, tok in (("V1", v1), ("V2", v2)):
        med = gd.gene_medians(version)
        assert all(g in med and med[g] > 0 for g in tok if not g.startswith("<"))
    assert all(k == v for k, v in gd.ensembl_mapping("V1").items())  # V1 mapping is the identity
    assert sum(v in v2 for v in gd.ensembl_mapping("V2").values()) == 91_753
    assert min(gd.gene_medians("V1").values()) == pytest.approx(0.0947, abs=1e-4)
    assert max(gd.gene_medians("V1").values()) == pytest.approx(634.3, abs=0.1)
    tk1, tk2 = GeneformerTokenizer("V1"), GeneformerTokenizer("V2")
    assert (tk1.vocab_size, tk2.vocab_size) == (25_426, 20_275)
    assert (tk1.max_genes, tk2.max_genes, tk2.model_input_size) == (2048, 4094, 4096)


def test_dictionaries_equal_pickle_sample():
    sample = json.loads(SAMPLE.read_text())
    assert sample["hf_revision"] == "05fcbeb8a27d49e0a7a4349152202ee2c1cbfd28"
    assert set(sample["dictionaries"]) == set(OFFICIAL_SHA256)
    loaders = {
        "token_dictionary": gd.token_dictionary,
        "gene_median_dictionary": gd.gene_medians,
        "gene_name_id_dict": gd.gene_name_id,
        "ensembl_mapping_dict": gd.ensembl_mapping,
    }
    for name, entry in sample["dictionaries"].items():
        assert entry["source_sha256"] == OFFICIAL_SHA256[name]
        assert entry["n_entries"] == N_ENTRIES[name]
        stem, corpus = name.rsplit("_", 1)
        loaded = loaders[stem]({v: k for k, v in CORPUS.items()}[corpus])
        assert len(entry["sample"]) == 50
        keys = list(loaded)
        assert keys[0] == entry["sample"][0][0] and keys[-1] == entry["sample"][-1][0]  # insertion order kept
        for key, value in entry["sample"]:
            assert type(loaded[key]) is type(value)
            assert loaded[key] == value  # exact: ints, strings, float64 medians


# ----------------------------------------------------------------------------- (c) harmonisation
@pytest.mark.parametrize("version", ["V1", "V2"])
def test_harmonize_ids_versions_case_symbols(version):
    tk = GeneformerTokenizer(version)
    tp53 = ref_dicts(version).token["ENSG00000141510"]
    got = tk.harmonize(
        ["ENSG00000141510", "ENSG00000141510.17", "ensg00000141510", "ensg00000141510.3", "TP53", None, "", "xyz"]
    )
    assert got.tolist() == [tp53] * 5 + [-1, -1, -1]
    # mixed-case human symbols ("C1orf112"-style) are accepted in a human-cased column
    assert tk.harmonize(["C1orf112", "GAPDH", "ACTB"]).min() >= 0


def test_choose_gene_ids(darmanis):
    """The official input (human Ensembl IDs) is read when a column holds them, even where symbols cover more."""
    for version in ("V1", "V2"):
        tk = GeneformerTokenizer(version)
        key, ids = choose_gene_ids(darmanis, tk)
        assert key == "gene_ids"
        np.testing.assert_array_equal(ids, tk.harmonize(darmanis.var["gene_ids"]))
        names = tk.choose_gene_ids(darmanis)
        assert names.equals(darmanis.var["gene_ids"])
        np.testing.assert_array_equal(tk.harmonize(names), ids)
        # var["ensembl_id"], the official column, wins over another ID column even when it covers less
        both = darmanis.copy()
        eid = both.var["gene_ids"].astype(str).to_numpy().copy()
        eid[:2000] = ""
        both.var["ensembl_id"] = eid
        assert choose_gene_ids(both, tk)[0] == "ensembl_id"
        # IDs of other species with an ENSG-like prefix (chicken ENSGALG) are not human IDs
        chicken = darmanis.copy()
        chicken.var["gene_ids"] = [f"ENSGALG{i:011d}" for i in range(chicken.n_vars)]
        assert choose_gene_ids(chicken, tk)[0] is None
        # without the ID column the symbols are read
        no_ids = darmanis.copy()
        del no_ids.var["gene_ids"]
        assert choose_gene_ids(no_ids, tk)[0] is None
        # IDs that barely match (here 90 % replaced by mouse IDs) lose to the symbols
        mouse = darmanis.copy()
        gid = mouse.var["gene_ids"].astype(str).to_numpy().copy()
        gid[: int(0.9 * len(gid))] = [f"ENSMUSG{i:011d}" for i in range(int(0.9 * len(gid)))]
        mouse.var["gene_ids"] = gid
        assert choose_gene_ids(mouse, tk)[0] is None
        # Ensembl IDs as var_names win over a symbol column
        swapped = darmanis.copy()
        swapped.var["gene_symbols"] = swapped.var_names.to_numpy()
        swapped.var_names = swapped.var["gene_ids"].astype(str).to_numpy()
        del swapped.var["gene_ids"]
        assert choose_gene_ids(swapped, tk)[0] is None


def _make_adata(counts, genes):
    return ad.AnnData(
        X=sparse.csr_matrix(np.asarray(counts, dtype=np.float32)), var=pd.DataFrame(index=pd.Index(genes))
    )


def test_duplicates_summed_as_official():
    """Two columns of one gene are summed; the sum outranks a gene that beats each column alone.

    V2 maps both the Ensembl ID and the symbol of TP53, so the official ``sum_ensembl_ids`` collapses them.
    """
    tk = GeneformerTokenizer("V2")
    d = ref_dicts("V2")
    a, b, c = "ENSG00000141510", "ENSG00000075624", "ENSG00000111640"  # TP53, ACTB, GAPDH
    genes = [a, "NOT_A_GENE", "TP53", b, c]
    m = {g: d.median[g] for g in (a, b, c)}
    ca1, ca2 = 30, 30
    cb = int(np.ceil(45 * m[b] / m[a]))  # b's value ~ 45/m[a]: above 30/m[a], below 60/m[a]
    cc = 1
    X = np.array([[ca1, 7, ca2, cb, cc]], dtype=np.float32)
    adata = _make_adata(X, genes)
    ids = tk.harmonize(adata.var_names)
    assert ids.tolist() == [d.token[a], -1, d.token[a], d.token[b], d.token[c]]
    tokens = tk.tokenize(adata.X, ids)
    n = X.sum()  # whole-row total, the non-vocabulary gene included
    values = {a: (ca1 + ca2) / n * 10_000 / m[a], b: cb / n * 10_000 / m[b], c: cc / n * 10_000 / m[c]}
    expected = [d.token["<cls>"], *[d.token[g] for g in sorted(values, key=lambda g: -values[g])], d.token["<eos>"]]
    assert tokens.cell(0).tolist() == expected
    assert expected[1] == d.token[a] and ca1 / m[a] < cb / m[b]  # summing changed the order
    assert_same_tokens(tokens, official_reference(X, genes, "V2"))


def test_duplicates_summed_v1_extension():
    """psysc also sums IDs the official code would not collapse (version suffix, lower case)."""
    tk = GeneformerTokenizer("V1")
    d = ref_dicts("V1")
    a, b = "ENSG00000141510", "ENSG00000075624"
    genes = [a, "ensg00000141510.4", b]
    cb = int(np.ceil(1.5 * 10 * d.median[b] / d.median[a]))  # between one column (10) and the sum (20) of a
    t = tk.tokenize(np.array([[10, 10, cb]]), tk.harmonize(genes))
    assert t.cell(0).tolist() == [d.token[a], d.token[b]]
    t = tk.tokenize(np.array([[10, 0, cb]]), tk.harmonize(genes))
    assert t.cell(0).tolist() == [d.token[b], d.token[a]]


def test_collapsed_column_order_breaks_ties_as_official():
    """Summed genes are appended after the unique ones (official sc.concat order), which decides ties."""
    tk = GeneformerTokenizer("V2")
    d = ref_dicts("V2")
    g_dup, g_single = "ENSG00000289762", "ENSG00000293553"  # SMIM46 and another gene, same median
    assert d.median[g_dup] == d.median[g_single]
    names = [g_dup, g_single, "SMIM46", "ENSG00000141510"]
    X = np.array([[1, 2, 1, 3], [2, 4, 2, 0]], dtype=np.float32)
    ids = tk.harmonize(names)
    assert ids[0] == ids[2] == d.token[g_dup]
    tokens = tk.tokenize(X, ids)
    assert_same_tokens(tokens, official_reference(X, names, "V2"))
    # the official collapsed order is [g_single, TP53, g_dup]; ties follow argsort on that order
    order = np.array([d.token[g] for g in (g_single, "ENSG00000141510", g_dup)])
    vals = (
        np.array([2.0, 3.0, 2.0]) / 7 * 10_000 / np.array([d.median[g] for g in (g_single, "ENSG00000141510", g_dup)])
    )
    assert tokens.cell(0)[1:-1].tolist() == order[np.argsort(-vals)].tolist()


# ----------------------------------------------------------------------------- (d) empty cells and errors
@pytest.mark.parametrize("version", ["V1", "V2"])
def test_empty_cells_give_empty_sequences(version):
    tk = GeneformerTokenizer(version)
    ids = tk.harmonize(["ENSG00000141510", "NOT_A_GENE", "ENSG00000075624"])
    X = np.array([[0, 0, 0], [0, 5, 0], [2, 1, 1], [0, 0, 0]])
    t = tk.tokenize(X, ids)
    assert t.n_cells == 4
    extra = 2 if version == "V2" else 0
    assert t.lengths.tolist() == [0, 0, 2 + extra, 0]
    assert tk.tokenize(X, ids, n_counts=[0, 5, 0, 0]).lengths.tolist() == [0, 0, 0, 0]  # n_counts 0: nothing


def test_normalised_input_is_refused(darmanis):
    tk = GeneformerTokenizer("V2")
    ids = tk.harmonize(darmanis.var["gene_ids"])
    X = darmanis.X[:10].copy()
    X.data = np.log1p(X.data)
    with pytest.raises(ValueError, match=r"raw counts.*layer='counts'"):
        tk.tokenize(X, ids)
    X.data = -darmanis.X[:10].data
    with pytest.raises(ValueError, match="raw counts"):
        tk.tokenize(X, ids)
    norm = darmanis[:10].copy()
    norm.layers["counts"] = norm.X.copy()
    norm.X = norm.X.multiply(1 / norm.X.sum(axis=1)).tocsr()
    with pytest.raises(ValueError, match="layer='counts'"):
        tk.tokenize_adata(norm, gene_ids="gene_ids")
    assert tk.tokenize_adata(norm, gene_ids="gene_ids", layer="counts").n_cells == 10


def test_mouse_genes_are_refused_with_species_hint(darmanis):
    tk = GeneformerTokenizer("V2")
    mouse = [s[:1] + s[1:].lower() for s in darmanis.var_names]  # Actb, Gapdh, Snap25, ...
    ids = tk.harmonize(mouse)
    with pytest.raises(ValueError, match="species"):
        tk.overlap_report(ids, names=mouse)
    m = _make_adata(np.ones((2, len(mouse))), mouse)
    with pytest.raises(ValueError, match="species") as err:
        tk.tokenize_adata(m)
    with pytest.raises(ValueError, match="species"):
        tk.choose_gene_ids(m)  # the path the model class uses
    # the fix the message names runs, and gives Geneformer human Ensembl IDs it knows
    fix = "psysc.pp.map_genes(adata, 'human', gene_id='ensembl')"
    assert fix in str(err.value) and "gene_col" not in str(err.value)  # a var column of mouse IDs would not do
    scope = {"adata": m, "psysc": psysc}
    exec(fix, scope)
    assert m.var_names.str.startswith("ENSG").all()
    assert tk.overlap_report(tk.harmonize(m.var_names), names=m.var_names)["n_vocab_found"] > 10_000
    ensmus = [f"ENSMUSG{i:011d}" for i in range(3000)]
    with pytest.raises(ValueError, match="species"):
        tk.overlap_report(tk.harmonize(ensmus), names=ensmus)


@pytest.mark.parametrize("version", ["V1", "V2"])
def test_overlap_report_darmanis(darmanis, version):
    tk = GeneformerTokenizer(version)
    rep = tk.overlap_report(tk.harmonize(darmanis.var["gene_ids"]), names=darmanis.var["gene_ids"])
    assert rep["n_input_genes"] == darmanis.n_vars
    assert rep["n_vocab_genes"] == tk.vocab_size - len(tk.special)
    assert rep["n_input_matched"] == (tk.harmonize(darmanis.var["gene_ids"]) >= 0).sum()
    assert 0.5 < rep["frac_input_matched"] < 1 and 0.5 < rep["frac_vocab_found"] < 1


# ----------------------------------------------------------------------------- (e) truncation
@pytest.mark.parametrize(("version", "length"), [("V1", 2048), ("V2", 4096)])
def test_truncation(version, length):
    tk = GeneformerTokenizer(version)
    genes = list(tk.genes[len(tk.special) : len(tk.special) + 6000])
    rng = np.random.default_rng(0)
    X = rng.integers(1, 50, size=(2, 6000)).astype(np.float64)
    X[1, 5500:] = 0  # 5,500 expressed genes
    t = tk.tokenize(sparse.csr_matrix(X), tk.harmonize(genes))
    assert t.lengths.tolist() == [length, length]
    if version == "V2":
        assert t.cell(0)[0] == 2 and t.cell(0)[-1] == 3 and not np.isin(t.cell(0)[1:-1], [0, 1, 2, 3]).any()
    assert_same_tokens(t, official_reference(X, genes, version))


# ----------------------------------------------------------------------------- conversion script safety
def _script():
    spec = importlib.util.spec_from_file_location(
        "convert_geneformer_dictionaries", ROOT / "scripts" / "convert_geneformer_dictionaries.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_malicious_pickle(tmp_path):
    mod = _script()
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"ENSG00000141510": _Evil(marker)})
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        mod.restricted_loads(payload)
    assert not marker.exists()
    for proto in (0, 2, 5):
        with pytest.raises(pickle.UnpicklingError):
            mod.restricted_loads(pickle.dumps(eval, protocol=proto))  # builtins.eval
        with pytest.raises(pickle.UnpicklingError):
            mod.restricted_loads(pickle.dumps(np.load, protocol=proto))  # numpy, but not dtype/scalar
    with pytest.raises(pickle.UnpicklingError):
        mod.restricted_loads(pickle.dumps(np.zeros(2)))  # ndarray reconstruction is not needed, not allowed


def test_restricted_unpickler_reads_numpy_scalars():
    mod = _script()
    d = {"ENSG00000141510": np.float64(2.5), "ENSG00000075624": np.float64(0.1)}
    assert mod.load_dictionary(pickle.dumps(d, protocol=3), float) == {"ENSG00000141510": 2.5, "ENSG00000075624": 0.1}
    # the official pickles name numpy<2's module path
    old = pickle.dumps({"a": np.int16(7)}, protocol=3).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in old
    out = mod.load_dictionary(old, int)
    assert out == {"a": 7} and type(out["a"]) is int
    with pytest.raises(TypeError):
        mod.load_dictionary(pickle.dumps({"a": "not a number"}), float)
    # deterministic, exact TSV
    blob = mod.to_tsv_gz(("k", "v"), {"x": 0.1 + 0.2, "y": 1e-300})
    assert blob == mod.to_tsv_gz(("k", "v"), {"x": 0.1 + 0.2, "y": 1e-300})
    lines = gzip.decompress(blob).decode().splitlines()
    assert [float(line.split("\t")[1]) for line in lines[1:]] == [0.1 + 0.2, 1e-300]


def test_import_does_not_pull_torch():
    import subprocess
    import sys

    code = "import sys, psysc.models.geneformer; print('torch' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )


def test_a_feature_selected_gene_list_is_warned_about(caplog):
    import logging

    import psysc
    from psysc.models.geneformer import GeneformerTokenizer

    adata = psysc.datasets.darmanis2015()
    with caplog.at_level(logging.WARNING, logger="psysc"):
        GeneformerTokenizer("V2").gene_token_ids(adata)
    assert "feature-selected" not in caplog.text  # the whole transcriptome: about 16,600 vocabulary genes
    hvg = adata[:, adata.X.getnnz(axis=0).argsort()[-3000:]].copy()  # the 3,000 most often detected genes
    with caplog.at_level(logging.WARNING, logger="psysc"):
        GeneformerTokenizer("V2").gene_token_ids(hvg)
    assert "feature-selected" in caplog.text
