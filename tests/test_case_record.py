"""What the case record must hold, and when: registration before the calendar, decisions in the
timeline, and the Stage 2 appointment's different-person rule enforced by the activity itself."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import asyncpg
import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.calendar_data import CalendarChange, build_snapshot
from activities.case_record import CaseRecordActivities
from domain import calendar as wd
from domain.calendar import Nation
from domain.case import Stage
from domain.contract import Signal, workflow_id
from domain.policy import POLICY_PATH_ENV
from domain.records import Activity, AppointStaff, OpenCase, OpenedCase
from starter.calendar_cmd import apply_change
from tests.support import as_case, complaint, deadline, new_reference, signal, start, wait_for, worker
from workflows.complaint import ComplaintWorkflow

NATION = Nation.ENGLAND_AND_WALES
TEST_POLICIES = Path(__file__).resolve().parent / "policies"


async def test_a_calendar_change_made_while_a_case_is_being_filed_reaches_it(
    time_env: WorkflowEnvironment, pool: asyncpg.Pool, db_url: str
) -> None:
    """The calendar command tells the open cases in the complaints table. A change made just after
    the case's first calendar was read must still reach it, so the case is registered before that."""
    ref = new_reference("REG")
    queue = f"reg-{ref}"
    now = await time_env.get_current_time()
    today = now.astimezone(wd.LONDON).date()
    before = build_snapshot(NATION, today.year, today.year + 3)
    # Three working days on: inside the Stage 1 response count however late today the case arrives.
    holiday = wd.add_working_days(before, today, 3)
    change = CalendarChange(day=holiday, change="add", reason="One-off bank holiday", nation=NATION)
    record = CaseRecordActivities(pool)
    announced: list[bool] = []

    @activity.defn(name=Activity.OPEN_CASE)
    async def open_case_then_announce(request: OpenCase) -> OpenedCase:
        opened = await record.open_case(request)  # registers the case, then reads its calendar
        if not announced:  # the first read of the case's calendar; the change lands right after it
            announced.append(True)
            await apply_change(time_env.client, db_url, change)
        return opened

    acts = [a for a in record.all() if a.__name__ != "open_case"]
    async with Worker(time_env.client, task_queue=queue, workflows=[ComplaintWorkflow],
                      activities=[*acts, open_case_then_announce]):
        handle = await start(time_env, complaint(ref, now), queue)
        s = await wait_for(handle, lambda s: any(d.key == "stage1.response" for d in s.deadlines),
                           "the Stage 1 response deadline")
        after = before.model_copy(update={"non_working": {**before.non_working, holiday: change.reason}})
        d = deadline(s, "stage1.response")
        expected = wd.due_date(after, d.trigger_at, d.length, d.unit)
        assert expected != wd.due_date(before, d.trigger_at, d.length, d.unit)
        s = await wait_for(handle, lambda s: deadline(s, "stage1.response").due_date == expected,
                           f"the response deadline to count the holiday on {holiday}")
        await handle.terminate("test over")
    assert announced



# -- Stage 2 is handled by a different person from Stage 1 -----------------------------------------
LANDLORD = "Test Homes"
ROLE = "test_reviewer"  # a role no seeded staff member has, so only this test's rows can be chosen


async def _staff(pool: asyncpg.Pool, *ids: str) -> None:
    await pool.executemany("INSERT INTO staff (id, name, role, landlord) VALUES ($1, $2, $3, $4)",
                           [(i, f"Reviewer {i}", ROLE, LANDLORD) for i in ids])


async def _opened(acts: CaseRecordActivities, ref: str) -> ActivityEnvironment:
    """The case's record, opened by the case itself: only its own workflow may then write it."""
    env = as_case(ref)
    await env.run(acts.open_case, OpenCase(complaint=complaint(ref, datetime.now(wd.LONDON)), workflow_id=workflow_id(ref)))
    return env


def _appoint(ref: str, stage: Stage, exclude: list[str] | None = None) -> AppointStaff:
    return AppointStaff(reference=ref, stage=stage, role=ROLE, landlord=LANDLORD, exclude=exclude or [])


async def test_the_stage2_appointment_never_picks_the_stage1_handler(pool: asyncpg.Pool) -> None:
    acts = CaseRecordActivities(pool)
    await _staff(pool, "s-a", "s-b")
    ref = new_reference("APP")
    env = await _opened(acts, ref)
    first = await env.run(acts.appoint_staff, _appoint(ref, Stage.STAGE1))
    assert first.id == "s-a"
    # The other reviewer is busier, so by load alone the Stage 1 handler would be chosen again.
    await pool.executemany("INSERT INTO assignments (reference, stage, staff_id) VALUES ($1, 'stage-1', 's-b')",
                           [(new_reference("BUSY"),) for _ in range(3)])
    # Whatever the workflow passed as exclude, the activity itself keeps Stage 2 from the Stage 1 handler.
    second = await env.run(acts.appoint_staff, _appoint(ref, Stage.STAGE2))
    assert second.id == "s-b"
    # A retry gives the same person again.
    assert (await env.run(acts.appoint_staff, _appoint(ref, Stage.STAGE2))).id == "s-b"


async def test_no_one_but_the_stage1_handler_is_a_clear_error(pool: asyncpg.Pool) -> None:
    acts = CaseRecordActivities(pool)
    await _staff(pool, "s-only")
    ref = new_reference("APP")
    env = await _opened(acts, ref)
    assert (await env.run(acts.appoint_staff, _appoint(ref, Stage.STAGE1))).id == "s-only"
    with pytest.raises(ApplicationError) as err:
        await env.run(acts.appoint_staff, _appoint(ref, Stage.STAGE2))
    assert err.value.type == "NoStaffAvailable"
    assert "s-only" in str(err.value) and "Stage 1" in str(err.value)
    assert await pool.fetchval("SELECT count(*) FROM assignments WHERE reference=$1 AND stage='stage-2'", ref) == 0


# -- the decision in the timeline ------------------------------------------------------------------
async def test_the_responses_record_their_decision_in_the_timeline(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch,
    dev_now: Callable[[], datetime]
) -> None:
    """Reports read detail->>'decision'; the compressed-time Code policy takes the case through both
    stages in seconds."""
    monkeypatch.setenv(POLICY_PATH_ENV, str(TEST_POLICIES))
    ref = new_reference("DEC")
    queue = f"dec-{ref}"
    async with worker(dev_env, pool, queue):
        handle = await start(dev_env, complaint(ref, dev_now(), policy="compressed-code"), queue)
        await wait_for(handle, lambda s: s.status.value == "investigating", "acknowledgement")
        await handle.execute_update("submit_stage1_response", {"decision": "partly_upheld", "reasons": "Late."})
        await wait_for(handle, lambda s: s.status.value == "responded", "the Stage 1 response letter")
        await signal(handle, Signal.REQUEST_REVIEW, {"reasons": "Still damp"})
        # The 1 s triage passes, then Stage 2 is acknowledged.
        await wait_for(handle, lambda s: any(d.key == "stage2.response" for d in s.deadlines), "Stage 2")
        await handle.execute_update("submit_final_response", {"decision": "upheld", "reasons": "Repair now."})
        await wait_for(handle, lambda s: s.stage.value == "closed", "closure")
        for _ in range(200):  # the timeline reaches the record in batches, a moment behind
            if await pool.fetchval("SELECT count(*) FROM timeline WHERE reference=$1 AND kind='closed'", ref):
                break
            await asyncio.sleep(0.05)
        await handle.terminate("test over")
    rows = await pool.fetch("SELECT kind, detail->>'decision' AS decision FROM timeline WHERE reference=$1"
                            " AND kind IN ('stage1_responded', 'final_response_sent') ORDER BY seq", ref)
    assert [(r["kind"], r["decision"]) for r in rows] == [
        ("stage1_responded", "partly_upheld"), ("final_response_sent", "upheld")]
