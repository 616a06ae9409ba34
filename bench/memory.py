"""Peak memory of the current process, for the benchmarks."""

from __future__ import annotations

import platform
import resource
from pathlib import Path


def peak_rss_mb() -> float:
    """This process's own peak RSS in MB. On Linux ru_maxrss survives execve, so a child started by a big
    parent would report the parent's peak: read VmHWM (reset by exec) instead."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    per_mb = 1024 * 1024 if platform.system() == "Darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / per_mb
