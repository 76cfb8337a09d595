"""Reading photos on a Dask cluster: a real `dask scheduler` and two `dask worker` processes on
127.0.0.1, scans through them compared with local scans, workers and the scheduler killed."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from faced.config import Config, PathMap, config_from_mapping
from faced.errors import ClusterError, ConfigError
from faced.faces.remote import DaskPool, to_worker
from faced.pipeline.library import Library
from faced.pipeline.scan import cluster_encoder, crash_record, local_encoder, run_scan
from faced.records import EncodeResult, FolderRule, Status
from faced.store import Store

from .conftest import SMALL, PhotoLibrary, faced

DASK = Path(sys.executable).parent / "dask"
Found = tuple[list[int], np.ndarray]  # a face as stored: its box and its encoding
# Loaded by every worker (and again by the nanny's replacement for a dead one): a file whose
# name starts with "poison" kills the worker that reads it, as a decoder bug would.
POISON_PRELOAD = """
import os
import faced.faces.work as work

# A preload may run more than once in a process: wrap the real function, never the wrapper.
_encode_file = getattr(work, "unpoisoned", work.encode_file)
work.unpoisoned = _encode_file

def encode_file(path, *args, **kwargs):
    if os.path.basename(path).startswith(b"poison"):
        os._exit(1)
    with open(READ_LOG, "ab") as log:  # which files the cluster read
        log.write(path + b"\\n")
    return _encode_file(path, *args, **kwargs)

work.encode_file = encode_file
"""


@dataclass
class Cluster:
    """A scheduler and its workers, as processes of this test run."""

    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]
    logs: Path

    def read(self) -> list[bytes]:
        """The files the workers were given, in order."""
        log = self.logs / "read.log"
        return log.read_bytes().splitlines() if log.exists() else []

    def worker_pids(self) -> list[int]:
        """The pids of the worker processes themselves (below their nannies)."""
        from distributed import Client

        with Client(self.address, timeout=10, set_as_default=False) as c:  # type: ignore[no-untyped-call]
            return sorted(c.run(os.getpid).values())

    def wait_for_workers(self, n: int, timeout: float = 60) -> None:
        from distributed import Client

        with Client(self.address, timeout=10, set_as_default=False) as c:  # type: ignore[no-untyped-call]
            c.wait_for_workers(n, timeout=timeout)

    def stop(self) -> None:
        for p in [*self.workers, self.scheduler]:
            if p.poll() is None:
                p.terminate()
        for p in [*self.workers, self.scheduler]:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()


def start_cluster(root: Path, workers: int = 2) -> Cluster:
    """`dask scheduler` on a free loopback port, and `workers` single-threaded `dask worker`s."""
    root.mkdir(parents=True, exist_ok=True)
    read_log = root / "read.log"
    (root / "poison_preload.py").write_text(f"READ_LOG = {str(read_log)!r}\n{POISON_PRELOAD}")
    info = root / "scheduler.json"
    env = {
        **os.environ,
        # Two workers killed by one file make it the culprit (Dask's default is four).
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1",
    }
    with open(root / "scheduler.log", "wb") as log:
        scheduler = subprocess.Popen(
            [
                DASK,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                info,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    deadline = time.monotonic() + 60
    while not info.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    address = json.loads(info.read_text())["address"]
    procs = []
    for i in range(workers):
        with open(root / f"worker{i}.log", "wb") as log:
            procs.append(
                subprocess.Popen(
                    [
                        DASK,
                        "worker",
                        address,
                        "--nthreads",
                        "1",
                        "--no-dashboard",
                        "--preload",
                        root / "poison_preload.py",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
            )
    cluster = Cluster(address, scheduler, procs, root)
    cluster.wait_for_workers(workers)
    return cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = start_cluster(tmp_path_factory.mktemp("dask"))
    yield c
    c.stop()


def on(cluster: Cluster, lib: PhotoLibrary) -> Config:
    cfg = Config().with_paths(
        watch=[lib.photos], output=lib.people, state=lib.state, scheduler=cluster.address
    )
    return dataclasses.replace(cfg, dask=dataclasses.replace(cfg.dask, connect_seconds=10))


def fresh(tmp_path: Path, photos: Path) -> PhotoLibrary:
    """A library with the photos of `photos` (linked, not copied) and nothing scanned yet."""
    return PhotoLibrary(tmp_path, photos, tmp_path / "people", tmp_path / "state")


def contents(state: Path) -> tuple[list[tuple[bytes, str, str]], dict[bytes, list[Found]]]:
    """Every image (path, digest, status) and every face (path -> boxes and encodings)."""
    db = sqlite3.connect(state / "faced.sqlite3")
    images = db.execute("SELECT path, digest, status FROM images ORDER BY path").fetchall()
    faces: dict[bytes, list[Found]] = {}
    rows = db.execute(
        "SELECT i.path, f.box_top, f.box_right, f.box_bottom, f.box_left, f.encoding FROM faces f "
        "JOIN images i ON i.id = f.image_id ORDER BY i.path, f.box_top, f.box_left"
    )
    for path, *box, enc in rows:
        faces.setdefault(path, []).append((box, np.frombuffer(enc, np.float32)))
    db.close()
    return images, faces


def partition(state: Path) -> set[frozenset[bytes]]:
    """Who is with whom: each person as the set of photos of their faces."""
    db = sqlite3.connect(state / "faced.sqlite3")
    rows = db.execute(
        "SELECT f.person_id, i.path FROM faces f JOIN images i ON i.id = f.image_id "
        "WHERE f.person_id > 0"
    ).fetchall()
    db.close()
    people: dict[int, set[bytes]] = {}
    for pid, path in rows:
        people.setdefault(pid, set()).add(path)
    return {frozenset(s) for s in people.values()}


@pytest.mark.photos
def test_a_scan_on_the_cluster_equals_a_local_scan(
    cluster: Cluster, small_template: PhotoLibrary, tmp_path: Path
) -> None:
    lib = fresh(tmp_path, small_template.photos)
    with Store(lib.state) as store:
        run_scan(
            Library(on(cluster, lib), store),
            [lib.photos],
            cluster_encoder(on(cluster, lib), [lib.photos]),
        )
    images, faces = contents(lib.state)
    local_images, local_faces = contents(small_template.state)
    assert images == local_images and len(images) == 65
    assert faces.keys() == local_faces.keys()
    for path, found in faces.items():
        assert len(found) == len(local_faces[path])
        for (box, enc), (local_box, local_enc) in zip(found, local_faces[path], strict=True):
            assert box == local_box
            np.testing.assert_allclose(enc, local_enc, atol=1e-5)
    assert partition(lib.state) == partition(small_template.state)


@pytest.mark.photos
def test_a_worker_killed_mid_scan_loses_no_photo(
    cluster: Cluster, small_template: PhotoLibrary, tmp_path: Path
) -> None:
    lib = fresh(tmp_path, small_template.photos)
    cfg = on(cluster, lib)
    victim = cluster.worker_pids()[0]
    encode = cluster_encoder(cfg, [lib.photos])
    seen: list[bytes] = []
    killed = False

    def killing(todo: list[bytes]) -> Iterator[list[EncodeResult]]:
        nonlocal killed
        for done in encode(todo):
            seen.extend(r.path for r in done)
            if len(seen) >= 4 and not killed:
                os.kill(victim, signal.SIGKILL)  # with files in flight: the window is 2 each
                killed = True
            yield done

    with Store(lib.state) as store:
        run_scan(Library(cfg, store), [lib.photos], killing)
    assert victim not in cluster.worker_pids()  # it was killed (and its nanny made another)
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 65  # each photo once
    images, _ = contents(lib.state)
    assert len(images) == 65 and {status for _, _, status in images} == {Status.FACES.value}
    cluster.wait_for_workers(2)


@pytest.mark.photos
def test_a_photo_that_kills_workers_is_recorded_as_crashed(
    cluster: Cluster, small_template: PhotoLibrary, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.jpg", "poison.jpg", "b.jpg"):
        shutil.copy(next(small_template.photos.glob("*/train_1.jpg")), photos / name)
    lib = fresh(tmp_path, photos)
    with Store(lib.state) as store:
        run_scan(
            Library(on(cluster, lib), store), [photos], cluster_encoder(on(cluster, lib), [photos])
        )
    db = sqlite3.connect(lib.state / "faced.sqlite3")
    rows = dict(db.execute("SELECT path, reason FROM images").fetchall())
    db.close()
    assert rows[os.fsencode(photos / "a.jpg")] is None
    assert rows[os.fsencode(photos / "b.jpg")] is None
    assert "died" in rows[os.fsencode(photos / "poison.jpg")]
    cluster.wait_for_workers(2)


@pytest.mark.photos
def test_the_scheduler_going_away_stops_the_scan_and_the_next_scan_goes_on(
    small_template: PhotoLibrary, tmp_path: Path
) -> None:
    doomed = start_cluster(tmp_path / "doomed", workers=1)
    lib = fresh(tmp_path, small_template.photos)
    cfg = on(doomed, lib)
    encode = cluster_encoder(cfg, [lib.photos])
    recorded = 0

    def dying(todo: list[bytes]) -> Iterator[list[EncodeResult]]:
        nonlocal recorded
        for done in encode(todo):
            recorded += len(done)
            if recorded >= 3:
                doomed.scheduler.kill()
            yield done

    try:
        with Store(lib.state) as store, pytest.raises(ClusterError, match="run the scan again"):
            run_scan(Library(cfg, store), [lib.photos], dying)
    finally:
        doomed.stop()
    with Store(lib.state) as store:
        kept = store.counts(FolderRule(3))["images"]
        assert kept == recorded  # what was read before the loss is kept, nothing half-written
        local = dataclasses.replace(cfg, dask=Config().dask)
        plan, _ = run_scan(Library(local, store), [lib.photos], local_encoder(local))
        assert len(plan.todo) == 65 - kept
    assert contents(lib.state)[0] == contents(small_template.state)[0]


def test_no_scheduler_is_a_clear_error(tmp_path: Path) -> None:
    pool = DaskPool(
        "tcp://127.0.0.1:9",  # the discard port: nothing listens
        Config().images,
        Config().detection,
        None,
        crashed=crash_record(Config()),
        connect_seconds=1,
    )
    with pytest.raises(
        ClusterError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9"
    ):
        pool.connect()


def test_without_the_extra_the_scan_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"\xff\xd8 a photo to read")
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if it were not installed
    code = faced(
        "scan",
        photos,
        "--output",
        tmp_path / "people",
        "--state",
        tmp_path / "state",
        "--scheduler",
        "tcp://127.0.0.1:9",
    )
    assert code == 1
    assert "pip install 'faced[dask]'" in capsys.readouterr().err


def test_paths_are_mapped_to_what_the_workers_see() -> None:
    mapping = (PathMap("/srv/photos", "/mnt/server/photos"), PathMap("/srv", "/other"))
    assert to_worker(b"/srv/photos/2024/a.jpg", mapping) == b"/mnt/server/photos/2024/a.jpg"
    assert to_worker(b"/srv/photos", mapping) == b"/mnt/server/photos"
    assert to_worker(b"/srv/photosets/a.jpg", mapping) == b"/other/photosets/a.jpg"
    assert to_worker(b"/home/a.jpg", mapping) == b"/home/a.jpg"


def test_the_dask_section_is_checked(tmp_path: Path) -> None:
    cfg = config_from_mapping(
        {"dask": {"scheduler": "tcp://h:8786", "path_map": [{"local": "/a", "worker": "/b"}]}},
        source="f.yaml",
        base=tmp_path,
    )
    assert cfg.dask.scheduler == "tcp://h:8786" and cfg.dask.path_map == (PathMap("/a", "/b"),)
    with pytest.raises(
        ConfigError, match=r"f.yaml: dask.path_map\[0\].worker: must be an absolute"
    ):
        config_from_mapping(
            {"dask": {"path_map": [{"local": "/a", "worker": "b"}]}}, source="f.yaml", base=tmp_path
        )


@pytest.mark.photos
def test_the_daemon_reads_on_the_cluster_and_here_once_it_is_gone(tmp_path: Path) -> None:
    from .test_daemon import Daemon, until

    own = start_cluster(tmp_path / "cluster", workers=1)
    d = Daemon(
        tmp_path / "lib",
        extra_yaml=f"dask:\n  scheduler: {own.address}\n  connect_seconds: 5\n",
    )
    try:
        d.start()
        until(lambda: "reading photos on the Dask cluster" in d.log.read_text(), 60, "connected")
        photos = sorted(SMALL.glob("*/*.jpg"))
        for p in photos[:3]:
            shutil.copy(p, d.photos / f"{p.parent.name}_{p.name}")
        until(lambda: d.recorded_at_least(3), 60, "3 photos read")
        assert len(own.read()) == 3  # on the cluster
        own.scheduler.kill()
        for p in photos[3:6]:
            shutil.copy(p, d.photos / f"{p.parent.name}_{p.name}")
        until(lambda: d.recorded_at_least(6), 60, "3 more photos read here")
        assert len(own.read()) == 3
        log = d.log.read_text()
        assert log.count("reading photos on this machine meanwhile") == 1
        assert "Traceback" not in log
    finally:
        d.kill()
        own.stop()
