"""The encode scheduler on a fake pool: the window, and crash isolation without blocking."""

from __future__ import annotations

from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool

from faced.pipeline.scheduler import EncodeScheduler
from faced.records import EncodeResult, FileStat


def ok(path: bytes) -> EncodeResult:
    return EncodeResult.found(path, FileStat(1, 1, "d"), (), size=(1, 1), detector="d", model="m")


def crashed(path: bytes) -> EncodeResult:
    return EncodeResult.crashed(path, detector="d", model="m")


class FakePool:
    """Futures resolved by hand: `finish(path)` gives a result, `die()` breaks every one."""

    def __init__(self) -> None:
        self.futures: dict[bytes, Future[EncodeResult]] = {}
        self.submitted: list[bytes] = []
        self.closed = 0

    def submit(self, path: bytes) -> Future[EncodeResult]:
        fut: Future[EncodeResult] = Future()
        self.futures[path] = fut
        self.submitted.append(path)
        return fut

    def close(self, *, wait: bool = True) -> None:
        self.closed += 1

    def finish(self, path: bytes) -> None:
        self.futures.pop(path).set_result(ok(path))

    def die(self) -> None:
        for fut in self.futures.values():
            fut.set_exception(BrokenProcessPool("a worker died"))
        self.futures.clear()


def queued(window: int, *paths: bytes) -> tuple[FakePool, EncodeScheduler]:
    """A fake pool and a scheduler with `paths` waiting."""
    pool = FakePool()
    s = EncodeScheduler(pool, window=window, crashed=crashed)
    for p in paths:
        s.add(p)
    return pool, s


def test_at_most_window_files_are_in_flight() -> None:
    pool, s = queued(2, b"a", b"b", b"c")
    s.feed()
    assert pool.submitted == [b"a", b"b"] and s.full
    pool.finish(b"a")
    assert [r.path for r in s.harvest()] == [b"a"]
    s.feed()
    assert pool.submitted == [b"a", b"b", b"c"]


def test_a_file_added_twice_is_read_once() -> None:
    pool, s = queued(4, b"a", b"a")
    s.feed()
    assert pool.submitted == [b"a"]


def test_a_crash_makes_suspects_that_are_retried_alone() -> None:
    pool, s = queued(4, b"good", b"poison", b"later")
    s.feed()
    pool.die()  # the whole pool goes: every file in flight is lost
    assert s.harvest() == [] and pool.closed == 1
    s.feed()
    assert pool.submitted[-1] == b"good" and len(s.inflight) == 1  # alone
    pool.finish(b"good")
    assert [r.path for r in s.harvest()] == [b"good"]
    s.feed()
    assert pool.submitted[-1] == b"poison" and len(s.inflight) == 1
    pool.die()  # alone, so it is the culprit
    (result,) = s.harvest()
    assert result.path == b"poison" and result.is_error and result.reason == crashed(b"").reason
    s.feed()
    assert pool.submitted[-1] == b"later"  # and the rest goes on


def test_harvest_and_feed_never_block_while_a_suspect_is_read() -> None:
    pool, s = queued(2, b"a", b"b")
    s.feed()
    pool.die()
    s.harvest()
    s.feed()
    s.add(b"new")
    s.feed()  # the suspect is in flight: nothing else is submitted, and nothing waits
    assert s.harvest() == [] and not s.can_feed and s.queued == 3


def test_accept_skips_files_already_known() -> None:
    pool, s = queued(4, b"known", b"new")
    s.feed(lambda path: path != b"known")
    assert pool.submitted == [b"new"]


def test_run_all_yields_every_result() -> None:
    class Instant(FakePool):
        def submit(self, path: bytes) -> Future[EncodeResult]:
            fut = super().submit(path)
            self.finish(path)
            return fut

    s = EncodeScheduler(Instant(), window=2, crashed=crashed)
    assert sorted(r.path for done in s.run_all([b"a", b"b", b"c"]) for r in done) == [
        b"a",
        b"b",
        b"c",
    ]


def test_photos_queued_behind_clips_are_read_while_a_clip_is() -> None:
    pool = FakePool()
    s = EncodeScheduler(
        pool, window=4, crashed=crashed, slow=lambda p: p.endswith(b".mp4"), slow_at_once=1
    )
    for p in (b"1.mp4", b"2.mp4", b"3.mp4", b"a.jpg", b"b.jpg"):
        s.add(p)
    s.feed()
    # One clip at a time: the photos behind the other clips go ahead of them.
    assert pool.submitted == [b"1.mp4", b"a.jpg", b"b.jpg"]
    pool.finish(b"1.mp4")
    s.harvest()
    s.feed()
    assert pool.submitted[3:] == [b"2.mp4"]  # the clips keep their order
