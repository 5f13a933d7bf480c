"""Retention: the sweep removes a closed case's personal data once its policy's retention period has
ended, everywhere in the case record, and nothing else; the reports' figures do not change; a
second sweep does nothing. The schedule is created, updated and described on the dev server.

The case record is written by the real activities (activities/case_record.py) run in an
ActivityEnvironment, so its rows have exactly the shapes the complaint workflow gives them; the
sweep itself runs as RetentionWorkflow on the time-skipping server, whose clock starts at the real
now, so "closed seven years ago" is measured by workflow.now() as in production.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.client import ScheduleActionStartWorkflow, ScheduleOverlapPolicy
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities import reports
from activities.case_record import CaseRecordActivities
from activities.retention import REMOVED, RetentionActivities, scrub_event, scrub_text
from domain.calendar import LONDON, DeadlineUnit, Nation
from domain.case import CaseEvent, Deadline, DeadlineKind, Extension, Stage, Status
from domain.contract import Channel, FileComplaint, Property, Resident
from domain.records import (
    CaseSnapshot,
    EventBatch,
    InviteInvolvedCustomer,
    LetterRequest,
    Notification,
    RegisterComplaint,
)
from tests.support import as_case
from workflows.retention import SCHEDULE_ID, RemoveBatch, RetentionSweep, RetentionWorkflow, SweepResult

ROOT = Path(__file__).resolve().parent.parent
# "Now" for the tests that sweep by this process's clock and PostgreSQL's (which agree); a sweep on the
# time-skipping server counts from the server's clock instead (its start is pinned: tests/clock.py).
NOW = datetime.now(LONDON).replace(microsecond=0)


def years_ago(years: int, days: int = 0, now: datetime = NOW) -> datetime:
    return now.replace(year=now.year - years, day=min(now.day, 28)) - timedelta(days=days)


class Person:
    def __init__(self, name: str, address: str, email: str, phone: str, summary: str, outcome: str) -> None:
        self.name, self.address, self.email, self.phone = name, address, email, phone
        self.summary, self.outcome = summary, outcome

    @property
    def needles(self) -> list[str]:
        """What must be gone from the whole database once the case's personal data is removed."""
        return [self.name, self.name.split()[-1], self.address, self.email, self.phone, self.summary,
                self.outcome]


OLD = Person("Maria Jones", "Flat 4, 12 Harbour Road, Bristol BS1 4AA", "maria.jones@example.org", "07700 900123",
             "Damp and mould in the bedroom reported three times since March; no repair booked.",
             "Repair the leak and treat the mould; compensation for the carpet.")
MID = Person("Brian Okonkwo", "27 Larch Close, Leeds LS6 2QT", "b.okonkwo@example.net", "07700 900456",
             "The communal heating has failed every winter since the boiler was replaced in 2019.",
             "A working heating system and a rent rebate for the cold months.")
OPEN = Person("Siobhan Gallagher", "3 Weavers Row, Salford M5 4WT", "siobhan.g@example.com", "07700 900789",
              "Repeated antisocial noise from the flat above has been ignored by the housing officer.",
              "Action on the noise and an apology from the housing officer.")
# Two more cases past retention (one under another policy), to page through batches, and one whose
# policy file no longer exists: its retention period is unknown, so it is kept.
EXTRA_OLD = [
    Person("Dev Raman", "9 Quay Street, Hull HU1 1AA", "dev.raman@example.org", "07700 900111",
           "Broken front door lock left for six weeks after the break-in.", "A new lock fitted at once."),
    Person("Ewa Nowak", "88 Tanner Lane, Derby DE1 3AB", "ewa.nowak@example.org", "07700 900222",
           "Rent account wrongly shows arrears after the payment in January.", "Correct the rent account."),
]
RETIRED = Person("Tariq Aziz", "5 Mill Yard, Wigan WN1 2AA", "tariq.aziz@example.org", "07700 900333",
                 "Garden fence blown down in storm and never replaced by the landlord.", "Replace the fence.")


# -- writing cases the way the workflow does --------------------------------------------------
def event(seq: int, at: datetime, kind: str, summary: str, *, actor: str = "system", stage: Stage = Stage.STAGE1,
          detail: dict[str, Any] | None = None) -> CaseEvent:
    return CaseEvent(seq=seq, at=at, kind=kind, stage=stage, actor=actor, summary=summary, detail=detail or {})


def deadline(key: str, label: str, trigger_at: datetime, due: date, *, met_at: datetime | None,
             extended_by: int = 0, original: date | None = None) -> Deadline:
    return Deadline(key=key, label=label, stage=Stage.STAGE1, kind=DeadlineKind.DUTY, length=10,
                    unit=DeadlineUnit.WORKING_DAYS, trigger_at=trigger_at, original_due_date=original or due,
                    due_date=due, due_at=datetime.combine(due + timedelta(days=1), datetime.min.time(), LONDON),
                    extended_by=extended_by, met_at=met_at)


async def write_case(acts: CaseRecordActivities, ref: str, p: Person, received: datetime, *, closed: bool,
                     policy: str = "hos-code-2024", landlord: str = "Northgate Homes", breach: bool = False) -> None:
    env = as_case(ref)
    c = FileComplaint(reference=ref, policy="hos-code-2024", received_at=received, channel=Channel.PHONE,
                      resident=Resident(name=p.name, address=p.address, email=p.email, phone=p.phone),
                      property=Property(address=p.address, postcode=p.address.rsplit(" ", 2)[-2] + " "
                                        + p.address.rsplit(" ", 1)[-1], nation=Nation.ENGLAND_AND_WALES),
                      summary=p.summary, desired_outcome=p.outcome)
    await env.run(acts.register_complaint, RegisterComplaint(complaint=c, workflow_id=f"complaint-{ref}",
                                                             policy_id=policy, policy_version="1", landlord=landlord))
    d = received.date()
    ack_at, contact_at, ext_at = received + timedelta(days=3), received + timedelta(days=5), received + timedelta(days=8)
    responded_at, closed_at = received + timedelta(days=20), received + timedelta(days=40)
    ack_due, resp_due, resp_new = d + timedelta(days=7), d + timedelta(days=14), d + timedelta(days=21)
    ext = Extension(deadline="stage1.response", working_days=5, reason=f"The surveyor must visit {p.name} at "
                    f"{p.address} first", exceptional=False, old_due_date=resp_due, new_due_date=resp_new, at=ext_at)
    events = [
        event(1, received, "filed", f"Complaint filed (phone) under {policy}@1", actor="resident",
              detail={"policy": f"{policy}@1", "channel": "phone"}),
        event(2, received, "handler_appointed", "Priya Shah appointed to handle the complaint",
              detail={"staff_id": "S-CH-01", "role": "case_handler"}),
        event(3, received, "deadline_set", f"Acknowledgement due by {ack_due}",
              detail={"deadline": "stage1.acknowledgement", "due_date": ack_due.isoformat(), "kind": "duty",
                      "length": 5, "unit": "working_days", "trigger": "received"}),
        event(4, ack_at, "acknowledged", "Complaint acknowledged in writing",
              detail={"deadline": "stage1.acknowledgement", "due_date": ack_due.isoformat(), "on_time": not breach}),
        event(5, ack_at, "contact_recorded", "Inbound phone contact (general)", actor=p.name,
              detail={"at": contact_at.isoformat(), "channel": "phone", "direction": "inbound", "by": p.name,
                      "notes": f"{p.name} rang from {p.phone}: {p.summary}", "kind": "general"}),
        event(6, ext_at, "deadline_extended", f"Stage 1 response extended by 5 working days to {resp_new}",
              actor="Tom Evans", detail=ext.model_dump(mode="json") | {"deadline": "stage1.response"}),
        event(7, ext_at, "signal_refused", f"Refused request_review: {p.name} asked too early",
              detail={"message": "request_review", "reason": f"{p.name} asked too early"}),
    ]
    if breach:
        events.append(event(8, ack_at, "deadline_breached", f"Acknowledgement missed: it was due by {ack_due}",
                            detail={"deadline": "stage1.acknowledgement", "label": "Acknowledgement",
                                    "due_date": ack_due.isoformat()}))
    deadlines = [deadline("stage1.acknowledgement", "Acknowledgement", received, ack_due, met_at=ack_at)]
    if closed:
        n = len(events)
        events += [
            event(n + 1, responded_at, "stage1_responded", "Stage 1 response sent: Partly upheld", actor="Tom Evans",
                  detail={"deadline": "stage1.response", "due_date": resp_new.isoformat(), "on_time": True}),
            event(n + 2, closed_at, "survey_answered", "Satisfaction survey answered: 7/10", actor="resident",
                  stage=Stage.CLOSED, detail={"satisfied": True, "score": 7, "comments": f"Thanks from {p.name}"}),
            event(n + 3, closed_at, "closed", "Case closed", stage=Stage.CLOSED),
        ]
        deadlines.append(deadline("stage1.response", "Stage 1 response", ack_at, resp_new, met_at=responded_at,
                                  extended_by=5, original=resp_due))
    else:
        deadlines.append(deadline("stage1.response", "Stage 1 response", ack_at, resp_new, met_at=None,
                                  extended_by=5, original=resp_due))
    snapshot = CaseSnapshot(stage=Stage.CLOSED if closed else Stage.STAGE1,
                            status=Status.CLOSED if closed else Status.INVESTIGATING, handler_id="S-CH-01",
                            closed_at=closed_at if closed else None)
    await env.run(acts.record_events, EventBatch(reference=ref, events=events, case=snapshot, deadlines=deadlines))
    ack_fields = {"received_on": d.isoformat(), "summary": p.summary, "desired_outcome": p.outcome,
                  "handler": "Priya Shah", "response_due": resp_due.isoformat(), "landlord": landlord}
    await env.run(acts.send_letter, LetterRequest(
        reference=ref, letter_key="stage1.acknowledgement", kind="acknowledgement", stage=Stage.STAGE1,
        recipient_name=p.name, recipient_address=p.address, recipient_email=p.email, fields=ack_fields))
    await env.run(acts.notify_staff, Notification(reference=ref, key="s1.reminder", role="handler",
                                                  staff_id="S-CH-01", kind="reminder",
                                                  message=f"Call {p.name} on {p.phone} about {ref}"))
    await env.run(acts.invite_involved_customer, InviteInvolvedCustomer(reference=ref, landlord=landlord))


async def text_hits(pool: asyncpg.Pool, needles: list[str]) -> dict[str, dict[str, int]]:
    """{needle: {table.column: rows containing it}} over every text and jsonb column of every table."""
    cols = await pool.fetch(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
        " AND data_type IN ('text', 'jsonb', 'character varying') ORDER BY 1, 2"
    )
    hits: dict[str, dict[str, int]] = {}
    for needle in needles:
        found: dict[str, int] = {}
        for c in cols:
            n = await pool.fetchval(
                f'SELECT count(*) FROM "{c["table_name"]}" WHERE "{c["column_name"]}"::text ILIKE $1',
                "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",
            )
            if n:
                found[f"{c['table_name']}.{c['column_name']}"] = n
        hits[needle] = found
    return hits


async def figures(pool: asyncpg.Pool, now: datetime) -> list[dict[str, Any]]:
    """TSM CH01/CH02 and the annual report's figures for every year the cases touch."""
    out = []
    for year in sorted({now.year - 8, now.year - 7, now.year - 6, now.year - 5, now.year - 4}):
        for financial in (False, True):
            period = reports.Period.of(year, financial=financial)
            out.append(asdict(await reports.tsm(pool, period, homes=1000)))
            out.append(asdict(await reports.annual(pool, period, homes=1000)))
    return out


async def test_a_sweep_removes_exactly_the_expired_cases_personal_data(time_env: WorkflowEnvironment,
                                                                       pool: asyncpg.Pool) -> None:
    acts = CaseRecordActivities(pool)
    now = (await time_env.get_current_time()).astimezone(LONDON).replace(microsecond=0)  # the sweep's clock
    tag = uuid.uuid4().hex[:6].upper()
    old, mid, opened = f"RET-{tag}-A", f"RET-{tag}-B", f"RET-{tag}-C"
    extra = [f"RET-{tag}-D", f"RET-{tag}-E"]
    retired = f"RET-{tag}-F"
    # Closed 7 years ago: past the six years of every policy. Closed 5 years ago: not yet.
    await write_case(acts, old, OLD, years_ago(7, 40, now), closed=True, breach=True)
    await write_case(acts, mid, MID, years_ago(5, 40, now), closed=True)
    await write_case(acts, opened, OPEN, years_ago(8, now=now), closed=False)  # old, but never closed
    await write_case(acts, extra[0], EXTRA_OLD[0], years_ago(7, 80, now), closed=True, policy="optivo",
                     landlord="Optivo")
    await write_case(acts, extra[1], EXTRA_OLD[1], years_ago(9, now=now), closed=True, policy="connexus",
                     landlord="Connexus")
    await write_case(acts, retired, RETIRED, years_ago(10, now=now), closed=True, policy="retired-policy")
    removed_people = [OLD, *EXTRA_OLD]
    kept_people = [MID, OPEN, RETIRED]
    all_needles = [n for p in removed_people + kept_people for n in p.needles]

    before_hits = await text_hits(pool, all_needles)
    for p in removed_people + kept_people:  # the data is really there to begin with, in many places
        assert {"complaints.resident_name", "correspondence.body", "contacts.notes", "timeline.detail",
                "notifications.message"} <= set(before_hits[p.name]), before_hits[p.name]
    before_figures = await figures(pool, now)
    assert any(f["stage1"]["responded"] for f in before_figures if "stage1" in f)

    # Nothing in a sweep waits on a timer; left on, the test server's clock would jump years ahead
    # between runs, and the second sweep would find the five-year-old case expired too.
    with time_env.auto_time_skipping_disabled():
        await sweep_twice(time_env, pool, now, tag, old, mid, extra, removed_people, kept_people, all_needles,
                          before_hits, before_figures)


async def sweep_twice(time_env: WorkflowEnvironment, pool: asyncpg.Pool, now: datetime, tag: str, old: str, mid: str,
                      extra: list[str], removed_people: list[Person], kept_people: list[Person],
                      all_needles: list[str], before_hits: dict[str, dict[str, int]],
                      before_figures: list[dict[str, Any]]) -> None:
    queue = f"retention-{tag}"
    async with Worker(time_env.client, task_queue=queue, workflows=[RetentionWorkflow],
                      activities=RetentionActivities(pool).all()):
        result: SweepResult = await time_env.client.execute_workflow(
            RetentionWorkflow.run, RetentionSweep(batch_size=2), id=f"retention-{tag}-1", task_queue=queue,
            result_type=SweepResult)
        assert sorted(result.removed) == sorted([old, *extra]) and result.removed_count == 3
        assert abs(result.as_of - now) < timedelta(minutes=5)  # as_of defaults to now, the server's
        assert result.skipped_unknown_policy == ["retired-policy"]

        after_hits = await text_hits(pool, all_needles)
        for p in removed_people:
            for needle in p.needles:
                assert after_hits[needle] == {}, (needle, after_hits[needle])
        for p in kept_people:
            for needle in p.needles:
                assert after_hits[needle] == before_hits[needle], (needle, before_hits[needle], after_hits[needle])

        # The anonymous figures are exactly what they were.
        assert await figures(pool, now) == before_figures

        # What is kept of the removed case, and the event that says what happened.
        row = await pool.fetchrow("SELECT * FROM complaints WHERE reference = $1", old)
        assert row["resident_name"] == "[removed]" and row["resident_address"] is None
        assert row["postcode"] is None and row["personal_data_removed_at"] is not None
        assert (row["stage"], row["status"], row["received_at"], row["landlord"]) == (
            "closed", "closed", years_ago(7, 40, now), "Northgate Homes")
        letter = await pool.fetchrow("SELECT * FROM correspondence WHERE reference = $1", old)
        assert (letter["body"], letter["recipient"], letter["address"]) == (REMOVED, REMOVED, REMOVED)
        assert letter["kind"] == "acknowledgement" and old in letter["subject"]
        assert await pool.fetchval("SELECT count(*) FROM involvements WHERE reference = $1", old) == 0
        assert await pool.fetchval("SELECT count(*) FROM involvements WHERE reference = $1", mid) == 1
        contact = await pool.fetchrow("SELECT * FROM contacts WHERE reference = $1", old)
        assert (contact["notes"], contact["made_by"], contact["channel"], contact["direction"]) == (
            "", "", "phone", "inbound")
        ext = await pool.fetchrow("SELECT * FROM extensions WHERE reference = $1", old)
        assert ext["reason"] == REMOVED and ext["working_days"] == 5
        assert await pool.fetchval("SELECT count(*) FROM breaches WHERE reference = $1", old) == 1
        timeline = {r["kind"]: r for r in await pool.fetch("SELECT * FROM timeline WHERE reference = $1", old)}
        assert timeline["stage1_responded"]["summary"] == "Stage 1 response sent: Partly upheld"
        assert timeline["stage1_responded"]["actor"] == "[removed]"
        assert timeline["deadline_extended"]["detail"] == {
            "deadline": "stage1.response", "working_days": 5, "exceptional": False, "at": ANY_STR,
            "old_due_date": ANY_STR, "new_due_date": ANY_STR}
        assert timeline["survey_answered"]["detail"] == {"satisfied": True, "score": 7}
        assert "Priya Shah" not in timeline["handler_appointed"]["summary"]
        assert timeline["handler_appointed"]["detail"] == {"staff_id": "S-CH-01", "role": "case_handler"}
        removed_events = await pool.fetch(
            "SELECT * FROM timeline WHERE kind = 'personal_data_removed' ORDER BY reference")
        assert [e["reference"] for e in removed_events] == sorted([old, *extra])
        last_seq = await pool.fetchval("SELECT max(seq) FROM timeline WHERE reference = $1 AND kind <> $2",
                                       old, "personal_data_removed")
        e = next(e for e in removed_events if e["reference"] == old)
        assert e["seq"] == last_seq + 1 and e["stage"] == "closed"
        assert e["detail"]["retention_years"] == 6 and e["detail"]["policy"] == "hos-code-2024@1"

        # A second sweep finds nothing to do and writes nothing.
        snapshot = await pool.fetch("SELECT * FROM timeline ORDER BY reference, seq")
        again: SweepResult = await time_env.client.execute_workflow(
            RetentionWorkflow.run, RetentionSweep(), id=f"retention-{tag}-2", task_queue=queue,
            result_type=SweepResult)
        assert again.removed_count == 0 and again.removed == []
        assert await pool.fetch("SELECT * FROM timeline ORDER BY reference, seq") == snapshot
        assert await figures(pool, now) == before_figures


class _AnyStr:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str)


ANY_STR: Any = _AnyStr()


async def test_a_retried_batch_recognises_its_own_work_and_a_future_as_of_is_refused(pool: asyncpg.Pool) -> None:
    acts, ret = CaseRecordActivities(pool), RetentionActivities(pool)
    ref = f"RET-{uuid.uuid4().hex[:6].upper()}"
    await write_case(acts, ref, OLD, years_ago(7, 40), closed=True)
    env = ActivityEnvironment()
    # As of the day before its retention ends, nothing; as of now, the case.
    closed_at = await pool.fetchval("SELECT closed_at FROM complaints WHERE reference = $1", ref)
    early = closed_at.replace(year=closed_at.year + 6) - timedelta(seconds=1)
    batch = RemoveBatch(references=[ref], as_of=early, sweep_id="sweep/1")
    assert (await env.run(ret.remove_personal_data, batch)).removed == []
    batch = batch.model_copy(update={"as_of": NOW})
    first = await env.run(ret.remove_personal_data, batch)
    # The same call again (its first result lost): the same answer, no second event.
    second = await env.run(ret.remove_personal_data, batch)
    assert [c.reference for c in first.removed] == [c.reference for c in second.removed] == [ref]
    # Another sweep does not claim it.
    other = await env.run(ret.remove_personal_data, batch.model_copy(update={"sweep_id": "sweep/2"}))
    assert other.removed == []
    assert await pool.fetchval(
        "SELECT count(*) FROM timeline WHERE reference = $1 AND kind = 'personal_data_removed'", ref) == 1


def test_scrubbing_is_by_allowlist_and_whole_words() -> None:
    assert scrub_text("Channel: phone; Ann rang", ["Ann"]) == "Channel: phone; [removed] rang"
    summary, actor, detail = scrub_event(
        "some_new_kind", "Ann said something", "Ann", {"notes": "x", "deadline": "stage1.response",
                                                       "nested": {"a": 1}, "reasons": "Ann's"}, ["Ann"])
    assert summary == "Some new kind (details removed under retention policy)" and actor == "[removed]"
    assert detail == {"deadline": "stage1.response"}
    _, _, detail = scrub_event("panel_booked", "Review panel booked", "system",
                               {"panel_roles": ["chair", "Ann"], "sitting_id": 3}, ["Ann"])
    assert detail == {"panel_roles": ["chair", "[removed]"], "sitting_id": 3}


# -- the schedule, on the dev server -----------------------------------------------------------
def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "starter", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=60)


async def acli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The CLI in a thread, so that a worker in this test's event loop can serve what it starts."""
    return await asyncio.to_thread(cli, *args, env=env)


async def test_the_schedule_is_created_then_updated_and_described(dev_env: WorkflowEnvironment) -> None:
    queue = f"retention-{uuid.uuid4().hex[:6]}"
    env = {"TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
           "TEMPORAL_NAMESPACE": dev_env.client.namespace, "COMPLAINTS_TASK_QUEUE": queue}
    handle = dev_env.client.get_schedule_handle(SCHEDULE_ID)
    try:
        r = cli("retention", "status", env=env)
        assert r.returncode == 1 and "no schedule complaints-retention" in r.stderr, r

        r = cli("retention", "schedule", env=env)
        assert r.returncode == 0 and r.stdout.startswith("created schedule complaints-retention"), r
        d = await handle.describe()
        assert d.schedule.spec.time_zone_name == "Europe/London"
        cal = d.schedule.spec.calendars or []
        assert d.schedule.spec.cron_expressions == ["0 2 * * *"] or (
            [(c.hour[0].start, c.minute[0].start) for c in cal] == [(2, 0)]), d.schedule.spec

        r = cli("retention", "schedule", "--cron", "30 3 * * 1-5", "--json", env=env)
        assert r.returncode == 0 and json.loads(r.stdout)["result"] == "updated", r
        d = await handle.describe()
        action = d.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.workflow == "RetentionWorkflow" and action.task_queue == queue
        assert d.schedule.policy.overlap is ScheduleOverlapPolicy.SKIP
        spec = d.schedule.spec
        assert spec.cron_expressions == ["30 3 * * 1-5"] or (
            [(c.hour[0].start, c.minute[0].start) for c in spec.calendars] == [(3, 30)]), spec
        assert d.schedule.state.note == "cron '30 3 * * 1-5' (Europe/London)"

        r = cli("retention", "status", "--json", env=env)
        assert r.returncode == 0, r
        info = json.loads(r.stdout)
        assert info["workflow"] == "RetentionWorkflow" and info["overlap"] == "SKIP"
        assert len(info["next_runs"]) >= 3
        for t in info["next_runs"]:
            local = datetime.fromisoformat(t).astimezone(LONDON)
            assert (local.hour, local.minute) == (3, 30) and local.isoweekday() <= 5, t

        r = cli("retention", "schedule", "--cron", "61 2 * * *", env=env)
        assert r.returncode == 1 and r.stderr.startswith("error:") and r.stderr.count("\n") == 1, r
        r = cli("retention", "schedule", "--cron", "daily", env=env)
        assert r.returncode == 2 and "5 fields" in r.stderr, r
    finally:
        await handle.delete()


async def test_retention_run_sweeps_now_through_the_real_worker(dev_env: WorkflowEnvironment,
                                                                pool: asyncpg.Pool) -> None:
    import worker as worker_module

    ref = f"RET-{uuid.uuid4().hex[:6].upper()}"
    await write_case(CaseRecordActivities(pool), ref, OLD, years_ago(7, 40), closed=True)
    queue = f"retention-run-{uuid.uuid4().hex[:6]}"
    env = {"TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
           "TEMPORAL_NAMESPACE": dev_env.client.namespace, "COMPLAINTS_TASK_QUEUE": queue}
    # The worker as `python worker.py` builds it: the sweep is registered next to the complaint workflow.
    async with worker_module.build_worker(dev_env.client, CaseRecordActivities(pool), queue):
        # As of a day before its retention ends: nothing to remove.
        closed_at = await pool.fetchval("SELECT closed_at FROM complaints WHERE reference = $1", ref)
        early = (closed_at.astimezone(LONDON).date().replace(year=closed_at.year + 6)).isoformat()
        r = await acli("retention", "run", "--as-of", early, env=env)
        assert r.returncode == 0 and "removed from 0 case(s)" in r.stdout and ref not in r.stdout, r
        r = await acli("retention", "run", "--as-of", NOW.date().isoformat(), env=env)
        assert r.returncode == 0 and "removed from 1 case(s)" in r.stdout and f"  {ref}" in r.stdout, r
        r = await acli("retention", "run", "--as-of", NOW.date().isoformat(), "--json", env=env)
        assert r.returncode == 0 and json.loads(r.stdout)["removed_count"] == 0, r
    assert await pool.fetchval("SELECT resident_name FROM complaints WHERE reference = $1", ref) == "[removed]"
    r = cli("retention", "run", "--as-of", "2026-13-01", env=env)
    assert r.returncode == 2 and r.stderr.startswith("error:"), r


# -- issue 16, point 8: no sweep from the future, a dry run, the whole timeline ---------------------
def test_a_sweep_as_of_a_day_to_come_is_refused() -> None:
    """`retention run --as-of 2033-01-01` removed, at once, data whose retention had not ended."""
    tomorrow = (datetime.now(LONDON).date() + timedelta(days=1)).isoformat()
    r = cli("retention", "run", "--as-of", tomorrow, env={"TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r
    assert r.stderr.startswith(f"error: --as-of: {tomorrow} is after today"), r


async def test_a_dry_run_lists_what_a_sweep_would_remove_and_removes_nothing(pool: asyncpg.Pool,
                                                                             db_url: str) -> None:
    acts = CaseRecordActivities(pool)
    old, kept = f"RET-{uuid.uuid4().hex[:6].upper()}", f"RET-{uuid.uuid4().hex[:6].upper()}"
    await write_case(acts, old, OLD, years_ago(7, 40), closed=True)
    await write_case(acts, kept, MID, years_ago(1), closed=True)
    before = await pool.fetch("SELECT * FROM complaints ORDER BY reference")
    env = {"TEMPORAL_ADDRESS": "127.0.0.1:1", "COMPLAINTS_DATABASE_URL": db_url}  # no Temporal needed
    r = await acli("retention", "run", "--dry-run", "--batch-size", "1", env=env)
    assert r.returncode == 0 and not r.stderr, r
    lines = r.stdout.splitlines()
    assert lines[0].startswith("dry run as of ") and "would be removed from 1 case(s); nothing was removed" in lines[0]
    assert lines[1:] == [f"  {old}"], r.stdout
    r = await acli("retention", "run", "--dry-run", "--json", env=env)
    assert json.loads(r.stdout)["would_remove"] == [old], r
    assert await pool.fetch("SELECT * FROM complaints ORDER BY reference") == before
    r = cli("retention", "run", "--dry-run", env={"COMPLAINTS_DATABASE_URL": ""})
    assert r.returncode == 2 and "COMPLAINTS_DATABASE_URL" in r.stderr, r


async def test_the_cli_timeline_shows_what_the_case_record_added(dev_env: WorkflowEnvironment, pool: asyncpg.Pool,
                                                                db_url: str, dev_now: Callable[[], datetime]) -> None:
    """The sweep writes `personal_data_removed` to the case record after the case has ended; `timeline` showed
    only the case's own events. It shows the record's too, and once the data is removed, the record's
    (scrubbed) copy of each event; a case whose history Temporal no longer keeps is read from the record."""
    from tests.support import complaint, new_reference, start, wait_for, worker

    ref = new_reference("RETT")
    queue = f"retention-timeline-{ref}"
    env = {"TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
           "TEMPORAL_NAMESPACE": dev_env.client.namespace, "COMPLAINTS_DATABASE_URL": db_url}
    async with worker(dev_env, pool, queue):  # an ended case still answers queries through a worker
        handle = await start(dev_env, complaint(ref, dev_now().astimezone(LONDON).replace(microsecond=0)), queue)
        await wait_for(handle, lambda s: s.status.value == "investigating", "acknowledged")
        await handle.terminate("test over")
        await pool.execute("UPDATE complaints SET closed_at = $2 WHERE reference = $1", ref, years_ago(8))
        removed = await ActivityEnvironment().run(RetentionActivities(pool).remove_personal_data,
                                                  RemoveBatch(references=[ref], as_of=NOW, sweep_id="sweep/t"))
        assert [c.reference for c in removed.removed] == [ref]
        r = await acli("timeline", ref, "--json", env=env)
        assert r.returncode == 0 and not r.stderr, r
        events = json.loads(r.stdout)
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert events[-1]["kind"] == "personal_data_removed"
        appointed = next(e for e in events if e["kind"] == "handler_appointed")
        assert appointed["summary"] == "Handler appointed (details removed under retention policy)", appointed
        r = await acli("timeline", ref, env=env)
        assert r.returncode == 0 and "personal_data_removed" in r.stdout.splitlines()[-1], r

    # Temporal no longer holds the case (another namespace here): the record alone answers.
    r = await acli("timeline", ref, "--json", env={**env, "TEMPORAL_NAMESPACE": "nowhere"})
    assert r.returncode == 0 and json.loads(r.stdout) == events, r
