"""Clusters to people with permanent ids: a pure function.

Re-clustering renumbers clusters; people must not change. So a face that already belongs to a
person keeps that person (unless the user rejected it, or merged the person into another), and
only faces new to the library take a person: the one their cluster mostly holds. A cluster made
only of new or unknown faces becomes a new person. Hence adding photos never renames or
reshuffles the people the user can see, and user corrections hold across every re-cluster.

One exception keeps early splits from lasting: a person too small to have a folder yet (fewer
than `min_faces` faces, no name) is provisional. When its faces end up in a cluster that an
established person holds, it is folded into that person, unless the two share a photo or the
user rejected one of its faces there. People with folders are never merged automatically.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class PeopleState:
    """What the user and earlier runs decided about people."""

    merged_into: dict[int, int] = field(default_factory=dict)  # merged person -> survivor
    rejections: frozenset[tuple[int, int]] = frozenset()  # (face id, person id): "not this person"
    named: frozenset[int] = frozenset()  # people the user named


@dataclass(frozen=True)
class Assignment:
    """Per face, the person it belongs to (0: nobody); new people as groups of face indices;
    provisional people folded into others, as (folded, survivor)."""

    person: np.ndarray  # int64 (n,), existing person ids or 0
    new_people: list[np.ndarray]  # face indices of each person to create, in a stable order
    folded: list[tuple[int, int]] = field(default_factory=list)


def resolve(person: int, merged_into: dict[int, int]) -> int:
    """Follow merges to the surviving person (merges may chain: A into B, then B into C)."""
    seen = set()
    while person in merged_into and person not in seen:
        seen.add(person)
        person = merged_into[person]
    return person


def _clusters(labels: np.ndarray) -> list[np.ndarray]:
    """Face indices of each cluster (label >= 0), in label order."""
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    groups = np.split(order, starts[1:])
    return [g for g in groups if len(g) and labels[g[0]] >= 0]


class _Book:
    """The assignment being built, with the one-face-per-photo and rejection rules."""

    def __init__(
        self,
        face_ids: np.ndarray,
        image_ids: np.ndarray,
        state: PeopleState,
        one_face_per_photo: bool,
    ) -> None:
        self.face_ids = face_ids
        self.image_ids = image_ids
        self.state = state
        self.one_face_per_photo = one_face_per_photo
        self.person = np.zeros(len(face_ids), dtype=np.int64)
        self.taken: set[tuple[int, int]] = set()  # (image id, person id)

    def allowed(self, i: int, p: int) -> bool:
        if (int(self.face_ids[i]), p) in self.state.rejections:
            return False
        return not (self.one_face_per_photo and (int(self.image_ids[i]), p) in self.taken)

    def give(self, i: int, p: int) -> bool:
        if not self.allowed(i, p):
            return False
        self.person[i] = p
        self.taken.add((int(self.image_ids[i]), p))
        return True


def assign_people(
    face_ids: np.ndarray,
    image_ids: np.ndarray,
    labels: np.ndarray,
    previous: np.ndarray,
    state: PeopleState,
    *,
    one_face_per_photo: bool = True,
    min_faces: int = 1,
) -> Assignment:
    """Give every face a person, keeping every earlier decision that still holds.

    `labels` come from cluster_faces (-1: alone); `previous` is each face's person before this
    run (0 or -1: none). A face rejected for a person never gets that person; with
    `one_face_per_photo` no person gets two faces of one photo. People with fewer than
    `min_faces` faces and no name are provisional (see the module docstring).
    """
    book = _Book(face_ids, image_ids, state, one_face_per_photo)
    for i in range(len(face_ids)):
        if previous[i] > 0:
            book.give(i, resolve(int(previous[i]), state.merged_into))

    sizes = Counter(int(p) for p in book.person if p > 0)
    folded: list[tuple[int, int]] = []
    new_people: list[np.ndarray] = []
    for members in _clusters(labels):
        votes = Counter(int(p) for p in book.person[members] if p > 0)
        candidates = sorted(votes, key=lambda p: (-sizes[p], -votes[p], p))
        if candidates:
            folded += _fold_provisional(book, members, candidates, sizes, min_faces)
            votes = Counter(int(p) for p in book.person[members] if p > 0)
            candidates = sorted(votes, key=lambda p: (-votes[p], p))
        orphans = []
        for i in members:
            if book.person[i] == 0 and not any(book.give(int(i), p) for p in candidates):
                orphans.append(int(i))
        if not votes and len(orphans) >= 2:
            new_people.append(np.array(sorted(orphans), dtype=np.int64))
    new_people.sort(key=lambda g: int(face_ids[g[0]]))
    return Assignment(book.person, new_people, folded)


def _fold_provisional(
    book: _Book, members: np.ndarray, candidates: list[int], sizes: Counter[int], min_faces: int
) -> list[tuple[int, int]]:
    """Fold the cluster's provisional people into its largest person, where the rules allow."""
    survivor = candidates[0]
    folded = []
    for p in candidates[1:]:
        if sizes[p] >= min_faces or p in book.state.named:
            continue
        theirs = np.flatnonzero(book.person == p)
        inside = np.isin(theirs, members).sum()
        if inside * 2 < len(theirs):
            continue  # most of this person is elsewhere: the cluster does not speak for it
        images = {int(book.image_ids[i]) for i in theirs}
        if any((img, survivor) in book.taken for img in images):
            continue  # they share a photo: two people
        if any((int(book.face_ids[i]), survivor) in book.state.rejections for i in theirs):
            continue
        for i in theirs:
            book.taken.discard((int(book.image_ids[i]), p))
            book.give(int(i), survivor)
        sizes[survivor] += len(theirs)
        sizes[p] = 0
        folded.append((p, survivor))
    return folded


class NearestMemo:
    """What `place_new_faces` found of the faces it could not place, kept by the caller for
    its next call: the daemon places every waiting face again at each refresh, and among a
    million faces a face costs a pass over all of them.

    For each face left unplaced: its nearest faces that had a person (indices into the known
    arrays, distances, nearest first). While faces only gain a person (as placements give),
    the nearest faces with a person now are among those, or among the faces that gained one
    since: only those are measured again. Anything else (a face that lost or changed its
    person, faces gone) and the memo is not used: every face is measured afresh."""

    def __init__(self) -> None:
        self.face_ids = np.empty(0, np.int64)  # the known faces' ids then
        self.person = np.empty(0, np.int64)  # and their persons
        self.rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # face id -> nearest

    def gained(self, face_ids: np.ndarray, person: np.ndarray) -> np.ndarray | None:
        """Indices of the known faces that gained a person since the memo was made (faces
        added since included), or None if it does not hold for these faces."""
        n = len(self.face_ids)
        if not self.rows or n > len(face_ids) or not np.array_equal(face_ids[:n], self.face_ids):
            return None
        then = np.zeros(len(face_ids), np.int64)
        then[:n] = self.person
        if ((then > 0) & (person != then)).any():
            return None
        gained = np.flatnonzero((person > 0) & (then <= 0))
        # Most faces gaining a person is a re-cluster's doing: measuring afresh is as cheap.
        return gained if len(gained) * 4 <= len(face_ids) else None


def place_new_faces(
    new: np.ndarray,
    new_face_ids: np.ndarray,
    new_image_ids: np.ndarray,
    known: np.ndarray,
    known_person: np.ndarray,
    known_image_ids: np.ndarray,
    state: PeopleState,
    threshold: Callable[[int], float],
    *,
    one_face_per_photo: bool = True,
    k: int = 5,
    memo: NearestMemo | None = None,
    known_face_ids: np.ndarray | None = None,
) -> np.ndarray:
    """Place new faces among existing people without re-clustering (milliseconds).

    A new face joins the person whose `k` nearest faces are, on average, within
    `threshold(size of that person)` (the daemon passes a strict constant, see
    faced.pipeline.Library.place_new).
    Rejections and the one-face-per-photo rule hold. Faces no person claims get 0 and wait for
    the next full re-cluster. `known*` describe the reference faces: those with a person
    (`known_person` > 0; any others in the arrays are passed over, so a caller need not copy
    out the faces that have one). New faces placed in the same call do not vouch for each
    other, and the known faces are read a block of rows at a time, so memory stays bounded.
    With `memo` (and the known faces' ids), what was found of faces left waiting is kept
    there, and a face met again is measured only against the faces that gained a person
    since (NearestMemo).
    """
    out = np.zeros(len(new), dtype=np.int64)
    if len(new) == 0 or len(known) == 0:
        return out
    has_person = known_person > 0
    sizes = np.bincount(known_person[has_person]) if has_person.any() else np.zeros(1, np.int64)
    # Who is already in the photos of the new faces (only those photos can refuse one).
    mine = np.isin(known_image_ids, new_image_ids)
    taken = {
        (int(i), int(p)) for i, p in zip(known_image_ids[mine], known_person[mine], strict=True)
    }
    nearest = min(k * 20, len(known))  # the nearest faces decide; far ones cannot
    gained = (
        memo.gained(known_face_ids, known_person)
        if memo is not None and known_face_ids is not None
        else None
    )
    found: list[tuple[np.ndarray, np.ndarray]] = [(np.empty(0, np.int64), np.empty(0))] * len(new)
    kept = memo.rows if memo is not None and gained is not None else {}
    again = [r for r in range(len(new)) if int(new_face_ids[r]) in kept]
    afresh = sorted(set(range(len(new))) - set(again))
    if again and gained is not None:
        # The nearest of the faces that gained a person, merged with those found before.
        anyone = np.ones(len(gained), bool)
        for row, (idx, d) in zip(
            again, _nearest_all(new[again], known[gained], anyone, nearest), strict=True
        ):
            before, d_before = kept[int(new_face_ids[row])]
            found[row] = _nearest(
                np.concatenate([before, gained[idx]]), np.concatenate([d_before, d]), nearest
            )
    if afresh:
        for row, nearest_faces in zip(
            afresh, _nearest_all(new[afresh], known, has_person, nearest), strict=True
        ):
            found[row] = nearest_faces
    for row, (idx, dist) in enumerate(found):
        seen: dict[int, int] = {}  # person -> faces counted (at most k, nearest first)
        sums: dict[int, float] = {}
        for j, d in zip(idx.tolist(), dist.tolist(), strict=True):
            p = int(known_person[j])
            if seen.get(p, 0) < k:
                seen[p] = seen.get(p, 0) + 1
                sums[p] = sums.get(p, 0.0) + d
        for person in sorted(seen, key=lambda p: sums[p] / seen[p]):
            if sums[person] / seen[person] > threshold(int(sizes[person])):
                break
            if (int(new_face_ids[row]), person) in state.rejections:
                continue
            if one_face_per_photo and (int(new_image_ids[row]), person) in taken:
                continue
            out[row] = person
            taken.add((int(new_image_ids[row]), person))
            break
    if memo is not None and known_face_ids is not None:
        memo.face_ids = known_face_ids
        memo.person = known_person.copy()
        memo.rows = {int(new_face_ids[r]): found[r] for r in range(len(new)) if out[r] == 0}
    return out


def _nearest_all(
    new: np.ndarray, known: np.ndarray, has_person: np.ndarray, n: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each new face, its `n` nearest known faces with a person (indices into `known`,
    distances; nearest first). `known` is read a block of rows at a time, widened to float32
    (it may be kept narrower): at most 4M distances (16 MB, and their 32 MB of ranks) at once."""
    rows = len(new)
    block = max(n, (1 << 22) // max(1, rows))
    best_i = np.zeros((rows, 0), np.int64)
    best_d = np.zeros((rows, 0), np.float32)
    new_sq = np.einsum("ij,ij->i", new, new)[:, None]
    for start in range(0, len(known), block):
        ref = _widen(known[start : start + block])
        ref_sq = np.einsum("ij,ij->i", ref, ref)
        ref_sq[~has_person[start : start + block]] = np.inf  # nobody's: infinitely far
        d = np.sqrt(np.maximum(new_sq + ref_sq[None, :] - 2.0 * new @ ref.T, 0.0))
        if d.shape[1] > n:
            top = np.argpartition(d, n - 1, axis=1)[:, :n]
            d = np.take_along_axis(d, top, axis=1)
        else:
            top = np.broadcast_to(np.arange(d.shape[1]), d.shape)
        best_d = np.concatenate([best_d, d], axis=1)
        best_i = np.concatenate([best_i, top + start], axis=1)
        if best_d.shape[1] > n:
            keep = np.argpartition(best_d, n - 1, axis=1)[:, :n]
            best_d = np.take_along_axis(best_d, keep, axis=1)
            best_i = np.take_along_axis(best_i, keep, axis=1)
    return [_nearest(best_i[r], best_d[r], n) for r in range(rows)]


@functools.cache
def _float16_values() -> np.ndarray:
    """Every float16 value as float32, by its bits (numpy's own conversion, made once)."""
    return np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)


def _widen(a: np.ndarray) -> np.ndarray:
    """`a` as float32. Descriptors kept in float16 are looked up by their bits: exactly what
    numpy's conversion gives, and faster than it (a placement among a million faces widens
    them all; docs/decisions/performance.md)."""
    if a.dtype == np.float16:
        return _float16_values()[a.view(np.uint16)]
    return np.asarray(a, np.float32)


def _nearest(idx: np.ndarray, dist: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The `n` nearest of faces `idx` at distances `dist`, nearest first; none infinitely
    far (a face of nobody)."""
    if len(idx) > n:
        keep = np.argpartition(dist, n - 1)[:n]
        idx, dist = idx[keep], dist[keep]
    order = np.argsort(dist, kind="stable")
    idx, dist = idx[order], dist[order]
    finite = np.isfinite(dist)
    return (idx, dist) if finite.all() else (idx[finite], dist[finite])


# Where a face was seen in a file: its box (top, right, bottom, left) and, in a clip, the
# moment (ms) and the track it was followed in (its number, its first moment and one step past
# its last, ms); None in a photo. A plain tuple: the store builds them.
Seen = tuple[tuple[int, int, int, int], int | None, int | None, int | None, int | None]


def same_faces(old: Sequence[Seen], new: Sequence[Seen]) -> list[tuple[int, int]]:
    """Pairs (old index, new index) of faces of one file that are the same face, found again
    with other settings or another detector: how decisions about departed faces find it.

    In a photo, two boxes are the same face when they overlap by at least SAME_FACE_IOU, or
    when each one's centre lies inside the other (a detector that frames faces wider or
    tighter). Pairs are taken best overlap first, each box at most once, so two faces side by
    side never swap their decisions.

    In a clip, faces sampled at other moments seldom share a box, and a box says nothing of
    who stood there a shot later; so whole tracks are paired (clip_tracks), and each new face
    takes after the old face of its paired track nearest to it in time. An old face recorded
    without its moment goes by the photo rule, with the new faces not paired so.
    """
    clip_old = [i for i, s in enumerate(old) if s[1] is not None]
    clip_new = [j for j, s in enumerate(new) if s[1] is not None]
    pairs = clip_tracks(old, clip_old, new, clip_new) if clip_old and clip_new else []
    # A face without a moment is a photo's, or a clip's that departed before departed faces
    # kept their moment (schema 8): it is matched by box, as it always was.
    paired = {j for _, j in pairs}
    by_box_old = [i for i, s in enumerate(old) if s[1] is None]
    by_box_new = [j for j in range(len(new)) if j not in paired]
    pairs += [
        (by_box_old[i], by_box_new[j])
        for i, j in same_boxes([old[i][0] for i in by_box_old], [new[j][0] for j in by_box_new])
    ]
    return pairs


def same_boxes(
    old: Sequence[tuple[int, int, int, int]], new: Sequence[tuple[int, int, int, int]]
) -> list[tuple[int, int]]:
    """Pairs (old index, new index) of boxes (top, right, bottom, left) of one photo that
    frame the same face: the photo rule of same_faces."""
    candidates = []
    for i, a in enumerate(old):
        for j, b in enumerate(new):
            overlap = _iou(a, b)
            if overlap >= SAME_FACE_IOU or (centre_in(a, b) and centre_in(b, a)):
                candidates.append((-overlap, i, j))
    pairs, used_old, used_new = [], set(), set()
    for _, i, j in sorted(candidates):
        if i not in used_old and j not in used_new:
            pairs.append((i, j))
            used_old.add(i)
            used_new.add(j)
    return pairs


def clip_tracks(
    old: Sequence[Seen], old_idx: list[int], new: Sequence[Seen], new_idx: list[int]
) -> list[tuple[int, int]]:
    """Pairs (old index, new index) of a clip's faces read twice: whole tracks are paired,
    one old track to one new one, when their times overlap and at least half the new track's
    faces are framed like the old track's face nearest in time (the same-box rule); the pairs
    that agree best come first. Each face of a paired new track then takes after the old
    face nearest to it in time. A face recorded without a track is a track of its own moment.
    """
    old_tracks, new_tracks = _tracks(old, old_idx), _tracks(new, new_idx)
    candidates = []
    takes_after: dict[tuple[int, int], list[tuple[int, int]]] = {}  # (a, b) -> face pairs
    for a, (a_span, a_faces) in enumerate(old_tracks):
        for b, (b_span, b_faces) in enumerate(new_tracks):
            overlap = min(a_span[1], b_span[1]) - max(a_span[0], b_span[0])
            if overlap < 0:
                continue
            faces = [(_nearest_in_time(old, a_faces, new[j][1]), j) for j in b_faces]
            agree = sum(bool(same_boxes([old[i][0]], [new[j][0]])) for i, j in faces)
            if 2 * agree >= len(b_faces):
                candidates.append((-agree / len(b_faces), -overlap, a, b))
                takes_after[a, b] = faces
    pairs, used_old, used_new = [], set(), set()
    for _, _, a, b in sorted(candidates):
        if a not in used_old and b not in used_new:
            used_old.add(a)
            used_new.add(b)
            pairs += takes_after[a, b]
    return pairs


def _tracks(seen: Sequence[Seen], idx: list[int]) -> list[tuple[tuple[int, int], list[int]]]:
    """A clip's faces grouped by track: (time the track covers, its faces' indices)."""
    groups: dict[tuple[str, int], list[int]] = {}
    for i in idx:
        track = seen[i][2]
        groups.setdefault(("track", track) if track is not None else ("alone", i), []).append(i)
    out = []
    for faces in groups.values():
        _, _, _, start, end = seen[faces[0]]
        moments = [int(seen[i][1] or 0) for i in faces]
        lo = start if start is not None else min(moments)
        hi = end if end is not None else max(moments)
        out.append(((lo, hi), faces))
    return out


def _nearest_in_time(seen: Sequence[Seen], faces: list[int], ms: int | None) -> int:
    return min(faces, key=lambda i: (abs(int(seen[i][1] or 0) - int(ms or 0)), i))


# Boxes of one face from two detectors or settings overlap far more than this; two faces side
# by side in a group photo far less.
SAME_FACE_IOU = 0.4


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    top, bottom = max(a[0], b[0]), min(a[2], b[2])
    left, right = max(a[3], b[3]), min(a[1], b[1])
    inter = max(0, bottom - top) * max(0, right - left)
    area_a = (a[2] - a[0]) * (a[1] - a[3])
    area_b = (b[2] - b[0]) * (b[1] - b[3])
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def centre_in(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """True if the centre of box `a` lies inside box `b`."""
    cy, cx = (a[0] + a[2]) / 2, (a[1] + a[3]) / 2
    return b[0] <= cy <= b[2] and b[3] <= cx <= b[1]
