"""A photo to faces, as a worker process does it: read once, hash once, decode once, detect on a
downscaled copy, map boxes back, describe faces on the full-resolution image.

The backend (faced.faces.backends) is loaded lazily, once per process: importing this module
loads no model.
"""

from __future__ import annotations

import io
import logging
import os
from typing import NamedTuple

import cv2
import numpy as np
from PIL import Image

from faced.config import DetectionConfig, ImagesConfig
from faced.errors import ImageError
from faced.faces.backends import FaceBackend, detector_label, get_backend, model_name
from faced.faces.decode import decode, read_file
from faced.faces.detect import detection_plan, trimmed
from faced.records import Box, EncodeResult, Face, FileStat

log = logging.getLogger(__name__)

THUMB_SIDE = 128  # face crops kept in the store for montages, so publishing never re-decodes


class Found(NamedTuple):
    """A face found in a photo: its box (trimmed to the photo), detector score, descriptor."""

    box: Box
    score: float
    encoding: np.ndarray


def detect_faces(
    rgb: np.ndarray, det: DetectionConfig, models: FaceBackend
) -> list[tuple[Box, float]]:
    """Scored boxes found at the planned scale, trimmed to `rgb` (empty ones left out)."""
    h, w = rgb.shape[:2]
    scale, upsample = detection_plan(w, h, det)
    out = []
    for found, score in models.detect(rgb, scale, upsample, det):
        # face_recognition trims to the image the same way before computing landmarks.
        box = trimmed(found, w, h)
        if box[2] - box[0] >= 1 and box[1] - box[3] >= 1:
            out.append((box, score))
    return out


def find_faces(rgb: np.ndarray, det: DetectionConfig, models: FaceBackend) -> list[Found]:
    """Detect at the planned scale, map boxes to `rgb`, describe faces on `rgb` itself."""
    found = detect_faces(rgb, det, models)
    vectors = models.describe(rgb, [box for box, _ in found], det.jitters)
    return [Found(box, score, v) for (box, score), v in zip(found, vectors, strict=True)]


def face_thumbnail(rgb: np.ndarray, box: Box, side: int = THUMB_SIDE) -> bytes:
    """A square JPEG crop around `box` with some margin, for montages."""
    top, right, bottom, left = box
    h, w = rgb.shape[:2]
    size = max(bottom - top, right - left)
    cy, cx = (top + bottom) / 2, (left + right) / 2
    half = size * 0.65
    y0, y1 = max(int(cy - half), 0), min(int(cy + half), h)
    x0, x1 = max(int(cx - half), 0), min(int(cx + half), w)
    # INTER_AREA straight from the array: an order of magnitude cheaper than Pillow's Lanczos.
    crop = Image.fromarray(
        cv2.resize(rgb[y0:y1, x0:x1], (side, side), interpolation=cv2.INTER_AREA)
    )
    buf = io.BytesIO()
    crop.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def encode_photo(path: bytes, images: ImagesConfig, det: DetectionConfig) -> EncodeResult:
    """Read, decode and encode one photo. Never raises for bad input: errors become a result."""
    file = FileStat()
    try:
        raw = read_file(path, images.max_file_mb * 2**20)
        file = FileStat(raw.size, raw.mtime_ns, raw.digest)
        decoded = decode(raw.data, images)
        del raw
        rgb = decoded.rgb
        found = find_faces(rgb, det, get_backend(det.detector))
        faces = tuple(
            Face(f.box, f.encoding.astype(np.float32), face_thumbnail(rgb, f.box), score=f.score)
            for f in found
        )
    except Exception as exc:
        return failure(path, file, exc, det)
    h, w = rgb.shape[:2]
    return EncodeResult.found(
        path, file, faces, size=(w, h), detector=detector_label(det), model=model_name(det.detector)
    )


def failure(
    path: bytes, file: FileStat, exc: Exception, det: DetectionConfig, label: str | None = None
) -> EncodeResult:
    """The error record of a file whose reading raised `exc` (what was learnt of it: `file`),
    recorded as read with `label` (default: the detector label of `det`).

    Bad input (ImageError) and memory exhaustion are data; any other exception is a decoder bug
    on one odd file, logged with its traceback, and must not stop the run either.
    """
    if isinstance(exc, ImageError):
        reason = exc.reason
    elif isinstance(exc, MemoryError):
        reason = "out of memory"
    else:
        log.error("unexpected error reading %s", os.fsdecode(path), exc_info=exc)
        reason = f"unexpected error: {type(exc).__name__}: {exc}"
    file = file if file.size else FileStat.of(path)
    return EncodeResult.failed(
        path, file, reason, detector=label or detector_label(det), model=model_name(det.detector)
    )
