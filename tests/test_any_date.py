"""The suite passes whatever day it runs.

Scenario dates are fixed on the time-skipping server, whose clock starts at tests.clock.TEST_SERVER_START
(not the machine's), and taken from the server's own clock on the dev server. Here: the pinned start,
and a small set of scenario tests run again in a subprocess whose whole process tree reads its clock
(libfaketime) years after every fixed date in the suite; a test that took its dates or its "now" from
the machine's clock fails there. `scripts/test_at_date.sh DATE` does the same for the whole suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from tests.clock import TEST_SERVER_START, faketime_env

ROOT = Path(__file__).resolve().parents[1]
LATER = datetime(2031, 6, 2, 9, tzinfo=UTC)
# Fixed dates on the time-skipping server, and dates from the dev server's clock (a whole case, and
# the CLI filing one).
SCENARIOS = [
    "tests/test_stage1.py",
    "tests/test_compressed_time.py::test_a_compressed_case_nobody_answers_records_one_stage1_breach",
    "tests/test_cli_messages.py::test_file_without_a_resident_address_writes_to_the_property",
]


def real_epoch() -> float:
    """The machine's real clock, even when this process's is faked (then LD_PRELOAD is set)."""
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "FAKETIME")}
    out = subprocess.run([sys.executable, "-c", "import time; print(time.time())"], env=env,
                         capture_output=True, text=True, check=True, timeout=30)
    return float(out.stdout)


async def test_the_time_skipping_server_starts_at_the_pinned_instant(time_env: WorkflowEnvironment) -> None:
    now = await time_env.get_current_time()
    assert TEST_SERVER_START <= now < TEST_SERVER_START + timedelta(minutes=10), now


def test_scenarios_pass_with_every_clock_moved_years_on() -> None:
    offset = LATER.timestamp() - real_epoch()
    env = {**os.environ, **faketime_env(f"{offset:+.0f}")}
    seen = subprocess.run([sys.executable, "-c", "import datetime; print(datetime.date.today())"], env=env,
                          capture_output=True, text=True, timeout=30).stdout.strip()
    assert seen == LATER.date().isoformat(), f"libfaketime did not move the clock: {seen}"
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *SCENARIOS],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"with the clock at {LATER:%Y-%m-%d}:\n{r.stdout[-4000:]}\n{r.stderr[-2000:]}"
