"""Benchmark: per-cell disease scoring with scDRS 1.0.2 versus psysc, on the same synthetic data.

Run from the repository root (see benchmarks/README.md)::

    python benchmarks/bench_scoring.py                       # 50,000 cells x 20,000 genes, ~10% non-zero
    python benchmarks/bench_scoring.py --n-ctrl 100          # quicker estimate
    python benchmarks/bench_scoring.py --skip-scdrs          # psysc only

What happens:

1. synthetic raw counts are generated once (``benchmarks/_synthetic.py``), log-normalised
   (``scanpy.pp.normalize_total(target_sum=1e4)`` + ``scanpy.pp.log1p``, CSR float32) and written to an h5ad
   in a temporary directory, with the gene sets (1,000 genes, MAGMA-like z weights);
2. each tool runs in its own Python subprocess (``--worker``), so that the peak resident memory
   (``VmHWM``, :func:`_machine.peak_rss_bytes`) is that tool's alone. The worker loads the h5ad (not timed), then times
   only the computation:

   - scdrs: ``scdrs.preprocess(adata)`` (no covariates) + ``scdrs.score_cell(adata, genes, gene_weight=weights,
     n_ctrl=N, weight_opt="vs", return_ctrl_norm_score=True)``;
   - psysc (1 trait): ``psysc.pp.prepare_scoring(adata)`` + ``psysc.tl.score_disorders(adata, {"T1": gs},
     n_ctrl=N)``;
   - psysc (6 traits): the same with 6 different gene sets at once (T1 is the same gene set as above).

   Every worker gets the same thread count (``--threads``, default all cores) through the usual environment
   variables (OMP/OpenBLAS/MKL/numba) and ``threadpoolctl``;
3. the workers save their per-cell ``norm_score`` (and ``raw_score``) as .npy; the parent reports the Pearson
   correlation between the scdrs and psysc scores (different random control gene sets, so high but not 1);
4. a JSON and a markdown summary are written to ``benchmarks/results/scoring_<machine>[_<size>].json|md``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"

DEFAULTS = {"n_cells": 50_000, "n_genes": 20_000, "density": 0.10, "n_ctrl": 1_000, "n_traits": 6}
THREAD_ENV = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)


def _log(msg: str) -> None:
    print(f"[{_dt.datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def _peak_rss_gb() -> float:
    """Peak resident set size of this process so far, in GB (1e9 bytes): :func:`_machine.peak_rss_bytes`."""
    from _machine import peak_rss_bytes

    return peak_rss_bytes() / 1e9


def _current_rss_gb() -> float:
    """Resident set size of this process now, in GB (NaN off Linux)."""
    from _machine import status_bytes

    rss = status_bytes("VmRSS")
    return float("nan") if rss is None else rss / 1e9


# ----------------------------------------------------------------------------------------------------------------
# machine description
# ----------------------------------------------------------------------------------------------------------------
def machine_info() -> dict:
    sys.path.insert(0, str(HERE))
    from _machine import cpu_model

    n_logical = os.cpu_count()
    try:
        n_avail = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n_avail = n_logical
    mem_gb = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    mem_gb = round(int(line.split()[1]) * 1024 / 1e9, 1)
                    break
    except OSError:  # pragma: no cover
        pass
    return {
        "cpu_model": cpu_model(),
        "n_cpus": n_logical,
        "n_cpus_available": n_avail,
        "mem_total_gb": mem_gb,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "hostname_tag": f"cpu-{n_avail}core",
    }


def machine_info_for(device: str) -> dict:
    """:func:`machine_info`, with the GPU's name and a ``gpu-<name>`` tag when ``device`` is a CUDA device."""
    sys.path.insert(0, str(HERE))
    from _machine import gpu_name, machine_tag

    info = machine_info()
    gpu = gpu_name(device)
    if gpu is not None:
        info["gpu"] = gpu
        info["hostname_tag"] = machine_tag(device)
    return info


def package_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("psysc", "scdrs", "numpy", "scipy", "pandas", "anndata", "scanpy", "numba", "threadpoolctl"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def _worker_env(threads: int) -> dict:
    env = dict(os.environ)
    for var in THREAD_ENV:
        env[var] = str(threads)
    env["PYTHONWARNINGS"] = "ignore"
    env.setdefault("TQDM_MININTERVAL", "15")  # scdrs' progress bar: a line every 15 s is enough in a log
    env.setdefault("NUMBA_CACHE_DIR", str(Path(tempfile.gettempdir()) / "psysc-bench-numba-cache"))
    # psysc from the source tree when it is not installed (e.g. the editable install is not possible yet)
    import importlib.util

    if importlib.util.find_spec("psysc") is None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), env.get("PYTHONPATH", "")) if p)
    return env


# ----------------------------------------------------------------------------------------------------------------
# workers (run in their own process)
# ----------------------------------------------------------------------------------------------------------------
def _load_job(job_path: str):
    import anndata as ad
    import pandas as pd

    job = json.loads(Path(job_path).read_text())
    t0 = time.perf_counter()
    adata = ad.read_h5ad(job["h5ad"], backed=job.get("backed"))  # "r": opened, not loaded (bench_atlas.py)
    load_s = time.perf_counter() - t0
    gs_df = pd.read_csv(job["gene_sets"], index_col=0)  # columns: trait, weight (index = gene)
    gene_sets = {t: df["weight"] for t, df in gs_df.groupby("trait", sort=False)}
    gene_sets = {t: gene_sets[t] for t in job["traits"]}
    return job, adata, gene_sets, load_s


def _thread_info(threads: int) -> dict:
    info = {"threads_requested": threads}
    try:
        from threadpoolctl import threadpool_info

        info["threadpools"] = [
            {k: p.get(k) for k in ("user_api", "internal_api", "num_threads", "version")} for p in threadpool_info()
        ]
    except Exception as exc:  # pragma: no cover
        info["threadpools"] = repr(exc)
    try:
        import numba

        info["numba_num_threads"] = numba.get_num_threads()
        try:
            info["numba_threading_layer"] = numba.threading_layer()
        except ValueError:  # no parallel numba function has run in this process
            info["numba_threading_layer"] = None
    except ImportError:  # pragma: no cover
        info["numba_num_threads"] = None
    return info


def _warmup(job: dict, adata, run) -> float | None:
    """Run the same calls once, untimed, on the first cells with few control sets.

    This compiles psysc's numba kernels (JIT; cached on disk afterwards) and imports lazily loaded modules, so
    that the timed run measures the computation, not one-off start-up costs. Same dtypes and genes as the real
    run; it is done for both tools. Returns its wall time (None when disabled).
    """
    if not job.get("warmup", True):
        return None
    import gc

    small = adata[: min(2_000, adata.n_obs)].copy()
    t0 = time.perf_counter()
    run(small, min(20, job["n_ctrl"]))
    dt = time.perf_counter() - t0
    del small
    gc.collect()
    return dt


def _timed_run(job: dict, adata, run, threads: int):
    """Warm up, then time ``run`` on the whole data; ``None`` for a compile-only job (result written)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        warmup_s = _warmup(job, adata, run)
        if job.get("compile_only"):
            Path(job["result"]).write_text(json.dumps({"compile_s": warmup_s, "peak_rss_gb": _peak_rss_gb()}))
            return None
        load_before = os.getloadavg()[0]  # other processes on the machine would distort the timings
        t0 = time.perf_counter()
        t1, out = run(adata, job["n_ctrl"])
        t2 = time.perf_counter()
        return warmup_s, load_before, t0, t1, t2, out, _thread_info(threads)


def worker_scdrs(job_path: str) -> None:
    import numpy as np
    import scdrs

    job, adata, gene_sets, load_s = _load_job(job_path)
    threads, n_ctrl = job["threads"], job["n_ctrl"]
    (trait,) = job["traits"]
    gs = gene_sets[trait]
    rss_loaded = _peak_rss_gb()
    cur_loaded = _current_rss_gb()
    _log(f"scdrs worker: data loaded in {load_s:.1f} s ({adata.n_obs} x {adata.n_vars}), RSS {cur_loaded:.2f} GB")

    def run(ad_, n_ctrl_):
        scdrs.preprocess(ad_)
        t_ = time.perf_counter()
        df_ = scdrs.score_cell(
            ad_,
            list(gs.index),
            gene_weight=list(gs.values),
            n_ctrl=n_ctrl_,
            weight_opt="vs",
            return_ctrl_norm_score=True,
            random_seed=0,
        )
        return t_, df_

    timed = _timed_run(job, adata, run, threads)
    if timed is None:
        return
    warmup_s, load_before, t0, t1, t2, df, tinfo = timed

    out_dir = Path(job["out_dir"])
    np.save(out_dir / "scdrs_norm_score.npy", df["norm_score"].to_numpy(np.float64))
    np.save(out_dir / "scdrs_raw_score.npy", df["raw_score"].to_numpy(np.float64))
    n_ctrl_cols = sum(c.startswith("ctrl_norm_score_") for c in df.columns)
    res = {
        "tool": "scdrs",
        "traits": [trait],
        "n_ctrl": n_ctrl,
        "load_s": load_s,
        "warmup_s": warmup_s,
        "preprocess_s": t1 - t0,
        "score_s": t2 - t1,
        "total_s": t2 - t0,
        "peak_rss_gb": _peak_rss_gb(),
        "peak_rss_after_load_gb": rss_loaded,
        "loadavg_1min_before": load_before,
        "rss_after_load_gb": cur_loaded,
        "n_ctrl_norm_score_columns": n_ctrl_cols,
        "threads": tinfo,
    }
    Path(job["result"]).write_text(json.dumps(res, indent=2))


def _membership_visits(adata, gene_sets, n_ctrl: int) -> int:
    """The work of psysc's shared scoring kernel (untimed): (expressed gene, control set, slot) visits.

    Each visit is one addition per cell and gene expressed: a scalar one for one trait, a 4- or 8-lane vector one
    for several. Built from the same control draws as the timed run (default seed).
    """
    import numpy as np

    import psysc
    from psysc._core._shared import SharedControls
    from psysc._genesets import as_gene_sets, match_gene_sets
    from psysc._utils import get_matrix

    layer = adata.uns["psysc"]["prepare_scoring"]["layer"]
    X = get_matrix(adata, None if layer == "X" else layer)
    kept, _ = match_gene_sets(as_gene_sets(gene_sets), adata.var_names, min_genes=10)
    shared = SharedControls(adata.var_names.to_numpy().astype(str), adata.var["psysc_mean_var"].to_numpy().astype(str),
                            list(kept.values()), n_ctrl=n_ctrl, seed=psysc.settings.seed)
    g_ptr, _, run_ptr, *_ = shared.runs(adata.n_vars)
    per_gene = np.diff(run_ptr.astype(np.int64)[g_ptr.astype(np.int64)])
    nnz = np.zeros(adata.n_vars, dtype=np.int64)
    for i in range(0, len(X.indices), 10_000_000):  # bincount copies to int64: a slice at a time
        nnz += np.bincount(X.indices[i : i + 10_000_000], minlength=adata.n_vars)
    return int((per_gene * nnz).sum())


def _fresh_write_s(shape: tuple[int, ...], dtype) -> float:
    """Seconds to write once, with every thread, into freshly allocated memory of ``shape`` (untimed extra).

    The control scores that ``score_disorders`` returns are that large, allocated the same way
    (:func:`psysc._core._memory.fresh_zeros`); their first write is part of the score time, and its cost depends on
    the machine (page faults; on a virtual machine, the host backing the memory).
    """
    import numba
    import numpy as np

    from psysc._core._memory import fresh_zeros

    @numba.njit(parallel=True)
    def fill(a):
        for i in numba.prange(a.shape[0]):
            a[i] = 1.0

    fill(np.empty(1, dtype=dtype))  # compile
    t0 = time.perf_counter()
    a = fresh_zeros(int(np.prod(shape)), dtype)
    fill(a)
    dt = time.perf_counter() - t0
    del a
    return dt


#: psysc's scoring phases, by the functions of ``psysc.tl._score`` that run them (CPU and torch)
PHASES = {
    "kernel_pass_s": ("shared_raw_scores", "raw_scores", "raw_scores_torch"),
    "correction_pvalues_s": ("correct_background", "monte_carlo_pvalues", "correct_and_test_torch"),
}


def _phase_timers() -> dict[str, float]:
    """Sum the wall time of each of :data:`PHASES` from now on (the functions are wrapped in this worker only).

    ``kernel_pass_s``: the one pass over the data that computes every trait's raw scores, including the first write
    of the memory that holds the control scores; ``correction_pvalues_s``: background correction and p-values of
    every trait. The caller sets the values back to 0 before the call it measures.
    """
    import psysc.tl._score as score_mod

    times = dict.fromkeys(PHASES, 0.0)
    for phase, names in PHASES.items():
        for name in names:
            func = getattr(score_mod, name)

            def timed(*args, _func=func, _phase=phase, **kwargs):
                t0 = time.perf_counter()
                try:
                    return _func(*args, **kwargs)
                finally:
                    times[_phase] += time.perf_counter() - t0

            setattr(score_mod, name, timed)
    return times


def _kernel_pass_written_output_s(adata, gene_sets, n_ctrl: int, times: dict[str, float]) -> float:
    """The kernel pass of one more scoring call (untimed extra, ``inplace=False``), its output memory written before.

    The array that receives the control scores is allocated and written once before the call, so its pages are
    in place: the pass then costs its computation alone, without the first write that the timed run includes.
    """
    import numpy as np

    import psysc
    import psysc._core._shared as shared_mod

    allocate = shared_mod.fresh_zeros
    out = allocate((len(gene_sets), adata.n_obs, n_ctrl), np.float32)
    out[...] = 0.0

    def written(shape, dtype):
        if tuple(shape) == out.shape and np.dtype(dtype) == out.dtype:
            return out
        return allocate(shape, dtype)

    shared_mod.fresh_zeros = written
    try:
        for key in times:
            times[key] = 0.0
        psysc.tl.score_disorders(adata, gene_sets, n_ctrl=n_ctrl, inplace=False)
    finally:
        shared_mod.fresh_zeros = allocate
    return times["kernel_pass_s"]


def worker_psysc(job_path: str) -> None:
    import numpy as np

    import psysc

    job, adata, gene_sets, load_s = _load_job(job_path)
    threads, n_ctrl = job["threads"], job["n_ctrl"]
    traits = job["traits"]
    psysc.settings.n_jobs = threads
    psysc.settings.verbosity = 1  # no progress bars in the timed section
    rss_loaded = _peak_rss_gb()
    cur_loaded = _current_rss_gb()
    _log(
        f"psysc worker ({len(traits)} trait(s)): data loaded in {load_s:.1f} s ({adata.n_obs} x {adata.n_vars}), "
        f"RSS {cur_loaded:.2f} GB"
    )

    phases = _phase_timers()

    def run(ad_, n_ctrl_):
        psysc.pp.prepare_scoring(ad_)
        t_ = time.perf_counter()
        for key in phases:
            phases[key] = 0.0
        psysc.tl.score_disorders(ad_, gene_sets, n_ctrl=n_ctrl_, device=job.get("device", "cpu"))
        return t_, None

    timed = _timed_run(job, adata, run, threads)
    if timed is None:
        return
    warmup_s, load_before, t0, t1, t2, _, tinfo = timed
    timed_phases = dict(phases)

    # check the AnnData contract of docs/design.md
    problems = []
    cols = ("raw_score", "norm_score", "mc_pval", "pval", "nlog10_pval", "zscore")
    for t in traits:
        for c in cols:
            key = f"psysc_{t}_{c}"
            if key not in adata.obs:
                problems.append(f"missing obs[{key!r}]")
            elif adata.obs[key].dtype != np.float32:
                problems.append(f"obs[{key!r}] is {adata.obs[key].dtype}, not float32")
            elif not np.isfinite(adata.obs[key].to_numpy()).all():
                problems.append(f"obs[{key!r}] has non-finite values")
        key = f"psysc_{t}_ctrl_norm_score"
        if key not in adata.obsm:
            problems.append(f"missing obsm[{key!r}]")
        elif tuple(adata.obsm[key].shape) != (adata.n_obs, n_ctrl):
            problems.append(f"obsm[{key!r}] has shape {adata.obsm[key].shape}, not {(adata.n_obs, n_ctrl)}")

    peak_rss = _peak_rss_gb()  # before the untimed work count below
    visits = _membership_visits(adata, gene_sets, n_ctrl)
    fresh_write = _fresh_write_s((len(traits), adata.n_obs, n_ctrl), np.float32)
    written_pass = None
    if job.get("device", "cpu") == "cpu":
        written_pass = _kernel_pass_written_output_s(adata, gene_sets, n_ctrl, phases)

    out_dir = Path(job["out_dir"])
    tag = job["tag"]
    for t in traits:
        for c in ("norm_score", "raw_score"):
            key = f"psysc_{t}_{c}"
            if key in adata.obs:
                np.save(out_dir / f"{tag}_{t}_{c}.npy", adata.obs[key].to_numpy(np.float64))
    res = {
        "tool": "psysc",
        "traits": traits,
        "n_ctrl": n_ctrl,
        "load_s": load_s,
        "warmup_s": warmup_s,
        "preprocess_s": t1 - t0,
        "score_s": t2 - t1,
        "total_s": t2 - t0,
        "peak_rss_gb": peak_rss,
        "peak_rss_after_load_gb": rss_loaded,
        "loadavg_1min_before": load_before,
        "rss_after_load_gb": cur_loaded,
        "contract_problems": problems,
        "membership_visits": visits,
        "output_gb": len(traits) * adata.n_obs * n_ctrl * 4 / 1e9,
        "output_first_write_s": fresh_write,
        **timed_phases,
        "kernel_pass_written_output_s": written_pass,
        "psysc_file": psysc.__file__,
        "psysc_version": getattr(psysc, "__version__", None),
        "threads": tinfo,
    }
    Path(job["result"]).write_text(json.dumps(res, indent=2))


# ----------------------------------------------------------------------------------------------------------------
# parent
# ----------------------------------------------------------------------------------------------------------------
def make_data(args, work: Path) -> tuple[Path, Path, dict]:
    """Generate (or reuse) the log-normalised h5ad and the gene sets; return their paths and data stats."""
    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(HERE))
    from _synthetic import gene_names, make_counts, make_gene_set

    stem = f"synthetic_{args.n_cells}x{args.n_genes}_d{args.density:g}_s{args.seed}"
    h5ad = work / f"{stem}.h5ad"
    gs_csv = work / f"{stem}_genesets{args.n_traits}.csv"
    stats_json = work / f"{stem}.stats.json"
    if h5ad.exists() and stats_json.exists():
        _log(f"reusing {h5ad}")
        stats = json.loads(stats_json.read_text())
    else:
        import anndata as ad
        import scanpy as sc

        _log(f"generating {args.n_cells} x {args.n_genes} counts, density {args.density} ...")
        t0 = time.perf_counter()
        X, cell_type = make_counts(args.n_cells, args.n_genes, args.density, args.seed, return_cell_types=True)
        gen_s = time.perf_counter() - t0
        lib = np.asarray(X.sum(axis=1)).ravel()
        per_gene = np.zeros(X.shape[1], dtype=np.int64)
        for i in range(0, X.nnz, 50_000_000):  # bincount copies to int64: a slice at a time
            per_gene += np.bincount(X.indices[i : i + 50_000_000], minlength=X.shape[1])
        n_zero_genes = int((per_gene == 0).sum())
        stats = {
            "n_cells": X.shape[0],
            "n_genes": X.shape[1],
            "nnz": int(X.nnz),
            "density": X.nnz / (X.shape[0] * X.shape[1]),
            "median_umi_per_cell": float(np.median(lib)),
            "median_genes_per_cell": float(np.median(np.diff(X.indptr))),
            "n_all_zero_genes": n_zero_genes,
            "generation_s": gen_s,
        }
        _log(
            f"generated in {gen_s:.1f} s: nnz {X.nnz:,} (density {stats['density']:.4f}), "
            f"median UMI/cell {stats['median_umi_per_cell']:.0f}"
        )
        adata = ad.AnnData(
            X=X,
            obs=pd.DataFrame(
                {"cell_type": pd.Categorical([f"type{t}" for t in cell_type])},
                index=[f"cell{i:06d}" for i in range(X.shape[0])],
            ),
            var=pd.DataFrame(index=gene_names(X.shape[1])),
        )
        del X
        sc.pp.normalize_total(adata, target_sum=1e4)
        sc.pp.log1p(adata)
        adata.X = adata.X.astype(np.float32)
        adata.uns["benchmark_data"] = {"normalisation": "normalize_total(1e4) + log1p", "seed": args.seed}
        adata.write_h5ad(h5ad)
        del adata
        stats_json.write_text(json.dumps(stats, indent=2))
    if not gs_csv.exists():
        names = gene_names(args.n_genes)
        frames = []
        for i in range(args.n_traits):
            gs = make_gene_set(names, args.gs_size, seed=args.seed + 1000 + i)
            frames.append(pd.DataFrame({"trait": f"T{i + 1}", "weight": gs}))
        pd.concat(frames).to_csv(gs_csv)
    return h5ad, gs_csv, stats


def run_worker(kind: str, job: dict, work: Path, threads: int) -> dict:
    job_path = work / f"job_{job['tag']}.json"
    job_path.write_text(json.dumps(job))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--job", str(job_path)]
    _log(f"running {job['tag']} worker ...")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=_worker_env(threads), cwd=str(REPO))
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not Path(job["result"]).exists():
        _log(f"{job['tag']} worker FAILED (exit code {proc.returncode})")
        return {"tool": kind, "traits": job["traits"], "failed": True, "returncode": proc.returncode, "wall_s": wall}
    res = json.loads(Path(job["result"]).read_text())
    res["process_wall_s"] = wall
    _log(
        f"{job['tag']}: prepare {res['preprocess_s']:.1f} s + score {res['score_s']:.1f} s = {res['total_s']:.1f} s, "
        f"peak RSS {res['peak_rss_gb']:.2f} GB"
    )
    return res


def median_run(results: list[dict]) -> dict:
    """The run of median total time among ``results`` (the lower middle one of an even count); a failed run wins."""
    failed = [r for r in results if not _ok(r)]
    if failed:
        return failed[0]
    ordered = sorted(results, key=lambda r: r["total_s"])
    return ordered[(len(ordered) - 1) // 2]


def repeat_summary(reps: dict[str, list[dict]], multi: str | None) -> dict:
    """Every repetition's times and, with a multi-trait run, each alternating pair's multi / single ratio."""
    keys = ("preprocess_s", "score_s", "total_s", *PHASES, "kernel_pass_written_output_s", "output_first_write_s")
    out = {name: {key: [r.get(key) for r in results] for key in keys} for name, results in reps.items()}
    if multi is not None and all(_ok(r) for results in reps.values() for r in results):
        pairs = list(zip(reps["psysc"], reps[multi], strict=True))
        out["pair_ratios"] = {key: [m[key] / s[key] for s, m in pairs] for key in ("score_s", "total_s")}
    return out


def repeat_lines(repeats: dict | None, n_traits: int) -> list[str]:
    """Markdown lines on the repetitions of :func:`repeat_summary` (none for a single repetition)."""
    if not repeats:
        return []
    multi = f"psysc_{n_traits}traits"
    n = len(repeats["psysc"]["total_s"])
    lines = [f"- Repeated {n} times, the 1-trait and the {n_traits}-trait run alternating, each in a fresh process; "
             "the table shows each kind's median run (by total time), and the ratios above are between those"]
    for name, label in (("psysc", "1 trait"), (multi, f"{n_traits} traits")):
        if name in repeats:
            lines.append(f"  - {label}, total s: " + ", ".join(_fmt(x, ".2f") for x in repeats[name]["total_s"])
                         + "; score s: " + ", ".join(_fmt(x, ".2f") for x in repeats[name]["score_s"]))
    if "pair_ratios" in repeats:
        import statistics

        for key, label in (("total_s", "total"), ("score_s", "score")):
            r = repeats["pair_ratios"][key]
            lines.append(f"  - {n_traits} traits / 1 trait per alternating pair, {label}: "
                         + ", ".join(f"{x:.2f}" for x in r) + f" (median {statistics.median(r):.2f})")
    return lines


def _pearson(a_path: Path, b_path: Path):
    import numpy as np

    if not (a_path.exists() and b_path.exists()):
        return None
    a, b = np.load(a_path), np.load(b_path)
    if a.shape != b.shape:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def _ok(res: dict | None) -> bool:
    return bool(res) and not res.get("failed")


def _fmt(x, spec=".2f", none="n/a"):
    return none if x is None else format(x, spec)


def _x(x, spec=".2f"):
    """A ratio as ``1.23x`` (or ``n/a``)."""
    return "n/a" if x is None else format(x, spec) + "x"


def _median_of(summary: dict, name: str, res: dict, key: str):
    """The median of ``key`` over the repetitions of run ``name`` when repeated, else ``res[key]`` (None if absent)."""
    import statistics

    values = [v for v in (summary.get("repeats") or {}).get(name, {}).get(key, []) if v is not None]
    return statistics.median(values) if values else res.get(key)


def write_markdown(summary: dict, path: Path) -> None:
    m, p, r = summary["machine"], summary["params"], summary["ratios"]
    lines = [
        "# Scoring benchmark: scDRS 1.0.2 vs psysc",
        "",
        f"Run {summary['date']} with `{summary['command']}`.",
        "",
        f"- Machine: {m['cpu_model']}, {m['n_cpus_available']} cores available ({m['n_cpus']} logical), "
        f"{m['mem_total_gb']} GB RAM; {m['platform']}, Python {m['python']}"
        + (f"; GPU: {m['gpu']} (psysc's device: {p['device']})" if m.get("gpu") else ""),
        f"- Threads per tool: {p['threads']} (OMP/OpenBLAS/MKL/numba env variables + threadpoolctl)",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in summary["versions"].items() if v),
        f"- Data: {p['n_cells']:,} cells x {p['n_genes']:,} genes, synthetic negative-binomial counts, "
        f"{summary['data']['density']:.1%} non-zero ({summary['data']['nnz']:,} entries), median "
        f"{summary['data']['median_umi_per_cell']:.0f} UMI / cell; log-normalised (normalize_total 1e4 + log1p), "
        "CSR float32",
        f"- Gene sets: {p['gs_size']} genes, MAGMA-like weights (|N(0,1)|+3, clipped at 10); n_ctrl = {p['n_ctrl']}; "
        "scdrs weight_opt='vs', return_ctrl_norm_score=True; no covariates",
        "- Times: computation only (loading the h5ad excluded"
        + (
            "; after one untimed warm-up run of the same calls on 2,000 cells with 20 control sets, which compiles "
            "psysc's numba kernels"
            if p["warmup"]
            else "; no warm-up: psysc's first call includes numba JIT compilation"
        )
        + "); peak RSS = `VmHWM` of the tool's own process (includes the loaded data)",
        "",
        "| run | prepare (s) | score (s) | total (s) | peak RSS (GB) | RSS after load (GB) | warm-up (s) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, res in summary["runs"].items():
        if res is None:
            continue
        if res.get("failed"):
            lines.append(f"| {name} | failed | | | | | |")
            continue
        lines.append(
            f"| {name} | {res['preprocess_s']:.1f} | {res['score_s']:.1f} | {res['total_s']:.1f} | "
            f"{res['peak_rss_gb']:.2f} | {res['rss_after_load_gb']:.2f} | {_fmt(res.get('warmup_s'), '.1f')} |"
        )
    lines += [
        "",
        f"- Speed-up (scdrs total / psysc total): **{_x(r['speedup_total'], '.1f')}** "
        f"(prepare {_x(r['speedup_preprocess'], '.1f')}, score {_x(r['speedup_score'], '.1f')})",
        f"- Memory ratio (scdrs peak RSS / psysc peak RSS): **{_x(r['memory_ratio'], '.2f')}**",
        f"- psysc, {p['n_traits']} traits / 1 trait: score time {_x(r['multi_over_single_score'], '.2f')}, "
        f"total {_x(r['multi_over_single_total'], '.2f')}",
        f"- Work of the shared kernel, {p['n_traits']} traits / 1 trait: "
        f"{_x(r.get('multi_over_single_visits'), '.2f')} the (expressed gene, control set, slot) visits; each is a "
        "scalar addition for one trait and an 8-lane vector addition for several (nested control sets: a bin's "
        "slots are the most any trait needs there)",
    ]
    lines += repeat_lines(summary.get("repeats"), p["n_traits"])
    single, multi = summary["runs"].get("psysc"), summary["runs"].get(f"psysc_{p['n_traits']}traits")
    if _ok(single) and _ok(multi) and "output_first_write_s" in single and "output_first_write_s" in multi:
        lines.append(
            f"- First write into fresh memory the size of the returned control scores (untimed, same process, after "
            f"the run): {single['output_first_write_s']:.2f} s for 1 trait ({single['output_gb']:.1f} GB), "
            f"{multi['output_first_write_s']:.2f} s for {p['n_traits']} traits ({multi['output_gb']:.1f} GB). The "
            "score times include the first write of their own output, made in the state before the run: a page's "
            "first write costs more after a large run on some virtual machines, so this is an upper bound"
        )
    if _ok(single) and _ok(multi) and single.get("kernel_pass_s") is not None and multi.get("kernel_pass_s"):
        k1, k6, c1, c6, w1, w6 = (
            _median_of(summary, name, res, key)
            for key in ("kernel_pass_s", "correction_pvalues_s", "kernel_pass_written_output_s")
            for name, res in (("psysc", single), (f"psysc_{p['n_traits']}traits", multi))
        )
        of = "medians of the repetitions" if summary.get("repeats") else "the runs of the table"
        lines.append(
            f"- Phases of the score time ({of}): the kernel pass over the data, every trait at once "
            f"(it includes the first write of the control scores) {k1:.2f} s for 1 trait, {k6:.2f} s for "
            f"{p['n_traits']} traits ({_x(k6 / k1)}); background correction and p-values {c1:.2f} s and {c6:.2f} s "
            f"({c6 / p['n_traits']:.2f} s per trait)"
        )
        if w1 and w6:
            lines.append(
                f"- The kernel pass once more in the same process (untimed extra), its output memory written before: "
                f"{w1:.2f} s for 1 trait, {w6:.2f} s for {p['n_traits']} traits ({_x(w6 / w1)}): its computation "
                "without the first write of its output"
            )
    lines += [
        f"- Parity: Pearson r of norm_score scdrs vs psysc = {_fmt(summary['parity']['pearson_norm_score'], '.4f')}"
        f" (raw_score: {_fmt(summary['parity']['pearson_raw_score'], '.6f')}); different random control sets, "
        "so not exactly 1",
        f"- psysc T1, 1-trait run vs {p['n_traits']}-trait run: Pearson r of norm_score = "
        f"{_fmt(summary['parity']['pearson_psysc_single_vs_multi'], '.6f')}",
    ]
    fc = summary.get("psysc_first_call")
    if fc:
        lines.append(
            f"- psysc's first call after installation compiles its kernels (cached on disk for every later call): "
            f"{fc['compile_s']:.1f} s on 2,000 cells, peak RSS {fc['peak_rss_gb']:.2f} GB, in a separate process "
            "before the measured runs"
        )
    if summary.get("problems"):
        lines += ["", "Problems:", ""] + [f"- {x}" for x in summary["problems"]]
    lines += ["", "```", summary["final_line"], "```", ""]
    path.write_text("\n".join(lines))


def add_data_arguments(ap: argparse.ArgumentParser, defaults: dict, traits_help: str) -> None:
    """The options of the synthetic data, the gene sets, the device and the threads (shared by the benchmarks)."""
    ap.add_argument("--n-cells", type=int, default=defaults["n_cells"])
    ap.add_argument("--n-genes", type=int, default=defaults["n_genes"])
    ap.add_argument("--density", type=float, default=defaults["density"])
    ap.add_argument("--n-ctrl", type=int, default=defaults["n_ctrl"])
    ap.add_argument("--n-traits", type=int, default=defaults["n_traits"], help=traits_help)
    ap.add_argument("--device", default="cpu", help="psysc's device: 'cpu' or 'cuda' (the torch kernels on the GPU)")
    ap.add_argument("--gs-size", type=int, default=1000, help="genes per gene set")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="threads per tool (default: all available cores)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_data_arguments(ap, DEFAULTS, "traits of the multi-trait psysc run")
    ap.add_argument("--skip-scdrs", action="store_true")
    ap.add_argument("--skip-psysc", action="store_true")
    ap.add_argument("--skip-multi", action="store_true", help="skip the multi-trait psysc run")
    ap.add_argument("--workdir", type=Path, default=None, help="keep data and scores here (reused if present)")
    ap.add_argument("--out-name", default=None, help="results file stem (default scoring_<machine>[_<size>])")
    ap.add_argument("--no-save", action="store_true", help="do not write benchmarks/results/")
    ap.add_argument(
        "--no-warmup", action="store_true", help="time the first call (includes numba JIT compilation in psysc)"
    )
    ap.add_argument("--repeats", type=int, default=1,
                    help="psysc runs of each kind (1 trait, several), alternating; each reports its median run")
    ap.add_argument("--worker", choices=("scdrs", "psysc"), help=argparse.SUPPRESS)
    ap.add_argument("--job", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")

    if args.worker == "scdrs":
        worker_scdrs(args.job)
        return 0
    if args.worker == "psysc":
        worker_psysc(args.job)
        return 0

    machine = machine_info_for(args.device)
    threads = args.threads or machine["n_cpus_available"]
    tmp = None
    if args.workdir is None:
        tmp = tempfile.mkdtemp(prefix="psysc-bench-")
        work = Path(tmp)
    else:
        work = args.workdir
        work.mkdir(parents=True, exist_ok=True)
    run_dir = work / f"run_{os.getpid()}"
    run_dir.mkdir()
    problems: list[str] = []
    try:
        h5ad, gs_csv, data_stats = make_data(args, work)
        base = {"h5ad": str(h5ad), "gene_sets": str(gs_csv), "threads": threads, "n_ctrl": args.n_ctrl,
                "device": args.device,
                "out_dir": str(run_dir), "warmup": not args.no_warmup}
        runs: dict[str, dict | None] = {"scdrs": None, "psysc": None, f"psysc_{args.n_traits}traits": None}
        first_call = None
        repeats = None
        if not args.skip_scdrs:
            runs["scdrs"] = run_worker(
                "scdrs", {**base, "tag": "scdrs", "traits": ["T1"], "result": str(run_dir / "res_scdrs.json")},
                work, threads,
            )
        if not args.skip_psysc:
            # first call of an install: numba compiles psysc's kernels and caches them on disk; do it in a process
            # of its own so that the measured workers see what every later call sees (recorded separately)
            compile_job = {**base, "tag": "psysc_compile", "traits": ["T1"], "compile_only": True, "warmup": True,
                           "result": str(run_dir / "res_psysc_compile.json")}
            job_path = work / "job_psysc_compile.json"
            job_path.write_text(json.dumps(compile_job))
            _log("compiling psysc's kernels (first call of an install) ...")
            subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", "psysc", "--job", str(job_path)],
                           env=_worker_env(threads), cwd=str(REPO), check=True)
            compile_res = json.loads(Path(compile_job["result"]).read_text())
            _log(f"first call (JIT compilation included): {compile_res['compile_s']:.1f} s, "
                 f"peak RSS {compile_res['peak_rss_gb']:.2f} GB")
            first_call = compile_res
            # the 1-trait and the multi-trait runs alternate, each in a fresh process: a slow spell of the machine
            # then falls on both; with --repeats N each reports its median run (by total time)
            multi = not args.skip_multi and args.n_traits > 1
            jobs = {"psysc": ["T1"]}
            if multi:
                jobs[f"psysc_{args.n_traits}traits"] = [f"T{i + 1}" for i in range(args.n_traits)]
            reps: dict[str, list[dict]] = {name: [] for name in jobs}
            for rep in range(args.repeats):
                for name, traits in jobs.items():
                    tag = name if rep == 0 else f"{name}_rep{rep + 1}"
                    reps[name].append(run_worker(
                        "psysc", {**base, "tag": tag, "traits": traits, "result": str(run_dir / f"res_{tag}.json")},
                        work, threads,
                    ))
            for name, results in reps.items():
                runs[name] = median_run(results)
            if args.repeats > 1:
                repeats = repeat_summary(reps, f"psysc_{args.n_traits}traits" if multi else None)
        for name, res in runs.items():
            if res is not None and res.get("failed"):
                problems.append(f"{name} worker failed (exit code {res['returncode']})")
            if _ok(res) and res.get("contract_problems"):
                problems += [f"{name}: {x}" for x in res["contract_problems"]]

        # ---- parity -----------------------------------------------------------------------------------------
        multi_tag = f"psysc_{args.n_traits}traits"
        parity = {
            "pearson_norm_score": _pearson(run_dir / "scdrs_norm_score.npy", run_dir / "psysc_T1_norm_score.npy"),
            "pearson_raw_score": _pearson(run_dir / "scdrs_raw_score.npy", run_dir / "psysc_T1_raw_score.npy"),
            "pearson_psysc_single_vs_multi": _pearson(
                run_dir / "psysc_T1_norm_score.npy", run_dir / f"{multi_tag}_T1_norm_score.npy"
            ),
        }

        # ---- ratios -----------------------------------------------------------------------------------------
        s, p, mt = runs["scdrs"], runs["psysc"], runs[multi_tag]

        def ratio(a, b, key):
            return a[key] / b[key] if _ok(a) and _ok(b) and b[key] > 0 else None

        ratios = {
            "speedup_total": ratio(s, p, "total_s"),
            "speedup_preprocess": ratio(s, p, "preprocess_s"),
            "speedup_score": ratio(s, p, "score_s"),
            "memory_ratio": ratio(s, p, "peak_rss_gb"),
            "multi_over_single_score": ratio(mt, p, "score_s"),
            "multi_over_single_total": ratio(mt, p, "total_s"),
            "multi_over_single_visits": ratio(mt, p, "membership_visits"),
        }

        def part(name, res):
            if not _ok(res):
                return f"{name}: {'failed' if res else 'skipped'}"
            return f"{name}: {res['total_s']:.1f} s, {res['peak_rss_gb']:.2f} GB"

        final_line = (
            f"{part('scdrs', s)} | {part('psysc', p)} | speed-up {_x(ratios['speedup_total'], '.1f')}, "
            f"memory ratio {_x(ratios['memory_ratio'], '.2f')} | {args.n_traits} traits / 1 trait: "
            f"{_x(ratios['multi_over_single_score'], '.2f')}"
        )

        # ---- report -----------------------------------------------------------------------------------------
        print()
        print(f"machine: {machine['cpu_model']}, {machine['n_cpus_available']} cores, {threads} threads per tool"
              + (f", GPU {machine['gpu']}" if machine.get("gpu") else ""))
        print(
            f"data: {data_stats['n_cells']:,} x {data_stats['n_genes']:,}, density {data_stats['density']:.4f}, "
            f"n_ctrl {args.n_ctrl}"
        )
        for name, res in runs.items():
            if _ok(res):
                print(
                    f"{name:>16}: prepare {res['preprocess_s']:8.1f} s  score {res['score_s']:8.1f} s  "
                    f"total {res['total_s']:8.1f} s  peak RSS {res['peak_rss_gb']:6.2f} GB "
                    f"(after load {res['rss_after_load_gb']:.2f} GB)  warm-up {_fmt(res.get('warmup_s'), '.1f')} s"
                )
            elif res is not None:
                print(f"{name:>16}: FAILED")
        print(
            f"speed-up (total): {_x(ratios['speedup_total'], '.2f')}  "
            f"(prepare {_x(ratios['speedup_preprocess'], '.2f')}, score {_x(ratios['speedup_score'], '.2f')})"
        )
        print(f"memory ratio (scdrs / psysc peak RSS): {_x(ratios['memory_ratio'], '.2f')}")
        print(f"psysc {args.n_traits} traits / 1 trait: score {_x(ratios['multi_over_single_score'], '.2f')}, "
              f"total {_x(ratios['multi_over_single_total'], '.2f')}, kernel visits "
              f"{_x(ratios['multi_over_single_visits'], '.2f')}")
        for line in repeat_lines(repeats, args.n_traits):
            print(line.lstrip(" -"))
        for name in ("psysc", multi_tag):
            if _ok(runs[name]) and "output_first_write_s" in runs[name]:
                print(f"{name}: first write into fresh memory of the output's size ({runs[name]['output_gb']:.2f} GB): "
                      f"{runs[name]['output_first_write_s']:.2f} s (included in its score time)")
        print(f"Pearson r norm_score scdrs vs psysc: {_fmt(parity['pearson_norm_score'], '.4f')} "
              f"(raw_score {_fmt(parity['pearson_raw_score'], '.6f')}); psysc T1 1-trait vs {args.n_traits}-trait run: "
              f"{_fmt(parity['pearson_psysc_single_vs_multi'], '.6f')}")
        for x in problems:
            print(f"PROBLEM: {x}")

        summary = {
            "date": _dt.datetime.now().isoformat(timespec="seconds"),
            "command": " ".join(["python benchmarks/bench_scoring.py", *(sys.argv[1:] if argv is None else argv)]),
            "loadavg_1_5_15min_at_end": list(os.getloadavg()),
            "machine": machine,
            "versions": package_versions(),
            "params": {
                "n_cells": args.n_cells, "n_genes": args.n_genes, "density": args.density, "n_ctrl": args.n_ctrl,
                "n_traits": args.n_traits, "gs_size": args.gs_size, "seed": args.seed, "threads": threads,
                "warmup": not args.no_warmup, "device": args.device,
                "normalisation": "scanpy normalize_total(target_sum=1e4) + log1p, CSR float32",
                "scdrs_call": "scdrs.preprocess(adata); scdrs.score_cell(adata, genes, gene_weight=weights, "
                              "n_ctrl=n_ctrl, weight_opt='vs', return_ctrl_norm_score=True)",
                "psysc_call": "psysc.pp.prepare_scoring(adata); psysc.tl.score_disorders(adata, gene_sets, "
                              f"n_ctrl=n_ctrl, device={args.device!r})",
            },
            "data": data_stats,
            "runs": runs,
            "psysc_first_call": first_call,
            "repeats": repeats,
            "ratios": ratios,
            "parity": parity,
            "problems": problems,
            "final_line": final_line,
        }
        if not args.no_save:
            RESULTS.mkdir(exist_ok=True)
            stem = args.out_name
            if stem is None:
                stem = f"scoring_{machine['hostname_tag']}"
                if (args.n_cells, args.n_genes, args.density, args.n_ctrl) != (
                    DEFAULTS["n_cells"], DEFAULTS["n_genes"], DEFAULTS["density"], DEFAULTS["n_ctrl"]
                ):
                    stem += f"_{args.n_cells}x{args.n_genes}_d{args.density:g}_ctrl{args.n_ctrl}"
            (RESULTS / f"{stem}.json").write_text(json.dumps(summary, indent=2))
            write_markdown(summary, RESULTS / f"{stem}.md")
            print(f"results: {RESULTS / (stem + '.json')} and .md")
        print(final_line)
        return 0 if not problems else 1
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
