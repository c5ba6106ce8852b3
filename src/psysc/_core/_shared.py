"""Control gene sets shared across traits, and the kernel that scores all traits in one pass.

For each mean-variance bin ``j`` and control set ``b`` one random permutation ``pi_bj`` of the bin's
genes is drawn (seeded by the seed and the bin's label only). Trait ``t`` with ``k_tj`` disease genes
in bin ``j`` takes the first ``k_tj`` genes of ``pi_bj``, and the ``r``-th of them carries the weight of
the trait's ``r``-th disease gene of that bin (disease genes in name order), as in scDRS. Each trait's
control sets therefore have exactly scDRS's distribution, do not depend on the other traits scored,
and are nested across traits, so one pass over the data serves every trait: each expressed gene is
looked up once per control set it belongs to, and the traits' weights are added side by side, in the
lanes of one short vector addition (:mod:`psysc._core._simd`). A gene's memberships lie together, coded
(:meth:`SharedControls.runs`): the kernel computes the gene's value at each of its slots first, then adds them in
one loop over all its memberships, and asks for the memberships of the genes a few places ahead in the cell's row
before it needs them (for 1,000 control sets they outgrow a core's own caches).

The control sums are accumulated in the precision of the control scores returned: float32 control scores
are summed in float32 (the accumulators of eight traits then fit in a core's L1 cache: 32 KB for 1,000 control
sets; relative differences from float64 sums rounded to float32 are about 1e-7, at most a few 1e-6), float64
ones in float64. The disease scores are always summed in float64. Either way a trait's scores are bit for bit
the same whichever other traits are scored with it.
"""

from __future__ import annotations

import zlib

import numba
import numpy as np
from numba import prange
from scipy import sparse

from ._blocks import as_csr, balanced_row_bounds, iter_row_blocks
from ._control import _bins_in_order
from ._memory import fresh_zeros
from ._simd import add_from4, add_from8, add_scaled4, add_scaled8, prefetch, scale_into4, scale_into8

_MAX_LANES = 8  # traits per vector addition


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

    def runs(self, n_genes: int, slots: np.ndarray | None = None):
        """The control-set memberships of each gene, grouped by slot, as CSR-like arrays.

        Gene ``g`` owns runs ``g_ptr[g]:g_ptr[g + 1]``; run ``r`` is one slot ``run_slot[r]`` and the memberships
        ``run_ptr[r]:run_ptr[r + 1]``, which name the control sets that hold ``g`` at that slot (a gene is in a
        control set at most once), in ascending order. A gene's memberships are contiguous, so one loop visits them
        all: each is coded as ``code = local << shift | set``, with ``local`` the run's place among the gene's runs
        (``r - g_ptr[g]``). ``codes`` are uint16 when that fits (up to 1,024 control sets and 64 runs per gene),
        else uint32 or int64. ``slots`` (bool, ``n_slots``) keeps only those slots.

        Returns ``(g_ptr, run_slot, run_ptr, codes, shift, max_runs)``, ``max_runs`` the most runs of one gene (at
        least 1: the kernels' scratch for a gene's run values).
        """
        n_ctrl, n_slots = self.genes.shape
        keep = np.arange(n_slots) if slots is None else np.flatnonzero(slots)
        g_ptr, run_slot, run_ptr, sets = _group_memberships(
            np.ascontiguousarray(self.genes[:, keep].T), keep.astype(np.int32), n_genes
        )
        runs_per_gene = np.diff(g_ptr).astype(np.int64)
        local = np.arange(len(run_slot), dtype=np.int64) - np.repeat(g_ptr[:-1].astype(np.int64), runs_per_gene)
        shift = max(1, (n_ctrl - 1).bit_length())
        max_runs = int(runs_per_gene.max(initial=1))
        bits = shift + max(1, (max_runs - 1).bit_length())
        dtype = np.uint16 if bits <= 16 else np.uint32 if bits <= 32 else np.int64
        codes = (np.repeat(local, np.diff(run_ptr).astype(np.int64)) << shift) | sets
        return g_ptr, run_slot, run_ptr, codes.astype(dtype), shift, max_runs


@numba.njit(cache=True)
def _group_memberships(genes_by_slot, slot_ids, n_genes):
    # counting sort of the (slot, set) memberships by gene; slot-major input order keeps each gene's
    # memberships sorted by slot, then set, so runs of one slot are contiguous
    n_s, n_b = genes_by_slot.shape
    ptr = np.zeros(n_genes + 1, dtype=np.uint64)
    for i in range(n_s):
        for j in range(n_b):
            ptr[genes_by_slot[i, j] + 1] += 1
    for g in range(n_genes):
        ptr[g + 1] += ptr[g]
    fill = ptr[:-1].copy()
    sets = np.empty(n_s * n_b, dtype=np.int64)
    slot_of = np.empty(n_s * n_b, dtype=np.int32)
    for i in range(n_s):
        for j in range(n_b):
            g = genes_by_slot[i, j]
            sets[fill[g]] = j
            slot_of[fill[g]] = i
            fill[g] += 1
    n_runs = 0
    for g in range(n_genes):
        for e in range(ptr[g], ptr[g + 1]):
            n_runs += e == ptr[g] or slot_of[e] != slot_of[e - 1]
    g_ptr = np.zeros(n_genes + 1, dtype=np.uint64)  # unsigned: loop indices need no negative-index handling
    run_slot = np.empty(n_runs, dtype=np.uint32)
    run_ptr = np.empty(n_runs + 1, dtype=np.uint64)
    r = 0
    for g in range(n_genes):
        for e in range(ptr[g], ptr[g + 1]):
            if e == ptr[g] or slot_of[e] != slot_of[e - 1]:
                run_slot[r] = slot_ids[slot_of[e]]
                run_ptr[r] = e
                r += 1
        g_ptr[g + 1] = r
    run_ptr[n_runs] = n_s * n_b
    return g_ptr, run_slot, run_ptr, sets


#: how many genes ahead of the one being added the memberships are prefetched, and the cache lines asked for (a
#: gene's memberships fill about 2-3 lines of uint16 codes for 1,000 control sets)
_AHEAD = 6
_LINES = 3


@numba.njit(inline="always")
def _prefetch_memberships(indices, k, k_end, g_ptr, run_ptr, codes):
    if k + _AHEAD < k_end:
        first = np.int64(run_ptr[g_ptr[indices[k + _AHEAD]]])
        step = 64 // codes.itemsize
        for i in range(_LINES):
            prefetch(codes, first + i * step)


@numba.njit(parallel=True, cache=True, nogil=True)
def _shared_kernel_one(indptr, indices, data, factor, g_ptr, run_slot, run_ptr, codes, shift, max_runs, slot_w, inv_z,
                       dis_w, dis, ctrl, row0, bounds, acc_like):
    # one trait: acc[b] = sum over the cell's genes g and the runs (slot s, sets b) of g of
    # x_cg * factor[g] * slot_w[s], in the precision of acc_like: per gene, the value of each of its runs first
    # (rounded to that precision), then one loop over all its memberships (codes: run << shift | set). The threads
    # take the row ranges bounds[p]:bounds[p + 1] (balanced_row_bounds).
    n_ctrl = inv_z.shape[0]
    mask = (1 << shift) - 1
    for p in prange(bounds.shape[0] - 1):
        acc = np.zeros(n_ctrl, dtype=acc_like.dtype)
        run_v = np.zeros(max_runs, dtype=acc_like.dtype)
        for c in range(bounds[p], bounds[p + 1]):
            acc[:] = 0.0
            accd = 0.0
            k_end = indptr[c + 1]
            for k in range(indptr[c], k_end):
                _prefetch_memberships(indices, k, k_end, g_ptr, run_ptr, codes)
                g = indices[k]
                x = np.float64(data[k])
                accd += x * dis_w[g]
                xu = x * factor[g]
                r0, r1 = g_ptr[g], g_ptr[g + 1]
                for r in range(r0, r1):
                    run_v[r - r0] = xu * slot_w[run_slot[r]]
                for e in range(run_ptr[r0], run_ptr[r1]):
                    code = codes[e]
                    acc[code & mask] += run_v[code >> shift]
            dis[0, row0 + c] = accd
            for b in range(n_ctrl):
                ctrl[0, row0 + c, b] = np.float64(acc[b]) * inv_z[b]


@numba.njit(parallel=True, cache=True, nogil=True)
def _shared_kernel(indptr, indices, data, factor, g_ptr, run_slot, run_ptr, codes, shift, max_runs, slot_w, lanes,
                   inv_z_t, dis_row, dis_tab, dis, ctrl, row0, bounds, acc_like):
    # Per cell: acc[b * lanes + t] = sum over the cell's genes g and the runs (slot s, sets b) of g of
    # x_cg * factor[g] * slot_w[s * lanes + t]: the traits side by side in the lanes (zero weight beyond a trait's
    # count), in the precision of acc_like. Per gene, the lanes of each of its runs are computed first (run_v,
    # rounded to that precision, one vector each), then one loop over all its memberships (codes: run << shift |
    # set) adds them, one 4- or 8-lane vector addition each. The disease sums take one float64 vector addition per
    # gene too, from row dis_row[g] of the table dis_tab (row 0: zeros, for the genes of no disease set). inv_z_t:
    # (traits, control sets). The threads take the row ranges bounds[p]:bounds[p + 1] (balanced_row_bounds).
    n_traits = dis.shape[0]
    n_ctrl = inv_z_t.shape[1]
    size = acc_like.itemsize
    mask = (1 << shift) - 1
    for p in prange(bounds.shape[0] - 1):
        buf = np.zeros(n_ctrl * lanes + 64 // size, dtype=acc_like.dtype)
        o = ((64 - buf.ctypes.data % 64) % 64) // size  # rows of acc on 64-byte boundaries
        acc = buf[o : o + n_ctrl * lanes]
        run_v = np.zeros(max_runs * lanes, dtype=acc_like.dtype)
        accd = np.zeros(lanes, dtype=np.float64)
        for c in range(bounds[p], bounds[p + 1]):
            acc[:] = 0.0
            accd[:] = 0.0
            k_end = indptr[c + 1]
            for k in range(indptr[c], k_end):
                _prefetch_memberships(indices, k, k_end, g_ptr, run_ptr, codes)
                g = indices[k]
                x = np.float64(data[k])
                d = dis_row[g] * lanes
                xu = x * factor[g]
                r0, r1 = g_ptr[g], g_ptr[g + 1]
                if lanes == 4:
                    for r in range(r0, r1):
                        scale_into4(run_v, np.int64(r - r0) * 4, slot_w, run_slot[r] * 4, xu)
                    add_scaled4(accd, 0, dis_tab, d, x)
                    for e in range(run_ptr[r0], run_ptr[r1]):
                        code = codes[e]
                        add_from4(acc, (code & mask) * 4, run_v, (code >> shift) * 4)
                else:
                    for r in range(r0, r1):
                        scale_into8(run_v, np.int64(r - r0) * 8, slot_w, run_slot[r] * 8, xu)
                    add_scaled8(accd, 0, dis_tab, d, x)
                    for e in range(run_ptr[r0], run_ptr[r1]):
                        code = codes[e]
                        add_from8(acc, (code & mask) * 8, run_v, (code >> shift) * 8)
            for t in range(n_traits):
                dis[t, row0 + c] = accd[t]
                iz = inv_z_t[t]
                out = ctrl[t, row0 + c]
                for b in range(n_ctrl):
                    out[b] = np.float64(acc[b * lanes + t]) * iz[b]


def _disease_table(disease_weight: np.ndarray, lanes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(dis_row, dis_tab)`` of :func:`_shared_kernel`.

    Each gene's row in a table of the disease weights of the genes in some disease set, padded to ``lanes`` (row 0:
    zeros, for every other gene), raveled.
    """
    used = (disease_weight != 0).any(axis=1)
    dis_row = np.zeros(disease_weight.shape[0], dtype=np.int32)
    dis_row[used] = np.arange(1, int(used.sum()) + 1)
    table = np.zeros((int(used.sum()) + 1, lanes))
    table[1:, : disease_weight.shape[1]] = disease_weight[used]
    return dis_row, table.ravel()


def shared_raw_scores(X, controls: SharedControls, factor: np.ndarray, disease_weight: np.ndarray, *, dtype,
                      block_size: int = 20_000, progress=None):
    """Raw disease and control scores of every trait in one pass over ``X``.

    ``factor`` is the per-gene score factor (e.g. ``1/sqrt(var_tech + 0.01)``); ``disease_weight`` the
    ``(n_genes, n_traits)`` normalised weights of the disease sets. Traits are scored in groups of up to
    eight, side by side in the lanes of one vector addition (a lone trait by scalar additions); every row
    block is read once for all groups. Control sums are accumulated in ``dtype`` (float32 or float64), disease
    sums in float64.
    Returns ``dis`` (n_traits x n_cells, float64) and ``ctrl`` (n_traits x n_cells x n_ctrl, ``dtype``), like
    :func:`psysc._core._scoring.raw_scores`.
    """
    n_genes = X.shape[1]
    factor = np.asarray(factor, dtype=np.float64)
    inv_z = 1.0 / controls.set_weights(factor)
    disease_weight = np.asarray(disease_weight, dtype=np.float64)
    n_traits = controls.n_traits
    groups = []
    for lo in range(0, n_traits, _MAX_LANES):
        part = slice(lo, min(lo + _MAX_LANES, n_traits))
        w = controls.slot_weight[:, part]
        lanes = 1 if w.shape[1] == 1 else 4 if w.shape[1] <= 4 else 8
        slot_w = np.zeros((w.shape[0], lanes))
        slot_w[:, : w.shape[1]] = w
        layout = controls.runs(n_genes, slots=(w != 0).any(axis=1))
        if lanes == 1:
            weights = (np.ascontiguousarray(inv_z[:, part][:, 0]), np.ascontiguousarray(disease_weight[:, part][:, 0]))
        else:
            weights = (np.ascontiguousarray(inv_z[:, part].T), *_disease_table(disease_weight[:, part], lanes))
        groups.append((part, layout, slot_w.ravel(), lanes, weights))
    dis = np.zeros((n_traits, X.shape[0]), dtype=np.float64)
    ctrl = fresh_zeros((n_traits, X.shape[0], controls.n_ctrl), dtype)
    acc_like = np.zeros(0, dtype=np.float32 if ctrl.dtype == np.float32 else np.float64)
    for start, stop, block in iter_row_blocks(X, block_size, prefetch=True):  # the kernels release the GIL
        if not sparse.issparse(block):
            block = as_csr(block)
        indptr = block.indptr.astype(np.uint64)  # unsigned indices: no negative-index handling in the loops
        indices = block.indices.view(np.uint32 if block.indices.itemsize == 4 else np.uint64)
        bounds = balanced_row_bounds(block.indptr, numba.get_num_threads())
        for part, layout, slot_w, lanes, weights in groups:
            if lanes == 1:
                _shared_kernel_one(indptr, indices, block.data, factor, *layout, slot_w, *weights, dis[part],
                                   ctrl[part], start, bounds, acc_like)
            else:
                _shared_kernel(indptr, indices, block.data, factor, *layout, slot_w, lanes, *weights, dis[part],
                               ctrl[part], start, bounds, acc_like)
        if progress is not None:
            progress(stop - start)
    return dis, ctrl
