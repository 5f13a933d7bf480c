"""Optivo "Putting it right": a complaint, a review panel on set dates, then the Ombudsman's old rule
(a designated person at once, or directly after an eight-week cooling-off).

Filed on Monday 1 March 2027, 10:00 London, in England (Good Friday 26 and Easter Monday 29 March,
early May bank holiday 3 May are not working days; BST from Sunday 28 March).
  acknowledgement: 5 working days after 1 Mar -> 2027-03-08 (sent at once)
  full response: 10 working days of receipt: 2-5, 8-12, 15 -> 2027-03-15; sent Wed 10 Mar
  review requested Thu 11 Mar 10:00; triage until the end of Fri 12 Mar; review acknowledgement
      5 working days: 12, 15, 16, 17, 18 -> 2027-03-18 (sent at midnight Fri 12/Sat 13 Mar)
  panel: the first sitting at least 5 working days after the request (12, 15, 16, 17, 18 -> 18 Mar);
      sittings are held on 17 Mar (too early), 23 Mar (no room for the resident), 6 Apr, 20 Apr
"""

from __future__ import annotations

from datetime import date

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from activities.db import create_pool
from domain.case import CaseEvent, Stage, Status
from domain.contract import Signal
from tests.support import (
    add_sittings,
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
    wait_for_survey,
    worker,
)

POLICY = "optivo"
STAGE1 = {"decision": "not_upheld", "reasons": "The repair was booked within our timescales.",
          "points_addressed": ["Repair delay"], "by": "Priya Shah"}
DECISION = {"decision": "upheld", "reasons": "The panel found the repair was missed twice.",
            "remedy": "£250 and a new carpet"}
PANELISTS = {"panelists": [{"name": "Ada Brown", "basis": "tenant"}, {"name": "Ben Cole", "basis": "leaseholder"}]}


async def refused(handle, update: str, payload: dict) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(update, payload)
    return str(err.value.cause)


async def refusal_reasons(handle) -> list[str]:
    timeline = await handle.query("timeline", result_type=list[CaseEvent])
    return [e.detail["reason"] for e in timeline if e.kind == "signal_refused"]


async def sittings(pool) -> None:
    await add_sittings(pool, "Optivo", date(2027, 3, 17), date(2027, 4, 6), date(2027, 4, 20))
    await add_sittings(pool, "Optivo", date(2027, 3, 23), attendance_possible=False)


async def to_review(env: WorkflowEnvironment, handle) -> None:
    await wait_for(handle, lambda s: s.status is Status.INVESTIGATING, "acknowledgement")
    await skip_to(env, london(2027, 3, 10, 11))
    await handle.execute_update("submit_stage1_response", STAGE1)
    await wait_for(handle, lambda s: s.status is Status.RESPONDED, "Stage 1 response letter")
    await skip_to(env, london(2027, 3, 11, 10))
    await handle.signal(Signal.REQUEST_REVIEW.value, {"reasons": "The repair was missed twice"})
    await wait_for(handle, lambda s: "escalation.triage" in [d.key for d in s.deadlines], "triage")
    await skip_to(env, london(2027, 3, 15, 12))
    await wait_for(handle, lambda s: s.status is Status.AWAITING_PANEL, "the panel booking")


async def test_optivo_panel_happy_path(time_env: WorkflowEnvironment, db_url: str) -> None:
    """The panel sits on Tue 23 Mar; the decision comes on Wed 24 Mar 11:00.
      final response: 10 working days of the sitting: 24, 25, (26, 29 Easter), 30, 31, 1, 2, 5-8 Apr -> 2027-04-08
      cooling-off: eight weeks after Wed 24 Mar -> Wed 2027-05-19
      a designated person (the resident's MP) refers on Thu 1 Apr: the case closes; survey answer window
          20 working days: 2, 5-9, 12-16, 19-23, 26-29 Apr -> 2027-04-29
    """
    ref = new_reference("OPT")
    queue = f"q-{ref}"
    received = london(2027, 3, 1, 10)
    await skip_to(time_env, received)
    pool = await create_pool(db_url)
    await sittings(pool)
    try:
        async with worker(time_env, pool, queue):
            handle = await start(time_env, complaint(ref, received, policy=POLICY), queue)
            s = await wait_for(handle, lambda s: s.status is Status.INVESTIGATING, "acknowledgement")
            assert deadline(s, "stage1.response").due_date == date(2027, 3, 15)
            stage1_handler = s.handler
            await to_review(time_env, handle)
            s = await status(handle)
            ack = deadline(s, "stage2.acknowledgement")
            assert ack.due_date == date(2027, 3, 18) and ack.met_on_time
            assert deadline(s, "stage2.panel_sitting").due_date == date(2027, 3, 23)
            assert s.stage2_handler is not None and s.stage2_handler != stage1_handler

            result = await handle.execute_update("request_resident_panelists", PANELISTS)
            assert "2 involved resident(s)" in (result["message"] if isinstance(result, dict) else result.message)

            await skip_to(time_env, london(2027, 3, 24, 11))
            s = await wait_for(handle, lambda s: "stage2.response" in [d.key for d in s.deadlines], "panel sat")
            assert deadline(s, "stage2.response").due_date == date(2027, 4, 8)
            await handle.execute_update("record_panel_decision", DECISION)
            s = await wait_for(handle, lambda s: s.status is Status.COOLING_OFF, "final response")
            assert deadline(s, "stage2.response").met_on_time
            assert deadline(s, "ombudsman.cooling_off").due_date == date(2027, 5, 19)

            await skip_to(time_env, london(2027, 4, 1, 11))
            await handle.signal(Signal.OMBUDSMAN_REFERRAL.value,
                                {"route": "designated_person", "designated_person": "Karin Smyth MP"})
            s = await wait_for_survey(handle)
            assert deadline(s, "survey.answer").due_date == date(2027, 4, 29)
            await handle.signal(Signal.SURVEY_RESPONSE.value, {"satisfied": True, "score": 9})
            final = await handle.result()
            assert final.breaches == [] and final.refused_messages == 0

        assert await letter_counts(pool, ref) == {
            "acknowledgement": 1, "stage1_response": 1, "panel_sitting": 1, "stage2_acknowledgement": 1,
            "final_response": 1, "survey": 1}
        panel = await letter_body(pool, ref, "panel_sitting")
        assert "Tuesday 23 March 2027" in panel and "operational director" in panel
        assert "Thursday 8 April 2027" in await letter_body(pool, ref, "stage2_acknowledgement")
        body = await letter_body(pool, ref, "final_response")
        assert "Upheld" in body and "£250 and a new carpet" in body
        assert "designated person" in body and "Wednesday 19 May 2027, from Thursday 20 May 2027" in body
        kinds = await timeline_kinds(pool, ref)
        for k in ("panel_booked", "resident_panelists_requested", "panel_sat", "panel_decision_recorded",
                  "final_response_sent", "ombudsman_rights_given", "ombudsman_referral", "closed", "survey_answered"):
            assert kinds.count(k) == 1, k
        assert "signal_refused" not in kinds and "deadline_breached" not in kinds and "panel_moved" not in kinds
        booking = await pool.fetchrow("SELECT p.sits_on, b.attending FROM panel_bookings b JOIN panel_sittings p"
                                      " ON p.id = b.sitting_id WHERE b.reference=$1", ref)
        assert (booking["sits_on"], booking["attending"]) == (date(2027, 3, 23), False)
        row = await pool.fetchrow("SELECT * FROM complaints WHERE reference=$1", ref)
        assert (row["stage"], row["status"]) == ("closed", "closed")
        assert near(row["closed_at"], london(2027, 4, 1, 11))
        assert row["stage2_handler_id"] not in (None, row["handler_id"])
        assert await pool.fetchval("SELECT count(*) FROM breaches WHERE reference=$1", ref) == 0
    finally:
        await pool.close()
