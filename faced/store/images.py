"""The images table: one row per file looked at, with what it turned out to be."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from faced.records import EncodeResult, Status
from faced.store.db import Db

_COLUMNS = "id, path, size, mtime_ns, digest, status, detector, reason"


@dataclass(frozen=True)
class ImageRow:
    """What the store knows of a file, enough to decide whether to read it again."""

    id: int
    path: bytes
    size: int
    mtime_ns: int
    digest: str | None
    status: Status
    detector: str
    reason: str | None

    @classmethod
    def of(cls, r: Any) -> ImageRow:
        """From a row of the `_COLUMNS` query."""
        return cls(r[0], bytes(r[1]), r[2], r[3], r[4], Status(r[5]), r[6], r[7])


class Images:
    """Files and what was found in them; recording a result replaces its faces."""

    def __init__(self, db: Db) -> None:
        self.db = db

    def all(self) -> dict[bytes, ImageRow]:
        """Every recorded file by path."""
        rows = self.db.conn.execute(f"SELECT {_COLUMNS} FROM images")
        return {bytes(r[1]): ImageRow.of(r) for r in rows}

    def get(self, path: bytes) -> ImageRow | None:
        """The record of one path, if any."""
        r = self.db.conn.execute(
            f"SELECT {_COLUMNS} FROM images WHERE path = ?", (path,)
        ).fetchone()
        return ImageRow.of(r) if r else None

    def record(self, result: EncodeResult) -> bool:
        """Store what a worker found for a file, replacing what was known of that path.

        Returns True if faces changed. The same content at the same path, found the same way,
        keeps its face rows (and with them people, rejections): only size and mtime move.
        """
        now = time.time()
        f = result.file
        with self.db.transaction() as c:
            old = c.execute(
                "SELECT id, digest, status, detector FROM images WHERE path = ?", (result.path,)
            ).fetchone()
            if (
                old is not None
                and f.digest is not None
                and old[1] == f.digest
                and old[2] == result.status.value
                and old[3] == result.detector
            ):
                c.execute(
                    "UPDATE images SET size = ?, mtime_ns = ?, updated = ? WHERE id = ?",
                    (f.size, f.mtime_ns, now, old[0]),
                )
                return False
            if old is not None:
                c.execute("DELETE FROM images WHERE id = ?", (old[0],))
            cur = c.execute(
                "INSERT INTO images (path, size, mtime_ns, digest, status, reason, width, height,"
                " detector, model, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    result.path,
                    f.size,
                    f.mtime_ns,
                    f.digest,
                    result.status.value,
                    result.reason,
                    result.width,
                    result.height,
                    result.detector,
                    result.model,
                    now,
                ),
            )
            image_id = cur.lastrowid
            for face in result.faces:
                fc = c.execute(
                    "INSERT INTO faces (image_id, box_top, box_right, box_bottom, box_left,"
                    " encoding, detector, model, frame_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        image_id,
                        *face.box,
                        face.encoding.astype("<f4").tobytes(),
                        result.detector,
                        result.model,
                        face.frame_ms,
                    ),
                )
                c.execute(
                    "INSERT INTO thumbs (face_id, jpeg) VALUES (?, ?)", (fc.lastrowid, face.thumb)
                )
            return bool(result.faces) or (old is not None and old[2] == Status.FACES.value)

    def forget(self, paths: Iterable[bytes]) -> int:
        """Drop the records (and faces) of files that are gone. Returns how many were known."""
        n = 0
        with self.db.transaction() as c:
            for p in paths:
                n += c.execute("DELETE FROM images WHERE path = ?", (p,)).rowcount
        return n

    def forget_tree(self, folder: bytes) -> list[bytes]:
        """Drop every record at or below `folder` (a deleted or moved-away directory)."""
        prefix = folder.rstrip(b"/") + b"/"
        rows = self.db.conn.execute(
            "SELECT path FROM images WHERE substr(path, 1, ?) = ?", (len(prefix), prefix)
        ).fetchall()
        gone = [bytes(r[0]) for r in rows]
        self.forget(gone)
        return gone

    def move(self, old: bytes, new: bytes) -> bool:
        """Re-point a record at a file's new path (a rename), keeping its faces and people."""
        with self.db.transaction() as c:
            c.execute("DELETE FROM images WHERE path = ?", (new,))
            return c.execute("UPDATE images SET path = ? WHERE path = ?", (new, old)).rowcount > 0

    def paths_with_faces(self) -> dict[int, bytes]:
        """Image id to path, for every image with faces."""
        rows = self.db.conn.execute(
            "SELECT id, path FROM images WHERE status = ?", (Status.FACES.value,)
        )
        return {r[0]: bytes(r[1]) for r in rows}

    def errors(self, limit: int = 20) -> list[tuple[str, str]]:
        """The most recent error records as (path, reason)."""
        rows = self.db.conn.execute(
            "SELECT path, reason FROM images WHERE status = ? ORDER BY updated DESC LIMIT ?",
            (Status.ERROR.value, limit),
        )
        return [(os.fsdecode(bytes(r[0])), str(r[1])) for r in rows]

    def by_status(self) -> dict[Status, int]:
        """How many files have each status."""
        rows = self.db.conn.execute("SELECT status, COUNT(*) FROM images GROUP BY status")
        counts = {Status(s): int(n) for s, n in rows}
        return {s: counts.get(s, 0) for s in Status}
