"""Loading the configuration from YAML and validating it up front.

Every problem in a file is reported at once, each with the file and the key path
(`faced.yaml: clustering.eps: must be > 0, got -1`), before anything runs. Relative paths in
a file are taken relative to that file's folder; in the built-in defaults, to the current folder.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from faced.config.schema import Config, WatchFolder
from faced.errors import ConfigError


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
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text (byte {exc.start})"]) from exc
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
    for i, m in enumerate(cfg.dask.path_map):
        for side in ("local", "worker"):
            if not getattr(m, side).startswith("/"):
                problems.append(f"dask.path_map[{i}].{side}: must be an absolute folder path")
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


# Keys of earlier versions, with what to write instead (reported like any other problem).
RENAMED = {
    "video.faces_per_person": "now video.faces_per_track: faces are kept per track, each "
    "appearance of a face in a clip",
}


def _section(cls: type, data: dict[str, Any], prefix: str, problems: list[str]) -> dict[str, Any]:
    """Check `data` against dataclass `cls`; return constructor kwargs for the keys given."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    out: dict[str, Any] = {}
    for key, value in data.items():
        keypath = f"{prefix}{key}"
        if keypath in RENAMED:
            problems.append(f"{keypath}: {RENAMED[keypath]}")
            continue
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
        if not isinstance(value, str) or (not value and tp is Path):
            problems.append(f"{keypath}: must be a non-empty string, got {_kind(value)} {value!r}")
            return _INVALID
        return tp(value)
    raise TypeError(f"unsupported config type {tp!r} at {keypath}")
