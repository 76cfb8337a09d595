"""`faced scan` end to end on the real shared photo sets, and the CLI contract."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from .conftest import (
    EXTRAS,
    NOISY,
    PhotoLibrary,
    faced,
    faced_json,
    people_folders,
    person_of,
    run_cli,
)


def face_rows(state: Path) -> list[tuple[int, bytes]]:
    with sqlite3.connect(state / "faced.sqlite3") as db:
        return [
            (r[0], bytes(r[1]))
            for r in db.execute(
                "SELECT f.id, i.path FROM faces f JOIN images i ON i.id = f.image_id ORDER BY f.id"
            )
        ]


def test_fixture_small_gives_eight_pure_people(small_template: PhotoLibrary) -> None:
    folders = people_folders(small_template.people)
    assert len(folders) == 8
    labels = [{person_of(link) for link in links} for links in folders.values()]
    assert all(len(s) == 1 for s in labels), labels
    assert len(set.union(*labels)) == 8
    for folder in folders:
        assert (small_template.people / folder / "montage.jpg").stat().st_size > 1000


def test_rescan_reads_nothing_and_changes_nothing(
    small: PhotoLibrary, capsys: pytest.CaptureFixture[str]
) -> None:
    before = face_rows(small.state)
    links = {k: [p.name for p in v] for k, v in people_folders(small.people).items()}
    capsys.readouterr()
    assert small.scan() == 0
    assert "scan done: 0 photo(s) read, 65 unchanged" in capsys.readouterr().out
    assert face_rows(small.state) == before
    assert {k: [p.name for p in v] for k, v in people_folders(small.people).items()} == links


def test_deleted_photo_leaves_its_folder(
    small: PhotoLibrary, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = small.photos / "madonna" / "train_2.jpg"
    assert any(
        os.path.realpath(link) == str(victim)
        for links in people_folders(small.people).values()
        for link in links
    )
    victim.unlink()
    assert small.scan() == 0
    every_link = [link for links in people_folders(small.people).values() for link in links]
    every_link += list((small.people / "unknown").iterdir())
    assert all(os.path.realpath(link) != str(victim) for link in every_link)
    assert all(path != os.fsencode(victim) for _, path in face_rows(small.state))
    assert faced_json("status", "--state", small.state, capsys=capsys)["images"] == 64  # type: ignore[index]


def test_moved_photo_is_recognised_not_reencoded(
    small: PhotoLibrary, capsys: pytest.CaptureFixture[str]
) -> None:
    before = face_rows(small.state)
    src = small.photos / "elton_john" / "train_2.jpg"
    dest = small.photos / "renamed folder" / "élton 1.jpg"
    dest.parent.mkdir()
    src.rename(dest)
    capsys.readouterr()
    assert small.scan() == 0
    assert "0 photo(s) read, 64 unchanged, 1 moved, 0 gone" in capsys.readouterr().out
    after = face_rows(small.state)
    assert [i for i, _ in after] == [i for i, _ in before]
    assert os.fsencode(dest) in {p for _, p in after}


def test_user_files_in_person_folders_are_never_touched(small: PhotoLibrary) -> None:
    folder = next(iter(people_folders(small.people)))
    note = small.people / folder / "notes.txt"
    note.write_text("mine", encoding="utf-8")
    (small.photos / "madonna" / "train_2.jpg").unlink()  # forces folders to be rebuilt
    (small.photos / "ben_afflek" / "train_1.jpg").unlink()
    assert small.scan() == 0
    found = [p for p in small.people.rglob("notes.txt")]
    assert len(found) == 1 and found[0].read_text(encoding="utf-8") == "mine"
    assert not (small.people / ".faced-staging").exists()


@pytest.mark.photos
def test_group_photos_put_different_people_in_different_folders(tmp_path: Path) -> None:
    # Obama and Biden are in two photos each: folders from two faces on.
    config = tmp_path / "faced.yaml"
    config.write_text("clustering:\n  min_faces: 2\n", encoding="utf-8")
    args = ("scan", EXTRAS / "group", "--config", config)
    assert faced(*args, "--output", tmp_path / "p", "--state", tmp_path / "s") == 0
    with sqlite3.connect(tmp_path / "s" / "faced.sqlite3") as db:
        pairs = db.execute("SELECT image_id, person_id FROM faces WHERE person_id IS NOT NULL")
        seen = [tuple(r) for r in pairs]
    assert len(seen) == len(set(seen))  # no person twice in one photo
    obama_biden = {"obama_and_biden.jpg", "two_people_obama_biden.jpg"}
    holding_both = [
        f
        for f, links in people_folders(tmp_path / "p").items()
        if {link.name for link in links} >= obama_biden
    ]
    assert len(holding_both) == 2  # Obama and Biden: two people, each in both photos


@pytest.mark.photos
def test_photos_without_faces(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        faced("scan", EXTRAS / "noface", "--output", tmp_path / "p", "--state", tmp_path / "s") == 0
    )
    status = faced_json("status", "--state", tmp_path / "s", capsys=capsys)
    assert isinstance(status, dict)
    assert (status["images"], status["faces"], status["errors"], status["people"]) == (7, 0, 0, 0)


@pytest.mark.photos
def test_noisy_web_images_are_all_accounted_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = [p for p in NOISY.rglob("*") if p.suffix.lower() == ".jpg"]
    assert faced("scan", NOISY, "--output", tmp_path / "p", "--state", tmp_path / "s") == 0
    status = faced_json("status", "--state", tmp_path / "s", capsys=capsys)
    assert isinstance(status, dict)
    assert status["images"] + status["errors"] == len(photos) == 147
    assert status["people"] >= 5


def make_bad_files(folder: Path, good: Path) -> int:
    """Broken and odd files beside a good photo; returns how many are unreadable."""
    data = good.read_bytes()
    bad = {
        "zero.jpg": b"",
        "random.jpg": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "page.jpg": b"<html><head><title>Error</title></head></html>",
        "truncated.jpg": data[: len(data) // 3],
    }
    for name, content in bad.items():
        (folder / name).write_bytes(content)
    (folder / "folder.jpg").mkdir()  # a directory with a photo's name
    (folder / "loop.jpg").symlink_to(folder / "loop.jpg")  # a symlink loop
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to(folder, target_is_directory=True)  # a directory loop
    for name in ("with space.jpg", "ünïcødé.jpg", "new\nline.jpg"):
        shutil.copy(good, folder / name)
    return len(bad)


@pytest.mark.photos
def test_bad_files_are_recorded_once_and_the_run_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    good = EXTRAS.parent / "fixture_small" / "steve_wozniak" / "steve_wozniak1.jpg"
    n_bad = make_bad_files(photos, good)
    before = sorted((p, p.lstat().st_mtime_ns) for p in photos.rglob("*"))
    capsys.readouterr()
    args = ("scan", photos, "--output", tmp_path / "people", "--state", tmp_path / "state")
    assert faced(*args) == 0
    err = capsys.readouterr().err
    for name in ("zero.jpg", "random.jpg", "page.jpg", "truncated.jpg"):
        assert err.count(name) == 1, name  # logged once, with its path
    status = faced_json("status", "--state", tmp_path / "state", capsys=capsys)
    assert isinstance(status, dict)
    assert status["errors"] == n_bad and status["images"] == 3 and status["faces"] == 3
    reasons = {Path(e["path"]).name: e["reason"] for e in status["recent_errors"]}
    assert "empty" in reasons["zero.jpg"] and "HTML" in reasons["page.jpg"]
    # A second run does not read or log them again; the photos folder was never written to.
    assert faced(*args) == 0
    assert "zero.jpg" not in capsys.readouterr().err
    assert sorted((p, p.lstat().st_mtime_ns) for p in photos.rglob("*")) == before


def test_cli_contract(tmp_path: Path) -> None:
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("faced ")
    for sub in ("", "scan", "run", "status", "people", "name", "merge", "reject", "eval"):
        out = run_cli(*([sub] if sub else []), "--help")
        assert out.returncode == 0 and "usage: faced" in out.stdout, sub
    assert run_cli("scan", tmp_path / "missing", "--output", tmp_path / "p").returncode == 2
    assert run_cli("scan", "--output", tmp_path / "p").returncode == 2  # no folder given
    assert run_cli("frobnicate").returncode == 2
    status = run_cli("status", "--state", tmp_path / "empty", "--json")
    assert status.returncode == 0 and '"images": 0' in status.stdout
