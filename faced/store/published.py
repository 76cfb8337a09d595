"""The folders and links tables: what faced last published, to tell the user's edits apart."""

from __future__ import annotations

from faced.store.db import Db


class Published:
    """Person id -> (folder, signature), and the links each folder holds, as last applied."""

    def __init__(self, db: Db) -> None:
        self.db = db
        # The links as last read or saved, with the database's data_version then: `save` is
        # the only writer of the table in this process, and data_version moves when another
        # connection commits, so an unchanged version means unchanged rows. Read-only for
        # callers.
        self._links: tuple[int, dict[int, dict[bytes, int]]] | None = None

    def person_with_folder(self, folder: str) -> int | None:
        """The person whose folder was last published as `folder`, if any."""
        r = self.db.conn.execute(
            "SELECT person_id FROM folders WHERE folder = ? AND person_id > 0", (folder,)
        ).fetchone()
        return int(r[0]) if r else None

    def folders(self) -> dict[int, tuple[str, str]]:
        """Person id -> (folder, signature) as last published."""
        return {
            r[0]: (r[1], r[2])
            for r in self.db.conn.execute("SELECT person_id, folder, signature FROM folders")
        }

    def links(self) -> dict[int, dict[bytes, int]]:
        """Person id -> {link name: image id} as last published (not to be modified)."""
        version = self.db.data_version()
        if self._links is not None and self._links[0] == version:
            return self._links[1]
        out: dict[int, dict[bytes, int]] = {}
        for pid, link, iid in self.db.conn.execute("SELECT person_id, link, image_id FROM links"):
            out.setdefault(pid, {})[bytes(link)] = iid
        self._links = (version, out)
        return out

    def save(self, applied: dict[int, tuple[str, str]], links: dict[int, dict[bytes, int]]) -> None:
        """Record what is now on disk, replacing the previous record. Only the people whose
        folder or signature changed are written: the signature covers the folder's name and
        every link, so an unchanged one means unchanged rows. Of a changed folder whose
        previous links are known (kept), only the links that changed are written: a photo
        joining a folder of 100,000 is one row. `links` are kept as they are (the planner's,
        never changed afterwards): they must not be modified."""
        before = self.folders()
        gone = [pid for pid in before if before[pid] != applied.get(pid)]
        new = [pid for pid in applied if before.get(pid) != applied[pid]]
        if not gone and not new:
            return
        version = self.db.data_version()
        kept = self._links[1] if self._links is not None and self._links[0] == version else None
        self._links = None
        drop: list[tuple[int, bytes]] = []  # rows of links that went or changed
        add: list[tuple[int, bytes, int]] = []
        whole = [p for p in gone if p not in applied or kept is None]  # all their rows go
        for pid in new:
            now = links.get(pid, {})
            old = kept.get(pid, {}) if kept is not None and pid in before else None
            if old is None:
                add.extend((pid, name, iid) for name, iid in now.items())
                continue
            drop.extend((pid, n) for n, iid in old.items() if now.get(n) != iid)
            add.extend((pid, n, iid) for n, iid in now.items() if old.get(n) != iid)
        with self.db.transaction() as c:
            c.executemany("DELETE FROM folders WHERE person_id = ?", [(p,) for p in gone])
            c.executemany("DELETE FROM links WHERE person_id = ?", [(p,) for p in whole])
            c.executemany("DELETE FROM links WHERE person_id = ? AND link = ?", drop)
            c.executemany(
                "INSERT INTO folders (person_id, folder, signature) VALUES (?, ?, ?)",
                [(pid, *applied[pid]) for pid in new],
            )
            c.executemany("INSERT INTO links (person_id, link, image_id) VALUES (?, ?, ?)", add)
        if kept is not None:  # the table as now written, without reading it back
            table = {pid: v for pid, v in kept.items() if pid not in gone}
            table.update({pid: links[pid] for pid in new if links.get(pid)})
            for pid, now in links.items():  # hold the caller's dicts, not equal copies
                if table.get(pid) is not now and table.get(pid) == now:
                    table[pid] = now
            self._links = (version, table)
