"""Every date a letter states is the date the case keeps: a property over every shipped, test and
bench policy, every deadline rule a letter promises and every trigger that rule may count from.

The case is played the way the workflow plays it: the letter's date comes from workflows/letter_dates.py
(what the workflow calls) with the triggers the case has when the letter goes, and `at`, the instant the
letter is issued; then the case marks the letter's event at that instant and opens the deadline in its
DeadlineBook from the rule's trigger (what CaseState._open_deadline does). The letter, rendered by the
send_letter activity's template, must state exactly the book's date.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from activities import letters as templates
from activities.calendar_data import build_snapshot
from domain.calendar import LONDON, CalendarSnapshot, Nation
from domain.case import Stage
from domain.policy import (
    POLICY_DIR,
    Policy,
    PolicyError,
    ReviewKind,
    Trigger,
    load_policy_file,
    triggers_at_opening,
)
from workflows import letter_dates as dates
from workflows import letter_words as words
from workflows.case_state import long_date
from workflows.deadline_book import DeadlineBook

ROOT = Path(__file__).resolve().parent.parent
POLICY_FILES = [*sorted(POLICY_DIR.glob("*.toml")), *sorted((ROOT / "tests" / "policies").glob("*.toml")),
                *sorted((ROOT / "bench" / "policies").glob("*.toml")), *sorted((ROOT / "demo" / "policies").glob("*.toml"))]
LONG_DATE = re.compile(r"(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday) \d{1,2} [A-Z][a-z]+ \d{4}")


@dataclass(frozen=True)
class Scenario:
    """When each event of a case happens (gaps from the one before), and where the home is."""

    nation: Nation
    received: datetime
    gaps: tuple[timedelta, ...]  # acknowledgement, Stage 1 response, request, Stage 2 ack, sitting, final
    sitting_after_days: int


@cache
def calendar(nation: Nation, year: int, closures: tuple[date, ...], closing: time) -> CalendarSnapshot:
    return build_snapshot(nation, year, year + 3, closures=closures, closing_time=closing)


def with_trigger(policy: Policy, rule_path: str, trigger: Trigger) -> Policy:
    data = policy.model_dump(mode="json")
    node = data
    *parents, last = rule_path.split(".")
    for p in parents:
        node = node[p]
    node[last]["trigger"] = trigger.value
    return Policy.model_validate(data)


def fields(kind: str, dated: dict[str, str]) -> dict[str, str]:
    """The letter's other fields, filled with words that hold no date."""
    words = {"name": "Maria Jones", "reference": "CMP-1", "landlord": "A landlord", "signed_by": "Priya Shah"}
    for key in re.findall(r"{(\w+)}", templates.TEMPLATES[kind].subject + templates.TEMPLATES[kind].body):
        words.setdefault(key, f"<{key}>")
    return {**words, **dated}


def stated_dates(kind: str, dated: dict[str, str]) -> list[str]:
    _, body = templates.render(kind, fields(kind, dated))
    return [m.group(0) for m in LONG_DATE.finditer(body)]


class Case:
    """The triggers and deadline book of one case, changed as the workflow changes them."""

    def __init__(self, policy: Policy, s: Scenario) -> None:
        self.policy = policy
        self.cal = calendar(s.nation, s.received.astimezone(LONDON).year, tuple(policy.closures),
                            policy.closing_time)
        self.triggers: dict[Trigger, datetime] = {Trigger.RECEIVED: s.received}
        self.book = DeadlineBook()
        self.now = s.received

    def later(self, gap: timedelta) -> datetime:
        self.now = self.now + gap
        return self.now

    def mark(self, trigger: Trigger, at: datetime) -> None:
        self.triggers[trigger] = at

    def kept(self, key: str, rule_path: str) -> date:
        section, name = rule_path.split(".")
        rule = getattr(getattr(self.policy, section), name)
        return self.book.open_deadline(self.cal, key, rule, Stage.STAGE1, self.triggers[rule.trigger]).due_date


# -- each dated letter, played up to the moment it is sent and the deadline it promises opens ----------
def acknowledgement(case: Case, s: Scenario) -> tuple[str, dict[str, str], date]:
    at = case.later(s.gaps[0])
    promised = dates.stage1_response_due(case.policy, case.cal, case.triggers, at)
    case.mark(Trigger.ACKNOWLEDGED, at)
    return "acknowledgement", {"response_due": long_date(promised)}, case.kept("stage1.response", "stage1.response")


def _to_stage1_response(case: Case, s: Scenario) -> datetime:
    acknowledgement(case, s)
    return case.later(s.gaps[1])


def stage1_response(case: Case, s: Scenario) -> tuple[str, dict[str, str], date]:
    at = _to_stage1_response(case, s)
    promised = dates.escalation_window_ends(case.policy, case.cal, case.triggers, at)
    case.mark(Trigger.STAGE1_RESPONSE, at)
    return ("stage1_response", {"escalation_by": long_date(promised)},
            case.kept("escalation.window", "escalation.window"))


def _to_stage2(case: Case, s: Scenario) -> tuple[datetime, date | None]:
    case.mark(Trigger.STAGE1_RESPONSE, _to_stage1_response(case, s))
    case.mark(Trigger.ESCALATION_REQUESTED, case.later(s.gaps[2]))
    at = case.later(s.gaps[3])
    sits_on = None
    if case.policy.stage2.kind is ReviewKind.REVIEW_PANEL:
        sits_on = at.astimezone(LONDON).date() + timedelta(days=s.sitting_after_days)
    return at, sits_on


def stage2_acknowledgement(case: Case, s: Scenario) -> tuple[str, dict[str, str], date]:
    at, sits_on = _to_stage2(case, s)
    promised = dates.stage2_response_due(case.policy, case.cal, case.triggers, at, sits_on)
    case.mark(Trigger.STAGE2_ACKNOWLEDGED, at)
    if sits_on is not None:
        case.mark(Trigger.PANEL_SITTING, dates.sitting_instant(sits_on))
    return ("stage2_acknowledgement", {"response_due": long_date(promised)},
            case.kept("stage2.response", "stage2.response"))


def final_response(case: Case, s: Scenario) -> tuple[str, dict[str, str], date]:
    at, sits_on = _to_stage2(case, s)
    case.mark(Trigger.STAGE2_ACKNOWLEDGED, at)
    if sits_on is not None:
        sat = dates.sitting_instant(sits_on)
        case.mark(Trigger.PANEL_SITTING, sat)
        case.now = max(case.now, sat)
    at = case.later(s.gaps[5])
    promised = dates.cooling_off_ends(case.policy, case.cal, case.triggers, at)
    assert promised is not None
    case.mark(Trigger.FINAL_RESPONSE, at)
    return ("final_response", {"ombudsman_route": words.ombudsman_route(case.policy, promised)},
            case.kept("ombudsman.cooling_off", "ombudsman.cooling_off"))


def panel_sitting(case: Case, s: Scenario) -> tuple[str, dict[str, str], date]:
    """Booked before Stage 2 is acknowledged: it states the final response date only if the case knows it
    (the check below then wants the sitting's date alone)."""
    at, sits_on = _to_stage2(case, s)
    assert sits_on is not None
    promised = dates.panel_response_due(case.policy, case.cal, case.triggers, sits_on)
    dated = {"sits_on": long_date(sits_on), "final_response_promise": words.final_response_promise(promised)}
    case.mark(Trigger.STAGE2_ACKNOWLEDGED, at)
    case.mark(Trigger.PANEL_SITTING, dates.sitting_instant(sits_on))
    kept = case.kept("stage2.response", "stage2.response")
    return "panel_sitting", dated, kept if promised is not None else sits_on


Letter = Callable[[Case, Scenario], tuple[str, dict[str, str], date]]
# Each dated letter, by the rule whose date it promises.
LETTERS: dict[str, Letter] = {
    "acknowledgement": acknowledgement,
    "stage1_response": stage1_response,
    "stage2_acknowledgement": stage2_acknowledgement,
    "panel_sitting": panel_sitting,
    "final_response": final_response,
}
PROMISES = {"acknowledgement": "stage1.response", "stage1_response": "escalation.window",
            "stage2_acknowledgement": "stage2.response", "panel_sitting": "stage2.response",
            "final_response": "ombudsman.cooling_off"}


def sends(policy: Policy, letter: str) -> bool:
    if letter == "panel_sitting":
        return policy.stage2.kind is ReviewKind.REVIEW_PANEL
    return letter != "final_response" or policy.ombudsman.cooling_off is not None


def cases() -> list[tuple[Path, str, Trigger]]:
    """(policy file, dated letter, trigger): every trigger the promised rule may count from."""
    out = []
    for path in POLICY_FILES:
        policy = load_policy_file(path)
        allowed = triggers_at_opening(policy)
        for letter, rule_path in PROMISES.items():
            if sends(policy, letter):
                out += [(path, letter, t) for t in sorted(allowed[rule_path])]
    return out


minutes = st.integers(min_value=0, max_value=12 * 24 * 60).map(lambda m: timedelta(minutes=m))
scenarios = st.builds(
    Scenario,
    nation=st.sampled_from(list(Nation)),
    received=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2029, 6, 30),
                          timezones=st.just(LONDON)).map(lambda d: d.replace(second=0, microsecond=0, fold=0)),
    gaps=st.tuples(*[minutes] * 6),
    sitting_after_days=st.integers(min_value=1, max_value=40),
)


@pytest.mark.parametrize(("path", "letter", "trigger"), cases(),
                         ids=lambda v: v.stem if isinstance(v, Path) else str(v))
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(s=scenarios)
def test_every_letter_states_the_date_the_case_keeps(path: Path, letter: str, trigger: Trigger,
                                                       s: Scenario) -> None:
    rule_path = PROMISES[letter]
    policy = with_trigger(load_policy_file(path), rule_path, trigger)
    kind, dated, kept = LETTERS[letter](Case(policy, s), s)
    stated = stated_dates(kind, dated)
    if kind == "panel_sitting":
        stated = stated[1:] or stated  # the sitting's own date comes first
    elif kind == "final_response":
        stated = stated[:1]  # then the first day a direct referral is accepted
        assert stated_dates(kind, dated)[1:] == [long_date(kept + timedelta(days=1))]
    assert stated == [long_date(kept)], (
        f"{path.stem}: the {kind} letter states {stated} but the case keeps "
        f"{rule_path} due {kept} (counted from {trigger.value})")


def test_every_policy_and_trigger_is_covered() -> None:
    assert {p.parent.name for p in POLICY_FILES} == {"policies"} and len({p.parent for p in POLICY_FILES}) == 4
    covered = {(p.stem, letter) for p, letter, _ in cases()}
    for path in POLICY_FILES:
        policy = load_policy_file(path)
        assert {(path.stem, letter) for letter in LETTERS if sends(policy, letter)} <= covered
    assert {t for _, letter, t in cases() if letter == "stage2_acknowledgement"} >= {
        Trigger.ESCALATION_REQUESTED, Trigger.STAGE2_ACKNOWLEDGED, Trigger.PANEL_SITTING}


def test_a_deadline_counted_from_an_event_not_yet_happened_is_refused(tmp_path: Path) -> None:
    """The triggers above are all a rule may count from: any other could not be dated when the deadline
    opens (the case would fail), so the policy is refused at load, naming the field and what it may use."""
    text = (POLICY_DIR / "hos-code-2024.toml").read_text(encoding="utf-8").replace(
        'label = "Stage 2 final response", length = 20, unit = "working_days", trigger = "stage2_acknowledged"',
        'label = "Stage 2 final response", length = 20, unit = "working_days", trigger = "final_response"')
    path = tmp_path / "hos-code-2024.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError, match=r"stage2\.response\.trigger: 'final_response' has not happened when this "
                                          r"deadline opens; it can count from: .*escalation_requested"):
        load_policy_file(path)
