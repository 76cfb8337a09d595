"""Find faces and compute dlib's 128-d descriptors, exactly as the face_recognition package does.

Models come from the face_recognition_models package's files, located without importing it (its
__init__ needs pkg_resources, gone from new setuptools). They are loaded lazily, once per process:
importing this module loads nothing.

`encode_file` is what a worker process runs: read once, hash once, decode once, detect on a
downscaled copy, map boxes back, describe faces on the full-resolution image.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from faced.config import DetectionConfig, ImagesConfig, VideoConfig
from faced.decode import decode, read_file, scaled_copy
from faced.detect import Box, detection_plan, photo_box, search_hog
from faced.errors import ImageError, ModelError

log = logging.getLogger(__name__)

# Recorded with every face, so a store mixing descriptor models can never be clustered blindly.
MODEL_NAME = "dlib_resnet_v1+5pt"
THUMB_SIDE = 128  # face crops kept in the store for montages, so publishing never re-decodes

# The reason recorded for a file whose worker died; such files are read again at the next scan.
CRASHED = "a worker process died reading this file (retried at the next scan)"


def model_dir() -> Path:
    """The folder holding face_recognition_models' .dat files, found without importing it."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the face_recognition_models package is not installed")
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    if not (folder / "dlib_face_recognition_resnet_model_v1.dat").is_file():
        raise ModelError(f"face_recognition_models has no model files in {folder}")
    return folder


class FaceModels:
    """dlib's detector, 5-point landmark predictor and ResNet descriptor, loaded on first use."""

    def __init__(self, detector: str) -> None:
        import dlib  # imported here so that importing faced never loads dlib

        folder = model_dir()
        self.kind = detector
        if detector == "cnn":
            self._cnn = dlib.cnn_face_detection_model_v1(
                str(folder / "mmod_human_face_detector.dat")
            )
        else:
            self._hog = dlib.get_frontal_face_detector()
        self.landmarks = dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat"))
        self.encoder = dlib.face_recognition_model_v1(
            str(folder / "dlib_face_recognition_resnet_model_v1.dat")
        )
        self._rectangle = dlib.rectangle
        self._full_object_detections = dlib.full_object_detections

    def detect(
        self, rgb: np.ndarray, scale: float, upsample: int, det: DetectionConfig
    ) -> list[Box]:
        """Face boxes in `rgb`'s pixels, searched as detection_plan says (scaled copy, dlib
        upsampling; HOG at det.hog_threshold, coarse to fine if det says so, see
        faced.detect); untrimmed (boxes may reach past the border).

        Colour, not grey: HOG on grey levels is ~20% faster but lost 3 of 606 faces that
        face_recognition finds (one 90 px tall) and found none it misses.
        """
        if self.kind == "hog":
            return search_hog(
                self._hog.run, rgb, scale, upsample, det.coarse_to_fine, det.hog_threshold
            )
        found = self._cnn(scaled_copy(rgb, scale), upsample)
        return [photo_box(d.rect, scale) for d in found]

    def describe(self, rgb: np.ndarray, boxes: list[Box], jitters: int) -> list[np.ndarray]:
        """128-d descriptors for `boxes` (trimmed to `rgb`), as face_recognition computes them.

        face_recognition.face_encodings(img, boxes, jitters, model="small") runs the 5-point
        predictor on dlib.rectangle(left, top, right, bottom) and the ResNet on each shape; here
        the shapes go to the ResNet as one batch, which gives the same numbers.
        """
        if not boxes:
            return []
        shapes = self._full_object_detections()
        for top, right, bottom, left in boxes:
            shapes.append(self.landmarks(rgb, self._rectangle(left, top, right, bottom)))
        vectors = self.encoder.compute_face_descriptor(rgb, shapes, jitters)
        return [np.asarray(v, dtype=np.float64) for v in vectors]


_MODELS: dict[str, FaceModels] = {}


def get_models(detector: str) -> FaceModels:
    """This process's models for `detector`, loaded the first time they are asked for."""
    if detector not in _MODELS:
        _MODELS[detector] = FaceModels(detector)
    return _MODELS[detector]


@dataclass(frozen=True)
class Face:
    """One face: its box in displayed-image pixels, its descriptor and a small JPEG crop."""

    box: Box
    encoding: np.ndarray  # float32, shape (128,)
    thumb: bytes
    frame_ms: int | None = None  # where in a video it was seen; None for a photo


@dataclass(frozen=True)
class EncodeResult:
    """What a worker learned about one file. status: "faces", "noface" or "error"."""

    path: bytes
    size: int
    mtime_ns: int
    digest: str | None
    status: str
    reason: str | None
    faces: tuple[Face, ...]
    width: int = 0
    height: int = 0
    detector: str = ""
    model: str = MODEL_NAME


def detector_label(det: DetectionConfig) -> str:
    """How faces were found, recorded per face (e.g. "hog-min36-10mp-th-0.1")."""
    budget = f"{det.max_megapixels:g}mp" if det.max_megapixels else "full"
    label = f"{det.detector}-min{det.min_face_px}-{budget}"
    return f"{label}-th{det.hog_threshold:+g}" if det.detector == "hog" else label


def find_faces(
    rgb: np.ndarray, det: DetectionConfig, models: FaceModels
) -> list[tuple[Box, np.ndarray]]:
    """Detect at the planned scale, map boxes to `rgb`, describe faces on `rgb` itself."""
    h, w = rgb.shape[:2]
    scale, upsample = detection_plan(w, h, det)
    boxes: list[Box] = []
    for top, right, bottom, left in models.detect(rgb, scale, upsample, det):
        # face_recognition trims to the image the same way before computing landmarks.
        box = (max(top, 0), min(right, w), min(bottom, h), max(left, 0))
        if box[2] - box[0] < 1 or box[1] - box[3] < 1:
            continue
        boxes.append(box)
    vectors = models.describe(rgb, boxes, det.jitters)
    return list(zip(boxes, vectors, strict=True))


def face_thumbnail(rgb: np.ndarray, box: Box, side: int = THUMB_SIDE) -> bytes:
    """A square JPEG crop around `box` with some margin, for montages."""
    top, right, bottom, left = box
    h, w = rgb.shape[:2]
    size = max(bottom - top, right - left)
    cy, cx = (top + bottom) / 2, (left + right) / 2
    half = size * 0.65
    y0, y1 = max(int(cy - half), 0), min(int(cy + half), h)
    x0, x1 = max(int(cx - half), 0), min(int(cx + half), w)
    # INTER_AREA straight from the array: a 1000-px face costs ~1 ms, not ~15 (Pillow Lanczos).
    crop = Image.fromarray(
        cv2.resize(rgb[y0:y1, x0:x1], (side, side), interpolation=cv2.INTER_AREA)
    )
    buf = io.BytesIO()
    crop.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def encode_file(
    path: bytes, images: ImagesConfig, det: DetectionConfig, video: VideoConfig | None = None
) -> EncodeResult:
    """Read, decode and encode one file (a photo, or a clip if `video` names its extension).
    Never raises for bad input: errors become a result.

    This runs in a worker process; it touches no store and no shared state but the models.
    """
    size = mtime_ns = 0
    digest: str | None = None
    label = detector_label(det)
    try:
        if video is not None and video.matches(path):
            # Imported only for a clip: it builds on this module, and it brings the
            # clustering code (scikit-learn, SciPy) that photo workers need not load.
            from faced.video import encode_video

            return encode_video(path, det, video)
        raw = read_file(path, images.max_file_mb * 2**20)
        size, mtime_ns, digest = raw.size, raw.mtime_ns, raw.digest
        decoded = decode(raw.data, images)
        del raw
        rgb = decoded.rgb
        found = find_faces(rgb, det, get_models(det.detector))
        faces = tuple(
            Face(box, enc.astype(np.float32), face_thumbnail(rgb, box)) for box, enc in found
        )
        h, w = rgb.shape[:2]
    except ImageError as exc:
        if not size:
            size, mtime_ns = _stat_or_zero(path)
        return EncodeResult(path, size, mtime_ns, digest, "error", exc.reason, (), detector=label)
    except MemoryError:
        return EncodeResult(
            path, size, mtime_ns, digest, "error", "out of memory", (), detector=label
        )
    except Exception as exc:  # a decoder bug on one odd file must not stop the run
        log.exception("unexpected error reading %s", os.fsdecode(path))
        reason = f"unexpected error: {type(exc).__name__}: {exc}"
        return EncodeResult(path, size, mtime_ns, digest, "error", reason, (), detector=label)
    status = "faces" if faces else "noface"
    return EncodeResult(path, size, mtime_ns, digest, status, None, faces, w, h, label)


def _stat_or_zero(path: bytes) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return 0, 0
    return st.st_size, st.st_mtime_ns
