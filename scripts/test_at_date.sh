#!/usr/bin/env bash
# `make test` with the clock of every process it starts moved to DATE (libfaketime, from the test extras),
# to show the suite does not depend on the day it runs: scripts/test_at_date.sh 2031-06-01 [pytest args]
#
# Every libc process (pytest, the CLI and worker subprocesses, PostgreSQL) is moved by the same offset,
# so they agree with each other; the dev server is a Go binary, which reads the clock without libc and
# keeps the real one (tests on it take their dates from the server); the time-skipping test server is
# started at its own fixed instant anyway (tests/clock.py).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
  echo "usage: scripts/test_at_date.sh YYYY-MM-DD [pytest arguments]" >&2
  exit 2
fi
target=$(date -u -d "$1" +%s 2>/dev/null) || { echo "test_at_date: not a date: $1" >&2; exit 2; }
shift
make --no-print-directory venv
offset=$((target - $(date -u +%s)))
echo "test_at_date: clock moved to $(date -u -d "@$target" '+%Y-%m-%d %H:%M UTC') (offset ${offset}s)" >&2
# The environment tests/clock.py gives the pinned test server (LD_PRELOAD, FAKETIME and the settings that
# keep timed waits working), with a fixed offset so that every process agrees with every other.
eval "$(.venv/bin/python -c '
import shlex, sys
from tests.clock import faketime_env
for k, v in faketime_env(sys.argv[1]).items():
    print(f"export {k}={shlex.quote(v)}")
' "+${offset}")"
.venv/bin/ruff check .
.venv/bin/python -c 'import datetime; print("test_at_date: the tests see", datetime.datetime.now().isoformat(timespec="minutes"))' >&2
exec .venv/bin/python -m pytest -q "$@"
