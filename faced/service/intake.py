"""Watcher events in: files to read go to the scheduler, renames and deletions to the store.

The watchers' handlers only filter and enqueue (faced.service.watch); this is where the daemon's
main thread takes the events off their bounded queue, a bounded number at a time, so results
keep flowing under a storm of events.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
from collections.abc import Callable
from pathlib import Path

from faced.pipeline.library import Library
from faced.pipeline.scheduler import EncodeScheduler
from faced.service.watch import Event, Kind

log = logging.getLogger(__name__)

SETTLE_SECONDS = 2.0  # a file seen by polling is read once unchanged for this long
BATCH = 1000  # events applied per call of `drain`


class Intake:
    """Applies events; tracks files that are maybe still being written (polling observers)."""

    def __init__(
        self,
        events: queue.Queue[Event],
        lib: Library,
        scheduler: EncodeScheduler,
        *,
        changed: Callable[[], None],
        clock: Callable[[], float],
    ) -> None:
        """`changed()` is called when the store changed; `clock` is monotonic time."""
        self.events = events
        self.lib = lib
        self.store = lib.store
        self.scheduler = scheduler
        self.changed = changed
        self.clock = clock
        self.settling: dict[bytes, tuple[tuple[int, int], float]] = {}
        self.new_dirs: dict[bytes, float] = {}  # created folders to scan, since when

    def wait(self, timeout: float) -> None:
        """Apply the next event, waiting at most `timeout` seconds for one."""
        with contextlib.suppress(queue.Empty):
            self.apply(self.events.get(timeout=timeout))

    def drain(self) -> None:
        """Apply the queued events, at most BATCH of them."""
        for _ in range(BATCH):
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return
            self.apply(event)

    def apply(self, event: Event) -> None:
        """Act on one event."""
        if event.kind is Kind.READY:
            self.settling.pop(event.path, None)
            self.scheduler.add(event.path)
        elif event.kind is Kind.TOUCHED:
            # A chmod or touch: read again if the record is out of date (an access error); a
            # file with no record yet is left to its close or move event.
            if self.lib.planner.needs_reading(event.path, recorded_only=True):
                self.scheduler.add(event.path)
        elif event.kind is Kind.SETTLING:
            self.settling.setdefault(event.path, ((-1, -1), self.clock()))
        elif event.kind is Kind.MOVED:
            self.scheduler.discard(event.path)
            if self.store.images.move(event.path, event.dest):
                log.debug("moved %s -> %s", os.fsdecode(event.path), os.fsdecode(event.dest))
                self.changed()
            else:
                self.scheduler.add(event.dest)
        elif event.kind is Kind.GONE:
            self.scheduler.discard(event.path)
            self.settling.pop(event.path, None)
            if self.store.images.forget([event.path]):
                log.info("removed %s", os.fsdecode(event.path))
                self.changed()
        elif event.kind is Kind.GONE_TREE and self._is_root(event.path):
            # A watched folder itself went (unmounted, moved away): offline, not deleted.
            self.reconcile([Path(os.fsdecode(event.path))])
        elif event.kind is Kind.GONE_TREE:
            gone = self.store.images.forget_tree(event.path)
            if gone:
                log.info("removed %d photo(s) under %s", len(gone), os.fsdecode(event.path))
                self.changed()
        elif event.kind is Kind.NEW_TREE:
            self.reconcile([Path(os.fsdecode(event.path))])
        elif event.kind is Kind.NEW_DIR:
            self.new_dirs.setdefault(event.path, self.clock())

    def _is_root(self, path: bytes) -> bool:
        return any(os.fsencode(w.path) == path.rstrip(b"/") for w in self.lib.cfg.watch)

    def reconcile(self, folders: list[Path]) -> None:
        """Compare `folders` with the store: queue what is new or changed, apply moves, forget
        what is gone (a folder moved in, a restarted watch, the periodic rescan)."""
        plan = self.lib.planner.plan(folders)
        if plan.moved or plan.gone:
            self.lib.apply_plan_bookkeeping(plan)
            self.changed()
        for path in plan.todo:
            self.scheduler.add(path)
        if plan.todo:
            log.info("%d photo(s) to read in %s", len(plan.todo), ", ".join(map(str, folders)))

    def settle(self) -> None:
        """Hand settling files whose size and mtime held still long enough to the scheduler,
        and scan created folders whose first files have had time to land."""
        now = self.clock()
        for folder, since in list(self.new_dirs.items()):
            if now - since >= SETTLE_SECONDS:
                del self.new_dirs[folder]
                if os.path.isdir(folder):
                    self.reconcile([Path(os.fsdecode(folder))])
        for path, (seen, since) in list(self.settling.items()):
            try:
                st = os.stat(path)
            except OSError:
                del self.settling[path]
                continue
            current = (st.st_size, st.st_mtime_ns)
            if current != seen:
                self.settling[path] = (current, now)
            elif now - since >= SETTLE_SECONDS:
                del self.settling[path]
                self.scheduler.add(path)
