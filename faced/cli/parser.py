"""The argument parser of every subcommand; each names its `cmd_*` in faced.cli.commands."""

from __future__ import annotations

import argparse
from pathlib import Path

from faced import __version__
from faced.cli import commands as c


def _scheduler(parser: argparse.ArgumentParser) -> None:
    """Add --scheduler (scan and run)."""
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="read the photos on the workers of this Dask scheduler (tcp://HOST:8786; "
        "needs faced[dask]; the config key dask.scheduler)",
    )


def _common(parser: argparse.ArgumentParser, *, suppress: bool) -> argparse.ArgumentParser:
    """Add --config, --state, -v and -q to `parser` (without defaults if `suppress`)."""
    kw: dict[str, object] = {"default": argparse.SUPPRESS} if suppress else {}
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="YAML configuration (default: $FACED_CONFIG, else built-in defaults)",
        **kw,  # type: ignore[arg-type]
    )
    parser.add_argument(
        "--state",
        type=Path,
        metavar="STATE_DIR",
        help="folder of faced's database (default: from the config)",
        **kw,  # type: ignore[arg-type]
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail", **kw)  # type: ignore[arg-type]
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="log warnings and errors only",
        **kw,  # type: ignore[arg-type]
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    # The options every command takes, accepted before the command and after it. After it, an
    # option left out must not overwrite what was given before (`faced --config X status`):
    # the subcommands' copies have no defaults of their own.
    common = _common(argparse.ArgumentParser(add_help=False), suppress=True)

    parser = argparse.ArgumentParser(
        prog="faced",
        description="Finds every face in your photos, learns who is who, and keeps "
        "a folder per person up to date.",
    )
    _common(parser, suppress=False)
    parser.add_argument("--version", action="version", version=f"faced {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "scan",
        parents=[common],
        help="scan folders once and publish person folders",
        description="Find photos below PHOTOS_DIR (recursively), encode new or changed "
        "ones, forget deleted ones, cluster, and publish a folder per person.",
    )
    p.add_argument("photos", nargs="+", type=Path, metavar="PHOTOS_DIR")
    p.add_argument("--output", "-o", type=Path, required=True, metavar="PEOPLE_DIR")
    p.add_argument(
        "--forget-missing",
        action="store_true",
        help="a PHOTOS_DIR that is empty where it held photos is gone for good, not offline",
    )
    _scheduler(p)
    p.set_defaults(func=c.cmd_scan)

    p = sub.add_parser(
        "run",
        parents=[common],
        help="run the daemon in the foreground",
        description="Watch folders and keep the person folders up to date.",
    )
    p.add_argument(
        "--watch",
        type=Path,
        action="append",
        metavar="DIR",
        help="folder to watch (repeatable; replaces the config's list)",
    )
    p.add_argument("--output", "-o", type=Path, metavar="PEOPLE_DIR")
    _scheduler(p)
    p.set_defaults(func=c.cmd_run)

    p = sub.add_parser("status", parents=[common], help="counts of images, faces, people, errors")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--errors", action="store_true", help="list recent unreadable files")
    p.set_defaults(func=c.cmd_status)

    p = sub.add_parser("people", parents=[common], help="list people: id, name, faces, photos")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=c.cmd_people)

    p = sub.add_parser(
        "name",
        parents=[common],
        help="name a person",
        description="Name a person (the folder is renamed). PERSON is an id, "
        "person_NNNN, or a current name.",
    )
    p.add_argument("person", metavar="PERSON")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=c.cmd_name)

    p = sub.add_parser(
        "merge",
        parents=[common],
        help="merge people into the first one",
        description="Merge the other PERSONs into the first, for good. The result "
        "keeps a name if any of them had one (the first's, preferably).",
    )
    p.add_argument("people", nargs="+", metavar="PERSON")
    p.set_defaults(func=c.cmd_merge)

    p = sub.add_parser(
        "reject",
        parents=[common],
        help="say a photo is not of a person",
        description="The face that put PHOTO in PERSON's folder is not that person; "
        "it never goes back there. Same as deleting the link from the folder.",
    )
    p.add_argument("person", metavar="PERSON")
    p.add_argument("photos", nargs="+", type=Path, metavar="PHOTO")
    p.set_defaults(func=c.cmd_reject)

    p = sub.add_parser(
        "unhide",
        parents=[common],
        help="publish a hidden person again",
        description="A person is hidden when their folder is deleted (or renamed to a hidden "
        "name); this brings their folder back.",
    )
    p.add_argument("person", metavar="PERSON")
    p.set_defaults(func=c.cmd_unhide)

    p = sub.add_parser(
        "backup",
        parents=[common],
        help="copy the state's database, consistently, even while the daemon runs",
    )
    p.add_argument("file", type=Path, metavar="FILE")
    p.set_defaults(func=c.cmd_backup)

    p = sub.add_parser(
        "restore",
        parents=[common],
        help="put a backup in place as the state's database (stop the daemon first)",
    )
    p.add_argument("file", type=Path, metavar="FILE")
    p.set_defaults(func=c.cmd_restore)

    p = sub.add_parser(
        "check",
        parents=[common],
        help="check the state's database; --repair rebuilds a damaged one, keeping names",
        description="Runs SQLite's full integrity check (read-only: safe while the daemon "
        "runs). With --repair (stop the daemon first), a damaged database is set aside, the "
        "decisions it still holds are salvaged, the watched photos are read again into a new "
        "one and the decisions put back; names also come back from the people folders.",
    )
    p.add_argument(
        "--repair", action="store_true", help="rebuild the database (slow: reads every photo)"
    )
    p.set_defaults(func=c.cmd_check)

    p = sub.add_parser(
        "decisions",
        parents=[common],
        help="export or import names, merges, hidden people and rejections as JSON",
        description="The user's decisions keyed by photo content and face box, so they apply "
        "to any state holding the same photos.",
    )
    p.add_argument("action", choices=["export", "import"])
    p.add_argument("file", type=Path, metavar="FILE")
    p.set_defaults(func=c.cmd_decisions)

    p = sub.add_parser(
        "export",
        parents=[common],
        help="export encodings (classic pickle) or a labelled face dataset",
        description="--pickle FILE: every face as the classic encode_faces.py pickle (a list of "
        "dicts with imagePath, loc, encoding). --dataset DIR: DIR/<person>/<aligned crop>.jpg "
        "for every face of every person, and DIR/faces.csv (crop, person, photo, box).",
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--pickle", type=Path, metavar="FILE")
    what.add_argument("--dataset", type=Path, metavar="DIR")
    p.add_argument("--named-only", action="store_true", help="dataset: only named people")
    p.set_defaults(func=c.cmd_export)

    p = sub.add_parser(
        "import",
        parents=[common],
        help="import encodings from a classic pickle",
        description="Take the faces of a classic encode_faces.py pickle without re-encoding. "
        "Unpickling runs code: only import pickles you made, and say so with --trust-pickle.",
    )
    p.add_argument("--pickle", type=Path, metavar="FILE", required=True)
    p.add_argument("--trust-pickle", action="store_true", help="required: the pickle is yours")
    p.set_defaults(func=c.cmd_import)

    p = sub.add_parser(
        "eval",
        parents=[common],
        help="measure clustering on labelled folders",
        description="Run the real pipeline on LABELLED_DIR/<person>/... into a "
        "temporary state and score the people found against the folder labels.",
    )
    p.add_argument("labelled", type=Path, metavar="LABELLED_DIR")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=c.cmd_eval)

    p = sub.add_parser(
        "sample-config",
        parents=[common],
        help="print the documented configuration with every default",
        description="Print a configuration file with every key, its default and what it does "
        "(the same as config/faced.yaml).",
    )
    p.set_defaults(func=c.cmd_sample_config)
    return parser
