"""The daemon's pause after a failure it cannot fix itself (a full state disk)."""

from __future__ import annotations

import logging

import pytest

from faced.service.backoff import FIRST_WAIT, LONGEST_WAIT, Backoff


def test_a_failure_pauses_then_retries_once() -> None:
    b = Backoff("ok again")
    b.failed(0.0, "disk full")
    assert b.paused(FIRST_WAIT - 0.1) and not b.retry_due(FIRST_WAIT - 0.1)
    assert not b.paused(FIRST_WAIT) and b.retry_due(FIRST_WAIT)
    assert not b.retry_due(FIRST_WAIT + 1)


def test_each_failed_retry_doubles_the_wait_up_to_the_longest() -> None:
    b = Backoff("ok again")
    now = 0.0
    waits = []
    for _ in range(12):
        b.failed(now, "disk full")
        start = now
        while b.paused(now):
            now += 1.0
        waits.append(now - start)
    assert waits[:3] == [FIRST_WAIT, 2 * FIRST_WAIT, 4 * FIRST_WAIT] and waits[-1] == LONGEST_WAIT


def test_failures_during_a_wait_do_not_lengthen_it() -> None:
    b = Backoff("ok again")
    b.failed(0.0, "disk full")
    b.failed(1.0, "disk full")  # work that was under way fails too
    assert not b.paused(FIRST_WAIT)


def test_failing_and_recovering_are_each_said_once(caplog: pytest.LogCaptureFixture) -> None:
    b = Backoff("ok again")
    with caplog.at_level(logging.INFO):
        for now in (0.0, 10.0, 30.0):
            b.failed(now, "disk full")
        b.worked(100.0)
        b.worked(101.0)
    assert [r.getMessage() for r in caplog.records] == ["disk full", "ok again"]


def test_a_write_that_fits_during_the_wait_does_not_end_it() -> None:
    b = Backoff("ok again")
    b.failed(0.0, "disk full")
    b.worked(1.0)
    assert b.failing and b.paused(2.0)


def test_a_relapse_soon_after_recovering_is_the_same_episode(
    caplog: pytest.LogCaptureFixture,
) -> None:
    b = Backoff("ok again")
    with caplog.at_level(logging.INFO):
        b.failed(0.0, "disk full")
        b.worked(FIRST_WAIT)
        b.failed(FIRST_WAIT + 1, "disk full")  # some writes fit, others not
        assert b.paused(FIRST_WAIT + 1 + FIRST_WAIT)  # the wait doubled on
        b.worked(100.0)
    assert [r.getMessage() for r in caplog.records] == ["disk full", "ok again"]
