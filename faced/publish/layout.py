"""What the people folder should look like: pure planning, no filesystem access.

A plan is a list of folders, each a set of link names pointing at photos plus the faces for its
montage. Names are made safe here: a person's name never becomes a path outside PEOPLE_DIR.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from faced.records import FolderRule, PersonEntry

UNKNOWN_ID = 0
MAX_NAME_BYTES = 120  # well under NAME_MAX (255) so that " (2)" style suffixes always fit
DEFAULT_NAME = re.compile(r"^person_(\d{4,})$")
RESERVED = {"montage.jpg"}


@dataclass(frozen=True)
class FolderPlan:
    """One folder of PEOPLE_DIR: `links` maps link name -> image id; targets are photo paths."""

    person_id: int
    folder: str
    links: dict[bytes, int]
    targets: dict[int, bytes]
    montage_faces: tuple[int, ...]
    signed: str | None = None  # the signature, when the planner already knows it

    def signature(self) -> str:
        """Changes whenever the folder's content would, or the record of it (each link's image
        id: a photo read again is a new image at the same path); an unchanged folder is not
        rebuilt, and its rows in the store are not rewritten."""
        if self.signed is not None:
            return self.signed
        h = hashlib.blake2b(digest_size=16)
        h.update(self.folder.encode("utf-8", "surrogateescape") + b"\0")
        for name in sorted(self.links):
            image = self.links[name]
            h.update(name + b"\0" + b"%d\0" % image + self.targets[image] + b"\0")
        h.update(repr(self.montage_faces).encode())
        return h.hexdigest()


def default_folder(person_id: int) -> str:
    """The folder of a person nobody named yet, which is also how faced names them."""
    return f"person_{person_id:04d}"


def default_folder_id(folder: str) -> int | None:
    """The person id a default folder name (person_NNNN) stands for; None for any other."""
    m = DEFAULT_NAME.match(folder)
    return int(m.group(1)) if m else None


def sanitize_name(name: str) -> str:
    """A person's name as a safe single folder name, or "" if nothing usable is left.

    No path separators, no "." or ".." or leading dot (hidden), no control characters, no
    trailing dots or spaces (Windows clients over Samba choke on them), at most MAX_NAME_BYTES.
    """
    name = unicodedata.normalize("NFC", name)
    name = "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in name)
    name = re.sub(r'[/\\:*?"<>|]', "_", name)
    name = re.sub(r"\s+", " ", name).strip().lstrip(".").rstrip(". ")
    encoded = name.encode("utf-8")
    if len(encoded) > MAX_NAME_BYTES:
        name = encoded[:MAX_NAME_BYTES].decode("utf-8", "ignore").rstrip(". ")
    if name in ("", ".", "..") or name.casefold() in RESERVED:
        return ""
    return name


def folder_names(
    people: list[PersonEntry], unknown: str, taken: frozenset[str] = frozenset()
) -> dict[int, str]:
    """A unique folder name per person: its sanitised name, else person_NNNN.

    Two people whose names collide (after sanitising, ignoring case, as Samba and macOS do) are
    told apart by their id; nobody may take the unknown folder's name, another's default name,
    or a name in `taken` (the user's own folders).
    """
    used = {unknown.casefold()} | {t.casefold() for t in taken}
    out: dict[int, str] = {}
    named = sorted(
        (p for p in people if p.name and sanitize_name(p.name)), key=lambda p: p.person_id
    )
    defaults = {default_folder(p.person_id).casefold() for p in people}
    for p in named:
        base = sanitize_name(p.name or "")
        folder = base
        if folder.casefold() in used or (
            folder.casefold() in defaults and folder.casefold() != default_folder(p.person_id)
        ):
            folder = f"{base} ({default_folder(p.person_id)})"
        used.add(folder.casefold())
        out[p.person_id] = folder
    for p in people:
        if p.person_id not in out:
            out[p.person_id] = default_folder(p.person_id)
    return out


def link_names(images: dict[int, bytes], taken: frozenset[bytes] = frozenset()) -> dict[bytes, int]:
    """Unique link names for photos, from their file names: "a.jpg", "a (2).jpg", ...; never
    a name in `taken` (the user's own files in the folder: theirs stay, faced's link moves).

    Deterministic: photos are numbered in path order, so the same set gives the same names.
    """
    out: dict[bytes, int] = {}
    used = {n.encode() for n in RESERVED} | {n.lower() for n in taken}
    for image_id, path in sorted(images.items(), key=lambda kv: (kv[1], kv[0])):
        base = os.path.basename(path) or b"photo"
        if base.startswith(b"."):
            base = b"_" + base[1:]  # a hidden link would be invisible in a file manager
        stem, ext = os.path.splitext(base)
        name, n = base, 1
        while name.lower() in used:
            n += 1
            name = stem + f" ({n})".encode() + ext
        used.add(name.lower())
        out[name] = image_id
    return out


class LinkNamer:
    """link_names with a memory: a folder whose photos and user files are what they were at
    the last call keeps the names it got then, found by one dict comparison instead of naming
    every photo again (most folders are unchanged at each refresh of a large library); and
    an unchanged folder's plan keeps its signature (`signed`).

    Pure still: the names are exactly link_names' and the signatures FolderPlan's; only the
    work is saved."""

    def __init__(self) -> None:
        self._last: dict[int, tuple[dict[int, bytes], frozenset[bytes], dict[bytes, int]]] = {}
        self._signed: dict[int, FolderPlan] = {}

    def names(
        self, folder: int, images: dict[int, bytes], taken: frozenset[bytes] = frozenset()
    ) -> dict[bytes, int]:
        """link_names(images, taken), for the folder of person `folder`."""
        last = self._last.get(folder)
        # The same photos are most often the very same dict (the store keeps unchanged
        # people's entries): told at once, without comparing every photo.
        if last is not None and last[1] == taken and (last[0] is images or last[0] == images):
            return last[2]
        out = link_names(images, taken)
        self._last[folder] = (images, taken, out)
        return out

    def signed(self, plan: FolderPlan) -> FolderPlan:
        """`plan` with its signature, reused from the last plan of its folder when that had
        the same name, the very same links and photos (names() returns the same dict for an
        unchanged folder) and the same montage."""
        last = self._signed.get(plan.person_id)
        if (
            last is not None
            and last.links is plan.links
            and (last.targets is plan.targets or last.targets == plan.targets)
            and last.folder == plan.folder
            and last.montage_faces == plan.montage_faces
        ):
            return last  # the same plan, signed already
        signed = FolderPlan(
            plan.person_id,
            plan.folder,
            plan.links,
            plan.targets,
            plan.montage_faces,
            plan.signature(),
        )
        self._signed[plan.person_id] = signed
        return signed

    def keep_only(self, folders: set[int]) -> None:
        """Forget the folders not in `folders` (people gone since)."""
        for gone in self._last.keys() - folders:
            del self._last[gone]
        for gone in self._signed.keys() - folders:
            del self._signed[gone]


def pick_montage(face_ids: tuple[int, ...], count: int) -> tuple[int, ...]:
    """Up to `count` faces spread evenly over the person's faces (oldest to newest)."""
    if len(face_ids) <= count:
        return face_ids
    step = (len(face_ids) - 1) / (count - 1) if count > 1 else 0
    return tuple(face_ids[round(i * step)] for i in range(count))


def plan_layout(
    people: list[PersonEntry],
    unknown_images: dict[int, bytes],
    *,
    rule: FolderRule,
    unknown: str,
    montage_faces: int,
    user_files: Mapping[int, frozenset[bytes]] | None = None,
    user_folders: frozenset[str] = frozenset(),
    namer: LinkNamer | None = None,
) -> list[FolderPlan]:
    """The folders PEOPLE_DIR should hold: one per person with enough faces, plus unknown.

    A person `rule` shows no folder (too few faces) has its photos listed in the unknown folder.
    `user_files` are the names of the user's own files in each person's folder, and
    `user_folders` the user's own folders in PEOPLE_DIR: faced's links and folders take
    other names. `namer` remembers link names between calls (the same plans, less work).
    """
    user_files = user_files or {}
    namer = namer or LinkNamer()
    shown = [p for p in people if rule.shows(len(p.face_ids), p.longest_track_ms)]
    small = [p for p in people if not rule.shows(len(p.face_ids), p.longest_track_ms)]
    names = folder_names(shown, unknown, user_folders)
    plans = [
        namer.signed(
            FolderPlan(
                p.person_id,
                names[p.person_id],
                namer.names(p.person_id, p.images, user_files.get(p.person_id, frozenset())),
                p.images,  # read only, as every plan's targets
                pick_montage(p.face_ids, montage_faces),
            )
        )
        for p in sorted(shown, key=lambda p: p.person_id)
    ]
    leftover = dict(unknown_images)
    for p in small:
        leftover.update(p.images)
    plans.append(
        namer.signed(
            FolderPlan(
                UNKNOWN_ID,
                unknown,
                namer.names(UNKNOWN_ID, leftover, user_files.get(UNKNOWN_ID, frozenset())),
                leftover,
                (),
            )
        )
    )
    namer.keep_only({pl.person_id for pl in plans})
    return plans
