"""Domain errors. Only the CLI turns these into messages and exit codes."""

from __future__ import annotations


class FacedError(Exception):
    """Base of every error faced raises on purpose."""


class ConfigError(FacedError):
    """The configuration is invalid. `problems` holds one line per problem, each naming its key."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration:\n  " + "\n  ".join(self.problems))


class UsageError(FacedError):
    """The command line asks for something impossible (unknown person, missing folder...)."""


class ImageError(FacedError):
    """A file could not be read as an image. `reason` is one line for the log and the store."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class ModelError(FacedError):
    """The face models could not be found or loaded."""


class StoreError(FacedError):
    """The state store is unusable (newer schema, corrupt database, locked by another writer)."""


class StoreFullError(StoreError):
    """The state folder's disk is full: nothing was written; the same write can be tried again
    once there is room."""


class PublishError(FacedError):
    """The people folder cannot be written (read-only, missing disk, permissions)."""


class OwnershipError(FacedError):
    """A people folder is published by another faced state: two writers would undo each other."""


class ClusterError(FacedError):
    """The Dask cluster cannot read photos: the extra is missing, the scheduler cannot be
    reached or went away, or its workers cannot run faced."""
