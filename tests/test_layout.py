"""Planning the people folder: safe names, unique names, what goes to unknown/."""

from __future__ import annotations

import dataclasses
import os
import random

import pytest

from faced.publish.layout import (
    MAX_NAME_BYTES,
    NAME_BY_FAMILY,
    LinkNamer,
    folder_names,
    link_names,
    name_family,
    plan_layout,
    sanitize_name,
)
from faced.records import FolderRule, PersonEntry


@pytest.mark.parametrize(
    "hostile",
    [
        "../x",
        "a/b",
        ".hidden",
        "x" * 300,
        "..",
        "/",
        "a\\b",
        "line\nbreak",
        " spaced. ",
        "montage.jpg",
        "\x00nul",
    ],
)
def test_hostile_names_are_made_safe(hostile: str) -> None:
    safe = sanitize_name(hostile)
    assert "/" not in safe and "\\" not in safe and "\n" not in safe and "\x00" not in safe
    assert not safe.startswith(".") and safe not in ("..", ".")
    assert len(safe.encode()) <= MAX_NAME_BYTES
    assert safe.lower() != "montage.jpg"


def test_unicode_names_survive() -> None:
    assert sanitize_name("Zoë Ångström 李") == "Zoë Ångström 李"


def entry(pid: int, name: str | None, faces: int = 3) -> PersonEntry:
    return PersonEntry(
        pid, name, tuple(range(pid * 100, pid * 100 + faces)), {pid: b"/p/%d.jpg" % pid}
    )


def test_two_people_never_share_a_folder() -> None:
    names = folder_names(
        [
            entry(1, "Alice"),
            entry(2, "alice"),
            entry(3, "a/b"),
            entry(4, "a_b"),
            entry(5, "unknown"),
            entry(6, "person_0001"),
            entry(7, None),
        ],
        "unknown",
    )
    folders = [f.casefold() for f in names.values()]
    assert len(set(folders)) == len(folders)
    assert names[1] == "Alice" and names[7] == "person_0007"
    assert "unknown" not in folders and names[6] != "person_0001"


def test_link_names_are_unique_and_stable() -> None:
    images = {
        1: b"/a/x.jpg",
        2: b"/b/x.jpg",
        3: b"/c/X.JPG",
        4: b"/d/.hidden.jpg",
        5: b"/e/montage.jpg",
        6: b"/f/new\nline.jpg",
    }
    names = link_names(images)
    assert len(names) == 6 and set(names.values()) == set(images)
    assert b"montage.jpg" not in names
    assert not any(n.startswith(b".") for n in names)
    assert names == link_names(dict(reversed(list(images.items()))))


def test_people_below_min_faces_go_to_unknown() -> None:
    plans = plan_layout(
        [entry(1, None, faces=1), entry(2, "Bob", faces=3)],
        {9: b"/z/n.jpg"},
        rule=FolderRule(2),
        unknown="unknown",
        montage_faces=25,
    )
    by_folder = {p.folder: p for p in plans}
    assert set(by_folder) == {"Bob", "unknown"}
    assert set(by_folder["unknown"].targets) == {1, 9}
    assert by_folder["Bob"].montage_faces == (200, 201, 202)


def test_a_link_namer_names_as_link_names_and_notices_every_change() -> None:
    namer = LinkNamer()
    images = {1: b"/p/a.jpg", 2: b"/q/a.jpg"}
    first = namer.names(7, images)
    assert first == link_names(images)
    assert namer.names(7, dict(images)) is first  # unchanged: the names kept
    grown = {**images, 3: b"/r/a.jpg"}
    assert namer.names(7, grown) == link_names(grown)
    taken = frozenset({b"a.jpg"})
    assert namer.names(7, grown, taken) == link_names(grown, taken)


def test_a_large_folder_renamed_family_by_family_gets_exactly_link_names() -> None:
    # Names that collide in every way: case, a photo literally called "a (2).jpg", a user's
    # file taking a name, photos without an extension, photos that move folder or name.
    rng = random.Random(7)
    bases = [b"a.jpg", b"A.JPG", b"a (2).jpg", b"a (2) (3).jpg", b"b.png", b"README", b".x.jpg"]
    bases += [f"p{i}.jpg".encode() for i in range(40)]

    def photo() -> bytes:
        return b"/lib/%d/" % rng.randrange(30) + rng.choice(bases)

    images = {i: photo() for i in range(NAME_BY_FAMILY + 200)}
    taken = frozenset({b"a (3).jpg"})
    namer = LinkNamer()
    assert namer.names(5, images, taken) == link_names(images, taken)
    next_id = len(images)
    for _ in range(40):
        images = dict(images)
        for _ in range(rng.randrange(1, 6)):
            move = rng.random()
            if move < 0.4:
                images[next_id] = photo()
                next_id += 1
            elif move < 0.7:
                del images[rng.choice(list(images))]
            else:
                images[rng.choice(list(images))] = photo()
        assert namer.names(5, images, taken) == link_names(images, taken)


@pytest.mark.parametrize(
    "name", [b"a.jpg", b"A (2).JPG", b"a (2) (10).jpg", b"a (x).jpg", b"README (3)", b"a.b (2).c"]
)
def test_a_name_is_of_the_family_of_the_file_name_it_was_made_from(name: bytes) -> None:
    stem, ext = os.path.splitext(name)  # as link_names numbers a name
    made = stem + b" (4)" + ext
    assert name_family(made) == name_family(name)


def test_signatures_kept_between_plans_are_what_a_fresh_plan_gives() -> None:
    namer = LinkNamer()
    people = [entry(1, None), entry(2, "Bob")]

    def signatures(people: list[PersonEntry]) -> dict[int, tuple[str, str]]:
        plans = plan_layout(
            people, {}, rule=FolderRule(2), unknown="unknown", montage_faces=25, namer=namer
        )
        return {
            p.person_id: (p.signature(), dataclasses.replace(p, signed=None).signature())
            for p in plans
        }

    first = signatures(people)
    again = signatures(people)  # the same entries: signatures reused
    assert first == again and all(kept == fresh for kept, fresh in again.values())
    bob = people[1]
    moved = [people[0], PersonEntry(2, "Bob", bob.face_ids, {2: b"/p/elsewhere.jpg"})]
    changed = signatures(moved)
    assert changed[2][0] == changed[2][1] != first[2][0] and changed[1] == first[1]
