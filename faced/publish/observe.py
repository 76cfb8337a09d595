"""Reading PEOPLE_DIR back: which faced folder is whose, what faced made in it, what the user
changed.

A folder is faced's when it holds the hidden marker naming its person and the state that
published it, so a renamed folder is still recognised. The marker also lists the links faced
made and whether it wrote the montage: everything else in the folder is the user's, whatever
its name or type, and is never touched (faced.publish.folders carries it over).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

MARKER = ".faced-person"
STAGING = ".faced-staging"
MONTAGE = "montage.jpg"


@dataclass(frozen=True)
class Marker:
    """What a person folder's marker says. `state` and `links` are None in markers written
    before faced recorded them: then every symlink in the folder counts as faced's."""

    person_id: int
    state: str | None = None
    links: frozenset[bytes] | None = None
    montage: bool = True

    def text(self) -> str:
        names = sorted(os.fsdecode(n) for n in self.links or ())
        record = {"person": self.person_id, "state": self.state, "links": names}
        return json.dumps({**record, "montage": self.montage}, ensure_ascii=True) + "\n"

    @classmethod
    def parse(cls, text: str) -> Marker | None:
        """The marker in `text`, or None if it is not one."""
        text = text.strip()
        if text.isdigit():  # the first format: the person id alone
            return cls(int(text))
        try:
            data = json.loads(text)
            links = frozenset(os.fsencode(n) for n in data["links"])
            return cls(int(data["person"]), data.get("state"), links, bool(data["montage"]))
        except (ValueError, KeyError, TypeError):
            return None

    def owns(self, name: bytes, is_symlink: bool) -> bool:
        """True if the entry `name` of this folder is one faced made."""
        if name == MARKER.encode():
            return True
        if name == MONTAGE.encode():
            return self.montage
        return is_symlink and (self.links is None or name in self.links)


@dataclass(frozen=True)
class SeenFolder:
    """A faced folder found in PEOPLE_DIR: whose it is, its current name, the links faced made
    that are still there, and the symlinks the user put there (name -> where they point)."""

    person_id: int
    folder: str
    links: frozenset[bytes]
    marker: Marker
    user_links: dict[bytes, bytes] = field(default_factory=dict)
    user_names: frozenset[bytes] = frozenset()  # every entry of the user's, links included

    @property
    def hidden(self) -> bool:
        """Renamed to a hidden name: the user hid it."""
        return self.folder.startswith(".")


def read_marker(folder: Path) -> Marker | None:
    """The marker of `folder`, or None if it is not a faced folder."""
    try:
        return Marker.parse((folder / MARKER).read_text(encoding="ascii"))
    except (OSError, UnicodeDecodeError):
        return None


def write_marker(folder: Path, marker: Marker) -> None:
    """Write `marker` into `folder`, atomically."""
    tmp = folder / f"{MARKER}.tmp"
    tmp.write_text(marker.text(), encoding="ascii")
    os.replace(tmp, folder / MARKER)


def _folders(people_dir: Path) -> list[os.DirEntry[str]]:
    try:
        entries = list(os.scandir(people_dir))
    except OSError:
        return []
    return sorted(
        (e for e in entries if e.name != STAGING and e.is_dir(follow_symlinks=False)),
        key=lambda e: e.name,
    )


def _seen(entry: os.DirEntry[str], marker: Marker) -> SeenFolder:
    links, user_links, user_names = set(), {}, set()
    for e in os.scandir(entry.path):
        name = os.fsencode(e.name)
        link = e.is_symlink()
        if marker.owns(name, link):
            if link:
                links.add(name)
            continue
        user_names.add(name)
        if link:
            user_links[name] = os.fsencode(os.path.realpath(e.path))
    return SeenFolder(
        marker.person_id, entry.name, frozenset(links), marker, user_links, frozenset(user_names)
    )


@dataclass(frozen=True)
class Survey:
    """PEOPLE_DIR's folders in one pass, by whose they are."""

    ours: dict[int, SeenFolder]  # `state`'s (or an old marker without a state), by person id
    others: list[SeenFolder]  # faced folders another state published (a lost one's, say)
    user_folders: frozenset[str]  # visible folders without a marker: the user's own


def survey(people_dir: Path, state: str | None = None) -> Survey:
    """Read every folder's marker once; folders are found by marker, so renames show."""
    ours: dict[int, SeenFolder] = {}
    others: list[SeenFolder] = []
    users: set[str] = set()
    for entry in _folders(people_dir):
        marker = read_marker(Path(entry.path))
        if marker is None:
            if not entry.name.startswith("."):
                users.add(entry.name)
        elif marker.state not in (None, state):
            others.append(_seen(entry, marker))
        elif marker.person_id in ours:
            log.warning(
                "two folders claim the same person: %r and %r; using the first",
                ours[marker.person_id].folder,
                entry.name,
            )
        else:
            ours[marker.person_id] = _seen(entry, marker)
    return Survey(ours, others, frozenset(users))


def observe(people_dir: Path, state: str | None = None) -> dict[int, SeenFolder]:
    """The folders in PEOPLE_DIR that `state` published, by person id (see survey)."""
    return survey(people_dir, state).ours


def folder_stamp(people_dir: Path) -> tuple[object, ...]:
    """A cheap fingerprint of PEOPLE_DIR: its mtime and each folder's name and mtime.

    Deleting a link changes its folder's mtime; renaming a folder changes PEOPLE_DIR's. So an
    unchanged stamp means no user edit, without reading every link (O(folders), not O(links)).
    """
    try:
        own = people_dir.stat().st_mtime_ns
        entries = sorted(
            (e.name, e.stat(follow_symlinks=False).st_mtime_ns) for e in _folders(people_dir)
        )
    except OSError:
        return ()
    return (own, *entries)
