"""Shared fixtures: the real photos in ../shared, temp folders, and a ready-made scanned state.

Tests come in two tiers. Those that read the shared photos carry the `photos` marker (a test
using the scanned-library fixtures gets it automatically); `pytest -m "not photos"` runs the
rest anywhere, a clone without ../shared included. A run that selects photo tests without the
photos fails at once: those tests would prove nothing. FACED_TEST_PHOTOS points elsewhere.

Encoding photos is the slow part, so fixture_small is scanned once per session into a template
state; tests that need a scanned library get their own copy of it.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from faced.cli import main

REPO = Path(__file__).resolve().parent.parent
FACES = Path(os.environ.get("FACED_TEST_PHOTOS", REPO.parent / "shared" / "data" / "faces"))
SMALL = FACES / "fixture_small"
EXTRAS = FACES / "fixture_extras"
NOISY = FACES / "jurassic_park_noisy"
LFW = FACES / "lfw_dev"


PHOTO_FIXTURES = {"small", "small_template"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PHOTO_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.photos)


def pytest_collection_finish(session: pytest.Session) -> None:
    # Photo tests without the photos would prove nothing, so fail loudly instead of skipping.
    needs_photos = any(item.get_closest_marker("photos") for item in session.items)
    if needs_photos and not SMALL.is_dir():
        raise pytest.UsageError(
            f"test photos not found at {FACES} (../shared must be beside the repo); "
            'run `pytest -m "not photos"` for the tests that need none'
        )


def faced(*args: str | Path) -> int:
    """Run the CLI in this process; returns the exit code."""
    return main([str(a) for a in args])


def faced_json(*args: str | Path, capsys: pytest.CaptureFixture[str]) -> object:
    """Run a CLI command with --json and parse what it printed."""
    capsys.readouterr()
    assert faced(*args, "--json") == 0
    return json.loads(capsys.readouterr().out)


def run_cli(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `python -m faced` as a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "faced", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        check=False,
    )


def person_of(link: Path) -> str:
    """The label (folder name in ../shared) of the photo a person-folder link points to."""
    return Path(os.path.realpath(link)).parent.name


def people_folders(people: Path, unknown: str = "unknown") -> dict[str, list[Path]]:
    """Person folder name -> the photo links in it (montage and unknown left out)."""
    out: dict[str, list[Path]] = {}
    for d in sorted(people.iterdir()):
        if d.is_dir() and not d.name.startswith(".") and d.name != unknown:
            out[d.name] = sorted(p for p in d.iterdir() if p.is_symlink())
    return out


@dataclass
class PhotoLibrary:
    """A scanned copy of a photo set: photos (a copy, so tests may change them), people, state."""

    root: Path
    photos: Path
    people: Path
    state: Path

    def scan(self) -> int:
        return faced("scan", self.photos, "--output", self.people, "--state", self.state)


@pytest.fixture(scope="session")
def small_template(tmp_path_factory: pytest.TempPathFactory) -> PhotoLibrary:
    root = tmp_path_factory.mktemp("small")
    lib = PhotoLibrary(root, root / "photos", root / "people", root / "state")
    shutil.copytree(SMALL, lib.photos, ignore=shutil.ignore_patterns("*.csv", "*.txt"))
    assert lib.scan() == 0
    return lib


@pytest.fixture
def small(small_template: PhotoLibrary, tmp_path: Path) -> Iterator[PhotoLibrary]:
    """A private copy of the scanned fixture_small library (photos, state and people)."""
    lib = PhotoLibrary(tmp_path, tmp_path / "photos", tmp_path / "people", tmp_path / "state")
    shutil.copytree(small_template.photos, lib.photos, symlinks=True)
    shutil.copytree(small_template.state, lib.state)
    (lib.state / "writer.lock").unlink(missing_ok=True)
    # Point the copied records at the copied photos, so nothing needs encoding again.
    with sqlite3.connect(lib.state / "faced.sqlite3") as db:
        db.execute(
            "UPDATE images SET path = CAST(replace(CAST(path AS TEXT), ?, ?) AS BLOB)",
            (str(small_template.photos), str(lib.photos)),
        )
        db.execute("DELETE FROM folders")
        db.execute("DELETE FROM links")
    assert lib.scan() == 0
    yield lib
