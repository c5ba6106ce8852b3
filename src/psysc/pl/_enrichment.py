"""Heatmap of the trait x cell-group enrichment table written by :func:`psysc.tl.disorder_enrichment`."""

from __future__ import annotations

import logging
import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._utils import same_trait

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

logger = logging.getLogger("psysc")

_VALUES = {
    # value column -> (transform, colour-bar label, matching FDR column)
    "assoc_pval": ("nlog10", "association $-\\log_{10}$ p", "assoc_fdr"),
    "hetero_pval": ("nlog10", "heterogeneity $-\\log_{10}$ p", "hetero_fdr"),
    "assoc_z": ("identity", "association z-score", "assoc_fdr"),
    "hetero_z": ("identity", "heterogeneity z-score", "hetero_fdr"),
}
_ASSOC_MARKER = "*"
_HETERO_MARKER = "×"


def symmetric_bound(values) -> float:
    """The largest finite ``|value|``, the bound of a colour scale centred on 0 (1.0 when there is none above 0)."""
    finite = np.abs(np.asarray(values, dtype=float))
    finite = finite[np.isfinite(finite)]
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


def finite_for_colour(values) -> np.ndarray:
    """``values`` with ``±inf`` a step beyond the largest finite ``|value|``; NaN stays NaN.

    An infinite z-score (a group against control scores without spread) is then drawn in the strongest colour of
    its sign, not as a missing value.
    """
    out = np.array(values, dtype=np.float64)
    finite = np.abs(out[np.isfinite(out)])
    top = float(finite.max()) if finite.size else 0.0
    step = max(1.1 * top, top + 1.0)
    out[np.isposinf(out)] = step
    out[np.isneginf(out)] = -step
    return out


def nlog10_pvalues(p: np.ndarray) -> np.ndarray:
    """``-log10 p`` for a plot: p = 0 (below the smallest float) a step above the largest finite value.

    The strongest evidence is drawn as such; NaN stays NaN.
    """
    with np.errstate(divide="ignore"):
        return finite_for_colour(-np.log10(np.asarray(p, dtype=np.float64)))


def _enrichment_table(data: AnnData | pd.DataFrame, key: str, groupby: str | None = None
                      ) -> tuple[pd.DataFrame, str | None]:
    """The tidy enrichment table and the grouping it tests (``None`` when unknown).

    From a DataFrame, or from ``adata.uns[key]``: the table of ``groupby`` that
    :func:`psysc.tl.disorder_enrichment` kept, by default the last one it wrote (``["enrichment"]``).
    """
    if isinstance(data, pd.DataFrame):
        return data, groupby
    uns = getattr(data, "uns", None)
    if uns is None:
        raise TypeError(f"data must be an AnnData or a pandas DataFrame, not {type(data).__name__}")
    if key not in uns or "enrichment" not in uns[key]:
        raise KeyError(
            f"adata.uns[{key!r}]['enrichment'] not found; run psysc.tl.disorder_enrichment(adata, groupby=...) first"
            + (" (or pass key=, the key_added used when scoring)" if key not in uns else "")
        )
    if groupby is None:
        table, groupby = uns[key]["enrichment"], dict(uns[key].get("enrichment_params", {})).get("groupby")
    else:
        from ..tl._enrichment import kept_enrichment

        entry = kept_enrichment(uns[key], groupby)
        if entry is None:
            kept = [dict(e.get("params", {})).get("groupby")
                    for e in dict(uns[key].get("enrichment_by_groupby", {})).values() if isinstance(e, dict)]
            raise KeyError(f"no enrichment table of groupby={groupby!r} in adata.uns[{key!r}] (tables kept for: "
                           f"{kept}); run psysc.tl.disorder_enrichment(adata, groupby={groupby!r}) first")
        table = entry["table"]
    return (table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)), groupby


def _ordered_levels(column: pd.Series, wanted: Sequence[str] | None, what: str, *,
                    any_case: bool = False) -> list[str]:
    """Levels of ``column`` in table order (category order for categoricals), or ``wanted`` after checking it.

    ``any_case``: a wanted name may differ from its level in case only (trait names, as :func:`same_trait`).
    """
    if isinstance(column.dtype, pd.CategoricalDtype):
        present = set(column.astype(str))
        available = [str(c) for c in column.cat.categories if str(c) in present]
    else:
        available = list(pd.unique(column.astype(str)))
    if wanted is None:
        return available
    if isinstance(wanted, str):
        wanted = [wanted]
    wanted = [same_trait(w, available) if any_case else str(w) for w in wanted]
    repeated = sorted({w for w in wanted if wanted.count(w) > 1})
    if repeated:
        raise ValueError(f"{what} {repeated} named more than once; name each once")
    missing = [w for w in wanted if w not in available]
    if missing:
        raise KeyError(f"{what} {missing} not in the enrichment table; available: {available}")
    return wanted


def check_fdr(fdr) -> None:
    """Refuse an FDR threshold outside (0, 1]."""
    if not isinstance(fdr, numbers.Real) or not 0 < fdr <= 1:
        raise ValueError(f"fdr must be a number in (0, 1], not {fdr!r}")


def check_columns(table: pd.DataFrame, needed: Sequence[str], made_by: str) -> None:
    """Refuse a table that lacks one of the ``needed`` columns, naming them and the tool that writes such tables."""
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise KeyError(f"the table lacks column(s) {missing}; columns: {list(table.columns)}. Is it the output of "
                       f"{made_by}?")


def saved_path(save: bool | str | os.PathLike, name: str) -> Path:
    """Where ``save=`` writes a figure named ``name``.

    As in scanpy: ``True`` is ``<figdir>/<name>.<format>`` and a suffix that starts with ``_`` or ``.`` is added
    to the name (``"_scz.png"`` gives ``<figdir>/<name>_scz.png``), in ``scanpy.settings.figdir`` and
    ``scanpy.settings.file_format_figs``. Any other text or path is the file itself (``"fig/heatmap.png"``),
    its format from its extension (the default format when it has none).
    """
    import scanpy as sc

    fmt = str(sc.settings.file_format_figs)
    if save is True:
        return Path(sc.settings.figdir) / f"{name}.{fmt}"
    text = os.fspath(save)
    if not isinstance(text, str) or not text:
        raise TypeError(f"save must be True, a file name or a suffix such as '_scz.png', not {save!r}")
    path = Path(sc.settings.figdir) / f"{name}{text}" if text[0] in "_." else Path(text)
    return path if path.suffix else path.with_name(f"{path.name}.{fmt}")


def _finish(fig: Figure, ax: Axes, *, ax_given: bool, show: bool | None, return_fig: bool,
            save: bool | str | os.PathLike | None = None, name: str = "figure"):
    """Save, show and/or return following scanpy: show by default only for a new figure, return None when shown."""
    if save is not None and save is not False:
        path = saved_path(save, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, bbox_inches="tight")
        logger.info("saved figure to %s", path)
    if show is None:
        show = not ax_given and not return_fig
    if show:
        import matplotlib.pyplot as plt

        plt.show()
    if return_fig:
        return fig
    return None if show else ax


def enrichment_heatmap(
    data: AnnData | pd.DataFrame,
    *,
    key: str = "psysc",
    value: str = "assoc_pval",
    traits: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
    groupby: str | None = None,
    fdr: float = 0.1,
    cmap: str | None = None,
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
    save: bool | str | os.PathLike | None = None,
) -> Axes | Figure | None:
    r"""Heatmap of trait x cell-group enrichment, with the significant cells marked.

    Rows are traits, columns cell groups. The colour is :math:`-\log_{10} p` for the p-value columns
    (``value="assoc_pval"`` or ``"hetero_pval"``) or the z-score itself (``"assoc_z"``, ``"hetero_z"``).
    A ``*`` marks the pairs whose FDR of the same test (``assoc_fdr`` or ``hetero_fdr``) is below ``fdr``;
    when the association is shown, a ``×`` also marks significant within-group heterogeneity
    (``hetero_fdr < fdr``) if the table has that column. Pairs absent from the table, or without a value, are
    drawn grey.

    Parameters
    ----------
    data
        An AnnData where :func:`psysc.tl.disorder_enrichment` stored its table in ``adata.uns[key]["enrichment"]``,
        or that tidy table itself (columns ``trait``, ``group``, ``value`` and optionally the ``*_fdr`` columns).
    key
        Namespace of ``adata.uns`` holding the table (the ``key`` of :func:`psysc.tl.disorder_enrichment`).
    value
        Statistic to colour by: ``"assoc_pval"``, ``"assoc_z"``, ``"hetero_pval"`` or ``"hetero_z"``.
    traits
        Traits (rows) to show, in this order. Default: all, in table order.
    groups
        Cell groups (columns) to show, in this order. Default: all, in table order (category order when
        ``group`` is categorical).
    groupby
        The grouping whose table to draw, when :func:`psysc.tl.disorder_enrichment` was run with several
        (each kept in ``adata.uns[key]["enrichment_by_groupby"]``). Default: the last one run. It labels the
        x axis.
    fdr
        FDR threshold of the markers.
    cmap
        Matplotlib colour map. Default: ``"Reds"`` from 0 up for the p-values, the diverging ``"RdBu_r"``
        centred on 0 for the z-scores (white at z = 0, red above, blue below). Missing values (a pair that was not
        tested, a group too small for a test) are grey.
    ax
        Axes to draw into. Default: a new figure sized to the table.
    show
        Show the figure (:func:`matplotlib.pyplot.show`). Default: only when neither ``ax`` nor ``return_fig``
        is given, as in scanpy.
    return_fig
        Return the :class:`~matplotlib.figure.Figure` instead of the Axes.
    save
        Also write the figure to a file: ``True``, or a suffix such as ``"_scz.png"``, writes it to
        ``scanpy.settings.figdir`` under the function's name, as scanpy does; any other name is the file itself
        (e.g. ``"results/heatmap.pdf"``).

    Returns
    -------
    matplotlib.axes.Axes, matplotlib.figure.Figure or None
        The heatmap's :class:`~matplotlib.axes.Axes` (its image is ``ax.images[0]``), the Figure with
        ``return_fig=True``, or ``None`` when the figure was shown.

    Examples
    --------
    From an AnnData scored and tested with :func:`psysc.tl.score_disorders` and
    :func:`psysc.tl.disorder_enrichment`:

    >>> psysc.pl.enrichment_heatmap(adata, traits=["SCZ", "BIP", "HEIGHT"])  # doctest: +SKIP

    or from the table itself (e.g. ``enrichment.tsv`` written by ``psysc run``):

    >>> import pandas as pd
    >>> import psysc
    >>> table = pd.DataFrame(
    ...     {
    ...         "trait": ["SCZ", "SCZ", "HEIGHT", "HEIGHT"],
    ...         "group": ["neurons", "astrocytes", "neurons", "astrocytes"],
    ...         "assoc_pval": [1e-4, 0.2, 0.5, 0.3],
    ...         "assoc_fdr": [4e-4, 0.27, 0.5, 0.4],
    ...     }
    ... )
    >>> ax = psysc.pl.enrichment_heatmap(table, show=False)
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['SCZ', 'HEIGHT']

    """
    import matplotlib.pyplot as plt

    if value not in _VALUES:
        raise ValueError(f"value must be one of {list(_VALUES)}, not {value!r}")
    check_fdr(fdr)
    table, grouping = _enrichment_table(data, key, groupby)
    check_columns(table, ("trait", "group", value), "psysc.tl.disorder_enrichment")
    row_names = _ordered_levels(table["trait"], traits, "trait(s)", any_case=True)
    col_names = _ordered_levels(table["group"], groups, "group(s)")
    if not row_names or not col_names:
        raise ValueError("nothing to plot: the enrichment table is empty")

    tidy = table.assign(trait=table["trait"].astype(str), group=table["group"].astype(str))
    if tidy.duplicated(["trait", "group"]).any():
        raise ValueError("the enrichment table has more than one row per (trait, group)")
    tidy = tidy.set_index(["trait", "group"])
    full_index = pd.MultiIndex.from_product([row_names, col_names], names=["trait", "group"])

    def grid(column: str) -> np.ndarray:
        return tidy[column].astype(float).reindex(full_index).to_numpy().reshape(len(row_names), len(col_names))

    transform, label, fdr_col = _VALUES[value]
    raw = grid(value)
    values = nlog10_pvalues(raw) if transform == "nlog10" else finite_for_colour(raw)
    shown = np.ma.masked_invalid(values)

    markers = np.full(values.shape, "", dtype=object)
    notes = []
    if fdr_col in tidy.columns:
        markers[grid(fdr_col) < fdr] += _ASSOC_MARKER
        notes.append(f"{_ASSOC_MARKER} {fdr_col.split('_')[0]}. FDR < {fdr:g}")
    if value.startswith("assoc") and "hetero_fdr" in tidy.columns and np.isfinite(grid("hetero_fdr")).any():
        markers[grid("hetero_fdr") < fdr] += _HETERO_MARKER
        notes.append(f"{_HETERO_MARKER} heterog. FDR < {fdr:g}")
    if np.ma.count_masked(shown):
        notes.append("grey: no value")
    xlabel = (str(grouping) if grouping else "cell group") + (f"\n({', '.join(notes)})" if notes else "")

    ax_given = ax is not None
    if ax is None:
        width = 2.8 + 0.5 * len(col_names) + 0.07 * max(len(t) for t in row_names)
        width = max(width, 1.6 + 0.075 * max(len(line) for line in xlabel.splitlines()))  # the legend fits
        height = 1.6 + 0.42 * len(row_names) + 0.07 * max(len(g) for g in col_names)
        fig, ax = plt.subplots(figsize=(min(width, 30), min(height, 30)), layout="constrained")
    else:
        fig = ax.figure

    if shown.count() == 0:
        logger.warning(
            "no %s in the enrichment table to colour by (every value is missing%s); the heatmap is blank", value,
            ": was disorder_enrichment run with use_graph=None?" if value.startswith("hetero") else "",
        )
    if transform == "nlog10":  # the top of the scale at least p = 0.1: weak evidence is never drawn dark
        vmin, vmax = 0.0, (1.0 if shown.count() == 0 else max(float(shown.max()), 1.0))
        cmap = cmap or "Reds"
    else:  # a z-score: symmetric about 0, so that white is no effect
        top = symmetric_bound(values)
        vmin, vmax = -top, top
        cmap = cmap or "RdBu_r"
    colormap = plt.get_cmap(cmap).with_extremes(bad="0.8")  # missing values grey, not the colour of no effect
    im = ax.imshow(shown, cmap=colormap, aspect="auto", interpolation="nearest", vmin=vmin, vmax=vmax)
    cbar = fig.colorbar(im, ax=ax, fraction=0.05, pad=0.03)
    cbar.set_label(label)

    ax.set_xticks(np.arange(len(col_names)), labels=col_names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(np.arange(len(row_names)), labels=row_names)
    ax.set_xticks(np.arange(len(col_names) + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(len(row_names) + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=1.0)
    ax.tick_params(which="minor", length=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("trait")

    # markers in black on light cells, white on dark ones
    norm, colormap = im.norm, im.get_cmap()
    for i, j in zip(*np.nonzero(markers != ""), strict=True):
        level = norm(values[i, j]) if np.isfinite(values[i, j]) else 0.0
        r, g, b, _ = colormap(level)
        color = "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black"
        ax.text(j, i, markers[i, j], ha="center", va="center", color=color, fontsize=12, fontweight="bold")

    return _finish(fig, ax, ax_given=ax_given, show=show, return_fig=return_fig, save=save, name="enrichment_heatmap")
