"""Gene identifiers (symbols <-> Ensembl IDs) and species (human <-> mouse orthologs).

Expected values are facts about real genes (Ensembl / HGNC / MGI identifiers, HGNC renames,
orthologs), not outputs of the code under test.
"""

from __future__ import annotations

import io
import logging

import pandas as pd
import pytest

from psysc.gwas._genes import gene_table
from psysc.gwas._ids import guess_species, to_ensembl, to_species, to_symbols
from psysc.gwas._panels import panel

# Ensembl gene IDs of well-known genes (stable across Ensembl releases)
HUMAN = {
    "APOE": "ENSG00000130203",
    "GRIN2A": "ENSG00000183454",
    "SETD1A": "ENSG00000099381",
    "DRD2": "ENSG00000149295",
}
MOUSE = {"Apoe": "ENSMUSG00000002985", "Grin2a": "ENSMUSG00000059003"}


@pytest.fixture
def log(caplog):
    caplog.set_level(logging.INFO, logger="psysc")
    return caplog


# --------------------------------------------------------------------------------------------------
# symbols <-> Ensembl
# --------------------------------------------------------------------------------------------------
def test_round_trip_on_real_genes():
    ids = to_ensembl(list(HUMAN))
    assert ids == list(HUMAN.values())
    assert to_symbols(ids) == list(HUMAN)
    assert to_ensembl(list(MOUSE), species="mouse") == list(MOUSE.values())
    assert to_symbols(list(MOUSE.values()), species="mouse") == list(MOUSE)


def test_version_suffixes_are_stripped_or_kept():
    assert to_ensembl(["ENSG00000130203.10", "ENSG00000183454.15"]) == [HUMAN["APOE"], HUMAN["GRIN2A"]]
    assert to_symbols(["ENSG00000130203.10"]) == ["APOE"]
    # the input's own version is kept; a symbol gets GENCODE's version
    assert to_ensembl(["ENSG00000130203.10"], keep_version=True) == ["ENSG00000130203.10"]
    (apoe,) = to_ensembl(["APOE"], keep_version=True)
    assert apoe.startswith(HUMAN["APOE"] + ".") and apoe.split(".")[1].isdigit()
    # GENCODE <= v43 wrote the chrY copy of pseudo-autosomal genes as ID_PAR_Y
    assert to_symbols(["ENSG00000002586.20_PAR_Y"]) == ["CD99"]


def test_case_and_hgnc_previous_symbols():
    assert to_ensembl(["grin2a", "Apoe"]) == [HUMAN["GRIN2A"], HUMAN["APOE"]]
    # HGNC renames: SUV420H1 -> KMT5B, SRPR -> SRPRA, C11orf49 -> CSTPP1
    assert to_symbols(["SUV420H1", "SRPR", "C11orf49"]) == ["KMT5B", "SRPRA", "CSTPP1"]
    assert to_ensembl(["SUV420H1"]) == ["ENSG00000110066"]  # KMT5B
    # aliases=False: GENCODE symbols only
    assert to_ensembl(["SUV420H1", "APOE"], aliases=False) == [HUMAN["APOE"]]


def test_user_aliases():
    assert to_ensembl(["MY_APOE", "GRIN2A"], aliases={"my_apoe": "APOE"}) == [HUMAN["APOE"], HUMAN["GRIN2A"]]
    table = pd.DataFrame({"alias": ["SETD1A_OLD"], "symbol": [HUMAN["SETD1A"]]})
    assert to_symbols(["SETD1A_OLD"], aliases=table) == ["SETD1A"]
    with pytest.raises(ValueError, match="two-column"):
        to_ensembl(["APOE"], aliases=pd.DataFrame({"a": [1], "b": [2], "c": [3]}))


def test_unmapped_genes_are_counted_in_the_log(log):
    out = to_ensembl(["APOE", "GRIN2A", "SETD1A", "DRD2", "NOT_A_GENE_1", "LOC101927245"])
    assert out == [HUMAN["APOE"], HUMAN["GRIN2A"], HUMAN["SETD1A"], HUMAN["DRD2"]]
    (record,) = [r for r in log.records if "Ensembl IDs" in r.getMessage()]
    msg = record.getMessage()
    assert "6 genes -> 4 Ensembl IDs" in msg and "2 unmapped" in msg and "NOT_A_GENE_1" in msg
    assert record.levelno == logging.WARNING  # 2 of 6 lost, more than 10 %

    log.clear()
    to_ensembl([*HUMAN, "GRIK1", "GRIN2B", "GRIN1", "GRIA1", "GRIA2", "GRIA3", "GRIA4", "NOT_A_GENE"])
    (record,) = [r for r in log.records if "Ensembl IDs" in r.getMessage()]
    assert record.levelno == logging.INFO and "1 unmapped" in record.getMessage()  # 1 of 12 lost


def test_missing_names_are_dropped_not_read_as_text(log):
    # a blank cell of a spreadsheet reads as NaN, whose text "nan" is an HGNC alias of SCN11A
    scn11a = to_ensembl(["SCN11A"])[0]
    genes = ["APOE", float("nan"), None, "", "NA", " GRIN2A "]
    assert to_ensembl(genes) == [HUMAN["APOE"], HUMAN["GRIN2A"]]
    assert scn11a not in to_ensembl(genes)
    assert to_symbols(["APOE", float("nan")]) == ["APOE"]
    assert to_species(["GRIN2A", float("nan")], "mouse") == ["Grin2a"]
    table = pd.read_csv(io.StringIO("gene,score\nAPOE,2\n,3\n")).set_index("gene")["score"]
    assert to_symbols(table).to_dict() == {"APOE": 2.0}
    msgs = [r.getMessage() for r in log.records]
    assert any("6 genes -> 2 Ensembl IDs" in m and "4 missing names" in m for m in msgs)
    assert any("1 missing names" in m for m in msgs if "mouse genes" in m)


def test_at_most_five_unmapped_examples(log):
    to_symbols([f"ENSG9999999999{i}" for i in range(8)] + [HUMAN["APOE"]])
    msg = next(r.getMessage() for r in log.records if "symbols" in r.getMessage())
    assert "8 unmapped" in msg
    assert sum(f"ENSG9999999999{i}" in msg for i in range(8)) == 5


def test_ambiguous_symbols_are_dropped_and_counted(log):
    # 5S_rRNA names dozens of GENCODE genes; QARS is the previous HGNC symbol of both QARS1 and EPRS1
    out = to_ensembl(["5S_rRNA", "QARS", "APOE"])
    assert out == [HUMAN["APOE"]]
    msg = next(r.getMessage() for r in log.records if "Ensembl IDs" in r.getMessage())
    assert "2 ambiguous" in msg and "5S_rRNA" in msg


def test_shared_symbols_settled_by_hgnc_or_protein_coding():
    # CD99 is pseudo-autosomal: GENCODE v48 has a chrX and a chrY gene; HGNC's CD99 is the chrX one
    assert to_ensembl(["CD99", "SHOX"]) == ["ENSG00000002586", "ENSG00000185960"]
    # the two IDs of CD99 give one symbol: merged, the larger weight kept
    merged = to_symbols(pd.Series([1.0, 4.0], index=["ENSG00000002586", "ENSG00000292348"], name="x"))
    assert merged.to_dict() == {"CD99": 4.0}
    # mouse Kctd16 names a protein-coding gene and a lncRNA in GENCODE vM37
    (kctd16,) = to_ensembl(["Kctd16"], species="mouse")
    table = gene_table("mouse").set_index("gene_id")
    assert table.loc[kctd16, "biotype"] == "protein_coding" and table.loc[kctd16, "chrom"] == "chr18"


def test_weights_are_preserved_and_merged_with_the_largest(log):
    s = pd.Series([2.5, 1.5, 0.5], index=["APOE", "GRIN2A", "ENSG00000130203.10"], name="AD")
    out = to_ensembl(s)
    assert out.name == "AD" and out.index.name == "gene"
    assert out.to_dict() == {HUMAN["APOE"]: 2.5, HUMAN["GRIN2A"]: 1.5}
    assert "1 merged" in next(r.getMessage() for r in log.records if r.getMessage().startswith("AD:"))
    back = to_symbols(out)
    assert back.to_dict() == {"APOE": 2.5, "GRIN2A": 1.5}


def test_returns_the_kind_it_was_given():
    idx = pd.Index(["APOE", "GRIN2A"], name="genes")
    out = to_ensembl(idx)
    assert isinstance(out, pd.Index) and out.name == "genes" and list(out) == [HUMAN["APOE"], HUMAN["GRIN2A"]]
    d = to_ensembl({"SCZ": ["GRIN2A", "SETD1A"], "AD": pd.Series({"APOE": 3.0})})
    assert list(d) == ["SCZ", "AD"] and d["SCZ"].name == "SCZ"
    assert d["SCZ"].to_dict() == {HUMAN["GRIN2A"]: 1.0, HUMAN["SETD1A"]: 1.0}
    assert d["AD"].to_dict() == {HUMAN["APOE"]: 3.0}
    assert to_ensembl(("APOE", "APOE")) == [HUMAN["APOE"]]
    with pytest.raises(TypeError, match="string"):
        to_ensembl("APOE")


def test_ids_of_the_other_species_are_not_mapped(log):
    assert to_ensembl([MOUSE["Apoe"], MOUSE["Grin2a"]]) == []
    msg = next(r.getMessage() for r in log.records if "Ensembl IDs" in r.getMessage())
    assert "another species" in msg and "species='mouse'" in msg
    # IDs of the right species that GENCODE v48 no longer lists are kept (Fu et al. 2022 use one)
    assert to_ensembl(["ENSG00000005955"]) == ["ENSG00000005955"]
    assert to_symbols(["ENSG00000005955"]) == []


def test_mouse_written_symbols_matched_by_case_and_entrez_ids_are_named(log):
    # to_species maps mouse symbols to human orthologs; matching them by case is a different thing
    assert to_ensembl(["Grin2a", "Setd1a", "Zfp36"]) == [HUMAN["GRIN2A"], HUMAN["SETD1A"], "ENSG00000128016"]
    rec = next(r for r in log.records if "Ensembl IDs" in r.getMessage())
    assert rec.levelno == logging.WARNING and "written as mouse genes are" in rec.getMessage()
    assert "to_species" in rec.getMessage()
    log.clear()
    to_ensembl(["GRIN2A", "SETD1A", "Zfp36"])  # one title-case symbol among human ones: no hint
    rec = next(r for r in log.records if "Ensembl IDs" in r.getMessage())
    assert rec.levelno == logging.INFO and "mouse" not in rec.getMessage()
    log.clear()
    assert to_symbols(["348", "54209"]) == []  # Entrez IDs of APOE and TREM2
    assert "Entrez gene IDs" in log.text and "gene_loc=" in log.text


def test_gene_names_a_spreadsheet_turned_into_dates_are_named(log):
    """Ziemann et al. 2016: SEPT1 -> 1-Sep, MARCH2 -> 2-Mar; the message says where they came from."""
    assert to_ensembl(["APOE", "1-Sep", "2-Mar", "GRIN2A", "2006-09-01"]) == [HUMAN["APOE"], HUMAN["GRIN2A"]]
    assert "3 unmapped names are dates (e.g. ['1-Sep', '2-Mar', '2006-09-01']): a spreadsheet turned" in log.text
    log.clear()
    to_ensembl(["APOE", "NOT_A_GENE", "SEPTIN1"])
    assert "dates" not in log.text


def test_real_gwas_gene_sets_map_almost_completely():
    gs = panel("psychiatric")
    ids = to_ensembl(gs)
    for trait, s in gs.items():
        # the scDRS sets use 2018-era symbols; a few LOC genes have no GENCODE v48 gene
        assert len(ids[trait]) >= 0.98 * len(s), trait
        assert ids[trait].index.str.startswith("ENSG").all()
    assert HUMAN["DRD2"] in ids["SCZ"].index and HUMAN["APOE"] in ids["AD"].index


# --------------------------------------------------------------------------------------------------
# species
# --------------------------------------------------------------------------------------------------
def test_guess_species():
    assert guess_species(["GRIN2A", "APOE", "SETD1A"]) == "human"
    assert guess_species(["Grin2a", "Apoe", "Setd1a", "1700001C19Rik"]) == "mouse"
    assert guess_species(["ENSG00000130203.10", "ENSG00000183454"]) == "human"
    assert guess_species(pd.Series(1.0, index=list(MOUSE.values()))) == "mouse"
    assert guess_species({"a": ["GRIN2A"], "b": ["APOE"]}) == "human"
    assert guess_species(["1", "2", "3"]) == "unknown"
    assert guess_species([]) == "unknown"
    assert guess_species([HUMAN["APOE"], MOUSE["Apoe"]]) == "unknown"
    # human open-reading-frame symbols are title case too: they tell no species by case
    assert guess_species(["C9orf72", "C21orf2", "APOE"]) == "human"
    assert guess_species(["C9orf72", "CXorf56"]) == "unknown"


def test_human_orf_symbols_are_mapped_not_refused(log):
    """C9orf72 looks title case like a mouse symbol; it is a human gene and maps to its mouse ortholog."""
    got = to_species(["C9orf72", "APOE"], "mouse")
    assert got[1] == "Apoe" and len(got) == 2


def test_species_hint_does_not_advise_a_change_of_case():
    from psysc._genesets import overlap_hint

    hint = overlap_hint(["Grin2a", "Apoe", "Setd1a"], ["GRIN2A", "APOE", "SETD1A", "GAPDH"])
    assert "different species" in hint and "to_species(gene_sets, 'human')" in hint
    assert "case only" not in hint  # orthologs that differ in case are other genes, not misspellings
    assert "case only" in overlap_hint(["GRIN2A", "Apoe"], ["Grin2a", "APOE", "GAPDH", "ACTB"])


def test_known_orthologs(log):
    assert to_species(["GRIN2A", "APOE", "SETD1A"], "mouse") == ["Grin2a", "Apoe", "Setd1a"]
    assert to_species(["Grin2a", "Apoe", "Setd1a"], "human") == ["GRIN2A", "APOE", "SETD1A"]
    assert to_species([HUMAN["APOE"]], "mouse", gene_id="ensembl") == [MOUSE["Apoe"]]
    assert to_species([MOUSE["Grin2a"]], "human", gene_id="ensembl") == [HUMAN["GRIN2A"]]
    assert to_species(["GRIN2A", "APOE"], "mouse", source="scdrs") == ["Grin2a", "Apoe"]
    msg = log.records[0].getMessage()
    assert "3 human genes -> 3 mouse genes" in msg and "3 with an ortholog" in msg


def test_one_to_many_and_many_to_one_weights(log):
    # with single-resource predictions, GRIN2A also maps to its paralogs Grin2b/c/d (OrthoMCL): each gets the weight
    out = to_species(pd.Series([2.0], index=["GRIN2A"]), "mouse", min_support=1)
    assert set(out.index) == {"Grin2a", "Grin2b", "Grin2c", "Grin2d"} and (out == 2.0).all()
    assert "1 with several orthologs" in log.records[-1].getMessage()
    # human C4A and C4B (complement C4 duplication) both map to mouse C4b: the larger weight is kept
    out = to_species(pd.Series([1.0, 2.0], index=["C4A", "C4B"]), "mouse")
    assert out.to_dict() == {"C4b": 2.0}
    assert "1 merged" in log.records[-1].getMessage()


def test_genes_without_ortholog_are_counted(log):
    # NOTCH2NLA is human-specific (a hominid NOTCH2 duplication; Fiddes et al. Cell 2018): no mouse ortholog
    out = to_species(["GRIN2A", "NOTCH2NLA", "NOT_A_GENE"], "mouse")
    assert out == ["Grin2a"]
    msg = log.records[-1].getMessage()
    assert "1 without one" in msg and "NOTCH2NLA" in msg and "1 human identifiers not found" in msg
    assert log.records[-1].levelno == logging.WARNING


def test_back_mapping_recovers_most_human_genes():
    # human -> mouse -> human on real gene sets; measured with HCOP (>= 3 resources):
    # SCZ GWAS 1000 genes: 90.6 % back; SFARI score 1: 99.5 %; SCHEMA FDR 5 %: 30 of 32
    scz = panel("psychiatric")["SCZ"]
    back = to_species(to_species(scz, "mouse"), "human")
    assert len(set(back.index) & set(scz.index)) / len(scz) >= 0.88
    sfari = panel("rare_variants")["ASD_SFARI_score1"]
    back = to_species(to_species(sfari, "mouse"), "human")
    assert len(set(back.index) & set(sfari.index)) / len(sfari) >= 0.98
    schema = panel("rare_variants")["SCZ_SCHEMA_FDR5"]
    back = to_species(to_species(schema, "mouse"), "human")
    assert len(set(back.index) & set(schema.index)) >= 30


def test_input_of_the_target_species_is_an_error():
    with pytest.raises(ValueError, match="already looks like mouse genes.*species='human'"):
        to_species({"x": ["Grin2a", "Apoe"]}, "mouse")
    with pytest.raises(ValueError, match="already looks like human"):
        to_species([HUMAN["APOE"]], "human")


def test_to_species_options_are_checked():
    with pytest.raises(ValueError, match="source"):
        to_species(["APOE"], source="biomart")
    with pytest.raises(ValueError, match="min_support"):
        to_species(["APOE"], min_support=0)
    with pytest.raises(ValueError, match="gene_id"):
        to_species(["APOE"], gene_id="entrez")


def test_to_species_reproduces_scdrs_mouse_toy_gene_set():
    """scDRS ships its toy gene set in human and mouse: the human one converted is the mouse one."""
    from _scdrs_oracle import DATA

    from psysc.gwas import read_gs

    human = read_gs(f"{DATA}/toydata_human.gs")
    mouse = read_gs(f"{DATA}/toydata_mouse.gs")
    (h,), (m,) = human.values(), mouse.values()
    got = to_species(h, "mouse", source="scdrs")
    assert len(got) == len(m) == 250
    pd.testing.assert_series_equal(got.sort_index(), m.sort_index(), check_names=False)


def _one_by_one(names):
    """Each name's current symbol by to_symbols alone (None when it maps to nothing or to itself)."""
    out = []
    for name in names:
        got = to_symbols([name])
        out.append(got[0] if got and got[0] != name else None)
    return out


def test_current_symbols_renames_what_to_symbols_maps_and_keeps_the_rest(log):
    from psysc.gwas import current_symbols

    names = ["C10orf26", "APOE", "odz2", "NOT_A_GENE", "ENSG00000130203", "", "KIAA0317", "AREL1x",
             "SEPT4", "C17orf47", "C22orf26", "PRR34"]
    targets = _one_by_one(names)
    # expected by the documented rule: renamed to to_symbols' symbol unless that symbol is already one of the names
    # or the symbol of another name too; IDs and unknown names as given
    expected = [t if t is not None and not n.startswith("ENSG") and t not in names and targets.count(t) == 1 else n
                for n, t in zip(names, targets, strict=True)]
    got = current_symbols(names)
    assert got == expected
    assert got[:4] == ["WBP1L", "APOE", "TENM2", "NOT_A_GENE"] and got[8:10] == ["SEPT4", "C17orf47"]
    assert got[10] == "C22orf26"  # its symbol, PRR34, is already one of the names
    assert "3 of 12 names renamed" in log.text and "3 kept as given" in log.text
    index = pd.Index(names, name="gene_symbols")
    assert current_symbols(index).equals(pd.Index(expected, name="gene_symbols"))
    sets = current_symbols({"MDD": pd.Series([5.0, 4.0, 1.0], index=["TENM2", "KIAA0317", "AREL1"])})
    assert sets["MDD"].to_dict() == {"TENM2": 5.0, "KIAA0317": 4.0, "AREL1": 1.0}  # AREL1 is there: kept
    assert current_symbols(pd.Series([2.0], index=["ODZ2"], name="T")).to_dict() == {"TENM2": 2.0}
    with pytest.raises(TypeError, match="not str"):
        current_symbols("APOE")


def test_genes_named_by_another_symbol_in_the_data_are_counted_with_the_fix(caplog):
    """The count the scoring logs equals the genes found after current_symbols of both, counted with sets."""
    import psysc
    from psysc.gwas import current_symbols

    adata = psysc.datasets.darmanis2015()
    sets = psysc.datasets.gwas_gene_sets(["SCZ"])
    before = int(sets["SCZ"].index.isin(adata.var_names).sum())
    after = int(pd.Index(current_symbols(sets)["SCZ"].index).isin(current_symbols(adata.var_names)).sum())
    psysc.pp.prepare_scoring(adata)
    with caplog.at_level(logging.INFO, logger="psysc"):
        psysc.tl.score_disorders(adata, sets, n_ctrl=5, inplace=False)
    assert after > before
    assert (f"SCZ: {before} of 1000 genes found in the data; {after - before} more are in the data under another "
            "symbol of the gene (e.g. WBP1L as C10orf26") in caplog.text
    assert "bring both to current symbols, adata.var_names = psysc.gwas.current_symbols(adata.var_names)" in caplog.text
    # several sets: each counted, the code of the fix given once
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="psysc"):
        psysc.tl.score_disorders(adata, psysc.datasets.gwas_gene_sets(["SCZ", "AD", "BIP"]), n_ctrl=5, inplace=False)
    assert caplog.text.count("more are in the data under another symbol") == 3
    assert caplog.text.count("psysc.gwas.current_symbols(adata.var_names)") == 1
    assert caplog.text.count("bring both to current symbols, as above") == 2


def test_data_named_mostly_by_ensembl_ids_names_its_symbol_column(caplog):
    """CELLxGENE-like var_names, Ensembl IDs where the gene has one and symbols otherwise: the low-overlap warning
    names the column of symbols and the option that uses it, and using it finds the genes."""
    import psysc

    adata = psysc.datasets.darmanis2015()
    symbols = adata.var_names.to_numpy().astype(str)
    ids = adata.var["gene_ids"].astype(str).to_numpy()
    adata.var["feature_name"] = symbols
    adata.var_names = [i if i.startswith("ENSG") else s for i, s in zip(ids, symbols, strict=True)]
    adata.var_names_make_unique()
    assert not adata.var_names[0].startswith("ENS")  # the first name is a symbol: the kind is told by most names
    psysc.pp.prepare_scoring(adata)
    sets = psysc.datasets.gwas_gene_sets(["SCZ"])
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.tl.score_disorders(adata, sets, n_ctrl=5, inplace=False)
    assert "SCZ: only" in caplog.text
    assert "adata.var['feature_name'] holds gene symbols: use them as var_names" in caplog.text
    assert "psysc run --gene-symbols feature_name does it" in caplog.text
    adata.var_names = adata.var["feature_name"].to_numpy()
    adata.var_names_make_unique()
    psysc.pp.prepare_scoring(adata)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.tl.score_disorders(adata, sets, n_ctrl=5, inplace=False)
    assert "SCZ: only" not in caplog.text
