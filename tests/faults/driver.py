"""Drives many cases through their whole lifecycle, as the landlord's other services would, and then
checks what the case record and the Temporal histories say about them.

The driver finds the cases waiting for it through visibility (one list call per stage, not a query
per case), answers each at most once per message (updates carry a fixed id, so a call repeated after
a timeout is deduplicated by the server), and keeps going while the worker or the server is down:
every call has an RPC timeout and is simply tried again on the next round.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import Client, WorkflowQueryFailedError, WorkflowUpdateFailedError
from temporalio.worker import Replayer

from domain.calendar import LONDON, Nation
from domain.case import CaseEvent, CaseStatus
from domain.contract import (
    WORKFLOW_TYPE,
    Channel,
    FileComplaint,
    Property,
    Query,
    Resident,
    Signal,
    StageResponse,
    SurveyResponse,
    Update,
    UpdateResult,
    workflow_id,
)
from tests.clock import server_now, server_time
from workflows.complaint import ComplaintWorkflow

COMPRESSED_CODE = "compressed-code"
RPC = timedelta(seconds=10)
# Letters every case on this path gets, each exactly once.
LIFECYCLE_LETTERS = {"acknowledgement", "stage1_response", "survey"}
# Timeline events every case on this path has; (kind, deadline) so that the two windows are told apart.
LIFECYCLE_EVENTS = {("filed", None), ("handler_appointed", None), ("acknowledged", "stage1.acknowledgement"),
                    ("stage1_responded", "stage1.response"), ("window_closed", "escalation.window"),
                    ("closed", None), ("survey_sent", None)}
# A workflow task may fail harmlessly when a new event (a signal, an update) reaches the server while
# the task is completing: the server asks for a fresh task that sees it. Any other cause is a bug.
BENIGN_TASK_FAILURES = {WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND}


def resident(**overrides: Any) -> Resident:
    data: dict[str, Any] = dict(name="Maria Jones", address="Flat 4, 12 Harbour Road, Bristol BS1 4AA",
                                email="maria.jones@example.org")
    data.update(overrides)
    return Resident(**data)


def complaint(reference: str, policy: str = COMPRESSED_CODE, **overrides: Any) -> FileComplaint:
    data: dict[str, Any] = dict(
        reference=reference, policy=policy, received_at=server_time().astimezone(LONDON), channel=Channel.PHONE,
        resident=resident(),
        property=Property(address="Flat 4, 12 Harbour Road, Bristol", postcode="BS1 4AA",
                          nation=Nation.ENGLAND_AND_WALES),
        summary="Damp and mould in the bedroom reported three times since March; no repair booked.",
        desired_outcome="Repair the leak and treat the mould.",
    )
    data.update(overrides)
    return FileComplaint(**data)


STAGE1_RESPONSE = StageResponse(decision="partly_upheld", reasons="The repair was booked late.",
                                remedy="Repair within 10 days; GBP 50 for the delay.", by="Priya Shah")
SURVEY_ANSWER = SurveyResponse(satisfied=True, score=8, comments="Sorted in the end.")


@dataclass
class Case:
    reference: str
    answer_survey: bool
    responded: bool = False
    surveyed: bool = False

    @property
    def workflow_id(self) -> str:
        return workflow_id(self.reference)


@dataclass
class Driver:
    client: Client
    task_queue: str
    cases: dict[str, Case] = field(default_factory=dict)
    calls_retried: int = 0

    def __post_init__(self) -> None:
        self._limit = asyncio.Semaphore(16)  # calls in flight: enough to keep up, not a stampede

    async def file(self, n: int, *, answer_every: int = 2, **overrides: Any) -> list[str]:
        """Start n cases; every `answer_every`-th answers its survey, the others let the window pass."""
        prefix = f"F{uuid.uuid4().hex[:6].upper()}"
        refs = [f"{prefix}-{i:04d}" for i in range(n)]
        for i, ref in enumerate(refs):
            self.cases[ref] = Case(ref, answer_survey=i % answer_every == 0)
        # Received now on the server's clock, which this process's need not share (tests/clock.py).
        ahead = await server_now(self.client) - datetime.now(UTC)

        async def start(ref: str) -> None:
            async with self._limit:
                received = (datetime.now(UTC) + ahead).astimezone(LONDON)
                await self.client.start_workflow(WORKFLOW_TYPE, complaint(ref, **{"received_at": received, **overrides}),
                                                 id=workflow_id(ref), task_queue=self.task_queue)
        await asyncio.gather(*(start(r) for r in refs))
        return refs

    async def _refs(self, query: str) -> list[str]:
        out = []
        async for wf in self.client.list_workflows(f"TaskQueue = '{self.task_queue}' AND {query}"):
            out.append(wf.id.removeprefix("complaint-"))
        return out

    async def count(self, query: str) -> int:
        return (await self.client.count_workflows(f"TaskQueue = '{self.task_queue}' AND {query}")).count

    async def respond(self, case: Case) -> None:
        async with self._limit:
            handle = self.client.get_workflow_handle(case.workflow_id)
            try:
                await handle.execute_update(Update.SUBMIT_STAGE1_RESPONSE.value, STAGE1_RESPONSE,
                                            id="stage1-response", result_type=UpdateResult, rpc_timeout=RPC)
                case.responded = True
            except WorkflowUpdateFailedError as err:
                # Refused by the validator: only "already submitted" means our earlier call went through.
                if "already been submitted" in str(err.cause):
                    case.responded = True
                else:
                    self.calls_retried += 1
            except Exception:  # RPC timeout or unavailable while a worker or the server is down
                self.calls_retried += 1

    async def answer_survey(self, case: Case) -> None:
        async with self._limit:
            handle = self.client.get_workflow_handle(case.workflow_id)
            try:
                status = await handle.query(Query.STATUS.value, result_type=CaseStatus, rpc_timeout=RPC)
                # Closed is not enough: the survey letter goes out just after, and an answer before it
                # would be refused.
                if not any(d.key == "survey.answer" for d in status.deadlines):
                    return
                await handle.signal(Signal.SURVEY_RESPONSE.value, SURVEY_ANSWER, rpc_timeout=RPC)
                case.surveyed = True
            except Exception:
                self.calls_retried += 1

    async def drive(self, timeout: float) -> None:
        """Answer every case at each stage until all have completed, or fail saying where they are."""
        end = time.monotonic() + timeout
        n = len(self.cases)
        while True:
            investigating = await self._refs("ExecutionStatus = 'Running' AND ComplaintStatus = 'investigating'")
            due = [self.cases[r] for r in investigating if r in self.cases and not self.cases[r].responded]
            closed = await self._refs("ExecutionStatus = 'Running' AND ComplaintStage = 'closed'")
            surveys = [self.cases[r] for r in closed
                       if r in self.cases and self.cases[r].answer_survey and not self.cases[r].surveyed]
            await asyncio.gather(*(self.respond(c) for c in due), *(self.answer_survey(c) for c in surveys))
            # A run that continued as new is one of a long case's runs, not an end (docs/history-limits.md).
            bad = await self.count("ExecutionStatus != 'Running' AND ExecutionStatus != 'Completed' "
                                   "AND ExecutionStatus != 'ContinuedAsNew'")
            if bad:
                raise AssertionError(f"{bad} case(s) ended without completing (failed, terminated or timed out)")
            if await self.count("ExecutionStatus = 'Completed'") >= n:
                return
            if time.monotonic() > end:
                raise AssertionError(f"not all {n} cases completed within {timeout:.0f} s: {await self.where()}")
            await asyncio.sleep(0.5)

    async def where(self) -> dict[str, int]:
        """Running cases counted by stage/status, for a failure message."""
        seen: Counter[str] = Counter()
        async for wf in self.client.list_workflows(f"TaskQueue = '{self.task_queue}' AND ExecutionStatus = 'Running'"):
            sa = {k: v for k, v in wf.search_attributes.items()}
            seen[f"{(sa.get('ComplaintStage') or ['?'])[0]}/{(sa.get('ComplaintStatus') or ['?'])[0]}"] += 1
        return dict(seen)


@dataclass
class Figures:
    cases: int
    completed: int
    kills: int = 0
    max_letters_per_kind: int = 0
    letters_missing: int = 0
    events_lost: int = 0
    events_doubled: int = 0
    rows_extra: int = 0
    task_failures: Counter[str] = field(default_factory=Counter)
    # Histories today's code cannot replay: a worker that restarts would fail those cases' tasks for good.
    replay_failures: list[str] = field(default_factory=list)
    activity_retries: int = 0
    max_history_events: int = 0
    duration_s: float = 0.0

    @property
    def harmful_task_failures(self) -> int:
        benign = {WorkflowTaskFailedCause.Name(c) for c in BENIGN_TASK_FAILURES}
        return sum(n for cause, n in self.task_failures.items() if cause not in benign)

    def line(self, what: str) -> str:
        return (f"FAULT FIGURES [{what}] cases run {self.cases}, completed {self.completed}, kills {self.kills}, "
                f"max letters per (case, kind) {self.max_letters_per_kind}, letters missing {self.letters_missing}, "
                f"events lost {self.events_lost}, events doubled {self.events_doubled}, extra rows {self.rows_extra}, "
                f"workflow task failures {dict(self.task_failures) or 0}, replay failures {len(self.replay_failures)}, "
                f"activity retries {self.activity_retries}, "
                f"longest history {self.max_history_events} events, duration {self.duration_s:.0f} s")


def _logical_key(e: CaseEvent | asyncpg.Record) -> tuple[Any, ...]:
    detail = e["detail"] if isinstance(e, asyncpg.Record) else e.detail
    kind = e["kind"] if isinstance(e, asyncpg.Record) else e.kind
    return (kind, detail.get("deadline"), detail.get("letter_key"))


async def check_cases(client: Client, database_url: str, refs: list[str], *, letters: set[str] | None = None,
                      events: set[tuple[str, str | None]] | None = None) -> Figures:
    """Everything the record and the histories say about these cases, as figures (asserted by the caller)."""
    letters = LIFECYCLE_LETTERS if letters is None else letters
    events = LIFECYCLE_EVENTS if events is None else events
    conn = await asyncpg.connect(database_url)
    try:
        await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
        letter_rows = await conn.fetch(
            "SELECT reference, kind, count(*) AS n FROM correspondence WHERE reference = ANY($1) GROUP BY 1, 2", refs)
        rows = await conn.fetch("SELECT reference, seq, kind, detail FROM timeline WHERE reference = ANY($1)"
                                " ORDER BY reference, seq", refs)
    finally:
        await conn.close()
    figures = Figures(cases=len(refs), completed=0)
    figures.max_letters_per_kind = max((r["n"] for r in letter_rows), default=0)
    kinds_by_case: dict[str, set[str]] = {}
    for r in letter_rows:
        kinds_by_case.setdefault(r["reference"], set()).add(r["kind"])
    figures.letters_missing = sum(len(letters - kinds_by_case.get(ref, set())) for ref in refs)
    stored: dict[str, list[asyncpg.Record]] = {}
    for r in rows:
        stored.setdefault(r["reference"], []).append(r)

    limit = asyncio.Semaphore(8)

    async def one(ref: str) -> None:
        async with limit:
            handle = client.get_workflow_handle(workflow_id(ref))
            desc = await handle.describe()
            if desc.status is not None and desc.status.name == "COMPLETED":
                figures.completed += 1
            history = await handle.fetch_history()
            replay = await Replayer(workflows=[ComplaintWorkflow], data_converter=client.data_converter
                                    ).replay_workflow(history, raise_on_replay_failure=False)
            if replay.replay_failure is not None:
                figures.replay_failures.append(f"{ref}: {str(replay.replay_failure)[:300]}")
                timeline: list[CaseEvent] = []  # the query would replay too, and fail the same way
            else:
                # The workflow's own timeline (the query replays a closed case on the worker): the truth
                # the case record must match, row for row.
                try:
                    timeline = await handle.query(Query.TIMELINE.value, result_type=list[CaseEvent],
                                                  rpc_timeout=timedelta(seconds=60))
                except WorkflowQueryFailedError as err:  # the worker's code cannot replay it: same verdict
                    figures.replay_failures.append(f"{ref} (on the worker): {str(err)[:300]}")
                    timeline = []
            mine = stored.get(ref, [])
            if not timeline:  # still: the stored seqs run 1..n, each once
                figures.events_lost += sum(1 for i, r in enumerate(mine, 1) if r["seq"] != i)
            seqs = {r["seq"]: r for r in mine}
            for e in timeline:
                row = seqs.get(e.seq)
                if row is None or row["kind"] != e.kind:
                    figures.events_lost += 1
            figures.rows_extra += sum(1 for s in seqs if s > len(timeline))
            keys = Counter(_logical_key(r) for r in mine if r["kind"] != "signal_refused")
            figures.events_doubled += sum(n - 1 for n in keys.values() if n > 1)
            have = {(k, d) for (k, d, _) in keys}
            figures.events_lost += len(events - have)
            figures.max_history_events = max(figures.max_history_events, len(history.events))
            for ev in history.events:
                if ev.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                    cause = WorkflowTaskFailedCause.Name(ev.workflow_task_failed_event_attributes.cause)
                    figures.task_failures[cause] += 1
                elif ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                    figures.activity_retries += ev.activity_task_started_event_attributes.attempt - 1

    await asyncio.gather(*(one(r) for r in refs))
    return figures
