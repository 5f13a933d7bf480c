"""Fewer activities per case: a case opens in one activity, and a step that writes the case record
(a letter, an appointment) writes the pending timeline rows in its own transaction.

What must not change: every timeline row is in the case record once, in order, even when the step
fails (the resident unreachable), is retried, or two batches commit out of order.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import asyncpg
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.case_record import CaseRecordActivities
from domain.case import CaseEvent, Stage, Status
from domain.contract import Signal, workflow_id
from domain.policy import load_policy
from domain.records import CaseSnapshot, EventBatch, LetterRequest, OpenCase, calendar_request
from tests.support import (
    as_case,
    complaint,
    london,
    new_reference,
    replays,
    skip_to,
    start,
    timeline_kinds,
    wait_for,
    wait_for_survey,
    worker,
)

AT = london(2026, 3, 2)
RESPONSE = {"decision": "upheld", "reasons": "The repair was late.", "remedy": "£50 for the delay",
            "points_addressed": ["Repair delay"], "by": "Priya Shah"}


def event(seq: int, kind: str = "note") -> CaseEvent:
    return CaseEvent(seq=seq, at=AT + timedelta(minutes=seq), kind=kind, stage=Stage.STAGE1, summary=f"event {seq}")


def batch(ref: str, *seqs: int, status: Status = Status.INVESTIGATING) -> EventBatch:
    return EventBatch(reference=ref, events=[event(s) for s in seqs],
                      case=CaseSnapshot(stage=Stage.STAGE1, status=status), deadlines=[])


async def opened(pool: asyncpg.Pool) -> tuple[str, CaseRecordActivities, ActivityEnvironment]:
    ref = new_reference("TWS")
    acts, env = CaseRecordActivities(pool), as_case(ref)
    await env.run(acts.open_case, OpenCase(complaint=complaint(ref, AT), workflow_id=workflow_id(ref)))
    return ref, acts, env


def letter(ref: str, **overrides: object) -> LetterRequest:
    fields = dict(reference=ref, letter_key="stage1.acknowledgement", kind="acknowledgement", stage=Stage.STAGE1,
                  recipient_name="Maria Jones", recipient_address="Flat 4, 12 Harbour Road",
                  fields={"landlord": "Test Homes", "received_on": "Monday 2 March 2026", "summary": "Damp",
                          "desired_outcome": "Repair", "handler": "Sam Patel", "response_due": "Monday 16 March 2026"})
    return LetterRequest(**{**fields, **overrides})


async def test_open_case_registers_the_complaint_and_returns_its_pinned_policy_and_calendar(pool: asyncpg.Pool) -> None:
    ref = new_reference("TWS")
    c = complaint(ref, AT)
    acts, env = CaseRecordActivities(pool), as_case(ref)
    first = await env.run(acts.open_case, OpenCase(complaint=c, workflow_id=workflow_id(ref)))
    again = await env.run(acts.open_case, OpenCase(complaint=c, workflow_id=workflow_id(ref)))  # a retry
    policy = load_policy("hos-code-2024")
    assert first == again
    assert (first.policy.id, first.policy.version) == (policy.id, policy.version)
    assert first.calendar == await env.run(acts.load_calendar, calendar_request(c, policy))
    row = await pool.fetchrow("SELECT policy_version, status, count(*) OVER () AS n FROM complaints WHERE reference=$1",
                              ref)
    assert (row["policy_version"], row["status"], row["n"]) == (policy.pinned_version, "filed", 1)  # with its hash


async def test_open_case_refuses_an_unknown_policy_without_registering(pool: asyncpg.Pool) -> None:
    ref = new_reference("TWS")
    acts, env = CaseRecordActivities(pool), as_case(ref)
    with pytest.raises(ApplicationError) as err:
        await env.run(acts.open_case, OpenCase(complaint=complaint(ref, AT, policy="no-such-landlord"),
                                               workflow_id=workflow_id(ref)))
    assert err.value.type == "InvalidRequest" and err.value.non_retryable
    assert await pool.fetchval("SELECT count(*) FROM complaints WHERE reference=$1", ref) == 0


async def test_a_letter_writes_the_timeline_rows_it_carries_once_however_often_it_is_retried(
    pool: asyncpg.Pool,
) -> None:
    ref, acts, env = await opened(pool)
    request = letter(ref, timeline=batch(ref, 1, 2))
    first = await env.run(acts.send_letter, request)
    again = await env.run(acts.send_letter, request)
    assert again.letter_id == first.letter_id
    assert await timeline_kinds(pool, ref) == ["note", "note"]
    assert await pool.fetchval("SELECT count(*) FROM correspondence WHERE reference=$1", ref) == 1
    assert await pool.fetchval("SELECT status FROM complaints WHERE reference=$1", ref) == "investigating"


async def test_a_step_that_fails_still_writes_its_timeline_rows_and_nothing_else(pool: asyncpg.Pool) -> None:
    ref, acts, env = await opened(pool)
    with pytest.raises(ApplicationError) as err:
        await env.run(acts.send_letter, letter(ref, recipient_address=None, timeline=batch(ref, 1, 2, 3)))
    assert err.value.type == "ResidentUnreachable"
    # The case record shows where the case is while it waits for contact details; no letter was written.
    assert await timeline_kinds(pool, ref) == ["note"] * 3
    assert await pool.fetchval("SELECT count(*) FROM correspondence WHERE reference=$1", ref) == 0


async def test_an_older_batch_committing_late_leaves_the_newer_case_row_alone(pool: asyncpg.Pool) -> None:
    ref, acts, env = await opened(pool)
    await env.run(acts.record_events, batch(ref, 3, 4, status=Status.RESPONDED))
    # Written by the other writer earlier but committed later (a retried step): its rows go in, its
    # projection of the case does not overwrite the newer one.
    await env.run(acts.send_letter, letter(ref, timeline=batch(ref, 1, 2, status=Status.INVESTIGATING)))
    assert await timeline_kinds(pool, ref) == ["note"] * 4
    row = await pool.fetchrow("SELECT status, recorded_seq FROM complaints WHERE reference=$1", ref)
    assert (row["status"], row["recorded_seq"]) == ("responded", 4)


async def recorded(pool: asyncpg.Pool, handle: WorkflowHandle, reference: str, limit: float = 20.0) -> None:
    """Wait (real time) until the case record's timeline is the case's own, row for row."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while True:
        own = [e.kind for e in await handle.query("timeline", result_type=list[CaseEvent])]
        stored = await timeline_kinds(pool, reference)
        if stored == own:
            return
        if loop.time() > end:
            raise AssertionError(f"the case record's timeline {stored} is not the case's own {own}")
        await asyncio.sleep(0.05)


async def activity_types(handle: WorkflowHandle) -> list[str]:
    return [e.activity_task_scheduled_event_attributes.activity_type.name async for e in handle.fetch_history_events()
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]


async def test_a_new_case_opens_in_one_activity_and_its_steps_carry_the_timeline(
    time_env: WorkflowEnvironment, pool: asyncpg.Pool
) -> None:
    ref = new_reference("TWS")
    queue = f"tws-{ref}"
    received = london(2027, 3, 1)
    await skip_to(time_env, received)
    async with worker(time_env, pool, queue):
        handle = await start(time_env, complaint(ref, received), queue)
        await wait_for(handle, lambda s: s.status is Status.INVESTIGATING, "the acknowledgement")
        await recorded(pool, handle, ref)
        opening = await activity_types(handle)
        await handle.execute_update("submit_stage1_response", RESPONSE)
        await wait_for(handle, lambda s: s.status is Status.RESPONDED, "the response letter")
        await skip_to(time_env, london(2027, 4, 20, 12))  # past the 20-working-day escalation window
        await wait_for_survey(handle)
        await handle.signal(Signal.SURVEY_RESPONSE.value, {"satisfied": True, "score": 9})
        await handle.result()
        # Everything the case told its own timeline is in the case record, the last rows included.
        await recorded(pool, handle, ref)
        await replays(time_env, handle)
        lifecycle = Counter(await activity_types(handle))
    # Opening: one activity, not load_policy, register_complaint and load_calendar; the rows of filing and
    # of the appointment go with the appointment and the letter; one record_events for what the
    # acknowledgement itself produced (letter sent, acknowledged, the response deadline).
    assert opening == ["open_case", "appoint_staff", "send_letter", "record_events"], opening
    assert not {"load_policy", "register_complaint", "load_calendar"} & set(lifecycle)
    assert lifecycle["send_letter"] == 3  # acknowledgement, response, survey
    # Before: 7 record_events in this lifecycle (docs/benchmarks.md); a step now carries the rows
    # that were written before it, so only those a wait follows need one.
    assert lifecycle["record_events"] <= 5, lifecycle
    kinds = Counter(await timeline_kinds(pool, ref))
    assert kinds["filed"] == kinds["handler_appointed"] == kinds["acknowledged"] == kinds["closed"] == 1
    assert kinds["letter_sent"] == 3 and kinds["survey_answered"] == 1
