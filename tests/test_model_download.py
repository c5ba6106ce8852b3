"""The model registry against a local HTTP server (127.0.0.1 only), and the safe weight loader.

A tiny checkpoint in the official layout is served at ``/<revision>/<folder>/<file>``, the URL scheme the
registry builds from its base URL. Every socket the tests open is checked to be a loopback one.
"""

import json
import logging
import pickle
import socket

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
pytest.importorskip("pooch")

from _loopback import Server, sha256  # noqa: E402
from _payloads import RunsCommand, WritesFile  # noqa: E402

import psysc  # noqa: E402
import psysc.models  # noqa: E402
from psysc import _registry  # noqa: E402
from psysc._registry import DownloadError, ModelEntry, RemoteFile  # noqa: E402

REV = "0123456789abcdef0123456789abcdef01234567"
FOLDER = "Tiny-Geneformer-V2"
NAME = "tiny-geneformer-v2"
CONFIG = dict(
    architectures=["BertForMaskedLM"], model_type="bert", vocab_size=20_275, hidden_size=8, num_hidden_layers=2,
    num_attention_heads=2, intermediate_size=16, hidden_act="relu", max_position_embeddings=4096,
    type_vocab_size=2, layer_norm_eps=1e-12, pad_token_id=0, position_embedding_type="absolute",
)


# -- network guard: loopback only, for every test of the module ----------------------------------------
pytestmark = pytest.mark.usefixtures("loopback_only")


def make_checkpoint(folder, seed=0):
    """An official-layout V2-shaped checkpoint (BertForMaskedLM key names, with an MLM-head key)."""
    from safetensors.torch import save_file

    from psysc.models.geneformer._network import GeneformerNetwork

    torch.manual_seed(seed)
    net = GeneformerNetwork(CONFIG)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    sd = {"bert." + k: v.contiguous() for k, v in net.state_dict().items()}
    sd["cls.predictions.bias"] = torch.zeros(CONFIG["vocab_size"])
    folder.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(CONFIG, indent=2))
    return folder


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path / "srv")
    make_checkpoint(tmp_path / "srv" / REV / FOLDER)
    yield srv
    srv.stop()


def register(monkeypatch, server=None, *, weights_sha=None, base_url="http://127.0.0.1:9/never-used"):
    """Add a test entry to the registry: published sha256 for the weights, none for config.json."""
    files = server.root / REV / FOLDER if server is not None else None
    sha = weights_sha or sha256(files / "model.safetensors")
    size = (files / "model.safetensors").stat().st_size if files is not None else None
    entry = ModelEntry(
        name=NAME, family="geneformer", version="V2", folder=FOLDER, revision=REV,
        files=(RemoteFile("config.json"), RemoteFile("model.safetensors", sha, size)),
        layers=2, hidden_size=8, n_heads=2, max_length=4096, base_url=base_url,
    )
    monkeypatch.setitem(_registry.REGISTRY, NAME, entry)
    return entry


def embed(model):
    ids = torch.tensor([[2, 100, 7000, 55, 3, 0], [2, 4000, 3, 0, 0, 0]])
    mask = (ids != 0).long()
    return model.embed_batch(ids, mask)


# -- the registry ----------------------------------------------------------------------------------------
def test_real_entries_are_pinned_huggingface_files():
    df = psysc.models.available()
    gf = df[df.family == "geneformer"]
    assert list(gf.name) == ["geneformer-v1-10m", "geneformer-v1-12l", "geneformer-v2-104m", "geneformer-v2-316m"]
    assert set(df.columns) >= {"name", "family", "version", "layers", "hidden_size", "size_mb", "licence",
                               "revision", "cached"}
    assert df.set_index("name").loc["geneformer-v2-316m", "size_mb"] == 1265.5
    assert (gf.licence == "Apache-2.0").all()
    # scVI reads whole expression vectors: no attention heads and no token limit to show
    assert df.set_index("name").loc["scvi-census", ["n_heads", "max_length"]].isna().all()
    assert df.set_index("name").loc["geneformer-v2-104m", "max_length"] == 4096
    e = _registry.REGISTRY["geneformer-v1-12l"]
    assert e.url("pytorch_model.bin") == (
        "https://huggingface.co/ctheodoris/Geneformer/resolve/933ca80e39d421c47a12168699766bb7e4e2c197/"
        "gf-12L-30M-i2048/pytorch_model.bin"
    )
    for entry in _registry.REGISTRY.values():
        if entry.family != "geneformer":
            continue
        assert len(entry.weights.sha256) == 64 and entry.weights.size > 0
        assert [f.name for f in entry.files if f.sha256 is None] == ["config.json"]


def test_download_verify_and_reuse_the_cache(cache, server, monkeypatch):
    register(monkeypatch, server, base_url=server.url)
    assert not psysc.models.available().set_index("name").loc[NAME, "cached"]
    model = psysc.models.load(NAME)
    assert sorted(server.requests) == [f"/{REV}/{FOLDER}/config.json", f"/{REV}/{FOLDER}/model.safetensors"]
    folder = cache / "models" / NAME
    src = server.root / REV / FOLDER
    assert sha256(folder / "model.safetensors") == sha256(src / "model.safetensors")
    # config.json has no published hash: the one seen at the first download is recorded
    record = json.loads((folder / _registry.RECORD_NAME).read_text())
    assert record == {"config.json": sha256(src / "config.json")}
    assert model.info.sha256 == {
        "config.json": record["config.json"], "model.safetensors": sha256(src / "model.safetensors")
    }
    assert model.info.revision == REV and model.info.source == f"{server.url}/{REV}/{FOLDER}/model.safetensors"
    assert psysc.models.available().set_index("name").loc[NAME, "cached"]
    # the downloaded model is the served one: same embeddings as loading the server's folder directly
    np.testing.assert_array_equal(embed(model).numpy(), embed(psysc.models.load(src)).numpy())

    n = len(server.requests)
    again = psysc.models.load(NAME)  # from the cache: no request at all
    assert len(server.requests) == n
    np.testing.assert_array_equal(embed(again).numpy(), embed(model).numpy())


def test_a_download_is_logged_by_psysc_alone_at_its_verbosity(cache, server, monkeypatch, caplog):
    # pooch logs its own "Downloading file ..." line on stderr (its own handler, level INFO); psysc logs the
    # download itself, at the user's verbosity
    import logging

    import pooch

    seen = []
    handler = logging.Handler()
    handler.emit = seen.append
    pooch_logger = pooch.get_logger()
    level = pooch_logger.level
    pooch_logger.addHandler(handler)
    register(monkeypatch, server, base_url=server.url)
    try:
        with caplog.at_level(logging.INFO, logger="psysc"):
            psysc.models.load(NAME)
    finally:
        pooch_logger.removeHandler(handler)
    assert len(server.requests) == 2
    assert [r.getMessage() for r in seen if r.levelno < logging.WARNING] == []
    assert "downloading http://127.0.0.1" in caplog.text  # psysc's own line
    assert pooch_logger.level == level


def test_registry_names_match_in_any_case_and_the_folder_spelling(cache, tmp_path, monkeypatch):
    from pathlib import Path

    reg = _registry.REGISTRY
    assert reg["Geneformer-V2-104M"] is reg["geneformer-v2-104m"]  # the official Hugging Face folder name
    assert reg["gf-12L-30M-i2048"] is reg["geneformer-v1-12l"]
    assert reg["scGPT_human"] is reg["scgpt-human"] and "SCVI-CENSUS" in reg
    assert _registry.get_entry("GENEFORMER-V1-10M").name == "geneformer-v1-10m"
    assert _registry.check_model_ref("Geneformer-V2-104M") is None
    assert not _registry.is_cached("Geneformer-V2-104M")
    assert list(reg) == [e.name for e in reg.values()]  # iteration gives the canonical names
    # an existing directory of such a spelling is the directory
    monkeypatch.chdir(tmp_path)
    make_checkpoint(tmp_path / "Geneformer-V1-10M")
    assert _registry.check_model_ref("Geneformer-V1-10M") == Path("Geneformer-V1-10M")


def test_unknown_model_names_get_a_suggestion(cache):
    with pytest.raises(ValueError, match=r"did you mean 'geneformer-v2-104m'.*known models: geneformer-v1-10m"):
        _registry.check_model_ref("genformer-v2-104m")
    with pytest.raises(ValueError, match=r"did you mean 'scgpt-human'"):
        psysc.models.load("scgpt-humam")
    with pytest.raises(KeyError, match=r"did you mean 'scvi-census'\?.*scgpt-brain"):
        _registry.get_entry("scvi-cencus")
    with pytest.raises(ValueError, match=r"'nothing-like-it' is neither a model name.*known models") as err:
        _registry.check_model_ref("nothing-like-it")
    assert "did you mean" not in str(err.value)


def test_a_registry_model_loads_by_its_folder_name(cache, server, monkeypatch):
    register(monkeypatch, server, base_url=server.url)
    model = psysc.models.load(FOLDER.upper())
    assert model.info.name == NAME and (cache / "models" / NAME / "model.safetensors").is_file()
    assert not (cache / "models" / FOLDER.upper()).exists()
    np.testing.assert_array_equal(embed(model).numpy(), embed(psysc.models.load(server.root / REV / FOLDER)).numpy())


def test_base_url_from_the_environment_and_the_argument(cache, server, monkeypatch):
    register(monkeypatch, server)  # its default base URL (port 9) serves nothing
    monkeypatch.setenv(_registry.ENV_BASE_URL, server.url)
    psysc.models.load(NAME)
    assert len(server.requests) == 2
    monkeypatch.delenv(_registry.ENV_BASE_URL)
    (cache / "models" / NAME / "model.safetensors").unlink()
    psysc.models.load(NAME, base_url=server.url + "/")
    assert server.requests[-1] == f"/{REV}/{FOLDER}/model.safetensors"


def flip_bytes(path, at=1000):
    data = bytearray(path.read_bytes())
    data[at : at + 8] = bytes(b ^ 0xFF for b in data[at : at + 8])
    path.write_bytes(bytes(data))


def test_corrupt_cached_weights_are_detected_logged_and_fetched_again(cache, server, monkeypatch, caplog):
    register(monkeypatch, server, base_url=server.url)
    good = embed(psysc.models.load(NAME)).numpy()
    cached = cache / "models" / NAME / "model.safetensors"
    flip_bytes(cached, at=cached.stat().st_size - 100)  # inside the tensor data: still a readable file
    n = len(server.requests)
    with caplog.at_level(logging.WARNING, logger="psysc"):
        model = psysc.models.load(NAME)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(str(cached) in w and "corrupt" in w for w in warnings), warnings
    assert server.requests[n:] == [f"/{REV}/{FOLDER}/model.safetensors"]  # only the bad file again
    assert sha256(cached) == sha256(server.root / REV / FOLDER / "model.safetensors")
    assert not cached.with_name("model.safetensors.corrupt").exists()  # set aside, then deleted once replaced
    np.testing.assert_array_equal(embed(model).numpy(), good)


def test_corrupt_cached_config_is_caught_by_the_recorded_hash(cache, server, monkeypatch, caplog):
    register(monkeypatch, server, base_url=server.url)
    psysc.models.load(NAME)
    cfg = cache / "models" / NAME / "config.json"
    cfg.write_text(cfg.read_text().replace('"hidden_act": "relu"', '"hidden_act": "gelu"'))
    n = len(server.requests)
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.models.load(NAME)
    assert any(str(cfg) in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert server.requests[n:] == [f"/{REV}/{FOLDER}/config.json"]
    assert json.loads(cfg.read_text())["hidden_act"] == "relu"


def test_server_that_changes_an_unpinned_file_is_an_error(cache, server, monkeypatch):
    register(monkeypatch, server, base_url=server.url)
    psysc.models.load(NAME)
    served = server.root / REV / FOLDER / "config.json"
    served.write_text(served.read_text().replace('"relu"', '"gelu"'))
    (cache / "models" / NAME / "config.json").unlink()
    with pytest.raises(ValueError, match=r"does not match the sha256 recorded in .*psysc-sha256\.json") as err:
        psysc.models.load(NAME)
    assert not (cache / "models" / NAME / "config.json").exists()
    # the fix when the recorded hash is the wrong one: delete the record
    assert f"delete {cache / 'models' / NAME / _registry.RECORD_NAME}" in str(err.value)
    (cache / "models" / NAME / _registry.RECORD_NAME).unlink()
    assert psysc.models.load(NAME).info.sha256["config.json"] == sha256(served)


WEB_PAGE = b"<!DOCTYPE html>\n<html><body>Sign in to continue</body></html>\n"


def test_a_web_page_served_for_an_unpinned_file_is_refused_and_not_recorded(cache, server, monkeypatch):
    # a proxy's login page served with status 200 in place of config.json (which has no published sha256): it is
    # neither kept nor trusted; once the server serves the real file, that one is recorded
    register(monkeypatch, server, base_url=server.url)
    served = server.root / REV / FOLDER / "config.json"
    real = served.read_bytes()
    served.write_bytes(WEB_PAGE)
    folder = cache / "models" / NAME
    with pytest.raises(DownloadError, match=r"config\.json is a web page .*not kept and no sha256 was recorded"):
        psysc.models.load(NAME)
    assert not (folder / "config.json").exists()
    assert not (folder / _registry.RECORD_NAME).exists()
    served.write_bytes(real)
    assert psysc.models.load(NAME).info.sha256["config.json"] == sha256(served)


def test_an_unpinned_file_placed_by_hand_must_be_the_kind_of_file_its_name_says(cache, server, monkeypatch):
    register(monkeypatch, server, base_url=f"http://127.0.0.1:{closed_port()}")
    folder = cache / "models" / NAME
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes((server.root / REV / FOLDER / "model.safetensors").read_bytes())
    (folder / "config.json").write_bytes(WEB_PAGE)
    with pytest.raises(ValueError, match=r"config\.json is a web page .*its sha256 was not recorded"):
        psysc.models.load(NAME)
    assert not (folder / _registry.RECORD_NAME).exists()
    assert (folder / "config.json").read_bytes() == WEB_PAGE  # the user's file is left where it is


def test_a_bad_file_trusted_earlier_names_the_cache_folder_to_delete(cache, server, monkeypatch):
    # a record made from a bad first copy (e.g. by an earlier psysc): the error names the file and the fix
    register(monkeypatch, server, base_url=server.url)
    folder = cache / "models" / NAME
    folder.mkdir(parents=True)
    (folder / "config.json").write_bytes(WEB_PAGE)
    (folder / _registry.RECORD_NAME).write_text(json.dumps({"config.json": sha256(folder / "config.json")}))
    with pytest.raises(ValueError, match=r"config\.json is not valid JSON .*delete the folder .*" + NAME) as err:
        psysc.models.load(NAME)
    assert str(folder / "config.json") in str(err.value)


def test_file_kind_problem_reads_the_first_bytes(tmp_path):
    from safetensors.torch import save_file

    def problem(name, data):
        (tmp_path / name).write_bytes(data)
        return _registry.file_kind_problem(tmp_path / name)

    assert problem("a.json", b"") == "is empty"
    assert problem("a.pt", b"  \n<html>").startswith("is a web page")
    assert problem("a.json", b"[1, 2]") == "holds a JSON list, not a JSON object"
    assert problem("a.json", b"{\"model_type\": \"bert\"}") is None
    assert "torch.save" in problem("a.bin", b"GIF89a....")
    torch.save({"w": torch.zeros(2)}, tmp_path / "zip.pt")  # zip archive
    assert _registry.file_kind_problem(tmp_path / "zip.pt") is None
    torch.save({"w": torch.zeros(2)}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)  # pickle
    assert _registry.file_kind_problem(tmp_path / "legacy.pt") is None
    save_file({"w": torch.zeros(2)}, str(tmp_path / "w.safetensors"))
    assert _registry.file_kind_problem(tmp_path / "w.safetensors") is None
    assert "safetensors" in problem("x.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00GARBAGE")


def test_wrong_sha256_on_the_server_is_an_error_and_nothing_is_kept(cache, server, monkeypatch):
    register(monkeypatch, server, weights_sha="0" * 64, base_url=server.url)
    with pytest.raises(ValueError, match=r"does not match the sha256 pinned in psysc's registry \(0{64}\)"):
        psysc.models.load(NAME)
    assert f"/{REV}/{FOLDER}/model.safetensors" in server.requests  # it was downloaded, then refused
    assert not (cache / "models" / NAME / "model.safetensors").exists()


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_no_network_is_a_clear_error(cache, server, monkeypatch):
    url = f"http://127.0.0.1:{closed_port()}"
    register(monkeypatch, server, base_url=url)
    with pytest.raises(DownloadError) as err:
        psysc.models.load(NAME)
    msg = str(err.value)
    assert f"{url}/{REV}/{FOLDER}/config.json" in msg
    assert str(cache / "models" / NAME / "config.json") in msg
    assert "place it at" in msg and "psysc.models.load('/path/to/" in msg and "PSYSC_MODEL_BASE_URL" in msg


def test_missing_file_on_the_server_is_a_clear_error(cache, server, monkeypatch):
    register(monkeypatch, server, base_url=server.url)
    (server.root / REV / FOLDER / "model.safetensors").rename(server.root / "elsewhere")
    with pytest.raises(DownloadError, match=r"could not download .*model\.safetensors.*404"):
        psysc.models.load(NAME)


def test_files_placed_by_hand_are_verified_and_used_offline(cache, server, monkeypatch, caplog):
    entry = register(monkeypatch, server, base_url=f"http://127.0.0.1:{closed_port()}")
    folder = cache / "models" / NAME
    folder.mkdir(parents=True)
    src = server.root / REV / FOLDER
    for f in ("config.json", "model.safetensors"):
        (folder / f).write_bytes((src / f).read_bytes())
    model = psysc.models.load(NAME)
    assert server.requests == []
    assert model.info.sha256["model.safetensors"] == entry.weights.sha256
    # a hand-placed file with other bytes than the pinned hash is not used
    flip_bytes(folder / "model.safetensors")
    with caplog.at_level(logging.WARNING, logger="psysc"), pytest.raises(DownloadError) as err:
        psysc.models.load(NAME)
    assert any("corrupt" in r.getMessage() for r in caplog.records)
    assert not (folder / "model.safetensors").exists()
    # offline, the copy that did not match is set aside, not deleted, and the error says where
    assert (folder / "model.safetensors.corrupt").exists()
    assert str(folder / "model.safetensors.corrupt") in str(err.value)
    # a good copy placed by hand: used, and the copy set aside is deleted
    (folder / "model.safetensors").write_bytes((src / "model.safetensors").read_bytes())
    psysc.models.load(NAME)
    assert not (folder / "model.safetensors.corrupt").exists()


def test_a_wrong_first_copy_can_be_replaced_offline_by_deleting_the_record(cache, server, monkeypatch, caplog):
    # config.json has no published sha256: a first copy that was valid JSON but not the official file is recorded;
    # offline, the official copy placed later does not match that record, and the error says how to fix it
    register(monkeypatch, server, base_url=f"http://127.0.0.1:{closed_port()}")
    folder = cache / "models" / NAME
    folder.mkdir(parents=True)
    src = server.root / REV / FOLDER
    (folder / "model.safetensors").write_bytes((src / "model.safetensors").read_bytes())
    official = json.loads((src / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**official, "hidden_act": "gelu"}))
    psysc.models.load(NAME)  # the wrong first copy: recorded
    (folder / "config.json").write_bytes((src / "config.json").read_bytes())
    with caplog.at_level(logging.WARNING, logger="psysc"), pytest.raises(DownloadError) as err:
        psysc.models.load(NAME)
    assert "recorded at its first use" in caplog.text
    msg = str(err.value)
    assert f"delete {_registry.RECORD_NAME}" in msg and str(folder / _registry.RECORD_NAME) in msg
    # following the message: the record deleted and the official copy placed again, it loads and is recorded
    (folder / _registry.RECORD_NAME).unlink()
    (folder / "config.json.corrupt").rename(folder / "config.json")
    assert psysc.models.load(NAME).info.sha256["config.json"] == sha256(src / "config.json")


def test_offline_error_names_every_missing_file(cache, server, monkeypatch):
    register(monkeypatch, server, base_url=f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(DownloadError, match=r"config\.json.*also needs model\.safetensors, not in .* either") as err:
        psysc.models.load(NAME)
    assert "psysc run --model /path/to/" in str(err.value)


def test_cache_hint_names_the_model_folder_also_through_links(cache, tmp_path):
    elsewhere = tmp_path / "big_disk" / "gf"
    elsewhere.mkdir(parents=True)
    (elsewhere / "config.json").write_text("{")
    (cache / "models").mkdir(parents=True, exist_ok=True)
    (cache / "models" / "gf").symlink_to(elsewhere, target_is_directory=True)  # a model folder on another disk
    hint = _registry.cache_hint(cache / "models" / "gf" / "config.json")
    assert f"delete the folder {cache / 'models' / 'gf'} " in hint
    assert _registry.cache_hint(tmp_path / "mine" / "config.json") == ""  # not in the cache: no hint


# -- safe loading ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("payload", [RunsCommand, WritesFile])
@pytest.mark.parametrize("container", ["raw-pickle", "raw-pickle-protocol-2", "torch-zip"])
def test_malicious_pytorch_model_bin_is_refused_and_never_run(tmp_path, payload, container):
    # the payload is live: a plain unpickle runs it
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(payload(probe)))
    assert probe.exists()

    marker = tmp_path / "pwned"
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(CONFIG))
    if container.startswith("raw-pickle"):
        protocol = 2 if container.endswith("2") else pickle.DEFAULT_PROTOCOL
        (folder / "pytorch_model.bin").write_bytes(pickle.dumps(payload(marker), protocol=protocol))
    else:  # what torch.save writes: a zip with data.pkl inside
        torch.save({"bert.embeddings.word_embeddings.weight": payload(marker)}, folder / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"refusing to load .*pytorch_model\.bin.*never unpickles"):
        psysc.models.load(folder)
    assert not marker.exists()


def test_plain_pytorch_model_bin_loads(tmp_path):
    src = make_checkpoint(tmp_path / "st")
    from safetensors.torch import load_file

    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "config.json").write_text((src / "config.json").read_text())
    torch.save(load_file(str(src / "model.safetensors")), folder / "pytorch_model.bin")
    np.testing.assert_array_equal(embed(psysc.models.load(folder)).numpy(), embed(psysc.models.load(src)).numpy())


def test_importing_psysc_models_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, psysc, psysc.models; psysc.models.available(); "
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
