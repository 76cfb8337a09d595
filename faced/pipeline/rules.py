"""The configuration's clustering settings as the pure core takes them: the one place each is
built from the configuration."""

from __future__ import annotations

from faced.config import ClusteringConfig, Config
from faced.people.params import ClusterParams
from faced.records import FolderRule


def cluster_params(c: ClusteringConfig) -> ClusterParams:
    """The clustering settings of a configuration (the only source of their defaults)."""
    return ClusterParams(
        pair_threshold=c.pair_threshold,
        link_threshold=c.link_threshold,
        one_face_per_photo=c.one_face_per_photo,
        separation_gap=c.separation_gap,
    )


def folder_rule(cfg: Config) -> FolderRule:
    """Who gets a folder, as the configuration says (the one place it is built)."""
    return FolderRule(cfg.clustering.min_faces, round(cfg.video.track_seconds * 1000))
