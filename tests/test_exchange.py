"""Exports in the classic formats, and importing the classic pickle."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import PhotoLibrary, faced, faced_json, people_folders


def test_pickle_export_is_the_classic_format(small: PhotoLibrary, tmp_path: Path) -> None:
    dest = tmp_path / "encodings.pickle"
    assert faced("export", "--pickle", dest, "--state", small.state) == 0
    with dest.open("rb") as fh:
        data = pickle.load(fh)  # plain pickle, as cluster_faces.py reads it
    assert isinstance(data, list) and len(data) == 66
    for d in data:
        assert set(d) == {"imagePath", "loc", "encoding"}
        assert Path(d["imagePath"]).is_file()
        top, right, bottom, left = d["loc"]
        assert bottom > top and right > left
        assert isinstance(d["encoding"], np.ndarray) and d["encoding"].shape == (128,)
    # What cluster_faces.py does with it.
    encodings = np.array([d["encoding"] for d in data])
    assert encodings.shape == (66, 128)


def test_dataset_export_has_a_folder_per_named_person(small: PhotoLibrary, tmp_path: Path) -> None:
    folder = next(iter(people_folders(small.people)))
    assert faced("name", folder, "Someone", "--state", small.state) == 0
    dest = tmp_path / "dataset"
    assert faced("export", "--dataset", dest, "--named-only", "--state", small.state) == 0
    assert sorted(p.name for p in dest.iterdir()) == ["Someone", "faces.csv"]
    crops = sorted((dest / "Someone").glob("*.jpg"))
    assert crops
    with Image.open(crops[0]) as im:
        assert im.size == (150, 150)
    with (dest / "faces.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(crops) and all(Path(r["photo"]).is_file() for r in rows)
    everyone = tmp_path / "everyone"
    assert faced("export", "--dataset", everyone, "--state", small.state) == 0
    assert len([p for p in everyone.iterdir() if p.is_dir()]) == 8


def test_import_needs_trust_and_then_skips_encoding(
    small: PhotoLibrary, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exported = tmp_path / "encodings.pickle"
    assert faced("export", "--pickle", exported, "--state", small.state) == 0
    fresh = tmp_path / "fresh"
    assert faced("import", "--pickle", exported, "--state", fresh) == 2  # not without trust
    assert faced("import", "--pickle", exported, "--trust-pickle", "--state", fresh) == 0
    status = faced_json("status", "--state", fresh, capsys=capsys)
    assert isinstance(status, dict) and (status["images"], status["faces"]) == (65, 66)
    # A scan of the same photos into that state reads nothing: the import stands for encoding.
    capsys.readouterr()
    assert faced("scan", small.photos, "--output", tmp_path / "people2", "--state", fresh) == 0
    assert "0 photo(s) read, 65 unchanged" in capsys.readouterr().out
    assert len(people_folders(tmp_path / "people")) == 8
