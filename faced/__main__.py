"""The `faced` command (`python -m faced` and the console script both enter here).

Kept tiny on purpose: multiprocessing re-imports the command's main module in every worker
process it starts, so what this module imports at the top, each worker imports too. Importing
the CLI here would give each encoder the clustering stack (scikit-learn, SciPy): start-up time
and memory in every worker, for code a worker never runs (docs/decisions/performance.md).
"""

import os
import sys


def main() -> int:
    """Run the CLI with sys.argv; returns the exit code."""
    # Under the service's sandbox (ProcSubset=pid) /proc/cpuinfo is hidden, and joblib's probe
    # for physical cores, which scikit-learn runs to size its OpenMP threads, fails with a
    # warning and a traceback on stderr. Naming OpenMP's thread count (the CPUs this process may
    # use, which OpenMP picks anyway) means it never asks. Set before any OpenMP library loads.
    from faced.faces.cpus import usable_cpus  # imports only os

    os.environ.setdefault("OMP_NUM_THREADS", str(usable_cpus()))
    from faced.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
