"""Why a case does not answer: a workflow task that keeps failing or timing out, told to the operator.

A case whose workflow task fails (a bug, a payload the worker cannot read, a task past the SDK's deadlock
detector) answers no query; Temporal retries the task and keeps its attempt count. `status` then says
so in one line instead of a traceback, with what Temporal knows, and points at the worker's log (where
the SDK writes the failure) and the Temporal UI (the pending workflow task and its last failure).
"""

from __future__ import annotations

from temporalio.client import WorkflowHandle


async def not_answering(handle: WorkflowHandle, reference: str, error: str) -> str:
    try:
        desc = await handle.describe()
    except Exception:  # the server itself is unreachable: say what the query said
        return f"case {reference} cannot answer now: {error}"
    task = desc.raw_description.pending_workflow_task
    if task.attempt > 1:
        since = task.original_scheduled_time.ToDatetime()
        return (f"case {reference} is stuck: its workflow task has failed or timed out {task.attempt - 1} time(s) "
                f"since {since:%Y-%m-%d %H:%M:%S} UTC and is being retried; see the worker's log and the "
                "pending workflow task in the Temporal UI")
    return f"case {reference} cannot answer now: {error}"
