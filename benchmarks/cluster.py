"""Photos/s through a loopback Dask cluster against the local pool, same photos, same run; and
how many photos/s the one writer records, one commit per photo against one per batch.

Makes 12-MP photos (as benchmarks/ingest.py does), then reads them three ways, each from cold
(fresh worker processes that load their models on their first photo): the local pool of
`daemon.workers` processes (one per CPU), and a Dask LocalCluster of 1 and of 2 single-threaded
worker processes, through faced's own cluster encoder (the code `faced scan --scheduler` runs).
Every result is checked against the local pool's (boxes equal, encodings within 1e-5).

The writer part records synthetic results (one face each, a real-sized crop) through
`Library.record`, one transaction and fsync per photo, then through `Library.record_all` in
batches, as results that finish together are recorded.

    python benchmarks/cluster.py [--photos N (default 24)] [--writes N (default 2000)]

The last line printed is:
`photos/s: local pool X, dask 1 worker Y, dask 2 workers Z; writer A one commit each, B batched`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from faced.config import Config
from faced.faces.backends import model_name
from faced.pipeline.library import Library
from faced.pipeline.scan import Encode, cluster_encoder, local_encoder
from faced.records import EncodeResult, Face, FileStat
from faced.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import make_photos

BATCH = 32  # results recorded together in the writer part


def timed(encode: Encode, paths: list[bytes]) -> tuple[float, dict[bytes, EncodeResult]]:
    start = time.perf_counter()
    results = {r.path: r for done in encode(paths) for r in done}
    return time.perf_counter() - start, results


def same(a: dict[bytes, EncodeResult], b: dict[bytes, EncodeResult]) -> bool:
    """The same faces, boxes equal and encodings within 1e-5, for every photo."""
    if a.keys() != b.keys():
        return False
    for path, r in a.items():
        boxes = [f.box for f in r.faces]
        if boxes != [f.box for f in b[path].faces]:
            return False
        for f, g in zip(r.faces, b[path].faces, strict=True):
            if not np.allclose(f.encoding, g.encoding, atol=1e-5):
                return False
    return True


def on_cluster(
    cfg: Config, workers: int, root: Path, paths: list[bytes]
) -> tuple[float, dict[bytes, EncodeResult]]:
    from distributed import LocalCluster

    with LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        on = dataclasses.replace(
            cfg, dask=dataclasses.replace(cfg.dask, scheduler=cluster.scheduler_address)
        )
        return timed(cluster_encoder(on, [root]), paths)


def writer(root: Path, n: int) -> tuple[float, float]:
    """Photos recorded per second: one commit each, then in batches of BATCH."""
    rng = np.random.default_rng(0)
    thumb = rng.bytes(5_000)  # about a 128 px JPEG crop
    photos = root / "written"
    photos.mkdir()

    def results(tag: str) -> list[EncodeResult]:
        out = []
        for i in range(n):
            path = photos / f"{tag}_{i:05d}.jpg"
            path.touch()  # Library.record keeps only files that still exist
            face = Face((10, 60, 60, 10), rng.normal(0, 0.1, 128).astype(np.float32), thumb)
            out.append(
                EncodeResult.found(
                    os.fsencode(path), FileStat(1000, i, f"{tag}{i}"), (face,),
                    size=(100, 100), detector="bench", model=model_name("hog"),
                )
            )  # fmt: skip
        return out

    rates: list[float] = []
    cfg = Config().with_paths(output=root / "people", state=root / "state")
    with Store(cfg.state) as store:
        lib = Library(cfg, store)

        def each(rs: list[EncodeResult]) -> None:
            for r in rs:
                lib.record(r)

        def batched(rs: list[EncodeResult]) -> None:
            for i in range(0, len(rs), BATCH):
                lib.record_all(rs[i : i + BATCH])

        for record in (each, batched):
            todo = results(f"w{len(rates)}")
            start = time.perf_counter()
            record(todo)
            rates.append(n / (time.perf_counter() - start))
    return rates[0], rates[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=24)
    ap.add_argument("--writes", type=int, default=2000)
    ap.add_argument(
        "--dir", type=Path, help="where to work (the writer's figures depend on its disk)"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="faced-cluster-bench-", dir=args.dir) as tmp:
        root = Path(tmp)
        (root / "photos").mkdir()
        print(f"making {args.photos} 12-MP photos...", file=sys.stderr)
        paths = sorted(os.fsencode(p) for p in make_photos(root / "photos", args.photos))
        cfg = Config()
        runs: list[tuple[str, Callable[[], tuple[float, dict[bytes, EncodeResult]]]]] = [
            ("local pool", lambda: timed(local_encoder(cfg), paths)),
            ("dask 1 worker", lambda: on_cluster(cfg, 1, root / "photos", paths)),
            ("dask 2 workers", lambda: on_cluster(cfg, 2, root / "photos", paths)),
        ]
        rates: dict[str, float] = {}
        reference: dict[bytes, EncodeResult] | None = None
        for name, run in runs:
            seconds, results = run()
            reference = reference or results
            rates[name] = len(paths) / seconds
            faces = sum(len(r.faces) for r in results.values())
            print(
                f"{name}: {len(paths)} photos in {seconds:.1f} s, {rates[name]:.2f} photos/s, "
                f"{faces} faces, same as the local pool: {same(results, reference)}",
                file=sys.stderr,
            )
        one, batched = writer(root, args.writes)
    local, one_worker, two = rates["local pool"], rates["dask 1 worker"], rates["dask 2 workers"]
    print(
        f"photos/s: local pool {local:.2f}, dask 1 worker {one_worker:.2f}, dask 2 workers "
        f"{two:.2f}; writer {one:.0f} one commit each, {batched:.0f} batched"
    )


if __name__ == "__main__":
    main()
