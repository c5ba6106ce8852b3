"""The machine a benchmark ran on: the tag in the result file names, the GPU's name when one was used, and the
peak memory of the process that measured.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess


def status_bytes(field: str) -> int | None:
    """A memory field of ``/proc/self/status`` (``"VmRSS"``, ``"VmHWM"``, ...) in bytes; ``None`` off Linux."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_rss_bytes() -> int:
    """The peak resident set size of this process so far, in bytes.

    On Linux ``VmHWM`` of ``/proc/self/status``: the high-water mark of this program's own memory.
    ``getrusage(RUSAGE_SELF).ru_maxrss`` is not that: Linux carries it over from the parent through ``fork`` and
    ``exec``, so a worker started by a parent that once held 2.4 GB reports at least 2.4 GB whatever it used. Other
    systems: ``ru_maxrss`` (KiB on Linux and BSD, bytes on macOS).
    """
    peak = status_bytes("VmHWM")
    if peak is not None:
        return peak
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def n_cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover - not Linux
        pass
    return platform.processor() or platform.machine() or "unknown"


def gpu_name(device: str) -> str | None:
    """Name of the CUDA device that ``device`` (``"cuda"``, ``"cuda:1"``) selects; None for a CPU device.

    Read from ``nvidia-smi`` when it is there (no CUDA context in the calling process), else from torch.
    """
    if not str(device).startswith("cuda"):
        return None
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30, check=True).stdout.splitlines()
        names = [x.strip() for x in out if x.strip()]
        if index < len(names):
            return names[index]
    except (OSError, subprocess.SubprocessError):
        pass
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r}, but neither nvidia-smi nor torch sees a CUDA device; use --device cpu")
    return torch.cuda.get_device_name(index)


def machine_tag(device: str = "cpu") -> str:
    """``cpu-<cores>core``, or ``gpu-<name>`` (e.g. ``gpu-nvidia-h100-80gb-hbm3``) for a CUDA device."""
    name = gpu_name(device)
    if name is None:
        return f"cpu-{n_cores()}core"
    return "gpu-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
