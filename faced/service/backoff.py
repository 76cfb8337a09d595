"""A part of the daemon that failed for a reason outside faced (a full disk) and waits before
it is tried again, longer each time, saying so once."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

FIRST_WAIT = 5.0
LONGEST_WAIT = 300.0


class Backoff:
    """`failed(now, why)` pauses for a wait that doubles (up to LONGEST_WAIT) at each failed
    try; `paused(now)` says whether the wait is running; `retry_due(now)` is True once when it
    ends; `worked(now)` ends the failing. One failing episode is said in two lines at most: a
    relapse within LONGEST_WAIT of recovering (a disk with room for some writes, not all)
    continues the episode, its wait doubling on, instead of starting a new one."""

    def __init__(self, recovered: str, *, level: int = logging.ERROR) -> None:
        """`recovered` is the line logged when it works again; `level` that of the failure."""
        self.recovered = recovered
        self.level = level
        self.failing = False
        self._wait = FIRST_WAIT
        self._until = float("-inf")
        self._retried = True
        self._recovered_at = float("-inf")

    def failed(self, now: float, why: object) -> None:
        """A try failed. Failures during a wait (work already under way) do not lengthen it."""
        if self.paused(now):
            return
        if self.failing or now - self._recovered_at < LONGEST_WAIT:
            self._wait = min(self._wait * 2, LONGEST_WAIT)  # the same episode goes on
            log.debug("still failing: %s", why)
        else:
            log.log(self.level, "%s", why)
            self._wait = FIRST_WAIT
        self.failing = True
        self._until = now + self._wait
        self._retried = False

    def paused(self, now: float) -> bool:
        return self.failing and now < self._until

    def retry_due(self, now: float) -> bool:
        """True once when a wait ends: the moment to try again."""
        if self.failing and not self._retried and now >= self._until:
            self._retried = True
            return True
        return False

    def worked(self, now: float) -> None:
        """A try worked. During a wait it proves nothing (a small write may fit on a full
        disk): only the retry after the wait ends the failing."""
        if self.paused(now) or not self.failing:
            return
        if now - self._recovered_at >= LONGEST_WAIT:
            log.info("%s", self.recovered)
        self.failing = False
        self._recovered_at = now
