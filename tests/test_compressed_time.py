"""Compressed time: deadlines in seconds, for tests and benchmarks on a real-time server.

The arithmetic is exact (no working-day rounding, no end of day); the loader keeps seconds out of
shipped policies; and a compressed case runs its whole procedure on the dev server in real seconds.
"""

from __future__ import annotations

import asyncio
import os
import time as clock
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from domain import calendar as wd
from domain.calendar import CalendarSnapshot, DeadlineUnit, Nation
from domain.case import DeadlineKind, Stage
from domain.policy import POLICY_DIR, POLICY_PATH_ENV, PolicyError, load_policy, load_policy_file
from tests.support import complaint, deadline, new_reference, start, status, timeline_kinds, wait_for, worker
from workflows.deadline_book import DeadlineBook

TEST_POLICIES = Path(__file__).resolve().parent / "policies"
SECONDS = DeadlineUnit.SECONDS
# Christmas week: if seconds were rounded to working days, these would land days away.
CAL = CalendarSnapshot(nation=Nation.ENGLAND_AND_WALES, first_year=2025, last_year=2027,
                       non_working={date(2025, 12, 25): "Christmas Day", date(2025, 12, 26): "Boxing Day"})
RESPONSE = {"decision": "upheld", "reasons": "The repair was booked late.", "by": "Priya Shah"}


@pytest.fixture
def compressed_policies(monkeypatch: pytest.MonkeyPatch) -> None:
    # The load_policy activity reads the search path at each call, so setting it here is enough.
    monkeypatch.setenv(POLICY_PATH_ENV, str(TEST_POLICIES))


# -- the arithmetic ------------------------------------------------------------------------------
def test_seconds_are_exact_even_after_closing_on_a_bank_holiday() -> None:
    trigger = datetime(2025, 12, 25, 23, 59, 55, tzinfo=UTC)  # Christmas Day, after closing time
    at = wd.due_instant(CAL, trigger, 10, SECONDS)
    assert at == trigger + timedelta(seconds=10)
    assert wd.due_day(at, SECONDS) == date(2025, 12, 26)  # the London date of the instant itself
    assert wd.due_date(CAL, trigger, 10, SECONDS) == date(2025, 12, 26)
    assert wd.due_at(CAL, trigger, 10, SECONDS) == at
    assert wd.explain(CAL, trigger, 10, SECONDS) == (date(2025, 12, 26), [])
    # An extension on a seconds deadline adds seconds.
    assert wd.due_instant(CAL, trigger, 10, SECONDS, extended_by=3) == trigger + timedelta(seconds=13)
    with pytest.raises(ValueError, match="timezone"):
        wd.due_instant(CAL, trigger.replace(tzinfo=None), 10, SECONDS)


def test_days_and_seconds_share_one_path() -> None:
    trigger = datetime(2025, 12, 24, 10, 0, tzinfo=UTC)
    days = wd.due_instant(CAL, trigger, 2, DeadlineUnit.WORKING_DAYS, extended_by=1)
    # 24th is day 0; the 25th and 26th do not count and 27/28 are a weekend: 29, 30, then +1 = 31.
    assert days == wd.end_of_day(date(2025, 12, 31))
    assert wd.due_day(days, DeadlineUnit.WORKING_DAYS) == date(2025, 12, 31)


def test_the_deadline_book_counts_seconds_for_due_extensions_and_reminders() -> None:
    policy = load_policy_file(TEST_POLICIES / "compressed-code.toml")
    rule = policy.stage1.response  # 10 s, reminded 2 s before
    trigger = datetime(2025, 12, 25, 16, 59, 59, tzinfo=UTC)
    book = DeadlineBook()
    d = book.open_deadline(CAL, "stage1.response", rule, Stage.STAGE1, trigger, DeadlineKind.DUTY)
    assert d.due_at == trigger + timedelta(seconds=10) and d.due_date == date(2025, 12, 25)
    assert d.reminder_at == d.due_at - timedelta(seconds=2)
    assert book.next_wakeup().at == d.reminder_at
    moved = book.extend(CAL, "stage1.response", 4)
    assert d.due_at == trigger + timedelta(seconds=14) and d.reminder_at == d.due_at - timedelta(seconds=2)
    assert (moved.old, moved.new) == (date(2025, 12, 25), date(2025, 12, 25))
    assert book.passed(trigger + timedelta(seconds=13)) == []
    assert book.passed(trigger + timedelta(seconds=14)) == [d]
    # A calendar change never moves a seconds deadline.
    assert book.recompute(CAL.model_copy(update={"non_working": {}})) == []


# -- the loader --------------------------------------------------------------------------------
def test_compressed_policies_load_only_from_the_search_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(POLICY_PATH_ENV, raising=False)
    with pytest.raises(PolicyError, match="unknown policy 'compressed-code'"):
        load_policy("compressed-code")
    monkeypatch.setenv(POLICY_PATH_ENV, f"/nonexistent{os.pathsep}{TEST_POLICIES}")
    for pid in ("compressed-code", "compressed-connexus", "compressed-optivo"):
        p = load_policy(pid)
        assert p.test_only
        shipped = load_policy(pid.replace("compressed-", "").replace("code", "hos-code-2024"))
        assert p.stage2.kind is shipped.stage2.kind and not shipped.test_only
    # Shipped policies come first on the path: a test directory cannot shadow one.
    assert not load_policy("hos-code-2024").test_only


def _shipped_copy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str, name: str) -> Path:
    """Pretend tmp_path is policies/ so the file is judged as a shipped one."""
    monkeypatch.setattr("domain.policy.POLICY_DIR", tmp_path)
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_a_shipped_policy_may_not_be_test_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    text = (TEST_POLICIES / "compressed-code.toml").read_text()
    path = _shipped_copy(monkeypatch, tmp_path, text, "compressed-code")
    with pytest.raises(PolicyError) as err:
        load_policy_file(path)
    assert str(path) in str(err.value) and "field test_only" in str(err.value)


def test_a_shipped_policy_may_not_count_in_seconds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    text = (POLICY_DIR / "hos-code-2024.toml").read_text().replace(
        'length = 20, unit = "working_days", trigger = "closed"', 'length = 20, unit = "seconds", trigger = "closed"')
    path = _shipped_copy(monkeypatch, tmp_path, text, "hos-code-2024")
    with pytest.raises(PolicyError) as err:
        load_policy_file(path)
    assert str(path) in str(err.value) and "survey.answer_window.unit" in str(err.value)
    # Nor may a policy anywhere count in seconds without saying it is a test policy.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "hos-code-2024.toml").write_text(text)
    with pytest.raises(PolicyError, match=r"survey\.answer_window\.unit.*test_only"):
        load_policy_file(elsewhere / "hos-code-2024.toml")


# -- a whole case in real seconds on the dev server ----------------------------------------------
async def test_a_compressed_case_runs_to_closure_in_real_time(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, compressed_policies: None, dev_now: Callable[[], datetime]
) -> None:
    ref = new_reference("CMPT")
    queue = f"compressed-{ref}"
    began = clock.monotonic()
    async with worker(dev_env, pool, queue):
        handle = await start(dev_env, complaint(ref, dev_now(), policy="compressed-code"), queue)
        await wait_for(handle, lambda s: s.status.value == "investigating", "acknowledgement", limit=10)
        await handle.execute_update("submit_stage1_response", RESPONSE)
        # Nobody asks for a review: the 20 s window passes, the case closes, the 20 s survey window passes.
        final = await asyncio.wait_for(handle.result(), timeout=55)
    assert clock.monotonic() - began < 55
    assert final.stage.value == "closed" and final.breaches == []
    assert deadline(final, "escalation.window").passed_at is not None
    assert deadline(final, "survey.answer").passed_at is not None
    kinds = await timeline_kinds(pool, ref)
    assert kinds.count("window_closed") == 2 and kinds[-1] == "window_closed" and "closed" in kinds
    assert "deadline_breached" not in kinds


async def test_a_compressed_case_nobody_answers_records_one_stage1_breach(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, compressed_policies: None, dev_now: Callable[[], datetime]
) -> None:
    ref = new_reference("CMPB")
    queue = f"compressed-{ref}"
    async with worker(dev_env, pool, queue):
        handle = await start(dev_env, complaint(ref, dev_now(), policy="compressed-code"), queue)
        # Acknowledged at once, then nobody responds: the 10 s response deadline passes.
        s = await wait_for(handle, lambda s: bool(s.breaches), "the Stage 1 response breach", limit=25)
        assert [b.deadline for b in s.breaches] == ["stage1.response"]
        assert deadline(s, "stage1.acknowledgement").met_on_time
        # The record gets it too, once (the keeper marks it passed, so it never fires again).
        for _ in range(200):
            if "deadline_breached" in await timeline_kinds(pool, ref):
                break
            await asyncio.sleep(0.05)
        s = await status(handle)
        await handle.terminate("test over")
    assert [b.deadline for b in s.breaches] == ["stage1.response"]
    assert (await timeline_kinds(pool, ref)).count("deadline_breached") == 1
    rows = await pool.fetch("SELECT deadline_key FROM breaches WHERE reference=$1", ref)
    assert [r["deadline_key"] for r in rows] == ["stage1.response"]
