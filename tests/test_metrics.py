"""Pairwise and BCubed scores on cases whose answers follow from the definitions."""

from __future__ import annotations

import numpy as np
import pytest

from faced.tools.metrics import bcubed, pairwise


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
