"""Matched control gene sets (scDRS step 4)."""

from __future__ import annotations

import numpy as np


def _bins_in_order(bin_labels: np.ndarray):
    """Genes of each bin, bins in the sorted order of their string labels (scDRS's groupby order)."""
    labels = np.asarray(bin_labels).astype(str)
    order = np.argsort(labels, kind="stable")
    uniq, starts = np.unique(labels[order], return_index=True)
    bounds = list(starts) + [len(labels)]
    return [(uniq[i], order[bounds[i] : bounds[i + 1]]) for i in range(len(uniq))]


def scdrs_control_sets(
    gene_names: np.ndarray,
    bin_labels: np.ndarray,
    disease_idx: np.ndarray,
    disease_weight: np.ndarray,
    *,
    n_ctrl: int,
    seed: int,
):
    """The control gene sets scDRS 1.0.2 draws for one trait, for one-to-one comparison with scDRS.

    In each bin holding ``k`` disease genes, each control set takes ``k`` genes of that bin drawn
    without replacement (the disease genes themselves included in the pool), and the disease genes'
    weights, in the order of their names, are carried over to the drawn genes. The draws replay
    scDRS's legacy ``RandomState(seed)`` calls in scDRS's order: bins in the sorted order of their
    labels, genes sorted by name, one ``choice`` per bin and control set. (psysc's default draws are
    in :class:`psysc._core._shared.SharedControls`.)

    Returns
    -------
    ctrl_idx
        ``(n_ctrl, K)`` gene indices of the control sets.
    ctrl_weight
        ``(K,)`` weights of the positions of every control set.

    """
    gene_names = np.asarray(gene_names).astype(str)
    disease_idx = np.asarray(disease_idx)
    weight_of = dict(zip(disease_idx.tolist(), np.asarray(disease_weight, dtype=np.float64).tolist(), strict=True))
    is_disease = np.zeros(len(gene_names), dtype=bool)
    is_disease[disease_idx] = True
    if not isinstance(seed, int | np.integer):
        raise TypeError("scDRS's control draws need an integer seed")
    state = np.random.RandomState(int(seed))
    idx_parts, w_parts = [], []
    for _, members in _bins_in_order(bin_labels):
        members = members[np.argsort(gene_names[members], kind="stable")]  # sorted by name
        dis = members[is_disease[members]]
        k = len(dis)
        if k == 0:
            continue
        picks = np.empty((n_ctrl, k), dtype=np.int64)
        for i in range(n_ctrl):
            # legacy RandomState.choice(pool, k, replace=False) == pool[permutation(len(pool))[:k]]
            picks[i] = state.permutation(len(members))[:k]
        idx_parts.append(members[picks])
        w_parts.append([weight_of[g] for g in dis.tolist()])
    ctrl_idx = np.concatenate(idx_parts, axis=1)
    ctrl_weight = np.concatenate([np.asarray(w, dtype=np.float64) for w in w_parts])
    return ctrl_idx, ctrl_weight
