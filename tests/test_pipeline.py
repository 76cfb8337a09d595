"""The pipeline's own rules, on a real store: what is read again, and what is not."""

from __future__ import annotations

import os
from pathlib import Path

from faced.config import Config
from faced.faces.backends import detector_label
from faced.pipeline.library import Library
from faced.records import MAX_CRASHES, EncodeResult
from faced.store import Store


def test_a_file_that_keeps_killing_workers_is_given_up_on(tmp_path: Path) -> None:
    poison = tmp_path / "poison.jpg"
    poison.write_bytes(b"\xff\xd8 not really")
    path, st = os.fsencode(poison), poison.stat()
    cfg = Config().with_paths(output=tmp_path / "people", state=tmp_path / "state")
    with Store(cfg.state) as store:
        lib = Library(cfg, store)
        for times in range(1, MAX_CRASHES + 1):
            row = store.images.get(path)
            assert lib.planner.needs_encoding(row, st.st_size, st.st_mtime_ns), times
            lib.record(
                EncodeResult.crashed(
                    path, detector=detector_label(lib.cfg.detection), model=lib.model
                )
            )
        row = store.images.get(path)
        assert row is not None and f"{MAX_CRASHES} times" in (row.reason or "")
        assert not lib.planner.needs_encoding(row, st.st_size, st.st_mtime_ns)
        # Changed, it is read again.
        assert lib.planner.needs_encoding(row, st.st_size + 1, st.st_mtime_ns)
