"""Who asked for a case's cancellation: read from its history, for the withdrawal it becomes.

A cancellation request reaches the workflow without the requester's identity (only its reason), so
the case asks its own history: the WorkflowExecutionCancelRequested event names the identity that
sent it (the Temporal UI's user, `temporal workflow cancel`'s, a client's) and the reason given.
Read newest first: the request is among the last events when the case asks.
"""

from __future__ import annotations

import structlog
from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryReverseRequest

from domain.records import Activity, CancelRequest

log = structlog.get_logger("complaints.cancellation")

PAGES = 20  # the request is near the end; a bound, so a strange history cannot keep the activity reading


@activity.defn(name=Activity.WHO_CANCELLED)
async def who_cancelled(reference: str) -> CancelRequest:
    info = activity.info()
    client = activity.client()
    token = b""
    for _ in range(PAGES):
        page = await client.workflow_service.get_workflow_execution_history_reverse(
            GetWorkflowExecutionHistoryReverseRequest(
                namespace=info.workflow_namespace, maximum_page_size=200, next_page_token=token,
                execution=WorkflowExecution(workflow_id=info.workflow_id, run_id=info.workflow_run_id)))
        for event in page.history.events:
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED:
                asked = event.workflow_execution_cancel_requested_event_attributes
                return CancelRequest(by=asked.identity, reason=asked.cause)
        token = page.next_page_token
        if not token:
            break
    log.warning("no cancel request in the case's history", reference=reference, workflow_id=info.workflow_id)
    return CancelRequest()
