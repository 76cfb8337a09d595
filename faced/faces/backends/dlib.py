"""dlib's detectors, 5-point landmarks and ResNet descriptor: the calls face_recognition makes.

Models come from the face_recognition_models package's files, located without importing it (its
__init__ needs pkg_resources, gone from new setuptools). Descriptors equal face_recognition's
to 1e-5 (a test checks it), so encodings stay compatible with the classic scripts.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np

from faced.config import DetectionConfig
from faced.errors import ModelError
from faced.faces.backends import DLIB_MODEL
from faced.faces.decode import scaled_copy
from faced.faces.detect import photo_box, search_hog
from faced.records import Box


def model_dir() -> Path:
    """The folder holding face_recognition_models' .dat files, found without importing it."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the face_recognition_models package is not installed")
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    if not (folder / "dlib_face_recognition_resnet_model_v1.dat").is_file():
        raise ModelError(f"face_recognition_models has no model files in {folder}")
    return folder


class DlibDescriber:
    """dlib's 5-point landmark predictor and ResNet descriptor: how every backend describes
    the faces it finds (so that all faces are comparable, and equal face_recognition's)."""

    model = DLIB_MODEL

    def __init__(self) -> None:
        import dlib  # imported here so that importing faced never loads dlib

        folder = model_dir()
        self.landmarks = dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat"))
        self.encoder = dlib.face_recognition_model_v1(
            str(folder / "dlib_face_recognition_resnet_model_v1.dat")
        )
        self._dlib = dlib

    def describe(self, rgb: np.ndarray, boxes: list[Box], jitters: int) -> list[np.ndarray]:
        """128-d descriptors for `boxes` (trimmed to `rgb`), as face_recognition computes them.

        face_recognition.face_encodings(img, boxes, jitters, model="small") runs the 5-point
        predictor on dlib.rectangle(left, top, right, bottom) and the ResNet on each shape; here
        the shapes go to the ResNet as one batch, which gives the same numbers.
        """
        if not boxes:
            return []
        shapes = self._dlib.full_object_detections()
        for box in boxes:
            shapes.append(self._shape(rgb, box))
        vectors = self.encoder.compute_face_descriptor(rgb, shapes, jitters)
        return [np.asarray(v, dtype=np.float64) for v in vectors]

    def aligned_chip(self, rgb: np.ndarray, box: Box, size: int, padding: float) -> np.ndarray:
        """dlib's own aligned chip (the crop its descriptor sees), `padding` around the face."""
        chip: np.ndarray = self._dlib.get_face_chip(
            rgb, self._shape(rgb, box), size=size, padding=padding
        )
        return chip

    def _shape(self, rgb: np.ndarray, box: Box) -> object:
        top, right, bottom, left = box
        return self.landmarks(rgb, self._dlib.rectangle(left, top, right, bottom))


class DlibBackend(DlibDescriber):
    """dlib's HOG or CNN detector, with dlib's landmarks and descriptor.

    `detect` may be called from several threads at once (a clip's frames): dlib's detectors
    are not safe to share between threads, so each thread gets its own HOG detector (cheap to
    make), and the CNN, a large model, is used by one thread at a time."""

    def __init__(self, detector: str) -> None:
        super().__init__()
        folder = model_dir()
        self.kind = detector
        self._local = threading.local()
        self._cnn_lock = threading.Lock()
        if detector == "cnn":
            self._cnn = self._dlib.cnn_face_detection_model_v1(
                str(folder / "mmod_human_face_detector.dat")
            )

    def _hog(self) -> Any:
        """This thread's HOG detector."""
        hog = getattr(self._local, "hog", None)
        if hog is None:
            hog = self._local.hog = self._dlib.get_frontal_face_detector()
        return hog

    def detect(
        self, rgb: np.ndarray, scale: float, upsample: int, det: DetectionConfig
    ) -> list[tuple[Box, float]]:
        """Scored face boxes in `rgb`'s pixels, searched as detection_plan says (scaled copy, dlib
        upsampling; HOG at det.hog_threshold, coarse to fine if det says so, see
        faced.faces.detect); untrimmed (boxes may reach past the border).

        Colour, not grey: HOG on grey levels is faster but loses faces face_recognition
        finds (docs/decisions/detection.md).
        """
        if self.kind == "hog":
            return search_hog(
                self._hog().run, rgb, scale, upsample, det.coarse_to_fine, det.hog_threshold
            )
        with self._cnn_lock:
            found = self._cnn(scaled_copy(rgb, scale), upsample)
        # The CNN's confidence is its margin over its own line, 0, like HOG's score.
        return [(photo_box(d.rect, scale), float(d.confidence)) for d in found]
