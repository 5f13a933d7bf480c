"""What the workflow sandbox pays per workflow instance for our workflow modules: re-import every
`workflows.*` module that is not passed through into a fresh namespace, as the sandbox does for each
instance, and report time and retained memory per instance.

    python -m bench.reimport [SOURCE_ROOT]          # time (run twice: with and without .pyc files)
    BENCH_TRACEMALLOC=1 python -m bench.reimport    # memory (tracemalloc slows the timing)

SOURCE_ROOT defaults to this checkout; point it at `git archive <commit> workflows domain | tar -x`
to compare layouts.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import tracemalloc
from pathlib import Path

PASSED_THROUGH = ("workflows.messages", "workflows.deadline_book")


def main() -> None:
    root = sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).resolve().parent.parent)
    sys.path.insert(0, root)
    for m in PASSED_THROUGH:
        importlib.import_module(m)
    importlib.import_module("workflows.complaint")
    fresh = [m for m in sys.modules if m.startswith("workflows.") and m not in PASSED_THROUGH]
    trace = bool(os.environ.get("BENCH_TRACEMALLOC"))
    if trace:
        tracemalloc.start()
    before = tracemalloc.take_snapshot() if trace else None
    kept = []
    n = 20
    began = time.perf_counter()
    for _ in range(n):
        for m in fresh:
            del sys.modules[m]
        importlib.import_module("workflows.complaint")
        kept.append({m: sys.modules[m] for m in fresh})
    ms = (time.perf_counter() - began) / n * 1000
    line = f"{root}: {len(fresh)} modules re-imported per instance, {ms:.1f} ms"
    if before is not None:
        kb = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename")) / n / 1024
        line += f", {kb:.0f} KB retained"
    print(line)


if __name__ == "__main__":
    main()
