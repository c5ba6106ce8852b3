"""Large zero-filled arrays for results that are written once, row by row.

NumPy asks Linux for transparent huge pages on every large allocation (``madvise(MADV_HUGEPAGE)``). Where the
kernel may then compact memory synchronously on the first write of a 2 MB page (``defrag`` set to ``madvise``,
a common default), that write can stall; on a virtual machine the host backing the guest's memory adds its own
cost to every first write, whatever the page size. On the 2-core VM of the benchmarks, a first write of 1.2 GB
took 0.35-1.4 s in 4 KB pages and 0.05-1.6 s in huge pages, depending on how long before the memory had been
freed by another process (huge pages faster within seconds of it, slower 15 s after: 1.45 s against 0.9 s).
:func:`fresh_zeros` maps such arrays directly, in 4 KB pages, where the kernel would compact on demand, for the
smaller spread; elsewhere it is :func:`numpy.zeros`.
"""

from __future__ import annotations

import mmap
import sys
from pathlib import Path

import numpy as np

#: arrays from this size on are mapped directly (smaller ones come from the allocator's pools)
_MIN_BYTES = 64 * 2**20


def compacts_on_fault(defrag: str) -> bool:
    """Whether huge-page advice makes Linux compact memory on a page fault, from ``.../transparent_hugepage/defrag``.

    The setting is the bracketed word: ``always`` and ``madvise`` compact synchronously for advised memory;
    ``defer+madvise`` too (it defers only for memory without the advice); ``defer`` and ``never`` do not.
    """
    chosen = defrag[defrag.find("[") + 1 : defrag.find("]")] if "[" in defrag and "]" in defrag else ""
    return chosen in {"always", "madvise", "defer+madvise"}


def _read_defrag() -> str:
    if not sys.platform.startswith("linux"):
        return ""
    try:
        return Path("/sys/kernel/mm/transparent_hugepage/defrag").read_text()
    except OSError:
        return ""


_ON_DEMAND = compacts_on_fault(_read_defrag())


def fresh_zeros(shape, dtype) -> np.ndarray:
    """A C-contiguous array of zeros, like :func:`numpy.zeros`, in ordinary pages when that is faster to fill.

    The array owns an anonymous memory map (zero-filled by the kernel), released when the array is.
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if not _ON_DEMAND or nbytes < _MIN_BYTES:
        return np.zeros(shape, dtype=dtype)
    return np.frombuffer(mmap.mmap(-1, nbytes), dtype=dtype).reshape(shape)
