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
from domain.calendar import LONDON, DeadlineUnit, end_of_day
from domain.case import CaseStatus, Deadline, Stage, Status
from starter.cli import render_status
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


# -- point 13: the operators' window ----------------------------------------------------------------
def _deadline(key: str, label: str, day: date) -> Deadline:
    return Deadline(key=key, label=label, stage=Stage.STAGE1, length=5, unit=DeadlineUnit.WORKING_DAYS,
                    trigger_at=datetime(2026, 11, 2, 10, tzinfo=LONDON), original_due_date=day, due_date=day,
                    due_at=end_of_day(day))


def test_status_lists_deadlines_in_date_order_and_names_the_cli_commands() -> None:
    """`status` listed deadlines in the order they were opened, and "update submit_stage1_response" where the
    operator's command is `respond`."""
    s = CaseStatus(
        reference="CMP-1", policy="hos-code-2024@1", stage=Stage.STAGE1, status=Status.INVESTIGATING,
        waiting_for="the Stage 1 response (update submit_stage1_response)",
        deadlines=[_deadline("stage1.response", "Stage 1 response", date(2026, 11, 30)),
                   _deadline("stage1.acknowledgement", "Acknowledgement", date(2026, 11, 9)),
                   _deadline("stage2.contact", "Review contact", date(2026, 12, 14))],
        breaches=[], extensions=[], problems=["Letter waits: give an address (update supply_contact_details)"])
    text = render_status(s)
    assert "waiting for: the Stage 1 response (python -m starter respond)" in text, text
    assert "problems: Letter waits: give an address (python -m starter supply-contact)" in text, text
    assert "submit_stage1_response" not in text and "supply_contact_details" not in text
    days = [line.split()[0] for line in text.splitlines() if line.startswith("    ")]
    assert days == ["2026-11-09", "2026-11-30", "2026-12-14"], text


async def test_staff_list_names_the_ids(db_url: str) -> None:
    env = {**OFFLINE, "COMPLAINTS_DATABASE_URL": db_url}
    r = await asyncio.to_thread(cli, "staff", "list", "--role", "case_handler", env=env)
    assert r.returncode == 0 and not r.stderr, r
    rows = [line.split("  ") for line in r.stdout.splitlines()]
    assert [[c.strip() for c in row if c.strip()] for row in rows] == [
        ["id", "name", "role", "landlord", "open cases"],
        ["S-CH-01", "Priya Shah", "case_handler", "any", "0"],
        ["S-CH-02", "Tom Evans", "case_handler", "any", "0"],
        ["S-CH-03", "Grace Okafor", "case_handler", "any", "0"]], r.stdout
    r = await asyncio.to_thread(cli, "staff", "list", "--json", env=env)
    everyone = {s["id"]: s for s in json.loads(r.stdout)}
    assert everyone["S-S2-01"]["name"] == "Helen Clarke" and everyone["S-S2-01"]["role"] == "stage2_reviewer"
    r = await asyncio.to_thread(cli, "staff", "list", env={**OFFLINE, "COMPLAINTS_DATABASE_URL": ""})
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "COMPLAINTS_DATABASE_URL" in r.stderr, r


async def test_reassign_and_accept_escalation_drive_a_real_case(dev_env: WorkflowEnvironment, db_url: str,
                                                               dev_now: Callable[[], datetime]) -> None:
    """A handler reassigned to another member of staff, refused (exit 1, one line) when that person cannot
    take it; an escalation accepted at once, so Stage 2 starts without waiting out the day's triage."""
    ref = new_reference("CLIE")
    queue = f"cli-{ref}"
    env = dev_env_vars(dev_env, queue)

    async def run(*args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(cli, *args, env=env)

    async def refused(*args: str) -> str:
        r = await run(*args)
        assert r.returncode == 1 and not r.stdout and r.stderr.count("\n") == 1, r
        return r.stderr.strip()

    pool = await create_pool(db_url)
    try:
        async with worker(dev_env, pool, queue):
            handle = await start(dev_env, complaint(ref, dev_now().astimezone(LONDON).replace(microsecond=0)), queue)
            s = await wait_for(handle, lambda s: s.status is Status.INVESTIGATING, "acknowledged")
            first = await pool.fetchval("SELECT staff_id FROM assignments WHERE reference=$1 AND stage='stage-1'", ref)
            other = next(i for i in ("S-CH-01", "S-CH-02") if i != first)
            assert (await refused("reassign", ref, "--to", "S-NOBODY", "--by", "Team leader")) == (
                "error: refused: reassign_handler: no staff member with id 'S-NOBODY' (python -m starter staff list)")
            line = await refused("reassign", ref, "--to", "S-S2-01", "--by", "Team leader")
            assert line == ("error: refused: reassign_handler: Helen Clarke (S-S2-01) is a stage2_reviewer; this "
                            "needs a case_handler"), line
            line = await refused("reassign", ref, "--to", first, "--by", "Team leader")
            assert line.endswith("already handles the complaint"), line
            r = await run("reassign", ref, "--to", other, "--reason", "On leave", "--by", "Team leader", "--json")
            assert r.returncode == 0 and json.loads(r.stdout)["details"] == {"staff_id": other, "stage": "stage-1"}, r
            s = await wait_for(handle, lambda s: s.handler != s_handler(first), "reassigned")
            assert await pool.fetchval(
                "SELECT staff_id FROM assignments WHERE reference=$1 AND stage='stage-1'", ref) == other
            events = await handle.query("timeline")
            moved = [e for e in events if e["kind"] == "handler_reassigned"]
            assert len(moved) == 1 and moved[0]["detail"]["previous_staff_id"] == first, moved

            # Not yet asked for: nothing to accept.
            line = await refused("accept-escalation", ref, "--by", "Complaints team")
            assert line == "error: refused: accept_escalation: the resident has not asked for a review", line
            r = await run("respond", ref, "--decision", "not_upheld", "--reasons", "Repaired on time", "--by", "T E")
            assert r.returncode == 0, r
            await wait_for(handle, lambda s: s.status is Status.RESPONDED, "responded")
            assert (await run("review-request", ref, "--reasons", "Still damp")).returncode == 0
            await wait_for(handle, lambda s: "accepted or refused" in s.waiting_for, "in triage")
            r = await run("status", ref)
            assert "(python -m starter accept-escalation or refuse-escalation)" in r.stdout, r.stdout
            r = await run("accept-escalation", ref, "--by", "Complaints team")
            assert r.returncode == 0 and "Stage 2 starts now" in r.stdout, r
            # The triage lasts a working day; Stage 2 starts at once instead.
            s = await wait_for(handle, lambda s: s.stage is Stage.STAGE2 and s.stage2_handler is not None, "Stage 2")
            triage = next(d for d in s.deadlines if d.key == "escalation.triage")
            assert triage.met_at is not None and triage.passed_at is None and not triage.breached
            line = await refused("accept-escalation", ref, "--by", "Complaints team")
            assert "there is no escalation waiting to be accepted" in line, line
            # At Stage 2 the reviewer is reassigned, never to the Stage 1 handler.
            reviewer = await pool.fetchval(
                "SELECT staff_id FROM assignments WHERE reference=$1 AND stage='stage-2'", ref)
            line = await refused("reassign", ref, "--to", other, "--by", "Team leader")
            assert "is a case_handler; this needs a stage2_reviewer" in line, line
            next_reviewer = next(i for i in ("S-S2-01", "S-S2-02") if i != reviewer)
            assert (await run("reassign", ref, "--to", next_reviewer, "--by", "Team leader")).returncode == 0
            s = await wait_for(handle, lambda s: s.stage2_handler == {"S-S2-01": "Helen Clarke",
                                                                      "S-S2-02": "Daniel Moore"}[next_reviewer],
                               "reviewer reassigned")
            await handle.terminate("test over")
    finally:
        await pool.close()


def s_handler(staff_id: str) -> str:
    return {"S-CH-01": "Priya Shah", "S-CH-02": "Tom Evans", "S-CH-03": "Grace Okafor"}[staff_id]
