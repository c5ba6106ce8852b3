from __future__ import annotations

import logging
import os
from datetime import UTC, datetime

import numpy as np
from anndata import AnnData

from .._settings import settings
from .._utils import uns_namespace

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
    emb_layer: int = -1,
    pooling: str | None = None,
    key_added: str | None = None,
    batch_size: int | None = None,
    block_size: int = 2048,
    device: str | None = None,
    dtype: str | None = None,
    resume: str | os.PathLike | None = None,
    mod: str | None = None,
    copy: bool = False,
):
    """Embed every cell with a pretrained single-cell foundation model.

    The model's official tokenisation is applied to the raw counts, row block by row block (so backed
    and dask-backed data larger than memory work), cells are embedded in batches of similar length on
    the GPU when there is one (bfloat16 autocast) or on the CPU (float32), and the embedding of each
    cell lands in ``adata.obsm[key_added]`` in the order of ``adata.obs_names``.

    Parameters
    ----------
    adata
        Cells x genes with raw counts (AnnData, backed AnnData, or a MuData with ``mod=``).
    model
        A name from :func:`psysc.models.available` (downloaded once, hash-checked and cached), a local
        directory in the official layout, or a model returned by :func:`psysc.models.load`.
    layer
        Layer holding the raw counts (default ``adata.X``).
    emb_layer
        Hidden layer to read (Geneformer: ``-1`` = second-to-last encoder layer, the official
        ``EmbExtractor`` default; ``0`` = last layer).
    pooling
        ``"mean"`` over the real gene tokens, or ``"cls"`` (Geneformer V2). Default: the official one of the
        model (V1 mean, V2 cls).
    key_added
        Key in ``adata.obsm`` (default ``"X_<model name>"``).
    batch_size
        Cells per forward pass (default 64 on a GPU, 16 on the CPU); lowered automatically when the GPU
        runs out of memory.
    block_size
        Cells read and tokenised at a time.
    device, dtype
        ``"auto"`` (default ``psysc.settings.device``), ``"cpu"``, ``"cuda[:N]"``; ``"float32"``,
        ``"bfloat16"``, ``"float16"`` or ``"auto"`` (bfloat16 on CUDA, float32 on the CPU).
    resume
        A directory for finished blocks: a run that is interrupted continues where it stopped, with
        identical results. Refused if it holds a run with other parameters.
    mod
        Modality to embed when ``adata`` is a MuData (``obsm`` is written into that modality).
    copy
        Return a copy instead of writing into ``adata``.

    Returns
    -------
    ``None`` (or the copy), and writes ``obsm[key_added]`` (float32, cells x embedding size; NaN rows for
    cells that express no gene of the model's vocabulary, counted in the log) and the provenance
    (model, revision, weight sha256, parameters, psysc version) in ``uns["psysc"]["embed"][key_added]``.

    Examples
    --------
    >>> import psysc, scanpy as sc
    >>> adata = psysc.datasets.darmanis2015()
    >>> psysc.tl.embed(adata, model="geneformer-v2-104m")  # doctest: +SKIP
    >>> sc.pp.neighbors(adata, use_rep="X_geneformer-v2-104m")  # doctest: +SKIP

    """
    from tqdm.auto import tqdm

    from .. import __version__
    from .._core._engine import BatchSizer, ChunkStore, cells_digest, embed_tokens, pick_device_dtype

    if copy:
        adata = adata.copy()
    target = _target(adata, mod)
    if target.n_obs == 0:
        raise ValueError("adata has no cells")
    if block_size < 1:
        raise ValueError(f"block_size must be positive, not {block_size}")
    if isinstance(model, str | os.PathLike):
        from ..models import load

        m = load(model, layer=emb_layer, pooling=pooling)
    else:
        m = model
    dev, tdtype = pick_device_dtype(device, dtype)
    m.to(dev)
    sizer = BatchSizer(batch_size if batch_size is not None else (64 if dev.type == "cuda" else 16))
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
        }
        store = ChunkStore(resume, manifest)

    out = np.empty((n, m.embedding_dim), dtype=np.float32)
    with tqdm(total=n, desc=f"embedding with {m.info.name} on {dev.type}", unit="cell",
              disable=not settings.show_progress) as bar:
        for start in range(0, n, block_size):
            stop = min(start + block_size, n)
            done = store.get(start, stop) if store is not None else None
            if done is None:
                tokens = m.tokenize(target, rows=slice(start, stop), layer=layer)
                done = embed_tokens(m, tokens, device=dev, dtype=tdtype, sizer=sizer, progress=bar.update)
                if store is not None:
                    store.put(start, stop, done)
            else:
                bar.update(stop - start)
            out[start:stop] = done
    n_empty = int(np.isnan(out[:, 0]).sum())
    if n_empty:
        logger.warning(
            "%d of %d cells express no gene of %s's vocabulary: their rows of obsm[%r] are NaN (kept, not dropped)",
            n_empty, n, m.info.name, key,
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
        "dtype": str(tdtype).replace("torch.", ""),
        "batch_size": int(sizer.size),
        "block_size": int(block_size),
        "layer": layer or "X",
        "n_empty_cells": n_empty,
        "psysc_version": __version__,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    logger.info("added obsm[%r] (%d x %d) and uns['psysc']['embed'][%r]", key, n, m.embedding_dim, key)
    return adata if copy else None
