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
from scipy.spatial.distance import pdist, squareform
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

# Density, read from the library itself (docs/decisions/clustering.md):
# - a group closer than link_threshold on average becomes a person even above the size-aware
#   bar when nothing else is nearly as close to it: its nearest outside face is
#   ISOLATION_MARGIN farther than its own average distance (a family library, where strangers
#   are few and far); in a crowd of look-alikes it is not. The spread rules still hold, and
#   only the SPREAD_FACES + 1 nearest faces of each face are known, so a large group seldom
#   proves isolated: the rule serves people seen a few times;
# - so does a group of CLOSED_FACES+ faces that is its own neighbourhood: each of its faces
#   nearer to most of the others than to any face outside, though strangers are near (a dense
#   region: a person's photos are each other's nearest even where the absolute margin fails;
#   one photo of a person is often unlike a few of the others, seldom unlike most).
#   Two or three strangers are often each other's nearest; four seldom;
# - a face or small group joins an established cluster only within that cluster's own spread
#   plus JOIN_GAP: a tight person does not absorb the strangers around it in a dense region;
# - a face left alone joins the nearest cluster of SMALL_GROUP+ faces within link_threshold
#   when it is isolated from every other face in the same way.
ISOLATION_MARGIN = ATTACH_MARGIN
SPREAD_SAMPLE = 400  # faces a cluster's spread is measured on, at most (about)
SQUARE_MAX = 4_000  # components up to this size get their neighbours from one square matrix
JOIN_GAP = 0.15
SMALL_GROUP = 3
CLOSED_FACES = 4


def cluster_exact(x: np.ndarray, params: ClusterParams) -> np.ndarray:
    """Labels (0..k-1, -1 alone) of float32 descriptors `x`, before the one-face-per-photo rule."""
    labels = np.full(len(x), -1, dtype=np.int64)
    next_label = 0
    for members in _components(x, params.link_threshold):
        if len(members) < 2:
            continue
        for sub, beyond in _split_large(x, members, params):
            if len(sub) < 2:
                continue
            local = cluster_component(x[sub], params, beyond)
            for lab in np.unique(local[local >= 0]):
                labels[sub[local == lab]] = next_label
                next_label += 1
    return labels


def cluster_component(xs: np.ndarray, params: ClusterParams, beyond: float) -> np.ndarray:
    """Labels (-1: alone) of the faces of one component (2 or more; every face outside it is
    farther than `beyond` from all of them) by every rule of the exact path: the size-aware
    tree with its density rules, then the loners."""
    condensed = pdist(xs.astype(np.float64))
    near = Neighbours.of(xs, SPREAD_FACES + 1, beyond, condensed)
    local = attach_loners(xs, _average_linkage_cut(xs, params, near, condensed), params)
    return attach_isolated(xs, local, params, near)


def _components(x: np.ndarray, radius: float) -> list[np.ndarray]:
    """Connected components of the graph linking faces closer than `radius` (DBSCAN, min 1)."""
    comp = DBSCAN(eps=radius, min_samples=1, algorithm="brute", n_jobs=1).fit_predict(x)
    order = np.argsort(comp, kind="stable")
    bounds = np.flatnonzero(np.diff(comp[order])) + 1
    return [np.sort(g) for g in np.split(order, bounds)]


def _split_large(
    x: np.ndarray, members: np.ndarray, params: ClusterParams
) -> list[tuple[np.ndarray, float]]:
    """Break a component too large for the exact tree into tighter DBSCAN components, each
    with how far every face outside it is at least (the radius it was split at; 0 for the
    first MAX_EXACT faces of a group that would not split, the rest of which are left out)."""
    if len(members) <= MAX_EXACT:
        return [(members, params.link_threshold)]
    log.warning(
        "a group of %d similar faces is split before clustering (MAX_EXACT %d)",
        len(members),
        MAX_EXACT,
    )
    pending: list[tuple[np.ndarray, float]] = [(members, params.link_threshold)]
    done: list[tuple[np.ndarray, float]] = []
    while pending:
        group, radius = pending.pop()
        if len(group) <= MAX_EXACT:
            done.append((group, radius))
        elif radius <= 0.2 + 1e-9:
            done.append((group[:MAX_EXACT], 0.0))
        else:
            tighter = radius - 0.04
            pending.extend((group[sub], tighter) for sub in _components(x[group], tighter))
    return done


class Neighbours:
    """Each face's nearest other faces of a component (indices and distances, nearest first).
    Every face outside the component is farther than `beyond` from all of it."""

    def __init__(self, index: np.ndarray, dist: np.ndarray, beyond: float) -> None:
        self.index = index
        self.dist = dist
        self.beyond = beyond
        self.complete = index.shape[1] >= len(index) - 1  # every face of the component listed

    @classmethod
    def of(
        cls, x: np.ndarray, k: int, beyond: float, condensed: np.ndarray | None = None
    ) -> Neighbours:
        """The `k` nearest of each of 2 or more faces; from `condensed` distances (pdist) when
        given and small enough to square, else by blocks of matrix products."""
        n = len(x)
        k = min(k, n - 1)
        if condensed is not None and n <= SQUARE_MAX:
            square = squareform(condensed)
            np.fill_diagonal(square, np.inf)
            index, dist = _k_smallest(square, k)
            return cls(index, dist, beyond)
        index = np.zeros((n, k), dtype=np.int64)
        dist = np.zeros((n, k))
        x64 = x.astype(np.float64)
        sq = np.sum(x64**2, axis=1)
        step = max(1, (1 << 22) // n)  # ~32 MB of distances at a time
        for s in range(0, n, step):
            block = x64[s : s + step]
            d2 = sq[s : s + step, None] + sq[None, :] - 2.0 * block @ x64.T
            d2[np.arange(len(block)), np.arange(s, s + len(block))] = np.inf
            index[s : s + step], d2k = _k_smallest(d2, k)
            dist[s : s + step] = np.sqrt(np.maximum(d2k, 0.0))
        return cls(index, dist, beyond)

    def nearest_outside(self, face: int, members: set[int]) -> float:
        """The distance from `face` to its nearest face not in `members`: `beyond` when
        `members` and `face` are the whole component or every face of it is known, else a
        lower bound when every known neighbour is a member (the farthest one's)."""
        for j, d in zip(self.index[face], self.dist[face], strict=True):
            if j not in members:
                return float(d)
        whole = len(members) + (face not in members) >= len(self.index)
        if self.complete or whole or not len(self.dist[face]):
            return self.beyond
        return float(self.dist[face][-1])

    def closed(self, x: np.ndarray, members: set[int]) -> bool:
        """True if each face of the group `members` (rows of `x`, the component) is nearer to
        most of its fellow members than to any face outside: nearer to its median fellow than
        to its nearest stranger, so that the group is the core of each of its faces' own
        neighbourhood. Stops at the first face for which it is not; a face whose known
        neighbours are all members counts its farthest known one as the nearest outside (a
        lower bound), so a group much larger than the neighbours kept is not proven closed."""
        ids = sorted(members)
        group = x[ids].astype(np.float64)
        for row, face in enumerate(ids):
            fellows = np.delete(np.sqrt(((group - group[row]) ** 2).sum(axis=1)), row)
            if self.nearest_outside(face, members) <= float(np.median(fellows)):
                return False
        return True

    def isolated(self, members: set[int], at: float) -> bool:
        """True if no face outside the group `members` is within `at` of any of them (stops at
        the first that is: in a crowd that is one of the first faces looked at)."""
        return all(self.nearest_outside(i, members) >= at for i in members)


def _k_smallest(d: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of each row's `k` smallest entries, smallest first."""
    part = np.argpartition(d, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(d, part, axis=1)
    order = np.argsort(values, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(values, order, axis=1)


def _average_linkage_cut(
    x: np.ndarray,
    params: ClusterParams,
    near: Neighbours | None = None,
    condensed: np.ndarray | None = None,
) -> np.ndarray:
    """Average-linkage tree of `x`, cut where a merge is farther than merge_threshold allows,
    unless the merged group is isolated or closed (with `near`) and nothing says it is two
    people."""
    n = len(x)
    tree = linkage(
        condensed if condensed is not None else pdist(x.astype(np.float64)), method="average"
    )
    size = np.ones(2 * n - 1, dtype=np.int64)
    accepted = np.zeros(2 * n - 1, dtype=bool)
    accepted[:n] = True
    parent = np.full(2 * n - 1, -1, dtype=np.int64)
    pair_sum = np.zeros(2 * n - 1)  # sum of the distances between a node's faces
    # A group refused only by the size-aware bar may still become a person as it grows, if it
    # turns out isolated: until then it is pending.
    pending = np.zeros(2 * n - 1, dtype=bool)
    for k, (a, b, height, count) in enumerate(tree):
        a, b, node = int(a), int(b), n + k
        size[node] = int(count)
        parent[a] = parent[b] = node
        # The tree's height is the average distance between a's and b's faces.
        pair_sum[node] = pair_sum[a] + pair_sum[b] + height * size[a] * size[b]
        small, big = (a, b) if size[a] <= size[b] else (b, a)
        # The spread rules say "two people" whatever else holds: look-alikes (two groups
        # with a gap between them), or a face too far from a person's own spread.
        fits = True
        if size[small] >= SPREAD_FACES:
            fits = not separated(
                height, _spread(pair_sum, size, a), _spread(pair_sum, size, b), params
            )
        elif size[big] >= SPREAD_FACES:
            fits = height <= _spread(pair_sum, size, big) + JOIN_GAP
        # A rejected merge blocks every merge above it: clusters are whole subtrees.
        both = bool(accepted[a] and accepted[b])
        ok = both and fits and height <= merge_threshold(int(size[big]), params)
        growing = bool((accepted[a] or pending[a]) and (accepted[b] or pending[b]))
        if not ok and growing and fits and height <= params.link_threshold and near is not None:
            members = _leaves(tree, node, n)
            ok = near.isolated(members, isolated_at(height, params)) or (
                size[small] >= 2 and len(members) >= CLOSED_FACES and near.closed(x, members)
            )
            pending[node] = not ok
        accepted[node] = ok
    # Each leaf's cluster is its highest accepted ancestor; a pending group inside an accepted
    # one belongs to it (parents come before their children, top down).
    top = np.arange(2 * n - 1)
    for node in range(2 * n - 2, -1, -1):
        p = parent[node]
        if p >= 0 and accepted[p]:
            accepted[node] = True
            top[node] = top[p]
    roots = top[:n]
    _, inverse, counts = np.unique(roots, return_inverse=True, return_counts=True)
    return np.where(counts[inverse] > 1, inverse, -1).astype(np.int64)


def _leaves(tree: np.ndarray, node: int, n: int) -> set[int]:
    """The faces (leaves) under `node` of a scipy linkage `tree` over `n` faces."""
    out: set[int] = set()
    stack = [node]
    while stack:
        i = stack.pop()
        if i < n:
            out.add(i)
        else:
            a, b = tree[i - n, :2]
            stack += [int(a), int(b)]
    return out


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
    limit = np.minimum(
        [merge_threshold(int(c), params) for c in counts], joining_limits(x, labels, ids)
    )
    order = np.argsort(average, axis=1, kind="stable")
    rows = np.arange(len(alone))
    nearest = average[rows, order[:, 0]]
    runner_up = average[rows, order[:, 1]] if len(ids) > 1 else np.full(len(alone), np.inf)
    joins = (nearest <= limit[order[:, 0]]) & (runner_up - nearest >= ATTACH_MARGIN)
    labels[alone[joins]] = ids[order[joins, 0]]
    return labels


def attach_isolated(
    x: np.ndarray, labels: np.ndarray, params: ClusterParams, near: Neighbours
) -> np.ndarray:
    """Give a face left alone to the nearest cluster of SMALL_GROUP+ faces (by average
    distance, within link_threshold) when no face outside that cluster is nearly as close to
    it: in a sparse library the one person it can belong to. Judged against the clusters as
    they are: the result does not depend on order."""
    alone = np.flatnonzero(labels < 0)
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    ids = ids[counts >= SMALL_GROUP]
    if not len(alone) or not len(ids):
        return labels
    average = np.empty((len(alone), len(ids)))
    for j, cluster in enumerate(ids):
        average[:, j] = mean_distances(x[alone], x[labels == cluster])
    best = np.argmin(average, axis=1)
    limit = np.minimum(params.link_threshold, joining_limits(x, labels, ids))
    members = {int(c): set(np.flatnonzero(labels == c).tolist()) for c in ids}
    out: np.ndarray = labels.copy()
    for row, face in enumerate(alone):
        cluster, avg = int(ids[best[row]]), float(average[row, best[row]])
        if avg > limit[best[row]]:
            continue
        if near.nearest_outside(int(face), members[cluster]) >= isolated_at(avg, params):
            out[face] = cluster
    return out


def isolated_at(distance: float, params: ClusterParams) -> float:
    """How far the nearest other face must be for a group `distance` apart (on average) to
    count as isolated: ISOLATION_MARGIN farther, or beyond dlib's line at least."""
    return min(distance + ISOLATION_MARGIN, params.link_threshold)


def joining_limits(x: np.ndarray, labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """For each cluster in `ids`, the farthest (average distance) a face may be to join it:
    its own spread plus JOIN_GAP once it has SPREAD_FACES faces to trust a spread from,
    no limit below that."""
    out = np.full(len(ids), np.inf)
    for j, cluster in enumerate(ids):
        faces = x[labels == cluster]
        if len(faces) >= SPREAD_FACES:
            # An evenly spaced sample measures a large cluster's spread as well as all of it.
            faces = faces[:: max(1, len(faces) // SPREAD_SAMPLE)]
            out[j] = float(pdist(faces.astype(np.float64)).mean()) + JOIN_GAP
    return out


def _spread(pair_sum: np.ndarray, size: np.ndarray, node: int) -> float:
    """Average distance between the faces of `node` (2 or more faces)."""
    n = float(size[node])
    return float(pair_sum[node] / (n * (n - 1) / 2))
