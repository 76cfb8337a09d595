"""watchdog observers and handlers. Handlers only filter and enqueue; nothing heavy runs here.

On Linux (inotify) a file is taken when it is closed after writing or moved into the tree
(rsync, Syncthing and phone uploaders write a temp name, then rename it), never when created:
a copy is still being written then. Polling observers (network shares) and platforms without
close events report created/modified instead; those paths are only marked "settling", and the
daemon takes them once their size and mtime stop changing.

The event queue is bounded. When it is full the event is dropped and `overflowed` is set; the
daemon answers with a reconciliation scan, so nothing is lost and memory stays bounded.
"""

from __future__ import annotations

import enum
import logging
import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from faced.config import ImagesConfig, VideoConfig, WatchFolder
from faced.pipeline.discover import is_candidate, is_excluded, is_ignored_name

log = logging.getLogger(__name__)


class Kind(enum.Enum):
    """What happened to a path, as far as faced cares."""

    READY = "ready"  # complete: read it
    SETTLING = "settling"  # maybe still being written: read it once it stops changing
    GONE = "gone"  # deleted or moved away
    GONE_TREE = "gone_tree"  # a folder deleted or moved away
    MOVED = "moved"  # renamed inside the watched tree: path -> dest
    NEW_TREE = "new_tree"  # a folder moved in: scan it
    NEW_DIR = "new_dir"  # a folder created (cp -r): scan it once its first files are written
    TOUCHED = "touched"  # attributes changed (chmod, touch): read it if the store says so


@dataclass(frozen=True)
class Event:
    kind: Kind
    path: bytes
    dest: bytes = b""


class Handler(FileSystemEventHandler):
    """Turns watchdog events into Events on a bounded queue."""

    def __init__(
        self,
        events: queue.Queue[Event],
        images: ImagesConfig,
        excluded: list[bytes],
        *,
        close_events: bool,
        video: VideoConfig | None = None,
    ) -> None:
        self.events = events
        self.images = images
        self.video = video
        self.excluded = excluded
        self.close_events = close_events
        self.overflowed = threading.Event()

    def without_close_events(self) -> Handler:
        """The same handler for an observer that reports no close events (polling): files
        are then taken once they stop changing. Same queue, same overflow flag."""
        twin = Handler(
            self.events, self.images, self.excluded, close_events=False, video=self.video
        )
        twin.overflowed = self.overflowed
        return twin

    def _photo(self, path: bytes) -> bool:
        return (
            bool(path)
            and is_candidate(path, self.images, self.video)
            and not is_excluded(path, self.excluded)
        )

    def _folder(self, path: bytes) -> bool:
        return (
            bool(path)
            and not is_excluded(path, self.excluded)
            and not any(is_ignored_name(part) for part in path.split(b"/") if part)
        )

    def _put(self, event: Event) -> None:
        try:
            self.events.put_nowait(event)
        except queue.Full:
            self.overflowed.set()

    def on_any_event(self, event: FileSystemEvent) -> None:
        src = os.fsencode(event.src_path)
        dest = os.fsencode(getattr(event, "dest_path", "") or "")
        if isinstance(event, FileClosedEvent):
            if self._photo(src):
                self._put(Event(Kind.READY, src))
        elif isinstance(event, FileMovedEvent):
            src_ok, dest_ok = self._photo(src), self._photo(dest)
            if src_ok and dest_ok:
                self._put(Event(Kind.MOVED, src, dest))
            elif dest_ok:  # moved in, or renamed from a temp name: complete now
                self._put(Event(Kind.READY, dest))
            elif src_ok:
                self._put(Event(Kind.GONE, src))
        elif isinstance(event, DirMovedEvent):
            # A move inside the tree also yields a FileMovedEvent per file, handled above.
            if src and not dest and self._folder(src):
                self._put(Event(Kind.GONE_TREE, src))
            elif dest and not src and self._folder(dest):
                self._put(Event(Kind.NEW_TREE, dest))
        elif isinstance(event, FileDeletedEvent):
            if self._photo(src):
                self._put(Event(Kind.GONE, src))
        elif isinstance(event, DirDeletedEvent):
            if self._folder(src):
                self._put(Event(Kind.GONE_TREE, src))
        elif isinstance(event, DirCreatedEvent):
            # Files written into a new folder before its watch was added send no event of
            # their own (cp -r): the folder is scanned once they have had time to land.
            if self._folder(src):
                self._put(Event(Kind.NEW_DIR, src))
        elif isinstance(event, FileAttribEvent):
            # A chmod that makes an unreadable file readable changes neither size nor mtime.
            if self._photo(src):
                self._put(Event(Kind.TOUCHED, src))
        elif isinstance(event, FileCreatedEvent) and os.path.islink(src):
            # A symlink is complete when it is created, and is never closed after writing.
            if self._photo(src):
                self._put(Event(Kind.READY, src))
        elif (
            isinstance(event, (FileCreatedEvent, FileModifiedEvent))
            and not self.close_events  # with close events, the close (or the move) follows
            and self._photo(src)
        ):
            self._put(Event(Kind.SETTLING, src))


def _identity(path: Path) -> tuple[int, int]:
    """Which folder is at `path` now: (st_dev, st_ino), or (0, 0) if none."""
    try:
        st = os.stat(path)
    except OSError:
        return (0, 0)
    return (st.st_dev, st.st_ino)


def _inotify_observer() -> BaseObserver | None:
    try:
        from watchdog.observers.inotify import InotifyObserver
    except ImportError:
        return None
    # Full events: a move into the tree is a move with no source, not a "created".
    return InotifyObserver(generate_full_events=True)


class Watcher:
    """One observer per watched folder, restarted if its thread dies."""

    def __init__(self, folders: tuple[WatchFolder, ...], handler: Handler) -> None:
        self.folders = folders
        self.handler = handler
        self.observers: dict[Path, BaseObserver] = {}
        self._fell_back: set[Path] = set()
        self._missing: set[Path] = set()
        self._identity: dict[Path, tuple[int, int]] = {}  # (st_dev, st_ino) when started

    def start(self) -> None:
        for folder in self.folders:
            self._start(folder)

    def _start(self, folder: WatchFolder) -> None:
        if not folder.path.is_dir():
            if folder.path not in self._missing:  # said once, not every few seconds
                log.warning("cannot watch %s: not a folder (yet); will retry", folder.path)
                self._missing.add(folder.path)
            return
        if folder.path in self._missing:
            self._missing.discard(folder.path)
            log.info("%s is there now", folder.path)
        polling = folder.polling or folder.path in self._fell_back
        observer = None if polling else _inotify_observer()
        if observer is None:
            observer = PollingObserver(timeout=5)
        handler = self.handler.without_close_events() if polling else self.handler
        try:
            observer.schedule(handler, str(folder.path), recursive=True)
            observer.start()
        except OSError as exc:
            if polling:
                log.error("cannot watch %s: %s", folder.path, exc)
                return
            # Typically ENOSPC: fs.inotify.max_user_watches reached.
            log.error(
                "cannot watch %s with inotify (%s); polling it instead. Raise "
                "fs.inotify.max_user_watches to watch it with inotify.",
                folder.path,
                exc,
            )
            self._fell_back.add(folder.path)
            self._start(folder)
            return
        self.observers[folder.path] = observer
        self._identity[folder.path] = _identity(folder.path)
        log.info("watching %s (%s)", folder.path, "polling" if polling else "inotify")

    def check(self) -> list[Path]:
        """Restart observers whose thread died or whose folder was replaced (moved away,
        re-created: an inotify watch follows the old folder), and start those whose folder
        appeared. Returns the folders (re)started, which the caller should rescan."""
        restarted = []
        for folder in self.folders:
            observer = self.observers.get(folder.path)
            alive = (
                observer is not None
                and observer.is_alive()
                and all(e.is_alive() for e in observer.emitters)
            )
            replaced = observer is not None and _identity(folder.path) != self._identity.get(
                folder.path
            )
            if alive and not replaced:
                continue
            if observer is not None:
                if replaced:
                    log.warning(
                        "%s is another folder now (moved away, re-created, mounted or "
                        "unmounted); watching it anew",
                        folder.path,
                    )
                else:
                    log.warning("the observer of %s stopped; restarting it", folder.path)
                self._stop(observer)
                del self.observers[folder.path]
            self._start(folder)
            if folder.path in self.observers:
                restarted.append(folder.path)
        return restarted

    @staticmethod
    def _stop(observer: BaseObserver) -> None:
        try:
            observer.stop()
            observer.join(timeout=5)
        except Exception:  # a dead observer may fail to stop; it is being replaced anyway
            log.debug("stopping an observer failed", exc_info=True)

    def stop(self) -> None:
        for observer in self.observers.values():
            observer.stop()
        for observer in self.observers.values():
            observer.join(timeout=5)
        self.observers.clear()
