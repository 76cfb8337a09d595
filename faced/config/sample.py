"""The documented sample configuration, written from the schema: `faced sample-config`, and
config/faced.yaml (a test checks the file is what this writes)."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path
from typing import Any

from faced.config.schema import Config, WatchFolder

HEADER = """\
# faced configuration. Every key is optional; the values shown are the defaults.
# Relative paths are relative to this file's folder. Unknown keys and bad values are
# reported all at once, each with its key, before faced starts.
# Written by `faced sample-config` from faced/config/schema.py: edit that, not this file."""
WIDTH = 96


def sample_yaml() -> str:
    """The whole sample file: every key, its documentation as comments, its default."""
    out = [HEADER]
    for f in _fields(Config):
        value = getattr(Config(), f.name)
        if dataclasses.is_dataclass(value):
            out.append("")
            out.extend(_comment(_doc(type(value)), ""))
            out.append(f"{f.name}:")
            for sub in _fields(type(value)):
                out.extend(_comment(sub.metadata["doc"], "  "))
                out.append(f"  {sub.name}: {_scalar(getattr(value, sub.name))}")
        else:
            out.append("")
            out.extend(_comment(f.metadata["doc"], ""))
            out.extend(_top_level(f.name, value))
    return "\n".join(out) + "\n"


def _fields(cls: type) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("internal")]


def _doc(cls: type) -> str:
    return " ".join((cls.__doc__ or "").split())


def _comment(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent + "# ", subsequent_indent=indent + "# ")


def _top_level(name: str, value: Any) -> list[str]:
    if isinstance(value, tuple) and value and isinstance(value[0], WatchFolder):
        lines = [f"{name}:"]
        for w in value:
            lines.append(f"  - path: {_scalar(w.path)}")
            lines.append(f"    polling: {_scalar(w.polling)}")
        return lines
    return [f"{name}: {_scalar(value)}"]


def _scalar(value: Any) -> str:
    if value == "":
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        return str(value) if value.is_absolute() else f"./{value}"
    if isinstance(value, tuple):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}" if value != int(value) else f"{value:.1f}"
    return str(value)
