"""The connection: SQLite in WAL mode, one writer, a versioned schema, short transactions.

Every change is one short transaction (BEGIN IMMEDIATE ... COMMIT) with synchronous=FULL, so a
kill -9 at any moment leaves either the old or the new state of an image, never half of it
(the shape of beets' dbcore Transaction). A lock file keeps a second writer (a scan beside the
daemon) out. The repositories (faced.store.images, .faces, .people, .published, .meta) hold
all the SQL; they share one Db.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from faced.errors import StoreError, StoreFullError
from faced.store.schema import MIGRATIONS, SCHEMA_VERSION

DB_NAME = "faced.sqlite3"
LOCK_NAME = "writer.lock"
SQLITE_FULL = 13  # the result code of "database or disk is full" (not in typeshed's sqlite3)

# What to do about a database that cannot be read: nothing the user decided need be lost.
RECOVERY = (
    "To recover, stop faced and run `faced check --repair`: it keeps the damaged file, salvages "
    "names, merges and rejections from it, and reads the photos again (names also come back "
    "from the people folders). Or put a backup back: `faced restore FILE`."
)


class Db:
    """The one SQLite connection of a process. Writers take the state folder's lock first."""

    def __init__(self, state_dir: Path, *, readonly: bool = False, exclusive: bool = True) -> None:
        """Open the database in `state_dir`, creating or migrating it unless `readonly`.

        `exclusive` takes the writer lock (scan and daemon: they also own the people folder);
        a short edit such as `faced name` writes without it, in SQLite transactions.
        """
        self.path = state_dir / DB_NAME
        self.readonly = readonly
        self._lock_fd: int | None = None
        self._batched = False  # inside batch(): transactions are savepoints of one
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
                if exclusive:  # a scan or the daemon: check the whole file once, at start
                    self._check_intact()
                self._migrate()
            else:
                self._check_version()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise StoreError(f"{self.path}: {exc}. {RECOVERY}") from exc
        except StoreError:
            self.close()
            raise

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

    @property
    def batched(self) -> bool:
        """True inside `batch()`: what is written may still be rolled back with the batch."""
        return self._batched

    def revision(self) -> int:
        """A counter SQLite's own triggers move (schema 7) whenever a face's person changes, a
        face with a person comes or goes, a photo is deleted or moved, or a person's name or
        visibility changes, whichever connection writes: what is kept of those holds while it
        is the same."""
        return int(self.conn.execute("SELECT n FROM revision").fetchone()[0])

    def data_version(self) -> int:
        """SQLite's data_version: it moves when another connection commits, not this one."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def _check_intact(self) -> None:
        result = self.conn.execute("PRAGMA quick_check").fetchone()[0]
        if result != "ok":
            raise StoreError(f"{self.path} is damaged ({result}). {RECOVERY}")

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
                for statement in _statements(MIGRATIONS[version]):
                    self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {version + 1}")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: BEGIN IMMEDIATE, then COMMIT, or ROLLBACK on any exception.

        A full disk raises StoreFullError with nothing written (the transaction rolled back),
        so the caller may try the same write again later. Inside `batch()` this is a
        savepoint: as atomic, but made durable only by the batch's commit."""
        if self._batched:
            yield from self._savepoint()
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) != SQLITE_FULL:
                raise
            if self.conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
            raise StoreFullError(
                f"the state folder {self.path.parent} is full ({exc}): free some space on its "
                "disk; faced keeps what it has, and reads on once it can write again"
            ) from exc

    def _savepoint(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("SAVEPOINT write")
        try:
            yield self.conn
        except BaseException:
            # A full disk may have rolled the whole transaction back already.
            if self.conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK TO write")
                    self.conn.execute("RELEASE write")
            raise
        self.conn.execute("RELEASE write")

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Many writes, one commit (one fsync): each `transaction()` inside is a savepoint of a
        single transaction committed when the block ends. Any exception out of the block
        rolls the whole batch back, so a kill -9 or a failure loses at most the batch, whose
        files the next scan reads again. Keep a batch to writes already in hand: the
        database stays locked for writers (`faced name`) until it ends."""
        if self._batched:  # part of the batch already open
            yield
            return
        with self.transaction():
            self._batched = True
            try:
                yield
            finally:
                self._batched = False


def _statements(script: str) -> Iterator[str]:
    """The statements of `script`, whole: a trigger's body holds semicolons of its own."""
    pending = ""
    for part in script.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""
