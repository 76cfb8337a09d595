"""Faces in video clips: followed through the clip as tracks, a few good faces kept per track.

A clip is read once, front to back, and looked at `video.fps` times a second of its own time
(at most `video.max_frames` times, spread over the whole clip when it is longer, so a long
video costs bounded work). In each frame looked at, faces are found within a budget of
`video.max_megapixels`, on as many threads as the process may use (dlib lets go of Python's
lock while it searches). The faces are linked frame to frame into tracks (faced.faces.track);
each track keeps `video.faces_per_track` faces spread over it, and only those are described,
from crops taken when they were seen: describing a face costs as much as finding all of them
in a frame. Every kept face carries its frame's time and its track's number and span, so the
clustering keeps a track together and a long track proves a person by itself.

The video is one record in the store: a person's folder links it once, and its faces feed
the montage and `faced export --dataset`.
"""

from __future__ import annotations

import dataclasses
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import NamedTuple

import cv2
import numpy as np

from faced.config import DetectionConfig, VideoConfig
from faced.errors import ImageError
from faced.faces.backends import FaceBackend, detector_label, get_backend, model_name
from faced.faces.cpus import usable_cpus
from faced.faces.decode import file_digest
from faced.faces.encode import detect_faces, face_thumbnail, failure
from faced.faces.track import (
    Sighting,
    Track,
    Tracker,
    pick,
    shot_changed,
    shot_signature,
    split_at_switches,
)
from faced.records import Box, EncodeResult, Face, FileStat, TrackSpan

# Crops kept for describing later hold the face at most this tall: the descriptor sees the
# face at about 100 px (dlib's 150-px chip with its padding), so nothing it uses is lost.
CROP_FACE_PX = 200
CROP_MARGIN = 0.6  # context around the box, in box heights: the landmarks and the chip need it
# A clip whose frames stop more than this long before its announced end is cut short (a copy
# still under way, a damaged file): an error record, read again when it changes.
TRUNCATED_MS = 1000
MAX_THREADS = 4  # threads finding faces in one clip's frames (bounded by the usable CPUs)


def clip_label(det: DetectionConfig, video: VideoConfig) -> str:
    """How a clip's faces were found and followed, recorded with it: a clip read with other
    settings is read again (faced.pipeline.planner)."""
    return (
        f"{detector_label(_frame_detection(det, video))}+track-{video.fps:g}fps-"
        f"{video.max_frames}f-{video.faces_per_track}pt-gap{video.gap_seconds:g}s"
    )


def _frame_detection(det: DetectionConfig, video: VideoConfig) -> DetectionConfig:
    return dataclasses.replace(det, max_megapixels=video.max_megapixels)


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
    # Phones record upright clips sideways with a rotation tag: turned as a player shows them.
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return cap


class Clip(NamedTuple):
    """What a clip says of itself before it is read."""

    duration_ms: float  # 0: not known
    fps: float


def _facts(cap: cv2.VideoCapture) -> Clip:
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    count = cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0
    return Clip(count / fps * 1000 if fps > 0 and count > 0 else 0.0, fps)


def frames(path: bytes, video: VideoConfig) -> Iterator[tuple[int, np.ndarray]]:
    """(time in ms, RGB frame) for each sampled moment, read front to back: every frame is
    decoded (a codec cannot skip), only the sampled ones converted. Times are the clip's own
    (its frame rate, or each frame's timestamp). ImageError if the clip ends more than
    TRUNCATED_MS before the end it announces."""
    cap = _open(path)
    try:
        clip = _facts(cap)
        times = deque(sample_times(clip.duration_ms, video))
        index = 0
        last = -1.0
        while times and cap.grab():
            ms = cap.get(cv2.CAP_PROP_POS_MSEC)
            if clip.fps > 0 and not ms:  # no timestamps: the frame rate says where we are
                ms = index * 1000.0 / clip.fps
            index += 1
            last = ms
            if ms + 0.5 < times[0]:
                continue
            while times and times[0] <= ms + 0.5:
                times.popleft()
            ok, bgr = cap.retrieve()
            if ok and bgr is not None:
                yield round(ms), np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        if clip.duration_ms and times and last < clip.duration_ms - TRUNCATED_MS:
            raise ImageError(
                f"a truncated video: frames end at {max(last, 0) / 1000:.1f} s of "
                f"{clip.duration_ms / 1000:.1f} s"
            )
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


def _sightings(
    ms: int, rgb: np.ndarray, det: DetectionConfig, models: FaceBackend
) -> list[Sighting]:
    """The faces found in one frame, each with a crop to describe it from later."""
    return [
        Sighting(ms, box, score, *_crop(rgb, box)) for box, score in detect_faces(rgb, det, models)
    ]


def _crop(rgb: np.ndarray, box: Box) -> tuple[np.ndarray, Box]:
    """The face with CROP_MARGIN around it, shrunk to at most CROP_FACE_PX tall."""
    top, right, bottom, left = box
    m = (bottom - top) * CROP_MARGIN
    h, w = rgb.shape[:2]
    y0, y1 = max(0, int(top - m)), min(h, int(bottom + m) + 1)
    x0, x1 = max(0, int(left - m)), min(w, int(right + m) + 1)
    s = min(1.0, CROP_FACE_PX / max(bottom - top, 1))
    part = rgb[y0:y1, x0:x1]
    if s < 1.0:
        size = (max(1, round(part.shape[1] * s)), max(1, round(part.shape[0] * s)))
        part = cv2.resize(part, size, interpolation=cv2.INTER_AREA)
    crop_box = (
        round((top - y0) * s),
        min(round((right - x0) * s), part.shape[1] - 1),
        min(round((bottom - y0) * s), part.shape[0] - 1),
        round((left - x0) * s),
    )
    return np.ascontiguousarray(part), crop_box


def follow(
    path: bytes, det: DetectionConfig, video: VideoConfig, models: FaceBackend
) -> tuple[list[Track], tuple[int, int], int]:
    """The tracks of a clip, each split where its person changes and its kept faces
    described; the frame size (width, height) and the sampling step (ms)."""
    fdet = _frame_detection(det, video)
    tracker = Tracker(gap_ms=round(video.gap_seconds * 1000))
    tracks: list[Track] = []
    size = (0, 0)
    seen = 0
    before: np.ndarray | None = None
    pending: deque[tuple[int, np.ndarray, Future[list[Sighting]]]] = deque()
    threads = min(MAX_THREADS, usable_cpus())

    def describe(sightings: Sequence[Sighting]) -> None:
        for s in sightings:
            if s.encoding is None and s.crop is not None:
                s.encoding = models.describe(s.crop, [s.crop_box], det.jitters)[0]

    def finish(ended: list[Track]) -> None:
        # Described and thinned as soon as they end: only open tracks hold crops, so memory
        # does not grow with the clip.
        for t in ended:
            for part in split_at_switches(t, video.faces_per_track, describe):
                kept = set(pick(part, video.faces_per_track))
                for i, s in enumerate(part.sightings):
                    if i not in kept:
                        s.crop = None
                tracks.append(part)

    def take(ms: int, signature: np.ndarray, found: list[Sighting]) -> None:
        nonlocal before
        if shot_changed(before, signature):
            finish(tracker.cut())
        before = signature
        finish(tracker.frame(ms, found))

    with ThreadPoolExecutor(threads, thread_name_prefix="faced-clip") as ex:
        for ms, rgb in frames(path, video):
            seen += 1
            size = (rgb.shape[1], rgb.shape[0])
            pending.append((ms, shot_signature(rgb), ex.submit(_sightings, ms, rgb, fdet, models)))
            while len(pending) > 2 * threads:  # a bounded window: frames are large
                ms0, sig, fut = pending.popleft()
                take(ms0, sig, fut.result())
        while pending:
            ms0, sig, fut = pending.popleft()
            take(ms0, sig, fut.result())
    if not seen:
        raise ImageError("not a readable video: no frame could be decoded")
    finish(tracker.close())
    tracks.sort(key=lambda t: (t.start_ms, t.sightings[0].box))
    step = round(1000.0 / video.fps)
    return tracks, size, step


def encode_video(path: bytes, det: DetectionConfig, video: VideoConfig) -> EncodeResult:
    """Find, follow and describe the faces of one clip. Never raises for bad input."""
    file = FileStat()
    try:
        file = FileStat(*file_digest(path))
        models = get_backend(det.detector)
        tracks, size, step = follow(path, det, video, models)
        faces: list[Face] = []
        for number, t in enumerate(tracks, start=1):
            # The span a track covers: from its first sighting to one step past its last.
            span = TrackSpan(number, t.start_ms, t.last.ms + step)
            for i in pick(t, video.faces_per_track):
                s = t.sightings[i]
                assert s.crop is not None and s.encoding is not None
                faces.append(
                    Face(
                        s.box,
                        s.encoding.astype(np.float32),
                        face_thumbnail(s.crop, s.crop_box),
                        s.ms,
                        s.score,
                        span,
                    )
                )
    except Exception as exc:
        return failure(path, file, exc, det, clip_label(det, video))
    return EncodeResult.found(
        path,
        file,
        tuple(faces),
        size=size,
        detector=clip_label(det, video),
        model=model_name(det.detector),
    )
