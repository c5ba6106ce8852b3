"""Control gene sets shared across traits, and the kernel that scores all traits in one pass.

For each mean-variance bin ``j`` and control set ``b`` one random permutation ``pi_bj`` of the bin's
genes is drawn (seeded by the seed and the bin's label only). Trait ``t`` with ``k_tj`` disease genes
in bin ``j`` takes the first ``k_tj`` genes of ``pi_bj``, and the ``r``-th of them carries the weight of
the trait's ``r``-th disease gene of that bin (disease genes in name order), as in scDRS. Each trait's
control sets therefore have exactly scDRS's distribution, do not depend on the other traits scored,
and are nested across traits, so one pass over the data serves every trait: each expressed gene is
looked up once per control set it belongs to, and the per-trait weights are a short vector loop.
"""

from __future__ import annotations

import zlib

import numba
import numpy as np
from numba import prange
from scipy import sparse

from ._blocks import iter_row_blocks
from ._control import _bins_in_order


class SharedControls:
    """Nested control sets of several traits (see the module docstring).

    Attributes
    ----------
    genes
        ``(n_ctrl, n_slots)`` gene index of each control set at each slot (slot = bin, position).
    slot_weight
        ``(n_slots, n_traits)`` disease weight of each trait at each slot (0 beyond the trait's count).
    """

    def __init__(self, gene_names, bin_labels, disease: list[tuple[np.ndarray, np.ndarray]], *, n_ctrl: int,
                 seed: int):
        gene_names = np.asarray(gene_names).astype(str)
        n_traits = len(disease)
        weight_of = [dict(zip(idx.tolist(), np.asarray(w, dtype=np.float64).tolist(), strict=True))
                     for idx, w in disease]
        is_disease = np.zeros((n_traits, len(gene_names)), dtype=bool)
        for t, (idx, _) in enumerate(disease):
            is_disease[t, idx] = True
        gene_blocks, weight_blocks = [], []
        for label, members in _bins_in_order(bin_labels):
            members = members[np.argsort(gene_names[members], kind="stable")]
            per_trait = [members[is_disease[t, members]] for t in range(n_traits)]
            m = max(len(d) for d in per_trait)
            if m == 0:
                continue
            rng = np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(str(label).encode())]))
            perm = np.argsort(rng.random((n_ctrl, len(members))), axis=1)[:, :m]
            gene_blocks.append(members[perm])
            w = np.zeros((m, n_traits), dtype=np.float64)
            for t, dis in enumerate(per_trait):
                w[: len(dis), t] = [weight_of[t][g] for g in dis.tolist()]
            weight_blocks.append(w)
        self.genes = np.concatenate(gene_blocks, axis=1)
        self.slot_weight = np.concatenate(weight_blocks, axis=0)
        self.n_ctrl = n_ctrl
        self.n_traits = n_traits

    def set_weights(self, factor: np.ndarray) -> np.ndarray:
        """``Z`` (n_ctrl x n_traits): the sum of each control set's weights ``factor[g] * w``."""
        U = factor[self.genes]  # (n_ctrl, n_slots)
        return U @ self.slot_weight

    def variance_sums(self, factor: np.ndarray, var: np.ndarray, Z: np.ndarray) -> np.ndarray:
        """``sum_g var[g] * (factor[g] * w / Z)^2`` for every control set and trait."""
        U2V = var[self.genes] * factor[self.genes] ** 2
        return (U2V @ self.slot_weight**2) / Z**2

    def explicit(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Trait ``t``'s control sets as ``(n_ctrl, k)`` gene indices and ``(k,)`` position weights."""
        used = self.slot_weight[:, t] != 0
        return self.genes[:, used], self.slot_weight[used, t]

    def entries(self, n_genes: int):
        """Gene -> (control set, slot) lists as CSR arrays ``(indptr, sets, slots)``."""
        n_ctrl, n_slots = self.genes.shape
        g = self.genes.ravel()
        sets = np.repeat(np.arange(n_ctrl, dtype=np.int32), n_slots)
        slots = np.tile(np.arange(n_slots, dtype=np.int32), n_ctrl)
        order = np.argsort(g, kind="stable")
        indptr = np.zeros(n_genes + 1, dtype=np.int64)
        np.cumsum(np.bincount(g, minlength=n_genes), out=indptr[1:])
        return indptr, sets[order], slots[order]


@numba.njit(parallel=True, cache=True)
def _shared_kernel(indptr, indices, data, factor, g_ptr, e_set, e_slot, slot_w, inv_z, dis_w, dis, ctrl, row0,
                   chunk):
    n = indptr.shape[0] - 1
    n_traits = slot_w.shape[1]
    n_ctrl = inv_z.shape[0]
    n_chunks = (n + chunk - 1) // chunk
    for ci in prange(n_chunks):
        acc = np.zeros((n_ctrl, n_traits), dtype=np.float64)
        accd = np.zeros(n_traits, dtype=np.float64)
        for c in range(ci * chunk, min(n, (ci + 1) * chunk)):
            acc[:, :] = 0.0
            accd[:] = 0.0
            for k in range(indptr[c], indptr[c + 1]):
                g = indices[k]
                x = np.float64(data[k])
                for t in range(n_traits):
                    accd[t] += x * dis_w[g, t]
                xu = x * factor[g]
                for e in range(g_ptr[g], g_ptr[g + 1]):
                    b = e_set[e]
                    s = e_slot[e]
                    for t in range(n_traits):
                        acc[b, t] += xu * slot_w[s, t]
            for t in range(n_traits):
                dis[t, row0 + c] = accd[t]
                for b in range(n_ctrl):
                    ctrl[t, row0 + c, b] = acc[b, t] * inv_z[b, t]


def shared_raw_scores(X, controls: SharedControls, factor: np.ndarray, disease_weight: np.ndarray, *, dtype,
                      block_size: int = 20_000, progress=None):
    """Raw disease and control scores of every trait in one pass over ``X``.

    ``factor`` is the per-gene score factor (e.g. ``1/sqrt(var_tech + 0.01)``); ``disease_weight`` the
    ``(n_genes, n_traits)`` normalised weights of the disease sets. Returns ``dis`` (n_traits x n_cells,
    float64) and ``ctrl`` (n_traits x n_cells x n_ctrl, ``dtype``), like
    :func:`psysc._core._scoring.raw_scores`.
    """
    n_genes = X.shape[1]
    g_ptr, e_set, e_slot = controls.entries(n_genes)
    inv_z = 1.0 / controls.set_weights(factor)
    factor = np.asarray(factor, dtype=np.float64)
    slot_w = np.ascontiguousarray(controls.slot_weight)
    dis_w = np.ascontiguousarray(disease_weight, dtype=np.float64)
    n_traits = controls.n_traits
    dis = np.zeros((n_traits, X.shape[0]), dtype=np.float64)
    ctrl = np.zeros((n_traits, X.shape[0], controls.n_ctrl), dtype=dtype)
    for start, stop, block in iter_row_blocks(X, block_size):
        if not sparse.issparse(block):
            block = sparse.csr_matrix(block)
        _shared_kernel(block.indptr.astype(np.int64), block.indices, block.data, factor, g_ptr, e_set, e_slot,
                       slot_w, inv_z, dis_w, dis, ctrl, start, 16)
        if progress is not None:
            progress(stop - start)
    return dis, ctrl
