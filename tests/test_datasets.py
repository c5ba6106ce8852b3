"""Tests of the bundled datasets (psysc.datasets) against the bundled files parsed naively."""

from __future__ import annotations

import gzip
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

import psysc
from psysc.datasets import CONTRAST_TRAITS, PSYCHIATRIC_TRAITS, TRAIT_ALIASES, darmanis2015, gwas_gene_sets

# the bundled file as installed (a regular package, so files() gives a real path)
BUNDLED_GS = Path(str(files("psysc.data").joinpath("magma_10kb_top1000_zscore.75_traits.rv1.gs.gz")))


@pytest.fixture(scope="module")
def naive_gs() -> dict[str, dict[str, float]]:
    """trait -> {gene: weight} by splitting the lines of the bundled file."""
    with gzip.open(BUNDLED_GS, "rt") as fh:
        lines = [ln for ln in fh.read().split("\n") if ln]
    out = {}
    for line in lines[1:]:
        trait, geneset = line.split("\t")
        out[trait] = {g.split(":")[0]: float(g.split(":")[1]) for g in geneset.split(",")}
    return out


@pytest.fixture(scope="module")
def adata():
    return darmanis2015()


# ----------------------------------------------------------------------------------------------
# gwas_gene_sets
# ----------------------------------------------------------------------------------------------
def test_trait_aliases_point_into_the_file(naive_gs):
    assert set(TRAIT_ALIASES.values()) <= set(naive_gs)
    assert len(set(TRAIT_ALIASES.values())) == len(TRAIT_ALIASES)  # one alias per trait
    assert set(PSYCHIATRIC_TRAITS) | set(CONTRAST_TRAITS) <= set(TRAIT_ALIASES)
    assert TRAIT_ALIASES["SCZ"] == "PASS_Schizophrenia_Pardinas2018"
    assert TRAIT_ALIASES["ASD"] == "ASD_Grove_et_al"
    assert TRAIT_ALIASES["AD"] == "PASS_Alzheimers_Jansen2019"
    assert TRAIT_ALIASES["LDL"] == "UKB_460K.biochemistry_LDLdirect"


def test_gwas_gene_sets_all_traits(naive_gs):
    gs = gwas_gene_sets()
    assert len(gs) == 75
    alias_of = {v: k for k, v in TRAIT_ALIASES.items()}
    assert list(gs) == [alias_of.get(t, t) for t in naive_gs]
    for trait, weights in naive_gs.items():
        s = gs[alias_of.get(trait, trait)]
        assert s.name == alias_of.get(trait, trait)
        assert s.to_dict() == weights
        assert len(s) == 1000
        assert s.max() <= 10.0


def test_gwas_gene_sets_selection_by_alias_or_name(naive_gs):
    gs = gwas_gene_sets(PSYCHIATRIC_TRAITS + CONTRAST_TRAITS)
    assert list(gs) == list(PSYCHIATRIC_TRAITS + CONTRAST_TRAITS)
    assert gs["SCZ"].to_dict() == naive_gs["PASS_Schizophrenia_Pardinas2018"]
    assert gs["HEIGHT"].to_dict() == naive_gs["UKB_460K.body_HEIGHTz"]
    # case-insensitive aliases; original names come back under their alias; others keep their name
    gs = gwas_gene_sets(["scz", "PASS_BIP_Mullins2021", "UKB_460K.pigment_HAIR"])
    assert list(gs) == ["SCZ", "BIP", "UKB_460K.pigment_HAIR"]
    assert gs["BIP"].to_dict() == naive_gs["PASS_BIP_Mullins2021"]
    assert list(gwas_gene_sets("Mdd")) == ["MDD"]
    # the file's names are case-insensitive too
    gs = gwas_gene_sets(["pass_lupus", "ukb_460k.pigment_hair"])
    assert list(gs) == ["SLE", "UKB_460K.pigment_HAIR"]
    assert gs["SLE"].to_dict() == naive_gs["PASS_Lupus"]


def test_gwas_gene_sets_unknown_trait():
    with pytest.raises(ValueError, match="unknown trait") as err:
        gwas_gene_sets(["SCZ", "NOT_A_TRAIT"])
    msg = str(err.value)
    assert "NOT_A_TRAIT" in msg and "'SCZ'" in msg and "list(psysc.datasets.gwas_gene_sets())" in msg
    assert len(msg) < 800  # the aliases and a pointer, not the 75 names of the file
    with pytest.raises(ValueError, match=r"close: Schizophrenia -> \['SCZ'\]; Alzheimer -> \['AD'\]"):
        gwas_gene_sets(["Schizophrenia", "Alzheimer"])


def test_gwas_gene_sets_docstring_lists_every_alias():
    doc = gwas_gene_sets.__doc__
    for alias, original in TRAIT_ALIASES.items():
        assert f"``{alias}``" in doc and original in doc


# ----------------------------------------------------------------------------------------------
# darmanis2015
# ----------------------------------------------------------------------------------------------
def test_darmanis2015_shape_and_counts(adata):
    assert adata.shape == (466, 22085)
    X = adata.X.toarray() if sparse.issparse(adata.X) else np.asarray(adata.X)
    assert np.all(X >= 0)
    assert np.array_equal(X, np.round(X))
    assert X.sum() > 0


def test_darmanis2015_cell_types(adata):
    # Counts of the "cell type" column of GEO GSE67835's metadata
    # (brain/darmanis2015_GSE67835_meta.tsv.gz of the source folder, numpde/sta426_deconvo commit d8f37850),
    # tallied once with pandas value_counts() on that file.
    expected = {
        "neurons": 131,
        "fetal_quiescent": 110,
        "astrocytes": 62,
        "hybrid": 46,
        "oligodendrocytes": 38,
        "fetal_replicating": 25,
        "endothelial": 20,
        "OPC": 18,
        "microglia": 16,
    }
    assert sum(expected.values()) == 466
    assert adata.obs["cell_type"].astype(str).value_counts().to_dict() == expected


def test_darmanis2015_no_htseq_summary_rows(adata):
    htseq = {"no_feature", "ambiguous", "too_low_aQual", "not_aligned", "alignment_not_unique"}
    names = set(adata.var_names)
    assert not names & htseq
    assert not any(n.startswith("__") for n in names)
    assert adata.var_names.is_unique and adata.obs_names.is_unique


def test_datasets_namespace():
    assert psysc.datasets.gwas_gene_sets is gwas_gene_sets
    assert psysc.datasets.PSYCHIATRIC_TRAITS == ("SCZ", "BIP", "MDD", "ADHD", "ASD")
    assert psysc.datasets.CONTRAST_TRAITS == ("AD", "HEIGHT", "LDL")


def test_ad_gwas_subset_files():
    import gzip
    import hashlib

    import pandas as pd

    ex = psysc.datasets.ad_gwas_subset()
    assert ex["build"] == "GRCh37"
    # byte-identical to MungeSumstats' file (sha256 of the MANIFEST)
    digest = hashlib.sha256(ex["sumstats"].read_bytes()).hexdigest()
    assert digest == "2277d01af0c4e2bfb45ca42f783109f52403ae5f8685a1d5d68872983e77f4f5"
    with gzip.open(ex["sumstats"], "rt") as fh:
        assert fh.readline().split() == ["SNP", "CHR", "BP", "A1", "A2", "INFO", "BETA", "SE", "LP", "N", "ID", "P"]
    loc = pd.read_csv(ex["gene_loc"], sep="\t", header=None, dtype=str)
    assert loc.shape == (1355, 6)
    names = dict(zip(loc[0], loc[5], strict=True))
    # Entrez -> HGNC symbol (NCBI Gene records): 79906 MORN1, 8514 KCNAB2
    assert names["79906"] == "MORN1" and names["8514"] == "KCNAB2"
    genes = psysc.gwas.sumstats_to_genes(psysc.gwas.read_sumstats(ex["sumstats"]), build="GRCh37",
                                         gene_loc=ex["gene_loc"], window=0)
    assert set(genes["CHR"].astype(str)) <= {"1", "22"}
    # MungeSumstats' A2 is the effect allele (BETA refers to it): psysc's A1 after columns=ex["columns"]
    raw = pd.read_csv(ex["sumstats"], sep="\t", dtype=str).drop_duplicates("SNP").set_index("SNP")
    ss = psysc.gwas.read_sumstats(ex["sumstats"], columns=ex["columns"]).set_index("SNP")
    assert (ss["A1"] == raw.loc[ss.index, "A2"]).all() and (ss["A2"] == raw.loc[ss.index, "A1"]).all()
