"""Driving one case from synchronous code (hypothesis' stateful tests are synchronous) and reading
what it did: the calls run on the test's event loop, the state machine in a thread of its own."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, TypeVar

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    DescribeWorkflowExecutionResponse,
)
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from domain.case import CaseEvent, CaseStatus, Stage, Status

T = TypeVar("T")


class LoopBridge:
    """Runs coroutines on `loop` (which must be free: the caller's thread is not that loop's)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float = 60.0) -> None:
        self.loop, self.timeout = loop, timeout

    def __call__(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout or self.timeout)


@dataclass(frozen=True)
class Snapshot:
    """What a refused message must leave exactly as it was."""

    stage: Stage
    status: Status
    deadlines: tuple[tuple[str, date, Any, bool, int], ...]
    events: int

    @classmethod
    def of(cls, s: CaseStatus, timeline: list[CaseEvent]) -> Snapshot:
        return cls(s.stage, s.status, tuple(sorted((d.key, d.due_date, d.met_at, d.cancelled, d.extended_by)
                                                   for d in s.deadlines)), len(timeline))


# A query is answered by the worker, which may first replay a case whose history holds megabytes of
# refused payloads; on a loaded machine that outlasts the default RPC deadline, which is not what these
# tests are about. A longer deadline, not a retry: a case that never answers still fails the test.
QUERY_DEADLINE = timedelta(seconds=90)


async def timeline(handle: WorkflowHandle) -> list[CaseEvent]:
    return await handle.query("timeline", result_type=list[CaseEvent], rpc_timeout=QUERY_DEADLINE)


async def case_status(handle: WorkflowHandle) -> CaseStatus:
    return await handle.query("status", result_type=CaseStatus, rpc_timeout=QUERY_DEADLINE)


async def describe(handle: WorkflowHandle) -> tuple[WorkflowExecutionStatus, DescribeWorkflowExecutionResponse]:
    """The raw description. handle.describe() also decodes the search attributes, and on the
    time-skipping server an unset Datetime attribute (NextDeadline, once no deadline is open) comes
    back as null, which the SDK's decoder cannot parse (TypeError); the raw form has no such step."""
    raw = await handle._client.workflow_service.describe_workflow_execution(DescribeWorkflowExecutionRequest(
        namespace=handle._client.namespace, execution=WorkflowExecution(workflow_id=handle.id)))
    return WorkflowExecutionStatus(raw.workflow_execution_info.status), raw


STUCK_ATTEMPTS = 4  # an activity on its fourth try against a healthy database is not riding out an outage


async def settle(handle: WorkflowHandle, limit: float = 30.0) -> WorkflowExecutionStatus:
    """Wait (real time; the server's clock is not moving) until the case has done all it can: no
    activity pending and the history not growing over three looks. A stuck activity fails here."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    last, stable = -1, 0
    while True:
        state, raw = await describe(handle)
        if state is not WorkflowExecutionStatus.RUNNING:
            return state
        pending = raw.pending_activities
        for a in pending:
            if a.attempt >= STUCK_ATTEMPTS:
                raise AssertionError(f"activity {a.activity_type.name} is stuck retrying (attempt {a.attempt}): "
                                     f"{a.last_failure.message}")
        length = raw.workflow_execution_info.history_length
        stable = stable + 1 if (not pending and length == last) else 0
        if stable >= 3:
            return state
        if loop.time() > end:
            raise AssertionError(f"case never settled: {len(pending)} activities pending, history {length}")
        last = length
        await asyncio.sleep(0.05)


async def failed_tasks(handle: WorkflowHandle) -> list[str]:
    """Messages of the workflow task failures in the history (a healthy case has none)."""
    out = []
    async for e in handle.fetch_history_events():
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            out.append(e.workflow_task_failed_event_attributes.failure.message)
    return out
