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
from faced.errors import ImageError, UsageError
from faced.faces.backends import detector_label, get_backend, model_name
from faced.faces.decode import decode, read_file
from faced.faces.encode import face_thumbnail
from faced.faces.video import read_frame
from faced.people.identity import same_faces
from faced.publish.layout import folder_names
from faced.records import EncodeResult, Face, FileStat
from faced.store import FaceRow, Store

CHIP_SIZE = 150  # dlib's own chip size for its descriptor; padding 0.25 shows the whole head


def export_pickle(store: Store, dest: Path) -> int:
    """Write every face in the classic format. Returns the number of faces written."""
    data = [
        {
            "imagePath": os.fsdecode(row.path),
            "loc": row.box,
            "encoding": row.encoding.astype(np.float64),
        }
        for row in store.faces.rows()
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
    entries = [p for p in store.people.entries() if p.name or not named_only]
    folders = folder_names(entries, cfg.publish.unknown)
    by_image: dict[int, list[FaceRow]] = defaultdict(list)
    for row in store.faces.rows(assigned_only=True):
        if row.person_id in folders:
            by_image[row.image_id].append(row)
    backend = get_backend(cfg.detection.detector)

    dest.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = defaultdict(int)
    with (dest / "faces.csv").open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["crop", "person", "photo", "top", "right", "bottom", "left"])
        for _, faces in sorted(by_image.items()):
            path = faces[0].path
            rgb = None
            if not cfg.video.matches(path):
                try:
                    rgb = decode(
                        read_file(path, cfg.images.max_file_mb * 2**20).data, cfg.images
                    ).rgb
                except ImageError:
                    continue
            for face in faces:
                top, right, bottom, left = face.box
                if face.frame_ms is not None:  # a face seen in a video: crop it from its frame
                    try:
                        rgb = read_frame(path, face.frame_ms)
                    except ImageError:
                        continue
                if rgb is None:
                    continue
                chip = backend.aligned_chip(rgb, face.box, CHIP_SIZE, 0.25)
                assert face.person_id is not None  # rows(assigned_only=True)
                folder = folders[face.person_id]
                (dest / folder).mkdir(exist_ok=True)
                name = f"face_{face.face_id:07d}.jpg"
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
        store.images.record(
            match=same_faces,
            result=EncodeResult.found(
                path,
                FileStat(raw.size, raw.mtime_ns, raw.digest),
                tuple(found),
                size=(w, h),
                detector=label,
                model=model_name(cfg.detection.detector),
            ),
        )
        imported += 1
    return imported, missing
