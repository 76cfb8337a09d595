"""The `faced` command (`python -m faced` and the console script both enter here).

Kept tiny on purpose: multiprocessing re-imports the command's main module in every worker
process it starts, so what this module imports at the top, each worker imports too. Importing
the CLI here would give each encoder the clustering stack (scikit-learn, SciPy): start-up time
and memory in every worker, for code a worker never runs (docs/decisions/performance.md).
"""

import sys


def main() -> int:
    """Run the CLI with sys.argv; returns the exit code."""
    from faced.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
