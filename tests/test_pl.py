"""psysc.pl draws exactly what the tables and columns hold (values read back from the artists)."""

from __future__ import annotations

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

import psysc

TRAITS = ["SCZ", "BIP", "HEIGHT"]
GROUPS = ["neurons", "astrocytes", "OPC", "microglia"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def table() -> pd.DataFrame:
    """A tidy enrichment table with hand-set p-values and FDRs (some below 0.1, some not)."""
    rng = np.random.default_rng(1)
    rows = []
    for i, trait in enumerate(TRAITS):
        for j, group in enumerate(GROUPS):
            p = 10.0 ** -(0.25 + 1.5 * ((i * 7 + j * 3) % 5))  # 10^-0.25 ... 10^-6.25
            hp = 10.0 ** -(0.5 + (i + j) % 3)
            rows.append(
                {
                    "trait": trait,
                    "group": group,
                    "n_cells": 10 + j,
                    "assoc_pval": p,
                    "assoc_z": float(rng.normal(2, 1)),
                    "assoc_fdr": min(1.0, 3 * p),
                    "hetero_pval": hp,
                    "hetero_z": float(rng.normal()),
                    "hetero_fdr": min(1.0, 4 * hp),
                    "frac_sig": 0.1,
                    "n_fdr_0.05": 1,
                    "n_fdr_0.1": 2,
                    "n_fdr_0.2": 3,
                }
            )
    return pd.DataFrame(rows)


def _grid(table: pd.DataFrame, column: str, traits=TRAITS, groups=GROUPS) -> np.ndarray:
    return table.pivot(index="trait", columns="group", values=column).loc[traits, groups].to_numpy()


def _labels(ticklabels) -> list[str]:
    return [t.get_text() for t in ticklabels]


def _markers(ax: Axes) -> dict[tuple[int, int], str]:
    """(row, column) -> marker text drawn in that heatmap cell."""
    out = {}
    for t in ax.texts:
        x, y = t.get_position()
        out[(round(y), round(x))] = t.get_text()
    return out


# -------------------------------------------------------------------------------------- heatmap


def test_heatmap_layout_and_colour_values(table):
    ax = psysc.pl.enrichment_heatmap(table, show=False)
    assert isinstance(ax, Axes)
    (im,) = ax.images
    values = im.get_array()
    assert values.shape == (len(TRAITS), len(GROUPS))
    assert _labels(ax.get_yticklabels()) == TRAITS
    assert _labels(ax.get_xticklabels()) == GROUPS
    expected = -np.log10(_grid(table, "assoc_pval"))
    np.testing.assert_allclose(np.ma.getdata(values), expected, rtol=1e-12)
    assert not np.ma.getmaskarray(values).any()
    # the colours are those of the colour map at these values, from 0 to the maximum
    assert im.norm.vmin == 0
    assert im.norm.vmax == pytest.approx(expected.max())
    np.testing.assert_allclose(im.to_rgba(values), im.get_cmap()(im.norm(expected)))
    # labels are rotated and a labelled colour bar is drawn
    assert all(t.get_rotation() == 45 for t in ax.get_xticklabels())
    (cbar_ax,) = [a for a in ax.figure.axes if a is not ax]
    assert "log" in cbar_ax.get_ylabel()


def test_heatmap_markers_follow_fdr_columns(table):
    for fdr in (0.1, 0.01):
        ax = psysc.pl.enrichment_heatmap(table, fdr=fdr, show=False)
        assoc = _grid(table, "assoc_fdr") < fdr
        hetero = _grid(table, "hetero_fdr") < fdr
        expected = {
            (i, j): ("*" if assoc[i, j] else "") + ("×" if hetero[i, j] else "")
            for i in range(len(TRAITS))
            for j in range(len(GROUPS))
            if assoc[i, j] or hetero[i, j]
        }
        assert expected  # the fixture has significant pairs at both thresholds
        assert _markers(ax) == expected
        assert f"FDR < {fdr:g}" in ax.get_xlabel()


def test_heatmap_without_fdr_columns_has_no_markers(table):
    ax = psysc.pl.enrichment_heatmap(table[["trait", "group", "assoc_pval"]], show=False)
    assert len(ax.texts) == 0
    np.testing.assert_allclose(np.ma.getdata(ax.images[0].get_array()), -np.log10(_grid(table, "assoc_pval")))


@pytest.mark.parametrize(
    ("value", "transform", "fdr_col", "cross"),
    [
        ("assoc_z", lambda x: x, "assoc_fdr", True),
        ("hetero_pval", lambda x: -np.log10(x), "hetero_fdr", False),
        ("hetero_z", lambda x: x, "hetero_fdr", False),
    ],
)
def test_heatmap_other_values(table, value, transform, fdr_col, cross):
    ax = psysc.pl.enrichment_heatmap(table, value=value, show=False)
    np.testing.assert_allclose(np.ma.getdata(ax.images[0].get_array()), transform(_grid(table, value)))
    star = _grid(table, fdr_col) < 0.1
    # the heterogeneity cross is added only when the association is shown
    hetero = (_grid(table, "hetero_fdr") < 0.1) & cross
    expected = {
        (i, j): ("*" if star[i, j] else "") + ("×" if hetero[i, j] else "")
        for i in range(len(TRAITS))
        for j in range(len(GROUPS))
        if star[i, j] or hetero[i, j]
    }
    assert _markers(ax) == expected


def test_heatmap_colours_z_scores_on_a_scale_centred_on_zero_and_warns_when_blank(table, caplog):
    """z = 0 is white (no effect), the most extreme |z| ends either side; p-values keep a scale from 0 up."""
    import logging

    for value in ("assoc_z", "hetero_z"):
        z = _grid(table, value)
        im = psysc.pl.enrichment_heatmap(table, value=value, show=False).images[0]
        top = np.nanmax(np.abs(z))
        assert (im.norm.vmin, im.norm.vmax) == (-top, top)
        assert im.norm(0.0) == 0.5 and im.get_cmap().name == "RdBu_r"
        assert np.allclose(im.get_cmap()(0.5)[:3], 1.0, atol=0.06)  # white-ish
    im = psysc.pl.enrichment_heatmap(table, show=False).images[0]
    assert im.norm.vmin == 0.0 and im.get_cmap().name == "Reds"
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.pl.enrichment_heatmap(table.assign(hetero_pval=np.nan), value="hetero_pval", show=False)
    assert "no hetero_pval in the enrichment table" in caplog.text and "use_graph=None" in caplog.text


def test_heatmap_draws_infinite_z_scores_at_the_ends_of_the_scale(table):
    inf = table.copy()
    inf.loc[0, "assoc_z"], inf.loc[1, "assoc_z"] = np.inf, -np.inf  # controls without spread
    ax = psysc.pl.enrichment_heatmap(inf, value="assoc_z", show=False)
    (im,) = ax.images
    assert not np.ma.getmaskarray(im.get_array()).any() and "grey" not in ax.get_xlabel()
    values = np.ma.getdata(im.get_array())
    assert np.isfinite(values).all()
    top = np.abs(table["assoc_z"].iloc[2:]).max()
    step = max(1.1 * top, top + 1)  # a step beyond every finite |z|: the strongest colour of each sign
    assert sorted(np.ravel(values))[-1] == pytest.approx(step) and sorted(np.ravel(values))[0] == pytest.approx(-step)
    assert im.norm(step) == pytest.approx(1.0) and im.norm(-step) == pytest.approx(0.0)


def test_heatmap_subset_and_order(table):
    traits, groups = ["HEIGHT", "SCZ"], ["OPC", "neurons"]
    ax = psysc.pl.enrichment_heatmap(table, traits=traits, groups=groups, show=False)
    assert _labels(ax.get_yticklabels()) == traits
    assert _labels(ax.get_xticklabels()) == groups
    np.testing.assert_allclose(
        np.ma.getdata(ax.images[0].get_array()), -np.log10(_grid(table, "assoc_pval", traits, groups))
    )


def test_heatmap_categorical_group_order(table):
    order = ["OPC", "microglia", "neurons", "astrocytes"]
    cat = table.assign(group=pd.Categorical(table["group"], categories=order))
    ax = psysc.pl.enrichment_heatmap(cat, show=False)
    assert _labels(ax.get_xticklabels()) == order


def test_heatmap_missing_pair_is_blank(table):
    dropped = table[~((table["trait"] == "BIP") & (table["group"] == "OPC"))]
    ax = psysc.pl.enrichment_heatmap(dropped, show=False)
    mask = np.ma.getmaskarray(ax.images[0].get_array())
    assert mask.sum() == 1 and mask[TRAITS.index("BIP"), GROUPS.index("OPC")]
    assert (TRAITS.index("BIP"), GROUPS.index("OPC")) not in _markers(ax)


def test_heatmap_zero_pvalue_is_finite(table):
    zero = table.copy()
    zero.loc[0, "assoc_pval"] = 0.0
    values = np.ma.getdata(psysc.pl.enrichment_heatmap(zero, show=False).images[0].get_array())
    assert np.isfinite(values).all()
    top = -np.log10(table["assoc_pval"].iloc[1:].min())
    assert values[0, 0] == pytest.approx(max(1.1 * top, top + 1))  # above every p > 0: the strongest evidence


def test_heatmap_missing_values_are_grey_and_the_legend_says_only_what_is_drawn(table):
    gaps = table.copy()
    gaps.loc[0, "assoc_pval"] = np.nan
    ax = psysc.pl.enrichment_heatmap(gaps, show=False)
    (im,) = ax.images
    assert np.ma.getmaskarray(im.get_array())[0, 0]
    assert np.allclose(im.get_cmap().get_bad()[:3], 0.8)  # grey, not white (white is p = 1 / z = 0)
    assert "grey: no value" in ax.get_xlabel() and "heterog. FDR" in ax.get_xlabel()
    ax = psysc.pl.enrichment_heatmap(table.assign(hetero_fdr=np.nan), show=False)  # use_graph=None
    assert "heterog." not in ax.get_xlabel() and "grey" not in ax.get_xlabel()
    # one group: the figure is wide enough for its legend
    fig = psysc.pl.enrichment_heatmap(table, traits=["SCZ"], groups=["neurons"], show=False, return_fig=True)
    fig.canvas.draw()
    label = fig.axes[0].xaxis.label.get_window_extent()
    assert label.x0 >= 0 and label.x1 <= fig.bbox.width


def test_heatmap_from_anndata_equals_from_table(table):
    adata = ad.AnnData(np.zeros((3, 2), dtype=np.float32))
    adata.uns["myrun"] = {"enrichment": table}
    ax = psysc.pl.enrichment_heatmap(adata, key="myrun", show=False)
    ref = psysc.pl.enrichment_heatmap(table, show=False)
    np.testing.assert_array_equal(ax.images[0].get_array(), ref.images[0].get_array())
    assert _markers(ax) == _markers(ref)


def test_heatmap_return_fig_ax_and_show(table, monkeypatch):
    shown = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: shown.append(1))

    fig = psysc.pl.enrichment_heatmap(table, return_fig=True)
    assert isinstance(fig, Figure) and fig.axes[0].images
    assert shown == []

    fig2, ax = plt.subplots()
    assert psysc.pl.enrichment_heatmap(table, ax=ax) is ax
    assert ax.images and shown == []

    # scanpy behaviour: a new figure is shown by default, and then nothing is returned
    assert psysc.pl.enrichment_heatmap(table) is None
    assert shown == [1]


def test_heatmap_scale_reaches_at_least_p_of_a_tenth(table):
    weak = pd.DataFrame({"trait": "HEIGHT", "group": list("abc"), "assoc_pval": [0.6, 0.8, 1.0], "assoc_fdr": 1.0})
    im = psysc.pl.enrichment_heatmap(weak, show=False).images[0]
    assert im.norm.vmax == 1.0 and im.norm(-np.log10(0.6)) < 0.25  # p = 0.6 is pale, not the darkest red
    im = psysc.pl.enrichment_heatmap(table, show=False).images[0]
    assert im.norm.vmax == pytest.approx((-np.log10(table["assoc_pval"])).max())


def test_heatmap_of_a_chosen_groupby(table):
    adata = ad.AnnData(np.zeros((3, 2), dtype=np.float32))
    by_cluster = table.assign(group=table["group"] + "_cl", assoc_pval=0.5)
    adata.uns["psysc"] = {
        "enrichment": by_cluster, "enrichment_params": {"groupby": "leiden"},
        "enrichment_by_groupby": {"cell_type": {"table": table, "params": {"groupby": "cell_type"}},
                                  "leiden": {"table": by_cluster, "params": {"groupby": "leiden"}}},
    }
    ax = psysc.pl.enrichment_heatmap(adata, show=False)
    assert ax.get_xlabel().startswith("leiden") and _labels(ax.get_xticklabels())[0] == "neurons_cl"
    ax = psysc.pl.enrichment_heatmap(adata, groupby="cell_type", show=False)
    assert ax.get_xlabel().startswith("cell_type\n")
    np.testing.assert_allclose(ax.images[0].get_array(), -np.log10(_grid(table, "assoc_pval")))
    with pytest.raises(KeyError, match=r"groupby='subclass'.*\['cell_type', 'leiden'\]"):
        psysc.pl.enrichment_heatmap(adata, groupby="subclass", show=False)


def test_heatmap_errors(table):
    with pytest.raises(KeyError, match="disorder_enrichment"):
        psysc.pl.enrichment_heatmap(ad.AnnData(np.zeros((2, 2), dtype=np.float32)), show=False)
    with pytest.raises(ValueError, match="value must be one of"):
        psysc.pl.enrichment_heatmap(table, value="pval", show=False)
    with pytest.raises(KeyError, match="available"):
        psysc.pl.enrichment_heatmap(table, traits=["ADHD"], show=False)
    with pytest.raises(KeyError, match="available"):
        psysc.pl.enrichment_heatmap(table, groups=["pericytes"], show=False)
    with pytest.raises(KeyError, match="assoc_z"):
        psysc.pl.enrichment_heatmap(table.drop(columns="assoc_z"), value="assoc_z", show=False)
    with pytest.raises(TypeError):
        psysc.pl.enrichment_heatmap(table.to_numpy(), show=False)
    with pytest.raises(ValueError, match=r"\['SCZ'\] named more than once"):
        psysc.pl.enrichment_heatmap(table, traits=["SCZ", "BIP", "SCZ"], show=False)


# -------------------------------------------------------------------------------------- scores


@pytest.fixture
def scored() -> ad.AnnData:
    rng = np.random.default_rng(0)
    n = 80
    adata = ad.AnnData(np.zeros((n, 5), dtype=np.float32))
    adata.obs_names = [f"c{i}" for i in range(n)]
    adata.obsm["X_umap"] = rng.normal(size=(n, 2))
    for trait in ("SCZ", "HEIGHT"):
        score = rng.normal(size=n).astype(np.float32)
        adata.obs[f"psysc_{trait}_norm_score"] = score
        adata.obs[f"psysc_{trait}_nlog10_pval"] = np.abs(score).astype(np.float32)
    adata.uns["psysc"] = {"score_disorders": {"traits": ["SCZ", "HEIGHT"], "params": {}, "n_genes": {}}}
    return adata


def _points(ax: Axes) -> pd.DataFrame:
    coll = ax.collections[0]
    xy = np.asarray(coll.get_offsets())
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "c": np.asarray(coll.get_array())})


def _expected_points(adata, column) -> pd.DataFrame:
    xy = adata.obsm["X_umap"]
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "c": adata.obs[column].to_numpy()})


@pytest.mark.parametrize("value", ["norm_score", "nlog10_pval"])
def test_scores_draws_the_cells_with_their_scores(scored, value):
    ax = psysc.pl.scores(scored, "SCZ", value=value, show=False)
    assert isinstance(ax, Axes)
    got = _points(ax).sort_values(["x", "y"]).reset_index(drop=True)
    want = _expected_points(scored, f"psysc_SCZ_{value}").sort_values(["x", "y"]).reset_index(drop=True)
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-6)
    assert "SCZ" in ax.get_title()
    assert len(ax.figure.axes) == 2  # a colour bar


def test_scores_signed_colour_scale_is_symmetric(scored):
    ax = psysc.pl.scores(scored, "HEIGHT", show=False)
    norm = ax.collections[0].norm
    bound = np.abs(scored.obs["psysc_HEIGHT_norm_score"]).max()
    assert norm.vmin == pytest.approx(-bound) and norm.vmax == pytest.approx(bound)
    # kwargs override the defaults
    ax = psysc.pl.scores(scored, "HEIGHT", vmin=-1, vmax=1, show=False)
    assert (ax.collections[0].norm.vmin, ax.collections[0].norm.vmax) == (-1, 1)


def test_scores_ax_return_fig_and_show(scored, monkeypatch):
    shown = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: shown.append(1))
    fig, ax = plt.subplots()
    assert psysc.pl.scores(scored, "SCZ", ax=ax) is ax
    assert isinstance(psysc.pl.scores(scored, "SCZ", return_fig=True), Figure)
    assert shown == []
    assert psysc.pl.scores(scored, "SCZ") is None
    assert shown == [1]


def test_every_plot_saves_as_scanpy_does(scored, table, tmp_path):
    """save=True or a suffix: <figdir>/<name><suffix> (scanpy's rule); any other name: that file."""
    import scanpy as sc

    before = sc.settings.figdir, sc.settings.file_format_figs
    sc.settings.figdir, sc.settings.file_format_figs = tmp_path / "figs", "png"
    try:
        psysc.pl.scores(scored, "SCZ", save="_umap.pdf", show=False)
        psysc.pl.scores(scored, "HEIGHT", save=True, show=False)
        psysc.pl.enrichment_heatmap(table, save=".svg", show=False)
        psysc.pl.enrichment_heatmap(table, save=str(tmp_path / "out" / "heat"), show=False)  # no extension
        psysc.pl.enrichment_heatmap(table, save=tmp_path / "heat.pdf", show=False)
    finally:
        sc.settings.figdir, sc.settings.file_format_figs = before
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == [
        "enrichment_heatmap.svg", "scores_HEIGHT.png", "scores_SCZ_umap.pdf"]
    assert (tmp_path / "out" / "heat.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "heat.pdf").read_bytes()[:4] == b"%PDF"
    with pytest.raises(TypeError, match="save must be"):
        psysc.pl.enrichment_heatmap(table, save="", show=False)


def test_scores_in_three_dimensions(scored):
    scored.obsm["X_pca"] = np.random.default_rng(0).normal(size=(scored.n_obs, 3))
    ax = psysc.pl.scores(scored, "SCZ", basis="pca", projection="3d", show=False)
    assert ax.name == "3d"


def test_scores_errors(scored):
    with pytest.raises(KeyError, match=r"score_disorders"):
        psysc.pl.scores(scored, "BIP", show=False)
    with pytest.raises(KeyError, match="value 'zscore'"):
        psysc.pl.scores(scored, "SCZ", value="zscore", show=False)
    del scored.obsm["X_umap"]
    with pytest.raises(KeyError, match="trait 'BIP' was not scored"):  # the trait first, then the embedding
        psysc.pl.scores(scored, "BIP", show=False)
    with pytest.raises(KeyError, match=r"sc\.tl\.umap"):
        psysc.pl.scores(scored, "SCZ", show=False)
    with pytest.raises(KeyError, match=r"sc\.pp\.pca"):
        psysc.pl.scores(scored, "SCZ", basis="pca", show=False)
    bare = ad.AnnData(np.zeros((3, 2), dtype=np.float32), obsm={"X_umap": np.zeros((3, 2))})
    with pytest.raises(KeyError, match=r"run psysc\.tl\.score_disorders"):
        psysc.pl.scores(bare, "SCZ", show=False)
    scored.obsm["X_umap"] = np.zeros((scored.n_obs, 2))
    with pytest.raises(KeyError, match=r"scored under key='psysc': pass key='psysc'"):
        psysc.pl.scores(scored, "SCZ", key="other", show=False)


def test_figures_keep_their_labels_inside_the_canvas(table):
    # saved with a plain fig.savefig (no bbox_inches="tight"), every label must lie on the figure
    long = table.copy()
    long["group"] = long["group"] + "_with_a_rather_long_group_name"
    long["trait"] = long["trait"] + " (a long trait name)"
    fig = psysc.pl.enrichment_heatmap(long, return_fig=True)
    fig.canvas.draw()
    box = fig.get_tightbbox(fig.canvas.get_renderer())  # inches
    width, height = fig.get_size_inches()
    assert box.x0 >= -0.01 and box.y0 >= -0.01, box
    assert box.x1 <= width + 0.01 and box.y1 <= height + 0.01, (box, width, height)
