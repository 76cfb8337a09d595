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
    Names are compared ignoring ASCII case (Samba and macOS clients do), so two photos whose
    names differ only in case are told apart too.
    """
    out: dict[bytes, int] = {}
    used = {n.encode() for n in RESERVED} | {n.lower() for n in taken}
    for image_id, path in sorted(images.items(), key=lambda kv: (kv[1], kv[0])):
        base = _base(path)
        stem, ext = os.path.splitext(base)
        name, n = base, 1
        while name.lower() in used:
            n += 1
            name = stem + f" ({n})".encode() + ext
        used.add(name.lower())
        out[name] = image_id
    return out


def _base(path: bytes) -> bytes:
    """The link name a photo asks for first: its file name, never hidden."""
    base = os.path.basename(path) or b"photo"
    if base.startswith(b"."):
        base = b"_" + base[1:]  # a hidden link would be invisible in a file manager
    return base


_NUMBERED = re.compile(rb"(?: \(\d+\))+$")


def name_family(name: bytes) -> bytes:
    """The family of a link name: lowered, with every " (n)" suffix of its stem taken off.

    Every name link_names tries for a photo ("a.jpg", "a (2).jpg", ...) is of its file name's
    family, and two names that collide (equal, ignoring case) are of one family; so link_names
    names each family alone, and a change to some photos renames only within their families.
    """
    low = name.lower()
    dot = low.rfind(b".")
    if low.startswith(b"."):
        stem, ext = os.path.splitext(low)
    else:  # os.path.splitext, without its cost (this runs for every link of a large folder)
        stem, ext = (low[:dot], low[dot:]) if dot > 0 else (low, b"")
    return _NUMBERED.sub(b"", stem) + ext if stem.endswith(b")") else stem + ext


# Folders with at least this many photos are named again family by family when they change;
# smaller ones whole (as cheap, and no index of families is kept for them).
NAME_BY_FAMILY = 1000


@dataclass
class _Named:
    """The names a folder got at the last call, and what they were given for."""

    images: dict[int, bytes]
    taken: frozenset[bytes]
    names: dict[bytes, int]
    families: dict[bytes, list[bytes]] | None = None  # family -> its names (large folders)


class LinkNamer:
    """link_names with a memory. A folder whose photos and user files are what they were at
    the last call keeps the names it got then, found by one dict comparison instead of naming
    every photo again (most folders are unchanged at each refresh of a large library); a
    large folder where a few photos came or went is named again only in the families of those
    photos (name_family); and an unchanged folder's plan keeps its signature (`signed`).

    Pure still: the names are exactly link_names' and the signatures FolderPlan's; only the
    work is saved."""

    def __init__(self) -> None:
        self._last: dict[int, _Named] = {}
        self._signed: dict[int, FolderPlan] = {}

    def names(
        self, folder: int, images: dict[int, bytes], taken: frozenset[bytes] = frozenset()
    ) -> dict[bytes, int]:
        """link_names(images, taken), for the folder of person `folder`."""
        last = self._last.get(folder)
        if last is not None and last.taken == taken:
            # The same photos are most often the very same dict (the store keeps unchanged
            # people's entries): told at once, without comparing every photo.
            if last.images is images or last.images == images:
                return last.names
            if len(images) >= NAME_BY_FAMILY and len(last.images) >= NAME_BY_FAMILY:
                out = _renamed(last, images)
                self._last[folder] = _Named(images, taken, out, last.families)
                return out
        out = link_names(images, taken)
        named = self._last[folder] = _Named(images, taken, out)
        if len(images) >= NAME_BY_FAMILY:
            named.families = _families(out)  # now, not at the first change to name
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


def _families(names: dict[bytes, int]) -> dict[bytes, list[bytes]]:
    """The names of each family (name_family) among `names`."""
    out: dict[bytes, list[bytes]] = {}
    for name in names:
        out.setdefault(name_family(name), []).append(name)
    return out


def _renamed(last: _Named, images: dict[int, bytes]) -> dict[bytes, int]:
    """link_names(images, last.taken), given the names `last` gave: only the families of the
    photos that came, went or moved are named again. Brings `last.families` up to date (it
    becomes the new call's)."""
    if last.families is None:
        last.families = _families(last.names)
    families = last.families
    # New photos and moved ones at their new path; gone photos and moved ones at their old.
    came = [(i, name_family(_base(p))) for i, p in images.items() - last.images.items()]
    went = [(i, name_family(_base(p))) for i, p in last.images.items() - images.items()]
    members: dict[bytes, set[int]] = {}
    for _, family in came + went:
        if family not in members:
            members[family] = {last.names[n] for n in families.get(family, ())}
    for image_id, family in went:
        members[family].discard(image_id)
    for image_id, family in came:
        members[family].add(image_id)
    out = dict(last.names)
    for family, ids in members.items():
        for name in families.pop(family, ()):
            del out[name]
        named = link_names({i: images[i] for i in ids}, last.taken)
        out.update(named)
        if named:
            families[family] = list(named)
    return out


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
