"""A whole one-shot scan, and the local encoder it runs on (worker processes, or this process
when one worker is all there is to use)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path

from faced.config import Config
from faced.faces.backends import detector_label, model_name
from faced.faces.pool import EncoderPool, pool_size
from faced.faces.work import encode_file
from faced.pipeline.library import Library, RefreshReport
from faced.pipeline.planner import ScanPlan
from faced.pipeline.scheduler import EncodeScheduler
from faced.records import EncodeResult

# Files in flight per worker: one being read, one waiting, so a worker never idles between
# two files and memory stays bounded whatever the batch size.
INFLIGHT_PER_WORKER = 2

Encode = Callable[[list[bytes]], Iterable[EncodeResult]]


def crash_record(cfg: Config) -> Callable[[bytes], EncodeResult]:
    """Makes the error record of a file that killed its worker, labelled as `cfg` reads."""
    return partial(
        EncodeResult.crashed,
        detector=detector_label(cfg.detection),
        model=model_name(cfg.detection.detector),
    )


def local_encoder(cfg: Config) -> Encode:
    """Encode files on this machine: `daemon.workers` processes (one per CPU by default)."""

    def encode(todo: list[bytes]) -> Iterator[EncodeResult]:
        if not todo:
            return
        workers = min(pool_size(cfg.daemon.workers), len(todo))
        if workers <= 1:
            yield from (encode_file(p, cfg.images, cfg.detection, cfg.video) for p in todo)
            return
        pool = EncoderPool(cfg.images, cfg.detection, workers, cfg.video)
        scheduler = EncodeScheduler(
            pool, window=workers * INFLIGHT_PER_WORKER, crashed=crash_record(cfg)
        )
        try:
            yield from scheduler.run_all(todo)
        finally:
            pool.close()

    return encode


def run_scan(
    lib: Library, roots: list[Path], encode: Encode, *, forget_missing: bool = False
) -> tuple[ScanPlan, RefreshReport]:
    """Plan, apply moves and deletions, encode (through `encode`), record, refresh.
    `forget_missing`: see ScanPlanner.plan."""
    plan = lib.planner.plan(roots, forget_missing=forget_missing)
    lib.apply_plan_bookkeeping(plan)
    for result in encode(plan.todo):
        lib.record(result)
    return plan, lib.refresh()
