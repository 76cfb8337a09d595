"""Stable people: earlier decisions hold, new faces join, corrections are obeyed."""

from __future__ import annotations

import numpy as np

from faced.people.cluster import cluster_faces
from faced.people.identity import (
    NearestMemo,
    PeopleState,
    Seen,
    assign_people,
    place_new_faces,
    resolve,
    same_faces,
)
from faced.people.params import merge_threshold

from .synthetic import params as default_params
from .synthetic import people


def arr(*v: int) -> np.ndarray:
    return np.array(v, dtype=np.int64)


def test_first_run_creates_one_person_per_cluster() -> None:
    a = assign_people(
        arr(1, 2, 3, 4, 5),
        arr(1, 2, 3, 4, 5),
        arr(0, 0, 1, 1, -1),
        arr(0, 0, 0, 0, 0),
        PeopleState(),
    )
    assert (a.person == 0).all()
    assert [g.tolist() for g in a.new_people] == [[0, 1], [2, 3]]


def test_people_are_kept_even_when_clusters_renumber() -> None:
    a = assign_people(
        arr(1, 2, 3, 4), arr(1, 2, 3, 4), arr(1, 1, 0, 0), arr(7, 7, 9, 9), PeopleState()
    )
    assert a.person.tolist() == [7, 7, 9, 9] and a.new_people == []


def test_a_new_face_joins_the_person_its_cluster_holds() -> None:
    a = assign_people(
        arr(1, 2, 3, 4), arr(1, 2, 3, 4), arr(0, 0, 0, -1), arr(7, 7, 0, 0), PeopleState()
    )
    assert a.person.tolist() == [7, 7, 7, 0]


def test_rejected_faces_never_return() -> None:
    state = PeopleState(rejections=frozenset({(3, 7)}))
    a = assign_people(arr(1, 2, 3), arr(1, 2, 3), arr(0, 0, 0), arr(7, 7, 7), state)
    assert a.person.tolist() == [7, 7, 0]


def test_merges_are_followed_even_chained() -> None:
    merged = {5: 6, 6: 7}
    assert resolve(5, merged) == 7
    a = assign_people(arr(1, 2), arr(1, 2), arr(-1, -1), arr(5, 6), PeopleState(merged_into=merged))
    assert a.person.tolist() == [7, 7]


def test_one_photo_gives_a_person_one_face() -> None:
    a = assign_people(arr(1, 2, 3), arr(1, 1, 2), arr(0, 0, 0), arr(7, 0, 0), PeopleState())
    assert a.person.tolist() == [7, 0, 7]


def test_adding_one_photo_moves_no_face_of_a_visible_person() -> None:
    rng = np.random.default_rng(11)
    x, _ = people(rng, [8, 6, 5, 3, 2, 1, 1, 1])
    x = x[rng.permutation(len(x))]
    ids = np.arange(1, len(x) + 1, dtype=np.int64)
    params = default_params()
    previous = np.zeros(len(x), np.int64)
    min_faces = 3
    # The library grows one photo at a time. A face whose person has a folder (min_faces or
    # more faces) never changes person; only provisional people may be folded into others.
    next_id = 1
    for n in range(2, len(x) + 1):
        labels = cluster_faces(x[:n], ids[:n], params)
        a = assign_people(
            ids[:n], ids[:n], labels, previous[:n], PeopleState(), min_faces=min_faces
        )
        person = a.person.copy()
        for group in a.new_people:
            person[group] = next_id
            next_id += 1
        before = previous[: n - 1]
        sizes = np.bincount(before[before > 0], minlength=next_id + 1)
        visible = (before > 0) & (sizes[np.maximum(before, 0)] >= min_faces)
        assert (person[: n - 1][visible] == before[visible]).all()
        previous[:n] = person


def test_a_provisional_person_is_folded_into_the_person_its_cluster_holds() -> None:
    # Person 7 has a folder (3 faces); person 8 is provisional (2 faces); one cluster now.
    prev = arr(7, 7, 7, 8, 8)
    a = assign_people(
        arr(1, 2, 3, 4, 5), arr(1, 2, 3, 4, 5), arr(0, 0, 0, 0, 0), prev, PeopleState(), min_faces=3
    )
    assert a.person.tolist() == [7] * 5 and a.folded == [(8, 7)]


def test_people_with_folders_names_shared_photos_or_rejections_are_never_folded() -> None:
    ids, prev, labels = arr(1, 2, 3, 4, 5), arr(7, 7, 7, 8, 8), arr(0, 0, 0, 0, 0)
    cases = {
        "both have folders": (arr(1, 2, 3, 4, 5), PeopleState(), 2),
        "named": (arr(1, 2, 3, 4, 5), PeopleState(named=frozenset({8})), 3),
        "shared photo": (arr(1, 2, 3, 3, 5), PeopleState(), 3),
        "rejected": (arr(1, 2, 3, 4, 5), PeopleState(rejections=frozenset({(4, 7)})), 3),
    }
    for name, (images, state, min_faces) in cases.items():
        a = assign_people(ids, images, labels, prev, state, min_faces=min_faces)
        assert a.folded == [], name
        assert a.person.tolist()[3:] == [8, 8], name


def test_new_faces_are_placed_among_people_without_reclustering() -> None:
    rng = np.random.default_rng(21)
    x, truth = people(rng, [9, 9, 9, 2])
    stranger, _ = people(rng, [1])
    rank = np.concatenate([np.arange(n) for n in (9, 9, 9, 2)])
    new = (rank >= 7) & (truth < 3)  # two faces of each of the first three held back
    known = ~new
    person = truth + 10
    new_faces = np.concatenate([x[new], stranger])
    ids = np.arange(1, len(new_faces) + 1, dtype=np.int64) + 1000
    params = default_params()
    placed = place_new_faces(
        new_faces,
        ids,
        ids,
        x[known],
        person[known],
        np.arange(known.sum(), dtype=np.int64),
        PeopleState(),
        lambda size: merge_threshold(size, params),
    )
    assert placed[:-1].tolist() == person[new].tolist()
    assert placed[-1] == 0  # a stranger waits for the next full re-cluster
    # A rejection and a shared photo are obeyed.
    rejected = PeopleState(rejections=frozenset({(int(ids[0]), int(person[new][0]))}))
    again = place_new_faces(
        new_faces[:2],
        ids[:2],
        arr(5000, 5000),
        x[known],
        person[known],
        np.arange(known.sum(), dtype=np.int64),
        rejected,
        lambda size: merge_threshold(size, params),
    )
    assert again[0] != person[new][0]
    assert again[1] == person[new][1] or again[1] == 0


def test_faces_placed_again_with_the_memo_go_where_a_fresh_placement_sends_them() -> None:
    rng = np.random.default_rng(5)
    x, truth = people(rng, [40] * 30)
    person = np.where(rng.random(len(x)) < 0.5, truth + 1, 0)  # half still wait
    memo = NearestMemo()
    outcomes = set()

    def place(person: np.ndarray, *, memo: NearestMemo | None) -> np.ndarray:
        waiting = np.flatnonzero(person == 0)
        return place_new_faces(
            x[waiting],
            waiting + 1,
            waiting + 1,  # a photo per face
            x,
            person,
            np.arange(1, len(x) + 1),
            PeopleState(),
            lambda size: 0.33,  # strict: many faces wait, as in the daemon
            memo=memo,
            known_face_ids=np.arange(1, len(x) + 1),
        )

    for step in range(6):
        placed = place(person, memo=memo)
        assert placed.tolist() == place(person, memo=None).tolist(), step
        outcomes |= {bool(p) for p in placed}
        waiting = np.flatnonzero(person == 0)
        person = person.copy()
        person[waiting] = placed  # faces only gain a person: the memo holds
        if step == 3:  # a face loses its person: the memo must not be used
            person[np.flatnonzero(person > 0)[0]] = 0
    assert outcomes == {True, False}


def test_the_nearest_faces_found_block_by_block_are_the_nearest_of_all() -> None:
    from faced.people.identity import _nearest_all

    rng = np.random.default_rng(3)
    known = rng.normal(0, 0.1, (3000, 128)).astype(np.float16)  # as the store keeps them
    new = rng.normal(0, 0.1, (2000, 128)).astype(np.float32)  # 2,000 rows: blocks of 2,097
    has_person = rng.random(len(known)) < 0.7
    found = _nearest_all(new, known, has_person, 100)
    for row in (0, 977, 1999):
        full = np.linalg.norm(new[row] - known.astype(np.float32), axis=1)
        full[~has_person] = np.inf
        idx, dist = found[row]
        assert idx.tolist() == np.argsort(full, kind="stable")[:100].tolist()
        np.testing.assert_allclose(dist, full[idx], atol=1e-5)


def _shots(times: range, tracks: dict[int, tuple[str, int, int, int]]) -> list[Seen]:
    """Faces sampled at `times` (ms) of a clip of two 3-second shots: `tracks` gives each
    track's number -> (who, shot, left edge of the box, box width growing per second)."""
    out: list[Seen] = []
    for number, (_, shot, left, grow) in tracks.items():
        start, end = shot * 3000, shot * 3000 + 3000
        for t in times:
            if start <= t < end:
                w = 100 + grow * (t - start) // 1000
                out.append(((100, left + w, 100 + w, left), t, number, start, end))
    return out


def test_a_clip_read_again_gives_each_new_face_the_decisions_of_its_own_track() -> None:
    # Two people side by side, then the same two with sides swapped, sampled at other moments
    # the second time (and the tracks numbered otherwise): the face standing left in the second
    # shot is the other person from the one standing left in the first.
    old_tracks = {
        1: ("jerry", 0, 40, 30),
        2: ("woz", 0, 360, 30),
        3: ("woz", 1, 40, 30),
        4: ("jerry", 1, 360, 30),
    }
    new_tracks = {
        7: ("woz", 1, 40, 30),
        5: ("jerry", 0, 40, 30),
        8: ("jerry", 1, 360, 30),
        6: ("woz", 0, 360, 30),
    }
    old = _shots(range(0, 6000, 500), old_tracks)
    new = _shots(range(0, 6000, 333), new_tracks)
    pairs = same_faces(old, new)
    assert sorted(j for _, j in pairs) == list(range(len(new)))  # every new face, once
    for i, j in pairs:
        assert old_tracks[old[i][2] or 0][0] == new_tracks[new[j][2] or 0][0]
        assert abs((old[i][1] or 0) - (new[j][1] or 0)) <= 500  # its track's nearest in time


def test_a_clip_track_is_not_paired_with_one_framed_elsewhere() -> None:
    old = _shots(range(0, 3000, 500), {1: ("jerry", 0, 40, 30)})
    new = _shots(range(0, 3000, 333), {1: ("woz", 0, 360, 30)})
    assert same_faces(old, new) == []


def test_a_photo_read_again_pairs_faces_by_box() -> None:
    old: list[Seen] = [((10, 110, 110, 10), None, None, None, None)]
    new: list[Seen] = [
        ((12, 300, 110, 200), None, None, None, None),
        ((14, 112, 112, 12), None, None, None, None),
    ]
    assert same_faces(old, new) == [(0, 1)]


def test_a_clip_face_departed_without_its_moment_is_still_matched_by_box() -> None:
    # Departed before faces kept their moment and track (schema 8): the box is all there is.
    old: list[Seen] = [((100, 200, 200, 100), None, None, None, None)]
    new: list[Seen] = [
        ((100, 500, 200, 400), 1500, 1, 0, 3000),
        ((102, 202, 202, 102), 1500, 2, 0, 3000),
    ]
    assert same_faces(old, new) == [(0, 1)]
