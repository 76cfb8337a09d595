"""Following faces through a clip: detections in sampled frames linked into tracks.

A track is one appearance of one face: the same box a little further, a little bigger, in the
next frame looked at. Linking is by position, which costs nothing, since describing a face
(dlib's ResNet) costs as much as finding every face in a frame. Three things keep a track to
one person: a shot change ends every track (`shot_changed`); a face unseen for longer than a
gap ends its own; and the few faces of a track that are described anyway (the ones kept) must
agree, or the track is split where they stop agreeing (`split_at_switches`, which describes
more faces only when it has to).

Plain numpy and OpenCV on arrays: nothing here decodes a file or loads a model; the caller
(faced.faces.video) passes a `describe` function.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from faced.records import Box

# A face moves little between two frames looked at a fraction of a second apart: its centre
# by at most this many of its own heights, its height by at most this factor.
MAX_MOVE = 1.0
MAX_GROWTH = 1.5
# A shot change: the mean absolute change of a frame's hue, saturation and value (0-255,
# averaged over the three) from the previous frame looked at, above PySceneDetect's content
# detector default. A cut it misses between two people is still caught by the descriptors
# (split_at_switches); a cut it sees in a moving shot only splits a track of one person.
SHOT_CHANGE = 27.0
SHOT_SIDE = 64  # frames are compared as small copies: a cut changes everything, noise little
# Two described faces of one track further apart than dlib's same-person line are two people
# the position linking joined (a cut the shot test missed, a face passing in front).
SAME_FACE = 0.6
# A track keeps crops of at most this many of its sightings for describing later; longer
# tracks are thinned evenly, which bounds memory for a face on screen for an hour.
MAX_CROPS = 64


@dataclass
class Sighting:
    """One face in one frame looked at: where, how sure the detector was, and a crop to
    describe it from later (None once thinned away)."""

    ms: int
    box: Box  # in the frame's pixels
    score: float
    crop: np.ndarray | None = None  # RGB, around the face, the face at most CROP_FACE_PX tall
    crop_box: Box = (0, 0, 0, 0)  # the face's box in the crop's pixels
    encoding: np.ndarray | None = None  # filled in when described

    @property
    def height(self) -> int:
        return self.box[2] - self.box[0]


@dataclass
class Track:
    """Sightings of one face, in time order."""

    sightings: list[Sighting] = field(default_factory=list)

    @property
    def start_ms(self) -> int:
        return self.sightings[0].ms

    @property
    def last(self) -> Sighting:
        return self.sightings[-1]

    def add(self, s: Sighting) -> None:
        self.sightings.append(s)
        kept = [x for x in self.sightings if x.crop is not None]
        if len(kept) > MAX_CROPS:  # thin evenly: every second crop goes (the newest stays)
            for x in kept[-2::-2]:
                x.crop = None


def shot_signature(rgb: np.ndarray) -> np.ndarray:
    """A small HSV copy of a frame, for `shot_changed`."""
    h, w = rgb.shape[:2]
    scale = SHOT_SIDE / max(h, w)
    small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))))
    return cv2.cvtColor(small, cv2.COLOR_RGB2HSV).astype(np.int16)


def shot_changed(before: np.ndarray | None, after: np.ndarray) -> bool:
    """True if two frames' signatures differ as a cut (or a jump in time) does."""
    if before is None or before.shape != after.shape:
        return before is not None
    return float(np.abs(after - before).mean()) > SHOT_CHANGE


def _cost(a: Box, b: Box) -> float | None:
    """How far box `b` is from where `a` was (in heights of the larger); None: too far, or
    too different in size, to be the same face moving."""
    ha, hb = a[2] - a[0], b[2] - b[0]
    if min(ha, hb) <= 0 or max(ha, hb) > MAX_GROWTH * min(ha, hb):
        return None
    ya, xa = (a[0] + a[2]) / 2, (a[1] + a[3]) / 2
    yb, xb = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    move = math.hypot(ya - yb, xa - xb) / max(ha, hb)
    return None if move > MAX_MOVE else move + abs(math.log(hb / ha))


class Tracker:
    """Links each frame's sightings to the tracks still open; hands back the tracks that end.

    Feed frames in time order (`frame`), call `cut` at a shot change, then `close`.
    """

    def __init__(self, gap_ms: int) -> None:
        """`gap_ms`: a face unseen for longer than this has left; if it comes back, it is a
        new track (and the clustering joins the two)."""
        self.gap_ms = gap_ms
        self.open: list[Track] = []

    def frame(self, ms: int, sightings: Sequence[Sighting]) -> list[Track]:
        """Take in one frame's sightings; returns the tracks that ended before it."""
        ended = [t for t in self.open if ms - t.last.ms > self.gap_ms]
        self.open = [t for t in self.open if ms - t.last.ms <= self.gap_ms]
        pairs = sorted(
            (c, ti, si)
            for ti, t in enumerate(self.open)
            for si, s in enumerate(sightings)
            if (c := _cost(t.last.box, s.box)) is not None
        )
        # Greedy by cost: the closest pairs first, each track and each sighting once. Two
        # faces of one frame are never one track.
        taken_t: set[int] = set()
        taken_s: set[int] = set()
        for _, ti, si in pairs:
            if ti not in taken_t and si not in taken_s:
                taken_t.add(ti)
                taken_s.add(si)
                self.open[ti].add(sightings[si])
        for si, s in enumerate(sightings):
            if si not in taken_s:
                self.open.append(Track([s]))
        return ended

    def cut(self) -> list[Track]:
        """A shot change: every open track ends."""
        ended, self.open = self.open, []
        return ended

    def close(self) -> list[Track]:
        """The clip is over: every open track ends."""
        return self.cut()


# Fills in the encoding of each sighting given that has none yet.
Describe = Callable[[Sequence[Sighting]], None]


def pick(track: Track, count: int) -> list[int]:
    """Indices of the sightings to keep: the track cut into `count` equal stretches of time,
    the best face of each (the detector's surest, then the largest), among those with a crop."""
    usable = [i for i, s in enumerate(track.sightings) if s.crop is not None]
    if len(usable) <= count:
        return usable
    t0, t1 = track.sightings[usable[0]].ms, track.sightings[usable[-1]].ms + 1
    chosen: list[int] = []
    for k in range(count):
        lo, hi = t0 + (t1 - t0) * k / count, t0 + (t1 - t0) * (k + 1) / count
        stretch = [i for i in usable if lo <= track.sightings[i].ms < hi and i not in chosen]
        if stretch:
            s = track.sightings
            chosen.append(max(stretch, key=lambda i: (s[i].score, s[i].height, -i)))
    return sorted(chosen)


def split_at_switches(track: Track, count: int, describe: Describe) -> list[Track]:
    """`track`, cut wherever its faces stop being one person, each part with the sightings to
    keep described. Describes the kept faces first; only when two neighbours among them
    disagree (farther apart than SAME_FACE) are the faces between them described, halving the
    stretch, to find where one person gives way to another."""
    keep = pick(track, count)
    if not keep:
        return []
    s = track.sightings
    describe([s[i] for i in keep])  # `describe` skips faces already described
    for a, b in itertools.pairwise(keep):
        if _apart(s[a], s[b]):
            # Bisect the stretch between a and b for the last face like a's.
            lo, hi = a, b
            while True:
                mids = [i for i in range(lo + 1, hi) if s[i].crop is not None]
                if not mids:
                    break
                mid = mids[len(mids) // 2]
                describe([s[mid]])
                if _apart(s[a], s[mid]):
                    hi = mid
                else:
                    lo = mid
            head = split_at_switches(Track(s[: lo + 1]), count, describe)
            return head + split_at_switches(Track(s[hi:]), count, describe)
    return [Track(s)]


def _apart(a: Sighting, b: Sighting) -> bool:
    assert a.encoding is not None and b.encoding is not None
    return float(np.linalg.norm(a.encoding - b.encoding)) > SAME_FACE
