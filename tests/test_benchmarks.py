"""Helpers of the benchmark scripts (``benchmarks/``) that their published figures rest on."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _machine():
    spec = importlib.util.spec_from_file_location("bench_machine", BENCHMARKS / "_machine.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the carried-over ru_maxrss is Linux's")
def test_peak_rss_of_a_worker_is_its_own():
    # a worker started by a parent that once held a large array must not report the parent's peak as its own
    # (getrusage's ru_maxrss does: Linux keeps it through fork and exec)
    machine = _machine()
    big = np.ones(400 * 2**20 // 8)  # 400 MiB, written, so resident
    parent_peak = machine.peak_rss_bytes()
    del big
    path = str(BENCHMARKS / "_machine.py")
    code = (f"import importlib.util; s = importlib.util.spec_from_file_location('m', {path!r}); "
            "m = importlib.util.module_from_spec(s); s.loader.exec_module(m); print(m.peak_rss_bytes())")
    child_peak = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert parent_peak > 400 * 2**20
    assert 0 < child_peak < parent_peak - 300 * 2**20
