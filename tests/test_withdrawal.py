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
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from domain import search_attributes as sa
from domain.case import Stage, Status
from domain.contract import workflow_id
from tests.faults.stack import FaultStack, fault_stack
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
