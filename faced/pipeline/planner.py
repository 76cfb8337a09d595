"""What a scan must do: compare the files below some folders with the store.

A file is read again only if it is new, changed (size or mtime), was found with other
detection settings, or killed its worker last time. A new path whose content is a vanished
record's is a rename, not a new photo.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from faced.config import Config
from faced.errors import ImageError
from faced.faces.decode import file_digest
from faced.pipeline.discover import walk
from faced.records import CRASHED
from faced.store import ImageRow, Store


@dataclass
class ScanPlan:
    """What a scan must do: files to encode, records to drop, renames to apply."""

    todo: list[bytes] = field(default_factory=list)
    gone: list[bytes] = field(default_factory=list)
    moved: list[tuple[bytes, bytes]] = field(default_factory=list)
    unchanged: int = 0


class ScanPlanner:
    """Plans scans of one configuration's folders against one store."""

    def __init__(self, cfg: Config, store: Store, label: str) -> None:
        """`label` is the detector label files must have been read with (detector_label)."""
        self.cfg = cfg
        self.store = store
        self.label = label

    def needs_encoding(self, row: ImageRow | None, size: int, mtime_ns: int) -> bool:
        """True if a file with this size and mtime must be read (again)."""
        return (
            row is None
            or (row.size, row.mtime_ns) != (size, mtime_ns)
            or row.detector != self.label
            or row.reason == CRASHED
        )

    def excluded(self) -> list[Path]:
        """Folders never scanned even when inside a watched folder: faced's own."""
        return [self.cfg.output, self.cfg.state]

    def plan(self, roots: Iterable[Path]) -> ScanPlan:
        """Compare the files below `roots` with the store."""
        roots = list(roots)
        found = {
            p: (s, m) for p, s, m in walk(roots, self.cfg.images, self.excluded(), self.cfg.video)
        }
        known = self.store.images.all()
        prefixes = [os.fsencode(os.path.abspath(r)).rstrip(b"/") + b"/" for r in roots]
        plan = ScanPlan()
        plan.gone = [p for p in known if p not in found and any(p.startswith(x) for x in prefixes)]
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
            if row.digest and row.detector == self.label:
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
