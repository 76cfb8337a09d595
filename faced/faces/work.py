"""The one function a worker process runs: a file in, an EncodeResult out."""

from __future__ import annotations

from faced.config import DetectionConfig, ImagesConfig, VideoConfig
from faced.faces.encode import encode_photo
from faced.faces.video import encode_video
from faced.records import EncodeResult


def encode_file(
    path: bytes, images: ImagesConfig, det: DetectionConfig, video: VideoConfig | None = None
) -> EncodeResult:
    """Read, decode and encode one file: a clip if `video` names its extension, else a photo.
    Never raises for bad input: errors become a result. Touches no store and no shared state
    but the backend's models."""
    if video is not None and video.matches(path):
        return encode_video(path, det, video)
    return encode_photo(path, images, det)
