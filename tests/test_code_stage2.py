"""Code Stage 2 (policy hos-code-2024) end to end, on the time-skipping server and a real PostgreSQL.

Filed on Monday 1 March 2027, 10:00 London, in England. Easter 2027: Good Friday 26 March and
Easter Monday 29 March are not working days; British Summer Time starts on Sunday 28 March.
  Stage 1 acknowledgement: 5 working days after Mon 1 Mar: 2, 3, 4, 5, 8 -> 2027-03-08 (sent at once)
  Stage 1 response: 10 working days after the acknowledgement (1 Mar): 2-5, 8-12, 15 -> 2027-03-15
  response sent Wed 10 Mar; escalation window 20 working days: 11, 12, 15-19, 22-25, (26, 29 Easter),
      30, 31, 1, 2, 5-9 Apr -> 2027-04-09
  review requested Thu 11 Mar 10:00; triage until the end of the next working day -> 2027-03-12
  Stage 2 acknowledgement: 5 working days after 11 Mar: 12, 15, 16, 17, 18 -> 2027-03-18; it is sent when
      triage ends, at midnight Fri 12/Sat 13 Mar
  Stage 2 final response: 20 working days after the acknowledgement; a Saturday trigger counts from
      Mon 15 Mar (day 0): 16-19, 22-25, 30, 31, 1, 2, 5-9, 12, 13, 14 Apr -> 2027-04-14
"""

from __future__ import annotations

from datetime import date

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from activities.db import create_pool
from domain.case import Stage, Status
from domain.contract import Signal
from tests.support import (
    complaint,
    deadline,
    letter_body,
    letter_counts,
    london,
    near,
    new_reference,
    skip_to,
    start,
    status,
    timeline_kinds,
    wait_for,
    worker,
)

STAGE1 = {"decision": "not_upheld", "reasons": "The repair was booked within our timescales.",
          "points_addressed": ["Repair delay"], "by": "Priya Shah"}
FINAL = {"decision": "partly_upheld", "reasons": "The first visit missed the leak; the second found it.",
         "remedy": "£200 for the carpet and the inconvenience", "outstanding_actions": ["Roof check in May"],
         "points_addressed": ["Repair delay", "Carpet"], "by": "Helen Clarke"}
SURVEY = {"satisfied": True, "score": 8}


async def refused(handle, update: str, payload: dict) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(update, payload)
    return str(err.value.cause)


async def test_code_stage2_happy_path_to_closure_and_survey(time_env: WorkflowEnvironment, db_url: str) -> None:
    ref = new_reference()
    queue = f"q-{ref}"
    received = london(2027, 3, 1, 10)
    await skip_to(time_env, received)
    pool = await create_pool(db_url)
    try:
        async with worker(time_env, pool, queue):
            handle = await start(time_env, complaint(ref, received), queue)
            s = await wait_for(handle, lambda s: s.status is Status.INVESTIGATING, "acknowledgement")
            assert deadline(s, "stage1.acknowledgement").due_date == date(2027, 3, 8)
            assert deadline(s, "stage1.response").due_date == date(2027, 3, 15)
            stage1_handler = s.handler

            await skip_to(time_env, london(2027, 3, 10, 11))
            await handle.execute_update("submit_stage1_response", STAGE1)
            s = await wait_for(handle, lambda s: s.status is Status.RESPONDED, "Stage 1 response letter")
            assert deadline(s, "stage1.response").met_on_time
            assert deadline(s, "escalation.window").due_date == date(2027, 4, 9)

            await skip_to(time_env, london(2027, 3, 11, 10))
            await handle.signal(Signal.REQUEST_REVIEW.value, {"reasons": "The carpet was not addressed"})
            s = await wait_for(handle, lambda s: "escalation.triage" in [d.key for d in s.deadlines], "triage")
            assert deadline(s, "escalation.triage").due_date == date(2027, 3, 12)
            assert s.stage is Stage.STAGE1, "the landlord may still refuse until triage ends"

            await skip_to(time_env, london(2027, 3, 15, 12))
            s = await wait_for(handle, lambda s: s.stage is Stage.STAGE2 and "stage2.response" in
                               [d.key for d in s.deadlines], "Stage 2 acknowledgement")
            ack = deadline(s, "stage2.acknowledgement")
            assert ack.due_date == date(2027, 3, 18) and ack.met_on_time
            assert deadline(s, "stage2.response").due_date == date(2027, 4, 14)
            assert s.stage2_handler is not None and s.stage2_handler != stage1_handler

            await skip_to(time_env, london(2027, 4, 1, 11))
            result = await handle.execute_update("submit_final_response", FINAL)
            assert result["accepted"] if isinstance(result, dict) else result.accepted
            s = await wait_for(handle, lambda s: s.stage is Stage.CLOSED, "closure")
            assert deadline(s, "stage2.response").met_on_time
            # 20 working days after closure on Thu 1 Apr: 2, 5-9, 12-16, 19-23, 26-29 -> 2027-04-29
            assert deadline(s, "survey.answer").due_date == date(2027, 4, 29)
            await handle.signal(Signal.SURVEY_RESPONSE.value, SURVEY)
            final = await handle.result()
            assert final.status is Status.CLOSED and final.breaches == [] and final.refused_messages == 0

        assert await letter_counts(pool, ref) == {
            "acknowledgement": 1, "stage1_response": 1, "stage2_acknowledgement": 1, "final_response": 1,
            "survey": 1}
        body = await letter_body(pool, ref, "final_response")
        assert "Housing Ombudsman Service" in body and "within 12 months" in body
        assert "Wednesday 14 April 2027" in await letter_body(pool, ref, "stage2_acknowledgement")
        kinds = await timeline_kinds(pool, ref)
        for k in ("escalation_requested", "reviewer_appointed", "stage2_acknowledged", "final_response_sent",
                  "ombudsman_rights_given", "closed", "survey_sent", "survey_answered"):
            assert kinds.count(k) == 1, k
        assert "signal_refused" not in kinds and "deadline_breached" not in kinds
        row = await pool.fetchrow("SELECT * FROM complaints WHERE reference=$1", ref)
        assert (row["stage"], row["status"]) == ("closed", "closed")
        assert near(row["closed_at"], london(2027, 4, 1, 11))
        assert near(row["escalated_at"], london(2027, 3, 11, 10))
        assert row["handler_id"] != row["stage2_handler_id"] and row["stage2_handler_id"] is not None
        dl = {r["key"]: r for r in await pool.fetch("SELECT * FROM deadlines WHERE reference=$1", ref)}
        assert dl["stage2.response"]["due_date"] == date(2027, 4, 14)
        assert near(dl["stage2.response"]["met_at"], london(2027, 4, 1, 11))
        assert await pool.fetchval("SELECT count(*) FROM breaches WHERE reference=$1", ref) == 0
    finally:
        await pool.close()
