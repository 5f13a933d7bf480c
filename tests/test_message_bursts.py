"""A burst of signals is handled a bounded number per workflow task, in the order it arrived (issue 15,
point 9; workflows/inbox.py).

Made exact on the real dev server: the case's worker is stopped while 450 contacts, two malformed
contacts and a message of a name the case does not know are sent, so all of them reach the case in one
workflow task when a worker comes back. Before the inbox, that task handled all 453 (with 3,000 on a busy
machine it ran past the SDK's deadlock detector and the case stopped). Now it handles 100 and the rest
follow in later tasks, brought by one-millisecond timers; a Stage 1 response sent behind the burst waits
for it, and every message is recorded once, in order.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from domain.case import Status
from domain.contract import Signal, Update, UpdateResult
from tests.support import complaint, new_reference, replays, start, status, wait_for, worker
from workflows.inbox import NEXT_TASK, TAKE_PER_TASK

CONTACTS = 450
RESPONSE = {"decision": "partly_upheld", "reasons": "The repair was booked late.", "remedy": "£50",
            "by": "Priya Shah"}


def contact(i: int) -> dict[str, str]:
    return {"channel": "phone", "direction": "inbound", "by": "Contact centre", "notes": f"call {i}"}


async def _timeline(pool: asyncpg.Pool, reference: str) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT seq, kind, detail FROM timeline WHERE reference = $1 ORDER BY seq",
                            reference)


async def _until(check: Callable[[], object], what: str, limit: float = 60.0) -> None:
    end = asyncio.get_running_loop().time() + limit
    while not await check():  # type: ignore[misc]
        if asyncio.get_running_loop().time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def _next_task_timers(handle: WorkflowHandle) -> int:
    history = await handle.fetch_history()
    return sum(1 for e in history.events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED
               and e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta() == NEXT_TASK)


async def test_a_burst_in_one_task_is_taken_in_bounded_steps_in_order(
        dev_env: WorkflowEnvironment, pool: asyncpg.Pool, dev_now: Callable[[], datetime]) -> None:
    queue = f"burst-{uuid.uuid4().hex[:8]}"
    reference = new_reference("BURST")
    async with worker(dev_env, pool, queue, cache=False):
        handle = await start(dev_env, complaint(reference, dev_now() - timedelta(minutes=1)), queue)
        await wait_for(handle, lambda s: s.status is Status.INVESTIGATING, "the case to be acknowledged")
    before = len(await _timeline(pool, reference))

    # No worker: everything below waits for the next workflow task, which takes it all at once.
    for i in range(CONTACTS):
        await handle.signal(Signal.RECORD_CONTACT, contact(i))
        if i == 100:
            await handle.signal(Signal.RECORD_CONTACT, {"channel": "pigeon"})  # malformed
            await handle.signal("reopen_everything", {"please": True})  # no such message
        if i == 300:
            await handle.signal(Signal.RECORD_CONTACT, {**contact(i), "notes": "x" * 20_000})  # too long
    response = asyncio.create_task(
        handle.execute_update(Update.SUBMIT_STAGE1_RESPONSE, RESPONSE, result_type=UpdateResult))

    async with worker(dev_env, pool, queue, cache=False):
        assert (await asyncio.wait_for(response, 120)).message
        await _until(lambda: _recorded(pool, reference, "letter_sent", 2), "the Stage 1 response letter", 120)
        s = await status(handle)
        assert s.status is Status.RESPONDED and s.refused_messages == 3

    # 453 signals in one task: TAKE_PER_TASK of them there, the rest one timer per further task.
    assert await _next_task_timers(handle) == math.ceil((CONTACTS + 3) / TAKE_PER_TASK) - 1
    rows = (await _timeline(pool, reference))[before:]
    contacts = [r for r in rows if r["kind"] == "contact_recorded"]
    assert [_notes(r) for r in contacts] == [f"call {i}" for i in range(CONTACTS)]
    refusals = [(r["seq"], r["detail"]) for r in rows if r["kind"] == "signal_refused"]
    assert len(refusals) == 3
    seq_of = {_notes(r): r["seq"] for r in contacts}
    # Each refusal sits where its message arrived: after call 100 (two of them) and after call 300.
    assert seq_of["call 100"] < refusals[0][0] < refusals[1][0] < seq_of["call 101"]
    assert refusals[1][1]["message"] == "reopen_everything" and "no message of that name" in refusals[1][1]["reason"]
    assert [r[1]["message"] for r in refusals] == ["record_contact", "reopen_everything", "record_contact"]
    assert seq_of["call 300"] < refusals[2][0] < seq_of["call 301"]
    # The response was sent behind the burst, and acted on after it.
    decided = next(r["seq"] for r in rows if r["kind"] == "stage1_responded")
    assert decided > seq_of[f"call {CONTACTS - 1}"]
    await replays(dev_env, handle)
    await handle.terminate("test over")


def _notes(row: asyncpg.Record) -> str:
    return row["detail"]["notes"]


async def _recorded(pool: asyncpg.Pool, reference: str, kind: str, n: int) -> bool:
    return await pool.fetchval("SELECT count(*) FROM timeline WHERE reference = $1 AND kind = $2",
                               reference, kind) >= n
