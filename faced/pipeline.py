"""The flow shared by `faced scan` and the daemon: find work, record results, re-cluster, publish.

Data moves one way: files -> EncodeResults (workers) -> the store (this process, the one
writer) -> clusters and people (pure functions) -> the person folders.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faced.config import Config
from faced.decode import file_digest
from faced.discover import walk
from faced.encode import CRASHED, MODEL_NAME, EncodeResult, detector_label
from faced.errors import ImageError
from faced.identity import assign_people, place_new_faces
from faced.layout import DEFAULT_NAME, plan_layout
from faced.publish import Publisher, observe
from faced.store import ImageRow, Store

log = logging.getLogger(__name__)


@dataclass
class ScanPlan:
    """What a scan must do: files to encode, records to drop, renames to apply."""

    todo: list[bytes] = field(default_factory=list)
    gone: list[bytes] = field(default_factory=list)
    moved: list[tuple[bytes, bytes]] = field(default_factory=list)
    unchanged: int = 0


@dataclass
class RefreshReport:
    """What one re-cluster and publish did."""

    faces: int = 0
    changed: int = 0
    new_people: int = 0
    renamed: int = 0
    rejected: int = 0
    clustered: bool = False
    incremental: bool = False  # new faces placed among people, no full re-cluster
    seconds: float = 0.0


class Library:
    """A config and its store: the operations both the scan and the daemon are made of."""

    def __init__(self, cfg: Config, store: Store) -> None:
        self.cfg = cfg
        self.store = store
        self.label = detector_label(cfg.detection)
        # A state publishes to one people folder; edits made later by `faced name` and the
        # like must go there, whatever config they are run with.
        if store.get_meta("output") != str(cfg.output):
            store.set_meta("output", str(cfg.output))

    # -- finding work ------------------------------------------------------------------------

    def needs_encoding(self, row: ImageRow | None, size: int, mtime_ns: int) -> bool:
        """A file is read again only if it is new, changed (size or mtime), was found with other
        detection settings, or killed its worker last time."""
        return (
            row is None
            or (row.size, row.mtime_ns) != (size, mtime_ns)
            or row.detector != self.label
            or row.reason == CRASHED
        )

    def plan_scan(self, roots: Iterable[Path]) -> ScanPlan:
        """Compare the files below `roots` with the store."""
        roots = list(roots)
        found = {
            p: (s, m) for p, s, m in walk(roots, self.cfg.images, self.excluded(), self.cfg.video)
        }
        known = self.store.images()
        prefixes = [os.fsencode(os.path.abspath(r)).rstrip(b"/") + b"/" for r in roots]
        plan = ScanPlan()
        plan.gone = [p for p in known if p not in found and any(p.startswith(x) for x in prefixes)]
        for path, (size, mtime) in found.items():
            if self.needs_encoding(known.get(path), size, mtime):
                plan.todo.append(path)
            else:
                plan.unchanged += 1
        plan.moved = self._find_moves(plan, known, found)
        return plan

    def _find_moves(
        self, plan: ScanPlan, known: dict[bytes, ImageRow], found: dict[bytes, tuple[int, int]]
    ) -> list[tuple[bytes, bytes]]:
        """New paths whose content is a vanished record's: renames, not new photos.

        Only new files with the same size as a vanished record are hashed here, so a scan
        of new photos reads each file once (in its worker).
        """
        by_size: dict[int, list[ImageRow]] = {}
        for p in plan.gone:
            row = known[p]
            if row.digest and row.detector == self.label:
                by_size.setdefault(row.size, []).append(row)
        moves = []
        for path in plan.todo:
            candidates = by_size.get(found[path][0]) if path not in known else None
            if not candidates:
                continue
            try:
                digest = file_digest(path)[2]
            except ImageError:
                continue
            for row in candidates:
                if row.digest == digest:
                    candidates.remove(row)
                    moves.append((row.path, path))
                    break
        moved_to = {new for _, new in moves}
        moved_from = {old for old, _ in moves}
        plan.todo = [p for p in plan.todo if p not in moved_to]
        plan.gone = [p for p in plan.gone if p not in moved_from]
        return moves

    def excluded(self) -> list[Path]:
        """Folders never scanned even when inside a watched folder: faced's own."""
        return [self.cfg.output, self.cfg.state]

    # -- recording ---------------------------------------------------------------------------

    def record(self, result: EncodeResult) -> bool:
        """Store one worker result; log a bad file once. Returns True if faces changed."""
        if result.status == "error":
            log.warning("skipped %s: %s", os.fsdecode(result.path), result.reason)
        elif result.faces:
            log.debug("%s: %d face(s)", os.fsdecode(result.path), len(result.faces))
        return self.store.record(result)

    def apply_plan_bookkeeping(self, plan: ScanPlan) -> None:
        """Apply the moves and deletions a scan found (before encoding the rest)."""
        for old, new in plan.moved:
            self.store.move(old, new)
            log.info("moved %s -> %s", os.fsdecode(old), os.fsdecode(new))
        if plan.gone:
            n = self.store.forget(plan.gone)
            log.info("forgot %d file(s) that are gone", n)

    # -- re-cluster and publish --------------------------------------------------------------

    def refresh(self, *, force: bool = False, incremental: bool = False) -> RefreshReport:
        """Take in the user's edits in the people folder, re-cluster if anything changed,
        and bring the people folder up to date.

        With `incremental` (the daemon), a large library only places its new faces among the
        existing people, in milliseconds; the full re-cluster runs when enough faces wait
        unplaced or the last one is old (see DaemonConfig).
        """
        t0 = time.monotonic()
        report = RefreshReport()
        report.renamed, report.rejected = self.take_user_edits()
        if force or self.store.fingerprint() != self.store.get_meta("clustered"):
            if incremental and not report.rejected and not self._full_recluster_due():
                self.place_new(report)
                # Faces nobody claims may be new people: enough of them call for a full run.
                waiting = self.store.unassigned_since(self._last_full()[1])
                report.incremental = waiting < self.cfg.daemon.full_recluster_faces
            if not report.incremental:
                self.recluster(report)
                self.store.set_meta("full_recluster", f"{time.time()} {self.store.max_face_id()}")
            # Taken after clustering, which itself changes how many faces are unassigned.
            self.store.set_meta("clustered", self.store.fingerprint())
            report.clustered = True
        self.publish()
        report.seconds = time.monotonic() - t0
        return report

    def take_user_edits(self) -> tuple[int, int]:
        """Renamed folders become names; deleted links become "not this person"."""
        seen = observe(self.cfg.output)
        published = self.store.published()
        links = self.store.published_links()
        renamed = rejected = 0
        for pid, folder in seen.items():
            if pid == 0 or pid not in published:
                continue
            if folder.folder != published[pid][0]:
                m = DEFAULT_NAME.match(folder.folder)
                name = None if m and int(m.group(1)) == pid else folder.folder
                self.store.set_name(pid, name)
                log.info("person_%04d is now called %r (folder renamed)", pid, name)
                renamed += 1
            missing = set(links.get(pid, {})) - folder.links
            if missing:
                n = self.store.reject(pid, [links[pid][name] for name in missing])
                log.info(
                    "%d photo(s) removed from %s: those faces are not this person",
                    len(missing),
                    folder.folder,
                )
                rejected += n
        return renamed, rejected

    def _last_full(self) -> tuple[float, int]:
        """When the last full re-cluster ran, and the newest face it saw."""
        when, _, max_face = (self.store.get_meta("full_recluster") or "0 0").partition(" ")
        return float(when), int(max_face or 0)

    def _full_recluster_due(self) -> bool:
        d = self.cfg.daemon
        if self.store.face_count() <= d.incremental_above:
            return True  # a small library re-clusters in a moment: always do it properly
        return time.time() - self._last_full()[0] >= d.full_recluster_hours * 3600

    def place_new(self, report: RefreshReport | None = None) -> RefreshReport:
        """Give faces added since the last full re-cluster the person they clearly belong to."""
        report = report or RefreshReport()
        c = self.cfg.clustering
        table = self.store.face_table(MODEL_NAME)
        _, max_face = self._last_full()
        new = (table.face_id > max_face) & (table.person_id <= 0)
        known = table.person_id > 0
        person = np.where(table.person_id > 0, table.person_id, 0)
        state = self.store.people_state()
        # A placement is as permanent as any assignment (people are sticky), so the bar is the
        # strict one a pair of lone faces must pass, not the looser one for joining a cluster:
        # on lfw_dev the looser bar put 20% of the faces the clustering leaves alone into
        # someone, this one 0.5%. Faces it leaves unplaced wait for the next full re-cluster.
        strict = c.pair_threshold
        person[new] = place_new_faces(
            table.encoding[new],
            table.face_id[new],
            table.photo_id[new],
            table.encoding[known],
            person[known],
            table.photo_id[known],
            state,
            lambda size: strict,
            one_face_per_photo=c.one_face_per_photo,
        )
        report.faces = len(table)
        report.changed, _ = self.store.apply_assignment(table.face_id, person, [], table.person_id)
        return report

    def recluster(self, report: RefreshReport | None = None) -> RefreshReport:
        """Cluster every face and give faces people, keeping every identity that holds."""
        # Imported here: scikit-learn and SciPy take 0.7 s to import, which every faced
        # command would pay at start-up (`faced status`, `faced name`, a scan before its
        # workers start), though only clustering uses them.
        from faced.cluster import ClusterParams, cluster_faces

        report = report or RefreshReport()
        c = self.cfg.clustering
        table = self.store.face_table(MODEL_NAME)
        params = ClusterParams(
            c.pair_threshold, c.link_threshold, c.one_face_per_photo, c.separation_gap
        )
        labels = cluster_faces(table.encoding, table.photo_id, params)
        result = assign_people(
            table.face_id,
            table.photo_id,
            labels,
            table.person_id,
            self.store.people_state(),
            one_face_per_photo=c.one_face_per_photo,
            min_faces=c.min_faces,
        )
        report.faces = len(table)
        report.changed, report.new_people = self.store.apply_assignment(
            table.face_id, result.person, result.new_people, table.person_id, result.folded
        )
        return report

    def publish(self) -> int:
        """Write the people folder from the store. Returns the number of person folders."""
        p = self.cfg.publish
        plans = plan_layout(
            self.store.people_entries(),
            self.store.unknown_images(),
            min_faces=self.cfg.clustering.min_faces,
            unknown=p.unknown,
            montage_faces=p.montage_faces,
        )
        publisher = Publisher(self.cfg.output, self.store.thumbs, p.montage_tile)
        applied = publisher.apply(plans, self.store.published(), observe(self.cfg.output))
        self.store.save_published(applied, {pl.person_id: pl.links for pl in plans})
        return len(plans) - 1


def run_scan(
    lib: Library, roots: list[Path], encode: Callable[[list[bytes]], Iterable[EncodeResult]]
) -> tuple[ScanPlan, RefreshReport]:
    """A whole one-shot scan: plan, bookkeeping, encode (via `encode`), refresh."""
    plan = lib.plan_scan(roots)
    lib.apply_plan_bookkeeping(plan)
    for result in encode(plan.todo):
        lib.record(result)
    return plan, lib.refresh()
