"""Whole cases on the time-skipping server: the letters in the case record say what the case keeps.

The test policy tests/policies/spso-test.toml counts Stage 2's response from the escalation request, and the
landlord may refuse the escalation until the end of the next working day, so the acknowledgement goes a
working day after the request: a letter dated from the acknowledgement would promise a later day.
Dates are taken from the server's clock (any day the suite runs), and the expected ones counted here
by hand over weekdays and the `holidays` package's Scottish bank holidays.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

import holidays
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.db import create_pool
from domain.calendar import LONDON, Nation
from domain.case import CaseEvent, Stage, Status
from domain.contract import Signal
from domain.policy import POLICY_PATH_ENV
from tests.support import (
    complaint,
    deadline,
    letter_body,
    new_reference,
    skip_to,
    start,
    wait_for,
    worker,
)
from workflows.case_state import long_date

TEST_POLICIES = Path(__file__).resolve().parent / "policies"
STAGE1 = {"decision": "not_upheld", "reasons": "The repair was booked within our timescales."}
FINAL = {"decision": "upheld", "reasons": "The second visit found the leak.", "remedy": "£100"}


def working_days_after(day: date, n: int, nation_subdiv: str) -> date:
    """Counted by hand: the nth weekday after `day` that is not a bank holiday there."""
    off = holidays.country_holidays("GB", subdiv=nation_subdiv, years=range(day.year, day.year + 2))
    while n:
        day += timedelta(days=1)
        if day.weekday() < 5 and day not in off:
            n -= 1
    return day


def monday_of_a_full_week(after: datetime) -> datetime:
    """10:00 London on a Monday at least a week after `after` whose week has no Scottish bank holiday."""
    day = after.astimezone(LONDON).date() + timedelta(days=7)
    off = holidays.country_holidays("GB", subdiv="SCT", years=range(day.year, day.year + 2))
    while day.weekday() != 0 or any(day + timedelta(days=i) in off for i in range(5)):
        day += timedelta(days=1)
    return datetime.combine(day, time(10), tzinfo=LONDON)


@pytest.fixture
def test_policies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(POLICY_PATH_ENV, str(TEST_POLICIES))


async def test_stage2_acknowledgement_states_the_response_date_the_case_keeps(
    time_env: WorkflowEnvironment, db_url: str, test_policies: None
) -> None:
    ref = new_reference("LTR")
    queue = f"q-{ref}"
    received = monday_of_a_full_week(await time_env.get_current_time())
    await skip_to(time_env, received)
    pool = await create_pool(db_url)
    try:
        async with worker(time_env, pool, queue):
            handle = await start(time_env, complaint(ref, received, policy="spso-test", nation=Nation.SCOTLAND),
                                 queue)
            await wait_for(handle, lambda s: s.status is Status.INVESTIGATING, "acknowledgement")
            await handle.execute_update("submit_stage1_response", STAGE1)
            await wait_for(handle, lambda s: s.status is Status.RESPONDED, "the Stage 1 response letter")

            # Asked on Thursday at 10:00; the landlord may refuse until the end of Friday, so Stage 2 is
            # acknowledged at midnight, a Saturday.
            requested = received + timedelta(days=3)
            await skip_to(time_env, requested)
            await handle.signal(Signal.REQUEST_REVIEW.value, {"reasons": "The leak is back"})
            await skip_to(time_env, requested + timedelta(days=4))
            s = await wait_for(handle, lambda s: s.stage is Stage.STAGE2 and any(
                d.key == "stage2.response" for d in s.deadlines), "Stage 2 acknowledgement")
            kept = deadline(s, "stage2.response").due_date
            letter = await letter_body(pool, ref, "stage2_acknowledgement")

            await handle.execute_update("submit_final_response", FINAL)
            done = await handle.result()
            final = await letter_body(pool, ref, "final_response")
            response = await letter_body(pool, ref, "stage1_response")
            rights = await pool.fetchval(
                "SELECT summary FROM timeline WHERE reference=$1 AND kind='ombudsman_rights_given'", ref)
    finally:
        await pool.close()

    assert kept == working_days_after(requested.date(), 20, "SCT"), "20 working days from the request"
    assert f"We will send you our final response by {long_date(kept)}." in letter, letter
    # The policy's regulator, its signatories, and no placeholders (issue 16, points 3 and 5).
    assert rights == "The final response gave the route to the Scottish Public Services Ombudsman"
    assert "Scottish Public Services Ombudsman" in final and "Housing Ombudsman" not in final + response
    assert "within 12 months of this letter: SPSO, Freepost SPSO" in final, final
    assert final.endswith(f"Yours sincerely,\n{done.stage2_handler}\nInvestigating Officer\n"
                          "Test Scottish housing association"), final
    assert response.endswith(f"Yours sincerely,\n{done.handler}\nFrontline Resolution Officer\n"
                             "Test Scottish housing association"), response
    assert "Points you raised" not in response and "(see reasons)" not in response, response


async def test_a_northern_irish_case_names_its_regulator_and_cooling_off(
    time_env: WorkflowEnvironment, db_url: str, test_policies: None
) -> None:
    """nipso-test: a cooling-off of four weeks (not the Housing Ombudsman's eight) and NIPSO by name, in the
    final response, the timeline and status; the Stage 1 response lists the points it answers."""
    ref = new_reference("LTR")
    queue = f"q-{ref}"
    received = monday_of_a_full_week(await time_env.get_current_time())
    await skip_to(time_env, received)
    pool = await create_pool(db_url)
    try:
        async with worker(time_env, pool, queue):
            handle = await start(time_env, complaint(ref, received, policy="nipso-test",
                                                     nation=Nation.NORTHERN_IRELAND), queue)
            await wait_for(handle, lambda s: s.status is Status.INVESTIGATING, "acknowledgement")
            await handle.execute_update("submit_stage1_response", {
                **STAGE1, "points_addressed": ["Repair delay", "Damaged carpet"]})
            await wait_for(handle, lambda s: s.status is Status.RESPONDED, "the Stage 1 response letter")
            await handle.signal(Signal.REQUEST_REVIEW.value, {"reasons": "The leak is back"})
            await wait_for(handle, lambda s: any(d.key == "stage2.response" for d in s.deadlines), "Stage 2")
            await handle.execute_update("submit_final_response", FINAL)
            s = await wait_for(handle, lambda s: s.status is Status.COOLING_OFF, "the cooling-off period")
            sent = next(e.at for e in await handle.query("timeline", result_type=list[CaseEvent])
                        if e.kind == "final_response_sent")
            ends = deadline(s, "ombudsman.cooling_off").due_date
            final = await letter_body(pool, ref, "final_response")
            response = await letter_body(pool, ref, "stage1_response")
            rights = await pool.fetchval(
                "SELECT summary FROM timeline WHERE reference=$1 AND kind='ombudsman_rights_given'", ref)
    finally:
        await pool.close()

    assert ends == sent.astimezone(LONDON).date() + timedelta(weeks=4), "four weeks from the final response"
    assert (f"You can contact the Northern Ireland Public Services Ombudsman once the cooling-off period of four "
            f"weeks has ended on {long_date(ends)}, from {long_date(ends + timedelta(days=1))}.") in final, final
    assert "eight" not in final and "Housing Ombudsman" not in final and "designated person" not in final
    assert rights == "The final response gave the route to the Northern Ireland Public Services Ombudsman"
    assert s.waiting_for == f"the cooling-off period to end on {ends.isoformat()}"
    assert "\n\nPoints you raised, each answered: Repair delay; Damaged carpet\n\n" in response, response
    assert "Complaints Officer\nTest Northern Ireland housing association" in response
