"""Placeholder until the daemon lands."""

from __future__ import annotations

from pathlib import Path

from faced.config import Config
from faced.errors import UsageError


def run_daemon(cfg: Config, config_path: Path | None = None) -> int:
    """Not yet."""
    raise UsageError("the daemon is not built yet; use `faced scan`")
