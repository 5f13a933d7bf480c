"""A one-off bank holiday announced while 50 cases are open, on the time-skipping server and PostgreSQL.

Cases under the Code in England are acknowledged (and their Stage 1 response deadline of 10 working
days opened) in five batches in the week of Monday 1 February 2027:
  Mon 1 Feb 10:00 -> due Mon 15 Feb          Tue 2 Feb 14:00 -> due Tue 16 Feb
  Wed 3 Feb 16:30 -> due Wed 17 Feb          Thu 4 Feb 11:00 -> due Thu 18 Feb
  Fri 5 Feb 17:30, after closing: day 0 is Mon 8 Feb -> due Mon 22 Feb
A one-off holiday on Wednesday 17 February falls inside the last three batches' counts (day 0 < 17 Feb
<= due): those 30 move by one working day, the 20 others keep their dates and record nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import asyncpg
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.calendar_changes import Recorded
from activities.calendar_data import CalendarChange, build_snapshot
from activities.db import create_pool
from domain import calendar as wd
from domain.calendar import CalendarSnapshot, Nation
from domain.case import CaseStatus, Status
from domain.contract import Signal
from starter.calendar_cmd import apply_change
from tests.conftest import CONVERTER
from tests.support import complaint, deadline, london, new_reference, skip_to, start, status, wait_for, worker

ROOT = Path(__file__).resolve().parent.parent
RESPONSE = "stage1.response"
HOLIDAY = date(2027, 2, 17)
CAUSE = "One-off bank holiday announced for 17 February 2027"
BATCHES = [
    london(2027, 2, 1, 10),
    london(2027, 2, 2, 14),
    london(2027, 2, 3, 16, 30),
    london(2027, 2, 4, 11),
    london(2027, 2, 5, 17, 30),
]
PER_BATCH = 10
ACTIVITY_ENDS = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
}


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "starter", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )


def calendar(nation: Nation, *changes: CalendarChange) -> CalendarSnapshot:
    return build_snapshot(nation, 2027, 2030, changes=changes)


def response_due(cal: CalendarSnapshot, trigger_at: datetime) -> date:
    return wd.due_date(cal, trigger_at, 10, wd.DeadlineUnit.WORKING_DAYS)


WORKFLOW_TASK_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
}
# The activities that read a case's calendar: open_case reads the first, load_calendar each reload.
CALENDAR_READS = {"open_case", "load_calendar"}


async def calendar_loads(handle: WorkflowHandle) -> int:
    n = 0
    async for e in handle.fetch_history_events():
        if (
            e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            and e.activity_task_scheduled_event_attributes.activity_type.name in CALENDAR_READS
        ):
            n += 1
    return n


async def settled(handle: WorkflowHandle, loads: int, limit: float = 60.0) -> None:
    """Wait (real time) until the case has loaded its calendar `loads` times and has nothing in flight."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while True:
        events = [e async for e in handle.fetch_history_events()]
        scheduled = sum(
            1
            for e in events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            and e.activity_task_scheduled_event_attributes.activity_type.name in CALENDAR_READS
        )
        # From the history, not describe(): the test server's search attributes do not decode once unset.
        in_flight = sum(
            1 for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        ) - sum(1 for e in events if e.event_type in ACTIVITY_ENDS)
        # Idle: its last workflow task completed (commands it issued, a timer or a search attribute
        # upsert, may follow it in the history) and no activity is running.
        last_task = next(e.event_type for e in reversed(events) if e.event_type in WORKFLOW_TASK_EVENTS)
        if scheduled == loads and not in_flight and last_task == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            return
        if scheduled > loads:
            raise AssertionError(f"{handle.id} loaded its calendar {scheduled} times, expected {loads}")
        if loop.time() > end:
            raise AssertionError(
                f"{handle.id} did not settle: {scheduled} calendar loads, last event "
                f"{EventType.Name(events[-1].event_type)}, last workflow task {EventType.Name(last_task)}"
            )
        await asyncio.sleep(0.1)


async def last_timer_summary(handle: WorkflowHandle) -> str:
    summary = None
    async for e in handle.fetch_history_events():
        if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED and e.user_metadata.HasField("summary"):
            summary = e.user_metadata.summary
    if summary is None:
        return ""
    # Summaries are payloads like any other: encrypted on the way to Temporal, so decode them.
    [text] = await CONVERTER.decode([summary], [str])
    return text


def moves(timeline: list[dict]) -> list[dict]:
    return [e["detail"] for e in timeline if e["kind"] == "deadline_moved"]


async def timeline(handle: WorkflowHandle) -> list[dict]:
    events = await handle.query("timeline")
    return [e if isinstance(e, dict) else e.model_dump(mode="json") for e in events]


async def db_due_dates(conn: asyncpg.Connection) -> dict[str, date]:
    rows = await conn.fetch("SELECT reference, due_date FROM deadlines WHERE key = $1", RESPONSE)
    return {r["reference"]: r["due_date"] for r in rows}


async def test_one_off_bank_holiday_moves_exactly_the_cases_it_touches(
    time_env: WorkflowEnvironment, db_url: str
) -> None:
    env = time_env
    queue = "q-calendar-change"
    england_before = calendar(Nation.ENGLAND_AND_WALES)
    added = CalendarChange(day=HOLIDAY, change="add", reason=CAUSE, nation=Nation.ENGLAND_AND_WALES)
    england_after = calendar(Nation.ENGLAND_AND_WALES, added)
    await skip_to(env, BATCHES[0] - timedelta(minutes=1))
    pool = await create_pool(db_url, max_size=20)
    handles: dict[str, WorkflowHandle] = {}
    try:
        async with worker(env, pool, queue):
            scottish = finished = ""
            for b, at in enumerate(BATCHES):
                if b:
                    await skip_to(env, at)
                # Received at varied times before the batch's acknowledgement (some over the weekend).
                refs = [new_reference() for _ in range(PER_BATCH)]
                batch = {ref: complaint(ref, at - timedelta(hours=7 * i)) for i, ref in enumerate(refs)}
                if b == 0:
                    finished = new_reference()
                    batch[finished] = complaint(finished, at)
                if b == 2:
                    scottish = new_reference()
                    batch[scottish] = complaint(scottish, at, nation=Nation.SCOTLAND)
                started = await asyncio.gather(*(start(env, c, queue) for c in batch.values()))
                for ref, h in zip(batch, started, strict=True):
                    handles[ref] = h
                await asyncio.gather(
                    *(
                        wait_for(h, lambda s: s.status is Status.INVESTIGATING, "Stage 1 open", limit=60)
                        for h in started
                    )
                )
            # A case that has ended (here: terminated) is still open in the record; it is skipped.
            await handles[finished].terminate("test: a case that has already finished")
            england = [r for r in handles if r not in (scottish, finished)]
            assert len(england) == 50

            before: dict[str, CaseStatus] = dict(
                zip(handles, await asyncio.gather(*(status(h) for h in handles.values())), strict=True)
            )
            for ref in england:
                d = deadline(before[ref], RESPONSE)
                assert d.due_date == response_due(england_before, d.trigger_at), ref
            affected = {
                r
                for r in england
                if wd.day_zero(
                    england_before, deadline(before[r], RESPONSE).trigger_at, wd.DeadlineUnit.WORKING_DAYS
                )
                < HOLIDAY
                <= deadline(before[r], RESPONSE).due_date
            }
            assert len(affected) == 30, "the last three batches span 17 February"
            assert {deadline(before[r], RESPONSE).due_date for r in set(england) - affected} == {
                date(2027, 2, 15),
                date(2027, 2, 16),
            }
            assert deadline(before[scottish], RESPONSE).due_date == date(2027, 2, 17)
            conn = await asyncpg.connect(db_url)
            try:
                await wait_db(conn, {r: deadline(before[r], RESPONSE).due_date for r in handles})

                earlier = dict(
                    zip(england, await asyncio.gather(*(timeline(handles[r]) for r in england)), strict=True)
                )

                # -- the holiday is announced: the command's own code path ---------------------------
                recorded, told = await apply_change(env.client, db_url, added)
                assert recorded is Recorded.NEW
                assert sorted(told.told) == sorted(handles[r].id for r in england)
                assert told.finished == [handles[finished].id] and not told.failed
                await asyncio.gather(*(settled(handles[r], 2) for r in england))
                after = dict(
                    zip(england, await asyncio.gather(*(status(handles[r]) for r in england)), strict=True)
                )
                lines = dict(
                    zip(england, await asyncio.gather(*(timeline(handles[r]) for r in england)), strict=True)
                )
                moved = {
                    r
                    for r in england
                    if deadline(after[r], RESPONSE).due_date != deadline(before[r], RESPONSE).due_date
                }
                assert moved == affected
                for r in england:
                    old, new = deadline(before[r], RESPONSE), deadline(after[r], RESPONSE)
                    if r in affected:
                        assert new.due_date == wd.add_working_days(england_after, old.due_date, 1), r
                        assert new.due_date == response_due(england_after, old.trigger_at), r
                        assert new.due_at == wd.end_of_day(new.due_date)
                        assert moves(lines[r]) == [
                            {
                                "deadline": RESPONSE,
                                "old_due_date": old.due_date.isoformat(),
                                "new_due_date": new.due_date.isoformat(),
                                "cause": CAUSE,
                            }
                        ], r
                        # The keeper loop waits on the new date now, not the old one.
                        assert new.due_date.isoformat() in await last_timer_summary(handles[r]), r
                    else:
                        assert new == old, r
                        assert lines[r] == earlier[r], f"{r}: its dates did not move, so it records nothing"
                    assert not any(e["kind"] == "signal_refused" for e in lines[r]), r
                assert {deadline(after[r], RESPONSE).due_date for r in affected} == {
                    date(2027, 2, 18),
                    date(2027, 2, 19),
                    date(2027, 2, 23),
                }
                expected_db = {r: deadline(after[r], RESPONSE).due_date for r in england}
                await wait_db(conn, expected_db)
                rows = await conn.fetch(
                    "SELECT reference, detail FROM timeline WHERE kind = 'deadline_moved'"
                )
                assert sorted(r["reference"] for r in rows) == sorted(affected)
                assert all(json.loads(r["detail"])["cause"] == CAUSE for r in rows)

                # The Scottish case was not told; told directly, its own calendar has no such holiday.
                assert await calendar_loads(handles[scottish]) == 1
                await handles[scottish].signal(Signal.CALENDAR_CHANGED.value, {"cause": CAUSE})
                await settled(handles[scottish], 2)
                assert await status(handles[scottish]) == before[scottish]
                assert moves(await timeline(handles[scottish])) == []

                # -- announced again: nothing new anywhere -----------------------------------------
                recorded, told = await apply_change(env.client, db_url, added)
                assert recorded is Recorded.ALREADY and len(told.told) == 50
                await asyncio.gather(*(settled(handles[r], 3) for r in england))
                for r in england:
                    assert await status(handles[r]) == after[r], r
                    assert len(await timeline(handles[r])) == len(lines[r]), r

                # -- time passes: each timer fires on its new date ---------------------------------
                await skip_to(env, london(2027, 2, 19, 12))
                breached = {r for r in england if deadline(after[r], RESPONSE).due_date < date(2027, 2, 19)}
                assert len(breached) == 30  # Mon and Tue batches (15, 16 Feb) and the Wed batch (18 Feb)
                for r in breached:
                    s = await wait_for(handles[r], lambda s: len(s.breaches) == 1, "breach", limit=60)
                    assert s.breaches[0].due_date == deadline(after[r], RESPONSE).due_date
                for r in set(england) - breached:
                    assert (await status(handles[r])).breaches == [], r

                # -- the holiday is withdrawn, through the command line ----------------------------
                target = env.client.service_client.config.target_host
                result = cli(
                    "calendar",
                    "remove",
                    "--date",
                    HOLIDAY.isoformat(),
                    "--nation",
                    "england-and-wales",
                    "--reason",
                    "The one-off bank holiday is cancelled",
                    "--json",
                    env={
                        "COMPLAINTS_DATABASE_URL": db_url,
                        "TEMPORAL_ADDRESS": target,
                        "TEMPORAL_NAMESPACE": env.client.namespace,
                    },
                )
                assert result.returncode == 0, result.stderr
                out = json.loads(result.stdout)
                assert (out["recorded"], out["told"], out["already_finished"], out["failed"]) == (
                    Recorded.REPLACED.value,
                    50,
                    1,
                    0,
                )
                await asyncio.gather(*(settled(handles[r], 4) for r in england))
                # Deadlines already passed stay as they were; the open ones that spanned the day move back.
                back = {r for r in affected if r not in breached}
                assert len(back) == 20  # the Thu batch (19 -> 18 Feb) and the Fri batch (23 -> 22 Feb)
                for r in england:
                    s = await status(handles[r])
                    ms = moves(await timeline(handles[r]))
                    if r in back:
                        assert deadline(s, RESPONSE).due_date == deadline(before[r], RESPONSE).due_date, r
                        assert ms[-1] == {
                            "deadline": RESPONSE,
                            "old_due_date": deadline(after[r], RESPONSE).due_date.isoformat(),
                            "new_due_date": deadline(before[r], RESPONSE).due_date.isoformat(),
                            "cause": "The one-off bank holiday is cancelled",
                        }, r
                        assert len(ms) == 2, r
                    else:
                        assert deadline(s, RESPONSE).due_date == deadline(after[r], RESPONSE).due_date, r
                        assert len(ms) == (1 if r in affected else 0), r
                # Moved back to 18 February, the Thu batch is now past its date: a breach, on the new date.
                for r in back:
                    if deadline(before[r], RESPONSE).due_date == date(2027, 2, 18):
                        s = await wait_for(handles[r], lambda s: len(s.breaches) == 1, "breach", limit=60)
                        assert s.breaches[0].due_date == date(2027, 2, 18)
                await wait_db(
                    conn, {r: deadline(await status(handles[r]), RESPONSE).due_date for r in england}
                )
                listed = cli("calendar", "list", "--json", env={"COMPLAINTS_DATABASE_URL": db_url})
                assert listed.returncode == 0, listed.stderr
                assert [(c["day"], c["change"], c["nation"]) for c in json.loads(listed.stdout)] == [
                    (HOLIDAY.isoformat(), "remove", "england-and-wales")
                ]
            finally:
                await conn.close()
    finally:
        await pool.close()


async def wait_db(conn: asyncpg.Connection, expected: dict[str, date], limit: float = 30.0) -> None:
    """Wait (real time) for the case record's Stage 1 response due dates to say `expected`."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while True:
        found = await db_due_dates(conn)
        if all(found.get(r) == d for r, d in expected.items()):
            return
        if loop.time() > end:
            wrong = {r: (found.get(r), d) for r, d in expected.items() if found.get(r) != d}
            raise AssertionError(f"deadlines table disagrees (found, expected): {wrong}")
        await asyncio.sleep(0.1)


def test_bad_arguments_exit_2_with_one_line() -> None:
    no_servers = {
        "COMPLAINTS_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "TEMPORAL_ADDRESS": "127.0.0.1:1",
    }
    for args, needle in [
        (["add", "--date", "17/02/2027", "--reason", "x", "--nation", "scotland"], "not a date"),
        (["add", "--date", "2027-02-30", "--reason", "x", "--nation", "scotland"], "not a date"),
        (["add", "--date", "2027-02-20", "--reason", "x", "--nation", "scotland"], "Saturday"),
        (["add", "--date", "2027-02-17", "--reason", "x"], "--all-nations"),
        (["add", "--date", "2027-02-17", "--reason", "x", "--nation", "wales"], "unknown nation"),
        (
            ["add", "--date", "2027-02-17", "--reason", "x", "--nation", "scotland", "--all-nations"],
            "not allowed",
        ),
        (
            ["add", "--date", "2027-02-17", "--reason", "x", "--kind", "closure", "--nation", "scotland"],
            "closure",
        ),
        (
            ["add", "--date", "2027-02-17", "--reason", "x", "--kind", "closure", "--landlord", "Optivo"],
            "landlord",
        ),
        (["add", "--date", "2027-02-17", "--reason", "  ", "--all-nations"], "--reason"),
        (["add", "--date", "2027-02-17", "--nation", "scotland"], "--reason"),
        (["move", "--date", "2027-02-17"], "invalid choice"),
    ]:
        r = cli("calendar", *args, env=no_servers)
        lines = r.stderr.strip().splitlines()
        assert (
            r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]
        ), (args, r.returncode, r.stderr)


def test_unreachable_servers_are_one_line_exit_1() -> None:
    env = {"COMPLAINTS_DATABASE_URL": "", "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    r = cli("calendar", "add", "--date", "2027-02-17", "--reason", "x", "--all-nations", env=env)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "COMPLAINTS_DATABASE_URL" in r.stderr, r.stderr
    r = cli(
        "calendar",
        "add",
        "--date",
        "2027-02-17",
        "--reason",
        "x",
        "--all-nations",
        env={**env, "COMPLAINTS_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
    )
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "cannot reach Temporal" in r.stderr, r.stderr
    r = cli("calendar", "list", env={"COMPLAINTS_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "case record" in r.stderr, r.stderr


async def test_closure_is_recorded_for_every_nation_and_replaces_its_opposite(db_url: str) -> None:
    env = {"COMPLAINTS_DATABASE_URL": db_url, "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    conn = await asyncpg.connect(db_url)
    try:
        from activities import calendar_changes as store

        closure = CalendarChange(day=date(2027, 12, 29), change="add", reason="Office closed", nation=None)
        assert await store.record_change(conn, closure) is Recorded.NEW
        assert await store.record_change(conn, closure) is Recorded.ALREADY
        undo = closure.model_copy(update={"change": "remove", "reason": "Office open after all"})
        assert await store.record_change(conn, undo) is Recorded.REPLACED
        # Add after remove must stand: with both rows kept, id order would have let the remove win.
        assert await store.record_change(conn, closure) is Recorded.REPLACED
        rows = await store.list_changes(conn, Nation.SCOTLAND)
        assert [(r.day, r.change, r.nation) for r in rows] == [(date(2027, 12, 29), "add", None)]
    finally:
        await conn.close()
    r = cli("calendar", "list", env=env)
    assert r.returncode == 0 and "2027-12-29 Wed  add     all nations        Office closed" in r.stdout, r


async def test_a_change_told_before_filing_is_not_refused_and_changes_in_a_row_all_land(
    time_env: WorkflowEnvironment, db_url: str
) -> None:
    from activities import calendar_changes as store

    env = time_env
    queue = "q-calendar-early"
    ref = new_reference()
    await skip_to(env, london(2027, 3, 1, 10))
    pool = await create_pool(db_url)
    try:
        # No worker yet: the signal waits in the history ahead of the case's first calendar load.
        handle = await start(env, complaint(ref, london(2027, 3, 1, 9)), queue)
        conn = await asyncpg.connect(db_url)
        try:
            first = CalendarChange(
                day=date(2027, 3, 10), change="add", reason="A", nation=Nation.ENGLAND_AND_WALES
            )
            await store.record_change(conn, first)
        finally:
            await conn.close()
        await handle.signal(Signal.CALENDAR_CHANGED.value, {"cause": "A"})
        async with worker(env, pool, queue):
            s = await wait_for(handle, lambda s: s.status is Status.INVESTIGATING, "Stage 1 open")
            await settled(handle, 2)
            s = await status(handle)
            events = await timeline(handle)
            assert s.refused_messages == 0 and not [e for e in events if e["kind"] == "signal_refused"]
            # Ack on Mon 1 March + 10 working days is 15 March; the holiday on the 10th makes it the 16th.
            assert deadline(s, RESPONSE).due_date == date(2027, 3, 16)
            assert moves(events) == [], "its first calendar already had the change: nothing moved"

            # Two changes told one straight after the other: each reload sees at least its own change.
            for day, cause in ((date(2027, 3, 11), "B"), (date(2027, 3, 12), "C")):
                change = CalendarChange(day=day, change="add", reason=cause, nation=Nation.ENGLAND_AND_WALES)
                recorded, told = await apply_change(env.client, db_url, change)
                assert recorded is Recorded.NEW and told.told == [handle.id]
            await settled(handle, 4)
            s = await status(handle)
            assert deadline(s, RESPONSE).due_date == date(2027, 3, 18)
            ms = moves(await timeline(handle))
            assert ms and ms[0]["old_due_date"] == "2027-03-16" and ms[-1]["new_due_date"] == "2027-03-18"
            assert all(a["new_due_date"] == b["old_due_date"] for a, b in zip(ms, ms[1:], strict=False))
            assert {m["cause"] for m in ms} <= {"B", "C"}
    finally:
        await pool.close()
