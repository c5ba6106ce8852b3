"""scGPT on psysc's embedding engine: loader, parity with an independent PyTorch reference, determinism, provenance.

The reference below is written here, independently of psysc's network: the official module structure
(``GeneEncoder``: embedding + LayerNorm; ``ContinuousValueEncoder``: Linear-ReLU-Linear-LayerNorm-Dropout;
``torch.nn.TransformerEncoder`` of post-norm ``TransformerEncoderLayer`` with ReLU, batch_first) at a reduced size
(``d_hid`` != ``embsize`` so that a swap would show), loaded from the same official-format ``best_model.pt`` with the
key mapping of the official ``load_pretrained`` (``self_attn.Wqkv.`` -> ``self_attn.in_proj_``), and fed the
official zero-shot preprocessing (``np.quantile`` / ``np.digitize`` binning, ``<cls>`` with -2, padding with
``<pad>`` and -2, ``src_key_padding_mask``), then position 0 and L2 normalisation.
"""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from anndata import AnnData
from scipy import sparse

torch = pytest.importorskip("torch")

import psysc  # noqa: E402
from psysc.models.scgpt import official_vocab  # noqa: E402
from psysc.models.scgpt._network import IGNORED_KEY_PATTERNS  # noqa: E402
from psysc.testing import random_scgpt_checkpoint  # noqa: E402

SIZE = dict(nlayers=3, embsize=32, nheads=4, d_hid=48)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return random_scgpt_checkpoint(tmp_path_factory.mktemp("scgpt_brain"), vocab="brain", seed=3, **SIZE)


@pytest.fixture(scope="module")
def model(ckpt):
    return psysc.models.load(ckpt, device="cpu")


@pytest.fixture(scope="module")
def short(ckpt, tmp_path_factory):
    """The same weights with max_seq_len=256: sampling on every Darmanis cell, at a fraction of the time."""
    import shutil

    folder = tmp_path_factory.mktemp("scgpt_short") / "ckpt"
    shutil.copytree(ckpt, folder)
    args = json.loads((folder / "args.json").read_text())
    (folder / "args.json").write_text(json.dumps({**args, "max_seq_len": 256}))
    return psysc.models.load(folder, device="cpu")


@pytest.fixture(scope="module")
def cells():
    adata = psysc.datasets.darmanis2015()
    keep = np.concatenate([np.flatnonzero(adata.obs["cell_type"] == ct)[:8] for ct in
                           ["neurons", "astrocytes", "oligodendrocytes", "microglia", "OPC", "endothelial"]])
    return adata[keep].copy()


# ----------------------------------------------------------------------------------- independent reference
class Reference(torch.nn.Module):
    """scGPT's TransformerModel._encode on the PyTorch path, written from the official module structure."""

    def __init__(self, ntoken, d, nhead, d_hid, nlayers, dropout=0.2):
        super().__init__()
        self.gene_embedding = torch.nn.Embedding(ntoken, d)
        self.gene_norm = torch.nn.LayerNorm(d)
        self.value_linear1 = torch.nn.Linear(1, d)
        self.value_linear2 = torch.nn.Linear(d, d)
        self.value_norm = torch.nn.LayerNorm(d)
        self.value_dropout = torch.nn.Dropout(dropout)
        layer = torch.nn.TransformerEncoderLayer(d, nhead, d_hid, dropout, activation="relu", batch_first=True,
                                                 norm_first=False, layer_norm_eps=1e-5)
        self.encoder = torch.nn.TransformerEncoder(layer, nlayers, enable_nested_tensor=False)

    def forward(self, ids, values, pad_mask):
        genes = self.gene_norm(self.gene_embedding(ids))
        v = torch.clamp(values.unsqueeze(-1), max=512)
        v = self.value_dropout(self.value_norm(self.value_linear2(torch.relu(self.value_linear1(v)))))
        return self.encoder(genes + v, src_key_padding_mask=pad_mask)

    @classmethod
    def from_best_model(cls, folder):
        state = torch.load(folder / "best_model.pt", weights_only=True)
        args = json.loads((folder / "args.json").read_text())
        ntoken = len(json.loads((folder / "vocab.json").read_text()))
        ref = cls(ntoken, args["embsize"], args["nheads"], args["d_hid"], args["nlayers"])
        rename = {"encoder.embedding.": "gene_embedding.", "encoder.enc_norm.": "gene_norm.",
                  "value_encoder.linear1.": "value_linear1.", "value_encoder.linear2.": "value_linear2.",
                  "value_encoder.norm.": "value_norm.", "transformer_encoder.layers.": "encoder.layers."}
        mapped = {}
        for key, value in state.items():
            if key.startswith(("decoder.", "mvc_decoder.", "flag_encoder.")):
                continue
            key = key.replace("self_attn.Wqkv.weight", "self_attn.in_proj_weight")
            key = key.replace("self_attn.Wqkv.bias", "self_attn.in_proj_bias")
            for a, b in rename.items():
                if key.startswith(a):
                    key = b + key[len(a):]
            mapped[key] = value
        ref.load_state_dict(mapped, strict=True)
        return ref.eval()


def reference_embed(ref, seqs, pad_id, pad_value=-2.0):
    """Official get_batch_cell_embeddings on given (ids, values) sequences: pad, encode, <cls>, L2."""
    width = max(len(i) for i, _ in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    vals = torch.full((len(seqs), width), pad_value, dtype=torch.float32)
    for r, (i, v) in enumerate(seqs):
        ids[r, : len(i)] = torch.as_tensor(i)
        vals[r, : len(v)] = torch.as_tensor(v, dtype=torch.float32)
    with torch.no_grad():
        out = ref(ids, vals, ids.eq(pad_id))[:, 0].numpy()
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def official_tokens(row, gene_ids, cls_id, pad_value=-2.0, n_bins=51):
    """embed_data's Dataset + DataCollator binning for one dense row of a cell WITHOUT ties and <= 1199 genes."""
    nz = np.nonzero(row)[0]
    values = row[nz].astype(np.float32)
    assert len(np.unique(values)) == len(values) and len(values) < 1200
    bins = np.quantile(values, np.linspace(0, 1, n_bins - 1))
    left, right = np.digitize(values, bins), np.digitize(values, bins, right=True)
    assert (left - right <= 1).all()  # no tie: the official random draw cannot move the level
    return np.r_[cls_id, gene_ids[nz]], np.r_[pad_value, left].astype(np.float32)


def no_tie_cells(genes, n_cells=24, seed=0):
    rng = np.random.default_rng(seed)
    X = np.zeros((n_cells, len(genes)), dtype=np.float32)
    for i in range(n_cells):
        k = int(rng.integers(5, 200))
        cols = rng.choice(len(genes), k, replace=False)
        X[i, cols] = rng.choice(np.arange(1, 5000), k, replace=False)
    return AnnData(X=sparse.csr_matrix(X), obs=pd.DataFrame(index=[f"cell{i}" for i in range(n_cells)]),
                   var=pd.DataFrame(index=genes))


# ----------------------------------------------------------------------------------- parity
def test_parity_with_an_independent_torch_reference_end_to_end(ckpt):
    vocab = official_vocab("brain")
    genes = list(vocab[1000:1300])
    adata = no_tie_cells(genes)
    psysc.tl.embed(adata, ckpt, device="cpu", key_added="X_scgpt", batch_size=5)
    ref = Reference.from_best_model(ckpt)
    ids = np.array([vocab.index(g) for g in genes])
    X = adata.X.toarray()
    seqs = [official_tokens(X[i], ids, vocab.index("<cls>")) for i in range(adata.n_obs)]
    expected = reference_embed(ref, seqs, vocab.index("<pad>"))
    diff = np.abs(adata.obsm["X_scgpt"] - expected).max()
    assert diff <= 1e-5, diff
    np.testing.assert_allclose(np.linalg.norm(adata.obsm["X_scgpt"], axis=1), 1, atol=1e-6)


def test_parity_on_sampled_cells_with_ties(ckpt, short, cells):
    tokens = short.tokenize(cells)
    assert (tokens.lengths == 256).all()  # every Darmanis cell has more than 255 genes: sampled
    seqs = [(tokens.cell(i), tokens.values[tokens.offsets[i]: tokens.offsets[i + 1]]) for i in range(tokens.n_cells)]
    expected = reference_embed(Reference.from_best_model(ckpt), seqs, short.pad_id)
    got = cells.copy()
    psysc.tl.embed(got, short, device="cpu", key_added="e")
    assert np.abs(got.obsm["e"] - expected).max() <= 1e-5


def test_network_layers_and_mean_pooling(ckpt, model):
    net = model.network()
    ids = torch.tensor([[net.config.vocab_size - 2, 10, 20, 30], [net.config.vocab_size - 2, 40, 0, 0]])
    vals = torch.tensor([[-2.0, 3, 50, 1], [-2.0, 7, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    ref = Reference.from_best_model(ckpt)
    with torch.no_grad():
        full = ref(ids, vals, mask.eq(0))
        torch.testing.assert_close(net(ids, vals, mask), full, atol=1e-5, rtol=0)  # all positions, last layer
        assert torch.equal(net(ids, vals, mask, layer=-1), net(ids, vals, mask, layer=3))
        first = ref.encoder.layers[0](ref.gene_norm(ref.gene_embedding(ids)) + ref.value_dropout(ref.value_norm(
            ref.value_linear2(torch.relu(ref.value_linear1(vals.unsqueeze(-1)))))), src_key_padding_mask=mask.eq(0))
        torch.testing.assert_close(net(ids, vals, mask, layer=1), first, atol=1e-5, rtol=0)
        torch.testing.assert_close(net(ids, vals, mask, layer=-3), first, atol=1e-5, rtol=0)
        mean = net(ids, vals, mask, pooling="mean")
        torch.testing.assert_close(mean[1], full[1, 1], atol=1e-5, rtol=0)  # one gene token: its own state
        torch.testing.assert_close(mean[0], full[0, 1:].mean(0), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="layer=0 is out of range.*-1 \\(the official"):
        psysc.models.load(ckpt, layer=0)
    m = psysc.models.load(ckpt, pooling="mean", layer=-2)
    assert m.info.extra["pooling"] == "mean" and m.info.extra["layer"] == -2


# ----------------------------------------------------------------------------------- loader
def test_weights_are_the_official_keys_with_fused_wqkv(ckpt, model):
    state = torch.load(ckpt / "best_model.pt", weights_only=True)
    own = model.network().state_dict()
    import re

    ignored = [k for k in state if any(re.fullmatch(p, k) for p in IGNORED_KEY_PATTERNS)]
    assert sorted(ignored) == sorted(
        ["flag_encoder.weight", "mvc_decoder.gene2query.weight", "mvc_decoder.gene2query.bias", "mvc_decoder.W.weight"]
        + [f"decoder.fc.{i}.{w}" for i in (0, 2, 4) for w in ("weight", "bias")]
    )
    assert set(own) == set(state) - set(ignored)
    for k, v in own.items():
        assert torch.equal(v, state[k]), k
    assert own["transformer_encoder.layers.0.self_attn.Wqkv.weight"].shape == (3 * 32, 32)


def _rewrite(src, dst, edit):
    import shutil

    shutil.copytree(src, dst)
    state = torch.load(src / "best_model.pt", weights_only=True)
    edit(state)
    torch.save(state, dst / "best_model.pt")
    return dst


def test_missing_misshaped_or_unknown_keys_fail_with_their_name(ckpt, tmp_path):
    def drop(s):
        del s["transformer_encoder.layers.1.norm2.weight"]

    def reshape(s):
        s["value_encoder.linear2.weight"] = s["value_encoder.linear2.weight"][:, :16].clone()

    def unknown(s):
        s["cls_decoder.out_layer.weight"] = torch.zeros(3, 32)

    def extra_layer(s):
        s["transformer_encoder.layers.7.linear1.bias"] = torch.zeros(48)

    cases = [(drop, KeyError, "transformer_encoder.layers.1.norm2.weight"),
             (reshape, ValueError, r"value_encoder\.linear2\.weight: checkpoint \(32, 16\), model \(32, 32\)"),
             (unknown, KeyError, "cls_decoder.out_layer.weight"),
             (extra_layer, KeyError, "transformer_encoder.layers.7.linear1.bias")]
    for i, (edit, err, msg) in enumerate(cases):
        with pytest.raises(err, match=msg):
            psysc.models.load(_rewrite(ckpt, tmp_path / f"c{i}", edit))


def test_pytorch_path_in_proj_names_load_the_same(ckpt, model, tmp_path, cells):
    def rename(s):
        for k in [k for k in s if ".self_attn.Wqkv." in k]:
            s[k.replace("Wqkv.weight", "in_proj_weight").replace("Wqkv.bias", "in_proj_bias")] = s.pop(k)

    other = psysc.models.load(_rewrite(ckpt, tmp_path / "inproj", rename))
    for k, v in model.network().state_dict().items():
        assert torch.equal(v, other.network().state_dict()[k])


def test_version_from_args_and_bad_folders(tmp_path):
    human = psysc.models.load(random_scgpt_checkpoint(tmp_path / "h", vocab="human", n_genes=500, embsize=16,
                                                      nheads=2, nlayers=1))
    assert human.info.version == "human" and human.info.family == "scgpt"
    assert human.info.extra["vocab"].startswith("custom vocab.json (503 tokens")
    (tmp_path / "h" / "vocab.json").unlink()
    with pytest.raises(FileNotFoundError, match="best_model.pt"):
        psysc.models.load(tmp_path / "h")
    folder = random_scgpt_checkpoint(tmp_path / "cat", n_genes=50, embsize=16, nheads=2, nlayers=1)
    args = json.loads((folder / "args.json").read_text())
    (folder / "args.json").write_text(json.dumps({**args, "input_emb_style": "category"}))
    with pytest.raises(ValueError, match="input_emb_style='category'"):
        psysc.models.load(folder)


# ----------------------------------------------------------------------------------- determinism
def test_embedding_independent_of_batch_size_chunks_row_order_and_other_cells(short, cells):
    model = short
    runs = {}
    for bs in (1, 7, 64):
        a = cells.copy()
        psysc.tl.embed(a, model, device="cpu", batch_size=bs, key_added="e")
        runs[bs] = a.obsm["e"]
    a = cells.copy()
    n = a.n_obs
    psysc.tl.embed(a, model, device="cpu", batch_size=16, block_size=-(-n // 3), key_added="e")  # 3 chunks
    runs["3 chunks"] = a.obsm["e"]
    base = runs[64]
    assert not np.isnan(base).any() and base.shape == (n, 32)
    for key, emb in runs.items():
        np.testing.assert_allclose(emb, base, atol=1e-6, rtol=0, err_msg=str(key))
    # the token sequences (all the randomness) are exactly the same per cell, whatever the block or order
    full = model.tokenize(cells)
    perm = np.random.default_rng(0).permutation(n)
    shuffled = model.tokenize(cells[perm].copy())
    for j, i in enumerate(perm):
        np.testing.assert_array_equal(shuffled.cell(j), full.cell(i))
        np.testing.assert_array_equal(shuffled.values[shuffled.offsets[j]: shuffled.offsets[j + 1]],
                                      full.values[full.offsets[i]: full.offsets[i + 1]])
    alone = cells[[5]].copy()
    psysc.tl.embed(alone, model, device="cpu", key_added="e")
    np.testing.assert_allclose(alone.obsm["e"][0], base[5], atol=1e-6, rtol=0)
    # same seed, same run: bit-identical
    again = cells.copy()
    psysc.tl.embed(again, model, device="cpu", batch_size=64, key_added="e")
    np.testing.assert_array_equal(again.obsm["e"], base)


def test_the_seed_changes_ties_and_sampling_only(ckpt, cells):
    m = psysc.models.load(ckpt)
    t0 = m.tokenize(cells)
    m.seed = 1
    t1 = m.tokenize(cells)
    assert m.info.extra["seed"] == 1
    assert not np.array_equal(t0.ids, t1.ids)  # other genes sampled
    with pytest.raises(ValueError, match="seed"):
        m.seed = -1


def test_raw_counts_and_log_normalised_data_give_the_same_embedding(short, cells):
    model = short
    raw = cells.copy()
    norm = cells.copy()
    sc.pp.normalize_total(norm, target_sum=1e4)
    sc.pp.log1p(norm)
    psysc.tl.embed(raw, model, device="cpu", key_added="e")
    psysc.tl.embed(norm, model, device="cpu", key_added="e")
    np.testing.assert_array_equal(raw.obsm["e"], norm.obsm["e"])
    scaled = norm.copy()
    sc.pp.scale(scaled)
    with pytest.raises(ValueError, match="non-negative.*scaled"):
        psysc.tl.embed(scaled, model, device="cpu")


# ----------------------------------------------------------------------------------- provenance
def test_provenance_in_uns(ckpt, model, cells):
    a = cells.copy()
    a.X[:2] = 0  # two cells without any gene: NaN rows, counted
    psysc.tl.embed(a, model, device="cpu", key_added="X_scgpt")
    prov = a.uns["psysc"]["embed"]["X_scgpt"]
    assert prov["family"] == "scgpt" and prov["version"] == "brain" and prov["n_empty_cells"] == 2
    assert np.isnan(a.obsm["X_scgpt"][:2]).all() and not np.isnan(a.obsm["X_scgpt"][2:]).any()
    for f in ("best_model.pt", "vocab.json", "args.json"):
        assert prov["sha256"][f] == hashlib.sha256((ckpt / f).read_bytes()).hexdigest()
    opts = prov["options"]
    assert opts["layer"] == -1 and opts["pooling"] == "cls" and opts["seed"] == 0 and opts["n_bins"] == 51
    assert opts["max_length"] == 1200 and opts["pad_value"] == -2 and opts["genes"] == "var_names"
    assert opts["weights"] == "best_model.pt" and opts["vocab"].startswith("official scGPT vocabulary")
    a.write_h5ad(ckpt.parent / "prov.h5ad")  # the provenance is h5ad-writable


def test_embed_seed_argument_reaches_the_model_and_the_resume_manifest(short, cells, tmp_path):
    a = psysc.tl.embed(cells, model=short, seed=1, copy=True, key_added="e")
    short.seed = 1
    b = psysc.tl.embed(cells, model=short, copy=True, key_added="e")
    np.testing.assert_array_equal(a.obsm["e"], b.obsm["e"])
    c = psysc.tl.embed(cells, model=short, seed=0, copy=True, key_added="e")
    assert np.abs(a.obsm["e"] - c.obsm["e"]).max() > 1e-4  # other tie breaking and sampling
    psysc.tl.embed(cells, model=short, seed=0, resume=tmp_path / "run", copy=True)
    with pytest.raises(ValueError, match="seed"):
        psysc.tl.embed(cells, model=short, seed=2, resume=tmp_path / "run", copy=True)
