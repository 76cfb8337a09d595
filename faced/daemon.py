"""`faced run`: keep the person folders up to date while photos come and go, for months.

One thread, the main one, owns the store and does every write (as datasette's single writer
thread does): it takes events from the watchers' bounded queue, feeds a bounded number of files
to the worker processes, records their results, and re-clusters on a debounce. Signal handlers
only set flags. A reconciliation scan at start, every `rescan_minutes`, after a queue overflow
and after an observer restart catches whatever events missed.

Crash safety comes from the store (one transaction per file) and the publisher (one atomic swap
per folder): after a kill -9, a restart redoes the files that were in flight and converges to
what a clean scan gives.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from faced.config import Config, load_config
from faced.encode import EncodeResult
from faced.errors import ConfigError
from faced.notify import Notifier
from faced.pipeline import Library
from faced.publish import folder_stamp, observe
from faced.store import Store
from faced.watch import Event, Handler, Kind, Watcher
from faced.workers import EncoderPool, crashed, pool_size

log = logging.getLogger(__name__)

SETTLE_SECONDS = 2.0  # a file seen by polling is read once unchanged for this long
# Idle workers are let go after this long (each holds ~150 MB of models and libraries); the
# next photo starts them again in about a second.
IDLE_POOL_SECONDS = 60.0
TICK = 0.25  # the main loop's longest sleep
HOUSEKEEPING_SECONDS = 5.0  # observer health, user edits, status line
PROGRESS_SECONDS = 60.0  # a progress line in the log while photos are being read


@dataclass
class Counters:
    """What STATUS= and the logs report."""

    encoded: int = 0
    errors: int = 0
    last_error: str = ""


class Daemon:
    """One run of the service on one configuration (SIGHUP starts a new one)."""

    def __init__(self, cfg: Config, stop: threading.Event, notifier: Notifier) -> None:
        self.cfg = cfg
        self.stop = stop
        self.reload = threading.Event()
        self.notifier = notifier
        self.events: queue.Queue[Event] = queue.Queue(maxsize=cfg.daemon.queue_size)
        self.pending: dict[bytes, None] = {}  # files to read, in arrival order
        self.settling: dict[bytes, tuple[tuple[int, int], float]] = {}
        self.inflight: dict[Future[EncodeResult], bytes] = {}
        self.workers = pool_size(cfg.daemon.workers)
        self.counters = Counters()
        self.dirty_since: float | None = None
        self.last_change = 0.0
        self.last_work = time.monotonic()
        self.people_stamp: tuple[object, ...] = ()  # see _people_folder_edited
        self.counts: dict[str, int] | None = None  # for the status line; None: recount
        self.last_progress = (time.monotonic(), 0)  # (when, photos read by then)
        self.edits_seen: str | None = None

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> None:
        """Watch, encode and publish until `stop` or `reload` is set."""
        cfg = self.cfg
        excluded = [os.fsencode(p) for p in (cfg.output, cfg.state)]
        handler = Handler(
            self.events, cfg.images, excluded, close_events=_has_close_events(), video=cfg.video
        )
        with Store(cfg.state) as store:
            self.store = store
            self.lib = Library(cfg, store)
            self.pool = EncoderPool(cfg.images, cfg.detection, self.workers, cfg.video)
            self.watcher = Watcher(cfg.watch, handler)
            self.edits_seen = store.get_meta("edited")
            try:
                # Watch first, then scan: a photo arriving in between is seen by both, not neither.
                self.watcher.start()
                self.reconcile(all_folders=True)
                self.lib.refresh()
                self.notifier.ready(self.status_line())
                log.info(
                    "faced is running: watching %s, people folders in %s",
                    ", ".join(str(w.path) for w in cfg.watch),
                    cfg.output,
                )
                self._loop(handler)
            finally:
                self.notifier.stopping()
                self.watcher.stop()
                self.pool.terminate()

    def _loop(self, handler: Handler) -> None:
        now = time.monotonic()
        next_rescan = (
            now + self.cfg.daemon.rescan_minutes * 60
            if self.cfg.daemon.rescan_minutes
            else float("inf")
        )
        next_housekeeping = now
        next_ping = now
        while not self.stop.is_set() and not self.reload.is_set():
            self._wait()
            self._take_events()
            if handler.overflowed.is_set():
                handler.overflowed.clear()
                log.warning("too many file events at once; rescanning to catch up")
                self.reconcile(all_folders=True)
            self._settle()
            self._harvest()
            self._feed()
            now = time.monotonic()
            if self._debounce_due(now):
                self.refresh()
            if now >= next_rescan:
                self.reconcile(all_folders=True)
                next_rescan = now + self.cfg.daemon.rescan_minutes * 60
            if now >= next_housekeeping:
                self._housekeeping()
                next_housekeeping = now + HOUSEKEEPING_SECONDS
            if self.inflight or self.pending:
                self.last_work = now
                self._progress(now)
            else:
                self.last_progress = (now, self.counters.encoded)  # rates count from here
                if now - self.last_work >= IDLE_POOL_SECONDS and self.pool.running:
                    log.debug("idle: stopping the worker processes until photos arrive")
                    self.pool.close()
            if self.notifier.watchdog_seconds and now >= next_ping:
                # Only a loop that gets here is healthy: a hang stops the pings.
                self.notifier.watchdog()
                next_ping = now + self.notifier.watchdog_seconds

    # -- events ------------------------------------------------------------------------------

    def _wait(self) -> None:
        """Sleep until there is something to do, at most one tick."""
        busy = len(self.inflight) >= self.workers * 2
        if self.inflight and (busy or not self.pending):
            wait(list(self.inflight), timeout=TICK, return_when=FIRST_COMPLETED)
        elif not self.pending:
            with contextlib.suppress(queue.Empty):
                self._apply(self.events.get(timeout=TICK))

    def _take_events(self) -> None:
        """Apply the queued events, a bounded number at a time."""
        try:
            event = self.events.get_nowait()
        except queue.Empty:
            return
        for _ in range(1000):  # bounded, so results keep flowing under a storm of events
            self._apply(event)
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return

    def _apply(self, event: Event) -> None:
        if event.kind is Kind.READY:
            self.settling.pop(event.path, None)
            self.pending[event.path] = None
        elif event.kind is Kind.SETTLING:
            self.settling.setdefault(event.path, ((-1, -1), time.monotonic()))
        elif event.kind is Kind.MOVED:
            self.pending.pop(event.path, None)
            if self.store.move(event.path, event.dest):
                log.debug("moved %s -> %s", os.fsdecode(event.path), os.fsdecode(event.dest))
                self._changed()
            else:
                self.pending[event.dest] = None
        elif event.kind is Kind.GONE:
            self.pending.pop(event.path, None)
            self.settling.pop(event.path, None)
            if self.store.forget([event.path]):
                log.info("removed %s", os.fsdecode(event.path))
                self._changed()
        elif event.kind is Kind.GONE_TREE:
            gone = self.store.forget_tree(event.path)
            if gone:
                log.info("removed %d photo(s) under %s", len(gone), os.fsdecode(event.path))
                self._changed()
        elif event.kind is Kind.NEW_TREE:
            self.reconcile([Path(os.fsdecode(event.path))])

    def _settle(self) -> None:
        """Move settling files whose size and mtime held still long enough to pending."""
        now = time.monotonic()
        for path, (seen, since) in list(self.settling.items()):
            try:
                st = os.stat(path)
            except OSError:
                del self.settling[path]
                continue
            current = (st.st_size, st.st_mtime_ns)
            if current != seen:
                self.settling[path] = (current, now)
            elif now - since >= SETTLE_SECONDS:
                del self.settling[path]
                self.pending[path] = None

    # -- work --------------------------------------------------------------------------------

    def _feed(self) -> None:
        """Keep each worker busy with up to two files; skip files the store already has."""
        while self.pending and len(self.inflight) < self.workers * 2:
            path = next(iter(self.pending))
            del self.pending[path]
            try:
                st = os.stat(path)
            except OSError:
                continue  # gone again; its deletion event follows
            if not self.lib.needs_encoding(self.store.image(path), st.st_size, st.st_mtime_ns):
                continue
            try:
                self.inflight[self.pool.submit(path)] = path
            except BrokenProcessPool:
                self._restart_pool()
                self.pending[path] = None
                return

    def _harvest(self) -> None:
        for fut in [f for f in self.inflight if f.done()]:
            if fut not in self.inflight:  # cleared by a pool restart meanwhile
                continue
            path = self.inflight.pop(fut)
            try:
                result = fut.result()
            except BrokenProcessPool:
                # The pool is gone; this file and the others in flight are retried alone.
                self._restart_pool()
                result = self._retry_alone(path)
            self._record(result)

    def _retry_alone(self, path: bytes) -> EncodeResult:
        try:
            return self.pool.submit(path).result()
        except BrokenProcessPool:
            self._restart_pool()
            log.warning("a worker died while reading %s; recorded as an error", os.fsdecode(path))
            return crashed(path, self.lib.label)

    def _restart_pool(self) -> None:
        lost = list(self.inflight.values())
        self.inflight.clear()
        self.pool.close(wait=False)
        for path in lost:  # retried later, alone if they break the pool again
            self._record(self._retry_alone(path))

    def _record(self, result: EncodeResult) -> None:
        self.counters.encoded += 1
        self.counts = None
        if result.status == "error":
            self.counters.errors += 1
            self.counters.last_error = (
                f"{os.fsdecode(os.path.basename(result.path))}: {result.reason}"
            )
        if self.lib.record(result):
            self._changed()

    def _progress(self, now: float) -> None:
        """During a long import, one log line a minute: how far, how fast."""
        since, done = self.last_progress
        if now - since < PROGRESS_SECONDS:
            return
        rate = (self.counters.encoded - done) / (now - since)
        queued = len(self.pending) + len(self.settling) + len(self.inflight)
        log.info("read %d photos so far (%.1f/s), %d queued", self.counters.encoded, rate, queued)
        self.last_progress = (now, self.counters.encoded)

    def _changed(self) -> None:
        self.counts = None
        now = time.monotonic()
        self.last_change = now
        if self.dirty_since is None:
            self.dirty_since = now

    def _debounce_due(self, now: float) -> bool:
        """Re-cluster after `debounce_seconds` of quiet, or `max_delay_seconds` after the
        first change under a steady stream."""
        if self.dirty_since is None:
            return False
        d = self.cfg.daemon
        return (
            now - self.last_change >= d.debounce_seconds
            or now - self.dirty_since >= d.max_delay_seconds
        )

    def refresh(self) -> None:
        """Re-cluster and publish (one at a time: this thread is the only one that does)."""
        self.dirty_since = None
        self.notifier.status("re-clustering; " + self.status_line())
        report = self.lib.refresh(incremental=True)
        self.counts = None
        if report.incremental:
            log.info(
                "placed new faces among %d in %.2f s: %d joined a person",
                report.faces,
                report.seconds,
                report.changed,
            )
        elif report.clustered:
            log.info(
                "re-clustered %d faces in %.1f s: %d changed, %d new people",
                report.faces,
                report.seconds,
                report.changed,
                report.new_people,
            )
        self.notifier.status(self.status_line())

    def reconcile(self, roots: Iterable[Path] | None = None, *, all_folders: bool = False) -> None:
        """Compare folders with the store: queue what is new or changed, forget what is gone."""
        folders = (
            [w.path for w in self.cfg.watch if w.path.is_dir()]
            if all_folders
            else list(roots or [])
        )
        plan = self.lib.plan_scan(folders)
        if plan.moved or plan.gone:
            self.lib.apply_plan_bookkeeping(plan)
            self._changed()
        for path in plan.todo:
            self.pending[path] = None
        if plan.todo:
            log.info("%d photo(s) to read in %s", len(plan.todo), ", ".join(map(str, folders)))

    # -- housekeeping --------------------------------------------------------------------------

    def _housekeeping(self) -> None:
        restarted = self.watcher.check()
        if restarted:
            self.reconcile(restarted)
        edited = self.store.get_meta("edited")
        if edited != self.edits_seen or self._people_folder_edited():
            self.edits_seen = edited
            self._changed()
            self.last_change = 0.0  # a user's edit is applied at once, not after a debounce
        self.notifier.status(self.status_line())

    def _people_folder_edited(self) -> bool:
        """A renamed person folder or a deleted link the user made since the last publish.

        Links are compared only when the folder stamp moved since the last look, so an idle
        daemon does not read every link of a large library every few seconds.
        """
        stamp = folder_stamp(self.cfg.output)
        if stamp == self.people_stamp:
            return False
        self.people_stamp = stamp
        published = self.store.published()
        links = self.store.published_links()
        for pid, seen in observe(self.cfg.output).items():
            if pid in published and (
                seen.folder != published[pid][0] or not set(links.get(pid, {})) <= seen.links
            ):
                return True
        return False

    def status_line(self) -> str:
        if self.counts is None:  # recounted only after something changed
            self.counts = self.store.counts(self.cfg.clustering.min_faces)
        c = self.counts
        queued = len(self.pending) + len(self.settling) + len(self.inflight)
        line = (
            f"{queued} queued, {self.counters.encoded} read, {c['faces']} faces, "
            f"{c['people']} people, {c['errors']} unreadable"
        )
        if self.counters.last_error:
            line += f"; last: {self.counters.last_error}"
        return line


def _has_close_events() -> bool:
    """inotify (Linux) reports close-after-write; other observers do not."""
    try:
        import watchdog.observers.inotify  # noqa: F401
    except ImportError:
        return False
    return True


def run_daemon(
    cfg: Config,
    config_path: Path | None = None,
    *,
    watch: list[Path] | None = None,
    output: Path | None = None,
    state: Path | None = None,
) -> int:
    """Run until SIGTERM or SIGINT. SIGHUP re-reads the configuration file (command-line
    overrides still apply) and restarts watchers, workers and store on it; an invalid file is
    reported and the running configuration kept."""
    stop = threading.Event()
    notifier = Notifier()
    current: list[Daemon] = []

    def on_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    def on_hup(signum: int, frame: FrameType | None) -> None:
        if current:
            current[0].reload.set()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    while True:
        daemon = Daemon(cfg, stop, notifier)
        current[:] = [daemon]
        daemon.run()
        if stop.is_set() or not daemon.reload.is_set():
            log.info("faced stopped")
            return 0
        notifier.reloading()
        try:
            cfg = load_config(config_path).with_paths(watch=watch, output=output, state=state)
            log.info("configuration reloaded from %s", config_path or "built-in defaults")
        except ConfigError as exc:
            log.error("configuration not reloaded, keeping the running one: %s", exc)
