"""Synthetic 128-d encodings shaped like dlib's: people ~1.0 apart, faces of one person
~0.35 apart on average (the spreads measured on real descriptors)."""

from __future__ import annotations

import numpy as np

DIM = 128
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
