"""The user's decisions as a small JSON file that outlives any state: `faced decisions`.

Names, merges (faces that belong together), hidden people and rejections, each face keyed by
its photo's content hash and its box, never by an id or a path: the file applies to any state
that holds the same photos, wherever they live now, whatever detector found their faces.

    {"faced_decisions": 1,
     "people": [{"name": "Alice", "hidden": false, "faces": [["<hash>", [t, r, b, l]], ...]}],
     "rejections": [{"face": ["<hash>", [t, r, b, l]], "person": 0}]}

`person` in a rejection is an index into `people`.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from faced.errors import UsageError
from faced.people.identity import same_boxes
from faced.records import Box
from faced.store import Store

VERSION = 1
FaceKey = tuple[str, Box]


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
    for face_id, digest, box, person in keyed:
        key_of[face_id] = (digest, box)
        if person in index:
            faces_of[person].append((digest, box))
    refusals = [
        {"face": [key_of[f][0], list(key_of[f][1])], "person": index[p]}
        for f, p in sorted(rejections)
        if f in key_of and p in index
    ]
    data = {
        "faced_decisions": VERSION,
        "people": [
            {
                "name": summary[pid].name,
                "hidden": summary[pid].hidden,
                "faces": [[d, list(b)] for d, b in faces_of[pid]],
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
    faces = _FaceIndex(store)
    done: Counter[str] = Counter()
    current: list[int | None] = []
    for person in data["people"]:
        holders = Counter(
            p for key in person["faces"] if (p := faces.person_of(_key(key))) is not None
        )
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
    for rejection in data["rejections"]:
        face = faces.face_of(_key(rejection["face"]))
        target = current[int(rejection["person"])]
        if face is not None and target is not None:
            done["rejected"] += store.people.reject_face(face, target)
    if sum(done.values()):
        store.touch_edits()
    return {k: done[k] for k in ("named", "merged", "hidden", "rejected")}


class _FaceIndex:
    """The current faces by content hash, matched to a file's boxes by same_boxes."""

    def __init__(self, store: Store) -> None:
        self.by_digest: dict[str, list[tuple[int, Box, int | None]]] = defaultdict(list)
        for face_id, digest, box, person in store.faces.keyed():
            self.by_digest[digest].append((face_id, box, person))

    def _find(self, key: FaceKey) -> tuple[int, Box, int | None] | None:
        candidates = self.by_digest.get(key[0], [])
        pairs = same_boxes([key[1]], [box for _, box, _ in candidates])
        return candidates[pairs[0][1]] if pairs else None

    def person_of(self, key: FaceKey) -> int | None:
        found = self._find(key)
        return found[2] if found else None

    def face_of(self, key: FaceKey) -> int | None:
        found = self._find(key)
        return found[0] if found else None


def _key(raw: Any) -> FaceKey:
    digest, box = raw
    t, r, b, left = (int(v) for v in box)
    return str(digest), (t, r, b, left)


def _read(source: Path) -> dict[str, Any]:
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{source}: not a decisions file: {exc}") from exc
    if not isinstance(data, dict) or data.get("faced_decisions") != VERSION:
        raise UsageError(f"{source}: not a faced decisions file (version {VERSION})")
    if not isinstance(data.get("people"), list) or not isinstance(data.get("rejections"), list):
        raise UsageError(f"{source}: a decisions file needs 'people' and 'rejections' lists")
    return data
