"""psysc.pl.enrichment_dotplot and psysc.pl.contrast draw what the tables hold (read back from the artists)."""

from __future__ import annotations

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection

import psysc


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


@pytest.fixture
def table():
    rows = []
    for i, trait in enumerate(["SCZ", "AD", "HEIGHT"]):
        for j, group in enumerate(["neurons", "astrocytes", "microglia"]):
            for m in ("seismic", "magma"):
                p = 10.0 ** -((i + 2 * j) % 4 + (m == "magma"))
                rows.append({"trait": trait, "group": group, "method": m, "t": float(i - j), "pval": p,
                             "fdr": min(1.0, 2 * p)})
    return pd.DataFrame(rows)


def test_dotplot_sizes_colours_rings(table):
    ax = psysc.pl.enrichment_dotplot(table, method="magma", show=False)
    dots = ax.collections[0]
    sub = table[table.method == "magma"]
    nlp = -np.log10(sub["pval"].to_numpy())
    sizes = dots.get_sizes()
    # larger -log10 p, larger dot; same -log10 p, same size
    assert np.array_equal(np.argsort(sizes, kind="stable"), np.argsort(nlp, kind="stable"))
    np.testing.assert_allclose(dots.get_array(), sub["t"].to_numpy())
    rings = dots.get_edgecolors()[:, 3] > 0
    np.testing.assert_array_equal(rings, sub["fdr"].to_numpy() < 0.1)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["SCZ", "AD", "HEIGHT"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["neurons", "astrocytes", "microglia"]


def test_dotplot_marks_the_pairs_the_heatmap_marks_and_draws_any_grouping():
    """The same per-cell table: the dot plot rings the pairs the heatmap stars (one default FDR), and, like the
    heatmap, draws the table of any grouping disorder_enrichment ran."""
    cells = pd.DataFrame({"trait": "SCZ", "group": ["neurons", "astrocytes", "microglia"],
                          "assoc_pval": [1e-3, 0.02, 0.5], "assoc_z": [3.1, 2.0, 0.0],
                          "assoc_fdr": [0.003, 0.07, 0.5]})
    halves = cells.iloc[:2].assign(group=["even", "odd"])
    adata = ad.AnnData(np.zeros((2, 2)))
    adata.uns["psysc"] = {"enrichment": halves, "enrichment_params": {"groupby": "half"},
                          "enrichment_by_groupby": {"cell_type": {"table": cells, "params": {"groupby": "cell_type"}},
                                                    "half": {"table": halves, "params": {"groupby": "half"}}}}
    ax = psysc.pl.enrichment_dotplot(adata, table="enrichment", groupby="cell_type", show=False)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["neurons", "astrocytes", "microglia"]
    rings = ax.collections[0].get_edgecolors()[:, 3] > 0
    heat = psysc.pl.enrichment_heatmap(adata, groupby="cell_type", show=False)
    stars = [t.get_text() for t in heat.texts if t.get_text().strip()]
    assert rings.tolist() == [True, True, False] and len(stars) == 2
    ax = psysc.pl.enrichment_dotplot(adata, table="enrichment", show=False)  # the last grouping run
    assert [t.get_text() for t in ax.get_xticklabels()] == ["even", "odd"]
    with pytest.raises(KeyError, match="no enrichment table of groupby='sample'"):
        psysc.pl.enrichment_dotplot(adata, table="enrichment", groupby="sample", show=False)
    adata.uns["psysc"]["celltype_enrichment"] = cells.rename(columns={"assoc_pval": "pval", "assoc_fdr": "fdr"})
    adata.uns["psysc"]["celltype_enrichment_params"] = {"groupby": "cell_type"}
    with pytest.raises(KeyError, match=r"computed for groupby='cell_type', not 'half'"):
        psysc.pl.enrichment_dotplot(adata, groupby="half", show=False)
    psysc.pl.enrichment_dotplot(adata, groupby="cell_type", show=False)
    with pytest.raises(TypeError, match="groupby= picks a table that an AnnData holds"):
        psysc.pl.enrichment_dotplot(cells, table="enrichment", groupby="cell_type", show=False)


def test_dotplot_errors_and_anndata(table):
    with pytest.raises(KeyError, match="method 'ldsc'"):
        psysc.pl.enrichment_dotplot(table, method="ldsc", show=False)
    adata = ad.AnnData(np.zeros((2, 2)))
    with pytest.raises(KeyError, match="celltype_enrichment"):
        psysc.pl.enrichment_dotplot(adata, show=False)
    adata.uns["psysc"] = {"celltype_enrichment": table}
    fig = psysc.pl.enrichment_dotplot(adata, traits=["AD"], return_fig=True, show=False)
    assert len(fig.axes[0].collections[0].get_offsets()) == 3


def test_contrast_bars():
    t = pd.DataFrame({"contrast": "SCZ - AD", "trait_a": "SCZ", "trait_b": "AD", "method": "seismic",
                      "group": ["neurons", "microglia", "astrocytes"], "beta": [0.2, -1.0, 0.05],
                      "se": [0.1, 0.16, 0.1], "pval": [0.07, 1e-9, 0.6], "fdr": [0.01, 2e-9, 0.6],
                      "beta_a": [0.18, -0.5, 0.0], "beta_b": [0.0, 0.5, -0.05]})
    ax = psysc.pl.contrast(t, show=False)
    widths = [p.get_width() for p in ax.patches]
    assert widths == sorted(t["beta"])  # groups sorted by the contrast
    labels = [x.get_text() for x in ax.get_yticklabels()]
    assert labels == ["microglia", "astrocytes", "neurons"]
    alphas = [p.get_alpha() for p in ax.patches]
    assert alphas == [1.0, 0.35, 1.0]
    with pytest.raises(KeyError, match="available"):
        psysc.pl.contrast(t, "SCZ - BIP", show=False)


def test_dotplot_colours_of_one_sign_are_centred_on_zero(table):
    positive = table.assign(t=table["t"].abs() + 0.3)
    ax = psysc.pl.enrichment_dotplot(positive, method="magma", show=False)
    norm = ax.collections[0].norm
    lim = positive.loc[positive.method == "magma", "t"].abs().max()
    assert norm(0.0) == pytest.approx(0.5)  # t = 0 at the neutral middle of the diverging map
    assert norm(lim) == pytest.approx(1.0) and norm(-lim) == pytest.approx(0.0)


def test_dotplot_draws_p_zero_largest_and_refuses_all_missing(table):
    t = table[table.method == "magma"].assign(pval=[0.0, 0.46, 0.84, 0.3, 0.5, 0.9, 0.2, 0.7, 0.99])
    sizes = psysc.pl.enrichment_dotplot(t, color=None, show=False).collections[0].get_sizes()
    assert sizes[0] == sizes.max() > sizes[1:].max()  # p = 0 (underflow) is the strongest evidence
    assert np.array_equal(np.argsort(sizes[1:]), np.argsort(-t["pval"].to_numpy()[1:]))
    same = psysc.pl.enrichment_dotplot(t.assign(pval=0.0), show=False).collections[0].get_sizes()
    assert np.all(same == same.max())
    with pytest.raises(ValueError, match="every p-value .* is NaN"):
        psysc.pl.enrichment_dotplot(t.assign(pval=np.nan), show=False)


def test_contrast_on_axes_that_hold_other_bars():
    t = pd.DataFrame({"contrast": "SCZ - AD", "trait_a": "SCZ", "trait_b": "AD", "method": "seismic",
                      "group": ["neurons", "microglia"], "beta": [0.2, -1.0], "se": [0.1, 0.16],
                      "pval": [0.07, 1e-9], "fdr": [0.5, 2e-9]})
    fig, ax = plt.subplots()
    ax.bar([0], [1])
    psysc.pl.contrast(t, ax=ax, show=False)
    psysc.pl.contrast(t, ax=ax, show=False)  # twice on the same axes
    assert [p.get_alpha() for p in ax.patches] == [None, 1.0, 0.35, 1.0, 0.35]


def test_dotplot_says_what_the_dot_sizes_mean():
    t = pd.DataFrame({"trait": ["SCZ", "SCZ", "AD", "AD"], "group": ["neurons", "microglia"] * 2, "method": "seismic",
                      "t": [2.5, -4.2, -0.1, 4.3], "pval": [0.007, 1.0, 0.5, 1e-5], "fdr": [0.01, 1.0, 0.6, 1e-4]})
    fig = psysc.pl.enrichment_dotplot(t, show=False, return_fig=True)
    (legend,) = fig.legends
    assert "dot size" in legend.get_title().get_text()
    labels = [float(x.get_text()) for x in legend.get_texts()]
    assert labels == sorted(labels) and labels[-1] == 5.0  # up to the largest -log10 p shown (p = 1e-5)
    sizes = [h.get_markersize() ** 2 for h in legend.legend_handles]  # areas, as the dots'
    dots = fig.axes[0].collections[0].get_sizes()
    assert max(sizes) == pytest.approx(max(dots))
    t["pval"] = [0.05, 1.0, 0.5, 10**-2.02]  # the largest -log10 p rounds onto a step: each size listed once
    (legend,) = psysc.pl.enrichment_dotplot(t, show=False, return_fig=True).legends
    labels = [x.get_text() for x in legend.get_texts()]
    assert labels == ["1", "2"]


LONG_GROUPS = ["OPC", "astrocytes", "endothelial", "fetal_quiescent", "fetal_replicating", "hybrid", "microglia",
               "neurons", "oligodendrocytes"]


@pytest.mark.parametrize("traits", [["SCZ"], ["SCZ", "HEIGHT"]])
@pytest.mark.parametrize("groups", [LONG_GROUPS, ["neurons"]])
def test_dotplot_of_one_or_two_traits_has_room_for_its_labels(traits, groups, recwarn):
    rng = np.random.default_rng(0)
    t = pd.DataFrame([{"trait": tr, "group": g, "method": "seismic", "t": rng.normal(),
                       "pval": 10 ** -rng.uniform(0, 4), "fdr": 0.5} for tr in traits for g in groups])
    fig = psysc.pl.enrichment_dotplot(t, show=False, return_fig=True)
    fig.canvas.draw()
    assert not [w for w in recwarn if "layout" in str(w.message)]  # constrained layout did not give up
    width, height = fig.get_size_inches()
    box = fig.get_tightbbox(fig.canvas.get_renderer())  # inches: every label, legend and title on the canvas
    assert box.x0 >= -0.01 and box.y0 >= -0.01 and box.x1 <= width + 0.01 and box.y1 <= height + 0.01
    colour_bar = fig.axes[1].get_window_extent().transformed(fig.dpi_scale_trans.inverted())
    assert colour_bar.height >= 0.9  # inches: room for its ticks
    texts = [fig.axes[0].title.get_window_extent(), *(x.get_window_extent() for x in fig.axes[0].get_xticklabels())]
    legend = fig.legends[0].get_window_extent()
    assert all(not legend.overlaps(b) for b in texts)


def test_dotplot_draws_a_dot_without_colour_value_grey(table):
    t = table[table.method == "seismic"].reset_index(drop=True)
    t.loc[1, "t"] = np.nan
    ax = psysc.pl.enrichment_dotplot(t, show=False)
    ax.figure.canvas.draw()
    dots = ax.collections[0]
    assert len(dots.get_offsets()) == len(t)  # every dot drawn, the one without a colour value too
    grey = np.all(np.isclose(dots.get_facecolors()[:, :3], 0.7), axis=1)
    np.testing.assert_array_equal(np.asarray(dots.get_offsets())[grey], [[1, 0]])  # second group, first row


def test_dotplot_size_legend_steps_are_apart():
    t = pd.DataFrame({"trait": "SCZ", "group": ["a", "b"], "pval": [10**-2.1, 0.5]})
    (legend,) = psysc.pl.enrichment_dotplot(t, show=False, return_fig=True).legends
    steps = [float(x.get_text()) for x in legend.get_texts()]
    assert steps[-1] == 2.1 and all(a <= 0.8 * b for a, b in zip(steps, steps[1:], strict=False))


def test_dotplot_and_contrast_refuse_bad_tables_and_thresholds(table):
    with pytest.raises(ValueError, match="empty"):
        psysc.pl.enrichment_dotplot(table.iloc[:0], show=False)
    with pytest.raises(KeyError, match=r"lacks column\(s\) \['trait'\]"):
        psysc.pl.enrichment_dotplot(table.drop(columns="trait"), show=False)
    with pytest.raises(ValueError, match="fdr must be"):
        psysc.pl.enrichment_dotplot(table, fdr=5, show=False)
    with pytest.raises(ValueError, match="named more than once"):
        psysc.pl.enrichment_dotplot(table, traits=["AD", "AD"], show=False)
    t = pd.DataFrame({"contrast": "SCZ - AD", "trait_a": "SCZ", "trait_b": "AD", "method": "seismic",
                      "group": ["neurons"], "beta": [0.2], "se": [0.1], "pval": [0.07], "fdr": [0.07]})
    with pytest.raises(ValueError, match="fdr must be"):
        psysc.pl.contrast(t, fdr=0, show=False)
    with pytest.raises(KeyError, match=r"lacks column\(s\) \['contrast'\]"):
        psysc.pl.contrast(t.drop(columns="contrast"), show=False)


def test_shared_contrast_read_back_from_a_file_is_one_sided(tmp_path):
    t = pd.DataFrame({"contrast": "shared", "trait_a": "SCZ+BIP", "trait_b": "", "method": "seismic",
                      "group": ["neurons", "microglia"], "beta": [0.3, -0.1], "se": [0.1, 0.1], "pval": [0.01, 0.8],
                      "fdr": [0.02, 0.8], "beta_a": [0.3, -0.1], "beta_b": [np.nan, np.nan]})
    t.to_csv(tmp_path / "contrast.tsv", sep="\t", index=False)
    read = pd.read_csv(tmp_path / "contrast.tsv", sep="\t")
    assert read["trait_b"].isna().all()  # the empty name comes back as NaN
    for tab in (t, read):
        ax = psysc.pl.contrast(tab, "shared", show=False)
        assert ax.get_xlabel() == "slope (seismic) of the mean scaled z of SCZ, BIP"
        # no 'alone' markers (one slope, no difference); the error bars are the only collection
        assert not [c for c in ax.collections if isinstance(c, PathCollection)]


def test_dotplot_draws_an_infinite_z_in_the_strongest_colour_of_its_sign(table):
    t = table[table.method == "seismic"].reset_index(drop=True)
    t.loc[1, "t"], t.loc[2, "t"] = np.inf, -np.inf  # a group against control scores without spread
    ax = psysc.pl.enrichment_dotplot(t, show=False)
    ax.figure.canvas.draw()
    dots = ax.collections[0]
    colours = dots.get_facecolors()[:, :3]
    assert not np.any(np.all(np.isclose(colours, 0.7), axis=1))  # none grey
    cmap = dots.get_cmap()
    np.testing.assert_allclose(colours[1], cmap(1.0)[:3])
    np.testing.assert_allclose(colours[2], cmap(0.0)[:3])
