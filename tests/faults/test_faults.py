"""Faults on the real stack: the dev server persisting to a file, real PostgreSQL, and the worker as
its own process. Every case runs its whole lifecycle under the compressed-time Code policy (tests/
policies/compressed-code.toml: deadlines in seconds): filed, acknowledged, answered at Stage 1, the
escalation window passes, closed, the survey sent and answered or left to lapse.

    COMPLAINTS_FAULT_CASES   cases per test (default 40, the size `make test` runs; 200 in `make test-faults`)
    COMPLAINTS_FAULT_SEED    seed of the kill schedule (default 20240401), so a failing run can be repeated
    COMPLAINTS_FAULT_CHAOS_SECONDS  how long the kills go on (default 30; 90 in `make test-faults`)
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus

from domain.case import CaseStatus, Status
from domain.contract import Query, SupplyContactDetails, Update, UpdateResult, workflow_id
from tests.faults.conftest import FIGURES
from tests.faults.driver import LIFECYCLE_EVENTS, Driver, Figures, check_cases, resident
from tests.faults.stack import fault_stack

pytestmark = pytest.mark.faults

CASES = int(os.environ.get("COMPLAINTS_FAULT_CASES") or 40)
SEED = int(os.environ.get("COMPLAINTS_FAULT_SEED") or 20240401)
# Kills go on for this long (through filing, Stage 1 and closure), then the cases are left to finish.
CHAOS_S = float(os.environ.get("COMPLAINTS_FAULT_CHAOS_SECONDS") or 30)
# Bounds on real time, generous for two busy cores: a lifecycle is ~30 s of timers, and each kill can
# leave an activity to its 30 s start-to-close timeout before another worker retries it.
DRIVE_TIMEOUT = 240 + CASES * 1.5
OUTAGE_S = 30.0
OUTAGE_LOG_INTERVAL_S = 10.0


def queue() -> str:
    return f"faults-{uuid.uuid4().hex[:8]}"


def assert_nothing_lost(figures: Figures) -> None:
    assert figures.completed == figures.cases, "every case finishes"
    assert figures.max_letters_per_kind == 1, "each (case, letter kind) has exactly one letter"
    assert figures.letters_missing == 0, "every case got its acknowledgement, response and survey"
    assert figures.events_lost == 0, "every timeline event is in the case record"
    assert figures.events_doubled == 0 and figures.rows_extra == 0, "and only once"
    # A task that failed and was retried to success is visible here; non-determinism would show as
    # NON_DETERMINISTIC_ERROR (and leave the case stuck, so `completed` would fail first).
    assert figures.harmful_task_failures == 0, f"workflow tasks failed: {dict(figures.task_failures)}"
    assert figures.replay_failures == [], "today's code replays every history (else a restart fails it for good)"


async def wait_until(check, what: str, limit: float) -> None:
    end = time.monotonic() + limit
    while not await check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {limit:.0f} s waiting for {what}")
        await asyncio.sleep(0.25)


async def test_worker_sigkilled_at_random_moments(tmp_path: Path) -> None:
    """SIGKILL the worker every 2-6 s and start another: every case still completes, each letter is
    written once, and the timeline has every event exactly once."""
    rng = random.Random(SEED)
    started = time.monotonic()
    async with fault_stack(tmp_path, queue()) as stack:
        driver = Driver(stack.client, stack.task_queue)
        refs = await driver.file(CASES)
        driving = asyncio.ensure_future(driver.drive(DRIVE_TIMEOUT))

        async def chaos() -> None:
            until = time.monotonic() + CHAOS_S
            while not driving.done() and time.monotonic() < until:
                # The moment is chosen at random: mid-activity, mid-workflow-task, mid-update or idle.
                await asyncio.wait({driving}, timeout=rng.uniform(2.0, 6.0))
                if driving.done():
                    return
                stack.kill_worker()
                await stack.start_worker()

        await asyncio.gather(driving, chaos())
        figures = await check_cases(stack.client, stack.database_url, refs)
        figures.kills = stack.kills
        figures.duration_s = time.monotonic() - started
        FIGURES.append(figures.line(f"worker SIGKILL, seed {SEED}"))
        print(figures.line("worker SIGKILL"))
        assert stack.kills >= 1
        assert_nothing_lost(figures)


async def test_postgres_down_for_30_seconds(tmp_path: Path) -> None:
    """PostgreSQL stops mid-run for 30 s: activities retry with backoff and then succeed, nothing is
    lost or doubled, and the worker says so a few times, not once per failed attempt."""
    started = time.monotonic()
    async with fault_stack(tmp_path, queue(), outage_log_seconds=OUTAGE_LOG_INTERVAL_S) as stack:
        driver = Driver(stack.client, stack.task_queue)
        refs = await driver.file(CASES, answer_every=1)  # surveys answered: the lapse path is the kill test's
        driving = asyncio.ensure_future(driver.drive(DRIVE_TIMEOUT))
        # Mid-run: half the cases answered at Stage 1, the rest still waiting, timers pending for all.
        await wait_until(_half_responded(driver), "half the Stage 1 responses", 120)
        await stack.pause_postgres()
        await asyncio.sleep(OUTAGE_S)  # the outage itself: its length is the fault, not a deadline
        await stack.resume_postgres()
        await driving
        figures = await check_cases(stack.client, stack.database_url, refs)
        figures.duration_s = time.monotonic() - started
        lines = [json.loads(ln) for ln in stack.worker_log.read_text().splitlines() if ln.startswith("{")]

    outage = [ln for ln in lines if ln.get("event", "").startswith("case record")]
    down = [ln for ln in outage if "unreachable" in ln["event"]]
    back = [ln for ln in outage if ln["event"] == "case record reachable again"]
    per_attempt = [ln for ln in lines if ln.get("event") in ("Completing activity as failed",
                                                             "Failed to restore the pool connection floor; retrying")]
    failed_attempts = sum(ln.get("failed_attempts", 0) for ln in outage)
    FIGURES.append(figures.line("PostgreSQL down 30 s") + f"; outage log lines {len(down)} down + {len(back)} back, "
                   f"for {failed_attempts} failed attempts")
    assert_nothing_lost(figures)
    assert figures.activity_retries > 0, "the outage made activities fail and retry"
    # Once when it starts, then at most once per interval while it lasts (a line may land on either side).
    assert 1 <= len(down) <= OUTAGE_S / OUTAGE_LOG_INTERVAL_S + 2, [ln["event"] for ln in down]
    assert len(back) >= 1 and back[-1]["failed_attempts"] >= 0
    assert failed_attempts > len(down), "many attempts failed, far fewer lines said so"
    assert per_attempt == [], "no line per failed attempt"


def _half_responded(driver: Driver):
    async def check() -> bool:
        return sum(c.responded for c in driver.cases.values()) >= len(driver.cases) // 2
    return check


async def test_temporal_dev_server_restarted(tmp_path: Path) -> None:
    """The dev server stops and starts again on the same database file and port: the cases carry on."""
    started = time.monotonic()
    async with fault_stack(tmp_path, queue()) as stack:
        driver = Driver(stack.client, stack.task_queue)
        refs = await driver.file(CASES, answer_every=1)
        driving = asyncio.ensure_future(driver.drive(DRIVE_TIMEOUT))
        await wait_until(_half_responded(driver), "half the Stage 1 responses", 120)
        worker_pid = stack.worker.pid if stack.worker else None
        await stack.restart_temporal()
        await driving
        figures = await check_cases(stack.client, stack.database_url, refs)
        figures.duration_s = time.monotonic() - started
        FIGURES.append(figures.line("Temporal dev server restart"))
        assert_nothing_lost(figures)
        # The worker rode out the restart itself: same process, reconnected.
        assert stack.worker_alive() and stack.worker is not None and stack.worker.pid == worker_pid
        assert stack.worker_starts == 1


async def test_letter_that_cannot_be_sent_waits_for_a_fix(tmp_path: Path) -> None:
    """No address and no email: the letter activity fails once, non-retryably; the case records the
    problem, tells an operator, waits; supplying an address sends the letter and the case goes on."""
    async with fault_stack(tmp_path, queue()) as stack:
        driver = Driver(stack.client, stack.task_queue)
        [ref] = await driver.file(1, resident=resident(address=None, email=None))
        handle = stack.client.get_workflow_handle(workflow_id(ref))

        async def status() -> CaseStatus:
            return await handle.query(Query.STATUS.value, result_type=CaseStatus, rpc_timeout=timedelta(seconds=10))

        async def awaiting_fix() -> bool:
            return (await status()).status is Status.AWAITING_FIX
        await wait_until(awaiting_fix, "the case to wait for contact details", 60)
        s = await status()
        assert s.problems and "acknowledgement letter cannot be sent" in s.problems[0]
        assert "supply_contact_details" in s.waiting_for

        # Recorded on the case and an operator told, as soon as the batch is written.
        conn = await asyncpg.connect(stack.database_url)
        try:
            async def recorded() -> bool:
                return await conn.fetchval(
                    "SELECT count(*) FROM timeline WHERE reference=$1 AND kind='problem_recorded'", ref) == 1
            await wait_until(recorded, "problem_recorded in the case record", 30)
            note = await conn.fetchrow("SELECT role, kind, message FROM notifications WHERE reference=$1"
                                       " AND kind='problem'", ref)
            assert note is not None and note["role"] == "operator" and ref in note["message"]
            assert await conn.fetchval("SELECT status FROM complaints WHERE reference=$1", ref) == "awaiting-fix"
            assert await conn.fetchval("SELECT count(*) FROM correspondence WHERE reference=$1", ref) == 0
        finally:
            await conn.close()

        # Tried once and given up at once: not retried with backoff for ever, and the case not failed.
        history = await handle.fetch_history()
        sends = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                 and e.activity_task_scheduled_event_attributes.activity_type.name == "send_letter"]
        starts = [e.activity_task_started_event_attributes.attempt for e in history.events
                  if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
                  and e.activity_task_started_event_attributes.scheduled_event_id == sends[0].event_id]
        failed = [e.activity_task_failed_event_attributes.failure for e in history.events
                  if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED]
        assert len(sends) == 1 and starts == [1]
        assert len(failed) == 1 and failed[0].application_failure_info.type == "ResidentUnreachable"
        assert failed[0].application_failure_info.non_retryable
        assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING

        result = await handle.execute_update(
            Update.SUPPLY_CONTACT_DETAILS.value, SupplyContactDetails(address="7 New Street, Bristol BS2 0AB"),
            id="contact-fix", result_type=UpdateResult, rpc_timeout=timedelta(seconds=10))
        assert result.accepted
        await driver.drive(120)

        figures = await check_cases(stack.client, stack.database_url, [ref], events={
            *LIFECYCLE_EVENTS,
            ("problem_recorded", None), ("contact_details_supplied", None)})
        FIGURES.append(figures.line("resident unreachable, then fixed"))
        assert_nothing_lost(figures)
        conn = await asyncpg.connect(stack.database_url)
        try:
            addresses = {r["kind"]: r["address"] for r in await conn.fetch(
                "SELECT kind, address FROM correspondence WHERE reference=$1", ref)}
        finally:
            await conn.close()
        assert addresses == {k: "7 New Street, Bristol BS2 0AB" for k in ("acknowledgement", "stage1_response", "survey")}

