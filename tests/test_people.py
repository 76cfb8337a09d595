"""People as the user sees them: stable ids, names from folder renames, corrections that hold."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path

import pytest

from .conftest import SMALL, PhotoLibrary, faced, faced_json, people_folders, person_of


def who_is_where(people: Path) -> dict[str, str]:
    """Folder -> the label most of its photos carry."""
    return {
        folder: Counter(person_of(p) for p in links).most_common(1)[0][0]
        for folder, links in people_folders(people).items()
    }


def folder_of(people: Path, label: str) -> str:
    return next(f for f, who in who_is_where(people).items() if who == label)


@pytest.mark.photos
def test_ids_are_stable_as_photos_arrive_in_batches(tmp_path: Path) -> None:
    lib = PhotoLibrary(tmp_path, tmp_path / "photos", tmp_path / "people", tmp_path / "state")
    everyone = sorted(p for p in SMALL.rglob("*.jpg"))
    batches = [everyone[0::3], everyone[1::3], everyone[2::3]]
    seen: dict[str, str] = {}
    for batch in batches:
        for photo in batch:
            dest = lib.photos / photo.parent.name / photo.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(photo, dest)
        assert lib.scan() == 0
        now = who_is_where(lib.people)
        for folder, label in seen.items():
            assert now.get(folder) == label, (folder, label, now)  # nobody renamed or reshuffled
        seen.update(now)
    assert len(seen) == 8 and len(set(seen.values())) == 8


def test_renaming_a_folder_names_the_person(
    small: PhotoLibrary, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = folder_of(small.people, "madonna")
    (small.people / folder).rename(small.people / "Madonna Ciccone")
    extra = small.photos / "more" / "madonna_again.jpg"
    extra.parent.mkdir()
    shutil.copy2(SMALL / "madonna" / "train_2.jpg", extra)  # a new copy: a new photo to place
    assert small.scan() == 0
    named = small.people / "Madonna Ciccone"
    assert not (small.people / folder).exists()
    assert extra.name in {p.name for p in named.iterdir()}
    people = faced_json("people", "--state", small.state, capsys=capsys)
    assert isinstance(people, list)
    assert {"person": folder, "name": "Madonna Ciccone"}.items() <= next(
        p for p in people if p["person"] == folder
    ).items()


def test_a_removed_link_never_comes_back(small: PhotoLibrary) -> None:
    folder = small.people / folder_of(small.people, "jerry_seinfeld")
    victim = sorted(p for p in folder.iterdir() if p.is_symlink())[0]
    victim.unlink()
    assert small.scan() == 0
    assert not (folder / victim.name).exists()
    # More photos arrive and everything is re-clustered: the face still stays out.
    for i, photo in enumerate(sorted((SMALL / "jerry_seinfeld").glob("*.jpg"))[:3]):
        shutil.copy2(photo, small.photos / f"jerry_copy_{i}.jpg")
    assert small.scan() == 0
    assert not (folder / victim.name).exists()
    assert len([p for p in folder.iterdir() if p.is_symlink()]) >= 3


def test_reject_on_the_cli(small: PhotoLibrary) -> None:
    folder = folder_of(small.people, "elton_john")
    link = sorted(p for p in (small.people / folder).iterdir() if p.is_symlink())[0]
    assert faced("reject", folder, link, "--state", small.state) == 0
    assert not link.exists()


def test_merge_survives_reclustering(small: PhotoLibrary) -> None:
    a, b = folder_of(small.people, "ben_afflek"), folder_of(small.people, "steve_wozniak")
    assert faced("name", b, "Woz", "--state", small.state) == 0
    assert faced("merge", a, "Woz", "--state", small.state) == 0
    folders = people_folders(small.people)
    assert a not in folders and "Woz" in folders  # the merged person keeps the name
    assert {person_of(p) for p in folders["Woz"]} == {"ben_afflek", "steve_wozniak"}
    shutil.copy2(SMALL / "ben_afflek" / "train_5.jpg", small.photos / "ben_new.jpg")
    assert small.scan() == 0
    folders = people_folders(small.people)
    assert len(folders) == 7 and "ben_new.jpg" in {p.name for p in folders["Woz"]}


@pytest.mark.parametrize("hostile", ["../x", "a/b", ".hidden", "x" * 300])
def test_hostile_names_stay_inside_the_people_folder(small: PhotoLibrary, hostile: str) -> None:
    folder = folder_of(small.people, "mindy_kaling")
    assert faced("name", folder, hostile, "--state", small.state) == 0
    inside = {p.name for p in small.people.iterdir()}
    assert folder not in inside
    assert all(not n.startswith(".") or n in (".faced-staging", ".faced-owner") for n in inside)
    assert {p.name for p in small.root.iterdir()} == {"photos", "people", "state"}
    assert len(people_folders(small.people)) == 8


def test_name_errors(small: PhotoLibrary) -> None:
    assert faced("name", "person_9999", "X", "--state", small.state) == 2
    assert faced("name", "person_0001", "..", "--state", small.state) == 2


def test_the_daemon_places_new_faces_on_a_large_library(
    small: PhotoLibrary, tmp_path: Path
) -> None:
    from faced.config import load_config
    from faced.pipeline.library import Library
    from faced.store import Store

    config = tmp_path / "incremental.yaml"
    config.write_text("daemon: {incremental_above: 0, full_recluster_faces: 3}\n", encoding="utf-8")
    cfg = load_config(config).with_paths(output=small.people, state=small.state)
    before = who_is_where(small.people)
    elton = small.people / folder_of(small.people, "elton_john")
    for i, link in enumerate(sorted(p for p in elton.iterdir() if p.is_symlink())[:2]):
        shutil.copy2(os.path.realpath(link), small.photos / f"elton_again_{i}.jpg")
    from faced.cli.commands import encoder

    with Store(small.state) as store:
        lib = Library(cfg, store)
        plan = lib.planner.plan([small.photos])
        for done in encoder(cfg, [small.photos])(plan.todo):
            lib.record_all(done)
        report = lib.refresh(incremental=True)
        assert report.incremental and report.changed == 2
        assert {"elton_again_0.jpg", "elton_again_1.jpg"} <= {p.name for p in elton.iterdir()}
        assert who_is_where(small.people) == before
        # Enough faces waiting unplaced: the next refresh is a full re-cluster.
        for i, photo in enumerate(
            sorted((SMALL.parent / "fixture_extras" / "group").glob("*.jpg"))
        ):
            shutil.copy2(photo, small.photos / f"group_{i}.jpg")
        plan = lib.planner.plan([small.photos])
        for done in encoder(cfg, [small.photos])(plan.todo):
            lib.record_all(done)
        # Strangers stay unplaced; with three or more waiting, the refresh re-clusters fully.
        assert not lib.refresh(incremental=True).incremental
