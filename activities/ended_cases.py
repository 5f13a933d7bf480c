"""The ended-cases sweep's activity (workflows/ended_cases.py): find, through Temporal visibility, the
complaint workflows that stopped abnormally, and mark each one's case record as ended abnormally.

A case is marked only if its record is still open and belongs to that workflow (its workflow id and first
run: activities/ownership.py), so a refused filing of a reference never touches the real case. Marking,
in one transaction: a timeline row `ended_abnormally` (what Temporal says happened, and when), status
`ended-abnormally` and closed_at the moment it stopped (retention counts from it), open deadlines closed,
the handlers' assignments released, and an operator told (a problem notification).
"""

from __future__ import annotations

import asyncpg
import structlog
from temporalio import activity
from temporalio.client import WorkflowExecution

from domain.case import Status
from domain.contract import WORKFLOW_TYPE as CASE_WORKFLOW
from domain.contract import workflow_id
from workflows.ended_cases import ABNORMAL, MARK_ACTIVITY, EndedCase, EndedCasesResult, EndedCasesSweep

log = structlog.get_logger("complaints.ended_cases")

QUERY = (f"WorkflowType = '{CASE_WORKFLOW}' AND ExecutionStatus IN ("
         + ", ".join(f"'{s}'" for s in ABNORMAL) + ")")


class EndedCasesActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @activity.defn(name=MARK_ACTIVITY)
    async def mark_ended_cases(self, sweep: EndedCasesSweep) -> EndedCasesResult:
        result = EndedCasesResult()
        async for wf in activity.client().list_workflows(QUERY):
            result.looked_at += 1
            if wf.id != workflow_id(wf.id.removeprefix("complaint-")) or wf.close_time is None:
                continue  # not a case's id (a refused workflow under another id owns no record)
            marked = await self._mark(wf)
            if marked is not None:
                result.marked.append(marked)
                if len(result.marked) >= sweep.limit:
                    break
            activity.heartbeat()
        return result

    async def _mark(self, wf: WorkflowExecution) -> EndedCase | None:
        ref = wf.id.removeprefix("complaint-")
        assert wf.close_time is not None and wf.status is not None
        how = wf.status.name.lower().replace("_", " ")
        chain = wf.raw_info.first_run_id or None
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow("SELECT workflow_id, first_run_id, stage FROM complaints WHERE reference = $1"
                                      " AND closed_at IS NULL FOR UPDATE", ref)
            if row is None or row["workflow_id"] != wf.id:
                return None  # closed (by itself, or marked already), or not this workflow's case
            if row["first_run_id"] is not None and chain is not None and row["first_run_id"] != chain:
                return None  # another chain's run of the id: a refused filing of the reference
            seq = await conn.fetchval("SELECT coalesce(max(seq), 0) + 1 FROM timeline WHERE reference = $1", ref)
            summary = (f"The case's workflow was {how} on {wf.close_time:%Y-%m-%d %H:%M} UTC without closing the "
                       "case: it ended abnormally")
            await conn.execute(
                "INSERT INTO timeline (reference, seq, at, kind, stage, actor, summary, detail)"
                " VALUES ($1, $2, $3, 'ended_abnormally', $4, 'system', $5, $6)",
                ref, seq, wf.close_time, row["stage"], summary,
                {"execution_status": wf.status.name.lower(), "workflow_id": wf.id, "run_id": wf.run_id},
            )
            await conn.execute(
                "UPDATE complaints SET status = $2, closed_at = $3, recorded_seq = $4, updated_at = now()"
                " WHERE reference = $1", ref, Status.ENDED_ABNORMALLY.value, wf.close_time, seq)
            await conn.execute("UPDATE deadlines SET cancelled = true WHERE reference = $1 AND met_at IS NULL", ref)
            await conn.execute("UPDATE assignments SET released_at = $2 WHERE reference = $1 AND released_at IS NULL",
                               ref, wf.close_time)
            await conn.execute(
                "INSERT INTO notifications (reference, key, role, kind, message) VALUES ($1, $2, 'operator', 'problem',"
                " $3) ON CONFLICT (reference, key) DO NOTHING", ref, f"ended-abnormally.{wf.run_id}", f"{ref}: {summary}")
        log.warning("case ended abnormally", reference=ref, workflow_id=wf.id, run_id=wf.run_id, execution=how)
        return EndedCase(reference=ref, workflow_id=wf.id, run_id=wf.run_id, execution_status=wf.status.name.lower(),
                         ended_at=wf.close_time)

    def all(self) -> list:
        return [self.mark_ended_cases]
