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

DBSCAN still does a job it is exact at: with eps = link_threshold and min_samples = 1 its clusters
are the connected components of the "closer than link_threshold" graph, and no average-linkage
merge at or below link_threshold can cross two of them. Each component is clustered on its own,
so the quadratic step only ever sees one neighbourhood of faces.

Labels are 0..k-1 per cluster and -1 for a face left alone (noise).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import linkage
from scipy.spatial.distance import cdist, pdist
from sklearn.cluster import DBSCAN

log = logging.getLogger(__name__)

# Above this many faces in one component the exact tree (n²/2 distances) is not built at once;
# the component is first split by DBSCAN at tighter radii. 12k faces = 576 MB of distances.
MAX_EXACT = 12_000
# Above this many faces in all, the sparse path of faced/cluster_large.py is taken.
LARGE = 20_000


# A face left alone joins an established cluster (this many faces or more) when it passes the
# tree's own test against it and no other established cluster is nearly as close.
ATTACH_MIN_FACES = 5
ATTACH_MARGIN = 0.05

# A group's spread is trusted from this many faces on: the distance between two or three faces
# says little, and copies of one photo (bursts, duplicates) make a small group look tight.
SPREAD_FACES = 5


@dataclass(frozen=True)
class ClusterParams:
    """Thresholds in dlib descriptor distance (euclidean; 0.6 is dlib's same-person line)."""

    pair_threshold: float = 0.48
    link_threshold: float = 0.6
    one_face_per_photo: bool = True
    separation_gap: float = 0.12


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


def cluster_faces(
    encodings: np.ndarray, image_ids: np.ndarray, params: ClusterParams
) -> np.ndarray:
    """Cluster (n, 128) descriptors; `image_ids` says which faces share a photo.

    Returns int64 labels (n,), -1 for faces that belong to no cluster. Deterministic: the same
    input gives the same labels.
    """
    n = len(encodings)
    labels = np.full(n, -1, dtype=np.int64)
    if n < 2:
        return labels
    if n > LARGE:
        from faced.cluster_large import cluster_large  # builds on this module

        return cluster_large(encodings, image_ids, params)
    x = np.ascontiguousarray(encodings, dtype=np.float32)
    next_label = 0
    for members in _components(x, params.link_threshold):
        if len(members) < 2:
            continue
        for sub in _split_large(x, members, params):
            if len(sub) < 2:
                continue
            local = attach_loners(x[sub], _average_linkage_cut(x[sub], params), params)
            for lab in np.unique(local[local >= 0]):
                labels[sub[local == lab]] = next_label
                next_label += 1
    if params.one_face_per_photo:
        labels = one_face_per_photo(x, np.asarray(image_ids), labels)
    return renumber(labels)


def _components(x: np.ndarray, radius: float) -> list[np.ndarray]:
    """Connected components of the graph linking faces closer than `radius` (DBSCAN, min 1)."""
    comp = DBSCAN(eps=radius, min_samples=1, algorithm="brute", n_jobs=1).fit_predict(x)
    order = np.argsort(comp, kind="stable")
    bounds = np.flatnonzero(np.diff(comp[order])) + 1
    return [np.sort(g) for g in np.split(order, bounds)]


def _split_large(x: np.ndarray, members: np.ndarray, params: ClusterParams) -> list[np.ndarray]:
    """Break a component too large for the exact tree into tighter DBSCAN components."""
    if len(members) <= MAX_EXACT:
        return [members]
    log.warning(
        "a group of %d similar faces is split before clustering (MAX_EXACT %d)",
        len(members),
        MAX_EXACT,
    )
    radius = params.link_threshold
    pending, done = [members], []
    while pending:
        group = pending.pop()
        if len(group) <= MAX_EXACT or radius <= 0.2:
            done.append(group[:MAX_EXACT] if len(group) > MAX_EXACT else group)
            continue
        radius -= 0.04
        pending.extend(group[sub] for sub in _components(x[group], radius))
    return done


def _average_linkage_cut(x: np.ndarray, params: ClusterParams) -> np.ndarray:
    """Average-linkage tree of `x`, cut where a merge is farther than merge_threshold allows."""
    n = len(x)
    tree = linkage(pdist(x.astype(np.float64)), method="average")
    size = np.ones(2 * n - 1, dtype=np.int64)
    accepted = np.zeros(2 * n - 1, dtype=bool)
    accepted[:n] = True
    parent = np.full(2 * n - 1, -1, dtype=np.int64)
    pair_sum = np.zeros(2 * n - 1)  # sum of the distances between a node's faces
    for k, (a, b, height, count) in enumerate(tree):
        a, b, node = int(a), int(b), n + k
        size[node] = int(count)
        parent[a] = parent[b] = node
        # The tree's height is the average distance between a's and b's faces.
        pair_sum[node] = pair_sum[a] + pair_sum[b] + height * size[a] * size[b]
        limit = merge_threshold(int(max(size[a], size[b])), params)
        # A rejected merge blocks every merge above it: clusters are whole subtrees.
        ok = bool(accepted[a] and accepted[b] and height <= limit)
        if ok and min(size[a], size[b]) >= SPREAD_FACES:
            ok = not separated(
                height, _spread(pair_sum, size, a), _spread(pair_sum, size, b), params
            )
        accepted[node] = ok
    # Each leaf's cluster is its highest accepted ancestor.
    top = np.arange(2 * n - 1)
    for node in range(2 * n - 2, -1, -1):
        p = parent[node]
        if p >= 0 and accepted[p]:
            top[node] = top[p]
    roots = top[:n]
    _, inverse, counts = np.unique(roots, return_inverse=True, return_counts=True)
    return np.where(counts[inverse] > 1, inverse, -1).astype(np.int64)


def attach_loners(x: np.ndarray, labels: np.ndarray, params: ClusterParams) -> np.ndarray:
    """Give faces left alone (-1) to the established cluster they belong with.

    The tree merges each face with its nearest neighbours first. When that is a stranger
    too far away for a pair, the merge is refused and, clusters being whole subtrees, the face
    can join nothing above it, even a person it is close to on average. So afterwards each
    face left alone joins the cluster of ATTACH_MIN_FACES+ faces it is nearest to on average,
    if that average passes merge_threshold for the cluster's size and the next such cluster
    is at least ATTACH_MARGIN farther. Every face is judged against the clusters as the tree
    left them: the result does not depend on order.
    """
    labels = labels.copy()
    alone = np.flatnonzero(labels < 0)
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    established = counts >= ATTACH_MIN_FACES
    ids, counts = ids[established], counts[established]
    if not len(alone) or not len(ids):
        return labels
    average = np.empty((len(alone), len(ids)))
    for j, cluster in enumerate(ids):
        average[:, j] = mean_distances(x[alone], x[labels == cluster])
    limit = np.array([merge_threshold(int(c), params) for c in counts])
    order = np.argsort(average, axis=1, kind="stable")
    rows = np.arange(len(alone))
    nearest = average[rows, order[:, 0]]
    runner_up = average[rows, order[:, 1]] if len(ids) > 1 else np.full(len(alone), np.inf)
    joins = (nearest <= limit[order[:, 0]]) & (runner_up - nearest >= ATTACH_MARGIN)
    labels[alone[joins]] = ids[order[joins, 0]]
    return labels


def mean_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each row of `a`, its average euclidean distance to the rows of `b` (chunked)."""
    out = np.empty(len(a))
    step = max(1, (1 << 22) // max(len(b), 1))  # ~32 MB of distances at a time
    for s in range(0, len(a), step):
        out[s : s + step] = cdist(a[s : s + step], b).mean(axis=1)
    return out


def _spread(pair_sum: np.ndarray, size: np.ndarray, node: int) -> float:
    """Average distance between the faces of `node` (2 or more faces)."""
    n = float(size[node])
    return float(pair_sum[node] / (n * (n - 1) / 2))


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
