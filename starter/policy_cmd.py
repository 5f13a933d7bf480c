"""`python -m starter policy check FILE` and `policy explain FILE`: write a landlord's policy with these two.

    python -m starter policy check policies/hos-code-2024.toml
    python -m starter policy explain policies/hos-code-2024.toml --from 2026-12-23 --nation england-and-wales

`check` loads the file exactly as the engine does (domain/policy.py's load_policy_file, with the
policies.lock content-hash check of domain/policy_lock.py where it applies) and prints one line: what the
policy is, or one `error:` line per error naming the file and field (exit 2).

`explain` prints the procedure as a person reads it, then a worked example: a complaint received on
`--from` (default DEFAULT_FROM, a fixed date, never the machine's clock), every deadline of the policy dated
by the engine's own arithmetic (workflows/deadline_book.py over a calendar snapshot built as a case's is,
activities/calendar_data.py) across the nation's bank holidays.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from activities.calendar_data import build_snapshot
from domain import calendar as wd
from domain.calendar import LONDON, CalendarRangeError, CalendarSnapshot, DeadlineUnit, Nation, SkippedDay
from domain.case import Deadline, DeadlineKind, Stage
from domain.policy import (
    POLICY_DIR,
    DeadlineRule,
    ParticipationMode,
    Policy,
    PolicyError,
    ReviewKind,
    Trigger,
    deadline_rules,
    load_policy_file,
)
from domain.policy_lock import LOCK_FILE
from domain.records import CALENDAR_YEARS_AFTER
from domain.wording import long_date
from starter.arguments import parse_nation
from starter.common import CliError, UsageError
from starter.deadline_cmd import BARE_DATE_TIME, parse_from
from workflows.deadline_book import DeadlineBook
from workflows.letter_dates import sitting_instant

# The worked example's day when --from is not given: a Wednesday just before Christmas, so that Stage 1
# counts across Christmas Day, Boxing Day and New Year's Day. Fixed, so the output is the same every day.
DEFAULT_FROM = date(2026, 12, 23)


class PolicyFileError(UsageError):
    """A policy file that does not load: one line per error (exit 2)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


# -- check -------------------------------------------------------------------------------------------------
def load(path: Path) -> Policy:
    """The policy as the engine loads it; PolicyFileError with every error the loader's checks find."""
    try:
        return load_policy_file(path)
    except PolicyError as exc:
        cause = exc.__cause__
        if isinstance(cause, ValidationError):
            # The loader stops at the first; a landlord fixing a file wants them all, each named as it names one.
            raise PolicyFileError([f"{path}: field {where}: {message}" for where, message in _errors(cause)]) from None
        raise PolicyFileError([str(exc)]) from None
    except IsADirectoryError:
        raise PolicyFileError([f"{path}: is a directory, not a policy file"]) from None
    except UnicodeDecodeError as exc:
        raise PolicyFileError([f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); a policy is a "
                               "TOML text file"]) from None
    except OSError as exc:
        raise PolicyFileError([f"{path}: cannot be read: {exc.strerror or exc}"]) from None


def _errors(exc: ValidationError) -> Iterator[tuple[str, str]]:
    for e in exc.errors():
        loc = tuple(e["loc"])
        message = e["msg"].removeprefix("Value error, ")
        named = re.match(r"^([a-z0-9_]+(?:\.[a-z0-9_]+)*): (.+)$", message, re.S)
        if named and e["type"] == "value_error":
            # A rule across the whole policy names its field in its message: name it as the field.
            loc, message = (*loc, *named.group(1).split(".")), named.group(2)
        where = ".".join(str(p) for p in loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            known = _fields_at(Policy, loc[:-1])
            message = "unknown field" + (f" (the fields here are: {', '.join(known)})" if known else "")
        elif e["type"] == "missing":
            message = "missing (required)"
        yield where, message


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the table at `loc` (the error's path), walking the Policy model's types: list
    indices and the keys of a table of tables (e.g. letters.withdrawal) are stepped over."""
    current: type[BaseModel] | None = model
    keyed = False
    for part in loc:
        if isinstance(part, int) or keyed:
            keyed = False
            continue
        info = current.model_fields.get(str(part)) if current is not None else None
        if info is None:
            return []
        current, keyed = _model_in(info.annotation), typing.get_origin(info.annotation) is dict
    return list(current.model_fields) if current is not None else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds: itself, or inside Optional, list or dict."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, dict):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def what_it_is(path: Path, policy: Policy) -> str:
    """One line: the policy's pinned identity, what it is, and how the engine will treat the file."""
    s2 = policy.stage2.kind.value
    where = path.resolve().parent
    if where == POLICY_DIR.resolve():
        status = f"a shipped policy, recorded in policies/{LOCK_FILE}"
    elif (where / LOCK_FILE).exists():
        status = f"recorded in {path.parent / LOCK_FILE}"
    else:
        status = (f"no {LOCK_FILE} beside it (loaded unchecked from COMPLAINTS_POLICY_PATH; to ship it, copy it "
                  f"to policies/, check it there and run make policy-lock)")
    test = "; a test policy (test_only)" if policy.test_only else ""
    return f"{path}: ok: {policy.pinned}: {policy.title}, for {policy.landlord} (Stage 2: {s2}){test}; {status}"


def refused(exc: PolicyFileError) -> int:
    for line in exc.lines:
        print(f"error: {' '.join(line.split())}", file=sys.stderr)
    return 2


def cmd_check(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        policy = load(path)
    except PolicyFileError as exc:
        return refused(exc)
    print(what_it_is(path, policy))
    return 0


# -- words -------------------------------------------------------------------------------------------------
UNIT_WORDS = {DeadlineUnit.WORKING_DAYS: ("working day", "working days"),
              DeadlineUnit.CALENDAR_DAYS: ("calendar day", "calendar days"),
              DeadlineUnit.WEEKS: ("week", "weeks"), DeadlineUnit.SECONDS: ("second", "seconds")}
TRIGGER_WORDS = {
    Trigger.RECEIVED: "receipt of the complaint",
    Trigger.ACKNOWLEDGED: "the acknowledgement",
    Trigger.STAGE1_RESPONSE: "the Stage 1 response",
    Trigger.ESCALATION_REQUESTED: "the request for a review",
    Trigger.STAGE2_ACKNOWLEDGED: "the Stage 2 acknowledgement",
    Trigger.PANEL_SITTING: "the review panel's sitting",
    Trigger.FINAL_RESPONSE: "the final response",
    Trigger.CLOSED: "closure of the case",
}
KIND_WORDS = {
    ReviewKind.CODE_STAGE2: "a review by a Stage 2 reviewer, as the Housing Ombudsman's Code sets out",
    ReviewKind.COMPLAINTS_MANAGER_REVIEW: "a review by a manager who answers set review questions and has "
                                          "the outcome agreed",
    ReviewKind.REVIEW_PANEL: "a review panel that sits on set dates",
}
PARTICIPATION_WORDS = {
    ParticipationMode.NONE: "no involved residents take part",
    ParticipationMode.INVITED_INVOLVED_CUSTOMER: "an involved customer is invited to give an independent view",
    ParticipationMode.RESIDENT_CHOSEN_PANELISTS: "the resident may choose involved residents to sit on the panel",
}


def _enum_words(value: Any, words: dict[Any, str]) -> str:
    return words.get(value) or str(getattr(value, "value", value)).replace("_", " ")


def length_words(rule: DeadlineRule) -> str:
    one, many = UNIT_WORDS.get(rule.unit) or (rule.unit.value.replace("_", " "),) * 2
    return f"{rule.length} {one if rule.length == 1 else many}"


def rule_words(rule: DeadlineRule) -> str:
    """"10 working days from the acknowledgement"."""
    return f"{length_words(rule)} from {_enum_words(rule.trigger, TRIGGER_WORDS)}"


def reminder_words(rule: DeadlineRule) -> str:
    n = rule.reminder_working_days_before
    if n <= 0:
        return "no reminder"
    return f"a reminder {n} working day{'s' if n != 1 else ''} before"


def deadline_line(rule: DeadlineRule, what: str = "Deadline") -> str:
    return f"{what} \"{rule.label}\": {rule_words(rule)} ({reminder_words(rule)})."


def role_words(policy: Policy, role: str) -> str:
    title = policy.role_title(role)
    return f"{title} ({role})" if title else role


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# Every field the description below tells in words; any other (a field added to the schema later) is listed
# under "Other settings", so a new rule is never silently left out.
DESCRIBED = {
    "id", "version", "landlord", "title", "regulator", "nations", "closing_time", "closures", "manager_role",
    "retention_years", "test_only", "digest", "role_titles", "letters",
    "stage1.acknowledgement", "stage1.response", "stage1.extension", "stage1.handler_role",
    "escalation.window", "escalation.direct_to_stage2", "escalation.triage", "escalation.refusal_reasons",
    "stage2.kind", "stage2.reviewer_role", "stage2.different_handler", "stage2.contact", "stage2.acknowledgement",
    "stage2.response", "stage2.extension", "stage2.participation", "stage2.review_questions",
    "stage2.outcome_agreed_by", "stage2.findings_call_required", "stage2.panel",
    "ombudsman.name", "ombudsman.contact", "ombudsman.designated_person_route", "ombudsman.designated_persons",
    "ombudsman.cooling_off", "ombudsman.referral_months", "ombudsman.route",
    "survey.enabled", "survey.answer_window",
}


def other_settings(model: BaseModel, where: str = "") -> Iterator[tuple[str, Any]]:
    """Fields the description does not tell, with their values (tables walked into)."""
    for name in type(model).model_fields:
        here = f"{where}.{name}" if where else name
        if here in DESCRIBED:
            continue
        value = getattr(model, name)
        if isinstance(value, DeadlineRule):
            yield here, rule_words(value) + f" (\"{value.label}\")"
        elif isinstance(value, BaseModel):
            yield from other_settings(value, here)
        elif value is None:
            yield here, "(not set)"
        else:
            yield here, value.value if hasattr(value, "value") else value


def describe(path: Path, policy: Policy) -> list[str]:
    """The procedure as a person reads it."""
    s1, esc, s2, omb, survey = policy.stage1, policy.escalation, policy.stage2, policy.ombudsman, policy.survey
    out = [f"{policy.pinned}: {policy.title}",
           f"  file: {path}; landlord: {policy.landlord}; regulator: {policy.ombudsman.name} ({policy.regulator})"
           + ("; a test policy (test_only)" if policy.test_only else "")]
    nations: list[Any] = list(getattr(policy, "nations", None) or [])
    if nations:
        out.append(f"  serves properties in: {', '.join(str(getattr(n, 'value', n)) for n in nations)}")
    closures = ", ".join(long_date(d) for d in policy.closures) or "none listed"
    out += [
        f"  working days: Monday to Friday, not a bank holiday of the nation the property is in, not a day the "
        f"landlord is closed (closures: {closures}); anything that happens at or after {policy.closing_time:%H:%M} "
        "London time, or on a day that is not a working day, counts from the next working day.",
        f"  records are kept {_plural(policy.retention_years, 'year')} after the case closes; a missed deadline is "
        f"told to the {role_words(policy, policy.manager_role)}.",
        "",
        "Who acts",
    ]
    jobs: dict[str, list[str]] = {}
    jobs.setdefault(s1.handler_role, []).append("handles the complaint at Stage 1 and signs its letters")
    jobs.setdefault(s2.reviewer_role, []).append(
        "reviews at Stage 2 and signs its letters" + (" (never the Stage 1 handler)" if s2.different_handler else ""))
    for r in s2.outcome_agreed_by:
        jobs.setdefault(r, []).append("may agree the review's outcome")
    if s2.panel is not None:
        for r in s2.panel.roles:
            jobs.setdefault(r, []).append("chairs the review panel" if r == s2.panel.chair_role
                                          else "sits on the review panel")
    jobs.setdefault(policy.manager_role, []).append("is told of every missed deadline")
    for role in policy.role_titles:
        jobs.setdefault(role, [])
    for role, what in jobs.items():
        title = policy.role_title(role) or "(no title: letters sign with the name alone)"
        out.append(f"  {role:<22} {title:<32} {'; '.join(dict.fromkeys(what)) or '(titled only)'}")

    out += ["", "Stage 1: the complaint",
            f"  1. The engine opens the case, appoints a {role_words(policy, s1.handler_role)} and sends the "
            "acknowledgement letter, which gives the date the response is due.",
            f"     {deadline_line(s1.acknowledgement)}",
            f"  2. The {policy.role_title(s1.handler_role) or s1.handler_role} sends the Stage 1 response "
            "(python -m starter respond); its letter says how to ask for a review, and by when.",
            f"     {deadline_line(s1.response)}",
            f"     {extension_words(s1.extension)}",
            "  Letters: acknowledgement, stage1_response, and an extension letter for each extension."]

    out += ["", "Asking for a review (escalation)",
            f"  The resident may ask for a review (python -m starter review-request). {deadline_line(esc.window, 'Window')}",
            "  No request by then: the case closes.",
            "  Filing straight into Stage 2: " + ("allowed (python -m starter file --stage2)." if esc.direct_to_stage2
                                                  else "not allowed.")]
    if esc.triage is not None:
        out.append(f"  {deadline_line(esc.triage, 'Triage')} Until it ends the landlord may refuse the review "
                   "(python -m starter refuse-escalation) or start Stage 2 at once (accept-escalation); when it "
                   "ends, Stage 2 starts.")
    else:
        out.append("  No triage: Stage 2 starts when the resident asks (the landlord may refuse until Stage 2 "
                   "is acknowledged).")
    out.append("  Reasons the landlord may refuse a review (refuse-escalation --reason-code CODE):")
    out += [f"    {code}: {text}" for code, text in esc.refusal_reasons.items()]
    out.append(f"  Letter: escalation_refused (the reason, and the right to go to the {omb.name}).")

    out += ["", f"Stage 2: {s2.kind.value} — {_enum_words(s2.kind, KIND_WORDS)}",
            f"  Reviewer: {role_words(policy, s2.reviewer_role)}"
            + (", never the person who handled Stage 1." if s2.different_handler else
               "; may be the person who handled Stage 1.")]
    step = 1
    out.append(f"  {step}. The engine appoints the reviewer"
               + (", books the first panel sitting" if s2.panel is not None else "")
               + " and sends the Stage 2 acknowledgement letter, which gives the date the final response is due.")
    out.append(f"     {deadline_line(s2.acknowledgement)}")
    if s2.contact is not None:
        step += 1
        out.append(f"  {step}. Someone contacts the resident to discuss the review (python -m starter contact "
                   "--kind review_discussion), or records that they declined (decline-discussion).")
        out.append(f"     {deadline_line(s2.contact)}")
    p = s2.participation
    step += 1
    part = _enum_words(p.mode, PARTICIPATION_WORDS)
    if p.mode is not ParticipationMode.NONE:
        part += (f" (at most {_plural(p.max_residents, 'resident')}" if p.max_residents else " (")
        part += (f"; eligible: {', '.join(p.eligibility)}" if p.eligibility else "") + ")"
        part += ("; the resident may decline it (decline-participation)" if p.may_decline
                 else "; the resident cannot decline it")
    out.append(f"  {step}. Participation: {part}.")
    if s2.review_questions:
        step += 1
        out.append(f"  {step}. The reviewer answers each review question (python -m starter findings "
                   "--answer KEY=yes|no:NOTES):")
        out += [f"       {q.key}: {q.text}" for q in s2.review_questions]
    if s2.outcome_agreed_by:
        step += 1
        out.append(f"  {step}. The outcome is agreed by one of: "
                   f"{', '.join(role_words(policy, r) for r in s2.outcome_agreed_by)} (agree-outcome).")
    if s2.findings_call_required:
        step += 1
        out.append(f"  {step}. The reviewer calls the resident to discuss the findings (contact --kind findings_call).")
    if s2.panel is not None:
        panel = s2.panel
        step += 1
        out.append(f"  {step}. The review panel sits on the first set date (python -m starter sittings) at least "
                   f"{_plural(panel.earliest_after_working_days, 'working day')} after the request; the resident "
                   f"may ask to attend (attend), which needs {_plural(panel.attendance_notice_working_days, 'working day')}"
                   " of notice and can move the sitting. Letter: panel_sitting.")
        out.append(f"     Panel: {', '.join(role_words(policy, r) for r in panel.roles)}; chaired by "
                   f"{role_words(policy, panel.chair_role)}. The panel's decision: panel-decision.")
    step += 1
    final_by = {ReviewKind.CODE_STAGE2: "The reviewer sends the final response (python -m starter final-response)",
                ReviewKind.COMPLAINTS_MANAGER_REVIEW: "The engine sends the final response once the findings, the "
                "agreed outcome" + (" and the findings call" if s2.findings_call_required else "") + " are recorded",
                ReviewKind.REVIEW_PANEL: "The Chair's final response is sent once the panel's decision is recorded"}
    out.append(f"  {step}. {final_by.get(s2.kind, 'The final response is sent')}; it gives the route to the "
               f"{omb.name}.")
    out.append(f"     {deadline_line(s2.response)}")
    out.append(f"     {extension_words(s2.extension)}")
    letters = ["stage2_acknowledgement"]
    if s2.panel is not None:
        letters.append("panel_sitting")
    if p.mode is ParticipationMode.INVITED_INVOLVED_CUSTOMER:
        letters += ["involved_customer_invitation (to the involved customer)", "involved_customer_withdrawn"]
    letters += ["final_response", "an extension letter for each extension"]
    out.append(f"  Letters: {', '.join(letters)}.")

    out += ["", f"The Ombudsman: {omb.name}",
            f"  Contact, as letters give it: {omb.contact}",
            *([f"  The final letter words the route: {route}"] if (route := getattr(omb, "route", "")) else []),
            f"  The resident may refer the complaint normally within {_plural(omb.referral_months, 'month')} of the "
            "final response (python -m starter refer)."]
    if omb.cooling_off is not None:
        out.append(f"  {deadline_line(omb.cooling_off, 'Cooling-off')} A direct referral is possible only after it; "
                   "the case closes when it ends or on a referral.")
    else:
        out.append("  No cooling-off period: the case closes once the final response is sent.")
    if omb.designated_person_route:
        out.append(f"  A designated person ({omb.designated_persons or 'not named'}) may refer at any time "
                   "(refer --route designated_person).")

    out += ["", "Closure and the survey"]
    if survey.enabled:
        out.append("  When the case closes the engine sends the survey letter (survey)"
                   + (f"; {deadline_line(survey.answer_window, 'window')}" if survey.answer_window is not None
                      else "; its answer is not waited for."))
    else:
        out.append("  No satisfaction survey.")
    withdrawal = policy.letters.get("withdrawal")
    out.append("  A withdrawal (python -m starter withdraw, or a cancellation in Temporal) closes the case and "
               + (f"sends the policy's own letter \"{withdrawal.subject}\"." if withdrawal is not None
                  else "sends no letter (the policy words none)."))
    for kind, letter in policy.letters.items():
        if kind != "withdrawal":
            out.append(f"  The policy words its own {kind} letter: \"{letter.subject}\".")

    others = list(other_settings(policy))
    if others:
        out += ["", "Other settings"]
        out += [f"  {where} = {value}" for where, value in others]
    return out


def extension_words(rule: Any) -> str:
    more = ("; more only for a genuine reason recorded as exceptional (extend --exceptional)"
            if rule.exceptional_reason_allows_more else "; never more")
    return (f"Extensions: up to {_plural(rule.max_working_days, 'working day')} in all, given before the deadline "
            f"(python -m starter extend){more}. The resident gets a letter with the new date.")


# -- the worked example ------------------------------------------------------------------------------------
@dataclass
class Dated:
    where: str  # the rule's dotted name in the policy
    rule: DeadlineRule
    deadline: Deadline
    skipped: list[SkippedDay]


@dataclass
class Example:
    nation: Nation
    calendar: CalendarSnapshot
    events: dict[str, datetime] = field(default_factory=dict)  # trigger (or step) -> when, in order
    said: dict[str, str] = field(default_factory=dict)  # what each event is, in words
    dated: list[Dated] = field(default_factory=list)
    undated: list[tuple[str, DeadlineRule, str]] = field(default_factory=list)


STAGES = {"stage1": Stage.STAGE1, "escalation": Stage.STAGE1, "stage2": Stage.STAGE2,
          "ombudsman": Stage.OMBUDSMAN, "survey": Stage.CLOSED}
WINDOWS = {"escalation.window", "escalation.triage", "ombudsman.cooling_off", "survey.answer_window"}


def worked_example(policy: Policy, received_at: datetime, nation: Nation) -> Example:
    """The case as it runs when the engine sends its letters at once and every person takes all the time the
    policy gives them: each deadline opened in the workflow's order from its trigger's instant, and dated by
    the case's own DeadlineBook over the calendar a case received then would load."""
    year = received_at.astimezone(LONDON).year
    # As domain.records.calendar_request builds it for a case opened when the complaint is received.
    cal = build_snapshot(nation, year, year + CALENDAR_YEARS_AFTER, closures=policy.closures,
                         closing_time=policy.closing_time)
    ex = Example(nation=nation, calendar=cal)
    book = DeadlineBook()
    rules = dict(deadline_rules(policy))

    def happened(trigger: Trigger | str, at: datetime, words: str) -> datetime:
        key = trigger.value if isinstance(trigger, Trigger) else trigger
        ex.events[key] = at
        ex.said[key] = words
        return at

    def open_rule(where: str) -> Deadline | None:
        rule = rules.get(where)
        if rule is None or any(d.where == where for d in ex.dated):
            return None
        at = ex.events.get(rule.trigger.value)
        if at is None:
            ex.undated.append((where, rule, f"{_enum_words(rule.trigger, TRIGGER_WORDS)} does not happen in "
                                            "this example"))
            return None
        kind = DeadlineKind.WINDOW if where in WINDOWS else DeadlineKind.DUTY
        try:
            d = book.open_deadline(cal, where, rule, STAGES.get(where.split(".")[0], Stage.STAGE1), at, kind)
            _, skipped = wd.explain(cal, at, rule.length, rule.unit)
        except CalendarRangeError as exc:
            ex.undated.append((where, rule, str(exc)))
            return None
        ex.dated.append(Dated(where, rule, d, skipped))
        return d

    def last_day(d: Deadline | None, fallback: datetime) -> datetime:
        """A person acting on the last day allowed: 09:00 London that day (the instant itself for seconds)."""
        if d is None:
            return fallback
        if d.unit is DeadlineUnit.SECONDS:
            return d.due_at
        return max(d.trigger_at, datetime.combine(d.due_date, BARE_DATE_TIME, tzinfo=LONDON))

    happened(Trigger.RECEIVED, received_at, "the complaint is received (and the case filed)")
    # The case acknowledges as soon as it has appointed the handler: the letter goes when the case opens.
    happened(Trigger.ACKNOWLEDGED, received_at, "the engine sends the acknowledgement letter")
    open_rule("stage1.acknowledgement")
    s1 = open_rule("stage1.response")
    happened(Trigger.STAGE1_RESPONSE, last_day(s1, received_at),
             "the handler sends the Stage 1 response, on its last day")
    window = open_rule("escalation.window")
    asked = happened(Trigger.ESCALATION_REQUESTED, last_day(window, ex.events["stage1_response"]),
                     "the resident asks for a review, on the last day of the window")
    triage = open_rule("escalation.triage")
    stage2_at = triage.due_at if triage is not None else asked
    if triage is not None:
        happened("stage2_started", stage2_at, "the triage ends unrefused: Stage 2 starts")
    open_rule("stage2.contact")
    happened(Trigger.STAGE2_ACKNOWLEDGED, stage2_at, "the engine appoints the reviewer and sends the Stage 2 "
             "acknowledgement letter")
    open_rule("stage2.acknowledgement")
    panel = policy.stage2.panel
    if panel is not None:
        earliest = wd.add_working_days(cal, asked.astimezone(LONDON).date(), panel.earliest_after_working_days)
        happened(Trigger.PANEL_SITTING, sitting_instant(earliest),
                 "the review panel sits, on the earliest day allowed (if a set date falls then)")
    final = open_rule("stage2.response")
    final_at = happened(Trigger.FINAL_RESPONSE, last_day(final, stage2_at),
                        "the final response is sent, on its last day")
    cooling = open_rule("ombudsman.cooling_off")
    closed = cooling.due_at if cooling is not None else final_at
    happened(Trigger.CLOSED, closed, "the case closes" + (" when the cooling-off ends, without a referral"
                                                          if cooling is not None else ""))
    if policy.survey.enabled:
        open_rule("survey.answer_window")
    for where in rules:  # a rule the steps above do not know (the schema grew): dated from its trigger if it can be
        open_rule(where)
    return ex


def when(at: datetime) -> str:
    local = at.astimezone(LONDON)
    return f"{long_date(local.date())} {local:%H:%M}" + (f":{local:%S}" if local.second else "")


def short(d: date) -> str:
    return f"{d:%a} {d.day} {d:%b %Y}"


def example_lines(policy: Policy, ex: Example, given: bool) -> list[str]:
    received = ex.events[Trigger.RECEIVED.value]
    how = "" if given else " (the default day, fixed so that the example reads the same on any day; --from YYYY-MM-DD for another)"
    out = ["", f"Worked example: a complaint received {when(received)} London time{how}, about a property in "
               f"{ex.nation.value}",
           f"  Bank holidays of {ex.nation.value} from the holidays package, with the policy's closures "
           "(holidays and closures announced with `python -m starter calendar` are not included).",
           "  The engine sends its own letters at once; every person takes all the time the policy gives them.",
           "", "  What happens"]
    out += [f"    {when(at):<32} {ex.said[key]}" for key, at in sorted(ex.events.items(), key=lambda kv: kv[1])]
    out += ["", "  Deadlines (due by the end of the day shown, London time)"]
    for d in sorted(ex.dated, key=lambda d: (d.deadline.due_at, d.where)):
        dl = d.deadline
        due = when(dl.due_at) if dl.unit is DeadlineUnit.SECONDS else short(dl.due_date)
        line = (f"    {due:<17} {d.rule.label}: {rule_words(d.rule)} "
                f"(from {when(dl.trigger_at)})")
        out.append(line)
        named = [s for s in d.skipped if s.day.weekday() < 5]
        if named:
            out.append("                      not counted: " + "; ".join(f"{short(s.day)} {s.reason}" for s in named))
        if dl.reminder_at is not None:
            out.append(f"                      reminder {when(dl.reminder_at)}")
    for where, rule, why in ex.undated:
        out.append(f"    (not dated)       {rule.label} ({where}): {rule_words(rule)}; {why}")
    out += ["", f"  Check any one: python -m starter deadline --from {received.astimezone(LONDON).date()} "
                f"--working-days N --nation {ex.nation.value} --explain"]
    return out


def example_json(policy: Policy, ex: Example) -> dict[str, Any]:
    return {
        "policy": policy.pinned, "nation": ex.nation.value,
        "events": {k: v.isoformat() for k, v in ex.events.items()},
        "deadlines": [{
            "rule": d.where, "label": d.rule.label, "length": d.rule.length, "unit": d.rule.unit.value,
            "trigger": d.rule.trigger.value, "trigger_at": d.deadline.trigger_at.isoformat(),
            "due_date": d.deadline.due_date.isoformat(), "due_at": d.deadline.due_at.isoformat(),
            "reminder_at": d.deadline.reminder_at.isoformat() if d.deadline.reminder_at else None,
            "skipped": [{"day": s.day.isoformat(), "reason": s.reason} for s in d.skipped],
        } for d in ex.dated],
        "undated": [{"rule": where, "label": rule.label, "why": why} for where, rule, why in ex.undated],
    }


def cmd_explain(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        policy = load(path)
    except PolicyFileError as exc:
        return refused(exc)
    nations: list[Nation] = list(getattr(policy, "nations", None) or [])
    nation: Nation = args.nation or (nations[0] if nations else Nation.ENGLAND_AND_WALES)
    if nations and nation not in nations:
        # As `file` refuses such a case (exit 1): there is no such case to work through.
        raise CliError(f"refused: policy {policy.id} serves {', '.join(n.value for n in nations)}; a property in "
                       f"{nation.value} cannot be filed under it (give --nation one of those)")
    given = args.received is not None
    received: datetime = args.received or datetime.combine(DEFAULT_FROM, BARE_DATE_TIME, tzinfo=LONDON)
    ex = worked_example(policy, received, nation)
    if args.json:
        print(json.dumps(example_json(policy, ex), indent=2))
    else:
        print("\n".join(describe(path, policy) + example_lines(policy, ex, given)))
    return 0


def _from(text: str) -> datetime:
    if len(text) != 10 and "T" not in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO datetime")
    return parse_from(text)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("policy", help="check a policy file, or explain its procedure with a worked example")
    sub = p.add_subparsers(dest="policy_command", required=True, parser_class=type(p))
    c = sub.add_parser("check", help="validate a policy file as the engine loads it (exit 2 on errors)")
    c.add_argument("file", help="the policy file, e.g. policies/hos-code-2024.toml")
    c.set_defaults(func=cmd_check)
    e = sub.add_parser("explain", help="the procedure in words, and a worked example case's deadlines")
    e.add_argument("file", help="the policy file, e.g. policies/hos-code-2024.toml")
    e.add_argument("--from", dest="received", type=_from, metavar="YYYY-MM-DD",
                   help=f"the day the example complaint is received, 09:00 London (default {DEFAULT_FROM})")
    e.add_argument("--nation", type=parse_nation, default=None,
                   help="the property's nation, whose bank holidays count (default: the policy's first, else "
                        "england-and-wales)")
    e.add_argument("--json", action="store_true", help="the worked example as JSON")
    e.set_defaults(func=cmd_explain)

