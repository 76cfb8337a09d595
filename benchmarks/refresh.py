"""Time the daemon's refresh among many faces, end to end through faced's real code.

A synthetic store of N faces is built through faced's own store code (the identities of
benchmarks/recluster.py: real dlib encodings, Zipf-sized people), clustered and published
once into a real people folder. Then, as the daemon does after its debounce, 10 new photos
(real shared photos, read by the real encoder) are recorded and `Library.refresh(incremental=
True)` runs: placement among the existing people, publishing, the links on disk. Then a
refresh with nothing new. Before the timed refresh, 10 other new photos are recorded and
refreshed untimed, as a running daemon has refreshed before (what it keeps in memory between
refreshes is then there).

    python benchmarks/refresh.py --faces 100000

The last line printed is:
`refresh with 10 new photos among N faces: X.XX s (publish Y.YY s)`.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from faced.config import Config
from faced.faces.backends import detector_label, model_name
from faced.people.identity import same_faces
from faced.pipeline.library import Library
from faced.pipeline.scan import local_encoder
from faced.records import EncodeResult, Face, FileStat
from faced.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recluster import synthetic_library  # the benchmark next door

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "faces"
NEW_PHOTOS = 10
# The daemon refreshes after `debounce_seconds` (10) of quiet; the people folder is this old
# at least (faced.publish.observe.RACY_SECONDS: a fresher folder is read again).
SETTLE = 2.5


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """This process's resident memory now (not the peak)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def build_store(cfg: Config, n: int, thumb: bytes) -> None:
    """N synthetic faces, one per photo, recorded as a scan records them. The build alone runs
    without fsync per photo (a benchmark's shortcut: what is timed later runs as shipped)."""
    x, _ = synthetic_library(n)
    with Store(cfg.state) as store:
        store.db.conn.execute("PRAGMA synchronous = OFF")
        label = detector_label(cfg.detection)
        for i, enc in enumerate(x):
            path = os.fsencode(cfg.watch[0].path / f"{i // 1000:04d}" / f"{i:07d}.jpg")
            face = Face((10, 110, 110, 10), enc, thumb, score=1.0)
            result = EncodeResult.found(
                path,
                FileStat(1000 + i, i, f"synthetic{i}"),
                (face,),
                size=(640, 480),
                detector=label,
                model=model_name(cfg.detection.detector),
            )
            store.images.record(result, match=same_faces)
            if i and i % 20000 == 0:
                print(f"  {i} faces recorded", file=sys.stderr)


def timed(fn: Callable[..., Any], into: list[float]) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            into.append(time.perf_counter() - start)

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", type=int, default=100_000)
    ap.add_argument("--keep", type=Path, help="build (or reuse) the library here, and keep it")
    ap.add_argument(
        "--profile", type=int, metavar="N", help="print the N costliest calls of the timed refresh"
    )
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="faced-refresh-"))
    photos, people, state = root / "photos", root / "people", root / "state"
    photos.mkdir(parents=True, exist_ok=True)
    cfg = Config().with_paths(watch=[photos], output=people, state=state)
    sample = sorted((SHARED / "fixture_small").glob("*/*.jpg"))
    new = sample[:NEW_PHOTOS]
    thumb = grey_thumb()
    if not (state / "faced.sqlite3").exists():
        start = time.perf_counter()
        print(f"building a store of {args.faces} faces in {root}...", file=sys.stderr)
        build_store(cfg, args.faces, thumb)
        with Store(cfg.state) as store:
            Library(cfg, store).refresh(force=True)
        print(f"built and published in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    # The 10 new photos, read by the real encoder (before timing: reading is not refreshing).
    incoming = photos / f"new-{time.time_ns()}"  # new paths at every run of a kept library
    incoming.mkdir()
    for p in new:
        shutil.copy(p, incoming / f"{p.parent.name}__{p.name}")
    warm = incoming.with_name(incoming.name + "-before")
    warm.mkdir()
    for p in sample[NEW_PHOTOS : 2 * NEW_PHOTOS]:
        shutil.copy(p, warm / f"{p.parent.name}__{p.name}")
    todo = sorted(os.fsencode(p) for p in incoming.iterdir())
    results = [r for done in local_encoder(cfg)(todo) for r in done]
    before = sorted(os.fsencode(p) for p in warm.iterdir())
    earlier = [r for done in local_encoder(cfg)(before) for r in done]
    with Store(cfg.state) as store:
        lib = Library(cfg, store)
        publish: list[float] = []
        lib.publish = timed(lib.publish, publish)  # type: ignore[method-assign]
        # A running daemon has refreshed before: other new photos, recorded and refreshed
        # untimed, so that what it keeps between refreshes is there, as it would be.
        for result in earlier:
            lib.record(result)
        lib.refresh(incremental=True)
        publish.clear()
        time.sleep(SETTLE)
        profiler = cProfile.Profile() if args.profile else None
        start = time.perf_counter()
        if profiler:
            profiler.enable()
        for result in results:
            lib.record(result)
        report = lib.refresh(incremental=True)
        seconds = time.perf_counter() - start
        if profiler:
            profiler.disable()
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(
                args.profile
            )
        busy_publish = publish[-1]
        idle = []
        for _ in range(2):  # the first looks at the folder just published, the second need not
            time.sleep(SETTLE)
            start = time.perf_counter()
            lib.refresh(incremental=True)
            idle.append(time.perf_counter() - start)
        print(
            f"refresh with nothing new among {args.faces} faces: {idle[1] * 1000:.0f} ms "
            f"(the first after a publish: {idle[0] * 1000:.0f} ms)"
        )
        print(
            f"RSS {rss_mb():.0f} MB now, peak {peak_mb():.0f} MB; incremental: {report.incremental}"
        )
        print(
            f"refresh with {NEW_PHOTOS} new photos among {args.faces} faces: "
            f"{seconds:.2f} s (publish {busy_publish:.2f} s)"
        )
    if not args.keep:
        shutil.rmtree(root)


def grey_thumb() -> bytes:
    """A face crop for every synthetic face (montages need one)."""
    buf = io.BytesIO()
    Image.new("RGB", (128, 128), (128, 128, 128)).save(buf, "JPEG")
    return buf.getvalue()


if __name__ == "__main__":
    main()
