"""Known biology on the embedded Darmanis data (directions only, not exact p-values)."""

import pytest
import scanpy as sc

import psysc

GLIA = ["astrocytes", "oligodendrocytes", "OPC", "microglia"]
ADULT = ["neurons", "astrocytes", "oligodendrocytes", "OPC", "microglia", "endothelial", "hybrid"]


@pytest.fixture(scope="module")
def table():
    psysc.settings.verbosity = 1
    adata = psysc.datasets.darmanis2015()
    psysc.pp.prepare_scoring(adata)
    sc.pp.pca(adata, layer="psysc_norm", n_comps=20, random_state=0)
    sc.pp.neighbors(adata, n_neighbors=15, n_pcs=20, random_state=0)
    traits = ["SCZ", "BIP", "MDD", "AD", "HEIGHT"]
    psysc.tl.score_disorders(adata, psysc.datasets.gwas_gene_sets(traits), n_ctrl=1000, seed=0)
    psysc.tl.disorder_enrichment(adata, groupby="cell_type")
    psysc.settings.verbosity = 2
    return adata.uns["psysc"]["enrichment"].set_index(["trait", "group"])


@pytest.mark.parametrize("trait", ["SCZ", "BIP", "MDD"])
def test_psychiatric_traits_prefer_neurons_over_every_glial_type(table, trait):
    z = table.loc[trait, "assoc_z"]
    assert all(z["neurons"] > z[g] for g in GLIA), z.to_dict()
    assert table.loc[(trait, "neurons"), "assoc_pval"] < 0.05


def test_alzheimers_prefers_microglia_over_every_other_adult_type(table):
    z = table.loc["AD", "assoc_z"]
    assert all(z["microglia"] > z[g] for g in ADULT if g != "microglia"), z.to_dict()
    assert table.loc[("AD", "microglia"), "assoc_pval"] < 0.01


def test_height_has_no_neuronal_association(table):
    assert table.loc[("HEIGHT", "neurons"), "assoc_pval"] > 0.2
