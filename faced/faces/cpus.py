"""How many CPUs this process may use: the one probe the worker pool, a clip's threads and the
command's OpenMP setting share. Imports only `os` (the command calls it before any library
that starts threads loads)."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the platform has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)
