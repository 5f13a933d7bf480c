"""Cases on the real stack (tests/faults/stack.py: dev server, PostgreSQL, the worker as its own process),
as operators and other services reach them: through the CLI as a subprocess and a Temporal client.
Shared by the tests of what a caller can and cannot do to a case (test_one_reference, test_withdrawal)."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from domain.case import CaseEvent, CaseStatus, Status
from domain.contract import Query, workflow_id
from tests.clock import server_now
from tests.faults.stack import ROOT, FaultStack

BRIEF = "compressed-brief"  # tests/policies: closes a few seconds after the Stage 1 response
RPC = timedelta(seconds=10)


@dataclass
class Cli:
    code: int
    out: str
    err: str


async def cli(stack: FaultStack, *args: str) -> Cli:
    """`python -m starter ...` with the worker's settings (server, queue, keys, policies)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "starter", *args, cwd=ROOT, env=stack.worker_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return Cli(proc.returncode or 0, out.decode(), err.decode())


def new_reference(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8].upper()}"


async def file_case(stack: FaultStack, ref: str, *, name: str = "Maria Jones", policy: str = BRIEF) -> None:
    r = await cli(stack, "file", "--reference", ref, "--policy", policy, "--resident-name", name,
                  "--resident-address", "Flat 4, 12 Harbour Road, Bristol BS1 4AA",
                  "--property-address", "Flat 4, 12 Harbour Road, Bristol", "--postcode", "BS1 4AA",
                  "--nation", "england-and-wales", "--summary", "Damp and mould in the bedroom; no repair booked.",
                  # The server's time: its clock need not be this process's (tests/clock.py).
                  "--received-at", (await server_now(stack.client)).isoformat())
    assert r.code == 0, r.err


async def wait_until(check: Callable[[], Awaitable[bool]], what: str, limit: float = 60.0) -> None:
    end = time.monotonic() + limit
    while not await check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {limit:.0f} s waiting for {what}")
        await asyncio.sleep(0.2)


async def status(handle: WorkflowHandle) -> CaseStatus:
    return await handle.query(Query.STATUS.value, result_type=CaseStatus, rpc_timeout=RPC)


async def wait_for_status(client: Client, ref: str, wanted: Status, limit: float = 60.0) -> CaseStatus:
    handle = client.get_workflow_handle(workflow_id(ref))

    async def reached() -> bool:
        return (await status(handle)).status is wanted
    await wait_until(reached, f"{ref} to be {wanted.value}", limit)
    return await status(handle)


async def wait_closed(handle: WorkflowHandle, limit: float = 60.0) -> WorkflowExecutionStatus | None:
    async def ended() -> bool:
        return (await handle.describe(rpc_timeout=RPC)).status is not WorkflowExecutionStatus.RUNNING
    await wait_until(ended, f"{handle.id} to end", limit)
    return (await handle.describe(rpc_timeout=RPC)).status


async def record(database_url: str, ref: str) -> dict[str, Any]:
    """The case record of one reference: the case row (less its write stamp), its timeline, letters,
    deadlines and contacts, in order."""
    conn = await asyncpg.connect(database_url)
    try:
        case = await conn.fetchrow("SELECT * FROM complaints WHERE reference = $1", ref)
        return {
            "case": {k: v for k, v in dict(case).items() if k != "updated_at"} if case else None,
            "timeline": [tuple(r) for r in await conn.fetch(
                "SELECT seq, kind, stage, actor, summary FROM timeline WHERE reference = $1 ORDER BY seq", ref)],
            "letters": [dict(r) for r in await conn.fetch(
                "SELECT letter_key, kind, recipient, address, subject, body FROM correspondence WHERE reference = $1"
                " ORDER BY id", ref)],
            "deadlines": [dict(r) for r in await conn.fetch(
                "SELECT key, due_at, met_at, passed_at, cancelled FROM deadlines WHERE reference = $1 ORDER BY key",
                ref)],
        }
    finally:
        await conn.close()


async def problems(database_url: str, ref: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        return [r["message"] for r in await conn.fetch(
            "SELECT message FROM notifications WHERE reference = $1 AND kind = 'problem' ORDER BY created_at", ref)]
    finally:
        await conn.close()


def timeline_rows(events: list[CaseEvent]) -> list[tuple[Any, ...]]:
    """The case's own timeline (its query) in the shape of the record's rows."""
    return [(e.seq, e.kind, e.stage.value, e.actor, e.summary) for e in events]


async def timeline(handle: WorkflowHandle) -> list[CaseEvent]:
    return await handle.query(Query.TIMELINE.value, result_type=list[CaseEvent], rpc_timeout=RPC)
