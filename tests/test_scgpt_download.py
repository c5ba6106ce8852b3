"""scGPT registry entries against a local HTTP server (127.0.0.1 only), and the safe best_model.pt loader.

A tiny scGPT checkpoint in the official layout (best_model.pt + vocab.json + args.json) is served at
``/<revision>/<folder>/<file>``, the mirror layout of the registry. Every socket the tests open is checked to be a
loopback one.
"""

import dataclasses
import json
import logging
import pickle
import socket

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pooch")

from _loopback import Server, sha256  # noqa: E402
from _payloads import RunsCommand, WritesFile  # noqa: E402

import psysc  # noqa: E402
import psysc.models  # noqa: E402
from psysc import _registry  # noqa: E402
from psysc._registry import DownloadError, RemoteFile  # noqa: E402
from psysc.models.scgpt._tokenizer import sources  # noqa: E402
from psysc.testing import random_scgpt_checkpoint  # noqa: E402

REV = "tiny-drive-folder-id"
NAME = "scgpt-brain"
FILES = ("best_model.pt", "vocab.json", "args.json")

pytestmark = pytest.mark.usefixtures("loopback_only")  # every test: loopback connections only


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return random_scgpt_checkpoint(tmp_path_factory.mktemp("tiny") / "scGPT_brain", vocab="brain", nlayers=2,
                                   embsize=16, nheads=2, seed=5)


@pytest.fixture
def server(tmp_path, tiny):
    import shutil

    folder = _registry.REGISTRY[NAME].folder
    shutil.copytree(tiny, tmp_path / "srv" / REV / folder)
    srv = Server(tmp_path / "srv")
    srv.files = tmp_path / "srv" / REV / folder
    yield srv
    srv.stop()


def register(monkeypatch, server, *, base_url, pins=None):
    """The real scgpt-brain entry, at revision REV, with the tiny folder's vocab/args hashes; weights unpinned."""
    pins = pins or {}
    files = tuple(RemoteFile(f, pins.get(f, None if f == "best_model.pt" else sha256(server.files / f)))
                  for f in FILES)
    entry = dataclasses.replace(_registry.REGISTRY[NAME], revision=REV, files=files, base_url=base_url)
    monkeypatch.setitem(_registry.REGISTRY, NAME, entry)
    return entry


@pytest.fixture(scope="module")
def cells():
    return psysc.datasets.darmanis2015()[:12].copy()


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ----------------------------------------------------------------------------------- the real entries
def test_real_scgpt_entries():
    df = psysc.models.available().set_index("name")
    assert {"scgpt-human", "scgpt-brain"} <= set(df.index)
    assert (df.loc[["scgpt-human", "scgpt-brain"], "licence"] == "MIT").all()
    assert df.loc["scgpt-human", "size_mb"] == 205.4 and np.isnan(df.loc["scgpt-brain", "size_mb"])
    shipped = sources()["files"]
    for name, model in (("scgpt-human", "human"), ("scgpt-brain", "brain")):
        e = _registry.REGISTRY[name]
        assert (e.family, e.version, e.weights.name) == ("scgpt", model, "best_model.pt")
        assert [f.name for f in e.files] == list(FILES)
        pinned = {f.name: f.sha256 for f in e.files}
        # vocab.json / args.json: the hashes of the official files that psysc ships converted
        assert pinned["vocab.json"] == shipped[f"vocab_{model}.txt.gz"]["source_sha256"]
        assert pinned["args.json"] == shipped[f"args_{model}.json"]["source_sha256"]
        assert e.url("args.json", "http://mirror/x/") == f"http://mirror/x/{e.revision}/scGPT_{model}/args.json"
    human = _registry.REGISTRY["scgpt-human"]
    assert human.weights.sha256 == "6cb5d451ab5c4b33eb673adbe4fddc61d2389df1b89b7651a9fe2e557572b922"
    assert human.url("best_model.pt") == "https://czi-scgenept-public.s3.amazonaws.com/models/pretrained/scgpt/best_model.pt"
    brain = _registry.REGISTRY["scgpt-brain"]
    assert brain.weights.sha256 is None and brain.url("best_model.pt") is None  # Google Drive only
    assert brain.manual_source == "https://drive.google.com/drive/folders/1vf1ijfQSk7rGdDGpBntR5bi5g6gNt-Gx"


def test_brain_without_a_mirror_is_a_clear_error_and_fetches_nothing(cache, monkeypatch):
    requested = []
    monkeypatch.setattr(socket.socket, "connect", lambda self, a: requested.append(a))
    with pytest.raises(DownloadError) as err:
        psysc.models.load(NAME)
    msg = str(err.value)
    assert "no direct-download URL" in msg and "drive.google.com/drive/folders/1vf1ijfQSk7rGdDGpBntR5bi5g6gNt-Gx" in msg
    assert str(cache / "models" / NAME / "best_model.pt") in msg and "PSYSC_MODEL_BASE_URL" in msg
    assert "best_model.pt + vocab.json + args.json" in msg
    assert requested == [] and not (cache / "models" / NAME / "psysc-sha256.json").exists()


# ----------------------------------------------------------------------------------- download + embed
def test_download_verify_reuse_and_embed_end_to_end(cache, server, monkeypatch, cells):
    register(monkeypatch, server, base_url=server.url)
    a = cells.copy()
    psysc.tl.embed(a, model=NAME, device="cpu")
    assert sorted(server.requests) == sorted(f"/{REV}/scGPT_brain/{f}" for f in FILES)
    folder = cache / "models" / NAME
    for f in FILES:
        assert sha256(folder / f) == sha256(server.files / f)
    record = json.loads((folder / _registry.RECORD_NAME).read_text())
    assert record == {"best_model.pt": sha256(server.files / "best_model.pt")}  # no published hash: recorded
    emb = a.obsm[f"X_{NAME}"]
    assert emb.shape == (12, 16) and not np.isnan(emb).any()
    prov = a.uns["psysc"]["embed"][f"X_{NAME}"]
    assert prov["model"] == NAME and prov["family"] == "scgpt" and prov["version"] == "brain"
    assert prov["revision"] == REV and prov["licence"] == "MIT"
    assert prov["source"] == f"{server.url}/{REV}/scGPT_brain/best_model.pt"
    assert prov["sha256"] == {f: sha256(server.files / f) for f in FILES}
    # the downloaded model is the served one
    b = cells.copy()
    psysc.tl.embed(b, model=server.files, device="cpu", key_added="local")
    np.testing.assert_array_equal(b.obsm["local"], emb)
    n = len(server.requests)
    c = cells.copy()
    psysc.tl.embed(c, model=NAME, device="cpu")  # from the cache: no request at all
    assert len(server.requests) == n
    np.testing.assert_array_equal(c.obsm[f"X_{NAME}"], emb)


def test_mirror_from_the_environment_and_corrupt_weights_fetched_again(cache, server, monkeypatch, caplog):
    register(monkeypatch, server, base_url=None)  # no default host, as the real brain entry
    monkeypatch.setenv(_registry.ENV_BASE_URL, server.url)
    psysc.models.load(NAME)
    assert len(server.requests) == 3
    monkeypatch.delenv(_registry.ENV_BASE_URL)
    cached = cache / "models" / NAME / "best_model.pt"
    data = bytearray(cached.read_bytes())
    data[-200:-190] = bytes(b ^ 0xFF for b in data[-200:-190])
    cached.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="psysc"):
        psysc.models.load(NAME, base_url=server.url + "/")  # the recorded hash catches it; fetched again
    assert any("corrupt" in r.getMessage() and str(cached) in r.getMessage() for r in caplog.records)
    assert server.requests[3:] == [f"/{REV}/scGPT_brain/best_model.pt"]
    assert sha256(cached) == sha256(server.files / "best_model.pt")


def test_wrong_pinned_sha256_is_refused_and_nothing_is_kept(cache, server, monkeypatch):
    register(monkeypatch, server, base_url=server.url, pins={"vocab.json": "0" * 64})
    with pytest.raises(ValueError, match=r"does not match the sha256 pinned in psysc's registry \(0{64}\)"):
        psysc.models.load(NAME)
    assert not (cache / "models" / NAME / "vocab.json").exists()


def test_no_network_names_the_mirror_url_and_the_cache_path(cache, server, monkeypatch):
    url = f"http://127.0.0.1:{closed_port()}"
    register(monkeypatch, server, base_url=url)
    with pytest.raises(DownloadError) as err:
        psysc.models.load(NAME)
    assert f"{url}/{REV}/scGPT_brain/" in str(err.value) and "place it at" in str(err.value)


# ----------------------------------------------------------------------------------- safe loading
@pytest.mark.parametrize("payload", [RunsCommand, WritesFile])
@pytest.mark.parametrize("container", ["raw-pickle", "torch-zip"])
def test_malicious_best_model_is_refused_and_never_run(tmp_path, tiny, payload, container):
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(payload(probe)))  # the payload is live
    assert probe.exists()
    marker = tmp_path / "pwned"
    folder = tmp_path / "evil"
    folder.mkdir()
    for f in ("vocab.json", "args.json"):
        (folder / f).write_bytes((tiny / f).read_bytes())
    if container == "raw-pickle":
        (folder / "best_model.pt").write_bytes(pickle.dumps({"encoder.embedding.weight": payload(marker)}))
    else:
        state = torch.load(tiny / "best_model.pt", weights_only=True)
        state["flag_encoder.weight"] = payload(marker)
        torch.save(state, folder / "best_model.pt")
    with pytest.raises(ValueError, match=r"(?s)refusing to load .*best_model\.pt.*never unpickles.*plain state dict"):
        psysc.models.load(folder)
    assert not marker.exists()


def test_a_pickled_module_is_refused(tmp_path, tiny):
    import shutil

    folder = tmp_path / "module"
    shutil.copytree(tiny, folder)
    torch.save(torch.nn.Linear(2, 2), folder / "best_model.pt")  # a whole object: needs full unpickling
    with pytest.raises(ValueError, match="refusing to load"):
        psysc.models.load(folder)


def test_files_placed_by_hand_are_used_offline(cache, server, monkeypatch, cells):
    register(monkeypatch, server, base_url=None)  # like the real brain entry: no host, no mirror
    folder = cache / "models" / NAME
    folder.mkdir(parents=True)
    for f in FILES:
        (folder / f).write_bytes((server.files / f).read_bytes())
    model = psysc.models.load(NAME)
    assert server.requests == []
    assert model.info.source == str(folder) and model.info.sha256["best_model.pt"] == sha256(folder / "best_model.pt")
    record = json.loads((folder / _registry.RECORD_NAME).read_text())
    assert record == {"best_model.pt": sha256(folder / "best_model.pt")}  # trusted on first use, checked later
    (folder / "args.json").write_text((folder / "args.json").read_text().replace('"nlayers": 2', '"nlayers": 1'))
    with pytest.raises(DownloadError, match="no direct-download URL"):  # pinned hash: corrupt, deleted, not fetched
        psysc.models.load(NAME)
    assert not (folder / "args.json").exists()
