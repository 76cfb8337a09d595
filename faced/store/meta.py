"""The meta table: a few named values, each with a typed key."""

from __future__ import annotations

import enum
import json
from typing import Any

from faced.store.db import Db


class MetaKey(str, enum.Enum):
    """Every key the meta table holds."""

    OUTPUT = "output"  # the people folder this state publishes to
    RECLUSTER = "recluster"  # the re-cluster policy's record (faced.pipeline.policy), JSON
    EDITED = "edited"  # when `faced name`/`merge`/`reject` last changed something
    OFFLINE = "offline"  # watched folders found missing or empty: {folder: since}, JSON
    STATE_ID = "state_id"  # this state's identity, written into the people folder it owns


class Meta:
    """Read and write meta values; JSON records for structured ones."""

    def __init__(self, db: Db) -> None:
        self.db = db

    def get(self, key: MetaKey) -> str | None:
        r = self.db.conn.execute("SELECT value FROM meta WHERE key = ?", (key.value,)).fetchone()
        return str(r[0]) if r else None

    def set(self, key: MetaKey, value: str) -> None:
        with self.db.transaction() as c:
            c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key.value, value))

    def get_json(self, key: MetaKey) -> dict[str, Any] | None:
        """A JSON object stored under `key`; None if absent or not an object."""
        text = self.get(key)
        if text is None:
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def set_json(self, key: MetaKey, value: dict[str, Any]) -> None:
        self.set(key, json.dumps(value, sort_keys=True))

    def delete(self, key: MetaKey) -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM meta WHERE key = ?", (key.value,))
