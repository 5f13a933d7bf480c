"""Clocks the tests do not take from the machine.

The time-skipping test server (a GraalVM native binary) starts at its machine's clock and can only move
forward, so scenario dates fixed in the tests would expire. It is started under libfaketime (the PyPI
package vendors the library) at TEST_SERVER_START, before every scenario date, with its clock running on
from there: the tests skip forward to their dates whatever day the suite runs.

The dev server is a Go binary: Go reads the clock without libc, so libfaketime does not move it. Tests on
it take their dates from the server's own clock (`server_now`), never from Python's, which can differ (a
machine whose clock is faked for every libc process, as `scripts/test_at_date.sh` does).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shlex
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client

# Before every scenario date in the suite (the earliest a test skips to is 23 December 2026).
TEST_SERVER_START = datetime(2026, 11, 20, tzinfo=UTC)


def faketime_library() -> Path:
    """libfaketime.so.1 from the `libfaketime` package (a test extra), found without importing it."""
    spec = importlib.util.find_spec("libfaketime")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the libfaketime package is not installed (pip install the project's test extras)")
    lib = Path(next(iter(spec.submodule_search_locations))) / "vendor" / "libfaketime" / "src" / "libfaketime.so.1"
    if not lib.exists():
        raise RuntimeError(f"libfaketime's library is missing: {lib}")
    return lib


def faketime_env(faketime: str) -> dict[str, str]:
    """Environment that makes a (libc-using) process read its clock as libfaketime's FAKETIME says:
    "@2026-11-20 00:00:00" starts the clock there and lets it run; "+86400" is a fixed offset."""
    preload = str(faketime_library())
    if os.environ.get("LD_PRELOAD") and preload not in os.environ["LD_PRELOAD"]:
        preload = f"{preload}:{os.environ['LD_PRELOAD']}"
    # The monotonic clock stays real (timeouts and the JVM's timers keep working), and glibc's timed waits
    # are left alone: libfaketime's "monotonic fix" for them made the test server spin (7 s of CPU in 12).
    return {"LD_PRELOAD": preload, "FAKETIME": faketime, "DONT_FAKE_MONOTONIC": "1", "FAKETIME_FORCE_MONOTONIC_FIX": "0"}


def offset_to(instant: datetime) -> str:
    """A FAKETIME value that moves every process given it to `instant` now, all by the same offset (so
    processes started at different times still agree with each other)."""
    return f"{(instant - datetime.now(UTC)).total_seconds():+.0f}"


def pinned_test_server(binary: str, directory: Path, start: datetime = TEST_SERVER_START) -> str:
    """A launcher for the test server whose clock starts at `start` (libfaketime's absolute start time
    is read in the zone TZ names, hence TZ=UTC)."""
    stamp = start.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in (faketime_env(f"@{stamp}") | {"TZ": "UTC"}).items())
    script = directory / "temporal-test-server-pinned"
    script.write_text(f"#!/bin/sh\n# The test server, its clock started at {stamp} UTC.\n"
                      f"exec env {env} {shlex.quote(binary)} \"$@\"\n")
    script.chmod(0o755)
    return str(script)


async def server_now(client: Client) -> datetime:
    """The dev server's clock: when it recorded the start of a workflow nobody runs (then terminated)."""
    wid = f"clock-{uuid.uuid4().hex}"
    handle = await client.start_workflow("ReadTheServerClock", id=wid, task_queue=f"clock-{uuid.uuid4().hex}")
    try:
        async for event in handle.fetch_history_events():
            return event.event_time.ToDatetime(tzinfo=UTC)
        raise AssertionError("a started workflow has no first event")
    finally:
        # Gone again, so that no list or count of the server's workflows ever sees it.
        await handle.terminate("read the server's clock")
        await client.workflow_service.delete_workflow_execution(DeleteWorkflowExecutionRequest(
            namespace=client.namespace, workflow_execution=WorkflowExecution(workflow_id=wid)))


# How far the dev servers' clock is ahead of this process's. Every dev server here reads the machine's real
# clock, so one figure serves them all; learnt from the first server a fixture starts.
_server_ahead = timedelta(0)


async def learn_server_clock(client: Client) -> timedelta:
    global _server_ahead
    before = datetime.now(UTC)
    _server_ahead = await server_now(client) - before
    return _server_ahead


def server_time() -> datetime:
    """The dev server's time now (UTC), by the figure learn_server_clock found: for code that files a case
    on a dev server and has no client at hand."""
    return datetime.now(UTC) + _server_ahead


def server_now_at(address: str, namespace: str = "default") -> datetime:
    """server_now for a test without an event loop, given the server's address."""
    async def read() -> datetime:
        return await server_now(await Client.connect(address, namespace=namespace))
    return asyncio.run(read())
