"""The records that cross stage boundaries: what a worker learned about one file.

A worker (faced.faces) produces an EncodeResult; the one writer (faced.store) records it. Both
import this module and nothing of each other, so the store never loads a decoder or a model.
Plain data only: numpy, no I/O.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass

import numpy as np

Box = tuple[int, int, int, int]  # (top, right, bottom, left), face_recognition's order

# The reason recorded for a file whose worker died. Unlike other errors it is retried at the
# next scan, as the crash may have had another cause (memory, a killed process), but only
# until it has killed a worker MAX_CRASHES times: then it is a poison file, left alone until
# it changes.
CRASHED = "a worker process died reading this file (retried at the next scan)"
MAX_CRASHES = 3


def crash_reason(times: int) -> str:
    """The error reason of a file that has killed a worker `times` times."""
    if times <= 1:
        return CRASHED
    if times < MAX_CRASHES:
        return f"a worker process died reading this file ({times} times; retried at the next scan)"
    return f"a worker process died reading this file {times} times: not read again until it changes"


def crashes(reason: str | None) -> int:
    """How many times the file of an error record has killed a worker (0: another error)."""
    if reason == CRASHED:
        return 1
    for times in range(2, MAX_CRASHES + 10):
        if reason == crash_reason(times):
            return times
    return 0


# Errors of access, not of content: the file may be fine once its permissions or its disk are
# (a chmod, a remount), so such a record is read again at every rescan and when the file's
# attributes change. Content errors wait for the file itself to change.
ACCESS_ERRORS = ("cannot open: ", "cannot read: ")


def access_reason(verb: str, exc: OSError) -> str:
    """The reason recorded when a file could not be opened or read (`verb`: open or read)."""
    return f"cannot {verb}: {exc.strerror or exc}"


def is_access_error(reason: str | None) -> bool:
    """True for an error of access (see ACCESS_ERRORS), worth retrying without a change."""
    return reason is not None and reason.startswith(ACCESS_ERRORS)


class Status(str, enum.Enum):
    """What a file turned out to be. The values are what the store's `images.status` holds."""

    FACES = "faces"  # readable, with at least one face
    NOFACE = "noface"  # readable, no face found
    ERROR = "error"  # unreadable: `reason` says why


@dataclass(frozen=True)
class TrackSpan:
    """The track a face seen in a video belongs to: its number in the clip (from 1) and the
    time it covers, from its first sighting to one sampling step past its last (ms)."""

    number: int
    start_ms: int
    end_ms: int

    @property
    def ms(self) -> int:
        """How long the face was followed."""
        return self.end_ms - self.start_ms


@dataclass(frozen=True)
class Face:
    """One face: its box in displayed-image pixels, its descriptor and a small JPEG crop."""

    box: Box
    encoding: np.ndarray  # float32, shape (128,)
    thumb: bytes
    frame_ms: int | None = None  # where in a video it was seen; None for a photo
    # The detector's margin over its own line (faced.faces.backends.FaceBackend.detect); below
    # 0 a weak detection, which may join a person but never starts or bridges one. None: not
    # known (faces imported from elsewhere), counted as a face.
    score: float | None = None
    track: TrackSpan | None = None  # the track it was kept from; None for a photo


@dataclass(frozen=True)
class FileStat:
    """A file as it was when read: enough to recognise it again without reading it."""

    size: int = 0
    mtime_ns: int = 0
    digest: str | None = None  # content hash; None when the file could not be read whole

    @classmethod
    def of(cls, path: bytes) -> FileStat:
        """Size and mtime of `path` from stat (no digest); zeros if it cannot be stat'ed."""
        try:
            st = os.stat(path)
        except OSError:
            return cls()
        return cls(st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class EncodeResult:
    """What a worker learned about one file. Build it with `found`, `failed` or `crashed`."""

    path: bytes
    file: FileStat
    status: Status
    reason: str | None
    faces: tuple[Face, ...]
    detector: str  # how faces were looked for (faced.faces.encode.detector_label)
    model: str  # which descriptor described them (the backend's model name)
    width: int = 0
    height: int = 0

    @classmethod
    def found(
        cls,
        path: bytes,
        file: FileStat,
        faces: tuple[Face, ...],
        *,
        size: tuple[int, int],
        detector: str,
        model: str,
    ) -> EncodeResult:
        """A readable file and the faces in it (none: Status.NOFACE). `size` is (width, height)."""
        status = Status.FACES if faces else Status.NOFACE
        return cls(path, file, status, None, faces, detector, model, size[0], size[1])

    @classmethod
    def failed(
        cls, path: bytes, file: FileStat, reason: str, *, detector: str, model: str
    ) -> EncodeResult:
        """A file that could not be read: `reason` is one line for the log and the store."""
        return cls(path, file, Status.ERROR, reason, (), detector, model)

    @classmethod
    def crashed(cls, path: bytes, *, detector: str, model: str) -> EncodeResult:
        """The error record of a file that killed its worker (retried at the next scan)."""
        return cls.failed(path, FileStat.of(path), CRASHED, detector=detector, model=model)

    @property
    def is_error(self) -> bool:
        return self.status is Status.ERROR


@dataclass(frozen=True)
class FolderRule:
    """Who gets a folder: a person with `min_faces` faces, or one followed through a clip for
    `track_ms` or longer (0: tracks prove nothing by themselves). Built from the configuration
    (faced.pipeline.library.folder_rule)."""

    min_faces: int
    track_ms: int = 0

    def shows(self, faces: int, longest_track_ms: int = 0) -> bool:
        """True if a person with `faces` faces and this longest track gets a folder."""
        return faces >= self.min_faces or 0 < self.track_ms <= longest_track_ms


@dataclass(frozen=True)
class PersonEntry:
    """A person as recorded and as the layout plans them: id, chosen name, faces (oldest
    first), the photos they are in (image id -> path), and the longest track they were
    followed for in a clip (ms; 0: none)."""

    person_id: int
    name: str | None
    face_ids: tuple[int, ...]
    images: dict[int, bytes]
    longest_track_ms: int = 0
