"""The user's edits in the people folder, taken into the store.

- A person folder renamed: the person is called that (renamed back to person_NNNN: the name is
  forgotten; renamed to a hidden name: the person is hidden).
- A link deleted from a person folder: that face is not this person.
- A link to a photo moved or copied into a person folder (from unknown/ or from someone else's
  folder): that face is this person, for good.
- A whole person folder deleted: the person is hidden, never published again until
  `faced unhide`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from faced.config import Config
from faced.pipeline.rules import folder_rule
from faced.publish.layout import default_folder, default_folder_id
from faced.publish.observe import SeenFolder, Survey, Surveyor
from faced.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EditsTaken:
    """What the user's edits changed."""

    renamed: int = 0  # folders renamed: names given or forgotten
    rejected: int = 0  # faces the user said are not their person
    assigned: int = 0  # faces the user said are a person
    hidden: int = 0  # people hidden


def take_user_edits(store: Store, cfg: Config, seen: dict[int, SeenFolder]) -> EditsTaken:
    """Record what the user changed in the people folder since faced last published it;
    `seen` is what the people folder holds of this state's folders now (its survey)."""
    published = store.published.folders()
    links = store.published.links()
    renamed = rejected = hidden = 0
    assigned = _take_assignments(store, cfg.output, seen, links)
    for pid, folder in seen.items():
        if pid == 0 or pid not in published:
            continue
        if folder.hidden:
            if folder.folder != published[pid][0]:
                store.people.hide(pid)
                log.info("%s was renamed to %r: hidden", default_folder(pid), folder.folder)
                hidden += 1
            continue
        if folder.folder != published[pid][0]:
            name = None if default_folder_id(folder.folder) == pid else folder.folder
            store.people.set_name(pid, name)
            log.info("%s is now called %r (folder renamed)", default_folder(pid), name)
            renamed += 1
        missing = folder.marker.deleted(links.get(pid, {}), folder.links)
        if missing:
            n = store.people.reject(pid, [links[pid][name] for name in missing])
            if n:
                log.info(
                    "%d photo(s) removed from %s: those faces are not this person",
                    len(missing),
                    folder.folder,
                )
            rejected += n
    hidden += _take_deleted_folders(store, cfg, seen, published)
    return EditsTaken(renamed, rejected, assigned, hidden)


def _take_assignments(
    store: Store,
    people_dir: Path,
    seen: dict[int, SeenFolder],
    links: dict[int, dict[bytes, int]],
) -> int:
    """Links the user put into a person folder that point at a photo faced knows: the face
    they mean becomes that person's. The user's link is replaced by faced's own."""
    done = 0
    for pid, folder in seen.items():
        if pid == 0 or folder.hidden:
            continue
        for name, target in folder.user_links.items():
            row = store.images.get(target)
            if row is None:
                continue  # a link to something faced does not know: the user's own file
            face = _meant_face(store, row.id, pid, seen, links)
            if face is not None:
                face_id, previous = face
                store.people.assign(face_id, pid, instead_of=previous)
                log.info(
                    "%s was put into %s: that face is this person",
                    os.fsdecode(name),
                    folder.folder,
                )
                done += 1
            # Taken in: faced's own link to the photo replaces the user's at the next publish.
            os.unlink(os.path.join(os.fsencode(people_dir / folder.folder), name))
    return done


def _meant_face(
    store: Store,
    image_id: int,
    pid: int,
    seen: dict[int, SeenFolder],
    links: dict[int, dict[bytes, int]],
) -> tuple[int, int | None] | None:
    """The face of a photo the user put into person `pid`'s folder, and whose it was: one
    whose person's folder lost its link to the photo (moved from there), else one nobody has
    (from unknown/), else one of a person whose folder links it (copied). The largest first.
    None if the photo already has a face of `pid`."""
    faces = store.faces.of_image(image_id)  # (face id, person or None), largest first
    if any(owner == pid for _, owner in faces):
        return None
    moved_from = set()
    for other, made in links.items():
        names = [n for n, iid in made.items() if iid == image_id]
        if other != pid and other in seen and names and not set(names) & seen[other].links:
            moved_from.add(other)
    for face_id, owner in faces:
        if owner is not None and owner in moved_from:
            return face_id, owner
    for face_id, owner in faces:
        if owner is None:
            return face_id, None
    return faces[0] if faces else None


def _take_deleted_folders(
    store: Store, cfg: Config, seen: dict[int, SeenFolder], published: dict[int, tuple[str, str]]
) -> int:
    """Person folders that faced published and the user deleted: those people are hidden.

    Only while the people folder still holds faced folders: a people folder emptied or gone
    (a new disk, `rm -r people/*`) is rebuilt, not read as "hide everyone"."""
    missing = [pid for pid in published if pid != 0 and pid not in seen]
    if not seen or not missing:  # the usual case, known without counting anyone's faces
        return 0
    rule = folder_rule(cfg)
    expected = {p.id for p in store.people.summary() if rule.shows(p.faces, p.longest_track_ms)}
    hidden = 0
    for pid in missing:
        folder = published[pid][0]
        if pid not in expected:
            continue
        store.people.hide(pid)
        log.info(
            "the folder %s was deleted: %s is hidden (faced unhide %d shows them again)",
            folder,
            default_folder(pid),
            pid,
        )
        hidden += 1
    return hidden


class EditWatch:
    """Tells, cheaply, whether the user edited the people folder since the last publish.

    The folder is read through the Library's Surveyor (read again only when its stamp moved),
    and compared with what was published only when what it holds changed since the last look,
    so an idle daemon does not read every link of a large library every few seconds.
    """

    def __init__(self, store: Store, survey: Surveyor) -> None:
        self.store = store
        self.survey = survey
        self._last: Survey | None = None

    def edited(self) -> bool:
        """True for a renamed, hidden or deleted person folder, a deleted link, or a link the
        user put into a folder, not yet taken in."""
        found = self.survey()
        if self._last is not None and (found is self._last or found == self._last):
            return False
        self._last = found
        published = self.store.published.folders()
        links = self.store.published.links()
        seen = found.ours
        if published and not seen:
            return True  # the people folder deleted or emptied: rebuilt (not "hide everyone")
        if any(pid not in seen for pid in published if pid != 0):
            return True
        return any(
            pid in published
            and (
                f.folder != published[pid][0]
                or bool(f.marker.deleted(links.get(pid, {}), f.links))
                or bool(f.user_links)
            )
            for pid, f in seen.items()
        )
