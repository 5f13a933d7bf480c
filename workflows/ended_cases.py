"""EndedCasesWorkflow: one run is one sweep that finds cases whose workflow stopped without closing them
(terminated, timed out, failed, or cancelled before withdrawals existed), where no case code ran to say so,
and marks them in the case record as ended abnormally: for operators, and for retention, which removes
personal data only from cases with a closed_at.

A Temporal Schedule (`python -m starter ended-cases schedule`) starts one run every quarter hour;
`python -m starter ended-cases run` starts one now. The sweep is one idempotent activity: a case already
marked (or closed by itself) is left alone, so a retried or overlapping sweep marks nothing twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy

WORKFLOW_TYPE = "EndedCasesWorkflow"
SCHEDULE_ID = "complaints-ended-cases"
DEFAULT_CRON = "*/15 * * * *"  # a stopped case looks alive for minutes, not a day
MARK_ACTIVITY = "mark_ended_cases"
# Temporal's words for an execution that stopped without the case closing itself.
ABNORMAL = ("Terminated", "TimedOut", "Failed", "Canceled")


class EndedCasesSweep(BaseModel):
    limit: int = Field(default=500, ge=1, le=10_000, description="Cases marked per run; the next run goes on")


class EndedCase(BaseModel):
    reference: str
    workflow_id: str
    run_id: str
    execution_status: str
    ended_at: datetime


class EndedCasesResult(BaseModel):
    marked: list[EndedCase] = Field(default_factory=list)
    looked_at: int = 0


@workflow.defn(name=WORKFLOW_TYPE)
class EndedCasesWorkflow:
    @workflow.run
    async def run(self, sweep: EndedCasesSweep) -> EndedCasesResult:
        result: EndedCasesResult = await workflow.execute_activity(
            MARK_ACTIVITY, sweep, result_type=EndedCasesResult, summary="Mark cases that stopped without closing",
            start_to_close_timeout=timedelta(minutes=5),
            # Temporal or the database away for a while: keep trying, slowly.
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=2)),
        )
        workflow.logger.info("ended-cases sweep done", extra={"marked": len(result.marked)})
        return result
