"""What a long clip costs: a 1080p clip made of shared photos, read as the daemon reads it.

    python benchmarks/video.py [--minutes 10] [--faces DIR]

Builds (once, cached under benchmarks/.cache/) a clip of `--minutes` at 1920x1080, 30 frames
a second: 5-second shots, each a slow zoom over one lfw_dev photo filling the frame, one shot
in five two people side by side, hard cuts between shots, and each person on screen in two
shots far apart (a person who leaves and comes back). Then reads it with faced's defaults in
this process (the worker's code, on the threads it uses) and scans it into a fresh library,
and reports the time, the tracks, and how the people came out: folders holding the clip, and
how many of the people on screen got exactly one pure folder.

The last line: `10-minute 1080p clip: X s on N cores (budget 180 s)`.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from faced.config import Config, DetectionConfig, ImagesConfig, VideoConfig  # noqa: E402
from faced.faces.work import encode_file  # noqa: E402
from faced.pipeline.library import Library  # noqa: E402
from faced.store import Store  # noqa: E402

W, H, FPS, SHOT_S = 1920, 1080, 30, 5
CACHE = REPO / "benchmarks" / ".cache"


def _frame(photos: list[np.ndarray], zoom: float) -> np.ndarray:
    """The photos side by side, each covering its part of a W x H frame, zoomed in."""
    part = W // len(photos)
    out = []
    for img in photos:
        h, w = img.shape[:2]
        s = max(part / w, H / h) * zoom
        m = np.array([[s, 0, part / 2 - s * w / 2], [0, s, H / 2 - s * h / 2]], np.float32)
        out.append(cv2.warpAffine(img, m, (part, H), flags=cv2.INTER_LINEAR))
    return np.hstack(out)


def build(path: Path, minutes: float, faces: Path) -> list[list[str]]:
    """Write the clip; returns the people of each shot."""
    people = sorted(
        d for d in (faces / "lfw_dev").iterdir() if d.is_dir() and len(list(d.glob("*.jpg"))) >= 2
    )
    rng = random.Random(12)
    shots = int(minutes * 60 // SHOT_S)
    chosen = rng.sample(people, shots)  # each person shown twice: half as many people
    plan: list[list[Path]] = []
    for k in range(shots // 2):
        a = chosen[k]
        pa = sorted(a.glob("*.jpg"))
        plan.append([pa[0]])
        plan.append([pa[1]])
    rng.shuffle(plan)
    for k in range(0, len(plan), 5):  # one shot in five: two people at once
        other = chosen[shots // 2 + k // 5]
        plan[k] = [plan[k][0], sorted(other.glob("*.jpg"))[0]]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), FPS, (W, H))
    assert writer.isOpened()
    for shot in plan:
        imgs = [cv2.imread(str(p)) for p in shot]
        n = SHOT_S * FPS
        for i in range(n):
            writer.write(_frame([im for im in imgs if im is not None], 1.0 + 0.2 * i / n))
    writer.release()
    return [[p.parent.name for p in shot] for shot in plan]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--faces", type=Path, default=REPO.parent / "shared" / "data" / "faces")
    args = ap.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    clip = CACHE / f"clip-{args.minutes:g}min-1080p.mp4"
    plan_file = clip.with_suffix(".txt")
    if not clip.exists() or not plan_file.exists():
        t = time.perf_counter()
        shots = build(clip, args.minutes, args.faces)
        plan_file.write_text("\n".join(",".join(s) for s in shots), encoding="utf-8")
        print(f"built {clip.name} in {time.perf_counter() - t:.0f} s")
    shots = [line.split(",") for line in plan_file.read_text(encoding="utf-8").splitlines()]
    on_screen = {p for s in shots for p in s}
    cores = len(os.sched_getaffinity(0))

    video = VideoConfig()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    result = encode_file(os.fsencode(clip), ImagesConfig(), DetectionConfig(), video)
    wall = time.perf_counter() - t
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    assert result.reason is None, result.reason
    tracks = {f.track.number for f in result.faces if f.track}
    print(
        f"read: {wall:.1f} s wall, {cpu:.1f} s CPU, {len(result.faces)} faces kept from "
        f"{len(tracks)} tracks; {len(shots)} shots, {sum(map(len, shots))} appearances, "
        f"{len(on_screen)} people; peak RSS {cpu1.ru_maxrss / 1024:.0f} MB"
    )

    # The people: record the clip in a fresh library, cluster, and compare with the plan.
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Config().with_paths(
            watch=[clip.parent], output=Path(tmp) / "people", state=Path(tmp) / "state"
        )
        with Store(cfg.state) as store:
            lib = Library(cfg, store)
            lib.record(result)
            lib.refresh(force=True)
            shown = {e.person_id for e in store.people.entries()}
            folders = store.published.folders()
            # Who each kept face truly is: its shot, and its side of a two-person frame.
            truth: dict[int, set[str]] = defaultdict(set)  # folder's person -> people
            where: dict[str, set[int]] = defaultdict(set)  # person -> folders' persons
            for row in store.faces.rows(assigned_only=True):
                if row.person_id not in shown or row.person_id not in folders:
                    continue
                assert row.frame_ms is not None
                shot = shots[min(row.frame_ms // (SHOT_S * 1000), len(shots) - 1)]
                centre = (row.box[1] + row.box[3]) / 2
                name = shot[min(int(centre * len(shot) / W), len(shot) - 1)]
                truth[row.person_id].add(name)
                where[name].add(row.person_id)
    pure = sum(1 for name, ps in where.items() if len(ps) == 1 and truth[next(iter(ps))] == {name})
    mixed = sum(1 for names in truth.values() if len(names) > 1)
    for names in truth.values():
        if len(names) > 1:
            print("mixed folder:", ", ".join(sorted(names)))
    print(
        f"people: {len(truth)} folders for {len(on_screen)} people on screen; {pure} people "
        f"with exactly one folder, holding only them; {mixed} folders mixing people"
    )
    print(f"{args.minutes:g}-minute 1080p clip: {wall:.0f} s on {cores} cores (budget 180 s)")


if __name__ == "__main__":
    main()
