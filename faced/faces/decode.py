"""Turn a file's bytes into an 8-bit RGB array as the photo is displayed, or say why not.

Content decides the format (a PNG named .jpg is a PNG); EXIF orientation is applied; any
mode becomes RGB; a pixel limit is checked from the header before anything is decoded, and a
truncated or corrupt file is an error, never half an image (LOAD_TRUNCATED_IMAGES stays off).
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import simplejpeg
from PIL import Image, ImageOps, UnidentifiedImageError

from faced.config import ImagesConfig
from faced.errors import ImageError
from faced.records import access_reason

# Pillow's names for our format keys. (Its JPEG opener also yields multi-picture MPO files.)
_PIL_FORMATS = {
    "jpeg": ("JPEG",),
    "png": ("PNG",),
    "webp": ("WEBP",),
    "bmp": ("BMP",),
    "tiff": ("TIFF",),
    "gif": ("GIF",),
    "heif": ("HEIF",),  # iPhone photos; needs the optional pillow-heif (faced[heic])
}
HEIF_MISSING = "HEIC/HEIF photo: not supported without pillow-heif (pip install 'faced[heic]')"
_heif: list[bool] = []  # whether pillow-heif is registered in this process, once known


def heif_available() -> bool:
    """Register pillow-heif's opener with Pillow once per process, if it is installed."""
    if not _heif:
        try:
            import pillow_heif  # the optional extra
        except ImportError:
            _heif.append(False)
        else:
            pillow_heif.register_heif_opener()
            _heif.append(True)
    return _heif[0]


_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class RawFile:
    """A file's bytes, read once, with what we need to recognise it again without reading it."""

    data: bytes
    size: int
    mtime_ns: int
    digest: str


@dataclass(frozen=True)
class Decoded:
    """A decoded photo: `rgb` is HxWx3 uint8, C-contiguous, in displayed orientation."""

    rgb: np.ndarray
    format: str
    orientation: int


def read_file(path: str | bytes, max_bytes: int) -> RawFile:
    """Read a regular file whole (following symlinks) and hash it.

    Raises ImageError for a vanished, unreadable, non-regular, empty or oversized file.
    """
    try:
        # O_NONBLOCK: opening a FIFO named "x.jpg" must not wait for a writer forever.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError as exc:
        raise ImageError("vanished before it could be read") from exc
    except OSError as exc:
        raise ImageError(access_reason("open", exc)) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ImageError("not a regular file")
        if st.st_size == 0:
            raise ImageError("empty file (0 bytes)")
        if st.st_size > max_bytes:
            raise ImageError(
                f"file too large: {st.st_size / 2**20:.0f} MiB > {max_bytes / 2**20:.0f} MiB"
            )
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read()
    except OSError as exc:
        raise ImageError(access_reason("read", exc)) from exc
    finally:
        os.close(fd)
    return RawFile(data, len(data), st.st_mtime_ns, content_hash(data))


def content_hash(data: bytes) -> str:
    """The content identity used to recognise a moved or copied photo."""
    return _hasher(data).hexdigest()


def _hasher(data: bytes = b"") -> hashlib.blake2b:
    """The one hash behind content_hash and file_digest: their digests must agree."""
    return hashlib.blake2b(data, digest_size=20)


def file_digest(path: str | bytes) -> tuple[int, int, str]:
    """Size, mtime and content_hash of a file of any size, read in 1 MiB chunks (a video,
    or a file hashed only to recognise a move). Raises ImageError."""
    try:
        # O_NONBLOCK: opening a FIFO named "x.mp4" must not wait for a writer forever.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ImageError("not a regular file")
            h = _hasher()
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    except FileNotFoundError as exc:
        raise ImageError("vanished before it could be read") from exc
    except OSError as exc:
        raise ImageError(access_reason("read", exc)) from exc
    if st.st_size == 0:
        raise ImageError("empty file (0 bytes)")
    return st.st_size, st.st_mtime_ns, h.hexdigest()


def _sniff(data: bytes) -> str:
    """A one-line guess at what a non-image is, for the error reason."""
    head = data[:64].lstrip()
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftyphevc", b"ftypmsf1"):
        return HEIF_MISSING if not heif_available() else "HEIC/HEIF photo: format not enabled"
    if data[4:8] == b"ftyp":
        return "a video or ISO media file, not a photo"
    if head[:1] == b"<":
        return "not an image: looks like HTML or XML text"
    if head[:1] in (b"{", b"["):
        return "not an image: looks like JSON text"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "not an image: looks like text"
    return "not an image, or a format not enabled in images.formats"


def decode(data: bytes, cfg: ImagesConfig) -> Decoded:
    """Decode `data` into displayed-orientation RGB. Raises ImageError with a one-line reason."""
    formats = [
        name
        for key in cfg.formats
        for name in _PIL_FORMATS[key]
        if key != "heif" or heif_available()
    ]
    with warnings.catch_warnings():
        # Our own pixel limit below replaces Pillow's warning; its hard error still applies.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data), formats=formats)
        except UnidentifiedImageError as exc:
            raise ImageError(_sniff(data)) from exc
        except Image.DecompressionBombError as exc:
            raise ImageError(f"too many pixels (decompression bomb guard): {exc}") from exc
        except (OSError, ValueError, SyntaxError, RuntimeError) as exc:  # libheif: RuntimeError
            raise ImageError(f"corrupt {_sniff_format(data)}: {exc}") from exc
        fmt = im.format or "?"
        w, h = im.size
        if w * h > cfg.max_pixels:
            raise ImageError(
                f"too many pixels: {w}x{h} = {w * h / 1e6:.0f} MP > images.max_pixels "
                f"{cfg.max_pixels / 1e6:.0f} MP"
            )
        try:
            fast = _decode_jpeg(data, im)
            if fast is not None:
                rgb, orientation = fast
            else:
                im.load()  # raises on truncated data: LOAD_TRUNCATED_IMAGES is never set
                orientation = _orientation(im)
                upright = ImageOps.exif_transpose(im) if orientation != 1 else im
                # libheif applies a HEIC's orientation itself, keeping the original in `info`.
                orientation = int(im.info.get("original_orientation") or orientation)
                rgb = _to_rgb(upright)
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
            raise ImageError(f"corrupt or truncated {fmt}: {exc}") from exc
        except MemoryError as exc:
            raise ImageError(f"out of memory decoding {w}x{h} {fmt}") from exc
    return Decoded(np.ascontiguousarray(rgb), fmt, orientation)


# Orientation tag -> the OpenCV calls that display the stored pixels upright, as
# ImageOps.exif_transpose does (2-8: mirror, 180, flip, transpose, 90 cw, transverse, 90 ccw).
_UPRIGHT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: cv2.flip(a, 1),
    3: lambda a: cv2.rotate(a, cv2.ROTATE_180),
    4: lambda a: cv2.flip(a, 0),
    5: lambda a: cv2.transpose(a),
    6: lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE),
    7: lambda a: cv2.rotate(cv2.transpose(a), cv2.ROTATE_180),
    8: lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE),
}


def _decode_jpeg(data: bytes, im: Image.Image) -> tuple[np.ndarray, int] | None:
    """A plain colour JPEG decoded by simplejpeg (libjpeg-turbo) and turned upright, with its
    orientation tag; None to take Pillow's path.

    The pixels equal Pillow's (both are libjpeg-turbo at its default settings; a test keeps
    checking), written straight into a numpy array where Pillow copies them out once more
    (docs/decisions/detection.md). simplejpeg's strict mode refuses corrupt data that
    libjpeg would otherwise patch over with garbage and a line on stderr (OpenCV did): such
    a file is an error (Pillow would decode the garbage); padding it merely warns about is
    accepted, and a JPEG it cannot decode at all (CMYK, unusual sampling) goes to Pillow. Only
    files that end with the JPEG end-of-image marker come this way; the rest (cut short, or
    with data after the picture, as motion photos have) go to Pillow, which raises on
    truncation.
    """
    if im.format != "JPEG" or im.mode != "RGB" or not data.endswith(b"\xff\xd9"):
        return None
    try:
        rgb = simplejpeg.decode_jpeg(data, colorspace="RGB", strict=True)
    except ValueError as exc:
        problem = str(exc)
        if "extraneous bytes" in problem:  # padding some cameras write: the picture is whole
            rgb = simplejpeg.decode_jpeg(data, colorspace="RGB", strict=False)
        elif problem.startswith("Corrupt JPEG data"):  # Pillow would decode the garbage
            raise ImageError(f"corrupt JPEG data ({problem.split(': ', 1)[-1]})") from exc
        else:  # not one simplejpeg decodes (CMYK, unusual sampling): Pillow's turn
            return None
    if rgb is None or rgb.shape != (im.height, im.width, 3):
        return None
    orientation = _orientation(im)
    upright = _UPRIGHT.get(orientation)
    return (upright(rgb) if upright else rgb), orientation  # decode() makes it contiguous


def _sniff_format(data: bytes) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return "image"


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # a broken EXIF block must not lose the photo
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _to_rgb(im: Image.Image) -> np.ndarray:
    """Any Pillow mode to HxWx3 uint8. Transparency is flattened onto white."""
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im)
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(im).astype(np.float64)
        if arr.size and arr.max() > 255:  # 16-bit samples: scale, do not clip
            arr = arr / 257.0
        grey = np.clip(arr, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return np.asarray(background)
    return np.asarray(im.convert("RGB"))


def scaled_copy(pixels: np.ndarray, scale: float) -> np.ndarray:
    """`pixels` (grey or RGB) resized by `scale`; the array itself when the scale is 1."""
    if scale == 1.0:
        return pixels
    h, w = pixels.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # Bilinear down to half size: much faster than INTER_AREA and the detector finds the same
    # faces (docs/decisions/detection.md); below half it would skip pixels (aliasing), so
    # INTER_AREA averages them. Enlarging is bilinear, as dlib's own pyramid_up.
    method = cv2.INTER_AREA if scale < 0.5 else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(pixels, size, interpolation=method))
