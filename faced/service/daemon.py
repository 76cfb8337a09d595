"""`faced run`: keep the person folders up to date while photos come and go, for months.

One thread, the main one, owns the store and does every write (as datasette's single writer
thread does). `Daemon` assembles the parts, each with one job, and runs the loop that drives
them: Intake (watcher events in), EncodeScheduler (files to the worker processes, crash
isolation), Debouncer (when to re-cluster), Housekeeping (observers, user edits, status),
StatusBoard (what systemd and the log are told). Signal handlers only set flags. A
reconciliation scan at start, every `rescan_minutes`, after a queue overflow and after an
observer restart catches whatever events missed.

Crash safety comes from the store (one transaction per file) and the publisher (one atomic swap
per folder): after a kill -9, a restart redoes the files that were in flight and converges to
what a clean scan gives.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import FrameType

from faced.config import Config, load_config
from faced.errors import ConfigError, PublishError, StoreFullError
from faced.faces.backends import usable
from faced.pipeline.library import Library
from faced.pipeline.rules import folder_rule
from faced.pipeline.scan import crash_record
from faced.pipeline.scheduler import EncodeScheduler
from faced.records import EncodeResult
from faced.service.backoff import Backoff
from faced.service.debounce import Debouncer
from faced.service.encoders import Encoders
from faced.service.housekeeping import Housekeeping
from faced.service.intake import Intake
from faced.service.notify import Notifier
from faced.service.status import StatusBoard
from faced.service.watch import Event, Handler, Watcher
from faced.store import Store

log = logging.getLogger(__name__)

# Idle workers are let go after this long (each holds its models and libraries); the next
# photo starts them again in about a second.
IDLE_POOL_SECONDS = 60.0
TICK = 0.25  # the main loop's longest sleep
ARRIVALS_LOGGED_BELOW = 20  # photos are logged one by one while fewer than this wait


class Daemon:
    """One run of the service on one configuration (SIGHUP starts a new one).

    It assembles the parts and runs the main loop; the loop's order (events, results, the
    re-cluster, rescans, housekeeping, watchdog pings) is the daemon's contract, so it stays in
    one class, a little over the house's usual length, while every part it drives has its own
    module and unit tests."""

    def __init__(
        self,
        cfg: Config,
        stop: threading.Event,
        notifier: Notifier,
        board: StatusBoard | None = None,
    ) -> None:
        """`board` carries the status counts over from the run before a reload."""
        self.cfg = cfg
        self.board = board or StatusBoard.starting(time.monotonic())
        self.stop = stop
        self.reload = threading.Event()
        self.notifier = notifier
        self.events: queue.Queue[Event] = queue.Queue(maxsize=cfg.daemon.queue_size)
        self.debounce = Debouncer(cfg.daemon.debounce_seconds, cfg.daemon.max_delay_seconds)
        self.last_work = time.monotonic()
        self.publish_failing = False  # said once until it works again
        # A full state disk pauses reading and re-clustering (what is read could not be kept);
        # once it can write again, a rescan catches up on the events it could not record.
        self.store_full = Backoff(f"the state folder {cfg.state} can be written again")

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
            self.encoders = Encoders(cfg)
            self.scheduler = EncodeScheduler(
                self.encoders.current,
                window=self.encoders.window,
                crashed=crash_record(cfg),
                slow=cfg.video.matches,
                slow_at_once=self.encoders.clips_at_once,
            )
            self.board.count_from(lambda: store.counts(folder_rule(cfg)))
            self.board.idle(time.monotonic())
            self.intake = Intake(
                self.events, self.lib, self.scheduler, changed=self._changed, clock=time.monotonic
            )
            self.watcher = Watcher(cfg.watch, handler)
            self.housekeeping = Housekeeping(
                self.watcher,
                store,
                self.lib.survey,
                reconcile=self.reconcile,
                edited=lambda: self.debounce.urgent(time.monotonic()),
                status=lambda: self.notifier.status(self.status_line()),
            )
            try:
                # Watch first, then scan: a photo arriving in between is seen by both, not neither.
                self.watcher.start()
                try:
                    self.reconcile(all_folders=True)
                    self.refresh(incremental=False)
                except StoreFullError as exc:
                    self.store_full.failed(time.monotonic(), exc)
                self.notifier.ready(self.status_line())
                log.info(
                    "faced is running: watching %s, people folders in %s",
                    ", ".join(str(w.path) for w in cfg.watch),
                    cfg.output,
                )
                self._loop(handler)
            finally:
                # A reload is not a stop: systemd would start its stop timeout (and kill us).
                if self.reload.is_set() and not self.stop.is_set():
                    self.notifier.reloading()
                else:
                    self.notifier.stopping()
                self.watcher.stop()
                self.encoders.terminate()

    def _loop(self, handler: Handler) -> None:
        rescan = self.cfg.daemon.rescan_minutes * 60
        next_rescan = time.monotonic() + rescan if rescan else float("inf")
        next_ping = time.monotonic()
        while not self.stop.is_set() and not self.reload.is_set():
            self._wait()
            now = time.monotonic()
            try:
                if self.store_full.retry_due(now):
                    self._catch_up()
                self.intake.drain()
                if handler.overflowed.is_set():
                    handler.overflowed.clear()
                    log.warning("too many file events at once; rescanning to catch up")
                    self.reconcile(all_folders=True)
                self.intake.settle()
                if done := self.scheduler.harvest():
                    self._record(done)
                self.encoders.tick(now, self.scheduler)
                if not self.store_full.paused(now):
                    self.scheduler.feed(self.lib.planner.needs_reading)
                if self.debounce.due(now) and not self.store_full.paused(now):
                    self.refresh()
                if now >= next_rescan:
                    self.reconcile(all_folders=True)
                    next_rescan = now + rescan
            except StoreFullError as exc:
                self.store_full.failed(now, exc)
                self.notifier.status(f"state folder full; {self.status_line()}")
            if self.housekeeping.due(now):
                self.housekeeping.run(now)
            self._pace(now)
            if self.notifier.watchdog_seconds and now >= next_ping:
                # Only a loop that gets here is healthy: a hang stops the pings.
                self.notifier.watchdog()
                next_ping = now + self.notifier.watchdog_seconds

    def _wait(self) -> None:
        """Sleep until there is something to do, at most one tick."""
        if self.scheduler.inflight and not self.scheduler.can_feed:
            self.scheduler.wait(TICK)
        elif not self.scheduler.can_feed:
            self.intake.wait(TICK)

    def _pace(self, now: float) -> None:
        """Progress lines while reading; idle workers let go after IDLE_POOL_SECONDS."""
        queued = self.queued()
        if self.scheduler.queued:
            self.last_work = now
            self.board.busy(now, queued)
            return
        self.board.idle(now)
        if now - self.last_work >= IDLE_POOL_SECONDS and self.encoders.running:
            log.debug("idle: stopping the worker processes until photos arrive")
            self.encoders.idle()

    def _record(self, done: list[EncodeResult]) -> None:
        """Store the results that finished together, in one commit."""
        try:
            changed = self.lib.record_all(done)
        except StoreFullError:
            for result in done:
                self.scheduler.add(result.path)  # read again once they can be kept
            raise
        self.store_full.worked(time.monotonic())
        for result in done:
            self.board.read(result)
            if not result.is_error and self.scheduler.queued < ARRIVALS_LOGGED_BELOW:
                # A photo arriving is an event that matters; a long import has progress lines.
                log.info("read %s: %d face(s)", os.fsdecode(result.path), len(result.faces))
        if changed:
            self._changed()

    def _catch_up(self) -> None:
        """After a pause for a full state disk: rescan (events taken in meanwhile may not have
        been recorded) and re-cluster. Writing again ends the pause; failing doubles it."""
        self.reconcile(all_folders=True)
        self.debounce.changed(time.monotonic())

    def _changed(self) -> None:
        self.board.stale()
        self.debounce.changed(time.monotonic())

    def queued(self) -> int:
        """Files waiting to be read, being read, or settling."""
        return self.scheduler.queued + len(self.intake.settling)

    def refresh(self, *, incremental: bool = True) -> None:
        """Re-cluster and publish (one at a time: this thread is the only one that does). A
        people folder that cannot be written is said once and tried again later."""
        self.debounce.fired()
        self.notifier.status("re-clustering; " + self.status_line())
        try:
            report = self.lib.refresh(incremental=incremental)
        except PublishError as exc:
            # Photos keep being read; the folders are tried again after the next quiet spell.
            if not self.publish_failing:
                log.error("%s; retrying", exc)
            self.publish_failing = True
            self.debounce.changed(time.monotonic())
            self.notifier.status(f"cannot publish; {self.status_line()}")
            return
        self.store_full.worked(time.monotonic())
        if self.publish_failing:
            log.info("the people folder %s is writable again", self.cfg.output)
            self.publish_failing = False
        self.board.stale()
        if summary := report.summary():
            log.info("%s", summary)
        self.notifier.status(self.status_line())

    def reconcile(self, roots: Iterable[Path] | None = None, *, all_folders: bool = False) -> None:
        """Compare folders (or every watched folder) with the store: see Intake.reconcile."""
        watched = [w.path for w in self.cfg.watch]  # a missing one is offline, not empty
        self.intake.reconcile(watched if all_folders else list(roots or []))

    def status_line(self) -> str:
        return self.board.line(self.queued())


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
    scheduler: str | None = None,
) -> int:
    """Run until SIGTERM or SIGINT. SIGHUP re-reads the configuration file (command-line
    overrides still apply) and restarts watchers, workers and store on it; an invalid file is
    reported and the running configuration kept."""
    stop = threading.Event()
    notifier = Notifier()
    current: list[Daemon] = []
    board: StatusBoard | None = None

    def on_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    def on_hup(signum: int, frame: FrameType | None) -> None:
        if current:
            current[0].reload.set()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    while True:
        daemon = Daemon(cfg, stop, notifier, board)
        board = daemon.board
        current[:] = [daemon]
        daemon.run()
        if stop.is_set() or not daemon.reload.is_set():
            log.info("faced stopped")
            return 0
        try:
            cfg = load_config(config_path).with_paths(
                watch=watch, output=output, state=state, scheduler=scheduler
            )
            cfg = dataclasses.replace(cfg, detection=usable(cfg.detection))
            log.info("configuration reloaded from %s", config_path or "built-in defaults")
        except ConfigError as exc:
            log.error("configuration not reloaded, keeping the running one: %s", exc)
