"""Faces in video clips: sampled frames, faces found in each as in a photo.

A clip is looked at `video.fps` times a second, at most `video.max_frames` times (spread over
the whole clip when it is longer), so a long video costs bounded work. Every face found comes
back with its frame's time; the writer then keeps each person's `faces_per_person` largest
(faced.people.cluster.keep_best_per_person, with the configured clustering), so the clustering
code never loads in a worker. The video is one record in the store, so a person's folder links
it once, and its faces feed the montage.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import cv2
import numpy as np

from faced.config import DetectionConfig, VideoConfig
from faced.errors import ImageError
from faced.faces.backends import detector_label, get_backend, model_name
from faced.faces.decode import file_digest
from faced.faces.encode import face_thumbnail, failure, find_faces
from faced.records import EncodeResult, Face, FileStat


def sample_times(duration_ms: float, video: VideoConfig) -> list[int]:
    """The moments (ms) to look at: every 1/fps seconds, at most max_frames, spread evenly."""
    step = 1000.0 / video.fps
    wanted = int(duration_ms // step) + 1 if duration_ms > 0 else 1
    if wanted <= video.max_frames:
        return [round(i * step) for i in range(wanted)]
    return [round(t) for t in np.linspace(0, max(duration_ms - 1, 0), video.max_frames)]


def _open(path: bytes) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(os.fsdecode(path))
    if not cap.isOpened():
        cap.release()
        raise ImageError("not a readable video (broken, or a codec OpenCV lacks)")
    return cap


def frames(path: bytes, video: VideoConfig) -> Iterator[tuple[int, np.ndarray]]:
    """(time in ms, RGB frame) for each sampled moment that could be decoded."""
    cap = _open(path)
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0
        duration = count / fps * 1000 if fps > 0 and count > 0 else 0.0
        for ms in sample_times(duration, video):
            cap.set(cv2.CAP_PROP_POS_MSEC, ms)
            ok, bgr = cap.read()
            if ok and bgr is not None:
                yield ms, np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()


def read_frame(path: bytes, ms: int) -> np.ndarray:
    """The RGB frame at `ms` (for exports that crop a face seen in a video)."""
    cap = _open(path)
    try:
        cap.set(cv2.CAP_PROP_POS_MSEC, ms)
        ok, bgr = cap.read()
    finally:
        cap.release()
    if not ok or bgr is None:
        raise ImageError(f"no frame at {ms} ms")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def encode_video(path: bytes, det: DetectionConfig, video: VideoConfig) -> EncodeResult:
    """Find and describe the faces of one clip. Never raises for bad input."""
    file = FileStat()
    try:
        file = FileStat(*file_digest(path))
        models = get_backend(det.detector)
        faces: list[Face] = []
        width = height = 0
        seen = 0
        for ms, rgb in frames(path, video):
            seen += 1
            height, width = rgb.shape[:2]
            for f in find_faces(rgb, det, models):
                thumb = face_thumbnail(rgb, f.box)
                faces.append(Face(f.box, f.encoding.astype(np.float32), thumb, ms, f.score))
        if not seen:
            raise ImageError("not a readable video: no frame could be decoded")
    except Exception as exc:
        return failure(path, file, exc, det)
    return EncodeResult.found(
        path,
        file,
        tuple(faces),
        size=(width, height),
        detector=detector_label(det),
        model=model_name(det.detector),
    )
