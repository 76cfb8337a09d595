"""The state store: SQLite in WAL mode, one writer, versioned schema.

Paths are stored as BLOBs of their filesystem bytes (as beets does), so a name that is not valid
UTF-8 still round-trips. Every change is one short transaction (BEGIN IMMEDIATE ... COMMIT) with
synchronous=FULL, so a kill -9 at any moment leaves either the old or the new state of an image,
never half of it. A lock file keeps a second writer (a scan beside the daemon) out.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faced.encode import EncodeResult
from faced.errors import StoreError
from faced.store_people import PeopleRecords

DB_NAME = "faced.sqlite3"
LOCK_NAME = "writer.lock"

# Each entry migrates from version i to i+1. Never edit a shipped entry; append a new one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE images (
        id INTEGER PRIMARY KEY,
        path BLOB NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        digest TEXT,
        status TEXT NOT NULL CHECK (status IN ('faces', 'noface', 'error')),
        reason TEXT,
        width INTEGER NOT NULL DEFAULT 0,
        height INTEGER NOT NULL DEFAULT 0,
        detector TEXT NOT NULL DEFAULT '',
        model TEXT NOT NULL DEFAULT '',
        updated REAL NOT NULL
    );
    CREATE INDEX images_digest ON images (digest);
    CREATE TABLE people (
        id INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids are never reused
        name TEXT UNIQUE,
        created REAL NOT NULL,
        retired REAL,
        merged_into INTEGER REFERENCES people (id)
    );
    CREATE TABLE faces (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        image_id INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
        box_top INTEGER NOT NULL,
        box_right INTEGER NOT NULL,
        box_bottom INTEGER NOT NULL,
        box_left INTEGER NOT NULL,
        encoding BLOB NOT NULL,
        detector TEXT NOT NULL,
        model TEXT NOT NULL,
        person_id INTEGER REFERENCES people (id)
    );
    CREATE INDEX faces_image ON faces (image_id);
    CREATE INDEX faces_person ON faces (person_id);
    CREATE TABLE thumbs (
        face_id INTEGER PRIMARY KEY REFERENCES faces (id) ON DELETE CASCADE,
        jpeg BLOB NOT NULL
    );
    CREATE TABLE rejections (
        face_id INTEGER NOT NULL REFERENCES faces (id) ON DELETE CASCADE,
        person_id INTEGER NOT NULL REFERENCES people (id),
        PRIMARY KEY (face_id, person_id)
    );
    CREATE TABLE folders (
        person_id INTEGER PRIMARY KEY,  -- 0 is the unknown folder
        folder TEXT NOT NULL,
        signature TEXT NOT NULL
    );
    CREATE TABLE links (
        person_id INTEGER NOT NULL,
        link BLOB NOT NULL,
        image_id INTEGER NOT NULL,
        PRIMARY KEY (person_id, link)
    );
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 2: faces found in a video frame say which (milliseconds from the start; NULL: a photo).
    """
    ALTER TABLE faces ADD COLUMN frame_ms INTEGER;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class ImageRow:
    """What the store knows of a file, enough to decide whether to read it again."""

    id: int
    path: bytes
    size: int
    mtime_ns: int
    digest: str | None
    status: str
    detector: str
    reason: str | None


# Faces of one video frame share a "photo" id: the image id, scaled, plus the frame's time.
_PHOTO_OF_FACE = "image_id * 1000000000 + COALESCE(frame_ms, 0)"


@dataclass(frozen=True)
class FaceTable:
    """All faces as arrays, ordered by face id. person_id is -1 where unassigned.

    `photo_id` is equal for faces seen together (one photo, or one frame of a video): the
    two-faces-in-one-photo rule applies to it."""

    face_id: np.ndarray  # int64 (n,)
    photo_id: np.ndarray  # int64 (n,)
    person_id: np.ndarray  # int64 (n,)
    encoding: np.ndarray  # float32 (n, 128)

    def __len__(self) -> int:
        return len(self.face_id)


class Store(PeopleRecords):
    """The one SQLite connection of a process. Writers take the state folder's lock first."""

    def __init__(self, state_dir: Path, *, readonly: bool = False, exclusive: bool = True) -> None:
        """Open the store in `state_dir`, creating or migrating it unless `readonly`.

        `exclusive` takes the writer lock (scan and daemon: they also own the people folder);
        a short edit such as `faced name` writes without it, in SQLite transactions.
        """
        self.path = state_dir / DB_NAME
        self.readonly = readonly
        self._lock_fd: int | None = None
        if readonly:
            if not self.path.exists():
                raise StoreError(f"no faced state in {state_dir} (run `faced scan` or `faced run`)")
            uri = f"file:{self.path}?mode=ro"
            self.conn = sqlite3.connect(
                uri, uri=True, isolation_level=None, check_same_thread=False
            )
        else:
            state_dir.mkdir(parents=True, exist_ok=True)
            if exclusive:
                self._take_lock(state_dir / LOCK_NAME)
            self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            self.conn.execute("PRAGMA busy_timeout = 10000")
            self.conn.execute("PRAGMA foreign_keys = ON")
            if not readonly:
                self.conn.execute("PRAGMA journal_mode = WAL")
                self.conn.execute("PRAGMA synchronous = FULL")
                self._migrate()
            else:
                self._check_version()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise StoreError(f"{self.path}: {exc}") from exc

    @staticmethod
    def owner_running(state_dir: Path) -> bool:
        """True if a scan or daemon holds the writer lock of `state_dir` right now."""
        try:
            fd = os.open(state_dir / LOCK_NAME, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def _take_lock(self, lock_path: Path) -> None:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise StoreError(
                f"another faced process is writing to {lock_path.parent}; stop it first"
            ) from exc
        self._lock_fd = fd

    def close(self) -> None:
        """Close the connection and release the writer lock."""
        with contextlib.suppress(Exception):
            self.conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema ------------------------------------------------------------------------------

    def _version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _check_version(self) -> None:
        if self._version() > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer faced "
                f"(schema {self._version()} > {SCHEMA_VERSION})"
            )

    def _migrate(self) -> None:
        self._check_version()
        for version in range(self._version(), SCHEMA_VERSION):
            with self.transaction():
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {version + 1}")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: BEGIN IMMEDIATE, then COMMIT, or ROLLBACK on any exception."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- images ------------------------------------------------------------------------------

    def images(self) -> dict[bytes, ImageRow]:
        """Every recorded file by path."""
        rows = self.conn.execute(
            "SELECT id, path, size, mtime_ns, digest, status, detector, reason FROM images"
        )
        return {bytes(r[1]): ImageRow(r[0], bytes(r[1]), *r[2:]) for r in rows}

    def image(self, path: bytes) -> ImageRow | None:
        """The record of one path, if any."""
        r = self.conn.execute(
            "SELECT id, path, size, mtime_ns, digest, status, detector, reason FROM images"
            " WHERE path = ?",
            (path,),
        ).fetchone()
        return ImageRow(r[0], bytes(r[1]), *r[2:]) if r else None

    def record(self, result: EncodeResult) -> bool:
        """Store what a worker found for a file, replacing what was known of that path.

        Returns True if faces changed. The same content at the same path, found the same way,
        keeps its face rows (and with them people, rejections): only size and mtime move.
        """
        now = time.time()
        with self.transaction() as c:
            old = c.execute(
                "SELECT id, digest, status, detector FROM images WHERE path = ?", (result.path,)
            ).fetchone()
            if (
                old is not None
                and result.digest is not None
                and old[1] == result.digest
                and old[2] == result.status
                and old[3] == result.detector
            ):
                c.execute(
                    "UPDATE images SET size = ?, mtime_ns = ?, updated = ? WHERE id = ?",
                    (result.size, result.mtime_ns, now, old[0]),
                )
                return False
            if old is not None:
                c.execute("DELETE FROM images WHERE id = ?", (old[0],))
            cur = c.execute(
                "INSERT INTO images (path, size, mtime_ns, digest, status, reason, width, height,"
                " detector, model, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    result.path,
                    result.size,
                    result.mtime_ns,
                    result.digest,
                    result.status,
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
            return bool(result.faces) or (old is not None and old[2] == "faces")

    def forget(self, paths: Iterable[bytes]) -> int:
        """Drop the records (and faces) of files that are gone. Returns how many were known."""
        n = 0
        with self.transaction() as c:
            for p in paths:
                n += c.execute("DELETE FROM images WHERE path = ?", (p,)).rowcount
        return n

    def forget_tree(self, folder: bytes) -> list[bytes]:
        """Drop every record at or below `folder` (a deleted or moved-away directory)."""
        prefix = folder.rstrip(b"/") + b"/"
        rows = self.conn.execute(
            "SELECT path FROM images WHERE substr(path, 1, ?) = ?", (len(prefix), prefix)
        ).fetchall()
        gone = [bytes(r[0]) for r in rows]
        self.forget(gone)
        return gone

    def move(self, old: bytes, new: bytes) -> bool:
        """Re-point a record at a file's new path (a rename), keeping its faces and people."""
        with self.transaction() as c:
            c.execute("DELETE FROM images WHERE path = ?", (new,))
            return c.execute("UPDATE images SET path = ? WHERE path = ?", (new, old)).rowcount > 0

    # -- faces -------------------------------------------------------------------------------

    def face_table(self, model: str) -> FaceTable:
        """Every face described by `model`, as arrays for clustering."""
        rows = self.conn.execute(
            f"SELECT id, {_PHOTO_OF_FACE}, COALESCE(person_id, -1), encoding FROM faces"
            " WHERE model = ? ORDER BY id",
            (model,),
        ).fetchall()
        n = len(rows)
        enc = np.frombuffer(b"".join(r[3] for r in rows), dtype="<f4").reshape(n, 128)
        ids = np.array([(r[0], r[1], r[2]) for r in rows], dtype=np.int64).reshape(n, 3)
        return FaceTable(ids[:, 0], ids[:, 1], ids[:, 2], enc.astype(np.float32))

    def thumbs(self, face_ids: Iterable[int]) -> dict[int, bytes]:
        """JPEG crops of the given faces."""
        ids = list(face_ids)
        out: dict[int, bytes] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            q = f"SELECT face_id, jpeg FROM thumbs WHERE face_id IN ({','.join('?' * len(chunk))})"
            out.update((r[0], bytes(r[1])) for r in self.conn.execute(q, chunk))
        return out

    def image_paths(self) -> dict[int, bytes]:
        """Image id to path, for every image with faces."""
        rows = self.conn.execute("SELECT id, path FROM images WHERE status = 'faces'")
        return {r[0]: bytes(r[1]) for r in rows}

    def face_boxes(self) -> dict[int, tuple[tuple[int, int, int, int], int | None]]:
        """Face id to its box (top, right, bottom, left) and video frame time (None: a photo)."""
        rows = self.conn.execute(
            "SELECT id, box_top, box_right, box_bottom, box_left, frame_ms FROM faces"
        )
        return {r[0]: ((r[1], r[2], r[3], r[4]), r[5]) for r in rows}

    # -- meta and counts ---------------------------------------------------------------------

    def face_count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0])

    def max_face_id(self) -> int:
        return int(self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM faces").fetchone()[0])

    def unassigned_since(self, face_id: int) -> int:
        """Faces newer than `face_id` that belong to nobody yet."""
        row = self.conn.execute(
            "SELECT COUNT(*) FROM faces WHERE id > ? AND person_id IS NULL", (face_id,)
        ).fetchone()
        return int(row[0])

    def fingerprint(self) -> str:
        """Changes whenever clustering could come out differently (faces, merges, rejections)."""
        faces = self.conn.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM faces").fetchone()
        rej = self.conn.execute("SELECT COUNT(*) FROM rejections").fetchone()[0]
        merged = self.conn.execute(
            "SELECT COUNT(*) FROM people WHERE merged_into IS NOT NULL"
        ).fetchone()[0]
        unassigned = self.conn.execute(
            "SELECT COUNT(*) FROM faces WHERE person_id IS NULL"
        ).fetchone()[0]
        return f"faces {faces[0]}/{faces[1]} unassigned {unassigned} rejected {rej} merged {merged}"

    def reset_people(self) -> None:
        """Forget every person and correction (for `faced eval` on a reused state)."""
        with self.transaction() as c:
            c.execute("UPDATE faces SET person_id = NULL")
            for table in ("rejections", "folders", "links"):
                c.execute(f"DELETE FROM {table}")
            c.execute(
                "UPDATE people SET retired = COALESCE(retired, ?), name = NULL", (time.time(),)
            )
            c.execute("DELETE FROM meta WHERE key = 'clustered'")

    def touch_edits(self) -> None:
        """Note that a person was named, merged or corrected (the daemon polls this)."""
        self.set_meta("edited", repr(time.time()))

    def get_meta(self, key: str) -> str | None:
        r = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(r[0]) if r else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def errors(self, limit: int = 20) -> list[tuple[str, str]]:
        """The most recent error records as (path, reason)."""
        rows = self.conn.execute(
            "SELECT path, reason FROM images WHERE status = 'error' ORDER BY updated DESC LIMIT ?",
            (limit,),
        )
        return [(os.fsdecode(bytes(r[0])), str(r[1])) for r in rows]

    def counts(self, min_faces: int) -> dict[str, int]:
        """The numbers `faced status` shows."""
        c = self.conn
        by_status = dict(
            c.execute("SELECT status, COUNT(*) FROM images GROUP BY status").fetchall()
        )
        faces = c.execute("SELECT COUNT(*) FROM faces").fetchone()[0]
        assigned = c.execute("SELECT COUNT(*) FROM faces WHERE person_id IS NOT NULL").fetchone()[0]
        people = c.execute(
            "SELECT COUNT(*) FROM (SELECT person_id FROM faces WHERE person_id IS NOT NULL"
            " GROUP BY person_id HAVING COUNT(*) >= ?)",
            (min_faces,),
        ).fetchone()[0]
        named = c.execute(
            "SELECT COUNT(*) FROM people WHERE name IS NOT NULL AND retired IS NULL"
        ).fetchone()[0]
        return {
            "images": by_status.get("faces", 0) + by_status.get("noface", 0),
            "images_with_faces": by_status.get("faces", 0),
            "images_without_faces": by_status.get("noface", 0),
            "faces": faces,
            "faces_assigned": assigned,
            "people": people,
            "named_people": named,
            "errors": by_status.get("error", 0),
        }
