"""Where and at what scale to look for faces: plain functions around a dlib detector.

face_recognition's classic call, HOG with upsample 1 on the full photo, searches a pyramid of
scales 2, 2*(5/6), 2*(5/6)^2, ... of the photo. Its work is dominated by the finest levels,
which only find the smallest faces. faced searches only levels of that same pyramid (so boxes
agree with it), starting at the finest level that still finds `min_face_px` faces within the
`max_megapixels` budget (`detection_plan`).

On a large photo even that first level is the most expensive one (a third of the work) and
finds nothing but faces one step from the smallest size. With `coarse_to_fine`, `search_hog`
looks from the next level down, with a lowered threshold that also fires on most faces a step
too small for it, and searches the first level only in small crops around those hits. It is
faster but can miss a turned face that the next level scores far lower, where dlib's overlap
suppression keeps a larger, equally weak box around it instead: off by default
(docs/decisions/detection.md has the measurement and the command that repeats it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from faced.config import DetectionConfig
from faced.faces.decode import scaled_copy
from faced.records import Box

# The height (bottom - top) of the smallest box each detector reports at its search scale:
# dlib's HOG window is 80 px and its boxes 72 px; the MMOD CNN's boxes are 79 px (measured).
# Both search a pyramid that shrinks 5/6 a level (pyramid_down<6>), so boxes come in sizes
# BOX_PX / scale * (6/5)**k.
BOX_PX = {"hog": 72, "cnn": 79}
PYRAMID_STEP = 6 / 5

# The cascade pays off only on a large search image; below this many pixels one plain search.
CASCADE_MIN_PIXELS = 2_000_000
# Score (dlib's, 0 = its own threshold) above which a hit on the coarser levels is looked at
# again, finer. Low enough to fire on faces one pyramid step too small for that level.
PROPOSAL_THRESHOLD = -0.8
# If the crops would cover more than this share of the photo, search the first level whole.
MAX_CROP_SHARE = 0.3
CELL_PX = 8  # dlib's HOG cell: windows slide in steps of one cell
# Context kept around a proposal, in box heights on each side: the detector's window needs
# the face and some margin inside the crop.
CROP_MARGIN = 1.3

# dlib's fhog_object_detector.run: (image, upsample, threshold) -> (rects, scores, filter ids)
RunHog = Callable[[np.ndarray, int, float], tuple[Sequence[Any], Sequence[float], Any]]


def detection_plan(width: int, height: int, det: DetectionConfig) -> tuple[float, int]:
    """(scale of the copy handed to dlib, dlib upsample count) for a `width` x `height` photo.

    The search scale is where the detector's smallest box is min_face_px tall, capped so that
    at most max_megapixels are searched. It is then snapped down onto the classic
    pipeline's pyramid (full size upsampled once, then 5/6 a level), so every level searched
    is a level face_recognition's upsample 1 searches too: boxes agree with it to a pixel
    instead of jumping by a fraction of a level. Scales above 1 are reached by dlib's own
    upsampling of a smaller copy (less memory held by faced).
    """
    if det.detector not in BOX_PX:  # a detector that plans its own search (YuNet)
        return 1.0, 0
    want = BOX_PX[det.detector] / det.min_face_px
    if det.max_megapixels:
        want = min(want, math.sqrt(det.max_megapixels * 1e6 / max(width * height, 1)))
    level = math.ceil(math.log(2.0 / want, PYRAMID_STEP) - 1e-9)
    scale = 2.0 * PYRAMID_STEP ** (-level)
    upsample = max(0, math.ceil(math.log2(scale) - 1e-9))
    return scale / 2**upsample, upsample


def search_hog(
    run: RunHog,
    rgb: np.ndarray,
    scale: float,
    upsample: int,
    coarse_to_fine: bool = False,
    threshold: float = 0.0,
) -> list[tuple[Box, float]]:
    """HOG face boxes scoring `threshold` or more (0 is dlib's own line), in `rgb`'s pixels,
    for a search planned by `detection_plan`, each with its score."""
    h, w = rgb.shape[:2]
    if coarse_to_fine and not upsample and h * w * scale * scale >= CASCADE_MIN_PIXELS:
        return _coarse_to_fine(run, rgb, scale, threshold)
    return _whole(run, rgb, scale, upsample, threshold)


def _whole(
    run: RunHog, rgb: np.ndarray, scale: float, upsample: int, threshold: float
) -> list[tuple[Box, float]]:
    """Every level from `scale` down, searched over the whole photo."""
    return [(box, s) for s, box in _run(run, scaled_copy(rgb, scale), upsample, threshold, scale)]


def _coarse_to_fine(
    run: RunHog, rgb: np.ndarray, scale: float, threshold: float
) -> list[tuple[Box, float]]:
    """The levels below `scale` searched whole, the level at `scale` around their hits."""
    h, w = rgb.shape[:2]
    coarse = scale / PYRAMID_STEP
    found: list[tuple[float, Box]] = []
    regions: list[Box] = []
    # A face small enough for the first level shows up, if at all, in the two finest sizes.
    small = BOX_PX["hog"] / coarse * PYRAMID_STEP**2 - 1
    for score, box in _run(run, scaled_copy(rgb, coarse), 0, PROPOSAL_THRESHOLD, coarse):
        if score >= threshold:
            found.append((score, box))
        if box[2] - box[0] < small:
            regions.append(_around(box, h, w))
    if sum((b - t) * (r - left) for t, r, b, left in regions) > MAX_CROP_SHARE * h * w:
        return _whole(run, rgb, scale, 0, threshold)
    if not regions:
        return suppress_overlaps(found)
    # Crops are cut from one copy at the first level's scale, at multiples of HOG's 8-px
    # cells: inside a crop, pixels and cells are those a whole search of that copy sees, so
    # a face scores there what it would score in the whole search.
    fine = scaled_copy(rgb, scale)
    fh, fw = fine.shape[:2]
    for top, right, bottom, left in regions:
        t, lft = int(top * scale) // CELL_PX * CELL_PX, int(left * scale) // CELL_PX * CELL_PX
        b, r = min(math.ceil(bottom * scale), fh), min(math.ceil(right * scale), fw)
        if b - t >= CELL_PX and r - lft >= CELL_PX:  # else a proposal wholly past the border
            crop = np.ascontiguousarray(fine[t:b, lft:r])
            found.extend(_run(run, crop, 0, threshold, scale, offset=(t, lft)))
    return suppress_overlaps(found)


def _run(
    run: RunHog,
    image: np.ndarray,
    upsample: int,
    threshold: float,
    scale: float,
    offset: tuple[int, int] = (0, 0),
) -> list[tuple[float, Box]]:
    """dlib's scored boxes on `image`, which is the photo resized by `scale` (or the part of
    it at `offset`), mapped to the photo's pixels."""
    rects, scores, _ = run(image, upsample, threshold)
    return [
        (float(score), photo_box(r, scale, offset)) for r, score in zip(rects, scores, strict=True)
    ]


def photo_box(rect: Any, scale: float, offset: tuple[int, int] = (0, 0)) -> Box:
    """A dlib rectangle found on the photo resized by `scale` (or on the part of it at
    `offset`), in the photo's own pixels."""
    dy, dx = offset
    return (
        round((rect.top() + dy) / scale),
        round((rect.right() + dx) / scale),
        round((rect.bottom() + dy) / scale),
        round((rect.left() + dx) / scale),
    )


def _around(box: Box, h: int, w: int) -> tuple[int, int, int, int]:
    """The crop (top, right, bottom, left) searched again around a proposal."""
    top, right, bottom, left = box
    half = CROP_MARGIN * (bottom - top) + (bottom - top) / 2
    cy, cx = (top + bottom) / 2, (left + right) / 2
    return (
        max(int(cy - half), 0),
        min(int(cx + half), w),
        min(int(cy + half), h),
        max(int(cx - half), 0),
    )


def suppress_overlaps(found: list[tuple[float, Box]]) -> list[tuple[Box, float]]:
    """Best-scoring boxes first (with their scores); a box overlapping a kept one is the same
    face (dlib's rule for its own detections: overlap over union above 0.5, or nearly all of
    one inside)."""
    kept: list[tuple[Box, float]] = []
    for score, box in sorted(found, key=lambda sb: -sb[0]):
        if not any(same_face(box, k) for k, _ in kept):
            kept.append((box, score))
    return kept


def same_face(a: Box, b: Box) -> bool:
    """Whether two boxes are one face by dlib's rule for its own detections: overlap over
    union above 0.5, or nearly all of one inside the other (one face found at two pyramid
    levels: boxes 1.2x or 1.44x apart in size, the smaller inside the larger)."""
    inter = _intersection(a, b)
    return bool(inter) and (iou(a, b) > 0.5 or inter / min(_area(a), _area(b)) > 0.95)


def trimmed(box: Box, width: int, height: int) -> Box:
    """`box` cut to a `width` x `height` photo (detectors report boxes past its border)."""
    top, right, bottom, left = box
    return (max(top, 0), min(right, width), min(bottom, height), max(left, 0))


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when they do not touch)."""
    inter = _intersection(a, b)
    return inter / (_area(a) + _area(b) - inter) if inter else 0.0


def _intersection(a: Box, b: Box) -> int:
    top, right = max(a[0], b[0]), min(a[1], b[1])
    bottom, left = min(a[2], b[2]), max(a[3], b[3])
    return max(0, right - left) * max(0, bottom - top)


def _area(box: Box) -> int:
    return (box[1] - box[3]) * (box[2] - box[0])
