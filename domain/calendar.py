"""Working-day arithmetic over a calendar snapshot.

Pure and deterministic: this module runs inside Temporal's workflow sandbox, so it never reads the
clock, the network or the `holidays` package. The snapshot (built by `activities.calendar_data`)
carries everything that varies: the nation's bank holidays, landlord closures and closing time.

Conventions (DOMAIN.md, "Working days"): the trigger's day is day 0; a trigger on a non-working day
or at/after closing time counts as received on the next working day; "within N working days" is due
at the end of the Nth working day after day 0, in Europe/London time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, model_validator

LONDON = ZoneInfo("Europe/London")
_DAY = timedelta(days=1)
_WEEKEND = {5: "Saturday", 6: "Sunday"}
AFTER_CLOSING = "after closing time"


class Nation(StrEnum):
    ENGLAND_AND_WALES = "england-and-wales"
    SCOTLAND = "scotland"
    NORTHERN_IRELAND = "northern-ireland"


class DeadlineUnit(StrEnum):
    WORKING_DAYS = "working_days"
    CALENDAR_DAYS = "calendar_days"
    WEEKS = "weeks"
    # Compressed time for tests and benchmarks only: the policy loader refuses it in shipped policies.
    SECONDS = "seconds"


class CalendarRangeError(ValueError):
    """A working-day question about a date the snapshot does not cover (we would be guessing)."""


class CalendarSnapshot(BaseModel):
    """Everything needed to decide whether a date is a working day, for a span of years."""

    model_config = ConfigDict(frozen=True)

    nation: Nation
    first_year: int
    last_year: int
    # Non-working *weekdays* -> why. Weekends are implicit so the snapshot stays small.
    non_working: dict[date, str]
    # A trigger at/after this London local time counts as received the next working day.
    closing_time: time | None = time(17, 0)

    @model_validator(mode="after")
    def _check(self) -> CalendarSnapshot:
        if self.first_year > self.last_year:
            raise ValueError(f"first_year {self.first_year} is after last_year {self.last_year}")
        for d in self.non_working:
            if d.weekday() in _WEEKEND:
                raise ValueError(f"non_working lists {d}, a weekend day (weekends are implicit)")
            if not self.first_year <= d.year <= self.last_year:
                raise ValueError(f"non_working lists {d}, outside {self.first_year}-{self.last_year}")
        if self.closing_time is not None and self.closing_time.tzinfo is not None:
            raise ValueError("closing_time is a London local time and must not carry a timezone")
        return self


def _covered(cal: CalendarSnapshot, d: date) -> None:
    if not cal.first_year <= d.year <= cal.last_year:
        raise CalendarRangeError(
            f"{d} is outside the calendar's years {cal.first_year}-{cal.last_year} ({cal.nation})"
        )


def non_working_reason(cal: CalendarSnapshot, d: date) -> str | None:
    """Why `d` is not a working day, or None if it is one."""
    _covered(cal, d)
    return _WEEKEND.get(d.weekday()) or cal.non_working.get(d)


def is_working_day(cal: CalendarSnapshot, d: date) -> bool:
    return non_working_reason(cal, d) is None


def _london(trigger: datetime) -> datetime:
    # A naive datetime would silently be read in the host's zone; refuse it instead.
    if trigger.tzinfo is None or trigger.utcoffset() is None:
        raise ValueError(f"trigger {trigger.isoformat()} has no timezone")
    return trigger.astimezone(LONDON)


def _after_closing(cal: CalendarSnapshot, local: datetime) -> bool:
    return cal.closing_time is not None and local.time() >= cal.closing_time


def day_zero(cal: CalendarSnapshot, trigger: datetime, unit: DeadlineUnit) -> date:
    """The day the count starts from (day 0)."""
    local = _london(trigger)
    d = local.date()
    if unit is not DeadlineUnit.WORKING_DAYS:
        # Calendar days and weeks run from the day it happened, whatever day that was.
        return d
    if _after_closing(cal, local) or not is_working_day(cal, d):
        return add_working_days(cal, d, 1)
    return d


def add_working_days(cal: CalendarSnapshot, start: date, n: int) -> date:
    """The nth working day after `start` (n=0 returns `start` unchanged, working day or not)."""
    if n < 0:
        raise ValueError(f"cannot add a negative number of working days ({n})")
    _covered(cal, start)
    d = start
    while n:
        d += _DAY
        if is_working_day(cal, d):  # raises CalendarRangeError once we walk off the snapshot
            n -= 1
    return d


def working_days_between(cal: CalendarSnapshot, start: date, end: date) -> int:
    """How many working days d have start < d <= end.

    Signed: if end is before start the result is minus the count for (end, start], so that
    "working days left" goes negative once a deadline has passed rather than sticking at 0.
    """
    if end < start:
        return -working_days_between(cal, end, start)
    _covered(cal, start)
    _covered(cal, end)
    count = 0
    d = start + _DAY
    while d <= end:
        count += is_working_day(cal, d)
        d += _DAY
    return count


def due_date(cal: CalendarSnapshot, trigger: datetime, length: int, unit: DeadlineUnit) -> date:
    """The last day on which a deadline of `length` `unit`s from `trigger` is still met."""
    if length < 0:
        raise ValueError(f"deadline length must be >= 0, got {length}")
    start = day_zero(cal, trigger, unit)
    if unit is DeadlineUnit.WORKING_DAYS:
        return add_working_days(cal, start, length)
    if unit is DeadlineUnit.CALENDAR_DAYS:
        return start + timedelta(days=length)
    if unit is DeadlineUnit.WEEKS:
        return start + timedelta(weeks=length)
    if unit is DeadlineUnit.SECONDS:
        return (_london(trigger) + timedelta(seconds=length)).date()
    raise ValueError(f"unknown deadline unit {unit!r}")


def end_of_day(d: date) -> datetime:
    """The instant day `d` ends in London (its next midnight), as a UTC datetime.

    Built from the London wall clock so BST/GMT is right: a BST day ends at 23:00 UTC. UK clocks
    change at 01:00 UTC, so London midnight always exists and is never ambiguous.
    """
    return datetime.combine(d + _DAY, time(0), tzinfo=LONDON).astimezone(UTC)


def due_instant(
    cal: CalendarSnapshot, trigger: datetime, length: int, unit: DeadlineUnit, extended_by: int = 0
) -> datetime:
    """The instant a deadline passes, after `extended_by` working days of extension.

    Day units end at the end of the (extended) due date. Seconds are exact, with no working-day
    rounding and no closing time, and an extension on them adds seconds, so a test's clock and
    the deadline's agree to the second.
    """
    if unit is DeadlineUnit.SECONDS:
        if length < 0 or extended_by < 0:
            raise ValueError(f"deadline length and extension must be >= 0, got {length} and {extended_by}")
        _london(trigger)  # refuses a naive trigger, as the day units do
        return trigger + timedelta(seconds=length + extended_by)
    base = due_date(cal, trigger, length, unit)
    return end_of_day(add_working_days(cal, base, extended_by) if extended_by else base)


def due_day(instant: datetime, unit: DeadlineUnit) -> date:
    """The London date a deadline passing at `instant` (from `due_instant`) is due by."""
    if unit is DeadlineUnit.SECONDS:
        return instant.astimezone(LONDON).date()
    # Day units pass at the next midnight after their due date.
    return (instant.astimezone(LONDON) - _DAY).date()


def due_at(cal: CalendarSnapshot, trigger: datetime, length: int, unit: DeadlineUnit) -> datetime:
    return due_instant(cal, trigger, length, unit)


def reminder_instant(
    cal: CalendarSnapshot, due: datetime, unit: DeadlineUnit, before: int, at: time
) -> datetime:
    """When to remind about a deadline passing at `due`: `before` working days earlier at `at`
    London time, or, for a seconds deadline, `before` seconds earlier."""
    if unit is DeadlineUnit.SECONDS:
        return due - timedelta(seconds=before)
    day = due_day(due, unit)
    for _ in range(before):
        day -= _DAY
        while not is_working_day(cal, day):
            day -= _DAY
    return datetime.combine(day, at, tzinfo=LONDON).astimezone(due.tzinfo)


class SkippedDay(BaseModel):
    model_config = ConfigDict(frozen=True)

    day: date
    reason: str


def explain(
    cal: CalendarSnapshot, trigger: datetime, length: int, unit: DeadlineUnit
) -> tuple[date, list[SkippedDay]]:
    """The due date and every day from the trigger's date to the due date that did not count.

    Only working-day deadlines skip anything; calendar days, weeks and seconds count every day.
    """
    due = due_date(cal, trigger, length, unit)
    if unit is not DeadlineUnit.WORKING_DAYS:
        return due, []
    local = _london(trigger)
    skipped: list[SkippedDay] = []
    d = local.date()
    while d <= due:
        reason = non_working_reason(cal, d)
        if reason is None and d == local.date() and _after_closing(cal, local):
            reason = AFTER_CLOSING
        if reason is not None:
            skipped.append(SkippedDay(day=d, reason=reason))
        d += _DAY
    return due, skipped
