"""Shared test setup: figures off-screen, the loopback-only network guard and a private model cache."""

import matplotlib
import pytest
from _loopback import allow_loopback_only

import psysc

matplotlib.use("Agg")


@pytest.fixture
def loopback_only(monkeypatch):
    """Fail the test if it tries to connect anywhere but 127.0.0.1 / ::1 (proxies disabled too)."""
    allow_loopback_only(monkeypatch)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh model cache for the test (``PSYSC_CACHE_DIR`` and ``psysc.settings.cachedir``)."""
    path = tmp_path / "cache"
    monkeypatch.setenv("PSYSC_CACHE_DIR", str(path))
    monkeypatch.setattr(psysc.settings, "cachedir", path)
    return path
