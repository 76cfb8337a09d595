"""A pool of encoder processes (dlib holds the GIL, so threads would not help).

Workers come from a fork server started before any thread of ours, load the models lazily on
their first file, and return plain EncodeResults. The pool keeps a bounded number of files in
flight. A worker that dies (dlib aborting on a poisonous file) breaks the pool: the pool is
rebuilt and each file that was in flight is retried alone, so the culprit is recorded as an
error and the rest go on.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from faced.config import DetectionConfig, ImagesConfig, VideoConfig
from faced.encode import CRASHED, EncodeResult, detector_label, encode_file
from faced.lifeline import die_with_parent

log = logging.getLogger(__name__)


def pool_size(configured: int) -> int:
    """Workers to run: the configured count, or one per CPU this process may use."""
    if configured > 0:
        return configured
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class EncoderPool:
    """Encode files in `workers` processes; at most `workers * 2` files in flight."""

    def __init__(
        self,
        images: ImagesConfig,
        detection: DetectionConfig,
        workers: int,
        video: VideoConfig | None = None,
    ) -> None:
        self.images = images
        self.detection = detection
        self.video = video
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            method = (
                "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
            )
            ctx = multiprocessing.get_context(method)
            if method == "forkserver":
                ctx.set_forkserver_preload(["faced.lifeline", "faced.encode"])
            self._executor = ProcessPoolExecutor(
                self.workers, mp_context=ctx, initializer=die_with_parent
            )
        return self._executor

    @property
    def running(self) -> bool:
        """True while worker processes may be alive."""
        return self._executor is not None

    def close(self, *, wait: bool = True) -> None:
        """Stop the workers; with wait=False, files in flight are abandoned (to be redone)."""
        if self._executor is not None:
            self._executor.shutdown(wait=wait, cancel_futures=True)
            self._executor = None

    def terminate(self) -> None:
        """Stop now: kill the workers instead of waiting for the files they are reading (those
        are read again at the next start). ProcessPoolExecutor has no public way to do this
        before Python 3.14, hence the private attribute."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        processes = list(getattr(executor, "_processes", {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        for proc in processes:
            if proc.is_alive():
                proc.terminate()

    def submit(self, path: bytes) -> Future[EncodeResult]:
        """Queue one file; the future resolves to its EncodeResult."""
        return self._pool().submit(encode_file, path, self.images, self.detection, self.video)

    def map(self, paths: Iterable[bytes]) -> Iterator[EncodeResult]:
        """Encode `paths`, yielding results as they complete (not in input order)."""
        limit = self.workers * 2
        inflight: deque[tuple[bytes, Future[EncodeResult]]] = deque()
        source = iter(paths)
        exhausted = False
        while True:
            while not exhausted and len(inflight) < limit:
                try:
                    path = next(source)
                except StopIteration:
                    exhausted = True
                    break
                try:
                    inflight.append((path, self.submit(path)))
                except BrokenProcessPool:  # broke between two results
                    pending = [p for p, _ in inflight] + [path]
                    inflight.clear()
                    self.close(wait=False)
                    yield from self._isolate(pending)
            if not inflight:
                return
            path, fut = inflight.popleft()
            try:
                yield fut.result()
            except BrokenProcessPool:
                pending = [path] + [p for p, _ in inflight]
                inflight.clear()
                self.close(wait=False)
                yield from self._isolate(pending)

    def _isolate(self, paths: list[bytes]) -> Iterator[EncodeResult]:
        """Retry files one at a time after a worker died, to find and record the culprit."""
        for path in paths:
            try:
                yield self.submit(path).result()
            except BrokenProcessPool:
                self.close(wait=False)
                log.warning(
                    "a worker died while reading %s; recorded as an error", os.fsdecode(path)
                )
                yield crashed(path, detector_label(self.detection))


def crashed(path: bytes, label: str) -> EncodeResult:
    """The error record of a file that killed its worker. Unlike other errors it is retried
    at the next scan: the crash may have had another cause (memory, a killed process)."""
    try:
        st = os.stat(path)
        size, mtime = st.st_size, st.st_mtime_ns
    except OSError:
        size = mtime = 0
    return EncodeResult(path, size, mtime, None, "error", CRASHED, (), detector=label)
