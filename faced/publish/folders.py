"""Make PEOPLE_DIR match a plan, one folder at a time, atomically, touching only faced's files.

Each folder is built aside in PEOPLE_DIR/.faced-staging and swapped into place with
renameat2(RENAME_EXCHANGE), so a reader (a file manager, Samba, a photo frame) sees the old
folder or the new one, never half of one. Where the kernel or filesystem cannot exchange, the
old folder is renamed away first: the name is briefly missing, but still never half-built.

faced owns, inside a person folder: the symlinks, montage.jpg and the hidden marker file that
says which person the folder is. Anything else a user puts there is carried over to the new
folder, and a folder with foreign files is never deleted.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from imutils import build_montages

from faced.publish.layout import FolderPlan
from faced.publish.observe import MARKER, MONTAGE, STAGING, SeenFolder, read_marker

log = logging.getLogger(__name__)

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


class Publisher:
    """Applies plans to one PEOPLE_DIR. `thumbs` returns JPEG crops for face ids."""

    def __init__(
        self, people_dir: Path, thumbs: Callable[[list[int]], dict[int, bytes]], tile: int
    ) -> None:
        self.root = people_dir
        self.staging = people_dir / STAGING
        self.thumbs = thumbs
        self.tile = tile

    def apply(
        self,
        plans: list[FolderPlan],
        published: dict[int, tuple[str, str]],
        seen: dict[int, SeenFolder],
    ) -> dict[int, tuple[str, str]]:
        """Bring every planned folder up to date and drop faced folders no longer planned.

        `published` is what was applied last time (person id -> (folder, signature)); the
        return value is the same for now. A folder whose signature and name are unchanged
        and that is still on disk is left alone.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        self._clear_staging()
        planned = {p.person_id for p in plans}
        for person_id, folder in seen.items():
            if person_id not in planned:
                self._remove_ours(self.root / folder.folder)
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
            if self._write(plan, current):
                result[plan.person_id] = (plan.folder, sig)
        with contextlib.suppress(OSError):
            self.staging.rmdir()
        return result

    def _clear_staging(self) -> None:
        """Remove what an interrupted run left in the staging area (only faced writes there)."""
        if self.staging.exists():
            shutil.rmtree(self.staging, ignore_errors=True)
        self.staging.mkdir(exist_ok=True)

    def _write(self, plan: FolderPlan, current: SeenFolder | None) -> bool:
        target = self.root / plan.folder
        if target.exists() or target.is_symlink():
            owner = read_marker(target) if target.is_dir() and not target.is_symlink() else None
            if owner != plan.person_id:
                log.warning(
                    "%s exists and is not faced's folder for this person; left alone", target
                )
                return False
        build = self.staging / f"{plan.person_id}-{uuid.uuid4().hex[:8]}"
        build.mkdir()
        self._fill(build, plan, target)
        old = self.root / current.folder if current else None
        if old is not None and old != target:
            self._carry_foreign(old, build)
        if target.exists():
            self._carry_foreign(target, build)
            try:
                exchange(build, target)
            except OSError:
                aside = self.staging / f"old-{uuid.uuid4().hex[:8]}"
                target.rename(aside)
                build.rename(target)
                build = aside
            self._remove_ours(build)
        else:
            build.rename(target)
        if old is not None and old != target:
            self._remove_ours(old)
        log.debug("published %s (%d photos)", plan.folder, len(plan.links))
        return True

    def _fill(self, build: Path, plan: FolderPlan, final: Path) -> None:
        base = os.path.realpath(os.fsencode(final))
        for name, image_id in plan.links.items():
            dest = os.path.realpath(plan.targets[image_id])
            os.symlink(os.path.relpath(dest, base), os.path.join(os.fsencode(build), name))
        if plan.montage_faces:
            self._montage(build / MONTAGE, list(plan.montage_faces))
        # The marker is written last: a folder with a marker is complete.
        (build / MARKER).write_text(f"{plan.person_id}\n", encoding="ascii")

    def _montage(self, path: Path, face_ids: list[int]) -> None:
        crops = self.thumbs(face_ids)
        images = []
        for fid in face_ids:
            if fid in crops:
                img = cv2.imdecode(np.frombuffer(crops[fid], np.uint8), cv2.IMREAD_COLOR)
                if img is not None:
                    images.append(img)
        if not images:
            return
        cols = min(5, len(images))
        rows = min(5, -(-len(images) // cols))
        montage = build_montages(images, (self.tile, self.tile), (cols, rows))[0]
        ok, data = cv2.imencode(".jpg", montage, [cv2.IMWRITE_JPEG_QUALITY, 88])
        if ok:
            path.write_bytes(data.tobytes())

    @staticmethod
    def _carry_foreign(old: Path, build: Path) -> None:
        """Move files a user put into a faced folder over to its replacement."""
        try:
            entries = list(os.scandir(old))
        except OSError:
            return
        for e in entries:
            if e.is_symlink() or e.name in (MONTAGE, MARKER):
                continue
            dest = build / e.name
            if not dest.exists():
                with contextlib.suppress(OSError):
                    os.rename(e.path, dest)

    @staticmethod
    def _remove_ours(folder: Path) -> None:
        """Delete faced's files in `folder` and the folder if nothing else is left in it."""
        if read_marker(folder) is None and folder.parent.name != STAGING:
            return
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        for e in entries:
            if e.is_symlink() or e.name in (MONTAGE, MARKER):
                with contextlib.suppress(OSError):
                    os.unlink(e.path)
        try:
            folder.rmdir()
        except OSError:
            log.warning("%s still holds files faced did not create; left in place", folder)
