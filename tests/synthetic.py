"""Synthetic 128-d encodings shaped like dlib's: people ~1.0 apart, faces of one person
~0.35 apart on average (the spreads measured on real descriptors)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from faced.config import ClusteringConfig
from faced.people.params import ClusterParams
from faced.pipeline.rules import cluster_params

DIM = 128


def params(**changes: Any) -> ClusterParams:
    """The configured defaults' clustering settings, with `changes`."""
    return dataclasses.replace(cluster_params(ClusteringConfig()), **changes)


CENTRE_SPREAD = 1.0 / np.sqrt(2 * DIM)  # two people's centres ~1.0 apart
FACE_SPREAD = 0.35 / np.sqrt(2 * DIM)  # two faces of one person ~0.35 apart


def people(rng: np.random.Generator, sizes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Encodings and true labels for people with the given numbers of faces."""
    centres = rng.normal(0, CENTRE_SPREAD, (len(sizes), DIM))
    x = np.concatenate(
        [c + rng.normal(0, FACE_SPREAD, (n, DIM)) for c, n in zip(centres, sizes, strict=True)]
    )
    labels = np.repeat(np.arange(len(sizes)), sizes)
    return x.astype(np.float32), labels


def two_groups(rng: np.random.Generator, size: int, apart: float) -> tuple[np.ndarray, np.ndarray]:
    """Two groups of `size` faces each (spread as one person's), centres `apart` apart.

    Faces of different groups are then sqrt(apart^2 + 0.35^2) apart on average (0.55 for
    apart 0.42: closer than dlib's 0.6 line, yet a clear gap over the 0.35 within each).
    """
    direction = rng.normal(0, 1, DIM)
    centre = rng.normal(0, CENTRE_SPREAD, DIM)
    centres = [centre, centre + apart * direction / np.linalg.norm(direction)]
    x = np.concatenate([c + rng.normal(0, FACE_SPREAD, (size, DIM)) for c in centres])
    return x.astype(np.float32), np.repeat([0, 1], size)
