"""Clustering a library too large for the exact tree: a pure function, same rule, sparse.

The exact path (faced/cluster.py) builds an average-linkage tree over all pairs in a group, which
is quadratic. Here:

1. A k-nearest-neighbour graph (faiss, an inverted-file index) says which faces could ever be
   joined: a merge at or below `link_threshold` needs faces that close.
2. Clusters are merged by average linkage on squared distances, which, unlike the plain
   average, is exact from three numbers per cluster (size, sum of vectors, sum of squared
   norms): the mean squared distance between A and B is |mean A - mean B|^2 + var A + var B. No
   pairwise matrix is ever built.
3. The merge rule is the exact path's: the root mean square distance must be within
   merge_threshold(size of the larger cluster), and two groups must not be separated (their
   distance beyond the looser one's own spread by more than separation_gap). Merges happen in
   rounds: mutual best partners merge, and clusters whose best partner is one of them join
   in the same round (one level only, so nothing chains through a round). A face's best
   partner is chosen among the merges allowed, so a refused stranger never blocks it from
   a cluster it may join: the exact path's attach_loners has nothing left to do here.

The graph's small components (up to SMALL_COMPONENT faces) skip the rounds: each is clustered
by the exact path's own rules, density rules included, as in a small library.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from faced.people.exact import cluster_component
from faced.people.labels import one_face_per_photo, renumber
from faced.people.params import SPREAD_FACES, ClusterParams

NEIGHBOURS = 10
EXACT_KNN = 20_000  # up to this many faces the neighbours are found exactly
PCA_DIMS = 32
# A component of the neighbour graph (faces linked within link_threshold) up to this many
# faces is clustered by the exact path's rules (faced.people.exact.cluster_component): people
# seen a few times, far from everyone, are such components, and the density rules are made
# for them. Each costs a tree of its own; more of them than this would push a re-cluster of
# a million faces past its budget (docs/decisions/clustering.md).
SMALL_COMPONENT = 50


def knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and distances of each face's `k` nearest other faces (-1 where none)."""
    import faiss  # imported here: only large libraries need it

    n, dim = x.shape
    if n <= EXACT_KNN:
        index: Any = faiss.IndexFlatL2(dim)
        space = x
    else:
        # Candidates are searched in a 32-d PCA projection (4x cheaper, and the clustering
        # it leads to scores as with all 128 dimensions: docs/decisions/clustering.md), in inverted
        # lists over 4*sqrt(n) k-means cells, 6 searched per face. Distances are then
        # recomputed exactly in 128-d for the pairs found.
        rng = np.random.default_rng(0)
        pca = faiss.PCAMatrix(dim, PCA_DIMS)
        pca.train(x[rng.choice(n, min(n, 100_000), replace=False)])
        space = pca.apply(x)
        nlist = int(4 * np.sqrt(n))
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(PCA_DIMS), PCA_DIMS, nlist)
        index.cp.niter = 10
        index.cp.min_points_per_centroid = 20  # the sample above (faiss would warn below 39)
        index.train(space[rng.choice(n, min(n, 20 * nlist), replace=False)])
        index.nprobe = 6
    index.add(space)
    _, ids = index.search(space, k + 1)
    del index, space
    # Drop each face itself (not always first: duplicates tie at distance 0).
    own = ids == np.arange(n)[:, None]
    keep = np.where(own.any(axis=1)[:, None], ~own, np.arange(k + 1)[None, :] < k)
    ids = ids[keep].reshape(n, k)
    dist = np.empty((n, k), dtype=np.float32)
    for s in range(0, n, 1 << 13):  # exact distances, in chunks of ~40 MB
        rows = slice(s, s + (1 << 13))
        diff = x[rows, None, :] - x[np.maximum(ids[rows], 0)]
        dist[rows] = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    dist[ids < 0] = np.inf
    return ids, dist


def cluster_large(
    x: np.ndarray, photo_ids: np.ndarray, params: ClusterParams, k: int = NEIGHBOURS
) -> np.ndarray:
    """Labels (-1: alone) for a large library; see the module docstring."""
    n = len(x)
    x = np.ascontiguousarray(x, dtype=np.float32)
    ids, dist = knn(x, k)
    # int32 indices and float32 numbers: a million faces must fit a small box's memory.
    a = np.repeat(np.arange(n, dtype=np.int32), k)
    b = ids.ravel().astype(np.int32)
    # A merge needs a root mean square distance within link_threshold, and that is never below
    # the closest pair: longer edges can never matter.
    near = (b >= 0) & (dist.ravel() <= params.link_threshold)
    a, b, d = a[near], b[near], dist.ravel()[near]
    del ids, dist, near
    # The graph's small components take the exact path, density rules and all; the sparse
    # rounds below see only the faces of the large ones.
    small, exact = _exact_small(x, a, b, params)
    keep = ~small[a]
    a, b, d = a[keep], b[keep], d[keep]
    del keep
    label = np.arange(n, dtype=np.int32)
    size = np.ones(n)
    sq_sum = np.einsum("ij,ij->i", x, x).astype(np.float64)
    mean = _Means(x)
    var = np.zeros(n)  # per-cluster mean squared distance to the mean
    changed = np.ones(n, dtype=bool)  # clusters whose numbers moved since the last round
    known_keys = np.empty(0, dtype=np.int64)
    known_rms = np.empty(0)
    first = True
    while True:
        if first:  # two single faces are exactly their distance apart: no arithmetic
            keys = np.minimum(a, b).astype(np.int64) * n + np.maximum(a, b)
            order = np.argsort(keys, kind="stable")
            keys = keys[order]
            keep = np.ones(len(keys), dtype=bool)
            keep[1:] = keys[1:] != keys[:-1]  # both directions of an edge: same distance
            keys, rms = keys[keep], d[order][keep].astype(np.float64)
            del order, keep
            first = False
        else:
            ca, cb = label[a], label[b]
            keys = np.minimum(ca, cb).astype(np.int64) * n + np.maximum(ca, cb)
            del ca, cb
            keys = _distinct(keys)
            rms = np.empty(len(keys))
            p, q = (keys // n).astype(np.int32), (keys % n).astype(np.int32)
            fresh = changed[p] | changed[q]
            at = np.searchsorted(known_keys, keys[~fresh])
            rms[~fresh] = known_rms[at]
            rms[fresh] = _rms(p[fresh], q[fresh], mean, var)
        if len(keys) == 0:
            break
        known_keys, known_rms = keys, rms
        p, q = (keys // n).astype(np.int32), (keys % n).astype(np.int32)
        limit = params.link_threshold - (params.link_threshold - params.pair_threshold) / np.sqrt(
            np.maximum(size[p], size[q])
        )
        ok = rms <= limit
        # The exact path's separation rule, in root-mean-square terms: a group's spread is
        # the RMS distance between its own faces, 2s/(s-1) times its variance, from moments.
        both = ok & (size[p] >= SPREAD_FACES) & (size[q] >= SPREAD_FACES)
        if both.any():
            pb, qb = p[both], q[both]
            spread = np.maximum(_spread(size[pb], var[pb]), _spread(size[qb], var[qb]))
            ok[both] = rms[both] <= spread + params.separation_gap
        if not ok.any():
            break
        best = _best_partner(p[ok], q[ok], rms[ok], n)
        merges = _merge_round(best)
        if not merges.any():
            break
        # Each merging cluster's root: its partner, or the partner's own partner when the
        # partner is the higher of a mutual pair (which merges into the lower).
        targets = np.arange(n, dtype=np.int32)
        targets[merges] = best[merges]
        roots = np.where(merges[targets], best[targets], targets).astype(np.int32)
        moved = np.flatnonzero(roots != np.arange(n))
        grown = _distinct(roots[moved])
        # New means from the size-weighted old ones (no per-cluster sums kept: memory).
        sums = mean.get(grown)
        sums *= size[grown, None].astype(np.float32)
        into = np.searchsorted(grown, roots[moved])
        for s in range(0, len(moved), 1 << 16):
            part = moved[s : s + (1 << 16)]
            weighted = mean.get(part) * size[part, None].astype(np.float32)
            np.add.at(sums, into[s : s + (1 << 16)], weighted)
        np.add.at(size, roots[moved], size[moved])
        np.add.at(sq_sum, roots[moved], sq_sum[moved])
        size[moved] = 0
        sums /= size[grown, None].astype(np.float32)
        mean.set(grown, sums)
        del sums
        m64 = mean.get(grown).astype(np.float64)
        var[grown] = sq_sum[grown] / size[grown] - np.einsum("ij,ij->i", m64, m64)
        changed[:] = False
        changed[grown] = True
        label = roots[label]
        # Edges inside a cluster are done with.
        inside = label[a] == label[b]
        a, b, d = a[~inside], b[~inside], d[~inside]
    labels = label.astype(np.int64)
    counts = np.bincount(labels, minlength=n)
    labels[counts[labels] < 2] = -1
    labels[small] = exact[small]
    if params.one_face_per_photo:
        labels = one_face_per_photo(x, np.asarray(photo_ids), labels)
    return renumber(labels)


def _exact_small(
    x: np.ndarray, a: np.ndarray, b: np.ndarray, params: ClusterParams
) -> tuple[np.ndarray, np.ndarray]:
    """The faces of the components of the graph `a`-`b` (edges within link_threshold) of 2 to
    SMALL_COMPONENT faces, clustered by the exact path's rules: (a mask of those faces, their
    labels: each cluster's lowest face index, -1 alone)."""
    n = len(x)
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    sizes = np.bincount(comp)
    small = (sizes[comp] >= 2) & (sizes[comp] <= SMALL_COMPONENT)
    out = np.full(n, -1, dtype=np.int64)
    # Two faces alone within link_threshold of each other are isolated, and so one person by
    # the exact rules, whatever their distance: no tree needed.
    pairs = small & (sizes[comp] == 2)
    first = np.full(len(sizes), n, dtype=np.int64)
    np.minimum.at(first, comp[pairs], np.flatnonzero(pairs))
    out[pairs] = first[comp[pairs]]
    faces = np.flatnonzero(small & ~pairs)
    order = faces[np.argsort(comp[faces], kind="stable")]
    for members in np.split(order, np.flatnonzero(np.diff(comp[order])) + 1):
        if not len(members):
            continue
        local = cluster_component(x[members], params, params.link_threshold)
        for lab in np.unique(local[local >= 0]):
            group = members[local == lab]
            out[group] = group.min()
    return small, out


class _Means:
    """Per-cluster means, stored only for clusters of two or more faces (a single face's mean
    is the face itself), so a million faces need no second copy of their vectors."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = x
        self.slot = np.full(len(x), -1, dtype=np.int64)
        # A cluster gets a row when it first grows, and every growth ends another cluster for
        # good: fewer than n rows ever. np.empty reserves without touching memory; only the
        # rows written count towards the resident set.
        self.rows = np.empty((len(x), x.shape[1]), dtype=np.float32)
        self.used = 0

    def get(self, ids: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.x[ids]
        slots = self.slot[ids]
        has = slots >= 0
        out[has] = self.rows[slots[has]]
        return out

    def set(self, ids: np.ndarray, values: np.ndarray) -> None:
        new = self.slot[ids] < 0
        count = int(new.sum())
        self.slot[ids[new]] = self.used + np.arange(count)
        self.used += count
        self.rows[self.slot[ids]] = values


def _distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values, sorted: np.unique by sorting. NumPy 2.3+ first builds a hash
    table for a plain np.unique call, which on millions of mostly distinct integers takes
    seconds where a sort takes a tenth of one (docs/decisions/performance.md)."""
    ordered: np.ndarray = np.sort(values)
    if not len(ordered):
        return ordered
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    out: np.ndarray = ordered[keep]
    return out


def _rms(p: np.ndarray, q: np.ndarray, mean: _Means, var: np.ndarray) -> np.ndarray:
    """Root mean squared distance between the faces of clusters p and q (chunked)."""
    out = np.empty(len(p))
    for s in range(0, len(p), 1 << 15):
        pp, qq = p[s : s + (1 << 15)], q[s : s + (1 << 15)]
        diff = mean.get(pp) - mean.get(qq)
        sq = np.einsum("ij,ij->i", diff, diff).astype(np.float64) + var[pp] + var[qq]
        out[s : s + len(pp)] = np.sqrt(np.maximum(sq, 0.0))
    return out


def _spread(size: np.ndarray, var: np.ndarray) -> np.ndarray:
    """RMS distance between the faces of clusters of `size` (2+) faces and variance `var`."""
    spread: np.ndarray = np.sqrt(2 * size / (size - 1) * np.maximum(var, 0.0))
    return spread


def _best_partner(p: np.ndarray, q: np.ndarray, rms: np.ndarray, n: int) -> np.ndarray:
    """For each cluster, its closest allowed partner (-1: none); ties go to the lower id."""
    src = np.concatenate([p, q])
    dst = np.concatenate([q, p])
    d = np.concatenate([rms, rms])
    nearest = np.full(n, np.inf)
    np.minimum.at(nearest, src, d)
    at_min = d == nearest[src]
    best = np.full(n, n, dtype=np.int64)  # n: no partner yet
    np.minimum.at(best, src[at_min], dst[at_min])
    best[best == n] = -1
    return best


def _merge_round(best: np.ndarray) -> np.ndarray:
    """Which clusters merge into their best partner this round.

    Mutual best partners merge; a cluster whose best partner is in such a pair joins it. The
    rest wait: a cluster never follows a partner that is itself joining someone else.
    """
    has = best >= 0
    partner_best = np.where(has, best[np.maximum(best, 0)], -1)
    mutual = has & (partner_best == np.arange(len(best)))
    root = np.zeros(len(best), dtype=bool)
    root[mutual] = True
    joins = has & ~mutual & root[np.maximum(best, 0)]
    # Of a mutual pair, the higher id merges into the lower.
    merges: np.ndarray = (mutual & (best < np.arange(len(best)))) | joins
    return merges
