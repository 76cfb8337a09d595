"""People, corrections and what was published: the part of the store the user's decisions live in.

A base class of Store (faced/store.py), kept apart because it is a responsibility of its own: it
uses only the connection and the transaction helper the Store provides.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Sequence

import numpy as np

from faced.identity import PeopleState
from faced.layout import PersonEntry


class PeopleRecords:
    """People, names, merges, rejections and the published folders, in SQLite."""

    conn: sqlite3.Connection

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # provided by Store

    # -- people ------------------------------------------------------------------------------

    def people_state(self) -> PeopleState:
        """Merges and rejections, as identity.assign_people takes them."""
        merged = dict(
            self.conn.execute(
                "SELECT id, merged_into FROM people WHERE merged_into IS NOT NULL"
            ).fetchall()
        )
        rejected = frozenset(
            (int(f), int(p))
            for f, p in self.conn.execute("SELECT face_id, person_id FROM rejections")
        )
        named = frozenset(
            int(r[0]) for r in self.conn.execute("SELECT id FROM people WHERE name IS NOT NULL")
        )
        return PeopleState(merged, rejected, named)

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
        with self.transaction() as c:
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
        return len(changed), len(new_people)

    def people_entries(self) -> list[PersonEntry]:
        """Every person with faces: id, name, face ids (oldest first) and photos."""
        rows = self.conn.execute(
            "SELECT f.person_id, f.id, i.id, i.path FROM faces f JOIN images i ON i.id = f.image_id"
            " WHERE f.person_id IS NOT NULL ORDER BY f.person_id, f.id"
        ).fetchall()
        names = dict(self.conn.execute("SELECT id, name FROM people").fetchall())
        grouped: dict[int, tuple[list[int], dict[int, bytes]]] = {}
        for pid, fid, iid, path in rows:
            faces, images = grouped.setdefault(pid, ([], {}))
            faces.append(fid)
            images[iid] = bytes(path)
        return [PersonEntry(pid, names.get(pid), tuple(f), i) for pid, (f, i) in grouped.items()]

    def unknown_images(self) -> dict[int, bytes]:
        """Photos holding at least one face that belongs to nobody."""
        rows = self.conn.execute(
            "SELECT DISTINCT i.id, i.path FROM faces f JOIN images i ON i.id = f.image_id"
            " WHERE f.person_id IS NULL"
        )
        return {r[0]: bytes(r[1]) for r in rows}

    def find_person(self, token: str) -> int | None:
        """A live person by id ("7"), default folder name ("person_0007") or name."""
        t = token.strip()
        digits = t[len("person_") :] if t.startswith("person_") else t
        if digits.isdigit():
            r = self.conn.execute(
                "SELECT id FROM people WHERE id = ? AND retired IS NULL", (int(digits),)
            ).fetchone()
            if r:
                return int(r[0])
        r = self.conn.execute(
            "SELECT id FROM people WHERE retired IS NULL AND name = ?", (t,)
        ).fetchone()
        if r:
            return int(r[0])
        r = self.conn.execute(
            "SELECT person_id FROM folders WHERE folder = ? AND person_id > 0", (t,)
        ).fetchone()
        return int(r[0]) if r else None

    def set_name(self, person_id: int, name: str | None) -> None:
        """Name a person (None clears the name). A name held by someone else moves here."""
        with self.transaction() as c:
            if name is not None:
                c.execute(
                    "UPDATE people SET name = NULL WHERE name = ? AND id != ?", (name, person_id)
                )
            c.execute("UPDATE people SET name = ? WHERE id = ?", (name, person_id))

    def merge(self, survivor: int, others: list[int]) -> None:
        """Fold `others` into `survivor` for good; the survivor keeps or takes a name."""
        now = time.time()
        with self.transaction() as c:
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
        with self.transaction() as c:
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

    def people_summary(self) -> list[dict[str, object]]:
        """Live people: id, name, folder, faces, photos."""
        rows = self.conn.execute(
            "SELECT p.id, p.name, COUNT(f.id), COUNT(DISTINCT f.image_id), d.folder FROM people p"
            " JOIN faces f ON f.person_id = p.id LEFT JOIN folders d ON d.person_id = p.id"
            " WHERE p.retired IS NULL GROUP BY p.id ORDER BY p.id"
        )
        return [
            {
                "id": r[0],
                "person": f"person_{r[0]:04d}",
                "name": r[1],
                "faces": r[2],
                "photos": r[3],
                "folder": r[4],
            }
            for r in rows
        ]

    # -- what was published --------------------------------------------------------------------

    def published(self) -> dict[int, tuple[str, str]]:
        """Person id -> (folder, signature) as last published."""
        return {
            r[0]: (r[1], r[2])
            for r in self.conn.execute("SELECT person_id, folder, signature FROM folders")
        }

    def published_links(self) -> dict[int, dict[bytes, int]]:
        """Person id -> {link name: image id} as last published."""
        out: dict[int, dict[bytes, int]] = {}
        for pid, link, iid in self.conn.execute("SELECT person_id, link, image_id FROM links"):
            out.setdefault(pid, {})[bytes(link)] = iid
        return out

    def save_published(
        self, applied: dict[int, tuple[str, str]], links: dict[int, dict[bytes, int]]
    ) -> None:
        """Record what is now on disk, replacing the previous record."""
        with self.transaction() as c:
            c.execute("DELETE FROM folders")
            c.execute("DELETE FROM links")
            c.executemany(
                "INSERT INTO folders (person_id, folder, signature) VALUES (?, ?, ?)",
                [(pid, f, s) for pid, (f, s) in applied.items()],
            )
            c.executemany(
                "INSERT INTO links (person_id, link, image_id) VALUES (?, ?, ?)",
                [(pid, name, iid) for pid in applied for name, iid in links.get(pid, {}).items()],
            )
