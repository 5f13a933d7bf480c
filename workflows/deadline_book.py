"""The case's deadlines: opened from the policy's rules, met, extended, recomputed.

Pure and deterministic (the calendar snapshot is plain data); the workflow owns one DeadlineBook
and its keeper loop asks it what wakes next.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from domain import calendar as wd
from domain.calendar import CalendarSnapshot
from domain.case import Deadline, DeadlineKind, Stage
from domain.policy import DeadlineRule

REMINDER_TIME = time(9, 0)


def kept_due(cal: CalendarSnapshot, trigger_at: datetime, length: int, unit: wd.DeadlineUnit,
             extended_by: int = 0) -> tuple[date, datetime]:
    """The due date and the instant it passes: the one function that dates a deadline, for the book and for
    every letter that promises one (workflows/letter_dates.py), so the two cannot disagree."""
    at = wd.due_instant(cal, trigger_at, length, unit, extended_by)
    return wd.due_day(at, unit), at


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
    def _due(cal: CalendarSnapshot, d: Deadline) -> tuple[date, datetime]:
        return kept_due(cal, d.trigger_at, d.length, d.unit, d.extended_by)

    @staticmethod
    def _reminder(cal: CalendarSnapshot, d: Deadline) -> datetime | None:
        before = d.reminder_working_days_before
        if before <= 0:
            return None
        at = wd.reminder_instant(cal, d.due_at, d.unit, before, REMINDER_TIME).astimezone(d.trigger_at.tzinfo)
        # A reminder that would fall before the clock started says nothing useful.
        return at if at > d.trigger_at else None

    # -- changing --------------------------------------------------------------------------------
    def open_deadline(
        self,
        cal: CalendarSnapshot,
        key: str,
        rule: DeadlineRule,
        stage: Stage,
        trigger_at: datetime,
        kind: DeadlineKind = DeadlineKind.DUTY,
    ) -> Deadline:
        due, at = kept_due(cal, trigger_at, rule.length, rule.unit)
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
            due_at=at,
            reminder_working_days_before=rule.reminder_working_days_before,
        )
        deadline.reminder_at = self._reminder(cal, deadline)
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
        d.due_date, d.due_at = self._due(cal, d)
        d.reminder_at = self._reminder(cal, d)
        if d.reminded and d.reminder_at is not None:
            d.reminded = False  # the date moved: remind again before the new one

    def recompute(self, cal: CalendarSnapshot) -> list[Moved]:
        """After a calendar change: move every open deadline whose date the change touches."""
        moved: list[Moved] = []
        for d in self.deadlines.values():
            if not d.open or d.passed_at is not None:
                continue
            old = d.due_date
            new, _ = self._due(cal, d)
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

    def met_late_unseen(self) -> list[Deadline]:
        """Duties met after they were due before the keeper saw them pass (it was busy, e.g. waiting
        on a reminder's activity): still breaches, and must be recorded as such."""
        return [d for d in self.deadlines.values() if d.kind is DeadlineKind.DUTY and not d.cancelled
                and d.passed_at is None and d.met_at is not None and d.met_at > d.due_at]

    def overdue(self) -> bool:
        return any(d.breached and d.open for d in self.deadlines.values())

