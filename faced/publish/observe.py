"""Reading PEOPLE_DIR back: which faced folder is whose, and what the user changed.

A folder is faced's when it holds the hidden marker naming its person, so a renamed folder is
still recognised; a deleted link is a user's correction.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MARKER = ".faced-person"
STAGING = ".faced-staging"
MONTAGE = "montage.jpg"


@dataclass(frozen=True)
class SeenFolder:
    """A faced folder found in PEOPLE_DIR: whose it is, its current name, the links it holds."""

    person_id: int
    folder: str
    links: frozenset[bytes]


def observe(people_dir: Path) -> dict[int, SeenFolder]:
    """The faced folders in PEOPLE_DIR by person id, found by their marker (so renames show)."""
    found: dict[int, SeenFolder] = {}
    try:
        entries = list(os.scandir(people_dir))
    except FileNotFoundError:
        return found
    for entry in sorted(entries, key=lambda e: e.name):
        if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
            continue
        person_id = read_marker(Path(entry.path))
        if person_id is None:
            continue
        if person_id in found:
            log.warning(
                "two folders claim the same person: %r and %r; using the first",
                found[person_id].folder,
                entry.name,
            )
            continue
        links = frozenset(os.fsencode(e.name) for e in os.scandir(entry.path) if e.is_symlink())
        found[person_id] = SeenFolder(person_id, entry.name, links)
    return found


def folder_stamp(people_dir: Path) -> tuple[object, ...]:
    """A cheap fingerprint of PEOPLE_DIR: its mtime and each folder's name and mtime.

    Deleting a link changes its folder's mtime; renaming a folder changes PEOPLE_DIR's. So an
    unchanged stamp means no user edit, without reading every link (O(folders), not O(links)).
    """
    try:
        own = people_dir.stat().st_mtime_ns
        entries = sorted(
            (e.name, e.stat(follow_symlinks=False).st_mtime_ns)
            for e in os.scandir(people_dir)
            if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)
        )
    except OSError:
        return ()
    return (own, *entries)


def read_marker(folder: Path) -> int | None:
    """The person id recorded in a folder's marker, or None if it is not a faced folder."""
    try:
        text = (folder / MARKER).read_text(encoding="ascii").strip()
        return int(text.split()[0])
    except (OSError, ValueError, IndexError, UnicodeDecodeError):
        return None
