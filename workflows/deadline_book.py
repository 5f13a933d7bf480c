"""The case's deadlines: opened from the policy's rules, met, extended, recomputed.

Pure and deterministic (the calendar snapshot is plain data); the workflow owns one DeadlineBook
and its keeper loop asks it what wakes next.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from domain import calendar as wd
from domain.calendar import CalendarSnapshot
from domain.case import Deadline, DeadlineKind, Stage
from domain.policy import DeadlineRule

REMINDER_TIME = time(9, 0)


@dataclass(frozen=True)
class Wakeup:
    at: datetime
    summary: str


@dataclass(frozen=True)
class Moved:
    key: str
    label: str
    old: date
    new: date


class DeadlineBook:
    def __init__(self) -> None:
        self.deadlines: dict[str, Deadline] = {}

    # -- computing -------------------------------------------------------------------------------
    @staticmethod
    def _due(cal: CalendarSnapshot, d: Deadline) -> date:
        base = wd.due_date(cal, d.trigger_at, d.length, d.unit)
        return wd.add_working_days(cal, base, d.extended_by) if d.extended_by else base

    @staticmethod
    def _reminder(cal: CalendarSnapshot, due: date, before: int, trigger_at: datetime) -> datetime | None:
        if before <= 0:
            return None
        day = due
        for _ in range(before):
            day -= timedelta(days=1)
            while not wd.is_working_day(cal, day):
                day -= timedelta(days=1)
        at = datetime.combine(day, REMINDER_TIME, tzinfo=wd.LONDON).astimezone(trigger_at.tzinfo)
        # A reminder that would fall before the clock started says nothing useful.
        return at if at > trigger_at else None

    # -- changing --------------------------------------------------------------------------------
    def open(
        self,
        cal: CalendarSnapshot,
        key: str,
        rule: DeadlineRule,
        stage: Stage,
        trigger_at: datetime,
        kind: DeadlineKind = DeadlineKind.DUTY,
    ) -> Deadline:
        due = wd.due_date(cal, trigger_at, rule.length, rule.unit)
        deadline = Deadline(
            key=key,
            label=rule.label,
            stage=stage,
            kind=kind,
            length=rule.length,
            unit=rule.unit,
            trigger_at=trigger_at,
            original_due_date=due,
            due_date=due,
            due_at=wd.end_of_day(due),
            reminder_working_days_before=rule.reminder_working_days_before,
            reminder_at=self._reminder(cal, due, rule.reminder_working_days_before, trigger_at),
        )
        self.deadlines[key] = deadline
        return deadline

    def meet(self, key: str, at: datetime) -> Deadline | None:
        d = self.deadlines.get(key)
        if d is not None and d.open:
            d.met_at = at
        return d

    def cancel(self, key: str) -> None:
        d = self.deadlines.get(key)
        if d is not None and d.open:
            d.cancelled = True

    def extend(self, cal: CalendarSnapshot, key: str, working_days: int) -> Moved:
        d = self.deadlines[key]
        old = d.due_date
        d.extended_by += working_days
        self._place(cal, d)
        return Moved(key, d.label, old, d.due_date)

    def _place(self, cal: CalendarSnapshot, d: Deadline) -> None:
        d.due_date = self._due(cal, d)
        d.due_at = wd.end_of_day(d.due_date)
        d.reminder_at = self._reminder(cal, d.due_date, d.reminder_working_days_before, d.trigger_at)
        if d.reminded and d.reminder_at is not None:
            d.reminded = False  # the date moved: remind again before the new one

    def recompute(self, cal: CalendarSnapshot) -> list[Moved]:
        """After a calendar change: move every open deadline whose date the change touches."""
        moved: list[Moved] = []
        for d in self.deadlines.values():
            if not d.open or d.passed_at is not None:
                continue
            old = d.due_date
            new = self._due(cal, d)
            if new != old:
                self._place(cal, d)
                moved.append(Moved(d.key, d.label, old, new))
        return moved

    # -- reading ---------------------------------------------------------------------------------
    def get(self, key: str) -> Deadline | None:
        return self.deadlines.get(key)

    def all(self) -> list[Deadline]:
        return list(self.deadlines.values())

    def watching(self) -> list[Deadline]:
        return [d for d in self.deadlines.values() if d.open and d.passed_at is None]

    def next_due(self) -> Deadline | None:
        duties = [d for d in self.watching() if d.kind is DeadlineKind.DUTY]
        return min(duties, key=lambda d: d.due_at, default=None)

    def next_wakeup(self) -> Wakeup | None:
        candidates: list[Wakeup] = []
        for d in self.watching():
            candidates.append(Wakeup(d.due_at, f"{d.label} due {d.due_date.isoformat()}"))
            if d.reminder_at is not None and not d.reminded:
                candidates.append(Wakeup(d.reminder_at, f"Reminder: {d.label} due {d.due_date.isoformat()}"))
        return min(candidates, key=lambda w: w.at, default=None)

    def reminders_due(self, now: datetime) -> list[Deadline]:
        return [d for d in self.watching() if d.reminder_at is not None and not d.reminded and d.reminder_at <= now]

    def passed(self, now: datetime) -> list[Deadline]:
        return [d for d in self.watching() if d.due_at <= now]

    def overdue(self) -> bool:
        return any(d.breached and d.open for d in self.deadlines.values())

