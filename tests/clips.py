"""Video clips made from shared photos with OpenCV, as a camera would film them: each shot a
slow zoom over one photo, filling the frame, with hard cuts between shots."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT = 640, 480


def _cover(img: np.ndarray, width: int, height: int, zoom: float) -> np.ndarray:
    """`img` scaled to cover width x height, `zoom` times more, cut around its centre."""
    scale = max(width / img.shape[1], height / img.shape[0]) * zoom
    big = cv2.resize(img, (round(img.shape[1] * scale) + 1, round(img.shape[0] * scale) + 1))
    y = (big.shape[0] - height) // 2
    x = (big.shape[1] - width) // 2
    return big[y : y + height, x : x + width]


def shot_frames(photos: Sequence[Path], seconds: float, fps: int) -> list[np.ndarray]:
    """One shot: the photos side by side (one per part of the frame), zooming in slowly."""
    imgs = []
    for p in photos:
        img = cv2.imread(str(p))
        assert img is not None, p
        imgs.append(img)
    count = round(seconds * fps)
    part = WIDTH // len(imgs)
    frames = []
    for k in range(count):
        zoom = 1.0 + 0.15 * k / max(count - 1, 1)
        frames.append(np.hstack([_cover(i, part, HEIGHT, zoom) for i in imgs]))
    return frames


def make_clip(
    path: Path,
    shots: Sequence[Sequence[Path] | Path],
    seconds: float = 3.0,
    fps: int = 10,
    *,
    sideways: bool = False,
) -> None:
    """An mp4 of `shots`, each a photo (or photos side by side) for `seconds`. `sideways`: as a
    phone records it, frames stored turned a quarter and a tag saying to turn them back."""
    size = (HEIGHT, WIDTH) if sideways else (WIDTH, HEIGHT)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    for shot in shots:
        photos = [shot] if isinstance(shot, Path) else list(shot)
        for frame in shot_frames(photos, seconds, fps):
            frame = cv2.resize(frame, (WIDTH, HEIGHT))
            if sideways:
                frame = cv2.rotate(frame, cv2.ROTATE_90_COUNTERCLOCKWISE)
            writer.write(np.ascontiguousarray(frame))
    writer.release()
    if sideways:
        _tag_rotation(path)


def _tag_rotation(path: Path) -> None:
    """Set the track header's display matrix of an mp4 to a quarter turn clockwise (how
    phones tag a clip recorded upright; players and FFmpeg turn the frames back)."""
    data = bytearray(path.read_bytes())
    at = data.find(b"tkhd")
    assert at > 0 and data[at + 4] == 0  # a version 0 track header
    # After the header's version and flags, times, ids, duration, reserved, layer and volume.
    matrix = at + 4 + 4 + 20 + 8 + 8
    quarter = (0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    data[matrix : matrix + 36] = struct.pack(">9i", *quarter)
    path.write_bytes(bytes(data))
