"""Worker processes die with the process that started them, even after a kill -9.

Python's fork server does not always exit when its parent is killed, and its workers wait
forever on a pipe nobody writes to: each daemon crash would leak the workers' memory. On Linux,
prctl(PR_SET_PDEATHSIG) has the kernel send SIGKILL when the parent dies. `faced.faces.pool`
names this module as the fork server's preload, so importing it there arms the fork server;
workers arm themselves through `die_with_parent` as their pool initializer.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from types import FrameType

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask the kernel to kill this process when its parent exits (Linux; a no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent or parent == 1:  # the parent died before we asked
        os._exit(1)


def _imported_by_fork_server() -> bool:
    """True when the import comes from multiprocessing.forkserver.main (its preload)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "main" and code.co_filename.endswith("forkserver.py"):
            return True
        frame = frame.f_back
    return False


if _imported_by_fork_server():
    die_with_parent()
