"""A whole one-shot scan, and the encoders it runs on: this machine's worker processes (or
this process, when one worker is all there is to use), or a Dask cluster's workers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from faced.config import Config
from faced.errors import ClusterError
from faced.faces.backends import model_name
from faced.faces.pool import EncoderPool, pool_size
from faced.faces.remote import DaskPool
from faced.faces.work import encode_file, label_for
from faced.pipeline.library import Library, RefreshReport
from faced.pipeline.planner import ScanPlan
from faced.pipeline.scheduler import EncodeScheduler
from faced.records import EncodeResult

# Files in flight per worker: one being read, one waiting, so a worker never idles between
# two files and memory stays bounded whatever the batch size.
INFLIGHT_PER_WORKER = 2

# Files to results: each item the results that finished together, which the writer commits
# at once (one fsync for many photos when many workers keep up with it).
Encode = Callable[[list[bytes]], Iterable[list[EncodeResult]]]


def crash_record(cfg: Config) -> Callable[[bytes], EncodeResult]:
    """Makes the error record of a file that killed its worker, labelled as `cfg` reads."""

    def crashed(path: bytes) -> EncodeResult:
        return EncodeResult.crashed(
            path,
            detector=label_for(path, cfg.detection, cfg.video),
            model=model_name(cfg.detection.detector),
        )

    return crashed


def local_encoder(cfg: Config) -> Encode:
    """Encode files on this machine: `daemon.workers` processes (one per CPU by default)."""

    def encode(todo: list[bytes]) -> Iterator[list[EncodeResult]]:
        if not todo:
            return
        workers = min(pool_size(cfg.daemon.workers), len(todo))
        if workers <= 1:
            yield from ([encode_file(p, cfg.images, cfg.detection, cfg.video)] for p in todo)
            return
        pool = EncoderPool(cfg.images, cfg.detection, workers, cfg.video)
        scheduler = EncodeScheduler(
            pool,
            window=workers * INFLIGHT_PER_WORKER,
            crashed=crash_record(cfg),
            slow=cfg.video.matches,
            slow_at_once=max(1, workers - 1),
        )
        try:
            yield from scheduler.run_all(todo)
        finally:
            pool.close()

    return encode


def cluster_encoder(cfg: Config, roots: list[Path]) -> Encode:
    """Encode files on the workers of the Dask scheduler `dask.scheduler` names, which must
    see `roots` (through `dask.path_map`). Raises ClusterError when it cannot go on."""

    def encode(todo: list[bytes]) -> Iterator[list[EncodeResult]]:
        if not todo:
            return
        crashed = crash_record(cfg)
        pool = DaskPool.for_config(
            cfg.dask,
            cfg.images,
            cfg.detection,
            cfg.video,
            crashed=crashed,
            roots=[os.fsencode(r) for r in roots],
        )
        pool.connect()
        scheduler = EncodeScheduler(
            pool,
            window=lambda: pool.threads * INFLIGHT_PER_WORKER,
            crashed=crashed,
            slow=cfg.video.matches,
            slow_at_once=lambda: max(1, pool.threads - 1),
        )
        try:
            yield from scheduler.run_all(todo)
        except ClusterError as exc:
            raise ClusterError(
                f"{exc}: what was read is kept; run the scan again to continue where it stopped"
            ) from exc
        finally:
            pool.close(wait=False)

    return encode


def encoder_for(cfg: Config, roots: list[Path]) -> Encode:
    """The Dask cluster's workers when `dask.scheduler` names one, else this machine's."""
    return cluster_encoder(cfg, roots) if cfg.dask.scheduler else local_encoder(cfg)


def run_scan(
    lib: Library, roots: list[Path], encode: Encode, *, forget_missing: bool = False
) -> tuple[ScanPlan, RefreshReport]:
    """Plan, apply moves and deletions, encode (through `encode`), record, refresh.
    `forget_missing`: see ScanPlanner.plan."""
    plan = lib.planner.plan(roots, forget_missing=forget_missing)
    lib.apply_plan_bookkeeping(plan)
    for done in encode(plan.todo):
        lib.record_all(done)
    return plan, lib.refresh()
