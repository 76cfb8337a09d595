"""The one function a worker process runs: a file in, an EncodeResult out."""

from __future__ import annotations

from faced.config import DetectionConfig, ImagesConfig, VideoConfig
from faced.faces.backends import detector_label
from faced.faces.encode import encode_photo
from faced.faces.video import clip_label, encode_video
from faced.records import EncodeResult


def label_for(path: bytes, det: DetectionConfig, video: VideoConfig) -> str:
    """The label a file's record carries when read with these settings (a clip's says how it
    was followed too): a record with another label is read again."""
    return clip_label(det, video) if video.matches(path) else detector_label(det)


def encode_file(
    path: bytes, images: ImagesConfig, det: DetectionConfig, video: VideoConfig | None = None
) -> EncodeResult:
    """Read, decode and encode one file: a clip if `video` names its extension, else a photo.
    Never raises for bad input: errors become a result. Touches no store and no shared state
    but the backend's models."""
    if video is not None and video.matches(path):
        return encode_video(path, det, video)
    return encode_photo(path, images, det)
