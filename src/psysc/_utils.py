"""Small helpers shared by the AnnData-level functions."""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

logger = logging.getLogger("psysc")


def reports_cells_read(desc: str):
    """Decorate a function with a progress bar of the cells its passes over the data read (tqdm).

    Every row block of :func:`psysc._core._blocks.iter_row_blocks` within the call counts (a step that reads
    the data three times counts each cell three times); shown where :attr:`psysc.settings.show_progress` says.
    """
    def wrap(func):
        @functools.wraps(func)
        def call(*args, **kwargs):
            from tqdm.auto import tqdm

            from ._core._blocks import ROWS_READ
            from ._settings import settings

            if ROWS_READ.get() is not None:  # within another step's bar: counted there
                return func(*args, **kwargs)
            with tqdm(desc=desc, unit=" cells", unit_scale=True, disable=not settings.show_progress) as bar:
                token = ROWS_READ.set(bar.update)
                try:
                    return func(*args, **kwargs)
                finally:
                    ROWS_READ.reset(token)
        return call
    return wrap


BACKED_VIEW = ("this is a view of an AnnData opened in backed mode, which cannot hold results: load the cells "
               "first (adata = adata[...].to_memory())")


def check_anndata(adata, *, writes: bool = False, instead: str | None = "inplace=False") -> None:
    """Refuse a MuData (or anything else that is not an AnnData) with the fix: pass one modality.

    ``writes``: the caller writes results into ``adata``; a view of a backed AnnData cannot hold them.
    ``instead``: the caller's option that returns the results instead (named in that error), if it has one.
    """
    from anndata import AnnData

    if isinstance(adata, AnnData):
        if writes and adata.is_view and adata.isbacked:
            raise ValueError(BACKED_VIEW + (f", or pass {instead}" if instead else ""))
        return
    if hasattr(adata, "mod"):
        raise TypeError(f"this function takes an AnnData; adata is a MuData with modalities {list(adata.mod)}: pass "
                        "one of them, e.g. mdata['rna'] (its results are written into that modality)")
    raise TypeError(f"adata must be an AnnData, not {type(adata).__name__}")


def check_unique_var_names(adata, purpose: str) -> None:
    """Refuse duplicated gene names, naming some and the fix; ``purpose`` ends the sentence ("before scoring")."""
    if adata.var_names.has_duplicates:
        dups = adata.var_names[adata.var_names.duplicated()].unique()
        raise ValueError(
            f"{len(dups)} duplicated gene names: they occur more than once in var_names (e.g. {head_names(dups, 5)}). "
            f"Make them unique (adata.var_names_make_unique()) or sum duplicated genes {purpose}."
        )


def whole_number(name: str, value, minimum: int, why: str = "") -> int:
    """``value`` as an ``int`` when it is a whole number of at least ``minimum``, else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be a whole number of at least {minimum}{why}, not {value!r}")
    return int(value)


def get_matrix(adata, layer: str | None):
    """Return ``adata.X`` or ``adata.layers[layer]``, with a clear error for a missing layer."""
    if layer is None:
        return adata.X
    if layer not in adata.layers:
        raise KeyError(f"layer {layer!r} not found; available layers: {list(adata.layers)}")
    return adata.layers[layer]


def label_text(labels: pd.Series) -> pd.Series:
    """Group labels as text (object dtype; a missing label stays missing, ``None``).

    Float labels that are all whole numbers (integer clusters stored as floats because some cells have no label)
    read without ``.0``: cluster ``"5"``, not ``"5.0"``.
    """
    if pd.api.types.is_float_dtype(labels) and bool((labels.dropna() % 1 == 0).all()):
        labels = labels.astype("Int64")
    return labels.astype(str).where(labels.notna(), None).astype(object)


def group_order(labels, present: set[str]) -> list[str]:
    """The groups (``present``, as strings) in the order of the categories of a categorical ``labels`` column.

    Otherwise numerically when every label is a number (cluster "2" before "10"), else alphabetically.
    """
    if isinstance(labels.dtype, pd.CategoricalDtype):
        ordered = [str(c) for c in labels.cat.categories if str(c) in present]
        return ordered + sorted(present - set(ordered))
    try:
        return sorted(present, key=lambda g: (float(g), g))
    except ValueError:
        return sorted(present)


#: a grouping with more groups than this, and more than half as many groups as labelled cells, is no grouping
MAX_GROUPS = 20


def continuous_grouping(labels: pd.Series) -> str | None:
    """Why ``labels`` look like a continuous value rather than groups of cells, or ``None`` when they do not.

    Fractional numbers, or more than :data:`MAX_GROUPS` distinct values and more than half as many as labelled cells
    (groups of one or two cells: a per-cell value such as a count of genes or a barcode).
    """
    labels = labels.dropna()
    n_groups = labels.nunique()
    fractional = pd.api.types.is_float_dtype(labels) and bool((labels % 1 != 0).any())
    if fractional or n_groups > max(MAX_GROUPS, len(labels) // 2):
        return (f"it has {n_groups} different values among {len(labels)} labelled cells (e.g. "
                f"{list(labels.unique()[:3])}): it looks continuous, not a grouping of the cells")
    return None


def same_trait(trait, scored) -> str:
    """``trait`` as it was scored: itself, else the one scored trait that differs from it only in case (``"scz"``)."""
    trait = str(trait)
    if trait in scored:
        return trait
    alike = [t for t in scored if str(t).lower() == trait.lower()]
    return str(alike[0]) if len(alike) == 1 else trait


_MISSING_WORDS = frozenset({"nan", "none", "na", "n/a", "null", "<na>", ""})


def warn_missing_words(groupby: str, groups: list[str]) -> None:
    """Warn about group labels that read as a missing value written out as text (``"nan"``, ``"None"``, ...)."""
    missing = [g for g in groups if g.strip().lower() in _MISSING_WORDS]
    if missing:
        logger.warning(
            "obs[%r] has label(s) %s, text that reads as a missing value (e.g. from .astype(str) on a column with "
            "NaN); they are treated as a group: set those cells to NaN (pd.NA) to leave them out of every group",
            groupby, ", ".join(repr(g) for g in missing),
        )


def uns_namespace(adata, key: str) -> dict:
    """The dictionary ``adata.uns[key]`` to write results into, created when absent.

    On a view, the view first becomes an AnnData of its own, with anndata's ``ImplicitModificationWarning``, as when
    any attribute of a view is set: the nested dictionaries of a view's ``uns`` are its parent's, which must not be
    written.
    """
    if adata.is_view:
        from anndata import ImplicitModificationWarning

        warnings.warn("Trying to modify attribute `.uns` of view, initializing view as actual.",
                      ImplicitModificationWarning, stacklevel=3)
        if adata.isbacked:
            raise ValueError(BACKED_VIEW + " or pass inplace=False")
        adata._init_as_actual(adata.copy())
    ns = adata.uns.get(key)
    if ns is None:
        ns = adata.uns[key] = {}
    return ns


#: the cgroup v2 folder of the process's limits (a container or a batch job)
CGROUP = Path("/sys/fs/cgroup")


def available_memory() -> int | None:
    """Bytes of memory that can be allocated without swapping, or ``None`` when unknown.

    The smaller of the system's available memory (``psutil``, else Linux's ``MemAvailable``) and what the
    process's cgroup (a container or batch-job limit) still allows, counting its inactive file cache as free.
    """
    avail = None
    try:
        import psutil

        avail = int(psutil.virtual_memory().available)
    except ImportError:
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        avail = int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
    try:  # cgroup v2
        limit = (CGROUP / "memory.max").read_text().strip()
        if limit != "max":
            used = int((CGROUP / "memory.current").read_text().strip())
            # the page cache of files read and not used since (inactive_file) is given back on demand: a pass over
            # a backed file fills it, and it is not memory in use
            try:
                stat = dict(line.split() for line in (CGROUP / "memory.stat").read_text().splitlines() if line)
                used -= int(stat.get("inactive_file", 0))
            except (OSError, ValueError):
                pass
            left = int(limit) - used
            avail = left if avail is None else min(avail, left)
    except (OSError, ValueError):
        pass
    return avail


def head_names(names, k: int = 3) -> list[str]:
    """The first ``k`` names as plain strings, for messages (NumPy strings would print as ``np.str_('...')``)."""
    return [str(x) for x in list(names[:k])]


def scored_traits(adata, key: str) -> list[str]:
    """Traits scored by ``score_disorders`` under ``key`` (its record in ``.uns``, else the ``.obs`` columns)."""
    ns = adata.uns.get(key)
    info = ns.get("score_disorders") if isinstance(ns, Mapping) else None
    traits = info.get("traits") if isinstance(info, Mapping) else None
    if traits is not None and len(traits) > 0:
        return [str(t) for t in traits]
    suffix, prefix = "_norm_score", f"{key}_"
    return [c[len(prefix) : -len(suffix)] for c in map(str, adata.obs.columns)
            if c.startswith(prefix) and c.endswith(suffix)]


def scored_elsewhere(adata, key: str, trait: str | None = None) -> str:
    """The end of an error about scores missing under ``key``: where else they are.

    ``"; ... pass key=K"`` naming another key of ``.uns`` under which ``trait`` (any trait when ``None``) is scored,
    else ``""``.
    """
    for k, ns in adata.uns.items():
        if k == key or not isinstance(ns, Mapping) or "score_disorders" not in ns:
            continue
        there = scored_traits(adata, k)
        if trait is None and there:
            return f"; traits are scored under key={k!r}: pass key={k!r}"
        if trait is not None and str(trait).lower() in {t.lower() for t in there}:
            return f"; {trait!r} is scored under key={k!r}: pass key={k!r}"
    return ""
