"""The user's edits in the people folder, taken into the store.

A renamed person folder names that person (renamed back to person_NNNN: the name is forgotten);
a link deleted from a folder means "that face is not this person".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from faced.publish.layout import default_folder, default_folder_id
from faced.publish.observe import folder_stamp, observe
from faced.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EditsTaken:
    """How many folders were renamed, and how many faces rejected, by the user's edits."""

    renamed: int = 0
    rejected: int = 0


def take_user_edits(store: Store, people_dir: Path) -> EditsTaken:
    """Record renamed folders as names and deleted links as rejections."""
    seen = observe(people_dir)
    published = store.published.folders()
    links = store.published.links()
    renamed = rejected = 0
    for pid, folder in seen.items():
        if pid == 0 or pid not in published:
            continue
        if folder.folder != published[pid][0]:
            name = None if default_folder_id(folder.folder) == pid else folder.folder
            store.people.set_name(pid, name)
            log.info("%s is now called %r (folder renamed)", default_folder(pid), name)
            renamed += 1
        missing = set(links.get(pid, {})) - folder.links
        if missing:
            n = store.people.reject(pid, [links[pid][name] for name in missing])
            log.info(
                "%d photo(s) removed from %s: those faces are not this person",
                len(missing),
                folder.folder,
            )
            rejected += n
    return EditsTaken(renamed, rejected)


class EditWatch:
    """Tells, cheaply, whether the user edited the people folder since the last publish.

    Links are compared only when the folder stamp moved since the last look, so an idle daemon
    does not read every link of a large library every few seconds.
    """

    def __init__(self, store: Store, people_dir: Path) -> None:
        self.store = store
        self.people_dir = people_dir
        self._stamp: tuple[object, ...] = ()

    def edited(self) -> bool:
        """True for a renamed person folder or a deleted link not yet taken in."""
        stamp = folder_stamp(self.people_dir)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        published = self.store.published.folders()
        links = self.store.published.links()
        for pid, seen in observe(self.people_dir).items():
            if pid in published and (
                seen.folder != published[pid][0] or not set(links.get(pid, {})) <= seen.links
            ):
                return True
        return False
