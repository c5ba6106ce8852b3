"""Global settings of psysc (cache directory, device, verbosity, default seed)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

logger = logging.getLogger("psysc")
_LEVELS = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO, 3: logging.DEBUG}


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        msg = super().format(record)
        return msg if record.levelno < logging.WARNING else f"{record.levelname}: {msg}"


class FallbackHandler(logging.StreamHandler):
    """Writes psysc's messages to ``sys.stderr`` (as scanpy does), unless the application has configured logging.

    When the root logger has a handler (``logging.basicConfig``, pytest's ``caplog``, a notebook's own setup), the
    messages reach it through propagation and this handler stays silent, so nothing is printed twice.
    """

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(_Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if logging.getLogger().handlers:
            return
        self.setStream(sys.stderr)  # the current one (notebooks replace sys.stderr)
        super().emit(record)


def _draws_bars(stream) -> bool:
    """Whether ``stream`` shows redrawn progress bars: a terminal, or a Jupyter kernel's stream (widgets)."""
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        pass
    return type(stream).__module__.split(".")[0] == "ipykernel"


#: verbosity by name, as scanpy's settings.verbosity takes them
_NAMED_LEVELS = {"error": 0, "warn": 1, "warning": 1, "info": 2, "hint": 2, "debug": 3}


class Settings:
    """Settings shared by all psysc functions.

    Attributes
    ----------
    settings.cachedir
        Where downloaded files (model weights, public datasets) are kept. Defaults to
        ``$PSYSC_CACHE_DIR`` or ``~/.cache/psysc``.
    settings.device
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``/``"cuda:N"``.
    settings.verbosity
        0 errors, 1 warnings, 2 info (default; progress bars on a terminal or in a notebook), 3 debug; or the
        names ``"error"``, ``"warning"``, ``"info"``, ``"debug"``, as scanpy takes them. Messages
        go to the ``"psysc"`` logger; psysc prints them on stderr unless the application has configured
        :mod:`logging` itself.
    settings.seed
        Default random seed of every random choice.
    settings.n_jobs
        Threads of the compiled kernels (scoring, statistics), for the calling thread; ``None`` (default) uses
        every core numba may use (``NUMBA_NUM_THREADS``). Setting it calls ``numba.set_num_threads``.

    Examples
    --------
    >>> import psysc
    >>> psysc.settings.verbosity = 1  # quiet: no progress bars

    """

    def __init__(self) -> None:
        self._cachedir = Path(os.environ.get("PSYSC_CACHE_DIR", Path.home() / ".cache" / "psysc")).expanduser()
        self.device = "auto"
        self._verbosity = 2
        logger.setLevel(_LEVELS[self._verbosity])
        if not any(isinstance(h, FallbackHandler) for h in logger.handlers):
            logger.addHandler(FallbackHandler())
        self.seed = 0
        self._n_jobs: int | None = None

    @property
    def cachedir(self) -> Path:
        """Directory where downloads are cached (``~`` is expanded)."""
        return self._cachedir

    @cachedir.setter
    def cachedir(self, value: str | os.PathLike) -> None:
        self._cachedir = Path(value).expanduser()

    @property
    def n_jobs(self) -> int | None:
        """Threads of the compiled kernels (``None``: every core numba may use)."""
        return self._n_jobs

    @n_jobs.setter
    def n_jobs(self, value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"n_jobs must be None (every core) or a whole number of threads, at least 1, not "
                             f"{value!r}")
        import numba

        most = numba.config.NUMBA_NUM_THREADS
        if value is not None and value > most:
            logger.warning("n_jobs=%d: numba may use at most %d threads here (NUMBA_NUM_THREADS); using %d",
                           value, most, most)
        numba.set_num_threads(most if value is None else min(int(value), most))
        self._n_jobs = value

    @property
    def verbosity(self) -> int:
        """0 errors, 1 warnings, 2 info with progress bars, 3 debug."""
        return self._verbosity

    @verbosity.setter
    def verbosity(self, value: int | str) -> None:
        if isinstance(value, str):  # scanpy's level names ("hint" is scanpy's level between info and debug)
            value = _NAMED_LEVELS.get(value.strip().lower(), value)
        if isinstance(value, bool) or value not in (0, 1, 2, 3):
            raise ValueError(f"verbosity must be 0, 1, 2 or 3 (or 'error', 'warning', 'info', 'debug'), not {value!r}")
        self._verbosity = int(value)
        logger.setLevel(_LEVELS[value])

    @property
    def show_progress(self) -> bool:
        """Whether long loops show a progress bar: at verbosity 2 or more, on a terminal or in a notebook.

        When stderr is a file or a pipe (a batch job's log), the bars are left out: each redraw would add to the
        log; the messages of the ``"psysc"`` logger still go there.
        """
        return self._verbosity >= 2 and _draws_bars(sys.stderr)

    def __repr__(self) -> str:
        return (
            f"psysc.settings(cachedir={str(self.cachedir)!r}, device={self.device!r}, "
            f"verbosity={self.verbosity}, seed={self.seed}, n_jobs={self.n_jobs})"
        )


settings = Settings()
