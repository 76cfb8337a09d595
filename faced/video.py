"""Faces in video clips: sampled frames, de-duplicated per person within a clip.

A clip is looked at `video.fps` times a second, at most `video.max_frames` times (spread over
the whole clip when it is longer), so a long video costs bounded work. Faces are found in each
frame as in a photo; then the clip's faces are clustered among themselves and each person keeps
only their `faces_per_person` largest faces: the same person in consecutive frames is one
person in one video, not a hundred photos. The video is one record in the store, so a person's
folder links it once, and its faces (with the frame's time) feed the montage.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import cv2
import numpy as np

from faced.cluster import ClusterParams, cluster_faces
from faced.config import DetectionConfig, VideoConfig
from faced.decode import file_digest
from faced.encode import EncodeResult, Face, detector_label, face_thumbnail, find_faces, get_models
from faced.errors import ImageError


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


def keep_best_per_person(faces: list[Face], per_person: int) -> list[Face]:
    """Cluster a clip's faces; each person keeps their `per_person` largest faces."""
    if len(faces) < 2:
        return faces
    encodings = np.array([f.encoding for f in faces], dtype=np.float32)
    frames_of = np.array([f.frame_ms or 0 for f in faces], dtype=np.int64)
    labels = cluster_faces(encodings, frames_of, ClusterParams())
    kept = [f for f, lab in zip(faces, labels, strict=True) if lab < 0]
    for lab in np.unique(labels[labels >= 0]):
        members = [faces[i] for i in np.flatnonzero(labels == lab)]
        members.sort(key=lambda f: -(f.box[2] - f.box[0]))
        kept.extend(members[:per_person])
    return sorted(kept, key=lambda f: (f.frame_ms or 0, f.box))


def encode_video(path: bytes, det: DetectionConfig, video: VideoConfig) -> EncodeResult:
    """Find, describe and de-duplicate the faces of one clip. Raises ImageError."""
    size, mtime_ns, digest = file_digest(path)
    models = get_models(det.detector)
    faces: list[Face] = []
    width = height = 0
    seen = 0
    for ms, rgb in frames(path, video):
        seen += 1
        height, width = rgb.shape[:2]
        for box, enc in find_faces(rgb, det, models):
            faces.append(Face(box, enc.astype(np.float32), face_thumbnail(rgb, box), ms))
    if not seen:
        raise ImageError("not a readable video: no frame could be decoded")
    kept = tuple(keep_best_per_person(faces, video.faces_per_person))
    status = "faces" if kept else "noface"
    return EncodeResult(
        path, size, mtime_ns, digest, status, None, kept, width, height, detector_label(det)
    )
