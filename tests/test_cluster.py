"""Clustering on synthetic encodings shaped like dlib's, and on real photos' encodings."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.cluster import DBSCAN

from faced.people import exact
from faced.people.cluster import cluster_faces
from faced.people.exact import _average_linkage_cut, _split_large, attach_loners
from faced.people.params import merge_threshold
from faced.tools.metrics import bcubed, pairwise

from .synthetic import CENTRE_SPREAD, params, people, two_groups

P = params()


def distinct(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.int64)  # every face in its own photo


def test_separated_people_are_found_whole_and_pure() -> None:
    x, truth = people(np.random.default_rng(1), [12, 9, 7, 5, 3])
    labels = cluster_faces(x, distinct(len(x)), P)
    assert pairwise(truth, labels).f == 1.0
    assert len(set(labels[labels >= 0])) == 5


def test_a_bridge_of_near_faces_does_not_chain_two_people() -> None:
    rng = np.random.default_rng(2)
    x, truth = people(rng, [15, 15])
    a, b = x[truth == 0].mean(0), x[truth == 1].mean(0)
    steps = np.linspace(0, 1, 9)[1:-1]
    bridge = np.array([a + t * (b - a) for t in steps], dtype=np.float32)
    xs = np.concatenate([x, bridge])
    # The bridge really chains the two people for single-linkage DBSCAN...
    chained = DBSCAN(eps=0.45, min_samples=2).fit_predict(xs)
    assert chained[0] == chained[15] != -1
    # ...but not for faced.
    labels = cluster_faces(xs, distinct(len(xs)), P)
    first, second = set(labels[:15]), set(labels[15:30])
    assert -1 not in first | second
    assert not first & second


def test_strangers_seen_once_stay_alone() -> None:
    rng = np.random.default_rng(3)
    x, truth = people(rng, [10, 8] + [1] * 40)
    labels = cluster_faces(x, distinct(len(x)), P)
    assert (labels[18:] == -1).all()
    assert bcubed(truth, labels).f == 1.0


def test_two_faces_in_one_photo_are_never_one_person() -> None:
    rng = np.random.default_rng(4)
    x, _ = people(rng, [10])
    images = distinct(10)
    images[1] = images[0]  # faces 0 and 1 share a photo
    labels = cluster_faces(x, images, P)
    assert labels[0] != labels[1]
    relaxed = cluster_faces(x, images, params(one_face_per_photo=False))
    assert relaxed[0] == relaxed[1] != -1


def test_same_partition_whatever_the_order() -> None:
    rng = np.random.default_rng(5)
    x, _ = people(rng, [6, 5, 4, 1, 1])
    order = rng.permutation(len(x))
    a = cluster_faces(x, distinct(len(x)), P)[order]
    b = cluster_faces(x[order], distinct(len(x))[order], P)

    def together(labels: np.ndarray) -> np.ndarray:
        same: np.ndarray = (labels[:, None] == labels[None, :]) & (labels[:, None] >= 0)
        return same

    assert (together(a) == together(b)).all()
    assert len(set(a[a >= 0])) == 3


def test_merge_threshold_grows_from_pair_to_link_threshold() -> None:
    sizes = [1, 2, 4, 16, 10_000]
    limits = [merge_threshold(s, P) for s in sizes]
    assert limits[0] == P.pair_threshold
    assert all(x < y for x, y in itertools.pairwise(limits))
    assert limits[-1] < P.link_threshold


def test_tiny_inputs() -> None:
    assert cluster_faces(np.zeros((0, 128), np.float32), distinct(0), P).shape == (0,)
    assert cluster_faces(np.zeros((1, 128), np.float32), distinct(1), P).tolist() == [-1]


def test_two_look_alikes_with_a_gap_stay_two_people() -> None:
    # 15 faces each, 0.55 apart on average: under the 0.57 that merge_threshold allows two
    # groups of 15, but each group is far tighter (0.35) than that.
    x, truth = two_groups(np.random.default_rng(5), 15, apart=0.42)
    labels = cluster_faces(x, distinct(len(x)), P)
    assert pairwise(truth, labels).f == 1.0
    loose = params(separation_gap=9.0)  # without the rule they merge
    assert len(set(cluster_faces(x, distinct(len(x)), loose))) == 1


def test_one_person_with_two_looks_stays_one_person() -> None:
    # Glasses on and off: the looks are 0.42 apart on average, only 0.07 over their spread.
    x, _ = two_groups(np.random.default_rng(6), 15, apart=0.23)
    labels = cluster_faces(x, distinct(len(x)), P)
    assert len(set(labels)) == 1 and labels[0] >= 0


def unit(rng: np.random.Generator, dim: int = 128) -> np.ndarray:
    v: np.ndarray = rng.normal(0, 1, dim)
    out: np.ndarray = v / float(np.linalg.norm(v))
    return out


def test_a_face_a_stranger_held_back_still_joins_its_person() -> None:
    rng = np.random.default_rng(7)
    # A person whose photos vary as much as real ones do (~0.45 apart): a face ~0.53 from
    # them on average is within their own spread plus JOIN_GAP.
    x = (rng.normal(0, 1, 128) * CENTRE_SPREAD + rng.normal(0, 0.45 / 16, (20, 128))).astype(
        np.float32
    )
    centre = x.mean(axis=0)
    face = centre + 0.43 * unit(rng)  # ~0.53 from the person's faces on average: may join
    stranger = face + 0.5 * unit(rng)  # its nearest face: too far for a pair, far from all
    xs = np.concatenate([x, [face, stranger]]).astype(np.float32)
    assert np.linalg.norm(xs[:20] - face, axis=1).mean() < merge_threshold(20, P)
    assert _average_linkage_cut(xs, P)[20] == -1  # the tree pairs it with the stranger first
    labels = cluster_faces(xs, distinct(len(xs)), P)
    assert labels[20] == labels[0] != -1  # attach_loners gives it to its person
    assert labels[21] == -1


def test_a_loner_between_two_people_stays_alone() -> None:
    rng = np.random.default_rng(8)
    x, truth = people(rng, [12, 12])
    a, b = x[truth == 0].mean(axis=0), x[truth == 1].mean(axis=0)
    loner = (a + b) / 2
    xs = np.concatenate([x, [loner]]).astype(np.float32)
    labels = np.concatenate([truth, [-1]])
    # As near one as the other: the margin rule keeps it out of both...
    assert attach_loners(xs, labels, params(link_threshold=1.5))[-1] == -1
    # ...while nearer one by a clear margin it joins that one.
    xs[-1] = a + 0.3 * (b - a)
    assert attach_loners(xs, labels, params(link_threshold=1.5))[-1] == 0


def person(rng: np.random.Generator, n: int, apart: float) -> np.ndarray:
    """`n` faces of one person, `apart` from each other on average, around a random centre."""
    centre = rng.normal(0, CENTRE_SPREAD, 128)
    return (centre + rng.normal(0, apart / 16, (n, 128))).astype(np.float32)


def two_sittings(
    rng: np.random.Generator, n: int, apart: float, m: int, m_apart: float, offset: float
) -> tuple[np.ndarray, np.ndarray]:
    """One person's faces in two groups around a random centre: `n` faces `apart` from each
    other on average, and `m` more `m_apart` apart whose centre is `offset` away."""
    centre = rng.normal(0, CENTRE_SPREAD, 128)
    first = centre + rng.normal(0, apart / 16, (n, 128))
    second = centre + offset * unit(rng) + rng.normal(0, m_apart / 16, (m, 128))
    return first, second


def assert_one_person(labels: np.ndarray, n: int) -> None:
    """The first `n` faces are one person, and nobody else's faces are theirs."""
    assert labels[0] >= 0 and len(set(labels[:n])) == 1
    assert not set(labels[:n]) & set(labels[n:])


def four_photos_nobody_is_near() -> np.ndarray:
    """Madonna in a family library: her four photos first, 0.5-0.6 apart (above the pair
    bar), then three other people, nobody anywhere near her."""
    rng = np.random.default_rng(11)
    her = person(rng, 4, 0.55)
    others, _ = people(rng, [8, 6, 5])
    return np.concatenate([her, others])


def test_four_photos_of_one_person_in_a_small_library_become_a_person() -> None:
    x = four_photos_nobody_is_near()
    assert_one_person(cluster_faces(x, distinct(len(x)), P), 4)


def test_six_photos_of_one_person_in_a_small_library_become_one_person() -> None:
    # Madonna with six photos: four of them, and a pair taken on one day (close together), the
    # pair 0.55-0.57 from the four on average: above the bar for a group of four to take in
    # two, and the whole group larger than the small groups the isolation rule once stopped at.
    # Nobody else in the library is near her.
    rng = np.random.default_rng(28)
    four, pair = two_sittings(rng, 4, 0.5, 2, 0.38, 0.34)
    her = np.concatenate([four, pair]).astype(np.float32)
    assert np.linalg.norm(four[:, None] - pair[None], axis=2).mean() > merge_threshold(4, P)
    others, _ = people(rng, [8, 6, 5])
    x = np.concatenate([her, others])
    assert_one_person(cluster_faces(x, distinct(len(x)), P), 6)


def test_five_photos_of_one_person_each_others_nearest_among_strangers_become_one_person() -> None:
    # Five photos of one person, three and a pair 0.54 apart on average (above the bar for a
    # group of three), in a dense region: strangers seen once lie 0.58-0.60 from her faces,
    # too near for the isolation margin, yet each of her faces is nearer to all of her other
    # faces than to any stranger.
    rng = np.random.default_rng(0)
    three, pair = two_sittings(rng, 3, 0.5, 2, 0.4, 0.34)
    her = np.concatenate([three, pair])
    strangers = np.array([her.mean(axis=0) + 0.55 * unit(rng) for _ in range(12)])
    x = np.concatenate([her, strangers]).astype(np.float32)
    within = np.linalg.norm(x[:5, None] - x[None, :5], axis=2)
    nearest_stranger = np.linalg.norm(x[:5, None] - x[None, 5:], axis=2).min(axis=1)
    assert within[:3, 3:].mean() > merge_threshold(3, P)
    assert nearest_stranger.min() < within[:3, 3:].mean() + 0.05  # not isolated
    assert (within.max(axis=1) < nearest_stranger).all()
    labels = cluster_faces(x, distinct(len(x)), P)
    assert labels[0] >= 0 and len(set(labels[:5])) == 1
    assert (labels[5:] == -1).all()


def test_a_photo_unlike_one_of_its_persons_others_still_closes_their_neighbourhood() -> None:
    # As above, but a stranger lies nearer to one of her faces than that face's farthest
    # fellow photo is (a photo of a person is often unlike one or two of the others): the face
    # is still nearer to most of her faces than to the stranger, and so are all the others.
    rng = np.random.default_rng(0)
    three, pair = two_sittings(rng, 3, 0.5, 2, 0.4, 0.34)
    her = np.concatenate([three, pair])
    strangers = [her.mean(axis=0) + 0.55 * unit(rng) for _ in range(12)]
    within = np.linalg.norm(her[:, None] - her[None], axis=2)
    fellows = np.sort(within[0])[1:]
    strangers.append(her[0] + (fellows[2] + fellows[3]) / 2 * unit(rng))
    x = np.concatenate([her, np.array(strangers)]).astype(np.float32)
    nearest_stranger = np.linalg.norm(x[:5, None] - x[None, 5:], axis=2).min(axis=1)
    assert nearest_stranger[0] < within[0].max()  # not every fellow is nearer than a stranger
    median_fellow = np.median(np.sort(within, axis=1)[:, 1:], axis=1)
    assert (median_fellow < nearest_stranger).all()
    labels = cluster_faces(x, distinct(len(x)), P)
    assert_one_person(labels, 5)
    assert (labels[5:] == -1).all()


def test_a_far_photo_of_a_person_nobody_else_is_near_joins_them() -> None:
    # Nine photos of one person and a tenth 0.58 from them on average: within dlib's line and
    # the person's own spread plus the gap, but above the bar for a group of nine, and each
    # face knows only its 6 nearest, all of them hers. Nobody else is within 0.6 of her.
    rng = np.random.default_rng(1)
    nine, tenth = two_sittings(rng, 9, 0.45, 1, 0.2, 0.44)
    others, _ = people(rng, [8, 6, 5])
    x = np.concatenate([nine, tenth, others]).astype(np.float32)
    assert np.linalg.norm(nine - tenth, axis=1).mean() > merge_threshold(9, P)
    assert_one_person(cluster_faces(x, distinct(len(x)), P), 10)


def test_an_isolated_photo_beyond_a_tight_persons_spread_stays_alone() -> None:
    # Nine photos of one person 0.40 apart and a tenth 0.58 from them on average: within
    # dlib's line and isolated from everyone, but beyond their spread plus JOIN_GAP. It may be
    # a far photo of theirs, or of someone whose own photos are far apart (as far as
    # strangers): precision first, it stays alone.
    rng = np.random.default_rng(21)
    nine, tenth = two_sittings(rng, 9, 0.40, 1, 0.2, 0.49)
    within = np.linalg.norm(nine[:, None] - nine[None], axis=2)[np.triu_indices(9, 1)].mean()
    far = np.linalg.norm(nine - tenth, axis=1).mean()
    assert within + exact.JOIN_GAP < far < P.link_threshold
    others, _ = people(rng, [8, 6, 5])
    x = np.concatenate([nine, tenth, others]).astype(np.float32)
    labels = cluster_faces(x, distinct(len(x)), P)
    assert labels[0] >= 0 and len(set(labels[:9])) == 1
    assert labels[9] == -1


def test_a_tight_person_does_not_absorb_the_strangers_around_them() -> None:
    # A dense region of descriptor space: a person seen 20 times, and strangers seen once,
    # each ~0.57 from the person's faces on average (under the size-aware bar) but far from
    # one another. The person's own spread says those strangers are not them.
    rng = np.random.default_rng(12)
    x = person(rng, 20, 0.40)
    centre = x.mean(axis=0)
    strangers = np.array([centre + 0.5 * unit(rng) for _ in range(15)], np.float32)
    xs = np.concatenate([x, strangers])
    assert all(np.linalg.norm(x - s, axis=1).mean() < merge_threshold(20, P) for s in strangers)
    labels = cluster_faces(xs, distinct(len(xs)), P)
    assert len(set(labels[:20])) == 1 and labels[0] >= 0
    assert (labels[20:] == -1).all()


def test_weak_detections_close_together_never_become_a_person() -> None:
    # Non-faces (a blob, an ear, a pattern) found below the detector's line lie close together.
    rng = np.random.default_rng(7)
    x, _ = people(rng, [8, 6])
    weak = np.zeros(len(x), dtype=bool)
    weak[8:] = True
    photos = np.arange(len(x))
    assert len(set(cluster_faces(x, photos, P)[8:])) == 1  # without the gate: a "person"
    labels = cluster_faces(x, photos, P, weak)
    assert (labels[8:] == -1).all() and len(set(labels[:8])) == 1 and labels[0] >= 0


def test_a_weak_face_close_to_a_person_joins_them() -> None:
    rng = np.random.default_rng(8)
    x, _ = people(rng, [10])
    weak = np.zeros(len(x), dtype=bool)
    weak[-2:] = True  # two of their faces scored just below the detector's line
    labels = cluster_faces(x, np.arange(len(x)), P, weak)
    assert labels[0] >= 0 and (labels == labels[0]).all()


def test_each_part_of_a_split_component_knows_how_far_the_other_parts_are(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A component too large for one tree is split at tighter radii; the isolation rules must
    # not take a part's edge for dlib's line: faces of other parts may be nearer than 0.6.
    monkeypatch.setattr(exact, "MAX_EXACT", 12)
    rng = np.random.default_rng(5)
    x, _ = people(rng, [10, 10, 10])
    x = np.concatenate([x, x[:10] + 0.3 * unit(rng), x[10:20] + 0.3 * unit(rng)])
    x = x.astype(np.float32)
    members = np.arange(len(x))
    parts = _split_large(x, members, P)
    assert len(parts) > 1 and all(len(part) <= 12 for part, _ in parts)
    gaps = []
    for part, beyond in parts:
        rest = np.setdiff1d(members, part)
        nearest = float(np.linalg.norm(x[part][:, None] - x[rest][None], axis=2).min())
        assert nearest > beyond
        gaps.append(nearest)
    assert min(gaps) < P.link_threshold  # parts nearer than dlib's line: the case at stake
