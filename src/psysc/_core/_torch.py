"""The scoring kernels in torch, for CUDA devices (also runs on torch's CPU backend).

Same arithmetic as the compiled CPU kernels: ``X @ W`` per trait (cuSPARSE SpMM on CUDA), background
correction, per-cell and pooled Monte Carlo p-values (the pooled null is binned among the sorted
disease scores, never sorted itself). TF32 is not used, so float32 runs stay at float32 accuracy.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import sparse

from ._blocks import iter_row_blocks
from ._memory import fresh_zeros
from ._scoring import warn_flat_cells


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
    elif device not in ("cpu", "torch-cpu"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', not {device!r}")
    return str(device)


def raw_scores_torch(X, W: sparse.csr_matrix, n_ctrl: int, *, dtype, device: str, block_size: int = 50_000,
                     progress=None):
    """Torch version of :func:`psysc._core._scoring.raw_scores`; results come back as NumPy arrays."""
    import torch

    dev = torch.device("cpu" if device == "torch-cpu" else device)
    tdtype = torch.float64 if np.dtype(dtype) == np.float64 else torch.float32
    n_genes = X.shape[1]
    n_traits = W.shape[0] // n_genes
    W = sparse.csr_matrix(W)
    weights = [
        torch.from_numpy(W[t * n_genes : (t + 1) * n_genes].toarray()).to(device=dev, dtype=tdtype)
        for t in range(n_traits)
    ]
    dis = np.zeros((n_traits, X.shape[0]), dtype=np.float64)
    ctrl = fresh_zeros((n_traits, X.shape[0], n_ctrl), dtype)
    for start, stop, block in iter_row_blocks(X, block_size):
        if sparse.issparse(block):
            with warnings.catch_warnings():  # "sparse CSR support is in beta"
                warnings.simplefilter("ignore", UserWarning)
                xb = torch.sparse_csr_tensor(
                    torch.from_numpy(block.indptr.astype(np.int64)),
                    torch.from_numpy(block.indices.astype(np.int64)),
                    torch.from_numpy(block.data.astype(np.float64 if tdtype == torch.float64 else np.float32)),
                    size=block.shape,
                ).to(dev)
        else:
            xb = torch.from_numpy(np.asarray(block)).to(device=dev, dtype=tdtype)
        for t in range(n_traits):
            scores = (xb @ weights[t]).cpu().numpy()
            dis[t, start:stop] = scores[:, 0]
            ctrl[t, start:stop] = scores[:, 1:]
        if progress is not None:
            progress(stop - start)
    return dis, ctrl


def correct_and_test_torch(raw: np.ndarray, ctrl: np.ndarray, var_ratio: np.ndarray, *, device: str,
                           trait: str = "trait"):
    """Background correction and Monte Carlo p-values in torch; ``ctrl`` is overwritten with the result.

    The same steps as :func:`psysc._core._scoring.correct_background` and
    :func:`psysc._core._scoring.monte_carlo_pvalues`, cells without spread among their control scores included.
    Returns ``norm, mc_pval, pval`` (float64 NumPy arrays).
    """
    import torch

    dev = torch.device("cpu" if device == "torch-cpu" else device)
    r = torch.from_numpy(np.asarray(raw, dtype=np.float64)).to(dev)
    c = torch.from_numpy(ctrl).to(dev)
    ratio = torch.from_numpy(np.asarray(var_ratio, dtype=np.float64)).to(dev)
    n, b = c.shape
    zero_r = r == 0
    zero_c = c == 0
    r = r - r.mean()
    c = (c - c.double().mean(dim=0).to(c.dtype)) / ratio.sqrt().to(c.dtype)
    mu = c.double().mean(dim=1)
    sd = c.double().std(dim=1, correction=0)
    flat = ~(sd > 0)  # no spread among the controls: no defined normalised score
    n_flat = int(flat.sum())
    sd = torch.where(flat, torch.ones_like(sd), sd)
    norm = (r - mu) / sd
    c = ((c.double() - mu[:, None]) / sd[:, None]).to(c.dtype)
    norm[flat] = float("nan")
    c[flat] = 0
    if n_flat == n:
        lowest = torch.zeros((), dtype=torch.float64, device=dev)
    else:
        norm = norm - torch.nanmean(norm)
        c = c - (c.double().sum(dim=0) / (n - n_flat)).to(c.dtype)  # the flat rows add 0 to the sums
        c[flat] = float("inf")
        lowest = torch.minimum(norm[~flat].min(), c.min().double())
    norm[zero_r] = lowest - 1e-3
    c[zero_c] = lowest.to(c.dtype)
    c[flat] = lowest.to(c.dtype)
    finite = ~torch.isnan(norm)
    if n_flat:
        warn_flat_cells(trait, n_flat, n, int((~finite).sum()))
    mc = (1.0 + (c.double() >= norm[:, None]).sum(dim=1).double()) / (1.0 + b)
    mc[~finite] = 1.0
    pooled = torch.ones(n, dtype=torch.float64, device=dev)
    q = norm[finite]
    if q.numel():
        sorted_q, order = torch.sort(q)
        pos = torch.searchsorted(sorted_q, c.double().reshape(-1), right=True)
        hist = torch.bincount(pos, minlength=q.numel() + 1)
        ge = torch.flip(torch.cumsum(torch.flip(hist, [0]), 0), [0])[1:]
        pooled_q = torch.empty(q.numel(), dtype=torch.float64, device=dev)
        pooled_q[order] = (1.0 + ge.double()) / (1.0 + n * b)
        pooled[finite] = pooled_q
    ctrl[...] = c.cpu().numpy()
    return norm.cpu().numpy(), mc.cpu().numpy(), pooled.cpu().numpy()
