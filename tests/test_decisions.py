"""Nothing the user decided or owns is lost: names, corrections and their files survive settings
changes, vanished folders, a second faced, rebuilds and a lost state."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from faced.publish.observe import read_marker

from .conftest import PhotoLibrary, faced, faced_json, people_folders, person_of
from .test_people import folder_of, who_is_where

pytestmark = pytest.mark.photos


def name_elton_and_reject_one(lib: PhotoLibrary) -> Path:
    """Rename Elton John's folder to Elton and delete one of its links; returns the photo."""
    (lib.people / folder_of(lib.people, "elton_john")).rename(lib.people / "Elton")
    victim = people_folders(lib.people)["Elton"][0]
    photo = Path(os.path.realpath(victim))
    victim.unlink()
    assert lib.scan() == 0
    return photo


def linked(lib: PhotoLibrary, folder: str) -> set[str]:
    return {os.path.realpath(p) for p in people_folders(lib.people).get(folder, [])}


def ids(lib: PhotoLibrary, capsys: pytest.CaptureFixture[str]) -> set[int]:
    people = faced_json("people", "--state", lib.state, capsys=capsys)
    assert isinstance(people, list)
    return {int(p["id"]) for p in people}


def decided_then_read_again(
    lib: PhotoLibrary, settings: str, capsys: pytest.CaptureFixture[str]
) -> tuple[Path, set[int]]:
    """Name Elton and reject one of his photos, then scan with the config `settings`, which
    read every photo again. Returns the rejected photo and the people's ids before."""
    rejected = name_elton_and_reject_one(lib)
    before = ids(lib, capsys)
    config = lib.root / "faced.yaml"
    config.write_text(settings, encoding="utf-8")
    capsys.readouterr()
    assert (
        faced("scan", lib.photos, "-o", lib.people, "--state", lib.state, "--config", config) == 0
    )
    assert "65 photo(s) read" in capsys.readouterr().out  # every photo was read again
    return rejected, before


def test_a_detection_settings_change_keeps_names_people_and_rejections(
    small: PhotoLibrary, capsys: pytest.CaptureFixture[str]
) -> None:
    rejected, before = decided_then_read_again(small, "detection: {hog_threshold: -0.09}\n", capsys)
    assert ids(small, capsys) == before  # nobody retired and re-created
    assert "Elton" in people_folders(small.people)
    assert str(rejected) not in linked(small, "Elton")


def test_an_emptied_watched_folder_is_offline_and_forgets_nothing(small: PhotoLibrary) -> None:
    name_elton_and_reject_one(small)
    before = {f: linked(small, f) for f in people_folders(small.people)}
    away = small.root / "photos.away"
    small.photos.rename(away)
    small.photos.mkdir()  # an unmounted share: the mount point is still there, empty
    assert small.scan() == 0
    assert {f: linked(small, f) for f in people_folders(small.people)} == before
    small.photos.rmdir()
    away.rename(small.photos)
    assert small.scan() == 0
    assert {f: linked(small, f) for f in people_folders(small.people)} == before


def test_forget_missing_forgets_an_emptied_folder(
    small: PhotoLibrary, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.rmtree(small.photos)
    small.photos.mkdir()
    assert (
        faced("scan", small.photos, "-o", small.people, "--state", small.state, "--forget-missing")
        == 0
    )
    status = faced_json("status", "--state", small.state, capsys=capsys)
    assert isinstance(status, dict) and status["images"] == 0


def put_unknown_photo_into(lib: PhotoLibrary, folder: str) -> Path:
    """Move a link from unknown/ into `folder` (the user's "this is them") and scan."""
    there = linked(lib, folder)
    link = next(
        p
        for p in sorted((lib.people / "unknown").iterdir())
        if p.is_symlink() and os.path.realpath(p) not in there
    )
    photo = Path(os.path.realpath(link))
    link.rename(lib.people / folder / link.name)
    assert lib.scan() == 0
    return photo


def test_a_photo_that_comes_back_gets_its_person_back(small: PhotoLibrary) -> None:
    name_elton_and_reject_one(small)
    photo = put_unknown_photo_into(small, "Elton")  # Elton by the user's word, not clustering
    assert str(photo) in linked(small, "Elton")
    kept = small.root / "kept.jpg"
    shutil.move(photo, kept)
    assert small.scan() == 0
    assert str(photo) not in linked(small, "Elton")
    restored = small.photos / "restored" / photo.name  # back, somewhere else
    restored.parent.mkdir()
    shutil.move(kept, restored)
    assert small.scan() == 0
    assert str(restored) in linked(small, "Elton")


def test_a_rejected_photo_that_comes_back_stays_out(small: PhotoLibrary) -> None:
    rejected = name_elton_and_reject_one(small)
    kept = small.root / "kept.jpg"
    shutil.move(rejected, kept)
    assert small.scan() == 0
    shutil.move(kept, rejected)
    assert small.scan() == 0
    assert str(rejected) not in linked(small, "Elton")


def test_a_second_state_refuses_the_people_folder(
    small: PhotoLibrary, capsys: pytest.CaptureFixture[str]
) -> None:
    name_elton_and_reject_one(small)
    before = {f: linked(small, f) for f in people_folders(small.people)}
    capsys.readouterr()
    other = small.root / "other-state"
    assert faced("scan", small.photos, "-o", small.people, "--state", other) == 1
    assert "published by another faced state" in capsys.readouterr().err
    assert small.scan() == 0  # the owner reads no false edits
    assert {f: linked(small, f) for f in people_folders(small.people)} == before


def another_elton_photo(lib: PhotoLibrary, name: str) -> tuple[Path, Path]:
    """Elton's folder, and a new copy of one of his photos called `name` (not scanned yet)."""
    name_elton_and_reject_one(lib)
    photo = Path(os.path.realpath(people_folders(lib.people)["Elton"][0]))
    newcomer = lib.photos / "new" / name
    newcomer.parent.mkdir()
    shutil.copy2(photo, newcomer)
    return lib.people / "Elton", newcomer


def test_a_user_folder_named_like_a_new_link_is_kept(small: PhotoLibrary) -> None:
    elton, newcomer = another_elton_photo(small, "IMG_0001.jpg")
    (elton / "IMG_0001.jpg").mkdir()
    (elton / "IMG_0001.jpg" / "mine.txt").write_text("mine", encoding="utf-8")
    assert small.scan() == 0
    assert small.scan() == 0
    assert (elton / "IMG_0001.jpg" / "mine.txt").read_text(encoding="utf-8") == "mine"
    assert str(newcomer) in linked(small, "Elton")  # under another name


def rejections(lib: PhotoLibrary) -> int:
    with sqlite3.connect(f"file:{lib.state / 'faced.sqlite3'}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT COUNT(*) FROM rejections").fetchone()[0])


def test_a_user_file_named_like_a_new_link_stays_and_is_no_rejection(small: PhotoLibrary) -> None:
    elton, newcomer = another_elton_photo(small, "IMG_0002.jpg")
    (elton / "IMG_0002.jpg").write_bytes(b"the user's own file")
    before = rejections(small)
    assert small.scan() == 0
    assert small.scan() == 0
    assert (elton / "IMG_0002.jpg").read_bytes() == b"the user's own file"
    assert str(newcomer) in linked(small, "Elton")
    assert rejections(small) == before


def test_the_users_own_symlinks_survive_a_rebuild(small: PhotoLibrary) -> None:
    name_elton_and_reject_one(small)
    elton = small.people / "Elton"
    photo = Path(os.path.realpath(people_folders(small.people)["Elton"][0]))
    outside = small.root / "elsewhere.txt"
    outside.write_text("x", encoding="utf-8")
    (elton / "my shortcut").symlink_to(outside)
    (elton / "note.txt").write_text("keep me", encoding="utf-8")
    shutil.copy2(photo, small.photos / "again.jpg")  # a new photo: the folder is rebuilt
    assert small.scan() == 0
    assert str(small.photos / "again.jpg") in linked(small, "Elton")
    assert (elton / "my shortcut").is_symlink() and (elton / "note.txt").exists()


def test_a_person_folder_renamed_to_the_staging_name_loses_nothing(small: PhotoLibrary) -> None:
    folder = folder_of(small.people, "guido_van_rossum")
    (small.people / folder / "note.txt").write_text("keep me", encoding="utf-8")
    (small.people / folder).rename(small.people / ".faced-staging")
    assert small.scan() == 0
    notes = list(small.people.rglob("note.txt"))
    assert [n.read_text(encoding="utf-8") for n in notes] == ["keep me"]


def test_a_deleted_marker_is_recreated(small: PhotoLibrary) -> None:
    folder = small.people / folder_of(small.people, "guido_van_rossum")
    (folder / ".faced-person").unlink()
    photo = Path(os.path.realpath(next(p for p in folder.iterdir() if p.is_symlink())))
    shutil.copy2(photo, small.photos / "guido_again.jpg")
    assert small.scan() == 0
    assert (folder / ".faced-person").exists()
    assert str(small.photos / "guido_again.jpg") in linked(small, folder.name)


def test_a_lost_state_is_rebuilt_from_the_folders(small: PhotoLibrary) -> None:
    guido = folder_of(small.people, "guido_van_rossum")
    (small.people / guido).rename(small.people / "Guido")
    (small.people / "Guido" / "note.txt").write_text("keep me", encoding="utf-8")
    assert small.scan() == 0
    shutil.rmtree(small.state)  # the state is lost
    assert small.scan() == 0
    assert {person_of(p) for p in people_folders(small.people)["Guido"]} == {"guido_van_rossum"}
    assert (small.people / "Guido" / "note.txt").read_text(encoding="utf-8") == "keep me"


def test_a_link_moved_from_unknown_into_a_folder_assigns_the_face(
    small: PhotoLibrary, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = folder_of(small.people, "paul_allen")

    def faces() -> int:
        people = faced_json("people", "--state", small.state, capsys=capsys)
        assert isinstance(people, list)
        return int(next(p["faces"] for p in people if p["folder"] == folder))

    before = faces()
    photo = str(put_unknown_photo_into(small, folder))
    assert faces() == before + 1
    newcomer = Path(os.path.realpath(people_folders(small.people)[folder][0]))
    shutil.copy2(newcomer, small.photos / "again.jpg")  # both folders are rebuilt
    (small.photos / "unknown_too.jpg").write_bytes(Path(photo).read_bytes())
    assert small.scan() == 0
    assert photo in linked(small, folder)
    unknown = small.people / "unknown"
    assert photo not in {os.path.realpath(p) for p in unknown.iterdir() if p.is_symlink()}


def test_a_deleted_person_folder_hides_the_person_until_unhidden(
    small: PhotoLibrary, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = folder_of(small.people, "paul_allen")
    shutil.rmtree(small.people / folder)
    assert small.scan() == 0
    assert folder not in people_folders(small.people)
    people = faced_json("people", "--state", small.state, capsys=capsys)
    assert isinstance(people, list) and [p["hidden"] for p in people if p["person"] == folder] == [
        True
    ]
    assert faced("unhide", folder, "--state", small.state) == 0
    assert folder in people_folders(small.people)


def test_backup_and_restore(small: PhotoLibrary, capsys: pytest.CaptureFixture[str]) -> None:
    name_elton_and_reject_one(small)
    backup = small.root / "faced-backup.sqlite3"
    assert faced("backup", backup, "--state", small.state) == 0
    assert faced("name", "Elton", "Reginald", "--state", small.state) == 0
    assert faced("restore", backup, "--state", small.state) == 0
    people = faced_json("people", "--state", small.state, capsys=capsys)
    assert isinstance(people, list) and "Elton" in {p["name"] for p in people}


def test_decisions_exported_apply_to_a_fresh_state(
    small: PhotoLibrary, capsys: pytest.CaptureFixture[str]
) -> None:
    rejected = name_elton_and_reject_one(small)
    decisions = small.root / "decisions.json"
    assert faced("decisions", "export", decisions, "--state", small.state) == 0
    data = json.loads(decisions.read_text(encoding="utf-8"))
    assert data["faced_decisions"] == 2 and data["rejections"]
    fresh, people = small.root / "fresh", small.root / "people2"
    assert faced("scan", small.photos, "-o", people, "--state", fresh) == 0
    assert faced("decisions", "import", decisions, "--state", fresh) == 0
    elton = {os.path.realpath(p) for p in people_folders(people).get("Elton", [])}
    assert elton and str(rejected) not in elton
    assert who_is_where(people)["Elton"] == "elton_john"


def damage_an_index(state: Path) -> None:
    """An index whose entries no longer match its table: the full integrity check finds it
    (quick_check does not), while the tables themselves can still be read."""
    with sqlite3.connect(state / "faced.sqlite3") as db:
        db.execute("PRAGMA writable_schema = ON")
        db.execute(
            "UPDATE sqlite_schema SET sql = 'CREATE INDEX images_digest ON images (size)' "
            "WHERE name = 'images_digest'"
        )


def scribble_over(state: Path) -> None:
    """Random bytes over many pages: past salvage."""
    db = state / "faced.sqlite3"
    data = bytearray(db.read_bytes())
    for offset in range(4096 * 2, len(data) - 4096, 4096 * 2):
        data[offset + 100 : offset + 900] = os.urandom(800)
    db.write_bytes(bytes(data))


def test_check_tells_a_sound_state_from_a_damaged_one(
    small: PhotoLibrary, capsys: pytest.CaptureFixture[str]
) -> None:
    assert faced("check", "--state", small.state) == 0
    assert "sound" in capsys.readouterr().out
    damage_an_index(small.state)
    assert faced("check", "--state", small.state) == 1
    out = capsys.readouterr().out
    assert "damaged" in out and "faced check --repair" in out


def repair(lib: PhotoLibrary) -> int:
    config = lib.root / "faced.yaml"
    config.write_text(
        f"watch: [{lib.photos}]\noutput: {lib.people}\nstate: {lib.state}\n", encoding="utf-8"
    )
    return faced("check", "--repair", "--config", config)


def test_repair_keeps_names_and_rejections_salvaged_from_the_damaged_state(
    small: PhotoLibrary,
) -> None:
    rejected = name_elton_and_reject_one(small)
    damage_an_index(small.state)
    assert repair(small) == 0
    assert faced("check", "--state", small.state) == 0
    assert list(small.state.glob("faced.sqlite3.damaged-*"))  # kept, never deleted
    assert who_is_where(small.people)["Elton"] == "elton_john"
    assert linked(small, "Elton") and str(rejected) not in linked(small, "Elton")


def test_repair_past_salvage_takes_the_names_back_from_the_folders(small: PhotoLibrary) -> None:
    name_elton_and_reject_one(small)
    scribble_over(small.state)
    assert repair(small) == 0
    assert faced("check", "--state", small.state) == 0
    assert who_is_where(small.people)["Elton"] == "elton_john"


def test_a_photo_joining_a_person_is_linked_in_place(small: PhotoLibrary) -> None:
    folder = small.people / folder_of(small.people, "elton_john")
    inode = folder.stat().st_ino
    photo = Path(os.path.realpath(people_folders(small.people)[folder.name][0]))
    (small.photos / "more").mkdir()
    shutil.copy2(photo, small.photos / "more" / "elton_again.jpg")
    assert small.scan() == 0
    assert folder.stat().st_ino == inode  # the same folder: one symlink added, no rebuild
    names = {p.name for p in people_folders(small.people)[folder.name]}
    marker = read_marker(folder)
    assert any("elton_again" in n for n in names)
    assert marker is not None and marker.links == frozenset(os.fsencode(n) for n in names)
    assert not marker.leaving and marker.faces is not None
