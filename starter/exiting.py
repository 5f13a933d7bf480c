"""Leaving a process that used the Temporal SDK."""

from __future__ import annotations

import os
import sys
from typing import NoReturn


def leave(code: int) -> NoReturn:
    """Exit with `code` without interpreter finalisation.

    The SDK's native runtime threads can abort CPython while it finalises (temporalio/sdk-python#300),
    after the work is done, turning a clean exit into 134 or 139. Flush what we printed and go.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
