"""An operator's day with the CLI against a real case (issue 16): what it prints is what the case keeps,
a refusal exits 1 with the case's reason, and an empty search is no crash."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from temporalio.testing import WorkflowEnvironment

from activities import reports
from activities.db import create_pool
from domain.calendar import LONDON, end_of_day
from domain.case import Stage, Status
from starter.list_cmd import render_table
from tests.support import complaint, new_reference, start, wait_for, worker

ROOT = Path(__file__).resolve().parent.parent
OFFLINE = {"TEMPORAL_ADDRESS": "127.0.0.1:1"}  # nothing listens: these must fail before connecting


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "starter", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=60)


def dev_env_vars(env: WorkflowEnvironment, queue: str) -> dict[str, str]:
    return {"TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": env.client.namespace, "COMPLAINTS_TASK_QUEUE": queue}


def row(next_deadline: datetime | None, policy: str = "hos-code-2024") -> dict[str, Any]:
    return {"reference": "CMP-1", "stage": "stage-1", "status": "investigating", "handler": "staff-001",
            "overdue": False, "policy": policy, "next_deadline": next_deadline.isoformat() if next_deadline else None}


# -- point 6 and 7: `list` ------------------------------------------------------------------------
def test_list_shows_the_day_a_deadline_is_due_by() -> None:
    """A duty due by the end of 18 December passes at the midnight starting the 19th; `list` showed that
    instant ("2026-12-19 00:00"), a day late. It shows the due day, as `status` does."""
    for day in (date(2026, 12, 18), date(2027, 7, 1)):  # GMT and BST
        text = render_table([row(end_of_day(day))], 1)
        cells = text.splitlines()[1].split()
        assert cells[3] == day.isoformat(), text


def test_list_with_nothing_to_show_is_a_table_of_none() -> None:
    """`list --overdue` with no overdue case crashed (TypeError: 'int' object is not iterable)."""
    assert render_table([], 0).splitlines() == [
        "reference  stage  status  next deadline  handler  overdue", "0 cases"]


async def test_list_on_an_empty_search(dev_env: WorkflowEnvironment) -> None:
    r = await asyncio.to_thread(cli, "list", "--task-queue", f"nothing-{new_reference()}", "--overdue",
                                env=dev_env_vars(dev_env, "unused"))
    assert r.returncode == 0 and r.stdout.splitlines()[-1] == "0 cases" and not r.stderr, r


# -- point 4: filing straight into Stage 2 --------------------------------------------------------
def test_file_stage2_refused_where_the_policy_does_not_allow_it() -> None:
    r = cli("file", "--reference", "CMP-1", "--resident-name", "A B", "--property-address", "1 Road",
            "--nation", "england-and-wales", "--summary", "x", "--stage2", env=OFFLINE)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r
    assert r.stderr.startswith("error: refused: policy hos-code-2024 does not allow filing straight into Stage 2"), r


async def test_a_stage2_filing_the_policy_does_not_allow_is_recorded_as_what_happened(
        dev_env: WorkflowEnvironment, db_url: str, dev_now: Callable[[], datetime]) -> None:
    """Another client starts a case asking for Stage 2 under a policy that does not allow it: the case runs at
    Stage 1, says so in its timeline, and the case record (which the reports count) says Stage 1. Before, the
    record said filed_at_stage2 and `report tsm` counted a Stage 2 complaint that never was."""
    ref = new_reference("CLIS")
    queue = f"cli-{ref}"
    now = dev_now().astimezone(LONDON).replace(microsecond=0)
    pool = await create_pool(db_url)
    try:
        async with worker(dev_env, pool, queue):
            handle = await start(dev_env, complaint(ref, now, start_at_stage2=True), queue)
            s = await wait_for(handle, lambda s: s.status is Status.INVESTIGATING, "acknowledged at Stage 1")
            assert s.stage is Stage.STAGE1
            events = await handle.query("timeline")
            refused = [e for e in events if e["kind"] == "stage2_filing_refused"]
            assert len(refused) == 1 and "does not allow it" in refused[0]["summary"], events
            assert await pool.fetchval("SELECT filed_at_stage2 FROM complaints WHERE reference=$1", ref) is False
            assert await reports.received(pool, reports.Period.of(now.year)) == (1, 0)
            await handle.terminate("test over")
    finally:
        await pool.close()


# -- point 11 and 6: a refused signal, and the same date in `list` as in `status` -----------------
async def test_a_refused_signal_exits_1_and_list_agrees_with_status(dev_env: WorkflowEnvironment, db_url: str,
                                                                   dev_now: Callable[[], datetime]) -> None:
    ref = new_reference("CLIR")
    queue = f"cli-{ref}"
    env = dev_env_vars(dev_env, queue)

    async def run(*args: str) -> subprocess.CompletedProcess[str]:
        # In a thread: the worker runs on this event loop and must serve the case while the CLI waits.
        return await asyncio.to_thread(cli, *args, env=env)

    pool = await create_pool(db_url)
    try:
        async with worker(dev_env, pool, queue):
            r = await run("file", "--reference", ref, "--resident-name", "Maria Jones", "--property-address",
                          "Flat 4, 12 Harbour Road", "--nation", "england-and-wales", "--summary", "Damp",
                          "--received-at", dev_now().isoformat())  # the server's clock (tests/clock.py)
            assert r.returncode == 0, r
            handle = dev_env.client.get_workflow_handle(f"complaint-{ref}")
            await wait_for(handle, lambda s: s.status is Status.INVESTIGATING, "acknowledgement")

            # Over the policy's 10-working-day limit: the case refuses; the CLI printed "sent" and exited 0.
            r = await run("extend", ref, "--working-days", "15", "--reason", "Waiting for the survey")
            assert r.returncode == 1 and not r.stdout, r
            assert r.stderr == ("error: refused: extend_deadline: 15 working days in all is over this policy's "
                                "limit of 10; more needs a genuine reason recorded as exceptional\n"), r
            r = await run("extend", ref, "--working-days", "3", "--reason", "Waiting for the survey")
            assert r.returncode == 0 and r.stdout == f"sent extend_deadline to {ref}\n" and not r.stderr, r

            status = json.loads((await run("status", ref, "--json")).stdout)
            due = status["next_deadline"]["due_date"]
            assert status["next_deadline"]["extended_by"] == 3

            # Visibility catches up with the extension shortly after: poll, bounded.
            for _ in range(100):
                r = await run("list", "--task-queue", queue, "--json")
                cases = json.loads(r.stdout)["cases"]
                if cases and cases[0]["next_deadline_due_by"] == due:
                    break
                await asyncio.sleep(0.2)
            assert cases[0]["next_deadline_due_by"] == due, (cases, due)
            r = await run("list", "--task-queue", queue)
            assert r.stdout.splitlines()[1].split()[3] == due, r.stdout
            await handle.terminate("test over")
    finally:
        await pool.close()
