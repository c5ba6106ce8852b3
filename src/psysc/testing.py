"""Helpers to try psysc without downloads: small checkpoints with random weights in the official layout."""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["random_geneformer_checkpoint", "random_scgpt_checkpoint"]

_SHAPES = {
    "V1": {"vocab_size": 25_426, "max_position_embeddings": 2048},
    "V2": {"vocab_size": 20_275, "max_position_embeddings": 4096},
}


def random_geneformer_checkpoint(
    folder: str | os.PathLike,
    *,
    version: str = "V2",
    hidden_size: int = 32,
    n_layers: int = 2,
    n_heads: int = 4,
    seed: int = 0,
) -> Path:
    """Write a Geneformer-shaped checkpoint with random weights in the official Hugging Face layout.

    ``config.json`` + ``model.safetensors`` with ``BertForMaskedLM`` key names, the vocabulary size and
    context length of Geneformer V1 (25,426 tokens, 2,048) or V2 (20,275, 4,096), and a small network.
    The embeddings it gives carry no biology; it exercises the whole path (tokenisation, network,
    pooling, engine) in tests, tutorials' quick mode and benchmarks.

    Parameters
    ----------
    folder
        Directory to write (created).
    version
        ``"V1"`` or ``"V2"``.
    hidden_size, n_layers, n_heads
        Network size (the intermediate size is ``2 * hidden_size``).
    seed
        Seed of the random weights.

    Returns
    -------
    pathlib.Path
        The directory, loadable with :func:`psysc.models.load` and usable as ``model=`` of :func:`psysc.tl.embed`.

    Examples
    --------
    >>> import tempfile, psysc
    >>> from psysc.testing import random_geneformer_checkpoint
    >>> ckpt = random_geneformer_checkpoint(tempfile.mkdtemp(), version="V2")  # doctest: +SKIP
    >>> psysc.models.load(ckpt)  # doctest: +SKIP

    """
    import torch
    from safetensors.torch import save_file

    from .models.geneformer._network import GeneformerNetwork

    if version not in _SHAPES:
        raise ValueError(f"version must be 'V1' or 'V2', not {version!r}")
    config = dict(
        architectures=["BertForMaskedLM"], model_type="bert", hidden_size=hidden_size, num_hidden_layers=n_layers,
        num_attention_heads=n_heads, intermediate_size=2 * hidden_size, hidden_act="relu", type_vocab_size=2,
        layer_norm_eps=1e-12, pad_token_id=0, position_embedding_type="absolute",
        hidden_dropout_prob=0.02 if version == "V1" else 0.1,
        attention_probs_dropout_prob=0.02 if version == "V1" else 0.1,
        **_SHAPES[version],
    )
    gen = torch.Generator().manual_seed(seed)
    net = GeneformerNetwork(config)
    state = {}
    for key, value in net.state_dict().items():
        if key.endswith("LayerNorm.weight"):
            value = 1 + 0.1 * torch.randn(value.shape, generator=gen)
        elif key.endswith("bias"):
            value = 0.05 * torch.randn(value.shape, generator=gen)
        else:
            value = torch.randn(value.shape, generator=gen) / max(1, value.shape[-1]) ** 0.5
        state["bert." + key] = value.contiguous()
    state["cls.predictions.bias"] = torch.zeros(config["vocab_size"])
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return folder


def random_scgpt_checkpoint(
    folder: str | os.PathLike,
    *,
    vocab="brain",
    n_genes: int | None = None,
    nlayers: int = 2,
    embsize: int = 32,
    nheads: int = 4,
    d_hid: int | None = None,
    seed: int = 0,
) -> Path:
    """Write an scGPT-shaped checkpoint with random weights in the official layout.

    ``best_model.pt`` (``torch.save`` of a state dict with the official key names: the gene and value encoders, the
    flash-attention layers with their fused ``Wqkv``, and the pretraining-only heads ``flag_encoder``,
    ``decoder.fc.*`` and ``mvc_decoder.*`` that a real checkpoint also holds), ``vocab.json`` (``{token: id}``) and
    ``args.json`` (the official arguments of the whole-human or brain model, with the network size replaced).
    The embeddings it gives carry no biology; it exercises the whole path (gene matching, binning, network,
    engine) in tests and benchmarks.

    Parameters
    ----------
    folder
        Directory to write (created).
    vocab
        ``"human"`` or ``"brain"`` (the official 60,697-token vocabulary and the args.json of that model), or a
        list of gene symbols (ids in list order; ``<pad>``, ``<cls>``, ``<eoc>`` appended; brain args).
    n_genes
        Keep only the first ``n_genes`` genes of the vocabulary (the special tokens follow them), for a smaller file.
    nlayers, embsize, nheads, d_hid
        Network size (``d_hid`` defaults to ``embsize``, as in the official models: 512 and 512).
    seed
        Seed of the random weights.

    Returns
    -------
    pathlib.Path
        The directory, loadable with :func:`psysc.models.load` and usable as ``model=`` of :func:`psysc.tl.embed`.

    Examples
    --------
    >>> import tempfile, psysc
    >>> from psysc.testing import random_scgpt_checkpoint
    >>> ckpt = random_scgpt_checkpoint(tempfile.mkdtemp(), vocab="brain")  # doctest: +SKIP
    >>> psysc.models.load(ckpt).info.version  # doctest: +SKIP
    'brain'

    """
    import torch

    from .models.scgpt._tokenizer import SPECIAL_TOKENS, official_args, official_vocab

    if isinstance(vocab, str):
        tokens = [t for t in official_vocab(vocab) if t not in SPECIAL_TOKENS]
        args = official_args(vocab)
    else:
        tokens = [str(t) for t in vocab if str(t) not in SPECIAL_TOKENS]
        args = official_args("brain")
    if n_genes is not None:
        tokens = tokens[: int(n_genes)]
    tokens = tokens + list(SPECIAL_TOKENS)
    d_hid = embsize if d_hid is None else d_hid
    args.update(nlayers=nlayers, nheads=nheads, embsize=embsize, d_hid=d_hid)
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=None):
        scale = 1 / max(1, shape[-1]) ** 0.5 if scale is None else scale
        return (scale * torch.randn(*shape, generator=gen)).contiguous()

    def ln(prefix, state):
        state[f"{prefix}.weight"] = 1 + rand(embsize, scale=0.1)
        state[f"{prefix}.bias"] = rand(embsize, scale=0.05)

    d, n = embsize, len(tokens)
    state: dict = {"encoder.embedding.weight": (torch.rand(n, d, generator=gen) * 0.2 - 0.1).contiguous()}
    ln("encoder.enc_norm", state)
    state["flag_encoder.weight"] = rand(2, d, scale=1.0)
    state["value_encoder.linear1.weight"] = rand(d, 1, scale=0.2)
    state["value_encoder.linear1.bias"] = rand(d, scale=0.05)
    state["value_encoder.linear2.weight"] = rand(d, d)
    state["value_encoder.linear2.bias"] = rand(d, scale=0.05)
    ln("value_encoder.norm", state)
    for i in range(nlayers):
        p = f"transformer_encoder.layers.{i}"
        state[f"{p}.self_attn.Wqkv.weight"] = rand(3 * d, d)
        state[f"{p}.self_attn.Wqkv.bias"] = rand(3 * d, scale=0.05)
        state[f"{p}.self_attn.out_proj.weight"] = rand(d, d)
        state[f"{p}.self_attn.out_proj.bias"] = rand(d, scale=0.05)
        state[f"{p}.linear1.weight"] = rand(d_hid, d)
        state[f"{p}.linear1.bias"] = rand(d_hid, scale=0.05)
        state[f"{p}.linear2.weight"] = rand(d, d_hid)
        state[f"{p}.linear2.bias"] = rand(d, scale=0.05)
        ln(f"{p}.norm1", state)
        ln(f"{p}.norm2", state)
    for j, (o, i) in zip((0, 2, 4), ((d, d), (d, d), (1, d)), strict=True):  # ExprDecoder (pretraining only)
        state[f"decoder.fc.{j}.weight"] = rand(o, i)
        state[f"decoder.fc.{j}.bias"] = rand(o, scale=0.05)
    state["mvc_decoder.gene2query.weight"] = rand(d, d)  # MVCDecoder (pretraining only)
    state["mvc_decoder.gene2query.bias"] = rand(d, scale=0.05)
    state["mvc_decoder.W.weight"] = rand(d, d)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / "best_model.pt")
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}, indent=2) + "\n")
    (folder / "args.json").write_text(json.dumps(args, indent=2) + "\n")
    return folder
