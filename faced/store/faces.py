"""The faces and thumbs tables: descriptors as arrays for clustering, crops for montages."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from faced.records import Box
from faced.store.db import Db
from faced.store.images import Seen

# Faces of one video frame share a "photo" id: the image id, scaled, plus the frame's time.
_PHOTO_OF_FACE = "image_id * 1000000000 + COALESCE(frame_ms, 0)"
# Faces of one track share a track id: the image id, scaled, plus the track's number; -1 for
# a face of a photo.
_TRACK_OF_FACE = "CASE WHEN track IS NULL THEN -1 ELSE image_id * 1000000 + track END"


_Kept = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]

# The precision descriptors are kept in, in memory (the store holds them in float32): dlib's
# components lie within +-0.5, where float16's step is at most 2.4e-4, so a distance moves by
# about 1e-4 (docs/decisions/performance.md), and a million faces take 256 MB instead of 512.
DESCRIPTOR_DTYPE = np.float16


class _Columns:
    """The kept arrays of faces (ids, photo ids, weak, descriptors, track ids) with room to
    grow: faces added are written into spare room at the end, instead of every descriptor
    being copied into a new array at each refresh (512 MB at a million faces). Handed out as
    read-only views of the first `n` rows, which later appends never change."""

    def __init__(self) -> None:
        self.n = 0
        self.columns: _Kept = (
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, bool),
            np.zeros((0, 128), DESCRIPTOR_DTYPE),
            np.zeros(0, np.int64),
        )

    def view(self) -> _Kept:
        out = tuple(c[: self.n] for c in self.columns)
        for array in out:  # handed out as they are (FaceTable): nobody may change them
            array.flags.writeable = False
        return out  # type: ignore[return-value]

    def append(self, more: _Kept) -> _Kept:
        m = len(more[0])
        if self.n + m > len(self.columns[0]):
            room = max(self.n + m, len(self.columns[0]) * 5 // 4 + 1024)
            grown = []
            for old in self.columns:
                c = np.zeros((room, *old.shape[1:]), old.dtype)
                c[: self.n] = old[: self.n]
                grown.append(c)
            self.columns = tuple(grown)  # type: ignore[assignment]
        for column, new in zip(self.columns, more, strict=True):
            column[self.n : self.n + m] = new
        self.n += m
        return self.view()

    def keep(self, alive: np.ndarray) -> _Kept:
        """Only the faces `alive` marks (a mask over the kept rows)."""
        self.columns = tuple(c[: self.n][alive] for c in self.columns)
        self.n = len(self.columns[0])
        return self.view()


@dataclass(frozen=True)
class FaceTable:
    """All faces as arrays, ordered by face id. person_id is -1 where unassigned.

    `photo_id` is equal for faces seen together (one photo, or one frame of a video): the
    two-faces-in-one-photo rule applies to it. `track_id` is equal for the faces kept from
    one track of a clip (-1: a photo's face): a track is one person."""

    face_id: np.ndarray  # int64 (n,)
    photo_id: np.ndarray  # int64 (n,)
    person_id: np.ndarray  # int64 (n,)
    encoding: np.ndarray  # DESCRIPTOR_DTYPE (float16) (n, 128): widen it for arithmetic
    weak: np.ndarray  # bool (n,): found only below the detector's own line (score < 0)
    track_id: np.ndarray  # int64 (n,)

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
        # What never changes of a face (its photo, its score, its descriptor: rows are never
        # updated but for their person, and ids never reused), kept between `table` calls per
        # model, so that a refresh of a large library reads only ids and persons, and the new
        # faces. Arrays by face id: ids, photo ids, weak, encodings, track ids.
        self._kept: dict[str, _Columns] = {}
        # Each face's person, by model, with the revision (Db.revision) it was read at: it
        # holds while the revision does, but for faces added since (a new face has no person
        # yet, and adding one does not move the revision); `moved` follows assignments.
        self._persons: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}

    def table(self, model: str) -> FaceTable:
        """Every face described by `model`, as arrays for clustering (read-only)."""
        ids, person = self._persons_of(model)
        kept_ids, photo, weak, enc, track = self._kept_faces(model, ids)
        at = np.minimum(np.searchsorted(kept_ids, ids), max(len(kept_ids) - 1, 0))
        if len(ids) and not np.array_equal(kept_ids[at], ids):
            # Not the faces this connection kept (the file was replaced): read them all again.
            self._kept.pop(model, None)
            kept_ids, photo, weak, enc, track = self._kept_faces(model, ids)
            at = np.searchsorted(kept_ids, ids)
        if len(kept_ids) == len(ids):  # every kept face is alive: the arrays as they are
            return FaceTable(ids, photo, person, enc, weak, track)
        return FaceTable(ids, photo[at], person, enc[at], weak[at], track[at])

    def _persons_of(self, model: str) -> tuple[np.ndarray, np.ndarray]:
        """Face ids and their persons (-1: none), from what is kept when it still holds."""
        revision = self.db.revision()
        kept = self._persons.get(model)
        if kept is not None and kept[0] == revision:
            _, ids, person = kept
        else:  # read every face again
            ids, person = np.zeros(0, np.int64), np.zeros(0, np.int64)
        rows = self.db.conn.execute(
            "SELECT id, COALESCE(person_id, -1) FROM faces WHERE model = ? AND id > ? ORDER BY id",
            (model, int(ids[-1]) if len(ids) else -1),
        ).fetchall()
        if rows:
            more = np.array(rows, dtype=np.int64).reshape(len(rows), 2)
            ids = np.concatenate([ids, more[:, 0]])
            person = np.concatenate([person, more[:, 1]])
        ids.flags.writeable = person.flags.writeable = False
        self._persons[model] = (revision, ids, person)
        return ids, person

    def moved(self, moves: list[tuple[int, int, int]], before: int, after: int) -> None:
        """Faces moved from one person to another (face id, from, to; 0: none), which took
        the revision from `before` to `after` (People.apply_assignment): the kept persons
        follow if they were read at `before`, else they are read again next time."""
        for model, (revision, ids, person) in list(self._persons.items()):
            if revision != before or after < 0:
                del self._persons[model]
                continue
            if moves and len(ids):
                faces = np.array([m[0] for m in moves], dtype=np.int64)
                to = np.array([m[2] if m[2] > 0 else -1 for m in moves], dtype=np.int64)
                at = np.minimum(np.searchsorted(ids, faces), len(ids) - 1)
                found = ids[at] == faces
                person = person.copy()  # copied only when something moved: the kept one is shared
                person[at[found]] = to[found]
                person.flags.writeable = False
            self._persons[model] = (after, ids, person)

    def _kept_faces(self, model: str, ids: np.ndarray) -> _Kept:
        """The kept arrays, brought up to date with the faces in `ids` (ascending)."""
        columns = self._kept.setdefault(model, _Columns())
        kept = columns.view()
        if len(kept[0]) > 2 * len(ids) + 1000:  # many faces gone since: keep only the living
            kept = columns.keep(np.isin(kept[0], ids))
        last = int(kept[0][-1]) if len(kept[0]) else -1
        if len(ids) and int(ids[-1]) > last:
            rows = self.db.conn.execute(
                f"SELECT id, {_PHOTO_OF_FACE}, COALESCE(score, 0) < 0, encoding, {_TRACK_OF_FACE}"
                " FROM faces WHERE model = ? AND id > ? ORDER BY id",
                (model, last),
            ).fetchall()
            n = len(rows)
            kept = columns.append(
                (
                    np.array([r[0] for r in rows], dtype=np.int64),
                    np.array([r[1] for r in rows], dtype=np.int64),
                    np.array([bool(r[2]) for r in rows], dtype=bool),
                    np.frombuffer(b"".join(r[3] for r in rows), dtype="<f4").reshape(n, 128),
                    np.array([r[4] for r in rows], dtype=np.int64),
                )
            )
        return kept

    def overlapping_tracks(self, model: str) -> list[tuple[int, int]]:
        """Pairs of track ids (as in FaceTable.track_id) on screen at the same time in one
        clip: two faces seen together, never one person."""
        rows = self.db.conn.execute(
            f"SELECT image_id, {_TRACK_OF_FACE}, MIN(track_start), MAX(track_end) FROM faces"
            " WHERE model = ? AND track IS NOT NULL GROUP BY image_id, track"
            " ORDER BY image_id, MIN(track_start)",
            (model,),
        ).fetchall()
        pairs = []
        for i, (image, track, _, end) in enumerate(rows):
            for other_image, other, start, _ in rows[i + 1 :]:
                if other_image != image or start >= end:
                    break  # sorted by start: no later track of this clip overlaps
                pairs.append((int(track), int(other)))
        return pairs

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

    def keyed(self) -> list[tuple[int, str, Seen, int | None]]:
        """(face id, file's content hash, where the face was seen, person id or None) of every
        face whose file was read whole: the faces as a decisions file names them. Where a face
        was seen is its box and, in a clip, its moment and track (Seen: what same_faces pairs)."""
        rows = self.db.conn.execute(
            "SELECT f.id, i.digest, f.box_top, f.box_right, f.box_bottom, f.box_left,"
            " f.frame_ms, f.track, f.track_start, f.track_end, f.person_id"
            " FROM faces f JOIN images i ON i.id = f.image_id WHERE i.digest IS NOT NULL"
            " ORDER BY f.id"
        )
        return [
            (r[0], str(r[1]), ((r[2], r[3], r[4], r[5]), r[6], r[7], r[8], r[9]), r[10])
            for r in rows
        ]

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
