"""Working-day arithmetic: properties over arbitrary calendars, and real UK dates.

Every expected date below was checked by hand against the published bank holidays (gov.uk) and a
real calendar; the comments show the counting so a reader can re-check it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activities.calendar_data import CalendarChange, build_snapshot
from domain.calendar import (
    LONDON,
    CalendarRangeError,
    CalendarSnapshot,
    DeadlineUnit,
    Nation,
    SkippedDay,
    add_working_days,
    day_zero,
    due_at,
    due_date,
    end_of_day,
    explain,
    is_working_day,
    working_days_between,
)
from starter import deadline_cmd

ROOT = Path(__file__).resolve().parent.parent
EW, SCT, NI = Nation.ENGLAND_AND_WALES, Nation.SCOTLAND, Nation.NORTHERN_IRELAND
WD, CD, WK = DeadlineUnit.WORKING_DAYS, DeadlineUnit.CALENDAR_DAYS, DeadlineUnit.WEEKS
FIRST, LAST = 2020, 2030


@cache
def real(nation: Nation) -> CalendarSnapshot:
    return build_snapshot(nation, FIRST, LAST)


def at(d: str, hhmm: str = "09:00") -> datetime:
    """A London wall-clock moment."""
    return datetime.combine(date.fromisoformat(d), time.fromisoformat(hhmm), tzinfo=LONDON)


def due(nation: Nation, d: str, n: int, unit: DeadlineUnit = WD, hhmm: str = "09:00") -> date:
    return due_date(real(nation), at(d, hhmm), n, unit)


D = date.fromisoformat

# -- properties ------------------------------------------------------------------------------------

PROPS = settings(max_examples=60, deadline=None)


@st.composite
def calendars(draw: st.DrawFn) -> CalendarSnapshot:
    """Either a real nation's calendar or a random one with arbitrary closed weekdays."""
    if draw(st.booleans()):
        return real(draw(st.sampled_from(list(Nation))))
    closed = draw(st.sets(st.dates(date(FIRST, 1, 1), date(LAST, 12, 31)).filter(lambda d: d.weekday() < 5),
                          max_size=200))
    return CalendarSnapshot(nation=EW, first_year=FIRST, last_year=LAST,
                            non_working={d: "closed" for d in closed})


starts = st.dates(date(FIRST, 1, 1), date(2028, 12, 31))  # leaves room to count forward
counts = st.integers(0, 300)


@PROPS
@given(calendars(), starts, st.integers(1, 300))
def test_result_is_a_working_day(cal: CalendarSnapshot, start: date, n: int) -> None:
    assert is_working_day(cal, add_working_days(cal, start, n))


@PROPS
@given(calendars(), starts, counts)
def test_counting_back_gives_n(cal: CalendarSnapshot, start: date, n: int) -> None:
    end = add_working_days(cal, start, n)
    assert working_days_between(cal, start, end) == n
    assert working_days_between(cal, end, start) == -n


@PROPS
@given(calendars(), starts, counts, counts)
def test_monotonic_in_n(cal: CalendarSnapshot, start: date, a: int, b: int) -> None:
    a, b = sorted((a, b))
    if a < b:
        assert add_working_days(cal, start, a) < add_working_days(cal, start, b)
    else:
        assert add_working_days(cal, start, a) == add_working_days(cal, start, b)


@PROPS
@given(calendars(), starts, starts, counts)
def test_monotonic_in_start(cal: CalendarSnapshot, s1: date, s2: date, n: int) -> None:
    s1, s2 = sorted((s1, s2))
    assert add_working_days(cal, s1, n) <= add_working_days(cal, s2, n)


@PROPS
@given(calendars(), st.datetimes(datetime(FIRST, 1, 1), datetime(2028, 12, 31), timezones=st.just(UTC)),
       st.timedeltas(timedelta(0), timedelta(days=30)), st.integers(0, 60))
def test_due_date_monotonic_in_trigger(cal: CalendarSnapshot, t: datetime, gap: timedelta, n: int) -> None:
    due1, due2 = due_date(cal, t, n, WD), due_date(cal, t + gap, n, WD)
    assert due1 <= due2
    assert is_working_day(cal, due1)
    assert due1 >= t.astimezone(LONDON).date()


@settings(max_examples=200, deadline=None)
@given(st.dates(date(1990, 1, 1), date(2100, 12, 30)))
def test_end_of_day_is_london_midnight(d: date) -> None:
    end = end_of_day(d)
    assert end.utcoffset() == timedelta(0)
    local = end.astimezone(LONDON)
    assert (local.date(), local.time()) == (d + timedelta(days=1), time(0))
    # A London day is 23, 24 or 25 hours long, never anything else.
    assert end_of_day(d + timedelta(days=1)) - end in {timedelta(hours=h) for h in (23, 24, 25)}


@PROPS
@given(calendars(), st.datetimes(datetime(FIRST, 1, 1), datetime(2028, 12, 31), timezones=st.just(UTC)),
       # Seconds (compressed test time) end at an exact instant, not a day's end: tests/test_compressed_time.py.
       st.integers(0, 60), st.sampled_from([u for u in DeadlineUnit if u is not DeadlineUnit.SECONDS]))
def test_explain_agrees_with_due_date(cal: CalendarSnapshot, t: datetime, n: int, unit: DeadlineUnit) -> None:
    when, skipped = explain(cal, t, n, unit)
    assert when == due_date(cal, t, n, unit)
    assert due_at(cal, t, n, unit) == end_of_day(when)
    if unit is WD:
        # Every day from the trigger's date to the due date either counted or is explained.
        first = t.astimezone(LONDON).date()
        assert (when - first).days + 1 == n + 1 + len(skipped)  # +1: day 0 itself
    else:
        assert skipped == []


# -- snapshot building -----------------------------------------------------------------------------


def test_snapshot_holds_only_weekdays_and_round_trips_as_json() -> None:
    for nation in Nation:
        cal = real(nation)
        assert all(d.weekday() < 5 for d in cal.non_working)
        assert CalendarSnapshot.model_validate_json(cal.model_dump_json()) == cal


def test_snapshot_rejects_weekends_and_other_years() -> None:
    with pytest.raises(ValueError):
        CalendarSnapshot(nation=EW, first_year=2026, last_year=2026, non_working={D("2026-12-26"): "x"})
    with pytest.raises(ValueError):
        CalendarSnapshot(nation=EW, first_year=2026, last_year=2026, non_working={D("2027-01-01"): "x"})


@pytest.mark.parametrize("nation", list(Nation))
def test_one_off_bank_holidays(nation: Nation) -> None:
    cal = real(nation)
    assert cal.non_working[D("2022-09-19")] == "State Funeral of Queen Elizabeth II"
    assert cal.non_working[D("2023-05-08")] == "Coronation of Charles III"
    assert cal.non_working[D("2022-06-03")] == "Platinum Jubilee of Elizabeth II"


def test_nation_differences() -> None:
    ew, sct, ni = real(EW).non_working, real(SCT).non_working, real(NI).non_working
    assert D("2027-03-29") in ew and D("2027-03-29") in ni and D("2027-03-29") not in sct  # Easter Monday
    assert D("2027-01-04") in sct and D("2027-01-04") not in ew  # 2 Jan substitute
    assert D("2027-03-17") in ni and D("2027-03-17") not in ew  # St Patrick's Day, Wednesday
    assert D("2027-08-02") in sct and D("2027-08-30") in ew and D("2027-08-02") not in ew  # August
    assert D("2027-11-30") in sct and D("2027-11-30") not in ni  # St Andrew's Day, Tuesday


def test_changes_and_closures() -> None:
    changes = [
        CalendarChange(day=D("2026-06-15"), change="remove", reason="not needed", nation=SCT),
        CalendarChange(day=D("2026-06-16"), change="add", reason="Moved holiday", nation=SCT),
        CalendarChange(day=D("2026-06-17"), change="add", reason="Only in NI", nation=NI),
        CalendarChange(day=D("2026-06-18"), change="add", reason="Everywhere"),
        CalendarChange(day=D("2026-06-20"), change="add", reason="A Saturday"),
    ]
    cal = build_snapshot(SCT, 2026, 2026, closures=[D("2026-12-29"), D("2026-12-25"), D("2027-01-05")],
                         changes=changes)
    nw = cal.non_working
    assert D("2026-06-15") not in nw
    assert nw[D("2026-06-16")] == "Moved holiday"
    assert D("2026-06-17") not in nw
    assert nw[D("2026-06-18")] == "Everywhere"
    assert D("2026-06-20") not in nw  # weekends are implicit
    assert nw[D("2026-12-29")] == "Landlord closure"
    assert nw[D("2026-12-25")] == "Christmas Day"  # the bank holiday's name wins
    assert D("2027-01-05") not in nw  # outside the snapshot's years


def test_outside_the_snapshot_raises() -> None:
    cal = build_snapshot(EW, 2026, 2026)
    with pytest.raises(CalendarRangeError):
        add_working_days(cal, D("2026-12-30"), 5)
    with pytest.raises(CalendarRangeError):
        is_working_day(cal, D("2025-12-31"))
    with pytest.raises(ValueError):
        due_date(cal, at("2026-06-01"), -1, WD)
    with pytest.raises(ValueError):
        day_zero(cal, datetime(2026, 6, 1, 9), WD)  # naive trigger


# -- real dates ------------------------------------------------------------------------------------

# Christmas 2026: Fri 25 Dec, Boxing Day Sat 26 -> substitute Mon 28, New Year's Day Fri 1 Jan 2027,
# Scotland's 2 January is a Saturday -> substitute Mon 4 Jan. From Wed 23 Dec (day 0), counting
# 24, 29, 30, 31 Dec, then 4, 5, 6, 7, 8, 11 Jan (Scotland: 5, 6, 7, 8, 11, 12 Jan).
@pytest.mark.parametrize(
    ("nation", "n", "expected"),
    [
        (EW, 1, "2026-12-24"),
        (EW, 2, "2026-12-29"),
        (EW, 5, "2027-01-04"),
        (EW, 10, "2027-01-11"),
        (SCT, 4, "2026-12-31"),
        (SCT, 5, "2027-01-05"),
        (SCT, 10, "2027-01-12"),
        (NI, 5, "2027-01-04"),
        (NI, 10, "2027-01-11"),
    ],
)
def test_christmas_2026(nation: Nation, n: int, expected: str) -> None:
    assert due(nation, "2026-12-23", n) == D(expected)


@pytest.mark.parametrize(
    ("nation", "expected"),
    [
        # Thu 25 Mar 2027 day 0; Good Friday 26 Mar; Easter Monday 29 Mar except in Scotland.
        (EW, "2027-03-30"),
        (NI, "2027-03-30"),
        (SCT, "2027-03-29"),
    ],
)
def test_easter_2027(nation: Nation, expected: str) -> None:
    assert due(nation, "2027-03-25", 1) == D(expected)


@pytest.mark.parametrize("nation", list(Nation))
def test_one_offs_move_deadlines(nation: Nation) -> None:
    # Fri 16 Sep 2022 + 1 -> Mon 19 is the State Funeral -> Tue 20.
    assert due(nation, "2022-09-16", 1) == D("2022-09-20")
    # Fri 5 May 2023 + 1 -> Mon 8 is the Coronation -> Tue 9.
    assert due(nation, "2023-05-05", 1) == D("2023-05-09")
    # The week before: Mon 1 May 2023 was the May Day holiday, so Fri 28 Apr + 1 is Tue 2 May.
    assert due(nation, "2023-04-28", 1) == D("2023-05-02")


def test_twelfth_of_july_substitute() -> None:
    # 12 July 2026 is a Sunday -> NI substitute Mon 13. From Fri 10 July, 1 working day:
    assert due(NI, "2026-07-10", 1) == D("2026-07-14")
    assert due(EW, "2026-07-10", 1) == D("2026-07-13")
    # 12 July 2025 is a Saturday -> substitute Mon 14.
    assert due(NI, "2025-07-11", 1) == D("2025-07-15")
    assert due(SCT, "2025-07-11", 1) == D("2025-07-14")
    # 12 July 2027 is a Monday itself.
    assert due(NI, "2027-07-09", 1) == D("2027-07-13")


def test_st_andrews_substitute() -> None:
    # 30 Nov 2025 is a Sunday -> Scottish substitute Mon 1 Dec. From Fri 28 Nov, 1 working day:
    assert real(SCT).non_working[D("2025-12-01")] == "Saint Andrew's Day (observed)"
    assert due(SCT, "2025-11-28", 1) == D("2025-12-02")
    assert due(EW, "2025-11-28", 1) == D("2025-12-01")
    assert due(NI, "2025-11-28", 1) == D("2025-12-01")


def test_after_closing_time() -> None:
    cal = real(EW)
    # Wed 4 Mar 2026: before 17:00 it is day 0; at or after 17:00 day 0 is Thu 5 Mar.
    assert day_zero(cal, at("2026-03-04", "16:59"), WD) == D("2026-03-04")
    assert day_zero(cal, at("2026-03-04", "17:00"), WD) == D("2026-03-05")
    assert due(EW, "2026-03-04", 5, hhmm="16:59") == D("2026-03-11")
    assert due(EW, "2026-03-04", 5, hhmm="17:30") == D("2026-03-12")
    # Fri 6 Mar after closing: day 0 is Mon 9 Mar.
    assert due(EW, "2026-03-06", 1, hhmm="18:00") == D("2026-03-10")
    # The trigger's zone does not matter, London's wall clock does: 16:30 UTC on Wed 1 July 2026 is
    # 17:30 BST, after closing -> day 0 Thu 2 July, due Fri 3 July.
    assert due_date(cal, datetime(2026, 7, 1, 16, 30, tzinfo=UTC), 1, WD) == D("2026-07-03")
    # ... while 16:30 UTC on Wed 4 Mar (GMT) is 16:30 in London, before closing.
    assert due_date(cal, datetime(2026, 3, 4, 16, 30, tzinfo=UTC), 1, WD) == D("2026-03-05")
    # No closing time: a late trigger still counts that day.
    open_late = cal.model_copy(update={"closing_time": None})
    assert due_date(open_late, at("2026-03-04", "23:59"), 1, WD) == D("2026-03-05")


def test_weekend_and_holiday_receipt() -> None:
    # Sat 7 Mar 2026 -> day 0 Mon 9 Mar; 5 working days -> Mon 16 Mar.
    assert day_zero(real(EW), at("2026-03-07", "10:00"), WD) == D("2026-03-09")
    assert due(EW, "2026-03-07", 5, hhmm="10:00") == D("2026-03-16")
    # Received on Christmas Day 2026 -> day 0 Tue 29 Dec; 1 working day -> Wed 30 Dec.
    assert due(EW, "2026-12-25", 1) == D("2026-12-30")
    # 0 working days from a Saturday is the next working day (the day it counts as received).
    assert due(EW, "2026-03-07", 0) == D("2026-03-09")


def test_calendar_days_and_weeks() -> None:
    # Connexus: contact within 3 days. From Thu 24 Dec 2026 -> Sun 27 Dec (no roll-forward).
    assert due(EW, "2026-12-24", 3, CD) == D("2026-12-27")
    # Calendar days start on the trigger's own date even on a Saturday or after closing.
    assert due(EW, "2026-03-07", 3, CD) == D("2026-03-10")
    assert due(EW, "2026-03-04", 1, CD, hhmm="18:00") == D("2026-03-05")
    # Optivo: eight weeks from Fri 6 Mar 2026 -> Fri 1 May 2026.
    assert due(EW, "2026-03-06", 8, WK) == D("2026-05-01")
    assert due(EW, "2026-03-06", 0, WK) == D("2026-03-06")


def test_landlord_closure() -> None:
    closures = [D("2026-12-29"), D("2026-12-30"), D("2026-12-31")]
    cal = build_snapshot(EW, 2026, 2027, closures=closures)
    # From Wed 23 Dec: 24 Dec, then closed to 4 Jan: 4, 5, 6, 7 Jan.
    due_on, skipped = explain(cal, at("2026-12-23"), 5, WD)
    assert due_on == D("2027-01-07")
    assert [s.day for s in skipped if s.reason == "Landlord closure"] == closures
    assert SkippedDay(day=D("2026-12-28"), reason="Boxing Day (observed)") in skipped


def test_explain_lists_reasons() -> None:
    # Fri 6 Mar 2026 at 18:00 -> counts from Mon 9 Mar.
    due_on, skipped = explain(real(EW), at("2026-03-06", "18:00"), 1, WD)
    assert due_on == D("2026-03-10")
    assert skipped == [
        SkippedDay(day=D("2026-03-06"), reason="after closing time"),
        SkippedDay(day=D("2026-03-07"), reason="Saturday"),
        SkippedDay(day=D("2026-03-08"), reason="Sunday"),
    ]


def test_dst_boundaries() -> None:
    # BST starts Sun 29 Mar 2026 at 01:00 UTC and ends Sun 25 Oct 2026 at 01:00 UTC.
    assert end_of_day(D("2026-03-27")) == datetime(2026, 3, 28, 0, 0, tzinfo=UTC)  # GMT
    assert end_of_day(D("2026-03-28")) == datetime(2026, 3, 29, 0, 0, tzinfo=UTC)  # still GMT at 00:00
    assert end_of_day(D("2026-03-29")) == datetime(2026, 3, 29, 23, 0, tzinfo=UTC)  # BST
    assert end_of_day(D("2026-10-24")) == datetime(2026, 10, 24, 23, 0, tzinfo=UTC)  # BST
    assert end_of_day(D("2026-10-25")) == datetime(2026, 10, 26, 0, 0, tzinfo=UTC)  # GMT again
    # Triggered Mon 23 Mar 2026 in GMT, 5 working days -> Mon 30 Mar, which ends in BST.
    assert due_at(real(EW), at("2026-03-23"), 5, WD) == datetime(2026, 3, 30, 23, 0, tzinfo=UTC)
    # Triggered Mon 19 Oct 2026 in BST, 5 working days -> Mon 26 Oct, which ends in GMT.
    assert due_at(real(EW), at("2026-10-19"), 5, WD) == datetime(2026, 10, 27, 0, 0, tzinfo=UTC)


# -- the CLI ---------------------------------------------------------------------------------------
# A few runs through the real `python -m starter` (each costs an interpreter start), the rest of the
# argument handling in-process on the same parser.


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "starter", "deadline", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def cli_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    parser = deadline_cmd.OneLineArgumentParser(prog="starter")
    deadline_cmd.add_parser(parser.add_subparsers(dest="command", required=True))
    try:
        parsed = parser.parse_args(["deadline", *args])
        code = parsed.func(parsed)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, out: str, err: str, mentions: str) -> None:
    assert code == 2
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and err.endswith("\n"), err
    assert mentions in err, err


def test_cli_due_date() -> None:
    r = cli("--from", "2026-12-23", "--working-days", "10", "--nation", "england-and-wales")
    assert (r.returncode, r.stdout, r.stderr) == (0, "2027-01-11\n", "")


def test_cli_explain_and_json() -> None:
    r = cli("--from", "2026-12-23", "--working-days", "5", "--nation", "scotland", "--explain")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines[0] == "2027-01-05"
    assert any("2027-01-04" in line and "New Year Holiday (observed)" in line for line in lines[1:])
    assert len(lines) == 1 + 8  # 25, 26, 27, 28 Dec and 1, 2, 3, 4 Jan

    r = cli("--from", "2026-12-23T17:30:00+00:00", "--working-days", "5", "--closure", "2026-12-29", "--json")
    assert r.returncode == 0
    out = json.loads(r.stdout)
    # After closing -> day 0 Thu 24 Dec; 29 Dec closed: 30, 31 Dec, 4, 5, 6 Jan.
    assert out["due_date"] == "2027-01-06"
    assert datetime.fromisoformat(out["due_at"]) == datetime(2027, 1, 7, tzinfo=UTC)
    assert {"day": "2026-12-23", "reason": "after closing time"} in out["skipped"]
    assert {"day": "2026-12-29", "reason": "Landlord closure"} in out["skipped"]


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["--from", "2026-12-23", "--working-days", "10", "--nation", "wales"], "wales"),
        (["--from", "2026-12-23", "--working-days", "-1"], "--working-days"),
        (["--from", "2026-12-23"], "--working-days"),
    ],
)
def test_cli_errors(args: list[str], mentions: str) -> None:
    r = cli(*args)
    assert_one_line_error(r.returncode, r.stdout, r.stderr, mentions)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--from", "2026-12-23", "--working-days", "5", "--nation", "northern-ireland"], "2027-01-04\n"),
        (["--from", "2026-12-24", "--calendar-days", "3"], "2026-12-27\n"),
        (["--from", "2026-03-06", "--weeks", "8"], "2026-05-01\n"),
        # 17:30 BST on Wed 1 July 2026, given in UTC: after closing -> day 0 Thu 2 July.
        (["--from", "2026-07-01T16:30:00Z", "--working-days", "1"], "2026-07-03\n"),
        # No offset: London local time.
        (["--from", "2026-07-01T17:30", "--working-days", "1"], "2026-07-03\n"),
        (["--from", "2026-12-23", "--working-days", "0"], "2026-12-23\n"),
    ],
)
def test_cli_in_process(capsys: pytest.CaptureFixture[str], args: list[str], expected: str) -> None:
    assert cli_in_process(capsys, *args) == (0, expected, "")


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["--from", "2026-12-23", "--working-days", "10", "--nation", "wales"], "wales"),
        (["--from", "2026-12-23", "--calendar-days", "-3"], "--calendar-days"),
        (["--from", "2026-13-23", "--working-days", "1"], "2026-13-23"),
        (["--from", "yesterday", "--weeks", "1"], "yesterday"),
        (["--from", "2026-12-23"], "--working-days"),
        (["--from", "2026-12-23", "--working-days", "1", "--weeks", "1"], "not allowed"),
        (["--from", "2026-12-23", "--working-days", "x"], "--working-days"),
        (["--from", "2026-12-23", "--working-days", "1", "--closure", "29/12/2026"], "29/12/2026"),
        (["--working-days", "1"], "--from"),
        (["--from", "2026-12-23", "--working-days", "1", "--bogus"], "--bogus"),
    ],
)
def test_cli_errors_in_process(capsys: pytest.CaptureFixture[str], args: list[str], mentions: str) -> None:
    assert_one_line_error(*cli_in_process(capsys, *args), mentions)


# -- the years a case's calendar covers (issue 15, point 6) ------------------------------------------
def test_a_case_calendar_runs_from_receipt_to_three_years_after_the_later_of_receipt_and_opening() -> None:
    from domain.policy import load_policy
    from domain.records import calendar_request
    from tests.support import complaint, london

    policy = load_policy("hos-code-2024")
    migrated = complaint("CMP-OLD1", london(2022, 6, 1))
    opened = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)  # still 2026 in London (GMT in winter)
    req = calendar_request(migrated, policy, opened)
    assert (req.first_year, req.last_year) == (2022, 2029)
    # Opened just after New Year in London: the calendar runs a year further.
    req = calendar_request(migrated, policy, datetime(2027, 1, 1, 0, 30, tzinfo=UTC))
    assert (req.first_year, req.last_year) == (2022, 2030)
    # A case opened the year it was received counts as before; one from before the field existed, too.
    same = complaint("CMP-NEW1", london(2026, 12, 23))
    assert (calendar_request(same, policy, opened).first_year, calendar_request(same, policy, opened).last_year) == (
        2026, 2029)
    assert (calendar_request(same, policy).first_year, calendar_request(same, policy).last_year) == (2026, 2029)
