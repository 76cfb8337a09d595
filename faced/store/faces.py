"""The faces and thumbs tables: descriptors as arrays for clustering, crops for montages."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from faced.records import Box
from faced.store.db import Db

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
    weak: np.ndarray  # bool (n,): found only below the detector's own line (score < 0)

    def __len__(self) -> int:
        return len(self.face_id)


@dataclass(frozen=True)
class FaceRow:
    """One face with its photo, for exports and evaluation."""

    face_id: int
    image_id: int
    path: bytes
    box: Box
    frame_ms: int | None
    person_id: int | None
    encoding: np.ndarray  # float32 (128,)


class Faces:
    """Faces as the clustering, the montages and the exports read them."""

    def __init__(self, db: Db) -> None:
        self.db = db

    def table(self, model: str) -> FaceTable:
        """Every face described by `model`, as arrays for clustering."""
        rows = self.db.conn.execute(
            f"SELECT id, {_PHOTO_OF_FACE}, COALESCE(person_id, -1), encoding,"
            " COALESCE(score, 0) < 0 FROM faces WHERE model = ? ORDER BY id",
            (model,),
        ).fetchall()
        n = len(rows)
        enc = np.frombuffer(b"".join(r[3] for r in rows), dtype="<f4").reshape(n, 128)
        ids = np.array([(r[0], r[1], r[2]) for r in rows], dtype=np.int64).reshape(n, 3)
        weak = np.array([bool(r[4]) for r in rows], dtype=bool)
        return FaceTable(ids[:, 0], ids[:, 1], ids[:, 2], enc.astype(np.float32), weak)

    def rows(self, *, assigned_only: bool = False) -> list[FaceRow]:
        """Every face (or every face with a person) with its photo's path, by face id."""
        where = " WHERE f.person_id IS NOT NULL" if assigned_only else ""
        rows = self.db.conn.execute(
            "SELECT f.id, f.image_id, i.path, f.box_top, f.box_right, f.box_bottom, f.box_left,"
            " f.frame_ms, f.person_id, f.encoding FROM faces f JOIN images i ON i.id = f.image_id"
            f"{where} ORDER BY f.id"
        )
        return [
            FaceRow(
                r[0],
                r[1],
                bytes(r[2]),
                (r[3], r[4], r[5], r[6]),
                r[7],
                r[8],
                np.frombuffer(r[9], dtype="<f4"),
            )
            for r in rows
        ]

    def keyed(self) -> list[tuple[int, str, Box, int | None]]:
        """(face id, photo's content hash, box, person id or None) of every face whose photo
        was read whole: the faces as a decisions file names them."""
        rows = self.db.conn.execute(
            "SELECT f.id, i.digest, f.box_top, f.box_right, f.box_bottom, f.box_left, f.person_id"
            " FROM faces f JOIN images i ON i.id = f.image_id WHERE i.digest IS NOT NULL"
            " ORDER BY f.id"
        )
        return [(r[0], str(r[1]), (r[2], r[3], r[4], r[5]), r[6]) for r in rows]

    def of_image(self, image_id: int) -> list[tuple[int, int | None]]:
        """(face id, person id or None) of an image's faces, the largest first."""
        rows = self.db.conn.execute(
            "SELECT id, person_id FROM faces WHERE image_id = ?"
            " ORDER BY (box_bottom - box_top) * (box_right - box_left) DESC, id",
            (image_id,),
        )
        return [(int(r[0]), r[1]) for r in rows]

    def thumbs(self, face_ids: Iterable[int]) -> dict[int, bytes]:
        """JPEG crops of the given faces."""
        ids = list(face_ids)
        out: dict[int, bytes] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            q = f"SELECT face_id, jpeg FROM thumbs WHERE face_id IN ({','.join('?' * len(chunk))})"
            out.update((r[0], bytes(r[1])) for r in self.db.conn.execute(q, chunk))
        return out

    def count(self) -> int:
        return int(self.db.conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0])

    def max_id(self) -> int:
        return int(self.db.conn.execute("SELECT COALESCE(MAX(id), 0) FROM faces").fetchone()[0])

    def unassigned_since(self, face_id: int) -> int:
        """Faces newer than `face_id` that belong to nobody yet."""
        row = self.db.conn.execute(
            "SELECT COUNT(*) FROM faces WHERE id > ? AND person_id IS NULL", (face_id,)
        ).fetchone()
        return int(row[0])
