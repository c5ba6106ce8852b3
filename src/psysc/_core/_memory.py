"""Large zero-filled arrays for results that are written once, row by row.

NumPy asks Linux for transparent huge pages on every large allocation (``madvise(MADV_HUGEPAGE)``). Where the
kernel then compacts memory synchronously on the first write of each 2 MB page (``defrag`` set to
``madvise``, a common default, and usual on virtual machines), filling a fresh array of control scores
costs several times the time of filling ordinary 4 KB pages (1.2 GB: 1.2-1.5 s against 0.4 s on a 2-core
VM). :func:`fresh_zeros` maps such arrays directly, without that advice, where the kernel would compact
on demand; elsewhere it is :func:`numpy.zeros`.
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
