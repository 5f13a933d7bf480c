"""The dates letters state, as pure functions the workflow calls (and the property tests drive).

One job: each dated letter's promised date, from the policy, the calendar snapshot, the trigger instants
the case has, and `at`, the instant the letter is issued.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time

from domain import calendar as wd
from domain.calendar import CalendarSnapshot
from domain.policy import Policy, ReviewKind, Trigger

Triggers = Mapping[Trigger, datetime]


def sitting_instant(sits_on: date) -> datetime:
    """The instant a review panel sits: what its deadlines count from."""
    return datetime.combine(sits_on, time(10, 0), tzinfo=wd.LONDON)


def stage1_response_due(policy: Policy, cal: CalendarSnapshot, triggers: Triggers, at: datetime) -> date:
    """In the Stage 1 acknowledgement: when the Stage 1 response is due."""
    rule = policy.stage1.response
    return wd.due_date(cal, triggers.get(rule.trigger, at), rule.length, rule.unit)


def escalation_window_ends(policy: Policy, cal: CalendarSnapshot, triggers: Triggers, at: datetime) -> date:
    """In the Stage 1 response: the last day to ask for a review."""
    rule = policy.escalation.window
    return wd.due_date(cal, at, rule.length, rule.unit)


def stage2_response_due(policy: Policy, cal: CalendarSnapshot, triggers: Triggers, at: datetime,
                        sits_on: date | None = None) -> date:
    """In the Stage 2 acknowledgement: when the final response is due."""
    s2 = policy.stage2
    if s2.kind is ReviewKind.REVIEW_PANEL and sits_on is not None:
        trigger = sitting_instant(sits_on)
    else:
        trigger = at
    return wd.due_date(cal, trigger, s2.response.length, s2.response.unit)


def cooling_off_ends(policy: Policy, cal: CalendarSnapshot, triggers: Triggers, at: datetime) -> date | None:
    """In the final response: the last day of the cooling-off period (None if the policy has none)."""
    rule = policy.ombudsman.cooling_off
    if rule is None:
        return None
    return wd.due_date(cal, at, rule.length, rule.unit)
