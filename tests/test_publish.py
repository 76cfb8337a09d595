"""Publishing a plan: what changes on disk when a folder changes a little, and what a reader
sees meanwhile. Plans are made by hand, the photos are empty files: no faces needed."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from faced.publish.folders import KEEP_TARGETS, Publisher
from faced.publish.layout import FolderPlan, link_names
from faced.publish.observe import MARKER, MONTAGE, survey

STATE = "test-state"


def thumbs(face_ids: list[int]) -> dict[int, bytes]:
    """A grey crop per face, darker for higher ids: a montage shows which faces it holds."""
    out = {}
    for fid in face_ids:
        ok, data = cv2.imencode(".jpg", np.full((32, 32, 3), 255 - fid % 200, np.uint8))
        assert ok
        out[fid] = data.tobytes()
    return out


class Folders:
    """One people folder, published plan after plan as the library does."""

    def __init__(self, root: Path) -> None:
        self.photos = root / "photos"
        self.people = root / "people"
        self.photos.mkdir()
        self.publisher = Publisher(self.people, thumbs, 32, STATE)
        self.published: dict[int, tuple[str, str]] = {}

    def plan(self, images: dict[int, bytes], faces: tuple[int, ...] = (1, 2)) -> FolderPlan:
        return FolderPlan(1, "Alice", link_names(images), images, faces)

    def publish(self, plan: FolderPlan) -> None:
        seen = survey(self.people, STATE).ours
        self.published = self.publisher.apply([plan], self.published, seen)


def photos(folders: Folders, n: int, under: str = "a") -> dict[int, bytes]:
    out = {}
    for i in range(n):
        path = folders.photos / under / f"{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        out[i + 1] = os.fsencode(path)
    return out


def inodes(folder: Path) -> dict[str, int]:
    return {e.name: e.inode() for e in os.scandir(folder)}


@pytest.fixture
def folders(tmp_path: Path) -> Folders:
    return Folders(tmp_path)


@pytest.mark.parametrize("size", [20, KEEP_TARGETS + 10])
def test_one_photo_joining_adds_one_link_and_leaves_the_rest(folders: Folders, size: int) -> None:
    images = photos(folders, size)
    folders.publish(folders.plan(images))
    folder = folders.people / "Alice"
    before = inodes(folder)
    extra = folders.photos / "b" / "new.jpg"
    extra.parent.mkdir()
    extra.touch()
    folders.publish(folders.plan({**images, 99999: os.fsencode(extra)}))
    after = inodes(folder)
    assert after.keys() - before.keys() == {"new.jpg"}
    assert os.path.realpath(folder / "new.jpg") == str(extra)
    # Every other link, and the montage (same faces), are the very same files.
    assert {n: after[n] for n in before if n != MARKER} == {
        n: i for n, i in before.items() if n != MARKER
    }


def test_the_montage_is_drawn_again_only_when_its_faces_change(folders: Folders) -> None:
    images = photos(folders, 20)
    folders.publish(folders.plan(images, faces=(1, 2)))
    montage = folders.people / "Alice" / MONTAGE
    first = montage.stat().st_ino
    folders.publish(folders.plan(dict(list(images.items())[:-1]), faces=(1, 2)))
    assert montage.stat().st_ino == first
    folders.publish(folders.plan(images, faces=(1, 2, 3)))
    assert montage.stat().st_ino != first


@pytest.mark.parametrize("size", [20, KEEP_TARGETS + 10])
def test_a_photo_moved_under_the_same_name_is_linked_at_its_new_place(
    folders: Folders, size: int
) -> None:
    images = photos(folders, size)
    folders.publish(folders.plan(images))
    moved = folders.photos / "elsewhere" / os.path.basename(os.fsdecode(images[3]))
    moved.parent.mkdir()
    os.rename(images[3], moved)
    folders.publish(folders.plan({**images, 3: os.fsencode(moved)}))
    link = folders.people / "Alice" / moved.name
    assert os.path.realpath(link) == str(moved)


def test_a_link_the_user_pointed_elsewhere_is_put_right_in_a_large_folder(
    folders: Folders,
) -> None:
    images = photos(folders, KEEP_TARGETS + 10)
    folders.publish(folders.plan(images))
    folder = folders.people / "Alice"
    link = folder / "00003.jpg"
    os.unlink(link)
    os.symlink("/nowhere", link)  # the folder's mtime moves: what faced kept is not trusted
    extra = folders.photos / "b" / "new.jpg"
    extra.parent.mkdir()
    extra.touch()
    folders.publish(folders.plan({**images, 99999: os.fsencode(extra)}))
    assert os.path.realpath(link) == os.fsdecode(images[4])


def test_a_reader_never_sees_a_folder_missing_or_half_built(folders: Folders) -> None:
    first = photos(folders, 60, "a")
    second = photos(folders, 60, "b")
    renumbered = {i + 1000: p for i, p in second.items()}
    plans = [
        folders.plan(first),  # built and swapped
        folders.plan({**first, **dict(list(renumbered.items())[:3])}),  # in place
        folders.plan(renumbered),  # most links change: built aside and swapped
        folders.plan(first),
    ]
    folders.publish(plans[0])
    folder = folders.people / "Alice"
    stop = threading.Event()
    seen: list[int] = []

    def read() -> None:
        while not stop.is_set():
            names = os.listdir(folder)  # fails if the folder is missing
            if MARKER in names:
                seen.append(sum(n.endswith(".jpg") and n != MONTAGE for n in names))
            else:
                seen.append(-1)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(5):
            for plan in plans[1:]:
                folders.publish(plan)
    finally:
        stop.set()
        reader.join(10)
    assert seen and min(seen) >= 60  # never without its marker, never fewer links than a plan
