"""python -m starter: the operators' and integrators' command line."""

from __future__ import annotations

import os
import sys

from starter.cli import main

if __name__ == "__main__":
    code = main()
    # The Temporal SDK's native runtime can crash while the interpreter finalises (sdk-python#300),
    # after our output is complete: flush and leave without finalising, so the exit code is ours.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
