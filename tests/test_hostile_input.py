"""Hostile and malformed input (issue 5, item 3), on the time-skipping server and a real PostgreSQL.

Other services send the case plain JSON, in whatever order their users click. Whatever arrives,
the case must not fail: a message it cannot use is refused with a reason (a `signal_refused`
event, or the update's validator error), changes nothing else, and text it does keep is stored
exactly as sent, through parameterised SQL only.
"""

from __future__ import annotations

import ast
import asyncio
import time
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from pydantic import ValidationError
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.calendar_changes import record_change
from activities.calendar_data import CalendarChange
from domain.calendar import LONDON
from domain.contract import FileComplaint, Signal, Update, UpdateResult
from tests.hostile.driver import LoopBridge, Snapshot, case_status, describe, failed_tasks, settle, timeline
from tests.hostile.payloads import (
    ABSENT,
    ACCEPTED_EVENT,
    SIGNAL_MODELS,
    SQL,
    UPDATE_MODELS,
    VALID,
    Corrupt,
    corrupted_payload,
    every_corruption,
    panel_sitting_days,
    valid_payload,
)
from tests.support import (
    add_sittings,
    complaint,
    london,
    new_reference,
    skip_to,
    start,
    status,
    wait_for,
    worker,
)

POLICIES = ["hos-code-2024", "connexus", "optivo"]
EXAMPLES, STEPS = 15, 20


async def _send_signal(handle: WorkflowHandle, name: str, payload: Any) -> None:
    if payload is ABSENT:
        await handle.signal(name)
    else:
        await handle.signal(name, payload)


async def _send_update(handle: WorkflowHandle, name: str, payload: Any) -> UpdateResult:
    if payload is ABSENT:
        return await handle.execute_update(name, result_type=UpdateResult)
    return await handle.execute_update(name, payload, result_type=UpdateResult)


def _refusal_text(err: WorkflowUpdateFailedError) -> str:
    cause = err.cause
    assert isinstance(cause, ApplicationError) and cause.type == "Refused", (
        f"an update must be refused by its validator with a reason, not fail with {cause!r}")
    assert str(cause.message).strip(), "an update refusal must say why"
    return str(cause.message)


# =================================================================================================
# 1. The stateful property: random sequences of every message, valid and not, with time passing
# =================================================================================================
class HostileCase(RuleBasedStateMachine):
    """One case per example, on the test's shared server and worker."""

    def __init__(self, ctx: dict[str, Any]) -> None:
        super().__init__()
        self.ctx = ctx
        self.call: LoopBridge = ctx["call"]
        self.env: WorkflowEnvironment = ctx["env"]
        self.handle: WorkflowHandle | None = None
        self.policy = ""
        self.done = False
        self.seen_due: dict[str, date] = {}
        self.ctx["examples"] += 1

    # -- helpers ---------------------------------------------------------------------------------
    def _now(self) -> datetime:
        return self.call(self.env.get_current_time())

    def _snapshot(self) -> tuple[Snapshot, list]:
        assert self.handle is not None
        tl = self.call(timeline(self.handle))
        return Snapshot.of(self.call(case_status(self.handle)), tl), tl

    def _settle(self) -> None:
        assert self.handle is not None
        self.done = self.call(settle(self.handle)) is not WorkflowExecutionStatus.RUNNING

    def _payload(self, data: st.DataObject, name: Signal | Update, model) -> tuple[Any, Corrupt | None]:
        valid = data.draw(valid_payload(name, self.policy, self._now()), label="valid")
        # One in three corrupted: enough valid messages get through for cases to reach Stage 2 and beyond.
        if data.draw(st.integers(0, 2), label="corrupt") == 0:
            bad = data.draw(corrupted_payload(model, valid), label="corruption")
            return bad.payload, bad
        return valid, None

    def _signal(self, name: Signal, payload: Any, bad: Corrupt | None) -> None:
        assert self.handle is not None
        before, old = self._snapshot()
        self.call(_send_signal(self.handle, name.value, payload))
        self.ctx["signals"] += 1
        self._settle()
        after, tl = self._snapshot()
        new = tl[len(old):]
        refusals = [e for e in new if e.kind == "signal_refused" and e.detail.get("message") == name.value]
        accepted = [e for e in new if e.kind == ACCEPTED_EVENT[name]]
        # Each signal is accounted for: exactly one refusal or its own event (calendar_changed has no
        # event of its own when nothing moves, so for it "not refused" is acceptance).
        assert len(refusals) + len(accepted) == 1 or (ACCEPTED_EVENT[name] is None and not refusals), (
            f"{name} left {[e.kind for e in new]}")
        if bad is not None:
            assert refusals, f"{name} with {bad.how} was not refused: {[e.kind for e in new]}"
            assert bad.names in refusals[0].detail["reason"], (
                f"{name} with {bad.how}: the refusal must name {bad.names!r}: {refusals[0].detail['reason']}")
        if refusals:
            self.ctx["refused"] += 1
            assert refusals[0].detail["reason"].strip(), "a refusal must give its reason"
            # Refused: one event, and nothing else moved (stage, status, deadlines).
            assert [e.kind for e in new] == ["signal_refused"], [e.kind for e in new]
            assert (after.stage, after.status, after.deadlines) == (before.stage, before.status, before.deadlines)

    def _update(self, name: Update, payload: Any, bad: Corrupt | None) -> None:
        assert self.handle is not None
        before, _ = self._snapshot()
        try:
            result = self.call(_send_update(self.handle, name.value, payload))
        except WorkflowUpdateFailedError as err:
            reason = _refusal_text(err)
            if bad is not None:
                assert bad.names in reason, f"{name} with {bad.how}: the refusal must name {bad.names!r}: {reason}"
            self.ctx["refused"] += 1
            self._settle()
            after, _ = self._snapshot()
            assert after == before, f"a refused {name} changed the case"
            return
        finally:
            self.ctx["updates"] += 1
        assert bad is None, f"{name} with {bad.how} was accepted: {result}"
        assert result.accepted and result.message.strip()
        self._settle()

    # -- rules -----------------------------------------------------------------------------------
    @initialize(policy=st.sampled_from(POLICIES))
    def file(self, policy: str) -> None:
        self.policy = policy
        ref = new_reference("HOS")
        received = self._now()
        self.handle = self.call(start(self.env, complaint(ref, received, policy=policy), self.ctx["queue"]))
        self._settle()

    @precondition(lambda self: not self.done)
    @rule(name=st.sampled_from(list(Signal)), data=st.data())
    def signal(self, name: Signal, data: st.DataObject) -> None:
        payload, bad = self._payload(data, name, SIGNAL_MODELS[name])
        self._signal(name, payload, bad)

    @precondition(lambda self: not self.done)
    # Not withdraw: a valid one closes the case on purpose (tests/test_withdrawal.py); its malformed
    # payloads are still refused, in test_each_malformed_update_is_refused_by_its_validator_naming_the_field.
    @rule(name=st.sampled_from([u for u in Update if u is not Update.WITHDRAW]), data=st.data())
    def update(self, name: Update, data: st.DataObject) -> None:
        payload, bad = self._payload(data, name, UPDATE_MODELS[name])
        self._update(name, payload, bad)

    @precondition(lambda self: not self.done)
    @rule(offset=st.integers(0, 30), change=st.sampled_from(["add", "remove"]), cause=st.sampled_from(
        ["Extra bank holiday announced", SQL, "Jubilee «moved»; see 'notice'"]))
    def change_calendar(self, offset: int, change: str, cause: str) -> None:
        """An operator records a one-off bank holiday (or takes one back) and tells the case."""
        day = self._now().astimezone(LONDON).date() + timedelta(days=offset)

        async def write() -> None:
            async with self.ctx["pool"].acquire() as conn:
                await record_change(conn, CalendarChange(day=day, change=change, reason=cause))
        self.call(write())
        self._signal(Signal.CALENDAR_CHANGED, {"cause": cause}, None)

    @precondition(lambda self: not self.done)
    @rule(data=st.data())
    def next_step(self, data: st.DataObject) -> None:
        """A valid message the case is waiting for: without it random messages rarely get a case past
        Stage 1, and the later stages' handlers would go untested."""
        assert self.handle is not None
        s = self.call(case_status(self.handle))
        keys = {d.key for d in s.deadlines}
        by_status: dict[str, list[Signal | Update]] = {
            "investigating": [Update.SUBMIT_STAGE1_RESPONSE],
            "responded": [Signal.REQUEST_REVIEW, Update.REFUSE_ESCALATION],
            "reviewing": [Update.SUBMIT_FINAL_RESPONSE, Update.RECORD_REVIEW_FINDINGS, Update.AGREE_OUTCOME,
                          Update.RECORD_PANEL_DECISION, Update.REQUEST_RESIDENT_PANELISTS],
            "awaiting-panel": [Signal.REQUEST_TO_ATTEND, Update.REQUEST_RESIDENT_PANELISTS,
                               Signal.DECLINE_RESIDENT_PARTICIPATION],
            "cooling-off": [Signal.OMBUDSMAN_REFERRAL],
            "closed": [Signal.SURVEY_RESPONSE],
        }
        choices = by_status.get(s.status.value, [Signal.RECORD_CONTACT])
        if "stage2.contact" in keys:
            choices = [*choices, Signal.TENANT_DECLINED_DISCUSSION]
        name = data.draw(st.sampled_from(choices), label="next")
        payload = data.draw(valid_payload(name, self.policy, self._now()), label="payload")
        if isinstance(name, Signal):
            self._signal(name, payload, None)
        else:
            self._update(name, payload, None)

    @rule(hours=st.one_of(st.integers(1, 24), st.integers(1, 240)))
    def advance_time(self, hours: int) -> None:
        self.call(self.env.sleep(timedelta(hours=hours)))
        self.ctx["skipped_hours"] += hours
        self._settle()

    # -- invariants (after the filing and after every step) ------------------------------------
    @invariant()
    def never_fails(self) -> None:
        if self.handle is None:
            return
        state, _ = self.call(describe(self.handle))
        assert state in (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.COMPLETED), state
        assert self.call(failed_tasks(self.handle)) == []

    @invariant()
    def status_answers_and_deadlines_never_move_back(self) -> None:
        if self.handle is None:
            return
        s = self.call(case_status(self.handle), timeout=10)
        assert s.policy.startswith(self.policy)
        moved = self._explained_moves()
        for d in s.deadlines:
            previous = self.seen_due.get(d.key)
            if previous is not None and d.due_date < previous:
                assert (d.key, d.due_date) in moved, (
                    f"{d.key} moved back from {previous} to {d.due_date} with no calendar change recorded")
            self.seen_due[d.key] = d.due_date

    def _explained_moves(self) -> set[tuple[str, date]]:
        assert self.handle is not None
        out = set()
        for e in self.call(timeline(self.handle)):
            if e.kind == "deadline_moved":
                out.add((e.detail["deadline"], date.fromisoformat(e.detail["new_due_date"])))
            elif e.kind == "panel_moved":  # rebooked so that the resident can attend, never earlier
                out.add(("stage2.panel_sitting", date.fromisoformat(e.detail["new"])))
        return out

    def teardown(self) -> None:
        if self.handle is not None:
            self.ctx["reached"][f"{self.policy}:{self.call(case_status(self.handle)).stage.value}"] += 1
        # The next example has a case of its own; this one must not keep the worker busy.
        if self.handle is not None and not self.done:
            self.call(self.handle.terminate("hypothesis example finished"))


async def test_random_message_sequences_never_fail_a_case(time_env: WorkflowEnvironment, pool: asyncpg.Pool) -> None:
    queue = f"q-{new_reference('HOSTILE')}"
    today = (await time_env.get_current_time()).astimezone(LONDON).date()
    # Optivo's review panel sits on set dates: every Tuesday for the years the examples can span,
    # one in three without room for a resident to attend.
    days = panel_sitting_days(today, 52 * 6)
    await add_sittings(pool, "Optivo", *days[0::3], attendance_possible=False, capacity=50)
    await add_sittings(pool, "Optivo", *(d for i, d in enumerate(days) if i % 3), capacity=50)
    ctx: dict[str, Any] = dict(call=LoopBridge(asyncio.get_running_loop()), env=time_env, pool=pool, queue=queue,
                               examples=0, signals=0, updates=0, refused=0, skipped_hours=0,
                               reached=Counter())
    began = time.monotonic()
    async with worker(time_env, pool, queue):
        # Hypothesis runs in a thread; its rules hand their coroutines back to this (free) loop.
        await asyncio.to_thread(
            run_state_machine_as_test, lambda: HostileCase(ctx),
            settings=settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
                              derandomize=True, database=None, print_blob=True,
                              # No shrinking: each step is real work on a real server, and the failing
                              # sequence as found (printed step by step) is what a bug report needs.
                              phases=[Phase.explicit, Phase.generate],
                              suppress_health_check=list(HealthCheck)))
    print(f"\nhostile input: {ctx['examples']} examples, {ctx['signals']} signals, {ctx['updates']} updates, "
          f"{ctx['refused']} refused, {ctx['skipped_hours']} hours skipped, {time.monotonic() - began:.0f} s; "
          f"where the cases ended: {dict(ctx['reached'])}")
    assert ctx["examples"] >= EXAMPLES and ctx["refused"] > 0 and ctx["signals"] + ctx["updates"] > EXAMPLES


# =================================================================================================
# 2. Payloads, one by one
# =================================================================================================
RECEIVED = london(2027, 3, 1, 10)
CONTACT = {"channel": "phone", "direction": "inbound", "by": "Priya Shah", "notes": "Called back"}
STAGE1 = {"decision": "not_upheld", "reasons": "The repair was booked within our timescales."}


async def _open_case(env: WorkflowEnvironment, queue: str, **overrides: Any) -> WorkflowHandle:
    now = await env.get_current_time()
    if now < RECEIVED:
        await skip_to(env, RECEIVED)
    received = await env.get_current_time()
    handle = await start(env, complaint(new_reference(), received, **overrides), queue)
    await wait_for(handle, lambda s: s.status.value == "investigating", "acknowledgement")
    return handle


async def test_each_malformed_signal_is_refused_naming_the_field(time_env: WorkflowEnvironment,
                                                                 pool: asyncpg.Pool) -> None:
    """Every corruption of every signal's payload: one signal_refused each, whose reason names the
    field, and the case otherwise exactly as it was."""
    queue = f"q-{new_reference()}"
    async with worker(time_env, pool, queue):
        handle = await _open_case(time_env, queue)
        before = await status(handle)
        sent: list[tuple[Signal, Corrupt]] = []
        for name, model in SIGNAL_MODELS.items():
            for bad in every_corruption(model, VALID[name]):
                await _send_signal(handle, name.value, bad.payload)
                sent.append((name, bad))
        await settle(handle)
        refused = [e for e in await timeline(handle) if e.kind == "signal_refused"]
        assert len(refused) == len(sent), "every malformed signal is refused, once"
        for event, (name, bad) in zip(refused, sent, strict=True):
            assert event.detail["message"] == name.value
            assert bad.names in event.detail["reason"], f"{name} with {bad.how}: {event.detail['reason']}"
            # The reason quotes pydantic's message, never the input: a megabyte is not echoed back.
            assert len(event.detail["reason"]) < 2_000
        after = await status(handle)
        assert (after.stage, after.status, after.deadlines) == (before.stage, before.status, before.deadlines)
        assert after.refused_messages == len(sent)
        assert await failed_tasks(handle) == []
        # The refusals reach the case record too, in order. The case writes its rows in bounded batches
        # after the burst, so the record may trail the case for a moment: wait for it, within a bound.
        for _ in range(300):
            rows = await pool.fetch("SELECT detail FROM timeline WHERE reference=$1 AND kind='signal_refused'"
                                    " ORDER BY seq", after.reference)
            if len(rows) >= len(refused):
                break
            await asyncio.sleep(0.1)
        assert [r["detail"]["reason"] for r in rows] == [e.detail["reason"] for e in refused]


async def test_each_malformed_update_is_refused_by_its_validator_naming_the_field(
    time_env: WorkflowEnvironment, pool: asyncpg.Pool
) -> None:
    queue = f"q-{new_reference()}"
    async with worker(time_env, pool, queue):
        handle = await _open_case(time_env, queue)
        before = await timeline(handle)
        tried = 0
        for name, model in UPDATE_MODELS.items():
            for bad in every_corruption(model, VALID[name]):
                with pytest.raises(WorkflowUpdateFailedError) as err:
                    await _send_update(handle, name.value, bad.payload)
                reason = _refusal_text(err.value)
                assert bad.names in reason, f"{name} with {bad.how}: {reason}"
                tried += 1
        assert tried > 50
        assert len(await timeline(handle)) == len(before), "a refused update writes nothing"
        # And the case still takes the real thing afterwards.
        assert (await _send_update(handle, "submit_stage1_response", STAGE1)).accepted
        assert await failed_tasks(handle) == []


def _complaint_data(**overrides: Any) -> dict[str, Any]:
    data = complaint(new_reference(), RECEIVED).model_dump(mode="json")
    for dotted, value in overrides.items():
        target = data
        *path, last = dotted.split("__")
        for p in path:
            target = target[p]
        target[last] = value
    return data


@pytest.mark.parametrize(("overrides", "field"), [
    ({"reference": SQL}, "reference"),
    ({"reference": "cmp-lower"}, "reference"),
    ({"reference": "A" * 41}, "reference"),
    ({"summary": "A" * 10_001}, "summary"),
    ({"summary": "A" * 1_000_000}, "summary"),
    ({"resident__name": "A" * 201}, "resident.name"),
    ({"property__postcode": "A" * 11}, "property.postcode"),
    ({"received_at": "1900-01-01T10:00:00+00:00"}, "received_at"),
    ({"received_at": "2200-01-01T10:00:00+00:00"}, "received_at"),
    ({"received_at": "2027-03-01T10:00:00"}, "received_at"),
    ({"policy": "../../etc/passwd"}, "policy"),
    ({"policy": SQL}, "policy"),
    ({"channel": "carrier_pigeon"}, "channel"),
    ({"extra_field": 1}, "extra_field"),
    ({"resident__name": {"$ne": 1}}, "resident.name"),
])
def test_file_complaint_refuses_hostile_input_before_anything_starts(overrides: dict, field: str) -> None:
    """The client-side check: FileComplaint will not even be built, and the error names the field."""
    with pytest.raises(ValidationError) as err:
        FileComplaint.model_validate(_complaint_data(**overrides))
    locs = [".".join(str(p) for p in e["loc"]) for e in err.value.errors()]
    assert field in locs, locs


# Text exactly as a resident or a CRM might send it: quotes, SQL, placeholders, scripts, emoji,
# newlines inside. (Edge whitespace is stripped by the contract, so none is put there.)
TRICKY_TEXT = [
    SQL,
    "O'Brien said \"no\"; then -- left\nRobert'); DROP TABLE timeline;--",
    "$1 $2 %s %(name)s {0} {} \\x00 \\' \\\\",
    "Łódź · Cymraeg: ŵ ŷ · Ελληνικά · العربية · 中文 · 😀👩‍👩‍👧 · \u202eevil\u202c · é (e\u0301)",
    "tab\tinside and\r\nCRLF inside",
]


async def test_text_is_stored_exactly_and_safely(time_env: WorkflowEnvironment, pool: asyncpg.Pool) -> None:
    """Contacts' notes and makers, an extension's reason and a review request's reasons: back out of
    PostgreSQL byte for byte, and the tables a 'DROP TABLE' names are still there."""
    queue = f"q-{new_reference()}"
    async with worker(time_env, pool, queue):
        handle = await _open_case(time_env, queue)
        ref = (await status(handle)).reference
        for text in TRICKY_TEXT:
            await handle.signal("record_contact", {**CONTACT, "by": text[:200], "notes": text})
        await handle.signal("extend_deadline", {"working_days": 2, "reason": TRICKY_TEXT[1]})
        await settle(handle)
        tl = await timeline(handle)
        assert [e.kind for e in tl].count("contact_recorded") == len(TRICKY_TEXT)
        assert "signal_refused" not in [e.kind for e in tl]
        s = await wait_for(handle, lambda s: bool(s.extensions), "the extension")
        rows = await pool.fetch("SELECT made_by, notes FROM contacts WHERE reference=$1 ORDER BY seq", ref)
        assert [(r["made_by"], r["notes"]) for r in rows] == [(t[:200], t) for t in TRICKY_TEXT]
        stored = await pool.fetch("SELECT detail FROM timeline WHERE reference=$1 AND kind='contact_recorded'"
                                  " ORDER BY seq", ref)
        assert [r["detail"]["notes"] for r in stored] == TRICKY_TEXT
        assert await pool.fetchval("SELECT reason FROM extensions WHERE reference=$1", ref) == TRICKY_TEXT[1]
        assert s.extensions[0].reason == TRICKY_TEXT[1]
        for table in ("complaints", "timeline", "contacts"):
            assert await pool.fetchval("SELECT to_regclass($1) IS NOT NULL", table), table
        assert await pool.fetchval("SELECT count(*) FROM complaints WHERE reference=$1", ref) == 1
        assert await failed_tasks(handle) == []


async def test_resident_and_summary_text_is_stored_exactly(time_env: WorkflowEnvironment, pool: asyncpg.Pool) -> None:
    """The filing itself: a resident named with quotes and SQL, a summary in several scripts."""
    queue = f"q-{new_reference()}"
    async with worker(time_env, pool, queue):
        from domain.contract import Resident
        resident = Resident(name="Siân O'Brien-Ng; --", address=TRICKY_TEXT[1], email="x'@example.org")
        handle = await _open_case(time_env, queue, resident=resident, summary=TRICKY_TEXT[3],
                                  desired_outcome=TRICKY_TEXT[2])
        ref = (await status(handle)).reference
        await settle(handle)
        row = await pool.fetchrow("SELECT resident_name, resident_address, resident_email, summary, desired_outcome"
                                  " FROM complaints WHERE reference=$1", ref)
        assert tuple(row) == (resident.name, resident.address, resident.email, TRICKY_TEXT[3], TRICKY_TEXT[2])
        body = await pool.fetchval("SELECT body FROM correspondence WHERE reference=$1 AND kind='acknowledgement'",
                                   ref)
        assert TRICKY_TEXT[3] in body and resident.name in body


# =================================================================================================
# 3. Every SQL statement in activities/ is a constant, its values passed as parameters
# =================================================================================================
SQL_METHODS = {"execute", "fetch", "fetchrow", "fetchval", "executemany"}
ACTIVITIES = Path(__file__).resolve().parents[1] / "activities"
# Statements that are not built from data at all. Reviewed by hand; each says why it is safe.
NOT_DATA = {
    ("db.py", "SCHEMA.read_text(encoding='utf-8')"): "the schema file shipped with the package",
}


def _module_constants(tree: ast.Module) -> dict[str, ast.expr]:
    out: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            out[node.targets[0].id] = node.value
    return out


def _static(expr: ast.expr, consts: dict[str, ast.expr], seen: frozenset[str] = frozenset()) -> bool:
    """True if `expr` is SQL fixed when the module is written: string literals, module constants that
    are themselves static, and f-strings or `+` joining only those. `%` formatting is never static."""
    if isinstance(expr, ast.Constant):
        return isinstance(expr.value, str)
    if isinstance(expr, ast.Name):
        return expr.id in consts and expr.id not in seen and _static(consts[expr.id], consts, seen | {expr.id})
    if isinstance(expr, ast.JoinedStr):
        return all(isinstance(v, ast.Constant) or (isinstance(v, ast.FormattedValue) and v.format_spec is None
                                                    and _static(v.value, consts, seen)) for v in expr.values)
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        return _static(expr.left, consts, seen) and _static(expr.right, consts, seen)
    if isinstance(expr, (ast.List, ast.Tuple)):
        return all(_static(e, consts, seen) for e in expr.elts)
    # ", ".join(COLUMNS) over a module constant list of column names.
    if (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "join"
            and _static(expr.func.value, consts, seen) and len(expr.args) == 1 and not expr.keywords):
        arg = expr.args[0]
        return isinstance(arg, (ast.Name, ast.List, ast.Tuple)) and _static(arg, consts, seen)
    return False


def sql_problems(source: str, filename: str) -> tuple[int, list[str]]:
    """(SQL calls found, those whose statement is not static), for one module's source."""
    tree = ast.parse(source, filename)
    consts = _module_constants(tree)
    found, problems = 0, []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in SQL_METHODS and node.args):
            continue
        found += 1
        first = node.args[0]
        if _static(first, consts) or (filename, ast.unparse(first)) in NOT_DATA:
            continue
        problems.append(f"{filename}:{node.lineno}: {node.func.attr}({ast.unparse(first)[:80]}, ...)")
    return found, problems


def test_all_sql_in_activities_is_parameterised() -> None:
    total, problems = 0, []
    for path in sorted(ACTIVITIES.glob("*.py")):
        found, bad = sql_problems(path.read_text(encoding="utf-8"), path.name)
        total += found
        problems += bad
    assert problems == [], "SQL built at run time (pass values as $n parameters):\n" + "\n".join(problems)
    assert total >= 30, f"only {total} SQL calls found: is the check still looking in the right place?"


def test_the_sql_check_catches_what_it_is_for() -> None:
    """The check itself: each way of putting data into SQL text is caught; constants are not."""
    bad = '''
async def f(conn, ref, kind):
    await conn.execute(f"DELETE FROM complaints WHERE reference = '{ref}'")
    await conn.fetch("SELECT * FROM timeline WHERE kind = '%s'" % kind)
    await conn.fetchrow("SELECT * FROM complaints WHERE reference = '" + ref + "'")
    await conn.fetchval("SELECT {} FROM complaints".format(kind))
    sql = "SELECT 1 WHERE x = " + ref
    await conn.executemany(sql, [])
    await conn.fetch("SELECT " + ", ".join(kind) + " FROM complaints")
'''
    found, problems = sql_problems(bad, "bad.py")
    assert (found, len(problems)) == (6, 6), problems
    good = '''
BASE = "SELECT * FROM complaints"
WHERE = f"{BASE} WHERE reference = $1"
COLUMNS = ("resident_name", "resident_address")
async def f(conn, ref):
    await conn.fetch(WHERE, ref)
    await conn.fetchrow("SELECT " + ", ".join(COLUMNS) + " FROM complaints WHERE reference = $1", ref)
    await conn.execute("UPDATE complaints SET stage = $2" " WHERE reference = $1", ref, "x")
'''
    assert sql_problems(good, "good.py") == (3, [])
