"""Configuration: defaults, the documented file, and errors reported all at once with key paths."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from faced.config import Config, load_config
from faced.config.sample import sample_yaml
from faced.errors import ConfigError

from .conftest import REPO, faced


def test_documented_file_equals_builtin_defaults() -> None:
    documented = load_config(REPO / "config" / "faced.yaml")
    builtin = load_config(None)
    for f in dataclasses.fields(Config):
        if f.name not in ("watch", "output", "state", "source"):
            assert getattr(documented, f.name) == getattr(builtin, f.name), f.name
    # Paths in a file are anchored at the file's folder.
    assert documented.output == REPO / "config" / "people"
    assert documented.watch[0].path == REPO / "config" / "photos"


def test_documented_file_is_generated_from_the_schema() -> None:
    # Regenerate with: faced sample-config > config/faced.yaml
    assert (REPO / "config" / "faced.yaml").read_text(encoding="utf-8") == sample_yaml()


def test_every_setting_is_documented() -> None:
    defaults = Config()
    sections: list[Any] = [defaults] + [
        getattr(defaults, f.name)
        for f in dataclasses.fields(Config)
        if dataclasses.is_dataclass(getattr(defaults, f.name))
    ]
    for section in sections:
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if f.name != "source" and not dataclasses.is_dataclass(value):
                assert f.metadata.get("doc"), f"{type(section).__name__}.{f.name}"


def test_builtin_defaults_watch_photos_and_publish_people(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None)
    assert [w.path for w in cfg.watch] == [tmp_path / "photos"]
    assert cfg.output == tmp_path / "people"


def test_every_problem_is_reported_with_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "colour: blue\n"
        "detection:\n  detector: mtcnn\n  min_face_px: -1\n  jitters: many\n"
        "clustering:\n  link_threshold: 0.4\n  pair_threshold: 0.5\n"
        "daemon:\n  workers: 1.5\n"
        "watch:\n  - polling: true\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    problems = err.value.problems
    text = "\n".join(problems)
    for key in (
        "colour",
        "detection.detector",
        "detection.min_face_px",
        "detection.jitters",
        "daemon.workers",
        "watch[0].path",
    ):
        assert f"{path}: {key}:" in text, key
    assert len(problems) == 6  # consistency checks come after type errors are fixed


def test_consistency_checked_after_types(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("clustering: {pair_threshold: 0.7, link_threshold: 0.5}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"clustering.pair_threshold: must be <="):
        load_config(path)


def test_not_yaml_and_not_a_mapping(tmp_path: Path) -> None:
    bad = tmp_path / "x.yaml"
    bad.write_text("watch: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(bad)


def test_watch_accepts_plain_strings(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("watch: [a, {path: b, polling: true}]\n", encoding="utf-8")
    cfg = load_config(path)
    assert [(w.path.name, w.polling) for w in cfg.watch] == [("a", False), ("b", True)]


def test_config_is_frozen() -> None:
    cfg = load_config(None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.output = Path("/elsewhere")  # type: ignore[misc]


def test_cli_exits_2_on_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("detection: {min_face_px: lots}\n", encoding="utf-8")
    assert faced("status", "--config", path, "--state", tmp_path) == 2
    assert "detection.min_face_px" in capsys.readouterr().err


def test_a_renamed_key_says_what_it_is_now(tmp_path: Path) -> None:
    path = tmp_path / "faced.yaml"
    path.write_text("video:\n  faces_per_person: 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"video\.faces_per_person: now video\.faces_per_track"):
        load_config(path)
