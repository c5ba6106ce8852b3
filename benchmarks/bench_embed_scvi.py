"""Benchmark: scVI cell embeddings, psysc's encoder-only forward versus scvi-tools, on the same saved model.

Run from the repository root (see benchmarks/README.md)::

    python benchmarks/bench_embed_scvi.py                                # 100,000 cells x 8,000 genes, 10% non-zero
    python benchmarks/bench_embed_scvi.py --n-cells 200000               # larger
    python benchmarks/bench_embed_scvi.py --n-cells 5000 --no-save       # smoke test

What it does (one process, torch limited to ``--threads`` threads, default all cores):

1. **Data**: ``_synthetic.make_counts`` raw UMI-like counts (negative binomial, 8 cell types, log-normal library
   sizes), ``--n-genes`` genes (default 8,000, the size of the Census scVI gene set) with Ensembl-like names, about
   ``--density`` of the entries non-zero, CSR float32, in memory; ``obs["batch"]`` = 4 synthetic batches.
2. **Model**: an scvi-tools ``SCVI`` shaped like the CELLxGENE Census scVI model (``n_layers=2, n_hidden=512,
   n_latent=50``, batch key registered, ``encode_covariates=False``, as in Census) is trained for
   ``--train-epochs`` epochs on the first ``--train-cells`` cells and saved with ``model.save(dir)`` (not timed).
3. **psysc**: ``psysc.tl.embed(adata, model=dir, device="cpu")`` timed as a whole: reading ``model.pt`` (restricted
   unpickler), gene matching, tokenisation of row blocks, the encoder forward (sparse first layer), writing
   ``obsm``. Default batch size (1,024 cells).
4. **scvi-tools**: the documented query path of the Census model, timed as a whole:
   ``SCVI.prepare_query_anndata(adata, dir)`` (no-op here: same genes), ``SCVI.load_query_data(adata, dir)``,
   ``is_trained = True``, ``get_latent_representation()`` (``give_mean=True``), at scvi-tools' default batch size
   (128) and at ``batch_size=1024`` (same as psysc). The query's batch is unseen (``"query"``); the Census-shaped
   encoder does not use it.
5. A 2,000-cell warm-up of each pipeline runs first (imports, thread pools, lazy initialisation), not timed; then
   the pipelines run in turn ``--repeats`` times (default 2) and the best time of each is reported (the machine may
   be shared), with every time in the JSON.
6. The embeddings are compared (max abs difference) and cells/s reported.

Results: ``benchmarks/results/embed_scvi_<machine>.json`` and ``.md`` (``<machine>`` = ``cpu-<cores>core``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
if (REPO / "src").is_dir():
    sys.path.insert(0, str(REPO / "src"))
from _machine import cpu_model as cpu_name  # noqa: E402
from _machine import machine_tag  # noqa: E402
from _machine import n_cores as _n_cores  # noqa: E402


def _quiet():
    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "scvi", "py.warnings"):
        logging.getLogger(name).setLevel(logging.ERROR)


def make_data(n_cells: int, n_genes: int, density: float, seed: int):
    import anndata as ad
    import pandas as pd
    from _synthetic import make_counts

    X, kind = make_counts(n_cells, n_genes, density, seed, return_cell_types=True)
    obs = pd.DataFrame(
        {"batch": np.asarray(["b0", "b1", "b2", "b3"])[np.arange(n_cells) % 4], "kind": kind.astype(str)},
        index=[f"cell{i}" for i in range(n_cells)],
    )
    var = pd.DataFrame(index=[f"ENSG{i:011d}" for i in range(n_genes)])
    return ad.AnnData(X, obs=obs, var=var)


def train_model(adata, folder: Path, *, n_cells: int, epochs: int, seed: int):
    import scvi

    scvi.settings.seed = seed
    train = adata[:n_cells].copy()
    scvi.model.SCVI.setup_anndata(train, batch_key="batch")
    model = scvi.model.SCVI(train, n_layers=2, n_hidden=512, n_latent=50)
    t = time.perf_counter()
    model.train(max_epochs=epochs, accelerator="cpu", enable_progress_bar=False, batch_size=1024)
    train_s = time.perf_counter() - t
    model.save(str(folder), overwrite=True)
    return train_s


def run_psysc(adata, folder: Path):
    import psysc

    a = adata.copy()
    t = time.perf_counter()
    psysc.tl.embed(a, model=folder, device="cpu", key_added="X_psysc")
    total = time.perf_counter() - t
    return a.obsm["X_psysc"], total, int(a.uns["psysc"]["embed"]["X_psysc"]["batch_size"])


def run_scvi(adata, folder: Path, batch_size: int | None):
    import scvi

    q = adata.copy()
    q.obs["batch"] = "query"
    t = time.perf_counter()
    scvi.model.SCVI.prepare_query_anndata(q, str(folder))
    model = scvi.model.SCVI.load_query_data(q, str(folder), accelerator="cpu")
    model.is_trained = True
    z = model.get_latent_representation(batch_size=batch_size)
    total = time.perf_counter() - t
    return z, total


def versions() -> dict:
    import anndata
    import scipy
    import scvi
    import torch

    import psysc

    return {
        "python": platform.python_version(), "psysc": psysc.__version__, "scvi-tools": scvi.__version__,
        "torch": torch.__version__, "anndata": anndata.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-cells", type=int, default=100_000)
    p.add_argument("--n-genes", type=int, default=8_000)
    p.add_argument("--density", type=float, default=0.10)
    p.add_argument("--train-cells", type=int, default=5_000)
    p.add_argument("--train-epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--skip-scvi-default", action="store_true", help="skip scvi-tools at its default batch size 128")
    p.add_argument("--no-save", action="store_true")
    p.add_argument("--out-name", default=None)
    args = p.parse_args(argv)
    _quiet()

    import torch

    import psysc

    threads = args.threads or _n_cores()
    torch.set_num_threads(threads)
    psysc.settings.verbosity = 1

    t = time.perf_counter()
    adata = make_data(args.n_cells, args.n_genes, args.density, args.seed)
    data_s = time.perf_counter() - t
    nnz = np.diff(adata.X.indptr)
    print(f"data: {adata.n_obs:,} x {adata.n_vars:,}, {adata.X.nnz:,} non-zeros "
          f"({adata.X.nnz / adata.n_obs / adata.n_vars:.1%}), {data_s:.1f} s", flush=True)

    rows = []
    with tempfile.TemporaryDirectory(prefix="psysc-bench-scvi-") as tmp:
        folder = Path(tmp) / "model"
        train_s = train_model(adata, folder, n_cells=min(args.train_cells, args.n_cells), epochs=args.train_epochs,
                              seed=args.seed)
        size_mb = (folder / "model.pt").stat().st_size / 1e6
        print(f"model trained ({train_s:.1f} s), model.pt {size_mb:.1f} MB", flush=True)

        warm = adata[: min(2000, args.n_cells)].copy()
        run_psysc(warm, folder)
        run_scvi(warm, folder, 1024)

        variants = [1024] if args.skip_scvi_default else [None, 1024]
        times: dict = {"psysc": [], **{b: [] for b in variants}}
        diffs = {}
        for rep in range(args.repeats):
            z_psysc, t_p, bs = run_psysc(adata, folder)
            times["psysc"].append(t_p)
            print(f"[{rep + 1}] psysc: {t_p:.2f} s (load average {os.getloadavg()[0]:.2f})", flush=True)
            for b in variants:
                z, t_s = run_scvi(adata, folder, b)
                times[b].append(t_s)
                diffs[b] = float(np.abs(z - z_psysc).max())
                print(f"[{rep + 1}] scvi-tools batch {b or 128}: {t_s:.2f} s, max|diff| {diffs[b]:.2e}", flush=True)
        t_psysc = min(times["psysc"])
        rows.append({"pipeline": "psysc.tl.embed", "batch_size": bs, "total_s": t_psysc, "max_abs_diff": None,
                     "all_s": times["psysc"]})
        for b in variants:
            label = "scvi-tools get_latent_representation" + (" (default batch 128)" if b is None else "")
            rows.append({"pipeline": label, "batch_size": b or 128, "total_s": min(times[b]), "max_abs_diff": diffs[b],
                         "all_s": times[b]})

    for r in rows:
        r["cells_per_s"] = args.n_cells / r["total_s"]
        r["psysc_speedup"] = None if r["pipeline"].startswith("psysc") else r["total_s"] / t_psysc

    result = {
        "benchmark": "embed_scvi",
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_name(), "cores": _n_cores(), "torch_threads": threads,
                    "load_avg_before": list(os.getloadavg())},
        "versions": versions(),
        "data": {"n_cells": args.n_cells, "n_genes": args.n_genes, "density": args.density,
                 "nnz_per_cell_median": int(np.median(nnz)), "nnz_per_cell_range": [int(nnz.min()), int(nnz.max())]},
        "repeats": args.repeats,
        "model": {"n_layers": 2, "n_hidden": 512, "n_latent": 50, "train_cells": min(args.train_cells, args.n_cells),
                  "train_epochs": args.train_epochs, "train_s": train_s, "model_pt_mb": size_mb},
        "rows": rows,
    }
    refs = "; ".join(f"scvi-tools batch {r['batch_size']} {r['total_s']:.1f} s = {r['psysc_speedup']:.2f}x"
                     for r in rows if r["psysc_speedup"])
    summary = (f"{args.n_cells:,} cells x {args.n_genes:,} genes ({args.density:.0%} non-zero), Census-shaped SCVI "
               f"(2 x 512, latent 50): psysc {t_psysc:.1f} s ({args.n_cells / t_psysc:,.0f} cells/s) vs {refs}; "
               f"max|diff| {max(r['max_abs_diff'] for r in rows if r['max_abs_diff'] is not None):.1e}")
    result["summary"] = summary
    print(summary)
    if args.no_save:
        return 0
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stem = args.out_name or f"embed_scvi_{machine_tag()}"
    (out / f"{stem}.json").write_text(json.dumps(result, indent=1))
    v = result["versions"]
    lines = [
        f"# scVI embedding benchmark ({machine_tag()})",
        "",
        f"CPU: {result['machine']['cpu']}, {_n_cores()} cores, torch threads {threads}. Versions: "
        + ", ".join(f"{k} {val}" for k, val in v.items()) + f". Date {result['date']}.",
        "",
        f"Data: `_synthetic.make_counts` raw counts, {args.n_cells:,} cells x {args.n_genes:,} genes, "
        f"{args.density:.0%} non-zero (detected genes per cell: median {result['data']['nnz_per_cell_median']}, "
        f"{result['data']['nnz_per_cell_range'][0]}-{result['data']['nnz_per_cell_range'][1]}), CSR float32 in memory. "
        f"Model: scvi-tools SCVI shaped like the Census model (2 layers x 512, latent 50, batch key registered, "
        f"encoder without covariates), trained {args.train_epochs} epochs on {result['model']['train_cells']:,} "
        f"cells, saved with `model.save` ({size_mb:.1f} MB `model.pt`). Both pipelines embed the same cells with the "
        "same saved model; times include loading the model. psysc: `psysc.tl.embed(adata, model=dir, device='cpu')`. "
        "scvi-tools: `prepare_query_anndata` + `load_query_data` + `get_latent_representation()` (Census query path).",
        "",
        f"Best of {args.repeats} runs of each (pipelines alternating); all times in the JSON.",
        "",
        "| pipeline | batch size | total s | cells/s | psysc speed-up | max abs diff vs psysc |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        sp_ = f"{r['psysc_speedup']:.2f}x" if r["psysc_speedup"] else ""
        diff = f"{r['max_abs_diff']:.1e}" if r["max_abs_diff"] is not None else ""
        lines.append(f"| {r['pipeline']} | {r['batch_size']} | {r['total_s']:.1f} | {r['cells_per_s']:,.0f} | {sp_} "
                     f"| {diff} |")
    load = [round(x, 2) for x in result["machine"]["load_avg_before"]]
    lines += ["", f"Load average (1, 5, 15 min) before the runs: {load} (other processes shared the machine when it "
              "was above the core count).",
              "", f"Summary: {summary}", ""]
    (out / f"{stem}.md").write_text("\n".join(lines))
    print(f"wrote {out / stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
