"""psysc.pp.map_genes: a data matrix's columns renamed one to one (orthologs, Ensembl IDs, symbols).

The reference is a naive rule written here with pandas on the bundled tables as files (HCOP pairs and GENCODE
genes), on genes whose symbol names exactly one GENCODE gene; known orthologs are facts about real genes.
"""

from __future__ import annotations

import logging
from importlib.resources import files

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import psysc

DATA = files("psysc.data")


def _table(name: str) -> pd.DataFrame:
    with DATA.joinpath(name).open("rb") as fh:
        return pd.read_csv(fh, sep="\t", compression="gzip", dtype=str, keep_default_na=False)


def _traceable(names) -> ad.AnnData:
    """Cells x genes whose column j holds j + 1 in every stored value, so each column's source can be read back."""
    rng = np.random.default_rng(0)
    n_obs, n_vars = 20, len(names)
    dense = (rng.random((n_obs, n_vars)) < 0.3) * (np.arange(n_vars) + 1.0)
    dense[0] = np.arange(n_vars) + 1.0
    a = ad.AnnData(sp.csr_matrix(dense.astype(np.float32)))
    a.var_names = list(names)
    a.layers["counts"] = a.X.copy()
    a.varm["loadings"] = np.arange(n_vars, dtype=float)[:, None] * np.ones((1, 2))
    a.var["chrom"] = [f"c{j}" for j in range(n_vars)]
    return a


def _unique_symbols(species: str) -> pd.DataFrame:
    genes = _table(f"genes_{species}.tsv.gz")
    genes = genes[genes["symbol"] != ""]
    return genes[~genes["symbol"].duplicated(keep=False)][["gene_id", "symbol"]]


def _reference_orthologs(mouse_symbols: list[str], min_support: int = 3) -> dict[str, str]:
    """Naive rule: per mouse gene its unique best-supported human ortholog; per human gene its strongest mouse gene."""
    mouse = _unique_symbols("mouse").set_index("symbol")["gene_id"]
    human = _table("genes_human.tsv.gz")
    hcop = _table("orthologs_human_mouse.tsv.gz")
    # GENCODE's symbol, else HCOP's name for the gene (human genes GENCODE names only by ID)
    human_symbol = hcop[hcop["human_name"] != ""].drop_duplicates("human_gene_id").set_index("human_gene_id")
    human_symbol = human_symbol["human_name"].to_dict()
    human_symbol.update(human[human["symbol"] != ""].set_index("gene_id")["symbol"].to_dict())
    hcop["n"] = hcop["n_sources"].astype(int)
    hcop = hcop[hcop["n"] >= min_support].groupby(["mouse_gene_id", "human_gene_id"], as_index=False)["n"].max()
    data = pd.DataFrame({"mouse": mouse_symbols, "mouse_gene_id": mouse.reindex(mouse_symbols).to_numpy()})
    pairs = data.merge(hcop, on="mouse_gene_id")
    top = pairs[pairs["n"] == pairs.groupby("mouse")["n"].transform("max")].copy()
    top["human"] = top["human_gene_id"].map(human_symbol)
    top = top[top.groupby("mouse")["human_gene_id"].transform("size") == 1]  # a tie between orthologs: left out
    rows = top.dropna(subset=["human"])[["mouse", "human", "n"]].itertuples(index=False)
    best = pd.DataFrame(rows, columns=["mouse", "human", "n"])
    out = {}
    for human_gene, grp in best.groupby("human"):
        strongest = grp[grp["n"] == grp["n"].max()]
        if len(strongest) == 1:
            out[strongest["mouse"].iloc[0]] = human_gene
    return out


@pytest.fixture(scope="module")
def mouse_genes() -> list[str]:
    """3,000 real mouse protein-coding genes with unique symbols, and the genes of the known examples."""
    genes = _table("genes_mouse.tsv.gz")
    unique = set(_unique_symbols("mouse")["symbol"])
    coding = genes[(genes["biotype"] == "protein_coding") & genes["symbol"].isin(unique)]["symbol"]
    picked = coding.sample(3000, random_state=1).tolist()
    known = ["Actb", "Actg1", "A2m", "Mug1", "Mug2", "Pzp", "Snap25", "Grin2a", "Apoe"]
    return known + [g for g in picked if g not in known]


def test_orthologs_match_a_naive_rule_and_keep_each_column(mouse_genes):
    adata = _traceable(mouse_genes)
    out = psysc.pp.map_genes(adata, "human", copy=True)
    expected = _reference_orthologs(mouse_genes)
    got = dict(zip(out.var["original_gene"], out.var_names, strict=True))
    assert got == expected
    assert out.var_names.is_unique
    # every column is its source column, untouched, in every slot that follows the genes
    src = pd.Index(mouse_genes).get_indexer(out.var["original_gene"])
    np.testing.assert_array_equal(out.X.toarray()[0], src + 1.0)
    np.testing.assert_array_equal(out.layers["counts"].toarray(), adata.layers["counts"][:, src].toarray())
    np.testing.assert_array_equal(out.varm["loadings"][:, 0], src)
    assert list(out.var["chrom"]) == [f"c{j}" for j in src]
    assert list(src) == sorted(src)  # column order kept
    assert adata.n_vars == len(mouse_genes)  # copy=True leaves the input alone


def test_known_orthologs_one_to_one(mouse_genes, caplog):
    adata = _traceable(mouse_genes)
    caplog.set_level(logging.INFO, logger="psysc")
    psysc.pp.map_genes(adata, "human")
    orig = dict(zip(adata.var_names, adata.var["original_gene"], strict=True))
    # Actb's counts are ACTB's only (HCOP also lists ACTG1 for it, more weakly): ACTG1 is Actg1's
    assert orig["ACTB"] == "Actb" and orig["ACTG1"] == "Actg1"
    assert orig["A2M"] == "A2m" and orig["SNAP25"] == "Snap25" and orig["GRIN2A"] == "Grin2a"
    # Mug1 and Mug2 name PZP equally strongly: neither is used, and neither is copied into A2M
    assert "Mug1" not in orig.values() and "Mug2" not in orig.values()
    info = adata.uns["psysc"]["map_genes"]
    assert info["n_genes_in"] == len(mouse_genes) and info["n_genes_out"] == adata.n_vars
    assert sum(info["n_left_out"].values()) == len(mouse_genes) - adata.n_vars
    assert "Mug1" in caplog.text and "left out" in caplog.text


def test_symbols_to_ensembl_and_back():
    human = _unique_symbols("human").set_index("symbol")["gene_id"]
    names = [*human.index[:400].tolist(), "SEPT1", "SEPTIN1", "NOT_A_GENE"]
    adata = _traceable(names)
    out = psysc.pp.map_genes(adata, "ensembl", copy=True)
    ids = dict(zip(out.var["original_gene"], out.var_names, strict=True))
    for sym in human.index[:400]:
        assert ids[sym] == human[sym]
    # SEPT1 is SEPTIN1's previous symbol: the current symbol's column keeps the ID, SEPT1's is left out
    assert ids["SEPTIN1"] == human["SEPTIN1"] and "SEPT1" not in ids and "NOT_A_GENE" not in ids
    back = psysc.pp.map_genes(out, "symbol", copy=True)
    assert list(back.var_names) == list(out.var["original_gene"])


def test_bad_calls_say_what_to_do(tmp_path):
    adata = _traceable(["GRIN2A", "APOE", "SNAP25"])
    with pytest.raises(ValueError, match="human genes already.*to='mouse'"):
        psysc.pp.map_genes(adata, "human")
    with pytest.raises(ValueError, match="to='rat' is not supported"):
        psysc.pp.map_genes(adata, "rat")
    odd = _traceable(["notagene1", "notagene2", "notagene3"])
    with pytest.raises(ValueError, match="human or mouse: pass species="):
        psysc.pp.map_genes(odd, "ensembl")
    with pytest.raises(ValueError, match=r"none of the 3 human genes.*not found \(e.g. notagene1"):
        psysc.pp.map_genes(odd, "ensembl", species="human")
    path = tmp_path / "a.h5ad"
    adata.write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    with pytest.raises(ValueError, match="backed mode.*copy=True"):
        psysc.pp.map_genes(backed, "mouse")
    mapped = psysc.pp.map_genes(backed, "mouse", copy=True)
    assert not mapped.isbacked and list(mapped.var_names) == ["Grin2a", "Apoe", "Snap25"]
    np.testing.assert_array_equal(mapped.X.toarray(), adata.X.toarray())
    with pytest.raises(TypeError, match="MuData|AnnData"):
        psysc.pp.map_genes(adata.X, "mouse")


def test_raw_chained_calls_and_backed_views(tmp_path, caplog):
    names = ["Snap25", "Gfap", "Actb", "Actg1", "Mug1", "Mug2", "Grin2a"]
    adata = _traceable(names)
    adata.var_names.name = "gene"
    adata.raw = _traceable([*names, "Apoe"])  # .raw has genes of its own
    psysc.pp.map_genes(adata, "human")
    assert list(adata.var_names) == ["SNAP25", "GFAP", "ACTB", "ACTG1", "GRIN2A"] and adata.var_names.name == "gene"
    assert list(adata.raw.var_names) == ["SNAP25", "GFAP", "ACTB", "ACTG1", "GRIN2A", "APOE"]
    np.testing.assert_array_equal(adata.raw.X.toarray()[0], [1, 2, 3, 4, 7, 8])
    # a second mapping keeps the names before the first one, and the first call's record
    psysc.pp.map_genes(adata, "ensembl")
    assert list(adata.var["original_gene"]) == ["Snap25", "Gfap", "Actb", "Actg1", "Grin2a"]
    assert adata.var_names[-1] == "ENSG00000183454"  # GRIN2A
    record = adata.uns["psysc"]["map_genes"]
    assert record["to"] == "ensembl" and record["earlier"]["to"] == "human" and "min_support" not in record
    # a var column of that name that no mapping wrote is not overwritten
    other = _traceable(["Snap25", "Gfap"])
    other.var["original_gene"] = ["a", "b"]
    with pytest.raises(ValueError, match=r"var\['original_gene'\] exists already: pass key_added="):
        psysc.pp.map_genes(other, "human")
    # a view of a backed file is loaded with copy=True
    path = tmp_path / "m.h5ad"
    _traceable(names).write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    sub = psysc.pp.map_genes(backed[:5], "human", copy=True)
    assert sub.n_obs == 5 and list(sub.var_names) == ["SNAP25", "GFAP", "ACTB", "ACTG1", "GRIN2A"]
    # species named in another case; names that contradict species= are warned about
    caplog.set_level(logging.WARNING, logger="psysc")
    out = psysc.pp.map_genes(_traceable(["Snap25", "Gfap", "Snap25"]), "ensembl", species="Human", copy=True)
    assert out.uns["psysc"]["map_genes"]["species"] == "human"
    assert "look like mouse genes" in caplog.text
    assert "names occur more than once (e.g. ['Snap25'])" in caplog.text


def test_mouse_ids_and_gene_sets_errors_name_the_species_fix():
    """Mouse data named by Ensembl IDs: the no-overlap errors name the call that gives gene sets of mouse IDs."""
    mouse = psysc.pp.map_genes(psysc.datasets.darmanis2015(), "mouse", gene_id="ensembl", copy=True)
    assert mouse.var_names.str.startswith("ENSMUSG").all()
    psysc.pp.prepare_scoring(mouse)
    human_sets = psysc.datasets.gwas_gene_sets(["SCZ"])
    mouse_symbols = psysc.gwas.to_species(human_sets, "mouse")
    with pytest.raises(ValueError, match=r"to_ensembl\(gene_sets, species='mouse'\)"):
        psysc.tl.score_disorders(mouse, mouse_symbols, n_ctrl=20, inplace=False)
    with pytest.raises(ValueError, match=r"to_species\(gene_sets, 'mouse', gene_id='ensembl'\)"):
        psysc.tl.score_disorders(mouse, human_sets, n_ctrl=20, inplace=False)
    human_ids = psysc.gwas.to_ensembl(human_sets)
    with pytest.raises(ValueError, match=r"human Ensembl IDs, var_names are mouse Ensembl IDs.*different species"):
        psysc.tl.score_disorders(mouse, human_ids, n_ctrl=20, inplace=False)
    # the fixes named run
    for fixed in (psysc.gwas.to_ensembl(mouse_symbols, species="mouse"),
                  psysc.gwas.to_species(human_sets, "mouse", gene_id="ensembl")):
        scores = psysc.tl.score_disorders(mouse, fixed, n_ctrl=20, inplace=False)
        assert scores["SCZ"]["norm_score"].notna().all()
