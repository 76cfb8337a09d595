"""Pairwise and BCubed scores on cases whose answers follow from the definitions."""

from __future__ import annotations

import numpy as np
import pytest

from faced.tools.metrics import bcubed, pairwise, subject_face


def test_perfect_clustering_scores_one() -> None:
    truth = np.array([0, 0, 1, 1, 2])
    pred = np.array([5, 5, 3, 3, -1])  # a person seen once left alone is correct
    assert pairwise(truth, pred).f == 1.0
    assert bcubed(truth, pred).f == 1.0


def test_everything_in_one_cluster() -> None:
    truth = np.array([0, 0, 1, 1])
    p = pairwise(truth, np.zeros(4, int))
    assert p.recall == 1.0 and p.precision == pytest.approx(2 / 6)
    b = bcubed(truth, np.zeros(4, int))
    assert b.recall == 1.0 and b.precision == pytest.approx(0.5)


def test_noise_counts_as_singletons() -> None:
    truth = np.array([0, 0, 0, 0])
    pred = np.array([-1, -1, -1, -1])
    assert pairwise(truth, pred).recall == 0.0
    assert bcubed(truth, pred).recall == pytest.approx(0.25)
    assert bcubed(truth, pred).precision == 1.0


def test_the_subject_is_the_largest_face_the_frame_does_not_cut() -> None:
    # A 250 x 250 photo: a large face cut by the right edge, the subject whole in the middle.
    cut, subject = (12, 250, 160, 129), (73, 184, 190, 67)
    assert subject_face([cut, subject], 250, 250) == 1


def test_the_subject_is_the_largest_face_when_the_frame_cuts_every_face() -> None:
    assert subject_face([(0, 40, 30, 10), (0, 250, 120, 150)], 250, 250) == 1


def test_a_photo_without_faces_has_no_subject() -> None:
    assert subject_face([], 250, 250) is None


def test_of_two_faces_of_one_size_the_subject_is_the_central_one() -> None:
    beside, central = (66, 96, 156, 6), (86, 165, 176, 76)
    assert subject_face([beside, central], 250, 250) == 1
