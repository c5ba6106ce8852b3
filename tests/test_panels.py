"""Bundled gene panels, checked against the counts and genes the source papers publish."""

from __future__ import annotations

import numpy as np
import pytest

from psysc.gwas._panels import panel, panels

#: Singh et al. 2022 (SCHEMA), Nature 604:509: the ten genes at exome-wide significance (P < 2.14e-6)
SCHEMA_10 = {"SETD1A", "CUL1", "XPO7", "TRIO", "CACNA1G", "SP4", "GRIA3", "GRIN2A", "HERC1", "RB1CC1"}


@pytest.fixture(scope="module")
def rare():
    return panel("rare_variants")


@pytest.fixture(scope="module")
def rare_ids():
    return panel("rare_variants", gene_id="ensembl")


def test_panels_are_listed():
    names = panels()
    assert list(names) == ["psychiatric", "rare_variants", "scz_psychencode"]
    assert all(isinstance(v, str) and v for v in names.values())
    assert panel() == names


def test_unknown_panel_or_id_kind():
    with pytest.raises(ValueError, match="available panels.*rare_variants"):
        panel("schizophrenia")
    with pytest.raises(ValueError, match="gene_id"):
        panel("rare_variants", gene_id="entrez")


def test_schema_exome_wide_is_the_ten_published_genes(rare, rare_ids):
    assert set(rare["SCZ_SCHEMA_exome_wide"].index) == SCHEMA_10
    # GRIN2A and SETD1A by their Ensembl IDs
    assert {"ENSG00000183454", "ENSG00000099381"} <= set(rare_ids["SCZ_SCHEMA_exome_wide"].index)


def test_schema_fdr_set_has_the_published_32_genes(rare):
    fdr = rare["SCZ_SCHEMA_FDR5"]
    assert len(fdr) == 32  # Singh et al. 2022: 32 genes at FDR < 5 %
    assert SCHEMA_10 <= set(fdr.index)
    assert {"AKAP11", "HCN4", "SRRM2", "ZMYM2", "KDM6B", "DNM3", "STAG1", "SV2A"} <= set(fdr.index)


def test_satterstrom_102_genes(rare):
    genes = set(rare["ASD_Satterstrom2020"].index)
    assert len(genes) == 102  # Satterstrom et al. 2020: 102 genes at FDR <= 0.1
    assert {"CHD8", "SCN2A", "SYNGAP1", "ADNP", "FOXP1", "POGZ", "ARID1B", "DYRK1A", "SHANK3"} <= genes
    # published as SUV420H1 and SRPR, renamed by HGNC since
    assert {"KMT5B", "SRPRA"} <= genes and not {"SUV420H1", "SRPR"} & genes


def test_fu2022_asd185_and_ndd664(rare, rare_ids):
    asd, ndd = rare_ids["ASD_Fu2022"], rare_ids["NDD_Fu2022"]
    # Fu et al. 2022 abstract: 185 ASD genes and 664 ASD/DD genes at FDR <= 0.05
    assert len(asd) == 185 and len(ndd) == 664
    # the ASD genes all come back in the ASD + DD meta-analysis (true in the published lists)
    assert set(asd.index) <= set(ndd.index)
    assert len(rare["ASD_Fu2022"]) == 185
    # two NDD664 Ensembl IDs (ENSG00000005955, ENSG00000168274) are retired in GENCODE v48: 662 symbols
    assert len(rare["NDD_Fu2022"]) == 662
    assert {"ENSG00000005955", "ENSG00000168274"} <= set(ndd.index)
    assert {"CHD8", "SCN2A", "SYNGAP1", "DYRK1A"} <= set(rare["ASD_Fu2022"].index)
    assert len(rare_ids["DD_Fu2022"]) == 477


def test_sfari_score_1(rare, rare_ids):
    genes = set(rare["ASD_SFARI_score1"].index)
    assert {"SCN2A", "CHD8", "SHANK3", "SYNGAP1", "ADNP", "ARID1B", "DYRK1A", "PTEN", "SON"} <= genes
    # SFARI Gene had about 200 score-1 genes in its early-2021 releases (207 in the 2021-01-13 export)
    assert 190 <= len(genes) <= 220
    ids = set(rare_ids["ASD_SFARI_score1"].index)
    # SON (ENSG00000159140), not SOS1 (ENSG00000115904) whose ID the SFARI export gives it
    assert "ENSG00000159140" in ids and "ENSG00000115904" not in ids


def test_rare_variant_weights_are_uniform(rare, rare_ids):
    for gs in (rare, rare_ids):
        for name, s in gs.items():
            assert s.name == name and s.index.name == "gene"
            assert s.index.is_unique and (s == 1.0).all()
    assert all(s.index.str.match(r"^ENSG\d{11}$").all() for s in rare_ids.values())


def test_psychiatric_panel():
    gs = panel("psychiatric")
    assert list(gs) == ["SCZ", "BIP", "MDD", "ADHD", "ASD", "AD", "HEIGHT"]
    for trait, s in gs.items():
        assert len(s) == 1000, trait  # scDRS MAGMA top-1,000 genes
        w = s.to_numpy()
        assert np.all(w > 0) and np.all(w <= 10), trait  # MAGMA z-scores clipped at 10
    assert "APOE" in gs["AD"].index and "DRD2" in gs["SCZ"].index
    ids = panel("psychiatric", gene_id="ensembl")
    assert all(len(ids[t]) >= 980 for t in gs)
    assert "ENSG00000130203" in ids["AD"].index  # APOE


def test_scz_psychencode():
    ids = panel("scz_psychencode", gene_id="ensembl")["SCZ_PsychENCODE"]
    assert len(ids) == 321  # Wang et al. 2018: 321 high-confidence SCZ genes
    symbols = panel("scz_psychencode")["SCZ_PsychENCODE"]
    assert 300 <= len(symbols) <= 321
    assert {"CACNA1C", "FURIN", "TSNARE1", "SNAP91", "CLCN3", "AKT3"} <= set(symbols.index)
