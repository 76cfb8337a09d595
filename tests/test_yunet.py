"""The YuNet detector (faced[yunet]): the fallback to HOG without it, descriptors that agree
with HOG's for the same faces, EXIF-rotated photos, and a library switched from HOG to YuNet."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faced.config import Config, DetectionConfig
from faced.faces import backends
from faced.faces.backends import get_backend, usable
from faced.faces.backends import yunet as yunet_backend
from faced.faces.decode import decode, read_file
from faced.faces.detect import detection_plan, trimmed
from faced.faces.encode import encode_photo
from faced.people.identity import centre_in
from faced.records import Box

from .conftest import SMALL, PhotoLibrary, people_folders
from .test_decisions import decided_then_read_again, ids, linked

YUNET = DetectionConfig(detector="yunet")
pytestmark = pytest.mark.skipif(not yunet_backend.available(), reason="needs faced[yunet]")


def rgb_of(path: Path) -> np.ndarray:
    return decode(read_file(os.fsencode(path), 2**28).data, Config().images).rgb


def found(det: DetectionConfig, rgb: np.ndarray) -> list[tuple[Box, float]]:
    scale, up = detection_plan(rgb.shape[1], rgb.shape[0], det)
    return get_backend(det.detector).detect(rgb, scale, up, det)


def test_without_the_extra_faces_are_found_with_hog(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(yunet_backend, "library_path", lambda: None)
    monkeypatch.setattr(backends, "_SAID_FALLBACK", [])
    with caplog.at_level(logging.INFO):
        assert usable(YUNET).detector == "hog"
        assert usable(YUNET).detector == "hog"
    assert sum("YuNet is not installed here" in r.message for r in caplog.records) == 1
    assert usable(DetectionConfig(detector="cnn")).detector == "cnn"


@pytest.mark.photos
def test_yunet_faces_are_described_as_hog_describes_them() -> None:
    # The descriptor from the HOG-like box placed from YuNet's landmarks is as close to the HOG
    # one as HOG's own is when the photo moves by 3 pixels (the classic pipeline's noise), and
    # far closer than the descriptor from YuNet's own box.
    hog = Config().detection
    describer = get_backend("hog")
    backend = get_backend("yunet")
    assert isinstance(backend, yunet_backend.YunetBackend)
    mapped, own, moved = [], [], []
    for path in sorted(SMALL.rglob("*.jpg"))[::2]:
        rgb = rgb_of(path)
        (h_box, _), *_ = found(hog, rgb)
        hits = [
            hit
            for hit in backend.search(rgb)
            if centre_in(h_box, hit.box) and centre_in(hit.box, h_box)
        ]
        assert hits, f"YuNet missed the face HOG finds in {path}"
        y_box = yunet_backend.hog_like_box(hits[0].landmarks)
        boxes = [trim(h_box, rgb), trim(y_box, rgb), trim(hits[0].box, rgb)]
        a, b, c = describer.describe(rgb, boxes, 1)
        mapped.append(np.linalg.norm(a - b))
        own.append(np.linalg.norm(a - c))
        shifted = np.ascontiguousarray(np.pad(rgb, ((3, 0), (3, 0), (0, 0)), "edge"))
        again = found(hog, shifted)
        if again:  # HOG itself may lose a borderline face when the photo moves
            (d,) = describer.describe(shifted, [trim(again[0][0], shifted)], 1)
            moved.append(np.linalg.norm(a - d))
    assert np.median(mapped) <= np.median(moved) + 0.01
    assert np.median(mapped) < np.median(own) - 0.02


def trim(box: Box, rgb: np.ndarray) -> Box:
    return trimmed(box, rgb.shape[1], rgb.shape[0])


@pytest.mark.photos
def test_an_exif_rotated_photo_gives_the_faces_of_the_upright_one(tmp_path: Path) -> None:
    photo = SMALL / "elton_john" / "train_2.jpg"
    with Image.open(photo) as im:
        upright = im.convert("RGB")
    upright_path = tmp_path / "upright.jpg"
    upright.save(upright_path, "JPEG", quality=95)
    exif = Image.Exif()
    exif[0x0112] = 8  # "turn 90 degrees counter-clockwise to display"
    sideways = tmp_path / "sideways.jpg"
    upright.transpose(Image.Transpose.ROTATE_270).save(
        sideways, "JPEG", exif=exif.tobytes(), quality=95
    )
    cfg = Config()
    a = encode_photo(os.fsencode(upright_path), cfg.images, YUNET)
    b = encode_photo(os.fsencode(sideways), cfg.images, YUNET)
    assert len(a.faces) == len(b.faces) == 1
    assert np.abs(np.subtract(a.faces[0].box, b.faces[0].box)).max() <= 3
    assert np.linalg.norm(a.faces[0].encoding - b.faces[0].encoding) < 0.06


@pytest.mark.photos
def test_a_library_switched_from_hog_to_yunet_keeps_names_and_rejections(
    small: PhotoLibrary, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every photo is read again, by YuNet.
    rejected, before = decided_then_read_again(small, "detection: {detector: yunet}\n", capsys)
    assert before <= ids(small, capsys)  # nobody retired and re-created
    assert "Elton" in people_folders(small.people)
    assert str(rejected) not in linked(small, "Elton")
    assert len(linked(small, "Elton")) >= 5
