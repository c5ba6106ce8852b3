from __future__ import annotations

import logging
import numbers
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from .._core._blocks import head_rows, is_dask, iter_row_blocks
from .._core._covariates import corrected_mean_var
from .._core._covariates import design_matrix as cov_design_matrix
from .._core._covariates import fit as cov_fit
from .._core._stats import (
    SparseMoments,
    accumulation_dtype,
    gene_mean_var,
    mean_var_bins,
    row_kinds,
    technical_variance,
)
from .._utils import (
    available_memory,
    check_anndata,
    check_unique_var_names,
    get_matrix,
    reports_cells_read,
    uns_namespace,
    whole_number,
)

logger = logging.getLogger("psysc")

GENE_STAT_COLUMNS = ("mean", "var", "var_tech", "ct_mean", "ct_var", "ct_var_tech", "mean_var")


#: rows normalised at a time from a backed or dask matrix
NORMALISE_BLOCK = 20_000


def _obs_columns(covariates) -> list[str] | None:
    """The ``obs`` columns that ``covariates`` names (a name, or a list or tuple of names), else None (a table)."""
    if isinstance(covariates, str):
        return [covariates]
    if isinstance(covariates, list | tuple) and covariates and all(isinstance(c, str) for c in covariates):
        return list(covariates)
    return None


def write_normalized_code(*, layer: str | None = None, target_sum: float = 1e4, key_added: str = "psysc",
                          covariates=None) -> str:
    """The code that writes the normalised counts to a file and prepares it, with the options of the call refused.

    ``covariates`` as given to :func:`prepare_scoring`: obs column names are kept (the file keeps ``obs``), a table
    is named ``covariates``.
    """
    write = ["adata", "'lognorm.h5ad'"]
    if layer is not None:
        write.append(f"layer={layer!r}")
    if target_sum != 1e4:
        write.append(f"target_sum={target_sum:g}")
    prepare = ["adata"]
    if key_added != "psysc":
        prepare.append(f"key_added={key_added!r}")
    if covariates is not None:
        names = _obs_columns(covariates)
        shown = "covariates" if names is None else repr(covariates if isinstance(covariates, str) else names)
        prepare.append(f"covariates={shown}")
    return (f"psysc.pp.write_normalized({', '.join(write)}); adata = anndata.read_h5ad('lognorm.h5ad', "
            f"backed='r'); psysc.pp.prepare_scoring({', '.join(prepare)})")


def _check_layer_fits(X, where: str, fix: str) -> None:
    """Refuse raw counts whose normalised layer would not fit in the memory available, before normalising them.

    ``fix``: the code that goes through a file instead (:func:`write_normalized_code`). Not checked for a dask
    array, whose number of entries is not known ahead.
    """
    entries = _stored_entries(X)
    if entries is not None:
        need = entries * (4 + _index_dtype(entries, X.shape[1]).itemsize) + (X.shape[0] + 1) * 8
    elif is_dask(X):  # sparse or dense blocks: not known ahead
        return
    else:
        need = X.shape[0] * X.shape[1] * 4
    avail = available_memory()
    if avail is not None and need > avail:
        raise MemoryError(
            f"{where} holds raw counts, and their log-normalised layer, which prepare_scoring keeps in memory, needs "
            f"{need / 1e9:.1f} GB, more than the {avail / 1e9:.1f} GB available. Write it to a file block by block "
            f"and prepare that file, read in blocks: {fix}"
        )


def _index_dtype(entries: int, n_genes: int) -> np.dtype:
    """The dtype of the column indices of a CSR layer of ``entries`` stored values over ``n_genes`` genes."""
    return np.dtype(np.int64 if max(entries, n_genes) >= 2**31 else np.int32)


def _stored_entries(X) -> int | None:
    """The number of stored entries of a sparse matrix (in memory or anndata's backed dataset), else None."""
    if sparse.issparse(X):
        return int(X.nnz)
    group = getattr(X, "group", None)
    if hasattr(X, "to_memory") and group is not None and "data" in group:
        return int(group["data"].shape[0])
    return None


def _normalised_block(block, target_sum: float, from_log1p: bool = False):
    """``log1p(normalize_total(block))`` with scanpy, in float32 (a copy: ``block`` is left as it is).

    ``from_log1p``: ``block`` holds ``log1p`` of counts; the counts (``expm1``, rounded) are normalised.
    """
    import scanpy as sc

    if sparse.issparse(block):
        block = block.astype(np.float32) if block.dtype != np.float32 else block.copy()
        if from_log1p:
            block.data = np.rint(np.expm1(block.data.astype(np.float64))).astype(np.float32)
    else:
        block = np.array(block, dtype=np.float32)
        if from_log1p:
            block = np.rint(np.expm1(block.astype(np.float64))).astype(np.float32)
    tmp = AnnData(X=block)
    sc.pp.normalize_total(tmp, target_sum=target_sum)
    sc.pp.log1p(tmp)
    return tmp.X


def _log_normalise(X, target_sum: float, from_log1p: bool = False):
    """``log1p`` of counts scaled to ``target_sum`` per cell (scanpy's ``normalize_total`` + ``log1p``), float32.

    Row block by row block (each cell is scaled on its own; blocks of ``NORMALISE_BLOCK`` cells), written into the
    result allocated once: the layer that is scored, in memory (CSR for sparse input). Besides the input (when it
    is in memory) and the result, one block is held at a time. ``from_log1p``: ``X`` holds ``log1p`` of the counts.
    """
    n, n_genes = X.shape
    capacity = _stored_entries(X)
    if capacity is None:  # dense (or a dask array of either kind): the first block tells
        first = head_rows(X, 1)
        if sparse.issparse(first):
            return _stacked_normalised(X, target_sum, from_log1p)
        out = np.empty((n, n_genes), dtype=np.float32)
        for start, stop, block in iter_row_blocks(X, NORMALISE_BLOCK, prefetch=True):
            out[start:stop] = _normalised_block(block, target_sum, from_log1p)
        return out
    data = np.empty(capacity, dtype=np.float32)
    indices = np.empty(capacity, dtype=_index_dtype(capacity, n_genes))
    indptr = np.zeros(n + 1, dtype=np.int64 if capacity >= 2**31 else np.int32)
    pos = 0
    for start, stop, block in iter_row_blocks(X, NORMALISE_BLOCK, prefetch=True):
        normed = sparse.csr_matrix(_normalised_block(block, target_sum, from_log1p))
        k = normed.nnz  # at most the entries stored (duplicated entries are summed in the blocks)
        data[pos : pos + k] = normed.data
        indices[pos : pos + k] = normed.indices
        indptr[start + 1 : stop + 1] = normed.indptr[1:].astype(indptr.dtype) + pos  # a block's int32 offsets
        pos += k
    if pos < capacity:  # duplicated entries were summed: the arrays hold fewer
        data, indices = data[:pos].copy(), indices[:pos].copy()
    return sparse.csr_matrix((data, indices, indptr), shape=(n, n_genes))


def _stacked_normalised(X, target_sum: float, from_log1p: bool = False):
    """:func:`_log_normalise` of a sparse matrix whose number of entries is not known ahead (dask): blocks stacked."""
    parts = [_normalised_block(block, target_sum, from_log1p)
             for _, _, block in iter_row_blocks(X, NORMALISE_BLOCK, prefetch=True)]
    return sparse.vstack(parts, format="csr") if parts else sparse.csr_matrix(X.shape, dtype=np.float32)


def _checked_target_sum(target_sum) -> float:
    """``target_sum`` as a float (a float32 1e4 scales as 1e4 does), or a ``ValueError``."""
    if isinstance(target_sum, bool | np.bool_) or not isinstance(target_sum, numbers.Real) or not target_sum > 0:
        raise ValueError(f"target_sum must be a positive number of counts per cell (scDRS: 1e4), not {target_sum!r}")
    return float(target_sum)


def write_normalized(adata: AnnData, filename: str | os.PathLike, *, layer: str | None = None,
                     target_sum: float = 1e4) -> None:
    """Write the log-normalised counts of ``adata`` to a new ``.h5ad``, block by block.

    ``log1p`` of the counts scaled to ``target_sum`` per cell (scanpy's ``normalize_total`` + ``log1p``, as
    :func:`prepare_scoring` normalises raw counts), written as a CSR float32 ``X`` beside ``obs`` and ``var``,
    one block of 20,000 cells at a time: the counts may be a backed file or a dask array larger than memory. Open
    the file backed (``anndata.read_h5ad(filename, backed="r")``) and give it to :func:`prepare_scoring`, which
    then reads it in blocks instead of keeping a normalised layer in memory.

    Parameters
    ----------
    adata
        Raw counts in ``X`` (or ``layers[layer]``); in memory, backed (``backed="r"``) or dask-backed.
    filename
        The ``.h5ad`` to write (replaced if it exists); only ``X``, ``obs`` and ``var`` are written.
    layer
        Layer with the counts (default: ``X``).
    target_sum
        Counts per cell after scaling (scDRS: 1e4).

    Examples
    --------
    >>> import os, tempfile, anndata, psysc
    >>> path = os.path.join(tempfile.mkdtemp(), "lognorm.h5ad")
    >>> psysc.pp.write_normalized(psysc.datasets.darmanis2015(), path)
    >>> adata = anndata.read_h5ad(path, backed="r")
    >>> psysc.pp.prepare_scoring(adata)  # log-normalised: read in blocks, no layer added
    >>> "psysc_norm" in adata.layers
    False

    """
    import h5py
    from anndata.io import sparse_dataset, write_elem

    target_sum = _checked_target_sum(target_sum)
    where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
    X = get_matrix(adata, layer)
    info = check_expression(adata, X, where, min_cells=1)
    if not reads_as_counts(info, True):
        raise ValueError(f"{where} holds non-integer values up to {info['max']:.3g}: it is not raw counts (already "
                         "log-normalised?); give prepare_scoring this data as it is")
    filename = os.fspath(filename)
    backing = getattr(adata, "filename", None)
    if backing is not None and os.path.exists(filename) and os.path.samefile(backing, filename):
        raise ValueError(f"{filename!r} is the file adata is backed by (opened with backed='r'), which is read from "
                         "while the normalised values are written: write them to another file")
    AnnData(obs=adata.obs.copy(), var=adata.var.copy()).write_h5ad(filename)  # the file without X
    with h5py.File(filename, "r+") as f:
        if "X" in f:
            del f["X"]
        for start, _, block in iter_row_blocks(X, NORMALISE_BLOCK, prefetch=True):
            normed = sparse.csr_matrix(_normalised_block(block, target_sum))
            if start == 0:  # int64 offsets in the file: appending past 2^31 entries needs them
                normed.indptr = normed.indptr.astype(np.int64)
                write_elem(f, "X", normed)
            else:
                sparse_dataset(f["X"]).append(normed)
    logger.info("wrote the log-normalised counts of %s (%d cells x %d genes) to %s", where, adata.n_obs,
                adata.n_vars, filename)


def inspect_values(X, *, max_rows: int = 2_000, moments: bool = False, block_size: int = 10_000) -> dict:
    """Summarise a matrix: integer-valued or not, NaN/negative/inf counts, maximum, empty rows.

    NaN, infinite and negative entries and empty rows are counted over the whole matrix (streamed by
    row blocks); integrality is judged on the first ``max_rows`` rows (``info["integer"]``), and recorded for every
    row too (``info["fractional_rows"]``: the rows holding a non-whole value; ``info["row_value"]``: the first such
    value of each, the largest value of the others), so that a matrix mixing raw and normalised cells can be told
    (:func:`mixed_rows_error`).

    With ``moments=True`` the same pass also accumulates the per-gene moments of sparse, non-integer data
    (:class:`psysc._core._stats.SparseMoments`: the statistics of log-normalised input, so that it is read
    once); ``info["moments"]`` is ``None`` when the data are dense or integer (raw counts, normalised first).
    """
    n_nan = n_neg = n_inf = 0
    vmax = 0.0
    non_integer = False
    head_values: list[np.ndarray] = []  # the non-integer values of the first max_rows rows
    row_sums = np.empty(X.shape[0], dtype=np.float64)
    fractional = np.zeros(X.shape[0], dtype=bool)  # per row: holds a finite non-whole value
    row_value = np.empty(X.shape[0], dtype=np.float64)  # per row: its first non-whole value, else its largest
    acc = None
    for start, stop, block in iter_row_blocks(X, block_size, prefetch=True):
        is_sparse = sparse.issparse(block)
        data = block.data if is_sparse else block.ravel()
        n_bad = int(np.count_nonzero(~np.isfinite(data)))
        if n_bad:
            n_nan += int(np.isnan(data).sum())
            n_inf += n_bad - int(np.isnan(data).sum())
        n_neg += int(np.count_nonzero(data < 0))
        finite = data[np.isfinite(data)] if n_bad else data
        if finite.size:
            vmax = max(vmax, float(finite.max()))
        fractional[start:stop], row_value[start:stop] = row_kinds(block)
        if start < max_rows and not non_integer:
            head = min(stop, max_rows) - start  # integrality of the first max_rows rows only
            non_integer = bool(fractional[start : start + head].any())
            if non_integer:
                part = block.data[: block.indptr[head]] if is_sparse else np.asarray(block[:head]).ravel()
                head_values.append(part[np.isfinite(part)] if n_bad else part)
        if moments and start == 0 and is_sparse:
            acc = SparseMoments(X.shape[0], X.shape[1], accumulation_dtype(X))
        if acc is not None and stop >= min(max_rows, X.shape[0]) and not non_integer:
            acc = None  # integer values: raw counts, whose statistics are computed after normalisation
        if acc is not None:
            with np.errstate(over="ignore"):
                acc.add(block)
        row_sums[start:stop] = np.asarray(block.sum(axis=1, dtype=np.float64)).ravel()
    return {
        "n_nan": n_nan,
        "n_inf": n_inf,
        "n_negative": n_neg,
        "max": vmax,
        "integer": not non_integer,
        "log1p_counts": non_integer and _are_log1p_counts(head_values),
        "empty_rows": np.flatnonzero(row_sums == 0),
        "row_sums": row_sums,
        "fractional_rows": fractional,
        "row_value": row_value,
        "moments": acc,
    }


def _are_log1p_counts(parts: list[np.ndarray]) -> bool:
    """Whether non-integer values are ``log1p`` of counts: ``expm1`` of each is an integer (to float32 precision).

    At least three distinct counts are asked for; values normalised per cell (``normalize_total``, scran, ...)
    are almost never within that distance of ``log1p`` of an integer.
    """
    values = np.concatenate(parts).astype(np.float64) if parts else np.zeros(0)
    values = values[np.isfinite(values)]
    if values.size == 0 or values.min() < 0 or values.max() > LOG_MAX:
        return False
    counts = np.expm1(values)
    rounded = np.rint(counts)
    # float32 keeps log1p(k) to about 1.2e-7 relative: expm1 of it is then within ~(k + 1) * 1e-6 of k
    close = np.abs(counts - rounded) <= 1e-5 * (rounded + 1)
    return bool(close.all() and len(np.unique(rounded[:100_000])) >= 3)


#: cells whose expression sums make up the fingerprint of the scored matrix (data_fingerprint)
_FINGERPRINT_ROWS = 1_000


def _sums(block, axis: int) -> np.ndarray:
    """float64 sums of a row block along ``axis`` (1: per cell, 0: per gene)."""
    return np.asarray(block.sum(axis=axis, dtype=np.float64)).ravel()


def data_fingerprint(adata: AnnData, X) -> tuple[dict, np.ndarray]:
    """What :func:`psysc.tl.score_disorders` checks before it uses the statistics of :func:`prepare_scoring`.

    The numbers of cells and genes, and the names, expression sums and smallest value of the first 1,000 cells in
    the matrix scored (``X``), which change when the values are changed in place (``sc.pp.scale``, another
    normalisation); and, returned beside it for ``var``, each gene's sum over those cells, which a subset of the
    genes keeps.
    """
    k = min(_FINGERPRINT_ROWS, adata.n_obs)
    head = head_rows(X, k)
    return {
        "n_obs": int(adata.n_obs),
        "n_vars": int(adata.n_vars),
        "cells": [str(c) for c in adata.obs_names[:k]],
        "row_sums": [float(v) for v in _sums(head, 1)],
        "min": float(head.min()) if head.shape[0] and head.shape[1] else 0.0,
    }, _sums(head, 0)


def _fingerprint_rows(adata: AnnData, X, cells: list[str]):
    """``(rows, how)``: the rows of ``X`` of the named cells and how they were found.

    ``how`` is ``"by name"`` (read from the head of ``X`` when they are its first cells, else gathered, from
    in-memory matrices only), ``"by position"`` (the first rows: some or all of the names are gone, renamed cells
    or cells replaced by others, or the names recorded repeat and today's do not, so they cannot name rows) or
    ``"not found"`` (rows ``None``: the cells are there but cannot be gathered, from a backed or dask matrix, or
    today's names repeat).
    """
    k = len(cells)  # at least 2: prepare_scoring needs 2 cells
    if (adata.obs_names[:k].astype(str) == np.asarray(cells, dtype=str)).all():
        return head_rows(X, k), "by name"
    if len(set(cells)) < k:  # the names recorded repeat: rows by position once the names are unique
        return (head_rows(X, k), "by position") if adata.obs_names.is_unique else (None, "not found")
    if not pd.Index(cells).isin(adata.obs_names.astype(str)).all():
        return head_rows(X, k), "by position"
    if not adata.obs_names.is_unique or not (isinstance(X, np.ndarray) or sparse.issparse(X)):
        return None, "not found"
    return X[adata.obs_names.get_indexer(cells)], "by name"


def _differ(now: np.ndarray, then: np.ndarray) -> bool:
    scale = float(np.abs(then).mean()) if then.size else 0.0
    return not np.allclose(now, then, rtol=1e-5, atol=1e-6 * scale)


def check_fingerprint(adata: AnnData, X, stored: dict | None, *, key_added: str, matrix: str) -> None:
    """Refuse to score data other than the data :func:`prepare_scoring` computed its statistics on.

    The gene statistics are means and variances over the cells: scoring a subset of the cells, or values changed
    since, with them is wrong. What leaves them valid is accepted: reordered or renamed cells (renamed ones are
    compared by position), renamed genes, and a subset of the genes (each gene keeps its own statistics; its sum
    over the fingerprint's cells, ``var[f"{key_added}_head_sum"]``, checks its values). ``stored``:
    ``uns[key_added]["prepare_scoring"]["data"]`` (absent for data prepared by an older psysc: nothing is
    checked). ``matrix`` names the matrix scored, for the message.
    """
    if not stored:
        return
    again = f"Run psysc.pp.prepare_scoring(adata, key_added={key_added!r}) again on this AnnData, then score it."
    if int(stored["n_obs"]) != adata.n_obs:
        raise ValueError(
            f"adata's cells are not the cells psysc.pp.prepare_scoring computed the gene statistics on "
            f"({int(stored['n_obs']):,} cells then, {adata.n_obs:,} now: subset or concatenated since). {again}"
        )
    rows, how = _fingerprint_rows(adata, X, [str(c) for c in stored["cells"]])
    if rows is None:
        logger.info("the cells of the fingerprint of the prepared data could not be gathered (reordered cells of a "
                    "backed or dask matrix, or cell names that are not unique): the values are not checked")
        return
    renamed = how == "by position"
    gene_sums = adata.var.get(f"{key_added}_head_sum")
    if int(stored["n_vars"]) == adata.n_vars:
        changed = _differ(_sums(rows, 1), np.asarray(stored["row_sums"], dtype=np.float64))
    elif gene_sums is not None:  # a subset of the genes: the cells' sums differ, each gene's own do not
        changed = _differ(_sums(rows, 0), gene_sums.to_numpy(dtype=np.float64))
    else:
        changed = False
    rows_min = float(rows.min()) if rows.shape[1] else 0.0
    # negative values the prepared data did not have: scaled, and preparing it again cannot help (a fingerprint
    # of an earlier psysc holds no smallest value: then, as then, negative values that changed)
    was_non_negative = float(stored["min"]) >= 0 if "min" in stored else changed
    if rows_min < 0 and was_non_negative:
        raise ValueError(
            f"{matrix}, the expression psysc.pp.prepare_scoring computed the gene statistics on, has been "
            "scaled or centred since (it now holds negative values; sc.pp.scale?): psysc scores log-normalised "
            "expression. Prepare and score a layer that keeps it (adata.layers['log'] = adata.X.copy() before "
            "scaling, then layer='log' in psysc.pp.prepare_scoring), or the raw counts (layer='counts'), or "
            "adata.raw.to_adata() where scanpy kept the log-normalised values."
        )
    if changed:
        note = (" (cells were renamed or replaced by others since, or renamed and reordered: the first cells "
                "were compared by position)" if renamed else "")
        raise ValueError(
            f"{matrix}, the expression psysc.pp.prepare_scoring computed the gene statistics on, has changed "
            f"since (e.g. another normalisation in place){note}. {again}"
        )


def _same_statistics(adata: AnnData, key: str, stats: dict) -> bool:
    """Whether ``adata.var`` already holds these gene statistics under ``key`` (a preparation run again alike)."""
    for name, new in stats.items():
        old = adata.var.get(f"{key}_{name}")
        if old is None:
            return False
        if name == "mean_var":
            if not np.array_equal(old.astype(str).to_numpy(), np.asarray(new).astype(str)):
                return False
        elif not np.allclose(old.to_numpy(dtype=np.float64), np.asarray(new, dtype=np.float64), rtol=1e-6, atol=0.0,
                             equal_nan=True):
            return False
    return True


def _traits_scored_with(adata: AnnData, key: str) -> list[str]:
    """The traits in ``adata`` scored with the statistics of ``prepare_scoring(key_added=key)``, under any key."""
    out = []
    for ns_key, ns in adata.uns.items():
        if not isinstance(ns, dict) or not isinstance(ns.get("score_disorders"), dict):
            continue
        params = dict(ns["score_disorders"].get("params_by_trait", {}))
        for trait in ns["score_disorders"].get("traits", []):
            used = dict(params.get(trait, {})).get("prepare_key", ns_key)
            if used == key:
                out.append(str(trait) if ns_key == key else f"{trait} (key {ns_key!r})")
    return out


#: log-normalised values stay far below this (log1p of 10,000 counts per cell is 9.2); larger ones are counts
LOG_MAX = 50


def reads_as_counts(info: dict, normalize) -> bool:
    """Whether :func:`prepare_scoring` normalises the values :func:`inspect_values` describes as counts.

    Integers always; with ``normalize=True`` (counts as the user says: EM-quantified or denoised counts are not
    integers) also non-integer values reaching above :data:`LOG_MAX`, as smaller ones look log-normalised.
    """
    return bool(info["integer"] or (normalize is True and info["max"] > LOG_MAX))


def mixed_rows_error(info: dict, where: str, normalize, obs_names: pd.Index) -> str | None:
    """The error for a matrix whose cells mix raw counts and other values (from :func:`inspect_values`), or ``None``.

    Raw counts: cells of whole numbers only, some above :data:`LOG_MAX` where the first cells read as log-normalised.
    ``normalize=True`` or ``False`` (the user says what the values are) asks nothing.
    """
    if normalize is True or normalize is False:  # the values are what the user says
        return None
    nonempty = np.ones(len(obs_names), dtype=bool)
    nonempty[info["empty_rows"]] = False
    fractional = info["fractional_rows"] & nonempty
    counts = ~info["fractional_rows"] & nonempty
    if not info["integer"]:
        counts &= info["row_value"] > LOG_MAX  # whole numbers that cannot be log-normalised values
    if not fractional.any() or not counts.any():
        return None
    i, j = np.flatnonzero(counts)[0], np.flatnonzero(fractional)[0]
    return (
        f"{where} mixes raw counts and other values: {int(counts.sum())} cells hold whole numbers only (raw counts, "
        f"e.g. cell {obs_names[i]!r}, up to {info['row_value'][i]:.0f}) and {int(fractional.sum())} cells non-whole "
        f"values (e.g. {info['row_value'][j]:.6g} in cell {obs_names[j]!r}). Were raw and normalised cells "
        "concatenated? Give every cell the same kind of values (e.g. the raw counts of all cells, layer='counts'); "
        "for non-integer counts (EM-quantified) pass normalize=True."
    )


class NegativeValuesError(ValueError):
    """Expression with negative values (scaled or centred), refused by :func:`check_expression`.

    Its own class, so that a caller with other fixes to offer (the command line) can tell it from the others.
    """


def check_expression(adata: AnnData, X, where: str, *, allow_negative: bool = False, max_rows: int = 2_000,
                     min_cells: int = 2, moments: bool = False) -> dict:
    """Refuse data psysc cannot score and describe what it is (:func:`inspect_values`, integrality on ``max_rows``).

    ``min_cells``: scoring needs 2 (gene variances); writing normalised counts, 1.
    """
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise ValueError(f"{where} is empty ({adata.n_obs} cells x {adata.n_vars} genes).")
    if adata.n_obs < min_cells:
        raise ValueError(f"{where} has {adata.n_obs} cell: gene variances, and so disease scores, need at least 2 "
                         "cells (in practice hundreds)")
    if X is None:
        raise ValueError(f"{where} is None: put the expression in adata.X or name the layer that holds it (layer=...); "
                         f"layers: {list(adata.layers)}")
    check_unique_var_names(adata, "before scoring")
    info = inspect_values(X, max_rows=max_rows, moments=moments)
    if info["n_nan"] or info["n_inf"]:
        raise ValueError(
            f"{where} holds {info['n_nan']} NaN and {info['n_inf']} infinite values. psysc needs finite expression: "
            "fill or remove them (e.g. adata.X = np.nan_to_num(adata.X)) or choose another layer."
        )
    if info["n_negative"] and not allow_negative:
        raise NegativeValuesError(
            f"{where} holds {info['n_negative']} negative values: it looks scaled or centred (sc.pp.scale?). "
            "Pass raw counts or log-normalised values (layer=...; scanpy keeps the log-normalised values in "
            "adata.raw when it was set before scaling: adata.raw.to_adata()); if it is log-normalised data with "
            "covariates regressed out, pass normalize=False (or give the covariates to prepare_scoring instead)."
        )
    if info["n_negative"]:
        logger.warning("%s holds %d negative values; used as given (normalize=False)", where, info["n_negative"])
    return info


@reports_cells_read("prepare_scoring (cells read, every pass)")
def prepare_scoring(
    adata: AnnData,
    *,
    layer: str | None = None,
    normalize: bool | str = "auto",
    target_sum: float = 1e4,
    covariates: pd.DataFrame | str | Sequence[str] | None = None,
    n_mean_bin: int = 20,
    n_var_bin: int = 20,
    key_added: str = "psysc",
    copy: bool = False,
) -> AnnData | None:
    """Prepare expression data for disease scoring (scDRS preprocessing).

    1. Raw counts are detected (integer values) and normalised: size factors to ``target_sum`` counts
       per cell, then ``log1p`` (``scanpy.pp.normalize_total`` + ``scanpy.pp.log1p``), into
       ``adata.layers[f"{key_added}_norm"]`` (in memory; counts in a backed h5ad or a dask array are read block
       by block). Log-normalised input is used as it is, read block by block when backed (the way to score
       data larger than memory: write the log-normalised matrix to the h5ad and open it backed).
    2. Per gene: mean and variance of log expression, mean and variance on the count scale
       (``expm1``), the technical variance from the count-scale mean-variance trend (loess), and
       ``n_mean_bin`` x ``n_var_bin`` mean-variance bins used to match control genes.

    Parameters
    ----------
    adata
        Cells x genes; gene names in ``var_names`` must be unique.
    layer
        Layer with the expression to use (default ``adata.X``).
    normalize
        ``"auto"``: normalise when the values are raw counts (integers); ``True``: the values are counts,
        normalised here, integer or not (EM-quantified or denoised counts; values no larger than 50 that are not
        integers look log-normalised and are refused); ``False``: the values must already be log-normalised.
    target_sum
        Counts per cell after size-factor normalisation.
    covariates
        Cells x covariates (e.g. sequencing depth, sex, age, batch), indexed by ``obs_names``, or the names of
        columns of ``adata.obs`` (``"n_counts"``, ``["n_counts", "batch"]``, as ``sc.pp.regress_out`` takes
        keys); categorical columns become indicators and a constant is added (unless the columns span one
        exactly). scDRS 1.0.2 adds the constant only when a column of
        ones regressed on the covariates leaves a mean squared residual above 0.01, so it leaves it out for a
        single covariate whose coefficient of variation is below about 10 % (e.g. the log library size alone),
        and its scores then differ from psysc's (see the design notes). Their effect is regressed out of every gene
        (residuals plus the gene mean) implicitly: the data stay sparse and the correction is applied
        to the statistics and, as a low-rank term, to the scores.
    n_mean_bin, n_var_bin
        Bins of mean expression, and of variance within each mean bin (scDRS uses 20 x 20). As in scDRS, when
        either is larger than ``floor(sqrt(n_genes / 10))`` (fewer than 4,000 genes for 20), both become that
        number (logged).
    key_added
        Prefix of the written keys.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    anndata.AnnData or None
        ``None`` (or the copy), and writes

        - ``adata.layers[f"{key_added}_norm"]``: log-normalised expression (when normalised here);
        - ``adata.var[f"{key_added}_{stat}"]`` for stat in mean, var, var_tech, ct_mean, ct_var, ct_var_tech, mean_var;
        - ``adata.uns[key_added]["prepare_scoring"]``: parameters and what was done; under ``"data"`` the numbers
          of cells and genes and the expression sums of the first 1,000 cells, and in
          ``adata.var[f"{key_added}_head_sum"]`` each gene's sum over those cells, by which
          :func:`psysc.tl.score_disorders` refuses data changed since (a subset of the cells, values changed in
          place, also after a subset of the genes) and accepts what leaves the statistics valid (reordered or renamed
          cells and genes, a subset of the genes).

    Examples
    --------
    >>> import psysc
    >>> adata = psysc.datasets.darmanis2015()
    >>> psysc.pp.prepare_scoring(adata)
    >>> adata.var[["psysc_mean", "psysc_var_tech", "psysc_mean_var"]].head()  # doctest: +SKIP

    """
    check_anndata(adata, writes=True, instead=None)  # it writes into adata, or into a copy of it
    covariates_given = covariates  # as the call gave them (for a message)
    if normalize not in ("auto", True, False):
        raise ValueError(f"normalize must be 'auto', True or False, not {normalize!r}")
    target_sum = _checked_target_sum(target_sum)
    n_mean_bin = whole_number("n_mean_bin", n_mean_bin, 1, " (bins of mean expression)")
    n_var_bin = whole_number("n_var_bin", n_var_bin, 1, " (bins of variance within a mean bin)")
    adata = adata.copy() if copy else adata
    where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
    X = get_matrix(adata, layer)
    # one pass over the data checks it and, for log-normalised input without covariates, gives the gene statistics
    info = check_expression(adata, X, where, allow_negative=normalize is False, moments=covariates is None)
    mixed = mixed_rows_error(info, where, normalize, adata.obs_names)
    if mixed:
        raise ValueError(mixed)
    is_counts = reads_as_counts(info, normalize)
    from_log1p = not is_counts and info["log1p_counts"]  # log1p(counts), not normalised per cell
    if from_log1p:
        if normalize is False:
            logger.warning("%s holds log1p of raw counts that were not normalised per cell (expm1 gives integers); "
                           "used as given (normalize=False): the scores then follow library size", where)
            from_log1p = False
        else:
            logger.warning("%s holds log1p of raw counts that were not normalised per cell (expm1 gives integers): "
                           "the counts (expm1) are normalised to %g per cell and log1p, as raw counts are. Run "
                           "sc.pp.normalize_total before sc.pp.log1p, or pass the raw counts, to avoid this message",
                           where, target_sum)
            is_counts = True
    if normalize is True and not is_counts:
        raise ValueError(
            f"{where} holds non-integer values up to {info['max']:.3g}, so it is not raw counts: it looks "
            "log-normalised. Pass the raw counts (layer='counts'?), or normalize=False (or 'auto') to use these "
            "values as they are."
        )
    if normalize is False and is_counts and info["max"] > LOG_MAX:
        raise ValueError(
            f"{where} looks like raw counts (integer values up to {info['max']:.0f}), but normalize=False. "
            "Scoring un-normalised counts is wrong: use normalize='auto' or pass the log-normalised layer."
        )
    if not is_counts and info["max"] > LOG_MAX:
        raise ValueError(
            f"{where} is not integer but reaches {info['max']:.1f}: it is not log-normalised. Non-integer counts "
            "(EM-quantified, e.g. alevin-fry or RSEM, or denoised, e.g. CellBender): pass normalize=True to "
            "normalise them as counts. Normalised but not log-transformed values (CPM/TPM): pass the raw counts "
            "(layer='counts'?), or log-transform them first (sc.pp.log1p)."
        )
    log1p = adata.uns.get("log1p")  # scanpy's record of sc.pp.log1p: its base, None for e
    base = log1p.get("base") if isinstance(log1p, dict) else None
    if not is_counts and base is not None and not np.isclose(float(base), np.e):
        logger.warning("adata.uns['log1p'] records sc.pp.log1p(base=%g): %s holds log%g(1 + x), not the natural "
                       "log1p that scDRS's statistics assume, so the scores differ from scDRS's. Pass the raw counts "
                       "(layer='counts'?) to normalise them here, or log-transform with sc.pp.log1p(adata) (no base)",
                       float(base), where, float(base))
    design = None
    keys = _obs_columns(covariates)  # columns of adata.obs, as scanpy's regress_out takes them
    if keys is not None:
        unknown = [k for k in keys if k not in adata.obs.columns]
        if unknown:
            raise KeyError(f"covariates {unknown} are not columns of adata.obs; columns: {list(adata.obs.columns)}")
        covariates = adata.obs[keys]
    if covariates is not None:  # checked before adata is changed: a refused call leaves it as it was
        design = cov_design_matrix(covariates, adata.obs_names)
    n_empty = len(info["empty_rows"])
    if n_empty:
        logger.warning(
            "%d of %d cells have no detected expression; they are kept and will get the lowest score (p = 1). "
            "Filter them first (sc.pp.filter_cells(adata, min_genes=...)) to drop them.",
            n_empty,
            adata.n_obs,
        )
    norm_layer = layer
    Xn = X
    if is_counts and normalize in ("auto", True):
        logger.info("%s holds raw counts: normalising to %g counts per cell and log1p", where, target_sum)
        _check_layer_fits(X, where, write_normalized_code(layer=layer, target_sum=target_sum, key_added=key_added,
                                                          covariates=covariates_given))
        norm_layer = f"{key_added}_norm"
        Xn = _log_normalise(X, target_sum, from_log1p)

    # computed first, written into adata at the end (an error on the way leaves adata as it was)
    cov_names: list[str] = []
    n_cov_filled = 0
    cov_results = None
    if design is not None:
        n_cov_filled = int(design.attrs.get("n_cells_filled", 0))
        C = design.to_numpy()
        beta, gene_mean = cov_fit(Xn, C)
        mean, var = corrected_mean_var(Xn, C, beta, gene_mean)
        ct_mean, ct_var = corrected_mean_var(Xn, C, beta, gene_mean, expm1=True)
        cov_results = (C, beta, gene_mean)
        cov_names = [str(c) for c in design.columns]
    elif info["moments"] is not None and norm_layer is layer:  # the statistics of this pass's data
        mean, var = info["moments"].result("log")
        ct_mean, ct_var = info["moments"].result("expm1")
    else:
        mean, var = gene_mean_var(Xn)
        ct_mean, ct_var = gene_mean_var(Xn, expm1=True)
    ct_var_tech, var_tech = technical_variance(mean, var, ct_mean, ct_var)
    bins, n_mean_used, n_var_used = mean_var_bins(mean, var, n_mean_bin=n_mean_bin, n_var_bin=n_var_bin)
    if (n_mean_used, n_var_used) != (n_mean_bin, n_var_bin):
        logger.info("%d genes: using %d x %d mean-variance bins (at most floor(sqrt(n_genes / 10)) of each, as in "
                    "scDRS), not %d x %d", adata.n_vars, n_mean_used, n_var_used, n_mean_bin, n_var_bin)
    stats = {
        "mean": mean,
        "var": var,
        "var_tech": var_tech,
        "ct_mean": ct_mean,
        "ct_var": ct_var,
        "ct_var_tech": ct_var_tech,
        "mean_var": bins,
    }
    fingerprint, head_sum = data_fingerprint(adata, Xn)

    if norm_layer != layer:
        adata.layers[norm_layer] = Xn
        logger.info("added layers[%r]", norm_layer)
    adata.obsm.pop(f"{key_added}_covariates", None)
    adata.varm.pop(f"{key_added}_cov_beta", None)
    if cov_results is not None:
        C, beta, gene_mean = cov_results
        adata.obsm[f"{key_added}_covariates"] = C
        adata.varm[f"{key_added}_cov_beta"] = beta.T
        adata.var[f"{key_added}_cov_gene_mean"] = gene_mean
        logger.info("regressed out %d covariate columns: %s", len(cov_names), ", ".join(cov_names))
    same_stats = _same_statistics(adata, key_added, stats)
    for name in GENE_STAT_COLUMNS:
        adata.var[f"{key_added}_{name}"] = stats[name]
    adata.var[f"{key_added}_head_sum"] = head_sum
    from .. import __version__

    ns = uns_namespace(adata, key_added)
    scored = _traits_scored_with(adata, key_added)
    # which gene statistics scores rest on: the same statistics keep their id, so earlier scores stay valid
    earlier_id = dict(ns.get("prepare_scoring", {})).get("stats_id")
    stats_id = earlier_id if same_stats and earlier_id else uuid.uuid4().hex
    if scored and not same_stats:
        logger.warning(
            "adata holds scores of %s from an earlier psysc.pp.prepare_scoring(key_added=%r): they rest on the gene "
            "statistics of then (other cells?), not on these; score them again (psysc.tl.score_disorders) before "
            "testing them together with traits scored from now on", ", ".join(scored), key_added,
        )
    ns["prepare_scoring"] = {
        "covariates": cov_names,
        "layer": norm_layer if norm_layer is not None else "X",
        "input": where,
        "normalized_here": bool(is_counts and normalize in ("auto", True)),
        "counts_from_log1p": bool(from_log1p),
        "target_sum": float(target_sum),
        "n_mean_bin": int(n_mean_used),
        "n_var_bin": int(n_var_used),
        "n_empty_cells": int(n_empty),
        "n_cells_covariates_filled": n_cov_filled,
        "data": fingerprint,
        "stats_id": stats_id,
        "psysc_version": __version__,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    logger.info("added var[%s_*] gene statistics and uns[%r]['prepare_scoring']", key_added, key_added)
    return adata if copy else None
