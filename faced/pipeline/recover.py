"""The folders say everything: what a state learns from the people folder it publishes.

- A folder faced published whose marker is missing (deleted by hand) gets it back, from the
  store's record of what was published there; a marker from before markers listed their links
  gets the list the same way. Neither is a reason to freeze or drop the folder.
- Folders a lost state published (markers naming another, vanished state, or an old marker the
  store does not know) are adopted after clustering: the person holding most of a folder's
  photos takes the folder over, its name included, and the user's files in it stay with it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from faced.publish.folders import remove_ours
from faced.publish.layout import default_folder_id
from faced.publish.observe import (
    Marker,
    SeenFolder,
    Survey,
    read_marker,
    write_marker,
)
from faced.store import Store

log = logging.getLogger(__name__)


def repair_markers(store: Store, people_dir: Path, state: str, found: Survey) -> int:
    """Give the folders this state published a complete marker again (`found`: the people
    folder's survey now). Returns how many markers were written."""
    published = store.published.folders()
    links: dict[int, dict[bytes, int]] | None = None  # read only if a marker needs writing

    def made(pid: int) -> frozenset[bytes]:
        nonlocal links
        links = store.published.links() if links is None else links
        return frozenset(links.get(pid, {}))

    ours = found.ours
    written = 0
    for pid, (folder, _) in published.items():
        seen = ours.get(pid)
        if seen is None:
            path = people_dir / folder  # only here: not a path per folder at every refresh
            if path.is_dir() and not path.is_symlink() and read_marker(path) is None:
                log.warning("%s had lost its hidden marker; re-created", path)
                write_marker(path, Marker(pid, state, made(pid)))
                written += 1
        elif seen.marker.state is None and seen.folder == folder:
            marker = Marker(pid, state, made(pid), seen.marker.montage)
            write_marker(people_dir / seen.folder, marker)
            written += 1
    return written


def foreign_folders(store: Store, found: Survey) -> list[SeenFolder]:
    """Faced folders this state did not publish (another, lost state's), in the survey `found`."""
    published = store.published.folders()
    legacy = [
        f
        for pid, f in found.ours.items()
        if f.marker.state is None and published.get(pid, ("",))[0] != f.folder
    ]
    return found.others + legacy


def adopt(store: Store, people_dir: Path, state: str, folders: list[SeenFolder]) -> int:
    """Hand each lost state's folder to the person holding most of its photos (at least
    half), who takes its name if they have none. Returns how many folders were adopted."""
    if not folders:
        return 0
    image_of = {
        os.fsdecode(os.path.realpath(path)): image_id
        for image_id, path in store.images.paths_with_faces().items()
    }
    holders: dict[int, int] = {}
    for entry in store.people.entries():
        for image_id in entry.images:
            holders.setdefault(image_id, entry.person_id)
    taken: set[int] = set()
    adopted = 0
    for folder in folders:
        path = people_dir / folder.folder
        photos = set()
        for name in folder.links:
            found = image_of.get(
                os.fsdecode(os.path.realpath(os.path.join(os.fsencode(path), name)))
            )
            if found is not None:
                photos.add(found)
        votes: dict[int, int] = {}
        for image_id in photos:
            if image_id in holders:
                votes[holders[image_id]] = votes.get(holders[image_id], 0) + 1
        best = max(sorted(votes), key=lambda p: votes[p], default=None)
        if best is None or best in taken or votes[best] * 2 < max(len(photos), 1):
            # Nobody's: faced's links go, the user's files stay (a folder of theirs now).
            remove_ours(path)
            continue
        taken.add(best)
        named = default_folder_id(folder.folder) is None and not folder.hidden
        if named and store.people.named_as(folder.folder) is None:
            store.people.set_name(best, folder.folder)
            log.info("%s: the name is back from its folder", folder.folder)
        write_marker(path, Marker(best, state, folder.links, folder.marker.montage))
        adopted += 1
    return adopted
