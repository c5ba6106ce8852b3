"""Benchmark: psysc's disease scoring at atlas scale, streamed from a backed h5ad larger than memory allows.

Run from the repository root (see benchmarks/README.md)::

    python benchmarks/bench_atlas.py --workdir /data/psysc-atlas            # 1,000,000 cells x 20,000 genes, 10 %
    python benchmarks/bench_atlas.py --n-cells 100000 --no-save             # smaller
    python benchmarks/bench_atlas.py --device cuda --workdir ...            # the torch kernels on a GPU

What happens:

1. synthetic raw counts (``benchmarks/_synthetic.py``, the generator of ``bench_scoring.py``) are generated row
   block by row block, log-normalised per cell (total 1e4, then log1p, as ``scanpy.pp.normalize_total`` +
   ``scanpy.pp.log1p``) and appended to the CSR arrays of an h5ad file, so the matrix (16 GB at full size) is
   never in memory. The file and the gene sets are kept in ``--workdir`` and reused;
2. one worker process opens the h5ad **backed** (``anndata.read_h5ad(path, backed="r")``), warms up on 2,000 cells
   (compiles the kernels), then times ``psysc.pp.prepare_scoring(adata)`` (one streamed pass for the gene
   statistics) and ``psysc.tl.score_disorders(adata, gene_sets, n_ctrl=N)`` (one streamed pass for every trait,
   then background correction and p-values in memory). Both passes read the matrix from the file, so the times
   include reading it. Peak RSS is the worker's ``VmHWM`` (:func:`_machine.peak_rss_bytes`);
3. JSON and markdown results go to ``benchmarks/results/atlas_<machine>.json|md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_scoring import (  # noqa: E402
    RESULTS,
    _current_rss_gb,
    _load_job,
    _log,
    _peak_rss_gb,
    _thread_info,
    _worker_env,
    add_data_arguments,
    machine_info_for,
    package_versions,
)

DEFAULTS = {"n_cells": 1_000_000, "n_genes": 20_000, "density": 0.10, "n_ctrl": 1_000, "n_traits": 1}


def make_backed_data(args, work: Path) -> tuple[Path, Path, dict]:
    """Stream the log-normalised synthetic matrix into ``work/<stem>.h5ad`` (reused when present)."""
    import anndata as ad
    import h5py
    import numpy as np
    import pandas as pd
    from _synthetic import gene_names, make_counts, make_gene_set

    stem = f"atlas_{args.n_cells}x{args.n_genes}_d{args.density:g}_s{args.seed}"
    h5ad, stats_json = work / f"{stem}.h5ad", work / f"{stem}.stats.json"
    gs_csv = work / f"{stem}_genesets{args.n_traits}.csv"
    if h5ad.exists() and stats_json.exists():
        _log(f"reusing {h5ad}")
        stats = json.loads(stats_json.read_text())
    else:
        n, g = args.n_cells, args.n_genes
        skeleton = ad.AnnData(obs=pd.DataFrame(index=[f"cell{i:07d}" for i in range(n)]),
                              var=pd.DataFrame(index=gene_names(g)))
        skeleton.write_h5ad(h5ad)
        del skeleton
        t0 = time.perf_counter()
        with h5py.File(h5ad, "a") as f:
            grp = f.create_group("X")
            grp.attrs["encoding-type"] = "csr_matrix"
            grp.attrs["encoding-version"] = "0.1.0"
            grp.attrs["shape"] = np.array([n, g], dtype=np.int64)
            data = grp.create_dataset("data", shape=(0,), maxshape=(None,), dtype="float32", chunks=(1 << 20,))
            indices = grp.create_dataset("indices", shape=(0,), maxshape=(None,), dtype="int32", chunks=(1 << 20,))
            indptr = np.zeros(n + 1, dtype=np.int64)
            umi = np.zeros(n, dtype=np.float64)

            def sink(start, counts, cols, row_nnz):
                rows = np.repeat(np.arange(len(row_nnz)), row_nnz)
                lib = np.bincount(rows, weights=counts, minlength=len(row_nnz))
                umi[start : start + len(row_nnz)] = lib
                values = np.log1p(counts / lib[rows] * 1e4).astype(np.float32)  # normalize_total(1e4) + log1p
                at = data.shape[0]
                data.resize((at + len(values),))
                indices.resize((at + len(values),))
                data[at:] = values
                indices[at:] = cols
                indptr[start + 1 : start + 1 + len(row_nnz)] = at + np.cumsum(row_nnz)
                if (start // 1000) % 50 == 0:
                    _log(f"  {start + len(row_nnz):,} of {n:,} cells written")

            make_counts(n, g, args.density, args.seed, block_size=1_000, sink=sink)
            grp.create_dataset("indptr", data=indptr)
            nnz = int(indptr[-1])
        gen_s = time.perf_counter() - t0
        stats = {"n_cells": n, "n_genes": g, "nnz": nnz, "density": nnz / (n * g),
                 "median_umi_per_cell": float(np.median(umi)),
                 "median_genes_per_cell": float(np.median(np.diff(indptr))), "generation_s": gen_s,
                 "file_gb": h5ad.stat().st_size / 1e9}
        stats_json.write_text(json.dumps(stats, indent=2))
        _log(f"generated and written in {gen_s:.0f} s: nnz {nnz:,}, file {stats['file_gb']:.1f} GB")
    if not gs_csv.exists():
        names = gene_names(args.n_genes)
        frames = [pd.DataFrame({"trait": f"T{i + 1}", "weight": make_gene_set(names, args.gs_size,
                                                                             seed=args.seed + 1000 + i)})
                  for i in range(args.n_traits)]
        pd.concat(frames).to_csv(gs_csv)
    return h5ad, gs_csv, stats


def worker(job_path: str) -> None:
    import numpy as np

    import psysc

    job, adata, gene_sets, open_s = _load_job(job_path)
    psysc.settings.n_jobs = job["threads"]
    psysc.settings.verbosity = 1
    device = job["device"]
    _log(f"worker: opened {adata.n_obs:,} x {adata.n_vars:,} backed in {open_s:.1f} s, RSS {_current_rss_gb():.2f} GB")

    small = adata[:2_000].to_memory()  # warm-up: compiles the kernels
    t0 = time.perf_counter()
    psysc.pp.prepare_scoring(small)
    psysc.tl.score_disorders(small, gene_sets, n_ctrl=20, device=device)
    warmup_s = time.perf_counter() - t0
    del small
    rss_before = _current_rss_gb()

    t0 = time.perf_counter()
    psysc.pp.prepare_scoring(adata)
    t1 = time.perf_counter()
    psysc.tl.score_disorders(adata, gene_sets, n_ctrl=job["n_ctrl"], device=device)
    t2 = time.perf_counter()
    peak = _peak_rss_gb()
    problems = []
    for t in gene_sets:
        v = adata.obs[f"psysc_{t}_pval"].to_numpy()
        if not (np.isfinite(v).all() and v.min() > 0 and v.max() <= 1):
            problems.append(f"{t}: p-values outside (0, 1]")
        if adata.obsm[f"psysc_{t}_ctrl_norm_score"].shape != (adata.n_obs, job["n_ctrl"]):
            problems.append(f"{t}: control scores of shape {adata.obsm[f'psysc_{t}_ctrl_norm_score'].shape}")
    res = {"open_s": open_s, "warmup_s": warmup_s, "prepare_s": t1 - t0, "score_s": t2 - t1, "total_s": t2 - t0,
           "score_per_trait_s": (t2 - t1) / len(gene_sets), "peak_rss_gb": peak,
           "rss_before_timed_gb": rss_before, "traits": list(gene_sets), "problems": problems,
           "threads": _thread_info(job["threads"]),
           "control_scores_gb": len(gene_sets) * adata.n_obs * job["n_ctrl"] * 4 / 1e9}
    Path(job["result"]).write_text(json.dumps(res, indent=2))


def write_markdown(summary: dict, path: Path) -> None:
    m, d, r, a = summary["machine"], summary["data"], summary["result"], summary["args"]
    lines = [
        "# Atlas-scale scoring benchmark: psysc streamed from a backed h5ad",
        "",
        f"Run {summary['date']} with `python benchmarks/bench_atlas.py {summary['argv']}`.",
        "",
        f"- Machine: {m['cpu_model']}, {m['n_cpus_available']} cores available, {m['mem_total_gb']} GB RAM"
        + (f", GPU {m['gpu']}" if m.get("gpu") else "") + f"; {m['platform']}, Python {m['python']}",
        f"- Versions: {', '.join(f'{k} {v}' for k, v in summary['versions'].items() if v)}",
        f"- Data: {d['n_cells']:,} cells x {d['n_genes']:,} genes, synthetic negative-binomial counts, "
        f"{100 * d['density']:.1f}% non-zero ({d['nnz']:,} entries), median {d['median_umi_per_cell']:.0f} UMI and "
        f"{d['median_genes_per_cell']:.0f} genes per cell; log-normalised (total 1e4 + log1p), CSR float32 in an "
        f"h5ad of {d['file_gb']:.1f} GB, opened backed (`backed=\"r\"`): the matrix is never loaded whole",
        f"- Gene sets: {a['n_traits']} trait(s) of {a['gs_size']} genes, MAGMA-like weights; n_ctrl = {a['n_ctrl']}; "
        f"device {a['device']}; {a['threads']} threads",
        "- Times: `prepare_scoring` (one streamed pass) and `score_disorders` (one streamed pass for all traits, "
        "then background correction and p-values), both reading the matrix from the file; after an untimed "
        "warm-up on 2,000 cells",
        "",
        "| prepare (s) | score (s) | score per trait (s) | total (s) | peak RSS (GB) | control scores kept (GB) |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {r['prepare_s']:.1f} | {r['score_s']:.1f} | {r['score_per_trait_s']:.1f} | {r['total_s']:.1f} | "
        f"{r['peak_rss_gb']:.2f} | {r['control_scores_gb']:.1f} |",
        "",
        "Checks: " + ("; ".join(r["problems"]) if r["problems"] else "every p-value in (0, 1], control scores "
                      "of the expected shape"),
        "",
    ]
    path.write_text("\n".join(lines))


def main(argv=None) -> int:
    import datetime as dt
    import os
    import subprocess

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_data_arguments(ap, DEFAULTS, "traits scored at once")
    ap.add_argument("--workdir", default=None, help="where the h5ad is written and reused (default: a temp dir)")
    ap.add_argument("--out-name", default=None)
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--generate-only", action="store_true", help="write the data and the gene sets, then stop")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker)
        return 0
    import tempfile

    threads = args.threads or len(os.sched_getaffinity(0))
    work = Path(args.workdir or tempfile.mkdtemp(prefix="psysc-atlas-"))
    work.mkdir(parents=True, exist_ok=True)
    h5ad, gs_csv, stats = make_backed_data(args, work)
    if args.generate_only:
        return 0
    job = {"h5ad": str(h5ad), "backed": "r", "gene_sets": str(gs_csv), "n_ctrl": args.n_ctrl, "device": args.device,
           "traits": [f"T{i + 1}" for i in range(args.n_traits)], "threads": threads,
           "result": str(work / "atlas_result.json")}
    job_path = work / "atlas_job.json"
    job_path.write_text(json.dumps(job))
    _log("running the psysc worker ...")
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", str(job_path)],
                          env=_worker_env(threads))
    if proc.returncode != 0:
        _log(f"worker failed (exit code {proc.returncode})")
        return 1
    res = json.loads(Path(job["result"]).read_text())
    args.threads = threads
    summary = {"date": dt.datetime.now().isoformat(timespec="seconds"), "argv": " ".join(sys.argv[1:]),
               "machine": machine_info_for(args.device), "versions": package_versions(), "data": stats,
               "args": vars(args), "result": res}
    line = (f"psysc, {stats['n_cells']:,} cells x {args.n_ctrl} control sets, {len(res['traits'])} trait(s): prepare "
            f"{res['prepare_s']:.1f} s + score {res['score_s']:.1f} s ({res['score_per_trait_s']:.1f} s per trait), "
            f"peak RSS {res['peak_rss_gb']:.2f} GB")
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        stem = args.out_name or f"atlas_{summary['machine']['hostname_tag']}"
        (RESULTS / f"{stem}.json").write_text(json.dumps(summary, indent=2))
        write_markdown(summary, RESULTS / f"{stem}.md")
        _log(f"wrote {RESULTS / stem}.json/.md")
    print(line)
    return 0 if not res["problems"] else 1


if __name__ == "__main__":
    sys.exit(main())
