"""RetentionWorkflow: one run is one sweep that removes residents' personal data from closed cases
whose policy's retention period has ended (UK GDPR storage limitation), keeping the anonymous
figures that reports need. A Temporal Schedule (`python -m starter retention schedule`) starts one
run a day; `python -m starter retention run --as-of DATE` starts one now.

The sweep pages through the candidates by reference: find a batch (one activity), remove it (one
activity, one transaction per case), repeat until a page comes back short. Every step is
idempotent, so a retried activity or a second sweep finds nothing more to do. A sweep with a very
large backlog continues as new, carrying its cursor and its totals, before its history grows long.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy

WORKFLOW_TYPE = "RetentionWorkflow"
SCHEDULE_ID = "complaints-retention"
DEFAULT_CRON = "0 2 * * *"  # 02:00 London time: after the working day, before the next one
FIND_ACTIVITY = "find_cases_past_retention"
REMOVE_ACTIVITY = "remove_personal_data"
# The references a result lists; the counts are always complete (a first sweep of a large backlog
# could otherwise carry an unbounded list through continue-as-new and into the result payload).
MAX_LISTED = 1000


class RetentionSweep(BaseModel):
    """The input of one sweep. The schedule passes the defaults; as_of then is the run's start."""

    as_of: datetime | None = Field(default=None, description="Remove cases whose retention ended before this")
    batch_size: int = Field(default=100, ge=1, le=1000)
    # Carried across continue-as-new only.
    after_reference: str | None = None
    removed_count: int = 0
    removed: list[str] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)


class FindCases(BaseModel):
    as_of: datetime
    after_reference: str | None = None
    limit: int


class FoundCases(BaseModel):
    references: list[str]
    # Closed cases whose policy file can no longer be loaded: their retention period is unknown, so
    # they are left alone and named for an operator (a silent default could delete data too early).
    unknown_policies: list[str] = Field(default_factory=list)


class RemoveBatch(BaseModel):
    references: list[str]
    as_of: datetime
    # Recorded on each case's personal_data_removed event; a retried call recognises its own work.
    sweep_id: str


class RemovedCase(BaseModel):
    reference: str
    policy: str
    retention_years: int
    closed_at: datetime


class BatchRemoved(BaseModel):
    removed: list[RemovedCase]


class SweepResult(BaseModel):
    as_of: datetime
    removed_count: int
    removed: list[str]
    skipped_unknown_policy: list[str]


ACTIVITY_OPTIONS = {
    "start_to_close_timeout": timedelta(minutes=5),
    # The database may be away for a while (a failover): keep trying, slowly.
    "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=2), backoff_coefficient=2.0,
                                maximum_interval=timedelta(minutes=2)),
}


@workflow.defn(name=WORKFLOW_TYPE)
class RetentionWorkflow:
    @workflow.run
    async def run(self, sweep: RetentionSweep) -> SweepResult:
        # Fixed once: a sweep that continues as new keeps the instant it began with.
        as_of = sweep.as_of or workflow.now()
        info = workflow.info()
        # The first run's id: the same for every attempt and every continuation of this sweep.
        sweep_id = f"{info.workflow_id}/{info.first_execution_run_id}"
        cursor = sweep.after_reference
        removed_count, removed, skipped = sweep.removed_count, list(sweep.removed), list(sweep.skipped)
        while True:
            found: FoundCases = await workflow.execute_activity(
                FIND_ACTIVITY, FindCases(as_of=as_of, after_reference=cursor, limit=sweep.batch_size),
                result_type=FoundCases, summary="Find closed cases past retention", **ACTIVITY_OPTIONS,
            )
            skipped += [p for p in found.unknown_policies if p not in skipped]
            if found.references:
                batch: BatchRemoved = await workflow.execute_activity(
                    REMOVE_ACTIVITY, RemoveBatch(references=found.references, as_of=as_of, sweep_id=sweep_id),
                    result_type=BatchRemoved, summary=f"Remove personal data of {len(found.references)} cases",
                    **ACTIVITY_OPTIONS,
                )
                removed_count += len(batch.removed)
                removed += [c.reference for c in batch.removed][: max(0, MAX_LISTED - len(removed))]
                cursor = found.references[-1]
            if len(found.references) < sweep.batch_size:
                break
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(RetentionSweep(
                    as_of=as_of, batch_size=sweep.batch_size, after_reference=cursor,
                    removed_count=removed_count, removed=removed, skipped=skipped,
                ))
        workflow.logger.info("retention sweep done", extra={"removed": removed_count, "skipped": len(skipped)})
        return SweepResult(as_of=as_of, removed_count=removed_count, removed=removed,
                           skipped_unknown_policy=skipped)
