"""One reference, one case, for ever: who may write a case's record.

A case record belongs to the workflow chain that opened it: its workflow id (which must be the
reference's, `complaint-<reference>`) and the first run of that id (a continue-as-new, a new run of the
same chain, keeps it). Opening a reference that already has a record, under another workflow id or by
another chain (a closed case's reference filed again), is refused; so is every later write by anyone
but the owner. A refusal is non-retryable, logged, and recorded for operators as a problem on the
reference (a notification), so that an impostor never touches the case's letters or timeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.contract import workflow_id as workflow_id_of
from domain.records import NOT_THIS_CASE

log = structlog.get_logger("complaints.ownership")


@dataclass(frozen=True)
class Writer:
    """The workflow run calling an activity: its id, its run and its chain's first run."""

    workflow_id: str
    run_id: str
    chain: str

    @classmethod
    def current(cls, case_run: str | None) -> Writer:
        info = activity.info()
        # A request from before case_run was sent: the run itself (right for a first run, which opens).
        return cls(info.workflow_id, info.workflow_run_id, case_run or info.workflow_run_id)


def why_not_owner(row: asyncpg.Record | None, reference: str, writer: Writer, *, check_chain: bool) -> str | None:
    """Why `writer` may not write the record of `reference` (row: its workflow_id, first_run_id), or None."""
    if row is None:
        return f"there is no case record for {reference}"
    if row["workflow_id"] != writer.workflow_id:
        return (f"reference {reference} belongs to workflow {row['workflow_id']}, not {writer.workflow_id}; "
                "a reference is one case")
    if check_chain and row["first_run_id"] is not None and row["first_run_id"] != writer.chain:
        return (f"reference {reference} was filed before (workflow {row['workflow_id']}, first run "
                f"{row['first_run_id']}); a reference is never reused")
    return None


async def check_owner(conn: asyncpg.Connection, pool: asyncpg.Pool, reference: str, case_run: str | None) -> None:
    """Refuse (non-retryable, recorded) unless the calling run's chain owns the case record."""
    writer = Writer.current(case_run)
    row = await conn.fetchrow("SELECT workflow_id, first_run_id FROM complaints WHERE reference = $1", reference)
    # Without case_run the chain is unknown (a request scheduled by an older worker): workflow id only.
    why = why_not_owner(row, reference, writer, check_chain=case_run is not None)
    if why is not None:
        await refuse(pool, reference, writer, why)


async def claim(conn: asyncpg.Connection, pool: asyncpg.Pool, reference: str, case_run: str | None) -> None:
    """At opening, after `INSERT ... ON CONFLICT DO NOTHING` found a row: it must be this chain's own
    (a retried opening). A row from before chains were kept is adopted only while open: a closed one is a
    finished case whose reference is being filed again."""
    writer = Writer.current(case_run)
    row = await conn.fetchrow("SELECT workflow_id, first_run_id, closed_at FROM complaints WHERE reference = $1",
                              reference)
    why = why_not_owner(row, reference, writer, check_chain=True)
    if why is None and row is not None and row["first_run_id"] is None:
        if row["closed_at"] is not None:
            why = f"reference {reference} is a case that closed on {row['closed_at']:%Y-%m-%d}; a reference is never reused"
        else:
            await conn.execute("UPDATE complaints SET first_run_id = $2 WHERE reference = $1 AND first_run_id IS NULL",
                               reference, writer.chain)
    if why is not None:
        await refuse(pool, reference, writer, why)


async def check_workflow_id(pool: asyncpg.Pool, reference: str, case_run: str | None) -> None:
    """A case runs as complaint-<reference>, where every client and operator looks for it."""
    writer = Writer.current(case_run)
    if writer.workflow_id != workflow_id_of(reference):
        await refuse(pool, reference, writer, f"a complaint with reference {reference} must run as workflow "
                     f"{workflow_id_of(reference)}, not {writer.workflow_id}")


async def refuse(pool: asyncpg.Pool, reference: str, writer: Writer, why: str) -> None:
    """Record the refused writer for operators (on its own connection: the caller's transaction rolls
    back), then raise the non-retryable error."""
    message = f"{reference}: refused a write by workflow {writer.workflow_id} run {writer.run_id}: {why}"
    await pool.execute(
        "INSERT INTO notifications (reference, key, role, kind, message) VALUES ($1, $2, 'operator', 'problem', $3)"
        " ON CONFLICT (reference, key) DO NOTHING",
        reference, f"refused-writer.{writer.workflow_id}.{writer.run_id}", message,
    )
    log.error("case record write refused", reference=reference, workflow_id=writer.workflow_id,
              run_id=writer.run_id, reason=why)
    raise ApplicationError(why, type=NOT_THIS_CASE, non_retryable=True)
