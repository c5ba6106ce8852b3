"""psysc's Geneformer encoder against transformers' BertForMaskedLM (the network the official code runs).

Tiny randomly initialised checkpoints of both shapes (V1: vocab 25,426, 2,048 positions; V2: vocab 20,275,
4,096 positions) are saved in the official layout; psysc loads them with its own network and must give the
embeddings that the official EmbExtractor rule computes from transformers' ``hidden_states``.
"""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")

import psysc.models  # noqa: E402
from psysc.models.geneformer._network import IGNORED_KEYS, GeneformerNetwork  # noqa: E402

SHAPES = {
    "V1": dict(vocab_size=25_426, max_position_embeddings=2048, first_gene=2),
    "V2": dict(vocab_size=20_275, max_position_embeddings=4096, first_gene=4),
}
TOL = 1e-5


def _hf_model(version, seed=0, n_layers=2):
    torch.manual_seed(seed)
    shape = SHAPES[version]
    cfg = transformers.BertConfig(
        vocab_size=shape["vocab_size"], hidden_size=32, num_hidden_layers=n_layers, num_attention_heads=4,
        intermediate_size=64, hidden_act="relu", max_position_embeddings=shape["max_position_embeddings"],
        layer_norm_eps=1e-12, pad_token_id=0, hidden_dropout_prob=0.02, attention_probs_dropout_prob=0.02,
    )
    model = transformers.BertForMaskedLM(cfg).eval()
    # every parameter random and far from its default (LayerNorm 1/0, small init), so that any mixed-up weight,
    # a missing LayerNorm or a wrong residual shows in the output
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("LayerNorm.weight"):
                p.copy_(1 + 0.3 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.2 * torch.randn_like(p))
            else:
                p.copy_(0.25 * torch.randn_like(p))
    return model


def _save(model, path, fmt="safetensors"):
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    if fmt == "bin":
        # the 2021 official pytorch_model.bin: a zip-pickled state dict that still holds the position_ids buffer
        sd = {k: v.clone() for k, v in model.state_dict().items()}
        sd["bert.embeddings.position_ids"] = torch.arange(model.config.max_position_embeddings)[None]
        (path / "model.safetensors").unlink()
        torch.save(sd, path / "pytorch_model.bin")
    return path


def _batch(version, lengths, seed=1):
    """Right-padded batch of gene-token sequences (V2: <cls>=2 first and <eos>=3 last, as the tokenizer makes)."""
    rng = np.random.default_rng(seed)
    shape = SHAPES[version]
    width = max(lengths)
    ids = np.zeros((len(lengths), width), dtype=np.int64)
    mask = np.zeros((len(lengths), width), dtype=np.int64)
    for i, n in enumerate(lengths):
        seq = rng.choice(np.arange(shape["first_gene"], shape["vocab_size"]), size=n, replace=False)
        if version == "V2":
            seq[0], seq[-1] = 2, 3
        ids[i, :n] = seq
        mask[i, :n] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


def _official_embedding(hf, ids, mask, *, version, emb_layer, emb_mode):
    """The official EmbExtractor rule, written from its description (emb_extractor.get_embs)."""
    with torch.no_grad():
        out = hf(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    n_layers = hf.config.num_hidden_layers
    embs = out.hidden_states[n_layers + emb_layer] if emb_layer <= 0 else out.hidden_states[emb_layer]
    lens = mask.sum(1)
    if emb_mode == "cls":
        return embs[:, 0, :]
    if version == "V2":  # drop <cls>, and length - 2 also drops <eos>
        embs, lens = embs[:, 1:, :], lens - 2
    keep = torch.arange(embs.shape[1])[None, :] < lens[:, None]
    return embs.masked_fill(~keep[:, :, None], 0.0).sum(1) / lens[:, None].float()


CASES = [
    ("V1", "mean"), ("V2", "mean"), ("V2", "cls"),
]


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
@pytest.mark.parametrize("layer", [-1, 0])
@pytest.mark.parametrize(("version", "pooling"), CASES)
def test_embeddings_equal_transformers(tmp_path, version, pooling, layer, fmt, attn):
    hf = _hf_model(version)
    folder = _save(hf, tmp_path / "ckpt", fmt)
    hf.config._attn_implementation = attn
    model = psysc.models.load(folder, layer=layer, pooling=pooling, device="cpu")
    assert model.version == version
    ids, mask = _batch(version, [9, 3, 17, 5, 12])  # unequal lengths: every row but one is padded
    ours = model.embed_batch(ids, mask)
    ref = _official_embedding(hf, ids, mask, version=version, emb_layer=layer, emb_mode=pooling)
    assert ours.shape == (5, 32) and ours.dtype == torch.float32
    diff = (ours - ref).abs().max().item()
    assert diff <= TOL, diff
    # and the result does not depend on the padding of the batch (each cell alone)
    for i in range(ids.shape[0]):
        n = int(mask[i].sum())
        alone = model.embed_batch(ids[i : i + 1, :n], mask[i : i + 1, :n])
        assert (alone[0] - ref[i]).abs().max().item() <= TOL


def test_default_pooling_is_the_official_one(tmp_path):
    hf2 = _hf_model("V2")
    m2 = psysc.models.load(_save(hf2, tmp_path / "v2"))
    assert m2.pooling == "cls" and m2.layer == -1
    ids, mask = _batch("V2", [6, 4])
    ref = _official_embedding(hf2, ids, mask, version="V2", emb_layer=-1, emb_mode="cls")
    assert (m2.embed_batch(ids, mask) - ref).abs().max().item() <= TOL
    hf1 = _hf_model("V1")
    m1 = psysc.models.load(_save(hf1, tmp_path / "v1"))
    assert m1.pooling == "mean"
    ids, mask = _batch("V1", [6, 4])
    ref = _official_embedding(hf1, ids, mask, version="V1", emb_layer=-1, emb_mode="cell")
    assert (m1.embed_batch(ids, mask) - ref).abs().max().item() <= TOL
    assert m1.info.extra["pooling"] == "mean" and m1.info.extra["layer"] == -1
    assert m1.embedding_dim == 32 and m1.pad_id == 0


@pytest.mark.parametrize("layer", [-3, -2, 1, 2, 3])
def test_every_layer_index_matches_hidden_states(tmp_path, layer):
    hf = _hf_model("V2", n_layers=3)
    net = psysc.models.load(_save(hf, tmp_path / "c"), layer=layer, pooling="mean").network()
    ids, mask = _batch("V2", [8, 5, 11])
    with torch.no_grad():
        hs = hf(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        ours = net(ids, mask, layer=layer)
    ref = hs[3 + layer] if layer <= 0 else hs[layer]
    real = mask.bool()
    assert (ours[real] - ref[real]).abs().max().item() <= TOL


def test_layers_after_the_requested_one_are_not_computed(tmp_path):
    hf = _hf_model("V1", n_layers=3)
    model = psysc.models.load(_save(hf, tmp_path / "c"), layer=-1)
    calls = []
    for i, block in enumerate(model.network().encoder.layer):
        block.register_forward_hook(lambda *a, i=i: calls.append(i))
    ids, mask = _batch("V1", [4, 6])
    model.embed_batch(ids, mask)
    assert calls == [0, 1]


def test_layer_out_of_range_and_cls_on_v1_are_errors(tmp_path):
    folder = _save(_hf_model("V1"), tmp_path / "c")
    with pytest.raises(ValueError, match="layer=-3 is out of range"):
        psysc.models.load(folder, layer=-3)
    with pytest.raises(ValueError, match="layer=3 is out of range"):
        psysc.models.load(folder, layer=3)
    with pytest.raises(ValueError, match="V1 has none"):
        psysc.models.load(folder, pooling="cls")
    with pytest.raises(ValueError, match="pooling must be"):
        psysc.models.load(folder, pooling="max")


def test_mlm_head_keys_are_in_the_checkpoint_and_ignored(tmp_path):
    from safetensors import safe_open

    folder = _save(_hf_model("V2"), tmp_path / "c")
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    head = {k for k in keys if k.startswith("cls.predictions.")}
    assert head and head <= set(IGNORED_KEYS)
    net = GeneformerNetwork(json.loads((folder / "config.json").read_text()))
    assert {"bert." + k for k in net.state_dict()} == keys - head  # the documented mapping, nothing else


def _edit_checkpoint(folder, edit):
    from safetensors.torch import load_file, save_file

    sd = load_file(str(folder / "model.safetensors"))
    edit(sd)
    save_file(sd, str(folder / "model.safetensors"), metadata={"format": "pt"})


def test_missing_key_is_named(tmp_path):
    folder = _save(_hf_model("V1"), tmp_path / "c")
    _edit_checkpoint(folder, lambda sd: sd.pop("bert.encoder.layer.1.output.LayerNorm.weight"))
    with pytest.raises(KeyError, match=r"encoder\.layer\.1\.output\.LayerNorm\.weight"):
        psysc.models.load(folder)


def test_misshaped_key_is_named(tmp_path):
    folder = _save(_hf_model("V2"), tmp_path / "c")

    def edit(sd):
        sd["bert.encoder.layer.0.intermediate.dense.weight"] = torch.zeros(65, 32)

    _edit_checkpoint(folder, edit)
    with pytest.raises(ValueError, match=r"encoder\.layer\.0\.intermediate\.dense\.weight.*\(65, 32\)"):
        psysc.models.load(folder)


def test_unknown_key_is_named(tmp_path):
    folder = _save(_hf_model("V2"), tmp_path / "c")

    def edit(sd):
        sd["classifier.weight"] = torch.zeros(3, 32)

    _edit_checkpoint(folder, edit)
    with pytest.raises(KeyError, match=r"classifier\.weight"):
        psysc.models.load(folder)


def test_config_of_neither_version_is_refused(tmp_path):
    folder = _save(_hf_model("V2"), tmp_path / "c")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["vocab_size"] = 30_522  # a plain English BERT
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"vocab_size=30522.*25426.*20275"):
        psysc.models.load(folder)


def test_config_that_disagrees_with_the_weights_is_refused(tmp_path):
    folder = _save(_hf_model("V1"), tmp_path / "c")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["hidden_size"], cfg["num_attention_heads"] = 64, 4
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"wrong shape.*word_embeddings\.weight: checkpoint \(25426, 32\)"):
        psysc.models.load(folder)


def test_a_context_shorter_than_the_official_input_is_refused_at_load(tmp_path, monkeypatch):
    # a V1-vocabulary BERT with 512 positions: refused when loaded, not at the first long cell
    monkeypatch.setitem(SHAPES, "V1", {**SHAPES["V1"], "max_position_embeddings": 512})
    folder = _save(_hf_model("V1"), tmp_path / "c")
    with pytest.raises(ValueError, match=r"max_position_embeddings=512 .*fewer than the 2048 tokens"):
        psysc.models.load(folder)


def test_no_weights_is_a_clear_error(tmp_path):
    folder = _save(_hf_model("V1"), tmp_path / "c")
    (folder / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        psysc.models.load(folder)
    with pytest.raises(ValueError, match="neither a model name"):
        psysc.models.load(tmp_path / "does-not-exist")


def test_bfloat16_runs_close_to_float32(tmp_path):
    hf = _hf_model("V2")
    folder = _save(hf, tmp_path / "c")
    ids, mask = _batch("V2", [9, 4, 13])
    f32 = psysc.models.load(folder, pooling="mean").embed_batch(ids, mask)
    b16 = psysc.models.load(folder, pooling="mean", dtype="bfloat16").embed_batch(ids, mask)
    assert b16.dtype == torch.float32 and torch.isfinite(b16).all()
    assert np.corrcoef(f32.numpy().ravel(), b16.numpy().ravel())[0, 1] > 0.99


# -- the model ties the official tokenizer to the network --------------------------------------------------
@pytest.mark.parametrize("version", ["V1", "V2"])
def test_model_tokenize_runs_the_tokenizer_on_the_chosen_rows_and_layer(tmp_path, version):
    """Wiring: the model's tokenize is the tokenizer's output (whose official semantics are tested in
    test_geneformer_tokenizer.py) for the chosen rows, genes and counts layer."""
    from psysc.models.geneformer._tokenizer import GeneformerTokenizer

    adata = psysc.datasets.darmanis2015()[:40].copy()
    model = psysc.models.load(_save(_hf_model(version), tmp_path / "c"))
    tk = GeneformerTokenizer(version)
    ref = tk.tokenize(adata.X[10:25], tk.harmonize(tk.choose_gene_ids(adata)))
    ours = model.tokenize(adata, rows=slice(10, 25))
    np.testing.assert_array_equal(ours.offsets, ref.offsets)
    np.testing.assert_array_equal(ours.ids, ref.ids)
    if version == "V2":
        assert (ours.ids[ours.offsets[:-1]] == 2).all() and (ours.ids[ours.offsets[1:] - 1] == 3).all()
    # the counts layer is read when given
    adata.layers["counts"] = adata.X.copy()
    adata.X = adata.X * 0
    again = model.tokenize(adata, rows=slice(10, 25), layer="counts")
    np.testing.assert_array_equal(again.ids, ref.ids)


def test_obs_n_counts_that_are_not_totals_are_refused(tmp_path):
    adata = psysc.datasets.darmanis2015()[:10].copy()
    model = psysc.models.load(_save(_hf_model("V2"), tmp_path / "c"))
    adata.obs["n_counts"] = np.asarray(adata.X.sum(1)).ravel() * 3  # totals over more genes than kept: fine
    model.tokenize(adata)
    adata.obs["n_counts"] = 10_000.0  # normalised data's totals
    with pytest.raises(ValueError, match=r'obs\["n_counts"\] is smaller'):
        model.tokenize(adata)


def test_tl_embed_with_a_loaded_model_matches_the_network(tmp_path):
    hf = _hf_model("V2")
    model = psysc.models.load(_save(hf, tmp_path / "c"), pooling="mean")
    adata = psysc.datasets.darmanis2015()[:12].copy()
    tokens = model.tokenize(adata)
    # truncated to unequal lengths (cheap reference, padded batches): the first 20 + 7 i tokens, then <eos>
    short = psysc.models.Tokens.from_list([np.r_[tokens.cell(i)[: 20 + 7 * i], 3] for i in range(tokens.n_cells)])
    model.tokenize = lambda adata, rows=None, layer=None: short
    psysc.tl.embed(adata, model=model, device="cpu", dtype="float32", block_size=12, batch_size=5)
    out = adata.obsm[f"X_{model.info.name}"]
    for i in range(12):
        ids = torch.from_numpy(short.cell(i))[None]
        ref = _official_embedding(hf, ids, torch.ones_like(ids), version="V2", emb_layer=-1, emb_mode="cell")
        assert np.abs(out[i] - ref[0].numpy()).max() <= TOL


def test_a_safetensors_checkpoint_without_the_package_names_the_install(tmp_path, monkeypatch):
    import sys

    from psysc.models.geneformer._model import read_state_dict

    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")  # an empty safetensors file: header {}
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)  # as if safetensors were not installed
    with pytest.raises(ImportError, match=r"pip install safetensors \(or psysc\[torch\]\)"):
        read_state_dict(path)
