"""Package-level guarantees: light import, no reads of files outside the package."""

import pathlib
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import psysc

HEAVY = ("torch", "transformers", "lightning", "pytorch_lightning", "scvi", "muon", "mudata")


def test_import_does_not_pull_heavy_dependencies():
    code = f"import sys, psysc; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_import_changes_no_global_logging_state():
    code = "import logging; before = len(logging.getLogger().handlers); import psysc; " \
           "print(len(logging.getLogger().handlers) - before)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "0"


def test_sources_do_not_reference_the_shared_folder():
    src = pathlib.Path(psysc.__file__).parent
    for path in src.rglob("*.py"):
        assert "../shared" not in path.read_text(), path


def test_torch_kernels_equal_the_compiled_cpu_kernels():
    pytest.importorskip("torch")
    from test_scoring import random_sets, synthetic_counts

    adata = synthetic_counts(300, 1200, seed=3)
    psysc.pp.prepare_scoring(adata)
    sets = random_sets(adata, 2, size=80)
    cpu = psysc.tl.score_disorders(adata, sets, n_ctrl=60, dtype="float64", inplace=False, device="cpu")
    tor = psysc.tl.score_disorders(adata, sets, n_ctrl=60, dtype="float64", inplace=False, device="torch-cpu")
    for trait in sets:
        pd.testing.assert_frame_equal(cpu[trait], tor[trait], rtol=1e-6)
    f32 = psysc.tl.score_disorders(adata, sets, n_ctrl=60, inplace=False, device="torch-cpu")
    cpu32 = psysc.tl.score_disorders(adata, sets, n_ctrl=60, inplace=False, device="cpu")
    for trait in sets:
        np.testing.assert_allclose(f32[trait]["norm_score"], cpu[trait]["norm_score"], rtol=1e-4, atol=1e-4)
        # the disease scores are summed in float64 on both paths, whatever the precision of the control scores
        np.testing.assert_allclose(f32[trait]["raw_score"], cpu32[trait]["raw_score"], rtol=1e-12)
    # dense and sparse blocks, in blocks of 64 cells (the last one short)
    dense = adata.copy()
    layer = dense.uns["psysc"]["prepare_scoring"]["layer"]
    if layer == "X":
        dense.X = dense.X.toarray()
    else:
        dense.layers[layer] = dense.layers[layer].toarray()
    from psysc._core._blocks import ROWS_READ

    for data in (adata, dense):
        blocks = []
        token = ROWS_READ.set(blocks.append)
        try:
            small = psysc.tl.score_disorders(data, sets, n_ctrl=60, dtype="float64", inplace=False,
                                             device="torch-cpu", block_size=64)
        finally:
            ROWS_READ.reset(token)
        assert max(blocks) == 64 and sum(blocks) >= data.n_obs
        for trait in sets:
            pd.testing.assert_frame_equal(small[trait], cpu[trait], rtol=1e-6)


def test_torch_control_weights_beyond_the_device_budget_are_made_dense_block_by_block(monkeypatch):
    """Many traits: each trait's weights sparse on the device, dense one at a time; the same scores."""
    torch = pytest.importorskip("torch")
    from test_scoring import random_sets, synthetic_counts

    import psysc._core._torch as torch_mod

    adata = synthetic_counts(200, 900, seed=5)
    psysc.pp.prepare_scoring(adata)
    sets = random_sets(adata, 3, size=60)
    cpu = psysc.tl.score_disorders(adata, sets, n_ctrl=40, dtype="float64", inplace=False, device="cpu")
    made_dense = []
    to_dense = torch.Tensor.to_dense

    def counted(self, *a, **k):
        made_dense.append(tuple(self.shape))
        return to_dense(self, *a, **k)

    monkeypatch.setattr(torch.Tensor, "to_dense", counted)
    for budget, n_dense in ((2**31, 0), (0, 3 * 4)):  # all kept dense; or 3 traits x 4 blocks of 64 cells
        monkeypatch.setattr(torch_mod, "DENSE_WEIGHTS_BYTES", budget)
        made_dense.clear()
        got = psysc.tl.score_disorders(adata, sets, n_ctrl=40, dtype="float64", inplace=False, device="torch-cpu",
                                       block_size=64)
        assert len(made_dense) == n_dense and set(made_dense) <= {(900, 40)}
        for trait in sets:
            pd.testing.assert_frame_equal(got[trait], cpu[trait], rtol=1e-6)


def test_unknown_device_is_an_error():
    from test_scoring import synthetic_counts

    adata = synthetic_counts(50, 300)
    psysc.pp.prepare_scoring(adata)
    with pytest.raises(ValueError, match="device"):
        psysc.tl.score_disorders(adata, {"t": list(adata.var_names[:30])}, device="tpu")


def test_models_are_reachable_lazily_without_torch():
    code = "import sys, psysc; psysc.models.available(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_progress_bars_only_where_they_can_be_redrawn(monkeypatch):
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    old = psysc.settings.verbosity
    try:
        psysc.settings.verbosity = 2
        monkeypatch.setattr(sys, "stderr", Terminal())
        assert psysc.settings.show_progress
        monkeypatch.setattr(sys, "stderr", io.StringIO())  # a log file or a pipe
        assert not psysc.settings.show_progress
        from ipykernel.iostream import OutStream  # a notebook's stderr: tqdm.auto draws a widget

        monkeypatch.setattr(sys, "stderr", OutStream.__new__(OutStream))
        assert psysc.settings.show_progress
        monkeypatch.setattr(sys, "stderr", Terminal())
        psysc.settings.verbosity = 1
        assert not psysc.settings.show_progress
    finally:
        psysc.settings.verbosity = old


def test_verbosity_takes_scanpys_level_names():
    import logging

    old = psysc.settings.verbosity
    try:
        for name, level, logging_level in (("warning", 1, logging.WARNING), ("ERROR", 0, logging.ERROR),
                                           ("debug", 3, logging.DEBUG), ("info", 2, logging.INFO)):
            psysc.settings.verbosity = name
            assert psysc.settings.verbosity == level
            assert logging.getLogger("psysc").level == logging_level
        for bad in ("loud", 4, True):
            with pytest.raises(ValueError, match="verbosity must be"):
                psysc.settings.verbosity = bad
    finally:
        psysc.settings.verbosity = old


def test_numba_cache_falls_back_to_a_temporary_folder(monkeypatch, tmp_path):
    """Where neither the package's __pycache__ nor the user's cache folder can be written, the kernels are cached
    in a per-user temporary folder (numba would otherwise refuse to compile them); NUMBA_CACHE_DIR wins."""
    import numba

    from psysc import _core

    monkeypatch.setattr(numba.config, "CACHE_DIR", numba.config.CACHE_DIR)  # restored after the test
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    assert _core._writable(tmp_path / "new" / "dir")
    monkeypatch.setattr(_core, "_writable", lambda path: False)
    monkeypatch.setattr(_core.tempfile, "gettempdir", lambda: str(tmp_path))
    got = _core._ensure_numba_cache()
    assert got == numba.config.CACHE_DIR and got.startswith(str(tmp_path / "psysc-numba-cache-"))

    @numba.njit(cache=True)
    def plus_one(x):  # compiles and caches with only the fallback folder available
        return x + 1

    assert plus_one(1) == 2
    assert any(pathlib.Path(got).rglob("*.nbi"))  # the index of the cached kernel, in the fallback folder
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert _core._ensure_numba_cache() is None


def test_code_passes_the_linter():
    # the lint rules of pyproject.toml ([tool.ruff]) on the sources, tests, benchmarks, scripts and notebooks
    root = pathlib.Path(__file__).resolve().parents[1]
    if not (root / "pyproject.toml").exists():
        pytest.skip("not run from a source checkout")
    run = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(root)], capture_output=True,
                         text=True, cwd=root)
    assert "No module named ruff" not in run.stderr, "ruff is in the test extras: pip install '.[test]'"
    assert run.returncode == 0, run.stdout + run.stderr


def test_cachedir_expands_the_home_directory(monkeypatch, tmp_path):
    # "~/models" from a setting or a quoted environment variable is the home folder's, not ./~ under the cwd
    import os

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(psysc.settings, "cachedir", "~/models")
    assert psysc.settings.cachedir == tmp_path / "models"
    env = {**os.environ, "PSYSC_CACHE_DIR": "~/cache"}
    out = subprocess.run([sys.executable, "-c", "import psysc; print(psysc.settings.cachedir)"], env=env,
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == str(tmp_path / "cache")


def test_steps_that_read_the_data_show_the_cells_read(monkeypatch, tmp_path):
    # prepare_scoring on raw counts in a backed file: one bar, counting each pass over the cells (checks,
    # normalisation, gene statistics), and nothing counted outside the step
    import io

    import anndata as ad

    from psysc._core._blocks import ROWS_READ

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    adata = psysc.datasets.darmanis2015()[:200].copy()
    adata.write_h5ad(tmp_path / "counts.h5ad")
    backed = ad.read_h5ad(tmp_path / "counts.h5ad", backed="r")
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(psysc.settings, "verbosity", 2)
    psysc.pp.prepare_scoring(backed)
    bars = [line for line in terminal.getvalue().replace("\r", "\n").splitlines() if "prepare_scoring" in line]
    read = re.search(r"prepare_scoring \(cells read, every pass\): (\d+) cells", bars[-1]) if bars else None
    assert read and int(read.group(1)) >= 3 * 200, bars  # checks, normalisation, gene statistics: 3 passes at least
    assert ROWS_READ.get() is None
    counted = []
    token = ROWS_READ.set(counted.append)  # within an outer step's count: no second bar, the rows counted there
    try:
        psysc.pp.prepare_scoring(psysc.datasets.darmanis2015()[:200].copy())
    finally:
        ROWS_READ.reset(token)
    assert sum(counted) >= 2 * 200
