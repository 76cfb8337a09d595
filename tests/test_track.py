"""Following faces through a clip, on made-up sightings: linking, gaps, cuts, switches; and
the clustering's rules for tracks (one track one person, two tracks seen together two)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from faced.faces.track import Describe, Sighting, Track, Tracker, pick, split_at_switches
from faced.people.labels import hold_tracks
from faced.records import Box, FolderRule

CROP = np.zeros((4, 4, 3), np.uint8)


def at(ms: int, x: int, size: int = 100, score: float = 1.0) -> Sighting:
    box: Box = (100, x + size, 100 + size, x)
    return Sighting(ms, box, score, CROP)


def test_two_faces_moving_side_by_side_are_two_tracks() -> None:
    t = Tracker(gap_ms=1000)
    for ms in range(0, 3000, 500):
        assert t.frame(ms, [at(ms, 100 + ms // 50), at(ms, 600 - ms // 50)]) == []
    tracks = t.close()
    assert len(tracks) == 2
    assert all(len(tr.sightings) == 6 for tr in tracks)
    for tr in tracks:  # each kept to one side
        xs = [s.box[3] for s in tr.sightings]
        assert max(xs) - min(xs) == 50


def test_a_face_gone_longer_than_the_gap_comes_back_as_a_new_track() -> None:
    t = Tracker(gap_ms=1000)
    t.frame(0, [at(0, 100)])
    t.frame(500, [at(500, 100)])
    assert t.frame(1000, []) == []  # missed once: still open
    assert t.frame(1500, [at(1500, 105)]) == []
    ended = t.frame(4000, [at(4000, 100)])
    assert [len(x.sightings) for x in ended] == [3]
    assert [len(x.sightings) for x in t.close()] == [1]


def test_a_cut_ends_every_track() -> None:
    t = Tracker(gap_ms=1000)
    t.frame(0, [at(0, 100)])
    assert len(t.cut()) == 1
    t.frame(500, [at(500, 100)])
    assert [x.start_ms for x in t.close()] == [500]


def test_a_face_that_jumps_across_the_frame_is_another_track() -> None:
    t = Tracker(gap_ms=1000)
    t.frame(0, [at(0, 100)])
    t.frame(500, [at(500, 900)])
    assert len(t.close()) == 2


def test_kept_faces_are_the_surest_of_each_stretch() -> None:
    scores = [0, 1, 0] * 4
    track = Track([at(i * 500, 100, score=s) for i, s in enumerate(scores)])
    assert [track.sightings[i].ms for i in pick(track, 3)] == [500, 2000, 5000]


def fake_describe(person_of: dict[int, int]) -> tuple[list[int], Describe]:
    """A describe function giving each sighting its person's descriptor; counts calls."""
    described: list[int] = []

    def describe(sightings: Sequence[Sighting]) -> None:
        for s in sightings:
            if s.encoding is None:
                described.append(s.ms)
                s.encoding = np.full(128, float(person_of[s.ms]))

    return described, describe


def test_a_track_that_switches_person_is_split_where_it_does() -> None:
    times = list(range(0, 10_000, 500))  # 20 sightings; person 1 from 6500 ms on
    person_of = {ms: (0 if ms < 6500 else 1) for ms in times}
    described, describe = fake_describe(person_of)
    parts = split_at_switches(Track([at(ms, 100) for ms in times]), 3, describe)
    assert [(p.start_ms, p.last.ms) for p in parts] == [(0, 6000), (6500, 9500)]
    assert len(described) < len(times)  # found by halving, not by describing every face


def test_a_track_of_one_person_is_described_only_for_its_kept_faces() -> None:
    times = list(range(0, 10_000, 500))
    described, describe = fake_describe(dict.fromkeys(times, 0))
    parts = split_at_switches(Track([at(ms, 100) for ms in times]), 3, describe)
    assert len(parts) == 1 and len(described) == 3


def test_a_tracks_faces_take_the_label_most_of_them_have() -> None:
    x = np.zeros((5, 128), np.float32)
    labels = np.array([0, 0, -1, 1, 1])
    tracks = np.array([7, 7, 7, 7, -1])
    assert hold_tracks(x, labels, tracks).tolist() == [0, 0, 0, 0, 1]


def test_a_track_left_alone_is_a_cluster_of_its_own() -> None:
    x = np.zeros((3, 128), np.float32)
    assert hold_tracks(x, np.array([-1, -1, -1]), np.array([4, 4, -1])).tolist() == [0, 0, -1]


def test_two_tracks_seen_together_are_never_one_cluster() -> None:
    x = np.zeros((5, 128), np.float32)
    x[3:] = 0.3  # track 2 is the farther from the cluster's centre
    labels = hold_tracks(x, np.zeros(5, np.int64), np.array([1, 1, 1, 2, 2]), [(1, 2)])
    assert labels.tolist() == [0, 0, 0, 1, 1]  # the nearer track keeps the cluster


def test_a_long_track_proves_a_person_with_few_faces() -> None:
    rule = FolderRule(min_faces=3, track_ms=2000)
    assert rule.shows(1, longest_track_ms=2000)
    assert not rule.shows(2, longest_track_ms=1999)
    assert rule.shows(3)
    assert not FolderRule(min_faces=3, track_ms=0).shows(1, longest_track_ms=60_000)
