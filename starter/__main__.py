"""python -m starter: the operators' and integrators' command line."""

from __future__ import annotations

import sys

from starter.cli import main

if __name__ == "__main__":
    sys.exit(main())  # main() leaves through os._exit when run as a program (see cli.main)
