"""Geneformer's network: a plain PyTorch BERT encoder (inference only), loadable from the official weights.

The module tree mirrors Hugging Face's ``BertModel`` so that the ``state_dict`` keys of
:class:`GeneformerNetwork` are the official ``BertForMaskedLM`` keys after one documented mapping:

- the ``bert.`` prefix is removed (``bert.encoder.layer.3.attention.self.query.weight`` ->
  ``encoder.layer.3.attention.self.query.weight``); checkpoints saved from a bare ``BertModel`` have no
  prefix and are accepted as they are;
- the keys in :data:`IGNORED_KEYS` (the masked-LM head ``cls.predictions.*``, a pooler, and the
  ``position_ids`` buffer that old transformers versions saved) are dropped explicitly;
- everything else must match exactly (``strict=True``): a missing or misshaped encoder key, or an
  unknown one, is an error that names it.

Layout of one layer (post-LayerNorm BERT, as in transformers' ``BertLayer``)::

    a = SDPA(query(h), key(h), value(h), additive padding mask)        # heads concatenated
    h = LayerNorm_attn(dense_attn(a) + h)
    h = LayerNorm_out(dense_out(act(dense_intermediate(h))) + h)       # act = config hidden_act (relu)

Embeddings: ``LayerNorm((word[ids] + token_type[0]) + position[0..L-1])``. Dropout is not modelled
(inference only). The padding mask is additive, ``0`` on real keys and ``finfo(dtype).min`` on padded
keys (as transformers builds its extended attention mask), and is omitted when nothing is padded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

#: Official checkpoint keys that are not part of the encoder: accepted and ignored.
IGNORED_KEYS = (
    # masked-language-model head of BertForMaskedLM
    "cls.predictions.bias",
    "cls.predictions.decoder.weight",  # usually absent (tied to the word embeddings)
    "cls.predictions.decoder.bias",
    "cls.predictions.transform.dense.weight",
    "cls.predictions.transform.dense.bias",
    "cls.predictions.transform.LayerNorm.weight",
    "cls.predictions.transform.LayerNorm.bias",
    # pooler of BertModel / BertForSequenceClassification (Geneformer's pretrained models have none)
    "bert.pooler.dense.weight",
    "bert.pooler.dense.bias",
    "pooler.dense.weight",
    "pooler.dense.bias",
    # non-learned buffers that transformers < 4.31 saved with the weights
    "bert.embeddings.position_ids",
    "embeddings.position_ids",
    "bert.embeddings.token_type_ids",
    "embeddings.token_type_ids",
)

_ACTIVATIONS = {
    "relu": F.relu,
    "gelu": F.gelu,  # exact (erf) GELU, as transformers' "gelu"
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
    "swish": F.silu,
}


@dataclass(frozen=True)
class BertConfig:
    """The fields of a Hugging Face BERT ``config.json`` that the encoder uses."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    hidden_act: str = "relu"
    max_position_embeddings: int = 2048
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0

    @classmethod
    def from_dict(cls, cfg: dict) -> BertConfig:
        """Read a ``config.json`` dict; refuses what this encoder does not implement."""
        missing = [k for k in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                               "intermediate_size") if k not in cfg]
        if missing:
            raise ValueError(f"config.json lacks {missing}: not a BERT configuration")
        if cfg.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(
                f"position_embedding_type={cfg['position_embedding_type']!r} is not supported "
                "(Geneformer uses 'absolute')"
            )
        if cfg.get("is_decoder") or cfg.get("add_cross_attention"):
            raise ValueError("config.json describes a BERT decoder; Geneformer is an encoder")
        act = cfg.get("hidden_act", "gelu")
        if act not in _ACTIVATIONS:
            raise ValueError(f"hidden_act={act!r} is not supported; expected one of {sorted(_ACTIVATIONS)}")
        out = cls(
            vocab_size=int(cfg["vocab_size"]),
            hidden_size=int(cfg["hidden_size"]),
            num_hidden_layers=int(cfg["num_hidden_layers"]),
            num_attention_heads=int(cfg["num_attention_heads"]),
            intermediate_size=int(cfg["intermediate_size"]),
            hidden_act=act,
            max_position_embeddings=int(cfg.get("max_position_embeddings", 512)),
            type_vocab_size=int(cfg.get("type_vocab_size", 2)),
            layer_norm_eps=float(cfg.get("layer_norm_eps", 1e-12)),
            pad_token_id=int(cfg.get("pad_token_id") or 0),
        )
        if out.hidden_size % out.num_attention_heads:
            raise ValueError(
                f"hidden_size={out.hidden_size} is not a multiple of num_attention_heads={out.num_attention_heads}"
            )
        return out


def resolve_layer(layer: int, num_hidden_layers: int) -> int:
    """Index into transformers' ``hidden_states`` (``0`` = embeddings, ``i`` = output of encoder layer ``i``).

    ``layer <= 0`` follows the official ``EmbExtractor(emb_layer=...)``: ``hidden_states[L + layer]``,
    so ``-1`` (default) is the output of the second-to-last encoder layer and ``0`` the last layer
    (``-L`` reaches the embeddings). ``layer > 0`` is a plain index into ``hidden_states`` (``1..L``).
    """
    if isinstance(layer, bool) or not isinstance(layer, int):
        raise TypeError(f"layer must be an int, not {type(layer).__name__}")
    n = num_hidden_layers
    if not -n <= layer <= n:
        raise ValueError(
            f"layer={layer} is out of range for a model with {n} encoder layers: use -{n}..0 (official "
            f"emb_layer: -1 = second-to-last layer, 0 = last) or 1..{n} (index into hidden_states)"
        )
    return n + layer if layer <= 0 else layer


class _Embeddings(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size, padding_idx=c.pad_token_id)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        length = input_ids.shape[1]
        x = self.word_embeddings(input_ids) + self.token_type_embeddings.weight[0]
        x = x + self.position_embeddings.weight[:length]
        return self.LayerNorm(x)


class _SelfAttention(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.n_heads = c.num_attention_heads
        self.head_dim = c.hidden_size // c.num_attention_heads
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.value = nn.Linear(c.hidden_size, c.hidden_size)

    def forward(self, h: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        b, n, d = h.shape

        def heads(x):
            return x.view(b, n, self.n_heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.query(h)), heads(self.key(h)), heads(self.value(h))
        # additive mask in the dtype of the projections (bf16/fp16 under autocast)
        mask = None if keep is None else additive_mask(keep, q.dtype)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=1.0 / math.sqrt(self.head_dim))
        return a.transpose(1, 2).reshape(b, n, d)


class _DenseLayerNorm(nn.Module):
    """``LayerNorm(dense(x) + residual)`` (transformers' ``BertSelfOutput`` and ``BertOutput``)."""

    def __init__(self, n_in: int, c: BertConfig):
        super().__init__()
        self.dense = nn.Linear(n_in, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class _Attention(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.self = _SelfAttention(c)
        self.output = _DenseLayerNorm(c.hidden_size, c)

    def forward(self, h, keep):
        return self.output(self.self(h, keep), h)


class _Intermediate(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.intermediate_size)
        self.act = _ACTIVATIONS[c.hidden_act]

    def forward(self, h):
        return self.act(self.dense(h))


class _Layer(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.attention = _Attention(c)
        self.intermediate = _Intermediate(c)
        self.output = _DenseLayerNorm(c.intermediate_size, c)

    def forward(self, h, keep):
        h = self.attention(h, keep)
        return self.output(self.intermediate(h), h)


class _Encoder(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList([_Layer(c) for _ in range(c.num_hidden_layers)])


def additive_mask(keep: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Boolean ``(batch, 1, 1, length)`` key mask -> additive mask: transformers' extended attention mask.

    ``0`` on real keys and ``torch.finfo(dtype).min`` on padded keys, added to the attention scores.
    """
    return torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill(~keep, torch.finfo(dtype).min)


class GeneformerNetwork(nn.Module):
    """Geneformer's BERT encoder in plain PyTorch (no transformers at run time).

    Parameters
    ----------
    config
        The model's ``config.json`` as a dict, or a :class:`BertConfig`.

    Examples
    --------
    >>> import torch
    >>> from psysc.models.geneformer._network import GeneformerNetwork
    >>> cfg = dict(vocab_size=25426, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
    ...            intermediate_size=64, hidden_act="relu", max_position_embeddings=2048)
    >>> net = GeneformerNetwork(cfg).eval()
    >>> ids = torch.tensor([[5, 9, 7], [8, 6, 0]])
    >>> mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    >>> net(ids, mask, layer=-1).shape  # output of encoder layer 1 of 2 (official default)
    torch.Size([2, 3, 32])

    """

    def __init__(self, config: dict | BertConfig):
        super().__init__()
        self.config = config if isinstance(config, BertConfig) else BertConfig.from_dict(config)
        self.embeddings = _Embeddings(self.config)
        self.encoder = _Encoder(self.config)

    @property
    def num_hidden_layers(self) -> int:
        """Number of encoder layers."""
        return self.config.num_hidden_layers

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, *,
                layer: int = -1) -> torch.Tensor:
        """Hidden states ``(batch, length, hidden)`` of one layer; the layers after it are not computed.

        Parameters
        ----------
        input_ids
            ``(batch, length)`` token ids, right-padded.
        attention_mask
            ``(batch, length)``, 1 on real tokens, 0 on padding (``None``: no padding).
        layer
            ``-1`` (official default): output of the second-to-last encoder layer; ``0``: last layer;
            ``-k``: ``hidden_states[L - k]``; ``k > 0``: ``hidden_states[k]`` (see :func:`resolve_layer`).

        """
        depth = resolve_layer(layer, self.config.num_hidden_layers)
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be (batch, length), not {tuple(input_ids.shape)}")
        length = input_ids.shape[1]
        if length > self.config.max_position_embeddings:
            raise ValueError(
                f"sequences of {length} tokens exceed the model's {self.config.max_position_embeddings} positions"
            )
        h = self.embeddings(input_ids)
        keep = None  # like transformers, no mask at all when nothing is padded
        if attention_mask is not None and not bool(attention_mask.bool().all()):
            keep = attention_mask.bool()[:, None, None, :]
        for block in self.encoder.layer[:depth]:
            h = block(h, keep)
        return h

    def load_official_state_dict(self, state_dict: dict, *, assign: bool = False) -> None:
        """Load an official checkpoint's ``state_dict`` (``BertForMaskedLM`` keys) with ``strict=True``.

        The key mapping is in the module docstring. Raises ``KeyError`` naming missing or unexpected keys and
        ``ValueError`` naming misshaped ones, before anything is loaded.
        """
        mapped = map_official_keys(state_dict)
        own = {k: tuple(v.shape) for k, v in self.state_dict().items()}
        missing = sorted(set(own) - set(mapped))
        if missing:
            raise KeyError(f"checkpoint lacks encoder weight(s) {missing} (official names: 'bert.' + name)")
        wrong = [f"{k}: checkpoint {tuple(mapped[k].shape)}, model {own[k]}" for k in own
                 if tuple(mapped[k].shape) != own[k]]
        if wrong:
            raise ValueError("checkpoint weight(s) with the wrong shape for this config.json: " + "; ".join(wrong))
        self.load_state_dict(mapped, strict=True, assign=assign)


def map_official_keys(state_dict: dict) -> dict:
    """Official checkpoint keys -> :class:`GeneformerNetwork` keys (drops :data:`IGNORED_KEYS`; see the module doc).

    Raises ``KeyError`` naming keys that are neither encoder weights nor in :data:`IGNORED_KEYS`.
    """
    ignored = set(IGNORED_KEYS)
    out, unknown = {}, []
    for key, value in state_dict.items():
        if key in ignored:
            continue
        name = key[len("bert."):] if key.startswith("bert.") else key
        if not (name.startswith("embeddings.") or name.startswith("encoder.layer.")):
            unknown.append(key)
            continue
        if name in out:
            raise KeyError(f"checkpoint holds {name!r} twice (with and without the 'bert.' prefix)")
        out[name] = value
    if unknown:
        raise KeyError(
            f"checkpoint has key(s) that are not part of Geneformer's BERT encoder: {sorted(unknown)} "
            "(a fine-tuned head? only pretrained BertForMaskedLM checkpoints are supported)"
        )
    return out


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, *, pooling: str, version: str) -> torch.Tensor:
    """Cell embeddings ``(batch, hidden)`` (float32) from one layer's hidden states, as the official ``EmbExtractor``.

    Parameters
    ----------
    hidden
        ``(batch, length, hidden)`` hidden states.
    attention_mask
        ``(batch, length)``, 1 on real tokens (right padding).
    pooling
        ``"mean"`` (official ``emb_mode="cell"``): mean over the real gene tokens. V1 averages every real
        token; V2 excludes ``<cls>`` (position 0) and ``<eos>`` (the last real token), as
        ``mean_nonpadding_embs(embs[:, 1:], length - 2)``. ``"cls"`` (official ``emb_mode="cls"``, V2 only):
        the hidden state at position 0.
    version
        ``"V1"`` or ``"V2"``.

    """
    if pooling == "cls":
        if version != "V2":
            raise ValueError("pooling='cls' needs a <cls> token: Geneformer V1 has none, use pooling='mean'")
        return hidden[:, 0].float()
    if pooling != "mean":
        raise ValueError(f"pooling must be 'mean' or 'cls', not {pooling!r}")
    keep = attention_mask.to(torch.bool).clone()
    if version == "V2":
        lengths = keep.sum(1)
        keep[:, 0] = False
        rows = torch.arange(keep.shape[0], device=keep.device)
        keep[rows, (lengths - 1).clamp(min=0)] = False
    summed = hidden.float().masked_fill(~keep.unsqueeze(-1), 0.0).sum(1)
    return summed / keep.sum(1, keepdim=True).to(torch.float32)
