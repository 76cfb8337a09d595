"""Ingest throughput on 12-MP photos: the classic pipeline against `faced scan`, same photos.

Makes 12-MP test photos (each shared photo with faces fitted onto 4032x3024), runs the classic
pipeline (full-size decode, dlib HOG with upsample 1, landmarks and descriptors, one process),
then the real `faced scan` with its default settings (with `--yunet`, also with YuNet), and
prints images/s of both, the ratio, and the faces each found by size band. A classic face
counts as found by faced when one of faced's boxes is the same face by dlib's own duplicate
rule (faced.detect.same_face: overlap over union above 0.5, or one box nearly all inside the
other, as when a face is found one pyramid level up). With --cnn it also times
`detection.detector: cnn`; with --daemon, a running `faced run` taking the same photos in from
its watched folder.

With --noise-floor it also runs the classic detection on the photos moved by 3 pixels: borderline
faces (dlib scores near its threshold) come and go with the pixel grid alone, and this shows
how many, to read faced's differences against.

    python benchmarks/ingest.py [--photos N (default: all 74)] [--cnn 4] [--coarse-to-fine]
                                [--daemon] [--noise-floor] [--yunet]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import dlib
import numpy as np
from PIL import Image

from faced.faces.backends import get_backend
from faced.faces.detect import same_face
from faced.records import Box

REPO = Path(__file__).resolve().parent.parent
FACES = REPO.parent / "shared" / "data" / "faces"
BANDS = ((0, 80), (80, 160), (160, 100_000))

Found = dict[str, list[Box]]


def make_photos(folder: Path, count: int) -> list[Path]:
    """12-MP JPEGs: shared photos scaled to fit 4032x3024, on a grey canvas."""
    sources = sorted((FACES / "fixture_small").rglob("*.jpg")) + sorted(
        (FACES / "fixture_extras" / "group").glob("*.jpg")
    )
    rng = np.random.default_rng(0)
    out: list[Path] = []
    for i in rng.permutation(len(sources))[: count or None]:
        src = sources[i]
        with Image.open(src) as im:
            photo = im.convert("RGB")
        scale = min(4032 / photo.width, 3024 / photo.height)
        photo = photo.resize(
            (round(photo.width * scale), round(photo.height * scale)), Image.Resampling.LANCZOS
        )
        canvas = Image.new("RGB", (4032, 3024), (128, 128, 128))
        canvas.paste(photo, ((4032 - photo.width) // 2, (3024 - photo.height) // 2))
        path = folder / f"photo_{len(out):03d}.jpg"
        canvas.save(path, "JPEG", quality=92)
        out.append(path)
    return out


def classic(paths: list[Path]) -> tuple[float, dict[str, list[Box]]]:
    """The classic encode_faces.py loop, with dlib called as face_recognition calls it."""
    models = get_backend("hog")
    detector = dlib.get_frontal_face_detector()
    found: dict[str, list[Box]] = {}
    start = time.perf_counter()
    for path in paths:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        boxes = classic_boxes(detector, rgb)
        for box in boxes:  # one descriptor call per face, as face_recognition.face_encodings
            models.describe(rgb, [box], 1)
        found[path.name] = boxes
    return time.perf_counter() - start, found


def classic_boxes(detector: Any, rgb: np.ndarray) -> list[Box]:
    """face_recognition.face_locations(rgb, 1, "hog"): HOG upsample 1, boxes trimmed to
    the image."""
    h, w = rgb.shape[:2]
    return [
        (max(r.top(), 0), min(r.right(), w), min(r.bottom(), h), max(r.left(), 0))
        for r in detector(rgb, 1)
    ]


def classic_shifted(paths: list[Path], shift: int = 3) -> Found:
    """The classic detection on each photo moved `shift` pixels up and left (its first rows
    and columns cut off), boxes mapped back: how much the classic pipeline disagrees with
    itself when nothing but the pixel grid changes."""
    detector = dlib.get_frontal_face_detector()
    found: Found = {}
    for path in paths:
        rgb = np.ascontiguousarray(np.asarray(Image.open(path).convert("RGB"))[shift:, shift:])
        found[path.name] = [
            (t + shift, r + shift, b + shift, left + shift)
            for t, r, b, left in classic_boxes(detector, rgb)
        ]
    return found


def faced_scan(folder: Path, work: Path, config: str = "") -> tuple[float, dict[str, list[Box]]]:
    cfg = work / "faced.yaml"
    cfg.write_text(config, encoding="utf-8")
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "faced",
            "scan",
            str(folder),
            "--output",
            str(work / "people"),
            "--state",
            str(work / "state"),
            "--config",
            str(cfg),
            "-q",
        ],
        check=True,
    )
    seconds = time.perf_counter() - start
    found: dict[str, list[Box]] = {}
    with sqlite3.connect(work / "state" / "faced.sqlite3") as db:
        for path, *box in db.execute(
            "SELECT i.path, box_top, box_right, box_bottom, box_left "
            "FROM faces f JOIN images i ON i.id = f.image_id"
        ):
            found.setdefault(os.path.basename(os.fsdecode(bytes(path))), []).append(tuple(box))
    return seconds, found


def faced_daemon(paths: list[Path], work: Path) -> float:
    """Seconds from moving `paths` into the folder a running `faced run` watches until its
    store holds all of them (encoded and recorded; publishing follows after the debounce)."""
    watch, staging = work / "watch", work / "staging"
    watch.mkdir()
    staging.mkdir()
    for p in paths:  # hard links on the same file system: moving them in is a rename
        os.link(p, staging / p.name)
    cfg = work / "faced.yaml"
    cfg.write_text(f"watch: [{watch}]\noutput: {work / 'people'}\nstate: {work / 'state'}\n")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as ready:
        # Readiness as systemd learns it (Type=notify): the daemon's READY=1 datagram.
        ready.bind(str(work / "notify.sock"))
        ready.settimeout(60)
        env = {**os.environ, "NOTIFY_SOCKET": str(work / "notify.sock")}
        command = [str(Path(sys.executable).with_name("faced")), "run", "--config", str(cfg)]
        proc = subprocess.Popen([*command, "-q"], env=env)
        try:
            while b"READY=1" not in ready.recv(4096).split(b"\n"):
                pass
            start = time.perf_counter()
            for p in paths:
                os.rename(staging / p.name, watch / p.name)
            db = sqlite3.connect(f"file:{work / 'state' / 'faced.sqlite3'}?mode=ro", uri=True)
            while db.execute("SELECT count(*) FROM images").fetchone()[0] < len(paths):
                time.sleep(0.1)
            seconds = time.perf_counter() - start
            db.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    return seconds


def report(
    label: str, seconds: float, n: int, t_classic: float, ours: Found, theirs: Found
) -> None:
    """Images/s, the ratio to the classic pipeline, and the classic's faces found by band."""
    print(f"{label}: {n / seconds:.3f} images/s, {t_classic / seconds:.1f}x the classic")
    compare(ours, theirs)


def compare(ours: Found, theirs: Found, who: str = "faced") -> None:
    """The classic's faces by size band, and how many of them `ours` (`who`) found too."""
    for lo, hi in BANDS:
        total = hit = 0
        for name, boxes in theirs.items():
            for box in boxes:
                if lo <= box[2] - box[0] < hi:
                    total += 1
                    hit += any(same_face(box, b) for b in ours.get(name, []))
        band = f"{lo}-{hi if hi < 100_000 else ''} px"
        print(f"  faces of {band:<10} found by the classic {total:3d}, also by {who} {hit:3d}")
    # Faced boxes that overlap no classic box: with the classic's misses above, this shows
    # whether differences are one-sided losses or borderline scores flipping both ways.
    extra = sum(
        not any(same_face(b, c) for c in theirs.get(name, []))
        for name, boxes in ours.items()
        for b in boxes
    )
    print(f"  faces {who} found that the classic did not: {extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=0, help="how many (default: all)")
    parser.add_argument("--cnn", type=int, default=0, help="also time the CNN on this many photos")
    parser.add_argument(
        "--coarse-to-fine", action="store_true", help="also run detection.coarse_to_fine: true"
    )
    parser.add_argument(
        "--daemon", action="store_true", help="also time `faced run` taking the photos in"
    )
    parser.add_argument(
        "--yunet", action="store_true", help="also run detection.detector: yunet (faced[yunet])"
    )
    parser.add_argument(
        "--noise-floor",
        action="store_true",
        help="also compare the classic with itself on the photos moved by 3 pixels",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "photos").mkdir()
        paths = make_photos(root / "photos", args.photos)
        (root / "faced").mkdir()
        t_faced, ours = faced_scan(root / "photos", root / "faced")
        if args.coarse_to_fine:
            (root / "c2f").mkdir()
            t_c2f, c2f = faced_scan(
                root / "photos", root / "c2f", "detection: {coarse_to_fine: true}\n"
            )
        if args.yunet:
            (root / "yunet").mkdir()
            t_yunet, yunet = faced_scan(
                root / "photos", root / "yunet", "detection: {detector: yunet}\n"
            )
        t_classic, theirs = classic(paths)
        n, cores = len(paths), os.cpu_count()
        print(f"{n} photos of 4032x3024, {cores} cores")
        print(f"classic (full size, HOG upsample 1, 1 process): {n / t_classic:.3f} images/s")
        report(f"faced scan (defaults, {cores} workers)", t_faced, n, t_classic, ours, theirs)
        if args.coarse_to_fine:
            report("faced scan (coarse_to_fine: true)", t_c2f, n, t_classic, c2f, theirs)
        if args.yunet:
            report("faced scan (detector: yunet)", t_yunet, n, t_classic, yunet, theirs)
        if args.daemon:
            (root / "daemon").mkdir()
            t_daemon = faced_daemon(paths, root / "daemon")
            print(
                f"faced run (the daemon, photos moved into its watched folder): "
                f"{n / t_daemon:.3f} images/s, {t_classic / t_daemon:.1f}x the classic"
            )
        if args.noise_floor:
            print("classic on the same photos moved by 3 pixels (detection only):")
            compare(classic_shifted(paths), theirs, "the moved run")
        if args.cnn:
            (root / "cnn").mkdir()
            (root / "cnn_photos").mkdir()
            for p in paths[: args.cnn]:
                os.link(p, root / "cnn_photos" / p.name)
            t_cnn, _ = faced_scan(root / "cnn_photos", root / "cnn", "detection: {detector: cnn}\n")
            print(
                f"faced with detector: cnn: {args.cnn / t_cnn:.3f} images/s "
                f"({t_cnn / args.cnn:.1f} s per photo)"
            )
        print(f"speed-up: {t_classic / t_faced:.1f}x")


if __name__ == "__main__":
    main()
