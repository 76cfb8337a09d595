"""Video clips: sampled, de-duplicated per person, linked once in each person's folder."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from faced.config import Config, DetectionConfig, ImagesConfig, VideoConfig
from faced.faces.video import sample_times
from faced.faces.work import encode_file
from faced.pipeline.library import Library
from faced.records import Status
from faced.store import Store

from .conftest import SMALL, faced, faced_json, people_folders

JERRY = SMALL / "jerry_seinfeld" / "train_1.jpg"
WOZ = SMALL / "steve_wozniak" / "steve_wozniak1.jpg"


def make_clip(path: Path, photos: list[Path], seconds_each: int = 4, fps: int = 5) -> None:
    """An mp4 showing each photo for a few seconds, letterboxed into 640x480."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (640, 480))
    assert writer.isOpened()
    for photo in photos:
        img = cv2.imread(str(photo))
        assert img is not None
        scale = min(640 / img.shape[1], 480 / img.shape[0])
        img = cv2.resize(img, (int(img.shape[1] * scale), int(img.shape[0] * scale)))
        frame = np.zeros((480, 640, 3), np.uint8)
        y, x = (480 - img.shape[0]) // 2, (640 - img.shape[1]) // 2
        frame[y : y + img.shape[0], x : x + img.shape[1]] = img
        for _ in range(seconds_each * fps):
            writer.write(frame)
    writer.release()


@pytest.mark.photos
def test_a_clip_is_sampled_and_each_person_kept_a_few_times(tmp_path: Path) -> None:
    clip = tmp_path / "party.mp4"
    make_clip(clip, [JERRY, WOZ])
    video = VideoConfig(fps=2.0, faces_per_person=2)
    result = encode_file(os.fsencode(clip), ImagesConfig(), DetectionConfig(), video)
    assert result.status is Status.FACES, result.reason
    assert len(result.faces) == 16  # 8 s at 2 frames/s: a face in every frame
    cfg = dataclasses.replace(Config(), video=video)
    with Store(tmp_path / "state") as store:
        Library(cfg, store).record(result)
        faces = store.faces.rows()
    # The writer keeps each of the two people twice.
    assert len(faces) == 4
    times = sorted(f.frame_ms or 0 for f in faces)
    assert times[0] < 4000 <= times[-1]  # both halves of the clip are represented


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
def test_a_clip_is_linked_once_in_each_persons_folder(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for person in ("jerry_seinfeld", "steve_wozniak"):
        for photo in sorted((SMALL / person).glob("*.jpg"))[:4]:
            shutil.copy(photo, photos / f"{person}__{photo.name}")
    make_clip(photos / "party.mp4", [JERRY, WOZ])
    assert faced("scan", photos, "--output", tmp_path / "people", "--state", tmp_path / "s") == 0
    folders = people_folders(tmp_path / "people")
    holding = [f for f, links in folders.items() if "party.mp4" in [p.name for p in links]]
    assert len(holding) == 2  # Jerry's folder and Woz's, once each
    for folder in holding:
        names = [p.name for p in folders[folder]]
        assert names.count("party.mp4") == 1
        assert (tmp_path / "people" / folder / "montage.jpg").is_file()


@pytest.mark.photos
def test_dataset_export_crops_faces_seen_in_a_clip(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    make_clip(photos / "party.mp4", [JERRY, WOZ], seconds_each=6)
    config = tmp_path / "faced.yaml"
    config.write_text(
        "clustering: {min_faces: 2}\nvideo: {faces_per_person: 3}\n", encoding="utf-8"
    )
    args = ("--config", config, "--state", tmp_path / "s")
    assert faced("scan", photos, "--output", tmp_path / "people", *args) == 0
    assert faced("export", "--dataset", tmp_path / "dataset", *args) == 0
    crops = sorted((tmp_path / "dataset").glob("*/*.jpg"))
    assert len(crops) == 6  # two people, three faces each, all from the clip's frames
    csv_text = (tmp_path / "dataset" / "faces.csv").read_text(encoding="utf-8")
    assert csv_text.count("party.mp4") == 6
