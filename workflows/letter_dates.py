"""The dates letters state, as pure functions the workflow calls (and the property tests drive).

One job: each dated letter's promised date. A letter promises a deadline the case has not opened yet
(it opens when the letter's own event is marked), so the date is worked out the way the case will work it
out: the rule's own trigger, taken from the triggers the case has plus the ones this letter's event sets
(at `at`, the instant the letter is issued, which is the instant the case records), dated by
deadline_book.kept_due, the one function that dates every deadline.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time

from domain import calendar as wd
from domain.calendar import CalendarSnapshot
from domain.policy import DeadlineRule, Policy, ReviewKind, Trigger
from workflows.deadline_book import kept_due

Triggers = Mapping[Trigger, datetime]


def sitting_instant(sits_on: date) -> datetime:
    """The instant a review panel sits: what its deadlines count from."""
    return datetime.combine(sits_on, time(10, 0), tzinfo=wd.LONDON)


def promised_due(cal: CalendarSnapshot, rule: DeadlineRule, triggers: Triggers) -> date | None:
    """The date the case will keep for `rule` once `triggers` have happened; None if its trigger has not."""
    at = triggers.get(rule.trigger)
    return None if at is None else kept_due(cal, at, rule.length, rule.unit)[0]


def _known(d: date | None, what: str) -> date:
    if d is None:  # the policy loader refuses rules counted from an event that has not happened by then
        raise ValueError(f"{what}: the rule's trigger has not happened when the letter is sent")
    return d


def stage1_response_due(policy: Policy, cal: CalendarSnapshot, triggers: Triggers, at: datetime) -> date:
    """In the Stage 1 acknowledgement (issued at `at`): when the Stage 1 response is due."""
    return _known(promised_due(cal, policy.stage1.response, {**triggers, Trigger.ACKNOWLEDGED: at}),
                  "stage1.response")


def escalation_window_ends(policy: Policy, cal: CalendarSnapshot, triggers: Triggers, at: datetime) -> date:
    """In the Stage 1 response (issued at `at`): the last day to ask for a review."""
    return _known(promised_due(cal, policy.escalation.window, {**triggers, Trigger.STAGE1_RESPONSE: at}),
                  "escalation.window")


def _with_sitting(policy: Policy, triggers: Triggers, sits_on: date | None) -> dict[Trigger, datetime]:
    known = dict(triggers)
    if policy.stage2.kind is ReviewKind.REVIEW_PANEL and sits_on is not None:
        known[Trigger.PANEL_SITTING] = sitting_instant(sits_on)
    return known


def stage2_response_due(policy: Policy, cal: CalendarSnapshot, triggers: Triggers, at: datetime,
                        sits_on: date | None = None) -> date:
    """In the Stage 2 acknowledgement (issued at `at`, a panel booked for `sits_on`): when the final
    response is due."""
    known = {**_with_sitting(policy, triggers, sits_on), Trigger.STAGE2_ACKNOWLEDGED: at}
    return _known(promised_due(cal, policy.stage2.response, known), "stage2.response")


def panel_response_due(policy: Policy, cal: CalendarSnapshot, triggers: Triggers, sits_on: date) -> date | None:
    """In a panel sitting letter: when the final response is due, if the case knows yet (a response counted
    from the Stage 2 acknowledgement is not known before it is sent)."""
    return promised_due(cal, policy.stage2.response, _with_sitting(policy, triggers, sits_on))


def cooling_off_ends(policy: Policy, cal: CalendarSnapshot, triggers: Triggers, at: datetime) -> date | None:
    """In the final response (issued at `at`): the last day of the cooling-off period (None if the policy
    has none)."""
    rule = policy.ombudsman.cooling_off
    if rule is None:
        return None
    return _known(promised_due(cal, rule, {**triggers, Trigger.FINAL_RESPONSE: at}), "ombudsman.cooling_off")
