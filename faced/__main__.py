"""`python -m faced` is the `faced` command."""

import sys

from faced.cli import main

sys.exit(main())
