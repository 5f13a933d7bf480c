"""Dates at the edges of what a case can count, on the real stack (dev server, PostgreSQL, the worker as its
own process): a complaint received four years ago (migrated from an old system) runs like any other; one
received two years ahead is refused at start with the reason, leaving nothing behind.

Dates come from the dev server's clock; the working days expected are counted here, day by day, from the
nation's bank holidays (not with the engine's calendar code).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import TypeVar

import asyncpg
import holidays
import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError

from domain.calendar import LONDON
from domain.case import CaseStatus, Deadline, Status
from domain.contract import WORKFLOW_TYPE, workflow_id
from tests.clock import server_now
from tests.faults.driver import complaint
from tests.faults.stack import FaultStack, fault_stack

T = TypeVar("T")
CLOSING = 17  # the Code's closing time: a trigger at or after 17:00 London counts from the next working day


def england(years: range) -> set[date]:
    return set(holidays.country_holidays("GB", subdiv="ENG", years=years, observed=True))


def working(d: date) -> bool:
    return d.weekday() < 5 and d not in england(range(d.year, d.year + 1))


def working_days_after(day: date, n: int) -> date:
    while n:
        day += timedelta(days=1)
        n -= working(day)
    return day


def day_zero(at: datetime) -> date:
    local = at.astimezone(LONDON)
    d = local.date()
    return d if working(d) and local.hour < CLOSING else working_days_after(d, 1)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FaultStack]:
    async with fault_stack(tmp_path_factory.mktemp("received-dates"), f"dates-{uuid.uuid4().hex[:8]}") as s:
        yield s


async def status(handle: WorkflowHandle) -> CaseStatus:
    return await handle.query("status", result_type=CaseStatus, rpc_timeout=timedelta(seconds=10))


async def eventually(check: Callable[[], Awaitable[T | None]], what: str, limit: float = 60.0) -> T:
    end = time.monotonic() + limit
    while True:
        try:
            got = await check()
        except Exception as exc:  # a query to a stuck case fails: keep trying to the limit, then say so
            got, why = None, exc
        else:
            why = None
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {limit:.0f} s waiting for {what} (last: {why or got!r})")
        await asyncio.sleep(0.25)


async def file(stack: FaultStack, received: datetime) -> tuple[str, WorkflowHandle]:
    assert stack.client is not None
    ref = f"DATES-{uuid.uuid4().hex[:8].upper()}"
    c = complaint(ref, policy="hos-code-2024", received_at=received)
    handle = await stack.client.start_workflow(WORKFLOW_TYPE, c, id=workflow_id(ref), task_queue=stack.task_queue)
    return ref, handle


def deadline(s: CaseStatus, key: str) -> Deadline:
    return next(d for d in s.deadlines if d.key == key)


async def test_a_complaint_received_four_years_ago_runs_like_any_other(stack: FaultStack) -> None:
    client: Client = stack.client  # type: ignore[assignment]
    now = (await server_now(client)).astimezone(LONDON)
    day = date(now.year - 4, now.month, min(now.day, 28))
    while not working(day):
        day += timedelta(days=1)
    received = datetime(day.year, day.month, day.day, 10, tzinfo=LONDON)
    ref, handle = await file(stack, received)

    s = await eventually(lambda: _when(status(handle), lambda s: s.status is Status.INVESTIGATING),
                         "the case to be acknowledged")
    ack = deadline(s, "stage1.acknowledgement")
    assert ack.due_date == working_days_after(day, 5)
    assert ack.met_at is not None and not ack.met_on_time  # acknowledged now, years after its due date
    response = deadline(s, "stage1.response")
    assert response.due_date == working_days_after(day_zero(ack.met_at), 10)

    # It takes a valid message: an extension moves the response by five working days, counted on.
    await handle.signal("extend_deadline", {"working_days": 5, "reason": "Records from the old system"})
    s = await eventually(lambda: _when(status(handle), lambda s: len(s.extensions) == 1), "the extension")
    assert deadline(s, "stage1.response").due_date == working_days_after(response.due_date, 5)
    result = await handle.execute_update("submit_stage1_response", {
        "decision": "upheld", "reasons": "The repair was never booked.", "by": "Priya Shah"})
    assert result["accepted"], result
    s = await eventually(lambda: _when(status(handle), lambda s: s.status is Status.RESPONDED), "the response")
    window = deadline(s, "escalation.window")
    assert window.due_date > now.date()

    # Its record is whole: the row, and every event of the workflow's timeline in order, each once.
    conn = await asyncpg.connect(stack.database_url)
    try:
        timeline = await handle.query("timeline")
        rows = await eventually(lambda: _when(conn.fetch(
            "SELECT seq, kind FROM timeline WHERE reference=$1 ORDER BY seq", ref), lambda r: len(r) >= len(timeline)),
            "the timeline in the record")
        assert [(r["seq"], r["kind"]) for r in rows] == [(e["seq"], e["kind"]) for e in timeline]
        row = await conn.fetchrow("SELECT received_at, status FROM complaints WHERE reference=$1", ref)
        assert row["received_at"] == received and row["status"] == "responded"
        due = await conn.fetchval("SELECT due_date FROM deadlines WHERE reference=$1 AND key='stage1.response'", ref)
        assert due == deadline(s, "stage1.response").due_date
    finally:
        await conn.close()
    await _no_failed_tasks(handle)


async def test_a_complaint_received_two_years_ahead_is_refused_at_start_with_the_reason(stack: FaultStack) -> None:
    client: Client = stack.client  # type: ignore[assignment]
    now = (await server_now(client)).astimezone(LONDON)
    received = datetime(now.year + 2, now.month, min(now.day, 28), 10, tzinfo=LONDON)
    ref, handle = await file(stack, received)

    with pytest.raises(WorkflowFailureError) as failed:
        await asyncio.wait_for(handle.result(), timeout=60)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidComplaint"
    assert received.isoformat() in str(cause) and "later than now" in str(cause)
    assert (await handle.describe()).status is WorkflowExecutionStatus.FAILED

    # Refused once, before anything was opened: no activity ran, no task failed, no record was written.
    kinds = [e.event_type async for e in handle.fetch_history_events()]
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in kinds
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in kinds
    conn = await asyncpg.connect(stack.database_url)
    try:
        for table in ("complaints", "timeline", "deadlines", "correspondence"):
            assert await conn.fetchval(f"SELECT count(*) FROM {table} WHERE reference=$1", ref) == 0, table
    finally:
        await conn.close()


async def _when(value: Awaitable[T], check: Callable[[T], bool]) -> T | None:
    got = await value
    return got if check(got) else None


async def _no_failed_tasks(handle: WorkflowHandle) -> None:
    async for e in handle.fetch_history_events():
        assert e.event_type != EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED, e
