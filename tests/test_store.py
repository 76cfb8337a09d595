"""The SQLite store: idempotent records, moves, deletions, one writer, versioned schema."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from faced.errors import StoreError, StoreFullError
from faced.people.identity import same_faces
from faced.pipeline.policy import ReclusterState
from faced.records import EncodeResult, Face, FileStat, FolderRule
from faced.store import Store
from faced.store.schema import MIGRATIONS, SCHEMA_VERSION


def result(path: bytes, digest: str, n_faces: int = 1, mtime: int = 1) -> EncodeResult:
    faces = tuple(
        Face((10 * i, 20 + 10 * i, 20 + 10 * i, 10 * i), np.full(128, i, np.float32), b"jpeg")
        for i in range(n_faces)
    )
    return EncodeResult.found(
        path, FileStat(100, mtime, digest), faces, size=(50, 50), detector="hog-up1-2048", model="m"
    )


def face_ids(store: Store) -> list[int]:
    return [int(i) for i in store.faces.table("m").face_id]


def test_record_is_idempotent_and_keeps_face_ids(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        store.images.record(result(b"/p/a.jpg", "h1", 2), match=same_faces)
        first = face_ids(store)
        # Same content found again (say, touched: new mtime): same rows, nothing re-created.
        assert (
            store.images.record(result(b"/p/a.jpg", "h1", 2, mtime=2), match=same_faces).changed
            is False
        )
        assert face_ids(store) == first
        assert store.images.get(b"/p/a.jpg") is not None
        assert store.images.get(b"/p/a.jpg").mtime_ns == 2  # type: ignore[union-attr]
        # Changed content replaces the faces.
        store.images.record(result(b"/p/a.jpg", "h2", 1), match=same_faces)
        assert len(face_ids(store)) == 1 and face_ids(store)[0] not in first


def test_forget_move_and_tree(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        for name in (b"/p/x/1.jpg", b"/p/x/2.jpg", b"/p/y.jpg"):
            store.images.record(result(name, name.decode()), match=same_faces)
        ids = face_ids(store)
        assert store.images.move(b"/p/y.jpg", b"/q/y.jpg")
        assert face_ids(store) == ids  # a rename keeps its faces
        assert sorted(store.images.forget_tree(b"/p/x")) == [b"/p/x/1.jpg", b"/p/x/2.jpg"]
        assert list(store.images.all()) == [b"/q/y.jpg"]
        assert store.images.forget([b"/q/y.jpg"]) == 1 and face_ids(store) == []


def test_any_file_name_round_trips(tmp_path: Path) -> None:
    weird = b"/p/caf\xe9 \n\xff.jpg"  # not UTF-8, with a newline
    with Store(tmp_path) as store:
        store.images.record(result(weird, "h"), match=same_faces)
        assert list(store.images.all()) == [weird]


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    with Store(tmp_path), pytest.raises(StoreError, match="another faced"):
        Store(tmp_path)
    assert Store.owner_running(tmp_path) is False


def test_wal_schema_version_and_readonly(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        store.images.record(result(b"/p/a.jpg", "h"), match=same_faces)
    with Store(tmp_path, readonly=True) as ro:
        assert ro.counts(FolderRule(2))["faces"] == 1
        with pytest.raises(sqlite3.OperationalError):
            ro.conn.execute("DELETE FROM images")
    with sqlite3.connect(tmp_path / "faced.sqlite3") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer faced"):
        Store(tmp_path)


def test_no_state_yet(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no faced state"):
        Store(tmp_path / "nothing", readonly=True)


def test_the_recluster_record_round_trips(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        assert ReclusterState.load(store) == ReclusterState()
        ReclusterState(12.5, 7, "fp").save(store)
        assert ReclusterState.load(store) == ReclusterState(12.5, 7, "fp")


def test_migration_3_turns_the_old_policy_strings_into_one_record(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "faced.sqlite3") as db:
        for statement in ";".join(MIGRATIONS[:2]).split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute("PRAGMA user_version = 2")
        db.execute("INSERT INTO meta VALUES ('full_recluster', '1700000000.25 42')")
        db.execute("INSERT INTO meta VALUES ('clustered', 'faces 3/42 unassigned 0')")
    with Store(tmp_path) as store:
        state = ReclusterState.load(store)
        keys = {r[0] for r in store.conn.execute("SELECT key FROM meta")}
    assert state == ReclusterState(1700000000.25, 42, "faces 3/42 unassigned 0")
    assert keys == {"recluster"}


def test_a_damaged_database_is_refused_at_start_with_the_way_out(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        for i in range(200):
            store.images.record(result(f"/p/{i}.jpg".encode(), f"h{i}", 3), match=same_faces)
    db = tmp_path / "faced.sqlite3"
    data = bytearray(db.read_bytes())
    page = 4096
    for offset in range(page * 2, len(data) - page, page * 3):  # scribble over some pages
        data[offset + 100 : offset + 600] = os.urandom(500)
    db.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="faced restore"):
        Store(tmp_path)


def test_a_full_disk_is_a_store_full_error_with_nothing_written(tmp_path: Path) -> None:
    with Store(tmp_path / "state") as store:
        store.images.record(result(b"/p/a.jpg", "a"), match=same_faces)
        pages = store.db.conn.execute("PRAGMA page_count").fetchone()[0]
        store.db.conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "disk full"
        with pytest.raises(StoreFullError, match="is full"):
            store.images.record(result(b"/p/b.jpg", "b", n_faces=40), match=same_faces)
        assert store.images.get(b"/p/b.jpg") is None and not store.db.conn.in_transaction
        store.db.conn.execute(f"PRAGMA max_page_count = {pages * 100}")
        store.images.record(result(b"/p/b.jpg", "b", n_faces=40), match=same_faces)
        assert store.images.get(b"/p/b.jpg") is not None


def test_a_weak_detection_is_marked_in_the_clustering_table(tmp_path: Path) -> None:
    faces = (
        Face((0, 10, 10, 0), np.zeros(128, np.float32), b"j", score=0.4),
        Face((20, 30, 30, 20), np.ones(128, np.float32), b"j", score=-0.05),
        Face((40, 50, 50, 40), np.full(128, 2, np.float32), b"j"),  # score unknown: a face
    )
    with Store(tmp_path) as store:
        store.images.record(
            EncodeResult.found(
                b"/p/a.jpg", FileStat(1, 1, "a"), faces, size=(60, 60), detector="d", model="m"
            ),
            match=same_faces,
        )
        assert store.faces.table("m").weak.tolist() == [False, True, False]


def test_rows_under_a_folder_come_from_a_range_of_the_path_index(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        for path in (b"/p/a/1.jpg", b"/p/a/sub/2.jpg", b"/p/ab/3.jpg", b"/p/a.jpg", b"/q/4.jpg"):
            store.images.record(result(path, path.decode()), match=same_faces)
        assert sorted(store.images.rows_under([b"/p/a/"])) == [b"/p/a/1.jpg", b"/p/a/sub/2.jpg"]
        assert sorted(store.images.under(b"/p/a")) == [b"/p/a/1.jpg", b"/p/a/sub/2.jpg"]
        plan = store.db.conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM images WHERE path >= ? AND path < ?",
            (b"/p/", b"/p0"),
        ).fetchall()
        assert "INDEX" in str(plan)


def test_a_batch_commits_its_writes_together(tmp_path: Path) -> None:
    with Store(tmp_path) as store, store.batch():
        store.images.record(result(b"/p/a.jpg", "a"), match=same_faces)
        store.images.record(result(b"/p/b.jpg", "b"), match=same_faces)
        with Store(tmp_path, readonly=True) as reader:  # not yet visible to another reader
            assert reader.counts(FolderRule(3))["images"] == 0
    with Store(tmp_path, readonly=True) as reader:
        assert reader.counts(FolderRule(3))["images"] == 2


def test_a_failed_batch_keeps_none_of_its_writes(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        with pytest.raises(RuntimeError), store.batch():
            store.images.record(result(b"/p/a.jpg", "a"), match=same_faces)
            raise RuntimeError("the writer died here")
        assert store.counts(FolderRule(3))["images"] == 0
        store.images.record(result(b"/p/b.jpg", "b"), match=same_faces)  # it writes on
        assert store.counts(FolderRule(3))["images"] == 1


def test_a_write_that_fails_inside_a_batch_undoes_only_itself(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        with store.batch():
            store.images.record(result(b"/p/a.jpg", "a"), match=same_faces)
            with pytest.raises(RuntimeError), store.db.transaction() as c:
                c.execute("DELETE FROM images")
                raise RuntimeError("one photo's write failed")
            store.images.record(result(b"/p/b.jpg", "b"), match=same_faces)
        assert sorted(store.images.rows_under([b"/p/"])) == [b"/p/a.jpg", b"/p/b.jpg"]


def test_the_face_table_kept_between_calls_is_what_a_fresh_read_gives(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        store.images.record(result(b"/p/a.jpg", "a", 2), match=same_faces)
        store.images.record(result(b"/p/b.jpg", "b", 1), match=same_faces)
        store.faces.table("m")  # kept from here on
        store.images.record(result(b"/p/c.jpg", "c", 3), match=same_faces)  # new faces
        store.images.forget([b"/p/a.jpg"])  # and some gone
        kept = store.faces.table("m")
    with Store(tmp_path) as fresh:
        read = fresh.faces.table("m")
    assert kept.face_id.tolist() == read.face_id.tolist() and len(read) == 4
    assert (kept.photo_id == read.photo_id).all() and (kept.weak == read.weak).all()
    np.testing.assert_array_equal(kept.encoding, read.encoding)


def test_the_published_links_kept_between_calls_follow_every_save(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        store.published.save({1: ("a", "s1"), 2: ("b", "s2")}, {1: {b"x.jpg": 10}, 2: {b"y": 11}})
        assert store.published.links() == {1: {b"x.jpg": 10}, 2: {b"y": 11}}
        store.published.save({1: ("a", "s1"), 3: ("c", "s3")}, {1: {b"x.jpg": 10}, 3: {b"z": 12}})
        kept = store.published.links()
        with Store(tmp_path, exclusive=False) as other:  # another connection writes
            assert other.published.links() == kept == {1: {b"x.jpg": 10}, 3: {b"z": 12}}
            other.published.save({1: ("a", "s9")}, {1: {b"w.jpg": 13}})
        assert store.published.links() == {1: {b"w.jpg": 13}}


def entries_read_afresh(
    tmp_path: Path,
) -> list[tuple[int, str | None, tuple[int, ...], dict[int, bytes]]]:
    with Store(tmp_path, exclusive=False) as fresh:
        return sorted((e.person_id, e.name, e.face_ids, e.images) for e in fresh.people.entries())


def test_the_people_kept_between_calls_are_what_a_fresh_read_gives(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        for name, n in ((b"a", 2), (b"b", 1), (b"c", 3)):
            store.images.record(result(b"/p/" + name, name.decode(), n), match=same_faces)
        t = store.faces.table("m")  # faces 1-6: a has 1, 2; b has 3; c has 4, 5, 6
        none = np.zeros(len(t), np.int64)
        store.people.apply_assignment(t.face_id, none, [np.array([0, 2]), np.array([3, 4])], none)
        store.people.entries()  # kept from here on
        t = store.faces.table("m")
        moved = t.person_id.copy()
        moved[[1, 5]] = moved[0]  # faces 2 and 6 join the first person; face 4 leaves its own
        moved[3] = 0
        store.people.apply_assignment(t.face_id, moved, [], t.person_id)
        kept = sorted((e.person_id, e.name, e.face_ids, e.images) for e in store.people.entries())
        assert kept == entries_read_afresh(tmp_path)
        assert [e[2] for e in kept] == [(1, 2, 3, 6), (5,)]
        store.images.move(b"/p/c", b"/p/d")  # a path changes: the triggers say so
        assert sorted(
            (e.person_id, e.name, e.face_ids, e.images) for e in store.people.entries()
        ) == entries_read_afresh(tmp_path)
        with Store(tmp_path, exclusive=False) as other:  # another connection names someone
            other.people.set_name(kept[1][0], "Ann")
        assert [e.name for e in store.people.entries() if e.person_id == kept[1][0]] == ["Ann"]


def test_the_persons_kept_in_the_face_table_follow_every_writer(tmp_path: Path) -> None:
    def fresh() -> list[int]:
        with Store(tmp_path, exclusive=False) as other:
            return [int(p) for p in other.faces.table("m").person_id]

    with Store(tmp_path) as store:
        store.images.record(result(b"/p/a", "a", 2), match=same_faces)
        store.images.record(result(b"/p/b", "b", 2), match=same_faces)
        t = store.faces.table("m")  # kept from here on
        none = np.zeros(len(t), np.int64)
        store.people.apply_assignment(t.face_id, none, [np.array([0, 2])], none)
        assert store.faces.table("m").person_id.tolist() == fresh() == [1, -1, 1, -1]
        store.images.record(result(b"/p/c", "c", 1), match=same_faces)  # a new face, nobody's
        assert store.faces.table("m").person_id.tolist() == fresh() == [1, -1, 1, -1, -1]
        with Store(tmp_path, exclusive=False) as other:  # another connection rejects a face
            other.people.reject_face(1, 1)
        assert store.faces.table("m").person_id.tolist() == fresh() == [-1, -1, 1, -1, -1]
        store.images.forget([b"/p/a"])  # faces gone
        assert store.faces.table("m").person_id.tolist() == fresh() == [1, -1, -1]
        with pytest.raises(ValueError):  # handed out as kept: nobody may change them
            store.faces.table("m").person_id[0] = 7


def test_the_unknown_photos_kept_between_calls_follow_every_writer(tmp_path: Path) -> None:
    def fresh() -> dict[int, bytes]:
        with Store(tmp_path, exclusive=False) as other:
            return other.people.unknown_images()

    with Store(tmp_path) as store:
        store.images.record(result(b"/p/a", "a", 2), match=same_faces)
        store.images.record(result(b"/p/b", "b", 1), match=same_faces)
        assert store.people.unknown_images() == fresh() == {1: b"/p/a", 2: b"/p/b"}  # kept
        t = store.faces.table("m")
        none = np.zeros(len(t), np.int64)
        store.people.apply_assignment(t.face_id, none, [np.array([0, 2])], none)
        assert store.people.unknown_images() == fresh() == {1: b"/p/a"}  # one face of a left
        store.images.record(result(b"/p/c", "c", 1), match=same_faces)  # a new face, nobody's
        assert store.people.unknown_images() == fresh() == {1: b"/p/a", 3: b"/p/c"}
        t = store.faces.table("m")
        placed = t.person_id.copy()
        placed[1] = placed[0]  # a's second face joins, c's face is placed too
        placed[3] = placed[0]
        store.people.apply_assignment(t.face_id, placed, [], t.person_id)
        assert store.people.unknown_images() == fresh() == {}
        with Store(tmp_path, exclusive=False) as other:  # another connection rejects a face
            other.people.reject_face(4, int(placed[0]))
        assert store.people.unknown_images() == fresh() == {3: b"/p/c"}
        store.images.move(b"/p/c", b"/p/d")
        assert store.people.unknown_images() == fresh() == {3: b"/p/d"}


def test_a_changed_folder_writes_only_its_changed_links(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        many = {b"%d.jpg" % i: i for i in range(1000)}
        store.published.save({1: ("a", "s1")}, {1: many})
        assert store.published.links() == {1: many}  # read, as the edits read them, and kept
        changes = store.db.conn.total_changes
        grown = {**many, b"new.jpg": 5000}
        del grown[b"7.jpg"]
        grown[b"8.jpg"] = 6000  # the same name, another photo
        store.published.save({1: ("a", "s2")}, {1: grown})
        # The folder's row, and three links: one gone, one new, one changed (out and in).
        assert store.db.conn.total_changes - changes <= 8
    with Store(tmp_path) as fresh:
        assert fresh.published.links() == {1: grown}
