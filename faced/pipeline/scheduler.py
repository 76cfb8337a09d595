"""Feeding files to the worker pool: a bounded window in flight, crash isolation, never a long
block. `faced scan` (`run_all`) and the daemon (`feed`/`harvest` in its loop) share it.

A worker that dies (dlib aborting on a poisonous file) breaks the whole pool, and every file in
flight is lost with it. Those files become suspects: the pool is rebuilt and they are retried
one at a time, alone in flight, through the same non-blocking calls, so the caller's loop (and
the daemon's watchdog pings) go on meanwhile. A suspect that breaks the pool alone is the
culprit and is recorded as crashed; the others are encoded as usual.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from faced.errors import ClusterError
from faced.records import EncodeResult

log = logging.getLogger(__name__)


class Pool(Protocol):
    """What the scheduler needs of a pool (faced.faces.pool.EncoderPool, or a test's fake)."""

    def submit(self, path: bytes) -> Future[EncodeResult]: ...

    def close(self, *, wait: bool = True) -> None: ...


class EncodeScheduler:
    """Files waiting, files in flight (at most `window`), suspects after a crash."""

    def __init__(
        self,
        pool: Pool,
        *,
        window: int | Callable[[], int],
        crashed: Callable[[bytes], EncodeResult],
        slow: Callable[[bytes], bool] = lambda path: False,
        slow_at_once: int | Callable[[], int] = 1,
    ) -> None:
        """`window`: files in flight at most, or a function asked at each feed (a cluster's
        workers come and go). `crashed(path)` makes the error record of a file that killed
        its worker. `slow(path)`: a file that holds its worker for long (a clip); at most
        `slow_at_once` are in flight, so that the other workers keep reading the photos
        queued behind them."""
        self.pool = pool
        self._window = window
        self.crashed = crashed
        self.slow = slow
        self._slow_at_once = slow_at_once
        self.waiting: dict[bytes, None] = {}  # in arrival order, each path once
        self.suspects: deque[bytes] = deque()
        self.inflight: dict[Future[EncodeResult], bytes] = {}
        self._alone: bytes | None = None  # the suspect in flight by itself
        # Set by `harvest` when a cluster pool could not give results: their files wait again.
        self.failure: ClusterError | None = None

    def add(self, path: bytes) -> None:
        """Queue `path` (once, however often it is added before it is read)."""
        self.waiting[path] = None

    def discard(self, path: bytes) -> None:
        """Forget a queued file (it was deleted); a file already in flight finishes."""
        self.waiting.pop(path, None)

    @property
    def window(self) -> int:
        """Files in flight at most, right now."""
        return _now(self._window)

    @property
    def queued(self) -> int:
        """Files not yet finished: waiting, suspects and in flight."""
        return len(self.waiting) + len(self.suspects) + len(self.inflight)

    @property
    def full(self) -> bool:
        """True when no more files can be put in flight right now."""
        return len(self.inflight) >= (1 if self.suspects or self._alone else self.window)

    @property
    def can_feed(self) -> bool:
        """True when `feed` would put a file in flight."""
        return bool(self.waiting or self.suspects) and not self.full

    def feed(self, accept: Callable[[bytes], bool] = lambda path: True) -> None:
        """Put waiting files in flight while there is room; `accept(path)` may skip one (it is
        gone, or already recorded as it is). While suspects remain, one at a time, alone."""
        if self.suspects or self._alone is not None:
            if not self.inflight and self.suspects:
                path = self.suspects.popleft()
                if self._submit(path):
                    self._alone = path
            return
        window = self.window
        slow_room = _now(self._slow_at_once) - sum(
            1 for p in self.inflight.values() if self.slow(p)
        )
        held: list[bytes] = []  # slow files that must wait for a slow one to finish
        while self.waiting and len(self.inflight) < window:
            path = next(iter(self.waiting))
            del self.waiting[path]
            if self.slow(path):
                if slow_room <= 0:
                    held.append(path)
                    continue
                slow_room -= 1
            if accept(path) and not self._submit(path):
                break
        if held:  # back at the front, in their order
            self.waiting = dict.fromkeys([*held, *self.waiting])

    def use(self, pool: Pool) -> None:
        """Put files in flight on `pool` from now on (those in flight finish where they are)."""
        self.pool = pool

    def harvest(self) -> list[EncodeResult]:
        """The results of the files that finished since the last call. Never blocks.

        A file a cluster could not read (ClusterError: the scheduler went away) waits again,
        and the error is left in `failure` for the caller to act on."""
        results: list[EncodeResult] = []
        for fut in [f for f in self.inflight if f.done()]:
            path = self.inflight.pop(fut, None)
            if path is None:  # lost with a broken pool meanwhile
                continue
            try:
                results.append(fut.result())
            except ClusterError as exc:
                self.waiting[path] = None
                self.failure = self.failure or exc
                continue
            except BrokenProcessPool:
                if path == self._alone:
                    log.warning(
                        "a worker died while reading %s; recorded as an error", os.fsdecode(path)
                    )
                    results.append(self.crashed(path))
                    self._restart([])
                else:
                    self._restart([path])
                continue
            if path == self._alone:
                self._alone = None
        return results

    def wait(self, timeout: float) -> None:
        """Sleep until a file in flight finishes, at most `timeout` seconds."""
        if self.inflight:
            wait(list(self.inflight), timeout=timeout, return_when=FIRST_COMPLETED)

    def run_all(self, paths: Iterable[bytes]) -> Iterator[list[EncodeResult]]:
        """Encode `paths`, yielding the results that finished together (never an empty list),
        as they complete (not in input order): what the writer can commit at once."""
        for path in paths:
            self.add(path)
        while self.queued:
            self.feed()
            self.wait(1.0)
            if done := self.harvest():
                yield done
            if self.failure is not None:
                raise self.failure

    def _submit(self, path: bytes) -> bool:
        """Put one file in flight; False if the pool turned out broken (it was restarted)."""
        try:
            self.inflight[self.pool.submit(path)] = path
        except BrokenProcessPool:  # broke between two results
            self._restart([path])
            return False
        return True

    def _restart(self, lost: list[bytes]) -> None:
        """The pool broke: everything in flight becomes a suspect; a fresh pool follows."""
        suspects = lost + list(self.inflight.values())
        self.inflight.clear()
        self._alone = None
        self.pool.close(wait=False)
        self.suspects.extend(suspects)


def _now(count: int | Callable[[], int]) -> int:
    """A count given as a number, or asked of a function now (at least 1)."""
    return count if isinstance(count, int) else max(1, count())
