"""When to re-cluster everything and when only to place new faces: the re-cluster policy.

A small library re-clusters in a moment, so it always re-clusters properly. Above
`daemon.incremental_above` faces the daemon places new faces among existing people instead,
and the full re-cluster runs once `full_recluster_faces` faces wait unplaced or
`full_recluster_hours` have passed. The policy's memory is one typed record in the store.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from faced.config import DaemonConfig
from faced.store import MetaKey, Store


@dataclass(frozen=True)
class ReclusterState:
    """What the policy remembers between runs (stored as JSON under MetaKey.RECLUSTER)."""

    full_at: float = 0.0  # when the last full re-cluster ran (epoch seconds)
    full_max_face: int = 0  # the newest face id it saw
    clustered: str = ""  # the store's fingerprint when people were last brought up to date

    @classmethod
    def load(cls, store: Store) -> ReclusterState:
        data = store.meta.get_json(MetaKey.RECLUSTER) or {}
        return cls(
            float(data.get("full_at", 0.0)),
            int(data.get("full_max_face", 0)),
            str(data.get("clustered", "")),
        )

    def save(self, store: Store) -> None:
        store.meta.set_json(MetaKey.RECLUSTER, asdict(self))


class ReclusterPolicy:
    """Decides, and records, full re-clusters against incremental placement."""

    def __init__(self, store: Store, daemon: DaemonConfig) -> None:
        self.store = store
        self.daemon = daemon

    @property
    def state(self) -> ReclusterState:
        return ReclusterState.load(self.store)

    def up_to_date(self) -> bool:
        """True if nothing that clustering depends on changed since the last run."""
        return self.store.fingerprint() == self.state.clustered

    def full_due(self) -> bool:
        """True if the next refresh must re-cluster everything."""
        if self.store.faces.count() <= self.daemon.incremental_above:
            return True
        return time.time() - self.state.full_at >= self.daemon.full_recluster_hours * 3600

    def enough_waiting(self) -> bool:
        """True if so many faces wait unplaced since the last full run that they call for one
        (faces nobody claims may be new people)."""
        waiting = self.store.faces.unassigned_since(self.state.full_max_face)
        return waiting >= self.daemon.full_recluster_faces

    def ran_full(self) -> None:
        """Record a full re-cluster, now, over every face in the store."""
        s = self.state
        ReclusterState(time.time(), self.store.faces.max_id(), s.clustered).save(self.store)

    def clustered(self) -> None:
        """Record that people are up to date with the store as it is now."""
        s = self.state
        ReclusterState(s.full_at, s.full_max_face, self.store.fingerprint()).save(self.store)
