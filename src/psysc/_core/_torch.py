"""The scoring kernels in torch, for CUDA devices (also runs on torch's CPU backend).

The steps of the compiled CPU kernels: ``X @ W`` per trait (cuSPARSE SpMM on CUDA; control scores in the
requested precision, disease scores in float64 as on the CPU), background correction, per-cell and pooled
Monte Carlo p-values (the pooled null is binned among the sorted disease scores, never sorted itself). TF32 is
switched off for the products, so float32 runs stay at float32 accuracy.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import sparse

from ._blocks import iter_row_blocks
from ._memory import fresh_zeros
from ._scoring import rounded_queries, warn_flat_cells


def cuda_available() -> bool:
    """True when torch is installed and sees a CUDA device (without importing torch otherwise)."""
    import importlib.util
    import os

    if importlib.util.find_spec("torch") is None:
        return False
    if not (os.path.exists("/dev/nvidiactl") or os.environ.get("CUDA_VISIBLE_DEVICES")):
        return False
    import torch

    return bool(torch.cuda.is_available())


def resolve_device(device: str | None) -> str:
    """``"auto"`` -> ``"cuda"`` when available else ``"cpu"``; checks that a requested CUDA device exists."""
    from .._settings import settings

    device = settings.device if device is None else device
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    if str(device).startswith("cuda"):
        try:
            import torch
        except ImportError as err:
            raise ImportError("device='cuda' needs torch: pip install 'psysc[torch]'") from err
        if not torch.cuda.is_available():
            raise RuntimeError(f"device={device!r} was requested but torch sees no CUDA device; use device='cpu'")
        index = str(device).partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise ValueError(f"device={device!r}: torch sees {torch.cuda.device_count()} CUDA device(s), "
                             f"'cuda:0' to 'cuda:{torch.cuda.device_count() - 1}'")
    elif device not in ("cpu", "torch-cpu"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', not {device!r}")
    return str(device)


#: the most bytes of dense control weights (all traits together) that :func:`raw_scores_torch` keeps on the device
#: (2 GiB: 26 traits of 20,000 genes x 1,000 control sets in float32); more traits: sparse, made dense block by block
DENSE_WEIGHTS_BYTES = 2**31


def _csr_tensor(crow, col, values, shape):
    """A torch sparse CSR tensor from its arrays (already on the device), without torch's beta-support warning."""
    import torch

    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, size=shape)


def raw_scores_torch(X, W: sparse.csr_matrix, n_ctrl: int, *, dtype, device: str, block_size: int = 20_000,
                     progress=None):
    """Torch version of :func:`psysc._core._scoring.raw_scores`; results come back as NumPy arrays.

    Control scores are computed in ``dtype``, disease scores in float64 (as on the CPU), from row blocks of
    ``block_size`` cells. TF32 is switched off for the products, whatever the session's setting. Each trait's
    control weights are multiplied as a dense genes x sets matrix: they stay on the device, dense, while all traits'
    fit in :data:`DENSE_WEIGHTS_BYTES`; beyond that each trait's is kept sparse there and made dense for each block
    in turn (one dense matrix on the device at a time).
    """
    import torch

    dev = torch.device("cpu" if device == "torch-cpu" else device)
    tdtype = torch.float64 if np.dtype(dtype) == np.float64 else torch.float32
    n_genes = X.shape[1]
    n_traits = W.shape[0] // n_genes
    W = sparse.csr_matrix(W)
    keep_dense = n_traits * n_genes * n_ctrl * (8 if tdtype == torch.float64 else 4) <= DENSE_WEIGHTS_BYTES
    weights = []
    for t in range(n_traits):
        w = W[t * n_genes : (t + 1) * n_genes, 1:]
        if keep_dense:
            weights.append(torch.from_numpy(w.toarray()).to(device=dev, dtype=tdtype))
            continue
        weights.append(_csr_tensor(torch.from_numpy(w.indptr.astype(np.int64)).to(dev),
                                   torch.from_numpy(w.indices.astype(np.int64)).to(dev),
                                   torch.from_numpy(w.data).to(device=dev, dtype=tdtype), w.shape))
    # the disease weights of every trait side by side (genes x traits), and those of the genes in some disease set
    dis_w = np.column_stack([W[t * n_genes : (t + 1) * n_genes, 0].toarray().ravel() for t in range(n_traits)])
    dis_genes = np.flatnonzero((dis_w != 0).any(axis=1))
    dis_w_all = torch.from_numpy(dis_w).to(device=dev, dtype=torch.float64)
    dis_cols = torch.from_numpy(dis_genes).to(dev)
    dis_w_used = dis_w_all[dis_cols]
    dis = np.zeros((n_traits, X.shape[0]), dtype=np.float64)
    ctrl = fresh_zeros((n_traits, X.shape[0], n_ctrl), dtype)
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")  # no TF32, whatever the session asked for
    try:
        for start, stop, block in iter_row_blocks(X, block_size):
            if sparse.issparse(block):
                # 32-bit indices where they fit (cuSPARSE takes them; half the bytes to copy and move)
                index = np.int32 if max(block.nnz, block.shape[1]) < 2**31 else np.int64
                crow = torch.from_numpy(block.indptr.astype(index, copy=False)).to(dev)
                col = torch.from_numpy(block.indices.astype(index, copy=False)).to(dev)
                values = torch.from_numpy(block.data).to(dev)
                xb = _csr_tensor(crow, col, values.to(tdtype), block.shape)
                x64 = _csr_tensor(crow, col, values.to(torch.float64), block.shape)
                with warnings.catch_warnings():  # "sparse CSR support is in beta"
                    warnings.simplefilter("ignore", UserWarning)
                    dis_block = x64 @ dis_w_all
                del x64
            else:
                xb = torch.from_numpy(np.asarray(block)).to(device=dev)
                dis_block = xb[:, dis_cols].to(torch.float64) @ dis_w_used
                xb = xb.to(tdtype)
            dis[:, start:stop] = dis_block.cpu().numpy().T
            for t in range(n_traits):
                w = weights[t] if keep_dense else weights[t].to_dense()
                ctrl[t, start:stop] = (xb @ w).cpu().numpy()
                del w
            if progress is not None:
                progress(stop - start)
    finally:
        torch.set_float32_matmul_precision(precision)
    return dis, ctrl


#: control scores handled at a time by :func:`correct_and_test_torch` (its float64 temporaries: 8 bytes each)
_CHUNK_ELEMENTS = 2**26


def correct_and_test_torch(raw: np.ndarray, ctrl: np.ndarray, var_ratio: np.ndarray, *, device: str,
                           trait: str = "trait", chunk_rows: int | None = None):
    """Background correction and Monte Carlo p-values in torch; ``ctrl`` is overwritten with the result.

    The same steps and roundings as :func:`psysc._core._scoring.correct_background` and
    :func:`psysc._core._scoring.monte_carlo_pvalues`, cells without spread among their control scores included.
    The control scores stay on the device in their own precision (4 GB for a million cells and 1,000 control sets
    in float32); the float64 arithmetic runs on ``chunk_rows`` cells at a time (by default 2**26 values: 0.5 GB of
    temporaries), so the device needs little more memory than the control scores themselves.
    Returns ``norm, mc_pval, pval`` (float64 NumPy arrays).
    """
    import torch

    dev = torch.device("cpu" if device == "torch-cpu" else device)
    f64 = torch.float64
    r = torch.from_numpy(np.asarray(raw, dtype=np.float64)).to(dev)
    c = torch.from_numpy(ctrl).to(dev)
    n, b = c.shape
    step = max(1, _CHUNK_ELEMENTS // max(b, 1)) if chunk_rows is None else int(chunk_rows)
    parts = [slice(i, min(n, i + step)) for i in range(0, n, step)]
    scale = torch.from_numpy(np.sqrt(np.asarray(var_ratio, dtype=np.float64))).to(dev)
    zero_r = r == 0
    # 1. centre the controls across cells, scale by the variance ratio; centre the disease scores
    col_mean = sum(c[p].sum(dim=0, dtype=f64) for p in parts) / n
    r = r - r.mean()
    # 2. standardise each cell by its controls' mean and sd (ddof 0), in float64 from the stored values; the
    # controls that were exactly 0 are marked NaN (their final score is the lowest); flat cells: norm NaN
    norm = torch.empty(n, dtype=f64, device=dev)
    flat = torch.empty(n, dtype=torch.bool, device=dev)
    col_sum = torch.zeros(b, dtype=f64, device=dev)
    col_min = torch.full((b,), float("inf"), dtype=f64, device=dev)
    for p in parts:
        zero = c[p] == 0
        x = ((c[p].to(f64) - col_mean) / scale).to(c.dtype).to(f64)
        mu = x.mean(dim=1)
        sd = x.std(dim=1, correction=0)
        fl = ~(sd > 0)
        sd = torch.where(fl, torch.ones_like(sd), sd)
        x = ((x - mu[:, None]) / sd[:, None]).to(c.dtype)
        x[fl] = 0
        norm[p] = torch.where(fl, torch.full_like(mu, float("nan")), (r[p] - mu) / sd)
        flat[p] = fl
        x64 = x.to(f64)
        col_sum += x64.sum(dim=0)
        col_min = torch.minimum(col_min, torch.where(fl[:, None], float("inf"), x64).amin(dim=0))
        x[zero] = float("nan")
        c[p] = x
    n_flat = int(flat.sum())
    # 3. centre again; 4. the lowest score for zero raw scores (less 1e-3), zero controls and flat cells
    shift = torch.zeros(b, dtype=f64, device=dev)
    if n_flat == n:
        lowest = 0.0
    else:
        norm = norm - torch.nanmean(norm)
        shift = col_sum / (n - n_flat)
        lowest_ctrl = float((col_min - shift).to(c.dtype).min())
        lowest = min(float(norm[~flat].min()), lowest_ctrl)
    norm[zero_r] = lowest - 1e-3
    finite = ~torch.isnan(norm)
    if n_flat:
        warn_flat_cells(trait, n_flat, n, int((~finite).sum()))
    # the final control scores, the per-cell counts (norm NaN: none) and the pooled histogram: a null value v with
    # j queries <= v counts for the queries at sorted positions 0..j-1; for a float32 null the queries are rounded
    # up to float32 (q <= v exactly when the rounded q <= v), as on the CPU
    q = norm[finite]
    sorted_q, order = torch.sort(q)
    q_up = torch.from_numpy(rounded_queries(sorted_q.cpu().numpy(), ctrl.dtype)).to(dev)
    hist = torch.zeros(q.numel() + 1, dtype=torch.int64, device=dev)
    counts = torch.zeros(n, dtype=torch.int64, device=dev)
    for p in parts:
        x = (c[p].to(f64) - shift).to(c.dtype)
        x = torch.where(torch.isnan(x) | flat[p][:, None], torch.tensor(lowest, dtype=c.dtype, device=dev), x)
        c[p] = x
        counts[p] = (x.to(f64) >= norm[p][:, None]).sum(dim=1)
        if q.numel():
            hist += torch.bincount(torch.searchsorted(q_up, x.reshape(-1), right=True), minlength=q.numel() + 1)
    mc = (1.0 + counts.to(f64)) / (1.0 + b)
    mc[~finite] = 1.0
    pooled = torch.ones(n, dtype=f64, device=dev)
    if q.numel():
        ge = torch.flip(torch.cumsum(torch.flip(hist, [0]), 0), [0])[1:]
        pooled_q = torch.empty(q.numel(), dtype=f64, device=dev)
        pooled_q[order] = (1.0 + ge.to(f64)) / (1.0 + n * b)
        pooled[finite] = pooled_q
    ctrl[...] = c.cpu().numpy()
    return norm.cpu().numpy(), mc.cpu().numpy(), pooled.cpu().numpy()
