"""Stage 1 end to end, on the time-skipping server and a real PostgreSQL.

Filed on Wednesday 23 December 2026 under the Code, in England: Christmas Day (Fri 25), the
Boxing Day substitute (Mon 28) and New Year's Day (Fri 1 Jan) are not working days.
  acknowledgement: 5 working days after day 0 (23 Dec): 24, 29, 30, 31 Dec, 4 Jan -> 2027-01-04
  response: 10 working days after the acknowledgement (sent at once, 23 Dec):
            24, 29, 30, 31 Dec, 4, 5, 6, 7, 8, 11 Jan -> 2027-01-11
  extended by 5 working days: 12, 13, 14, 15, 18 Jan -> 2027-01-18
"""

from __future__ import annotations

from datetime import date

from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from activities.db import create_pool
from domain.case import Stage, Status
from domain.contract import Signal
from tests.conftest import CONVERTER
from tests.history_files import record
from tests.support import (
    complaint,
    deadline,
    london,
    new_reference,
    skip_to,
    start,
    status,
    wait_for,
    worker,
)

RESPONSE = {"decision": "partly_upheld", "reasons": "The repair was booked late; the mould is now treated.",
            "remedy": "£150 for the carpet", "outstanding_actions": ["Check the roof in March"],
            "points_addressed": ["Repair delay", "Carpet"], "by": "Priya Shah"}


async def test_stage1_over_christmas_with_extension_breach_and_worker_restart(
    time_env: WorkflowEnvironment, db_url: str
) -> None:
    ref = new_reference()
    queue = f"q-{ref}"
    received = london(2026, 12, 23, 10, 0)
    await skip_to(time_env, received)
    pool = await create_pool(db_url)
    try:
        async with worker(time_env, pool, queue, cache=False):
            handle = await start(time_env, complaint(ref, received), queue)
            s = await wait_for(handle, lambda s: s.status is Status.INVESTIGATING, "acknowledgement")
            ack = deadline(s, "stage1.acknowledgement")
            assert ack.due_date == date(2027, 1, 4)
            assert ack.met_at is not None and ack.met_on_time
            resp = deadline(s, "stage1.response")
            assert resp.due_date == date(2027, 1, 11)
            assert s.handler is not None

            # An extension of 5 working days, given before the deadline, moves it to 18 January.
            await handle.signal(Signal.EXTEND_DEADLINE.value,
                                {"working_days": 5, "reason": "Waiting for the surveyor's damp report"})
            s = await wait_for(handle, lambda s: len(s.extensions) == 1, "extension")
            assert deadline(s, "stage1.response").due_date == date(2027, 1, 18)
            # One over the policy's limit of 10 in all is refused and changes nothing.
            await handle.signal(Signal.EXTEND_DEADLINE.value, {"working_days": 6, "reason": "More time"})
            s = await wait_for(handle, lambda s: s.refused_messages == 1, "refusal")
            assert deadline(s, "stage1.response").due_date == date(2027, 1, 18)

        # The worker goes away in the middle of the case and a new one picks it up from history.
        async with worker(time_env, pool, queue, cache=False):
            await skip_to(time_env, london(2027, 1, 20, 12))
            s = await wait_for(handle, lambda s: len(s.breaches) == 1, "breach")
            assert s.breaches[0].deadline == "stage1.response"
            assert s.breaches[0].due_date == date(2027, 1, 18)
            await skip_to(time_env, london(2027, 1, 22, 12))
            s = await status(handle)
            assert len(s.breaches) == 1, "a missed deadline is one breach, however long it stays missed"

        async with worker(time_env, pool, queue, cache=False):
            result = await handle.execute_update("submit_stage1_response", RESPONSE)
            assert result["accepted"] if isinstance(result, dict) else result.accepted
            s = await wait_for(handle, lambda s: s.status is Status.RESPONDED, "response letter")
            assert s.stage is Stage.STAGE1
            # A second response is refused, with the reason, and the case goes on.
            try:
                await handle.execute_update("submit_stage1_response", RESPONSE)
                raise AssertionError("a second Stage 1 response was accepted")
            except WorkflowUpdateFailedError as err:
                assert "already been submitted" in str(err.cause)
            # No review requested: the window ends, the case closes, the survey goes out and is answered.
            await skip_to(time_env, london(2027, 2, 25, 12))
            s = await wait_for(handle, lambda s: s.stage is Stage.CLOSED, "closure")
            await handle.signal(Signal.SURVEY_RESPONSE.value, {"satisfied": False, "score": 4})
            final = await handle.result()
            await record(handle, "hos-code-2024-unhappy-stage1-christmas-restart", CONVERTER.payload_codec)
            assert final.status is Status.CLOSED
            timeline = await handle.query("timeline")

        async with pool.acquire() as conn:
            rows = await conn.fetch("SELECT seq, kind FROM timeline WHERE reference=$1 ORDER BY seq", ref)
            assert [r["seq"] for r in rows] == list(range(1, len(timeline) + 1)), "every event exactly once"
            letters = await conn.fetch(
                "SELECT kind, count(*) AS n FROM correspondence WHERE reference=$1 GROUP BY kind", ref)
            assert {r["kind"]: r["n"] for r in letters} == {
                "acknowledgement": 1, "extension": 1, "stage1_response": 1, "survey": 1}
            assert await conn.fetchval("SELECT count(*) FROM breaches WHERE reference=$1", ref) == 1
            assert await conn.fetchval(
                "SELECT count(*) FROM notifications WHERE reference=$1 AND kind='breach'", ref) == 1
            ext = await conn.fetchrow("SELECT * FROM extensions WHERE reference=$1", ref)
            assert (ext["old_due_date"], ext["new_due_date"]) == (date(2027, 1, 11), date(2027, 1, 18))
            row = await conn.fetchrow("SELECT stage, status, closed_at FROM complaints WHERE reference=$1", ref)
            assert (row["stage"], row["status"]) == ("closed", "closed") and row["closed_at"] is not None
            kinds = [r["kind"] for r in rows]
            assert kinds.count("signal_refused") == 1
            assert "survey_answered" in kinds
            body = await conn.fetchval(
                "SELECT body FROM correspondence WHERE reference=$1 AND kind='extension'", ref)
            assert "Monday 18 January 2027" in body and "Housing Ombudsman Service" in body
    finally:
        await pool.close()
