"""Logs and metrics on the real stack: a worker built like the production one (build_worker, with
its log-context interceptor and a metrics Runtime) runs a short Stage 1 case on the time-skipping
server; we read what it logged and scrape what it counted.

The case: filed Monday 1 March 2027 10:00 (England). Acknowledged at once; response due 10 working
days later, Monday 15 March; extended by 5 working days to Monday 22 March; missed (a breach);
answered on 24 March; the 20-working-day escalation window passes; closed; survey sent.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from activities import metrics
from activities.case_record import CaseRecordActivities
from domain import logs
from domain.case import CaseEvent, Stage, Status
from domain.contract import Signal, workflow_id
from domain.records import CaseSnapshot, EventBatch, LetterRequest, RegisterComplaint
from tests.conftest import CONVERTER
from tests.support import as_case, complaint, london, new_reference, skip_to, start, wait_for
from worker import build_worker
from workflows.complaint import ComplaintWorkflow

RESPONSE = {"decision": "not_upheld", "reasons": "The repair was done within our published timescale.",
            "points_addressed": ["Repair delay"], "by": "Priya Shah"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample on http://127.0.0.1:port/metrics, keyed by (name, sorted labels)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def moved(before: dict, after: dict) -> dict[tuple[str, tuple], float]:
    """The product counters that changed, by how much (other tests in the session share the registry)."""
    return {k: v - before.get(k, 0.0) for k, v in after.items()
            if k[0].endswith("_total") and v != before.get(k, 0.0)}


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """The production log configuration (JSON), writing to a buffer; the previous set-up is restored."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, structlog.get_config())
    buf = io.StringIO()
    logs.configure("INFO", json=True, stream=buf)
    yield buf
    root.handlers[:], level, config = saved
    root.setLevel(level)
    structlog.configure(**config)


def lines(buf: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]


async def test_a_case_logs_with_its_context_once_and_counts_what_it_wrote(
    time_env: WorkflowEnvironment, pool: asyncpg.Pool, captured_logs: io.StringIO
) -> None:
    ref = new_reference()
    queue = f"q-{ref}"
    product_port, sdk_port = free_port(), free_port()
    server = metrics.serve(product_port, addr="127.0.0.1")
    # The worker's client is made with the metrics Runtime, as worker.run_worker does.
    client = await Client.connect(time_env.client.service_client.config.target_host,
                                  namespace=time_env.client.namespace, data_converter=CONVERTER,
                                  runtime=metrics.sdk_runtime(sdk_port, host="127.0.0.1"))
    before = scrape(product_port)
    activities = CaseRecordActivities(pool)
    try:
        received = london(2027, 3, 1, 10, 0)
        await skip_to(time_env, received)
        # max_cached_workflows=0: every workflow task replays the whole history from the start, so any
        # log line emitted during replay would show up many times over.
        async with build_worker(client, activities, queue, max_cached_workflows=0):
            handle = await start(time_env, complaint(ref, received), queue)
            await wait_for(handle, lambda s: s.status is Status.INVESTIGATING, "acknowledgement")
            await handle.signal(Signal.EXTEND_DEADLINE.value,
                                {"working_days": 5, "reason": "Waiting for the surveyor's damp report"})
            await wait_for(handle, lambda s: len(s.extensions) == 1, "extension")
            await skip_to(time_env, london(2027, 3, 23, 12))
            await wait_for(handle, lambda s: len(s.breaches) == 1, "breach")
        # A new worker process picks the case up from history.
        async with build_worker(client, activities, queue, max_cached_workflows=0):
            await skip_to(time_env, london(2027, 3, 24, 12))
            await handle.execute_update("submit_stage1_response", RESPONSE)
            await wait_for(handle, lambda s: s.status is Status.RESPONDED, "response letter")
            await skip_to(time_env, london(2027, 5, 10, 12))
            await wait_for(handle, lambda s: s.stage is Stage.CLOSED, "closure")
            await handle.signal(Signal.SURVEY_RESPONSE.value, {"satisfied": True, "score": 8})
            await handle.result()
        after = scrape(product_port)
        sdk = scrape(sdk_port)
    finally:
        server.shutdown()
        server.server_close()

    # -- metrics: each counter moved exactly as many times as rows were written ------------------
    letters = {r["kind"]: r["n"] for r in await pool.fetch(
        "SELECT kind, count(*) AS n FROM correspondence WHERE reference=$1 GROUP BY kind", ref)}
    assert letters == {"acknowledgement": 1, "extension": 1, "stage1_response": 1, "survey": 1}
    assert await pool.fetchval("SELECT count(*) FROM extensions WHERE reference=$1", ref) == 1
    assert await pool.fetchval("SELECT count(*) FROM breaches WHERE reference=$1", ref) == 1
    expected = {("letters_sent_total", (("kind", k),)): float(n) for k, n in letters.items()}
    expected |= {
        ("complaints_filed_total", (("policy", "hos-code-2024"),)): 1.0,
        ("extensions_total", (("stage", "stage-1"),)): 1.0,
        ("deadline_breaches_total", (("deadline", "stage1.response"), ("stage", "stage-1"))): 1.0,
    }
    assert moved(before, after) == expected
    # The SDK's own runtime metrics, on the adjacent endpoint.
    completed = [v for (name, _), v in sdk.items() if name == "temporal_workflow_completed_total"]
    assert completed and sum(completed) >= 1, sorted({name for name, _ in sdk})
    assert any(name.startswith("temporal_activity_execution") for name, _ in sdk)

    # -- logs: context on every line, workflow lines once each -------------------------------------
    out = lines(captured_logs)
    wf_id = workflow_id(ref)
    wf_lines = [x for x in out if x.get("logger") == "temporalio.workflow" and x.get("reference") == ref]
    act_lines = [x for x in out if x.get("logger") == "complaints.activities" and x.get("reference") == ref]
    assert wf_lines and act_lines
    for x in wf_lines:
        assert x["workflow_id"] == wf_id and x["stage"] in {"stage-1", "closed"}, x
    for x in act_lines:  # stage where the activity's input says it (a staff notification does not)
        assert x["workflow_id"] == wf_id and (x["activity"] == "notify_staff" or x["stage"] in {"stage-1", "closed"})
    letter_line = next(x for x in act_lines if x["event"] == "letter sent" and x["kind"] == "stage1_response")
    assert (letter_line["stage"], letter_line["activity"]) == ("stage-1", "send_letter")
    registered = next(x for x in act_lines if x["event"] == "complaint registered")
    assert registered["stage"] == "stage-1"
    # Not appended to the message: the workflow info is in fields.
    assert all(x["event"].startswith("case event: ") and "{" not in x["event"] for x in wf_lines)
    # One workflow line per timeline event, however many times the history was replayed.
    timeline = Counter(r["kind"] for r in await pool.fetch("SELECT kind FROM timeline WHERE reference=$1", ref))
    assert Counter(x["case_event"] for x in wf_lines) == timeline

    # Logs never carry personal data: nothing the resident told us appears in any line of the lifecycle.
    c = complaint(ref, received)
    personal = [c.resident.name, c.resident.address, c.resident.email, c.property.address, c.summary,
                c.desired_outcome, *c.resident.name.split()]
    text = captured_logs.getvalue()
    assert text.count("\n") > 20, "the lifecycle logged almost nothing: the check below would prove nothing"
    leaked = [p for p in personal if p and p in text]
    assert leaked == [], f"personal data in the worker's log: {leaked}"

    # Replaying the finished history (as a worker recovering it would) logs nothing more.
    seen = len(captured_logs.getvalue())
    history = await time_env.client.get_workflow_handle(wf_id).fetch_history()
    await Replayer(workflows=[ComplaintWorkflow], data_converter=CONVERTER).replay_workflow(history)
    replayed = [x for x in lines(io.StringIO(captured_logs.getvalue()[seen:]))
                if x.get("logger") == "temporalio.workflow"]
    assert replayed == []


async def test_retried_activities_count_nothing_twice(pool: asyncpg.Pool) -> None:
    """The same letter sent twice (a retry after a lost reply) is one row and one count."""
    ref = new_reference()
    env = as_case(ref)
    acts = CaseRecordActivities(pool)
    c = complaint(ref, london(2026, 3, 2))
    reg = RegisterComplaint(complaint=c, workflow_id=workflow_id(ref), policy_id="optivo", policy_version="1",
                            landlord="Optivo")
    letter = LetterRequest(reference=ref, letter_key="ic.1", kind="involved_customer_invitation",
                           stage=Stage.STAGE2, recipient_name="Joan Baker", recipient_address="1 Road",
                           fields={"signed_by": "Alan Reid", "landlord": "Optivo"})
    before = {k: v for k, v in scrape_registry().items()}
    for _ in range(2):
        await env.run(acts.register_complaint, reg)
        first = await env.run(acts.send_letter, letter)
    again = await env.run(acts.send_letter, letter)
    # A batch re-sent after its reply was lost: the extension and the breach are counted once.
    at = london(2026, 3, 10)
    batch = EventBatch(reference=ref, case=CaseSnapshot(stage=Stage.STAGE1, status=Status.INVESTIGATING), deadlines=[],
                       events=[
        CaseEvent(seq=1, at=at, kind="deadline_extended", stage=Stage.STAGE1, summary="extended", detail={
            "deadline": "stage1.response", "working_days": 5, "reason": "survey", "exceptional": False,
            "old_due_date": "2026-03-16", "new_due_date": "2026-03-23"}),
        CaseEvent(seq=2, at=at, kind="deadline_breached", stage=Stage.STAGE1, summary="missed", detail={
            "deadline": "stage1.acknowledgement", "label": "Acknowledgement", "due_date": "2026-03-09"}),
    ])
    assert [await env.run(acts.record_events, batch) for _ in range(2)] == [2, 0]
    assert again.letter_id == first.letter_id
    other = await env.run(acts.send_letter, letter.model_copy(update={"letter_key": "ic.2"}))
    assert other.letter_id != first.letter_id
    assert await pool.fetchval("SELECT count(*) FROM correspondence WHERE reference=$1", ref) == 2
    assert moved(before, scrape_registry()) == {
        ("complaints_filed_total", (("policy", "optivo"),)): 1.0,
        ("letters_sent_total", (("kind", "involved_customer_invitation"),)): 2.0,
        ("extensions_total", (("stage", "stage-1"),)): 1.0,
        ("deadline_breaches_total", (("deadline", "stage1.acknowledgement"), ("stage", "stage-1"))): 1.0,
    }


def scrape_registry() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The same samples the endpoint serves, read straight from the registry (no port needed)."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in metrics.REGISTRY.collect() for s in family.samples}


def test_log_level_and_format_come_from_the_environment(captured_logs: io.StringIO) -> None:
    assert logs.from_env({}) == ("INFO", None)  # None: JSON unless stderr is a terminal
    assert logs.from_env({"COMPLAINTS_LOG_LEVEL": "debug", "COMPLAINTS_LOG_FORMAT": "json"}) == ("DEBUG", True)
    assert logs.from_env({"COMPLAINTS_LOG_FORMAT": "console"}) == ("INFO", False)
    for bad in ({"COMPLAINTS_LOG_LEVEL": "LOUD"}, {"COMPLAINTS_LOG_FORMAT": "xml"}):
        with pytest.raises(logs.LogConfigError):
            logs.from_env(bad)
    # Forced console output is for people, not JSON; the level filters.
    buf = io.StringIO()
    logs.configure("WARNING", json=False, stream=buf)
    structlog.get_logger("complaints.test").info("hidden")
    structlog.get_logger("complaints.test").warning("shown", reference="CMP-1")
    out = buf.getvalue()
    assert "hidden" not in out and "shown" in out and "reference" in out and not out.lstrip().startswith("{")
