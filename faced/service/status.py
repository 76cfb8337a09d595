"""What the daemon tells: the STATUS= line for systemd, and a progress line during imports."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from faced.records import EncodeResult

log = logging.getLogger(__name__)

PROGRESS_SECONDS = 60.0  # a progress line in the log while photos are being read


class StatusBoard:
    """Counts what the daemon read and composes its status line. `counts()` asks the store for
    its numbers; they are asked again only after something changed. One board lives as long as
    the process: a reload reopens the store (`count_from`) but keeps what was read."""

    def __init__(self, counts: Callable[[], dict[str, int]], now: float) -> None:
        self._counts_of = counts
        self._counts: dict[str, int] | None = None
        self.encoded = 0
        self.errors = 0
        self.last_error = ""
        self._progress = (now, 0)  # (when, photos read by then)

    @classmethod
    def starting(cls, now: float) -> StatusBoard:
        """A board before any store is open (the daemon's run calls `count_from`)."""
        return cls(lambda: {"faces": 0, "people": 0, "errors": 0}, now)

    def count_from(self, counts: Callable[[], dict[str, int]]) -> None:
        """The store was reopened (a reload): its numbers come from `counts` now."""
        self._counts_of = counts
        self.stale()

    def stale(self) -> None:
        """The store changed: recount for the next line."""
        self._counts = None

    def read(self, result: EncodeResult) -> None:
        """One file was read."""
        self.encoded += 1
        self.stale()
        name = os.fsdecode(os.path.basename(result.path))
        if result.is_error:
            self.errors += 1
            self.last_error = f"{name}: {result.reason}"
        elif self.last_error.startswith(f"{name}: "):
            self.last_error = ""  # the same file read fine after all (written in chunks)

    def line(self, queued: int) -> str:
        """`0 queued, 1250 read, 1310 faces, 42 people, 3 unreadable; last: ...`"""
        if self._counts is None:
            self._counts = self._counts_of()
        c = self._counts
        line = (
            f"{queued} queued, {self.encoded} read, {c['faces']} faces, "
            f"{c['people']} people, {c['errors']} unreadable"
        )
        if self.last_error:
            line += f"; last: {self.last_error}"
        return line

    def idle(self, now: float) -> None:
        """Nothing is being read: rates count from here."""
        self._progress = (now, self.encoded)

    def busy(self, now: float, queued: int) -> None:
        """Photos are being read: one log line a minute, how far and how fast."""
        since, done = self._progress
        if now - since < PROGRESS_SECONDS:
            return
        rate = (self.encoded - done) / (now - since)
        log.info("read %d photos so far (%.1f/s), %d queued", self.encoded, rate, queued)
        self._progress = (now, self.encoded)
