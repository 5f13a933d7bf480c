"""Nothing a caller sends can wedge a case or slip personal data in clear (issue 15, points 1 and 5), on
the real stack: the dev server on a file, PostgreSQL, and `python worker.py` as its own process with
the encryption keys from the environment, running the compressed-time Code policy (deadlines in
seconds, tests/policies/compressed-code.toml).

A junk-encrypted signal, one sealed with a key the worker lacks, a plain (unencrypted) signal and
update, and a start from a client without the codec: each is refused with its reason, never read; the
case then answers `status`, takes a valid message, keeps its deadlines, and its record matches its own
timeline row for row. The unknown key, once added to the worker, does not turn the refusal into
something else on replay.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import RawValue
from temporalio.contrib.pydantic import pydantic_data_converter

from domain.case import CaseEvent, CaseStatus, Status
from domain.contract import (
    WORKFLOW_TYPE,
    Channel,
    ContactDirection,
    Query,
    RecordContact,
    Signal,
    Update,
    UpdateResult,
    workflow_id,
)
from domain.encryption import ENCODING, KeyRing, data_converter, keyring_from_env
from tests.faults.driver import STAGE1_RESPONSE, complaint, resident
from tests.faults.stack import ROOT, FaultStack, fault_stack

SECRET = "Flat 9, Secret Mews"  # personal data a careless client sends in clear: must never be read


def queue() -> str:
    return f"unreadable-{uuid.uuid4().hex[:8]}"


def with_converter(client: Client, converter) -> Client:
    return Client(**{**client.config(), "data_converter": converter})


async def status(handle: WorkflowHandle) -> CaseStatus:
    return await handle.query(Query.STATUS.value, result_type=CaseStatus, rpc_timeout=timedelta(seconds=10))


async def timeline(handle: WorkflowHandle) -> list[CaseEvent]:
    return await handle.query(Query.TIMELINE.value, result_type=list[CaseEvent], rpc_timeout=timedelta(seconds=10))


async def eventually(check: Callable, what: str, limit: float = 60.0):
    end = time.monotonic() + limit
    last: object = None
    while time.monotonic() < end:
        try:
            last = await check()
            if last:
                return last
        except Exception as exc:  # a wedged case fails its queries: keep trying until the limit
            last = exc
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


async def file_case(stack: FaultStack) -> WorkflowHandle:
    ref = f"UNR-{uuid.uuid4().hex[:8].upper()}"
    assert stack.client is not None
    handle = await stack.client.start_workflow(WORKFLOW_TYPE, complaint(ref), id=workflow_id(ref),
                                               task_queue=stack.task_queue)
    await eventually(lambda: _at(handle, Status.INVESTIGATING), "Stage 1 investigating")
    return handle


async def _at(handle: WorkflowHandle, s: Status) -> bool:
    return (await status(handle)).status is s


def contact(notes: str = "Called back about the damp survey") -> RecordContact:
    return RecordContact(channel=Channel.PHONE, direction=ContactDirection.OUTBOUND, by="Priya Shah", notes=notes)


async def record_rows(database_url: str, ref: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch("SELECT seq, kind, summary, detail::text AS detail FROM timeline "
                                "WHERE reference = $1 ORDER BY seq", ref)
    finally:
        await conn.close()


async def goes_on(stack: FaultStack, handle: WorkflowHandle, refusals: int) -> list[CaseEvent]:
    """The case answers, takes a valid message, keeps its deadlines, and its record is whole."""
    s = await status(handle)
    assert s.refused_messages == refusals
    await handle.signal(Signal.RECORD_CONTACT, contact())
    await eventually(lambda: _has(handle, "contact_recorded"), "the valid contact to be recorded")
    # Nobody answers within the compressed 10 s: the Stage 1 response deadline breaches on time.
    await eventually(lambda: _has(handle, "deadline_breached", "stage1.response"), "the response deadline's breach")
    result = await handle.execute_update(Update.SUBMIT_STAGE1_RESPONSE, STAGE1_RESPONSE, result_type=UpdateResult)
    assert "accepted" in result.message
    await eventually(lambda: _has(handle, "stage1_responded"), "the Stage 1 response")
    events = await timeline(handle)
    ref = (await status(handle)).reference
    rows = await eventually(lambda: _whole(stack.database_url, ref, len(events)), "the record to catch up")
    assert [(r["seq"], r["kind"]) for r in rows] == [(e.seq, e.kind) for e in events], "the record is the case's own"
    history = await handle.fetch_history()
    failed = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
    assert failed == [], "no workflow task failed"
    return events


async def _has(handle: WorkflowHandle, kind: str, deadline: str | None = None) -> bool:
    return any(e.kind == kind and (deadline is None or e.detail.get("deadline") == deadline)
               for e in await timeline(handle))


async def _whole(database_url: str, ref: str, n: int) -> list[asyncpg.Record] | None:
    rows = await record_rows(database_url, ref)
    return rows if len(rows) >= n else None


def refusals(events: list[CaseEvent]) -> list[str]:
    return [e.detail["reason"] for e in events if e.kind == "signal_refused"]


async def test_junk_and_unknown_key_signals_are_refused_and_the_key_added_later_changes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with fault_stack(tmp_path, queue()) as stack:
        assert stack.client is not None
        handle = await file_case(stack)
        plain = with_converter(stack.client, pydantic_data_converter).get_workflow_handle(handle.id)
        junk = Payload(metadata={"encoding": ENCODING, "encryption-key-id": b"test-1"}, data=os.urandom(80))
        await plain.signal(Signal.RECORD_CONTACT, RawValue(junk))
        rotated = KeyRing.generate("k-rotated")
        stranger = with_converter(stack.client, data_converter(rotated)).get_workflow_handle(handle.id)
        await stranger.signal(Signal.RECORD_CONTACT, contact(SECRET))

        s = await eventually(lambda: _refused(handle, 2), "both signals to be refused")
        assert s.status is Status.INVESTIGATING
        events = await goes_on(stack, handle, refusals=2)
        first, second = refusals(events)
        assert "cannot be opened" in first
        assert "'k-rotated'" in second and "does not have" in second
        log = stack.worker_log.read_text()
        told = [json.loads(line) for line in log.splitlines() if "k-rotated" in line and line.startswith("{")]
        assert [t.get("key_id") for t in told if t.get("logger") == "complaints.encryption"] == ["k-rotated"], \
            "the worker names the key it lacks, once"

        # The operator adds the missing key and restarts the worker: the case replays from its history
        # and the signal refused then is still refused (no different case, no stuck task).
        both = KeyRing(active="test-1", keys={**keyring_from_env().keys, **rotated.keys})
        keys = tmp_path / "keys.json"
        keys.write_text(both.to_json())
        keys.chmod(0o600)
        monkeypatch.setenv("COMPLAINTS_ENCRYPTION_KEYS_FILE", str(keys))
        stack.stop_worker()
        await stack.start_worker()
        assert [e.kind for e in await timeline(handle)] == [e.kind for e in events]
        assert (await status(handle)).refused_messages == 2
        await stranger.signal(Signal.RECORD_CONTACT, contact("Sealed with the added key"))
        await eventually(lambda: _count(handle, "contact_recorded", 2), "the newly-keyed contact to be read")


async def _refused(handle: WorkflowHandle, n: int) -> CaseStatus | None:
    s = await status(handle)
    return s if s.refused_messages >= n else None


async def _count(handle: WorkflowHandle, kind: str, n: int) -> bool:
    return sum(e.kind == kind for e in await timeline(handle)) >= n


async def test_a_client_without_the_codec_is_refused_and_its_data_never_read(tmp_path: Path) -> None:
    async with fault_stack(tmp_path, queue()) as stack:
        assert stack.client is not None
        plain_client = with_converter(stack.client, pydantic_data_converter)

        # A start in clear fails once, saying why; nothing of it reaches the case record.
        ref = f"UNR-{uuid.uuid4().hex[:8].upper()}"
        started = await plain_client.start_workflow(WORKFLOW_TYPE, complaint(ref, resident=resident(address=SECRET)),
                                                    id=workflow_id(ref), task_queue=stack.task_queue)
        with pytest.raises(WorkflowFailureError) as failed:
            await asyncio.wait_for(started.result(), 60)
        assert "unencrypted" in str(failed.value.cause)
        history = await started.fetch_history()
        assert not [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
        assert await record_rows(stack.database_url, ref) == []

        # A plain signal and a plain update to a sealed case: refused, content unread.
        handle = await file_case(stack)
        plain = plain_client.get_workflow_handle(handle.id)
        await plain.signal(Signal.RECORD_CONTACT, contact(SECRET))
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await plain.execute_update(Update.SUBMIT_STAGE1_RESPONSE, STAGE1_RESPONSE)
        assert "unencrypted" in str(refused.value.cause)
        await eventually(lambda: _refused(handle, 1), "the plain signal to be refused")
        events = await goes_on(stack, handle, refusals=1)
        (reason,) = refusals(events)
        assert "unencrypted" in reason
        rows = await record_rows(stack.database_url, (await status(handle)).reference)
        assert not any(SECRET in r["summary"] or SECRET in r["detail"] for r in rows)

        # An operator's CLI without the worker's key says so in one line, naming the key it lacks.
        other = tmp_path / "other-keys.json"
        other.write_text(KeyRing.generate("k-other").to_json())
        env = {**stack.worker_env(), "COMPLAINTS_ENCRYPTION_KEYS_FILE": str(other)}
        done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "starter", "status",
                                                        (await status(handle)).reference],
                                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "'test-1'" in done.stderr and "does not have" in done.stderr
