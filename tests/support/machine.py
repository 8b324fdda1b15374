"""One machine line and one percentile rule for every measurement (benchmark, load test)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np


def percentiles(seconds: list[float]) -> tuple[float, float]:
    """p50 and p95 in milliseconds.

    >>> percentiles([0.001] * 19 + [0.1])
    (1.0, 5.95)
    """
    a = np.asarray(seconds, dtype=np.float64) * 1000
    return round(float(np.percentile(a, 50)), 3), round(float(np.percentile(a, 95)), 3)


def machine() -> str:
    """CPU model, cores and memory, one line."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal"))
        gib = int(mem.split()[1]) / 2**20
    except (OSError, StopIteration):
        gib = 0
    return f"{cpu}, {len(os.sched_getaffinity(0))} cores, {gib:.0f} GiB, {platform.system()} {platform.release()}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (all its threads), from ``/proc/PID/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14, 15


def memory_mib(pid: int) -> tuple[float, float]:
    """``(VmRSS, VmHWM)`` of a process in MiB, from ``/proc/PID/status``."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return round(fields["VmRSS"], 1), round(fields["VmHWM"], 1)
