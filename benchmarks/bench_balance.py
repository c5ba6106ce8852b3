"""Benchmark: scoring cells of uneven size, the rows shared among the threads by work against by count.

Run from the repository root (see benchmarks/README.md)::

    python benchmarks/bench_balance.py                  # 20,000 cells x 20,000 genes, 1 and 6 traits
    python benchmarks/bench_balance.py --no-save --repeats 3

What happens:

1. **Data** (not timed): synthetic raw counts (``benchmarks/_synthetic.py``) of two batches stored one after the
   other (as in a file written batch by batch), the first sequenced deeper: 15 % and 5 % non-zero (``--density``
   x 1.5 and x 0.5), then ``psysc.pp.prepare_scoring``. The share of the non-zero entries in the first half of
   the cells is reported.
2. **Timed, in one process, alternating**: ``psysc.tl.score_disorders(adata, gene_sets, n_ctrl=1000,
   inplace=False)`` for 1 trait and for 6, with the rows of each block shared among the threads

   - *by count*: equal numbers of rows per thread (the reference), and
   - *by work* (psysc): :func:`psysc._core._blocks.balanced_row_bounds`, equal numbers of non-zero entries
     (plus a cost per row) per thread.

   Both give the same scores (checked); the medians of ``--repeats`` runs and the median of the per-pair ratios
   are printed and written to ``benchmarks/results/balance_<machine>.json|md``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

from _machine import cpu_model, machine_tag, n_cores  # noqa: E402


def by_count(indptr, n_parts: int, row_cost: float = 16.0):
    """The reference split: equal numbers of rows per thread, whatever their work."""
    import numpy as np

    n = len(indptr) - 1
    return np.array([n * p // n_parts for p in range(n_parts + 1)], dtype=np.int64)


def make_data(n_cells: int, n_genes: int, density: float, seed: int, n_traits: int):
    import anndata as ad
    import numpy as np
    import scipy.sparse as sp
    from _synthetic import gene_names, make_counts, make_gene_set

    import psysc

    # two batches stored one after the other, the first sequenced deeper: 1.5x and 0.5x the density
    half = n_cells // 2
    counts = sp.vstack([make_counts(half, n_genes, 1.5 * density, seed),
                        make_counts(n_cells - half, n_genes, 0.5 * density, seed + 1)]).tocsr()
    names = gene_names(n_genes)
    adata = ad.AnnData(counts.astype(np.float32))
    adata.var_names = names
    adata.obs_names = [f"c{i}" for i in range(n_cells)]
    psysc.pp.prepare_scoring(adata)
    sets = {f"T{i + 1}": make_gene_set(names, 1000, seed=seed + 1000 + i) for i in range(n_traits)}
    nnz = np.diff(counts.indptr)
    return adata, sets, float(nnz[: n_cells // 2].sum() / nnz.sum())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-cells", type=int, default=20_000)
    ap.add_argument("--n-genes", type=int, default=20_000)
    ap.add_argument("--density", type=float, default=0.10)
    ap.add_argument("--n-ctrl", type=int, default=1000)
    ap.add_argument("--n-traits", type=int, default=6, help="traits of the multi-trait run (and 1)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-save", action="store_true", help="do not write benchmarks/results/")
    args = ap.parse_args(argv)

    import numba
    import numpy as np
    import pandas as pd

    import psysc
    import psysc._core._shared as shared_mod

    psysc.settings.verbosity = 1
    t0 = time.perf_counter()
    adata, sets, first_half = make_data(args.n_cells, args.n_genes, args.density, args.seed, args.n_traits)
    print(f"data: {adata.n_obs:,} x {adata.n_vars:,} in {time.perf_counter() - t0:.1f} s; the first half of the "
          f"cells holds {100 * first_half:.1f} % of the non-zero entries", flush=True)
    shipped = shared_mod.balanced_row_bounds

    def score(trait_sets, split):
        shared_mod.balanced_row_bounds = split
        try:
            t = time.perf_counter()
            out = psysc.tl.score_disorders(adata, trait_sets, n_ctrl=args.n_ctrl, inplace=False)
            return time.perf_counter() - t, out
        finally:
            shared_mod.balanced_row_bounds = shipped

    runs = {}
    for k in sorted({1, args.n_traits}):
        trait_sets = dict(list(sets.items())[:k])
        _, ref = score(trait_sets, by_count)  # warm-up (compilation) and the check below
        _, got = score(trait_sets, shipped)
        for t in trait_sets:
            pd.testing.assert_frame_equal(got[t], ref[t])
        times = {"by_count": [], "by_work": []}
        for _ in range(args.repeats):
            times["by_count"].append(score(trait_sets, by_count)[0])
            times["by_work"].append(score(trait_sets, shipped)[0])
        ratios = np.array(times["by_count"]) / np.array(times["by_work"])
        runs[f"{k}_traits"] = {
            "n_traits": k,
            "by_count_s": times["by_count"],
            "by_work_s": times["by_work"],
            "by_count_median_s": float(np.median(times["by_count"])),
            "by_work_median_s": float(np.median(times["by_work"])),
            "speedup_median_of_pairs": float(np.median(ratios)),
        }
        r = runs[f"{k}_traits"]
        print(f"{k} trait(s): rows by count {r['by_count_median_s']:.2f} s, by work {r['by_work_median_s']:.2f} s "
              f"(median of {args.repeats}); by count / by work per pair: "
              f"{', '.join(f'{x:.2f}' for x in ratios)} (median {r['speedup_median_of_pairs']:.2f}x)", flush=True)

    doc = {
        "benchmark": "bench_balance",
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine_tag("cpu"),
        "cpu": cpu_model(),
        "cores": n_cores(),
        "numba_threads": numba.get_num_threads(),
        "params": {k: getattr(args, k) for k in ("n_cells", "n_genes", "density", "n_ctrl", "n_traits", "repeats",
                                                   "seed")},
        "first_half_nnz_share": first_half,
        "runs": runs,
        "psysc_version": getattr(psysc, "__version__", None),
    }
    if args.no_save:
        return 0
    RESULTS.mkdir(exist_ok=True)
    stem = f"balance_{doc['machine']}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(doc, indent=2))
    lines = [
        "# Scoring cells of uneven size: rows shared among the threads by work, against by count",
        "",
        f"- Machine: {doc['cpu']}, {doc['cores']} cores ({doc['numba_threads']} numba threads); {doc['date']}",
        f"- Data: {args.n_cells:,} cells x {args.n_genes:,} genes, synthetic counts of two batches stored one after "
        f"the other, {150 * args.density:g} % and {50 * args.density:g} % non-zero: the first half of the cells "
        f"holds {100 * first_half:.1f} % of the non-zero entries; {args.n_ctrl} control sets",
        "- Command: `python benchmarks/bench_balance.py`; same scores both ways (checked)",
        "",
        "| traits | rows by count (reference) | rows by work (psysc) | by count / by work, median of pairs |",
        "|---:|---:|---:|---:|",
    ]
    for r in runs.values():
        lines.append(f"| {r['n_traits']} | {r['by_count_median_s']:.2f} s | {r['by_work_median_s']:.2f} s | "
                     f"{r['speedup_median_of_pairs']:.2f}x |")
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
