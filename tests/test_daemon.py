"""The daemon as a real process: watching, publishing, the notify protocol, signals, kill -9."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from faced.logs import JournalFormatter

from .clips import make_clip
from .conftest import LFW, REPO, SMALL, PhotoLibrary, faced, people_folders, run_cli


class NotifyListener:
    """A datagram socket standing in for systemd's notify socket; collects what it is sent."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notify-listener")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue

    def fields(self) -> list[str]:
        return [line for m in list(self.messages) for line in m.splitlines()]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


class Daemon:
    """`faced run` on a temporary config, as a subprocess."""

    def __init__(
        self,
        root: Path,
        notify: NotifyListener | None = None,
        *,
        polling: bool = False,
        extra_yaml: str = "",
        **daemon: object,
    ) -> None:
        """`daemon` settings go under `daemon:`; `extra_yaml` is appended to the config."""
        self.root = root
        self.photos, self.people, self.state = root / "photos", root / "people", root / "state"
        self.photos.mkdir(parents=True, exist_ok=True)
        settings = {
            "debounce_seconds": 1,
            "max_delay_seconds": 4,
            "rescan_minutes": 0,
            "workers": 2,
            **daemon,
        }
        self.config = root / "faced.yaml"
        self.config.write_text(
            f"watch: [{{path: {self.photos}, polling: {str(polling).lower()}}}]\n"
            f"output: {self.people}\nstate: {self.state}\n"
            "daemon:\n" + "".join(f"  {k}: {v}\n" for k, v in settings.items()) + extra_yaml,
            encoding="utf-8",
        )
        self.notify = notify
        self.log = root / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.namespaced = False

    def start(self, *, state_disk_kb: int | None = None) -> None:
        """Start `faced run`. With `state_disk_kb`, the state folder is a tmpfs of that size,
        mounted in a mount namespace of the daemon's own (see `grow_state_disk`)."""
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
        if self.notify:
            env["NOTIFY_SOCKET"] = str(self.notify.path)
            env["WATCHDOG_USEC"] = "2000000"
        with self.log.open("ab") as log:
            command = [sys.executable, "-m", "faced", "run", "--config", str(self.config)]
            if state_disk_kb is not None:
                self.state.mkdir(exist_ok=True)
                mount = f"mount -t tmpfs -o size={state_disk_kb}k tmpfs {self.state}"
                command = ["unshare", "--mount", "sh", "-c", f'{mount} && exec "$@"', "-", *command]
                self.namespaced = True
            self.proc = subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=log,
            )

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def descendants(self) -> set[int]:
        """The daemon's fork server and worker processes."""
        assert self.proc is not None
        found, todo = set(), [self.proc.pid]
        while todo:
            pid = todo.pop()
            for task in Path(f"/proc/{pid}/task").glob("*"):
                try:
                    children = {int(c) for c in (task / "children").read_text().split()}
                except OSError:
                    continue
                found |= children
                todo += children
        return found

    def kill(self) -> set[int]:
        """kill -9 the daemon; returns the processes it had started."""
        left: set[int] = set()
        if self.proc is not None and self.proc.poll() is None:
            left = self.descendants()
            self.proc.kill()
            self.proc.wait(timeout=10)
        return left

    def grow_state_disk(self, kb: int) -> None:
        """Make room on the state folder's tmpfs (see `start`)."""
        assert self.proc is not None
        subprocess.run(
            [
                "nsenter",
                "-t",
                str(self.proc.pid),
                "-m",
                "mount",
                "-o",
                f"remount,size={kb}k",
                str(self.state),
            ],
            check=True,
        )

    def query(self, sql: str) -> list[tuple[object, ...]]:
        """Rows of a read-only query of the store, as the daemon sees it: through its own mount
        namespace if it has one (SQLite resolves /proc/PID/root back to ours)."""
        db = self.state / "faced.sqlite3"
        if self.namespaced and self.proc is not None:
            script = (
                "import json, sqlite3, sys; c = sqlite3.connect(f'file:{sys.argv[1]}?mode=ro', "
                "uri=True); print(json.dumps(c.execute(sys.argv[2]).fetchall()))"
            )
            out = subprocess.run(
                [
                    "nsenter",
                    "-t",
                    str(self.proc.pid),
                    "-m",
                    sys.executable,
                    "-c",
                    script,
                    str(db),
                    sql,
                ],
                capture_output=True,
                text=True,
            )
            return [tuple(r) for r in json.loads(out.stdout)] if out.returncode == 0 else []
        if not db.exists():
            return []
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
            return c.execute(sql).fetchall()

    def rejections(self) -> int:
        return int(str(self.query("SELECT COUNT(*) FROM rejections")[0][0]))

    def recorded_at_least(self, images: float) -> bool:
        return self.counts()[0] >= images

    def has_under(self, path: Path, images: int) -> bool:
        """True if the store records at least `images` files at or under `path`."""
        paths = [
            os.fsencode(str(r[0])) for r in self.query("SELECT CAST(path AS TEXT) FROM images")
        ]
        prefix = os.fsencode(path)
        return sum(p == prefix or p.startswith(prefix + b"/") for p in paths) >= images

    def counts(self) -> tuple[int, int]:
        rows = self.query("SELECT (SELECT COUNT(*) FROM images), (SELECT COUNT(*) FROM faces)")
        return (int(str(rows[0][0])), int(str(rows[0][1]))) if rows else (0, 0)


def alive(pid: int) -> bool:
    """True for a running process (a zombie waiting to be reaped is dead)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def all_dead(pids: set[int]) -> bool:
    return not any(map(alive, pids))


def until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[NotifyListener]:
    n = NotifyListener(tmp_path / "notify.sock")
    yield n
    n.close()


@pytest.fixture
def daemon(tmp_path: Path, listener: NotifyListener) -> Iterator[Daemon]:
    d = Daemon(tmp_path, listener)
    yield d
    d.kill()


def slow_copy(src: Path, dest: Path) -> None:
    """A writer that takes its time: chunks with pauses, the file open all along."""
    data = src.read_bytes()
    with dest.open("wb") as fh:
        for i in range(0, len(data), 8192):
            fh.write(data[i : i + 8192])
            fh.flush()
            time.sleep(0.05)


def started(d: Daemon, listener: NotifyListener) -> Daemon:
    d.start()
    until(lambda: "READY=1" in listener.fields(), 60, "READY=1")
    return d


@pytest.fixture
def running(small: PhotoLibrary, listener: NotifyListener) -> Iterator[Daemon]:
    """The daemon, ready, over a scanned copy of fixture_small (nothing left to read)."""
    d = started(Daemon(small.root, listener), listener)
    yield d
    d.kill()


def named(photo: Path) -> str:
    """A copy's name that says whose photo it is (file names repeat across people)."""
    return f"{photo.parent.name}__{photo.name}"


def folder_with(people: Path, person: str) -> str:
    """The person folder whose links point at `person`'s photos (a shared folder name)."""
    return next(
        f for f, links in people_folders(people).items() if person in os.path.realpath(links[0])
    )


@pytest.mark.photos
def test_photos_arriving_three_ways_are_read_and_published(
    daemon: Daemon, listener: NotifyListener
) -> None:
    started(daemon, listener)
    # Plain copies, a slow writer, a temp name renamed into place.
    for photo in sorted((SMALL / "jerry_seinfeld").glob("*.jpg")):
        shutil.copy(photo, daemon.photos / named(photo))
    (daemon.photos / "slow").mkdir()
    for photo in sorted((SMALL / "steve_wozniak").glob("*.jpg"))[:3]:
        slow_copy(photo, daemon.photos / "slow" / named(photo))
    for photo in sorted((SMALL / "steve_wozniak").glob("*.jpg"))[3:]:
        part = daemon.photos / f".{named(photo)}.part"
        shutil.copy(photo, part)
        part.rename(daemon.photos / named(photo))
    expected = sum(1 for p in daemon.photos.rglob("*.jpg"))

    def two_people() -> bool:
        folders = people_folders(daemon.people) if daemon.people.exists() else {}
        return len(folders) == 2 and sum(len(v) for v in folders.values()) == expected

    until(two_people, 90, f"two person folders with {expected} photos")
    labels = sorted(
        {Path(os.path.realpath(p)).name.split("__")[0] for p in links}
        for links in people_folders(daemon.people).values()
    )
    assert labels == [{"jerry_seinfeld"}, {"steve_wozniak"}]
    assert "read " in daemon.log.read_text() and "face(s)" in daemon.log.read_text()


@pytest.mark.photos
def test_folders_copied_in_are_read_without_a_rescan(
    daemon: Daemon, listener: NotifyListener
) -> None:
    started(daemon, listener)
    # cp -r: each folder is made, then written into, before faced can watch it.
    for person in sorted(p for p in SMALL.iterdir() if p.is_dir()):
        shutil.copytree(person, daemon.photos / "copied" / person.name)
    expected = sum(1 for _ in (daemon.photos / "copied").rglob("*.jpg"))
    until(lambda: daemon.recorded_at_least(expected), 90, f"all {expected} copied photos read")


@pytest.mark.photos
def test_a_polled_folder_is_read(tmp_path: Path, listener: NotifyListener) -> None:
    d = started(Daemon(tmp_path, listener, polling=True), listener)
    try:
        for photo in sorted((SMALL / "jerry_seinfeld").glob("*.jpg"))[:4]:
            shutil.copy(photo, d.photos / photo.name)
        until(lambda: d.recorded_at_least(4), 60, "the polled photos read")
    finally:
        d.kill()


@pytest.mark.photos
def test_an_unwritable_people_folder_is_waited_out(
    daemon: Daemon, listener: NotifyListener
) -> None:
    daemon.people.write_text("in the way", encoding="utf-8")  # cannot be a folder
    for photo in sorted((SMALL / "jerry_seinfeld").glob("*.jpg"))[:4]:
        shutil.copy(photo, daemon.photos / photo.name)
    started(daemon, listener)  # ready all the same: photos are read meanwhile
    until(lambda: daemon.recorded_at_least(4), 60, "the photos read")
    daemon.people.unlink()
    until(lambda: daemon.people.is_dir() and people_folders(daemon.people), 30, "a person folder")
    assert daemon.proc is not None and daemon.proc.poll() is None
    log = daemon.log.read_text()
    assert log.count("cannot write the people folder") == 1 and "Traceback" not in log


@pytest.mark.photos
def test_a_deleted_photo_leaves_its_folder(running: Daemon) -> None:
    victim = Path(
        os.path.realpath(
            people_folders(running.people)[folder_with(running.people, "jerry_seinfeld")][0]
        )
    )
    victim.unlink()

    def victim_gone() -> bool:
        links = [p for v in people_folders(running.people).values() for p in v]
        return all(os.path.realpath(p) != str(victim) for p in links)

    until(victim_gone, 30, "the deleted photo to leave its folder")


@pytest.mark.photos
def test_a_clip_copied_in_is_followed_and_linked_in_its_persons_folder(running: Daemon) -> None:
    make_clip(running.photos / "visit.mp4", [SMALL / "jerry_seinfeld" / "train_1.jpg"])

    def linked() -> bool:
        folder = folder_with(running.people, "jerry_seinfeld")
        return "visit.mp4" in [p.name for p in people_folders(running.people)[folder]]

    until(linked, 90, "the clip in Jerry's folder")


@pytest.mark.photos
def test_a_folder_renamed_while_running_names_the_person(running: Daemon) -> None:
    jerry = folder_with(running.people, "jerry_seinfeld")
    (running.people / jerry).rename(running.people / "Jerry")
    until(
        lambda: '"name": "Jerry"' in run_cli("people", "--state", running.state, "--json").stdout,
        30,
        "the daemon to record the name",
    )
    folders = people_folders(running.people)
    assert "Jerry" in folders and jerry not in folders


@pytest.mark.photos
def test_a_link_deleted_while_running_is_a_rejection(running: Daemon) -> None:
    folder = folder_with(running.people, "jerry_seinfeld")
    victim_link = people_folders(running.people)[folder][0]
    victim_link.unlink()
    until(lambda: running.rejections() >= 1, 30, "the daemon to record the rejection")
    assert victim_link.name not in [p.name for p in people_folders(running.people)[folder]]


@pytest.mark.photos
def test_a_people_folder_deleted_while_running_is_rebuilt(running: Daemon) -> None:
    before = people_folders(running.people)
    shutil.rmtree(running.people)
    until(
        lambda: running.people.is_dir() and people_folders(running.people).keys() == before.keys(),
        30,
        "the people folder rebuilt",
    )


@pytest.mark.photos
def test_a_watched_folder_moved_away_and_recreated_is_watched_anew(running: Daemon) -> None:
    images = running.counts()[0]
    running.photos.rename(running.root / "photos.old")
    running.photos.mkdir()
    time.sleep(1)  # the old folder's watch is still alive meanwhile
    for photo in sorted((SMALL / "jerry_seinfeld").glob("*.jpg"))[:2]:
        shutil.copy(photo, running.photos / named(photo))
    until(lambda: running.has_under(running.photos, 2), 30, "the new folder's photos read")
    assert running.counts()[0] >= 2 and images > 2


@pytest.mark.photos
def test_a_symlink_made_in_the_watched_folder_is_read(running: Daemon) -> None:
    photo = sorted((SMALL / "jerry_seinfeld").glob("*.jpg"))[0]
    (running.photos / "linked.jpg").symlink_to(photo)
    until(lambda: running.has_under(running.photos / "linked.jpg", 1), 30, "the symlink read")


def can_mount_tmpfs() -> bool:
    probe = ["unshare", "--mount", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"]
    return os.geteuid() == 0 and subprocess.run(probe, capture_output=True).returncode == 0


@pytest.mark.photos
@pytest.mark.skipif(not can_mount_tmpfs(), reason="needs root and mount namespaces (a tmpfs)")
def test_a_full_state_disk_pauses_reading_until_there_is_room(
    daemon: Daemon, listener: NotifyListener
) -> None:
    daemon.start(state_disk_kb=256)
    until(lambda: "READY=1" in listener.fields(), 60, "READY=1")
    photos = sorted(SMALL.glob("*/*.jpg"))[:40]
    for photo in photos:
        shutil.copy(photo, daemon.photos / named(photo))
    until(lambda: "is full" in daemon.log.read_text(), 90, "the full disk to be said")
    assert daemon.proc is not None and daemon.proc.poll() is None
    daemon.grow_state_disk(20_000)
    until(lambda: daemon.recorded_at_least(len(photos)), 120, "every photo read after all")
    until(lambda: people_folders(daemon.people), 60, "person folders")
    log = daemon.log.read_text()
    assert log.count("free some space") == 1 and "can be written again" in log
    assert "Traceback" not in log


@pytest.mark.photos
def test_sighup_reloads_the_config_and_carries_on(
    running: Daemon, listener: NotifyListener
) -> None:
    running.signal(signal.SIGHUP)
    until(lambda: "configuration reloaded" in running.log.read_text(), 30, "the reload")
    until(lambda: listener.fields().count("READY=1") >= 2, 30, "READY=1 after the reload")
    fields = listener.fields()
    assert "RELOADING=1" in fields
    assert "STOPPING=1" not in fields  # systemd would start its stop timeout, then kill it
    assert running.proc is not None and running.proc.poll() is None


@pytest.mark.photos
def test_sigterm_stops_within_seconds_and_tells_systemd(
    running: Daemon, listener: NotifyListener
) -> None:
    until(lambda: "WATCHDOG=1" in listener.fields(), 10, "a watchdog ping")
    begun = time.monotonic()
    running.signal(signal.SIGTERM)
    assert running.wait(timeout=10) == 0
    assert time.monotonic() - begun < 10
    fields = listener.fields()
    assert "STOPPING=1" in fields
    status = [f for f in fields if f.startswith("STATUS=")]
    assert any("faces" in s and "people" in s and "queued" in s for s in status)
    log = running.log.read_text()
    assert "Traceback" not in log and "faced stopped" in log


@pytest.mark.photos
def test_kill_9_during_ingest_converges_to_a_clean_scan(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(SMALL, source, ignore=shutil.ignore_patterns("*.csv", "*.txt"))
    for person in sorted(p for p in LFW.iterdir() if p.is_dir())[:40]:
        shutil.copytree(person, source / "lfw" / person.name)
    total = sum(1 for p in source.rglob("*.jpg"))

    d = Daemon(tmp_path / "daemon")
    shutil.copytree(source, d.photos, dirs_exist_ok=True)
    # Killed four times: while starting, then at a quarter, half and three quarters done.
    for fraction in (0.0, 0.25, 0.5, 0.75):
        d.start()
        if fraction:
            until(partial(d.recorded_at_least, fraction * total), 120, f"{fraction:.0%} done")
        else:
            until(lambda: bool(d.descendants()), 60, "the workers to start")
        orphans = d.kill()
        assert orphans  # its fork server and workers were running...
        # ...and die with it instead of lingering (each holds ~150 MB of models).
        until(partial(all_dead, orphans), 10, "its processes to exit")
        assert d.counts()[0] < total, "the ingest finished before the kill: it proves nothing"
    d.start()
    until(lambda: d.counts()[0] == total, 240, "the ingest to finish after the kills")
    d.signal(signal.SIGTERM)
    assert d.wait(timeout=10) == 0

    clean = tmp_path / "clean"
    assert faced("scan", d.photos, "--output", clean / "people", "--state", clean / "state") == 0

    def contents(state: Path) -> list[tuple[object, ...]]:
        with sqlite3.connect(state / "faced.sqlite3") as c:
            return sorted(
                c.execute(
                    "SELECT i.path, i.digest, i.status, f.box_top, f.box_right, f.box_bottom,"
                    " f.box_left, f.encoding FROM images i LEFT JOIN faces f ON f.image_id = i.id"
                ).fetchall()
            )

    assert contents(d.state) == contents(clean / "state")
    assert not (d.people / ".faced-staging").exists()


def test_journald_lines_carry_priority_not_time() -> None:
    import logging

    record = logging.LogRecord("faced", logging.WARNING, __file__, 1, "skipped %s", ("x",), None)
    assert JournalFormatter("%(message)s").format(record) == "<4>skipped x"
