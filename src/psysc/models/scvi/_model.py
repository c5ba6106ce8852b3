"""scVI (scvi-tools ``SCVI``) as a psysc foundation model: the encoder's latent mean in plain torch.

Loaded through :func:`psysc.models.load` from a folder holding an scvi-tools ``model.pt`` (what
``model.save(dir)`` writes; the CELLxGENE Census scVI model is the registry entry ``"scvi-census"``).
scvi-tools is not needed: the file is read with torch's restricted unpickler
(:mod:`psysc.models.scvi._format`) and only the encoder is run.

Embedding semantics (those of ``SCVI.get_latent_representation()`` with ``give_mean=True``):

- genes are matched by name to the model's ``var_names`` (as ``SCVI.prepare_query_anndata`` does): model
  genes the data lacks are zero-filled, genes the model does not know are ignored (both counted in the log);
- the input is ``log1p(counts)`` when the model has ``log_variational=True`` (the default), else the counts;
- the encoder's fully connected layers: ``Linear`` on the input and, where the model encodes covariates
  (``encode_covariates=True``), the one-hot batch and categorical covariates (all layers when
  ``deeply_inject_covariates``, the first only otherwise; continuous covariates are appended to the genes);
  then ``BatchNorm1d`` with its running statistics (eval mode, eps 1e-3) and/or ``LayerNorm`` (no affine),
  ``ReLU``; dropout is off;
- the embedding is the output of ``z_encoder.mean_encoder``: the mean of q(z|x), never a sample. For
  ``latent_distribution="ln"`` this is the Gaussian mean *before* the softmax (scvi-tools instead averages the
  softmax of 5,000 random samples, a stochastic value); the log says so.

Batches the model has not seen (query data): for a model that encodes the batch, cells whose category is not
one of the model's get an all-zero batch one-hot, i.e. only the batch-independent weights (scArches surgery
would add new, trained columns; psysc does no training). They are counted in a warning. The Census model does
not encode covariates (``encode_covariates=False``), so its embedding does not depend on the batch at all.

Speed: a cell's non-zero genes travel through the engine as tokens (``id = 1 + model gene index``,
``value = count``) and the first layer is computed as a weighted ``embedding_bag`` over them (a sparse
matrix product), so the cost grows with the expressed genes, not with the model's gene count.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..._core._blocks import as_csr
from ..._utils import head_names
from .._base import FoundationModel, ModelInfo, Tokens
from ._format import LEGACY_FILES, WEIGHTS_NAME, ScVIConfig, parse_config, read_model_pt

logger = logging.getLogger("psysc")

_RAW_COUNTS_MSG = (
    "scVI needs raw counts (non-negative integers: the model's likelihood is over counts and its encoder takes "
    "log1p of them); {what}. The data look normalised or log-transformed: pass layer='counts' (or the layer "
    "that holds the raw counts)."
)
_ENSEMBL_RE = r"^ENS[A-Z]*G\d{11}(\.\d+)?$"


def check_counts(data: np.ndarray) -> None:
    """Raise ``ValueError`` unless ``data`` (the stored values of a count matrix) are non-negative integers."""
    if data.dtype.kind in "iu":
        if data.dtype.kind == "i" and data.size and data.min() < 0:
            raise ValueError(_RAW_COUNTS_MSG.format(what="found negative values"))
        return
    if data.dtype.kind == "b":
        return
    if data.dtype.kind != "f":
        raise TypeError(f"counts must be numeric, not {data.dtype}")
    if not data.size:
        return
    floor = np.floor(data)
    if (floor != data).any():  # also true for NaN
        what = "found NaN values" if np.isnan(data).any() else "found non-integer values"
        raise ValueError(_RAW_COUNTS_MSG.format(what=what))
    if data.min() < 0:
        raise ValueError(_RAW_COUNTS_MSG.format(what="found negative values"))
    if data.max() == np.inf:
        raise ValueError(_RAW_COUNTS_MSG.format(what="found infinite values"))


class ScVIEncoder(torch.nn.Module):
    """The SCVI ``z_encoder`` up to its mean: fully connected layers + ``mean_encoder``, eval semantics only.

    Parameters
    ----------
    config
        Architecture and covariates (:func:`~psysc.models.scvi._format.parse_config`).

    Notes
    -----
    ``forward(ids, values)`` takes token ids laid out as ``0`` = padding, ``1..G`` = model genes, then
    ``C`` continuous covariates, then the one-hot columns of the categorical covariates, then a marker id
    (a zero row, given only to a cell without counts, so that it still has a token and gets the embedding of an
    empty profile, as in scvi-tools).
    The first layer is ``embedding_bag`` over a table whose rows are the columns of the official first
    ``Linear`` weight, so the result is the official ``Linear`` of the dense input.

    """

    def __init__(self, config: ScVIConfig):
        super().__init__()
        self.config = config
        G, C, K, H = config.n_genes, len(config.continuous), config.n_onehot, config.n_hidden
        self.n_genes, self.n_cont, self.n_onehot = G, C, K
        inject = config.encode_covariates and K > 0
        dims_in = [G + C + K] + [H + (K if inject and config.deeply_inject_covariates else 0)] * (config.n_layers - 1)
        self.linears = torch.nn.ModuleList(torch.nn.Linear(d, H) for d in dims_in)
        self.norms = torch.nn.ModuleList(
            torch.nn.BatchNorm1d(H, momentum=0.01, eps=1e-3) if config.use_batch_norm else torch.nn.Identity()
            for _ in dims_in
        )
        self.mean_encoder = torch.nn.Linear(H, config.n_latent)
        self.inject_deep = inject and config.deeply_inject_covariates
        self.register_buffer("table", torch.zeros(0), persistent=False)
        self.eval()

    @property
    def n_slots(self) -> int:
        """Number of token ids: padding + genes + continuous + one-hot + marker."""
        return 1 + self.n_genes + self.n_cont + self.n_onehot + 1

    @property
    def marker_id(self) -> int:
        return self.n_slots - 1

    # -- weights ---------------------------------------------------------------------------------------
    def official_keys(self) -> dict[str, str]:
        """Official ``model_state_dict`` key -> this module's key (the encoder's mean path only)."""
        keys = {}
        for i, norm in enumerate(self.norms):
            pre = f"z_encoder.encoder.fc_layers.Layer {i}"
            keys[f"{pre}.0.weight"] = f"linears.{i}.weight"
            keys[f"{pre}.0.bias"] = f"linears.{i}.bias"
            if isinstance(norm, torch.nn.BatchNorm1d):
                for p in ("weight", "bias", "running_mean", "running_var"):
                    keys[f"{pre}.1.{p}"] = f"norms.{i}.{p}"
        keys["z_encoder.mean_encoder.weight"] = "mean_encoder.weight"
        keys["z_encoder.mean_encoder.bias"] = "mean_encoder.bias"
        return keys

    def load_official_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Copy the encoder tensors of an scvi-tools state dict (checks names and shapes; the rest is ignored)."""
        own = self.state_dict()
        mapping = self.official_keys()
        missing = [k for k in mapping if k not in state]
        if missing:
            raise ValueError(
                f"the model file lacks encoder weights {missing[:4]} (an SCVI model with n_layers="
                f"{self.config.n_layers}, use_batch_norm={self.config.use_batch_norm} has them)"
            )
        extra_layer = f"z_encoder.encoder.fc_layers.Layer {self.config.n_layers}.0.weight"
        if extra_layer in state:
            raise ValueError(f"the model file has more encoder layers than init_params_ says (n_layers="
                             f"{self.config.n_layers})")
        new = {}
        for official, mine in mapping.items():
            t = state[official]
            if not isinstance(t, torch.Tensor) or tuple(t.shape) != tuple(own[mine].shape):
                shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise ValueError(
                    f"{official} has shape {shape}, expected {tuple(own[mine].shape)} from the model's genes "
                    f"({self.n_genes}), covariates ({self.n_cont} continuous, {self.n_onehot} one-hot columns) and "
                    "init_params_; the file is inconsistent or uses options psysc does not support"
                )
            new[mine] = t.detach().to(torch.float32)
        for i, norm in enumerate(self.norms):
            if isinstance(norm, torch.nn.BatchNorm1d):
                new[f"norms.{i}.num_batches_tracked"] = own[f"norms.{i}.num_batches_tracked"]
        self.load_state_dict(new, strict=True)
        self.refresh()

    @torch.no_grad()
    def refresh(self) -> None:
        """Rebuild the first-layer lookup table from the first ``Linear`` (after loading or moving weights)."""
        w = self.linears[0].weight  # (H, G + C + K)
        zero = torch.zeros(1, w.shape[0], dtype=w.dtype, device=w.device)
        self.table = torch.cat([zero, w.t(), zero]).contiguous()

    def _apply(self, fn, *args, **kwargs):
        out = super()._apply(fn, *args, **kwargs)
        if self.linears[0].weight.numel():
            self.refresh()
        return out

    # -- forward ---------------------------------------------------------------------------------------
    def forward(self, ids: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Latent means ``(batch, n_latent)`` of a padded batch of token ids and their raw values."""
        rows = torch.arange(ids.shape[0], device=ids.device)[:, None].expand_as(ids)
        return self.forward_flat(ids.reshape(-1), None, values.reshape(-1), rows=rows.reshape(-1),
                                 n_rows=ids.shape[0], bag_shape=ids.shape)

    def forward_flat(self, ids: torch.Tensor, offsets: torch.Tensor | None, values: torch.Tensor, *,
                     rows: torch.Tensor | None = None, n_rows: int | None = None, bag_shape=None) -> torch.Tensor:
        """Latent means of cells given as concatenated token ids and values with ``offsets`` (cell starts)."""
        table = self.table
        w = values.to(table.dtype)
        if self.config.log_variational:
            if self.n_cont or self.n_onehot:  # covariate tokens keep their raw values
                w = torch.where(ids <= self.n_genes, torch.log1p(w), w)
            else:  # genes only (+ the marker of an empty cell, whose table row is zero)
                w = torch.log1p(w)
        if offsets is None:  # a padded batch: one bag per row
            h = F.embedding_bag(ids.reshape(bag_shape), table, per_sample_weights=w.reshape(bag_shape), mode="sum")
        else:
            h = F.embedding_bag(ids, table, offsets, per_sample_weights=w, mode="sum")
            n_rows = offsets.shape[0]
        h = h + self.linears[0].bias.to(table.dtype)
        cov = None
        if self.inject_deep and len(self.linears) > 1:
            if rows is None:
                lens = torch.diff(offsets, append=offsets.new_tensor([ids.shape[0]]))
                rows = torch.repeat_interleave(torch.arange(n_rows, device=ids.device), lens)
            first = 1 + self.n_genes + self.n_cont
            idx = ids - first
            inside = (idx >= 0) & (idx < self.n_onehot)
            cov = torch.zeros(n_rows, self.n_onehot + 1, dtype=h.dtype, device=h.device)
            cov.index_put_((rows, torch.where(inside, idx, self.n_onehot)), torch.where(inside, w, 0).to(h.dtype),
                           accumulate=True)
            cov = cov[:, : self.n_onehot]
        for i, (lin, norm) in enumerate(zip(self.linears, self.norms, strict=True)):
            if i > 0:
                h = lin(torch.cat([h, cov], dim=1) if cov is not None else h)
            h = norm(h)
            if self.config.use_layer_norm:
                h = F.layer_norm(h, (h.shape[-1],), eps=1e-5)
            h = torch.relu(h)
        return self.mean_encoder(h)


class ScVI(FoundationModel):
    """A loaded scvi-tools SCVI model, embedding cells with the mean of its encoder (no scvi-tools needed).

    Use :func:`psysc.models.load` (a folder with ``model.pt``, or ``"scvi-census"``) to get one;
    :func:`psysc.tl.embed` runs it over an AnnData. See :mod:`psysc.models.scvi._model` for the semantics.

    Parameters
    ----------
    encoder
        The encoder with its weights loaded.
    info
        Provenance; ``info.extra`` receives the architecture and covariate settings.

    Examples
    --------
    >>> import psysc
    >>> model = psysc.models.load("scvi-census")  # doctest: +SKIP
    >>> model.embedding_dim  # doctest: +SKIP
    50
    >>> psysc.tl.embed(adata, model=model)  # adata.var_names: Ensembl IDs  # doctest: +SKIP

    """

    needs_counts = True
    pad_id = 0
    #: cells per forward pass when tl.embed is given none (the model is small; large batches are cheap)
    default_batch_size = 1024
    #: compute dtype on CUDA when tl.embed is given none (bfloat16 would only lose accuracy)
    cuda_dtype = "float32"

    def __init__(self, encoder: ScVIEncoder, *, info: ModelInfo | None = None):
        self._encoder = encoder.eval()
        self.config = encoder.config
        self.embedding_dim = self.config.n_latent
        self._genes = pd.Index(self.config.var_names)
        self._plan_cache: tuple | None = None
        self._warned: tuple[int, set] = (0, set())
        cfg = self.config
        self.info = info or ModelInfo(name="scvi", family="scvi", version=cfg.model_name)
        self.info.family, self.info.version = "scvi", cfg.model_name
        self.info.extra.update({
            "n_genes": cfg.n_genes,
            "n_latent": cfg.n_latent,
            "n_hidden": cfg.n_hidden,
            "n_layers": cfg.n_layers,
            "log_variational": cfg.log_variational,
            "latent_distribution": cfg.latent_distribution,
            "encode_covariates": cfg.encode_covariates,
            "covariates": ", ".join([c.key for c in cfg.categorical] + list(cfg.continuous)),
            "scvi_version": cfg.scvi_version,
            "latent": "mean of q(z|x)" + (" before the softmax" if cfg.latent_distribution == "ln" else ""),
        })
        if cfg.latent_distribution == "ln":
            logger.warning(
                "this scVI model has latent_distribution='ln': psysc returns the Gaussian mean of q(z|x) before the "
                "softmax (deterministic); scvi-tools' get_latent_representation() returns a Monte-Carlo mean of the "
                "softmax of 5,000 samples instead"
            )

    # -- loading ---------------------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, ckpt: dict, *, info: ModelInfo | None = None) -> ScVI:
        """Build from the contents of a ``model.pt`` (:func:`~psysc.models.scvi._format.read_model_pt`)."""
        config = parse_config(ckpt)
        state = ckpt["model_state_dict"]
        with torch.device("cpu"):
            enc = ScVIEncoder(config)
        enc.load_official_state_dict(state)
        return cls(enc, info=info)

    @classmethod
    def from_directory(cls, directory: str | os.PathLike, *, layer: int = -1, pooling: str | None = None,
                       info: ModelInfo | None = None) -> ScVI:
        """Build from a folder with an scvi-tools ``model.pt`` (what ``SCVI.save(dir)`` writes).

        ``layer`` and ``pooling`` are there for the common loader signature: scVI embeds with the latent mean,
        so only their defaults (``-1`` or ``0``, ``None``) are accepted.
        """
        if layer not in (-1, 0):
            raise ValueError(f"scVI embeds with the latent mean of its encoder: emb_layer={layer} does not apply "
                             "(leave the default)")
        if pooling is not None:
            raise ValueError(f"scVI embeds cells, not tokens: pooling={pooling!r} does not apply (leave None)")
        directory = Path(directory)
        weights = directory / WEIGHTS_NAME
        if not weights.is_file():
            if all((directory / f).is_file() for f in LEGACY_FILES[:2]):
                raise ValueError(
                    f"{directory} is in the legacy scvi-tools (< 0.15) layout ({', '.join(LEGACY_FILES)}); "
                    "convert it with scvi.model.SCVI.convert_legacy_save(dir, new_dir) to get a model.pt"
                )
            raise FileNotFoundError(f"{directory} has no {WEIGHTS_NAME} (the file scvi-tools' model.save(dir) writes)")
        ckpt = read_model_pt(weights)
        if info is None:
            from ..._registry import sha256sum

            info = ModelInfo(name=directory.resolve().name, family="scvi", version="SCVI", source=str(directory),
                             sha256={WEIGHTS_NAME: sha256sum(weights)}, licence=None)
        info.extra.setdefault("weights", WEIGHTS_NAME)
        model = cls.from_checkpoint(ckpt, info=info)
        cfg = model.config
        logger.info("loaded scVI (%s %s, %d genes, %d layers x %d, latent %d%s) from %s", cfg.model_name,
                    cfg.scvi_version, cfg.n_genes, cfg.n_layers, cfg.n_hidden, cfg.n_latent,
                    ", encodes " + model.info.extra["covariates"] if cfg.encode_covariates else "",
                    weights)
        return model

    # -- genes -----------------------------------------------------------------------------------------
    def _no_overlap_message(self, adata) -> str:
        names = pd.Index(adata.var_names).astype(str)
        model_ens = self._genes.str.match(_ENSEMBL_RE).mean() > 0.5
        msg = (
            f"none of the {len(names):,} genes of adata.var_names (e.g. {head_names(names)}) is among the "
            f"{self.config.n_genes:,} genes of the scVI model (e.g. {head_names(self._genes)}). Genes are matched by "
            "adata.var_names, as scvi-tools does."
        )
        hints = []
        stripped = names.str.replace(r"\.\d+$", "", regex=True)
        if stripped.isin(self._genes).any():
            hints.append("the var_names carry Ensembl version suffixes: drop them, e.g. "
                         "adata.var_names = adata.var_names.str.replace(r'\\.\\d+$', '', regex=True)")
        for col in adata.var.columns:
            values = adata.var[col]
            if values.dtype == object or isinstance(values.dtype, pd.CategoricalDtype):
                n = int(pd.Index(values.astype(str)).isin(self._genes).sum())
                if n:
                    hints.append(f"adata.var[{col!r}] matches {n:,} model genes: set "
                                 f"adata.var_names = adata.var[{col!r}]")
        if model_ens:
            hints.append(
                "the model's genes are Ensembl IDs (as for the CELLxGENE Census scVI model): rename the gene "
                "symbols to Ensembl IDs, one to one, with psysc.pp.map_genes(adata, 'ensembl')"
            )
        return msg + (" Fix: " + "; or ".join(hints) + "." if hints else "")

    def gene_plan(self, adata) -> np.ndarray:
        """Token id of each column of ``adata`` (``1 + model gene index``; ``-1`` for genes the model lacks)."""
        names = adata.var_names
        if self._plan_cache is not None and self._plan_cache[0] is names:
            return self._plan_cache[1]
        if self._plan_cache is not None and self._plan_cache[0].equals(names):
            return self._plan_cache[1]
        pos = self._genes.get_indexer(pd.Index(names).astype(str))
        found = pos >= 0
        if not found.any():
            raise ValueError(self._no_overlap_message(adata))
        dup = pd.Index(pos[found]).duplicated()
        if dup.any():
            gene = self._genes[pos[found][dup][0]]
            raise ValueError(f"adata.var_names has duplicated genes of the model (e.g. {gene!r}): make them unique "
                             "(adata.var_names_make_unique()) or sum their counts first")
        n_found = int(found.sum())
        n_model = self.config.n_genes
        logger.info(
            "%s: %d of %d model genes found in adata.var_names; %d missing genes are zero-filled (as scvi-tools' "
            "prepare_query_anndata does); %d genes of adata that the model does not know are ignored",
            self.info.name, n_found, n_model, n_model - n_found, len(pos) - n_found,
        )
        if n_found < 0.5 * n_model:
            logger.warning(
                "%s: only %d of the model's %d genes are in adata (%.0f%%): the rest are zero-filled and the embedding "
                "degrades; embed the full gene set (not highly variable genes only)",
                self.info.name, n_found, n_model, 100 * n_found / n_model,
            )
        plan = np.where(found, pos + 1, -1).astype(np.int64)
        self._plan_cache = (names, plan)
        return plan

    # -- covariates ------------------------------------------------------------------------------------
    def _warn_once(self, adata, key: str, message: str, *args) -> None:
        owner, seen = self._warned
        if owner != id(adata):
            seen = set()
            self._warned = (id(adata), seen)
        if key not in seen:
            seen.add(key)
            logger.warning(message, *args)

    def _covariate_tokens(self, adata, sel, n: int, batch_key: str | None) -> tuple[np.ndarray, np.ndarray]:
        """``(n, E)`` token ids (``-1`` = none) and values of the continuous and one-hot covariates."""
        cfg = self.config
        enc = self._encoder
        cols_ids, cols_vals = [], []
        for j, name in enumerate(cfg.continuous):
            if name not in adata.obs.columns:
                raise ValueError(f"this scVI model encodes the continuous covariate {name!r}: adata.obs[{name!r}] is "
                                 "needed")
            v = np.asarray(adata.obs[name].to_numpy()[sel], dtype=np.float64)
            if not np.isfinite(v).all():
                raise ValueError(f"adata.obs[{name!r}] has missing or infinite values")
            cols_ids.append(np.full(n, 1 + enc.n_genes + j, dtype=np.int64))
            cols_vals.append(v)
        offset = 1 + enc.n_genes + enc.n_cont
        for b, cov in enumerate(cfg.categorical):
            key = cov.key
            if b == 0 and cov.key == cfg.batch_key and batch_key is not None:
                key = batch_key
            if key not in adata.obs.columns:
                what = "batch" if cov.key == cfg.batch_key else "categorical covariate"
                raise ValueError(
                    f"this scVI model encodes the {what} (encode_covariates=True; {len(cov.categories)} categories, "
                    f"e.g. {head_names(cov.categories)}): adata.obs[{key!r}] is needed"
                    + (" (or pass batch_key= naming the column with the model's batch categories)"
                       if cov.key == cfg.batch_key else "")
                    + ". Cells whose category the model has not seen get an all-zero one-hot."
                )
            values = pd.Index(pd.Series(adata.obs[key].to_numpy()[sel]).astype(str))
            codes = pd.Index(cov.categories).get_indexer(values)
            unseen = codes < 0
            if unseen.any():
                cats = sorted(set(values[unseen]))
                self._warn_once(
                    adata, f"{key}:{','.join(cats)}",
                    "%s: %d cells of this block have %s categories the model has not seen (%s): they get an all-zero "
                    "one-hot for %r (only the model's batch-independent weights act on them)",
                    self.info.name, int(unseen.sum()), repr(key), ", ".join(cats[:5]), key,
                )
            cols_ids.append(np.where(unseen, -1, offset + codes).astype(np.int64))
            cols_vals.append(np.ones(n))
            offset += len(cov.categories)
        if not cols_ids:
            return np.zeros((n, 0), dtype=np.int64), np.zeros((n, 0))
        return np.stack(cols_ids, axis=1), np.stack(cols_vals, axis=1)

    # -- tokens ----------------------------------------------------------------------------------------
    def tokenize(self, adata, *, rows: slice | None = None, layer: str | None = None,
                 batch_key: str | None = None) -> Tokens:
        """Tokens of the cells of ``adata`` (raw counts): the model genes each cell expresses, with their counts.

        Parameters
        ----------
        adata
            Cells x genes with raw counts (in memory, backed or dask-backed); genes matched by ``var_names``.
        rows
            Only these rows (a slice; only they are read from a backed AnnData).
        layer
            Layer with the raw counts (default ``adata.X``).
        batch_key
            ``obs`` column with the model's batch categories, for a model that encodes the batch (default: the
            column name used when the model was trained). Ignored by models that do not encode it (Census).

        Returns
        -------
        :class:`~psysc.models.Tokens` with ``ids = 1 + model gene index`` (then the covariate ids, and a marker id
        for a cell without counts) and ``values`` = counts (covariate values; 1 for one-hot and marker).

        """
        plan = self.gene_plan(adata)
        X = adata.X if layer is None else adata.layers[layer]
        sel = slice(None) if rows is None else rows
        block = X[sel]
        if hasattr(block, "compute"):
            block = block.compute()
        block = as_csr(block)
        check_counts(block.data)
        n = block.shape[0]
        keep_cols = np.flatnonzero(plan >= 0)
        if len(keep_cols) == block.shape[1]:  # every column is a model gene: no column selection needed
            sub, col_ids = block, plan
        else:
            sub, col_ids = block[:, keep_cols], plan[keep_cols]
        # explicitly stored zeros stay as tokens of value 0: they add nothing to the first layer's sum
        gene_ids = col_ids[sub.indices]
        gene_vals = sub.data.astype(np.float32, copy=False)
        gene_len = np.diff(sub.indptr).astype(np.int64)
        empty = gene_len == 0
        n_empty = int(empty.sum())
        if n_empty:
            logger.info("%s: %d of %d cells of this block have no counts in the model's genes (embedded as an empty "
                        "profile, as scvi-tools does)", self.info.name, n_empty, n)
        marker = np.where(empty, self._encoder.marker_id, -1)[:, None]  # an empty cell still needs one token
        if not self.config.encode_covariates:
            if not n_empty:  # the common case: the CSR rows are the token sequences
                return Tokens(ids=gene_ids, offsets=sub.indptr.astype(np.int64), values=gene_vals)
            extra_ids, extra_vals = marker, np.ones((n, 1))
        else:
            cov_ids, cov_vals = self._covariate_tokens(adata, sel, n, batch_key)
            extra_ids, extra_vals = np.hstack([cov_ids, marker]), np.hstack([cov_vals, np.ones((n, 1))])
        present = extra_ids >= 0
        extra_len = present.sum(axis=1)
        lengths = gene_len + extra_len
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        ids = np.empty(offsets[-1], dtype=np.int64)
        vals = np.empty(offsets[-1], dtype=np.float32)
        row_of = np.repeat(np.arange(n), gene_len)
        pos = offsets[:-1][row_of] + np.arange(len(gene_ids)) - sub.indptr[:-1][row_of]
        ids[pos] = gene_ids
        vals[pos] = gene_vals
        r, c = np.nonzero(present)
        rank = np.cumsum(present, axis=1)[r, c] - 1
        pos = offsets[:-1][r] + gene_len[r] + rank
        ids[pos] = extra_ids[r, c]
        vals[pos] = extra_vals[r, c]
        return Tokens(ids=ids, offsets=offsets, values=vals)

    # -- network ---------------------------------------------------------------------------------------
    def network(self) -> ScVIEncoder:
        """The encoder (weights loaded, ``eval()`` mode)."""
        return self._encoder

    def embed_batch(self, input_ids, attention_mask, values=None):
        """Latent means ``(batch, n_latent)`` (float32) of one right-padded batch of tokens with their counts."""
        if values is None:
            raise ValueError("scVI tokens carry counts: values are required")
        with torch.inference_mode():
            return self._encoder(input_ids, values * attention_mask.to(values.dtype)).float()

    def embed_flat(self, ids, offsets, values):
        """Latent means of cells given unpadded: concatenated ``ids`` and ``values``, cell starts ``offsets``.

        The engine uses this instead of :meth:`embed_batch` when a model has it (no padding to build or
        compute).
        """
        with torch.inference_mode():
            return self._encoder.forward_flat(ids, offsets, values).float()
