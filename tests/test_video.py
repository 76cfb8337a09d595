"""Video clips: faces followed through a clip as tracks, a track one person, the clip linked
once in each person's folder."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from faced.config import DetectionConfig, ImagesConfig, VideoConfig
from faced.faces.video import clip_label, sample_times
from faced.faces.work import encode_file
from faced.records import Status

from .clips import make_clip
from .conftest import SMALL, faced, faced_json, people_folders

JERRY = SMALL / "jerry_seinfeld" / "train_1.jpg"
WOZ = SMALL / "steve_wozniak" / "steve_wozniak1.jpg"
ELTON = SMALL / "elton_john" / "train_2.jpg"
MINDY = SMALL / "mindy_kaling" / "train_1.jpg"


def scan_clip(tmp_path: Path, clip_shots: list[Path | list[Path]], seconds: float = 3.0) -> Path:
    """Scan a folder holding only one clip made of `clip_shots`; returns the people folder."""
    photos = tmp_path / "photos"
    photos.mkdir(exist_ok=True)
    make_clip(photos / "news.mp4", clip_shots, seconds=seconds)
    people = tmp_path / "people"
    assert faced("scan", photos, "--output", people, "--state", tmp_path / "s") == 0
    return people


def holding_clip(people: Path) -> list[str]:
    """The person folders that link the clip (each exactly once)."""
    folders = people_folders(people)
    out = []
    for folder, links in folders.items():
        names = [p.name for p in links]
        if "news.mp4" in names:
            assert names.count("news.mp4") == 1
            out.append(folder)
    return out


@pytest.mark.photos
def test_every_person_on_screen_for_a_few_seconds_gets_a_folder(tmp_path: Path) -> None:
    people = scan_clip(tmp_path, [JERRY, WOZ, ELTON, MINDY])  # 3 s each, hard cuts
    assert len(holding_clip(people)) == 4
    for folder in holding_clip(people):
        assert (people / folder / "montage.jpg").is_file()


@pytest.mark.photos
def test_two_people_in_one_frame_stay_two(tmp_path: Path) -> None:
    people = scan_clip(tmp_path, [[JERRY, WOZ]], seconds=4.0)
    assert len(holding_clip(people)) == 2


@pytest.mark.photos
def test_two_faces_on_screen_together_are_two_people_however_alike(tmp_path: Path) -> None:
    people = scan_clip(tmp_path, [[JERRY, JERRY]], seconds=4.0)  # one photo twice, side by side
    assert len(holding_clip(people)) == 2


@pytest.mark.photos
def test_one_person_on_screen_for_two_seconds_gets_a_folder(tmp_path: Path) -> None:
    people = scan_clip(tmp_path, [ELTON], seconds=2.0)
    assert len(holding_clip(people)) == 1


@pytest.mark.photos
def test_a_person_who_leaves_and_comes_back_is_one_person(tmp_path: Path) -> None:
    again = SMALL / "jerry_seinfeld" / "train_3.jpg"
    people = scan_clip(tmp_path, [JERRY, WOZ, again])
    assert len(holding_clip(people)) == 2


@pytest.mark.photos
def test_each_track_keeps_its_faces_spread_over_it(tmp_path: Path) -> None:
    clip = tmp_path / "two.mp4"
    make_clip(clip, [JERRY, WOZ], seconds=4.0)
    video = VideoConfig(faces_per_track=2)
    result = encode_file(os.fsencode(clip), ImagesConfig(), DetectionConfig(), video)
    assert result.status is Status.FACES, result.reason
    tracks: dict[int, list[int]] = {}
    for face in result.faces:
        assert face.track is not None and face.frame_ms is not None
        assert face.track.start_ms <= face.frame_ms < face.track.end_ms
        tracks.setdefault(face.track.number, []).append(face.frame_ms)
    assert sorted(len(t) for t in tracks.values()) == [2, 2]  # one track per shot, 2 faces each
    for times in tracks.values():
        assert times[1] - times[0] >= 1000  # spread over the track, not two neighbours


@pytest.mark.photos
def test_photos_and_a_clip_of_the_same_person_are_one_person(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for photo in sorted((SMALL / "jerry_seinfeld").glob("*.jpg"))[:4]:
        shutil.copy(photo, photos / photo.name)
    people = scan_clip(tmp_path, [JERRY, WOZ])
    folders = people_folders(people)
    jerry = [f for f, links in folders.items() if "news.mp4" in [p.name for p in links]]
    assert len(jerry) == 2
    assert max(len(folders[f]) for f in jerry) == 5  # four photos and the clip


@pytest.mark.photos
def test_a_clip_tagged_as_recorded_sideways_is_read_upright(tmp_path: Path) -> None:
    clip = tmp_path / "phone.mp4"
    make_clip(clip, [JERRY], seconds=2.0, sideways=True)
    result = encode_file(os.fsencode(clip), ImagesConfig(), DetectionConfig(), VideoConfig())
    assert (result.width, result.height) == (640, 480)  # as the tag says to show it
    assert result.faces  # HOG finds no face lying on its side


def test_sample_times_are_capped_and_spread() -> None:
    assert sample_times(3000, VideoConfig(fps=1.0)) == [0, 1000, 2000, 3000]
    long = sample_times(3_600_000, VideoConfig(fps=1.0, max_frames=10))
    assert len(long) == 10 and long[0] == 0 and long[-1] > 3_500_000


def test_a_broken_video_is_an_error_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "photos" / "broken.mp4"
    bad.parent.mkdir()
    bad.write_bytes(np.random.default_rng(1).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    assert faced("scan", bad.parent, "--output", tmp_path / "p", "--state", tmp_path / "s") == 0
    status = faced_json("status", "--state", tmp_path / "s", capsys=capsys)
    assert isinstance(status, dict) and status["errors"] == 1
    assert "video" in status["recent_errors"][0]["reason"]


@pytest.mark.photos
def test_a_truncated_clip_is_an_error_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    whole = tmp_path / "whole.mp4"
    make_clip(whole, [JERRY, WOZ])
    data = whole.read_bytes()
    (photos / "cut.mp4").write_bytes(data[: len(data) * 2 // 3])
    assert faced("scan", photos, "--output", tmp_path / "p", "--state", tmp_path / "s") == 0
    status = faced_json("status", "--state", tmp_path / "s", capsys=capsys)
    assert isinstance(status, dict) and status["errors"] == 1
    assert "video" in status["recent_errors"][0]["reason"]


@pytest.mark.photos
def test_dataset_export_writes_the_faces_of_each_track(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    make_clip(photos / "party.mp4", [JERRY, WOZ], seconds=4.0)
    config = tmp_path / "faced.yaml"
    config.write_text("video: {faces_per_track: 4}\n", encoding="utf-8")
    args = ("--config", config, "--state", tmp_path / "s")
    assert faced("scan", photos, "--output", tmp_path / "people", *args) == 0
    assert faced("export", "--dataset", tmp_path / "dataset", *args) == 0
    crops = sorted((tmp_path / "dataset").glob("*/*.jpg"))
    assert len(crops) == 8  # two people, one track each, four faces per track
    assert len({c.parent for c in crops}) == 2
    csv_text = (tmp_path / "dataset" / "faces.csv").read_text(encoding="utf-8")
    assert csv_text.count("party.mp4") == 8


def _sides(state: Path) -> dict[str, set[tuple[bool, bool]]]:
    """Each named person's faces in the clip as (second shot?, left half?) pairs."""
    with sqlite3.connect(state / "faced.sqlite3") as db:
        rows = db.execute(
            "SELECT p.name, f.frame_ms, f.box_left, f.box_right FROM faces f"
            " JOIN people p ON p.id = f.person_id WHERE p.name IS NOT NULL"
        ).fetchall()
    out: dict[str, set[tuple[bool, bool]]] = {}
    for name, ms, left, right in rows:
        out.setdefault(name, set()).add((ms >= 3000, (left + right) / 2 < 320))
    return out


@pytest.mark.photos
def test_names_of_people_seen_only_in_a_clip_survive_its_reading_again(tmp_path: Path) -> None:
    # Two people side by side, then the same two with sides swapped: a face's box alone would
    # hand one person's name to the other. Re-read at another frame rate (other moments, other
    # zoom), each name must stay with its own person, faces matched by time and track.
    people = scan_clip(tmp_path, [[JERRY, WOZ], [WOZ, JERRY]])
    state = tmp_path / "s"
    folders = holding_clip(people)
    assert len(folders) == 2
    for folder, name in zip(sorted(folders), ("Alpha", "Beta"), strict=True):
        assert faced("name", folder, name, "--state", state) == 0
    before = _sides(state)
    assert set(before) == {"Alpha", "Beta"} and before["Alpha"] != before["Beta"]
    config = tmp_path / "faced.yaml"
    config.write_text("video:\n  fps: 3\n  gap_seconds: 0.8\n", encoding="utf-8")
    photos = tmp_path / "photos"
    assert faced("scan", photos, "-o", people, "--state", state, "--config", config) == 0
    assert _sides(state) == before
    assert sorted(holding_clip(people)) == ["Alpha", "Beta"]


@pytest.mark.photos
def test_decisions_about_a_clip_apply_to_a_state_that_read_it_at_other_moments(
    tmp_path: Path,
) -> None:
    # The same two people side by side, sides swapped in the second shot: keyed by box alone,
    # each person's faces would be found at both sides, and importing would merge the two.
    people = scan_clip(tmp_path, [[JERRY, WOZ], [WOZ, JERRY]])
    state = tmp_path / "s"
    for folder, name in zip(sorted(holding_clip(people)), ("Alpha", "Beta"), strict=True):
        assert faced("name", folder, name, "--state", state) == 0
    before = _sides(state)
    decisions = tmp_path / "decisions.json"
    assert faced("decisions", "export", decisions, "--state", state) == 0
    config = tmp_path / "faced.yaml"
    config.write_text("video:\n  fps: 3\n  gap_seconds: 0.8\n", encoding="utf-8")
    fresh, people2 = tmp_path / "fresh", tmp_path / "people2"
    photos = tmp_path / "photos"
    assert faced("scan", photos, "-o", people2, "--state", fresh, "--config", config) == 0
    assert faced("decisions", "import", decisions, "--state", fresh) == 0
    assert _sides(fresh) == before


def test_a_clip_is_read_again_when_how_tracks_are_cut_changes() -> None:
    det, video = DetectionConfig(), VideoConfig()
    for change in ({"gap_seconds": 2.5}, {"fps": 3.0}, {"faces_per_track": 5}):
        assert clip_label(det, dataclasses.replace(video, **change)) != clip_label(det, video)
