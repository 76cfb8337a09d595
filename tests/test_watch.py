"""The watch handler's filtering, and observers restarted when they die."""

from __future__ import annotations

import os
import queue
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileMovedEvent,
)

from faced.config import ImagesConfig, WatchFolder
from faced.service.watch import Event, Handler, Kind, Watcher


def handler(tmp_path: Path, *, close_events: bool = True) -> tuple[Handler, queue.Queue[Event]]:
    q: queue.Queue[Event] = queue.Queue(maxsize=4)
    excluded = [os.fsencode(tmp_path / "people")]
    return Handler(q, ImagesConfig(), excluded, close_events=close_events), q


def drain(q: queue.Queue[Event]) -> list[tuple[Kind, str, str]]:
    out = []
    while not q.empty():
        e = q.get_nowait()
        out.append((e.kind, os.fsdecode(e.path), os.fsdecode(e.dest)))
    return out


def test_close_and_moves_count_created_does_not(tmp_path: Path) -> None:
    h, q = handler(tmp_path)
    p = str(tmp_path / "a.jpg")
    h.dispatch(FileCreatedEvent(p))  # still being written
    h.dispatch(FileClosedEvent(p))
    h.dispatch(FileMovedEvent(str(tmp_path / ".a.jpg.part"), str(tmp_path / "b.jpg")))
    h.dispatch(FileMovedEvent("", str(tmp_path / "c.jpg")))  # moved in from outside
    h.dispatch(FileMovedEvent(str(tmp_path / "c.jpg"), ""))  # moved out
    assert drain(q) == [
        (Kind.READY, p, ""),
        (Kind.READY, str(tmp_path / "b.jpg"), ""),
        (Kind.READY, str(tmp_path / "c.jpg"), ""),
        (Kind.GONE, str(tmp_path / "c.jpg"), ""),
    ]


def test_temp_hidden_non_images_and_own_output_are_ignored(tmp_path: Path) -> None:
    h, q = handler(tmp_path)
    for name in (
        ".hidden.jpg",
        "x.jpg.part",
        "x.crdownload",
        "~lock.jpg",
        "notes.txt",
        "people/person_0001/a.jpg",
    ):
        h.dispatch(FileClosedEvent(str(tmp_path / name)))
        h.dispatch(FileDeletedEvent(str(tmp_path / name)))
    assert drain(q) == []


def test_without_close_events_files_settle(tmp_path: Path) -> None:
    h, q = handler(tmp_path, close_events=False)
    h.dispatch(FileCreatedEvent(str(tmp_path / "a.jpg")))
    assert drain(q) == [(Kind.SETTLING, str(tmp_path / "a.jpg"), "")]


def test_a_full_queue_asks_for_a_rescan(tmp_path: Path) -> None:
    h, q = handler(tmp_path)
    for i in range(6):
        h.dispatch(FileClosedEvent(str(tmp_path / f"{i}.jpg")))
    assert q.qsize() == 4 and h.overflowed.is_set()


def test_a_dead_observer_is_restarted(tmp_path: Path) -> None:
    h, _ = handler(tmp_path)
    watcher = Watcher((WatchFolder(tmp_path),), h)
    watcher.start()
    try:
        first = watcher.observers[tmp_path]
        first.stop()
        first.join(timeout=5)
        assert watcher.check() == [tmp_path]
        assert watcher.observers[tmp_path] is not first and watcher.observers[tmp_path].is_alive()
        assert watcher.check() == []
    finally:
        watcher.stop()


def test_a_created_folder_is_scanned(tmp_path: Path) -> None:
    h, q = handler(tmp_path)
    h.on_any_event(DirCreatedEvent(str(tmp_path / "trip")))
    assert drain(q) == [(Kind.NEW_DIR, str(tmp_path / "trip"), "")]


def test_a_polled_folder_takes_files_that_stop_changing(tmp_path: Path) -> None:
    h, q = handler(tmp_path)  # built for inotify's close events
    polled = h.without_close_events()
    polled.on_any_event(FileCreatedEvent(str(tmp_path / "a.jpg")))
    assert drain(q) == [(Kind.SETTLING, str(tmp_path / "a.jpg"), "")]


def test_a_chmod_asks_whether_the_file_needs_reading(tmp_path: Path) -> None:
    h, q = handler(tmp_path)
    h.on_any_event(FileAttribEvent(str(tmp_path / "a.jpg")))
    assert drain(q) == [(Kind.TOUCHED, str(tmp_path / "a.jpg"), "")]


def test_a_created_symlink_is_complete_at_once(tmp_path: Path) -> None:
    (tmp_path / "target.jpg").write_bytes(b"x")
    (tmp_path / "link.jpg").symlink_to(tmp_path / "target.jpg")
    h, q = handler(tmp_path)
    h.on_any_event(FileCreatedEvent(str(tmp_path / "link.jpg")))
    assert drain(q) == [(Kind.READY, str(tmp_path / "link.jpg"), "")]


def test_a_recreated_watched_folder_is_watched_anew(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    h, _ = handler(tmp_path)
    watcher = Watcher((WatchFolder(photos),), h)
    watcher.start()
    try:
        photos.rename(tmp_path / "photos.old")  # the inotify watch follows the old folder
        photos.mkdir()
        assert watcher.check() == [photos]
        assert watcher.check() == []
    finally:
        watcher.stop()
