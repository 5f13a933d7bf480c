"""Operators find cases through the search attributes: each filter returns exactly the right cases.

Five cases on a task queue of this test's own (so other tests on the shared dev server do not
count), in different stages, statuses, policies and nations:
  A  hos-code-2024  england-and-wales  received now             Stage 1, investigating
  B  connexus       scotland           received now, responded  Stage 1, responded
  C  hos-code-2024  northern-ireland   filed at Stage 2         Stage 2, reviewing
  D  optivo         england-and-wales  received 60 days ago     Stage 1, investigating, OVERDUE (its
                                        response is due 10 working days after receipt, long passed)
  E  hos-code-2024  scotland           received now, then terminated (not open)
Filing straight into Stage 2 needs a policy that allows it; the Code does not, so this test's
worker loads the real hos-code-2024 file with `direct_to_stage2` turned on (policies are data),
which is the only way to reach Stage 2 in real time without waiting out a day's triage.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio import activity
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.case_record import CaseRecordActivities
from activities.db import create_pool
from domain import search_attributes as sa
from domain.calendar import LONDON, Nation, end_of_day
from domain.case import Stage, Status
from domain.contract import workflow_id
from domain.records import Activity, OpenCase, OpenedCase
from starter.list_cmd import ListFilters, build_query, due_before_instant, quote
from tests.support import complaint, new_reference, start, wait_for
from workflows.complaint import ComplaintWorkflow

ROOT = Path(__file__).resolve().parent.parent
RESPONSE = {"decision": "not_upheld", "reasons": "The repair was done on time.", "by": "Priya Shah"}


# -- the query builder, without a server --------------------------------------------------------
def test_build_query_composes_every_filter() -> None:
    q = build_query(ListFilters(stage="stage-2", status="reviewing", overdue=True, due_before=date(2027, 7, 1),
                                policy="optivo", handler="staff-7", nation="scotland", open=True, task_queue="q1"))
    # Midday of 1 July 2027 in London is 11:00 UTC (British Summer Time).
    assert q == ("WorkflowType = 'ComplaintWorkflow' AND ComplaintStage = 'stage-2' AND ComplaintStatus = "
                 "'reviewing' AND ComplaintPolicy = 'optivo' AND CaseHandler = 'staff-7' AND Nation = 'scotland' "
                 "AND Overdue = true AND NextDeadline < '2027-07-01T11:00:00Z' AND ExecutionStatus = 'Running' "
                 "AND TaskQueue = 'q1'")
    assert build_query(ListFilters()) == "WorkflowType = 'ComplaintWorkflow'"
    assert build_query(ListFilters(overdue=False)).endswith("Overdue = false")
    assert due_before_instant(date(2027, 1, 5)).isoformat() == "2027-01-05T12:00:00+00:00"  # GMT in winter
    # A deadline due on 4 January falls due at midnight starting the 5th: before the bound; one due on the
    # 5th falls due at midnight starting the 6th: after it.
    assert end_of_day(date(2027, 1, 4)) < due_before_instant(date(2027, 1, 5)) < end_of_day(date(2027, 1, 5))
    assert end_of_day(date(2027, 6, 30)) < due_before_instant(date(2027, 7, 1)) < end_of_day(date(2027, 7, 1))


def test_quotes_cannot_break_out_of_a_value() -> None:
    assert quote("o'brien") == "'o''brien'"
    q = build_query(ListFilters(handler="x' OR WorkflowType != '"))
    assert q == "WorkflowType = 'ComplaintWorkflow' AND CaseHandler = 'x'' OR WorkflowType != '''"
    # A backslash could turn the closing quote into an escaped one; such values are refused outright.
    for bad in ("a\\", "x\\' OR 'a'='a", "line\nbreak"):
        with pytest.raises(ValueError):
            quote(bad)


def test_list_refuses_unsearchable_values_as_bad_arguments() -> None:
    r = cli("list", "--handler", "x\\", env={"TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "backslashes" in r.stderr, r.stderr
    r = cli("list", "--due-before", "next week", env={"TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert r.returncode == 2 and r.stderr.startswith("error: argument --due-before"), r.stderr


# -- the cases ------------------------------------------------------------------------------------
def case_worker(env: WorkflowEnvironment, pool: asyncpg.Pool, queue: str) -> Worker:
    record = CaseRecordActivities(pool)

    @activity.defn(name=Activity.OPEN_CASE)
    async def open_case_allowing_stage2_filing(request: OpenCase) -> OpenedCase:
        opened = await record.open_case(request)
        escalation = opened.policy.escalation.model_copy(update={"direct_to_stage2": True})
        return opened.model_copy(update={"policy": opened.policy.model_copy(update={"escalation": escalation})})

    acts = [a for a in record.all() if a.__name__ != "open_case"]
    return Worker(env.client, task_queue=queue, workflows=[ComplaintWorkflow],
                  activities=[*acts, open_case_allowing_stage2_filing])


async def listed(client: Client, query: str) -> set[str]:
    return {wf.id async for wf in client.list_workflows(query)}


async def eventually(client: Client, query: str, expected: set[str], limit: float = 20.0) -> None:
    """Visibility is eventually consistent: poll (bounded) until the query returns exactly `expected`."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while True:
        got = await listed(client, query)
        if got == expected and (await client.count_workflows(query)).count == len(expected):
            return
        if loop.time() > end:
            # Show what visibility holds for the cases, so a failure says which attribute is off.
            queue = query.rpartition("TaskQueue = ")[2]
            held = {wf.id: {k.name: v for k, v in ((p.key, p.value) for p in wf.typed_search_attributes)}
                    async for wf in client.list_workflows(f"TaskQueue = {queue}")} if queue else {}
            raise AssertionError(f"{query}\n  expected {sorted(expected)}\n  got      {sorted(got)}\n  held {held}")
        await asyncio.sleep(0.2)


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "starter", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=60)


async def test_each_search_attribute_finds_exactly_the_right_cases(dev_env: WorkflowEnvironment, db_url: str,
                                                                   dev_now: Callable[[], datetime]) -> None:
    client = dev_env.client
    queue = f"vis-{uuid.uuid4().hex[:10]}"
    refs = {k: new_reference(f"VIS{k}") for k in "ABCDE"}
    ids = {k: workflow_id(r) for k, r in refs.items()}
    now = dev_now().astimezone(LONDON).replace(microsecond=0)
    pool = await create_pool(db_url)
    try:
        async with case_worker(dev_env, pool, queue):
            a = await start(dev_env, complaint(refs["A"], now), queue)
            b = await start(dev_env, complaint(refs["B"], now, policy="connexus", nation=Nation.SCOTLAND), queue)
            c = await start(dev_env, complaint(refs["C"], now, nation=Nation.NORTHERN_IRELAND, start_at_stage2=True),
                            queue)
            d = await start(dev_env, complaint(refs["D"], now - timedelta(days=60), policy="optivo"), queue)
            e = await start(dev_env, complaint(refs["E"], now, nation=Nation.SCOTLAND), queue)

            await wait_for(a, lambda s: s.status is Status.INVESTIGATING, "A investigating")
            await wait_for(b, lambda s: s.status is Status.INVESTIGATING, "B acknowledged")
            await b.execute_update("submit_stage1_response", RESPONSE)
            await wait_for(b, lambda s: s.status is Status.RESPONDED, "B responded")
            await wait_for(c, lambda s: s.stage is Stage.STAGE2 and s.status is Status.REVIEWING
                           and "final response" in s.waiting_for, "C at Stage 2")
            sd = await wait_for(d, lambda s: len(s.breaches) >= 1 and s.status is Status.INVESTIGATING, "D overdue")
            assert "stage1.response" in {x.deadline for x in sd.breaches}
            await wait_for(e, lambda s: s.status is Status.INVESTIGATING, "E investigating")
            await e.terminate("withdrawn by the resident (test)")

            statuses = {k: await wait_for(h, lambda s: True, k) for k, h in zip("ABCD", (a, b, c, d), strict=True)}
            statuses["E"] = await wait_for(e, lambda s: True, "E")

            def q(**filters) -> str:
                return build_query(ListFilters(task_queue=queue, **filters))

            def of(keys: str) -> set[str]:
                return {ids[k] for k in keys}

            await eventually(client, q(), of("ABCDE"))
            # ComplaintStage
            await eventually(client, q(stage="stage-1"), of("ABDE"))
            await eventually(client, q(stage="stage-2"), of("C"))
            await eventually(client, q(stage="closed"), set())
            # ComplaintStatus
            await eventually(client, q(status="investigating"), of("ADE"))
            await eventually(client, q(status="responded"), of("B"))
            await eventually(client, q(status="reviewing"), of("C"))
            # ComplaintPolicy
            await eventually(client, q(policy="hos-code-2024"), of("ACE"))
            await eventually(client, q(policy="connexus"), of("B"))
            await eventually(client, q(policy="optivo"), of("D"))
            # Nation
            await eventually(client, q(nation="england-and-wales"), of("AD"))
            await eventually(client, q(nation="scotland"), of("BE"))
            await eventually(client, q(nation="northern-ireland"), of("C"))
            # Overdue
            await eventually(client, q(overdue=True), of("D"))
            await eventually(client, q(overdue=False), of("ABCE"))
            # Open (ExecutionStatus), combined with another attribute
            await eventually(client, q(open=True), of("ABCD"))
            await eventually(client, q(open=True, nation="scotland"), of("B"))

            # CaseHandler: who the case record says handles each case (the reviewer, once at Stage 2).
            handler_of: dict[str, str] = {}
            for k, ref in refs.items():
                row = await pool.fetchrow("SELECT handler_id, stage2_handler_id FROM complaints WHERE reference=$1", ref)
                handler_of[k] = row["stage2_handler_id"] or row["handler_id"]
            assert all(handler_of.values()), handler_of
            for handler in set(handler_of.values()):
                await eventually(client, q(handler=handler), {ids[k] for k, h in handler_of.items() if h == handler})
            await eventually(client, q(handler="nobody-at-all"), set())

            # NextDeadline is the next duty still to meet. D's only one has been missed; B waits only on a
            # window (the resident's right to ask for a review), which is no duty of the landlord's. Neither
            # has a next deadline, so neither matches any range.
            assert statuses["B"].next_deadline is None and statuses["D"].next_deadline is None
            due = {k: s.next_deadline.due_date for k, s in statuses.items() if s.next_deadline is not None}
            assert set(due) == set("ACE") and due["C"] > due["A"] == due["E"]
            for day in sorted(set(due.values())):
                await eventually(client, q(due_before=day), {ids[k] for k, d0 in due.items() if d0 < day})
                await eventually(client, q(due_before=day + timedelta(days=1)),
                                 {ids[k] for k, d0 in due.items() if d0 <= day})
            await eventually(client, q(due_before=date(2000, 1, 1)), set())

            # The CLI sends the same queries and prints the same cases.
            env = {"TEMPORAL_ADDRESS": client.service_client.config.target_host,
                   "TEMPORAL_NAMESPACE": client.namespace}
            # In a thread, so that the worker on this event loop is not held up while the CLI runs.
            r = await asyncio.to_thread(cli, "list", "--task-queue", queue, "--stage", "stage-1", "--open", "--json",
                                        env=env)
            assert r.returncode == 0, r.stderr
            out = json.loads(r.stdout)
            assert out["query"] == q(stage="stage-1", open=True) and out["count"] == 3
            assert {c_["reference"] for c_ in out["cases"]} == {refs[k] for k in "ABD"}
            row_d = next(c_ for c_ in out["cases"] if c_["reference"] == refs["D"])
            assert row_d["overdue"] is True and row_d["policy"] == "optivo" and row_d["next_deadline"] is None
            r = await asyncio.to_thread(cli, "list", "--task-queue", queue, "--overdue", "--query", env=env)
            lines = r.stdout.splitlines()
            assert r.returncode == 0 and lines[0] == f"query: {q(overdue=True)}", r
            assert lines[1].split() == ["reference", "stage", "status", "next", "deadline", "handler", "overdue"]
            assert lines[2].split() == [refs["D"], "stage-1", "investigating", "-", handler_of["D"], "OVERDUE"]
            assert lines[-1] == "1 case"
            for h in (a, b, c, d):
                await h.terminate("test over")
    finally:
        await pool.close()


async def test_quoted_values_match_literally_on_the_server(dev_env: WorkflowEnvironment,
                                                           dev_now: Callable[[], datetime]) -> None:
    """A value with quotes finds exactly its case; an injection attempt finds nothing, and is no error."""
    client = dev_env.client
    queue = f"vis-idle-{uuid.uuid4().hex[:10]}"  # no worker: the search attributes stay as started
    tricky = "o'brien 'x' 3rd"
    handle = await client.start_workflow(
        ComplaintWorkflow.run, complaint(new_reference("VISQ"), dev_now()), id=f"complaint-VISQ-{queue}",
        task_queue=queue, search_attributes=TypedSearchAttributes([SearchAttributePair(sa.CASE_HANDLER, tricky)]))
    try:
        await eventually(client, build_query(ListFilters(handler=tricky, task_queue=queue)), {handle.id})
        for attempt in ("x' OR WorkflowType = 'ComplaintWorkflow", "o'brien", "' OR ''='", "o'brien 'x' %"):
            assert await listed(client, build_query(ListFilters(handler=attempt, task_queue=queue))) == set()
    finally:
        await handle.terminate("test over")


# -- registering the search attributes on a cluster ---------------------------------------------
async def test_ensure_search_attributes_is_idempotent(dev_env: WorkflowEnvironment) -> None:
    """worker.py --ensure-search-attributes on a namespace without them adds all; run again, adds nothing."""
    client = dev_env.client
    namespace = f"ns-{uuid.uuid4().hex[:10]}"
    await client.workflow_service.register_namespace(RegisterNamespaceRequest(
        namespace=namespace, workflow_execution_retention_period=Duration(seconds=86_400)))
    env = {"TEMPORAL_ADDRESS": client.service_client.config.target_host, "TEMPORAL_NAMESPACE": namespace}

    def ensure(namespace: str = namespace) -> str:
        r = subprocess.run([sys.executable, "worker.py", "--ensure-search-attributes"], cwd=ROOT, text=True,
                           capture_output=True, env={**os.environ, **env, "TEMPORAL_NAMESPACE": namespace},
                           timeout=60)
        # worker.py must exit cleanly (sdk-python#300 could abort CPython's finalisation after the work).
        assert "PyGILState_Release" not in r.stderr, f"worker.py aborted at interpreter exit: {r.stderr[:200]}"
        assert r.returncode == 0, r.stderr
        return r.stdout.strip().splitlines()[-1]

    first = ensure()
    assert first == "added: " + ", ".join(sorted(k.name for k in sa.ALL))
    assert ensure() == "added: nothing (all present)"
    listed_now = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    types = {name: t for name, t in listed_now.custom_attributes.items()}
    for key in sa.ALL:
        assert types[key.name] == key.indexed_value_type.value, key.name
    # The shared dev server already has them: nothing to add there either.
    assert ensure(client.namespace) == "added: nothing (all present)"
