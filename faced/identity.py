"""Clusters to people with permanent ids: a pure function.

Re-clustering renumbers clusters; people must not change. So a face that already belongs to a
person keeps that person (unless the user rejected it, or merged the person into another), and
only faces new to the library take a person: the one their cluster mostly holds. A cluster made
only of new or unknown faces becomes a new person. Hence adding photos never renames or
reshuffles the people that exist, and user corrections hold across every re-cluster.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class PeopleState:
    """What the user and earlier runs decided about people."""

    merged_into: dict[int, int] = field(default_factory=dict)  # merged person -> survivor
    rejections: frozenset[tuple[int, int]] = frozenset()  # (face id, person id): "not this person"


@dataclass(frozen=True)
class Assignment:
    """Per face, the person it belongs to (0: nobody); new people as groups of face indices."""

    person: np.ndarray  # int64 (n,), existing person ids or 0
    new_people: list[np.ndarray]  # face indices of each person to create, in a stable order


def resolve(person: int, merged_into: dict[int, int]) -> int:
    """Follow merges to the surviving person (merges may chain: A into B, then B into C)."""
    seen = set()
    while person in merged_into and person not in seen:
        seen.add(person)
        person = merged_into[person]
    return person


def assign_people(
    face_ids: np.ndarray,
    image_ids: np.ndarray,
    labels: np.ndarray,
    previous: np.ndarray,
    state: PeopleState,
    *,
    one_face_per_photo: bool = True,
) -> Assignment:
    """Give every face a person, keeping every earlier decision that still holds.

    `labels` come from cluster_faces (-1: alone); `previous` is each face's person before this
    run (0 or -1: none). A face rejected for a person never gets that person; with
    `one_face_per_photo` no person gets two faces of one photo.
    """
    n = len(face_ids)
    person = np.zeros(n, dtype=np.int64)
    taken: set[tuple[int, int]] = set()
    for i in range(n):
        p = int(previous[i])
        if p <= 0:
            continue
        p = resolve(p, state.merged_into)
        if (int(face_ids[i]), p) in state.rejections:
            continue
        if one_face_per_photo and (int(image_ids[i]), p) in taken:
            continue
        person[i] = p
        taken.add((int(image_ids[i]), p))

    new_people: list[np.ndarray] = []
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    for members in np.split(order, starts[1:]):
        if len(members) == 0 or labels[members[0]] < 0:
            continue
        votes = Counter(int(p) for p in person[members] if p > 0)
        candidates = sorted(votes, key=lambda p: (-votes[p], p))
        orphans = []
        for i in members:
            if person[i] > 0:
                continue
            for p in candidates:
                if (int(face_ids[i]), p) in state.rejections:
                    continue
                if one_face_per_photo and (int(image_ids[i]), p) in taken:
                    continue
                person[i] = p
                taken.add((int(image_ids[i]), p))
                break
            else:
                orphans.append(int(i))
        if not votes and len(orphans) >= 2:
            new_people.append(np.array(sorted(orphans), dtype=np.int64))
    new_people.sort(key=lambda g: int(face_ids[g[0]]))
    return Assignment(person, new_people)
