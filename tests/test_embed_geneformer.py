"""psysc.tl.embed with Geneformer-layout checkpoints on the embedded brain data, end to end."""

import contextlib
import dataclasses
import hashlib
import io

import numpy as np
import pandas as pd
import pytest
import scanpy as sc

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

import psysc  # noqa: E402
from psysc.testing import random_geneformer_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def cells():
    adata = psysc.datasets.darmanis2015()
    keep = np.concatenate([np.flatnonzero(adata.obs["cell_type"] == ct)[:12] for ct in
                           ["neurons", "astrocytes", "oligodendrocytes", "microglia", "OPC"]])
    return adata[keep].copy()


@pytest.fixture(scope="module", params=["V1", "V2"])
def checkpoint(request, tmp_path_factory):
    return random_geneformer_checkpoint(tmp_path_factory.mktemp(request.param), version=request.param, seed=1)


def test_embedding_is_deterministic_and_independent_of_batching(cells, checkpoint):
    a, b = cells.copy(), cells.copy()
    psysc.tl.embed(a, checkpoint, device="cpu", batch_size=64, key_added="e")
    psysc.tl.embed(b, checkpoint, device="cpu", batch_size=3, block_size=7, key_added="e")
    assert a.obsm["e"].shape == (cells.n_obs, 32) and not np.isnan(a.obsm["e"]).any()
    np.testing.assert_allclose(a.obsm["e"], b.obsm["e"], atol=1e-5)
    c = cells.copy()
    psysc.tl.embed(c, checkpoint, device="cpu", batch_size=64, key_added="e")
    np.testing.assert_array_equal(a.obsm["e"], c.obsm["e"])
    prov = a.uns["psysc"]["embed"]["e"]
    weights = checkpoint / "model.safetensors"
    assert prov["sha256"]["model.safetensors"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert prov["family"] == "geneformer" and prov["version"] in ("V1", "V2")


def test_embedding_graph_feeds_the_disorder_enrichment(cells, checkpoint):
    adata = cells.copy()
    psysc.tl.embed(adata, checkpoint, device="cpu", key_added="X_gf")
    sc.pp.neighbors(adata, use_rep="X_gf", n_neighbors=10, random_state=0)
    psysc.pp.prepare_scoring(adata)
    psysc.tl.score_disorders(adata, psysc.datasets.gwas_gene_sets(["SCZ"]), n_ctrl=50)
    table = psysc.tl.disorder_enrichment(adata, groupby="cell_type", inplace=False)
    assert table["hetero_pval"].notna().all() and len(table) == 5


def test_bad_input_gives_clear_errors(cells, checkpoint):
    normalised = cells.copy()
    sc.pp.normalize_total(normalised, target_sum=1e4)
    sc.pp.log1p(normalised)
    with pytest.raises(ValueError, match="raw counts"):
        psysc.tl.embed(normalised, checkpoint, device="cpu")
    unknown = cells.copy()
    unknown.var_names = [f"gene{i}" for i in range(unknown.n_vars)]
    unknown.var = unknown.var.drop(columns=["gene_ids"])
    with pytest.raises(ValueError, match="vocabulary"):
        psysc.tl.embed(unknown, checkpoint, device="cpu")
    with pytest.raises(ValueError, match="neither a model name"):
        psysc.tl.embed(cells.copy(), "no-such-model", device="cpu")


def test_cli_run_with_a_model_directory_and_a_cached_registry_model(tmp_path, monkeypatch, checkpoint):
    from psysc import _registry
    from psysc.cli import main

    small = psysc.datasets.darmanis2015()[::4].copy()
    small.write_h5ad(tmp_path / "in.h5ad")
    argv = ["run", "--input", str(tmp_path / "in.h5ad"), "--traits", "SCZ,AD", "--quick", "-q"]
    with contextlib.redirect_stderr(io.StringIO()):
        assert main([*argv, "--out", str(tmp_path / "dir"), "--model", str(checkpoint)]) == 0
    summary = (tmp_path / "dir" / "summary.json").read_text()
    assert '"graph_representation": "X_embedding"' in summary

    # a registry name whose files are in the cache is used offline (no base URL is reachable here)
    name = "geneformer-v2-104m" if "V2" in str(checkpoint) else "geneformer-v1-10m"
    entry = _registry.REGISTRY[name]
    cache = tmp_path / "cache"
    monkeypatch.setattr(psysc.settings, "cachedir", cache)
    target = _registry.model_dir(name)
    target.mkdir(parents=True)
    for f in entry.files:
        (target / f.name).write_bytes((checkpoint / f.name).read_bytes())
    weights_sha = hashlib.sha256((checkpoint / entry.weights.name).read_bytes()).hexdigest()
    files = tuple(
        dataclasses.replace(f, sha256=weights_sha, size=(checkpoint / f.name).stat().st_size)
        if f is entry.weights else f
        for f in entry.files
    )
    patched = dataclasses.replace(entry, files=files, base_url="http://127.0.0.1:9/unreachable")
    monkeypatch.setitem(_registry.REGISTRY, name, patched)
    with contextlib.redirect_stderr(io.StringIO()):
        rc = main([*argv, "--out", str(tmp_path / "named"), "--model", name])
    assert rc == 0
    assert name in (tmp_path / "named" / "summary.json").read_text()


def test_dask_backed_counts_are_streamed_with_the_same_result(cells, checkpoint):
    da = pytest.importorskip("dask.array")
    in_memory = cells.copy()
    psysc.tl.embed(in_memory, checkpoint, device="cpu", key_added="e")
    lazy = cells.copy()
    lazy.X = da.from_array(cells.X.toarray(), chunks=(16, -1))
    psysc.tl.embed(lazy, checkpoint, device="cpu", key_added="e", block_size=16)
    np.testing.assert_allclose(lazy.obsm["e"], in_memory.obsm["e"], atol=1e-6)


def test_gene_col_reads_the_chosen_identifiers(cells, checkpoint):
    """model.gene_col = "gene_ids" gives what the same counts give with those Ensembl IDs as var_names."""
    model = psysc.models.load(checkpoint)
    model.gene_col = "gene_ids"
    a = cells.copy()
    psysc.tl.embed(a, model, device="cpu", key_added="e")
    assert a.uns["psysc"]["embed"]["e"]["options"]["gene_col"] == "gene_ids"
    has_id = cells.var["gene_ids"].astype(str).str.startswith("ENSG").to_numpy()
    b = cells[:, has_id].copy()
    b.obs["n_counts"] = np.asarray(cells.X.sum(axis=1)).ravel()  # the same normalisation denominator
    a_n = cells.copy()
    a_n.obs["n_counts"] = b.obs["n_counts"]
    psysc.tl.embed(a_n, model, device="cpu", key_added="e")
    b.var_names = b.var["gene_ids"].astype(str).to_numpy()
    by_names = psysc.models.load(checkpoint)
    by_names.gene_col = None
    psysc.tl.embed(b, by_names, device="cpu", key_added="e")
    np.testing.assert_allclose(a_n.obsm["e"], b.obsm["e"], rtol=1e-5, atol=1e-6)
    auto = cells.copy()
    psysc.tl.embed(auto, checkpoint, device="cpu", key_added="e")
    assert auto.uns["psysc"]["embed"]["e"]["options"]["gene_col"] == "auto"
    # "auto" reads the Ensembl IDs, as the official tokenizer, although the symbols cover more of V1's genes
    np.testing.assert_array_equal(auto.obsm["e"], a.obsm["e"])
    if model.version == "V1":
        symbols = cells.copy()
        by_symbols = psysc.models.load(checkpoint)
        by_symbols.gene_col = None
        psysc.tl.embed(symbols, by_symbols, device="cpu", key_added="e")
        assert not np.allclose(symbols.obsm["e"], a.obsm["e"])


def test_filter_pass_leaves_cells_out_as_the_official_tokenizer(cells, checkpoint, caplog):
    """Cells with obs["filter_pass"] != 1 get NaN rows; the others embed as when the kept cells are embedded alone."""
    a = cells.copy()
    a.obs["filter_pass"] = np.where(np.arange(a.n_obs) % 3 == 0, 0, 1)
    a.obs.loc[a.obs_names[1], "filter_pass"] = np.nan  # missing: not 1
    a.obs["n_counts"] = np.asarray(a.X.sum(axis=1)).ravel()
    keep = (a.obs["filter_pass"] == 1).to_numpy()
    kept = a[keep].copy()
    # the official tokenizer never reads a left-out cell's n_counts: a missing or wrong one stops nothing
    a.obs.loc[a.obs_names[0], "n_counts"] = np.nan
    a.obs.loc[a.obs_names[3], "n_counts"] = 1.0
    del kept.obs["filter_pass"]
    with caplog.at_level("WARNING", logger="psysc"):
        psysc.tl.embed(a, checkpoint, device="cpu", key_added="e")
    psysc.tl.embed(kept, checkpoint, device="cpu", key_added="e")
    assert np.isnan(a.obsm["e"][~keep]).all()
    np.testing.assert_allclose(a.obsm["e"][keep], kept.obsm["e"], rtol=1e-6, atol=1e-7)
    info = a.uns["psysc"]["embed"]["e"]
    assert info["n_filtered_cells"] == int((~keep).sum()) and info["n_empty_cells"] == 0
    assert f"{int((~keep).sum())} of {a.n_obs} cells have obs['filter_pass'] != 1" in caplog.text
    model = psysc.models.load(checkpoint)
    model.filter_key = None  # every cell
    every = a.copy()
    every.obs["n_counts"] = np.asarray(a.X.sum(axis=1)).ravel()
    psysc.tl.embed(every, model, device="cpu", key_added="e")
    assert not np.isnan(every.obsm["e"]).any()
    np.testing.assert_allclose(every.obsm["e"][keep], kept.obsm["e"], rtol=1e-6, atol=1e-7)


def test_filter_pass_values_follow_the_official_equality_with_1(cells, checkpoint):
    """value == 1 passes (1, 1.0, True); 0, False, NA and text (also "1") do not; all left out is refused."""
    model = psysc.models.load(checkpoint)
    a = cells[:8].copy()
    a.obs["filter_pass"] = pd.Series([1, 1.0, True, 0, False, None, "1", np.nan], index=a.obs_names, dtype=object)
    assert model.excluded_cells(a).tolist() == [False, False, False, True, True, True, True, True]
    a.obs["filter_pass"] = pd.array([1, None, 0, 1, 1, None, 1, 0], dtype="Int64")
    assert model.excluded_cells(a).tolist() == [False, True, True, False, False, True, False, True]
    a.obs["filter_pass"] = pd.array([True, None, False, True, True, True, True, True], dtype="boolean")
    assert model.excluded_cells(a).tolist() == [False, True, True] + [False] * 5
    a.obs["filter_pass"] = ["TRUE"] * 8  # text from R: every cell would be left out
    with pytest.raises(ValueError, match=r"leaves out every cell.*filter_key = None"):
        psysc.tl.embed(a, model, device="cpu", key_added="e")
    del a.obs["filter_pass"]
    assert model.excluded_cells(a) is None


def test_a_run_that_fails_leaves_its_resume_folder_usable(cells, checkpoint, tmp_path):
    import scanpy as sc

    normalised = cells.copy()
    normalised.layers["counts"] = normalised.X.copy()
    sc.pp.normalize_total(normalised)
    sc.pp.log1p(normalised)
    resume = tmp_path / "resume"
    with pytest.raises(ValueError, match="layer='counts'"):
        psysc.tl.embed(normalised, model=checkpoint, device="cpu", resume=resume, block_size=20)
    psysc.tl.embed(normalised, model=checkpoint, device="cpu", resume=resume, block_size=20, layer="counts")
    plain = cells.copy()
    psysc.tl.embed(plain, model=checkpoint, device="cpu", block_size=20)
    key = f"X_{checkpoint.name}"
    np.testing.assert_array_equal(normalised.obsm[key], plain.obsm[key])
    # a filter column that leaves out every cell is refused before any block is embedded
    text = cells.copy()
    text.obs["filter_pass"] = "True"
    other = tmp_path / "resume-filter"
    with pytest.raises(ValueError, match="leaves out every cell"):
        psysc.tl.embed(text, model=checkpoint, device="cpu", resume=other, block_size=20)
    assert not other.exists() or not any(other.iterdir())


def test_model_folder_named_by_a_relative_path_and_device_names(cells, checkpoint, monkeypatch):
    import torch

    monkeypatch.chdir(checkpoint)
    adata = cells[:8].copy()
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    psysc.tl.embed(adata, model=".", device="cpu")  # builds a network: its initial weights use no global stream
    assert torch.equal(torch.rand(3), expected)
    assert f"X_{checkpoint.name}" in adata.obsm
    assert adata.uns["psysc"]["embed"][f"X_{checkpoint.name}"]["genes_from"] == "var['gene_ids']"
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda', 'cuda:N' or 'auto', not 'gpu'"):
        psysc.tl.embed(adata, model=".", device="gpu")
    with pytest.raises(ValueError, match="device='mps' is not supported: psysc runs on 'cpu' or 'cuda'"):
        psysc.tl.embed(adata, model=".", device="mps")
    with pytest.raises(ValueError, match="batch_size must be a whole number of at least 1, not 2.5"):
        psysc.tl.embed(adata, model=".", device="cpu", batch_size=2.5)


def test_run_with_a_model_embeds_the_kept_cells_with_all_their_genes(tmp_path, checkpoint):
    """psysc run --model: the QC drops genes for scoring, but the model tokenises every gene of the input."""
    from psysc._pipeline import InputError, run_pipeline

    small = psysc.datasets.darmanis2015()[::4].copy()
    gene_sets = psysc.datasets.gwas_gene_sets(["SCZ"])
    with contextlib.redirect_stderr(io.StringIO()):
        res = run_pipeline(small, gene_sets, out=tmp_path / "out", n_ctrl=20, model=checkpoint)
    done = res["adata"]
    assert done.n_vars < small.n_vars  # genes detected in fewer than 3 cells were dropped for scoring
    kept = small[done.obs_names].copy()
    psysc.tl.embed(kept, checkpoint, device="cpu", key_added="e")
    np.testing.assert_allclose(done.obsm["X_embedding"], kept.obsm["e"], atol=1e-6)
    fewer_genes = kept[:, done.var_names].copy()
    psysc.tl.embed(fewer_genes, checkpoint, device="cpu", key_added="e")
    assert np.abs(fewer_genes.obsm["e"] - kept.obsm["e"]).max() > 1e-4  # the gene filter would change them

    # mouse data (psysc run --species mouse): the human model embeds the cells under their human orthologs
    mouse = psysc.pp.map_genes(small, "mouse", copy=True)
    mouse.var = mouse.var.drop(columns=["gene_ids", "original_gene"])  # mouse data carry no human IDs
    mouse_sets = psysc.gwas.to_species(gene_sets, "mouse")
    with contextlib.redirect_stderr(io.StringIO()):
        res = run_pipeline(mouse, mouse_sets, out=tmp_path / "mouse", n_ctrl=20, model=checkpoint,
                           extra_params={"species": "mouse"})
    done = res["adata"]
    kept = mouse[done.obs_names].copy()
    psysc.pp.map_genes(kept, "human", gene_id="ensembl")
    psysc.tl.embed(kept, checkpoint, device="cpu", key_added="e")
    np.testing.assert_allclose(done.obsm["X_embedding"], kept.obsm["e"], atol=1e-6)

    # cells that obs["filter_pass"] leaves out cannot be on the graph: the error names that column
    filtered = small.copy()
    filtered.obs["filter_pass"] = 1
    filtered.obs.iloc[:5, -1] = 0
    with pytest.raises(InputError, match=r"5 cells have obs\['filter_pass'\] != 1.*drop them"):
        run_pipeline(filtered, gene_sets, out=tmp_path / "fp", n_ctrl=20, model=checkpoint)
