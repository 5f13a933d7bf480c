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
from tests.conftest import CONVERTER
from tests.history_files import record
from tests.support import (
    add_sittings,
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
    s = await wait_for(handle, lambda s: s.status is Status.RESPONDED, "Stage 1 response letter")
    # 20 working days after Wed 10 Mar: 11, 12, 15-19, 22-25, (26, 29 Easter), 30, 31, 1, 2, 5-9 Apr
    assert deadline(s, "escalation.window").due_date == date(2027, 4, 9)
    await skip_to(env, london(2027, 3, 11, 10))
    await handle.signal(Signal.REQUEST_REVIEW.value, {"reasons": "The repair was missed twice"})
    s = await wait_for(handle, lambda s: "escalation.triage" in [d.key for d in s.deadlines], "triage")
    assert deadline(s, "escalation.triage").due_date == date(2027, 3, 12)
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
            await record(handle, "optivo-happy", CONVERTER.payload_codec)
            assert final.breaches == [] and final.refused_messages == 0

        assert await letter_counts(pool, ref) == {
            "acknowledgement": 1, "stage1_response": 1, "panel_sitting": 1, "stage2_acknowledgement": 1,
            "final_response": 1, "survey": 1}
        panel = await letter_body(pool, ref, "panel_sitting")
        assert "Tuesday 23 March 2027" in panel and "Panel: Operational Director, Customer Experience Manager" in panel
        assert "final response by Thursday 8 April 2027" in panel, "the date the case keeps, as the acknowledgement"
        assert "Thursday 8 April 2027" in await letter_body(pool, ref, "stage2_acknowledgement")
        body = await letter_body(pool, ref, "final_response")
        assert "Upheld" in body and "£250 and a new carpet" in body
        assert "designated person (your MP, a local councillor or a designated tenant panel)" in body
        assert "cooling-off period of eight weeks has ended on Wednesday 19 May 2027, from Thursday 20 May 2027" in body
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


async def test_optivo_panel_unhappy_paths(time_env: WorkflowEnvironment, db_url: str) -> None:
    """The resident asks on Mon 15 Mar to attend: a sitting they attend needs 10 working days' notice
    (16-19, 22-25, 30, 31 -> 31 Mar) and room for them, so the panel moves from 23 Mar to Tue 6 Apr.
      final response: 10 working days of 6 Apr: 7-9, 12-16, 19, 20 -> 2027-04-20; extended by 3:
          21, 22, 23 -> 2027-04-23; missed; the decision and letter come on Tue 27 Apr
      cooling-off: eight weeks after Tue 27 Apr -> Tue 2027-06-22; a direct referral is refused before it
          ends and accepted after
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
            await wait_for(handle, lambda s: s.status is Status.INVESTIGATING, "acknowledgement")
            await handle.signal(Signal.REQUEST_TO_ATTEND.value, {})
            await wait_for(handle, lambda s: s.refused_messages == 1, "attendance at Stage 1 refused")
            assert "no panel sitting waiting" in (await refusal_reasons(handle))[0]
            assert "not in an acknowledged Stage 2" in await refused(handle, "record_panel_decision", DECISION)
            assert "not in an acknowledged Stage 2" in await refused(handle, "request_resident_panelists", PANELISTS)
            await to_review(time_env, handle)
            assert deadline(await status(handle), "stage2.panel_sitting").due_date == date(2027, 3, 23)

            # Panelists: an ineligible basis, a household member without consent, then a third are refused.
            friend = {"panelists": [{"name": "Cy Dunn", "basis": "friend"}]}
            msg = await refused(handle, "request_resident_panelists", friend)
            assert "'friend' is not an eligible basis" in msg and "leaseholder" in msg
            household = {"panelists": [{"name": "Di Eve", "basis": "resident_with_tenant_consent"}]}
            assert "needs the tenant's consent" in await refused(handle, "request_resident_panelists", household)
            await handle.execute_update("request_resident_panelists", PANELISTS)
            third = {"panelists": [{"name": "Ed Fox", "basis": "licensee"}]}
            assert "at most 2 involved residents" in await refused(handle, "request_resident_panelists", third)
            assert "the panel has not sat yet" in await refused(handle, "record_panel_decision", DECISION)
            await handle.signal(Signal.EXTEND_DEADLINE.value, {"working_days": 2, "reason": "Papers late"})

            await handle.signal(Signal.REQUEST_TO_ATTEND.value, {"needs": "Step-free access"})
            s = await wait_for(handle, lambda s: deadline(s, "stage2.panel_sitting").due_date == date(2027, 4, 6),
                               "the sitting moved")
            await handle.signal(Signal.REQUEST_TO_ATTEND.value, {})
            await handle.signal(Signal.DECLINE_RESIDENT_PARTICIPATION.value, {"reason": "I will speak for myself"})
            s = await wait_for(handle, lambda s: s.refused_messages == 3, "refusals")
            reasons = await refusal_reasons(handle)
            assert "no open response deadline" in reasons[1]
            assert "already been arranged" in reasons[2]
            assert "has declined involved residents" in await refused(handle, "request_resident_panelists", third)
            timeline = await handle.query("timeline", result_type=list[CaseEvent])
            moved = [e for e in timeline if e.kind == "panel_moved"]
            assert len(moved) == 1 and moved[0].detail == {
                "old": "2027-03-23", "new": "2027-04-06", "why": "resident asked to attend"}
            declined = [e for e in timeline if e.kind == "participation_declined"]
            assert len(declined) == 1 and "2 resident panelist(s) removed" in declined[0].summary

            await skip_to(time_env, london(2027, 4, 7, 11))
            s = await wait_for(handle, lambda s: "stage2.response" in [d.key for d in s.deadlines], "panel sat")
            assert deadline(s, "stage2.response").due_date == date(2027, 4, 20)
            sat = [e for e in await handle.query("timeline", result_type=list[CaseEvent]) if e.kind == "panel_sat"]
            assert sat[0].detail["resident_panelists"] == 0, "the declined panelists did not sit"
            await handle.signal(Signal.EXTEND_DEADLINE.value, {"working_days": 3, "reason": "Chair is ill"})
            await handle.signal(Signal.EXTEND_DEADLINE.value, {"working_days": 8, "reason": "More time"})
            s = await wait_for(handle, lambda s: s.refused_messages == 4 and len(s.extensions) == 1, "extensions")
            assert deadline(s, "stage2.response").due_date == date(2027, 4, 23)
            assert "over this policy's limit of 10" in (await refusal_reasons(handle))[3]

            await skip_to(time_env, london(2027, 4, 27, 11))
            s = await wait_for(handle, lambda s: len(s.breaches) == 1, "breach")
            assert (s.breaches[0].deadline, s.breaches[0].due_date) == ("stage2.response", date(2027, 4, 23))
            assert s.status is Status.REVIEWING, "the breach leaves the case running"
            await handle.execute_update("record_panel_decision", DECISION)
            assert "already recorded" in await refused(handle, "record_panel_decision", DECISION)
            s = await wait_for(handle, lambda s: s.status is Status.COOLING_OFF, "cooling-off")
            assert deadline(s, "ombudsman.cooling_off").due_date == date(2027, 6, 22)
            await handle.signal(Signal.OMBUDSMAN_REFERRAL.value, {"route": "direct"})
            s = await wait_for(handle, lambda s: s.refused_messages == 5, "direct referral refused")
            assert s.status is Status.COOLING_OFF
            assert ("a direct referral is possible only after the cooling-off period ends on 2027-06-22"
                    in (await refusal_reasons(handle))[4])

            await skip_to(time_env, london(2027, 6, 23, 12))
            s = await wait_for_survey(handle)
            await handle.signal(Signal.OMBUDSMAN_REFERRAL.value, {"route": "direct"})
            await handle.signal(Signal.SURVEY_RESPONSE.value, {"satisfied": False, "score": 1})
            final = await handle.result()
            await record(handle, "optivo-unhappy", CONVERTER.payload_codec)
            assert final.refused_messages == 5 and len(final.breaches) == 1
            # Woken only by real deadlines: the whole case stays a few hundred history events.
            assert len((await handle.fetch_history()).events) < 500
            await replays(time_env, handle)

        assert await letter_counts(pool, ref) == {
            "acknowledgement": 1, "stage1_response": 1, "panel_sitting": 2, "stage2_acknowledgement": 1,
            "extension": 1, "final_response": 1, "survey": 1}
        keys = [r["letter_key"] for r in await pool.fetch(
            "SELECT letter_key FROM correspondence WHERE reference=$1 AND kind='panel_sitting' ORDER BY id", ref)]
        assert len(set(keys)) == 2
        moved_letter = await pool.fetchval("SELECT body FROM correspondence WHERE reference=$1 AND kind="
                                           "'panel_sitting' ORDER BY id DESC LIMIT 1", ref)
        assert "Tuesday 6 April 2027" in moved_letter and "You have asked to attend" in moved_letter
        assert "Friday 23 April 2027" in await letter_body(pool, ref, "extension")
        kinds = await timeline_kinds(pool, ref)
        assert kinds.count("signal_refused") == 5 and kinds.count("deadline_breached") == 1
        assert kinds.count("panel_moved") == 1 and kinds.count("ombudsman_referral") == 1
        assert kinds.index("window_closed", kinds.index("final_response_sent")) < kinds.index("ombudsman_referral")
        booking = await pool.fetchrow("SELECT p.sits_on, b.attending FROM panel_bookings b JOIN panel_sittings p"
                                      " ON p.id = b.sitting_id WHERE b.reference=$1", ref)
        assert (booking["sits_on"], booking["attending"]) == (date(2027, 4, 6), True)
        b = await pool.fetch("SELECT * FROM breaches WHERE reference=$1", ref)
        assert [(r["deadline_key"], r["due_date"]) for r in b] == [("stage2.response", date(2027, 4, 23))]
        assert await pool.fetchval(
            "SELECT count(*) FROM notifications WHERE reference=$1 AND kind='breach'", ref) == 1
        row = await pool.fetchrow("SELECT stage, status, closed_at FROM complaints WHERE reference=$1", ref)
        assert (row["stage"], row["status"]) == (Stage.CLOSED.value, "closed")
        # Closed when the cooling-off ended: the end of Tue 22 June, London time.
        assert near(row["closed_at"], london(2027, 6, 23, 0))
    finally:
        await pool.close()
