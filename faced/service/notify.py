"""systemd's notify protocol (sd_notify(3)): READY, STATUS, WATCHDOG, RELOADING, STOPPING.

Uses systemd-python (`faced[systemd]`) when it is installed, otherwise writes the datagram to
$NOTIFY_SOCKET itself; outside systemd (no NOTIFY_SOCKET) every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


def _fallback_sender() -> Callable[[str], bool] | None:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return None
    if address.startswith("@"):  # abstract socket namespace
        address = "\0" + address[1:]

    def send(message: str) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(address)
                sock.sendall(message.encode("utf-8"))
            return True
        except OSError as exc:
            log.debug("sd_notify failed: %s", exc)
            return False

    return send


def _systemd_sender() -> Callable[[str], bool] | None:
    if not os.environ.get("NOTIFY_SOCKET"):
        return None
    try:
        from systemd import daemon  # type: ignore[attr-defined,unused-ignore]  # optional extra
    except ImportError:
        return None

    def send(message: str) -> bool:
        return bool(daemon.notify(message))

    return send


class Notifier:
    """Talks to the service manager, if there is one."""

    def __init__(self) -> None:
        self._send = _systemd_sender() or _fallback_sender()
        self.enabled = self._send is not None
        self.watchdog_seconds = self._watchdog_interval()

    @staticmethod
    def _watchdog_interval() -> float | None:
        """Half of WatchdogSec=, as sd_watchdog_enabled(3) advises; None if not asked for."""
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if not usec or (pid and pid != str(os.getpid())):
            return None
        try:
            return int(usec) / 1e6 / 2
        except ValueError:
            return None

    def notify(self, *fields: str) -> None:
        """Send KEY=VALUE lines in one datagram."""
        if self._send is not None:
            self._send("\n".join(fields))

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def reloading(self) -> None:
        self.notify(
            "RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"
        )

    def stopping(self) -> None:
        self.notify("STOPPING=1", "STATUS=stopping")
