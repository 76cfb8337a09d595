"""Time a full re-cluster (clustering + identity assignment) through faced's real code.

The library is synthetic but shaped like a real one: every identity starts from a real dlib
encoding (the faces of lfw_dev, encoded once and cached in benchmarks/.cache), faces of an
identity are that encoding plus noise of the size real faces of one person scatter, and
identity sizes are skewed (Zipf): a few people in thousands of photos, most seen once or twice.

    python benchmarks/recluster.py --faces 100000

The last line printed is: `recluster N faces: X.XX s, peak RSS Y MB`.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

from faced.config import ClusteringConfig
from faced.people.cluster import cluster_faces
from faced.people.identity import PeopleState, assign_people, place_new_faces
from faced.pipeline.rules import cluster_params

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache" / "lfw_dev_one_per_person.npy"
LFW = HERE.parent.parent / "shared" / "data" / "faces" / "lfw_dev"


def real_encodings() -> np.ndarray:
    """One real encoding per lfw_dev person (the largest face of their first photo), encoded
    once and cached: every identity of the synthetic library is a different real person."""
    if CACHE.exists():
        cached: np.ndarray = np.load(CACHE)
        return cached
    from faced.config import Config
    from faced.pipeline.scan import local_encoder

    paths = [os.fsencode(min(d.glob("*.jpg"))) for d in sorted(LFW.iterdir()) if d.is_dir()]
    print(f"encoding {len(paths)} lfw_dev photos once (cached in {CACHE})...", file=sys.stderr)
    out = []
    for r in (r for done in local_encoder(Config())(paths) for r in done):
        if r.faces:
            out.append(max(r.faces, key=lambda f: f.box[2] - f.box[0]).encoding)
    CACHE.parent.mkdir(exist_ok=True)
    encodings = np.array(out, np.float32)
    np.save(CACHE, encodings)
    return encodings


def synthetic_library(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` encodings and their identity labels, with Zipf-skewed identity sizes."""
    rng = np.random.default_rng(seed)
    seeds = real_encodings()
    # Zipf sizes over ~n/8 identities: a library of 100k faces has ~12k people.
    k = max(1, n // 8)
    sizes = np.maximum(1, (n / np.sum(1 / np.arange(1, k + 1) ** 1.1)) / np.arange(1, k + 1) ** 1.1)
    sizes = np.floor(sizes).astype(int)
    sizes[0] += n - sizes.sum()
    sizes = sizes[sizes > 0]
    # New identities beyond the real ones: a real encoding pushed ~0.9 away (a stranger).
    # Built in float32 and in chunks, so the benchmark's own memory stays small.
    centres = seeds[rng.integers(0, len(seeds), len(sizes))].astype(np.float32)
    extra = centres[len(seeds) :]
    extra += rng.standard_normal(extra.shape, dtype=np.float32) * np.float32(0.9 / np.sqrt(128))
    spread = np.float32(0.30 / np.sqrt(2 * 128))  # faces of one person ~0.3 apart on average
    labels = np.repeat(np.arange(len(sizes)), sizes)[rng.permutation(int(sizes.sum()))]
    x = np.empty((len(labels), 128), dtype=np.float32)
    for s in range(0, len(labels), 1 << 16):
        part = labels[s : s + (1 << 16)]
        x[s : s + len(part)] = centres[part]
        x[s : s + len(part)] += rng.standard_normal((len(part), 128), dtype=np.float32) * spread
    return x, labels


def time_placement(x: np.ndarray, truth: np.ndarray, count: int) -> None:
    """How long the daemon takes to place `count` new faces among a library's people."""
    new, known = x[:count], x[count:]
    ids = np.arange(count, dtype=np.int64)
    params = cluster_params(ClusteringConfig())
    start = time.perf_counter()
    placed = place_new_faces(
        new,
        ids,
        ids,
        known,
        truth[count:] + 1,
        np.arange(len(known), dtype=np.int64) + count,
        PeopleState(),
        lambda size: params.pair_threshold,  # the bar faced.pipeline.place_new uses
    )
    seconds = time.perf_counter() - start
    right = int(np.sum(placed == truth[:count] + 1))
    print(
        f"place {count} new faces among {len(known)}: {seconds * 1000:.0f} ms "
        f"({right} placed with their person, {int(np.sum(placed == 0))} left for the next "
        "full re-cluster)"
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=int, default=10_000)
    parser.add_argument("--quality", action="store_true", help="also score against the labels")
    parser.add_argument(
        "--place",
        type=int,
        default=10,
        help="also time placing this many new faces among the library's people",
    )
    parser.add_argument("--no-full", action="store_true", help="skip the full re-cluster")
    args = parser.parse_args()

    x, truth = synthetic_library(args.faces)
    if args.place:
        time_placement(x, truth, args.place)
    if args.no_full:
        return
    face_ids = np.arange(1, len(x) + 1, dtype=np.int64)
    base_rss = peak_rss_mb()
    start = time.perf_counter()
    labels = cluster_faces(x, face_ids, cluster_params(ClusteringConfig()))
    result = assign_people(
        face_ids, face_ids, labels, np.zeros(len(x), np.int64), PeopleState(), min_faces=3
    )
    seconds = time.perf_counter() - start
    if args.quality:
        from faced.tools.metrics import bcubed, pairwise

        print(
            f"pairwise F {pairwise(truth, labels).f:.3f}, BCubed F {bcubed(truth, labels).f:.3f}, "
            f"{len(result.new_people)} people"
        )
    print(
        f"(input {len(x)} faces, {len(np.unique(truth))} identities; RSS before {base_rss:.0f} MB)"
    )
    print(f"recluster {len(x)} faces: {seconds:.2f} s, peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
