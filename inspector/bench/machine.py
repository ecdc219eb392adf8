"""The machine a run measured: what it is, how busy and how fast it was, and a process's peak memory."""

from __future__ import annotations

import os
import platform
import resource
from pathlib import Path
from typing import Any


def peak_rss_mb(pid: int | None = None) -> float:
    """A process's own peak RSS in MB, this one's when ``pid`` is None.

    VmHWM, because ru_maxrss would carry the parent's peak across exec.
    """
    status = Path(f"/proc/{pid or 'self'}/status")
    for line in status.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024.0, 1)
    if pid is None:
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
    return float("nan")


def at_start(threads: int) -> dict[str, Any]:
    """The machine, and how busy and fast it is as the run starts."""
    from inspector import runtime

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "threads": threads,
        "python": platform.python_version(),
        # other work on the machine during the run: a busy machine depresses every figure
        "loadavg_1m_at_start": round(os.getloadavg()[0], 2),
        # and a busy host does too, unseen by the load average: how fast this machine is now
        "conv_gflops_at_start": runtime.cpu_speed(),
    }


def at_end() -> dict[str, Any]:
    """How busy and fast the machine is as the run ends: figures taken at other speeds do not compare."""
    from inspector import runtime

    return {"loadavg_1m_at_end": round(os.getloadavg()[0], 2), "conv_gflops_at_end": runtime.cpu_speed()}
