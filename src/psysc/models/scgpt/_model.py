"""scGPT (whole-human and brain) as a psysc foundation model: args.json + vocab.json + best_model.pt.

Loaded through :func:`psysc.models.load` (this module imports torch). Official zero-shot semantics
(``scgpt.tasks.cell_emb.embed_data`` / ``get_batch_cell_embeddings``): genes matched by exact symbol, per-cell
binning of the non-zero values into 51 bins, ``<cls>`` first with the value ``pad_value`` (-2), random sampling
down to 1,200 tokens, the output of the last encoder layer at ``<cls>``, L2-normalised. The randomness (tie
breaking, gene sampling) comes from a per-cell stream keyed by ``seed`` and the cell's ``obs_name`` (see
:mod:`psysc.models.scgpt._tokenizer`), so embeddings do not depend on batching, chunking or row order.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from ..._registry import read_json_object
from .._base import FoundationModel, GeneColumnChoice, ModelInfo, Tokens
from ._network import ScGPTConfig, ScGPTNetwork, resolve_layer
from ._tokenizer import ScGPTTokenizer, cell_keys, read_vocab_json

logger = logging.getLogger("psysc")

#: the files of an official scGPT model folder
FILES = ("best_model.pt", "vocab.json", "args.json")
WEIGHTS = "best_model.pt"
POOLINGS = ("cls", "mean")


def scgpt_version(args: dict) -> str:
    """``"human"`` (whole-human), ``"brain"`` or ``"custom"``, from the training data named in ``args.json``.

    The official files name their data: whole-human ``.../scb_strict/human`` (``cellxgene_census_human-...``),
    brain ``.../scb_strict/brain/all_counts``. A model trained from another checkpoint (``load_model`` set, e.g.
    the continual-pretrained one) or on other data is ``"custom"``.
    """
    if args.get("load_model"):
        return "custom"
    where = f"{args.get('data_source') or ''} {args.get('save_dir') or ''}".lower()
    if "brain" in where:
        return "brain"
    if "human" in where:
        return "human"
    return "custom"


def read_best_model(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of ``best_model.pt``, read with ``torch.load(weights_only=True)`` (never an unrestricted unpickle).

    A file that holds anything but tensors, containers and plain numbers (e.g. a ``__reduce__`` payload, or a
    whole pickled model object) is refused with a ``ValueError``; nothing in it is run.
    """
    from ..geneformer._model import read_state_dict  # the one safe reader of psysc

    try:
        return read_state_dict(path)
    except ValueError as err:
        msg = str(err).replace(" Use the official model.safetensors instead.", "")
        raise ValueError(
            f"{msg} The official scGPT best_model.pt is a plain state dict (torch.save(model.state_dict())) and loads "
            "this way; a file that needs full unpickling is not one. Re-save a trusted model with "
            "torch.save(model.state_dict(), 'best_model.pt')."
        ) from None


def _check_options(layer: int, pooling: str, n_layers: int) -> None:
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be 'cls' (official), 'mean' or None, not {pooling!r}")
    resolve_layer(layer, n_layers)


class ScGPT(GeneColumnChoice, FoundationModel):
    """A loaded scGPT model: official zero-shot tokenisation, plain-PyTorch encoder, ``<cls>`` embedding (L2).

    Use :func:`psysc.models.load` to get one; :func:`psysc.tl.embed` runs it over an AnnData.

    Parameters
    ----------
    network
        The encoder with its weights loaded.
    tokenizer
        The tokenizer of the checkpoint's vocabulary and ``args.json`` (bins, length, ``pad_value``).
    version
        ``"human"``, ``"brain"`` or ``"custom"``.
    layer
        ``-1`` (default, official): output of the last encoder layer; ``-k``: ``k``-th layer from the end;
        ``k > 0``: layer ``k``.
    pooling
        ``"cls"`` (default, official: the ``<cls>`` position) or ``"mean"`` (mean over the gene tokens, not an
        official mode). The result is L2-normalised in both cases, as the official cell embedding.
    seed
        Global seed of the per-cell random streams (tie breaking in the binning, gene sampling for cells with
        more than 1,199 genes). Settable: ``model.seed = 1``.
    gene_col
        ``"auto"`` (default; see :meth:`ScGPTTokenizer.choose_gene_ids`), ``None`` (``var_names``) or a ``var``
        column with human gene symbols (or Ensembl IDs, mapped to symbols). Settable.
    info
        Provenance; ``info.extra`` receives ``layer``, ``pooling``, ``seed`` and the gene source.

    Examples
    --------
    >>> import psysc
    >>> model = psysc.models.load("scgpt-brain")  # doctest: +SKIP
    >>> model.seed = 1  # another draw of the tie breaking and gene sampling  # doctest: +SKIP
    >>> psysc.tl.embed(adata, model=model)  # obsm["X_scgpt-brain"], 512-d, L2-normalised  # doctest: +SKIP

    """

    needs_counts = False  # levels are per-cell ranks: raw or normalised (non-negative) values give the same tokens
    #: compute dtype on CUDA when tl.embed is given none: scGPT's embedding runs under torch.cuda.amp.autocast
    cuda_dtype = "float16"

    def __init__(self, network: ScGPTNetwork, tokenizer: ScGPTTokenizer, *, version: str, layer: int = -1,
                 pooling: str | None = None, seed: int = 0, gene_col: str | None = "auto",
                 info: ModelInfo | None = None):
        pooling = "cls" if pooling is None else pooling
        _check_options(layer, pooling, network.nlayers)  # now, not at the first batch
        if tokenizer.vocab_size != network.config.vocab_size:
            raise ValueError(f"the vocabulary has {tokenizer.vocab_size} tokens but the network "
                             f"{network.config.vocab_size} embeddings")
        self._network = network.eval()
        self.tokenizer = tokenizer
        self.version = version
        self.layer = int(layer)
        self.pooling = pooling
        self.embedding_dim = network.config.embsize
        self.pad_id = tokenizer.pad_id
        self.info = info or ModelInfo(name=f"scgpt-{version}", family="scgpt", version=version)
        self.info.extra.update({"layer": self.layer, "pooling": self.pooling, "n_bins": tokenizer.n_bins,
                                "max_length": tokenizer.max_length, "pad_value": tokenizer.pad_value})
        self.seed = seed
        self.gene_col = gene_col

    def check_options(self, *, layer, pooling) -> None:
        """The checks of the constructor for ``layer`` and ``pooling`` (a ``ValueError`` when not valid)."""
        _check_options(layer, pooling, self._network.nlayers)

    # -- settable options, mirrored into the provenance -----------------------------------------------
    @property
    def seed(self) -> int:
        """Global seed of the per-cell random streams."""
        return self._seed

    @seed.setter
    def seed(self, value: int) -> None:
        cell_keys([], value)  # validates
        self._seed = int(value)
        self.info.extra["seed"] = self._seed

    @property
    def max_length(self) -> int:
        """Longest token sequence, ``<cls>`` included (``max_seq_len`` of args.json; official ``max_length``)."""
        return self.tokenizer.max_length

    @classmethod
    def from_directory(cls, directory: str | os.PathLike, *, layer: int = -1, pooling: str | None = None,
                       info: ModelInfo | None = None, seed: int = 0, gene_col: str | None = "auto") -> ScGPT:
        """Build from an official model folder (``best_model.pt`` + ``vocab.json`` + ``args.json``)."""
        directory = Path(directory)
        missing = [f for f in FILES if not (directory / f).is_file()]
        if missing:
            found = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else "no such directory"
            raise FileNotFoundError(f"{directory} lacks {missing}: the official scGPT layout is best_model.pt + "
                                    f"vocab.json + args.json (found {found})")
        args = read_json_object(directory / "args.json")
        tokens = read_vocab_json(directory / "vocab.json")
        pad_token = args.get("pad_token", "<pad>")
        if pad_token != "<pad>":
            raise ValueError(f"args.json has pad_token={pad_token!r}; the official checkpoints use '<pad>'")
        tokenizer = ScGPTTokenizer(tokens, n_bins=int(args.get("n_bins", 51)),
                                   max_length=int(args.get("max_seq_len", 1200)),
                                   pad_value=float(args.get("pad_value", -2)))
        version = scgpt_version(args)
        config = ScGPTConfig.from_args(args, vocab_size=tokenizer.vocab_size)
        state = read_best_model(directory / WEIGHTS)
        with torch.device("meta"):
            net = ScGPTNetwork(config)
        net.load_official_state_dict(state, assign=True)  # checks keys and shapes before assigning
        if info is None:
            from ..._registry import sha256sum

            info = ModelInfo(name=directory.resolve().name, family="scgpt", version=version, source=str(directory),
                             sha256={f: sha256sum(directory / f) for f in FILES}, licence=None)
        info.family, info.version = "scgpt", version
        info.source = info.source or str(directory)
        official = tokenizer.is_official()
        info.extra.setdefault("weights", WEIGHTS)
        info.extra.setdefault("n_layers", config.nlayers)
        info.extra["vocab"] = (f"official scGPT vocabulary ({tokenizer.vocab_size:,} tokens)" if official
                               else f"custom vocab.json ({tokenizer.vocab_size:,} tokens)")
        logger.info("loaded scGPT %s (%d layers, %d dimensions, %d heads, %s tokens) from %s", version,
                    config.nlayers, config.embsize, config.nheads, f"{tokenizer.vocab_size:,}", directory)
        return cls(net, tokenizer, version=version, layer=layer, pooling=pooling, seed=seed, gene_col=gene_col,
                   info=info)

    # -- tokeniser -------------------------------------------------------------------------------------
    def tokenize(self, adata, *, rows: slice | None = None, layer: str | None = None) -> Tokens:
        """Official scGPT token sequences (ids and binned values) of the cells of ``adata``, in row order.

        Parameters
        ----------
        adata
            Cells x genes: raw counts, or a non-negative per-cell increasing normalisation of them
            (``normalize_total``, ``log1p``), which gives the same tokens. In memory or backed.
        rows
            Only these rows (a slice; only they are read from a backed AnnData).
        layer
            Layer with the expression values (default ``adata.X``).

        """
        label, ids = self.tokenizer.gene_token_ids(adata, self.gene_col)
        self.info.extra["genes"] = label
        X = adata.X if layer is None else adata.layers[layer]
        sel = slice(None) if rows is None else rows
        block = X[sel]
        if hasattr(block, "compute"):  # a dask-backed matrix: only these rows are computed
            block = block.compute()
        return self.tokenizer.tokenize(block, ids, cell_keys(adata.obs_names[sel], self.seed))

    # -- network ---------------------------------------------------------------------------------------
    def network(self) -> ScGPTNetwork:
        """The encoder (weights loaded, ``eval()`` mode)."""
        return self._network

    def embed_batch(self, input_ids, attention_mask, values=None):
        """L2-normalised cell embeddings ``(batch, embsize)`` (float32) of one right-padded batch."""
        if values is None:
            raise ValueError("scGPT needs the per-token values (binned expression) of the batch")
        with torch.inference_mode():
            out = self._network(input_ids, values, attention_mask, layer=self.layer, pooling=self.pooling)
            return F.normalize(out.float(), dim=1)
