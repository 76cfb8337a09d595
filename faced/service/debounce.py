"""When to re-cluster: after a quiet spell, but never later than a bound under a steady stream."""

from __future__ import annotations

import math


class Debouncer:
    """Due `quiet` seconds after the last change, or `max_delay` seconds after the first change
    not yet acted on, whichever comes first. Times are the caller's clock (monotonic)."""

    def __init__(self, quiet: float, max_delay: float) -> None:
        self.quiet = quiet
        self.max_delay = max_delay
        self._first: float | None = None
        self._last = -math.inf

    @property
    def pending(self) -> bool:
        """True if a change waits to be acted on."""
        return self._first is not None

    def changed(self, now: float) -> None:
        """Something changed at `now`."""
        self._last = now
        if self._first is None:
            self._first = now

    def urgent(self, now: float) -> None:
        """Something changed that must be acted on at once (a user's edit)."""
        self.changed(now)
        self._last = -math.inf

    def due(self, now: float) -> bool:
        """True if the caller should act now."""
        if self._first is None:
            return False
        return now - self._last >= self.quiet or now - self._first >= self.max_delay

    def fired(self) -> None:
        """The caller acted: changes from now on start a new wait."""
        self._first = None
