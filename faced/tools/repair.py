"""`faced check`: is the state's database sound; and `--repair`: rebuild a damaged one without
losing what the user decided.

The repair keeps the damaged file (set aside, never deleted), salvages the user's decisions
from it while SQLite can still read them (names, merges, hidden people, rejections, as the
`faced decisions` file: keyed by photo content, so they apply to the rebuilt state), reads the
photos again into an empty state, and puts the decisions back. Names also come back from the
people folders themselves (their hidden markers), so a database damaged past salvage still
loses no name; only rejections and merges need the salvage.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from faced.config import Config
from faced.errors import FacedError
from faced.pipeline.library import Library
from faced.pipeline.rules import folder_rule
from faced.pipeline.scan import Encode, run_scan
from faced.store import Store
from faced.tools.decisions import export_decisions, import_decisions

log = logging.getLogger(__name__)

SALVAGED = "decisions-salvaged.json"


@dataclass(frozen=True)
class Repaired:
    """What a repair did: where the damaged file went, what was salvaged, what was read."""

    aside: Path
    salvaged: Path | None  # the decisions file, or None if nothing could be read
    salvage_error: str | None
    photos: int
    people: int


def repair_state(cfg: Config, encode: Encode) -> Repaired:
    """Set the damaged database aside, rebuild from the watched photos and the people folders,
    and apply the decisions salvaged from it. Raises StoreError if a faced process holds it."""
    salvage = cfg.state / SALVAGED
    salvaged: Path | None = None
    error: str | None = None
    try:
        with Store(cfg.state, readonly=True) as old:
            n = export_decisions(old, salvage)
        salvaged = salvage
        log.info("salvaged %d people and %d rejections", n["people"], n["rejections"])
    except (FacedError, sqlite3.Error) as exc:
        error = str(exc)
        log.warning("no decisions could be salvaged (%s); names come back from the folders", exc)
    aside = Store.set_aside(cfg.state)
    with Store(cfg.state) as store:
        lib = Library(cfg, store)
        plan, _ = run_scan(lib, [w.path for w in cfg.watch], encode)
        if salvaged is not None:
            import_decisions(store, salvaged)
            lib.refresh(force=True)
        people = store.counts(folder_rule(cfg))["people"]
    return Repaired(aside, salvaged, error, len(plan.todo), people)
