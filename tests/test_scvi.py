"""scVI on psysc's embedding engine: safe model.pt reading, encoder parity with scvi-tools, training, registry.

Small SCVI models are trained here with scvi-tools (a few epochs on a few hundred synthetic cells), saved
with ``model.save`` and read back by psysc, which must reproduce ``get_latent_representation()``.
"""

import dataclasses
import json
import logging
import os
import sys
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

torch = pytest.importorskip("torch")

from _loopback import Server  # noqa: E402

import psysc  # noqa: E402
import psysc.models  # noqa: E402
from psysc import _registry  # noqa: E402
from psysc.models.scvi._format import Dropped, read_model_pt  # noqa: E402

N_GENES = 80
GENES = np.array([f"ENSG{i:011d}" for i in range(N_GENES)])


def counts(n=240, seed=0, genes=GENES, batches=("b0", "b1")):
    """Poisson counts of 3 cell types x len(batches) batches (gene-wise batch effects), Ensembl-like names."""
    rng = np.random.default_rng(seed)
    g = len(genes)
    kind = np.arange(n) % 3
    batch = (np.arange(n) // 3) % len(batches)
    base = np.random.default_rng(100).gamma(0.6, 1.5, (3, g))
    effect = np.random.default_rng(101).uniform(0.6, 1.6, (len(batches), g))
    mu = base[kind] * effect[batch] * rng.lognormal(0, 0.3, (n, 1))
    a = ad.AnnData(sparse.csr_matrix(rng.poisson(mu).astype(np.float32)))
    a.var_names = list(genes)
    a.obs_names = [f"c{seed}_{i}" for i in range(n)]
    a.obs["batch"] = np.asarray(batches)[batch]
    a.obs["kind"] = kind.astype(str)
    return a


@pytest.fixture(scope="module")
def scvi():
    scvi = pytest.importorskip("scvi")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "scvi"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="lightning")
    return scvi


def train(scvi, folder, adata, setup=None, **model_kwargs):
    scvi.settings.seed = 0
    adata = adata.copy()
    scvi.model.SCVI.setup_anndata(adata, **(setup or {}))
    model = scvi.model.SCVI(adata, n_latent=4, n_hidden=16, **model_kwargs)
    model.train(max_epochs=3, accelerator="cpu", enable_progress_bar=False, batch_size=64)
    model.save(str(folder), overwrite=True)
    return model, adata


#: (setup_anndata kwargs, SCVI kwargs): no batch; batch in the encoder (2 layers, deep injection); batch +
#: categorical + continuous covariates with LayerNorm only; batch in the first layer only, no log1p; logistic
#: normal latent (psysc gives the Gaussian mean before the softmax: scvi-tools' return_dist=True means).
CASES = {
    "plain": ({}, {}),
    "batch-encoded": ({"batch_key": "batch"}, {"encode_covariates": True, "n_layers": 2}),
    "covariates-layernorm": (
        {"batch_key": "batch", "categorical_covariate_keys": ["kind"], "continuous_covariate_keys": ["depth"]},
        {"encode_covariates": True, "n_layers": 2, "use_layer_norm": "both", "use_batch_norm": "none"},
    ),
    "shallow-injection-no-log": (
        {"batch_key": "batch"},
        {"encode_covariates": True, "n_layers": 3, "deeply_inject_covariates": False, "log_variational": False},
    ),
    "latent-ln": ({}, {"latent_distribution": "ln"}),
}


@pytest.fixture(scope="module")
def trained(scvi, tmp_path_factory):
    """One saved model per case: name -> (folder, scvi model, training AnnData)."""
    out = {}
    for name, (setup, kwargs) in CASES.items():
        a = counts()
        a.obs["depth"] = np.log1p(np.asarray(a.X.sum(1)).ravel())
        folder = tmp_path_factory.mktemp(name)
        model, adata = train(scvi, folder, a, setup, **kwargs)
        out[name] = (folder, model, adata)
    return out


# -- 1. reading model.pt without unrestricted unpickling ---------------------------------------------------
class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class Gadget:
    """An arbitrary (harmless) class: still not on the allow-list."""


def write_model_pt(folder, attr_extra):
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"model_state_dict": {"px_r": torch.zeros(3)}, "var_names": np.array(["a", "b", "c"], dtype=object),
                "attr_dict": {"init_params_": {}, **attr_extra}}, folder / "model.pt")
    return folder


def test_a_malicious_or_foreign_pickle_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    folder = write_model_pt(tmp_path / "evil", {"payload": Evil(marker)})
    with pytest.raises(ValueError, match=r"refusing to load .*model\.pt.*(system|posix).*can run code"):
        psysc.models.load(folder)
    assert not marker.exists()
    other = write_model_pt(tmp_path / "gadget", {"thing": Gadget()})
    with pytest.raises(ValueError, match="Gadget"):
        psysc.models.load(other)
    # the same check through tl.embed
    with pytest.raises(ValueError, match="refusing to load"):
        psysc.tl.embed(counts(n=6), folder, device="cpu")
    assert not marker.exists()


def test_model_pt_is_read_with_weights_only_and_history_dropped(trained, monkeypatch):
    folder, _, _ = trained["batch-encoded"]
    calls = []
    real = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    ckpt = read_model_pt(folder / "model.pt")
    assert calls == [True]
    attr = ckpt["attr_dict"]
    assert list(ckpt["var_names"]) == list(GENES)
    assert attr["registry_"]["model_name"] == "SCVI"
    assert attr["registry_"]["field_registries"]["batch"]["state_registry"]["original_key"] == "batch"
    assert all(isinstance(v, Dropped) for v in attr["history_"].values())  # pandas never rebuilt
    assert isinstance(attr["train_indices_"], np.ndarray)


def test_model_pt_written_under_numpy_1_names_is_read(trained, tmp_path):
    """Files saved with NumPy 1.x (e.g. the Census models) name numpy.core.multiarray, not numpy._core."""
    import zipfile

    folder, model, adata = trained["plain"]
    old = tmp_path / "np1"
    old.mkdir()
    with zipfile.ZipFile(folder / "model.pt") as zin, zipfile.ZipFile(old / "model.pt", "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("data.pkl"):
                data = data.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
                assert b"cnumpy.core.multiarray\n" in data
            zout.writestr(item, data)
    query = counts()
    psysc.tl.embed(query, old, device="cpu", key_added="e")
    assert np.abs(query.obsm["e"] - model.get_latent_representation(adata)).max() <= 1e-5


def test_other_scvi_layouts_are_refused_with_an_explanation(tmp_path):
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    for f in ("model_params.pt", "attr.pkl", "var_names.csv"):
        (legacy / f).write_bytes(b"")
    from psysc.models.scvi._model import ScVI

    with pytest.raises(ValueError, match="legacy scvi-tools.*convert_legacy_save"):
        ScVI.from_directory(legacy)
    plain = tmp_path / "plain"
    plain.mkdir()
    torch.save({"w": torch.zeros(2)}, plain / "model.pt")
    with pytest.raises(ValueError, match="not an scvi-tools model file"):
        psysc.models.load(plain)


# -- 2./3. encoder parity with scvi-tools ---------------------------------------------------------------------
@pytest.mark.parametrize("case", list(CASES))
def test_embedding_equals_get_latent_representation(trained, case, caplog):
    folder, model, adata = trained[case]
    if case == "latent-ln":  # scvi-tools' give_mean averages softmax samples (random): compare with q(z|x) means
        expected = model.get_latent_representation(adata, return_dist=True)[0]
    else:
        expected = model.get_latent_representation(adata)
    query = counts()
    query.obs["depth"] = np.log1p(np.asarray(query.X.sum(1)).ravel())
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.tl.embed(query, folder, device="cpu", batch_size=37, block_size=100, key_added="e")
    assert ("latent_distribution='ln'" in caplog.text) == (case == "latent-ln")
    assert query.obsm["e"].shape == (query.n_obs, 4)
    assert np.abs(query.obsm["e"] - expected).max() <= 1e-5
    prov = query.uns["psysc"]["embed"]["e"]
    assert prov["family"] == "scvi" and prov["version"] == "SCVI" and len(prov["sha256"]["model.pt"]) == 64
    assert prov["options"]["encode_covariates"] == (case not in ("plain", "latent-ln"))


@pytest.mark.parametrize("case", ["plain", "batch-encoded"])
def test_cells_without_counts_are_embedded_as_scvi_tools_does(scvi, trained, case, caplog):
    folder, model, _ = trained[case]
    query = counts(n=30, seed=4)
    X = query.X.toarray()
    X[[0, 7]] = 0
    query.X = sparse.csr_matrix(X)
    ref = query.copy()
    scvi.model.SCVI.setup_anndata(ref, batch_key=None if case == "plain" else "batch")
    expected = model.get_latent_representation(ref)
    with caplog.at_level(logging.INFO, logger="psysc"):
        psysc.tl.embed(query, folder, device="cpu", key_added="e")
    assert np.abs(query.obsm["e"] - expected).max() <= 1e-5 and not np.isnan(query.obsm["e"]).any()
    assert "2 of 30 cells of this block have no counts in the model's genes" in caplog.text


def test_query_with_missing_extra_and_shuffled_genes_matches_scvi_query_mapping(scvi, trained, caplog):
    folder, _, _ = trained["batch-encoded"]
    genes = np.concatenate([GENES[10:], [f"ENSG9{i:010d}" for i in range(15)]])  # 10 missing, 15 extra
    query = counts(n=90, seed=7, genes=genes)
    query = query[:, np.random.default_rng(1).permutation(query.n_vars)].copy()
    ref = query.copy()
    scvi.model.SCVI.prepare_query_anndata(ref, str(folder))
    qmodel = scvi.model.SCVI.load_query_data(ref, str(folder), accelerator="cpu")
    qmodel.is_trained = True
    expected = qmodel.get_latent_representation()
    with caplog.at_level(logging.INFO, logger="psysc"):
        psysc.tl.embed(query, folder, device="cpu", key_added="e")
    assert np.abs(query.obsm["e"] - expected).max() <= 1e-5
    assert "70 of 80 model genes found" in caplog.text and "10 missing genes are zero-filled" in caplog.text
    assert "15 genes of adata that the model does not know are ignored" in caplog.text


def test_unseen_batches_get_an_all_zero_one_hot(scvi, trained, caplog):
    folder, model, _ = trained["batch-encoded"]
    query = counts(n=60, seed=3, batches=("new1", "b0"))
    ref = query.copy()
    scvi.model.SCVI.prepare_query_anndata(ref, str(folder))
    qmodel = scvi.model.SCVI.load_query_data(ref, str(folder), accelerator="cpu")
    qmodel.is_trained = True
    # scArches adds a one-hot column per new batch (random init, then trained); zeroing those columns is what
    # psysc does without training
    old = list(model.adata_manager.get_state_registry("batch").categorical_mapping)
    new = list(qmodel.adata_manager.get_state_registry("batch").categorical_mapping)
    assert new[: len(old)] == old and new[len(old):] == ["new1"]
    with torch.no_grad():
        for i, layer in enumerate(qmodel.module.z_encoder.encoder.fc_layers):
            w = layer[0].weight
            start = N_GENES if i == 0 else 16
            w[:, start + len(old): start + len(new)] = 0
    expected = qmodel.get_latent_representation()
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.tl.embed(query, folder, device="cpu", key_added="e")
    assert np.abs(query.obsm["e"] - expected).max() <= 1e-5
    assert "30 cells of this block have 'batch' categories the model has not seen (new1)" in caplog.text
    # batch_key= names another column holding the model's categories
    renamed = query.copy()
    renamed.obs = renamed.obs.rename(columns={"batch": "sample"})
    psysc.tl.embed(renamed, folder, device="cpu", key_added="e", batch_key="sample")
    np.testing.assert_array_equal(renamed.obsm["e"], query.obsm["e"])
    with pytest.raises(ValueError, match=r"encodes the batch.*adata\.obs\['batch'\] is needed.*batch_key="):
        psysc.tl.embed(renamed, folder, device="cpu")


# -- 4. training through tl.embed ------------------------------------------------------------------------
def test_embed_trains_scvi_deterministically_with_a_seed(scvi):
    a = counts()
    kw = dict(model="scvi", batch_key="batch", train_kwargs={"max_epochs": 3}, model_kwargs={"n_latent": 6},
              seed=5, device="cpu")
    x, y = a.copy(), a.copy()
    psysc.tl.embed(x, **kw)
    psysc.tl.embed(y, **kw)
    assert x.obsm["X_scvi"].shape == (a.n_obs, 6)
    np.testing.assert_array_equal(x.obsm["X_scvi"], y.obsm["X_scvi"])
    assert list(x.obs.columns) == ["batch", "kind"] and "_scvi_uuid" not in x.uns  # adata left as it was
    spelled = a.copy()  # the name in any case, as registry names
    psysc.tl.embed(spelled, **{**kw, "model": "scVI"})
    np.testing.assert_array_equal(spelled.obsm["X_scvi"], x.obsm["X_scvi"])
    prov = x.uns["psysc"]["embed"]["X_scvi"]
    assert prov["options"]["trained"] and prov["options"]["seed"] == 5 and prov["options"]["n_epochs"] == 3
    assert prov["batch_key"] == "batch" and json.loads(prov["options"]["model_kwargs"]) == {"n_latent": 6}
    # the same training done by hand with scvi-tools gives the same embedding
    scvi.settings.seed = 5
    tr = ad.AnnData(a.X, obs=a.obs[["batch"]].astype(str), var=pd.DataFrame(index=a.var_names))
    scvi.model.SCVI.setup_anndata(tr, batch_key="batch")
    vae = scvi.model.SCVI(tr, n_latent=6)
    vae.train(max_epochs=3, accelerator="cpu", enable_progress_bar=False)
    assert np.abs(vae.get_latent_representation() - x.obsm["X_scvi"]).max() <= 1e-5
    z = a.copy()
    psysc.tl.embed(z, **{**kw, "seed": 6})
    assert np.abs(z.obsm["X_scvi"] - x.obsm["X_scvi"]).max() > 1e-3


def test_training_without_a_progress_bar_logs_its_epochs(scvi, monkeypatch, caplog):
    """Where no progress bar is drawn (a log file, a batch job), the training says how far it is, ten times."""
    monkeypatch.setattr(type(psysc.settings), "show_progress", property(lambda self: False))
    monkeypatch.setattr(psysc.settings, "verbosity", 2)
    from lightning.pytorch.callbacks import Callback

    class Count(Callback):  # a caller's own callback, given alone (Lightning takes one or a list)
        epochs = 0

        def on_train_epoch_end(self, trainer, pl_module):
            Count.epochs += 1

    a = counts()
    with caplog.at_level(logging.INFO, logger="psysc"):
        psysc.tl.embed(a, model="scvi", train_kwargs={"max_epochs": 20, "callbacks": Count()}, seed=0, device="cpu")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("scVI training: epoch")]
    assert [int(m.split()[3]) for m in lines] == list(range(2, 21, 2)), lines
    assert all(m.split()[5].rstrip(",") == "20" and "training loss (elbo_train)" in m for m in lines)
    assert Count.epochs == 20
    recorded = a.uns["psysc"]["embed"]["X_scvi"]["options"]["train_kwargs"]
    assert "max_epochs" in recorded and "EpochLog" not in recorded  # psysc's own logger is no training option


@pytest.mark.parametrize("verbosity", [1, 2, 3])
def test_lightning_start_up_messages_show_only_at_debug_verbosity(verbosity, monkeypatch):
    from psysc.tl._embed import _quiet_lightning

    monkeypatch.setattr(psysc.settings, "verbosity", verbosity)
    parent = logging.getLogger("lightning.pytorch")
    before = parent.level
    parent.setLevel(logging.INFO)  # as Lightning sets it up on import
    try:
        lightning = logging.getLogger("lightning.pytorch.utilities.rank_zero")  # "GPU available: ..." comes from here
        with _quiet_lightning():
            shown = lightning.isEnabledFor(logging.INFO)
        assert shown == (verbosity >= 3)
        assert parent.level == logging.INFO
    finally:
        parent.setLevel(before)


def test_training_options_are_checked(monkeypatch):
    with pytest.raises(ValueError, match="train_kwargs= is for model='scvi'"):
        psysc.tl.embed(counts(n=6), model="geneformer-v2-104m", train_kwargs={"max_epochs": 1})
    monkeypatch.setitem(sys.modules, "scvi", None)  # scvi-tools not installed
    with pytest.raises(ImportError, match="pip install scvi-tools"):
        psysc.tl.embed(counts(n=6), model="scvi")


# -- 5. local folder and the registry entry ------------------------------------------------------------------
@pytest.fixture
def census_server(trained, tmp_path, loopback_only):
    """The 'plain' model served in the official Census layout: /<release>/homo_sapiens/model.pt."""
    entry = _registry.REGISTRY["scvi-census"]
    root = tmp_path / "srv"
    dest = root / entry.revision / entry.folder
    dest.mkdir(parents=True)
    (dest / "model.pt").write_bytes((trained["plain"][0] / "model.pt").read_bytes())
    srv = Server(root)
    yield srv.url, srv.requests
    srv.stop()


def test_registry_entry_downloads_verifies_and_embeds(trained, census_server, cache, tmp_path, monkeypatch):
    url, requests = census_server
    entry = _registry.REGISTRY["scvi-census"]
    assert entry.family == "scvi" and entry.url("model.pt").startswith(
        "https://cellxgene-contrib-public.s3.amazonaws.com/models/scvi/2024-07-01/homo_sapiens/model.pt")
    monkeypatch.setitem(_registry.REGISTRY, "scvi-census", dataclasses.replace(entry, base_url=url))
    _, model, adata = trained["plain"]
    expected = model.get_latent_representation(adata)
    query = counts()
    psysc.tl.embed(query, model="scvi-census", device="cpu")
    assert requests == [f"/{entry.revision}/{entry.folder}/model.pt"]
    assert np.abs(query.obsm["X_scvi-census"] - expected).max() <= 1e-5
    cached = cache / "models" / "scvi-census"
    record = json.loads((cached / _registry.RECORD_NAME).read_text())  # no published hash: recorded at first use
    prov = query.uns["psysc"]["embed"]["X_scvi-census"]
    assert prov["sha256"] == {"model.pt": record["model.pt"]} and prov["revision"] == "2024-07-01"
    assert prov["source"] == f"{url}/2024-07-01/homo_sapiens/model.pt"
    again = counts()
    psysc.tl.embed(again, model="scvi-census", device="cpu")  # cached: no second request
    assert len(requests) == 1
    np.testing.assert_array_equal(again.obsm["X_scvi-census"], query.obsm["X_scvi-census"])
    # a local folder in the same layout gives the same embedding, loaded by family detection
    local = tmp_path / "local"
    local.mkdir()
    (local / "model.pt").write_bytes((cached / "model.pt").read_bytes())
    assert psysc.models.detect_family(local) == "scvi"
    m = psysc.models.load(local)
    assert m.embedding_dim == 4 and m.info.family == "scvi"
    psysc.tl.embed(again, model=m, device="cpu", key_added="local")
    np.testing.assert_array_equal(again.obsm["local"], query.obsm["X_scvi-census"])


# -- 6. bad input -------------------------------------------------------------------------------------------
def test_bad_input_gives_clear_errors(trained):
    folder, _, _ = trained["plain"]
    normalised = counts(n=30)
    normalised.X = sparse.csr_matrix(np.log1p(normalised.X.toarray() / 3))
    with pytest.raises(ValueError, match="scVI needs raw counts.*non-integer.*layer='counts'"):
        psysc.tl.embed(normalised, folder, device="cpu")
    symbols = counts(n=30)
    symbols.var["gene_ids"] = symbols.var_names.to_numpy()
    symbols.var_names = [f"GENE{i}" for i in range(symbols.n_vars)]
    with pytest.raises(ValueError, match=r"none of the 80 genes.*Ensembl.*pp\.map_genes\(adata, .ensembl.\)") as err:
        psysc.tl.embed(symbols, folder, device="cpu")
    assert "adata.var['gene_ids'] matches 80 model genes" in str(err.value)
    versioned = counts(n=30)
    versioned.var_names = [f"{g}.3" for g in versioned.var_names]
    with pytest.raises(ValueError, match="version suffixes"):
        psysc.tl.embed(versioned, folder, device="cpu")
    with pytest.raises(ValueError, match="emb_layer=3 does not apply"):
        psysc.models.load(folder, layer=3)
    with pytest.raises(ValueError, match="batch_key= is for scVI models"):
        from psysc.testing import random_geneformer_checkpoint

        psysc.tl.embed(counts(n=6), random_geneformer_checkpoint(folder.parent / "gf"), batch_key="batch")


def test_training_leaves_the_callers_random_generators_as_they_were(scvi):
    import random

    import torch

    a = counts(n=120)
    kw = dict(model="scvi", train_kwargs={"max_epochs": 1}, model_kwargs={"n_latent": 4}, seed=5, device="cpu")
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    expected = (random.random(), np.random.random(), torch.rand(1).item())
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    psysc.tl.embed(a, **kw)
    assert (random.random(), np.random.random(), torch.rand(1).item()) == expected
    # trained without batch_key: no batch is recorded (not scvi-tools' placeholder column "_scvi_batch")
    assert a.uns["psysc"]["embed"]["X_scvi"]["batch_key"] == ""


def test_duplicated_genes_are_refused_before_training(scvi, monkeypatch):
    a = counts(n=60)
    a.var_names = list(a.var_names[: a.n_vars // 2]) * 2
    monkeypatch.setattr(scvi.model.SCVI, "train", lambda *args, **kw: pytest.fail("trained"))
    with pytest.raises(ValueError, match=r"occur more than once in var_names.*var_names_make_unique"):
        psysc.tl.embed(a, model="scvi", train_kwargs={"max_epochs": 1}, device="cpu")


def test_training_on_too_few_cells_is_refused_with_the_alternative(scvi):
    with pytest.raises(ValueError, match=r"2 cell\(s\) are too few \(at least 3.*scvi-census"):
        psysc.tl.embed(counts()[:2].copy(), model="scvi", train_kwargs={"max_epochs": 1}, device="cpu")
    few = counts()[:3].copy()
    psysc.tl.embed(few, model="scvi", train_kwargs={"max_epochs": 1}, device="cpu")
    assert few.obsm["X_scvi"].shape[0] == 3


def test_duplicated_sparse_entries_count_as_their_sum(trained):
    from _sparse import check_duplicated_entries_embed_as_their_sum

    check_duplicated_entries_embed_as_their_sum(counts(n=30, seed=2), trained["plain"][0])


def test_dense_float16_counts_embed_as_float32_ones(trained):
    folder, _, _ = trained["plain"]
    query = counts(n=30, seed=2)
    reference = query.copy()
    psysc.tl.embed(reference, folder, device="cpu", key_added="e")
    query.X = reference.X.toarray().astype(np.float16)
    assert np.array_equal(query.X.astype(np.float32), reference.X.toarray())
    psysc.tl.embed(query, folder, device="cpu", key_added="e")
    np.testing.assert_array_equal(query.obsm["e"], reference.obsm["e"])
