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
from domain.case import CaseEvent, Stage, Status
from domain.contract import Signal
from tests.conftest import CONVERTER
from tests.history_files import record
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
    wait_for_survey,
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
            s = await wait_for_survey(handle)
            assert deadline(s, "stage2.response").met_on_time
            # 20 working days after closure on Thu 1 Apr: 2, 5-9, 12-16, 19-23, 26-29 -> 2027-04-29
            assert deadline(s, "survey.answer").due_date == date(2027, 4, 29)
            await handle.signal(Signal.SURVEY_RESPONSE.value, SURVEY)
            final = await handle.result()
            await record(handle, "hos-code-2024-happy", CONVERTER.payload_codec)
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


def refusal_reasons(timeline) -> list[str]:
    return [e.detail["reason"] for e in timeline if e.kind == "signal_refused"]


async def test_code_stage2_breach_extensions_and_refusals(time_env: WorkflowEnvironment, db_url: str) -> None:
    """Same dates as above; the Stage 2 response is extended by 10 working days and then missed.
      extended: 10 working days after 14 Apr: 15, 16, 19-23, 26, 27, 28 -> 2027-04-28
      the final response comes on Tue 4 May (Mon 3 May is the early May bank holiday)
    """
    ref = new_reference()
    queue = f"q-{ref}"
    received = london(2027, 3, 1, 10)
    await skip_to(time_env, received)
    pool = await create_pool(db_url)
    try:
        async with worker(time_env, pool, queue):
            handle = await start(time_env, complaint(ref, received), queue)
            await wait_for(handle, lambda s: s.status is Status.INVESTIGATING, "acknowledgement")
            # Out of order at Stage 1: each is recorded as refused and changes nothing else.
            await handle.signal(Signal.REQUEST_REVIEW.value, {"reasons": "too early"})
            await handle.signal(Signal.SURVEY_RESPONSE.value, SURVEY)
            await handle.signal(Signal.OMBUDSMAN_REFERRAL.value, {"route": "direct"})
            await handle.signal(Signal.TENANT_DECLINED_DISCUSSION.value, {})
            await handle.signal(Signal.DECLINE_RESIDENT_PARTICIPATION.value, {"reason": "no thanks"})
            s = await wait_for(handle, lambda s: s.refused_messages == 5, "five refusals")
            assert s.stage is Stage.STAGE1 and s.status is Status.INVESTIGATING
            reasons = refusal_reasons(await handle.query("timeline", result_type=list[CaseEvent]))
            assert "Stage 1 response has not been sent yet" in reasons[0]
            assert "no satisfaction survey has been sent yet" in reasons[1]
            assert "procedure has not ended yet" in reasons[2]
            assert "no review discussion awaiting" in reasons[3]
            assert "no resident participation to decline" in reasons[4]
            # Updates in the wrong stage are refused by their validators, with the reason.
            assert "not in an acknowledged Stage 2" in await refused(handle, "submit_final_response", FINAL)
            assert "has not asked for a review" in await refused(
                handle, "refuse_escalation", {"reason_code": "legal_proceedings"})
            assert "not part of this policy's Stage 2 (code_stage2)" in await refused(
                handle, "record_review_findings",
                {"answers": [{"key": "investigation_thorough", "answer": True, "notes": "ok"}], "summary": "x"})

            await skip_to(time_env, london(2027, 3, 10, 11))
            await handle.execute_update("submit_stage1_response", STAGE1)
            await wait_for(handle, lambda s: s.status is Status.RESPONDED, "Stage 1 response letter")
            await skip_to(time_env, london(2027, 3, 11, 10))
            await handle.signal(Signal.REQUEST_REVIEW.value, {})
            await handle.signal(Signal.REQUEST_REVIEW.value, {"reasons": "again"})
            s = await wait_for(handle, lambda s: s.refused_messages == 6, "a second review request refused")
            await skip_to(time_env, london(2027, 3, 15, 12))
            s = await wait_for(handle, lambda s: "stage2.response" in [d.key for d in s.deadlines], "Stage 2")
            assert deadline(s, "stage2.response").due_date == date(2027, 4, 14)
            assert "Stage 2 has already been acknowledged" in await refused(
                handle, "refuse_escalation", {"reason_code": "legal_proceedings"})
            assert "only be submitted while Stage 1 is open" in await refused(
                handle, "submit_stage1_response", STAGE1)

            await skip_to(time_env, london(2027, 4, 1, 11))
            await handle.signal(Signal.EXTEND_DEADLINE.value,
                                {"working_days": 10, "reason": "Waiting for the roofer's report"})
            s = await wait_for(handle, lambda s: len(s.extensions) == 1, "extension")
            assert deadline(s, "stage2.response").due_date == date(2027, 4, 28)
            # 10 + 11 = 21 working days in all: over the Code's 20, and not marked exceptional.
            await handle.signal(Signal.EXTEND_DEADLINE.value, {"working_days": 11, "reason": "More time"})
            s = await wait_for(handle, lambda s: s.refused_messages == 7, "extension over the limit refused")
            assert deadline(s, "stage2.response").due_date == date(2027, 4, 28) and len(s.extensions) == 1
            assert "over this policy's limit of 20" in refusal_reasons(await handle.query("timeline", result_type=list[CaseEvent]))[-1]

            await skip_to(time_env, london(2027, 4, 30, 12))
            s = await wait_for(handle, lambda s: len(s.breaches) == 1, "breach")
            assert (s.breaches[0].deadline, s.breaches[0].due_date) == ("stage2.response", date(2027, 4, 28))
            assert s.stage is Stage.STAGE2 and s.status is Status.REVIEWING, "a breach leaves the case running"
            await skip_to(time_env, london(2027, 5, 4, 11))
            assert len((await status(handle)).breaches) == 1
            await handle.execute_update("submit_final_response", FINAL)
            s = await wait_for_survey(handle)
            assert not deadline(s, "stage2.response").met_on_time
            await handle.signal(Signal.SURVEY_RESPONSE.value, {"satisfied": False, "score": 2})
            final = await handle.result()
            await record(handle, "hos-code-2024-unhappy-breach-extensions-refusals", CONVERTER.payload_codec)
            assert final.refused_messages == 7

        assert await letter_counts(pool, ref) == {
            "acknowledgement": 1, "stage1_response": 1, "stage2_acknowledgement": 1, "extension": 1,
            "final_response": 1, "survey": 1}
        body = await letter_body(pool, ref, "extension")
        assert "Wednesday 28 April 2027" in body and "Wednesday 14 April 2027" in body
        assert "Housing Ombudsman Service" in body
        kinds = await timeline_kinds(pool, ref)
        assert kinds.count("signal_refused") == 7 and kinds.count("deadline_breached") == 1
        b = await pool.fetch("SELECT * FROM breaches WHERE reference=$1", ref)
        assert [(r["deadline_key"], r["due_date"]) for r in b] == [("stage2.response", date(2027, 4, 28))]
        assert await pool.fetchval(
            "SELECT count(*) FROM notifications WHERE reference=$1 AND kind='breach'", ref) == 1
        ext = await pool.fetch("SELECT * FROM extensions WHERE reference=$1", ref)
        assert [(r["old_due_date"], r["new_due_date"], r["working_days"]) for r in ext] == [
            (date(2027, 4, 14), date(2027, 4, 28), 10)]
        row = await pool.fetchrow("SELECT stage, status, closed_at FROM complaints WHERE reference=$1", ref)
        assert (row["stage"], row["status"]) == ("closed", "closed")
        assert near(row["closed_at"], london(2027, 5, 4, 11))
    finally:
        await pool.close()


async def test_code_escalation_refused_for_a_listed_reason_closes_the_case(
    time_env: WorkflowEnvironment, db_url: str
) -> None:
    """Filed Mon 1 Mar 2027, answered Wed 10 Mar, review asked for Thu 11 Mar and refused that day."""
    ref = new_reference()
    queue = f"q-{ref}"
    received = london(2027, 3, 1, 10)
    await skip_to(time_env, received)
    pool = await create_pool(db_url)
    try:
        async with worker(time_env, pool, queue):
            handle = await start(time_env, complaint(ref, received), queue)
            await wait_for(handle, lambda s: s.status is Status.INVESTIGATING, "acknowledgement")
            await skip_to(time_env, london(2027, 3, 10, 11))
            await handle.execute_update("submit_stage1_response", STAGE1)
            await wait_for(handle, lambda s: s.status is Status.RESPONDED, "Stage 1 response letter")
            await skip_to(time_env, london(2027, 3, 11, 10))
            await handle.signal(Signal.REQUEST_REVIEW.value, {})
            await wait_for(handle, lambda s: "escalation.triage" in [d.key for d in s.deadlines], "triage")

            msg = await refused(handle, "refuse_escalation", {"reason_code": "too_busy"})
            assert "'too_busy' is not a reason this policy allows" in msg and "legal_proceedings" in msg
            assert (await status(handle)).stage is Stage.STAGE1
            await handle.execute_update("refuse_escalation", {
                "reason_code": "legal_proceedings", "explanation": "Your solicitor has issued a claim."})
            await wait_for_survey(handle)
            assert "already been refused" in await refused(
                handle, "refuse_escalation", {"reason_code": "already_considered"})
            assert "not in an acknowledged Stage 2" in await refused(handle, "submit_final_response", FINAL)
            await handle.signal(Signal.SURVEY_RESPONSE.value, SURVEY)
            final = await handle.result()
            await record(handle, "hos-code-2024-unhappy-escalation-refused", CONVERTER.payload_codec)
            assert final.stage is Stage.CLOSED and final.stage2_handler is None

        assert await letter_counts(pool, ref) == {
            "acknowledgement": 1, "stage1_response": 1, "escalation_refused": 1, "survey": 1}
        body = await letter_body(pool, ref, "escalation_refused")
        assert "Legal proceedings about this issue have started." in body
        assert "Your solicitor has issued a claim." in body
        assert "Housing Ombudsman Service, PO Box 152, Liverpool" in body
        kinds = await timeline_kinds(pool, ref)
        assert kinds.count("escalation_refused") == 1 and "stage2_acknowledged" not in kinds
        row = await pool.fetchrow("SELECT stage, status, closed_at, stage2_handler_id FROM complaints"
                                  " WHERE reference=$1", ref)
        assert (row["stage"], row["status"], row["stage2_handler_id"]) == ("closed", "closed", None)
        assert near(row["closed_at"], london(2027, 3, 11, 10))
        dl = await pool.fetchrow("SELECT cancelled FROM deadlines WHERE reference=$1 AND key='escalation.triage'",
                                 ref)
        assert dl["cancelled"]
    finally:
        await pool.close()
