"""Faces to clusters: a pure function over descriptor arrays.

Why not DBSCAN alone: DBSCAN is single linkage at heart; one chain of near faces joins two
people, and the bigger the library the more such chains. Average linkage does not chain, but a
fixed threshold trades lone strangers pairing up (low threshold too high) against big clusters
splitting (threshold too low). So faced cuts the average-linkage tree with a threshold that
depends on size: two lone faces must be within `pair_threshold` of each other to become a
person, while a face or group joining an established cluster may be as far as
`link_threshold` on average. The step between them shrinks as 1/sqrt(size), the rate at which
an average over more faces becomes a steadier estimate.

Two refinements: two groups of 5+ faces with a clear gap between them stay apart even under
that threshold (`separated`: look-alikes), and a face the tree leaves alone because its
nearest neighbour was a stranger still joins the person it is close to on average
(`attach_loners`).

Up to LARGE faces the exact path (faced.people.exact) clusters; above, the sparse path
(faced.people.sparse) applies the same rule on a nearest-neighbour graph.

Labels are 0..k-1 per cluster and -1 for a face left alone (noise).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from faced.people.exact import cluster_exact
from faced.people.labels import hold_tracks, one_face_per_photo, renumber
from faced.people.params import ClusterParams
from faced.people.sparse import cluster_large

# Above this many faces in all, the sparse path is taken.
LARGE = 20_000


def cluster_faces(
    encodings: np.ndarray,
    image_ids: np.ndarray,
    params: ClusterParams,
    weak: np.ndarray | None = None,
    track_ids: np.ndarray | None = None,
    apart: Sequence[tuple[int, int]] = (),
) -> np.ndarray:
    """Cluster (n, 128) descriptors; `image_ids` says which faces share a photo; `weak` marks
    the faces found only below the detector's own line; `track_ids` which faces were kept from
    one track of a clip (-1: none), and `apart` which tracks were on screen together.

    A track is one face followed from frame to frame, so its faces are one person, and two
    tracks seen together are two (labels.hold_tracks), whatever the distances say.

    A cluster that is at least half weak detections is no person: its weak faces are let go
    (the strong ones stay, and `min_faces` decides). The detector's score is its own
    confidence that a box is a face, and non-faces (a blob, an ear, a pattern) have descriptors
    that lie close together: a group the detector itself mostly doubted is not published. Weak
    faces otherwise cluster like any other: keeping them out of the tree altogether lost faces
    of real people on the shared sets (docs/decisions/clustering.md).

    Returns int64 labels (n,), -1 for faces that belong to no cluster. Deterministic: the same
    input gives the same labels.
    """
    labels = _cluster(encodings, np.asarray(image_ids), params)
    if track_ids is not None and (track_ids >= 0).any():
        x = np.asarray(encodings, dtype=np.float32)
        labels = renumber(hold_tracks(x, labels, track_ids, apart))
    if weak is None or not weak.any():
        return labels
    # A cluster mostly of weak detections is no person: its weak faces are let go.
    ids, inverse = np.unique(labels, return_inverse=True)
    weak_n = np.bincount(inverse, weights=weak, minlength=len(ids))
    total = np.bincount(inverse, minlength=len(ids))
    junk = (ids >= 0) & (2 * weak_n >= total)
    labels = np.where(junk[inverse] & weak, -1, labels)
    return renumber(labels)


def _cluster(encodings: np.ndarray, image_ids: np.ndarray, params: ClusterParams) -> np.ndarray:
    n = len(encodings)
    if n < 2:
        return np.full(n, -1, dtype=np.int64)
    if n > LARGE:
        return cluster_large(encodings, image_ids, params)
    x = np.ascontiguousarray(encodings, dtype=np.float32)
    labels = cluster_exact(x, params)
    if params.one_face_per_photo:
        labels = one_face_per_photo(x, image_ids, labels)
    return renumber(labels)
