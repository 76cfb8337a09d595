"""The subcommands: each takes the parsed arguments and the loaded configuration, and returns
an exit code. Errors are raised as FacedErrors; faced.cli.main turns them into messages."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from faced.config import Config, absolute
from faced.errors import UsageError
from faced.pipeline.library import Library
from faced.pipeline.rules import folder_rule
from faced.pipeline.scan import Encode, encoder_for, run_scan
from faced.publish.layout import default_folder, sanitize_name
from faced.records import EncodeResult
from faced.store import DB_NAME, MetaKey, Store

log = logging.getLogger("faced")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


# -- scan ----------------------------------------------------------------------------------------


def encoder(cfg: Config, roots: list[Path]) -> Encode:
    """Encode a list of paths below `roots` (on this machine, or on the Dask cluster the
    config names), with a progress bar on a terminal."""
    encode_on = encoder_for(cfg, roots)

    def encode(todo: list[bytes]) -> Iterator[list[EncodeResult]]:
        if todo:
            yield from _progress(encode_on(todo), len(todo))

    return encode


def _progress(batches: Iterable[list[EncodeResult]], total: int) -> Iterator[list[EncodeResult]]:
    """A progress bar on a terminal; a log line every 10 s otherwise."""
    if sys.stderr.isatty():
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        with logging_redirect_tqdm(), tqdm(total=total, unit="photo", dynamic_ncols=True) as bar:
            for done in batches:
                bar.update(len(done))
                yield done
        return
    start = last = time.monotonic()
    i = 0
    for done in batches:
        i += len(done)
        now = time.monotonic()
        if now - last >= 10 or i == total:
            log.info("encoded %d/%d photos (%.1f/s)", i, total, i / max(now - start, 1e-9))
            last = now
        yield done


def _printable(text: str) -> str:
    """`text` with control characters shown as escapes, so a name cannot garble a terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _existing_dirs(paths: list[Path]) -> list[Path]:
    for p in paths:
        if not p.is_dir():
            raise UsageError(f"{p}: not a folder")
    return [absolute(p) for p in paths]


def cmd_scan(args: argparse.Namespace, cfg: Config) -> int:
    roots = _existing_dirs(args.photos)
    cfg = cfg.with_paths(
        watch=roots, output=args.output, state=args.state, scheduler=args.scheduler
    )
    with Store(cfg.state) as store:
        lib = Library(cfg, store)
        plan, _ = run_scan(lib, roots, encoder(cfg, roots), forget_missing=args.forget_missing)
        counts = store.counts(folder_rule(cfg))
    # The command's result goes to stdout (logs go to stderr), so -q still shows it and a
    # script can read it; logging it as a warning would flag a normal run in journald.
    print(
        f"scan done: {len(plan.todo)} photo(s) read, {plan.unchanged} unchanged, "
        f"{len(plan.moved)} moved, {len(plan.gone)} gone; {counts['faces']} faces, "
        f"{counts['people']} people, {counts['errors']} unreadable; "
        f"people folders in {cfg.output}"
    )
    return EXIT_OK


def cmd_run(args: argparse.Namespace, cfg: Config) -> int:
    from faced.service.daemon import run_daemon

    watch = _existing_dirs(args.watch) if args.watch else None
    cfg = cfg.with_paths(
        watch=watch, output=args.output, state=args.state, scheduler=args.scheduler
    )
    return run_daemon(
        cfg,
        args.config,
        watch=watch,
        output=args.output,
        state=args.state,
        scheduler=args.scheduler,
    )


# -- status and people ---------------------------------------------------------------------------


def _state(args: argparse.Namespace, cfg: Config) -> Config:
    return cfg.with_paths(state=args.state) if args.state else cfg


def cmd_status(args: argparse.Namespace, cfg: Config) -> int:
    cfg = _state(args, cfg)
    if not (cfg.state / DB_NAME).exists():
        counts: dict[str, Any] = {"images": 0, "faces": 0, "people": 0, "errors": 0}
        errors: list[tuple[str, str]] = []
    else:
        with Store(cfg.state, readonly=True) as store:
            counts = dict(store.counts(folder_rule(cfg)))
            errors = store.images.errors(50 if args.errors else 5)
    counts["state"] = str(cfg.state)
    counts["daemon_running"] = Store.owner_running(cfg.state)
    if args.json:
        counts["recent_errors"] = [{"path": p, "reason": r} for p, r in errors]
        print(json.dumps(counts, indent=2, sort_keys=True))
        return EXIT_OK
    for key in ("images", "faces", "people", "errors"):
        print(f"{key:>8}: {counts[key]}")
    running = "  (a scan or daemon is running)" if counts["daemon_running"] else ""
    print(f"{'state':>8}: {cfg.state}{running}")
    if errors and (args.errors or counts["errors"]):
        print("recent unreadable files:")
        for path, reason in errors:
            print(f"  {path!r}: {reason}")
    return EXIT_OK


def cmd_people(args: argparse.Namespace, cfg: Config) -> int:
    cfg = _state(args, cfg)
    with Store(cfg.state, readonly=True) as store:
        people = [
            {
                "id": p.id,
                "person": default_folder(p.id),
                "name": p.name,
                "faces": p.faces,
                "photos": p.photos,
                "folder": p.folder,
                "hidden": p.hidden,
            }
            for p in store.people.summary()
        ]
    if args.json:
        print(json.dumps(people, indent=2))
        return EXIT_OK
    print(f"{'person':<14} {'faces':>6} {'photos':>6}  name / folder")
    for p in people:
        label = p["name"] or ""
        folder = (
            f"(hidden: faced unhide {p['id']})"
            if p["hidden"]
            else p["folder"] or f"(no folder: fewer than {cfg.clustering.min_faces} faces)"
        )
        shown = _printable(str(label or folder))
        print(f"{p['person']:<14} {p['faces']:>6} {p['photos']:>6}  {shown}")
    return EXIT_OK


# -- corrections ---------------------------------------------------------------------------------


def _person(store: Store, token: str) -> int:
    """A live person by id ("7"), default folder name ("person_0007"), name or folder."""
    t = token.strip()
    digits = t.removeprefix("person_")
    if digits.isdigit() and store.people.live(int(digits)):
        return int(digits)
    found = store.people.named_as(t) or store.published.person_with_folder(t)
    if found is None:
        raise UsageError(f"no such person: {token!r} (see `faced people`)")
    return found


@contextlib.contextmanager
def _editing(cfg: Config) -> Iterator[Store]:
    """The store for one correction (without the writer lock: a daemon may be running);
    afterwards the edit is noted, and published now or by the running daemon."""
    if not (cfg.state / DB_NAME).exists():
        raise UsageError(
            f"no faced state in {cfg.state}: run `faced scan` or `faced run` first, "
            "or say which state with --state"
        )
    with Store(cfg.state, exclusive=False) as store:
        yield store
        store.touch_edits()
    _after_edit(cfg)


def _after_edit(cfg: Config) -> None:
    """Re-publish now, or leave it to the running daemon, which watches for edits."""
    if Store.owner_running(cfg.state):
        print("the running faced daemon applies this to the folders within seconds")
        return
    with Store(cfg.state) as store:
        _republish(cfg, store, force=True)


def _republish(cfg: Config, store: Store, *, force: bool) -> None:
    """Refresh the people folder this state publishes to (none yet: nothing to do)."""
    output = store.meta.get(MetaKey.OUTPUT)
    if output is not None:
        Library(cfg.with_paths(output=Path(output)), store).refresh(force=force)


def cmd_name(args: argparse.Namespace, cfg: Config) -> int:
    cfg = _state(args, cfg)
    name = args.name.strip()
    if not sanitize_name(name):
        raise UsageError(f"{args.name!r} cannot be a folder name")
    with _editing(cfg) as store:
        pid = _person(store, args.person)
        store.people.set_name(pid, name)
    print(f"{default_folder(pid)} is now {name!r}")
    return EXIT_OK


def cmd_merge(args: argparse.Namespace, cfg: Config) -> int:
    cfg = _state(args, cfg)
    if len(args.people) < 2:
        raise UsageError("merge needs at least two people")
    with _editing(cfg) as store:
        ids = [_person(store, t) for t in args.people]
        if len(set(ids)) < len(ids):
            raise UsageError("the same person is named twice")
        store.people.merge(ids[0], ids[1:])
    others = ", ".join(default_folder(i) for i in ids[1:])
    print(f"merged {others} into {default_folder(ids[0])}")
    return EXIT_OK


def _image_id(store: Store, photo: Path) -> int:
    """The image id of a photo given on the command line (as typed, or symlinks resolved)."""
    for candidate in (os.path.abspath(photo), os.path.realpath(photo)):
        row = store.images.get(os.fsencode(candidate))
        if row:
            return row.id
    raise UsageError(f"{photo}: not a photo faced knows")


def cmd_reject(args: argparse.Namespace, cfg: Config) -> int:
    cfg = _state(args, cfg)
    with _editing(cfg) as store:
        pid = _person(store, args.person)
        n = store.people.reject(pid, [_image_id(store, photo) for photo in args.photos])
    print(f"{n} face(s) will not be {default_folder(pid)} again")
    return EXIT_OK


def cmd_unhide(args: argparse.Namespace, cfg: Config) -> int:
    cfg = _state(args, cfg)
    with _editing(cfg) as store:
        pid = _person(store, args.person)
        store.people.unhide(pid)
    print(f"{default_folder(pid)} is published again")
    return EXIT_OK


def cmd_backup(args: argparse.Namespace, cfg: Config) -> int:
    cfg = _state(args, cfg)
    with Store(cfg.state, readonly=True) as store:
        store.backup(absolute(args.file))
    print(f"state backed up to {args.file} (restore: faced restore {args.file})")
    return EXIT_OK


def cmd_restore(args: argparse.Namespace, cfg: Config) -> int:
    cfg = _state(args, cfg)
    if not args.file.is_file():
        raise UsageError(f"{args.file}: no such file")
    Store.restore(absolute(args.file), cfg.state)
    print(f"{cfg.state} restored from {args.file}; the next scan or daemon start publishes it")
    return EXIT_OK


def cmd_check(args: argparse.Namespace, cfg: Config) -> int:
    cfg = _state(args, cfg)
    if args.repair:
        from faced.tools.repair import repair_state

        done = repair_state(cfg, encoder(cfg, [w.path for w in cfg.watch]))
        print(f"the damaged database was kept as {done.aside}")
        if done.salvaged:
            print(f"names, merges, hidden people and rejections salvaged into {done.salvaged}")
        else:
            print(
                f"nothing could be salvaged from it ({done.salvage_error}); names were taken "
                "back from the people folders"
            )
        print(
            f"rebuilt: {done.photos} photo(s) read, {done.people} people; folders in {cfg.output}"
        )
        return EXIT_OK
    problems = Store.problems(cfg.state)
    if not problems:
        print(f"{cfg.state}: the database is sound")
        return EXIT_OK
    print(f"{cfg.state}: the database is damaged:", *problems, sep="\n  ")
    print(
        "to rebuild it without losing names: stop faced, then run `faced check --repair` "
        "(or put a backup back: `faced restore FILE`)"
    )
    return EXIT_FAILURE


def cmd_decisions(args: argparse.Namespace, cfg: Config) -> int:
    from faced.tools.decisions import export_decisions, import_decisions

    cfg = _state(args, cfg)
    if args.action == "export":
        with Store(cfg.state, readonly=True) as store:
            n = export_decisions(store, absolute(args.file))
        print(f"{n['people']} people and {n['rejections']} rejections written to {args.file}")
        return EXIT_OK
    with _editing(cfg) as store:
        done = import_decisions(store, absolute(args.file))
    print(", ".join(f"{v} {k}" for k, v in done.items()))
    return EXIT_OK


def cmd_export(args: argparse.Namespace, cfg: Config) -> int:
    from faced.tools.exchange import export_dataset, export_pickle

    cfg = _state(args, cfg)
    if args.dataset is not None:
        dest = absolute(args.dataset)
        for w in cfg.watch:
            if dest == w.path or w.path in dest.parents:
                raise UsageError(
                    f"{args.dataset} is inside the watched folder {w.path}: its crops would be "
                    "read back as photos; export somewhere else"
                )
    with Store(cfg.state, readonly=True) as store:
        if args.pickle:
            n = export_pickle(store, absolute(args.pickle))
            print(f"{n} faces written to {args.pickle}")
        else:
            written = export_dataset(store, cfg, absolute(args.dataset), named_only=args.named_only)
            print(f"{sum(written.values())} face crops of {len(written)} people in {args.dataset}")
    return EXIT_OK


def cmd_import(args: argparse.Namespace, cfg: Config) -> int:
    from faced.tools.exchange import import_pickle

    if not args.trust_pickle:
        raise UsageError("unpickling runs code: add --trust-pickle if this pickle is yours")
    cfg = _state(args, cfg)
    with Store(cfg.state) as store:
        imported, missing = import_pickle(store, cfg, absolute(args.pickle))
        _republish(cfg, store, force=False)
    print(f"{imported} photos imported, {missing} not found or unreadable")
    return EXIT_OK


def cmd_sample_config(args: argparse.Namespace, cfg: Config) -> int:
    from faced.config.sample import sample_yaml

    print(sample_yaml(), end="")
    return EXIT_OK


def cmd_eval(args: argparse.Namespace, cfg: Config) -> int:
    from faced.tools.evaluate import evaluate, format_report

    if not args.labelled.is_dir():
        raise UsageError(f"{args.labelled}: not a folder")
    labelled = absolute(args.labelled)
    report = evaluate(labelled, cfg, encoder(cfg, [labelled]), state=args.state)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return EXIT_OK
