"""Small helpers the workflow tests share."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.case_record import CaseRecordActivities
from domain.calendar import LONDON, Nation
from domain.case import CaseStatus
from domain.contract import Channel, FileComplaint, Property, Resident, Signal, workflow_id
from workflows.complaint import ComplaintWorkflow

SKIP_STEP = timedelta(days=5)


def london(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=LONDON)


def complaint(reference: str, received_at: datetime, policy: str = "hos-code-2024",
              nation: Nation = Nation.ENGLAND_AND_WALES, **overrides: Any) -> FileComplaint:
    data: dict[str, Any] = dict(
        reference=reference, policy=policy, received_at=received_at, channel=Channel.PHONE,
        resident=Resident(name="Maria Jones", address="Flat 4, 12 Harbour Road, Bristol BS1 4AA",
                          email="maria.jones@example.org"),
        property=Property(address="Flat 4, 12 Harbour Road, Bristol", postcode="BS1 4AA", nation=nation),
        summary="Damp and mould in the bedroom reported three times since March; no repair booked.",
        desired_outcome="Repair the leak and treat the mould; compensation for the damaged carpet.",
    )
    data.update(overrides)
    return FileComplaint(**data)


def as_case(reference: str, run_id: str = "run-1", wf_id: str | None = None) -> ActivityEnvironment:
    """Activities run as the case's own workflow would run them (or as wf_id): the case record refuses any
    other writer (activities/ownership.py)."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=wf_id or workflow_id(reference), workflow_run_id=run_id)
    return env


def new_reference(prefix: str = "CMP") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8].upper()}"


@asynccontextmanager
async def worker(env: WorkflowEnvironment, pool: asyncpg.Pool, task_queue: str, *, cache: bool = True):
    """A worker for the test. cache=False replays every task from history (no sticky queue): the
    time-skipping server never hands a dead worker's sticky tasks on, so restart tests use it."""
    async with Worker(env.client, task_queue=task_queue, workflows=[ComplaintWorkflow],
                      activities=CaseRecordActivities(pool).all(),
                      max_cached_workflows=1000 if cache else 0):
        yield


async def start(env: WorkflowEnvironment, c: FileComplaint, task_queue: str) -> WorkflowHandle:
    return await env.client.start_workflow(ComplaintWorkflow.run, c, id=workflow_id(c.reference),
                                           task_queue=task_queue)


async def skip_to(env: WorkflowEnvironment, instant: datetime) -> None:
    """Move the time-skipping server's clock forward to `instant` (timers fire on the way)."""
    now = await env.get_current_time()
    if instant <= now:
        raise AssertionError(f"cannot go back in time: server clock {now} is past {instant}")
    # In steps: one RPC that skips weeks of a busy case's timers can outlast the connection on a loaded
    # machine (seen as "h2 protocol error" from the test server); a few shorter ones do not. On a very
    # loaded machine a step can still time out ("Timeout expired"): the clock only moves forward, so
    # read where it got to and go on from there, a few times at most.
    timeouts = 0
    while now < instant:
        try:
            await env.sleep(min(instant - now, SKIP_STEP))
        except RPCError:
            timeouts += 1
            if timeouts > 3:
                raise
        now = await env.get_current_time()


async def status(handle: WorkflowHandle) -> CaseStatus:
    return await handle.query("status", result_type=CaseStatus)


async def wait_for(handle: WorkflowHandle, check: Callable[[CaseStatus], bool], what: str,
                   limit: float = 20.0) -> CaseStatus:
    """Wait (in real time, not workflow time) for the workflow to reach a state."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while True:
        s = await status(handle)
        if check(s):
            return s
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}; status: {s.model_dump_json(indent=1)}")
        await asyncio.sleep(0.05)


def deadline(s: CaseStatus, key: str):
    for d in s.deadlines:
        if d.key == key:
            return d
    raise AssertionError(f"no deadline {key} in {[d.key for d in s.deadlines]}")


async def signal(handle: WorkflowHandle, name: Signal, payload: Any) -> None:
    await handle.signal(name.value, payload)


async def letter_counts(pool: asyncpg.Pool, reference: str) -> dict[str, int]:
    """Letters in the case record, counted by kind (each letter must be written exactly once)."""
    rows = await pool.fetch(
        "SELECT kind, count(*) AS n FROM correspondence WHERE reference=$1 GROUP BY kind", reference)
    return {r["kind"]: r["n"] for r in rows}


async def letter_body(pool: asyncpg.Pool, reference: str, kind: str) -> str:
    return await pool.fetchval(
        "SELECT body FROM correspondence WHERE reference=$1 AND kind=$2 ORDER BY id LIMIT 1", reference, kind)


async def timeline_kinds(pool: asyncpg.Pool, reference: str) -> list[str]:
    """The stored timeline's kinds in order, after checking its seqs run 1..n, each once."""
    rows = await pool.fetch("SELECT seq, kind FROM timeline WHERE reference=$1 ORDER BY seq", reference)
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1)), "timeline seqs must be 1..n, each once"
    return [r["kind"] for r in rows]


async def add_sittings(pool: asyncpg.Pool, landlord: str, *days: Any, attendance_possible: bool = True,
                       capacity: int = 6) -> None:
    """Review panel sittings on set dates (the panel_sittings table the booking activity reads)."""
    await pool.executemany(
        "INSERT INTO panel_sittings (landlord, sits_on, capacity, attendance_possible) VALUES ($1,$2,$3,$4)",
        [(landlord, d, capacity, attendance_possible) for d in days])


def near(instant: Any, expected: datetime, tolerance_s: float = 60.0) -> bool:
    """Workflow time runs on a little after a skip (real seconds pass), so instants match to a minute."""
    return instant is not None and abs((instant - expected).total_seconds()) < tolerance_s


async def wait_for_survey(handle: WorkflowHandle, limit: float = 20.0) -> CaseStatus:
    """Closed, and the survey sent (its answer window open), so a survey_response is not early."""
    return await wait_for(handle, lambda s: s.stage.value == "closed" and any(
        d.key == "survey.answer" for d in s.deadlines), "closure and the survey", limit)


async def replays(env: WorkflowEnvironment, handle: WorkflowHandle) -> None:
    """Replay the case's full history with today's code: a nondeterministic change fails here."""
    from temporalio.worker import Replayer

    await Replayer(workflows=[ComplaintWorkflow], data_converter=env.client.data_converter).replay_workflow(
        await handle.fetch_history())
