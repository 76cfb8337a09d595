"""The decoder against real photos and really broken files (made here, from real photos)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import simplejpeg
from PIL import Image, ImageOps

from faced.config import ImagesConfig
from faced.errors import ImageError
from faced.faces.decode import HEIF_MISSING, decode, read_file, scaled_copy

from .conftest import SMALL

PHOTO = SMALL / "jerry_seinfeld" / "train_1.jpg"
CFG = ImagesConfig()


def raw(path: Path) -> bytes:
    return read_file(os.fsencode(path), CFG.max_file_mb * 2**20).data


def reason_for(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ImageError) as err:
        decode(raw(path), CFG)
    return err.value.reason


@pytest.mark.photos
def test_real_jpeg_decodes_to_rgb() -> None:
    d = decode(raw(PHOTO), CFG)
    with Image.open(PHOTO) as im:
        assert d.rgb.shape == (im.height, im.width, 3)
    assert d.rgb.dtype == np.uint8 and d.rgb.flags["C_CONTIGUOUS"]
    assert d.format == "JPEG"


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "BMP", "TIFF", "GIF"])
@pytest.mark.photos
def test_content_decides_the_format_not_the_name(tmp_path: Path, fmt: str) -> None:
    with Image.open(PHOTO) as im:
        buf = io.BytesIO()
        im.convert("RGB").save(buf, fmt)
    path = tmp_path / "looks_like.jpg"
    path.write_bytes(buf.getvalue())
    d = decode(raw(path), CFG)
    assert d.format == fmt
    assert d.rgb.shape[2] == 3


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16", "1", "LA", "I", "F"])
@pytest.mark.photos
def test_every_mode_becomes_8_bit_rgb(tmp_path: Path, mode: str) -> None:
    with Image.open(PHOTO) as im:
        src = im.convert("RGB")
    if mode == "I;16":
        grey = np.asarray(src.convert("L"), dtype=np.uint16) * 257
        img = Image.fromarray(grey)
        assert img.mode.startswith("I;16")
    elif mode in ("I", "F"):
        img = src.convert("L").convert(mode)
    else:
        img = src.convert(mode)
    fmt = {"CMYK": "JPEG", "I;16": "PNG"}.get(mode, "TIFF")
    path = tmp_path / "m.img.jpg"
    img.save(path, fmt)
    d = decode(raw(path), CFG)
    assert d.rgb.dtype == np.uint8 and d.rgb.shape == (src.height, src.width, 3)
    if mode == "I;16":  # 16-bit samples are scaled down, not clipped to white
        expected = np.asarray(src.convert("L"), dtype=np.int16)
        assert np.abs(d.rgb[:, :, 0].astype(np.int16) - expected).max() <= 1


def test_transparency_is_flattened_onto_white(tmp_path: Path) -> None:
    img = Image.new("RGBA", (40, 30), (10, 20, 30, 0))
    path = tmp_path / "clear.png"
    img.save(path)
    assert (decode(raw(path), CFG).rgb == 255).all()


@pytest.mark.photos
def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    with Image.open(PHOTO) as im:
        upright = im.convert("RGB")
    # A phone held sideways stores the pixels turned clockwise and tags orientation 8
    # ("turn 90 degrees counter-clockwise to display").
    stored = upright.transpose(Image.Transpose.ROTATE_270)
    exif = Image.Exif()
    exif[0x0112] = 8
    path = tmp_path / "sideways.jpg"
    stored.save(path, "JPEG", exif=exif.tobytes(), quality=95)
    d = decode(raw(path), CFG)
    assert d.orientation == 8
    assert d.rgb.shape[:2] == (upright.height, upright.width)
    diff = np.abs(d.rgb.astype(int) - np.asarray(upright).astype(int)).mean()
    assert diff < 6  # same picture, up to JPEG re-compression


def test_gif_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (20, 20), c) for c in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    rgb = decode(raw(path), CFG).rgb
    assert rgb[10, 10, 0] > 200 and rgb[10, 10, 2] < 50


def test_zero_bytes(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        read_file(os.fsencode(path), 2**20)


def test_random_bytes(tmp_path: Path) -> None:
    data = np.random.default_rng(7).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    assert "not an image" in reason_for(tmp_path, "noise.jpg", data)


def test_html_saved_as_jpg(tmp_path: Path) -> None:
    html = b"<!DOCTYPE html><html><body>404 Not Found</body></html>"
    assert "HTML" in reason_for(tmp_path, "download.jpg", html)


@pytest.mark.photos
def test_truncated_jpeg_is_an_error_not_half_an_image(tmp_path: Path) -> None:
    data = PHOTO.read_bytes()
    assert "truncated" in reason_for(tmp_path, "cut.jpg", data[: len(data) // 2])


@pytest.mark.photos
def test_truncated_png(tmp_path: Path) -> None:
    with Image.open(PHOTO) as im:
        buf = io.BytesIO()
        im.save(buf, "PNG")
    data = buf.getvalue()
    reason = reason_for(tmp_path, "cut.png", data[: len(data) * 2 // 3])
    assert "PNG" in reason or "truncated" in reason


@pytest.mark.photos
def test_corrupt_header(tmp_path: Path) -> None:
    data = bytearray(PHOTO.read_bytes())
    data[2:40] = b"\x00" * 38  # keep the JPEG magic, wreck the markers after it
    assert reason_for(tmp_path, "corrupt.jpg", bytes(data))


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    bomb = Image.new("1", (16000, 12000))  # 192 MP, a few kB as PNG
    path = tmp_path / "bomb.png"
    bomb.save(path, optimize=True)
    assert path.stat().st_size < 200_000
    assert "pixels" in reason_for(tmp_path, "bomb.png", path.read_bytes())


@pytest.mark.photos
def test_pixel_limit_is_configurable(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"images\.max_pixels"):
        decode(raw(PHOTO), ImagesConfig(max_pixels=1000))


def test_not_a_regular_file(tmp_path: Path) -> None:
    folder = tmp_path / "folder.jpg"
    folder.mkdir()
    with pytest.raises(ImageError, match=r"cannot open|not a regular file"):
        read_file(os.fsencode(folder), 2**20)
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with pytest.raises(ImageError, match="not a regular file"):  # and does not hang
        read_file(os.fsencode(fifo), 2**20)


def test_vanished_before_reading(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="vanished"):
        read_file(os.fsencode(tmp_path / "gone.jpg"), 2**20)


@pytest.mark.photos
def test_file_size_limit(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="too large"):
        read_file(os.fsencode(PHOTO), 1000)


def test_scaled_copy_shrinks_and_enlarges_grey_or_colour() -> None:
    big = np.zeros((3024, 4032, 3), np.uint8)
    assert scaled_copy(big, 0.5).shape == (1512, 2016, 3)
    assert scaled_copy(big[:100, :100, 0], 1.5).shape == (150, 150)
    assert scaled_copy(big, 1.0) is big


def make_heic(tmp_path: Path) -> tuple[Path, Image.Image]:
    """An iPhone-style HEIC: pixels stored turned, EXIF orientation 6 to display upright."""
    import pillow_heif  # installed with faced[heic] by `make test`

    pillow_heif.register_heif_opener()
    with Image.open(SMALL / "jerry_seinfeld" / "train_1.jpg") as im:
        upright = im.convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "IMG_0001.HEIC"
    upright.transpose(Image.Transpose.ROTATE_90).save(
        path, format="HEIF", exif=exif.tobytes(), quality=95
    )
    return path, upright


@pytest.mark.photos
def test_heic_decodes_upright(tmp_path: Path) -> None:
    path, upright = make_heic(tmp_path)
    d = decode(raw(path), CFG)
    assert d.format == "HEIF" and d.orientation == 6
    assert d.rgb.shape[:2] == (upright.height, upright.width)
    assert np.abs(d.rgb.astype(int) - np.asarray(upright).astype(int)).mean() < 6


@pytest.mark.photos
def test_heic_without_pillow_heif_is_unsupported_not_corrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = make_heic(tmp_path)
    monkeypatch.setattr("faced.faces.decode._heif", [False])
    with pytest.raises(ImageError) as err:
        decode(raw(path), CFG)
    assert err.value.reason == HEIF_MISSING


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.photos
def test_every_exif_orientation_matches_pillow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, orientation: int
) -> None:
    # Plain JPEGs are decoded by simplejpeg and turned upright by faced; the result must be
    # Pillow's exif_transpose of Pillow's decode, pixel for pixel.
    calls: list[int] = []
    decode_jpeg = simplejpeg.decode_jpeg

    def counted(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        return decode_jpeg(*args, **kw)

    monkeypatch.setattr(simplejpeg, "decode_jpeg", counted)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.jpg"
    with Image.open(SMALL / "guido_van_rossum" / "guido_van_rossum1.jpg") as im:
        im.convert("RGB").crop((0, 0, 201, 150)).save(path, "JPEG", exif=exif.tobytes())
    d = decode(raw(path), CFG)
    with Image.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    assert d.orientation == orientation
    assert d.rgb.shape == expected.shape and (d.rgb == expected).all()
    assert d.rgb.flags["C_CONTIGUOUS"] and calls == [1]  # the fast path was taken


@pytest.mark.photos
def test_jpeg_pixels_are_pillows(tmp_path: Path) -> None:
    photos = sorted(SMALL.rglob("*.jpg"))[::8]
    # A JPEG with data after its end marker (a motion photo's video, a camera's trailer)
    # takes Pillow's path; it must decode to the same picture.
    trailer = tmp_path / "motion.jpg"
    trailer.write_bytes(PHOTO.read_bytes() + b"\0\0ftypmp42" + bytes(300))
    # Progressive and other chroma subsamplings than the shared photos' 4:2:0.
    variants = []
    encodings: list[dict[str, Any]] = [
        {"progressive": True},
        {"subsampling": 0},
        {"subsampling": 1},
    ]
    for i, options in enumerate(encodings):
        variants.append(tmp_path / f"variant{i}.jpg")
        with Image.open(PHOTO) as im:
            im.save(variants[-1], "JPEG", **options)
    for path in [*photos, trailer, *variants]:
        with Image.open(path) as im:
            expected = np.asarray(im.convert("RGB"))
        assert (decode(raw(path), CFG).rgb == expected).all(), path


@pytest.mark.photos
def test_a_jpeg_with_garbage_in_its_middle_is_an_error(tmp_path: Path) -> None:
    data = bytearray((SMALL / "guido_van_rossum" / "guido_van_rossum1.jpg").read_bytes())
    middle = len(data) // 2
    data[middle : middle + 2000] = (
        np.random.default_rng(0).integers(0, 256, 2000, np.uint8).tobytes()
    )
    path = tmp_path / "damaged.jpg"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError):
        decode(raw(path), CFG)
