"""The sparse path for large libraries obeys the same rules as the exact one."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import DBSCAN

from faced.people import sparse
from faced.people.cluster import cluster_faces
from faced.people.exact import cluster_component
from faced.people.sparse import cluster_large
from faced.tools.metrics import bcubed, pairwise

from .synthetic import params, people, two_groups
from .test_cluster import assert_one_person, four_photos_nobody_is_near

P = params()


def distinct(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.int64)


def test_separated_people_whole_and_pure() -> None:
    x, truth = people(np.random.default_rng(1), [30, 12, 9, 7, 5, 3])
    labels = cluster_large(x, distinct(len(x)), P)
    assert pairwise(truth, labels).f == 1.0


def test_a_bridge_does_not_chain_two_people() -> None:
    rng = np.random.default_rng(2)
    x, truth = people(rng, [15, 15])
    a, b = x[truth == 0].mean(0), x[truth == 1].mean(0)
    bridge = np.array([a + t * (b - a) for t in np.linspace(0, 1, 9)[1:-1]], dtype=np.float32)
    xs = np.concatenate([x, bridge])
    assert DBSCAN(eps=0.45, min_samples=2).fit_predict(xs)[0] != -1  # chained for DBSCAN
    labels = cluster_large(xs, distinct(len(xs)), P)
    assert -1 not in set(labels[:30]) and not set(labels[:15]) & set(labels[15:30])


def test_strangers_alone_and_one_face_per_photo() -> None:
    rng = np.random.default_rng(3)
    x, _ = people(rng, [10, 8] + [1] * 40)
    photos = distinct(len(x))
    photos[1] = photos[0]
    labels = cluster_large(x, photos, P)
    assert (labels[18:] == -1).all() and labels[0] != labels[1]


def test_agrees_with_the_exact_path() -> None:
    rng = np.random.default_rng(4)
    sizes = [int(s) for s in np.maximum(1, 200 / np.arange(1, 120) ** 1.1)]
    x, truth = people(rng, sizes)
    exact = cluster_faces(x, distinct(len(x)), P)
    sparse = cluster_large(x, distinct(len(x)), P)
    assert bcubed(truth, sparse).f >= 0.97 and bcubed(truth, exact).f >= 0.97
    assert pairwise(exact, sparse).f >= 0.95


def test_look_alikes_apart_and_two_looks_together() -> None:
    x, truth = two_groups(np.random.default_rng(5), 15, apart=0.42)
    assert pairwise(truth, cluster_large(x, distinct(len(x)), P)).f == 1.0
    x, _ = two_groups(np.random.default_rng(6), 15, apart=0.23)
    labels = cluster_large(x, distinct(len(x)), P)
    assert len(set(labels)) == 1 and labels[0] >= 0


def test_a_library_too_large_for_the_tree_still_finds_a_person_nobody_is_near() -> None:
    # The isolation rule in a large library: four photos of one person 0.5-0.6 apart, above
    # the pair bar, and nobody near her; her faces are a small component of the neighbour
    # graph, clustered by the exact path's rules.
    x = four_photos_nobody_is_near()
    assert_one_person(cluster_large(x, distinct(len(x)), P), 4)


def test_two_faces_alone_together_cluster_as_the_exact_rules_cluster_them() -> None:
    # The sparse path pairs two faces alone within dlib's line without building a tree; the
    # exact path's own code must agree, at any distance up to the line.
    rng = np.random.default_rng(4)
    others, _ = people(rng, [8, 6])
    for apart in (0.3, 0.5, 0.59):
        centre = rng.normal(0, 1.0, 128) * 0.1
        direction = rng.normal(0, 1, 128)
        pair = np.array([centre, centre + apart * direction / np.linalg.norm(direction)])
        x = np.concatenate([pair.astype(np.float32), others])
        exact = cluster_component(x[:2], P, P.link_threshold)
        large = cluster_large(x, distinct(len(x)), P)
        assert (exact[0] == exact[1] and exact[0] >= 0) == (large[0] == large[1] >= 0)
        assert large[0] == large[1] >= 0


def test_distinct_values_are_those_of_numpys_unique() -> None:
    rng = np.random.default_rng(0)
    for values in (rng.integers(0, 50, 1000), rng.integers(0, 2**40, 1000), np.zeros(0, np.int64)):
        assert np.array_equal(sparse._distinct(values), np.unique(values))
