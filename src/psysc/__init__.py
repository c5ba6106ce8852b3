"""psysc: map the genetic risk of psychiatric disorders onto brain cell states.

psysc is a scverse plugin. It follows scanpy's layout:

- :mod:`psysc.pp` prepares expression data for disease scoring;
- :mod:`psysc.tl` scores cells for GWAS gene sets and tests cell states for enrichment;
- :mod:`psysc.pl` draws the figures;
- :mod:`psysc.datasets` ships a small real brain dataset and the GWAS gene sets;
- :mod:`psysc.gwas` reads and converts genetic evidence (``.gs`` files, MAGMA output, gene lists).

Heavy optional dependencies (torch and the foundation models) are imported only when used.
"""

from importlib.metadata import PackageNotFoundError, version

from . import datasets, gwas, pl, pp, tl
from ._settings import settings

try:
    __version__ = version("psysc")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["datasets", "gwas", "models", "pl", "pp", "settings", "testing", "tl", "__version__"]

_LAZY = ("models", "testing")


def __getattr__(name: str):
    # psysc.models and psysc.testing are imported on first use (they lead to torch only when a model runs)
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'psysc' has no attribute {name!r}")
