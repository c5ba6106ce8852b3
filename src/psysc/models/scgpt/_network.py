"""scGPT's encoder as a plain PyTorch module (inference only), loadable from the official ``best_model.pt``.

The module tree mirrors the official ``scgpt.model.TransformerModel`` built by ``embed_data`` (flash-attention
layers, post-norm), so the ``state_dict`` keys of :class:`ScGPTNetwork` are the official checkpoint keys:

- ``encoder.embedding.weight`` ``[ntoken, d]`` and ``encoder.enc_norm.*``: gene encoder, ``LayerNorm(E[id])``;
- ``value_encoder.linear1.*`` ``[d, 1]``, ``value_encoder.linear2.*``, ``value_encoder.norm.*``: continuous value
  encoder, ``LayerNorm(linear2(relu(linear1(min(x, 512)))))`` (its dropout is the identity at inference);
- ``transformer_encoder.layers.N.self_attn.Wqkv.*`` ``[3d, d]`` (the fused q/k/v projection of flash-attention's
  ``FlashMHA``: rows ``0:d`` queries, ``d:2d`` keys, ``2d:3d`` values, the layout of PyTorch's ``in_proj_weight``),
  ``...self_attn.out_proj.*``, ``...linear1.*`` ``[d_hid, d]``, ``...linear2.*``, ``...norm1.*``, ``...norm2.*``.

One layer (post-norm, ReLU, LayerNorm eps 1e-5, scale ``1/sqrt(d/heads)``, no dropout)::

    h = norm1(h + out_proj(MHA(Wqkv(h), key padding mask)))
    h = norm2(h + linear2(relu(linear1(h))))

The input of the first layer is ``gene_encoder(ids) + value_encoder(values)``; there is no positional embedding
and no final norm. The cell embedding is the output of the last layer at position 0 (``<cls>``).

Loading (:meth:`ScGPTNetwork.load_official_state_dict`) is strict, unlike the official ``load_pretrained``
(which drops every key whose name or shape does not match, silently):

- the pretraining-only keys in :data:`IGNORED_KEY_PATTERNS` (``flag_encoder``, the expression decoder
  ``decoder.*`` and the MVC decoder ``mvc_decoder.*``) are dropped explicitly;
- checkpoints saved from the official PyTorch fallback path name the fused projection
  ``self_attn.in_proj_weight`` / ``in_proj_bias``: they are mapped to ``self_attn.Wqkv.weight`` / ``.bias``;
- a missing or misshaped encoder key, or any other key, is an error that names it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

#: Official checkpoint keys that are not used for the cell embedding (pretraining heads): dropped explicitly.
IGNORED_KEY_PATTERNS = (
    r"flag_encoder\.weight",  # generative-training flag embedding [2, d]
    r"decoder\.fc\.[024]\.(weight|bias)",  # ExprDecoder (masked expression prediction)
    r"decoder\.zero_logit\.[024]\.(weight|bias)",  # ExprDecoder with explicit_zero_prob
    r"mvc_decoder\.gene2query\.(weight|bias)",  # MVCDecoder ("inner product")
    r"mvc_decoder\.W\.weight",
    r"mvc_decoder\.W_zero_logit\.(weight|bias)",  # MVCDecoder with explicit_zero_prob
)
_IGNORED = re.compile("|".join(f"(?:{p})" for p in IGNORED_KEY_PATTERNS))
_IN_PROJ = re.compile(r"^(transformer_encoder\.layers\.\d+\.self_attn\.)in_proj_(weight|bias)$")

#: ``ContinuousValueEncoder.max_value``: values are clipped to it
MAX_VALUE = 512.0


@dataclass(frozen=True)
class ScGPTConfig:
    """The architecture fields of an scGPT ``args.json`` (plus the vocabulary size)."""

    vocab_size: int
    embsize: int = 512
    nheads: int = 8
    d_hid: int = 512
    nlayers: int = 12
    layer_norm_eps: float = 1e-5

    @classmethod
    def from_args(cls, args: dict, vocab_size: int) -> ScGPTConfig:
        """Read ``args.json``; refuses input styles the zero-shot encoder does not implement."""
        missing = [k for k in ("embsize", "nheads", "d_hid", "nlayers") if k not in args]
        if missing:
            raise ValueError(f"args.json lacks {missing}: not an scGPT model configuration")
        style = args.get("input_emb_style", "continuous")
        if style != "continuous":
            raise ValueError(
                f"args.json has input_emb_style={style!r}; psysc implements the 'continuous' value encoder of the "
                "official whole-human and brain checkpoints"
            )
        if args.get("input_style", "binned") != "binned":
            raise ValueError(f"args.json has input_style={args['input_style']!r}; the official models use 'binned'")
        for flag in ("DSBN", "domain_spec_batchnorm", "use_batch_labels"):
            if args.get(flag):
                raise ValueError(f"args.json sets {flag}: batch-label models are not supported (zero-shot only)")
        out = cls(vocab_size=int(vocab_size), embsize=int(args["embsize"]), nheads=int(args["nheads"]),
                  d_hid=int(args["d_hid"]), nlayers=int(args["nlayers"]))
        if out.embsize % out.nheads:
            raise ValueError(f"embsize={out.embsize} is not a multiple of nheads={out.nheads}")
        return out


def resolve_layer(layer: int, nlayers: int) -> int:
    """Number of encoder layers to run for ``layer`` (its output is read).

    ``-1`` (default, official): the last layer; ``-k``: the ``k``-th layer from the end; ``k > 0``: layer ``k``
    (``1..L``). ``0`` is refused (it is Geneformer's "last layer" and would be ambiguous here).
    """
    if isinstance(layer, bool) or not isinstance(layer, int):
        raise TypeError(f"layer must be an int, not {type(layer).__name__}")
    if layer == 0 or not -nlayers <= layer <= nlayers:
        raise ValueError(
            f"layer={layer} is out of range for scGPT with {nlayers} encoder layers: use -1 (the official cell "
            f"embedding: last layer), -k (k-th layer from the end, k <= {nlayers}) or 1..{nlayers}"
        )
    return nlayers + 1 + layer if layer < 0 else layer


class _GeneEncoder(nn.Module):
    def __init__(self, c: ScGPTConfig):
        super().__init__()
        self.embedding = nn.Embedding(c.vocab_size, c.embsize)
        self.enc_norm = nn.LayerNorm(c.embsize)

    def forward(self, ids):
        return self.enc_norm(self.embedding(ids))


class _ContinuousValueEncoder(nn.Module):
    def __init__(self, c: ScGPTConfig):
        super().__init__()
        self.linear1 = nn.Linear(1, c.embsize)
        self.linear2 = nn.Linear(c.embsize, c.embsize)
        self.norm = nn.LayerNorm(c.embsize)

    def forward(self, x):
        x = torch.clamp(x.unsqueeze(-1), max=MAX_VALUE)
        return self.norm(self.linear2(F.relu(self.linear1(x))))


class _FusedSelfAttention(nn.Module):
    """``FlashMHA``'s parameters: the fused ``Wqkv`` and ``out_proj``."""

    def __init__(self, c: ScGPTConfig):
        super().__init__()
        self.n_heads = c.nheads
        self.head_dim = c.embsize // c.nheads
        self.Wqkv = nn.Linear(c.embsize, 3 * c.embsize)
        self.out_proj = nn.Linear(c.embsize, c.embsize)

    def forward(self, h: torch.Tensor, keep: torch.Tensor | None, *, first_only: bool = False) -> torch.Tensor:
        b, n, d = h.shape
        H, hd = self.n_heads, self.head_dim
        if first_only:  # only the query of position 0 is needed (last layer, CLS pooling)
            w, bias = self.Wqkv.weight, self.Wqkv.bias
            q = F.linear(h[:, :1], w[:d], bias[:d]).view(b, 1, H, hd).transpose(1, 2)
            kv = F.linear(h, w[d:], bias[d:]).view(b, n, 2, H, hd).permute(2, 0, 3, 1, 4)
            k, v = kv[0], kv[1]
            m = 1
        else:
            qkv = self.Wqkv(h).view(b, n, 3, H, hd).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            m = n
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, scale=1.0 / math.sqrt(hd))
        return self.out_proj(a.transpose(1, 2).reshape(b, m, d))


class _Layer(nn.Module):
    def __init__(self, c: ScGPTConfig):
        super().__init__()
        self.self_attn = _FusedSelfAttention(c)
        self.linear1 = nn.Linear(c.embsize, c.d_hid)
        self.linear2 = nn.Linear(c.d_hid, c.embsize)
        self.norm1 = nn.LayerNorm(c.embsize, eps=c.layer_norm_eps)
        self.norm2 = nn.LayerNorm(c.embsize, eps=c.layer_norm_eps)

    def forward(self, h, keep, *, first_only: bool = False):
        res = h[:, :1] if first_only else h
        h = self.norm1(res + self.self_attn(h, keep, first_only=first_only))
        return self.norm2(h + self.linear2(F.relu(self.linear1(h))))


class _TransformerEncoder(nn.Module):
    def __init__(self, c: ScGPTConfig):
        super().__init__()
        self.layers = nn.ModuleList([_Layer(c) for _ in range(c.nlayers)])


class ScGPTNetwork(nn.Module):
    """scGPT's gene + value encoders and transformer encoder in plain PyTorch (official state-dict keys).

    Parameters
    ----------
    config
        :class:`ScGPTConfig` (or a dict of its fields).

    Examples
    --------
    >>> import torch
    >>> from psysc.models.scgpt._network import ScGPTNetwork
    >>> net = ScGPTNetwork(dict(vocab_size=100, embsize=32, nheads=4, d_hid=32, nlayers=2)).eval()
    >>> ids = torch.tensor([[98, 5, 9, 7], [98, 3, 97, 97]])  # <cls> first; right padding
    >>> values = torch.tensor([[-2.0, 50, 1, 25], [-2.0, 50, 0, 0]])
    >>> mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    >>> net(ids, values, mask, pooling="cls").shape  # last layer at <cls>
    torch.Size([2, 32])

    """

    def __init__(self, config: ScGPTConfig | dict):
        super().__init__()
        self.config = config if isinstance(config, ScGPTConfig) else ScGPTConfig(**config)
        self.encoder = _GeneEncoder(self.config)
        self.value_encoder = _ContinuousValueEncoder(self.config)
        self.transformer_encoder = _TransformerEncoder(self.config)

    @property
    def nlayers(self) -> int:
        """Number of encoder layers."""
        return self.config.nlayers

    def forward(self, input_ids: torch.Tensor, values: torch.Tensor, attention_mask: torch.Tensor | None = None, *,
                layer: int = -1, pooling: str | None = None) -> torch.Tensor:
        """Hidden states ``(batch, length, d)`` of one layer, or its pooled ``(batch, d)`` cell vectors.

        Parameters
        ----------
        input_ids, values
            ``(batch, length)`` token ids (``<cls>`` first) and their values (``<cls>``: ``pad_value``), right-padded.
        attention_mask
            ``(batch, length)``, 1 on real tokens (``None``: no padding).
        layer
            See :func:`resolve_layer` (``-1``: last layer, the official one). Layers after it are not computed.
        pooling
            ``None``: all hidden states. ``"cls"``: position 0 (the official cell embedding; the read layer then
            computes only that position). ``"mean"``: mean over the real gene tokens (``<cls>`` excluded).

        """
        depth = resolve_layer(layer, self.config.nlayers)
        if input_ids.dim() != 2 or values.shape != input_ids.shape:
            raise ValueError(f"input_ids and values must both be (batch, length), not {tuple(input_ids.shape)} "
                             f"and {tuple(values.shape)}")
        h = self.encoder(input_ids) + self.value_encoder(values.to(self.value_encoder.linear1.weight.dtype))
        keep = None  # no mask at all when nothing is padded
        if attention_mask is not None and not bool(attention_mask.bool().all()):
            keep = attention_mask.bool()[:, None, None, :]
        layers = self.transformer_encoder.layers[:depth]
        for i, block in enumerate(layers):
            h = block(h, keep, first_only=pooling == "cls" and i == len(layers) - 1)
        if pooling is None:
            return h
        if pooling == "cls":
            return h[:, 0]
        if pooling == "mean":
            m = (attention_mask.bool() if attention_mask is not None
                 else torch.ones(h.shape[:2], dtype=torch.bool, device=h.device)).clone()
            m[:, 0] = False
            s = h.float().masked_fill(~m.unsqueeze(-1), 0.0).sum(1)
            return s / m.sum(1, keepdim=True).clamp(min=1).to(torch.float32)
        raise ValueError(f"pooling must be 'cls', 'mean' or None, not {pooling!r}")

    def load_official_state_dict(self, state_dict: dict, *, assign: bool = False) -> None:
        """Load an official ``best_model.pt`` state dict strictly (see the module doc for the key mapping).

        Raises ``KeyError`` naming missing or unknown keys and ``ValueError`` naming misshaped ones, before
        anything is loaded.
        """
        mapped = map_official_keys(state_dict)
        own = {k: tuple(v.shape) for k, v in self.state_dict().items()}
        unexpected = sorted(set(mapped) - set(own))
        if unexpected:
            raise KeyError(f"checkpoint has weight(s) {unexpected} that args.json does not describe (more layers?)")
        missing = sorted(set(own) - set(mapped))
        if missing:
            raise KeyError(
                f"checkpoint lacks encoder weight(s) {missing}: not a complete scGPT checkpoint (the official loader "
                "would silently leave them at random values)"
            )
        wrong = [f"{k}: checkpoint {tuple(mapped[k].shape)}, model {own[k]}" for k in own
                 if tuple(mapped[k].shape) != own[k]]
        if wrong:
            raise ValueError(
                "checkpoint weight(s) with the wrong shape for this args.json / vocab.json: " + "; ".join(wrong)
                + " (the vocabulary size is the number of vocab.json entries plus any missing <pad>/<cls>/<eoc>)"
            )
        self.load_state_dict(mapped, strict=True, assign=assign)


def map_official_keys(state_dict: dict) -> dict:
    """Official ``best_model.pt`` keys -> :class:`ScGPTNetwork` keys (pretraining heads dropped, ``in_proj`` mapped).

    Raises ``KeyError`` naming keys that are neither encoder weights nor in :data:`IGNORED_KEY_PATTERNS`.
    """
    out, unknown = {}, []
    for key, value in state_dict.items():
        if _IGNORED.fullmatch(key):
            continue
        m = _IN_PROJ.match(key)
        name = f"{m.group(1)}Wqkv.{m.group(2)}" if m else key
        if not name.startswith(("encoder.", "value_encoder.", "transformer_encoder.layers.")):
            unknown.append(key)
            continue
        if name in out:
            raise KeyError(f"checkpoint holds the fused projection {name!r} twice (as Wqkv and as in_proj)")
        out[name] = value
    if unknown:
        raise KeyError(
            f"checkpoint has key(s) that are not part of scGPT's pretrained encoder nor known pretraining heads: "
            f"{sorted(unknown)} (a fine-tuned model with batch labels or a classifier? only the pretrained "
            "whole-human / brain checkpoints are supported)"
        )
    return out
