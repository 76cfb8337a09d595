"""Exports and imports in the formats of the workflows faced replaces.

- The classic encodings pickle (PyImageSearch's encode_faces.py / cluster_faces.py): a list of
  dicts with "imagePath", "loc" (top, right, bottom, left) and "encoding" (128 floats).
- A labelled face dataset: DIR/<person>/<crop>.jpg, aligned and padded crops of every face of
  each person, plus DIR/faces.csv saying which photo and box each crop came from.

Unpickling runs code, so an import must be asked for with --trust-pickle; the pickle is never
used as storage, only read once into the SQLite store.
"""

from __future__ import annotations

import csv
import os
import pickle
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from faced.config import Config
from faced.decode import decode, read_file
from faced.encode import MODEL_NAME, EncodeResult, Face, detector_label, face_thumbnail, get_models
from faced.errors import ImageError, UsageError
from faced.layout import folder_names
from faced.store import Store
from faced.video import read_frame

CHIP_SIZE = 150  # dlib's own chip size for its descriptor; padding 0.25 shows the whole head


def export_pickle(store: Store, dest: Path) -> int:
    """Write every face in the classic format. Returns the number of faces written."""
    rows = store.conn.execute(
        "SELECT i.path, f.box_top, f.box_right, f.box_bottom, f.box_left, f.encoding"
        " FROM faces f JOIN images i ON i.id = f.image_id ORDER BY f.id"
    ).fetchall()
    data = [
        {
            "imagePath": os.fsdecode(bytes(path)),
            "loc": (top, right, bottom, left),
            "encoding": np.frombuffer(enc, dtype="<f4").astype(np.float64),
        }
        for path, top, right, bottom, left, enc in rows
    ]
    tmp = dest.with_name(dest.name + ".tmp")
    with tmp.open("wb") as fh:
        pickle.dump(data, fh, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(dest)
    return len(data)


def export_dataset(store: Store, cfg: Config, dest: Path, *, named_only: bool) -> dict[str, int]:
    """Write aligned crops of every face of every person (or only named ones) under `dest`.

    Returns crops written per folder. Photos that cannot be read any more are skipped.
    """
    entries = [p for p in store.people_entries() if p.name or not named_only]
    folders = folder_names(entries, cfg.publish.unknown)
    boxes = store.face_boxes()
    by_image: dict[int, list[tuple[int, int]]] = defaultdict(list)  # image -> (face, person)
    rows = store.conn.execute(
        "SELECT id, image_id, person_id FROM faces WHERE person_id IS NOT NULL ORDER BY id"
    )
    for face_id, image_id, person_id in rows:
        if person_id in folders:
            by_image[image_id].append((face_id, person_id))
    paths = store.image_paths()
    models = get_models(cfg.detection.detector)
    import dlib

    dest.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = defaultdict(int)
    with (dest / "faces.csv").open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["crop", "person", "photo", "top", "right", "bottom", "left"])
        for image_id, faces in sorted(by_image.items()):
            path = paths[image_id]
            rgb = None
            if not cfg.video.matches(path):
                try:
                    rgb = decode(
                        read_file(path, cfg.images.max_file_mb * 2**20).data, cfg.images
                    ).rgb
                except ImageError:
                    continue
            for face_id, person_id in faces:
                (top, right, bottom, left), frame_ms = boxes[face_id]
                if frame_ms is not None:  # a face seen in a video: crop it from its frame
                    try:
                        rgb = read_frame(path, frame_ms)
                    except ImageError:
                        continue
                if rgb is None:
                    continue
                shape = models.landmarks(rgb, dlib.rectangle(left, top, right, bottom))
                chip = dlib.get_face_chip(rgb, shape, size=CHIP_SIZE, padding=0.25)
                folder = folders[person_id]
                (dest / folder).mkdir(exist_ok=True)
                name = f"face_{face_id:07d}.jpg"
                Image.fromarray(chip).save(dest / folder / name, quality=92)
                out.writerow(
                    [
                        f"{folder}/{name}",
                        folder,
                        os.fsdecode(path),
                        top,
                        right,
                        bottom,
                        left,
                    ]
                )
                written[folder] += 1
    return dict(written)


def import_pickle(store: Store, cfg: Config, source: Path) -> tuple[int, int]:
    """Record the faces of a classic encodings pickle without re-encoding them.

    Photos are matched by "imagePath" (absolute, or relative to the pickle's folder) and read
    once for their hash and the montage crops. Returns (photos imported, photos not found).
    """
    with source.open("rb") as fh:
        data: Any = pickle.load(fh)  # the caller made the user say --trust-pickle
    if not isinstance(data, list) or not all(
        isinstance(d, dict) and {"imagePath", "loc", "encoding"} <= d.keys() for d in data
    ):
        raise UsageError(f"{source}: not a list of dicts with imagePath, loc and encoding")
    grouped: dict[bytes, list[dict[str, Any]]] = defaultdict(list)
    for d in data:
        given = Path(str(d["imagePath"]))
        photo = given if given.is_absolute() else source.parent / given
        grouped[os.fsencode(os.path.abspath(photo))].append(d)
    imported = missing = 0
    label = detector_label(cfg.detection)
    for path, faces in grouped.items():
        try:
            raw = read_file(path, cfg.images.max_file_mb * 2**20)
            rgb = decode(raw.data, cfg.images).rgb
        except ImageError:
            missing += 1
            continue
        found = []
        for d in faces:
            top, right, bottom, left = (int(v) for v in d["loc"])
            box = (top, right, bottom, left)
            encoding = np.asarray(d["encoding"], dtype=np.float32).reshape(128)
            found.append(Face(box, encoding, face_thumbnail(rgb, box)))
        h, w = rgb.shape[:2]
        store.record(
            EncodeResult(
                path,
                raw.size,
                raw.mtime_ns,
                raw.digest,
                "faces",
                None,
                tuple(found),
                w,
                h,
                label,
                MODEL_NAME,
            )
        )
        imported += 1
    return imported, missing
