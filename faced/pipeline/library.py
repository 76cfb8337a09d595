"""The stages assembled in one place: the flow `faced scan` and the daemon share.

Data moves one way: files -> EncodeResults (faced.faces, in workers) -> the store (this
process, the one writer) -> clusters and people (faced.people, pure) -> the person folders
(faced.publish). `Library` holds a configuration and its store and runs each step; the
decisions it delegates have their own modules: what to read (planner), when to re-cluster
everything (policy), what the user changed in the folders (edits).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faced.config import Config
from faced.errors import PublishError
from faced.faces.backends import model_name
from faced.people.identity import (
    NearestMemo,
    PeopleState,
    assign_people,
    place_new_faces,
    same_faces,
)
from faced.pipeline.edits import take_user_edits
from faced.pipeline.planner import ScanPlan, ScanPlanner
from faced.pipeline.policy import ReclusterPolicy
from faced.pipeline.recover import adopt, foreign_folders, repair_markers
from faced.pipeline.rules import cluster_params, folder_rule
from faced.publish.folders import Publisher
from faced.publish.layout import LinkNamer, plan_layout
from faced.publish.observe import Stamp, Survey, Surveyor
from faced.publish.owner import Owner, claim
from faced.records import EncodeResult, crash_reason, crashes
from faced.store import MetaKey, Store

log = logging.getLogger(__name__)


@dataclass
class Rereads:
    """Photos read again with their bytes unchanged (new detection settings, another
    detector, a faced upgrade), and how many of their faces kept what was decided."""

    photos: int = 0
    decided: int = 0  # faces that had a person or a rejection before
    kept: int = 0  # of those, found again and given their person and rejections back

    def log_once(self) -> None:
        """One line for what was carried over since the last call, then start counting anew."""
        if self.photos:
            log.info(
                "%d photo(s) re-read because detection settings changed; identities kept for "
                "%d of %d faces",
                self.photos,
                self.kept,
                self.decided,
            )
        self.photos = self.decided = self.kept = 0


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

    def summary(self) -> str | None:
        """One log line for what changed; None when people were already up to date."""
        if self.incremental:
            return (
                f"placed new faces among {self.faces} in {self.seconds:.2f} s: "
                f"{self.changed} joined a person"
            )
        if self.clustered:
            return (
                f"re-clustered {self.faces} faces in {self.seconds:.1f} s: "
                f"{self.changed} changed, {self.new_people} new people"
            )
        return None


class Library:
    """A config and its store: the operations both the scan and the daemon are made of.

    The one place the stages are assembled (as beets' importer session), hence its length:
    each method is one step that delegates to its stage's module, and keeping the steps
    together keeps their order (edits before clustering, adoption before publishing) in view."""

    def __init__(self, cfg: Config, store: Store) -> None:
        self.cfg = cfg
        self.store = store
        self.model = model_name(cfg.detection.detector)
        self.planner = ScanPlanner(cfg, store)
        self.reread = Rereads()
        self.policy = ReclusterPolicy(store, cfg.daemon)
        # A state publishes to one people folder; edits made later by `faced name` and the
        # like must go there, whatever config they are run with.
        if store.meta.get(MetaKey.OUTPUT) != str(cfg.output):
            store.meta.set(MetaKey.OUTPUT, str(cfg.output))
        self.state = store.state_id()
        self.survey = Surveyor(cfg.output, self.state)
        # The store's generation and the people folder's stamp right after the last publish:
        # while both hold, a refresh has nothing to take in and nothing to write.
        self._settled: tuple[tuple[int, int], Stamp | None] | None = None
        self.namer = LinkNamer()  # link names of unchanged folders, kept between publishes
        self.nearest = NearestMemo()  # what the placement found of the faces still waiting
        self.publisher = Publisher(
            cfg.output, store.faces.thumbs, cfg.publish.montage_tile, self.state
        )  # where large folders' links point, kept between publishes

    # -- recording ---------------------------------------------------------------------------

    def record(self, result: EncodeResult) -> bool:
        """Store one worker result; log a bad file once. Returns True if faces changed.
        (A clip's faces arrive already followed into tracks, a few kept per track.)"""
        if not os.path.exists(result.path):
            # Deleted while it was being read: its deletion may already have been taken in,
            # and recording the result now would bring back a photo that is gone.
            return self.store.images.forget([result.path]) > 0
        before = self.store.images.get(result.path) if result.is_error else None
        if result.is_error:
            # Said once: a file still unreadable for the same reason (retried at a rescan, or
            # touched) is not news.
            said = before is not None and before.reason == result.reason
            (log.debug if said else log.warning)(
                "skipped %s: %s", os.fsdecode(result.path), result.reason
            )
        elif result.faces:
            log.debug("%s: %d face(s)", os.fsdecode(result.path), len(result.faces))
        if crashes(result.reason) == 1:  # count the crashes of a file that keeps killing workers
            times = crashes(before.reason) + 1 if before and before.file_unchanged(result) else 1
            result = dataclasses.replace(result, reason=crash_reason(times))
        done = self.store.images.record(result, match=same_faces)
        if done.same_bytes:
            self.reread.photos += 1
            self.reread.decided += done.departed
            self.reread.kept += done.inherited
        return done.changed

    def record_all(self, results: Sequence[EncodeResult]) -> bool:
        """Store results that arrived together in one commit: each file whole or not at all,
        all of them durable at once (Store.batch). Returns True if faces changed."""
        with self.store.batch():
            changed = [self.record(r) for r in results]
        return any(changed)

    def apply_plan_bookkeeping(self, plan: ScanPlan) -> None:
        """Apply the moves and deletions a scan found (before encoding the rest)."""
        for old, new in plan.moved:
            self.store.images.move(old, new)
            log.info("moved %s -> %s", os.fsdecode(old), os.fsdecode(new))
        if plan.gone:
            n = self.store.images.forget(plan.gone)
            log.info("forgot %d file(s) that are gone", n)

    # -- re-cluster and publish --------------------------------------------------------------

    def refresh(self, *, force: bool = False, incremental: bool = False) -> RefreshReport:
        """Take in the user's edits in the people folder, re-cluster if anything changed,
        and bring the people folder up to date.

        With `incremental` (the daemon), a large library only places its new faces among the
        existing people; the full re-cluster runs when the policy says so.
        """
        t0 = time.monotonic()
        report = RefreshReport()
        if not force and self._settled is not None and self._settled == self._now():
            return report  # neither the store nor the people folder changed since the publish
        self.reread.log_once()
        with self._writing_people_dir():
            self.claim_people_dir()
            # Each survey call stats every folder: the folder is surveyed again only after
            # faced wrote into it, and once more to publish (clustering takes time).
            found = self.survey()
            if repair_markers(self.store, self.cfg.output, self.state, found):
                found = self.survey()
            edits = take_user_edits(self.store, self.cfg, found.ours)
        examined = self.survey.read_at  # the folder as the user's edits were looked for
        report.renamed, report.rejected = edits.renamed, edits.rejected
        force = force or edits.assigned > 0
        if force or not self.policy.up_to_date():
            if incremental and not report.rejected and not self.policy.full_due():
                self.place_new(report)
                report.incremental = not self.policy.enough_waiting()
            if not report.incremental:
                self.recluster(report)
                self.policy.ran_full()
            # Taken after clustering, which itself changes how many faces are unassigned.
            self.policy.clustered()
            report.clustered = True
        with self._writing_people_dir():
            found = self.survey()
            if adopt(self.store, self.cfg.output, self.state, foreign_folders(self.store, found)):
                found = self.survey()
            wrote = self.publish(found)
        # Settled only if nothing was written into the people folder since the edits were
        # looked for (by faced or the user): otherwise the next refresh looks again.
        now = None if wrote else self._now()
        self._settled = now if now and now[1] is not None and now[1] == examined else None
        report.seconds = time.monotonic() - t0
        return report

    def _now(self) -> tuple[tuple[int, int], Stamp | None]:
        """The store's generation and the people folder's (trusted) stamp."""
        return (self.store.generation(), self.survey.stamp())

    @contextlib.contextmanager
    def _writing_people_dir(self) -> Iterator[None]:
        """The people folder's own failures, as one PublishError that says what to do."""
        try:
            yield
        except OSError as exc:
            raise PublishError(
                f"cannot write the people folder {self.cfg.output}: {exc.strerror or exc} "
                f"({os.fsdecode(exc.filename or self.cfg.output)}); faced must be able to write "
                "there: check its permissions, and that its disk is mounted read-write"
            ) from exc

    def claim_people_dir(self) -> None:
        """Make sure this state owns the people folder (OwnershipError if another does)."""
        me = Owner(self.state, str(self.cfg.state))
        claim(self.cfg.output, me, lambda o: Store.identity_of(Path(o.state_dir)) == o.state_id)

    def decisions(self) -> PeopleState:
        """Merges, rejections and names, as the identity rules take them."""
        people = self.store.people
        return PeopleState(people.merges(), people.rejections(), people.named())

    def place_new(self, report: RefreshReport | None = None) -> RefreshReport:
        """Give faces added since the last full re-cluster the person they clearly belong to."""
        report = report or RefreshReport()
        c = self.cfg.clustering
        table = self.store.faces.table(self.model)
        new = (table.face_id > self.policy.state.full_max_face) & (table.person_id <= 0)
        person = np.where(table.person_id > 0, table.person_id, 0)
        # A placement is as permanent as any assignment (people are sticky), so the bar is the
        # strict one a pair of lone faces must pass, not the looser one for joining a cluster
        # (docs/decisions/clustering.md). Faces it leaves unplaced wait for the next full run.
        strict = c.pair_threshold
        person[new] = place_new_faces(
            table.encoding[new].astype(np.float32),
            table.face_id[new],
            table.photo_id[new],
            # Every face, not a copy of those with a person: faces of nobody are passed over.
            table.encoding,
            person,
            table.photo_id,
            self.decisions(),
            lambda size: strict,
            one_face_per_photo=c.one_face_per_photo,
            memo=self.nearest,
            known_face_ids=table.face_id,
        )
        if (table.track_id[new] >= 0).any():
            # A track's faces go together (where most of them went), or wait together.
            from faced.people.labels import hold_tracks  # see recluster

            placed = hold_tracks(
                table.encoding[new].astype(np.float32),
                np.where(person[new] > 0, person[new], -1),
                table.track_id[new],
                self.store.faces.overlapping_tracks(self.model),
                new_clusters=False,
            )
            person[new] = np.maximum(placed, 0)
        report.faces = len(table)
        report.changed, _ = self.store.people.apply_assignment(
            table.face_id, person, [], table.person_id
        )
        return report

    def recluster(self, report: RefreshReport | None = None) -> RefreshReport:
        """Cluster every face and give faces people, keeping every identity that holds."""
        # Imported here: scikit-learn and SciPy are slow to import, which every faced command
        # would pay at start-up (`faced status`, `faced name`, a scan before its workers
        # start), though only clustering uses them.
        from faced.people.cluster import cluster_faces

        report = report or RefreshReport()
        self.nearest = NearestMemo()  # everyone may move: what it found holds no longer
        c = self.cfg.clustering
        table = self.store.faces.table(self.model)
        apart = (
            self.store.faces.overlapping_tracks(self.model) if (table.track_id >= 0).any() else []
        )
        labels = cluster_faces(
            table.encoding.astype(np.float32),
            table.photo_id,
            cluster_params(c),
            table.weak,
            table.track_id,
            apart,
        )
        result = assign_people(
            table.face_id,
            table.photo_id,
            labels,
            table.person_id,
            self.decisions(),
            one_face_per_photo=c.one_face_per_photo,
            min_faces=c.min_faces,
        )
        report.faces = len(table)
        report.changed, report.new_people = self.store.people.apply_assignment(
            table.face_id, result.person, result.new_people, table.person_id, result.folded
        )
        return report

    def publish(self, found: Survey) -> int:
        """Write the people folder from the store, as surveyed in `found`. Returns how many
        folders were written into (0: the people folder was left as it was)."""
        p = self.cfg.publish
        seen = found.ours
        plans = plan_layout(
            self.store.people.entries(),
            self.store.people.unknown_images(),
            rule=folder_rule(self.cfg),
            unknown=p.unknown,
            montage_faces=p.montage_faces,
            user_files={pid: f.user_names for pid, f in seen.items()},
            user_folders=found.user_folders,
            namer=self.namer,
        )
        applied = self.publisher.apply(plans, self.store.published.folders(), seen)
        self.store.published.save(applied, {pl.person_id: pl.links for pl in plans})
        return self.publisher.wrote
