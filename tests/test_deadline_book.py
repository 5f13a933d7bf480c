"""The deadline book: due dates, reminders, extensions and recomputation, on real calendars."""

from __future__ import annotations

from datetime import date, datetime

from activities.calendar_data import CalendarChange, build_snapshot
from domain.calendar import LONDON, DeadlineUnit, Nation
from domain.case import DeadlineKind, Stage
from domain.policy import DeadlineRule, Trigger
from workflows.deadline_book import DeadlineBook

RESPONSE = DeadlineRule(label="Stage 1 response", length=10, unit=DeadlineUnit.WORKING_DAYS,
                        trigger=Trigger.ACKNOWLEDGED, reminder_working_days_before=2)
WINDOW = DeadlineRule(label="Escalation window", length=20, unit=DeadlineUnit.WORKING_DAYS,
                      trigger=Trigger.STAGE1_RESPONSE, reminder_working_days_before=0)


def cal(changes=()):
    return build_snapshot(Nation.ENGLAND_AND_WALES, 2026, 2028, changes=changes)


def at(y, m, d, hh=10):
    return datetime(y, m, d, hh, tzinfo=LONDON)


def test_open_computes_due_and_reminder_over_christmas() -> None:
    book = DeadlineBook()
    d = book.open_deadline(cal(), "stage1.response", RESPONSE, Stage.STAGE1, at(2026, 12, 23))
    assert d.due_date == date(2027, 1, 11)
    assert d.due_at == datetime(2027, 1, 12, tzinfo=LONDON)
    # Two working days before Monday 11 January: Thursday 7 January, 09:00.
    assert d.reminder_at == datetime(2027, 1, 7, 9, tzinfo=LONDON)
    assert book.next_wakeup().summary == "Reminder: Stage 1 response due 2027-01-11"


def test_extension_moves_due_date_and_rearms_reminder() -> None:
    book = DeadlineBook()
    c = cal()
    d = book.open_deadline(c, "stage1.response", RESPONSE, Stage.STAGE1, at(2026, 12, 23))
    d.reminded = True
    moved = book.extend(c, "stage1.response", 5)
    assert (moved.old, moved.new) == (date(2027, 1, 11), date(2027, 1, 18))
    assert d.extended_by == 5 and d.original_due_date == date(2027, 1, 11)
    assert d.reminder_at == datetime(2027, 1, 14, 9, tzinfo=LONDON) and not d.reminded


def test_breach_and_window_are_told_apart() -> None:
    book = DeadlineBook()
    c = cal()
    book.open_deadline(c, "stage1.response", RESPONSE, Stage.STAGE1, at(2026, 12, 23))
    book.open_deadline(c, "escalation.window", WINDOW, Stage.STAGE1, at(2026, 12, 23), kind=DeadlineKind.WINDOW)
    passed = book.passed(datetime(2027, 3, 1, tzinfo=LONDON))
    assert {p.key for p in passed} == {"stage1.response", "escalation.window"}
    for p in passed:
        p.passed_at = datetime(2027, 3, 1, tzinfo=LONDON)
    assert book.get("stage1.response").breached and not book.get("escalation.window").breached
    assert book.overdue()
    assert book.next_wakeup() is None, "a passed deadline never wakes the case again"


def test_recompute_moves_only_touched_deadlines_by_one_day() -> None:
    book = DeadlineBook()
    c = cal()
    book.open_deadline(c, "a", RESPONSE, Stage.STAGE1, at(2027, 1, 4))  # due 2027-01-18
    book.open_deadline(c, "b", RESPONSE, Stage.STAGE1, at(2027, 1, 20))  # due 2027-02-03
    met = book.open_deadline(c, "c", RESPONSE, Stage.STAGE1, at(2027, 1, 4))
    book.meet("c", at(2027, 1, 6))
    one_off = cal([CalendarChange(day=date(2027, 1, 12), change="add", reason="One-off bank holiday")])
    moved = book.recompute(one_off)
    assert [(m.key, m.old, m.new) for m in moved] == [("a", date(2027, 1, 18), date(2027, 1, 19))]
    assert book.get("b").due_date == date(2027, 2, 3)
    assert met.due_date == date(2027, 1, 18), "a met deadline keeps the date it was met against"


def test_a_duty_met_late_before_the_keeper_saw_it_pass_is_still_a_breach() -> None:
    book = DeadlineBook()
    c = cal()
    late = book.open_deadline(c, "stage1.response", RESPONSE, Stage.STAGE1, at(2026, 12, 23))  # due 2027-01-11
    on_time = book.open_deadline(c, "stage1.acknowledgement", RESPONSE, Stage.STAGE1, at(2026, 12, 23))
    window = book.open_deadline(c, "escalation.window", WINDOW, Stage.STAGE1, at(2026, 12, 1), kind=DeadlineKind.WINDOW)
    book.meet("stage1.response", at(2027, 1, 12))  # a day late, while the keeper was busy elsewhere
    book.meet("stage1.acknowledgement", at(2027, 1, 5))
    book.meet("escalation.window", at(2027, 1, 12))
    assert book.passed(datetime(2027, 1, 12, 12, tzinfo=LONDON)) == [], "met deadlines are no longer watched"
    assert book.met_late_unseen() == [late], "...but the late one is a breach to record"
    late.passed_at = datetime(2027, 1, 12, 12, tzinfo=LONDON)
    assert late.breached and book.met_late_unseen() == [], "recorded once"
    assert on_time.met_on_time and not window.breached
