"""Label arrays: the one-face-per-photo rule, renumbering, average distances. Pure numpy."""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist


def mean_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each row of `a`, its average euclidean distance to the rows of `b` (chunked)."""
    out = np.empty(len(a))
    step = max(1, (1 << 22) // max(len(b), 1))  # ~32 MB of distances at a time
    for s in range(0, len(a), step):
        out[s : s + step] = cdist(a[s : s + step], b).mean(axis=1)
    return out


def one_face_per_photo(x: np.ndarray, image_ids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Where a cluster holds two faces of one photo, keep the one nearest the cluster's centre."""
    labels = labels.copy()
    clustered = np.flatnonzero(labels >= 0)
    key = labels[clustered] * (image_ids.max() + 1) + image_ids[clustered]
    _, first, counts = np.unique(key, return_index=True, return_counts=True)
    for k in np.flatnonzero(counts > 1):
        lab = labels[clustered[first[k]]]
        mates = np.flatnonzero((labels == lab) & (image_ids == image_ids[clustered[first[k]]]))
        centre = x[labels == lab].mean(axis=0)
        keep = mates[np.argmin(np.linalg.norm(x[mates] - centre, axis=1))]
        labels[mates[mates != keep]] = -1
    return labels


def renumber(labels: np.ndarray) -> np.ndarray:
    """Labels 0..k-1 in order of first appearance; clusters shrunk to one face become noise."""
    out = np.full(len(labels), -1, dtype=np.int64)
    valid = labels >= 0
    if not valid.any():
        return out
    uniq, first, inverse, counts = np.unique(
        labels[valid], return_index=True, return_inverse=True, return_counts=True
    )
    kept = np.flatnonzero(counts > 1)
    rank = np.full(len(uniq), -1, dtype=np.int64)
    rank[kept[np.argsort(first[kept], kind="stable")]] = np.arange(len(kept))
    out[valid] = rank[inverse]
    return out
