"""The images table: one row per file looked at, with what it turned out to be."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from faced.records import Box, EncodeResult, Face, Status
from faced.store.db import Db

# Where a face was seen in a file: its box, and in a clip its moment (ms) and its track (number,
# first moment, one step past the last); None in a photo. The shape faced.people.identity's
# `Seen` has (the store imports no stage).
Seen = tuple[Box, int | None, int | None, int | None, int | None]
# Pairs (index in the first list, index in the second) of sightings that are the same face:
# how decisions about faces that departed find the faces found again in the same bytes.
Match = Callable[[Sequence[Seen], Sequence[Seen]], list[tuple[int, int]]]

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

    def file_unchanged(self, result: EncodeResult) -> bool:
        """True if `result` is about the file as this record knew it (same size and mtime)."""
        return (self.size, self.mtime_ns) == (result.file.size, result.file.mtime_ns)

    @classmethod
    def of(cls, r: Any) -> ImageRow:
        """From a row of the `_COLUMNS` query."""
        return cls(r[0], bytes(r[1]), r[2], r[3], r[4], Status(r[5]), r[6], r[7])


@dataclass(frozen=True)
class Recorded:
    """What recording one result did."""

    changed: bool  # faces changed: people must be brought up to date
    same_bytes: bool = False  # the path held these very bytes before (read again)
    departed: int = 0  # faces of the old record that left decisions behind
    inherited: int = 0  # new faces that took over a departed face's decisions


def _drop(c: sqlite3.Connection, image_id: int, digest: str | None, now: float) -> int:
    """Delete an image's record (its faces go with it), keeping what was decided about its
    faces (their person, their rejections) under its content hash. Returns how many faces
    had decisions."""
    departed = 0
    if digest is not None:
        departed = c.execute(
            "INSERT INTO departed (digest, box_top, box_right, box_bottom, box_left, frame_ms,"
            " track, track_start, track_end, person_id, rejected, since)"
            " SELECT ?, f.box_top, f.box_right, f.box_bottom, f.box_left, f.frame_ms, f.track,"
            " f.track_start, f.track_end, f.person_id, COALESCE((SELECT"
            " group_concat(r.person_id) FROM rejections r WHERE r.face_id = f.id), ''), ?"
            " FROM faces f WHERE f.image_id = ?"
            " AND (f.person_id IS NOT NULL"
            " OR EXISTS (SELECT 1 FROM rejections r WHERE r.face_id = f.id))",
            (digest, now, image_id),
        ).rowcount
    c.execute("DELETE FROM images WHERE id = ?", (image_id,))
    return departed


def _seen(face: Face) -> Seen:
    """Where `face` was seen, as the Match takes it."""
    t = face.track
    return (face.box, face.frame_ms, *((t.number, t.start_ms, t.end_ms) if t else (None,) * 3))


def _survivor(c: sqlite3.Connection, person_id: int) -> int:
    """Follow merges to the person who holds `person_id`'s faces now."""
    seen = set()
    while person_id not in seen:
        seen.add(person_id)
        row = c.execute("SELECT merged_into FROM people WHERE id = ?", (person_id,)).fetchone()
        if row is None or row[0] is None:
            return person_id
        person_id = int(row[0])
    return person_id


def _inherit(
    c: sqlite3.Connection, digest: str, new_faces: list[tuple[int, Seen]], match: Match
) -> int:
    """Give new faces the decisions departed faces of the same bytes left (in a clip, several
    new faces may take after one departed face). Returns how many new faces did."""
    rows = c.execute(
        "SELECT rowid, box_top, box_right, box_bottom, box_left, frame_ms, track, track_start,"
        " track_end, person_id, rejected FROM departed WHERE digest = ?",
        (digest,),
    ).fetchall()
    if not rows or not new_faces:
        return 0
    seen: list[Seen] = [((r[1], r[2], r[3], r[4]), r[5], r[6], r[7], r[8]) for r in rows]
    pairs = match(seen, [s for _, s in new_faces])
    for old, new in pairs:
        rowid, person, rejected = rows[old][0], rows[old][9], rows[old][10]
        face_id = new_faces[new][0]
        refused = {_survivor(c, int(p)) for p in rejected.split(",") if p}
        for p in refused:
            c.execute(
                "INSERT OR IGNORE INTO rejections (face_id, person_id) VALUES (?, ?)", (face_id, p)
            )
        if person is not None and (survivor := _survivor(c, int(person))) not in refused:
            c.execute("UPDATE faces SET person_id = ? WHERE id = ?", (survivor, face_id))
            # A person left without faces was retired; their face is back, and so are they.
            c.execute("UPDATE people SET retired = NULL WHERE id = ?", (survivor,))
        c.execute("DELETE FROM departed WHERE rowid = ?", (rowid,))
    return len(pairs)


class Images:
    """Files and what was found in them; recording a result replaces its faces."""

    def __init__(self, db: Db) -> None:
        self.db = db

    def all(self) -> dict[bytes, ImageRow]:
        """Every recorded file by path."""
        rows = self.db.conn.execute(f"SELECT {_COLUMNS} FROM images")
        return {bytes(r[1]): ImageRow.of(r) for r in rows}

    def rows_under(self, prefixes: list[bytes]) -> dict[bytes, ImageRow]:
        """The recorded files whose paths start with one of `prefixes` (each ending in "/"),
        by path: a range on the path index per prefix, so a folder moved into a large library
        reads only its own rows."""
        out: dict[bytes, ImageRow] = {}
        for prefix in set(prefixes):
            rows = self.db.conn.execute(
                f"SELECT {_COLUMNS} FROM images WHERE path >= ? AND path < ?", _range(prefix)
            )
            out.update((bytes(r[1]), ImageRow.of(r)) for r in rows)
        return out

    def sizes(self) -> dict[int, tuple[int, int]]:
        """(width, height) of every recorded photo by image id, as it was read (after EXIF
        rotation; 0 where unknown)."""
        rows = self.db.conn.execute("SELECT id, width, height FROM images")
        return {r[0]: (r[1], r[2]) for r in rows}

    def get(self, path: bytes) -> ImageRow | None:
        """The record of one path, if any."""
        r = self.db.conn.execute(
            f"SELECT {_COLUMNS} FROM images WHERE path = ?", (path,)
        ).fetchone()
        return ImageRow.of(r) if r else None

    def record(self, result: EncodeResult, *, match: Match) -> Recorded:
        """Store what a worker found for a file, replacing what was known of that path.

        The same content at the same path, found the same way, keeps its face rows (and with
        them people, rejections): only size and mtime move. Otherwise the old faces leave
        their decisions behind (`departed`, by content hash), and the new faces take over the
        decisions left by faces in the same bytes that `match(old boxes, new boxes)` pairs
        with them: a re-read with other settings, a photo back from a remount or a restore.
        One transaction.
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
                return Recorded(changed=False)
            departed = 0
            if old is not None:
                departed = _drop(c, old[0], old[1], now)
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
            new_faces: list[tuple[int, Seen]] = []
            for face in result.faces:
                fc = c.execute(
                    "INSERT INTO faces (image_id, box_top, box_right, box_bottom, box_left,"
                    " encoding, detector, model, frame_ms, score, track, track_start, track_end)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        image_id,
                        *face.box,
                        face.encoding.astype("<f4").tobytes(),
                        result.detector,
                        result.model,
                        face.frame_ms,
                        face.score,
                        *(
                            (face.track.number, face.track.start_ms, face.track.end_ms)
                            if face.track
                            else (None, None, None)
                        ),
                    ),
                )
                assert fc.lastrowid is not None
                new_faces.append((fc.lastrowid, _seen(face)))
                c.execute(
                    "INSERT INTO thumbs (face_id, jpeg) VALUES (?, ?)", (fc.lastrowid, face.thumb)
                )
            inherited = _inherit(c, f.digest, new_faces, match) if f.digest else 0
            changed = bool(result.faces) or (old is not None and old[2] == Status.FACES.value)
            same = old is not None and f.digest is not None and old[1] == f.digest
            return Recorded(changed, same_bytes=same, departed=departed, inherited=inherited)

    def forget(self, paths: Iterable[bytes]) -> int:
        """Drop the records (and faces) of files that are gone, keeping what was decided about
        their faces by content hash (`departed`). Returns how many were known."""
        n = 0
        now = time.time()
        with self.db.transaction() as c:
            for p in paths:
                row = c.execute("SELECT id, digest FROM images WHERE path = ?", (p,)).fetchone()
                if row is not None:
                    _drop(c, row[0], row[1], now)
                    n += 1
        return n

    def under(self, folder: bytes) -> list[bytes]:
        """Paths of every record at or below `folder`."""
        prefix = folder.rstrip(b"/") + b"/"
        rows = self.db.conn.execute(
            "SELECT path FROM images WHERE path >= ? AND path < ?", _range(prefix)
        ).fetchall()
        return [bytes(r[0]) for r in rows]

    def forget_tree(self, folder: bytes) -> list[bytes]:
        """Forget every record at or below `folder` (a deleted or moved-away directory)."""
        gone = self.under(folder)
        self.forget(gone)
        return gone

    def move(self, old: bytes, new: bytes) -> bool:
        """Re-point a record at a file's new path (a rename), keeping its faces and people."""
        with self.db.transaction() as c:
            replaced = c.execute("SELECT id, digest FROM images WHERE path = ?", (new,)).fetchone()
            if replaced is not None:
                _drop(c, replaced[0], replaced[1], time.time())
            return c.execute("UPDATE images SET path = ? WHERE path = ?", (new, old)).rowcount > 0

    def purge_departed(self, before: float) -> int:
        """Let go of decisions about photos gone since before `before` (epoch seconds)."""
        with self.db.transaction() as c:
            return c.execute("DELETE FROM departed WHERE since < ?", (before,)).rowcount

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


def _range(prefix: bytes) -> tuple[bytes, bytes]:
    """The bounds of the paths starting with `prefix` (ending in "/"): each sorts between it
    and the prefix with its last byte raised by one (BLOBs compare bytewise), a range the path
    index answers without reading other rows."""
    return prefix, prefix[:-1] + bytes([prefix[-1] + 1])
