"""Benchmark: Geneformer cell embeddings, psysc versus a reference pipeline that does what the official
``EmbExtractor`` does, on CPU; and the peak memory of psysc on a backed h5ad of 200,000 cells.

Run from the repository root (see benchmarks/README.md)::

    python benchmarks/bench_embed.py                 # speed: V1-10M-shaped (300 cells), V2-104M-shaped (24 cells)
    python benchmarks/bench_embed.py --memory        # memory: 200,000 backed cells, tiny V1-shaped model

Speed (one process, the same cells and the same weights for both pipelines):

1. randomly initialised ``transformers.BertForMaskedLM`` checkpoints shaped like Geneformer V1-10M and
   V2-104M are saved in the official layout (``save_pretrained``: ``config.json`` + ``model.safetensors``);
2. brain-nucleus-like raw counts (``benchmarks/_brainlike.py``: ~2,000 detected genes per cell, log-normal spread,
   800-3,500) over the Ensembl IDs of the model's vocabulary (read from psysc's Geneformer dictionaries) in an
   in-memory AnnData;
3. psysc: ``psysc.tl.embed(adata, model=<dir>, device="cpu")``, timed as a whole (loading, tokenisation,
   forward passes);
4. reference: the token ids come from psysc's tokenizer (``model.tokenize``, timed and added to the reference's
   total, so that only the model loading and the forward passes differ), then the official recipe:
   ``BertForMaskedLM.from_pretrained(dir, output_hidden_states=True)``, fp32, ``eval()``, ``torch.no_grad()``,
   batches of 100 cells right-padded with ``<pad>`` to the batch's longest cell with an attention mask,
   ``hidden_states[L - 1]`` (official ``emb_layer=-1``), masked mean over the real tokens (V1, ``emb_mode="cell"``)
   or position 0 (V2, ``emb_mode="cls"``). Cells are batched in input order (``--ref-order input``, default) and,
   with ``--ref-order input,sorted``, also sorted by decreasing length as ``EmbExtractor.downsample_and_sort``
   does. The full masked-LM forward is run, as officially (the logits are computed and discarded); on a CPU
   with little memory a padded 100-cell batch is pushed through the model in row slices of the same padded
   width so that the logits stay under ``--ref-logits-gb`` (the arithmetic per cell is unchanged);
5. both embeddings are compared (max abs difference) and cells/s are reported.

Memory (``--memory``): a 200,000-cell h5ad of brain-like counts (CSR, float32, written in row chunks with
anndata's ``write_elem`` + ``sparse_dataset().append``) is embedded by a separate worker process with
``psysc.tl.embed(anndata.read_h5ad(path, backed="r"), model=<tiny V1-shaped checkpoint>, device="cpu",
block_size=2048)``; the worker reports its peak RSS (``VmHWM``, :func:`_machine.peak_rss_bytes`) and the largest
VmRSS sampled every 20 ms by a thread.

scGPT (``--models scGPT-brain``; e.g. ``python benchmarks/bench_embed.py --models scGPT-brain --out-name
cpu-2core_scgpt``): a randomly initialised checkpoint shaped like the brain model (12 layers, 512 dimensions, 8 heads,
``d_hid`` 512, the official 60,697-token vocabulary; ``best_model.pt`` + ``vocab.json`` + ``args.json`` written by
``psysc.testing.random_scgpt_checkpoint`` with the official key names) and brain-like raw counts over the vocabulary's
gene symbols (~2,000 detected genes per cell, so most cells are sampled down to 1,200 tokens):

1. psysc: ``psysc.tl.embed(adata, model=<dir>, device="cpu")``, timed as a whole (loading with the sha256 of the
   files, tokenisation, forward passes);
2. reference: what the official ``scgpt.tasks.embed_data`` does on a CPU, written here from the official code
   (no ``scgpt`` import): vocabulary match by symbol, ``adata.X.A`` (dense), per cell the non-zero genes with
   ``<cls>`` first (value ``pad_value`` -2), ``DataCollator`` binning (``np.quantile`` edges, ``np.digitize`` both
   ways, ``np.random.rand`` tie breaking) and ``torch.randperm`` sampling to 1,200 tokens, batches of 64 (in input
   order) padded with ``<pad>`` / -2; the model is the official ``TransformerModel`` on its PyTorch path
   (``nn.TransformerEncoder`` of ``nn.TransformerEncoderLayer(batch_first=True)``, the state dict loaded after the
   official ``Wqkv`` -> ``in_proj`` renaming), ``eval()``, ``torch.no_grad()``, ``_encode`` with
   ``src_key_padding_mask``, position 0, L2 normalisation. Preprocessing, loading and forward passes are timed;
3. correctness: psysc's token sequences of some cells are run through the reference network (not timed) and the
   embeddings compared (the two pipelines draw different random numbers, so their own outputs differ by design).

Results: ``benchmarks/results/embed_<machine>.json`` and ``.md`` (``<machine>`` = ``cpu-<cores>core``); the speed and
memory runs each update their own section of the same files.
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
import threading
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))
from _machine import cpu_model as _cpu_model  # noqa: E402
from _machine import gpu_name, machine_tag, peak_rss_bytes, status_bytes  # noqa: E402
from _machine import n_cores as _n_cores  # noqa: E402

GB = 1e9
#: Geneformer shapes (ctheodoris/Geneformer config.json at HF revision 05fcbeb)
SHAPES = {
    "V1-10M": dict(vocab_size=25_426, hidden_size=256, num_hidden_layers=6, num_attention_heads=4,
                   intermediate_size=512, max_position_embeddings=2048, hidden_dropout_prob=0.02,
                   attention_probs_dropout_prob=0.02),
    "V2-104M": dict(vocab_size=20_275, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                    intermediate_size=3072, max_position_embeddings=4096, hidden_dropout_prob=0.1,
                    attention_probs_dropout_prob=0.1),
}
COMMON = dict(model_type="bert", hidden_act="relu", layer_norm_eps=1e-12, pad_token_id=0, type_vocab_size=2,
              position_embedding_type="absolute", initializer_range=0.02)
VERSION = {"V1-10M": "V1", "V2-104M": "V2"}
#: the tiny checkpoint of the memory run: V1 vocabulary (so psysc tokenises it as V1); 2 layers so that the
#: default emb_layer=-1 (second-to-last layer) runs one real attention layer (with 1 layer it would read the
#: embedding layer and run no attention at all); 1 head, which halves the attention time of 2 heads and changes
#: no memory: torch's CPU SDPA kernel is blocked and never holds the length x length score matrix
TINY = dict(vocab_size=25_426, hidden_size=16, num_hidden_layers=2, num_attention_heads=1, intermediate_size=32,
            max_position_embeddings=2048, hidden_dropout_prob=0.02, attention_probs_dropout_prob=0.02)


# ------------------------------------------------------------------------------------------------ utilities
def _log(msg: str) -> None:
    print(f"[{_dt.datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def _peak_rss_gb() -> float:
    """Peak resident set size of this process so far (GB = 1e9 bytes): :func:`_machine.peak_rss_bytes`."""
    return peak_rss_bytes() / GB


def _current_rss_gb() -> float:
    """Resident set size of this process now (GB = 1e9 bytes; NaN off Linux)."""
    rss = status_bytes("VmRSS")
    return float("nan") if rss is None else rss / GB


class RssSampler:
    """Samples VmRSS of this process every ``interval`` seconds in a daemon thread; keeps the maximum."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.peak = 0.0
        self.n = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _current_rss_gb())
            self.n += 1
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _current_rss_gb())


def _mem_total_gb() -> float:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024 / GB
    except OSError:  # pragma: no cover
        pass
    return float("nan")


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("psysc", "torch", "transformers", "safetensors", "anndata", "h5py", "numpy", "scipy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def _torch_info() -> dict:
    import torch

    return {
        "num_threads": torch.get_num_threads(),
        "num_interop_threads": torch.get_num_interop_threads(),
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "mkl": bool(torch.backends.mkl.is_available()),
    }


def _loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return []


def _summary(x) -> dict:
    x = np.asarray(x, dtype=np.float64)
    q = np.percentile(x, [5, 50, 95])
    return {"mean": float(x.mean()), "min": float(x.min()), "p5": float(q[0]), "median": float(q[1]),
            "p95": float(q[2]), "max": float(x.max())}


def vocab_gene_ids(version: str) -> tuple[list[str], str]:
    """Ensembl IDs of a Geneformer vocabulary (special tokens excluded), in token order, from psysc's dictionaries."""
    from psysc.models.geneformer._dictionaries import token_dictionary

    tokens = token_dictionary(version)
    genes = [g for g, _ in sorted(tokens.items(), key=lambda kv: kv[1]) if not g.startswith("<")]
    return genes, f"psysc.models.geneformer._dictionaries.token_dictionary({version!r})"


def save_checkpoint(directory: Path, shape: dict, seed: int) -> dict:
    """A randomly initialised BertForMaskedLM saved with save_pretrained (config.json + model.safetensors)."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    cfg = BertConfig(**{**COMMON, **shape})
    torch.manual_seed(seed)
    model = BertForMaskedLM(cfg)
    model.save_pretrained(directory, safe_serialization=True)
    files = sorted(p.name for p in directory.iterdir())
    if "model.safetensors" not in files or "config.json" not in files:
        raise RuntimeError(f"save_pretrained wrote {files}, not the official layout")
    n_params = sum(p.numel() for p in model.parameters())
    return {"files": files, "n_parameters": int(n_params),
            "safetensors_bytes": (directory / "model.safetensors").stat().st_size}


# ------------------------------------------------------------------------------------------------ reference
def reference_embed(model_dir, tokens, *, version: str, order: str = "input", batch: int = 100,
                    emb_layer: int = -1, logits_gb: float = 4.0, encoder_only: bool = False, device: str = "cpu"):
    """What the official ``EmbExtractor`` computes, from psysc's token ids; returns (embeddings, timings, stats).

    ``from_pretrained(dir, output_hidden_states=True)``, fp32, eval, no_grad, batches of ``batch`` cells right-padded
    to their longest cell, ``hidden_states[L + emb_layer]``, V1 masked mean / V2 position 0. Output rows in input
    order (NaN for cells without tokens, which the official code drops).
    """
    import torch
    from transformers import BertForMaskedLM

    t0 = time.perf_counter()
    model = BertForMaskedLM.from_pretrained(str(model_dir), output_hidden_states=True)
    model.eval()
    model.to(device)
    t_load = time.perf_counter() - t0
    if next(model.parameters()).dtype != torch.float32:
        raise RuntimeError(f"from_pretrained gave {next(model.parameters()).dtype}, not float32")
    cfg = model.config
    layer_to_quant = cfg.num_hidden_layers + emb_layer
    pooling = "cls" if version == "V2" else "mean"
    lengths = tokens.lengths
    n = tokens.n_cells
    out = np.full((n, cfg.hidden_size), np.nan, dtype=np.float32)
    cells = np.flatnonzero(lengths > 0)
    if order == "sorted":  # downsample_and_sort: by decreasing length (the official sort is not stable either)
        cells = cells[np.argsort(-lengths[cells], kind="stable")]
    elif order != "input":
        raise ValueError(f"order must be 'input' or 'sorted', not {order!r}")
    padded_tokens = 0
    n_passes = 0
    t0 = time.perf_counter()
    with torch.no_grad():
        for b in range(0, len(cells), batch):
            idx = cells[b : b + batch]
            lens = lengths[idx]
            width = int(lens.max())
            ids = np.full((len(idx), width), cfg.pad_token_id, dtype=np.int64)
            for r, i in enumerate(idx):
                ids[r, : lens[r]] = tokens.cell(i)
            mask = (np.arange(width)[None, :] < lens[:, None]).astype(np.int64)
            padded_tokens += ids.size
            # row slices of the padded batch (same width) so that the masked-LM logits fit in memory
            per_pass = len(idx) if encoder_only else max(1, int(logits_gb * GB // (width * cfg.vocab_size * 4)))
            for r in range(0, len(idx), per_pass):
                t_ids = torch.from_numpy(ids[r : r + per_pass]).to(device)
                t_mask = torch.from_numpy(mask[r : r + per_pass]).to(device)
                if encoder_only:
                    outputs = model.bert(input_ids=t_ids, attention_mask=t_mask, output_hidden_states=True)
                else:
                    outputs = model(input_ids=t_ids, attention_mask=t_mask)
                h = outputs.hidden_states[layer_to_quant]
                if pooling == "cls":
                    emb = h[:, 0, :]
                else:  # mean_nonpadding_embs
                    m = t_mask.unsqueeze(2).to(h.dtype)
                    emb = (h * m).sum(1) / t_mask.sum(1, keepdim=True).to(h.dtype)
                out[idx[r : r + per_pass]] = emb.float().cpu().numpy()
                n_passes += 1
                del outputs, h
    t_forward = time.perf_counter() - t0
    stats = {"padded_tokens": int(padded_tokens), "real_tokens": int(lengths.sum()), "forward_calls": n_passes,
             "padding_fraction": 1 - float(lengths.sum()) / padded_tokens if padded_tokens else 0.0,
             "attn_implementation": getattr(cfg, "_attn_implementation", None)}
    return out, {"load_s": t_load, "forward_s": t_forward}, stats


def psysc_padding(lengths: np.ndarray, *, block_size: int, batch_size: int) -> dict:
    """Padding of psysc's batching (cells sorted by decreasing length within each row block), for the report."""
    padded = 0
    for s in range(0, len(lengths), block_size):
        lens = np.sort(lengths[s : s + block_size])[::-1]
        lens = lens[lens > 0]
        for b in range(0, len(lens), batch_size):
            padded += int(lens[b]) * len(lens[b : b + batch_size])
    return {"padded_tokens": padded, "real_tokens": int(lengths.sum()),
            "padding_fraction": 1 - float(lengths.sum()) / padded if padded else 0.0}


def padding_at_scale(genes, version: str, *, n: int, seed: int, ref_batch: int, psysc_batch: int) -> dict:
    """Padded-token fraction of each batching on ``n`` cells of the same generator (token lengths only).

    Every gene of the AnnData is a vocabulary gene, so a cell's length is its number of detected genes, cut at 2,048
    (V1) or 4,094 + <cls> + <eos> (V2); no model is run.
    """
    from _brainlike import BrainLikeCounts

    if n <= 0:
        return {}
    det = np.diff(BrainLikeCounts(genes, n, seed=seed).block(0, n).indptr)
    lengths = np.minimum(det, 2048) if version == "V1" else np.minimum(det, 4094) + 2

    def frac(order, batch):
        padded = sum(int(lengths[order[b : b + batch]].max()) * len(order[b : b + batch])
                     for b in range(0, n, batch))
        return 1 - float(lengths.sum()) / padded

    return {"n_cells": n,
            f"reference_input_order_batch{ref_batch}": frac(np.arange(n), ref_batch),
            f"reference_sorted_batch{ref_batch}": frac(np.argsort(-lengths, kind="stable"), ref_batch),
            f"psysc_sorted_in_blocks_of_2048_batch{psysc_batch}":
                psysc_padding(lengths, block_size=2048, batch_size=psysc_batch)["padding_fraction"]}


# ------------------------------------------------------------------------------------------------ speed
def run_speed(args) -> dict:
    import torch
    from _brainlike import BrainLikeCounts

    import psysc

    psysc.settings.verbosity = 1  # no progress bars in the timings
    if args.threads:
        torch.set_num_threads(args.threads)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="psysc_bench_embed_"))
    workdir.mkdir(parents=True, exist_ok=True)
    orders = [o.strip() for o in args.ref_order.split(",") if o.strip()]
    result = {"settings": {"ref_batch": args.ref_batch, "ref_order": orders, "ref_logits_gb": args.ref_logits_gb,
                           "psysc_block_size": 2048, "psysc_batch_size": "default (16 on the CPU)",
                           "device": args.device,
                           "dtype": "auto (float32 on the CPU; on CUDA the official precision: Geneformer float32, "
                                    "scGPT float16)",
                           "emb_layer": -1, "seed": args.seed,
                           "encoder_only_reference": args.ref_encoder_only},
              "torch": _torch_info(), "models": {}}
    _log(f"torch threads: {torch.get_num_threads()} (interop {torch.get_num_interop_threads()}); workdir {workdir}")
    try:
        for name, n_cells in (("V1-10M", args.n_cells_v1), ("V2-104M", args.n_cells_v2)):
            if n_cells <= 0 or name not in args.models:
                continue
            version = VERSION[name]
            res = {"n_cells": n_cells, "version": version}
            mdir = workdir / f"bert-{name}"
            t = time.perf_counter()
            if not (mdir / "model.safetensors").exists():
                res["checkpoint"] = save_checkpoint(mdir, SHAPES[name], seed=args.seed)
            res["checkpoint_s"] = time.perf_counter() - t
            res["shape"] = SHAPES[name]
            genes, source = vocab_gene_ids(version)
            res["genes_source"] = source
            gen = BrainLikeCounts(genes, n_cells, seed=args.seed + (0 if version == "V1" else 1))
            adata = gen.anndata()
            det = np.diff(adata.X.indptr)
            res["data"] = {"n_genes": adata.n_vars, "detected_genes_per_cell": _summary(det),
                           "umis_per_cell": _summary(adata.obs["n_counts"])}
            _log(f"{name}: {n_cells} cells x {adata.n_vars} genes, detected genes/cell median "
                 f"{np.median(det):.0f} ({det.min()}-{det.max()}); checkpoint in {mdir}")

            # warm-up of both pipelines on one short cell (dictionaries, kernels, page cache), not timed
            warm = adata[:1].copy()
            warm.X = sp.csr_matrix((warm.X.data[:64], warm.X.indices[:64], [0, 64]), shape=warm.shape)
            warm.obs["n_counts"] = float(warm.X.sum())
            psysc.tl.embed(warm, model=str(mdir), device=args.device)
            m0 = psysc.models.load(str(mdir))
            reference_embed(mdir, m0.tokenize(warm), version=version, batch=args.ref_batch,
                            logits_gb=args.ref_logits_gb, encoder_only=args.ref_encoder_only, device=args.device)
            del m0, warm

            # (a) psysc, everything included
            _log(f"{name}: psysc.tl.embed ...")
            res["loadavg_before_psysc"] = _loadavg()
            t = time.perf_counter()
            psysc.tl.embed(adata, model=str(mdir), device=args.device)
            t_psysc = time.perf_counter() - t
            key = [k for k in adata.obsm if k.startswith("X_")][0]
            emb_psysc = np.asarray(adata.obsm[key])
            prov = adata.uns["psysc"]["embed"][key]
            res["psysc"] = {"total_s": t_psysc, "cells_per_s": n_cells / t_psysc, "obsm_key": key,
                            "batch_size": prov.get("batch_size"), "options": prov.get("options")}
            _log(f"{name}: psysc {t_psysc:.1f} s = {n_cells / t_psysc:.2f} cells/s")

            # psysc's parts, for the reference (tokens) and the breakdown
            t = time.perf_counter()
            model = psysc.models.load(str(mdir))
            t_load = time.perf_counter() - t
            t = time.perf_counter()
            toks = [model.tokenize(adata, rows=slice(s, min(s + 2048, n_cells))) for s in range(0, n_cells, 2048)]
            t_tok = time.perf_counter() - t
            from psysc.models import Tokens

            tokens = Tokens.from_list([tk.cell(i) for tk in toks for i in range(tk.n_cells)])
            lengths = tokens.lengths
            if version == "V2":
                firsts = np.array([tokens.cell(i)[0] for i in range(n_cells) if lengths[i]])
                lasts = np.array([tokens.cell(i)[-1] for i in range(n_cells) if lengths[i]])
                if not ((firsts == model.tokenizer.cls_id).all() and (lasts == model.tokenizer.eos_id).all()):
                    raise RuntimeError("psysc's V2 tokens do not start with <cls> and end with <eos>")
            res["tokens"] = {"length": _summary(lengths), "n_empty": int((lengths == 0).sum()),
                             "n_truncated": int((lengths >= model.tokenizer.model_input_size).sum())}
            res["psysc"].update({"load_s": t_load, "tokenize_s": t_tok,
                                 "forward_s_est": t_psysc - t_load - t_tok,
                                 "padding": psysc_padding(lengths, block_size=2048,
                                                          batch_size=int(prov.get("batch_size") or 16))})
            del model

            # (b) the reference, once per batching order
            res["reference"] = {}
            for order in orders:
                _log(f"{name}: reference (BertForMaskedLM, batches of {args.ref_batch}, {order} order) ...")
                load_before = _loadavg()
                emb_ref, times, stats = reference_embed(mdir, tokens, version=version, order=order,
                                                        batch=args.ref_batch, logits_gb=args.ref_logits_gb,
                                                        encoder_only=args.ref_encoder_only, device=args.device)
                total = t_tok + times["load_s"] + times["forward_s"]
                both = np.isfinite(emb_ref[:, 0]) & np.isfinite(emb_psysc[:, 0])
                diff = np.abs(emb_ref[both] - emb_psysc[both])
                scale = float(np.abs(emb_ref[both]).max())
                cos = np.sum(emb_ref[both] * emb_psysc[both], 1) / (
                    np.linalg.norm(emb_ref[both], axis=1) * np.linalg.norm(emb_psysc[both], axis=1))
                r = {"tokenize_s (psysc tokenizer)": t_tok, **times, "total_s": total,
                     "cells_per_s": n_cells / total, "forward_cells_per_s": n_cells / times["forward_s"], **stats,
                     "max_abs_diff_vs_psysc": float(diff.max()), "mean_abs_diff_vs_psysc": float(diff.mean()),
                     "max_abs_value": scale, "min_cosine_vs_psysc": float(cos.min()),
                     "loadavg_before": load_before, "loadavg_after": _loadavg(),
                     "n_compared": int(both.sum()), "same_nan_rows": bool(
                         (np.isnan(emb_ref[:, 0]) == np.isnan(emb_psysc[:, 0])).all()),
                     "speedup_psysc_total": total / t_psysc,
                     "speedup_psysc_forward_est": times["forward_s"] / max(t_psysc - t_load - t_tok, 1e-9)}
                res["reference"][order] = r
                _log(f"{name}: reference ({order}) {total:.1f} s = {n_cells / total:.2f} cells/s; psysc is "
                     f"{r['speedup_psysc_total']:.2f}x; max |diff| {r['max_abs_diff_vs_psysc']:.2e}")
            res["padding_at_scale"] = padding_at_scale(genes, version, n=args.scale_cells, seed=args.seed + 7,
                                                       ref_batch=args.ref_batch,
                                                       psysc_batch=int(prov.get("batch_size") or 16))
            result["models"][name] = res
            del adata, tokens, toks, emb_psysc
        if SCGPT_NAME in args.models and args.n_cells_scgpt > 0:
            result["settings"]["scgpt_ref_batch"] = args.scgpt_ref_batch
            result["scgpt"] = run_scgpt_speed(args, workdir)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


def print_speed(res: dict) -> None:
    if not res["models"]:  # a scGPT-only run
        if "scgpt" in res:
            print_scgpt(res["scgpt"])
        return
    print()
    print(f"Speed, CPU: torch threads {res['torch']['num_threads']}; token ids from psysc's tokenizer in both "
          "pipelines, so only model loading and the forward passes differ (tokenisation time is added to the "
          "reference's total)")
    hdr = f"{'model':8s} {'pipeline':34s} {'cells':>6s} {'load s':>7s} {'token s':>8s} {'fwd s':>8s} " \
          f"{'total s':>8s} {'cells/s':>8s} {'pad %':>6s}"
    print(hdr)
    print("-" * len(hdr))
    for name, m in res["models"].items():
        p = m["psysc"]
        print(f"{name:8s} {'psysc.tl.embed':34s} {m['n_cells']:6d} {p['load_s']:7.2f} {p['tokenize_s']:8.2f} "
              f"{p['forward_s_est']:8.1f} {p['total_s']:8.1f} {p['cells_per_s']:8.3f} "
              f"{100 * p['padding']['padding_fraction']:6.1f}")
        for order, r in m["reference"].items():
            label = f"reference BertForMaskedLM ({order})"
            print(f"{name:8s} {label:34s} {m['n_cells']:6d} {r['load_s']:7.2f} "
                  f"{r['tokenize_s (psysc tokenizer)']:8.2f} {r['forward_s']:8.1f} {r['total_s']:8.1f} "
                  f"{r['cells_per_s']:8.3f} {100 * r['padding_fraction']:6.1f}")
        for order, r in m["reference"].items():
            print(f"  {name} {order}: psysc / reference = {r['speedup_psysc_total']:.2f}x (total), "
                  f"~{r['speedup_psysc_forward_est']:.2f}x (forward only); max |psysc - reference| = "
                  f"{r['max_abs_diff_vs_psysc']:.2e} (values up to {r['max_abs_value']:.2f}; min cosine "
                  f"{r['min_cosine_vs_psysc']:.8f})")
        t = m["tokens"]
        if m.get("padding_at_scale"):
            n_scale = m["padding_at_scale"]["n_cells"]
            print(f"  {name} padded-token fraction at scale ({n_scale:,} cells, lengths only): "
                  + ", ".join(f"{k} {100 * v:.1f}%" for k, v in m["padding_at_scale"].items() if k != "n_cells"))
        limit = "2,048" if m["version"] == "V1" else "4,096"
        print(f"  {name} tokens/cell: median {t['length']['median']:.0f}, {t['length']['min']:.0f}-"
              f"{t['length']['max']:.0f}; {t['n_truncated']} cells at the {limit}-token limit")
    if "scgpt" in res:
        print_scgpt(res["scgpt"])


# ------------------------------------------------------------------------------------------------ scGPT
#: the brain checkpoint's architecture (args.json of scGPT_brain; identical for whole-human)
SCGPT_SHAPE = dict(nlayers=12, embsize=512, nheads=8, d_hid=512)
SCGPT_NAME = "scGPT-brain"


def scgpt_reference_model(model_dir: Path):
    """The official ``TransformerModel`` as built by ``embed_data`` on the PyTorch path, loaded from best_model.pt.

    Module names are the official ones (``encoder``, ``value_encoder``, ``transformer_encoder``, ``decoder``,
    ``mvc_decoder``, ``flag_encoder``), so the checkpoint loads with ``strict=True`` after the official renaming
    ``self_attn.Wqkv.`` -> ``self_attn.in_proj_``.
    """
    import torch
    from torch import nn

    args = json.loads((model_dir / "args.json").read_text())
    ntoken = len(json.loads((model_dir / "vocab.json").read_text()))
    d, dropout = args["embsize"], args["dropout"]

    class GeneEncoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(ntoken, d)
            self.enc_norm = nn.LayerNorm(d)

        def forward(self, x):
            return self.enc_norm(self.embedding(x))

    class ContinuousValueEncoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.dropout = nn.Dropout(dropout)
            self.linear1 = nn.Linear(1, d)
            self.activation = nn.ReLU()
            self.linear2 = nn.Linear(d, d)
            self.norm = nn.LayerNorm(d)

        def forward(self, x):
            x = torch.clamp(x.unsqueeze(-1), max=512)
            return self.dropout(self.norm(self.linear2(self.activation(self.linear1(x)))))

    class MVCDecoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.gene2query = nn.Linear(d, d)
            self.W = nn.Linear(d, d, bias=False)

    class ExprDecoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Sequential(nn.Linear(d, d), nn.LeakyReLU(), nn.Linear(d, d), nn.LeakyReLU(), nn.Linear(d, 1))

    class TransformerModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = GeneEncoder()
            self.flag_encoder = nn.Embedding(2, d)
            self.value_encoder = ContinuousValueEncoder()
            layer = nn.TransformerEncoderLayer(d, args["nheads"], args["d_hid"], dropout, batch_first=True)
            self.transformer_encoder = nn.TransformerEncoder(layer, args["nlayers"])
            self.decoder = ExprDecoder()
            self.mvc_decoder = MVCDecoder()

        def _encode(self, src, values, src_key_padding_mask):
            total = self.encoder(src) + self.value_encoder(values)
            return self.transformer_encoder(total, src_key_padding_mask=src_key_padding_mask)

    model = TransformerModel()
    state = torch.load(model_dir / "best_model.pt", map_location="cpu", weights_only=True)
    state = {k.replace("self_attn.Wqkv.", "self_attn.in_proj_"): v for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    return model.eval(), args


def _official_binning(row: np.ndarray, n_bins: int) -> np.ndarray:
    """``scgpt.preprocess.binning`` of the values of one cell (all non-zero here), with ``np.random`` ties."""
    bins = np.quantile(row, np.linspace(0, 1, n_bins - 1))
    left = np.digitize(row, bins)
    right = np.digitize(row, bins, right=True)
    rands = np.random.rand(len(row))
    return np.ceil(rands * (right - left) + left).astype(np.int64)


def scgpt_reference_embed(model_dir: Path, adata, *, batch: int = 64, max_length: int = 1200, seed: int = 0):
    """``embed_data`` on the CPU, from the official code's steps; returns (embeddings, timings, stats)."""
    import torch

    np.random.seed(seed)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    model, args = scgpt_reference_model(model_dir)
    t_load = time.perf_counter() - t0

    t0 = time.perf_counter()
    vocab = json.loads((model_dir / "vocab.json").read_text())
    id_in_vocab = np.array([vocab.get(g, -1) for g in adata.var_names])
    sub = adata[:, id_in_vocab >= 0]
    gene_ids = id_in_vocab[id_in_vocab >= 0]
    count_matrix = sub.X.toarray() if sp.issparse(sub.X) else np.asarray(sub.X)  # the official `.A`
    cls_id, pad_id, pad_value = vocab["<cls>"], vocab[args["pad_token"]], args["pad_value"]
    batches = []
    for b in range(0, len(count_matrix), batch):
        examples = []
        for row in count_matrix[b : b + batch]:  # Dataset.__getitem__
            nz = np.nonzero(row)[0]
            genes = torch.from_numpy(np.insert(gene_ids[nz], 0, cls_id)).long()
            values = torch.from_numpy(np.insert(row[nz], 0, pad_value)).float()
            examples.append((genes, values))
        max_len = min(max_length, max(len(g) for g, _ in examples))
        g_out, v_out = [], []
        for genes, values in examples:  # DataCollator(do_binning=True, sampling=True, keep_first_n_tokens=1)
            values[1:] = torch.from_numpy(_official_binning(values[1:].numpy(), args["n_bins"])).float()
            if len(genes) > max_len:
                idx = torch.randperm(len(genes) - 1)[: max_len - 1]
                idx = torch.cat([torch.arange(1), idx + 1])
                genes, values = genes[idx], values[idx]
            elif len(genes) < max_len:
                genes = torch.cat([genes, torch.full((max_len - len(genes),), pad_id, dtype=genes.dtype)])
                values = torch.cat([values, torch.full((max_len - len(values),), pad_value, dtype=values.dtype)])
            g_out.append(genes)
            v_out.append(values)
        batches.append((torch.stack(g_out), torch.stack(v_out)))
    t_pre = time.perf_counter() - t0

    out = np.zeros((len(count_matrix), args["embsize"]), dtype=np.float32)
    padded = real = 0
    t0 = time.perf_counter()
    with torch.no_grad():  # (the official autocast context is CUDA-only: a no-op on the CPU)
        count = 0
        for genes, values in batches:
            mask = genes.eq(pad_id)
            emb = model._encode(genes, values, src_key_padding_mask=mask)[:, 0, :].cpu().numpy()
            out[count : count + len(emb)] = emb
            count += len(emb)
            padded += genes.numel()
            real += int((~mask).sum())
    out = out / np.linalg.norm(out, axis=1, keepdims=True)
    t_fwd = time.perf_counter() - t0
    stats = {"padded_tokens": int(padded), "real_tokens": int(real), "padding_fraction": 1 - real / max(padded, 1),
             "forward_calls": len(batches)}
    return out, {"load_s": t_load, "preprocess_s": t_pre, "forward_s": t_fwd}, stats, model


def scgpt_reference_on_tokens(model, tokens, rows, pad_id: int, pad_value: float) -> np.ndarray:
    """The reference network on psysc's own token sequences (for the correctness check; not timed)."""
    import torch

    width = int(tokens.lengths[rows].max())
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    vals = torch.full((len(rows), width), float(pad_value))
    for r, i in enumerate(rows):
        seq = tokens.cell(i)
        ids[r, : len(seq)] = torch.from_numpy(seq)
        vals[r, : len(seq)] = torch.from_numpy(tokens.values[tokens.offsets[i] : tokens.offsets[i + 1]])
    with torch.no_grad():
        emb = model._encode(ids, vals, src_key_padding_mask=ids.eq(pad_id))[:, 0].numpy()
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def run_scgpt_speed(args, workdir: Path) -> dict:
    from _brainlike import BrainLikeCounts

    import psysc
    from psysc.models.scgpt import official_vocab
    from psysc.testing import random_scgpt_checkpoint

    n_cells = args.n_cells_scgpt
    res = {"n_cells": n_cells, "shape": SCGPT_SHAPE, "ref_batch": args.scgpt_ref_batch}
    mdir = workdir / "scGPT_brain-shaped"
    t = time.perf_counter()
    if not (mdir / "best_model.pt").exists():
        random_scgpt_checkpoint(mdir, vocab="brain", seed=args.seed, **SCGPT_SHAPE)
    res["checkpoint"] = {"files": sorted(p.name for p in mdir.iterdir()),
                         "best_model_bytes": (mdir / "best_model.pt").stat().st_size,
                         "write_s": time.perf_counter() - t}
    genes = [g for g in official_vocab("brain") if not g.startswith("<")]
    gen = BrainLikeCounts(genes, n_cells, seed=args.seed + 2)
    adata = gen.anndata()
    det = np.diff(adata.X.indptr)
    res["data"] = {"n_genes": adata.n_vars, "detected_genes_per_cell": _summary(det),
                   "umis_per_cell": _summary(np.asarray(adata.X.sum(axis=1)).ravel()),
                   "genes_source": "psysc.models.scgpt.official_vocab('brain') (gene symbols)"}
    _log(f"{SCGPT_NAME}: {n_cells} cells x {adata.n_vars} genes, detected genes/cell median {np.median(det):.0f} "
         f"({det.min()}-{det.max()}); checkpoint in {mdir} ({res['checkpoint']['best_model_bytes'] / 1e6:.0f} MB)")

    # warm-up of both pipelines on two short cells (kernels, page cache), not timed
    warm = adata[:2].copy()
    warm.X = sp.csr_matrix(warm.X.toarray() * (np.arange(warm.n_vars) < 3000))
    psysc.tl.embed(warm, model=str(mdir), device=args.device)
    scgpt_reference_embed(mdir, warm, batch=args.scgpt_ref_batch, seed=args.seed)

    _log(f"{SCGPT_NAME}: psysc.tl.embed ...")
    res["loadavg_before_psysc"] = _loadavg()
    t = time.perf_counter()
    psysc.tl.embed(adata, model=str(mdir), device=args.device, key_added="X_scgpt")
    t_psysc = time.perf_counter() - t
    emb_psysc = np.asarray(adata.obsm["X_scgpt"])
    prov = adata.uns["psysc"]["embed"]["X_scgpt"]
    t = time.perf_counter()
    model = psysc.models.load(str(mdir))
    t_load = time.perf_counter() - t
    t = time.perf_counter()
    tokens = model.tokenize(adata)
    t_tok = time.perf_counter() - t
    lengths = tokens.lengths
    res["tokens"] = {"length": _summary(lengths), "n_sampled": int((det > 1199).sum()),
                     "n_empty": int((lengths == 0).sum())}
    res["psysc"] = {"total_s": t_psysc, "cells_per_s": n_cells / t_psysc, "load_s": t_load, "tokenize_s": t_tok,
                    "forward_s_est": t_psysc - t_load - t_tok, "batch_size": prov.get("batch_size"),
                    "options": prov.get("options"),
                    "padding": psysc_padding(lengths, block_size=2048, batch_size=int(prov.get("batch_size") or 16))}
    _log(f"{SCGPT_NAME}: psysc {t_psysc:.1f} s = {n_cells / t_psysc:.3f} cells/s")

    _log(f"{SCGPT_NAME}: reference (official embed_data steps, nn.TransformerEncoder, batches of "
         f"{args.scgpt_ref_batch}) ...")
    load_before = _loadavg()
    emb_ref, times, stats, ref_model = scgpt_reference_embed(mdir, adata, batch=args.scgpt_ref_batch,
                                                             seed=args.seed)
    total = times["load_s"] + times["preprocess_s"] + times["forward_s"]
    res["reference"] = {**times, "total_s": total, "cells_per_s": n_cells / total, **stats,
                        "loadavg_before": load_before, "loadavg_after": _loadavg(),
                        "speedup_psysc_total": total / t_psysc,
                        "speedup_psysc_forward_est": times["forward_s"] / max(t_psysc - t_load - t_tok, 1e-9)}
    # correctness: the reference network on psysc's token sequences (same random draws), not timed
    rows = np.arange(min(n_cells, args.scgpt_check_cells))
    same_tokens = scgpt_reference_on_tokens(ref_model, tokens, rows, model.pad_id, model.tokenizer.pad_value)
    diff = np.abs(same_tokens - emb_psysc[rows])
    cos_own = np.sum(emb_ref * emb_psysc, axis=1)  # both L2-normalised; differ by their random draws
    res["check"] = {"n_cells": len(rows), "max_abs_diff_same_tokens": float(diff.max()),
                    "mean_abs_diff_same_tokens": float(diff.mean()),
                    "cosine_own_pipelines": _summary(cos_own)}
    _log(f"{SCGPT_NAME}: reference {total:.1f} s = {n_cells / total:.3f} cells/s; psysc is "
         f"{res['reference']['speedup_psysc_total']:.2f}x; same tokens max |diff| {diff.max():.2e}")
    return res


def print_scgpt(r: dict) -> None:
    p, f = r["psysc"], r["reference"]
    t = r["tokens"]["length"]
    print()
    print(f"{SCGPT_NAME} ({r['n_cells']} cells, tokens/cell median {t['median']:.0f}, {t['min']:.0f}-{t['max']:.0f}; "
          f"{r['tokens']['n_sampled']} cells sampled to 1,200 tokens)")
    print(f"  psysc.tl.embed: load {p['load_s']:.2f} s, tokenise {p['tokenize_s']:.2f} s, forward ~"
          f"{p['forward_s_est']:.1f} s, total {p['total_s']:.1f} s = {p['cells_per_s']:.3f} cells/s "
          f"(batch {p['batch_size']}, padding {100 * p['padding']['padding_fraction']:.1f}%)")
    print(f"  reference embed_data steps: load {f['load_s']:.2f} s, preprocess {f['preprocess_s']:.2f} s, forward "
          f"{f['forward_s']:.1f} s, total {f['total_s']:.1f} s = {f['cells_per_s']:.3f} cells/s "
          f"(batch {r['ref_batch']}, padding {100 * f['padding_fraction']:.1f}%)")
    print(f"  psysc / reference = {f['speedup_psysc_total']:.2f}x (total), ~{f['speedup_psysc_forward_est']:.2f}x "
          f"(forward only); reference network on psysc's tokens: max |diff| "
          f"{r['check']['max_abs_diff_same_tokens']:.2e} ({r['check']['n_cells']} cells)")


def scgpt_markdown(r: dict) -> list[str]:
    p, f = r["psysc"], r["reference"]
    t = r["tokens"]["length"]
    tl = f"{t['median']:.0f} ({t['min']:.0f}-{t['max']:.0f})"
    sh = r["shape"]
    return [
        f"### {SCGPT_NAME}", "",
        f"Random weights shaped like the scGPT brain checkpoint ({sh['nlayers']} layers, {sh['embsize']} dimensions, "
        f"{sh['nheads']} heads, d_hid {sh['d_hid']}, 60,697-token vocabulary; `best_model.pt` "
        f"{r['checkpoint']['best_model_bytes'] / 1e6:.0f} MB with the official keys), brain-like raw counts over the "
        f"vocabulary's gene symbols ({r['data']['detected_genes_per_cell']['median']:.0f} detected genes per cell, "
        f"median; {r['tokens']['n_sampled']} of {r['n_cells']} cells above 1,199 genes, sampled to 1,200 tokens). "
        "Reference: the official `embed_data` steps written from the scGPT code (dense `.A`, per-cell numpy "
        "binning with `np.random` ties, `torch.randperm` sampling, batches of "
        f"{r['ref_batch']} in input order, `TransformerModel` on the PyTorch path = `nn.TransformerEncoder`, "
        "`_encode`, position 0, L2). Both include loading; psysc's total also includes the sha256 of the files.", "",
        "| pipeline | cells | tokens/cell (median, range) | load s | preprocess / tokenise s | forward s | total s "
        "| cells/s | padding | psysc speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| psysc.tl.embed | {r['n_cells']} | {tl} | {p['load_s']:.2f} | {p['tokenize_s']:.2f} | "
        f"{p['forward_s_est']:.1f} (est.) | {p['total_s']:.1f} | {p['cells_per_s']:.3f} | "
        f"{100 * p['padding']['padding_fraction']:.1f}% | |",
        f"| reference (official steps) | {r['n_cells']} | {tl} | {f['load_s']:.2f} | {f['preprocess_s']:.2f} | "
        f"{f['forward_s']:.1f} | {f['total_s']:.1f} | {f['cells_per_s']:.3f} | {100 * f['padding_fraction']:.1f}% | "
        f"{f['speedup_psysc_total']:.2f}x |", "",
        f"Correctness: the reference network run on psysc's token sequences of {r['check']['n_cells']} cells gives "
        f"the same embeddings up to {r['check']['max_abs_diff_same_tokens']:.1e} (max abs difference, fp32). The two "
        "pipelines' own outputs differ by design (independent random draws for ties and gene sampling): cosine "
        f"median {r['check']['cosine_own_pipelines']['median']:.4f}. Load average before psysc: "
        f"{r.get('loadavg_before_psysc')}.", "",
    ]


# ------------------------------------------------------------------------------------------------ memory
def memory_worker(args) -> None:
    """Embed the backed h5ad in this (fresh) process; write peak RSS and timings to args.out."""
    import anndata as ad

    import psysc

    psysc.settings.verbosity = 1
    import torch  # imported here so that the baseline RSS includes it, as in any real run

    if args.threads:
        torch.set_num_threads(args.threads)
    base = _current_rss_gb()
    t = time.perf_counter()
    adata = ad.read_h5ad(args.h5ad, backed="r")
    t_open = time.perf_counter() - t
    after_open = _current_rss_gb()
    load_before = _loadavg()
    with RssSampler(0.02) as sampler:
        t = time.perf_counter()
        psysc.tl.embed(adata, model=args.model_dir, device="cpu", block_size=args.block_size)
        t_embed = time.perf_counter() - t
    key = [k for k in adata.obsm if k.startswith("X_")][0]
    emb = np.asarray(adata.obsm[key])
    prov = adata.uns["psysc"]["embed"][key]
    out = {
        "n_cells": int(adata.n_obs), "n_genes": int(adata.n_vars), "block_size": args.block_size,
        "batch_size": prov.get("batch_size"), "options": prov.get("options"), "obsm_key": key,
        "embedding_shape": list(emb.shape), "n_nan_rows": int(np.isnan(emb[:, 0]).sum()),
        "rss_after_imports_gb": base, "rss_after_open_gb": after_open, "open_s": t_open,
        "embed_s": t_embed, "cells_per_s": adata.n_obs / t_embed,
        "peak_rss_sampled_gb": sampler.peak, "rss_samples": sampler.n, "peak_rss_hwm_gb": _peak_rss_gb(),
        "torch": _torch_info(), "loadavg_before": load_before, "loadavg_after": _loadavg(),
    }
    # spot check: the first and last cells embedded again from an in-memory copy
    check = {}
    for name, rows in (("first", slice(0, 64)), ("last", slice(adata.n_obs - 64, adata.n_obs))):
        sub = adata[rows].to_memory()
        psysc.tl.embed(sub, model=args.model_dir, device="cpu")
        check[name] = float(np.nanmax(np.abs(np.asarray(sub.obsm[key]) - emb[rows])))
    out["in_memory_check_max_abs_diff"] = check
    Path(args.out).write_text(json.dumps(out, indent=1))


def run_memory(args) -> dict:
    from _brainlike import BrainLikeCounts

    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="psysc_bench_embed_mem_"))
    workdir.mkdir(parents=True, exist_ok=True)
    res = {"settings": {"n_cells": args.memory_cells, "block_size": args.block_size, "limit_gb": args.limit_gb,
                        "tiny_model": TINY, "seed": args.seed, "emb_layer": -1}}
    try:
        mdir = workdir / "bert-tiny-V1"
        if not (mdir / "model.safetensors").exists():
            res["checkpoint"] = save_checkpoint(mdir, TINY, seed=args.seed)
        genes, source = vocab_gene_ids("V1")
        res["genes_source"] = source
        h5 = workdir / f"brainlike_{args.memory_cells}.h5ad"
        stats_file = workdir / f"brainlike_{args.memory_cells}.json"
        if h5.exists() and stats_file.exists():
            _log(f"reusing {h5}")
            res["data"] = json.loads(stats_file.read_text())
        else:
            _log(f"writing {args.memory_cells:,} brain-like cells x {len(genes):,} genes to {h5} ...")
            gen = BrainLikeCounts(genes, args.memory_cells, seed=args.seed)
            t = time.perf_counter()
            step = max(args.memory_cells // 10, 1)
            data = gen.write_h5ad(h5, progress=lambda k: k % step < 10_000 and _log(f"  {k:,} cells written"))
            data["write_s"] = time.perf_counter() - t
            stats_file.write_text(json.dumps(data))
            res["data"] = data
        _log(f"data: {res['data']['nnz']:,} non-zeros, detected genes/cell median "
             f"{res['data']['genes_per_cell']['median']:.0f}, file {res['data']['file_bytes'] / GB:.2f} GB")
        import anndata as ad

        a = ad.read_h5ad(h5, backed="r")
        if a.n_obs != args.memory_cells or not a.isbacked:
            raise RuntimeError(f"anndata read {a} back from {h5}")
        res["data"]["read_back"] = repr(a).replace("\n", " ")
        a.file.close()
        del a

        out = workdir / "memory_worker.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-worker", "--h5ad", str(h5),
               "--model-dir", str(mdir), "--block-size", str(args.block_size), "--out", str(out)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        _log("embedding in a fresh worker process: " + " ".join(cmd[1:]))
        subprocess.run(cmd, check=True, cwd=REPO)
        res["worker"] = json.loads(out.read_text())
        w = res["worker"]
        w["peak_rss_gb"] = max(w["peak_rss_sampled_gb"], w["peak_rss_hwm_gb"])
        w["under_limit"] = bool(w["peak_rss_gb"] < args.limit_gb)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return res


def print_memory(res: dict) -> None:
    w = res["worker"]
    d = res["data"]
    print()
    print(f"Memory: {w['n_cells']:,} cells x {w['n_genes']:,} genes, backed h5ad ({d['file_bytes'] / GB:.2f} GB, "
          f"{d['nnz']:,} non-zeros; detected genes/cell median {d['genes_per_cell']['median']:.0f}, "
          f"{d['genes_per_cell']['min']:.0f}-{d['genes_per_cell']['max']:.0f})")
    print(f"  psysc.tl.embed(backed, tiny V1-shaped model hidden {TINY['hidden_size']}, {TINY['num_hidden_layers']} "
          f"layers, {TINY['num_attention_heads']} head(s); block_size={w['block_size']}, batch {w['batch_size']}): "
          f"{w['embed_s']:.0f} s = {w['cells_per_s']:.0f} cells/s, torch threads {w['torch']['num_threads']}")
    print(f"  RSS after imports {w['rss_after_imports_gb']:.2f} GB, after opening backed {w['rss_after_open_gb']:.2f} "
          f"GB; peak RSS: VmHWM {w['peak_rss_hwm_gb']:.2f} GB, sampled VmRSS max {w['peak_rss_sampled_gb']:.2f} GB "
          f"({w['rss_samples']} samples)")
    print(f"  peak {w['peak_rss_gb']:.2f} GB {'<' if w['under_limit'] else '>='} {res['settings']['limit_gb']} GB: "
          f"{'PASS' if w['under_limit'] else 'FAIL'}; NaN rows {w['n_nan_rows']}; in-memory re-embedding of the "
          f"first/last 64 cells: max |diff| {w['in_memory_check_max_abs_diff']}")


# ------------------------------------------------------------------------------------------------ output
def one_line(doc: dict) -> str:
    parts = []
    for name, m in doc.get("speed", {}).get("models", {}).items():
        for order, r in m["reference"].items():
            parts.append(f"{name}: psysc {m['psysc']['cells_per_s']:.2f} cells/s vs reference ({order}) "
                         f"{r['cells_per_s']:.2f} cells/s = {r['speedup_psysc_total']:.2f}x, max|diff| "
                         f"{r['max_abs_diff_vs_psysc']:.1e}")
    sg = doc.get("speed", {}).get("scgpt")
    if sg:
        parts.append(f"{SCGPT_NAME}: psysc {sg['psysc']['cells_per_s']:.3f} cells/s vs reference (official steps) "
                     f"{sg['reference']['cells_per_s']:.3f} cells/s = {sg['reference']['speedup_psysc_total']:.2f}x, "
                     f"same-token max|diff| {sg['check']['max_abs_diff_same_tokens']:.1e}")
    if "memory" in doc:
        w = doc["memory"]["worker"]
        parts.append(f"{w['n_cells']:,} backed cells: peak RSS {w['peak_rss_gb']:.2f} GB "
                     f"({'<' if w['under_limit'] else '>='} {doc['memory']['settings']['limit_gb']} GB), "
                     f"{w['embed_s']:.0f} s")
    return " | ".join(parts)


def write_markdown(doc: dict, path: Path) -> None:
    env = doc["environment"]
    lines = [f"# Embedding benchmark ({doc['machine']})", "",
             f"CPU: {env['cpu_model']}, {env['cores']} cores, {env['memory_gb']:.0f} GB RAM. "
             f"Versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()) + ".", ""]
    if "speed" in doc and not doc["speed"].get("models"):  # a scGPT-only run
        s = doc["speed"]
        lines += [f"## Speed ({s['date']}, torch threads {s['torch']['num_threads']})", ""]
        if s.get("scgpt"):
            lines += scgpt_markdown(s["scgpt"]) + [f"Settings: `{json.dumps(s['settings'])}`.", ""]
    elif "speed" in doc:
        s = doc["speed"]
        lines += [f"## Speed ({s['date']}, torch threads {s['torch']['num_threads']})", "",
                  "Randomly initialised `BertForMaskedLM` checkpoints shaped like Geneformer (saved with "
                  "`save_pretrained`, safetensors), brain-like cells (~2,000 detected genes, 800-3,500). Both "
                  "pipelines use psysc's token ids (tokenisation time is added to the reference's total), so only the "
                  "model loading and the forward passes differ. Reference: `BertForMaskedLM.from_pretrained(dir, "
                  f"output_hidden_states=True)`, fp32, eval, no_grad, batches of {s['settings']['ref_batch']} cells "
                  "right-padded to their longest cell, `hidden_states[L-1]`, V1 masked mean / V2 CLS.", "",
                  "| model | pipeline | cells | tokens/cell (median, range) | load s | tokenise s | forward s "
                  "| total s | cells/s | padding | psysc speed-up | max abs diff |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, m in s["models"].items():
            p, t = m["psysc"], m["tokens"]["length"]
            tl = f"{t['median']:.0f} ({t['min']:.0f}-{t['max']:.0f})"
            lines.append(f"| {name} | psysc.tl.embed | {m['n_cells']} | {tl} | {p['load_s']:.2f} "
                         f"| {p['tokenize_s']:.2f} | {p['forward_s_est']:.1f} (est.) | {p['total_s']:.1f} "
                         f"| {p['cells_per_s']:.3f} | {100 * p['padding']['padding_fraction']:.1f}% | | |")
            for order, r in m["reference"].items():
                lines.append(f"| {name} | reference ({order} order) | {m['n_cells']} | {tl} | {r['load_s']:.2f} | "
                             f"{r['tokenize_s (psysc tokenizer)']:.2f} | {r['forward_s']:.1f} | {r['total_s']:.1f} | "
                             f"{r['cells_per_s']:.3f} | {100 * r['padding_fraction']:.1f}% | "
                             f"{r['speedup_psysc_total']:.2f}x | {r['max_abs_diff_vs_psysc']:.1e} |")
        lines += [""]
        for name, m in s["models"].items():
            pa = m.get("padding_at_scale")
            if pa:
                lines.append(f"- {name}, padded-token fraction at scale ({pa['n_cells']:,} cells of the same "
                             "generator, token lengths only): " + ", ".join(f"{k.replace('_', ' ')} {100 * v:.1f}%"
                                                                 for k, v in pa.items() if k != "n_cells"))
        lines += ["", f"Settings: `{json.dumps(s['settings'])}`. Load average (1, 5, 15 min) before the psysc runs: "
                  + "; ".join(f"{n} {m.get('loadavg_before_psysc')}" for n, m in s["models"].items())
                  + " (other processes shared the machine when it was above the core count).", ""]
        if s.get("scgpt"):
            lines += scgpt_markdown(s["scgpt"])
    if "memory" in doc:
        mm = doc["memory"]
        w, d = mm["worker"], mm["data"]
        lines += [f"## Memory ({mm['date']})", "",
                  f"`psysc.tl.embed(anndata.read_h5ad(path, backed='r'), model=<tiny V1-shaped checkpoint>, "
                  f"device='cpu', block_size={w['block_size']})` in a fresh process; tiny model: hidden "
                  f"{TINY['hidden_size']}, {TINY['num_hidden_layers']} layers (the default `emb_layer=-1` runs one), "
                  f"{TINY['num_attention_heads']} head(s).", "",
                  "| cells | genes | non-zeros | detected genes/cell (median, range) | file GB | embed s | cells/s | "
                  "RSS after imports GB | peak RSS GB (VmHWM / sampled) | < limit |",
                  "|---|---|---|---|---|---|---|---|---|---|",
                  f"| {w['n_cells']:,} | {w['n_genes']:,} | {d['nnz']:,} | {d['genes_per_cell']['median']:.0f} "
                  f"({d['genes_per_cell']['min']:.0f}-{d['genes_per_cell']['max']:.0f}) | {d['file_bytes'] / GB:.2f} | "
                  f"{w['embed_s']:.0f} | {w['cells_per_s']:.0f} | {w['rss_after_imports_gb']:.2f} | "
                  f"{w['peak_rss_hwm_gb']:.2f} / {w['peak_rss_sampled_gb']:.2f} | "
                  f"{'yes' if w['under_limit'] else 'NO'} ({mm['settings']['limit_gb']} GB) |", ""]
    lines += ["Summary: " + one_line(doc), ""]
    path.write_text("\n".join(lines))


def save(section: str, res: dict, args) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = args.out_name or f"embed_{machine_tag(args.device)}"
    if not stem.startswith("embed_"):
        stem = "embed_" + stem
    jpath = RESULTS / f"{stem}.json"
    doc = json.loads(jpath.read_text()) if jpath.exists() else {}
    doc["machine"] = machine_tag(args.device)
    doc["environment"] = {"cpu_model": _cpu_model(), "gpu": gpu_name(args.device), "cores": _n_cores(),
                          "memory_gb": _mem_total_gb(),
                          "platform": platform.platform(), "versions": _versions()}
    res["date"] = _dt.datetime.now().isoformat(timespec="seconds")
    res["command"] = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
    doc[section] = res
    doc["summary"] = one_line(doc)
    jpath.write_text(json.dumps(doc, indent=1))
    write_markdown(doc, jpath.with_suffix(".md"))
    _log(f"wrote {jpath} and {jpath.with_suffix('.md')}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--memory", action="store_true", help="run the memory benchmark instead of the speed one")
    p.add_argument("--models", default="V1-10M,V2-104M",
                   help=f"speed: which shapes (comma-separated; also {SCGPT_NAME})")
    p.add_argument("--n-cells-v1", type=int, default=300, help="speed: cells for the V1-10M shape (default 300)")
    p.add_argument("--n-cells-v2", type=int, default=24, help="speed: cells for the V2-104M shape (default 24)")
    p.add_argument("--n-cells-scgpt", type=int, default=32,
                   help=f"speed: cells for the {SCGPT_NAME} shape (with --models {SCGPT_NAME}; default 32)")
    p.add_argument("--scgpt-ref-batch", type=int, default=64,
                   help="scGPT reference batch size (official embed_data default 64)")
    p.add_argument("--scgpt-check-cells", type=int, default=8,
                   help="scGPT: cells whose psysc tokens are run through the reference network (correctness)")
    p.add_argument("--scale-cells", type=int, default=10_000,
                   help="speed: cells whose token lengths give the padding of each batching at scale (0: skip)")
    p.add_argument("--ref-batch", type=int, default=100, help="reference forward batch size (official default 100)")
    p.add_argument("--ref-order", default="input",
                   help="reference batching order(s): 'input', 'sorted' (official downsample_and_sort) or both")
    p.add_argument("--ref-logits-gb", type=float, default=4.0,
                   help="memory allowed to the masked-LM logits of one reference forward call (default 4 GB)")
    p.add_argument("--ref-encoder-only", action="store_true",
                   help="reference without the masked-LM head (model.bert); not what the official code does")
    p.add_argument("--memory-cells", type=int, default=200_000, help="memory: cells in the backed h5ad")
    p.add_argument("--block-size", type=int, default=2048, help="memory: psysc.tl.embed block_size")
    p.add_argument("--limit-gb", type=float, default=3.0, help="memory: peak RSS limit checked (GB = 1e9 B)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's default)")
    p.add_argument("--device", default="cpu",
                   help="speed: 'cpu' or 'cuda' (psysc: the official precision on CUDA; reference: fp32 as the "
                        "official code)")
    p.add_argument("--workdir", help="keep the checkpoints and data here (reused on the next run)")
    p.add_argument("--out-name", help="stem of the result files (default embed_<machine>)")
    p.add_argument("--no-save", action="store_true")
    # internal: the memory worker
    p.add_argument("--memory-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--h5ad", help=argparse.SUPPRESS)
    p.add_argument("--model-dir", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",")]

    if args.memory_worker:
        memory_worker(args)
        return 0
    t0 = time.perf_counter()
    if args.memory:
        res = run_memory(args)
        res["wall_s"] = time.perf_counter() - t0
        print_memory(res)
        section, ok = "memory", res["worker"]["under_limit"]
    else:
        res = run_speed(args)
        res["wall_s"] = time.perf_counter() - t0
        print_speed(res)
        section, ok = "speed", True
    if not args.no_save:
        save(section, res, args)
    print()
    print(one_line({section: res}))
    _log(f"done in {time.perf_counter() - t0:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
