"""Encoding on the workers of a Dask cluster: the pool of `faced scan --scheduler` and of the
daemon's `dask.scheduler` (the optional extra `faced[dask]`, imported only here and only when
a scheduler is named).

Each worker runs the same `encode_file` a local worker process runs, so a photo gives the same
result wherever it is read; its models load once per worker process, on its first file. Dask
itself retries the files of a worker that dies or is lost, on another worker; a file that has
killed `distributed.scheduler.allowed-failures` workers comes back as KilledWorker. Dask blames
every file queued on a dying worker, so such a file is a suspect, as after a local worker's
death: suspects are read again one at a time, and one that kills its worker alone is recorded
as crashed, as a file that kills a local worker is. What cannot go on (no scheduler,
no worker, a worker that cannot run faced, the scheduler gone mid-scan) is a ClusterError
that says what to do. The writer, the clustering and the publishing never leave this machine.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future
from functools import partial
from typing import Any

from faced import __version__
from faced.config import DaskConfig, DetectionConfig, ImagesConfig, PathMap, VideoConfig
from faced.errors import ClusterError
from faced.faces.backends import usable
from faced.faces.work import encode_file
from faced.records import EncodeResult

log = logging.getLogger(__name__)

MISSING_EXTRA = (
    "reading photos on a Dask cluster needs the dask extra: pip install 'faced[dask]' "
    "(on this machine and on every worker)"
)
# How long a count of the cluster's worker threads is trusted (asking costs a round trip).
THREADS_SECONDS = 5.0


def to_worker(path: bytes, path_map: Sequence[PathMap]) -> bytes:
    """`path` as the workers name it: the first `path_map` prefix that holds it rewritten."""
    for m in path_map:
        local = os.fsencode(m.local.rstrip("/"))
        if path == local or path.startswith(local + b"/"):
            return os.fsencode(m.worker.rstrip("/")) + path[len(local) :]
    return path


def _unreachable(address: str, timeout: float) -> str | None:
    """Why nothing answers on a tcp:// scheduler address's port, or None if something does
    (other schemes, TLS for one, are left to Dask)."""
    if not address.startswith("tcp://"):
        return None
    host, _, port = address[len("tcp://") :].rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return None
    except (OSError, ValueError) as exc:
        return str(exc) or type(exc).__name__


def _quiet_dask_logs() -> None:
    """Dask's client logs its reconnection attempts and their tracebacks; what they mean for
    faced (the scheduler is gone, what happens next) is said by faced, once."""
    for name in list(logging.root.manager.loggerDict):
        if name == "distributed" or name.startswith("distributed."):
            logging.getLogger(name).setLevel(logging.CRITICAL)


def worker_facts(roots: Sequence[bytes], detector: str, dask_worker: Any = None) -> dict[str, Any]:
    """Run on each worker when faced connects (Client.run passes the worker itself): its
    faced version, the roots it cannot see, whether it can run `detector`, and its threads
    (what DaskPool checks)."""
    return {
        "version": __version__,
        "missing": [r for r in roots if not os.path.isdir(r)],
        "detector": usable(DetectionConfig(detector=detector)).detector == detector,  # type: ignore[arg-type]
        "threads": dask_worker.state.nthreads if dask_worker is not None else 1,
    }


class DaskPool:
    """Encode files on the workers of the Dask scheduler at `address`; connected on the first
    file (or by `connect`) and disconnected by `close`. The same interface as
    faced.faces.pool.EncoderPool, so faced.pipeline.scheduler feeds either."""

    def __init__(
        self,
        address: str,
        images: ImagesConfig,
        detection: DetectionConfig,
        video: VideoConfig | None,
        *,
        crashed: Callable[[bytes], EncodeResult],
        path_map: Sequence[PathMap] = (),
        roots: Sequence[bytes] = (),
        connect_seconds: float = 30.0,
    ) -> None:
        """`crashed(path)` makes the record of a file that kept killing workers; `roots` are
        the folders every worker must see (checked at connect, through `path_map`)."""
        self.address = address
        self.images = images
        self.detection = detection
        self.video = video
        self.crashed = crashed
        self.path_map = tuple(path_map)
        self.roots = tuple(roots)
        self.connect_seconds = connect_seconds
        self._client: Any = None
        self._lock = threading.Lock()  # the client and the pending futures
        self._connecting = threading.Lock()
        # Futures handed out and not yet settled: a close settles them all, so no file is left
        # in flight forever (a client that lost its scheduler may never cancel what it holds).
        self._pending: set[Future[EncodeResult]] = set()
        self._threads = (0, float("-inf"))  # the count, and when it was asked
        # Files Dask gave up on (KilledWorker), to read again one at a time before blaming them.
        self._suspects: deque[tuple[bytes, Future[EncodeResult]]] = deque()
        self._suspect_out = False  # one of them is on the cluster

    @classmethod
    def for_config(
        cls,
        dask: DaskConfig,
        images: ImagesConfig,
        detection: DetectionConfig,
        video: VideoConfig | None,
        *,
        crashed: Callable[[bytes], EncodeResult],
        roots: Sequence[bytes],
    ) -> DaskPool:
        """The pool a `dask:` config section (faced.config.DaskConfig) describes."""
        return cls(
            dask.scheduler,
            images,
            detection,
            video,
            crashed=crashed,
            path_map=dask.path_map,
            roots=roots,
            connect_seconds=dask.connect_seconds,
        )

    @property
    def running(self) -> bool:
        """True while connected to the scheduler."""
        return self._client is not None

    def connect(self) -> None:
        """Connect, wait for a first worker, and check that the workers can do the work: the
        same faced, the photos at the (mapped) paths. Raises ClusterError saying why not."""
        with self._connecting:  # one connection at a time; `close` does not wait for it
            if self._client is None:
                client = self._connected()
                with self._lock:
                    self._client = client

    def _connected(self) -> Any:
        try:
            from distributed import Client
        except ImportError as exc:
            raise ClusterError(MISSING_EXTRA) from exc
        _quiet_dask_logs()
        # A port nobody answers on is told first, with no Client made: a Client that fails
        # half-built closes itself when collected, waiting up to twice its timeout wherever
        # that happens.
        why = _unreachable(self.address, self.connect_seconds)
        client: Any = None
        if why is None:
            try:
                client = Client(  # type: ignore[no-untyped-call]
                    self.address, timeout=self.connect_seconds, set_as_default=False
                )
            except Exception as exc:  # OSError, TimeoutError, a garbled reply: all "cannot"
                why = str(exc)
        if client is None:
            raise ClusterError(
                f"cannot reach the Dask scheduler at {self.address}: {why} (is `dask scheduler` "
                "running there, and is its port open to this machine?)"
            )
        try:
            try:
                client.wait_for_workers(1, timeout=self.connect_seconds)
            except TimeoutError as exc:
                raise ClusterError(
                    f"no Dask worker joined the scheduler at {self.address} within "
                    f"{self.connect_seconds:g} s: start some with "
                    f"`dask worker {self.address} --nthreads 1 --nworkers N`"
                ) from exc
            self._check_workers(client)
        except BaseException:
            client.close()
            raise
        log.info(
            "reading photos on the Dask cluster at %s (%d worker(s))",
            self.address,
            len(client.nthreads()),
        )
        return client

    def _check_workers(self, client: Any) -> None:
        mapped = [to_worker(r, self.path_map) for r in self.roots]
        try:
            facts: dict[str, dict[str, Any]] = client.run(
                worker_facts, mapped, self.detection.detector
            )
        except Exception as exc:
            raise ClusterError(
                f"the Dask workers of {self.address} cannot run faced ({type(exc).__name__}: "
                f"{exc}): install the same faced, with its dask extra, on every worker"
            ) from exc
        for worker, f in sorted(facts.items()):
            if f["version"] != __version__:
                raise ClusterError(
                    f"the Dask worker {worker} runs faced {f['version']}, this machine "
                    f"{__version__}: install the same faced on every worker"
                )
            if f["missing"]:
                raise ClusterError(
                    f"the Dask worker {worker} cannot see {os.fsdecode(f['missing'][0])}: mount "
                    "the photos at the same path there, or map the path (dask.path_map)"
                )
            if not f["detector"]:
                raise ClusterError(
                    f"the Dask worker {worker} cannot run the {self.detection.detector} "
                    "detector: install faced there with the same extras (faced[yunet])"
                )
            if f["threads"] > 1:
                # dlib holds the GIL: a second thread in the same process waits for the first.
                log.warning(
                    "the Dask worker %s runs %d threads, and faced uses one of them at a time: "
                    "start workers with --nthreads 1 --nworkers N instead",
                    worker,
                    f["threads"],
                )

    @property
    def threads(self) -> int:
        """Worker threads in the cluster now (asked at most every THREADS_SECONDS)."""
        count, asked = self._threads
        client = self._client
        if client is not None and time.monotonic() - asked >= THREADS_SECONDS:
            try:
                count = sum(client.nthreads().values())
            except Exception:  # the scheduler is going away: the futures will say so
                count = 0
            if count == 0 and self._threads[0] > 0:
                log.warning("no Dask worker is connected to %s: photos wait", self.address)
            self._threads = (count, time.monotonic())
        return count

    def submit(self, path: bytes) -> Future[EncodeResult]:
        """Queue one file on the cluster; the future resolves to its EncodeResult, or raises
        ClusterError when the cluster cannot give one."""
        self.connect()
        out: Future[EncodeResult] = Future()
        with self._lock:
            self._pending.add(out)
        self._send(path, out, suspect=False)
        return out

    def _send(self, path: bytes, out: Future[EncodeResult], *, suspect: bool) -> None:
        remote = self._client.submit(
            encode_file,
            to_worker(path, self.path_map),
            self.images,
            self.detection,
            self.video,
            key=f"faced-encode-{uuid.uuid4().hex}",
            pure=False,  # the same path later may be other bytes
        )
        remote.add_done_callback(partial(self._settle, path, out, suspect))

    def _suspect(self, path: bytes, out: Future[EncodeResult]) -> None:
        """Read `path` again when no other suspect is on the cluster."""
        with self._lock:
            self._suspects.append((path, out))
        self._next_suspect()

    def _next_suspect(self) -> None:
        with self._lock:
            if self._suspect_out or not self._suspects or self._client is None:
                return
            path, out = self._suspects.popleft()
            self._suspect_out = True
        try:
            self._send(path, out, suspect=True)
        except Exception as exc:  # the client is closing: the file waits for the next scan
            with self._lock:
                self._suspect_out = False
            self._resolve(out, self._lost(exc))

    def _settle(self, path: bytes, out: Future[EncodeResult], suspect: bool, remote: Any) -> None:
        """Runs in Dask's callback thread when the file is done, one way or another."""
        try:
            self._outcome(path, out, suspect, remote)
        finally:
            if suspect:
                with self._lock:
                    self._suspect_out = False
                self._next_suspect()

    def _outcome(self, path: bytes, out: Future[EncodeResult], suspect: bool, remote: Any) -> None:
        from distributed import KilledWorker

        try:
            result: EncodeResult = remote.result()
        except KilledWorker:
            if not suspect:  # perhaps only queued on the dying workers: read it again alone
                log.info("%s was on Dask workers that died; reading it again", os.fsdecode(path))
                self._suspect(path, out)
                return
            log.warning(
                "%s killed the Dask workers that read it; recorded as an error",
                os.fsdecode(path),
            )
            self._resolve(out, self.crashed(path))
        except CancelledError as exc:
            self._resolve(out, self._lost(exc))
        except BaseException as exc:
            self._resolve(
                out,
                ClusterError(
                    f"a Dask worker failed on {os.fsdecode(path)}: {type(exc).__name__}: {exc} "
                    "(is the same faced installed on every worker?)"
                ),
            )
        else:
            self._resolve(out, dataclasses.replace(result, path=path))

    def _lost(self, why: object) -> ClusterError:
        return ClusterError(f"lost the Dask scheduler at {self.address} ({why})")

    def _resolve(self, out: Future[EncodeResult], outcome: EncodeResult | BaseException) -> None:
        """Settle `out` once (Dask's callback and a close may race to do it)."""
        with self._lock:
            if out not in self._pending:
                return
            self._pending.discard(out)
        if isinstance(outcome, BaseException):
            out.set_exception(outcome)
        else:
            out.set_result(outcome)

    def close(self, *, wait: bool = True) -> None:
        """Disconnect; files in flight are cancelled on the cluster (to be read again)."""
        with self._lock:
            client, self._client = self._client, None
            pending = list(self._pending)
            self._suspects.clear()
        for out in pending:
            self._resolve(out, self._lost("disconnected"))
        if client is not None:
            client.close(timeout=self.connect_seconds if wait else 2)

    def terminate(self) -> None:
        """Stop now (the same as close without waiting: workers stay, files are dropped)."""
        self.close(wait=False)
