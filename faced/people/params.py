"""The merge rule shared by the exact and the sparse clustering paths: pure functions.

Distances are dlib descriptor distances (euclidean; 0.6 is dlib's same-person line). Why the
rule has this shape, and where its constants come from: docs/decisions/clustering.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A group's spread is trusted from this many faces on: the distance between two or three faces
# says little, and copies of one photo (bursts, duplicates) make a small group look tight.
SPREAD_FACES = 5


@dataclass(frozen=True)
class ClusterParams:
    """The clustering settings, built from the configuration (faced.pipeline.cluster_params):
    this class holds no defaults of its own."""

    pair_threshold: float
    link_threshold: float
    one_face_per_photo: bool
    separation_gap: float


def separated(between: float, spread_a: float, spread_b: float, p: ClusterParams) -> bool:
    """True if two groups of SPREAD_FACES+ faces are `between` apart on average, but each is much
    tighter than that: their gap says two people, even below merge_threshold.

    A group's spread is the average distance between its own faces. Two halves of one person
    are about as far apart as the faces within each (a person's photos vary by age, light,
    pose, in every half alike); two similar-looking people are tight groups with a gap.
    """
    return between > max(spread_a, spread_b) + p.separation_gap


def merge_threshold(size: int, p: ClusterParams) -> float:
    """How far apart (average distance) two groups may be to merge, given the larger's size."""
    return p.link_threshold - (p.link_threshold - p.pair_threshold) / float(np.sqrt(size))
