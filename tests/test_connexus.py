"""Connexus: Stage 1 under the Code, then a Complaints Manager review with an involved customer.

Filed on Monday 1 March 2027, 10:00 London, in England (Good Friday 26 and Easter Monday 29 March are
not working days; BST from Sunday 28 March).
  Stage 1 acknowledgement 2027-03-08, response 2027-03-15 (as in test_code_stage2.py); response sent
      Wed 10 Mar; review request window 20 working days -> 2027-04-09
  review requested Thu 11 Mar 10:00:
    contact within 3 calendar days: 12, 13, 14 -> 2027-03-14 (a Sunday: calendar days count every day)
    triage until the end of the next working day -> 2027-03-12
    acknowledgement 5 working days: 12, 15, 16, 17, 18 -> 2027-03-18 (sent when triage ends, at midnight
        Fri 12/Sat 13 Mar)
    outcome 20 working days after the acknowledgement, counted from Mon 15 Mar: 16-19, 22-25, 30, 31,
        1, 2, 5-9, 12, 13, 14 Apr -> 2027-04-14
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
    replays,
    skip_to,
    start,
    status,
    timeline_kinds,
    wait_for,
    wait_for_survey,
    worker,
)

POLICY = "connexus"
STAGE1 = {"decision": "not_upheld", "reasons": "The repair was booked within our timescales.",
          "points_addressed": ["Repair delay"], "by": "Priya Shah"}
QUESTIONS = ["investigation_thorough", "all_points_answered", "evidence_supports_resolution",
             "resolution_remedies_failure"]
FINDINGS = {"answers": [{"key": k, "answer": k != "resolution_remedies_failure", "notes": f"Checked: {k}"}
                        for k in QUESTIONS],
            "summary": "The investigation was sound but the remedy did not cover the carpet.",
            "by": "Alan Reid"}
AGREE = {"role": "head_of_service", "name": "Ruth Patel", "decision": "partly_upheld",
         "outcome": "We uphold the carpet point and add £150.", "remedy": "£150 for the carpet"}


def contact(kind: str, at=None, **extra) -> dict:
    payload = {"channel": "phone", "direction": "outbound", "by": "Alan Reid", "kind": kind, **extra}
    if at is not None:
        payload["at"] = at.isoformat()
    return payload


async def refused(handle, update: str, payload: dict) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(update, payload)
    return str(err.value.cause)


async def refusal_reasons(handle) -> list[str]:
    timeline = await handle.query("timeline", result_type=list[CaseEvent])
    return [e.detail["reason"] for e in timeline if e.kind == "signal_refused"]


async def to_review(env: WorkflowEnvironment, handle) -> None:
    """Stage 1 answered on Wed 10 Mar; the review asked for on Thu 11 Mar 10:00."""
    await wait_for(handle, lambda s: s.status is Status.INVESTIGATING, "acknowledgement")
    await skip_to(env, london(2027, 3, 10, 11))
    await handle.execute_update("submit_stage1_response", STAGE1)
    s = await wait_for(handle, lambda s: s.status is Status.RESPONDED, "Stage 1 response letter")
    assert deadline(s, "escalation.window").due_date == date(2027, 4, 9)
    await skip_to(env, london(2027, 3, 11, 10))
    await handle.signal(Signal.REQUEST_REVIEW.value, {"reasons": "The carpet was not addressed"})
    s = await wait_for(handle, lambda s: "escalation.triage" in [d.key for d in s.deadlines], "triage")
    assert deadline(s, "escalation.triage").due_date == date(2027, 3, 12)


async def test_connexus_review_happy_path(time_env: WorkflowEnvironment, db_url: str) -> None:
    ref = new_reference("CNX")
    queue = f"q-{ref}"
    received = london(2027, 3, 1, 10)
    await skip_to(time_env, received)
    pool = await create_pool(db_url)
    try:
        async with worker(time_env, pool, queue):
            handle = await start(time_env, complaint(ref, received, policy=POLICY), queue)
            await to_review(time_env, handle)
            s = await status(handle)
            assert deadline(s, "stage2.contact").due_date == date(2027, 3, 14)
            stage1_handler = s.handler

            # The Complaints Manager rings the next day, while the landlord may still refuse: it counts.
            await skip_to(time_env, london(2027, 3, 12, 14))
            await handle.signal(Signal.RECORD_CONTACT.value, contact("review_discussion"))
            s = await wait_for(handle, lambda s: deadline(s, "stage2.contact").met_at is not None, "contact")
            assert deadline(s, "stage2.contact").met_on_time

            await skip_to(time_env, london(2027, 3, 15, 12))
            s = await wait_for(handle, lambda s: s.stage is Stage.STAGE2 and "stage2.response" in
                               [d.key for d in s.deadlines], "review acknowledgement")
            ack = deadline(s, "stage2.acknowledgement")
            assert ack.due_date == date(2027, 3, 18) and ack.met_on_time
            assert deadline(s, "stage2.response").due_date == date(2027, 4, 14)
            assert s.stage2_handler is not None and s.stage2_handler != stage1_handler
            assert s.breaches == []
            counts = await letter_counts(pool, ref)
            assert counts.get("involved_customer_invitation") == 1, counts

            await skip_to(time_env, london(2027, 3, 22, 11))
            await handle.execute_update("record_review_findings", FINDINGS)
            await handle.execute_update("agree_outcome", AGREE)
            s = await status(handle)
            assert s.status is Status.REVIEWING and "final_response" not in await letter_counts(pool, ref), \
                "no outcome letter before the findings call"
            await skip_to(time_env, london(2027, 3, 23, 15))
            await handle.signal(Signal.RECORD_CONTACT.value, contact("findings_call", notes="Findings explained"))
            s = await wait_for_survey(handle)
            assert deadline(s, "stage2.response").met_on_time
            await handle.signal(Signal.SURVEY_RESPONSE.value, {"satisfied": True, "score": 7})
            final = await handle.result()
            await record(handle, "connexus-happy", CONVERTER.payload_codec)
            assert final.breaches == [] and final.refused_messages == 0

        assert await letter_counts(pool, ref) == {
            "acknowledgement": 1, "stage1_response": 1, "stage2_acknowledgement": 1,
            "involved_customer_invitation": 1, "final_response": 1, "survey": 1}
        body = await letter_body(pool, ref, "final_response")
        assert "Partly upheld" in body and "£150 for the carpet" in body
        assert "Housing Ombudsman Service" in body and "within 12 months" in body
        ack_body = await letter_body(pool, ref, "stage2_acknowledgement")
        assert "Wednesday 14 April 2027" in ack_body and "involved customers" in ack_body
        kinds = await timeline_kinds(pool, ref)
        for k in ("involved_customer_invited", "review_findings_recorded", "outcome_agreed",
                  "final_response_sent", "closed", "survey_answered"):
            assert kinds.count(k) == 1, k
        assert kinds.index("contact_recorded") < kinds.index("stage2_acknowledged")
        assert "signal_refused" not in kinds and "deadline_breached" not in kinds
        contacts = await pool.fetch("SELECT kind, at FROM contacts WHERE reference=$1 ORDER BY at", ref)
        assert [c["kind"] for c in contacts] == ["review_discussion", "findings_call"]
        inv = await pool.fetch("SELECT customer_id, withdrawn_at FROM involvements WHERE reference=$1", ref)
        assert [(r["customer_id"], r["withdrawn_at"]) for r in inv] == [("IC-01", None)]
        row = await pool.fetchrow("SELECT * FROM complaints WHERE reference=$1", ref)
        assert (row["stage"], row["status"]) == ("closed", "closed")
        assert near(row["closed_at"], london(2027, 3, 23, 15))
        assert row["stage2_handler_id"] not in (None, row["handler_id"])
        assert await pool.fetchval("SELECT count(*) FROM breaches WHERE reference=$1", ref) == 0
    finally:
        await pool.close()


async def test_connexus_review_unhappy_paths(time_env: WorkflowEnvironment, db_url: str) -> None:
    """Two reviews side by side, on the dates above.
    A: declines the involved customer before the invitation, is not contacted by Sun 14 Mar (a breach),
       has the outcome extended by 5 working days (14 Apr -> 15, 16, 19, 20, 21 -> 2027-04-21) and one
       extension over the limit refused.
    B: declines the discussion, then declines the involved customer after the invitation was sent.
    """
    a_ref, b_ref = new_reference("CNX"), new_reference("CNX")
    queue = f"q-{a_ref}"
    received = london(2027, 3, 1, 10)
    await skip_to(time_env, received)
    pool = await create_pool(db_url)
    try:
        async with worker(time_env, pool, queue):
            a = await start(time_env, complaint(a_ref, received, policy=POLICY), queue)
            b = await start(time_env, complaint(b_ref, received, policy=POLICY), queue)
            await wait_for(a, lambda s: s.status is Status.INVESTIGATING, "acknowledgement")
            assert "not in an acknowledged Stage 2" in await refused(a, "record_review_findings", FINDINGS)
            await a.signal(Signal.DECLINE_RESIDENT_PARTICIPATION.value, {"reason": "early"})
            await wait_for(a, lambda s: s.refused_messages == 1, "decline before any review refused")
            assert "no review has been requested" in (await refusal_reasons(a))[0]

            await skip_to(time_env, london(2027, 3, 10, 11))
            for h in (a, b):
                await h.execute_update("submit_stage1_response", STAGE1)
                await wait_for(h, lambda s: s.status is Status.RESPONDED, "Stage 1 response letter")
            await skip_to(time_env, london(2027, 3, 11, 10))
            for h in (a, b):
                await h.signal(Signal.REQUEST_REVIEW.value, {})
                await wait_for(h, lambda s: "stage2.contact" in [d.key for d in s.deadlines], "review request")

            await skip_to(time_env, london(2027, 3, 12, 14))
            await a.signal(Signal.DECLINE_RESIDENT_PARTICIPATION.value, {"reason": "I want it kept private"})
            await b.signal(Signal.TENANT_DECLINED_DISCUSSION.value, {"notes": "Happy with the papers as they are"})
            await wait_for(b, lambda s: deadline(s, "stage2.contact").met_at is not None, "discussion declined")

            await skip_to(time_env, london(2027, 3, 15, 12))
            s = await wait_for(a, lambda s: "stage2.response" in [d.key for d in s.deadlines], "A in review")
            assert [(x.deadline, x.due_date) for x in s.breaches] == [("stage2.contact", date(2027, 3, 14))]
            assert s.stage is Stage.STAGE2 and s.status is Status.REVIEWING, "the breach leaves the case running"
            await wait_for(b, lambda s: "stage2.response" in [d.key for d in s.deadlines], "B in review")
            assert (await status(b)).breaches == []
            assert "involved_customer_invitation" not in await letter_counts(pool, a_ref)
            assert (await letter_counts(pool, b_ref)).get("involved_customer_invitation") == 1

            # B withdraws the involved customer after the invitation: they are told; a second decline is refused.
            await b.signal(Signal.DECLINE_RESIDENT_PARTICIPATION.value, {"reason": "changed my mind"})
            await b.signal(Signal.DECLINE_RESIDENT_PARTICIPATION.value, {"reason": "again"})
            await wait_for(b, lambda s: s.refused_messages == 1, "second decline refused")
            assert "already declined" in (await refusal_reasons(b))[0]

            # A: updates in the wrong order or from the wrong person are refused with the reason.
            assert "record the review findings first" in await refused(a, "agree_outcome", AGREE)
            three = {**FINDINGS, "answers": FINDINGS["answers"][:3]}
            assert "answer each review question exactly once" in await refused(a, "record_review_findings", three)
            assert "not part of this policy's Stage 2 (complaints_manager_review)" in await refused(
                a, "submit_final_response", STAGE1)
            await a.signal(Signal.REQUEST_TO_ATTEND.value, {})
            await a.signal(Signal.OMBUDSMAN_REFERRAL.value, {"route": "direct"})
            # A findings call before the findings is recorded as a contact, but is not the findings call.
            await a.signal(Signal.RECORD_CONTACT.value, contact("findings_call"))
            await a.signal(Signal.EXTEND_DEADLINE.value, {"working_days": 5, "reason": "Surveyor on leave"})
            await a.signal(Signal.EXTEND_DEADLINE.value, {"working_days": 16, "reason": "More time"})
            s = await wait_for(a, lambda s: s.refused_messages == 4 and len(s.extensions) == 1, "A's refusals")
            assert deadline(s, "stage2.response").due_date == date(2027, 4, 21)
            reasons = await refusal_reasons(a)
            assert "no panel to attend" in reasons[1]
            assert "procedure has not ended yet" in reasons[2]
            assert "over this policy's limit of 20" in reasons[3]

            await skip_to(time_env, london(2027, 3, 22, 11))
            await a.execute_update("record_review_findings", FINDINGS)
            assert "must be agreed by one of: head_of_service, director" in await refused(
                a, "agree_outcome", {**AGREE, "role": "complaints_manager"})
            await a.execute_update("agree_outcome", {**AGREE, "role": "director", "name": "Sam Hill"})
            assert "already agreed" in await refused(a, "agree_outcome", AGREE)
            assert (await status(a)).status is Status.REVIEWING, "the early call does not count as the findings call"
            await a.signal(Signal.RECORD_CONTACT.value, contact("findings_call"))
            for h in (b,):
                await h.execute_update("record_review_findings", FINDINGS)
                await h.execute_update("agree_outcome", AGREE)
                await h.signal(Signal.RECORD_CONTACT.value, contact("findings_call"))
            for h in (a, b):
                await wait_for_survey(h)
            await b.signal(Signal.DECLINE_RESIDENT_PARTICIPATION.value, {"reason": "too late"})
            await wait_for(b, lambda s: s.refused_messages == 2, "decline after the outcome refused")
            assert "already concluded" in (await refusal_reasons(b))[1]
            # Both answers before either result: awaiting a result lets the test server skip time, and
            # the other case's survey window would run out before its answer arrived.
            for h in (a, b):
                await h.signal(Signal.SURVEY_RESPONSE.value, {"satisfied": False, "score": 3})
            for h, path in ((a, "declined-before-invitation"), (b, "declined-after-invitation")):
                await h.result()
                await replays(time_env, h)
                await record(h, f"connexus-unhappy-{path}", CONVERTER.payload_codec)

        assert await letter_counts(pool, a_ref) == {
            "acknowledgement": 1, "stage1_response": 1, "stage2_acknowledgement": 1, "extension": 1,
            "final_response": 1, "survey": 1}
        assert "no involved resident will take part" in await letter_body(pool, a_ref, "stage2_acknowledgement")
        assert "Wednesday 21 April 2027" in await letter_body(pool, a_ref, "extension")
        assert await letter_counts(pool, b_ref) == {
            "acknowledgement": 1, "stage1_response": 1, "stage2_acknowledgement": 1,
            "involved_customer_invitation": 1, "involved_customer_withdrawn": 1, "final_response": 1, "survey": 1}
        withdrawn = await pool.fetchrow("SELECT recipient FROM correspondence WHERE reference=$1"
                                        " AND kind='involved_customer_withdrawn'", b_ref)
        assert withdrawn["recipient"] == "Joan Baker", "the involved customer, not the resident, is told"

        a_kinds, b_kinds = await timeline_kinds(pool, a_ref), await timeline_kinds(pool, b_ref)
        assert a_kinds.count("signal_refused") == 4 and a_kinds.count("deadline_breached") == 1
        assert a_kinds.count("participation_declined") == 1 and "involved_customer_invited" not in a_kinds
        assert b_kinds.count("signal_refused") == 2 and b_kinds.count("discussion_declined") == 1
        assert b_kinds.count("involved_customer_withdrawn") == 1 and "deadline_breached" not in b_kinds
        assert [(r["deadline_key"], r["due_date"]) for r in await pool.fetch(
            "SELECT * FROM breaches WHERE reference=$1", a_ref)] == [("stage2.contact", date(2027, 3, 14))]
        assert await pool.fetchval(
            "SELECT count(*) FROM notifications WHERE reference=$1 AND kind='breach'", a_ref) == 1
        assert await pool.fetchval("SELECT count(*) FROM involvements WHERE reference=$1", a_ref) == 0
        inv = await pool.fetchrow("SELECT customer_id, withdrawn_at FROM involvements WHERE reference=$1", b_ref)
        assert inv["customer_id"] == "IC-01" and inv["withdrawn_at"] is not None
        a_contacts = await pool.fetch("SELECT kind FROM contacts WHERE reference=$1 ORDER BY seq", a_ref)
        assert [c["kind"] for c in a_contacts] == ["findings_call", "findings_call"]
        for ref in (a_ref, b_ref):
            row = await pool.fetchrow("SELECT stage, status, closed_at FROM complaints WHERE reference=$1", ref)
            assert (row["stage"], row["status"]) == ("closed", "closed")
            assert near(row["closed_at"], london(2027, 3, 22, 11))
    finally:
        await pool.close()
