"""One reference, one case, for ever (issue 15, point 4).

On the real stack (dev server, PostgreSQL, the worker as its own process): a closed case's reference
filed again, by the CLI and by a client that allows the workflow id's reuse, and a workflow started under
another id carrying a live case's reference. Neither opens a case nor writes a row of the real case's
record; each fails once, saying why, and is recorded for operators. Below them, the case record's own
checks, activity by activity: only the chain that opened a case writes it, a continued run included.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from activities.case_record import CaseRecordActivities
from domain.calendar import LONDON
from domain.case import CaseEvent, Stage, Status
from domain.contract import WORKFLOW_TYPE, workflow_id
from domain.records import NOT_THIS_CASE, CaseSnapshot, EventBatch, LetterRequest, OpenCase
from tests.faults.driver import complaint, resident
from tests.faults.stack import FaultStack, fault_stack
from tests.stack_cases import (
    BRIEF,
    cli,
    file_case,
    new_reference,
    problems,
    record,
    status,
    timeline,
    timeline_rows,
    wait_closed,
    wait_for_status,
)
from tests.support import as_case
from tests.support import complaint as dated_complaint

IMPOSTOR = resident(name="Ivan Impostor", address="1 Elsewhere Lane, Leeds LS1 1AA", email="ivan@example.org")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FaultStack]:
    async with fault_stack(tmp_path_factory.mktemp("one-reference"), f"refs-{uuid.uuid4().hex[:8]}") as s:
        yield s


async def refused_at_opening(stack: FaultStack, handle_id: str, run_id: str | None) -> ApplicationError:
    """The run failed once, non-retryably, with the case record's reason (and did not hang or retry)."""
    assert stack.client is not None
    handle = stack.client.get_workflow_handle(handle_id, run_id=run_id)
    assert await wait_closed(handle, 30) is WorkflowExecutionStatus.FAILED
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "ReferenceTaken" and cause.non_retryable
    return cause


async def test_a_closed_case_reference_is_never_filed_again(stack: FaultStack) -> None:
    assert stack.client is not None
    ref = new_reference("REFILE")
    await file_case(stack, ref)
    await wait_for_status(stack.client, ref, Status.INVESTIGATING)
    r = await cli(stack, "respond", ref, "--decision", "partly_upheld", "--reasons", "The repair was booked late.")
    assert r.code == 0, r.err
    real = stack.client.get_workflow_handle(workflow_id(ref))
    assert await wait_closed(real) is WorkflowExecutionStatus.COMPLETED
    first_run = (await real.describe()).run_id
    before = await record(stack.database_url, ref)
    assert before["case"]["status"] == "closed" and before["case"]["closed_at"] is not None

    # The CLI refuses at once: the workflow id may never be reused.
    r = await cli(stack, "file", "--reference", ref, "--policy", BRIEF, "--resident-name", "Ivan Impostor",
                  "--property-address", "1 Elsewhere Lane", "--nation", "england-and-wales", "--summary", "Noise.")
    assert r.code == 1 and r.err.strip() == f"error: a case with reference {ref} already exists or existed; " \
        "a reference is never reused", r.err

    # A client that allows the id's reuse (the SDK's default) gets a new run; the case record refuses it.
    again = await stack.client.start_workflow(WORKFLOW_TYPE, complaint(ref, BRIEF, resident=IMPOSTOR), id=workflow_id(ref),
                                              task_queue=stack.task_queue)
    cause = await refused_at_opening(stack, again.id, again.result_run_id)
    assert f"reference {ref} was filed before" in cause.message and "never reused" in cause.message

    # The real case's record is whole and its own: not a row added, changed or reopened.
    assert await record(stack.database_url, ref) == before
    assert [p for p in await problems(stack.database_url, ref) if again.result_run_id in p]
    # And the real case still answers: status finds the run that opened it, not the refused one.
    r = await cli(stack, "status", ref, "--json")
    assert r.code == 0 and '"status": "closed"' in r.out, r.err
    owner = stack.client.get_workflow_handle(workflow_id(ref), run_id=first_run)
    assert timeline_rows(await timeline(owner)) == before["timeline"]


async def test_a_workflow_under_another_id_cannot_take_a_live_cases_reference(stack: FaultStack) -> None:
    assert stack.client is not None
    ref = new_reference("IMPOSTOR")
    await file_case(stack, ref)
    await wait_for_status(stack.client, ref, Status.INVESTIGATING)

    impostor_id = f"impostor-{uuid.uuid4().hex[:8]}"
    impostor = await stack.client.start_workflow(WORKFLOW_TYPE, complaint(ref, BRIEF, resident=IMPOSTOR), id=impostor_id,
                                                 task_queue=stack.task_queue)
    cause = await refused_at_opening(stack, impostor_id, impostor.result_run_id)
    assert workflow_id(ref) in cause.message and impostor_id in cause.message

    # The real case answers and goes on: its Stage 1 response is its own decision, to its own resident.
    r = await cli(stack, "respond", ref, "--decision", "upheld", "--reasons", "The repair was booked late.")
    assert r.code == 0, r.err
    real = stack.client.get_workflow_handle(workflow_id(ref))
    assert await wait_closed(real) is WorkflowExecutionStatus.COMPLETED
    rec = await record(stack.database_url, ref)
    assert rec["case"]["workflow_id"] == workflow_id(ref) and rec["case"]["resident_name"] == "Maria Jones"
    assert {letter["recipient"] for letter in rec["letters"]} == {"Maria Jones"}
    assert {letter["kind"] for letter in rec["letters"]} == {"acknowledgement", "stage1_response"}
    response = next(letter for letter in rec["letters"] if letter["kind"] == "stage1_response")
    assert "Decision: Upheld" in response["body"] and "Impostor" not in response["body"]
    assert rec["timeline"] == timeline_rows(await timeline(real)), "every event of the case, and only its own"
    assert [p for p in await problems(stack.database_url, ref) if impostor_id in p]
    s = await status(real)
    assert s.stage is Stage.CLOSED and s.status is Status.CLOSED
    r = await cli(stack, "status", ref)
    assert r.code == 0 and "stage: closed" in r.out, r.err


# -- the case record's own checks, activity by activity ------------------------------------------------------
AT = datetime(2026, 3, 2, 10, tzinfo=LONDON)  # a received_at on a fixed date: nothing here is a timer


def _batch(ref: str, seq: int, case_run: str | None) -> EventBatch:
    return EventBatch(reference=ref, case_run=case_run, case=CaseSnapshot(stage=Stage.STAGE1, status=Status.INVESTIGATING),
                      deadlines=[], events=[CaseEvent(seq=seq, at=AT, kind="note", stage=Stage.STAGE1, summary=f"e{seq}")])


def _letter(ref: str, key: str, case_run: str | None) -> LetterRequest:
    return LetterRequest(reference=ref, letter_key=key, kind="survey", stage=Stage.CLOSED, case_run=case_run,
                         recipient_name="Maria Jones", recipient_address="Flat 4", fields={"landlord": "Test Homes"})


async def test_only_the_chain_that_opened_a_case_writes_its_record(pool: asyncpg.Pool) -> None:
    ref = new_reference("OWN")
    acts = CaseRecordActivities(pool)
    owner = as_case(ref, run_id="run-1")
    await owner.run(acts.open_case, OpenCase(complaint=dated_complaint(ref, AT), workflow_id=workflow_id(ref),
                                             case_run="run-1"))
    assert await owner.run(acts.record_events, _batch(ref, 1, "run-1")) == 1
    # A later run of the same chain (continue-as-new: same workflow id, same first run) writes on.
    continued = as_case(ref, run_id="run-2")
    assert await continued.run(acts.record_events, _batch(ref, 2, "run-1")) == 1
    await continued.run(acts.send_letter, _letter(ref, "survey", "run-1"))

    # Another chain of the same workflow id (the reference filed again after the case closed) ...
    refiled = as_case(ref, run_id="run-9")
    attempts: list[tuple[Any, Any]] = [
        (acts.open_case, OpenCase(complaint=dated_complaint(ref, AT), workflow_id=workflow_id(ref), case_run="run-9")),
        (acts.record_events, _batch(ref, 3, "run-9")), (acts.send_letter, _letter(ref, "survey.2", "run-9"))]
    for activity_fn, arg in attempts:
        with pytest.raises(ApplicationError) as err:
            await refiled.run(activity_fn, arg)
        assert err.value.type == NOT_THIS_CASE and err.value.non_retryable
    # ... and a workflow under another id, whatever run it claims, are refused.
    stranger = as_case(ref, wf_id="impostor-1")
    attempts = [(acts.record_events, _batch(ref, 3, "run-1")), (acts.withdraw_involved_customer, ref),
                (acts.open_case, OpenCase(complaint=dated_complaint(ref, AT), workflow_id="impostor-1"))]
    for activity_fn, arg in attempts:
        with pytest.raises(ApplicationError) as err:
            await stranger.run(activity_fn, arg)
        assert err.value.type == NOT_THIS_CASE

    assert [r["seq"] for r in await pool.fetch("SELECT seq FROM timeline WHERE reference=$1 ORDER BY seq", ref)] == [1, 2]
    assert [r["letter_key"] for r in await pool.fetch("SELECT letter_key FROM correspondence WHERE reference=$1",
                                                      ref)] == ["survey"]
    row = await pool.fetchrow("SELECT workflow_id, first_run_id FROM complaints WHERE reference=$1", ref)
    assert (row["workflow_id"], row["first_run_id"]) == (workflow_id(ref), "run-1")
    refused = await pool.fetch("SELECT message FROM notifications WHERE reference=$1 AND kind='problem'", ref)
    assert any("run-9" in r["message"] for r in refused) and any("impostor-1" in r["message"] for r in refused)


async def test_a_case_must_run_under_its_references_workflow_id(pool: asyncpg.Pool) -> None:
    ref = new_reference("OWN")
    elsewhere = as_case(ref, wf_id=f"mine-{ref}")
    with pytest.raises(ApplicationError) as err:
        await elsewhere.run(CaseRecordActivities(pool).open_case,
                            OpenCase(complaint=dated_complaint(ref, AT), workflow_id=f"mine-{ref}"))
    assert err.value.type == NOT_THIS_CASE and workflow_id(ref) in err.value.message
    assert await pool.fetchval("SELECT count(*) FROM complaints WHERE reference=$1", ref) == 0
