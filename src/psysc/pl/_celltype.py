"""Dot plot of trait x cell-state enrichment and bar plot of disorder contrasts."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._utils import same_trait
from ._enrichment import (
    _enrichment_table,
    _finish,
    _ordered_levels,
    check_columns,
    check_fdr,
    finite_for_colour,
    nlog10_pvalues,
)

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_TABLES = {
    "celltype_enrichment": "psysc.tl.celltype_enrichment",
    "combined_enrichment": "psysc.tl.combine_evidence",
    "enrichment": "psysc.tl.disorder_enrichment",
    "disorder_contrast": "psysc.tl.disorder_contrast",
}


def _table(data, key: str, name: str) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    uns = getattr(data, "uns", None)
    if uns is None:
        raise TypeError(f"data must be an AnnData or a pandas DataFrame, not {type(data).__name__}")
    if key not in uns or name not in uns[key]:
        raise KeyError(f"adata.uns[{key!r}][{name!r}] not found; run {_TABLES.get(name, 'the tool')}(adata, ...) first")
    return pd.DataFrame(uns[key][name])


def _pval_column(table: pd.DataFrame) -> tuple[str, str | None]:
    for p, f in (("pval", "fdr"), ("assoc_pval", "assoc_fdr")):
        if p in table.columns:
            return p, f if f in table.columns else None
    raise KeyError(f"the table has no p-value column (pval or assoc_pval); columns: {list(table.columns)}")


def enrichment_dotplot(
    data: AnnData | pd.DataFrame,
    *,
    table: str = "celltype_enrichment",
    key: str = "psysc",
    method: str | None = None,
    color: str | None = None,
    traits: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
    groupby: str | None = None,
    fdr: float = 0.1,
    cmap: str = "RdBu_r",
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
    save: bool | str | os.PathLike | None = None,
) -> Axes | Figure | None:
    r"""Dot plot of traits x cell states: dot size :math:`-\log_{10} p`, colour the effect, ring when significant.

    Parameters
    ----------
    data
        An AnnData holding the table in ``adata.uns[key][table]``, or a tidy table with columns
        ``trait``, ``group``, a p-value (``pval`` or ``assoc_pval``) and optionally its FDR and an effect.
    table
        ``"celltype_enrichment"`` (:func:`psysc.tl.celltype_enrichment`), ``"combined_enrichment"``
        (:func:`psysc.tl.combine_evidence`) or ``"enrichment"`` (:func:`psysc.tl.disorder_enrichment`).
    key
        Namespace of ``adata.uns``.
    method
        For a table with several methods: the one to show (default: the first).
    color
        Column giving the colour (default ``t`` when present, else ``assoc_z``, else
        :math:`-\log_{10} p`); the colour scale is centred on 0 for signed statistics.
    traits, groups
        Rows and columns to show, in this order (default: all, in table order).
    groupby
        With ``table="enrichment"``: the grouping whose per-cell table to draw, when
        :func:`psysc.tl.disorder_enrichment` ran with several (default: the last one run), as in
        :func:`enrichment_heatmap`. With another table: its grouping, checked (the table holds one). Only with an
        AnnData.
    fdr
        Dots with FDR below this get a black ring (default 0.1, as :func:`enrichment_heatmap` marks them).
    cmap
        Matplotlib colour map.
    ax, show, return_fig
        As in scanpy: draw into ``ax``; show by default only for a new figure; return the Figure.
    save
        Also write the figure to a file: ``True``, or a suffix such as ``"_scz.png"``, writes it to
        ``scanpy.settings.figdir`` under the function's name, as scanpy does; any other name is the file itself
        (e.g. ``"results/heatmap.pdf"``).

    Returns
    -------
    matplotlib.axes.Axes, matplotlib.figure.Figure or None
        The :class:`~matplotlib.axes.Axes` (the dots are ``ax.collections[0]``), the Figure with
        ``return_fig=True``, or ``None`` when shown.

    Examples
    --------
    >>> import pandas as pd
    >>> import psysc
    >>> t = pd.DataFrame({"trait": ["SCZ", "SCZ", "AD", "AD"], "group": ["neurons", "microglia"] * 2,
    ...                   "method": "seismic", "t": [2.5, -4.2, -0.1, 4.3], "pval": [0.007, 1.0, 0.5, 1e-5],
    ...                   "fdr": [0.01, 1.0, 0.6, 1e-4]})
    >>> ax = psysc.pl.enrichment_dotplot(t, show=False)
    >>> [x.get_text() for x in ax.get_yticklabels()]
    ['SCZ', 'AD']

    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize, TwoSlopeNorm

    check_fdr(fdr)
    if groupby is not None and isinstance(data, pd.DataFrame):
        raise TypeError("groupby= picks a table that an AnnData holds; a DataFrame is drawn as it is: select its rows "
                        "first, or pass the AnnData")
    if table == "enrichment" and not isinstance(data, pd.DataFrame):
        tab, _ = _enrichment_table(data, key, groupby)
    else:
        tab = _table(data, key, table)
        if groupby is not None and not isinstance(data, pd.DataFrame):
            made_for = dict(data.uns[key].get(f"{table}_params", {})).get("groupby")
            if made_for is not None and made_for != groupby:
                raise KeyError(f"adata.uns[{key!r}][{table!r}] was computed for groupby={made_for!r}, not "
                               f"{groupby!r}; run {_TABLES.get(table, 'the tool')}(adata, ..., groupby={groupby!r}) "
                               "first")
    check_columns(tab, ("trait", "group"), _TABLES.get(table, "a psysc.tl function"))
    if tab.empty:
        raise ValueError("nothing to plot: the table is empty")
    if "method" in tab.columns:
        available = list(pd.unique(tab["method"].astype(str)))
        if method is None:
            method = available[0]
        if method not in available:
            raise KeyError(f"method {method!r} is not in the table; available: {available}")
        tab = tab[tab["method"].astype(str) == method]
    elif method is not None:
        raise KeyError("the table has no method column; leave method=None")
    pcol, fcol = _pval_column(tab)
    if color is None:
        color = next((c for c in ("t", "assoc_z") if c in tab.columns), None)
    if color is not None and color not in tab.columns:
        raise KeyError(f"color column {color!r} is not in the table; columns: {list(tab.columns)}")
    rows = _ordered_levels(tab["trait"], traits, "trait(s)", any_case=True)
    cols = _ordered_levels(tab["group"], groups, "group(s)")
    if not rows or not cols:
        raise ValueError("nothing to plot: the table is empty")
    tidy = tab.assign(trait=tab["trait"].astype(str), group=tab["group"].astype(str)).set_index(["trait", "group"])
    if tidy.index.duplicated().any():
        raise ValueError("the table has more than one row per (trait, group); choose one method")
    full = pd.MultiIndex.from_product([rows, cols])
    p = tidy[pcol].astype(float).reindex(full).to_numpy()
    size_val = nlog10_pvalues(p)
    cval = size_val if color is None else finite_for_colour(tidy[color].astype(float).reindex(full).to_numpy())
    sig = np.zeros(len(full), dtype=bool) if fcol is None else tidy[fcol].astype(float).reindex(full).to_numpy() < fdr
    ok = ~np.isnan(p)
    if not ok.any():
        raise ValueError(f"every p-value ({pcol}) of the traits and groups shown is NaN: nothing to plot")
    yy, xx = np.divmod(np.arange(len(full)), len(cols))
    smax = max(float(np.nanmax(size_val)), 1.0)
    sizes = 20 + 280 * np.clip(size_val, 0, None) / smax

    title = {"celltype_enrichment": "cell-type enrichment", "combined_enrichment": "combined evidence",
             "enrichment": "per-cell enrichment"}.get(table, table)
    title = f"{title}{f' ({method})' if method else ''}; ring: FDR < {fdr:g}"
    ax_given = ax is not None
    if ax is None:
        fig, ax = plt.subplots(figsize=_dotplot_size(rows, cols, title), layout="constrained")
    fig = ax.figure
    # a signed statistic (t, z, beta) is centred on 0 even when every value has one sign: a small positive t is
    # drawn near the neutral colour, not in the colour of depletion
    coloured = ok & ~np.isnan(cval)
    known = cval[coloured] if coloured.any() else np.zeros(1)
    signed = color is not None and (color in _SIGNED_COLUMNS or known.min() < 0)
    if signed:
        lim = max(float(np.abs(known).max()), 1e-12)
        norm = TwoSlopeNorm(vcenter=0.0, vmin=-lim, vmax=lim)
    else:
        norm = Normalize(vmin=float(known.min()), vmax=float(known.max()))
    colormap = plt.get_cmap(cmap).with_extremes(bad="0.7")  # a p-value without its colour value: a grey dot
    sc = ax.scatter(xx[ok], yy[ok], s=sizes[ok], c=cval[ok], cmap=colormap, norm=norm, plotnonfinite=True,
                    edgecolors=np.where(sig[ok], "black", "none"), linewidths=1.5)
    ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlim(-0.6, len(cols) - 0.4)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    label = color if color is not None else "$-\\log_{10}$ p"
    fig.colorbar(sc, ax=ax, label=label, shrink=0.8)
    # what the dot sizes mean: a few -log10 p values up to the largest shown (a scatter size is an area)
    from matplotlib.lines import Line2D

    # round steps at most 0.8 of the largest (and of each other), so that no two look alike
    steps = [v for v in (1, 2, 3, 5, 10, 20, 50, 100, 200) if v <= 0.8 * round(smax, 1)][-2:] + [round(smax, 1)]
    handles = [Line2D([], [], marker="o", linestyle="", color="grey", markersize=np.sqrt(20 + 280 * v / smax))
               for v in steps]
    options = {"title": f"dot size: $-\\log_{{10}}$ {pcol}", "ncols": len(steps), "fontsize": 7,
               "title_fontsize": 7, "frameon": False}
    if ax_given or fig.get_layout_engine() is None:  # another figure's layout: inside the axes
        ax.legend(handles, [f"{v:g}" for v in steps], loc="best", **options)
    else:
        fig.legend(handles, [f"{v:g}" for v in steps], loc="outside lower center", **options)
    ax.set_title(title, fontsize=9)
    return _finish(fig, ax, ax_given=ax_given, show=show, return_fig=return_fig, save=save,
                   name="enrichment_dotplot")


def _dotplot_size(rows: Sequence[str], cols: Sequence[str], title: str) -> tuple[float, float]:
    """Figure size (inches) of a dot plot, at most 30 x 30.

    Room for the rows (at least a colour bar's height), the group labels (rotated 60 degrees), the size legend
    below and the title.
    """
    label = 0.065 * max(len(c) for c in cols)  # a rotated label's height, 10-point text
    height = 0.9 + max(0.4 * len(rows), 1.3) + 0.87 * label + 0.6
    width = max(2.5 + 0.55 * len(cols) + 0.065 * max(len(r) for r in rows), 1.0 + 0.06 * len(title),
                0.5 * label + 2.5)
    return min(width, 30.0), min(height, 30.0)


#: columns of psysc's tables that hold signed statistics
_SIGNED_COLUMNS = frozenset({"t", "assoc_z", "hetero_z", "beta", "z", "zscore", "ZSTAT", "diff", "t_diff"})


def contrast(
    data: AnnData | pd.DataFrame,
    contrast: str | None = None,
    *,
    key: str = "psysc",
    method: str | None = None,
    groups: Sequence[str] | None = None,
    fdr: float = 0.05,
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
    save: bool | str | os.PathLike | None = None,
) -> Axes | Figure | None:
    """Bar plot of one disorder contrast per cell state: slope difference with 95 % interval.

    Bars to the right mean the group is more enriched for the first trait of the contrast (e.g. SCZ in
    ``"SCZ - AD"``), to the left for the second; bars with FDR below ``fdr`` are drawn solid, the
    others pale; the slopes of each trait alone are drawn as markers.

    Parameters
    ----------
    data
        An AnnData where :func:`psysc.tl.disorder_contrast` stored ``adata.uns[key]["disorder_contrast"]``,
        or that table.
    contrast
        The contrast to draw (e.g. ``"SCZ - AD"``, ``"shared"``, ``"SCZ - shared"``; default: the first).
    key
        Namespace of ``adata.uns``.
    method
        Method to draw (default: the first in the table).
    groups
        Groups to show, in this order (default: sorted by the contrast's slope).
    fdr
        Significance threshold of the solid bars.
    ax, show, return_fig
        As in scanpy.
    save
        Also write the figure to a file: ``True``, or a suffix such as ``"_scz.png"``, writes it to
        ``scanpy.settings.figdir`` under the function's name, as scanpy does; any other name is the file itself
        (e.g. ``"results/heatmap.pdf"``).

    Returns
    -------
    matplotlib.axes.Axes, matplotlib.figure.Figure or None
        The :class:`~matplotlib.axes.Axes` (bars are ``ax.patches``), the Figure with ``return_fig=True``,
        or ``None`` when shown.

    Examples
    --------
    >>> import pandas as pd
    >>> import psysc
    >>> t = pd.DataFrame({"contrast": "SCZ - AD", "trait_a": "SCZ", "trait_b": "AD", "method": "seismic",
    ...                   "group": ["neurons", "microglia"], "beta": [0.2, -1.0], "se": [0.1, 0.16],
    ...                   "pval": [0.07, 1e-9], "fdr": [0.07, 2e-9], "beta_a": [0.18, -0.5], "beta_b": [0.0, 0.5]})
    >>> ax = psysc.pl.contrast(t, show=False)
    >>> [round(float(b.get_width()), 2) for b in ax.patches]
    [-1.0, 0.2]

    """
    import matplotlib.pyplot as plt

    check_fdr(fdr)
    tab = _table(data, key, "disorder_contrast")
    check_columns(tab, ("contrast", "method", "group", "beta", "se", "fdr"), _TABLES["disorder_contrast"])
    if tab.empty:
        raise ValueError("nothing to plot: the table is empty")
    available = list(pd.unique(tab["contrast"].astype(str)))
    contrast = available[0] if contrast is None else same_trait(contrast, available)  # "scz - ad" names "SCZ - AD"
    if contrast not in available:
        raise KeyError(f"contrast {contrast!r} is not in the table; available: {available}")
    tab = tab[tab["contrast"].astype(str) == contrast]
    methods = list(pd.unique(tab["method"].astype(str)))
    method = methods[0] if method is None else method
    if method not in methods:
        raise KeyError(f"method {method!r} is not in the table; available: {methods}")
    tab = tab[tab["method"].astype(str) == method].assign(group=lambda d: d["group"].astype(str)).set_index("group")
    order = list(tab.sort_values("beta").index) if groups is None else _ordered_levels(
        pd.Series(tab.index), groups, "group(s)")
    tab = tab.loc[order]
    ax_given = ax is not None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 1.0 + 0.35 * len(order)), layout="constrained")
    fig = ax.figure
    y = np.arange(len(order))
    beta = tab["beta"].to_numpy(dtype=float)
    sig = tab["fdr"].to_numpy(dtype=float) < fdr
    colors = np.where(beta > 0, "#b2182b", "#2166ac")
    bars = ax.barh(y, beta, color=colors, alpha=None, xerr=1.96 * tab["se"].to_numpy(dtype=float), ecolor="0.3",
                   capsize=2)
    for patch, s in zip(bars.patches, sig, strict=True):
        patch.set_alpha(1.0 if s else 0.35)
    a_name = str(tab["trait_a"].iloc[0]) if "trait_a" in tab else "A"
    b_value = tab["trait_b"].iloc[0] if "trait_b" in tab else "B"
    # the shared component: one slope, no difference (no second trait: '' in adata, NaN in a table read from a file)
    b_name = "" if pd.isna(b_value) else str(b_value)
    one_sided = not b_name or contrast == "shared"
    if "beta_a" in tab and not one_sided:
        ax.scatter(tab["beta_a"], y, marker="o", facecolors="none", edgecolors="black", s=25, zorder=3,
                   label=f"{a_name} alone")
    if "beta_b" in tab and not one_sided and tab["beta_b"].notna().any():
        ax.scatter(tab["beta_b"], y, marker="x", color="black", s=25, zorder=3, label=f"{b_name} alone")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, order)
    if one_sided:
        ax.set_xlabel(f"slope ({method}) of the mean scaled z of {a_name.replace('+', ', ')}")
    else:
        ax.set_xlabel(f"slope difference ({method}); right: {a_name}, left: {b_name}")
    ax.set_title(f"{contrast}: solid bars FDR < {fdr:g}", fontsize=9)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best", frameon=False)
    return _finish(fig, ax, ax_given=ax_given, show=show, return_fig=return_fig, save=save, name="contrast")
