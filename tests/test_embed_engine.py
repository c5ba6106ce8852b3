"""The shared embedding engine with a small model written here (independent of any real checkpoint)."""

import logging

import anndata as ad
import numpy as np
import pytest
from scipy import sparse

torch = pytest.importorskip("torch")

import psysc  # noqa: E402
from psysc.models._base import FoundationModel, ModelInfo, Tokens  # noqa: E402


class ToyModel(FoundationModel):
    """Tokens = expressed genes by decreasing count; network = embedding + one transformer layer + masked mean."""

    needs_counts = True

    def __init__(self, n_genes, dim=8, fail_after=None):
        torch.manual_seed(0)
        self.info = ModelInfo(name="toy", family="toy", version="1", revision="r1", sha256={"w": "0" * 64})
        self.embedding_dim = dim
        self.pad_id = 0
        self.emb = torch.nn.Embedding(n_genes + 1, dim, padding_idx=0)
        self.layer = torch.nn.TransformerEncoderLayer(dim, 2, 16, dropout=0.0, batch_first=True)
        self.layer.eval()
        self.calls = 0
        self.fail_after = fail_after

    def tokenize(self, adata, *, rows=None, layer=None):
        X = adata.X if layer is None else adata.layers[layer]
        X = X[rows] if rows is not None else X
        X = sparse.csr_matrix(X)
        seqs = []
        for i in range(X.shape[0]):
            row = X.getrow(i)
            order = np.argsort(-row.data, kind="stable")
            seqs.append(row.indices[order] + 1)
        return Tokens.from_list(seqs)

    def to(self, device, dtype=None):
        self.emb.to(device)
        self.layer.to(device)
        return self

    def embed_batch(self, input_ids, attention_mask):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt("simulated kill")
        h = self.layer(self.emb(input_ids), src_key_padding_mask=attention_mask == 0)
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        return (h * m).sum(1) / m.sum(1)


def counts(n_cells=90, n_genes=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.poisson(rng.uniform(0.05, 2, n_genes), size=(n_cells, n_genes)).astype(np.float32)
    X[5] = 0  # an empty cell
    a = ad.AnnData(sparse.csr_matrix(X))
    a.obs_names = [f"c{i}" for i in range(n_cells)]
    return a


def reference(model, adata):
    """Each cell alone, no padding at all."""
    toks = model.tokenize(adata)
    out = np.full((adata.n_obs, model.embedding_dim), np.nan, dtype=np.float32)
    with torch.inference_mode():
        for i in range(adata.n_obs):
            seq = toks.cell(i)
            if len(seq):
                ids = torch.from_numpy(seq[None, :])
                out[i] = model.embed_batch(ids, torch.ones_like(ids)).numpy()
    return out


@pytest.mark.parametrize(("batch_size", "block_size"), [(1, 1000), (7, 13), (64, 32)])
def test_embeddings_do_not_depend_on_batching(batch_size, block_size, caplog):
    adata = counts()
    model = ToyModel(adata.n_vars)
    expected = reference(model, adata)
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.tl.embed(adata, model, batch_size=batch_size, block_size=block_size, device="cpu")
    got = adata.obsm["X_toy"]
    assert got.dtype == np.float32 and got.shape == (90, 8)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.isnan(got[5]).all() and not np.isnan(np.delete(got, 5, axis=0)).any()
    assert "1 of 90 cells express no gene" in caplog.text
    # the line the warning gives keeps exactly the embedded cells, and scanpy's graph then builds
    line = caplog.text.split("keep the embedded cells: ")[1].splitlines()[0]
    scope = {"adata": adata, "np": np}
    exec(line, scope)
    kept = scope["adata"]
    assert kept.n_obs == 89 and "c5" not in kept.obs_names
    import scanpy as sc

    sc.pp.neighbors(kept, use_rep="X_toy", n_neighbors=5)
    assert kept.obsp["connectivities"].shape == (89, 89)
    prov = adata.uns["psysc"]["embed"]["X_toy"]
    assert prov["model"] == "toy" and prov["revision"] == "r1" and prov["n_empty_cells"] == 1


def test_cell_order_is_kept():
    adata = counts()
    model = ToyModel(adata.n_vars)
    psysc.tl.embed(adata, model, device="cpu", key_added="e")
    perm = np.random.default_rng(1).permutation(adata.n_obs)
    shuffled = adata[perm].copy()
    psysc.tl.embed(shuffled, model, device="cpu", key_added="e")
    np.testing.assert_allclose(shuffled.obsm["e"], adata.obsm["e"][perm], atol=1e-5)


def test_backed_input_and_raw_counts_layer(tmp_path):
    adata = counts()
    model = ToyModel(adata.n_vars)
    psysc.tl.embed(adata, model, device="cpu")
    layered = adata.copy()
    layered.layers["counts"] = layered.X.copy()
    layered.X = sparse.csr_matrix(layered.X.log1p())
    psysc.tl.embed(layered, model, device="cpu", layer="counts", key_added="from_layer")
    np.testing.assert_allclose(layered.obsm["from_layer"], adata.obsm["X_toy"], atol=1e-6)
    counts().write_h5ad(tmp_path / "c.h5ad")
    backed = ad.read_h5ad(tmp_path / "c.h5ad", backed="r")
    psysc.tl.embed(backed, model, device="cpu", block_size=16)
    np.testing.assert_allclose(backed.obsm["X_toy"], adata.obsm["X_toy"], atol=1e-6)


def test_resume_after_an_interrupted_run(tmp_path):
    adata = counts()
    expected_model = ToyModel(adata.n_vars)
    psysc.tl.embed(adata, expected_model, device="cpu", block_size=20, batch_size=8)
    expected = adata.obsm["X_toy"].copy()

    dying = ToyModel(adata.n_vars, fail_after=7)  # 3 batches per block of 20: dies inside the third block
    with pytest.raises(KeyboardInterrupt):
        psysc.tl.embed(adata.copy(), dying, device="cpu", block_size=20, batch_size=8, resume=tmp_path / "run")
    assert len(list((tmp_path / "run").glob("block_*.npy"))) == 2
    resumed = ToyModel(adata.n_vars)
    fresh = adata.copy()
    psysc.tl.embed(fresh, resumed, device="cpu", block_size=20, batch_size=8, resume=tmp_path / "run")
    np.testing.assert_array_equal(fresh.obsm["X_toy"], expected)
    lengths = np.diff(resumed.tokenize(adata).offsets)
    missing = [(lengths[s : s + 20] > 0).sum() for s in range(40, 90, 20)]
    assert resumed.calls == sum(int(np.ceil(k / 8)) for k in missing)  # only the missing blocks were computed
    with pytest.raises(ValueError, match="other parameters"):
        psysc.tl.embed(adata.copy(), resumed, device="cpu", block_size=30, resume=tmp_path / "run")


def test_mudata_needs_a_modality():
    class FakeMuData:
        def __init__(self, rna):
            self.mod = {"rna": rna}

    rna = counts()
    mdata = FakeMuData(rna)
    model = ToyModel(rna.n_vars)
    with pytest.raises(ValueError, match="mod='rna'"):
        psysc.tl.embed(mdata, model, device="cpu")
    psysc.tl.embed(mdata, model, device="cpu", mod="rna")
    assert "X_toy" in rna.obsm


def test_bad_device_and_sizes():
    adata = counts()
    model = ToyModel(adata.n_vars)
    with pytest.raises(ValueError, match="dtype"):
        psysc.tl.embed(adata, model, device="cpu", dtype="int8")
    with pytest.raises(ValueError, match="batch_size"):
        psysc.tl.embed(adata, model, device="cpu", batch_size=0)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            psysc.tl.embed(adata, model, device="cuda")


def test_out_of_memory_batches_are_split_and_the_smaller_size_kept(caplog):
    from psysc._core._engine import BatchSizer, embed_tokens

    adata = counts()
    model = ToyModel(adata.n_vars)
    expected = reference(model, adata)
    sizes = []
    plain = model.embed_batch

    def limited(ids, mask):
        sizes.append(ids.shape[0])
        if ids.shape[0] > 5:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return plain(ids, mask)

    model.embed_batch = limited
    sizer = BatchSizer(32)
    with caplog.at_level(logging.WARNING, logger="psysc"):
        got = embed_tokens(model, model.tokenize(adata), device=torch.device("cpu"), dtype=torch.float32,
                           sizer=sizer, retry_oom=True)
    assert sizer.size == 4 and sizes[:4] == [32, 16, 8, 4] and max(sizes[4:]) == 4
    assert "batch size lowered to 4" in caplog.text
    np.testing.assert_allclose(got, expected, atol=1e-5)
    model.embed_batch = lambda ids, mask: (_ for _ in ()).throw(RuntimeError("some other error"))
    with pytest.raises(RuntimeError, match="some other error"):
        embed_tokens(model, model.tokenize(adata), device=torch.device("cpu"), dtype=torch.float32,
                     sizer=BatchSizer(8), retry_oom=True)


class FlatToyModel(ToyModel):
    """Takes unpadded cells (like scVI): the mean of the token embeddings of each cell."""

    def embed_flat(self, ids, starts, values=None):
        self.calls += 1
        if ids.shape[0] and self.fail_after is not None and len(starts) > self.fail_after:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        lengths = torch.diff(torch.cat([starts, torch.tensor([ids.shape[0]])]))
        cell = torch.repeat_interleave(torch.arange(len(starts)), lengths)
        total = torch.zeros(len(starts), self.embedding_dim).index_add_(0, cell, self.emb(ids))
        return total / lengths.unsqueeze(1)


def test_out_of_memory_batches_of_unpadded_cells_are_split_too(caplog):
    from psysc._core._engine import BatchSizer, embed_tokens

    adata = counts()
    expected = embed_tokens(FlatToyModel(adata.n_vars), FlatToyModel(adata.n_vars).tokenize(adata),
                            device=torch.device("cpu"), dtype=torch.float32, sizer=BatchSizer(1000))
    model = FlatToyModel(adata.n_vars, fail_after=5)  # batches of more than 5 cells run out of memory
    sizer = BatchSizer(32)
    with caplog.at_level(logging.WARNING, logger="psysc"):
        got = embed_tokens(model, model.tokenize(adata), device=torch.device("cpu"), dtype=torch.float32,
                           sizer=sizer, retry_oom=True)
    assert sizer.size == 4 and "batch size lowered to 4" in caplog.text
    np.testing.assert_allclose(got, expected, atol=1e-6)
    with pytest.raises(torch.OutOfMemoryError):  # without retrying (the CPU default) the error is the user's
        embed_tokens(model, model.tokenize(adata), device=torch.device("cpu"), dtype=torch.float32,
                     sizer=BatchSizer(32))


# -- resume: the manifest and the input of each block --------------------------------------------------
@pytest.fixture(scope="module")
def brain_cells():
    adata = psysc.datasets.darmanis2015()[:12].copy()
    adata.obs_names = [f"cell{i}" for i in range(adata.n_obs)]
    return adata


@pytest.fixture(scope="module")
def gf_v1(tmp_path_factory):
    from psysc.testing import random_geneformer_checkpoint

    return random_geneformer_checkpoint(tmp_path_factory.mktemp("gf_v1"), version="V1", seed=2)


@pytest.fixture(scope="module")
def gf_v2(tmp_path_factory):
    from psysc.testing import random_geneformer_checkpoint

    return random_geneformer_checkpoint(tmp_path_factory.mktemp("gf_v2"), version="V2", n_layers=3, seed=3)


@pytest.fixture(scope="module")
def scgpt_ckpt(tmp_path_factory):
    from psysc.testing import random_scgpt_checkpoint

    return random_scgpt_checkpoint(tmp_path_factory.mktemp("scgpt"), vocab="brain", nlayers=1, embsize=16, nheads=2)


def test_resume_refuses_other_genes_and_other_counts(tmp_path):
    adata = counts()
    run = tmp_path / "run"
    psysc.tl.embed(adata.copy(), ToyModel(adata.n_vars), device="cpu", block_size=30, resume=run)
    # the same cells with half of the genes: their embedding differs, the stored one must not come back
    half = adata[:, ::2].copy()
    fresh = psysc.tl.embed(half, ToyModel(adata.n_vars), device="cpu", block_size=30, copy=True).obsm["X_toy"]
    with pytest.raises(ValueError, match=r"genes differ.*new resume directory or delete"):
        psysc.tl.embed(half, ToyModel(adata.n_vars), device="cpu", block_size=30, resume=run)
    # same cells and genes, other counts in the second block: refused, naming the rows
    X = adata.X.toarray()
    X[40] = X[40][::-1]
    changed = adata.copy()
    changed.X = sparse.csr_matrix(X)
    with pytest.raises(ValueError, match=r"rows 30:60 were embedded from other input.*delete this one"):
        psysc.tl.embed(changed, ToyModel(adata.n_vars), device="cpu", block_size=30, resume=run)
    # a new directory gives what a run without resume gives
    psysc.tl.embed(half, ToyModel(adata.n_vars), device="cpu", block_size=30, resume=tmp_path / "other")
    np.testing.assert_array_equal(half.obsm["X_toy"], fresh)


def test_resume_refuses_another_gene_column(brain_cells, gf_v1, tmp_path):
    # same var_names and counts, other Ensembl IDs in var["gene_ids"] (the column Geneformer tokenises from)
    a = brain_cells.copy()
    a.var_names = [f"g{i}" for i in range(a.n_vars)]  # only var["gene_ids"] matches the vocabulary
    psysc.tl.embed(a, gf_v1, device="cpu", key_added="e", resume=tmp_path / "run")
    b = a.copy()
    ids = b.var["gene_ids"].to_numpy().copy()
    b.var["gene_ids"] = np.roll(ids, 1)
    fresh = psysc.tl.embed(b, gf_v1, device="cpu", key_added="e", copy=True).obsm["e"]
    assert np.abs(fresh - a.obsm["e"]).max() > 1e-3  # the stored embedding would be wrong
    with pytest.raises(ValueError, match="other input"):
        psysc.tl.embed(b, gf_v1, device="cpu", key_added="e", resume=tmp_path / "run")


@pytest.mark.parametrize(("checkpoint", "column"), [("gf_v1", "gene_ids"), ("scgpt_ckpt", "feature_name")])
def test_a_loaded_model_maps_the_genes_of_each_dataset_anew(brain_cells, checkpoint, column, request):
    # two datasets with the same var_names and var columns but other gene identifiers in the column the model
    # reads (e.g. AnnData built from matrices, var_names "0".."n-1"): one loaded model must embed each correctly
    path = request.getfixturevalue(checkpoint)
    model = psysc.models.load(path, device="cpu")
    a = brain_cells.copy()
    a.var["feature_name"] = list(a.var_names)
    a.var_names = [f"g{i}" for i in range(a.n_vars)]  # only var[column] names genes the vocabulary knows
    psysc.tl.embed(a, model, device="cpu", key_added="e")
    b = a.copy()
    b.var[column] = np.roll(b.var[column].to_numpy(), 1)
    psysc.tl.embed(b, model, device="cpu", key_added="e")
    fresh = psysc.tl.embed(b, psysc.models.load(path, device="cpu"), device="cpu", key_added="e", copy=True)
    np.testing.assert_array_equal(b.obsm["e"], fresh.obsm["e"])
    assert np.abs(b.obsm["e"] - a.obsm["e"]).max() > 1e-3  # the genes differ, so must the embeddings


def test_resume_refuses_another_precision_and_records_the_one_used(brain_cells, gf_v1, tmp_path):
    half = psysc.models.load(gf_v1, dtype="bfloat16")  # bfloat16 weights: computes in bfloat16 on the CPU too
    full = psysc.models.load(gf_v1)
    a = psysc.tl.embed(brain_cells, half, device="cpu", key_added="e", copy=True, resume=tmp_path / "run")
    ref = psysc.tl.embed(brain_cells, full, device="cpu", key_added="e", copy=True)
    assert a.uns["psysc"]["embed"]["e"]["dtype"] == "bfloat16"
    assert ref.uns["psysc"]["embed"]["e"]["dtype"] == "float32"
    assert np.abs(a.obsm["e"] - ref.obsm["e"]).max() > 1e-4  # the precisions give other numbers
    with pytest.raises(ValueError, match=r"\(dtype differ\)"):
        psysc.tl.embed(brain_cells, full, device="cpu", key_added="e", copy=True, resume=tmp_path / "run")
    manifest = __import__("json").loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["device"] == "cpu" and manifest["dtype"] == "bfloat16"


def test_resume_refuses_another_gene_col(brain_cells, scgpt_ckpt, tmp_path):
    m = psysc.models.load(scgpt_ckpt)
    psysc.tl.embed(brain_cells, m, device="cpu", copy=True, resume=tmp_path / "run")
    m.gene_col = None
    with pytest.raises(ValueError, match=r"tokenisation differ"):
        psysc.tl.embed(brain_cells, m, device="cpu", copy=True, resume=tmp_path / "run")


# -- precision on the CPU --------------------------------------------------------------------------------
def test_cpu_records_the_precision_actually_used(caplog):
    adata = counts()
    f32 = psysc.tl.embed(adata, ToyModel(adata.n_vars), device="cpu", dtype="float32", copy=True, key_added="e")
    with caplog.at_level(logging.INFO, logger="psysc"):
        b16 = psysc.tl.embed(adata, ToyModel(adata.n_vars), device="cpu", dtype="bfloat16", copy=True,
                             key_added="e")
    np.testing.assert_array_equal(b16.obsm["e"], f32.obsm["e"])  # computed in float32
    assert b16.uns["psysc"]["embed"]["e"]["dtype"] == "float32"
    assert "dtype bfloat16 is not used on cpu" in caplog.text


# -- options given with a loaded model apply to that call only --------------------------------------------
def test_options_with_a_loaded_model_apply_to_that_call_only(brain_cells, gf_v2):
    m = psysc.models.load(gf_v2)  # official V2 defaults: layer -1, cls
    extra = dict(m.info.extra)
    x = psysc.tl.embed(brain_cells, m, emb_layer=0, pooling="mean", device="cpu", copy=True, key_added="e")
    by_path = psysc.tl.embed(brain_cells, gf_v2, emb_layer=0, pooling="mean", device="cpu", copy=True,
                             key_added="e")
    np.testing.assert_allclose(x.obsm["e"], by_path.obsm["e"], atol=1e-6)
    opts = x.uns["psysc"]["embed"]["e"]["options"]
    assert opts["layer"] == 0 and opts["pooling"] == "mean"
    assert (m.layer, m.pooling) == (-1, "cls") and m.info.extra == extra  # the caller's model is unchanged
    default = psysc.tl.embed(brain_cells, m, device="cpu", copy=True, key_added="e")
    official = psysc.tl.embed(brain_cells, gf_v2, device="cpu", copy=True, key_added="e")
    np.testing.assert_array_equal(default.obsm["e"], official.obsm["e"])
    assert default.uns["psysc"]["embed"]["e"]["options"]["pooling"] == "cls"


def test_options_a_loaded_model_cannot_take_are_refused(brain_cells, gf_v1):
    v1 = psysc.models.load(gf_v1)
    with pytest.raises(ValueError, match="V1 has none"):
        psysc.tl.embed(brain_cells, v1, pooling="cls", device="cpu", copy=True)
    with pytest.raises(ValueError, match="out of range"):
        psysc.tl.embed(brain_cells, v1, emb_layer=5, device="cpu", copy=True)
    adata = counts()
    with pytest.raises(ValueError, match="emb_layer= does not apply to toy"):
        psysc.tl.embed(adata, ToyModel(adata.n_vars), emb_layer=0, device="cpu")


def test_seed_applies_to_that_call_only(brain_cells, scgpt_ckpt):
    m = psysc.models.load(scgpt_ckpt)
    x0 = psysc.tl.embed(brain_cells, m, device="cpu", copy=True, key_added="e")
    x7 = psysc.tl.embed(brain_cells, m, seed=7, device="cpu", copy=True, key_added="e")
    assert m.seed == 0 and m.info.extra["seed"] == 0
    seeded = psysc.models.load(scgpt_ckpt)
    seeded.seed = 7
    ref7 = psysc.tl.embed(brain_cells, seeded, device="cpu", copy=True, key_added="e")
    np.testing.assert_array_equal(x7.obsm["e"], ref7.obsm["e"])
    assert x7.uns["psysc"]["embed"]["e"]["options"]["seed"] == 7
    again = psysc.tl.embed(brain_cells, m, device="cpu", copy=True, key_added="e")
    np.testing.assert_array_equal(again.obsm["e"], x0.obsm["e"])
    assert again.uns["psysc"]["embed"]["e"]["options"]["seed"] == 0


def test_default_cuda_precision_is_the_official_one(monkeypatch):
    """With no dtype, CUDA computes in the official code's precision: Geneformer float32 (EmbExtractor, no
    autocast), scGPT float16 (torch.cuda.amp.autocast), scVI float32; bfloat16 only when asked or unnamed."""
    torch = pytest.importorskip("torch")
    from psysc._core._engine import pick_device_dtype
    from psysc.models.geneformer._model import Geneformer
    from psysc.models.scgpt._model import ScGPT
    from psysc.models.scvi._model import ScVI

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    official = {Geneformer: torch.float32, ScGPT: torch.float16, ScVI: torch.float32}
    for cls, want in official.items():
        dev, dt = pick_device_dtype("cuda", None, cuda_default=cls.cuda_dtype)
        assert (dev.type, dt) == ("cuda", want)
        assert pick_device_dtype("cuda", "bfloat16", cuda_default=cls.cuda_dtype)[1] == torch.bfloat16
        assert pick_device_dtype("cpu", None, cuda_default=cls.cuda_dtype)[1] == torch.float32
    assert pick_device_dtype("cuda", "auto")[1] == torch.bfloat16


def test_tokens_emptied_keeps_the_other_cells_and_their_values():
    seqs = [np.array([5, 6, 7]), np.array([8]), np.array([], dtype=np.int64), np.array([9, 10])]
    vals = [np.array([1.0, 2.0, 3.0]), np.array([4.0]), np.array([]), np.array([5.0, 6.0])]
    t = Tokens.from_list(seqs, vals).emptied(np.array([True, False, False, True]))
    assert t.n_cells == 4 and t.lengths.tolist() == [0, 1, 0, 0]
    assert t.cell(1).tolist() == [8] and t.values.tolist() == [4.0]
    with pytest.raises(ValueError, match="boolean mask of length 4"):
        t.emptied(np.array([True]))


# -- inputs refused before any work, or read as they are -----------------------------------------------------
def test_a_view_of_a_backed_anndata_is_refused_before_any_cell_is_embedded(tmp_path):
    counts().write_h5ad(tmp_path / "c.h5ad")
    backed = ad.read_h5ad(tmp_path / "c.h5ad", backed="r")
    model = ToyModel(backed.n_vars)
    with pytest.raises(ValueError, match=r"view of an AnnData opened in backed mode.*to_memory.*whole backed"):
        psysc.tl.embed(backed[5:15], model, device="cpu")
    with pytest.raises(ValueError, match=r"copy=True cannot copy an AnnData opened in backed mode"):
        psysc.tl.embed(backed, model, device="cpu", copy=True)
    assert model.calls == 0  # nothing was computed, then thrown away
    psysc.tl.embed(backed, model, device="cpu")  # the whole backed AnnData: embedded in place
    in_memory = counts()
    psysc.tl.embed(in_memory, ToyModel(in_memory.n_vars), device="cpu")
    np.testing.assert_allclose(backed.obsm["X_toy"][5:15], in_memory.obsm["X_toy"][5:15], atol=1e-6)


def test_no_matrix_in_x_names_the_layer_to_pass():
    adata = counts()
    adata.layers["counts"] = adata.X.copy()
    adata.X = None
    model = ToyModel(adata.n_vars)
    with pytest.raises(ValueError, match=r"adata.X is None: name the layer .*\['counts'\]"):
        psysc.tl.embed(adata, model, device="cpu")
    psysc.tl.embed(adata, model, device="cpu", layer="counts")
    assert not np.isnan(adata.obsm["X_toy"][0]).any()


@pytest.mark.parametrize("checkpoint", ["gf_v1", "scgpt_ckpt"])
def test_duplicated_sparse_entries_count_as_their_sum(brain_cells, checkpoint, request):
    # scipy allows a cell's value to be stored as several entries that add up; each cell is one count
    from _sparse import check_duplicated_entries_embed_as_their_sum

    check_duplicated_entries_embed_as_their_sum(brain_cells, psysc.models.load(request.getfixturevalue(checkpoint)))


@pytest.mark.parametrize("checkpoint", ["gf_v1", "scgpt_ckpt"])
def test_dense_float16_counts_embed_as_float32_ones(brain_cells, checkpoint, request):
    # scipy.sparse holds no float16; whole numbers up to 2048 are exact in float16
    path = request.getfixturevalue(checkpoint)
    model = psysc.models.load(path, device="cpu")
    reference = brain_cells.copy()
    reference.X = sparse.csr_matrix(np.minimum(reference.X.toarray(), 2048).astype(np.float32))
    psysc.tl.embed(reference, model, device="cpu", key_added="e")
    half = reference.copy()
    half.X = reference.X.toarray().astype(np.float16)
    assert np.array_equal(half.X.astype(np.float32), reference.X.toarray())
    psysc.tl.embed(half, model, device="cpu", key_added="e")
    np.testing.assert_array_equal(half.obsm["e"], reference.obsm["e"])


@pytest.mark.parametrize("checkpoint", ["gf_v1", "scgpt_ckpt"])
def test_a_gene_col_that_is_not_a_var_column_names_the_columns(brain_cells, checkpoint, request):
    model = psysc.models.load(request.getfixturevalue(checkpoint), device="cpu")
    model.gene_col = "nope"
    columns = list(brain_cells.var.columns)
    with pytest.raises(KeyError, match=r"gene_col='nope' is not a column of adata\.var") as err:
        psysc.tl.embed(brain_cells.copy(), model, device="cpu")
    assert str(columns) in str(err.value) and "model.gene_col" in str(err.value)
