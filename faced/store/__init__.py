"""The state store: one SQLite database per state folder, and all of faced's SQL.

`Store` opens the database (faced.store.db.Db: connection, writer lock, migrations,
transactions) and hands out one small repository per concern, by composition:

    store.images     files and what they turned out to be      (faced.store.images)
    store.faces      descriptors, crops                         (faced.store.faces)
    store.people     people, names, merges, rejections          (faced.store.people)
    store.published  what the people folder held when last published (faced.store.published)
    store.meta       a few typed values                         (faced.store.meta)

The few questions that span tables (`counts`, `fingerprint`, `reset_people`) are asked here.
Paths are stored as BLOBs of their filesystem bytes (as beets does), so a name that is not
valid UTF-8 still round-trips. This package imports no stage of faced (an import-linter
contract): it stores records (faced.records), it does not make them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time
import uuid
from pathlib import Path

from faced.errors import StoreError
from faced.records import FolderRule, Status
from faced.store.db import DB_NAME, Db
from faced.store.faces import FaceRow, Faces, FaceTable
from faced.store.images import ImageRow, Images
from faced.store.meta import Meta, MetaKey
from faced.store.people import People
from faced.store.published import Published

__all__ = ["DB_NAME", "FaceRow", "FaceTable", "ImageRow", "MetaKey", "Store"]


class Store:
    """A state folder's database and its repositories. Close it, or use it as a context."""

    def __init__(self, state_dir: Path, *, readonly: bool = False, exclusive: bool = True) -> None:
        """Open (creating or migrating unless `readonly`) the store in `state_dir`; see Db."""
        self.db = Db(state_dir, readonly=readonly, exclusive=exclusive)
        self.images = Images(self.db)
        self.faces = Faces(self.db)
        self.people = People(self.db, moved=self.faces.moved)
        self.published = Published(self.db)
        self.meta = Meta(self.db)

    @property
    def conn(self) -> sqlite3.Connection:
        """The connection itself (for tests and maintenance, not for the stages)."""
        return self.db.conn

    @staticmethod
    def owner_running(state_dir: Path) -> bool:
        """True if a scan or daemon holds the writer lock of `state_dir` right now."""
        return Db.owner_running(state_dir)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """Writes made inside are committed together, or not at all (Db.batch)."""
        return self.db.batch()

    def state_id(self) -> str:
        """This state's identity (made the first time it is asked for): what the people folder
        it publishes records as its owner."""
        found = self.meta.get(MetaKey.STATE_ID)
        if found is None:
            found = uuid.uuid4().hex
            self.meta.set(MetaKey.STATE_ID, found)
        return found

    @staticmethod
    def identity_of(state_dir: Path) -> str | None:
        """The identity of the state in `state_dir`, or None if there is no state there."""
        if not (state_dir / DB_NAME).is_file():
            return None
        try:
            with Store(state_dir, readonly=True) as other:
                return other.meta.get(MetaKey.STATE_ID)
        except (StoreError, sqlite3.Error):
            return None

    def backup(self, dest: Path) -> None:
        """A consistent copy of the database at `dest`, made with SQLite's online backup
        (safe while the daemon writes), written aside and renamed into place."""
        tmp = dest.with_name(dest.name + ".tmp")
        tmp.unlink(missing_ok=True)
        target = sqlite3.connect(tmp)
        try:
            self.db.conn.backup(target)
        finally:
            target.close()
        os.replace(tmp, dest)

    @staticmethod
    def problems(state_dir: Path, limit: int = 10) -> list[str]:
        """What SQLite's full integrity check finds wrong with `state_dir`'s database, at most
        `limit` lines; [] when it is sound. Reads only (safe while the daemon runs)."""
        db = state_dir / DB_NAME
        if not db.exists():
            raise StoreError(f"no faced state in {state_dir} (run `faced scan` or `faced run`)")
        try:
            with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as check:
                rows = check.execute(f"PRAGMA integrity_check({int(limit)})").fetchall()
        except sqlite3.DatabaseError as exc:
            return [str(exc)]
        found = [str(r[0]) for r in rows]
        return [] if found == ["ok"] else found

    @staticmethod
    def set_aside(state_dir: Path) -> Path:
        """Move `state_dir`'s database (with its WAL) aside as faced.sqlite3.damaged-TIME, so
        that the next open starts an empty one. Returns where it went; nothing is deleted."""
        if Db.owner_running(state_dir):
            raise StoreError(f"a faced process is using {state_dir}; stop it first")
        aside = state_dir / f"{DB_NAME}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
        for suffix in ("-wal", "-shm", ""):
            part = state_dir / f"{DB_NAME}{suffix}"
            if part.exists():
                os.replace(part, aside.with_name(aside.name + suffix))
        return aside

    @staticmethod
    def restore(source: Path, state_dir: Path) -> None:
        """Put a backup in place as `state_dir`'s database (no faced may be running on it).
        The backup is checked first; the database it replaces is kept as faced.sqlite3.before."""
        try:
            with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as check:
                ok = check.execute("PRAGMA quick_check").fetchone()[0]
                check.execute("SELECT COUNT(*) FROM images").fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"{source}: not a faced database: {exc}") from exc
        if ok != "ok":
            raise StoreError(f"{source}: damaged database: {ok}")
        if Db.owner_running(state_dir):
            raise StoreError(f"a faced process is using {state_dir}; stop it first")
        state_dir.mkdir(parents=True, exist_ok=True)
        db = state_dir / DB_NAME
        if db.exists():
            os.replace(db, state_dir / f"{DB_NAME}.before")
        for suffix in ("-wal", "-shm"):
            (state_dir / f"{DB_NAME}{suffix}").unlink(missing_ok=True)
        tmp = state_dir / f"{DB_NAME}.tmp"
        shutil.copyfile(source, tmp)
        os.replace(tmp, db)

    def generation(self) -> tuple[int, int]:
        """Equal before and after only if nothing was written in between: rows this connection
        changed (`total_changes`) and commits by any other (`PRAGMA data_version`)."""
        return (self.db.conn.total_changes, self.db.data_version())

    def touch_edits(self) -> None:
        """Note that a person was named, merged or corrected (the daemon polls this)."""
        self.meta.set(MetaKey.EDITED, repr(time.time()))

    def fingerprint(self) -> str:
        """Changes whenever clustering could come out differently (faces, merges, rejections)."""
        c = self.db.conn
        faces = c.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM faces").fetchone()
        rej = c.execute("SELECT COUNT(*) FROM rejections").fetchone()[0]
        merged = c.execute("SELECT COUNT(*) FROM people WHERE merged_into IS NOT NULL").fetchone()[
            0
        ]
        unassigned = c.execute("SELECT COUNT(*) FROM faces WHERE person_id IS NULL").fetchone()[0]
        return f"faces {faces[0]}/{faces[1]} unassigned {unassigned} rejected {rej} merged {merged}"

    def reset_people(self) -> None:
        """Forget every person and correction (for `faced eval` on a reused state)."""
        with self.db.transaction() as c:
            c.execute("UPDATE faces SET person_id = NULL")
            for table in ("rejections", "folders", "links"):
                c.execute(f"DELETE FROM {table}")
            c.execute(
                "UPDATE people SET retired = COALESCE(retired, ?), name = NULL", (time.time(),)
            )
            c.execute("DELETE FROM meta WHERE key = ?", (MetaKey.RECLUSTER.value,))

    def counts(self, rule: FolderRule) -> dict[str, int]:
        """The numbers `faced status` shows (`people`: those `rule` gives a folder)."""
        c = self.db.conn
        by_status = self.images.by_status()
        faces = c.execute("SELECT COUNT(*) FROM faces").fetchone()[0]
        assigned = c.execute("SELECT COUNT(*) FROM faces WHERE person_id IS NOT NULL").fetchone()[0]
        people = c.execute(
            "SELECT COUNT(*) FROM (SELECT person_id FROM faces WHERE person_id IS NOT NULL"
            " GROUP BY person_id HAVING COUNT(*) >= ?"
            " OR (? > 0 AND MAX(COALESCE(track_end - track_start, 0)) >= ?))",
            (rule.min_faces, rule.track_ms, rule.track_ms),
        ).fetchone()[0]
        named = c.execute(
            "SELECT COUNT(*) FROM people WHERE name IS NOT NULL AND retired IS NULL"
        ).fetchone()[0]
        return {
            "images": by_status[Status.FACES] + by_status[Status.NOFACE],
            "images_with_faces": by_status[Status.FACES],
            "images_without_faces": by_status[Status.NOFACE],
            "faces": faces,
            "faces_assigned": assigned,
            "people": people,
            "named_people": named,
            "errors": by_status[Status.ERROR],
        }
