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
   merge_threshold(size of the larger cluster). Merges happen in rounds: mutual best partners
   merge, and clusters whose best partner is one of them join in the same round (one level
   only, so nothing chains through a round).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from faced.cluster import ClusterParams, one_face_per_photo, renumber

NEIGHBOURS = 10
EXACT_KNN = 20_000  # up to this many faces the neighbours are found exactly


def knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and distances of each face's `k` nearest other faces (-1 where none)."""
    import faiss  # imported here: only large libraries need it

    n, dim = x.shape
    if n <= EXACT_KNN:
        index: Any = faiss.IndexFlatL2(dim)
    else:
        # Inverted lists over 4*sqrt(n) k-means cells, 6 searched per face: ~80% of the true
        # 10 nearest found, which is plenty to decide who belongs together.
        nlist = int(4 * np.sqrt(n))
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, nlist)
        rng = np.random.default_rng(0)
        index.train(x[rng.choice(n, min(n, 20 * nlist), replace=False)])
        index.nprobe = 6
    index.add(x)
    d2, ids = index.search(x, k + 1)
    # Drop each face itself (not always first: duplicates tie at distance 0).
    own = ids == np.arange(n)[:, None]
    keep = np.where(own.any(axis=1)[:, None], ~own, np.arange(k + 1)[None, :] < k)
    ids = ids[keep].reshape(n, k)
    dist = np.sqrt(np.maximum(d2[keep].reshape(n, k), 0.0))
    return ids, dist


def cluster_large(
    x: np.ndarray, photo_ids: np.ndarray, params: ClusterParams, k: int = NEIGHBOURS
) -> np.ndarray:
    """Labels (-1: alone) for a large library; see the module docstring."""
    n = len(x)
    x = np.ascontiguousarray(x, dtype=np.float32)
    ids, dist = knn(x, k)
    a = np.repeat(np.arange(n), k)
    b = ids.ravel()
    near = (b >= 0) & (dist.ravel() <= params.link_threshold + 0.1)
    a, b = a[near], b[near]

    d = dist.ravel()[near]
    label = np.arange(n)
    size = np.ones(n)
    vec_sum = x.copy()  # float32: 1M faces must fit a small box's memory
    sq_sum = np.einsum("ij,ij->i", x, x).astype(np.float64)
    mean = x.copy()  # per-cluster mean, float32
    var = np.zeros(n)  # per-cluster mean squared distance to the mean
    changed = np.ones(n, dtype=bool)  # clusters whose numbers moved since the last round
    known_keys = np.empty(0, dtype=np.int64)
    known_rms = np.empty(0)
    first = True
    while True:
        ca, cb = label[a], label[b]
        lo, hi = np.minimum(ca, cb), np.maximum(ca, cb)
        keys = lo[lo != hi].astype(np.int64) * n + hi[lo != hi]
        if first:  # two single faces are exactly their distance apart: no arithmetic
            order = np.lexsort((d[lo != hi], keys))
            keys, d_sorted = keys[order], d[lo != hi][order]
            keep = np.ones(len(keys), dtype=bool)
            keep[1:] = keys[1:] != keys[:-1]
            keys, rms = keys[keep], d_sorted[keep].astype(np.float64)
            first = False
        else:
            keys = np.unique(keys)
            rms = np.empty(len(keys))
            p, q = keys // n, keys % n
            fresh = changed[p] | changed[q]
            at = np.searchsorted(known_keys, keys[~fresh])
            rms[~fresh] = known_rms[at]
            rms[fresh] = _rms(p[fresh], q[fresh], mean, var)
        if len(keys) == 0:
            break
        known_keys, known_rms = keys, rms
        p, q = keys // n, keys % n
        limit = params.link_threshold - (params.link_threshold - params.pair_threshold) / np.sqrt(
            np.maximum(size[p], size[q])
        )
        ok = rms <= limit
        if not ok.any():
            break
        best = _best_partner(p[ok], q[ok], rms[ok], n)
        merges = _merge_round(best)
        if not merges.any():
            break
        # Each merging cluster's root: its partner, or the partner's own partner when the
        # partner is the higher of a mutual pair (which merges into the lower).
        targets = np.arange(n)
        targets[merges] = best[merges]
        roots = np.where(merges[targets], best[targets], targets)
        moved = np.flatnonzero(roots != np.arange(n))
        np.add.at(size, roots[moved], size[moved])
        np.add.at(vec_sum, roots[moved], vec_sum[moved])
        np.add.at(sq_sum, roots[moved], sq_sum[moved])
        size[moved] = 0
        grown = np.unique(roots[moved])
        mean[grown] = (vec_sum[grown] / size[grown, None]).astype(np.float32)
        m64 = mean[grown].astype(np.float64)
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
    if params.one_face_per_photo:
        labels = one_face_per_photo(x, np.asarray(photo_ids), labels)
    return renumber(labels)


def _rms(p: np.ndarray, q: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Root mean squared distance between the faces of clusters p and q (chunked)."""
    out = np.empty(len(p))
    for s in range(0, len(p), 1 << 18):
        pp, qq = p[s : s + (1 << 18)], q[s : s + (1 << 18)]
        diff = mean[pp] - mean[qq]
        sq = np.einsum("ij,ij->i", diff, diff).astype(np.float64) + var[pp] + var[qq]
        out[s : s + len(pp)] = np.sqrt(np.maximum(sq, 0.0))
    return out


def _best_partner(p: np.ndarray, q: np.ndarray, rms: np.ndarray, n: int) -> np.ndarray:
    """For each cluster, its closest allowed partner (-1: none); ties go to the lower id."""
    src = np.concatenate([p, q])
    dst = np.concatenate([q, p])
    d = np.concatenate([rms, rms])
    order = np.lexsort((dst, d, src))
    first = np.ones(len(order), dtype=bool)
    first[1:] = src[order][1:] != src[order][:-1]
    best = np.full(n, -1, dtype=np.int64)
    best[src[order][first]] = dst[order][first]
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
