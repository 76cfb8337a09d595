"""The configuration: one frozen, typed object, loaded from YAML and validated up front.

Every problem in a file is reported at once, each with the file and the key path
(`faced.yaml: clustering.eps: must be > 0, got -1`), before anything runs. Relative paths in
a file are taken relative to that file's folder; in the built-in defaults, to the current folder.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from faced.errors import ConfigError

DEFAULT_SOURCE = "<built-in defaults>"


def _opt(default: Any, *, lo: float | None = None, hi: float | None = None, **kw: Any) -> Any:
    """A dataclass field with optional numeric bounds, checked by the loader."""
    return field(default=default, metadata={"lo": lo, "hi": hi, **kw})


@dataclass(frozen=True)
class WatchFolder:
    """A folder the daemon watches. `polling` is for network shares, where inotify sees nothing."""

    path: Path
    polling: bool = False


@dataclass(frozen=True)
class ImagesConfig:
    """Which files are images and how much of one faced is willing to decode."""

    # Files are picked up by extension; what they really are is decided by their content.
    extensions: tuple[str, ...] = (
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jfif",
        ".png",
        ".webp",
        ".bmp",
        ".tif",
        ".tiff",
        ".gif",
        ".heic",
        ".heif",
        ".hif",
    )
    # heif needs the optional pillow-heif (faced[heic]); without it HEIC files are reported as
    # unsupported, not as corrupt.
    formats: tuple[str, ...] = ("jpeg", "png", "webp", "bmp", "tiff", "gif", "heif")
    # Decompression-bomb guard: more pixels than this is an error, checked before decoding.
    max_pixels: int = _opt(150_000_000, lo=1)
    max_file_mb: int = _opt(300, lo=1)


@dataclass(frozen=True)
class VideoConfig:
    """Video clips: sampled frames, faces de-duplicated per person within a clip."""

    extensions: tuple[str, ...] = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm")
    fps: float = _opt(1.0, lo=0.01, hi=30.0)  # frames looked at per second of video
    # At most this many frames per video, spread over the whole clip: a long video costs a
    # bounded amount of work and does not hold photos up.
    max_frames: int = _opt(60, lo=1, hi=10_000)
    # Faces kept per person per clip (the largest): a person on screen for a minute is one
    # person in one video, not sixty photos.
    faces_per_person: int = _opt(3, lo=1, hi=100)

    def matches(self, path: bytes) -> bool:
        """True if the file's extension says it is a video clip."""
        return os.path.splitext(path)[1].lower() in {e.encode() for e in self.extensions}


@dataclass(frozen=True)
class DetectionConfig:
    """Face detection and description (dlib, the models of face_recognition)."""

    detector: Literal["hog", "cnn"] = "hog"
    # The smallest face to find: box height in pixels of the photo. dlib reports boxes in
    # steps of 6/5 (HOG: 36, 43, 52, 62, 75, 90, 107... px, the levels face_recognition's
    # upsample 1 searches); 36 finds all of them, 80 skips the levels for boxes under 80 px.
    min_face_px: int = _opt(36, lo=10)
    # The most megapixels the detector searches in one photo, upsampling included (0: no
    # limit). It bounds the time one photo costs: a 12-MP phone photo is searched at 0.8 of
    # its size (boxes from 90 px); a 48-MP one at 0.39 (from 186 px). Boxes are mapped back
    # and descriptors always computed on the full-resolution photo.
    max_megapixels: float = _opt(10.0, lo=0.0)
    # Faster HOG on large photos (about 20% of a photo's time): the first, costliest level is
    # searched only around hits of the coarser levels. It can miss a face one size above
    # min_face_px that those levels barely see (1 of 108 faces in benchmarks/ingest.py), so it
    # is off by default. Not recorded per face: turning it on or off re-reads nothing.
    coarse_to_fine: bool = False
    # The HOG score a face must reach; dlib's own line is 0. faced searches a resampled copy
    # of the photo, and resampling moves a face's score by about +-0.1 (10th-90th percentile
    # against face_recognition's search; moving the photo by 3 pixels does as much to
    # face_recognition itself). At 0, a face the classic search keeps at +0.05 can come out
    # at -0.05 here. At -0.1 the faces it keeps survive; what the band adds are faces too
    # (20 in 1,398 shared photos, all faces; none on the photos without faces).
    hog_threshold: float = _opt(-0.1, lo=-1.0, hi=1.0)
    jitters: int = _opt(1, lo=1, hi=100)


@dataclass(frozen=True)
class ClusteringConfig:
    """How faces become people (see faced/cluster.py). Distances are dlib descriptor distances."""

    # Two lone faces this close (or closer) become a person.
    pair_threshold: float = _opt(0.48, lo=0.05, hi=1.5)
    # A face or group joins an established person up to this average distance.
    link_threshold: float = _opt(0.6, lo=0.05, hi=1.5)
    # Two groups of faces stay apart, however close, when their average distance exceeds the
    # looser group's own average spread by more than this: two tight groups with a gap
    # between them are two people (two white-haired politicians), not one.
    separation_gap: float = _opt(0.12, lo=0.0, hi=1.5)
    # A person needs this many faces before it gets a folder.
    min_faces: int = _opt(3, lo=1)
    # Two faces in one photo are never the same person.
    one_face_per_photo: bool = True


@dataclass(frozen=True)
class PublishConfig:
    """The person folders."""

    montage_faces: int = _opt(25, lo=1, hi=400)
    montage_tile: int = _opt(128, lo=16, hi=1024)
    unknown: str = "unknown"


@dataclass(frozen=True)
class DaemonConfig:
    """The long-running service."""

    workers: int = _opt(0, lo=0)  # 0: one per CPU
    debounce_seconds: float = _opt(10.0, lo=0.0)
    max_delay_seconds: float = _opt(120.0, lo=0.0)
    rescan_minutes: float = _opt(60.0, lo=0.0)  # 0: only at start
    queue_size: int = _opt(256, lo=1)
    # Above this many faces, new faces are placed among existing people in milliseconds and
    # the full re-cluster waits until `full_recluster_faces` faces are left unplaced, or
    # `full_recluster_hours` have passed.
    incremental_above: int = _opt(20_000, lo=0)
    full_recluster_faces: int = _opt(500, lo=1)
    full_recluster_hours: float = _opt(24.0, lo=0.0)


@dataclass(frozen=True)
class Config:
    """Everything faced needs to run, passed explicitly; there is no global config."""

    watch: tuple[WatchFolder, ...] = (WatchFolder(Path("photos")),)
    output: Path = Path("people")
    state: Path = Path("faced-state")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    images: ImagesConfig = ImagesConfig()
    video: VideoConfig = VideoConfig()
    detection: DetectionConfig = DetectionConfig()
    clustering: ClusteringConfig = ClusteringConfig()
    publish: PublishConfig = PublishConfig()
    daemon: DaemonConfig = DaemonConfig()
    source: str = field(default=DEFAULT_SOURCE, metadata={"internal": True})

    def with_paths(
        self,
        *,
        watch: list[Path] | None = None,
        output: Path | None = None,
        state: Path | None = None,
    ) -> Config:
        """A copy with command-line path overrides applied (made absolute against the cwd)."""
        changes: dict[str, Any] = {}
        if watch:
            polling = {w.path: w.polling for w in self.watch}
            changes["watch"] = tuple(
                WatchFolder(absolute(p), polling.get(absolute(p), False)) for p in watch
            )
        if output is not None:
            changes["output"] = absolute(output)
        if state is not None:
            changes["state"] = absolute(state)
        return dataclasses.replace(self, **changes)


def absolute(path: Path) -> Path:
    """`path` made absolute and normalised ("a/../b" -> "b"), symlinks left as they are."""
    return Path(os.path.abspath(path))


def load_config(path: Path | None) -> Config:
    """Load `path` (or the built-in defaults when None) into a validated Config.

    Raises ConfigError listing every problem, each prefixed by the file name and key path.
    """
    if path is None:
        return _absolutize(Config(), Path.cwd())
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}".replace("\n", " ")]) from exc
    return config_from_mapping(data or {}, source=str(path), base=path.parent)


def config_from_mapping(data: object, *, source: str, base: Path) -> Config:
    """Validate an already-parsed mapping; `source` names it in messages, `base` anchors paths."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: the top level must be a mapping of keys, got {_kind(data)}"])
    values = _section(Config, data, "", problems)
    if problems:
        raise ConfigError([f"{source}: {p}" for p in problems])
    cfg = Config(**values, source=source)
    cfg = _absolutize(cfg, base)
    _check_consistency(cfg, source)
    return cfg


def _absolutize(cfg: Config, base: Path) -> Config:
    def anchored(p: Path) -> Path:
        p = p.expanduser()
        return Path(os.path.normpath(p if p.is_absolute() else Path(os.path.abspath(base)) / p))

    return dataclasses.replace(
        cfg,
        watch=tuple(WatchFolder(anchored(w.path), w.polling) for w in cfg.watch),
        output=anchored(cfg.output),
        state=anchored(cfg.state),
    )


def _check_consistency(cfg: Config, source: str) -> None:
    problems = []
    if cfg.daemon.max_delay_seconds < cfg.daemon.debounce_seconds:
        problems.append("daemon.max_delay_seconds: must be >= daemon.debounce_seconds")
    if cfg.clustering.pair_threshold > cfg.clustering.link_threshold:
        problems.append("clustering.pair_threshold: must be <= clustering.link_threshold")
    if cfg.output == cfg.state:
        problems.append("state: must not be the same folder as output")
    if "/" in cfg.publish.unknown or cfg.publish.unknown.startswith(".") or not cfg.publish.unknown:
        problems.append("publish.unknown: must be a plain folder name")
    for i, w in enumerate(cfg.watch):
        if w.path in (cfg.output, cfg.state):
            problems.append(f"watch[{i}]: must not be the output or state folder")
    known = {"jpeg", "png", "webp", "bmp", "tiff", "gif", "heif"}
    for i, f in enumerate(cfg.images.formats):
        if f not in known:
            problems.append(f"images.formats[{i}]: unknown format {f!r} (known: {sorted(known)})")
    for section, extensions in (("images", cfg.images.extensions), ("video", cfg.video.extensions)):
        for i, e in enumerate(extensions):
            if not e.startswith("."):
                problems.append(f"{section}.extensions[{i}]: must start with a dot, got {e!r}")
    if problems:
        raise ConfigError([f"{source}: {p}" for p in problems])


def _kind(value: object) -> str:
    return {
        type(None): "nothing",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)


def _section(cls: type, data: dict[str, Any], prefix: str, problems: list[str]) -> dict[str, Any]:
    """Check `data` against dataclass `cls`; return constructor kwargs for the keys given."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    out: dict[str, Any] = {}
    for key, value in data.items():
        keypath = f"{prefix}{key}"
        if key not in fields:
            problems.append(f"{keypath}: unknown key (known: {', '.join(sorted(fields))})")
            continue
        f = fields[key]
        converted = _convert(hints[key], value, keypath, problems)
        if converted is _INVALID:
            continue
        lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
        if lo is not None and converted < lo:
            problems.append(f"{keypath}: must be >= {lo}, got {value!r}")
            continue
        if hi is not None and converted > hi:
            problems.append(f"{keypath}: must be <= {hi}, got {value!r}")
            continue
        out[key] = converted
    return out


_INVALID = object()


def _convert(tp: Any, value: Any, keypath: str, problems: list[str]) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            problems.append(f"{keypath}: must be a mapping, got {_kind(value)}")
            return _INVALID
        before = len(problems)
        kwargs = _section(tp, value, keypath + ".", problems)  # type: ignore[arg-type]
        if tp is WatchFolder and "path" not in kwargs and len(problems) == before:
            problems.append(f"{keypath}.path: required")
        return _INVALID if len(problems) > before else tp(**kwargs)  # type: ignore[operator]
    if origin is tuple:
        item_tp = typing.get_args(tp)[0]
        if tp == tuple[WatchFolder, ...] and isinstance(value, (str, dict)):
            value = [value]
        if not isinstance(value, list):
            problems.append(f"{keypath}: must be a list, got {_kind(value)}")
            return _INVALID
        if item_tp is WatchFolder:
            value = [{"path": v} if isinstance(v, str) else v for v in value]
        items = [_convert(item_tp, v, f"{keypath}[{i}]", problems) for i, v in enumerate(value)]
        return _INVALID if any(i is _INVALID for i in items) else tuple(items)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            problems.append(
                f"{keypath}: must be one of {', '.join(map(str, choices))}, got {value!r}"
            )
            return _INVALID
        return value
    if origin in (Union, types.UnionType):
        raise TypeError(f"unsupported config type at {keypath}")  # not used by Config
    if tp is bool:
        if not isinstance(value, bool):
            problems.append(f"{keypath}: must be true or false, got {_kind(value)} {value!r}")
            return _INVALID
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{keypath}: must be an integer, got {_kind(value)} {value!r}")
            return _INVALID
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{keypath}: must be a number, got {_kind(value)} {value!r}")
            return _INVALID
        return float(value)
    if tp in (str, Path):
        if not isinstance(value, str) or not value:
            problems.append(f"{keypath}: must be a non-empty string, got {_kind(value)} {value!r}")
            return _INVALID
        return tp(value)
    raise TypeError(f"unsupported config type {tp!r} at {keypath}")
