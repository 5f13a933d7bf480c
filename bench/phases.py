"""The measurements. Each takes the connected client and the stack, and returns plain data."""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError

from activities.calendar_data import CalendarChange, build_snapshot
from bench.floor import FLOOR_QUEUE, FloorWorkflow
from bench.stack import PRODUCT_QUEUE, Stack, cpu_seconds
from domain import calendar as wd
from domain.calendar import Nation
from domain.contract import Channel, FileComplaint, Property, Resident, Signal, workflow_id
from starter.calendar_cmd import apply_change
from workflows.complaint import ComplaintWorkflow

STAGE1_RESPONSE = {"decision": "upheld", "reasons": "The repair was booked late.", "by": "Priya Shah"}
RUN = uuid.uuid4().hex[:6].upper()


def complaint(reference: str, policy: str, received_at: datetime | None = None) -> FileComplaint:
    return FileComplaint(
        reference=reference, policy=policy, received_at=received_at or datetime.now(UTC), channel=Channel.PHONE,
        resident=Resident(name="Maria Jones", address="Flat 4, 12 Harbour Road, Bristol BS1 4AA",
                          email="maria.jones@example.org"),
        property=Property(address="Flat 4, 12 Harbour Road, Bristol", postcode="BS1 4AA",
                          nation=Nation.ENGLAND_AND_WALES),
        summary="Damp and mould in the bedroom reported three times since March; no repair booked.",
        desired_outcome="Repair the leak and treat the mould; compensation for the damaged carpet.",
    )


async def start_case(client: Client, c: FileComplaint) -> WorkflowHandle:
    return await client.start_workflow(ComplaintWorkflow.run, c, id=workflow_id(c.reference), task_queue=PRODUCT_QUEUE)


# -- reading what the server counted ----------------------------------------------------------------
async def describe(client: Client, wid: str) -> tuple[int, int]:
    """(state_transition_count, history_length) from DescribeWorkflowExecution."""
    raw = await client.workflow_service.describe_workflow_execution(DescribeWorkflowExecutionRequest(
        namespace=client.namespace, execution=WorkflowExecution(workflow_id=wid)))
    info = raw.workflow_execution_info
    return info.state_transition_count, info.history_length


async def gather_bounded(coros: list[Awaitable[Any]], limit: int) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(c: Awaitable[Any]) -> Any:
        async with gate:
            return await c

    return await asyncio.gather(*(one(c) for c in coros))


async def counted(client: Client, wids: list[str]) -> dict[str, float]:
    pairs = await gather_bounded([describe(client, w) for w in wids], 50)
    transitions = sum(p[0] for p in pairs)
    events = sum(p[1] for p in pairs)
    return {"state_transitions": transitions, "history_events": events,
            "transitions_per_workflow": round(transitions / len(wids), 1),
            "events_per_workflow": round(events / len(wids), 1)}


async def activity_profile(client: Client, wid: str) -> dict[str, Any]:
    """Events by type and activities by name in one workflow's history."""
    events: Counter[str] = Counter()
    acts: Counter[str] = Counter()
    async for e in client.get_workflow_handle(wid).fetch_history_events():
        events[EventType.Name(e.event_type).removeprefix("EVENT_TYPE_")] += 1
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            acts[e.activity_task_scheduled_event_attributes.activity_type.name] += 1
    return {"events": sum(events.values()), "activities": sum(acts.values()),
            "activities_by_name": dict(acts.most_common()), "events_by_type": dict(events.most_common())}


class DbWatch:
    """One poller for many waiters: resolves each reference's future when `sql` (given the pending
    references as $1) returns it. Off the engine's path: PostgreSQL only."""

    def __init__(self, pool: asyncpg.Pool, sql: str, interval: float) -> None:
        self.pool, self.sql, self.interval = pool, sql, interval
        self.pending: dict[str, asyncio.Future[float]] = {}
        self._task: asyncio.Task[None] | None = None
        self._stop = False

    def expect(self, reference: str) -> asyncio.Future[float]:
        fut = asyncio.get_running_loop().create_future()
        self.pending[reference] = fut
        return fut

    async def __aenter__(self) -> DbWatch:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Stop between queries, never cancel one in flight: a query cancelled inside asyncpg's pool
        # can leave its connection unusable, and the next watcher's query then hangs on it.
        assert self._task is not None
        self._stop = True
        await self._task

    async def _run(self) -> None:
        while not self._stop:
            if self.pending:
                try:
                    rows = await self.pool.fetch(self.sql, list(self.pending), timeout=30)
                except Exception as exc:  # a watcher that dies silently would look like a slow engine
                    print(f"bench: DbWatch query failed: {exc!r}", file=sys.stderr, flush=True)
                    await asyncio.sleep(self.interval)
                    continue
                now = time.monotonic()
                for r in rows:
                    fut = self.pending.pop(r[0], None)
                    if fut is not None and not fut.done():
                        fut.set_result(now)
            await asyncio.sleep(self.interval)


def acknowledged_watch(pool: asyncpg.Pool) -> DbWatch:
    # The acknowledgement is persisted in the same batch as the opening of the Stage 1 response
    # deadline, so once the row is there the update's validator accepts the response.
    return DbWatch(pool, "SELECT reference FROM timeline WHERE kind = 'acknowledged' AND reference = ANY($1)", 0.05)


def cpu_split(stack: Stack) -> dict[str, float]:
    return {"server": cpu_seconds(stack.server_pids()), "worker": cpu_seconds(stack.worker_pids()),
            "postgresql": cpu_seconds(stack.postgres_pids()), "bench_driver": cpu_seconds([os.getpid()])}


def cpu_used(stack: Stack, before: dict[str, float], elapsed: float) -> dict[str, float]:
    """CPU seconds each part used in the phase, and as cores (cpu s / wall s)."""
    after = cpu_split(stack)
    out: dict[str, float] = {}
    for k in after:
        out[f"{k}_cpu_s"] = round(after[k] - before[k], 2)
        out[f"{k}_cores"] = round((after[k] - before[k]) / elapsed, 2)
    return out


# -- 1. the floor ---------------------------------------------------------------------------------
async def floor(client: Client, stack: Stack, n: int, concurrency: int) -> dict[str, Any]:
    tag = f"{RUN}-{uuid.uuid4().hex[:4]}"
    wids = [f"bench-floor-{tag}-{i}" for i in range(n)]
    cpu0 = cpu_split(stack)
    began = time.monotonic()
    await gather_bounded([client.execute_workflow(FloorWorkflow.run, "x", id=w, task_queue=FLOOR_QUEUE)
                          for w in wids], concurrency)
    elapsed = time.monotonic() - began
    cpu = cpu_used(stack, cpu0, elapsed)
    c = await counted(client, wids)
    return {"n": n, "seconds": round(elapsed, 2), "workflows_per_s": round(n / elapsed, 1),
            "state_transitions_per_s": round(c["state_transitions"] / elapsed, 1),
            "events_per_s": round(c["history_events"] / elapsed, 1), "cpu": cpu, **c}


# -- 2. the product -------------------------------------------------------------------------------
async def stage1_lifecycle(client: Client, watch: DbWatch, reference: str, policy: str) -> None:
    acked = watch.expect(reference)
    handle = await start_case(client, complaint(reference, policy))
    await acked
    await handle.execute_update("submit_stage1_response", STAGE1_RESPONSE)
    # Nobody asks for a review: the escalation window passes, the case closes, the survey window passes.
    await handle.result()


async def product(client: Client, stack: Stack, pool: asyncpg.Pool, n: int, concurrency: int,
                  policy: str = "bench-code") -> dict[str, Any]:
    tag = f"{RUN}-{uuid.uuid4().hex[:4].upper()}"
    refs = [f"BN-{tag}-{i:06d}" for i in range(n)]
    cpu0 = cpu_split(stack)
    async with acknowledged_watch(pool) as watch:
        began = time.monotonic()
        await gather_bounded([stage1_lifecycle(client, watch, r, policy) for r in refs], concurrency)
        elapsed = time.monotonic() - began
    cpu = cpu_used(stack, cpu0, elapsed)
    c = await counted(client, [workflow_id(r) for r in refs])
    profile = await activity_profile(client, workflow_id(refs[0]))
    return {"n": n, "policy": policy, "seconds": round(elapsed, 2), "lifecycles_per_s": round(n / elapsed, 2),
            "state_transitions_per_s": round(c["state_transitions"] / elapsed, 1),
            "events_per_s": round(c["history_events"] / elapsed, 1), "cpu": cpu,
            **c, "one_lifecycle": profile}


# -- 3. open cases --------------------------------------------------------------------------------
async def open_cases(client: Client, stack: Stack, pool: asyncpg.Pool, target: int, budget_s: float,
                     inflight: int, cache_capacity: int) -> dict[str, Any]:
    """Start hos-code-2024 cases (real multi-week deadlines) until `target` or the budget runs out,
    keeping at most `inflight` started but not yet acknowledged (so the rate is one the stack sustains)."""
    cached0 = stack.sdk_metric("temporal_sticky_cache_size") or 0.0
    mem0 = stack.memory()
    samples: list[dict[str, Any]] = []

    async def sample() -> None:
        # Memory and cache size as the cases open: the per-case cost is read while the cache fills (after
        # that the worker evicts, and its RSS holds the churn, not more cases).
        while True:
            mem = stack.memory()
            samples.append({"s": round(time.monotonic() - began, 1), "opened": len(acked),
                            "cached": stack.sdk_metric("temporal_sticky_cache_size"),
                            **{k: v["rss_mb"] for k, v in mem.items()}})
            await asyncio.sleep(10)

    gate = asyncio.Semaphore(inflight)
    refs: list[str] = []
    acked: list[str] = []
    failures: Counter[str] = Counter()
    last_start = [0.0]
    began = time.monotonic()
    end = began + budget_s

    async with DbWatch(pool, "SELECT reference FROM timeline WHERE kind = 'acknowledged' AND reference = ANY($1)",
                       0.25) as watch:
        async def one(ref: str) -> None:
            try:
                fut = watch.expect(ref)
                await start_case(client, complaint(ref, "hos-code-2024"))
                last_start[0] = time.monotonic()
                await asyncio.wait_for(fut, timeout=max(1.0, end + 60 - time.monotonic()))
                acked.append(ref)
            except Exception as exc:  # counted, reported; one case must not stop the run
                failures[type(exc).__name__] += 1
                watch.pending.pop(ref, None)
            finally:
                gate.release()

        tasks = []
        sampler = asyncio.create_task(sample())
        i = 0
        while i < target and time.monotonic() < end:
            await gate.acquire()
            if time.monotonic() >= end:
                gate.release()
                break
            ref = f"OC-{RUN}-{i:06d}"
            refs.append(ref)
            tasks.append(asyncio.create_task(one(ref)))
            i += 1
        await asyncio.gather(*tasks)
        start_elapsed = max(last_start[0] - began, 1e-3)
        settled_elapsed = time.monotonic() - began
    await asyncio.sleep(2)  # let the last persistence batches land before memory is read
    sampler.cancel()
    cached = stack.sdk_metric("temporal_sticky_cache_size")
    mem = stack.memory()
    profile = await activity_profile(client, workflow_id(acked[0])) if acked else None
    # The last sample before the cache was full (within 2 %), or the end if it never filled.
    filling = [x for x in samples if x["cached"] is not None and x["cached"] < 0.98 * cache_capacity]
    last = filling[-1] if filling else {"worker": mem["worker"]["rss_mb"], "cached": cached}
    d_rss = last["worker"] - mem0["worker"]["rss_mb"]
    d_cached = (last["cached"] or 0.0) - cached0
    return {
        "target": target, "budget_s": budget_s, "inflight_limit": inflight,
        "started": len(refs), "open_and_acknowledged": len(acked), "failures": dict(failures),
        "start_seconds": round(start_elapsed, 1), "settle_seconds": round(settled_elapsed, 1),
        "starts_per_s": round(len(refs) / start_elapsed, 1),
        "opened_per_s": round(len(acked) / settled_elapsed, 1),
        "reached_20000": len(acked) >= 20_000,
        "memory_before": mem0, "memory_after": mem,
        "worker_cached_workflows_before": cached0, "worker_cached_workflows": cached,
        "worker_cache_capacity": cache_capacity,
        "worker_kb_per_cached_case": round(d_rss * 1024 / d_cached, 1) if d_cached > 0 else None,
        "worker_rss_peak_mb": max([x["worker"] for x in samples] + [mem["worker"]["rss_mb"]]),
        "samples": samples[::3],  # every 30 s
        "one_open_case": profile,
        "references": acked,
    }


# -- 4. signal latency ----------------------------------------------------------------------------
async def signal_latency(client: Client, pool: asyncpg.Pool, refs: list[str], n: int, rate: float) -> dict[str, Any]:
    chosen = random.Random(7).sample(refs, min(n, len(refs)))
    latencies: list[float] = []
    async with DbWatch(pool, "SELECT DISTINCT reference FROM contacts WHERE reference = ANY($1)", 0.01) as watch:
        async def one(ref: str) -> None:
            fut = watch.expect(ref)
            sent = time.monotonic()
            await client.get_workflow_handle(workflow_id(ref)).signal(Signal.RECORD_CONTACT.value, {
                "channel": "phone", "direction": "inbound", "by": "Bench Caller", "notes": "latency probe"})
            latencies.append(await asyncio.wait_for(fut, 120) - sent)

        tasks = []
        for ref in chosen:
            tasks.append(asyncio.create_task(one(ref)))
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*tasks)
    ms = sorted(x * 1000 for x in latencies)
    return {"signals": len(ms), "rate_per_s": rate, "p50_ms": round(statistics.median(ms), 1),
            "p90_ms": round(_rank(ms, 0.90), 1), "p99_ms": round(_rank(ms, 0.99), 1), "max_ms": round(ms[-1], 1),
            "note": "send record_contact -> its row in contacts (PostgreSQL polled every 10 ms)"}


def _rank(ordered: list[float], q: float) -> float:
    """The q-th quantile of sorted values, by rank (no interpolation: a latency that was measured)."""
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


# -- 5. calendar change fan-out -------------------------------------------------------------------
async def fan_out(client: Client, stack: Stack, pool: asyncpg.Pool, limit_s: float) -> dict[str, Any]:
    rows = await pool.fetch(
        "SELECT d.reference, d.trigger_at, d.due_date FROM deadlines d JOIN complaints c USING (reference)"
        " WHERE d.key = 'stage1.response' AND c.closed_at IS NULL AND c.policy_id = 'hos-code-2024'"
        " AND d.met_at IS NULL AND d.passed_at IS NULL")
    if not rows:
        return {"skipped": "no open cases"}
    today = datetime.now(wd.LONDON).date()
    before_cal = build_snapshot(Nation.ENGLAND_AND_WALES, today.year, today.year + 3)
    # A one-off bank holiday after every case's day zero and on or before every response date.
    latest_zero = max(wd.day_zero(before_cal, r["trigger_at"], wd.DeadlineUnit.WORKING_DAYS) for r in rows)
    earliest_due = min(r["due_date"] for r in rows)
    holiday = wd.add_working_days(before_cal, latest_zero, 2)
    assert holiday <= earliest_due, (holiday, earliest_due)
    change = CalendarChange(day=holiday, change="add", reason=f"Bench: one-off bank holiday on {holiday}",
                            nation=Nation.ENGLAND_AND_WALES)
    after_cal = build_snapshot(Nation.ENGLAND_AND_WALES, today.year, today.year + 3, changes=[change])
    expected = {r["reference"]: wd.due_date(after_cal, r["trigger_at"], 10, wd.DeadlineUnit.WORKING_DAYS)
                for r in rows}
    assert all(expected[r["reference"]] != r["due_date"] for r in rows)
    began = time.monotonic()
    recorded, told = await apply_change(client, stack.database_url, change)
    signalled_s = time.monotonic() - began
    refs = list(expected)
    moved = 0
    while True:
        got = await pool.fetch("SELECT reference, due_date FROM deadlines WHERE key = 'stage1.response'"
                               " AND reference = ANY($1)", refs)
        moved = sum(1 for g in got if expected[g["reference"]] == g["due_date"])
        if moved == len(refs) or time.monotonic() - began > limit_s:
            break
        # Each poll reads every open case's deadline row; once a second is ample resolution for a
        # fan-out that takes minutes and keeps the probe from competing with it for the two cores.
        await asyncio.sleep(1.0)
    elapsed = time.monotonic() - began
    return {"holiday": holiday.isoformat(), "open_cases": len(refs), "told": len(told.told),
            "failed": len(told.failed), "signals_sent_s": round(signalled_s, 1),
            "all_moved_s": round(elapsed, 1) if moved == len(refs) else None, "moved": moved,
            "cases_per_s": round(moved / elapsed, 1)}


# -- 6. full lifecycles of each policy ------------------------------------------------------------
async def update_when_accepted(handle: WorkflowHandle, name: str, payload: dict, limit: float = 60.0) -> None:
    end = time.monotonic() + limit
    while True:
        try:
            await handle.execute_update(name, payload)
            return
        except WorkflowUpdateFailedError:
            if time.monotonic() > end:
                raise
            await asyncio.sleep(0.2)


async def wait_status(handle: WorkflowHandle, check: Callable[[dict], bool], limit: float = 60.0) -> dict:
    end = time.monotonic() + limit
    while True:
        s = await handle.query("status")
        if check(s):
            return s
        if time.monotonic() > end:
            raise TimeoutError(f"{handle.id}: status {s.get('stage')}/{s.get('status')}")
        await asyncio.sleep(0.2)


def _has(key: str) -> Callable[[dict], bool]:
    return lambda s: any(d["key"] == key for d in s["deadlines"])


async def code_full(client: Client, ref: str) -> WorkflowHandle:
    """compressed-code: Stage 1, escalation, Stage 2 final response, closure, survey answered."""
    h = await start_case(client, complaint(ref, "compressed-code"))
    await update_when_accepted(h, "submit_stage1_response", STAGE1_RESPONSE)
    await wait_status(h, _has("escalation.window"))
    await h.signal(Signal.REQUEST_REVIEW.value, {"reasons": "The carpet was not addressed"})
    await update_when_accepted(h, "submit_final_response", {
        "decision": "partly_upheld", "reasons": "On review the carpet was missed.", "remedy": "£150",
        "by": "Helen Clarke"})
    await wait_status(h, _has("survey.answer"))
    await h.signal(Signal.SURVEY_RESPONSE.value, {"satisfied": True, "score": 8})
    await h.result()
    return h


async def connexus_full(client: Client, ref: str) -> WorkflowHandle:
    """compressed-connexus: Stage 1, review with contact, findings, agreed outcome, findings call, survey."""
    contact = {"channel": "phone", "direction": "outbound", "by": "Alan Reid"}
    h = await start_case(client, complaint(ref, "compressed-connexus"))
    await update_when_accepted(h, "submit_stage1_response", STAGE1_RESPONSE)
    await wait_status(h, _has("escalation.window"))
    await h.signal(Signal.REQUEST_REVIEW.value, {"reasons": "The carpet was not addressed"})
    await h.signal(Signal.RECORD_CONTACT.value, {**contact, "kind": "review_discussion"})
    questions = ["investigation_thorough", "all_points_answered", "evidence_supports_resolution",
                 "resolution_remedies_failure"]
    await update_when_accepted(h, "record_review_findings", {
        "answers": [{"key": k, "answer": True, "notes": f"Checked: {k}"} for k in questions],
        "summary": "The investigation was sound.", "by": "Alan Reid"})
    await update_when_accepted(h, "agree_outcome", {
        "role": "head_of_service", "name": "Ruth Patel", "decision": "partly_upheld",
        "outcome": "We uphold the carpet point.", "remedy": "£150"})
    await h.signal(Signal.RECORD_CONTACT.value, {**contact, "kind": "findings_call", "notes": "Findings explained"})
    await wait_status(h, _has("survey.answer"))
    await h.signal(Signal.SURVEY_RESPONSE.value, {"satisfied": True, "score": 7})
    await h.result()
    return h


async def lifecycle_lengths(client: Client) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, drive in (("compressed-code (hos-code-2024)", code_full), ("compressed-connexus", connexus_full)):
        ref = f"LC-{RUN}-{uuid.uuid4().hex[:6].upper()}"
        began = time.monotonic()
        h = await asyncio.wait_for(drive(client, ref), 180)
        transitions, events = await describe(client, h.id)
        prof = await activity_profile(client, h.id)
        out[name] = {"history_events": events, "state_transitions": transitions, "activities": prof["activities"],
                     "activities_by_name": prof["activities_by_name"], "seconds": round(time.monotonic() - began, 1),
                     "server": "dev server, real time"}
    return out



async def optivo_full(stack: Stack, pool: asyncpg.Pool) -> dict[str, Any]:
    """optivo: its review panel sits on calendar dates (panel_sittings rows), which compressed time
    cannot shorten, so this one runs the shipped policy on the time-skipping test server, as
    tests/test_optivo.py's happy path does: Stage 1, review panel, decision, designated-person
    referral, survey answered."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker

    from activities.case_record import CaseRecordActivities
    from domain import search_attributes as sa
    from localstack.temporal import find_binary

    def london(m: int, d: int, hh: int) -> datetime:
        return datetime(2027, m, d, hh, 0, tzinfo=wd.LONDON)

    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_binary("temporal-test-server"), data_converter=stack.settings.converter())
    try:
        await env.client.operator_service.add_search_attributes(AddSearchAttributesRequest(
            namespace=env.client.namespace, search_attributes={k.name: IndexedValueType.Value(
                "INDEXED_VALUE_TYPE_" + k.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_")) for k in sa.ALL}))
        await pool.executemany(
            "INSERT INTO panel_sittings (landlord, sits_on, capacity, attendance_possible) VALUES ($1,$2,$3,$4)",
            [("Optivo", d, 6, d.month != 3 or d.day != 23) for d in
             (date(2027, 3, 17), date(2027, 3, 23), date(2027, 4, 6), date(2027, 4, 20))])

        async def skip_to(at: datetime) -> None:
            await env.sleep(at - await env.get_current_time())

        ref = f"OP-{RUN}-{uuid.uuid4().hex[:6].upper()}"
        queue = "bench-optivo"
        began = time.monotonic()
        async with Worker(env.client, task_queue=queue, workflows=[ComplaintWorkflow],
                          activities=CaseRecordActivities(pool).all()):
            received = london(3, 1, 10)
            await skip_to(received)
            h = await env.client.start_workflow(ComplaintWorkflow.run, complaint(ref, "optivo", received),
                                                id=workflow_id(ref), task_queue=queue)
            await wait_status(h, lambda s: s["status"] == "investigating")
            await skip_to(london(3, 10, 11))
            await h.execute_update("submit_stage1_response", STAGE1_RESPONSE)
            await wait_status(h, lambda s: s["status"] == "responded")
            await skip_to(london(3, 11, 10))
            await h.signal(Signal.REQUEST_REVIEW.value, {"reasons": "The repair was missed twice"})
            await wait_status(h, _has("escalation.triage"))
            await skip_to(london(3, 15, 12))
            await wait_status(h, lambda s: s["status"] == "awaiting-panel")
            await h.execute_update("request_resident_panelists", {"panelists": [
                {"name": "Ada Brown", "basis": "tenant"}, {"name": "Ben Cole", "basis": "leaseholder"}]})
            await skip_to(london(3, 24, 11))
            await wait_status(h, _has("stage2.response"))
            await h.execute_update("record_panel_decision", {
                "decision": "upheld", "reasons": "The panel found the repair was missed twice.", "remedy": "£250"})
            await wait_status(h, lambda s: s["status"] == "cooling-off")
            await skip_to(london(4, 1, 11))
            await h.signal(Signal.OMBUDSMAN_REFERRAL.value,
                           {"route": "designated_person", "designated_person": "Karin Smyth MP"})
            await wait_status(h, _has("survey.answer"))
            await h.signal(Signal.SURVEY_RESPONSE.value, {"satisfied": True, "score": 9})
            await h.result()
            transitions, events = await describe(env.client, h.id)
            prof = await activity_profile(env.client, h.id)
        return {"history_events": events, "state_transitions": transitions, "activities": prof["activities"],
                "activities_by_name": prof["activities_by_name"], "seconds": round(time.monotonic() - began, 1),
                "server": "time-skipping test server, shipped optivo policy (panel sittings are dates)"}
    finally:
        await env.shutdown()
