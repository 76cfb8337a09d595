"""What the daemon checks every few seconds: observer health, the user's edits, the status."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from faced.pipeline.edits import EditWatch
from faced.publish.observe import Surveyor
from faced.service.watch import Watcher
from faced.store import MetaKey, Store

HOUSEKEEPING_SECONDS = 5.0


class Housekeeping:
    """One round of checks; `due(now)` says when the next round is."""

    def __init__(
        self,
        watcher: Watcher,
        store: Store,
        survey: Surveyor,
        *,
        reconcile: Callable[[list[Path]], None],
        edited: Callable[[], None],
        status: Callable[[], None],
    ) -> None:
        """`reconcile(folders)` rescans restarted watches; `edited()` is called for a user
        edit (a `faced name`/`merge`/`reject`, a renamed folder, a deleted link);
        `status()` reports the status line."""
        self.watcher = watcher
        self.store = store
        self.edit_watch = EditWatch(store, survey)
        self.reconcile = reconcile
        self.edited = edited
        self.status = status
        self.edits_seen = store.meta.get(MetaKey.EDITED)
        self.next_round = float("-inf")

    def due(self, now: float) -> bool:
        return now >= self.next_round

    def run(self, now: float) -> None:
        """Restart dead observers (and rescan their folders), notice edits, report status."""
        self.next_round = now + HOUSEKEEPING_SECONDS
        restarted = self.watcher.check()
        if restarted:
            self.reconcile(restarted)
        edited = self.store.meta.get(MetaKey.EDITED)
        if edited != self.edits_seen or self.edit_watch.edited():
            self.edits_seen = edited
            self.edited()
        self.status()
