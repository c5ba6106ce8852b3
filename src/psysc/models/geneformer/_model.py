"""Geneformer as a psysc foundation model: config + network + tokenizer + the official pooling.

Loaded through :func:`psysc.models.load` (this module imports torch; ``psysc.models`` imports it only
when a model is loaded).

Official embedding semantics (``geneformer.EmbExtractor`` at HF revision ``05fcbeb``):

- ``layer=-1`` (default, ``emb_layer=-1``): output of the second-to-last encoder layer,
  ``hidden_states[L - 1]``; ``layer=0``: last layer. Positive values index ``hidden_states`` directly.
- pooling defaults to the official ``emb_mode``: ``"cls"`` for V2 (its ``<cls>`` token, position 0) and
  ``"mean"`` (``emb_mode="cell"``) for V1, which has no ``<cls>``. ``"mean"`` averages the real gene
  tokens (V2: without ``<cls>`` and ``<eos>``).
- V1 vs V2 is read from ``config.json``: ``vocab_size`` 25,426 (gc30M dictionary) or 20,275 (gc104M).
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..._registry import cache_hint, file_kind_problem, read_json_object
from .._base import FoundationModel, GeneColumnChoice, ModelInfo, Tokens
from ._network import GeneformerNetwork, pool, resolve_layer

logger = logging.getLogger("psysc")

#: vocabulary size of config.json -> Geneformer version
VOCAB_VERSIONS = {25_426: "V1", 20_275: "V2"}
#: official default emb_mode per version ("cell" = masked mean)
DEFAULT_POOLING = {"V1": "mean", "V2": "cls"}
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def geneformer_version(config: dict) -> str:
    """``"V1"`` or ``"V2"`` from a ``config.json`` dict (its ``vocab_size``); a clear error otherwise."""
    if config.get("model_type", "bert") != "bert":
        raise ValueError(f"config.json has model_type={config.get('model_type')!r}; Geneformer is a 'bert' model")
    vocab = config.get("vocab_size")
    if vocab not in VOCAB_VERSIONS:
        raise ValueError(
            f"config.json has vocab_size={vocab!r}, which matches no Geneformer dictionary "
            f"(V1 gc30M: 25426 tokens, V2 gc104M: 20275 tokens); this is not a Geneformer checkpoint psysc can "
            "tokenise for"
        )
    return VOCAB_VERSIONS[vocab]


def find_weights(directory: str | os.PathLike) -> Path:
    """The weight file of an official model folder (``model.safetensors`` preferred over ``pytorch_model.bin``)."""
    d = Path(directory)
    for name in WEIGHT_FILES:
        if (d / name).is_file():
            return d / name
    raise FileNotFoundError(
        f"{d} holds no weights: expected the official layout, config.json + model.safetensors (or "
        f"pytorch_model.bin); found {sorted(p.name for p in d.iterdir()) if d.is_dir() else 'no such directory'}"
    )


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file, read safely (never an unrestricted unpickle).

    ``*.safetensors`` is read with :mod:`safetensors`; anything else with
    ``torch.load(path, weights_only=True, map_location="cpu")``, which refuses every pickled object that is
    not a tensor, a container or a plain number (a ``__reduce__`` payload is never run).
    """
    path = Path(path)
    problem = file_kind_problem(path)
    if problem is not None:
        raise ValueError(f"{path} {problem}{cache_hint(path)}")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as err:
            raise ImportError(
                f"{path.name} is a safetensors checkpoint, and the safetensors package is not installed: "
                "pip install safetensors (or psysc[torch])"
            ) from err

        return load_file(str(path), device="cpu")
    try:
        with warnings.catch_warnings():  # "Detected pickle protocol 4 ...": noise, the load is refused or fine
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            obj = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as err:  # noqa: BLE001 - whatever the restricted unpickler refused, report it the same way
        # keep torch's diagnosis ("unsupported GLOBAL posix.system ..."), drop its boilerplate (which suggests
        # weights_only=False, exactly what must not be done with an untrusted file)
        paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", str(err)) if p.strip()]
        boiler = ("Weights only load failed", "Check the documentation", "Please file an issue")
        detail = "; ".join(p for p in paras if not p.startswith(boiler)) or type(err).__name__
        raise ValueError(
            f"refusing to load {path}: it is not a plain tensor checkpoint that torch.load(weights_only=True) can "
            f"read ({type(err).__name__}: {detail}). psysc never unpickles arbitrary objects, "
            "since a pickle can run code. Use the official model.safetensors instead."
        ) from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return obj


def _check_options(version: str, layer: int, pooling: str, n_layers: int) -> None:
    if pooling not in ("mean", "cls"):
        raise ValueError(f"pooling must be 'mean', 'cls' or None (official default), not {pooling!r}")
    if pooling == "cls" and version == "V1":
        raise ValueError("pooling='cls' needs a <cls> token: Geneformer V1 has none, use pooling='mean'")
    resolve_layer(layer, n_layers)


class Geneformer(GeneColumnChoice, FoundationModel):
    """A loaded Geneformer model (V1 or V2): official tokenisation, BERT encoder, official pooling.

    Use :func:`psysc.models.load` to get one; :func:`psysc.tl.embed` runs it over an AnnData.

    Parameters
    ----------
    network
        The encoder with its weights loaded.
    version
        ``"V1"`` or ``"V2"``.
    layer
        Layer read (see :func:`psysc.models.geneformer._network.resolve_layer`): ``-1`` (official default)
        = second-to-last encoder layer, ``0`` = last.
    pooling
        ``"mean"`` or ``"cls"``; ``None`` = official default (V2 ``"cls"``, V1 ``"mean"``).
    info
        Provenance; ``info.extra`` receives ``layer``, ``pooling`` and ``gene_col``.

    Attributes
    ----------
    gene_col
        Where the genes are read: ``"auto"`` (default: the ``var`` column or ``var_names`` holding human Ensembl
        IDs, which the official tokenizer reads, else the source that covers most of the vocabulary; see
        :func:`~psysc.models.geneformer.choose_gene_ids`), ``None`` (``var_names``) or a ``var`` column.
    filter_key
        ``obs`` column that selects the cells to embed, as the official tokenizer's ``obs["filter_pass"]``
        (default): cells whose value is not 1 get a row of NaN (kept, counted in the log and in
        ``uns["psysc"]["embed"][key]["n_filtered_cells"]``). ``None`` embeds every cell.

    Examples
    --------
    >>> import psysc
    >>> model = psysc.models.load("geneformer-v2-104m")  # doctest: +SKIP
    >>> tokens = model.tokenize(psysc.datasets.darmanis2015()[:8])  # doctest: +SKIP
    >>> model.gene_col = "gene_ids"  # doctest: +SKIP

    """

    needs_counts = True
    filter_key: str | None = "filter_pass"
    #: compute dtype on CUDA when tl.embed is given none: Geneformer's EmbExtractor runs in float32 (no autocast)
    cuda_dtype = "float32"

    def __init__(self, network: GeneformerNetwork, *, version: str, layer: int = -1, pooling: str | None = None,
                 info: ModelInfo | None = None):
        if version not in DEFAULT_POOLING:
            raise ValueError(f"version must be 'V1' or 'V2', not {version!r}")
        pooling = DEFAULT_POOLING[version] if pooling is None else pooling
        _check_options(version, layer, pooling, network.num_hidden_layers)  # now, not at the first batch
        input_size = 4096 if version == "V2" else 2048  # the official tokenizer's model_input_size
        if network.config.max_position_embeddings < input_size:
            raise ValueError(
                f"the checkpoint has max_position_embeddings={network.config.max_position_embeddings} (config.json), "
                f"fewer than the {input_size} tokens the official Geneformer {version} tokenizer gives a cell "
                f"(Geneformer {version} checkpoints have {input_size}); this checkpoint cannot embed official "
                "Geneformer input"
            )
        self._network = network.eval()
        self.version = version
        self.layer = int(layer)
        self.pooling = pooling
        self.embedding_dim = network.config.hidden_size
        self.pad_id = network.config.pad_token_id
        self.max_length = network.config.max_position_embeddings
        self.info = info or ModelInfo(name=f"geneformer-{version.lower()}", family="geneformer", version=version)
        self.info.extra.update({"layer": self.layer, "pooling": self.pooling})
        self.gene_col = "auto"
        self._tokenizer = None

    def check_options(self, *, layer, pooling) -> None:
        """The checks of the constructor for ``layer`` and ``pooling`` (a ``ValueError`` when not valid)."""
        _check_options(self.version, layer, pooling, self._network.num_hidden_layers)

    @classmethod
    def from_directory(cls, directory: str | os.PathLike, *, layer: int = -1, pooling: str | None = None,
                       info: ModelInfo | None = None) -> Geneformer:
        """Build from an official model folder (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``)."""
        directory = Path(directory)
        cfg_path = directory / "config.json"
        if not cfg_path.is_file():
            raise FileNotFoundError(
                f"{directory} has no config.json (official layout: config.json + model.safetensors)"
            )
        config = read_json_object(cfg_path)
        version = geneformer_version(config)
        weights = find_weights(directory)
        state = read_state_dict(weights)
        with torch.device("meta"):
            net = GeneformerNetwork(config)
        net.load_official_state_dict(state, assign=True)  # checks keys and shapes before assigning
        if info is None:
            from ..._registry import sha256sum

            info = ModelInfo(name=directory.resolve().name, family="geneformer", version=version, source=str(directory),
                             sha256={weights.name: sha256sum(weights)}, licence=None)
        info.family, info.version = "geneformer", version
        info.extra.setdefault("weights", weights.name)
        info.extra.setdefault("n_layers", net.num_hidden_layers)
        logger.info("loaded Geneformer %s (%d layers, hidden %d) from %s", version, net.num_hidden_layers,
                    net.config.hidden_size, weights)
        return cls(net, version=version, layer=layer, pooling=pooling, info=info)

    # -- tokeniser -------------------------------------------------------------------------------------
    @property
    def tokenizer(self):
        """The official tokenizer of this version (:class:`~psysc.models.geneformer._tokenizer.GeneformerTokenizer`)."""
        if self._tokenizer is None:
            from ._tokenizer import GeneformerTokenizer

            self._tokenizer = GeneformerTokenizer(self.version)
        return self._tokenizer

    def tokenize(self, adata, *, rows: slice | None = None, layer: str | None = None) -> Tokens:
        """Official Geneformer token sequences of the cells of ``adata`` (raw counts), in row order.

        Genes are matched by the tokenizer, read from :attr:`gene_col` (by default the human Ensembl IDs, see
        :func:`~psysc.models.geneformer.choose_gene_ids`; an error for a too low overlap). Like the official
        tokenizer, ``obs["n_counts"]`` (total counts of each cell, over all genes) is the normalisation denominator
        when present, otherwise the row sums of the counts; and cells whose ``obs["filter_pass"]`` (see
        :attr:`filter_key`) is not 1 get an empty sequence (their embedding is NaN).

        Parameters
        ----------
        adata
            Cells x genes with raw counts (in memory or backed).
        rows
            Only these rows (a slice; only they are read from a backed AnnData).
        layer
            Layer with the raw counts (default ``adata.X``).

        """
        tok = self.tokenizer
        gene_token_ids = tok.gene_token_ids(adata, self.gene_col)  # harmonised, cached per gene list
        X = adata.X if layer is None else adata.layers[layer]
        sel = slice(None) if rows is None else rows
        block = X[sel]
        if hasattr(block, "compute"):  # a dask-backed matrix: only these rows are computed
            block = block.compute()
        excluded = self.excluded_cells(adata, rows=rows)
        n_counts = None
        if "n_counts" in adata.obs.columns:
            n_counts = np.asarray(adata.obs["n_counts"].to_numpy()[sel], dtype=np.float64)
            if hasattr(block, "to_memory"):
                block = block.to_memory()
            row_sums = np.asarray(block.sum(axis=1), dtype=np.float64).ravel()
            if excluded is not None:  # as officially, the cells left out are not tokenised: their n_counts is unused
                n_counts[excluded] = row_sums[excluded]
            if (n_counts < row_sums * (1 - 1e-6)).any():
                raise ValueError(
                    'obs["n_counts"] is smaller than the counts of some cells: it does not hold the total raw '
                    "counts of each cell (is it from normalised data?). Fix it or delete the column (then the "
                    "row sums of the counts are used)."
                )
        tokens = tok.tokenize(block, gene_token_ids, n_counts=n_counts)
        return tokens if excluded is None else tokens.emptied(excluded)

    def excluded_cells(self, adata, *, rows: slice | None = None) -> np.ndarray | None:
        """Boolean mask of the cells that :attr:`filter_key` leaves out, or ``None`` without the column.

        The official rule, ``value == 1`` per cell: 1, 1.0 and True pass; 0, False, missing values and text
        (also ``"1"``) do not. A column that would leave out every cell is refused (checked when ``rows``, a
        slice of the cells to look at, is ``None``).
        """
        key = self.filter_key
        if key is None or key not in adata.obs.columns:
            return None
        col = adata.obs[key]
        if rows is not None:
            col = col.iloc[rows]
        if pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
            passes = (col == 1).fillna(False).to_numpy(dtype=bool)  # numbers and booleans: no text possible
        else:
            passes = np.fromiter((not pd.isna(v) and not isinstance(v, str) and bool(v == 1) for v in col),
                                 dtype=bool, count=len(col))
        if rows is None and len(col) and not passes.any():
            raise ValueError(
                f"obs[{key!r}] ({col.dtype}, e.g. {col.iloc[0]!r}) leaves out every cell: like the official Geneformer "
                f"tokenizer, only cells whose value == 1 (1, 1.0 or True) are embedded. Fix the column (e.g. text "
                f"such as 'True' or '1': adata.obs[{key!r}] = adata.obs[{key!r}].astype(str).str.lower().isin(['1', "
                "'1.0', 'true']).astype(int)), or set model.filter_key = None on a loaded model (model = "
                "psysc.models.load(...)) to embed every cell."
            )
        return ~passes

    # -- network ---------------------------------------------------------------------------------------
    def network(self) -> GeneformerNetwork:
        """The encoder (weights loaded, ``eval()`` mode)."""
        return self._network

    def embed_batch(self, input_ids, attention_mask, values=None):
        """Cell embeddings ``(batch, hidden)`` (float32) of one right-padded batch: layer, then pooling."""
        if values is not None:
            raise ValueError("Geneformer takes no per-token values (rank encoding only)")
        with torch.inference_mode():
            hidden = self._network(input_ids, attention_mask, layer=self.layer)
            return pool(hidden, attention_mask, pooling=self.pooling, version=self.version)
