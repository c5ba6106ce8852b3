"""Every tutorial notebook runs from top to bottom, in quick mode, without an error."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

TUTORIALS = sorted((Path(__file__).parents[1] / "tutorials").glob("*.ipynb"))
KERNEL = "python3"


def _same_interpreter(argv0: str) -> bool:
    try:
        return Path(argv0).resolve() == Path(sys.executable).resolve() or os.path.samefile(argv0, sys.executable)
    except OSError:
        return False


@pytest.fixture
def kernel_for_this_python(tmp_path_factory, monkeypatch) -> str:
    """Make the ``python3`` kernel run the interpreter that runs the tests.

    jupyter_client finds ``python3`` in the Jupyter data paths first and falls back to ipykernel's
    built-in spec (which uses ``sys.executable``). A spec installed elsewhere on the machine can point
    at another Python without psysc; then a spec for this interpreter is written to a temporary
    directory that is put first on ``JUPYTER_PATH``.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
        argv0 = spec.argv[0]
    except NoSuchKernel:
        argv0 = ""
    if argv0 in ("python", "python3") or not _same_interpreter(argv0):
        jupyter_path = tmp_path_factory.mktemp("jupyter")
        kernel_dir = jupyter_path / "kernels" / KERNEL
        kernel_dir.mkdir(parents=True)
        spec = {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": f"Python 3 ({Path(sys.executable).parent.parent.name})",
            "language": "python",
            "metadata": {"debugger": True},
        }
        (kernel_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
        previous = [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
        monkeypatch.setenv("JUPYTER_PATH", os.pathsep.join([str(jupyter_path), *previous]))
        argv0 = KernelSpecManager().get_kernel_spec(KERNEL).argv[0]
    if not _same_interpreter(argv0):
        raise RuntimeError(f"kernel {KERNEL!r} runs {argv0!r}, not {sys.executable!r}")
    return KERNEL


def test_there_are_tutorials() -> None:
    assert TUTORIALS, "no notebooks in tutorials/"


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(path: Path, tmp_path: Path, monkeypatch, kernel_for_this_python: str) -> None:
    monkeypatch.setenv("PSYSC_TUTORIAL_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PSYSC_CACHE_DIR", str(tmp_path / "cache"))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        kernel_name=kernel_for_this_python,
        timeout=600,
        resources={"metadata": {"path": str(tmp_path)}},
        allow_errors=False,
    )
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:
        pytest.fail(f"{path.name}: a cell failed\n{err}")
