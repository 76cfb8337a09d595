"""Where the daemon's files are read: this machine's worker processes, or a Dask cluster's
workers when `dask.scheduler` names one and it can be reached.

A home server must keep up with the photos of the day when the cluster is not there (the
desktop asleep, the scheduler restarting): until the cluster is connected, and whenever it is
lost, files are read here, and the cluster is tried again after a wait that doubles (5 s up to
5 min, said once per episode). Connecting takes up to `dask.connect_seconds`, so it runs in a
thread of its own and the main loop never waits for it. The files a lost cluster had in flight
wait again in the scheduler (EncodeScheduler.harvest) and are read here.
"""

from __future__ import annotations

import logging
import os
import threading

from faced.config import Config
from faced.errors import ClusterError
from faced.faces.pool import EncoderPool, pool_size
from faced.faces.remote import DaskPool
from faced.pipeline.scan import INFLIGHT_PER_WORKER, crash_record
from faced.pipeline.scheduler import EncodeScheduler, Pool
from faced.service.backoff import Backoff

log = logging.getLogger(__name__)


class Encoders:
    """The local pool, the cluster pool if configured, and which of them the scheduler feeds."""

    def __init__(self, cfg: Config) -> None:
        self.workers = pool_size(cfg.daemon.workers)
        self.local = EncoderPool(cfg.images, cfg.detection, self.workers, cfg.video)
        self.cluster: DaskPool | None = None
        if cfg.dask.scheduler:
            self.cluster = DaskPool.for_config(
                cfg.dask,
                cfg.images,
                cfg.detection,
                cfg.video,
                crashed=crash_record(cfg),
                roots=[os.fsencode(w.path) for w in cfg.watch],
            )
        self.down = Backoff(
            f"the Dask scheduler at {cfg.dask.scheduler} is reachable again; reading photos there",
            level=logging.WARNING,
        )
        self.current: Pool = self.local
        self._connecting: threading.Thread | None = None
        self._connect_error: ClusterError | None = None
        self._tried = False

    @property
    def on_cluster(self) -> bool:
        return self.cluster is not None and self.current is self.cluster

    def window(self) -> int:
        """Files in flight at most, on the pool in use."""
        if self.cluster is not None and self.on_cluster:
            return self.cluster.threads * INFLIGHT_PER_WORKER
        return self.workers * INFLIGHT_PER_WORKER

    def clips_at_once(self) -> int:
        """Clips in flight at most: one worker (or cluster thread) is always left for photos,
        unless there is only one."""
        if self.cluster is not None and self.on_cluster:
            return max(1, self.cluster.threads - 1)
        return max(1, self.workers - 1)

    def tick(self, now: float, scheduler: EncodeScheduler) -> None:
        """Between two loop turns: connect to the cluster in the background when it is due,
        and move the scheduler onto it once connected; act on a cluster lost meanwhile."""
        if scheduler.failure is not None:
            exc, scheduler.failure = scheduler.failure, None
            self._lost(now, exc, scheduler)
        if self.cluster is None or self.on_cluster:
            return
        if self._connecting is not None:
            if self._connecting.is_alive():
                return
            self._connecting = None
            if self._connect_error is not None:
                exc, self._connect_error = self._connect_error, None
                self.down.failed(now, f"{exc}; reading photos on this machine meanwhile")
                return
            scheduler.use(self.cluster)
            self.current = self.cluster
            self.local.retire()  # its files in flight finish; no new ones go there
            self.down.worked(now)
            return
        if not self._tried or self.down.retry_due(now):
            self._tried = True
            # A daemon thread: it only waits on the network (at most twice connect_seconds)
            # and writes nothing, so a stop need not wait for it.
            self._connecting = threading.Thread(
                target=self._connect, name="faced-dask-connect", daemon=True
            )
            self._connecting.start()

    def _connect(self) -> None:
        assert self.cluster is not None
        try:
            self.cluster.connect()
        except ClusterError as exc:
            self._connect_error = exc

    def _lost(self, now: float, exc: ClusterError, scheduler: EncodeScheduler) -> None:
        """The cluster could not give results: read here until it can be reached again."""
        if not self.on_cluster:
            return
        scheduler.use(self.local)
        self.current = self.local
        if self.cluster is not None:
            self.cluster.close(wait=False)
        self.down.failed(now, f"{exc}; reading photos on this machine meanwhile")

    @property
    def running(self) -> bool:
        """True while local worker processes may be alive."""
        return self.local.running

    def idle(self) -> None:
        """Let the local workers go (a cluster connection costs nothing while idle)."""
        self.local.close()

    def terminate(self) -> None:
        """Stop now: local workers killed, the cluster's files in flight dropped."""
        self.local.terminate()
        if self.cluster is not None:
            self.cluster.terminate()
