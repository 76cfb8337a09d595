"""The people and rejections tables: who is who, and every decision the user made about it."""

from __future__ import annotations

import bisect
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from faced.records import PersonEntry
from faced.store.db import Db

# Above this many faces moved at once (a full re-cluster of a large import), the kept entries
# are read afresh rather than followed move by move (each move asks SQLite one question).
FOLLOWED_MOVES = 2_000


@dataclass(frozen=True)
class PersonSummary:
    """A live person as `faced people` lists them."""

    id: int
    name: str | None
    faces: int
    photos: int
    folder: str | None  # as last published; None: no folder (too few faces, or hidden)
    hidden: bool
    longest_track_ms: int = 0  # the longest a face of theirs was followed in a clip


class People:
    """People, names, merges and rejections.

    Longer than most classes here, on purpose: the people and rejections tables change
    together (a merge moves rejections, a rejection unassigns faces, an assignment lifts a
    rejection), so every decision is one short method of this one repository, each its own
    transaction."""

    def __init__(
        self, db: Db, moved: Callable[[list[tuple[int, int, int]], int, int], None] | None = None
    ) -> None:
        """`moved(moves, revision before, revision after)` is told of every assignment's
        moves (Faces.moved), so that what else is kept follows them."""
        self.db = db
        self._moved = moved or (lambda moves, before, after: None)
        # Every person's entry as `entries` builds it, kept while the revision SQLite's
        # triggers move (schema 7) is the one it was built or last brought up to date at:
        # `apply_assignment` updates it from the faces it moves; any other change drops it.
        self._index: _Index | None = None
        self._unknown: _Unknown | None = None  # the photos with a face of nobody, kept alike

    def merges(self) -> dict[int, int]:
        """Merged person -> the person it was merged into."""
        rows = self.db.conn.execute(
            "SELECT id, merged_into FROM people WHERE merged_into IS NOT NULL"
        )
        return {int(a): int(b) for a, b in rows}

    def rejections(self) -> frozenset[tuple[int, int]]:
        """(face id, person id) pairs the user said "not this person" of."""
        rows = self.db.conn.execute("SELECT face_id, person_id FROM rejections")
        return frozenset((int(f), int(p)) for f, p in rows)

    def named(self) -> frozenset[int]:
        """People the user named."""
        rows = self.db.conn.execute("SELECT id FROM people WHERE name IS NOT NULL")
        return frozenset(int(r[0]) for r in rows)

    def apply_assignment(
        self,
        face_ids: np.ndarray,
        person: np.ndarray,
        new_people: list[np.ndarray],
        previous: np.ndarray,
        folded: Sequence[tuple[int, int]] = (),
    ) -> tuple[int, int]:
        """Write a new assignment: create people, record provisional people folded into others
        as merges, move the faces whose person changed, retire people left with no face.
        Returns (faces changed, people created). One transaction."""
        now = time.time()
        person = person.copy()
        with self.db.transaction() as c:
            for gone, survivor in folded:
                c.execute(
                    "UPDATE people SET merged_into = ?, retired = ? WHERE id = ?",
                    (survivor, now, gone),
                )
                c.execute(
                    "UPDATE OR IGNORE rejections SET person_id = ? WHERE person_id = ?",
                    (survivor, gone),
                )
            for group in new_people:
                pid = c.execute("INSERT INTO people (created) VALUES (?)", (now,)).lastrowid
                person[group] = pid
            changed = np.flatnonzero(person != np.where(previous > 0, previous, 0))
            c.executemany(
                "UPDATE faces SET person_id = ? WHERE id = ?",
                [(int(person[i]) or None, int(face_ids[i])) for i in changed],
            )
            c.execute(
                "UPDATE people SET retired = ? WHERE retired IS NULL AND id NOT IN"
                " (SELECT DISTINCT person_id FROM faces WHERE person_id IS NOT NULL)",
                (now,),
            )
            moves = [
                (int(face_ids[i]), int(previous[i]) if previous[i] > 0 else 0, int(person[i]))
                for i in changed
            ]
        self._follow(moves)
        return len(changed), len(new_people)

    def _follow(self, moves: list[tuple[int, int, int]]) -> None:
        """Bring what is kept (the index; through `moved`, the face table's persons) up to
        date with faces moved from one person to another (0: none), once committed. Each moved
        face moved the revision by one: kept state read at the revision before them holds."""
        index, self._index = self._index, None
        unknown, self._unknown = self._unknown, None
        if self.db.batched:
            self._moved([], -1, -1)  # a batch may still roll back: nothing kept holds
            return
        c = self.db.conn
        now = self.db.revision()
        self._moved(moves, now - len(moves), now)
        if len(moves) > FOLLOWED_MOVES:
            return  # reading afresh is cheaper
        if unknown is not None and unknown.revision == now - len(moves):
            unknown.move(c, moves)
            unknown.revision = now
            self._unknown = unknown
        if index is None or index.revision != now - len(moves):
            return  # something else changed meanwhile
        if index.move(c, moves):
            index.revision = now
            self._index = index

    def entries(self) -> list[PersonEntry]:
        """Every person with faces, but those the user hid: id, name, face ids (oldest first)
        and photos."""
        now = self.db.revision()
        if self._index is None or self._index.revision != now:
            self._index = _Index(now, self._read_entries())
        return self._index.entries()

    def _read_entries(self) -> list[PersonEntry]:
        # Three plain scans joined here: the ordered join in SQL walks the person index and
        # fetches each face's whole row (its descriptor included) out of order, twice as slow.
        conn = self.db.conn
        rows = conn.execute(
            "SELECT person_id, id, image_id, COALESCE(track_end - track_start, 0) FROM faces"
            " WHERE person_id IS NOT NULL"
        ).fetchall()
        rows.sort()
        people = conn.execute("SELECT id, name, hidden IS NOT NULL FROM people").fetchall()
        names = {pid: name for pid, name, _ in people}
        hidden = {pid for pid, _, is_hidden in people if is_hidden}
        paths = dict(conn.execute("SELECT id, path FROM images").fetchall())
        grouped: dict[int, tuple[list[int], dict[int, bytes]]] = {}
        longest: dict[int, int] = {}
        for pid, fid, iid, track_ms in rows:
            if pid in hidden:
                continue
            faces, images = grouped.setdefault(pid, ([], {}))
            faces.append(fid)
            images[iid] = bytes(paths[iid])
            if track_ms:
                longest[pid] = max(longest.get(pid, 0), track_ms)
        return [
            PersonEntry(pid, names.get(pid), tuple(f), i, longest.get(pid, 0))
            for pid, (f, i) in grouped.items()
        ]

    def unknown_images(self) -> dict[int, bytes]:
        """Photos holding at least one face that belongs to nobody (a new dict each call).

        Kept between calls like the entries: while the revision holds, only faces added since
        (a new face has nobody, and does not move the revision) are read; assignments are
        followed (`_follow`)."""
        now = self.db.revision()
        if self._unknown is None or self._unknown.revision != now:
            self._unknown = _Unknown(now)
        self._unknown.catch_up(self.db.conn)
        return dict(self._unknown.images)

    def live(self, person_id: int) -> bool:
        """True if `person_id` is a person not retired (nor merged into another)."""
        r = self.db.conn.execute(
            "SELECT 1 FROM people WHERE id = ? AND retired IS NULL", (person_id,)
        ).fetchone()
        return r is not None

    def named_as(self, name: str) -> int | None:
        """The live person called `name`, if any."""
        r = self.db.conn.execute(
            "SELECT id FROM people WHERE retired IS NULL AND name = ?", (name,)
        ).fetchone()
        return int(r[0]) if r else None

    def set_name(self, person_id: int, name: str | None) -> None:
        """Name a person (None clears the name). A name held by someone else moves here."""
        with self.db.transaction() as c:
            if name is not None:
                c.execute(
                    "UPDATE people SET name = NULL WHERE name = ? AND id != ?", (name, person_id)
                )
            c.execute("UPDATE people SET name = ? WHERE id = ?", (name, person_id))

    def merge(self, survivor: int, others: list[int]) -> None:
        """Fold `others` into `survivor` for good; the survivor keeps or takes a name."""
        now = time.time()
        with self.db.transaction() as c:
            name = c.execute("SELECT name FROM people WHERE id = ?", (survivor,)).fetchone()[0]
            for other in others:
                other_name = c.execute("SELECT name FROM people WHERE id = ?", (other,)).fetchone()[
                    0
                ]
                c.execute(
                    "UPDATE people SET merged_into = ?, retired = ?, name = NULL WHERE id = ?",
                    (survivor, now, other),
                )
                if name is None and other_name is not None:
                    name = other_name
                    c.execute("UPDATE people SET name = ? WHERE id = ?", (name, survivor))
                c.execute("UPDATE faces SET person_id = ? WHERE person_id = ?", (survivor, other))
                # A rejection of a merged person's face now means the survivor.
                c.execute(
                    "UPDATE OR IGNORE rejections SET person_id = ? WHERE person_id = ?",
                    (survivor, other),
                )

    def reject(self, person_id: int, image_ids: list[int]) -> int:
        """Say "these photos are not this person": unassign and forbid the faces behind them."""
        n = 0
        with self.db.transaction() as c:
            for iid in image_ids:
                faces = [
                    r[0]
                    for r in c.execute(
                        "SELECT id FROM faces WHERE image_id = ? AND person_id = ?",
                        (iid, person_id),
                    )
                ]
                for fid in faces:
                    c.execute(
                        "INSERT OR IGNORE INTO rejections (face_id, person_id) VALUES (?, ?)",
                        (fid, person_id),
                    )
                    c.execute("UPDATE faces SET person_id = NULL WHERE id = ?", (fid,))
                n += len(faces)
        return n

    def summary(self) -> list[PersonSummary]:
        """Live people with faces, by id."""
        rows = self.db.conn.execute(
            "SELECT p.id, p.name, COUNT(f.id), COUNT(DISTINCT f.image_id), d.folder,"
            " p.hidden IS NOT NULL, COALESCE(MAX(f.track_end - f.track_start), 0) FROM people p"
            " JOIN faces f ON f.person_id = p.id LEFT JOIN folders d ON d.person_id = p.id"
            " WHERE p.retired IS NULL GROUP BY p.id ORDER BY p.id"
        )
        return [PersonSummary(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6]) for r in rows]

    def reject_face(self, face_id: int, person_id: int) -> int:
        """ "This face is not this person" (returns 1 if it was not said before)."""
        with self.db.transaction() as c:
            n = c.execute(
                "INSERT OR IGNORE INTO rejections (face_id, person_id) VALUES (?, ?)",
                (face_id, person_id),
            ).rowcount
            c.execute(
                "UPDATE faces SET person_id = NULL WHERE id = ? AND person_id = ?",
                (face_id, person_id),
            )
        return int(n)

    def hide(self, person_id: int) -> None:
        """Never publish this person again (until `unhide`); their faces stay theirs."""
        with self.db.transaction() as c:
            c.execute("UPDATE people SET hidden = ? WHERE id = ?", (time.time(), person_id))

    def unhide(self, person_id: int) -> None:
        with self.db.transaction() as c:
            c.execute("UPDATE people SET hidden = NULL WHERE id = ?", (person_id,))

    def assign(self, face_id: int, person_id: int, *, instead_of: int | None) -> None:
        """The user says this face is `person_id` (and not `instead_of`, where it was)."""
        with self.db.transaction() as c:
            c.execute(
                "DELETE FROM rejections WHERE face_id = ? AND person_id = ?", (face_id, person_id)
            )
            if instead_of is not None and instead_of != person_id:
                c.execute(
                    "INSERT OR IGNORE INTO rejections (face_id, person_id) VALUES (?, ?)",
                    (face_id, instead_of),
                )
            c.execute("UPDATE faces SET person_id = ? WHERE id = ?", (person_id, face_id))


class _Unknown:
    """The photos with a face of nobody, kept between reads: faces are numbered in the order
    they were added (AUTOINCREMENT), so those added since are the ones above `seen`; faces
    only leave with their photo, which moves the revision."""

    def __init__(self, revision: int) -> None:
        self.revision = revision
        self.images: dict[int, bytes] = {}
        self.seen = 0  # the highest face id read

    def catch_up(self, c: sqlite3.Connection) -> None:
        """Take in the faces added since the last read (all of them, at the first)."""
        top = c.execute("SELECT seq FROM sqlite_sequence WHERE name = 'faces'").fetchone()
        top = int(top[0]) if top else 0
        if top <= self.seen:
            return
        rows = c.execute(
            "SELECT DISTINCT i.id, i.path FROM faces f JOIN images i ON i.id = f.image_id"
            " WHERE f.person_id IS NULL AND f.id > ? AND f.id <= ?",
            (self.seen, top),
        )
        self.images.update((r[0], bytes(r[1])) for r in rows)
        self.seen = top

    def move(self, c: sqlite3.Connection, moves: list[tuple[int, int, int]]) -> None:
        """Apply faces moved (face id, from person, to person; 0: none), as committed."""
        self.catch_up(c)  # faces added before the moves, as they are now
        for face, old, new in moves:
            if old and new:
                continue
            row = c.execute(
                "SELECT i.id, i.path, EXISTS (SELECT 1 FROM faces g WHERE g.image_id = i.id"
                " AND g.person_id IS NULL) FROM faces f JOIN images i ON i.id = f.image_id"
                " WHERE f.id = ?",
                (face,),
            ).fetchone()
            if row is None:
                continue
            if row[2]:
                self.images[row[0]] = bytes(row[1])
            else:
                self.images.pop(row[0], None)


class _Index:
    """People's entries kept between reads."""

    def __init__(self, revision: int, entries: list[PersonEntry]) -> None:
        self.revision = revision
        self.by_person = {e.person_id: e for e in entries}

    def entries(self) -> list[PersonEntry]:
        return list(self.by_person.values())

    def move(self, c: sqlite3.Connection, moves: list[tuple[int, int, int]]) -> bool:
        """Apply faces moved (face id, from person, to person; 0: none), as committed (`c`
        reads the database after them). False if this index cannot follow: a face kept from a
        clip (its person's longest track would have to be found again)."""
        if not moves:
            return True
        rows: dict[int, tuple[int, bytes, bool]] = {}
        ids = [m[0] for m in moves]
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for r in c.execute(
                "SELECT f.id, f.image_id, i.path, f.track IS NOT NULL FROM faces f"
                f" JOIN images i ON i.id = f.image_id WHERE f.id IN ({marks})",
                chunk,
            ):
                rows[r[0]] = (r[1], bytes(r[2]), bool(r[3]))
        if len(rows) != len(ids) or any(tracked for _, _, tracked in rows.values()):
            return False
        touched = sorted({p for m in moves for p in m[1:] if p})
        marks = ",".join("?" * len(touched))
        people = {
            r[0]: (r[1], bool(r[2]))
            for r in c.execute(
                f"SELECT id, name, hidden IS NOT NULL FROM people WHERE id IN ({marks})", touched
            )
        }
        faces: dict[int, list[int]] = {}
        images: dict[int, dict[int, bytes]] = {}
        longest: dict[int, int] = {}  # moved faces are a photo's: a track's stays as it was
        for pid in touched:
            entry = self.by_person.get(pid)
            faces[pid] = list(entry.face_ids) if entry else []
            images[pid] = dict(entry.images) if entry else {}
            longest[pid] = entry.longest_track_ms if entry else 0
        for face, old, new in moves:
            image, path, _ = rows[face]
            if old:
                if face in faces[old]:
                    faces[old].remove(face)
                still = c.execute(
                    "SELECT 1 FROM faces WHERE person_id = ? AND image_id = ? LIMIT 1",
                    (old, image),
                ).fetchone()
                if still is None:
                    images[old].pop(image, None)
            if new:
                bisect.insort(faces[new], face)
                images[new][image] = path
        for pid in touched:
            name, hidden = people.get(pid, (None, False))
            if faces[pid] and not hidden:
                self.by_person[pid] = PersonEntry(
                    pid, name, tuple(faces[pid]), images[pid], longest[pid]
                )
            else:
                self.by_person.pop(pid, None)
        return True
