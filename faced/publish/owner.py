"""One owner per people folder: the state that publishes it says so in PEOPLE_DIR/.faced-owner.

A second faced (a scan from a shell beside the service, say) with another state refuses to
publish there, and so never reads the first one's folders as user edits. A state that no longer
exists (lost, deleted) cannot object: its folder is taken over, and the new state learns from
the folders it left (faced.pipeline.adopt).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from faced.errors import OwnershipError

log = logging.getLogger(__name__)

OWNER = ".faced-owner"


@dataclass(frozen=True)
class Owner:
    """A state: its identity and where it lives."""

    state_id: str
    state_dir: str


def read_owner(people_dir: Path) -> Owner | None:
    """Who PEOPLE_DIR says owns it, if anyone (an unreadable record counts as none)."""
    try:
        data = json.loads((people_dir / OWNER).read_text(encoding="utf-8"))
        return Owner(str(data["state_id"]), str(data["state_dir"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def claim(people_dir: Path, me: Owner, exists: Callable[[Owner], bool]) -> Owner | None:
    """Make `me` the owner of PEOPLE_DIR, unless another state that `exists` owns it.

    Returns the previous owner when it was another, vanished state (its folders are then the
    new owner's to learn from); raises OwnershipError if that state still exists.
    """
    people_dir.mkdir(parents=True, exist_ok=True)
    current = read_owner(people_dir)
    if current == me:
        return None
    if current is not None and current.state_id != me.state_id:
        if exists(current):
            raise OwnershipError(
                f"{people_dir} is published by another faced state ({current.state_dir}); "
                f"this one ({me.state_dir}) will not touch it. Use that state "
                f"(--state {current.state_dir}), or publish to another folder (--output)."
            )
        log.warning(
            "%s was published by a faced state that no longer exists (%s); taking it over",
            people_dir,
            current.state_dir,
        )
    tmp = people_dir / f"{OWNER}.tmp"
    tmp.write_text(
        json.dumps({"state_id": me.state_id, "state_dir": me.state_dir}) + "\n", encoding="utf-8"
    )
    os.replace(tmp, people_dir / OWNER)
    return current if current is not None and current.state_id != me.state_id else None
