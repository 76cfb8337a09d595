"""Clustering quality against ground truth: pairwise and BCubed precision, recall and F.

Pure functions over label arrays. A predicted label of -1 (noise) makes that face a cluster of
its own: a person seen once and left alone is a correct answer, not a missing one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from faced.records import Box


@dataclass(frozen=True)
class Scores:
    """Precision, recall and F1 of one measure."""

    precision: float
    recall: float
    f: float

    @staticmethod
    def of(p: float, r: float) -> Scores:
        return Scores(p, r, 2 * p * r / (p + r) if p + r else 0.0)


def _singletons(pred: np.ndarray) -> np.ndarray:
    """Noise (-1) becomes unique labels, so every noise face is its own cluster."""
    pred = np.asarray(pred, dtype=np.int64).copy()
    noise = pred < 0
    base = pred.max(initial=-1) + 1
    pred[noise] = base + np.arange(int(noise.sum()))
    return pred


def _contingency(truth: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts per (truth, cluster) cell, and per-item sizes of its truth class and its cluster."""
    _, t = np.unique(truth, return_inverse=True)
    _, p = np.unique(_singletons(pred), return_inverse=True)
    cell = t.astype(np.int64) * (p.max() + 1) + p
    _, cell_inv, cell_counts = np.unique(cell, return_inverse=True, return_counts=True)
    return cell_counts[cell_inv], np.bincount(t)[t], np.bincount(p)[p]


def pairwise(truth: np.ndarray, pred: np.ndarray) -> Scores:
    """Over all pairs of faces: is a pair put together that belongs together?"""
    if len(truth) == 0:
        return Scores(1.0, 1.0, 1.0)
    _, t = np.unique(truth, return_inverse=True)
    _, p = np.unique(_singletons(pred), return_inverse=True)
    _, cells = np.unique(t.astype(np.int64) * (p.max() + 1) + p, return_counts=True)

    def pairs(counts: np.ndarray) -> float:
        return float((counts * (counts - 1) // 2).sum())

    tp = pairs(cells)
    predicted = pairs(np.bincount(p))
    actual = pairs(np.bincount(t))
    return Scores.of(tp / predicted if predicted else 1.0, tp / actual if actual else 1.0)


def bcubed(truth: np.ndarray, pred: np.ndarray) -> Scores:
    """Per face: how much of its cluster is its person, and of its person is its cluster."""
    if len(truth) == 0:
        return Scores(1.0, 1.0, 1.0)
    same, truth_size, cluster_size = _contingency(np.asarray(truth), np.asarray(pred))
    return Scores.of(float(np.mean(same / cluster_size)), float(np.mean(same / truth_size)))


def subject_face(boxes: Sequence[Box], width: int, height: int) -> int | None:
    """Which of a labelled photo's faces carries its label: the largest face whose box does
    not touch the photo's edge (all faces when every one does), the one nearer the photo's
    centre between faces of one size; None for a photo without faces.

    A photo labelled with a person is a photo of them, and a photographer frames their subject:
    a face the frame cuts is a bystander's, however large its visible part, and of two faces
    of one size the subject is the central one. Without this rule a detector that finds faces
    cut by the frame (YuNet does, HOG seldom) would change whose face is scored. Boxes are
    trimmed to the photo, so a cut face is one that reaches its edge. Size is the box's longer
    side: a detector's boxes come in steps of scale, and of two boxes at one step the area
    differs by rounding."""
    if not boxes:
        return None

    def rank(i: int) -> tuple[int, float]:
        top, right, bottom, left = boxes[i]
        off_centre = abs(top + bottom - height) + abs(left + right - width)
        return (max(bottom - top, right - left), -off_centre)

    def inside(i: int) -> bool:
        top, right, bottom, left = boxes[i]
        return top > 0 and left > 0 and bottom < height and right < width

    whole = [i for i in range(len(boxes)) if inside(i)]
    return max(whole or range(len(boxes)), key=rank)
