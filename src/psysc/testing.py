"""Helpers to try psysc without downloads: small checkpoints with random weights in the official layout."""

from __future__ import annotations

import json
import os
from pathlib import Path

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
        hidden_dropout_prob=0.02 if version == "V1" else 0.1, attention_probs_dropout_prob=0.02 if version == "V1" else 0.1,
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
