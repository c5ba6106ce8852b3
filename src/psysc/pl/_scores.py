"""Per-cell disease scores drawn on an embedding."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .._utils import same_trait, scored_elsewhere, scored_traits
from ._enrichment import _finish, symmetric_bound

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# default colouring per score column: signed scores diverge around 0, -log10 p-values are sequential
_SIGNED = {"raw_score", "norm_score", "zscore"}


def scores(
    adata: AnnData,
    trait: str,
    *,
    basis: str = "umap",
    key: str = "psysc",
    value: str = "norm_score",
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
    save: bool | str | os.PathLike | None = None,
    **kwargs: Any,
) -> Axes | Figure | None:
    """Embedding of the cells coloured by their score for one trait.

    Draws ``adata.obsm["X_" + basis]`` with :func:`scanpy.pl.embedding`, coloured by the per-cell column
    ``adata.obs[f"{key}_{trait}_{value}"]`` written by :func:`psysc.tl.score_disorders`. Signed scores
    (``norm_score``, ``zscore``, ``raw_score``) use a diverging colour map symmetric around 0, the others
    (``nlog10_pval``, ``pval``, ``mc_pval``) a sequential one, darkest for the strongest evidence (high
    ``nlog10_pval``, low p-values); ``kwargs`` override these choices.

    Parameters
    ----------
    adata
        Annotated data matrix scored by :func:`psysc.tl.score_disorders`.
    trait
        Trait whose score is shown (a key of the gene sets that were scored, e.g. ``"SCZ"``).
    basis
        Embedding in ``adata.obsm["X_" + basis]``, e.g. ``"umap"`` or ``"pca"``.
    key
        ``key_added`` of :func:`psysc.tl.score_disorders`.
    value
        Score column: ``"norm_score"`` (default), ``"zscore"``, ``"nlog10_pval"``, ``"pval"``, ``"mc_pval"``
        or ``"raw_score"``.
    ax
        Axes to draw into. Default: a new figure.
    show
        Show the figure (:func:`matplotlib.pyplot.show`). Default: only when neither ``ax`` nor ``return_fig``
        is given, as in scanpy.
    return_fig
        Return the :class:`~matplotlib.figure.Figure` instead of the Axes.
    save
        Also write the figure to a file: ``True``, or a suffix such as ``"_scz.png"``, writes it to
        ``scanpy.settings.figdir`` as ``scores_<trait>``, as scanpy does; any other name is the file itself
        (e.g. ``"results/scz_umap.pdf"``).
    **kwargs
        Passed to :func:`scanpy.pl.embedding` (e.g. ``size``, ``cmap``, ``vmax``, ``title``).

    Returns
    -------
    matplotlib.axes.Axes, matplotlib.figure.Figure or None
        The :class:`~matplotlib.axes.Axes` (the cells are ``ax.collections[0]``), the Figure with
        ``return_fig=True``, or ``None`` when the figure was shown.

    Examples
    --------
    >>> import scanpy as sc
    >>> import psysc
    >>> adata = psysc.datasets.darmanis2015()
    >>> psysc.pp.prepare_scoring(adata)  # doctest: +SKIP
    >>> psysc.tl.score_disorders(adata, psysc.datasets.gwas_gene_sets(["SCZ"]), n_ctrl=100)  # doctest: +SKIP
    >>> sc.pp.pca(adata, n_comps=20, layer="psysc_norm")  # doctest: +SKIP
    >>> sc.pp.neighbors(adata)  # doctest: +SKIP
    >>> sc.tl.umap(adata)  # doctest: +SKIP
    >>> ax = psysc.pl.scores(adata, "SCZ", show=False)  # doctest: +SKIP

    """
    import matplotlib.pyplot as plt
    import scanpy as sc

    if not isinstance(trait, str):
        raise TypeError(f"trait is the name of one trait, not {trait!r}; for several, draw one per axes: fig, axs = "
                        "plt.subplots(1, n); then psysc.pl.scores(adata, t, ax=ax) for each trait t and axes ax")
    if "color" in kwargs:
        raise TypeError("scores() sets the colour from trait and value; to colour by another column use "
                        "sc.pl.embedding(adata, basis=..., color=...)")

    column = f"{key}_{trait}_{value}"
    scored = None
    if column not in adata.obs.columns:  # "scz" names the scored "SCZ"
        scored = scored_traits(adata, key)
        trait = same_trait(trait, scored)
        column = f"{key}_{trait}_{value}"
    if column not in adata.obs.columns:
        if not scored:
            hint = (f"no trait is scored under key={key!r}"
                    + (scored_elsewhere(adata, key) or ": run psysc.tl.score_disorders(adata, gene_sets) first"))
        elif str(trait) not in scored:
            hint = (f"trait {trait!r} was not scored under key={key!r} (scored: {scored})"
                    + (scored_elsewhere(adata, key, trait) or ": run psysc.tl.score_disorders with its gene set first"))
        else:
            hint = f"value {value!r} is not a score column of psysc.tl.score_disorders"
        raise KeyError(f"adata.obs[{column!r}] not found; {hint}")

    # the trait before the embedding: a trait that was never scored is the first thing to fix
    basis = basis[2:] if basis.startswith("X_") else basis
    obsm_key = f"X_{basis}"
    if obsm_key not in adata.obsm:
        fix = {
            "umap": "run sc.tl.umap(adata) first (after sc.pp.neighbors)",
            "pca": "run sc.pp.pca(adata) first",
            "tsne": "run sc.tl.tsne(adata) first",
            "draw_graph_fa": "run sc.tl.draw_graph(adata) first",
        }.get(basis, f"compute the embedding first or choose another basis ({basis=!r})")
        raise KeyError(f"adata.obsm[{obsm_key!r}] not found: {fix}; available: {list(adata.obsm)}")

    if value in _SIGNED:
        kwargs.setdefault("cmap", "RdBu_r")
        if not {"vmin", "vmax", "vcenter", "norm"} & kwargs.keys():
            # symmetric, linear colour scale: 0 is the neutral colour
            bound = symmetric_bound(adata.obs[column])
            kwargs["vmin"], kwargs["vmax"] = -bound, bound
    else:  # the strongest evidence darkest: high -log10 p, low p
        kwargs.setdefault("cmap", "Reds" if value == "nlog10_pval" else "Reds_r")
    kwargs.setdefault("title", f"{trait} ({value})")

    ax_given = ax is not None
    if ax is None and kwargs.get("projection", "2d") == "2d":  # for 3-D, scanpy makes its own axes
        _, ax = plt.subplots(figsize=(5.2, 4.4), layout="constrained")
    ax = sc.pl.embedding(adata, basis=basis, color=column, ax=ax, show=False, **kwargs)
    fig = ax.figure
    return _finish(fig, ax, ax_given=ax_given, show=show, return_fig=return_fig, save=save, name=f"scores_{trait}")
