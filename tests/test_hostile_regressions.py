"""Regressions from the hostile-input work (issue 5, item 3): each test failed before its fix."""

from __future__ import annotations

import asyncio

from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from activities.db import create_pool
from domain.case import Status
from domain.contract import workflow_id
from tests.hostile.driver import describe, failed_tasks
from tests.support import complaint, london, new_reference, skip_to, start, wait_for, worker


async def test_a_nul_byte_in_free_text_is_refused_and_the_case_record_keeps_up(
    time_env: WorkflowEnvironment, db_url: str
) -> None:
    """PostgreSQL text cannot hold NUL: accepted, it made record_events retry forever and no later
    event of the case reached the record. Now the contact is refused at the door, with the reason."""
    ref = new_reference()
    q = f"q-{ref}"
    await skip_to(time_env, london(2027, 3, 1, 10))
    pool = await create_pool(db_url)
    try:
        async with worker(time_env, pool, q):
            h = await start(time_env, complaint(ref, london(2027, 3, 1, 10)), q)
            await wait_for(h, lambda s: s.status is Status.INVESTIGATING, "acknowledgement")
            await h.signal("record_contact", {"channel": "phone", "direction": "inbound", "by": "Priya",
                                              "notes": "before\x00after"})
            await h.signal("record_contact", {"channel": "phone", "direction": "inbound", "by": "Priya",
                                              "notes": "a later, harmless contact"})
            await wait_for(h, lambda s: s.refused_messages == 1, "the NUL contact refused")
            events = await h.query("timeline")
            reasons = [e["summary"] for e in events if e["kind"] == "signal_refused"]
            assert len(reasons) == 1 and "notes" in reasons[0] and "control character" in reasons[0], reasons
            # The harmless contact after it reaches PostgreSQL: the record's writer is not stuck.
            loop = asyncio.get_running_loop()
            end = loop.time() + 20
            while await pool.fetchval("SELECT count(*) FROM contacts WHERE reference=$1", ref) != 1:
                assert loop.time() < end, "the harmless contact never reached the case record"
                await asyncio.sleep(0.05)  # real-time wait for the worker, not a deadline
            _, raw = await describe(h)
            assert [a for a in raw.pending_activities if a.attempt > 1] == [], "no activity is stuck retrying"
    finally:
        await pool.close()


async def test_started_with_an_invalid_raw_payload_the_case_fails_once_with_the_reason(
    time_env: WorkflowEnvironment, db_url: str
) -> None:
    """A client without our models (plain JSON) starting a case with a reference like
    "X'; DROP TABLE complaints;--" got a workflow whose every task failed, retried forever. Now the
    workflow fails at once, non-retryably, naming the field."""
    pool = await create_pool(db_url)
    bad = complaint(new_reference(), london(2027, 3, 1, 10)).model_dump(mode="json")
    bad["reference"] = "X'; DROP TABLE complaints;--"
    try:
        async with worker(time_env, pool, "q-raw"):
            h = await time_env.client.start_workflow("ComplaintWorkflow", bad, id=workflow_id("RAW-BAD-1"),
                                                     task_queue="q-raw")
            try:
                await h.result()
                raise AssertionError("a complaint with an invalid reference was accepted")
            except WorkflowFailureError as err:
                assert "reference" in str(err.cause), err.cause
            state, _ = await describe(h)
            assert state is WorkflowExecutionStatus.FAILED
            assert await failed_tasks(h) == [], "the workflow failed once; no task failed over and over"
            assert await pool.fetchval("SELECT count(*) FROM complaints") == 0, "nothing was recorded"
    finally:
        await pool.close()
