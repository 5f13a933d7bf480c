"""A cancelled or terminated case must not look alive (issue 15, point 7).

On the real stack (dev server, PostgreSQL, the worker as its own process): a cancellation request as the
Temporal UI's "Request Cancellation" sends it (a client's cancel), and the `withdraw` command, each close
the case as a withdrawal (who, why, the policy's letter, no open deadline, closed in the record and in the
search attributes); a terminated case, where no code runs, is found by the ended-cases sweep and marked in
the case record as ended abnormally, for operators and for retention.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import ScheduleActionStartWorkflow, WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Replayer

from activities.db import create_pool
from activities.retention import RetentionActivities
from domain import search_attributes as sa
from domain.case import Stage, Status
from domain.contract import workflow_id
from domain.policy import POLICY_PATH_ENV
from tests.faults.stack import TEST_POLICIES, FaultStack, fault_stack
from tests.stack_cases import (
    cli,
    file_case,
    new_reference,
    record,
    status,
    timeline,
    timeline_rows,
    wait_closed,
    wait_for_status,
)
from workflows.complaint import ComplaintWorkflow
from workflows.ended_cases import SCHEDULE_ID
from workflows.retention import FindCases


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FaultStack]:
    async with fault_stack(tmp_path_factory.mktemp("withdrawal"), f"withdraw-{uuid.uuid4().hex[:8]}") as s:
        yield s


async def assert_withdrawn(stack: FaultStack, handle: WorkflowHandle, ref: str, by: str, reason: str) -> dict[str, Any]:
    """The case record and the case agree: withdrawn by `by` for `reason`, closed, every deadline closed,
    the policy's letter sent once to the resident; operators see it closed."""
    rec = await record(stack.database_url, ref)
    case = rec["case"]
    assert (case["stage"], case["status"]) == ("closed", "withdrawn") and case["closed_at"] is not None
    assert all(d["met_at"] is not None or d["cancelled"] for d in rec["deadlines"]), rec["deadlines"]
    withdrawn = [row for row in rec["timeline"] if row[1] == "withdrawn"]
    assert len(withdrawn) == 1 and withdrawn[0][3] == by and (reason in withdrawn[0][4])
    letters = [letter for letter in rec["letters"] if letter["kind"] == "withdrawal"]
    assert len(letters) == 1 and letters[0]["recipient"] == "Maria Jones"
    assert f"Your complaint {ref} has been withdrawn" == letters[0]["subject"]
    assert "Dear Maria Jones" in letters[0]["body"] and "{" not in letters[0]["body"]
    assert rec["timeline"] == timeline_rows(await timeline(handle)), "the record holds the case's whole timeline"
    s = await status(handle)
    assert (s.stage, s.status, s.next_deadline) == (Stage.CLOSED, Status.WITHDRAWN, None)
    attrs = (await handle.describe()).typed_search_attributes
    assert attrs.get(sa.COMPLAINT_STATUS) == "withdrawn" and attrs.get(sa.COMPLAINT_STAGE) == "closed"
    assert attrs.get(sa.NEXT_DEADLINE) is None and attrs.get(sa.OVERDUE) is False
    assert stack.client is not None
    # Today's code replays what it did (a restarted worker, or a query, replays the whole history).
    await Replayer(workflows=[ComplaintWorkflow], data_converter=stack.client.data_converter).replay_workflow(
        await handle.fetch_history())
    r = await cli(stack, "status", ref)
    assert r.code == 0 and "stage: closed (withdrawn)" in r.out, r.err
    r = await cli(stack, "list", "--status", "withdrawn", "--task-queue", stack.task_queue, "--json")
    assert r.code == 0 and ref in [c["reference"] for c in json.loads(r.out)["cases"]], r.out + r.err
    return rec


async def test_a_cancellation_request_withdraws_the_case(stack: FaultStack) -> None:
    """What the UI's Request Cancellation does: the case is withdrawn, recorded as asked by the requester."""
    assert stack.client is not None
    ref = new_reference("CANCEL")
    await file_case(stack, ref)
    await wait_for_status(stack.client, ref, Status.INVESTIGATING)
    handle = stack.client.get_workflow_handle(workflow_id(ref))
    await handle.cancel()
    # It ends as cancelled in Temporal (what was asked), after closing the case as a withdrawal.
    assert await wait_closed(handle) is WorkflowExecutionStatus.CANCELED
    await assert_withdrawn(stack, handle, ref, by=stack.client.identity, reason="")


async def test_the_withdraw_command_closes_the_case_with_the_policys_letter(stack: FaultStack) -> None:
    assert stack.client is not None
    ref = new_reference("WITHDRAW")
    await file_case(stack, ref)
    await wait_for_status(stack.client, ref, Status.INVESTIGATING)
    r = await cli(stack, "withdraw", ref, "--by", "Priya Shah", "--reason", "The repair is done; no complaint now.")
    assert r.code == 0 and "withdrawn" in r.out, r.err
    handle = stack.client.get_workflow_handle(workflow_id(ref))
    assert await wait_closed(handle) is WorkflowExecutionStatus.COMPLETED
    await assert_withdrawn(stack, handle, ref, by="Priya Shah", reason="The repair is done; no complaint now.")
    # Once: a closed case takes no more messages.
    r = await cli(stack, "withdraw", ref, "--by", "Priya Shah")
    assert r.code == 1 and "has ended" in r.err, r.err


async def test_a_terminated_case_is_found_by_the_sweep_and_marked_ended_abnormally(
    stack: FaultStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No code runs in a terminated case: the ended-cases sweep marks its record, for operators (status,
    list) and for retention (closed_at), and leaves every row the case wrote as it was."""
    assert stack.client is not None
    ref = new_reference("TERMINATED")
    await file_case(stack, ref)
    await wait_for_status(stack.client, ref, Status.INVESTIGATING)
    handle = stack.client.get_workflow_handle(workflow_id(ref))
    written = timeline_rows(await timeline(handle))
    await handle.terminate("stopped by an operator by mistake")
    assert await wait_closed(handle) is WorkflowExecutionStatus.TERMINATED
    ended_at = (await handle.describe()).close_time

    r = await cli(stack, "ended-cases", "run", "--json")
    assert r.code == 0 and ref in [c["reference"] for c in json.loads(r.out)["marked"]], r.out + r.err
    rec = await record(stack.database_url, ref)
    case = rec["case"]
    assert (case["status"], case["closed_at"]) == ("ended-abnormally", ended_at)
    assert case["stage"] == "stage-1" and case["resident_name"] == "Maria Jones"
    assert all(d["met_at"] is not None or d["cancelled"] for d in rec["deadlines"]), rec["deadlines"]
    assert rec["timeline"][:-1] == written, "every row the case wrote, untouched"
    assert rec["timeline"][-1][1] == "ended_abnormally" and "terminated" in rec["timeline"][-1][4]
    # Once: a second sweep finds it marked already.
    r = await cli(stack, "ended-cases", "run", "--json")
    assert r.code == 0 and ref not in [c["reference"] for c in json.loads(r.out)["marked"]], r.out
    assert len((await record(stack.database_url, ref))["timeline"]) == len(rec["timeline"])

    # Operators see it stopped, not investigating with a deadline ahead.
    r = await cli(stack, "status", ref)
    assert r.code == 0 and "stage: stage-1 (ended-abnormally)" in r.out and "terminated" in r.out, r.out + r.err
    r = await cli(stack, "list", "--task-queue", stack.task_queue, "--json")
    rows = {c["reference"]: c for c in json.loads(r.out)["cases"]}
    assert rows[ref]["status"] == "ended-abnormally" and rows[ref]["next_deadline"] is None
    r = await cli(stack, "list", "--status", "ended-abnormally", "--task-queue", stack.task_queue, "--json")
    assert r.code == 0 and [c["reference"] for c in json.loads(r.out)["cases"]] == [ref], r.out + r.err
    # Retention counts from when it stopped: past the policy's six years the sweep finds it, not before.
    assert ended_at is not None
    monkeypatch.setenv(POLICY_PATH_ENV, str(TEST_POLICIES))
    pool = await create_pool(stack.database_url)
    try:
        find = RetentionActivities(pool).find_cases_past_retention
        found = [await ActivityEnvironment().run(find, FindCases(as_of=ended_at + timedelta(days=years * 366),
                                                                 limit=1000)) for years in (5, 7)]
    finally:
        await pool.close()
    assert ref not in found[0].references and ref in found[1].references


async def test_the_ended_cases_sweep_is_scheduled(stack: FaultStack) -> None:
    """The worker creates the schedule when it starts (no operator step, so a terminated case is always
    found); `ended-cases schedule` updates it, on the workers' queue, and a restarted worker keeps that."""
    assert stack.client is not None
    assert await _spacing(stack) == {timedelta(minutes=15)}, "created by the worker at */15"
    r = await cli(stack, "ended-cases", "schedule", "--cron", "*/5 * * * *", "--json")
    assert r.code == 0 and json.loads(r.out)["result"] == "updated", r.out + r.err
    described = await stack.client.get_schedule_handle(SCHEDULE_ID).describe()
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert (action.workflow, action.task_queue) == ("EndedCasesWorkflow", stack.task_queue)
    # The server keeps a cron as calendar specs: its next runs show the new spacing, which a restarted
    # worker leaves as the operator set it.
    assert await _spacing(stack) == {timedelta(minutes=5)}
    stack.stop_worker()
    await stack.start_worker()
    assert await _spacing(stack) == {timedelta(minutes=5)}


async def _spacing(stack: FaultStack) -> set[timedelta]:
    assert stack.client is not None
    runs = (await stack.client.get_schedule_handle(SCHEDULE_ID).describe()).info.next_action_times
    assert len(runs) >= 2, runs
    return {b - a for a, b in zip(runs, runs[1:], strict=False)}
