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
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

MARKER = ".faced-person"
STAGING = ".faced-staging"
MONTAGE = "montage.jpg"


_FS = sys.getfilesystemencoding()


def _decode(name: bytes) -> str:
    """os.fsdecode for bytes alone (a marker lists a folder's every link: this is faster)."""
    return name.decode(_FS, "surrogateescape")


def _encode(name: str) -> bytes:
    """os.fsencode for a str alone."""
    return name.encode(_FS, "surrogateescape")


@dataclass(frozen=True)
class Marker:
    """What a person folder's marker says. `state` and `links` are None in markers written
    before faced recorded them: then every symlink in the folder counts as faced's."""

    person_id: int
    state: str | None = None
    links: frozenset[bytes] | None = None
    montage: bool = True
    # The faces the montage shows (None: not recorded, so it is drawn again when in doubt).
    faces: tuple[int, ...] | None = None
    # Links faced is taking out of the folder in place (faced.publish.folders): while listed,
    # one that is gone is no user's rejection, and one still there is no user's link.
    leaving: frozenset[bytes] = frozenset()

    def text(self) -> str:
        names = sorted([_decode(n) for n in self.links or ()])
        record = {"person": self.person_id, "state": self.state, "links": names}
        extra: dict[str, object] = {"montage": self.montage}
        if self.faces is not None:
            extra["faces"] = list(self.faces)
        if self.leaving:
            extra["leaving"] = sorted([_decode(n) for n in self.leaving])
        return json.dumps({**record, **extra}, ensure_ascii=True) + "\n"

    @classmethod
    def parse(cls, text: str) -> Marker | None:
        """The marker in `text`, or None if it is not one."""
        text = text.strip()
        if text.isdigit():  # the first format: the person id alone
            return cls(int(text))
        try:
            data = json.loads(text)
            links = frozenset([_encode(n) for n in data["links"]])
            faces = data.get("faces")
            return cls(
                int(data["person"]),
                data.get("state"),
                links,
                bool(data["montage"]),
                tuple(int(f) for f in faces) if faces is not None else None,
                frozenset([_encode(n) for n in data.get("leaving", ())]),
            )
        except (ValueError, KeyError, TypeError):
            return None

    def owns(self, name: bytes, is_symlink: bool) -> bool:
        """True if the entry `name` of this folder is one faced made."""
        if name == MARKER.encode():
            return True
        if name == MONTAGE.encode():
            return self.montage
        return is_symlink and (self.links is None or name in self.links or name in self.leaving)

    def deleted(self, made: Iterable[bytes], present: frozenset[bytes]) -> set[bytes]:
        """Of the links faced `made` here (as the store recorded them), those the user deleted:
        listed in this marker (faced put them on disk), gone, and not on their way out."""
        if present is self.links:  # every listed link is there (the survey shares the set)
            return set()
        listed = set(made) if self.links is None else set(made) & self.links
        return listed - present - self.leaving


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
    # Names read as bytes, not os.fsencode'd one by one: a large folder is read after every
    # change to it.
    for e in os.scandir(os.fsencode(entry.path)):
        name = e.name
        link = e.is_symlink()
        if marker.owns(name, link):
            if link:
                links.add(name)
            continue
        user_names.add(name)
        if link:
            user_links[name] = os.path.realpath(e.path)
    found = frozenset(links)
    if (
        marker.links is not None and found == marker.links
    ):  # most often every listed link is there: the marker's own set
        found = marker.links
    return SeenFolder(
        marker.person_id, entry.name, found, marker, user_links, frozenset(user_names)
    )


@dataclass(frozen=True)
class Survey:
    """PEOPLE_DIR's folders in one pass, by whose they are."""

    ours: dict[int, SeenFolder]  # `state`'s (or an old marker without a state), by person id
    others: list[SeenFolder]  # faced folders another state published (a lost one's, say)
    user_folders: frozenset[str]  # visible folders without a marker: the user's own


# What one folder was found to be when read: its mtime then (ns), its marker, and what was
# seen in it (None: not a faced folder).
_Read = tuple[int, Marker | None, SeenFolder | None]


def survey(
    people_dir: Path, state: str | None = None, kept: dict[str, _Read] | None = None
) -> Survey:
    """Read every folder's marker once; folders are found by marker, so renames show.

    With `kept` (what an earlier survey read, by folder name; updated here), a folder whose
    mtime is the one it had when read, and was already RACY_SECONDS old then, is not read
    again: any entry added, removed or renamed in it (a link, the marker replaced, a user's
    file) would have moved its mtime."""
    ours: dict[int, SeenFolder] = {}
    others: list[SeenFolder] = []
    users: set[str] = set()
    fresh: dict[str, _Read] = {}
    for entry in _folders(people_dir):
        try:
            mtime = entry.stat(follow_symlinks=False).st_mtime_ns
        except OSError:
            continue
        before = kept.get(entry.name) if kept is not None else None
        if before is not None and before[0] == mtime:
            _, marker, seen = before
        else:
            marker = read_marker(Path(entry.path))
            seen = _seen(entry, marker) if marker is not None else None
        if time.time_ns() - mtime > RACY_SECONDS * 1e9:  # else read again next time
            fresh[entry.name] = (mtime, marker, seen)
        if marker is None or seen is None:
            if not entry.name.startswith("."):
                users.add(entry.name)
        elif marker.state not in (None, state):
            others.append(seen)
        elif marker.person_id in ours:
            log.warning(
                "two folders claim the same person: %r and %r; using the first",
                ours[marker.person_id].folder,
                entry.name,
            )
        else:
            ours[marker.person_id] = seen
    if kept is not None:
        kept.clear()
        kept.update(fresh)
    return Survey(ours, others, frozenset(users))


class Surveyor:
    """`survey` of one people folder, read again only when its `folder_stamp` moved: every
    write into a person folder (a link, a marker replaced, a user's file) moves that folder's
    mtime, and a folder added, removed or renamed moves the root's. A stamp with an mtime under
    RACY_SECONDS old is not trusted (a second change within the file system's clock tick would
    leave it equal), so such a survey is read again next time; and when it is, only the
    folders whose own mtime moved (or was too fresh to trust) are read again."""

    def __init__(self, people_dir: Path, state: str | None) -> None:
        self.people_dir = people_dir
        self.state = state
        self.read_at: Stamp | None = None  # the stamp the cached survey was read at, if trusted
        self._survey: Survey | None = None
        self._folders: dict[str, _Read] = {}  # each folder as last read (see survey)

    def __call__(self) -> Survey:
        stamp = folder_stamp(self.people_dir)  # taken before reading: a change meanwhile shows
        if self._survey is None or self.read_at is None or stamp != self.read_at:
            # Only the folders whose mtime moved are read again.
            self._survey = survey(self.people_dir, self.state, self._folders)
            self.read_at = stamp if _settled(stamp) else None
        return self._survey

    def stamp(self) -> Stamp | None:
        """The people folder's stamp now, or None if it is too fresh to be trusted."""
        stamp = folder_stamp(self.people_dir)
        return stamp if _settled(stamp) else None


RACY_SECONDS = 2.0


def _settled(stamp: Stamp | None) -> bool:
    """True if every mtime in `stamp` is older than RACY_SECONDS (and the folder exists)."""
    if stamp is None:
        return False
    own, folders = stamp
    newest = max([own, *(mtime for _, mtime in folders)])
    return time.time_ns() - newest > RACY_SECONDS * 1e9


# PEOPLE_DIR's mtime, and each folder's name and mtime (ns).
Stamp = tuple[int, tuple[tuple[str, int], ...]]


def folder_stamp(people_dir: Path) -> Stamp | None:
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
        return None
    return (own, tuple(entries))
