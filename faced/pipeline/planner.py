"""What a scan must do: compare the files below some folders with the store.

A file is read again only if it is new, changed (size or mtime), was found with other
detection settings, or killed its worker last time. A new path whose content is a vanished
record's is a rename, not a new photo. A watched folder that is missing, or empty where the
store holds photos, is offline (an unmounted share, an unplugged disk): nothing under it is
forgotten until it returns, `library.offline_days` pass, or the user says so.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from faced.config import Config
from faced.errors import ImageError
from faced.faces.decode import file_digest
from faced.faces.work import label_for
from faced.pipeline.discover import walk
from faced.records import MAX_CRASHES, Status, crashes, is_access_error
from faced.store import ImageRow, MetaKey, Store

log = logging.getLogger(__name__)


@dataclass
class ScanPlan:
    """What a scan must do: files to encode, records to drop, renames to apply."""

    todo: list[bytes] = field(default_factory=list)
    gone: list[bytes] = field(default_factory=list)
    moved: list[tuple[bytes, bytes]] = field(default_factory=list)
    unchanged: int = 0


class ScanPlanner:
    """Plans scans of one configuration's folders against one store."""

    def __init__(self, cfg: Config, store: Store) -> None:
        self.cfg = cfg
        self.store = store

    def label(self, path: bytes) -> str:
        """The label a record of `path` must carry (faced.faces.work.label_for)."""
        return label_for(path, self.cfg.detection, self.cfg.video)

    def needs_encoding(self, row: ImageRow | None, size: int, mtime_ns: int) -> bool:
        """True if a file with this size and mtime must be read (again)."""
        return (
            row is None
            or (row.size, row.mtime_ns) != (size, mtime_ns)
            or row.detector != self.label(row.path)
            or 0 < crashes(row.reason) < MAX_CRASHES
            or (row.status is Status.ERROR and is_access_error(row.reason))
        )

    def needs_reading(self, path: bytes, *, recorded_only: bool = False) -> bool:
        """True if the file at `path` must be read (again), as `needs_encoding` judges it from
        the file as it is now; False if it is gone. With `recorded_only`, a file the store has
        no record of is not (a file touched while still being written waits for its close)."""
        row = self.store.images.get(path)
        if recorded_only and row is None:
            return False
        try:
            st = os.stat(path)
        except OSError:
            return False  # gone again; its deletion event follows
        return self.needs_encoding(row, st.st_size, st.st_mtime_ns)

    def excluded(self) -> list[Path]:
        """Folders never scanned even when inside a watched folder: faced's own."""
        return [self.cfg.output, self.cfg.state]

    def plan(self, roots: Iterable[Path], *, forget_missing: bool = False) -> ScanPlan:
        """Compare the files below `roots` with the store. With `forget_missing`, an offline
        root's photos are forgotten at once (the user says they are gone for good)."""
        roots = list(roots)
        found = {
            p: (s, m) for p, s, m in walk(roots, self.cfg.images, self.excluded(), self.cfg.video)
        }
        prefixes = [_prefix(r) for r in roots]
        known = self.store.images.rows_under(prefixes)
        offline = OfflineRoots(self.store, self.cfg.library.offline_days)
        watched = {w.path for w in self.cfg.watch}  # only a watched root can be offline
        online = [
            x
            for r, x in zip(roots, prefixes, strict=True)
            if r not in watched or not offline.check(r, x, found, known, forget=forget_missing)
        ]
        plan = ScanPlan()
        plan.gone = [p for p in known if p not in found and any(p.startswith(x) for x in online)]
        for path, (size, mtime) in found.items():
            if self.needs_encoding(known.get(path), size, mtime):
                plan.todo.append(path)
            else:
                plan.unchanged += 1
        plan.moved = self._find_moves(plan, known, found)
        return plan

    def _find_moves(
        self, plan: ScanPlan, known: dict[bytes, ImageRow], found: dict[bytes, tuple[int, int]]
    ) -> list[tuple[bytes, bytes]]:
        """New paths whose content is a vanished record's: renames, not new photos.

        Only new files with the same size as a vanished record are hashed here, so a scan
        of new photos reads each file once (in its worker).
        """
        by_size: dict[int, list[ImageRow]] = {}
        for p in plan.gone:
            row = known[p]
            if row.digest and row.detector == self.label(row.path):
                by_size.setdefault(row.size, []).append(row)
        moves = []
        for path in plan.todo:
            candidates = by_size.get(found[path][0]) if path not in known else None
            if not candidates:
                continue
            try:
                digest = file_digest(path)[2]
            except ImageError:
                continue
            for row in candidates:
                if row.digest == digest:
                    candidates.remove(row)
                    moves.append((row.path, path))
                    break
        moved_to = {new for _, new in moves}
        moved_from = {old for old, _ in moves}
        plan.todo = [p for p in plan.todo if p not in moved_to]
        plan.gone = [p for p in plan.gone if p not in moved_from]
        return moves


def _prefix(root: Path) -> bytes:
    return os.fsencode(os.path.abspath(root)).rstrip(b"/") + b"/"


class OfflineRoots:
    """Which watched folders are offline, remembered in the store (MetaKey.OFFLINE) so that
    going offline and coming back are each logged once."""

    def __init__(self, store: Store, grace_days: float) -> None:
        self.store = store
        self.grace = grace_days * 86400

    def check(
        self,
        root: Path,
        prefix: bytes,
        found: dict[bytes, tuple[int, int]],
        known: dict[bytes, ImageRow],
        *,
        forget: bool,
    ) -> bool:
        """True if `root` is offline and its records must be kept as they are."""
        since = self.store.meta.get_json(MetaKey.OFFLINE) or {}
        key = str(root)
        held = sum(1 for p in known if p.startswith(prefix))
        empty = not any(p.startswith(prefix) for p in found)
        if not (held and empty):
            if key in since:
                log.info("%s is back online", root)
                self._save({k: v for k, v in since.items() if k != key})
            return False
        if forget:
            log.warning("%s is missing or empty: forgetting its %d photo(s), as asked", root, held)
            self._save({k: v for k, v in since.items() if k != key})
            return False
        first = float(since.get(key, time.time()))
        if key not in since:
            log.warning(
                "%s is missing or empty but held %d photo(s): treated as offline (an unmounted "
                "share or disk?); nothing is forgotten until it returns. If they are gone for "
                "good: faced scan %s --forget-missing",
                root,
                held,
                root,
            )
            self._save({**since, key: first})
        if time.time() - first >= self.grace:
            log.warning(
                "%s has been offline %.0f days: forgetting its photos", root, self.grace / 86400
            )
            self._save({k: v for k, v in since.items() if k != key})
            return False
        return True

    def _save(self, since: dict[str, float]) -> None:
        self.store.meta.set_json(MetaKey.OFFLINE, since)
