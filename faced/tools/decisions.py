"""The user's decisions as a small JSON file that outlives any state: `faced decisions`.

Names, merges (faces that belong together), hidden people and rejections, each face keyed by
its file's content hash and its box (in a clip also its moment and track), never by an id or a
path: the file applies to any state that holds the same photos and clips, wherever they live
now, whatever detector or video settings found their faces. A file's faces are found again as
a re-read finds them (identity.same_faces): in a photo by box, in a clip by track and time.

    {"faced_decisions": 2,
     "people": [{"name": "Alice", "hidden": false, "faces": [["<hash>", [t, r, b, l]], ...]}],
     "rejections": [{"face": ["<hash>", [t, r, b, l]], "person": 0}]}

A clip's face is ["<hash>", [t, r, b, l], ms, track, track start ms, track end ms] (track
fields null for a face kept without one). `person` in a rejection is an index into `people`.
Version 1 files (photos' keys only) are read too.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from faced.errors import UsageError
from faced.people.identity import Seen, same_faces
from faced.store import Store

VERSION = 2
READS = (1, 2)  # versions this faced reads: 1 keyed every face by hash and box alone
FaceKey = tuple[str, Seen]


def export_decisions(store: Store, dest: Path) -> dict[str, int]:
    """Write the decisions file. Returns how many people and rejections it holds."""
    keyed = store.faces.keyed()
    rejections = store.people.rejections()
    summary = {p.id: p for p in store.people.summary()}
    refused = {person for _, person in rejections}
    chosen = sorted(pid for pid, p in summary.items() if p.name or p.hidden or pid in refused)
    index = {pid: i for i, pid in enumerate(chosen)}
    faces_of: dict[int, list[FaceKey]] = defaultdict(list)
    key_of: dict[int, FaceKey] = {}
    for face_id, digest, seen, person in keyed:
        key_of[face_id] = (digest, seen)
        if person in index:
            faces_of[person].append((digest, seen))
    refusals = [
        {"face": _raw(key_of[f]), "person": index[p]}
        for f, p in sorted(rejections)
        if f in key_of and p in index
    ]
    data = {
        "faced_decisions": VERSION,
        "people": [
            {
                "name": summary[pid].name,
                "hidden": summary[pid].hidden,
                "faces": [_raw(k) for k in faces_of[pid]],
            }
            for pid in chosen
        ],
        "rejections": refusals,
    }
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, dest)
    return {"people": len(chosen), "rejections": len(refusals)}


def import_decisions(store: Store, source: Path) -> dict[str, int]:
    """Apply a decisions file to this state's people. A person of the file is the current
    person holding most of its faces; faces of it held by other people are merged into that
    one. Returns how many people were named, merged, hidden, and faces rejected."""
    data = _read(source)
    people = [[_key(raw) for raw in person["faces"]] for person in data["people"]]
    refused = [_key(r["face"]) for r in data["rejections"]]
    faces = _FaceIndex(store, [k for keys in people for k in keys] + refused)
    done: Counter[str] = Counter()
    current: list[int | None] = []
    for person, keys in zip(data["people"], people, strict=True):
        holders = Counter(p for key in keys for p in faces.people_of(key))
        if not holders:
            current.append(None)
            continue
        pid = max(sorted(holders), key=lambda p: holders[p])
        others = [p for p in holders if p != pid]
        if others:
            store.people.merge(pid, others)
            done["merged"] += len(others)
        if person.get("name") and store.people.named_as(person["name"]) != pid:
            store.people.set_name(pid, str(person["name"]))
            done["named"] += 1
        if person.get("hidden"):
            store.people.hide(pid)
            done["hidden"] += 1
        current.append(pid)
    for rejection, key in zip(data["rejections"], refused, strict=True):
        target = current[int(rejection["person"])]
        if target is not None:
            for face in faces.faces_of(key):
                done["rejected"] += store.people.reject_face(face, target)
    if sum(done.values()):
        store.touch_edits()
    return {k: done[k] for k in ("named", "merged", "hidden", "rejected")}


class _FaceIndex:
    """The current faces that a file's faces are found again as: per content hash, the file's
    faces and the current ones are paired as a re-read pairs them (identity.same_faces), so
    two faces side by side never swap, and a clip's faces go by track and time."""

    def __init__(self, store: Store, keys: list[FaceKey]) -> None:
        current: dict[str, list[tuple[int, Seen, int | None]]] = defaultdict(list)
        for face_id, digest, seen, person in store.faces.keyed():
            current[digest].append((face_id, seen, person))
        wanted: dict[str, list[Seen]] = defaultdict(list)
        for digest, seen in dict.fromkeys(keys):
            wanted[digest].append(seen)
        self.found: dict[FaceKey, list[tuple[int, int | None]]] = defaultdict(list)
        for digest, old in wanted.items():
            new = current.get(digest, [])
            for i, j in same_faces(old, [seen for _, seen, _ in new]):
                self.found[(digest, old[i])].append((new[j][0], new[j][2]))

    def people_of(self, key: FaceKey) -> list[int]:
        """The people holding the current faces `key` was found again as."""
        return [p for _, p in self.found.get(key, []) if p is not None]

    def faces_of(self, key: FaceKey) -> list[int]:
        """The current faces `key` was found again as."""
        return [f for f, _ in self.found.get(key, [])]


def _raw(key: FaceKey) -> list[Any]:
    digest, (box, ms, track, start, end) = key
    return [digest, list(box)] if ms is None else [digest, list(box), ms, track, start, end]


def _key(raw: Any) -> FaceKey:
    digest, box, *clip = raw
    t, r, b, left = (int(v) for v in box)
    ms, track, start, end = (None if v is None else int(v) for v in (*clip, *[None] * 4)[:4])
    return str(digest), ((t, r, b, left), ms, track, start, end)


def _read(source: Path) -> dict[str, Any]:
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{source}: not a decisions file: {exc}") from exc
    if not isinstance(data, dict) or data.get("faced_decisions") not in READS:
        raise UsageError(f"{source}: not a faced decisions file (version {VERSION})")
    if not isinstance(data.get("people"), list) or not isinstance(data.get("rejections"), list):
        raise UsageError(f"{source}: a decisions file needs 'people' and 'rejections' lists")
    return data
