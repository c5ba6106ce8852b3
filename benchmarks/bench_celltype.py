"""Benchmark: cell-type specificity + enrichment (seismic, MAGMA-style, top-10 %) at atlas scale.

Run from the repository root (see benchmarks/README.md)::

    python benchmarks/bench_celltype.py                          # 1,000,000 cells x 20,000 genes
    python benchmarks/bench_celltype.py --n-cells 100000 --no-save

What happens:

1. **Data** (not timed): a log-normalised-like CSR float32 matrix of ``n_cells x n_genes`` is drawn chunk by
   chunk, with ``genes_per_cell`` detected genes per cell on average (column gaps drawn uniformly, so each row's
   indices are sorted and unique), values ``log1p`` of counts 1-20 (so that most genes pass seismic's mean
   filter of 0.1), and 20 cell types of uneven sizes (largest
   18 %, smallest 0.5 %) that each raise a random 5 % of the genes 3-fold.
2. **psysc, timed**: ``psysc.tl.celltype_specificity(adata, "cell_type")`` (one streaming pass over row blocks of
   ``--block-size`` cells) + ``psysc.tl.celltype_enrichment(adata, gene_sets, groupby="cell_type",
   method="all")`` for 6 traits (3 genome-wide z tables over all genes, 3 top-1,000 sets), i.e. 18 regressions
   per group.
3. **Reference, timed on the first ``--ref-cells`` cells** (a smaller slice, since it holds full-size
   temporaries): the same group moments written with scipy as a user would (indicator matrix @ X, @ X.multiply(X),
   @ (X != 0)), followed by the same specificity formula; psysc runs on the same slice for the ratio, and the
   two specificity matrices are compared.
4. Peak resident memory of the process and a JSON/markdown summary in
   ``benchmarks/results/celltype_<machine>.json|md``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def _threads(n: int | None) -> int:
    n = n or len(os.sched_getaffinity(0))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(n)
    return n


def make_matrix(n_cells: int, n_genes: int, genes_per_cell: int, n_types: int, seed: int, chunk: int = 50_000):
    """Synthetic CSR float32 (sorted unique indices), the cell-type codes and the type names."""
    import numpy as np
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    props = rng.dirichlet(np.full(n_types, 1.0))
    props = np.maximum(props, 0.005)
    props /= props.sum()
    labels = rng.choice(n_types, size=n_cells, p=props).astype(np.int64)
    markers = rng.random((n_types, n_genes)) < 0.05
    max_gap = max(2, int(round(2 * n_genes / genes_per_cell)))
    data_parts, index_parts, counts = [], [], []
    for start in range(0, n_cells, chunk):
        stop = min(start + chunk, n_cells)
        gaps = rng.integers(1, max_gap, size=(stop - start, genes_per_cell + genes_per_cell // 4), dtype=np.int32)
        cols = np.cumsum(gaps, axis=1, dtype=np.int32) - 1
        keep = cols < n_genes
        counts.append(keep.sum(axis=1))
        rows = np.nonzero(keep)[0]
        c = cols[keep]
        del cols, gaps
        v = np.log1p(rng.integers(1, 21, size=c.size).astype(np.float32))
        v *= np.where(markers[labels[start + rows], c], np.float32(np.log1p(3.0) / np.log1p(1.0)), np.float32(1.0))
        data_parts.append(v)
        index_parts.append(c)
        del keep, rows
    indptr = np.zeros(n_cells + 1, dtype=np.int64)
    np.cumsum(np.concatenate(counts), out=indptr[1:])
    X = sp.csr_matrix((n_cells, n_genes), dtype=np.float32)
    X.data = np.concatenate(data_parts)
    del data_parts
    X.indices = np.concatenate(index_parts)
    del index_parts
    X.indptr = indptr
    X.has_sorted_indices = True
    return X, labels, [f"type{i:02d}" for i in range(n_types)]


def reference_moments(X, labels, n_groups):
    """Group sums with full-size scipy temporaries (what a plain implementation does)."""
    import numpy as np
    import scipy.sparse as sp

    G = sp.csr_matrix((np.ones(X.shape[0]), (labels, np.arange(X.shape[0]))), shape=(n_groups, X.shape[0]))
    s = np.asarray((G @ X).todense(), dtype=np.float64)
    ss = np.asarray((G @ X.multiply(X)).todense(), dtype=np.float64)
    nz = np.asarray((G @ (X != 0).astype(np.float32)).todense(), dtype=np.float64)
    return np.bincount(labels, minlength=n_groups).astype(np.float64), s, ss, nz


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-cells", type=int, default=1_000_000)
    ap.add_argument("--n-genes", type=int, default=20_000)
    ap.add_argument("--genes-per-cell", type=int, default=1_000)
    ap.add_argument("--n-types", type=int, default=20)
    ap.add_argument("--block-size", type=int, default=50_000)
    ap.add_argument("--ref-cells", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-name", default=None)
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    threads = _threads(args.threads)

    import anndata as ad
    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(HERE.parent / "src"))
    import psysc
    from psysc._core._specificity import GroupMoments, group_moments, seismic_specificity

    print(f"drawing {args.n_cells:,} x {args.n_genes:,}, ~{args.genes_per_cell} genes per cell ...", flush=True)
    t0 = time.perf_counter()
    X, labels, names = make_matrix(args.n_cells, args.n_genes, args.genes_per_cell, args.n_types, args.seed)
    t_gen = time.perf_counter() - t0
    genes = [f"G{i:05d}" for i in range(args.n_genes)]
    obs = pd.DataFrame({"cell_type": pd.Categorical(np.asarray(names)[labels])},
                       index=pd.RangeIndex(args.n_cells).astype(str))
    adata = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=genes))
    print(f"  {X.nnz:,} non-zeros ({X.nnz / args.n_cells:.0f} per cell), drawn in {t_gen:.1f} s", flush=True)
    rng = np.random.default_rng(args.seed + 1)
    gene_sets = {}
    for i in range(3):
        gene_sets[f"GW{i}"] = pd.Series(rng.normal(size=args.n_genes), index=genes)
        top = rng.choice(args.n_genes, size=1000, replace=False)
        gene_sets[f"TOP{i}"] = pd.Series(np.minimum(rng.gamma(4.0, 1.0, 1000) + 2, 10), index=np.asarray(genes)[top])

    # warm-up (numba compilation) on a small slice, not timed
    small = adata[:2000].copy()
    psysc.tl.celltype_specificity(small, "cell_type", min_cells_per_group=1, min_cells_expressed=1, min_mean=0.0)
    psysc.tl.celltype_enrichment(small, gene_sets, groupby="cell_type", method="all", min_cells_per_group=1,
                                 min_cells_expressed=1, min_mean=0.0)
    del small

    t0 = time.perf_counter()
    psysc.tl.celltype_specificity(adata, "cell_type", block_size=args.block_size)
    t_spec = time.perf_counter() - t0
    t0 = time.perf_counter()
    psysc.tl.celltype_enrichment(adata, gene_sets, groupby="cell_type", method="all")
    t_enr = time.perf_counter() - t0
    table = adata.uns["psysc"]["celltype_enrichment"]
    print(f"psysc: specificity {t_spec:.1f} s + enrichment (6 traits x 3 methods) {t_enr:.2f} s "
          f"= {t_spec + t_enr:.1f} s on {threads} threads", flush=True)

    # reference on a slice
    n_ref = min(args.ref_cells, args.n_cells)
    Xr, lr = X[:n_ref], labels[:n_ref]
    t0 = time.perf_counter()
    n, s, ss, nz = reference_moments(Xr, lr, args.n_types)
    ref = seismic_specificity(GroupMoments(n=n, sum=s, sumsq=ss, nnz=nz))
    t_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = seismic_specificity(group_moments(Xr, lr, args.n_types, block_size=args.block_size))
    t_ours = time.perf_counter() - t0
    max_diff = float(np.max(np.abs(ref.spec - ours.spec)))
    print(f"reference on {n_ref:,} cells: scipy {t_ref:.2f} s vs psysc {t_ours:.2f} s "
          f"({t_ref / t_ours:.1f}x); max |spec difference| {max_diff:.2e}", flush=True)
    from _machine import peak_rss_bytes

    peak_gb = peak_rss_bytes() / 1e9
    matrix_gb = (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 1e9
    print(f"peak RSS {peak_gb:.2f} GB (the matrix itself: {matrix_gb:.2f} GB)")

    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:  # pragma: no cover
        pass
    summary = {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpu_model": cpu, "threads": threads, "python": platform.python_version()},
        "params": vars(args),
        "data": {"nnz": int(X.nnz), "genes_per_cell": X.nnz / args.n_cells, "draw_s": t_gen,
                 "matrix_gb": matrix_gb},
        "psysc": {"specificity_s": t_spec, "enrichment_s": t_enr, "total_s": t_spec + t_enr,
                  "n_rows": len(table), "peak_rss_gb": peak_gb},
        "reference_slice": {"n_cells": n_ref, "scipy_s": t_ref, "psysc_s": t_ours, "ratio": t_ref / t_ours,
                            "max_abs_spec_diff": max_diff},
    }
    if args.no_save:
        return
    RESULTS.mkdir(exist_ok=True)
    stem = args.out_name or f"celltype_cpu-{threads}core"
    (RESULTS / f"{stem}.json").write_text(json.dumps(summary, indent=2) + "\n")
    md = [
        f"# Cell-type specificity + enrichment, {args.n_cells:,} cells x {args.n_genes:,} genes",
        "",
        f"Machine: {cpu}, {threads} threads, Python {platform.python_version()}; {summary['date']}.",
        f"Data: synthetic CSR float32, {X.nnz:,} non-zeros ({X.nnz / args.n_cells:.0f} genes per cell), "
        f"{args.n_types} cell types; streamed in row blocks of {args.block_size:,} cells.",
        "",
        "| step | seconds |",
        "|---|---|",
        f"| `celltype_specificity` (one pass over the matrix) | {t_spec:.1f} |",
        f"| `celltype_enrichment`, 6 traits x 3 methods | {t_enr:.2f} |",
        f"| **total** | **{t_spec + t_enr:.1f}** |",
        "",
        f"Peak RSS {peak_gb:.2f} GB, of which the in-memory matrix is {matrix_gb:.2f} GB.",
        "",
        f"Reference on the first {n_ref:,} cells: scipy group sums with full-size temporaries {t_ref:.2f} s vs "
        f"psysc {t_ours:.2f} s: **{t_ref / t_ours:.1f}x**; the two specificity matrices differ by at most "
        f"{max_diff:.1e}.",
        "",
    ]
    (RESULTS / f"{stem}.md").write_text("\n".join(md))
    print(f"wrote {RESULTS / stem}.json|md")


if __name__ == "__main__":
    main()
