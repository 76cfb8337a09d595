"""The daemon's parts on their own, with a fake clock: debouncer, intake, status board."""

from __future__ import annotations

import os
import queue
from collections.abc import Callable
from pathlib import Path

from faced.config import Config
from faced.faces.backends import detector_label
from faced.people.identity import same_faces
from faced.pipeline.library import Library
from faced.pipeline.scheduler import EncodeScheduler
from faced.records import EncodeResult, FileStat
from faced.service.debounce import Debouncer
from faced.service.intake import SETTLE_SECONDS, Intake
from faced.service.status import StatusBoard
from faced.service.watch import Event, Kind
from faced.store import Store

from .test_scheduler import FakePool, crashed


def test_debounce_waits_for_quiet() -> None:
    d = Debouncer(quiet=10, max_delay=120)
    d.changed(0.0)
    d.changed(5.0)
    assert not d.due(14.0) and d.due(15.0)


def test_debounce_fires_by_max_delay_under_a_steady_stream() -> None:
    d = Debouncer(quiet=10, max_delay=30)
    for t in range(0, 31, 5):
        d.changed(float(t))
    assert d.due(30.0)


def test_debounce_fired_waits_for_the_next_change() -> None:
    d = Debouncer(quiet=1, max_delay=5)
    d.changed(0.0)
    d.fired()
    assert not d.due(100.0) and not d.pending


def test_an_urgent_change_is_due_at_once() -> None:
    d = Debouncer(quiet=10, max_delay=120)
    d.urgent(50.0)
    assert d.due(50.0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def intake(tmp_path: Path, store: Store, clock: Clock) -> tuple[Intake, EncodeScheduler, list[int]]:
    cfg = Config().with_paths(output=tmp_path / "people", state=tmp_path / "state")
    scheduler = EncodeScheduler(FakePool(), window=2, crashed=crashed)
    changes: list[int] = []
    lib = Library(cfg, store)
    return (
        Intake(queue.Queue(), lib, scheduler, changed=lambda: changes.append(1), clock=clock),
        scheduler,
        changes,
    )


def settling(tmp_path: Path, store: Store, clock: Clock) -> tuple[Intake, EncodeScheduler, Path]:
    """An intake told that a fresh file `a.jpg` is settling."""
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"x")
    take, scheduler, _ = intake(tmp_path, store, clock)
    take.apply(Event(Kind.SETTLING, os.fsencode(photo)))
    return take, scheduler, photo


def test_a_settling_file_is_read_once_it_holds_still(tmp_path: Path) -> None:
    clock = Clock()
    with Store(tmp_path / "state") as store:
        take, scheduler, photo = settling(tmp_path, store, clock)
        take.settle()  # first look: size and mtime noted
        clock.now = SETTLE_SECONDS - 0.1
        take.settle()
        assert not scheduler.waiting
        clock.now = SETTLE_SECONDS + 0.1
        take.settle()
        assert list(scheduler.waiting) == [os.fsencode(photo)]


def test_a_growing_file_keeps_settling(tmp_path: Path) -> None:
    clock = Clock()
    with Store(tmp_path / "state") as store:
        take, scheduler, photo = settling(tmp_path, store, clock)
        for step in range(1, 6):
            clock.now = step * SETTLE_SECONDS
            photo.write_bytes(b"x" * (step + 1))
            take.settle()
        assert not scheduler.waiting


def test_a_deleted_file_is_forgotten_and_unqueued(tmp_path: Path) -> None:
    path = os.fsencode(tmp_path / "a.jpg")
    with Store(tmp_path / "state") as store:
        store.images.record(
            EncodeResult.found(path, FileStat(1, 1, "d"), (), size=(1, 1), detector="d", model="m"),
            match=same_faces,
        )
        take, scheduler, changes = intake(tmp_path, store, Clock())
        take.apply(Event(Kind.READY, path))
        take.apply(Event(Kind.GONE, path))
        assert store.images.get(path) is None and not scheduler.waiting and changes == [1]


def test_a_rename_moves_the_record(tmp_path: Path) -> None:
    old, new = os.fsencode(tmp_path / "a.jpg"), os.fsencode(tmp_path / "b.jpg")
    with Store(tmp_path / "state") as store:
        store.images.record(
            EncodeResult.found(old, FileStat(1, 1, "d"), (), size=(1, 1), detector="d", model="m"),
            match=same_faces,
        )
        take, scheduler, changes = intake(tmp_path, store, Clock())
        take.apply(Event(Kind.MOVED, old, new))
        assert store.images.get(new) is not None and not scheduler.waiting and changes == [1]


def test_the_status_line_counts_reads_and_the_last_error() -> None:
    counts = {"faces": 3, "people": 1, "errors": 1}
    board = StatusBoard(lambda: counts, 0.0)
    board.read(EncodeResult.failed(b"/p/bad.jpg", FileStat(), "corrupt", detector="d", model="m"))
    assert (
        board.line(2) == "2 queued, 1 read, 3 faces, 1 people, 1 unreadable; last: bad.jpg: corrupt"
    )


def test_the_last_error_clears_when_that_file_reads_fine() -> None:
    board = StatusBoard(lambda: {"faces": 0, "people": 0, "errors": 0}, 0.0)
    board.read(EncodeResult.failed(b"/p/big.jpg", FileStat(), "truncated", detector="d", model="m"))
    board.read(
        EncodeResult.found(
            b"/p/big.jpg", FileStat(1, 1, "x"), (), size=(1, 1), detector="d", model="m"
        )
    )
    assert "last:" not in board.line(0)


def test_a_reload_keeps_the_read_count_and_counts_from_the_new_store() -> None:
    board = StatusBoard.starting(0.0)
    board.read(
        EncodeResult.found(
            b"/p/a.jpg", FileStat(1, 1, "x"), (), size=(1, 1), detector="d", model="m"
        )
    )
    board.count_from(lambda: {"faces": 5, "people": 2, "errors": 0})
    assert board.line(0) == "0 queued, 1 read, 5 faces, 2 people, 0 unreadable"


def read_after_a_touch(
    tmp_path: Path, recorded: Callable[[bytes, str], EncodeResult]
) -> list[bytes]:
    """Record `recorded(path, detector)` for a fresh file, then chmod it (a TOUCHED event: same
    size, same mtime); returns what the scheduler was given to read."""
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"x")
    with Store(tmp_path / "state") as store:
        take, scheduler, _ = intake(tmp_path, store, Clock())
        path = os.fsencode(photo)
        store.images.record(
            recorded(path, detector_label(take.lib.cfg.detection)), match=same_faces
        )
        take.apply(Event(Kind.TOUCHED, path))
        return list(scheduler.waiting)


def test_a_file_fixed_after_an_access_error_is_read_when_touched(tmp_path: Path) -> None:
    def denied(path: bytes, detector: str) -> EncodeResult:
        reason = "cannot open: Permission denied"
        return EncodeResult.failed(path, FileStat.of(path), reason, detector=detector, model="m")

    assert read_after_a_touch(tmp_path, denied) == [os.fsencode(tmp_path / "a.jpg")]


def test_a_touched_file_read_fine_is_not_read_again(tmp_path: Path) -> None:
    def fine(path: bytes, detector: str) -> EncodeResult:
        stat = FileStat.of(path)
        return EncodeResult.found(path, stat, (), size=(1, 1), detector=detector, model="m")

    assert read_after_a_touch(tmp_path, fine) == []
