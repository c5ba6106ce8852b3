"""Array-level kernels of psysc (no AnnData here).

numba caches the compiled kernels beside this package (``__pycache__``) or, where that cannot be written (a
read-only install), in the user's cache folder. Where neither can be written (e.g. a container user without a
writable home), numba would refuse to compile them at all; they are then cached in a per-user temporary folder.
``NUMBA_CACHE_DIR`` set by the user is always respected.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _writable(path: Path) -> bool:
    """Whether files can be created in ``path`` (made if missing), as numba's cache locators test it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            return True
    except OSError:
        return False


def _ensure_numba_cache() -> str | None:
    """Point numba's cache to a temporary folder when neither of its own locations can be written; returns it."""
    if os.environ.get("NUMBA_CACHE_DIR") or _writable(Path(__file__).parent / "__pycache__"):
        return None
    from numba.misc.appdirs import AppDirs

    if _writable(Path(AppDirs(appname="numba", appauthor=False).user_cache_dir)):
        return None
    import numba

    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    numba.config.CACHE_DIR = str(Path(tempfile.gettempdir()) / f"psysc-numba-cache-{user}")
    return numba.config.CACHE_DIR


_ensure_numba_cache()
