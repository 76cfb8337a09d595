"""The decisions file (`faced decisions export / import`): each face found again as a re-read
finds it, so that decisions move between states that read the same files otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from faced.people.identity import same_faces
from faced.records import EncodeResult, Face, FileStat, TrackSpan
from faced.store import Store
from faced.tools.decisions import export_decisions, import_decisions

from .test_identity import _shots


def _clip_state(path: Path, times: range, tracks: dict[int, tuple[str, int, int, int]]) -> None:
    """A state holding one clip (content hash "clip") sampled at `times`, its faces given to
    one person per name in `tracks`, named so."""
    seen = _shots(times, tracks)
    faces = tuple(
        Face(box, np.zeros(128, np.float32), b"jpeg", frame_ms=ms, track=TrackSpan(n, s, e))
        for box, ms, n, s, e in seen
        if n is not None and ms is not None and s is not None and e is not None
    )
    result = EncodeResult.found(
        b"/v/clip.mp4", FileStat(1, 1, "clip"), faces, size=(640, 360), detector="d", model="m"
    )
    who = [tracks[n or 0][0] for _, _, n, _, _ in seen]
    with Store(path) as store:
        store.images.record(result, match=same_faces)
        t = store.faces.table("m")
        names = sorted(set(who))
        groups = [np.flatnonzero(np.array(who) == name) for name in names]
        none = np.zeros(len(t), np.int64)
        store.people.apply_assignment(t.face_id, none, groups, none)
        t = store.faces.table("m")
        for name, group in zip(names, groups, strict=True):
            store.people.set_name(int(t.person_id[group[0]]), name)


def _names_by_side(path: Path) -> set[tuple[str, int, bool]]:
    with Store(path) as store:
        by_id = {p.id: p.name for p in store.people.summary()}
        return {
            (str(by_id[person]), int((ms or 0) >= 3000), (box[1] + box[3]) / 2 < 320)
            for _, _, (box, ms, _, _, _), person in store.faces.keyed()
            if person is not None
        }


def test_decisions_about_a_clip_find_each_face_by_track_and_time(tmp_path: Path) -> None:
    # As in a clip read again: two people side by side, sides swapped in the second shot,
    # the second state sampled at other moments with its people unnamed. Keyed by box alone,
    # each name's faces would be found at both sides and importing would merge the two.
    tracks = {1: ("jerry", 0, 40, 30), 2: ("woz", 0, 360, 30)}
    tracks |= {3: ("woz", 1, 40, 30), 4: ("jerry", 1, 360, 30)}
    _clip_state(tmp_path / "a", range(0, 6000, 500), tracks)
    _clip_state(tmp_path / "b", range(0, 6000, 333), tracks)
    with Store(tmp_path / "b") as store:
        for p in store.people.summary():
            store.people.set_name(p.id, None)
    with Store(tmp_path / "a") as store:
        export_decisions(store, tmp_path / "decisions.json")
    with Store(tmp_path / "b") as store:
        done = import_decisions(store, tmp_path / "decisions.json")
    assert done["merged"] == 0 and done["named"] == 2
    assert _names_by_side(tmp_path / "b") == _names_by_side(tmp_path / "a")


def test_a_version_1_decisions_file_still_names_the_faces_of_its_photos(tmp_path: Path) -> None:
    face = Face((10, 60, 60, 10), np.zeros(128, np.float32), b"jpeg")
    photo = EncodeResult.found(
        b"/p/a.jpg", FileStat(1, 1, "photo"), (face,), size=(100, 100), detector="d", model="m"
    )
    with Store(tmp_path) as store:
        store.images.record(photo, match=same_faces)
        t = store.faces.table("m")
        none = np.zeros(len(t), np.int64)
        store.people.apply_assignment(t.face_id, none, [np.array([0])], none)
    old = {
        "faced_decisions": 1,
        "people": [{"name": "Ann", "hidden": False, "faces": [["photo", [12, 61, 61, 11]]]}],
        "rejections": [],
    }
    (tmp_path / "old.json").write_text(json.dumps(old), encoding="utf-8")
    with Store(tmp_path) as store:
        assert import_decisions(store, tmp_path / "old.json")["named"] == 1
        assert [p.name for p in store.people.summary()] == ["Ann"]
