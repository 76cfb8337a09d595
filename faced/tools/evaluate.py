"""`faced eval`: run the real pipeline on folders labelled by person and score the result.

LABELLED_DIR/<person>/<photo>: each photo's subject (its largest face not cut by the frame,
metrics.subject_face) is labelled with its folder's person;
other faces in it (bystanders) are clustered like any face but not scored, since nobody knows
who they are. Faces left alone count as clusters of one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from faced.config import Config, absolute
from faced.pipeline.library import Library
from faced.pipeline.rules import folder_rule
from faced.pipeline.scan import Encode, run_scan
from faced.store import Store
from faced.store.faces import FaceRow
from faced.tools.metrics import bcubed, pairwise, subject_face

OFTEN = 10  # "people seen often": this many labelled faces or more


def evaluate(
    labelled: Path,
    cfg: Config,
    encode: Encode,
    *,
    state: Path | None = None,
) -> dict[str, Any]:
    """Scan `labelled` into a temporary (or the given, reusable) state and score it."""
    with tempfile.TemporaryDirectory(prefix="faced-eval-") as tmp:
        state_dir = absolute(state) if state else Path(tmp) / "state"
        run_cfg = cfg.with_paths(watch=[labelled], output=Path(tmp) / "people", state=state_dir)
        with Store(state_dir) as store:
            store.reset_people()  # a reused state is clustered afresh, not by earlier runs
            lib = Library(run_cfg, store)
            run_scan(lib, [labelled], encode)
            rows = store.faces.rows()
            photo_sizes = store.images.sizes()
            counts = store.counts(folder_rule(cfg))
    prefix = os.fsencode(labelled).rstrip(b"/") + b"/"
    by_photo: dict[bytes, list[FaceRow]] = {}
    for row in rows:
        if row.path.startswith(prefix):
            by_photo.setdefault(row.path, []).append(row)
    best: dict[bytes, int] = {}
    for path, faces in by_photo.items():
        width, height = photo_sizes.get(faces[0].image_id, (0, 0))
        subject = faces[subject_face([f.box for f in faces], width, height) or 0]
        best[path] = subject.person_id or -1
    truth = np.array([os.fsdecode(p[len(prefix) :].split(b"/")[0]) for p in best])
    pred = np.array(list(best.values()), dtype=np.int64)
    names, sizes = (
        np.unique(truth, return_counts=True) if len(truth) else (np.array([]), np.array([]))
    )
    often = np.isin(truth, names[sizes >= OFTEN])

    def scores(t: np.ndarray, p: np.ndarray) -> dict[str, float]:
        pw, bc = pairwise(t, p), bcubed(t, p)
        return {
            "pairwise_precision": pw.precision,
            "pairwise_recall": pw.recall,
            "pairwise_f": pw.f,
            "bcubed_precision": bc.precision,
            "bcubed_recall": bc.recall,
            "bcubed_f": bc.f,
        }

    return {
        "labelled_faces": len(truth),
        "true_people": len(names),
        "people_found": int(counts["people"]),
        "clusters": len(np.unique(pred[pred > 0])),
        "noise_rate": float(np.mean(pred <= 0)) if len(pred) else 0.0,
        "images": counts["images"],
        "images_without_faces": counts["images_without_faces"],
        "unreadable": counts["errors"],
        "all": scores(truth, pred),
        f"people_seen_{OFTEN}_plus": {
            "people": int((sizes >= OFTEN).sum()),
            "faces": int(often.sum()),
            **scores(truth[often], pred[often]),
        },
    }


def format_report(r: dict[str, Any]) -> str:
    """The report as a small table for a terminal."""
    lines = [
        f"labelled faces {r['labelled_faces']} of {r['true_people']} people; "
        f"found {r['people_found']} people ({r['clusters']} clusters), noise {r['noise_rate']:.1%}",
        f"images {r['images']}, without a face {r['images_without_faces']}, "
        f"unreadable {r['unreadable']}",
        f"{'':22} {'pairwise P/R/F':>22} {'BCubed P/R/F':>22}",
    ]
    for key, label in (
        ("all", "whole library"),
        (f"people_seen_{OFTEN}_plus", f"people seen {OFTEN}+"),
    ):
        s = r[key]
        lines.append(
            f"{label:22} "
            f"{s['pairwise_precision']:.3f}/{s['pairwise_recall']:.3f}/{s['pairwise_f']:.3f}    "
            f"{s['bcubed_precision']:.3f}/{s['bcubed_recall']:.3f}/{s['bcubed_f']:.3f}"
        )
    return "\n".join(lines)
