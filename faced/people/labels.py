"""Label arrays: the one-face-per-photo rule, renumbering, average distances. Pure numpy."""

from __future__ import annotations

from collections.abc import Sequence

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


def hold_tracks(
    x: np.ndarray,
    labels: np.ndarray,
    track_ids: np.ndarray,
    apart: Sequence[tuple[int, int]] = (),
    *,
    new_clusters: bool = True,
) -> np.ndarray:
    """Labels where the faces kept from one track of a clip (equal `track_ids`, -1: a photo's
    face) are one person, and two tracks on screen together (the pairs in `apart`) never are.

    Each track takes the label most of its clustered faces have (a tie: the lowest). A track
    none of whose faces is clustered, or one that must leave the cluster of a track it was on
    screen with (of two, the one farther from the cluster's centre on average), becomes a
    cluster of its own with `new_clusters`, else is left alone (-1): its faces are one face
    followed, whatever the distances between them.
    """
    labels = labels.copy()
    tracked = np.flatnonzero(track_ids >= 0)
    if not len(tracked):
        return labels
    fresh = int(labels.max(initial=-1)) + 1

    def alone(members: np.ndarray) -> None:
        nonlocal fresh
        if new_clusters and len(members) > 1:
            labels[members] = fresh
            fresh += 1
        else:
            labels[members] = -1

    order = tracked[np.argsort(track_ids[tracked], kind="stable")]
    groups = np.split(order, np.flatnonzero(np.diff(track_ids[order])) + 1)
    members_of = {int(track_ids[g[0]]): g for g in groups}
    for g in groups:
        clustered = labels[g][labels[g] >= 0]
        if len(clustered):
            values, counts = np.unique(clustered, return_counts=True)
            labels[g] = values[np.argmax(counts)]
        else:
            alone(g)
    for a, b in apart:
        ga, gb = members_of.get(a), members_of.get(b)
        if ga is None or gb is None or labels[ga[0]] < 0 or labels[ga[0]] != labels[gb[0]]:
            continue
        centre = x[labels == labels[ga[0]]].mean(axis=0)
        far_a = np.linalg.norm(x[ga] - centre, axis=1).mean()
        far_b = np.linalg.norm(x[gb] - centre, axis=1).mean()
        alone(ga if far_a > far_b else gb)
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
