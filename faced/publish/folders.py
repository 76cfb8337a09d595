"""Make PEOPLE_DIR match a plan, one folder at a time, atomically, touching only faced's files.

Each folder is built aside in PEOPLE_DIR/.faced-staging and swapped into place with
renameat2(RENAME_EXCHANGE), so a reader (a file manager, Samba, a photo frame) sees the old
folder or the new one, never half of one. Where the kernel or filesystem cannot exchange, the
old folder is renamed away first: the name is briefly missing, but still never half-built.

faced owns, inside a person folder, only what its marker lists: the symlinks it made,
montage.jpg, and the marker itself (faced.publish.observe). Everything else a user puts there,
whatever its name or type (their own symlinks included), is carried over to the new folder;
faced never deletes it, and a folder that still holds such files is never removed. Anything the
staging area holds that is not faced's (after a crash, or a folder the user renamed into it) is
moved back into view, never deleted.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
import logging
import os
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from imutils import build_montages

from faced.publish.layout import FolderPlan
from faced.publish.observe import (
    MONTAGE,
    STAGING,
    Marker,
    SeenFolder,
    read_marker,
    write_marker,
)

log = logging.getLogger(__name__)

# A folder is updated link by link unless more than half its links change (or it is this
# small): then it is built aside and swapped, so a reader sees the old folder or the new.
IN_PLACE_MIN = 8

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(a: Path, b: Path) -> None:
    """Atomically swap two directory entries; OSError where the system cannot."""
    libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available")
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


# Folders with at least this many links keep in memory where their links point (_Wrote):
# updating one in place then reads back and resolves only what changed.
KEEP_TARGETS = 1000


@dataclass(frozen=True)
class _Wrote:
    """A folder as faced last wrote it: its name, its mtime just after (ns), the plan's links
    and photos, and where each link points. While the folder's mtime is that one, nobody has
    added, removed or replaced an entry in it since (the survey finds which links are still
    there); only a link the user replaced within the same clock tick as faced's last write
    could point elsewhere, and it would stay faced's link, pointing where the user made it."""

    folder: str
    mtime_ns: int
    links: dict[bytes, int]
    targets: dict[int, bytes]
    points: dict[bytes, bytes]


class Publisher:
    """Applies plans to one PEOPLE_DIR for one state. `thumbs` returns JPEG crops by face id.

    Kept for the life of a library (it remembers where the links of large folders point, so
    that a photo joining a folder of 100,000 is one symlink, not 100,000 read back)."""

    def __init__(
        self,
        people_dir: Path,
        thumbs: Callable[[list[int]], dict[int, bytes]],
        tile: int,
        state: str,
    ) -> None:
        self.root = people_dir
        self.staging = people_dir / STAGING
        self.thumbs = thumbs
        self.tile = tile
        self.state = state
        # Where the links of each large folder point, as faced last wrote them (see _Wrote).
        self._wrote: dict[int, _Wrote] = {}
        self.wrote = 0  # folders written into or taken out by the last apply

    def apply(
        self,
        plans: list[FolderPlan],
        published: dict[int, tuple[str, str]],
        seen: dict[int, SeenFolder],
    ) -> dict[int, tuple[str, str]]:
        """Bring every planned folder up to date and take faced's files out of folders no
        longer planned.

        `published` is what was applied last time (person id -> (folder, signature)); the
        return value is the same for now. A folder whose signature and name are unchanged
        and that is still on disk is left alone.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        self.wrote = int(os.path.lexists(self.staging))  # cleared below: a write
        self._clear_staging(published)
        planned = {p.person_id for p in plans}
        for person_id, folder in seen.items():
            if person_id not in planned and not folder.hidden:
                remove_ours(self.root / folder.folder)
                self.wrote += 1
        result: dict[int, tuple[str, str]] = {}
        for plan in plans:
            sig = plan.signature()
            current = seen.get(plan.person_id)
            if (
                current
                and current.folder == plan.folder
                and published.get(plan.person_id) == (plan.folder, sig)
            ):
                result[plan.person_id] = (plan.folder, sig)
                continue
            self.wrote += 1  # tried: even a refused folder may have moved a staging entry
            points = self._write(plan, current)
            self._wrote.pop(plan.person_id, None)
            if points is not None:
                result[plan.person_id] = (plan.folder, sig)
                self._keep_written(plan, points)
        for gone in self._wrote.keys() - planned:
            del self._wrote[gone]
        with contextlib.suppress(OSError):
            self.staging.rmdir()
        return result

    def _clear_staging(self, published: dict[int, tuple[str, str]]) -> None:
        """Clean what an interrupted run left in the staging area: faced's files go, anything
        else is moved back into view. A person folder the user renamed to the staging area's
        name goes back to its published name."""
        marker = read_marker(self.staging)
        if marker is not None:
            name = published.get(marker.person_id, (f"person_{marker.person_id:04d}", ""))[0]
            dest = free_name(self.root / name)
            log.warning("%s is a person folder; renamed back to %s", self.staging, dest.name)
            os.rename(self.staging, dest)
        if not self.staging.is_dir():
            return  # made only to build a folder: a publish that changes nothing writes nothing
        for entry in list(os.scandir(self.staging)):
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                # A build interrupted before its marker holds only what faced wrote.
                remove_ours(path, Marker(0, self.state) if read_marker(path) is None else None)
                if path.exists():
                    self._rescue(path)
            else:
                self._rescue(path)

    def _write(self, plan: FolderPlan, current: SeenFolder | None) -> dict[bytes, bytes] | None:
        """Bring one folder up to date: where its links now point, or None if it was left
        alone (its name is taken by something not faced's)."""
        target = self.root / plan.folder
        old = self.root / current.folder if current else None
        if current is not None and old == target:
            points = self._update_in_place(plan, current)
            if points is not None:
                return points
        if (target.exists() or target.is_symlink()) and target != old:
            marker = read_marker(target) if target.is_dir() and not target.is_symlink() else None
            if marker is None or marker.person_id != plan.person_id:
                log.warning(
                    "%s exists and is not faced's folder for this person; left alone", target
                )
                return None
        self.staging.mkdir(exist_ok=True)
        build = self.staging / f"{plan.person_id}-{uuid.uuid4().hex[:8]}"
        build.mkdir()
        points = self._fill(build, plan, target)
        if target.exists():
            try:
                exchange(build, target)
            except OSError:
                aside = self.staging / f"old-{uuid.uuid4().hex[:8]}"
                target.rename(aside)
                build.rename(target)
                build = aside
            # `build` now holds the folder as it was: the user's files move into the new one.
            carry_user_files(build, target)
            remove_ours(build)
            if build.exists():
                self._rescue(build)
        else:
            build.rename(target)
        if old is not None and old != target:
            carry_user_files(old, target)
            remove_ours(old)
        log.debug("published %s (%d photos)", plan.folder, len(plan.links))
        return points

    def _fill(self, build: Path, plan: FolderPlan, final: Path) -> dict[bytes, bytes]:
        """Build the folder `plan` at `build`, its links pointing as from `final`; returns
        where they point."""
        points = link_targets(plan, final)
        for name, dest in points.items():
            os.symlink(dest, os.path.join(os.fsencode(build), name))
        montage = bool(plan.montage_faces) and write_montage(
            build / MONTAGE, list(plan.montage_faces), self.thumbs, self.tile
        )
        # The marker is written last: a folder with a marker is complete.
        marker = Marker(plan.person_id, self.state, frozenset(plan.links), montage)
        write_marker(build, dataclasses.replace(marker, faces=plan.montage_faces))
        return points

    def _update_in_place(self, plan: FolderPlan, current: SeenFolder) -> dict[bytes, bytes] | None:
        """Bring a folder that keeps its name up to date link by link, instead of building it
        anew and swapping: a photo joining a person of 15,000 is one symlink, not 15,000. Each
        symlink appears whole (symlink(2) is atomic); the marker lists what is on its way in
        and out meanwhile, so a crash at any point leaves nothing that reads as a user's edit,
        and the next publish finishes the job. Returns where the links now point, or None
        (nothing done) when the folder is not one this can update: an old marker, or a
        reshuffle of more than half its links, which is built and swapped whole."""
        marker = current.marker
        if marker.state != self.state or marker.links is None:
            return None
        if not marker.montage and (self.root / current.folder / MONTAGE).exists():
            return None  # a montage.jpg of the user's: the rebuild gives faced's another name
        folder = self.root / current.folder
        path = os.fsencode(folder)
        want, points = self._points(plan, current, folder)
        stale = {n for n in current.links & want.keys() if points(n) != want[n]}
        leaving = (current.links - want.keys()) | stale
        coming = (want.keys() - current.links) | stale
        if len(leaving) + len(coming) > max(IN_PLACE_MIN, len(want) // 2):
            return None
        write_marker(
            folder, dataclasses.replace(marker, links=marker.links | want.keys(), leaving=leaving)
        )
        for name in sorted(leaving):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(path, name))
        try:
            for name in sorted(coming):
                os.symlink(want[name], os.path.join(path, name))
        except FileExistsError:
            return None  # something of the user's has the name: the rebuild sorts it out
        montage = marker.montage
        if plan.montage_faces != marker.faces:
            # Drawn aside and renamed over the old one: a reader sees one montage or the other.
            self.staging.mkdir(exist_ok=True)
            drawn = self.staging / f"montage-{uuid.uuid4().hex[:8]}.jpg"
            montage = bool(plan.montage_faces) and write_montage(
                drawn, list(plan.montage_faces), self.thumbs, self.tile
            )
            if montage:
                os.replace(drawn, folder / MONTAGE)
            elif marker.montage:
                with contextlib.suppress(FileNotFoundError):
                    (folder / MONTAGE).unlink()
        done = Marker(plan.person_id, self.state, frozenset(want), montage, plan.montage_faces)
        write_marker(folder, done)
        log.debug("updated %s in place (+%d -%d)", plan.folder, len(coming), len(leaving))
        return want

    def _points(
        self, plan: FolderPlan, current: SeenFolder, folder: Path
    ) -> tuple[dict[bytes, bytes], Callable[[bytes], bytes | None]]:
        """Where each link of `plan` must point, and where a link now in the folder points.
        From what faced wrote last (`_Wrote`) while the folder is as it left it: then only
        the links of photos that came or moved are resolved, and none is read back."""
        path = os.fsencode(folder)
        kept = self._wrote.get(plan.person_id)
        try:
            mtime = os.lstat(path).st_mtime_ns
        except OSError:
            kept = None
        if kept is None or kept.folder != current.folder or kept.mtime_ns != mtime:
            return link_targets(plan, folder), lambda name: _points(path, name)
        if kept.links is plan.links and kept.targets is plan.targets:
            want = kept.points
        else:
            redo = {name for name, _ in plan.links.items() - kept.links.items()}
            moved = {i for i, _ in plan.targets.items() - kept.targets.items() if i in kept.targets}
            if moved:  # a photo renamed or moved, kept under its link name
                redo |= {name for name, i in plan.links.items() if i in moved}
            want = {n: t for n, t in kept.points.items() if n in plan.links and n not in redo}
            want.update(link_targets(plan, folder, redo))
        known = kept.points
        return want, lambda name: known[name] if name in known else _points(path, name)

    def _keep_written(self, plan: FolderPlan, points: dict[bytes, bytes]) -> None:
        """Remember where a large folder's links point (`points`) now that `plan` is on disk."""
        if len(plan.links) < KEEP_TARGETS:
            return
        try:
            mtime = os.lstat(self.root / plan.folder).st_mtime_ns
        except OSError:
            return
        self._wrote[plan.person_id] = _Wrote(plan.folder, mtime, plan.links, plan.targets, points)

    def _rescue(self, path: Path) -> None:
        """Move something that is not faced's out of the staging area, into view."""
        dest = free_name(self.root / "rescued by faced")
        log.warning("%s held files faced did not make; moved to %s", path, dest)
        os.rename(path, dest)


def link_targets(
    plan: FolderPlan, folder: Path, names: Iterable[bytes] | None = None
) -> dict[bytes, bytes]:
    """Each link of `plan` (or those of `names`) -> what it holds: the photo's path relative
    to `folder`, both with their folders' symlinks resolved. Resolved once per photo folder,
    not once per photo: a person seen in 100,000 photos from a few folders costs a few
    realpath calls."""
    base = os.path.realpath(os.fsencode(folder))
    relative: dict[bytes, bytes] = {}
    out: dict[bytes, bytes] = {}
    for name in plan.links if names is None else names:
        where, photo = os.path.split(plan.targets[plan.links[name]])
        if where not in relative:
            relative[where] = os.fsencode(os.path.relpath(os.path.realpath(where), base))
        out[name] = os.path.join(relative[where], photo)
    return out


def _points(folder: bytes, name: bytes) -> bytes | None:
    """Where the symlink `name` in `folder` points, or None if it is not there (any more)."""
    try:
        return os.readlink(os.path.join(folder, name))
    except OSError:
        return None


def write_montage(
    path: Path, face_ids: list[int], thumbs: Callable[[list[int]], dict[int, bytes]], tile: int
) -> bool:
    """A grid of the faces' crops (5 wide) as a JPEG at `path`; False if there was none."""
    crops = thumbs(face_ids)
    images = []
    for fid in face_ids:
        if fid in crops:
            img = cv2.imdecode(np.frombuffer(crops[fid], np.uint8), cv2.IMREAD_COLOR)
            if img is not None:
                images.append(img)
    if not images:
        return False
    cols = min(5, len(images))
    rows = min(5, -(-len(images) // cols))
    montage = build_montages(images, (tile, tile), (cols, rows))[0]
    ok, data = cv2.imencode(".jpg", montage, [cv2.IMWRITE_JPEG_QUALITY, 88])
    if ok:
        path.write_bytes(data.tobytes())
    return bool(ok)


def carry_user_files(old: Path, new: Path) -> None:
    """Move everything of the user's in `old` (all that its marker does not list) into
    `new`; a name faced now uses too gets a suffix, the user's file is never replaced."""
    marker = read_marker(old)
    try:
        entries = list(os.scandir(old))
    except OSError:
        return
    for e in entries:
        name = os.fsencode(e.name)
        if marker is not None and marker.owns(name, e.is_symlink()):
            continue
        dest = free_name(new / e.name)
        if dest.name != e.name:
            log.warning("%s: your %r kept as %r (the name is taken)", new, e.name, dest.name)
        try:
            os.rename(e.path, dest)
        except OSError as exc:
            log.warning("could not carry %s over to %s: %s", e.path, new, exc)


def free_name(path: Path) -> Path:
    """`path`, or the first of "name (2).ext", "name (3).ext"... that does not exist."""
    n = 1
    candidate = path
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = path.with_name(f"{path.stem} ({n}){path.suffix}")
    return candidate


def remove_ours(folder: Path, marker: Marker | None = None) -> None:
    """Delete what faced made in `folder` (as its marker, or `marker`, lists) and the
    folder itself if nothing else is left in it."""
    marker = marker or read_marker(folder)
    if marker is None:
        return
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for e in entries:
        if marker.owns(os.fsencode(e.name), e.is_symlink()):
            with contextlib.suppress(OSError):
                os.unlink(e.path)
    try:
        folder.rmdir()
    except OSError:
        if folder.parent.name != STAGING:
            log.warning("%s still holds files faced did not create; left in place", folder)
