"""The exact clustering path: average-linkage trees, one neighbourhood of faces at a time.

DBSCAN does a job it is exact at: with eps = link_threshold and min_samples = 1 its clusters
are the connected components of the "closer than link_threshold" graph, and no average-linkage
merge at or below link_threshold can cross two of them. Each component is clustered on its own,
so the quadratic step only ever sees one neighbourhood of faces.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.cluster.hierarchy import linkage
from scipy.spatial.distance import pdist
from sklearn.cluster import DBSCAN

from faced.people.labels import mean_distances
from faced.people.params import SPREAD_FACES, ClusterParams, merge_threshold, separated

log = logging.getLogger(__name__)

# Above this many faces in one component the exact tree (n²/2 distances) is not built at once;
# the component is first split by DBSCAN at tighter radii. 12k faces = 576 MB of distances.
MAX_EXACT = 12_000

# A face left alone joins an established cluster (this many faces or more) when it passes the
# tree's own test against it and no other established cluster is nearly as close.
ATTACH_MIN_FACES = 5
ATTACH_MARGIN = 0.05


def cluster_exact(x: np.ndarray, params: ClusterParams) -> np.ndarray:
    """Labels (0..k-1, -1 alone) of float32 descriptors `x`, before the one-face-per-photo rule."""
    labels = np.full(len(x), -1, dtype=np.int64)
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
    return labels


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


def _spread(pair_sum: np.ndarray, size: np.ndarray, node: int) -> float:
    """Average distance between the faces of `node` (2 or more faces)."""
    n = float(size[node])
    return float(pair_sum[node] / (n * (n - 1) / 2))
