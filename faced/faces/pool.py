"""A pool of encoder processes (dlib holds the GIL, so threads would not help).

Workers come from a fork server started before any thread of ours, load the models lazily on
their first file, and return plain EncodeResults. This is only the pool: how many files are in
flight, and what happens when a worker dies, is the scheduler's business
(faced.pipeline.scheduler), the same for `faced scan` and the daemon.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor

from faced.config import DetectionConfig, ImagesConfig, VideoConfig
from faced.faces.cpus import usable_cpus
from faced.faces.lifeline import die_with_parent
from faced.faces.work import encode_file
from faced.records import EncodeResult


def pool_size(configured: int) -> int:
    """Workers to run: the configured count, or one per CPU this process may use."""
    return configured if configured > 0 else usable_cpus()


class EncoderPool:
    """Encode files in `workers` processes, started on the first file and stopped by `close`.

    `submit` raises BrokenProcessPool once a worker has died; `close(wait=False)` then lets
    the next `submit` start a fresh pool."""

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
                ctx.set_forkserver_preload(["faced.faces.lifeline", "faced.faces.work"])
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

    def retire(self) -> None:
        """Take no more files: those in flight or queued still finish and give their
        results, then the workers exit."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=False)
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
