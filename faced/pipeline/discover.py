"""Which files are photos to look at: name filters and the recursive walk.

Paths are bytes throughout (os.fsencode), so any name the filesystem allows (spaces, unicode,
newlines, invalid UTF-8) is handled. Symlinked directories are not descended (no loops);
symlinked files are followed; a directory named "x.jpg" is a directory.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from faced.config import ImagesConfig, VideoConfig

log = logging.getLogger(__name__)

# Names that are still being written or are not the user's photos: temp files of browsers,
# rsync, Syncthing, office suites and editors; hidden files and folders.
IGNORED = (
    ".*",
    "~*",
    "*~",
    "*.part",
    "*.partial",
    "*.tmp",
    "*.temp",
    "*.crdownload",
    "*.download",
    "*.swp",
    "*.!sync",
    "*.syncthing.*",
)


def is_ignored_name(name: bytes) -> bool:
    """True for hidden and temporary names, whatever their extension."""
    text = os.fsdecode(name).lower()
    return any(fnmatch.fnmatchcase(text, pattern) for pattern in IGNORED)


def is_candidate(path: bytes, images: ImagesConfig, video: VideoConfig | None = None) -> bool:
    """True if `path`'s name says it may be a photo (or, given `video`, a clip) to read."""
    name = os.path.basename(path)
    if is_ignored_name(name):
        return False
    extensions = images.extensions + (video.extensions if video else ())
    return os.path.splitext(name)[1].lower() in {e.encode() for e in extensions}


def is_excluded(path: bytes, excluded: Iterable[bytes]) -> bool:
    """True if `path` is one of `excluded` or lies below one (faced's own output and state)."""
    return any(path == e or path.startswith(e.rstrip(b"/") + b"/") for e in excluded)


def _unlistable(err: OSError) -> None:
    log.warning("cannot list %s: %s", os.fsdecode(err.filename or "?"), err.strerror)


def walk(
    roots: Iterable[Path],
    images: ImagesConfig,
    excluded: Iterable[Path] = (),
    video: VideoConfig | None = None,
) -> Iterator[tuple[bytes, int, int]]:
    """Yield (absolute path, size, mtime_ns) of every candidate regular file below `roots`."""
    skip = [os.fsencode(os.path.abspath(p)) for p in excluded]
    for root in roots:
        top = os.fsencode(os.path.abspath(root))
        for folder, dirs, files in os.walk(top, onerror=_unlistable, followlinks=False):
            dirs[:] = sorted(
                d
                for d in dirs
                if not is_ignored_name(d) and not is_excluded(os.path.join(folder, d), skip)
            )
            for name in sorted(files):
                path = os.path.join(folder, name)
                if not is_candidate(path, images, video):
                    continue
                try:
                    st = os.stat(path)  # follows a symlinked file; a loop raises ELOOP
                except OSError as exc:
                    log.debug("skipping %s: %s", os.fsdecode(path), exc.strerror)
                    continue
                if stat.S_ISREG(st.st_mode):
                    yield path, st.st_size, st.st_mtime_ns
