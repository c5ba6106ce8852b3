"""The embedding engine shared by every foundation model.

Row blocks of the AnnData are tokenised by the model and embedded in batches of cells of similar
length (sorted by length, so almost no padding is computed); a batch that runs out of GPU memory is
split and the smaller batch size kept. Finished blocks can be written to a chunk store so that an
interrupted run resumes where it stopped. Output rows are in the order of the cells.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from .._settings import settings

logger = logging.getLogger("psysc")


def pick_device_dtype(device: str | None, dtype: str | None, cuda_default: str = "bfloat16"):
    """``device``/``dtype`` strings -> torch objects.

    Auto: CUDA when present, computing in ``cuda_default`` (a model's official precision; bfloat16 autocast
    unless the model names another), else the CPU in float32.
    """
    import torch

    device = settings.device if device is None else device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', not {device!r}") from None
    if device.type not in ("cpu", "cuda"):  # e.g. "mps": torch knows it, psysc's kernels do not run there
        raise ValueError(f"device={str(device)!r} is not supported: psysc runs on 'cpu' or 'cuda' ('cuda:N'); "
                         "'auto' picks CUDA when torch sees it, else the CPU")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={str(device)!r} was requested but torch sees no CUDA device; use device='cpu'")
    if dtype is None or dtype == "auto":
        dtype = cuda_default if device.type == "cuda" else "float32"
    table = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype not in table:
        raise ValueError(f"dtype must be one of {list(table)} or 'auto', not {dtype!r}")
    return device, table[dtype]


def autocast_enabled(device, dtype) -> bool:
    """Whether :func:`embed_tokens` runs under autocast: on CUDA for a precision other than float32.

    On the CPU the computation stays in the dtype of the model's weights (float32 unless loaded otherwise).
    """
    import torch

    return device.type == "cuda" and dtype != torch.float32


def compute_dtype(model, device, dtype):
    """The precision :func:`embed_tokens` actually computes in with ``device`` and the requested ``dtype``.

    The requested ``dtype`` under autocast (CUDA); otherwise the dtype of the model's floating weights (float32
    for a model without a :meth:`~psysc.models.FoundationModel.network`).
    """
    import torch

    if autocast_enabled(device, dtype):
        return dtype
    try:
        params = model.network().parameters()
    except (NotImplementedError, AttributeError):
        return torch.float32
    for p in params:
        if p.is_floating_point():
            return p.dtype
    return torch.float32


@contextlib.contextmanager
def kept_random_state():
    """Restore the global random states of Python, NumPy and torch (CPU and CUDA) on exit.

    Building a network (random initial weights, then overwritten by the checkpoint) or training one draws from
    them: a caller's own random streams go on as if psysc had not run.
    """
    import random

    import torch

    py, npy, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def _is_oom(err: BaseException) -> bool:
    import torch

    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in str(err).lower()


class BatchSizer:
    """A batch size that halves when a batch runs out of memory and stays at the size that worked."""

    def __init__(self, size: int):
        from .._utils import whole_number

        self.size = whole_number("batch_size", size, 1)

    def shrink(self) -> None:
        if self.size == 1:
            raise MemoryError("a single cell does not fit in the device memory; use a smaller model or the CPU")
        self.size = max(1, self.size // 2)
        logger.warning("out of device memory: batch size lowered to %d", self.size)


def _shrink_or_raise(err: BaseException, retry_oom: bool, device, sizer: BatchSizer) -> None:
    """After a failed batch: halve the batch size when it ran out of memory (and retrying is on), else re-raise."""
    if not retry_oom or not _is_oom(err):
        raise err
    if device.type == "cuda":
        import torch

        torch.cuda.empty_cache()
    sizer.shrink()


def embed_tokens(model, tokens, *, device, dtype, sizer: BatchSizer, progress=None, retry_oom: bool | None = None
                 ) -> np.ndarray:
    """Embeddings (float32, NaN rows for empty cells) of the cells of one :class:`~psysc.models.Tokens` block.

    A batch that runs out of memory (on CUDA; ``retry_oom`` overrides) is retried at half the batch size.
    """
    import torch

    if retry_oom is None:
        retry_oom = device.type == "cuda"
    n = tokens.n_cells
    lengths = tokens.lengths
    out = np.full((n, model.embedding_dim), np.nan, dtype=np.float32)
    order = np.argsort(-lengths, kind="stable")
    order = order[lengths[order] > 0]
    autocast = autocast_enabled(device, dtype)
    # models with embed_flat (e.g. scVI's sum over genes) take unpadded cells; the others a padded batch
    flat = callable(getattr(model, "embed_flat", None)) and not autocast
    pos = 0
    while pos < len(order):
        idx = order[pos : pos + sizer.size]
        width = int(lengths[idx].max())
        lens = lengths[idx]
        if flat:  # the model takes unpadded cells: concatenated tokens and the cell starts
            step = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
            src = np.repeat(tokens.offsets[idx], lens) + step
            try:
                with torch.inference_mode():
                    emb = model.embed_flat(
                        torch.from_numpy(tokens.ids[src]).to(device),
                        torch.from_numpy(np.cumsum(lens) - lens).to(device),
                        None if tokens.values is None else torch.from_numpy(tokens.values[src]).to(device),
                    )
                    out[idx] = emb.float().cpu().numpy()
            except (RuntimeError, MemoryError) as err:
                _shrink_or_raise(err, retry_oom, device, sizer)
                continue
            pos += len(idx)
            if progress is not None:
                progress(len(idx))
            continue
        # right-padded copy of the batch's sequences in one gather (no loop over cells): token k of row r goes
        # from tokens.offsets[idx[r]] + k to the flat position r * width + k
        mask = (np.arange(width)[None, :] < lens[:, None]).astype(np.int64)
        step = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)  # k
        dest = np.repeat(np.arange(len(idx)) * width, lens) + step
        src = np.repeat(tokens.offsets[idx], lens) + step
        ids = np.full((len(idx), width), model.pad_id, dtype=np.int64)
        ids.reshape(-1)[dest] = tokens.ids[src]
        vals = None
        if tokens.values is not None:
            vals = np.zeros((len(idx), width), dtype=np.float32)
            vals.reshape(-1)[dest] = tokens.values[src]
        try:
            with torch.inference_mode(), torch.autocast(device_type=device.type, dtype=dtype, enabled=autocast):
                t_ids = torch.from_numpy(ids).to(device)
                t_mask = torch.from_numpy(mask).to(device)
                t_vals = None if vals is None else torch.from_numpy(vals).to(device)
                emb = model.embed_batch(t_ids, t_mask, t_vals) if vals is not None else model.embed_batch(t_ids, t_mask)
                out[idx] = emb.float().cpu().numpy()
        except (RuntimeError, MemoryError) as err:
            _shrink_or_raise(err, retry_oom, device, sizer)
            continue
        pos += len(idx)
        if progress is not None:
            progress(len(idx))
    if progress is not None:
        progress(n - len(order))  # empty cells
    return out


class ChunkStore:
    """Finished row blocks on disk (``block_<start>_<stop>.npy``), tied to the run's parameters.

    Each block may carry a digest of its input (:func:`tokens_digest`, in ``block_<start>_<stop>.json``): a block
    whose stored input digest differs from the one of the current input is refused, so changed counts, genes or
    tokenisation never return an embedding of other data.
    """

    def __init__(self, path: str | os.PathLike, manifest: dict):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        meta = self.path / "manifest.json"
        manifest = json.loads(json.dumps(manifest))  # as it reads back (tuples -> lists, ...)
        if meta.exists():
            previous = json.loads(meta.read_text())
            if previous != manifest:
                diff = sorted(k for k in set(previous) | set(manifest) if previous.get(k) != manifest.get(k))
                raise ValueError(
                    f"resume={str(self.path)!r} holds a run with other parameters ({', '.join(diff)} differ); "
                    "use a new resume directory or delete this one."
                )
            logger.info("resuming from %s", self.path)
        self._manifest = manifest  # written with the first block: a run that fails before any block leaves none

    def _file(self, start: int, stop: int) -> Path:
        return self.path / f"block_{start:012d}_{stop:012d}.npy"

    def _digest_file(self, start: int, stop: int) -> Path:
        return self.path / f"block_{start:012d}_{stop:012d}.json"

    def get(self, start: int, stop: int, digest: str | None = None) -> np.ndarray | None:
        """The stored block, or ``None`` when it is not done (or was stored without the digest asked for).

        Raises ``ValueError`` when the block was computed from another input (``digest`` differs).
        """
        f = self._file(start, stop)
        if not f.exists():
            return None
        if digest is not None:
            d = self._digest_file(start, stop)
            stored = json.loads(d.read_text()).get("input") if d.exists() else None
            if stored is None:
                return None  # no record of its input: compute it again
            if stored != digest:
                raise ValueError(
                    f"resume={str(self.path)!r}: rows {start}:{stop} were embedded from other input (the counts, "
                    "genes or tokenisation of these cells differ; input differs); use a new resume directory or "
                    "delete this one."
                )
        return np.load(f)

    def put(self, start: int, stop: int, emb: np.ndarray, digest: str | None = None) -> None:
        pid = os.getpid()
        meta = self.path / "manifest.json"
        if not meta.exists():
            tmp = self.path / f".tmp_manifest_{pid}.json"
            tmp.write_text(json.dumps(self._manifest, indent=1, sort_keys=True))
            os.replace(tmp, meta)
        if digest is not None:  # the digest first: a block file never exists without the record of its input
            tmp = self.path / f".tmp_{start}_{stop}_{pid}.json"
            tmp.write_text(json.dumps({"input": digest}))
            os.replace(tmp, self._digest_file(start, stop))
        tmp = self.path / f".tmp_{start}_{stop}_{pid}.npy"
        np.save(tmp, emb)
        os.replace(tmp, self._file(start, stop))  # atomic: a killed run never leaves half a block


def tokens_digest(tokens) -> str:
    """A hash of a :class:`~psysc.models.Tokens` block (ids, offsets, values): what the model is given."""
    h = hashlib.blake2b(digest_size=16)
    for name in ("offsets", "ids", "values"):
        arr = getattr(tokens, name)
        h.update(name.encode())
        if arr is None:
            h.update(b"none")
            continue
        arr = np.ascontiguousarray(arr)
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.data)
    return h.hexdigest()


def cells_digest(obs_names) -> str:
    """A short hash of the cell names and their order (to refuse resuming on other data)."""
    h = hashlib.sha256()
    for name in obs_names:
        h.update(str(name).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]
