"""The command line itself: options wherever --help shows them, states never made by accident,
odd input and pipes handled."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from faced.config import Config
from faced.pipeline.library import Library
from faced.records import EncodeResult, FileStat
from faced.store import Store

from .conftest import REPO, faced


def test_options_before_the_command_are_honoured(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("colour: blue\n", encoding="utf-8")
    assert faced("--config", bad, "status") == 2
    assert faced("status", "--config", bad) == 2


def test_a_correction_without_a_state_refuses_and_creates_none(tmp_path: Path) -> None:
    assert faced("name", "1", "Alice", "--state", tmp_path / "none") == 2
    assert not (tmp_path / "none").exists()


def test_a_config_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "faced.yaml"
    config.write_bytes(b"output: \xff\xfe\n")
    assert faced("status", "--config", config) == 2


def test_a_fifo_named_like_a_video_is_an_error_not_a_hang(tmp_path: Path) -> None:
    # The daemon hands a file moved into the tree straight to a worker, as this does.
    fifo = tmp_path / "clip.mp4"
    os.mkfifo(fifo)
    code = (
        "import os, sys; from faced.config import *; from faced.faces.work import encode_file;"
        f"r = encode_file(os.fsencode({str(fifo)!r}), ImagesConfig(), DetectionConfig(),"
        " VideoConfig()); print(r.status.value, r.reason)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "error not a regular file", done.stderr


def test_a_result_for_a_file_deleted_meanwhile_is_not_recorded(tmp_path: Path) -> None:
    gone = os.fsencode(tmp_path / "gone.jpg")  # never there, or deleted while it was read
    result = EncodeResult.found(gone, FileStat(1, 1, "d"), (), size=(1, 1), detector="d", model="m")
    cfg = Config().with_paths(output=tmp_path / "people", state=tmp_path / "state")
    with Store(cfg.state) as store:
        Library(cfg, store).record(result)
        assert store.images.get(gone) is None


def test_a_dataset_export_into_a_watched_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    config = tmp_path / "faced.yaml"
    config.write_text(f"watch: [{tmp_path / 'photos'}]\n", encoding="utf-8")
    out = tmp_path / "photos" / "crops"
    assert faced("export", "--dataset", out, "--config", config, "--state", tmp_path / "s") == 2


def test_a_people_folder_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    people = tmp_path / "people"
    people.write_text("not a folder", encoding="utf-8")  # as unwritable as it gets, even for root
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "faced",
            "scan",
            str(tmp_path / "photos"),
            "-o",
            str(people),
            "--state",
            str(tmp_path / "state"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 1
    assert "cannot write the people folder" in done.stderr and "Traceback" not in done.stderr
