"""Detection planning and the coarse-to-fine HOG search, on real photos."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

import faced.faces.detect
from faced.config import DetectionConfig
from faced.faces.backends import get_backend
from faced.faces.detect import detection_plan, iou, suppress_overlaps
from faced.records import Box

from .conftest import EXTRAS, FACES


def crowd() -> np.ndarray:
    """A 12-MP photo of 48 news photos (lfw_dev) at 0.6-1.0 of their size: faces 75-130 px."""
    paths = sorted((FACES / "lfw_dev").glob("*/*.jpg"))[::97][:48]
    canvas = np.full((3024, 4032, 3), 96, np.uint8)
    rng = np.random.default_rng(0)
    for i, path in enumerate(paths):
        side = int(250 * rng.uniform(0.6, 1.0))
        with Image.open(path) as im:
            tile = np.asarray(im.convert("RGB").resize((side, side), Image.Resampling.LANCZOS))
        y, x = (i // 8) * 500 + 40, (i % 8) * 500 + 40
        canvas[y : y + side, x : x + side] = tile
    return canvas


def searches(photo: np.ndarray) -> tuple[list[Box], list[Box]]:
    models = get_backend("hog")
    h, w = photo.shape[:2]
    det = DetectionConfig(hog_threshold=0.0)
    scale, upsample = detection_plan(w, h, det)
    assert upsample == 0 and h * w * scale**2 > faced.faces.detect.CASCADE_MIN_PIXELS
    cascade = models.detect(photo, scale, upsample, replace(det, coarse_to_fine=True))
    whole = models.detect(photo, scale, upsample, det)
    return [b for b, _ in cascade], [b for b, _ in whole]


@pytest.mark.photos
def test_cascade_finds_the_small_faces_a_whole_search_finds() -> None:
    cascade, whole = searches(crowd())
    small = [b for b in whole if b[2] - b[0] < 100]  # found only on the skipped first level
    assert len(small) >= 10 and len(whole) >= 40
    # The crops are searched at the first level's own scale: the same boxes, not the next
    # size up that the coarser levels report for these faces.
    missed = [b for b in whole if not any(iou(b, c) >= 0.8 for c in cascade)]
    assert len(missed) <= len(whole) // 40  # borderline scores may flip, nothing more
    assert len(cascade) <= len(whole) + 1


@pytest.mark.photos
def test_cascade_on_a_large_group_photo() -> None:
    with Image.open(EXTRAS / "group" / "obama_and_biden.jpg") as im:
        photo = np.asarray(im.convert("RGB").resize((4032, round(4032 * im.height / im.width))))
    cascade, whole = searches(photo)
    assert len(cascade) == len(whole) == 3
    assert all(any(iou(b, c) >= 0.9 for c in cascade) for b in whole)


def test_overlapping_boxes_are_one_face_the_best_scored() -> None:
    a, b, c = (100, 200, 200, 100), (105, 205, 205, 105), (100, 400, 200, 300)
    inner = (120, 180, 180, 120)  # wholly inside a
    assert suppress_overlaps([(0.2, a), (0.9, b), (0.5, c), (0.3, inner)]) == [(b, 0.9), (c, 0.5)]
    assert suppress_overlaps([]) == []
