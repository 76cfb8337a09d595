"""HOG against YuNet on the shared photos: what each finds, how fast, and how far the YuNet
faces' descriptors are from the HOG ones for the same faces.

For each set, both detectors run through faced's own backends on one core (the photos as
faced decodes them, each detector with its own search plan): photos with a face, faces
(strong / weak: below the detector's line, or smaller than `min_face_px`), milliseconds of
detection per photo, and how many of HOG's faces of 80 px or more YuNet also finds (its box
centre inside HOG's and the other way round).

Against the hand counts in benchmarks/labels (the visible faces of each group and noisy web
photo, counted by eye; statues, drawings and figures count as faces): per detector, the faces
found of those visible (at most the count, per photo) and the detections beyond it. Counts,
not boxes: a false hit and a missed face in the same photo cancel out.

Descriptor agreement, on the faces both find: the distance between the descriptor from HOG's
box and the one from YuNet's HOG-like box. The yardstick is HOG against itself: the same photo
moved by 3 pixels, detected and described again (the classic pipeline's own noise).

    python benchmarks/detectors.py [--lfw N (default 300)]

The last line printed is:
`descriptor distance YuNet vs HOG: median X p99 Y (HOG moved 3 px: median A p99 B)`.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

from faced.config import Config, DetectionConfig
from faced.faces.backends import get_backend
from faced.faces.decode import decode, read_file
from faced.faces.detect import detection_plan, trimmed
from faced.people.identity import centre_in
from faced.records import Box

FACES = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "faces"
MOVE = 3  # pixels: the noise floor's shift
LARGE = 80  # px: HOG faces at least this tall must be found by YuNet too


LABELS = Path(__file__).resolve().parent / "labels"


def visible_faces() -> dict[Path, int]:
    """The hand counts: photo -> visible faces."""
    out: dict[Path, int] = {}
    for name, folder in (
        ("group_faces.csv", "fixture_extras/group"),
        ("noisy_faces.csv", "jurassic_park_noisy"),
    ):
        with (LABELS / name).open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                out[FACES / folder / row["file"]] = int(row["visible_faces"])
    return out


def sets(lfw: int) -> dict[str, list[Path]]:
    rng = np.random.default_rng(0)
    people = sorted(p for p in (FACES / "lfw_dev").iterdir() if p.is_dir())
    picked = [min(people[i].glob("*.jpg")) for i in rng.permutation(len(people))[:lfw]]
    return {
        "jurassic_park_noisy": sorted((FACES / "jurassic_park_noisy").rglob("*.jpg")),
        "fixture_extras/group": sorted((FACES / "fixture_extras" / "group").glob("*.*")),
        "fixture_extras/noface": sorted((FACES / "fixture_extras" / "noface").glob("*.*")),
        "fixture_small": sorted((FACES / "fixture_small").rglob("*.jpg")),
        f"lfw_dev ({lfw} photos)": picked,
    }


def detect(det: DetectionConfig, rgb: np.ndarray) -> tuple[list[tuple[Box, float]], float]:
    h, w = rgb.shape[:2]
    scale, up = detection_plan(w, h, det)
    start = time.perf_counter()
    found = get_backend(det.detector).detect(rgb, scale, up, det)
    return found, time.perf_counter() - start


def trim(box: Box, rgb: np.ndarray) -> Box:
    return trimmed(box, rgb.shape[1], rgb.shape[0])


def same(a: Box, b: Box) -> bool:
    return centre_in(a, b) and centre_in(b, a)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lfw", type=int, default=300)
    args = ap.parse_args()
    cfg = Config()
    hog = cfg.detection
    yunet = DetectionConfig(detector="yunet")
    describer = get_backend("hog")
    agree: list[float] = []
    floor: list[float] = []
    visible = visible_faces()
    hand: dict[str, dict[str, list[int]]] = {}  # set -> detector -> [visible, found, extra]
    print(
        "| photos | HOG: photos with a face / faces (weak) / ms | YuNet: same | HOG faces "
        f"of {LARGE}+ px YuNet finds |\n|---|---|---|---|"
    )
    for name, paths in sets(args.lfw).items():
        counts = {"hog": [0, 0, 0, 0.0], "yunet": [0, 0, 0, 0.0]}
        large = [0, 0]
        for path in paths:
            try:
                rgb = decode(read_file(os.fsencode(path), 300 * 2**20).data, cfg.images).rgb
            except Exception as exc:  # a set's odd file is not the benchmark's business
                print(f"skipped {path}: {exc}", file=sys.stderr)
                continue
            found = {}
            for label, det in (("hog", hog), ("yunet", yunet)):
                faces, seconds = detect(det, rgb)
                found[label] = faces
                c = counts[label]
                c[0] += bool(faces)
                c[1] += len(faces)
                c[2] += sum(s < 0 for _, s in faces)
                c[3] += seconds
            if path in visible:
                for label, faces in found.items():
                    v = hand.setdefault(name, {}).setdefault(label, [0, 0, 0])
                    v[0] += visible[path]
                    v[1] += min(len(faces), visible[path])
                    v[2] += max(0, len(faces) - visible[path])
            for box, score in found["hog"]:
                if score < 0:
                    continue
                match = [b for b, _ in found["yunet"] if same(box, b)]
                if box[2] - box[0] >= LARGE:
                    large[0] += 1
                    large[1] += bool(match)
                if not match or len(agree) >= 400:
                    continue
                a, b = describer.describe(rgb, [trim(box, rgb), trim(match[0], rgb)], 1)
                agree.append(float(np.linalg.norm(a - b)))
                moved = np.ascontiguousarray(np.pad(rgb, ((MOVE, 0), (MOVE, 0), (0, 0)), "edge"))
                shifted = (box[0] + MOVE, box[1] + MOVE, box[2] + MOVE, box[3] + MOVE)
                again = [b for b, s in detect(hog, moved)[0] if same(shifted, b)]
                if again:
                    (c_,) = describer.describe(moved, [trim(again[0], moved)], 1)
                    floor.append(float(np.linalg.norm(a - c_)))
        n = max(len(paths), 1)
        h, y = counts["hog"], counts["yunet"]
        print(
            f"| `{name}` ({len(paths)}) | {h[0]} / {h[1]} ({h[2]}) / {1000 * h[3] / n:.0f} | "
            f"{y[0]} / {y[1]} ({y[2]}) / {1000 * y[3] / n:.0f} | {large[1]} of {large[0]} |"
        )
    print("\n| photos (hand count) | HOG: found of visible / beyond | YuNet: same |\n|---|---|---|")
    for name, by in hand.items():
        vh, vy = by["hog"], by["yunet"]
        print(
            f"| `{name}` ({vh[0]} visible faces) | {vh[1]} ({vh[1] / vh[0]:.0%}) / {vh[2]} | "
            f"{vy[1]} ({vy[1] / vy[0]:.0%}) / {vy[2]} |"
        )
    a, f = np.array(agree), np.array(floor)
    print(
        f"descriptor distance YuNet vs HOG: median {np.median(a):.3f} p99 "
        f"{np.percentile(a, 99):.3f} ({len(a)} faces) (HOG moved {MOVE} px: median "
        f"{np.median(f):.3f} p99 {np.percentile(f, 99):.3f}, {len(f)} faces)"
    )


if __name__ == "__main__":
    main()
