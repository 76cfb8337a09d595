"""The `faced` command. The only place where errors become messages and exit codes.

Exit codes: 0 done (bad photos are data, not failures), 2 usage or configuration error,
1 anything else.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

from faced.cli.commands import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from faced.cli.parser import build_parser
from faced.config import load_config
from faced.errors import ConfigError, FacedError, UsageError
from faced.faces.backends import usable
from faced.logs import setup_logging

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        config_path = args.config or (
            Path(os.environ["FACED_CONFIG"]) if os.environ.get("FACED_CONFIG") else None
        )
        cfg = load_config(config_path)
        setup_logging("debug" if args.verbose else "warning" if args.quiet else cfg.log_level)
        cfg = dataclasses.replace(cfg, detection=usable(cfg.detection))
        result: int = args.func(args, cfg)
        return result
    except ConfigError as exc:
        print(f"faced: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"faced: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FacedError as exc:
        print(f"faced: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("faced: interrupted", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:
        # The reader went away (`faced people | head`): no traceback, and no second error
        # when Python flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
