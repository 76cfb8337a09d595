"""The encoder: same descriptors as face_recognition, boxes right after downscaling and rotation."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import subprocess
import sys
import types
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFile

from faced.config import DetectionConfig, ImagesConfig
from faced.faces.backends import detector_label
from faced.faces.backends.dlib import model_dir
from faced.faces.detect import PYRAMID_STEP, detection_plan
from faced.faces.work import encode_file

from .conftest import EXTRAS, FACES, REPO, SMALL

IMAGES = ImagesConfig()


def encode(path: Path, **detection: Any) -> Any:
    return encode_file(os.fsencode(path), IMAGES, DetectionConfig(**detection))


def encode_label(**detection: Any) -> str:
    return detector_label(DetectionConfig(**detection))


@pytest.fixture(scope="module")
def face_recognition() -> Iterator[types.ModuleType]:
    """The face_recognition package (installed --no-deps for this test only).

    Its model package imports pkg_resources, which new setuptools no longer ships; a shim with
    the one function it calls stands in, resolving files the way faced does.
    """
    if importlib.util.find_spec("pkg_resources") is None:
        shim = types.ModuleType("pkg_resources")

        def resource_filename(package: str, name: str) -> str:
            spec = importlib.util.find_spec(package)
            assert spec is not None and spec.submodule_search_locations
            return str(Path(next(iter(spec.submodule_search_locations))) / name)

        shim.resource_filename = resource_filename  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = shim
    truncated = ImageFile.LOAD_TRUNCATED_IMAGES
    import face_recognition as fr

    # Importing face_recognition sets LOAD_TRUNCATED_IMAGES = True for the whole process;
    # faced never does, and its decoder tests must not run under that setting.
    ImageFile.LOAD_TRUNCATED_IMAGES = truncated
    yield fr
    ImageFile.LOAD_TRUNCATED_IMAGES = truncated


@pytest.mark.parametrize(
    "photo",
    [
        SMALL / "jerry_seinfeld" / "train_1.jpg",
        SMALL / "paul_allen" / "paul_allen2.jpg",  # two faces
        EXTRAS / "group" / "obama_and_biden.jpg",  # three faces, 2000 px: detected downscaled
        EXTRAS / "group" / "jurassic_park_example_03.png",  # RGBA PNG
    ],
    ids=lambda p: p.name,
)
@pytest.mark.photos
def test_descriptors_equal_face_recognition(face_recognition: Any, photo: Path) -> None:
    result = encode(photo, max_megapixels=0.5)
    assert result.status == "faces", result.reason
    image = face_recognition.load_image_file(str(photo))
    boxes = [face.box for face in result.faces]
    theirs = face_recognition.face_encodings(
        image, known_face_locations=boxes, num_jitters=1, model="small"
    )
    for face, expected in zip(result.faces, theirs, strict=True):
        assert np.abs(face.encoding - expected).max() < 1e-5


@pytest.mark.photos
def test_hog_boxes_equal_face_recognition_at_full_size(face_recognition: Any) -> None:
    photo = SMALL / "elton_john" / "train_2.jpg"
    ours = [f.box for f in encode(photo, max_megapixels=0, hog_threshold=0.0).faces]
    theirs = face_recognition.face_locations(face_recognition.load_image_file(str(photo)), 1, "hog")
    assert sorted(ours) == sorted(theirs)


@pytest.mark.photos
def test_downscaled_detection_maps_boxes_back(tmp_path: Path) -> None:
    # A 12-MP-wide photo: Obama, Biden and a partly hidden child.
    with Image.open(EXTRAS / "group" / "obama_and_biden.jpg") as im:
        big = im.convert("RGB").resize(
            (4032, round(4032 * im.height / im.width)), Image.Resampling.LANCZOS
        )
    path = tmp_path / "big.png"
    big.save(path)
    full = encode(path, max_megapixels=0)  # the classic: HOG on all 4032 px upsampled once
    fast = encode(path)  # default: searched at 0.8 (the classic's 6th level), mapped back
    assert len(full.faces) == len(fast.faces) == 3
    pairs = list(
        zip(sorted(f.box for f in full.faces), sorted(f.box for f in fast.faces), strict=True)
    )
    errors = sorted(max(abs(x - y) for x, y in zip(a, b, strict=True)) for a, b in pairs)
    assert errors[:2] == [e for e in errors[:2] if e <= 4]  # the two clear faces: a few pixels
    assert errors[2] <= 0.12 * min(a[2] - a[0] for a, _ in pairs)  # the half-hidden child


@pytest.mark.photos
def test_exif_rotated_photo_keeps_correct_boxes(tmp_path: Path) -> None:
    with Image.open(SMALL / "steve_wozniak" / "steve_wozniak3.jpg") as im:
        upright = im.convert("RGB")
    upright.save(tmp_path / "upright.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned counter-clockwise; "turn 90 degrees clockwise to display"
    upright.transpose(Image.Transpose.ROTATE_90).save(
        tmp_path / "sideways.png", exif=exif.tobytes()
    )
    a = encode(tmp_path / "upright.png")
    b = encode(tmp_path / "sideways.png")
    assert a.faces and [f.box for f in a.faces] == [f.box for f in b.faces]
    assert (b.width, b.height) == upright.size


@pytest.mark.photos
def test_heic_photo_is_encoded(tmp_path: Path) -> None:
    from .test_decode import make_heic

    path, _ = make_heic(tmp_path)
    result = encode(path)
    assert result.status == "faces" and len(result.faces) == 1


@pytest.mark.photos
def test_hog_threshold_keeps_borderline_faces() -> None:
    # face_recognition (HOG at dlib's line, 0) finds no face in this news photo: its face
    # scores -0.05, within the +-0.1 that resampling alone moves a score.
    photo = FACES / "lfw_dev" / "Abdoulaye_Wade" / "Abdoulaye_Wade_0003.jpg"
    assert encode(photo, hog_threshold=0.0).status == "noface"
    found = encode(photo)  # the default, -0.1
    assert found.status == "faces" and len(found.faces) == 1
    # And it is his face: as close to his other photo's face as dlib's same-person line.
    (other,) = encode(photo.with_name("Abdoulaye_Wade_0001.jpg")).faces
    assert np.linalg.norm(found.faces[0].encoding - other.encoding) < 0.6


@pytest.mark.photos
def test_min_face_px_drops_small_faces() -> None:
    photo = SMALL / "paul_allen" / "paul_allen2.jpg"
    every = encode(photo)
    heights = sorted(f.box[2] - f.box[0] for f in every.faces)
    assert len(heights) == 2
    big_only = encode(photo, min_face_px=heights[0] + 1)
    assert [f.box[2] - f.box[0] for f in big_only.faces] == heights[1:]


@pytest.mark.photos
def test_photo_without_faces_and_broken_file(tmp_path: Path) -> None:
    assert encode(EXTRAS / "noface" / "unsplash_cat.jpg").status == "noface"
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"<html>nope</html>")
    result = encode(bad)
    assert result.status == "error" and "HTML" in (result.reason or "")


@pytest.mark.photos
def test_cnn_detector_finds_the_face() -> None:
    result = encode(
        SMALL / "guido_van_rossum" / "guido_van_rossum1.jpg", detector="cnn", max_megapixels=0.15
    )
    assert result.status == "faces" and result.detector.startswith("cnn")


def test_models_are_found_without_pkg_resources_and_not_loaded_at_import() -> None:
    assert (model_dir() / "shape_predictor_5_face_landmarks.dat").is_file()
    # Nor the clustering stack: every command would pay 0.7 s for it at start-up.
    code = (
        "import sys, faced.cli, faced.service.daemon, faced.faces.work, faced.pipeline.library; "
        "print([m in sys.modules for m in ('dlib', 'pkg_resources', 'sklearn', 'scipy', "
        "'distributed')])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout.strip()
    assert out == "[False, False, False, False, False]"


def test_the_command_entry_point_imports_nothing_heavy() -> None:
    # Worker processes re-import the main module of the command that started them. The
    # `faced` console script's module must therefore not pull in the CLI and its
    # clustering stack, or every encoder process carries scikit-learn and SciPy.
    (entry,) = [e for e in entry_points(group="console_scripts") if e.name == "faced"]
    module = entry.value.partition(":")[0]
    heavy = ("faced.cli", "sklearn", "scipy", "dlib")
    code = f"import sys, {module}; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout.strip()
    assert out == "[]"


def test_detection_settings_are_recorded() -> None:
    r = encode(SMALL / "jerry_seinfeld" / "train_1.jpg")
    assert r.detector == "hog-min36-10mp-th-0.1"
    assert encode_label(max_megapixels=0, hog_threshold=0.0) == "hog-min36-full-th+0"
    assert encode_label(detector="cnn", hog_threshold=0.5) == "cnn-min36-10mp"
    assert dataclasses.replace(DetectionConfig(), max_megapixels=0) != DetectionConfig()


def test_detection_plan_searches_levels_of_the_classic_pyramid() -> None:
    det = DetectionConfig()
    assert detection_plan(800, 600, det) == (1.0, 1)  # face_recognition's upsample 1 exactly
    assert detection_plan(4032, 3024, dataclasses.replace(det, max_megapixels=0)) == (1.0, 1)
    scale, upsample = detection_plan(4032, 3024, det)  # 10 MP of 12.2: the 6th level, 0.80
    assert upsample == 0 and scale == pytest.approx(2 * (5 / 6) ** 5)
    for side in range(60, 13_000, 97):
        for min_face in (10, 25, 36, 57, 80, 130):
            for megapixels in (0.0, 1.0, 10.0):
                d = dataclasses.replace(det, min_face_px=min_face, max_megapixels=megapixels)
                scale, upsample = detection_plan(side, side // 2, d)
                searched = scale * 2**upsample
                want = 72 / min_face
                if megapixels:
                    want = min(want, (megapixels * 1e6 / (side * (side // 2))) ** 0.5)
                level = np.log(2 / searched) / np.log(PYRAMID_STEP)
                assert abs(level - round(level)) < 1e-6  # on the classic's grid
                assert want / PYRAMID_STEP < searched <= want * (1 + 1e-9)  # nearest below
                assert scale <= 1.0 and (upsample == 0 or scale > 0.5)
