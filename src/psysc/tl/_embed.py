from __future__ import annotations

import contextlib
import logging
import os
import warnings
from datetime import UTC, datetime

import numpy as np
from anndata import AnnData

from .._settings import settings
from .._utils import BACKED_VIEW, check_unique_var_names, get_matrix, uns_namespace, whole_number

logger = logging.getLogger("psysc")


def _target(adata, mod: str | None):
    """The AnnData to embed: ``adata`` itself, or modality ``mod`` of a MuData."""
    if hasattr(adata, "mod") and not isinstance(adata, AnnData):
        if mod is None:
            raise ValueError(f"adata is a MuData with modalities {list(adata.mod)}: pass mod='rna' (or another one)")
        return adata.mod[mod]
    if mod is not None:
        raise ValueError("mod= is only for MuData input")
    return adata


def embed(
    adata,
    model="geneformer-v2-104m",
    *,
    layer: str | None = None,
    emb_layer: int | None = None,
    pooling: str | None = None,
    key_added: str | None = None,
    batch_size: int | None = None,
    block_size: int = 2048,
    device: str | None = None,
    dtype: str | None = None,
    resume: str | os.PathLike | None = None,
    mod: str | None = None,
    copy: bool = False,
    batch_key: str | None = None,
    train_kwargs: dict | None = None,
    model_kwargs: dict | None = None,
    seed: int | None = None,
):
    """Embed every cell with a pretrained single-cell foundation model.

    The model's official tokenisation is applied to the raw counts, row block by row block (so backed
    and dask-backed data larger than memory work), cells are embedded in batches of similar length on
    the GPU when there is one (in the official code's precision) or on the CPU (float32), and the
    embedding of each cell lands in ``adata.obsm[key_added]`` in the order of ``adata.obs_names``.

    Parameters
    ----------
    adata
        Cells x genes with raw counts (AnnData, backed AnnData, or a MuData with ``mod=``).
    model
        A name from :func:`psysc.models.available` (downloaded once, hash-checked and cached), a local
        directory in the official layout (Geneformer: ``config.json`` + weights; scGPT: ``best_model.pt`` +
        ``vocab.json`` + ``args.json``; scvi-tools: ``model.pt``), a
        model returned by :func:`psysc.models.load`, or ``"scvi"``: train an scvi-tools ``SCVI`` model on
        ``adata`` (needs ``pip install scvi-tools``) and embed with the mean of its latent posterior. A local
        folder literally named ``scvi`` must be given as ``"./scvi"``.
    layer
        Layer holding the raw counts (default ``adata.X``).
    emb_layer
        Hidden layer to read (Geneformer: ``-1`` = second-to-last encoder layer, the official
        ``EmbExtractor`` default; ``0`` = last layer; scGPT: ``-1`` = last layer). Default ``None``: the
        model's own (``-1`` for a name or folder; the ``layer`` a loaded model was loaded with).
    pooling
        ``"mean"`` over the real gene tokens, or ``"cls"`` (Geneformer V2, scGPT). Default: the official one of
        the model (V1 mean, V2 cls), or the pooling a loaded model was loaded with.

        With a loaded model, ``emb_layer``, ``pooling`` and ``seed`` apply to this call only: the model object
        passed is not modified, and ``uns`` records the options used.
    key_added
        Key in ``adata.obsm`` (default ``"X_<model name>"``).
    batch_size
        Cells per forward pass (default 64 on a GPU, 16 on the CPU; scVI: 1,024); lowered automatically when
        the GPU runs out of memory.
    block_size
        Cells read and tokenised at a time.
    device, dtype
        ``"auto"`` (default ``psysc.settings.device``), ``"cpu"``, ``"cuda[:N]"``; ``"float32"``,
        ``"bfloat16"``, ``"float16"`` or ``"auto"`` (default; on the CPU float32, on CUDA the precision of the
        official code: float32 for Geneformer and scVI, float16 autocast for scGPT; pass ``"bfloat16"`` for
        speed at lower precision). A lower
        precision is used through CUDA autocast only: on the CPU the model computes in the dtype of its weights
        (float32 unless loaded otherwise; logged), and ``uns`` records the precision actually used.
    resume
        A directory for finished blocks: a run that is interrupted continues where it stopped, with
        identical results. Refused if it holds a run with other parameters (model, options, cells, genes,
        gene choice, device type, precision, ...) or a block embedded from other input (each block's tokens
        are hashed). With ``model="scvi"`` the training runs again (only the embedding is resumed), and the
        blocks are reused only when it gives the same weights (deterministic on the CPU).
    mod
        Modality to embed when ``adata`` is a MuData (``obsm`` is written into that modality).
    copy
        Return a copy instead of writing into ``adata``.
    batch_key
        scVI only. With ``model="scvi"``: the ``obs`` column of the batches to correct for (``None``: one
        batch). With a saved scVI model that encodes the batch (``encode_covariates=True``): the ``obs``
        column holding the model's batch categories (default: the column name it was trained with); cells of
        categories the model has not seen get an all-zero batch one-hot (logged). Ignored by models whose
        encoder does not see the batch (e.g. ``"scvi-census"``).
    train_kwargs
        ``model="scvi"`` only: keyword arguments of ``scvi.model.SCVI.train`` (e.g. ``{"max_epochs": 50}``;
        default: scvi-tools' defaults, on ``device``).
    model_kwargs
        ``model="scvi"`` only: keyword arguments of ``scvi.model.SCVI`` (e.g. ``{"n_latent": 30}``).
    seed
        scGPT: the seed of its per-cell random steps (value-binning ties, sampling of long cells; default the
        model's ``seed``, 0); a cell's embedding depends only on the seed and its ``obs_name``, not on batch
        size, chunking or the other cells. ``model="scvi"``: ``scvi.settings.seed`` for training (default
        ``psysc.settings.seed``); the same seed, data and arguments give the same model and embedding on the
        same machine.

    Returns
    -------
    anndata.AnnData or None
        ``None`` (or the copy), and writes ``obsm[key_added]`` (float32, cells x embedding size; with Geneformer and
        scGPT, NaN rows for cells that express no gene of the model's vocabulary, counted in the log; with
        Geneformer also for cells whose ``obs["filter_pass"]`` is not 1, which the official tokenizer leaves out;
        scVI embeds every cell, an empty one too, as scvi-tools does; keep the embedded cells before
        ``sc.pp.neighbors``: ``adata = adata[~np.isnan(adata.obsm[key_added]).any(axis=1)].copy()``) and the
        provenance (model, revision, weight sha256, parameters, the gene identifiers read for Geneformer in
        ``genes_from``, psysc version) in ``uns["psysc"]["embed"][key_added]``.

    Examples
    --------
    >>> import psysc, scanpy as sc
    >>> adata = psysc.datasets.darmanis2015()
    >>> psysc.tl.embed(adata, model="geneformer-v2-104m")  # doctest: +SKIP
    >>> sc.pp.neighbors(adata, use_rep="X_geneformer-v2-104m")  # doctest: +SKIP
    >>> psysc.tl.embed(adata, model="scvi", batch_key="sample", train_kwargs={"max_epochs": 100})  # doctest: +SKIP
    >>> ens = adata[:, adata.var["gene_ids"] != ""].copy()  # scvi-census reads Ensembl IDs
    >>> ens.var_names = ens.var["gene_ids"].astype(str)
    >>> psysc.tl.embed(ens, model="scvi-census")  # doctest: +SKIP

    """
    from tqdm.auto import tqdm

    from .. import __version__
    from .._core._engine import (
        BatchSizer,
        ChunkStore,
        cells_digest,
        compute_dtype,
        embed_tokens,
        kept_random_state,
        pick_device_dtype,
        tokens_digest,
    )

    if copy and getattr(adata, "isbacked", False):
        raise ValueError("copy=True cannot copy an AnnData opened in backed mode (its counts stay on disk): embed it "
                         "in place (copy=False; the embedding is written into adata.obsm), or load it first "
                         "(adata.to_memory())")
    if copy:
        adata = adata.copy()
    target = _target(adata, mod)
    if target.n_obs == 0:
        raise ValueError("adata has no cells")
    block_size = whole_number("block_size", block_size, 1, " (cells read at a time)")
    if target.is_view and target.isbacked:  # before any work: obsm cannot be written into such a view
        raise ValueError(BACKED_VIEW + ", or embed the whole backed AnnData and take the rows of obsm afterwards")
    if get_matrix(target, layer) is None:  # a missing layer is refused before the model is loaded, and so is no X
        raise ValueError(f"adata.X is None: name the layer that holds the raw counts (layer='counts'); layers: "
                         f"{list(target.layers)}")
    if key_added is not None and not str(key_added):
        raise ValueError("key_added must be a non-empty obsm key (or None for X_<model name>)")
    # "scvi" in any case trains (an existing folder of another spelling is that folder, as for registry names)
    train = isinstance(model, str) and model.lower() == "scvi" and (model == "scvi" or not os.path.isdir(model))
    if not train:
        for name, value in (("train_kwargs", train_kwargs), ("model_kwargs", model_kwargs)):
            if value is not None:
                raise ValueError(f"{name}= is for model='scvi' (training an scVI model on adata)")
    if train:
        if emb_layer not in (None, -1) or pooling is not None:
            raise ValueError("emb_layer= and pooling= do not apply to scVI (it embeds with the latent mean)")
        with kept_random_state():  # training (and building the network) draws from the global generators
            m = _train_scvi(target, layer=layer, batch_key=batch_key, train_kwargs=train_kwargs,
                            model_kwargs=model_kwargs, seed=seed, device=device)
    elif isinstance(model, str | os.PathLike):
        from ..models import load

        m = load(model, layer=-1 if emb_layer is None else emb_layer, pooling=pooling)
        m = _with_call_options(m, emb_layer=None, pooling=None, seed=seed)
    else:
        m = _with_call_options(model, emb_layer=emb_layer, pooling=pooling, seed=seed)
    is_scvi = m.info.family == "scvi"
    if batch_key is not None and not is_scvi:
        raise ValueError(f"batch_key= is for scVI models; {m.info.name} ({m.info.family}) takes no batch")
    tok_kwargs = {"batch_key": batch_key} if is_scvi and batch_key is not None else {}
    dev, tdtype = pick_device_dtype(device, dtype, cuda_default=getattr(m, "cuda_dtype", "bfloat16"))
    m.to(dev)
    used_dtype = compute_dtype(m, dev, tdtype)  # autocast on CUDA only: the CPU computes in the weights' dtype
    used_dtype_name = str(used_dtype).replace("torch.", "")
    if used_dtype != tdtype:
        logger.info("dtype %s is not used on %s: %s computes in %s, the dtype of its weights (a lower precision "
                    "is applied by autocast on CUDA only)", str(tdtype).replace("torch.", ""), dev.type, m.info.name,
                    used_dtype_name)
    default_bs = getattr(m, "default_batch_size", None) or (64 if dev.type == "cuda" else 16)
    sizer = BatchSizer(batch_size if batch_size is not None else default_bs)
    key = key_added or f"X_{m.info.name}"
    n = target.n_obs
    store = None
    if resume is not None:
        manifest = {
            "model": m.info.name,
            "revision": m.info.revision,
            "sha256": m.info.sha256,
            "options": {k: v for k, v in m.info.extra.items() if k in ("layer", "pooling")},
            "n_obs": int(n),
            "cells": cells_digest(target.obs_names),
            "block_size": int(block_size),
            "layer": layer,
            "genes": cells_digest(target.var_names),
            "tokenisation": _tokenisation_options(m, target),
            "device": dev.type,
            "dtype": used_dtype_name,
        }
        if is_scvi:
            manifest["batch_key"] = batch_key
        if getattr(m, "seed", None) is not None:
            manifest["seed"] = int(m.seed)
        store = ChunkStore(resume, manifest)
    # cells the model leaves out (Geneformer's filter_pass): a column that leaves out every cell is refused now,
    # before any block is computed
    excluded = m.excluded_cells(target) if callable(getattr(m, "excluded_cells", None)) else None
    if key in target.obsm and key not in target.uns.get("psysc", {}).get("embed", {}):
        logger.warning("obsm[%r] exists and is not an embedding of psysc.tl.embed: it is replaced (key_added= "
                       "names another key)", key)

    out = np.empty((n, m.embedding_dim), dtype=np.float32)
    with tqdm(total=n, desc=f"embedding with {m.info.name} on {dev.type}", unit="cell",
              disable=not settings.show_progress) as bar:
        for start in range(0, n, block_size):
            stop = min(start + block_size, n)
            tokens = m.tokenize(target, rows=slice(start, stop), layer=layer, **tok_kwargs)
            digest = tokens_digest(tokens) if store is not None else None
            done = store.get(start, stop, digest) if store is not None else None
            if done is None:
                done = embed_tokens(m, tokens, device=dev, dtype=tdtype, sizer=sizer, progress=bar.update)
                if store is not None:
                    store.put(start, stop, done, digest)
            else:
                bar.update(stop - start)
            out[start:stop] = done
    n_filtered = 0 if excluded is None else int(excluded.sum())
    # sc.pp.neighbors and UMAP cannot use NaN rows: the fix names the line that keeps the embedded cells
    keep = (f"; before sc.pp.neighbors(adata, use_rep={key!r}) keep the embedded cells: "
            f"adata = adata[~np.isnan(adata.obsm[{key!r}]).any(axis=1)].copy()")
    if n_filtered:
        logger.warning(
            "%d of %d cells have obs[%r] != 1 and are not embedded, as by the official tokenizer: their rows of "
            "obsm[%r] are NaN (kept, not dropped; to embed them, load the model, model = psysc.models.load(...), "
            "set model.filter_key = None and pass model=model)%s",
            n_filtered, n, m.filter_key, key, keep,
        )
    n_empty = int(np.isnan(out[:, 0]).sum()) - n_filtered
    if n_empty:
        logger.warning(
            "%d of %d cells express no gene of %s's vocabulary: their rows of obsm[%r] are NaN (kept, not dropped)%s",
            n_empty, n, m.info.name, key, keep,
        )
    target.obsm[key] = out
    ns = uns_namespace(target, "psysc")
    ns.setdefault("embed", {})
    ns["embed"][key] = {
        "model": m.info.name,
        "family": m.info.family,
        "version": m.info.version,
        "revision": m.info.revision or "",
        "sha256": dict(m.info.sha256),
        "licence": m.info.licence or "",
        "source": str(m.info.source or ""),
        "options": {k: (v if v is not None else "") for k, v in m.info.extra.items()},
        "device": str(dev),
        "dtype": used_dtype_name,
        "batch_size": int(sizer.size),
        "block_size": int(block_size),
        "layer": layer or "X",
        "n_empty_cells": n_empty,
        "n_filtered_cells": n_filtered,
        "psysc_version": __version__,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if is_scvi:
        ns["embed"][key]["batch_key"] = batch_key or m.config.batch_key or ""
    if m.info.family == "geneformer" and getattr(m, "gene_col", None) == "auto":  # the source chosen, by name
        ns["embed"][key]["genes_from"] = m.tokenizer.gene_source(target, m.gene_col)  # cached by the tokenisation
    logger.info("added obsm[%r] (%d x %d) and uns['psysc']['embed'][%r]", key, n, m.embedding_dim, key)
    return adata if copy else None


#: options of a loaded model that tl.embed can set for one call: argument -> attribute (and info.extra key)
_CALL_OPTIONS = {"emb_layer": "layer", "pooling": "pooling"}


def _with_call_options(m, *, emb_layer, pooling, seed):
    """``m`` itself, or a copy of it with this call's ``emb_layer`` / ``pooling`` / ``seed``.

    The copy shares the network and the tokenizer (nothing is loaded again) but has its own options and its own
    ``info`` (so ``uns`` records what was used); the caller's model is never modified. Options a model does not
    have are refused with a ``ValueError``.
    """
    import copy
    import dataclasses

    name = f"{m.info.name} ({m.info.family})"
    wanted = {}
    if m.info.family == "scvi":
        if emb_layer not in (None, -1, 0) or pooling is not None:
            raise ValueError(f"emb_layer= and pooling= do not apply to {name}: scVI embeds with the latent mean of "
                             "its encoder (leave the defaults)")
    else:
        for arg, value in (("emb_layer", emb_layer), ("pooling", pooling)):
            if value is None:
                continue
            attr = _CALL_OPTIONS[arg]
            if attr not in m.info.extra or not hasattr(m, attr):
                raise ValueError(f"{arg}= does not apply to {name}: it has no {attr!r} option")
            if attr == "layer" and (isinstance(value, bool) or not isinstance(value, int | np.integer)):
                raise TypeError(f"emb_layer must be an int, not {type(value).__name__}")
            value = int(value) if attr == "layer" else value
            if value != getattr(m, attr):
                wanted[attr] = value
    if seed is not None:
        if not hasattr(m, "seed"):
            raise ValueError(f"seed= is for models with random steps (scGPT) and model='scvi'; {m.info.name} is "
                             "deterministic")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
        if int(seed) != m.seed:
            wanted["seed"] = int(seed)
    if not wanted:
        return m
    m.check_options(layer=wanted.get("layer", getattr(m, "layer", None)),
                    pooling=wanted.get("pooling", getattr(m, "pooling", None)))
    new = copy.copy(m)
    new.info = dataclasses.replace(m.info, sha256=dict(m.info.sha256), extra=dict(m.info.extra))
    for attr, value in wanted.items():
        setattr(new, attr, value)  # scGPT's seed setter records the seed in new.info.extra
        if attr in ("layer", "pooling"):
            new.info.extra[attr] = value
    logger.info("%s with %s for this call (the model object passed is not modified)", m.info.name,
                ", ".join(f"{k}={v!r}" for k, v in wanted.items()))
    return new


def _tokenisation_options(m, target) -> dict:
    """The choices besides the genes and counts that shape the tokens (for the resume manifest)."""
    out = {}
    if hasattr(m, "gene_col"):  # Geneformer, scGPT: where the gene identifiers are read
        out["gene_col"] = "var_names" if m.gene_col is None else str(m.gene_col)
    if m.info.family == "geneformer":  # obs["n_counts"] is the normalisation denominator when present
        out["n_counts"] = "obs['n_counts']" if "n_counts" in target.obs.columns else "row sums"
        key = getattr(m, "filter_key", None)
        out["filter_key"] = key if key is not None and key in target.obs.columns else ""
    return out


#: the fewest cells model="scvi" trains on (with fewer, scvi-tools' data splitter leaves no training batch)
_MIN_SCVI_CELLS = 3


def _train_scvi(target, *, layer, batch_key, train_kwargs, model_kwargs, seed, device):
    """Train ``scvi.model.SCVI`` on the counts of ``target`` and return it as a psysc model (:class:`ScVI`).

    The model is trained on a light AnnData (the counts, ``var_names`` and the batch column only), so
    ``target`` is not modified by scvi-tools' ``setup_anndata``; it is saved with ``model.save`` into a
    temporary folder and read back by psysc's own loader, so the embedding runs on psysc's engine.
    """
    import json
    import tempfile

    import pandas as pd
    from scipy import sparse

    try:
        import scvi
    except ImportError as err:
        raise ImportError(
            "model='scvi' trains an scVI model with scvi-tools, which is not installed: pip install scvi-tools "
            "(or pip install 'psysc[scvi]'). A saved scVI model (a folder with model.pt) or 'scvi-census' "
            "embeds without it."
        ) from err
    from ..models import ModelInfo
    from ..models.scvi._model import ScVI, check_counts

    if getattr(target, "isbacked", False):
        raise ValueError("model='scvi' trains on data in memory: load it first (adata = adata.to_memory())")
    if target.n_obs < _MIN_SCVI_CELLS:  # scvi-tools' split into training and validation cells leaves none to train on
        raise ValueError(f"model='scvi' trains an scVI model on adata's own cells: {target.n_obs} cell(s) are too few "
                         f"(at least {_MIN_SCVI_CELLS}, in practice thousands); embed them with a pretrained model "
                         "instead (e.g. model='scvi-census')")
    X = target.X if layer is None else target.layers[layer]
    if hasattr(X, "compute"):
        raise ValueError("model='scvi' trains on data in memory: compute the dask array first "
                         "(adata.X = adata.X.compute())")
    check_counts(X.data if sparse.issparse(X) else np.asarray(X))
    totals = np.asarray(X.sum(axis=1)).ravel()
    if (totals == 0).any():
        logger.warning("%d cells have no counts: scVI cannot model them well; filter them first "
                       "(sc.pp.filter_cells(adata, min_counts=1))", int((totals == 0).sum()))
    obs = pd.DataFrame(index=pd.Index(target.obs_names.astype(str)))
    if batch_key is not None:
        if batch_key not in target.obs.columns:
            raise KeyError(f"batch_key={batch_key!r} is not a column of adata.obs ({list(target.obs.columns)[:10]})")
        if target.obs[batch_key].isna().any():
            raise ValueError(f"adata.obs[{batch_key!r}] has missing values: every cell needs a batch")
        obs[batch_key] = target.obs[batch_key].astype(str).to_numpy()
    check_unique_var_names(target, "before training scVI")
    train_ad = AnnData(X=X, obs=obs, var=pd.DataFrame(index=pd.Index(target.var_names.astype(str))))
    seed = settings.seed if seed is None else int(seed)
    from .._core._engine import pick_device_dtype

    dev, _ = pick_device_dtype(device, "float32")
    kwargs = {"accelerator": "gpu" if dev.type == "cuda" else "cpu", "enable_progress_bar": settings.show_progress}
    if dev.type == "cuda":
        kwargs["devices"] = [dev.index or 0]
    kwargs.update(train_kwargs or {})
    # without max_epochs, SCVI.train trains for min(400, round(400 x 20,000 / cells)) epochs (scvi-tools 1.x)
    epochs = kwargs.get("max_epochs") or max(1, min(400, round(400 * 20_000 / train_ad.n_obs)))
    logger.info("training scVI (scvi-tools %s) on %d cells x %d genes%s, seed %d, up to %d epochs%s",
                scvi.__version__, train_ad.n_obs, train_ad.n_vars, f", batch_key={batch_key!r}" if batch_key else "",
                seed, epochs, "" if "max_epochs" in kwargs else " (set train_kwargs={'max_epochs': ...} to change)")
    call = dict(kwargs)  # what SCVI.train gets: kwargs (recorded in the provenance) and psysc's own logging
    if not kwargs.get("enable_progress_bar", True) and settings.verbosity >= 2:  # no bar: a log line now and then
        given = kwargs.get("callbacks") or []
        call["callbacks"] = [*(given if isinstance(given, list | tuple) else [given]), _epoch_logger(epochs)]
    # scvi-tools seeds Python's, NumPy's and torch's global generators: tl.embed puts the caller's states back
    with _quiet_lightning():
        scvi.settings.seed = seed
        scvi.model.SCVI.setup_anndata(train_ad, batch_key=batch_key)
        vae = scvi.model.SCVI(train_ad, **(model_kwargs or {}))
        vae.train(**call)
    n_epochs = int(len(vae.history["elbo_train"])) if "elbo_train" in vae.history else 0
    with tempfile.TemporaryDirectory(prefix="psysc-scvi-") as tmp:
        vae.save(tmp, overwrite=True)
        info = ModelInfo(name="scvi", family="scvi", version="SCVI", licence=None,
                         source=f"trained by psysc.tl.embed with scvi-tools {scvi.__version__}")
        m = ScVI.from_directory(tmp, info=info)
    from ..models.scvi._format import state_digest

    m.info.sha256 = {"state_dict": state_digest(vae.module.state_dict())}
    m.info.extra.pop("weights", None)
    m.info.extra.update({
        "trained": True,
        "seed": seed,
        "n_epochs": n_epochs,
        "n_cells_trained": int(train_ad.n_obs),
        "model_kwargs": json.dumps(model_kwargs or {}, sort_keys=True, default=str),
        "train_kwargs": json.dumps(kwargs, sort_keys=True, default=str),
    })
    return m


def _epoch_logger(total: int):
    """A Lightning callback that logs scVI's training progress at ten points (where no progress bar is drawn)."""
    from lightning.pytorch.callbacks import Callback

    step = max(1, total // 10)

    class _EpochLog(Callback):
        def on_train_epoch_end(self, trainer, pl_module) -> None:
            done = int(trainer.current_epoch) + 1
            if done % step and done != total:
                return
            elbo = trainer.callback_metrics.get("elbo_train")
            logger.info("scVI training: epoch %d of %d%s", done, total,
                        "" if elbo is None else f", training loss (elbo_train) {float(elbo):.4g}")

    return _EpochLog()


@contextlib.contextmanager
def _quiet_lightning():
    """Silence PyTorch Lightning's and scvi-tools' info messages and warnings below psysc's debug verbosity (3).

    Their start-up lines (accelerators available, devices used) say nothing about the data; at verbosity 2 psysc's
    own progress bar and messages remain.
    """
    if settings.verbosity >= 3:
        yield
        return
    names = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "scvi")
    levels = {n: logging.getLogger(n).level for n in names}
    try:
        for n in names:
            logging.getLogger(n).setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"(lightning|pytorch_lightning|scvi)(\..*)?")
            yield
    finally:
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)

