"""Hypothesis strategies for every message in the contract: payloads a well-behaved caller could send,
and corrupted variants of them that a careless or hostile one might.

A corrupted payload is paired with the field its refusal must name, so that tests can hold the
engine to "refused with a clear message", not just "refused".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from hypothesis import strategies as st
from pydantic import BaseModel

from domain import contract as c
from domain.contract import Signal, Update
from domain.policy import load_policy

SIGNAL_MODELS: dict[Signal, type[BaseModel]] = {
    Signal.RECORD_CONTACT: c.RecordContact,
    Signal.EXTEND_DEADLINE: c.ExtendDeadline,
    Signal.REQUEST_REVIEW: c.RequestReview,
    Signal.TENANT_DECLINED_DISCUSSION: c.TenantDeclinedDiscussion,
    Signal.DECLINE_RESIDENT_PARTICIPATION: c.DeclineResidentParticipation,
    Signal.REQUEST_TO_ATTEND: c.RequestToAttend,
    Signal.OMBUDSMAN_REFERRAL: c.OmbudsmanReferral,
    Signal.SURVEY_RESPONSE: c.SurveyResponse,
    Signal.CALENDAR_CHANGED: c.CalendarChanged,
}
UPDATE_MODELS: dict[Update, type[BaseModel]] = {
    Update.SUBMIT_STAGE1_RESPONSE: c.StageResponse,
    Update.REFUSE_ESCALATION: c.RefuseEscalation,
    Update.RECORD_REVIEW_FINDINGS: c.ReviewFindings,
    Update.AGREE_OUTCOME: c.AgreeOutcome,
    Update.REQUEST_RESIDENT_PANELISTS: c.RequestResidentPanelists,
    Update.RECORD_PANEL_DECISION: c.PanelDecision,
    Update.SUBMIT_FINAL_RESPONSE: c.StageResponse,
    Update.SUPPLY_CONTACT_DETAILS: c.SupplyContactDetails,
    Update.WITHDRAW: c.Withdraw,
    Update.REASSIGN_HANDLER: c.ReassignHandler,
    Update.ACCEPT_ESCALATION: c.AcceptEscalation,
}
# The timeline event an accepted signal writes. calendar_changed writes one deadline_moved per
# deadline it moves, which may be none, so its acceptance is the absence of a refusal.
ACCEPTED_EVENT: dict[Signal, str | None] = {
    Signal.RECORD_CONTACT: "contact_recorded",
    Signal.EXTEND_DEADLINE: "deadline_extended",
    Signal.REQUEST_REVIEW: "escalation_requested",
    Signal.TENANT_DECLINED_DISCUSSION: "discussion_declined",
    Signal.DECLINE_RESIDENT_PARTICIPATION: "participation_declined",
    Signal.REQUEST_TO_ATTEND: "attendance_requested",
    Signal.OMBUDSMAN_REFERRAL: "ombudsman_referral",
    Signal.SURVEY_RESPONSE: "survey_answered",
    Signal.CALENDAR_CHANGED: None,
}

SQL = "X'; DROP TABLE complaints;--"
# Text a CRM might really send: quotes, SQL, placeholders, backslashes, non-Latin scripts, emoji.
# Control characters (NUL above all) are left out here: PostgreSQL text cannot hold NUL, and what
# happens to it is a test of its own (see the report for this item).
_TRICKY = ["'", '"', ";", "--", "\\", "$1", "%s", "{}", "é", "ł", "Ω", "😀", "ـ", "\u202e", SQL]
_chars = st.characters(blacklist_categories=("Cs", "Cc"))
_text_atoms = st.one_of(st.text(_chars, min_size=1, max_size=12), st.sampled_from(_TRICKY))


def text(max_len: int = 40) -> st.SearchStrategy[str]:
    # Stripped and non-empty, as the contract's text types keep them, so a stored value can be compared.
    return (st.lists(_text_atoms, min_size=1, max_size=4).map("".join).map(str.strip)
            .filter(bool).map(lambda s: s[:max_len].strip()).filter(bool))


def optional_text() -> st.SearchStrategy[str]:
    return st.one_of(st.just(""), text())


def _instant(now: datetime) -> st.SearchStrategy[str | None]:
    # Mostly "now" (omitted); otherwise up to three days back, sometimes before the case existed.
    return st.one_of(st.none(), st.integers(0, 3 * 24 * 60).map(
        lambda m: (now - timedelta(minutes=m)).isoformat()))


_DECISION = st.sampled_from(["upheld", "partly_upheld", "not_upheld"])


def _stage_response() -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(
        {"decision": _DECISION, "reasons": text()},
        optional={"remedy": optional_text(), "outstanding_actions": st.lists(text(), max_size=3),
                  "points_addressed": st.lists(text(), max_size=3), "by": text()})


def valid_payload(name: Signal | Update, policy_id: str, now: datetime) -> st.SearchStrategy[dict]:
    """A payload its model accepts. Whether the case accepts it depends on where the case is."""
    policy = load_policy(policy_id)
    s2 = policy.stage2
    at = _instant(now)
    channel = st.sampled_from(list(c.Channel))
    strategies: dict[Any, st.SearchStrategy[dict]] = {
        Signal.RECORD_CONTACT: st.fixed_dictionaries(
            {"channel": channel, "direction": st.sampled_from(list(c.ContactDirection)), "by": text()},
            optional={"at": at, "notes": optional_text(), "kind": st.sampled_from(list(c.ContactKind))}),
        Signal.EXTEND_DEADLINE: st.fixed_dictionaries(
            {"working_days": st.integers(1, 25), "reason": text()},
            optional={"exceptional": st.booleans(), "by": text()}),
        Signal.REQUEST_REVIEW: st.fixed_dictionaries({}, optional={"at": at, "reasons": optional_text()}),
        Signal.TENANT_DECLINED_DISCUSSION: st.fixed_dictionaries({}, optional={"at": at, "notes": optional_text()}),
        Signal.DECLINE_RESIDENT_PARTICIPATION: st.fixed_dictionaries({}, optional={"reason": optional_text()}),
        Signal.REQUEST_TO_ATTEND: st.fixed_dictionaries({}, optional={"needs": optional_text()}),
        Signal.OMBUDSMAN_REFERRAL: st.fixed_dictionaries(
            {"route": st.sampled_from(list(c.OmbudsmanRoute))},
            optional={"designated_person": st.one_of(st.none(), text()), "at": at}),
        Signal.SURVEY_RESPONSE: st.fixed_dictionaries(
            {"satisfied": st.booleans(), "score": st.integers(0, 10)}, optional={"comments": optional_text()}),
        Signal.CALENDAR_CHANGED: st.fixed_dictionaries({"cause": text()}),
        Update.SUBMIT_STAGE1_RESPONSE: _stage_response(),
        Update.SUBMIT_FINAL_RESPONSE: _stage_response(),
        Update.REFUSE_ESCALATION: st.fixed_dictionaries(
            {"reason_code": st.sampled_from([*policy.escalation.refusal_reasons, "too_busy"])},
            optional={"explanation": optional_text(), "by": text()}),
        Update.RECORD_REVIEW_FINDINGS: st.fixed_dictionaries({
            # Usually every question once (what the validator wants), sometimes one short.
            "answers": st.sampled_from([0, 0, 1]).flatmap(lambda drop: st.permutations(
                [q.key for q in s2.review_questions] or ["investigation_thorough"]).map(
                lambda keys: keys[drop:] or keys)).flatmap(lambda keys: st.tuples(*[
                    st.fixed_dictionaries({"key": st.just(k), "answer": st.booleans(), "notes": text()})
                    for k in keys]).map(list)),
            "summary": text()}, optional={"by": text()}),
        Update.AGREE_OUTCOME: st.fixed_dictionaries({
            "role": st.sampled_from([*s2.outcome_agreed_by, "case_handler"]), "name": text(),
            "decision": _DECISION, "outcome": text()}, optional={"remedy": optional_text()}),
        Update.REQUEST_RESIDENT_PANELISTS: st.fixed_dictionaries({"panelists": st.lists(st.fixed_dictionaries(
            {"name": text(), "basis": st.sampled_from([*s2.participation.eligibility, "landlord_staff"])},
            optional={"tenant_consent": st.booleans()}), min_size=1, max_size=3)}),
        Update.RECORD_PANEL_DECISION: st.fixed_dictionaries(
            {"decision": _DECISION, "reasons": text()},
            optional={"remedy": optional_text(), "sat_on": st.one_of(st.none(), st.just(
                now.date().isoformat()))}),
        Update.SUPPLY_CONTACT_DETAILS: st.fixed_dictionaries(
            {}, optional={"address": st.one_of(st.none(), text()), "email": st.one_of(st.none(), text())}),
        Update.WITHDRAW: st.fixed_dictionaries({"by": text()}, optional={"reason": optional_text()}),
        # Staff of every seeded role, and an id no one has: the case record decides who may take it.
        Update.REASSIGN_HANDLER: st.fixed_dictionaries(
            {"staff_id": st.sampled_from(["S-CH-01", "S-CH-02", "S-CH-03", "S-CM-01", "S-S2-01", "S-S2-02",
                                          "S-OD-01", "S-NOBODY"]), "by": text()},
            optional={"reason": optional_text()}),
        Update.ACCEPT_ESCALATION: st.fixed_dictionaries({"by": text()}, optional={"notes": optional_text()}),
    }
    return strategies[name]


# -- corruption ----------------------------------------------------------------------------------
ABSENT = object()  # send the message with no argument at all


@dataclass(frozen=True)
class Corrupt:
    """A payload the model must refuse; `names` is what the refusal's message must mention."""

    payload: Any
    names: str
    how: str


def _text_fields(model: type[BaseModel]) -> list[str]:
    # Free-text fields (ShortText, LongText, OptionalText and their optional forms), not enums or literals.
    return [n for n, f in model.model_fields.items()
            if "str" in repr(f.annotation) and not any(w in repr(f.annotation) for w in ("list", "Literal"))]


def _instant_fields(model: type[BaseModel]) -> list[str]:
    return [n for n, f in model.model_fields.items() if "datetime" in repr(f.annotation)]


def _required(model: type[BaseModel]) -> list[str]:
    return [n for n, f in model.model_fields.items() if f.is_required()]


def corruptions(model: type[BaseModel], valid: dict) -> list[st.SearchStrategy[Corrupt]]:
    fields = list(model.model_fields)
    out: list[st.SearchStrategy[Corrupt]] = [
        # A JSON object where a string, number, date or list belongs: never coerced by pydantic.
        st.sampled_from(fields).map(lambda f: Corrupt({**valid, f: {"$ne": 1}}, f, "wrong type")),
        st.just(Corrupt({**valid, "drop_table": SQL}, "drop_table", "unknown field")),
        st.just(Corrupt(SQL, "payload", "not an object")),
        st.just(Corrupt([1, 2, 3], "payload", "not an object")),
        st.just(Corrupt(ABSENT, "no payload", "no payload")),
    ]
    required = _required(model)
    if required:
        out.append(st.sampled_from(required).map(
            lambda f: Corrupt({k: v for k, v in valid.items() if k != f}, f, "missing field")))
        # null is read as {} (an empty object), so it is refused only for models with required fields.
        out.append(st.just(Corrupt(None, required[0], "null payload")))
    text_fields = _text_fields(model)
    if text_fields:
        out.append(st.tuples(st.sampled_from(text_fields), st.sampled_from([10_001, 65_536, 1_000_000])).map(
            lambda t: Corrupt({**valid, t[0]: "A" * t[1]}, t[0], f"oversized ({t[1]} chars)")))
        out.append(st.sampled_from(text_fields).map(lambda f: Corrupt({**valid, f: 12345}, f, "number for text")))
    for f in _instant_fields(model):
        out.append(st.sampled_from([
            ("1900-01-01T10:00:00+00:00", "a date in 1900"), ("2200-06-01T10:00:00+00:00", "a date in 2200"),
            ("2027-03-01T10:00:00", "a naive datetime"), ("next Tuesday", "not a date"),
        ]).map(lambda v, f=f: Corrupt({**valid, f: v[0]}, f, v[1])))
    return out


def corrupted_payload(model: type[BaseModel], valid: dict) -> st.SearchStrategy[Corrupt]:
    return st.one_of(*corruptions(model, valid))


def every_corruption(model: type[BaseModel], valid: dict) -> list[Corrupt]:
    """One of each kind, deterministically, for the plain payload tests."""
    out: list[Corrupt] = []
    fields = list(model.model_fields)
    required = _required(model)
    out += [Corrupt({**valid, f: {"$ne": 1}}, f, "wrong type") for f in fields]
    out += [Corrupt({**valid, "drop_table": SQL}, "drop_table", "unknown field"),
            Corrupt(SQL, "payload", "not an object"), Corrupt(ABSENT, "no payload", "no payload")]
    out += [Corrupt({k: v for k, v in valid.items() if k != f}, f, "missing field") for f in required]
    if required:
        out.append(Corrupt(None, required[0], "null payload"))
    for f in _text_fields(model):
        out += [Corrupt({**valid, f: "A" * n}, f, f"oversized ({n} chars)") for n in (10_001, 1_000_000)]
    for f in _instant_fields(model):
        out += [Corrupt({**valid, f: v}, f, v) for v in
                ("1900-01-01T10:00:00+00:00", "2200-06-01T10:00:00+00:00", "2027-03-01T10:00:00")]
    return out


def panel_sitting_days(first: date, weeks: int) -> list[date]:
    """A sitting every Tuesday: enough room for any case the state machine runs to be booked."""
    start = first + timedelta(days=(1 - first.weekday()) % 7)
    return [start + timedelta(weeks=w) for w in range(weeks)]


# One well-formed payload per message, for the deterministic payload tests.
_RESPONSE = {"decision": "not_upheld", "reasons": "The repair was booked within our timescales.",
             "points_addressed": ["Repair delay"], "by": "Priya Shah"}
VALID: dict[Any, dict] = {
    Signal.RECORD_CONTACT: {"channel": "phone", "direction": "inbound", "by": "Priya Shah", "notes": "Called",
                            "at": "2027-03-01T11:00:00+00:00"},
    Signal.EXTEND_DEADLINE: {"working_days": 5, "reason": "Waiting for the surveyor"},
    Signal.REQUEST_REVIEW: {"reasons": "Not resolved", "at": "2027-03-01T11:00:00+00:00"},
    Signal.TENANT_DECLINED_DISCUSSION: {"notes": "No call please", "at": "2027-03-01T11:00:00+00:00"},
    Signal.DECLINE_RESIDENT_PARTICIPATION: {"reason": "Private matter"},
    Signal.REQUEST_TO_ATTEND: {"needs": "Step-free access"},
    Signal.OMBUDSMAN_REFERRAL: {"route": "designated_person", "designated_person": "Cllr Ahmed",
                                "at": "2027-03-01T11:00:00+00:00"},
    Signal.SURVEY_RESPONSE: {"satisfied": True, "score": 8, "comments": "Fine"},
    Signal.CALENDAR_CHANGED: {"cause": "Extra bank holiday"},
    Update.SUBMIT_STAGE1_RESPONSE: _RESPONSE,
    Update.SUBMIT_FINAL_RESPONSE: _RESPONSE,
    Update.REFUSE_ESCALATION: {"reason_code": "legal_proceedings", "explanation": "Court case"},
    Update.RECORD_REVIEW_FINDINGS: {"answers": [{"key": "investigation_thorough", "answer": True, "notes": "ok"}],
                                    "summary": "Reviewed"},
    Update.AGREE_OUTCOME: {"role": "director", "name": "Margaret Lewis", "decision": "upheld", "outcome": "Repair"},
    Update.REQUEST_RESIDENT_PANELISTS: {"panelists": [{"name": "Ada Brown", "basis": "tenant"}]},
    Update.RECORD_PANEL_DECISION: {"decision": "upheld", "reasons": "Missed twice", "sat_on": "2027-04-06"},
    Update.SUPPLY_CONTACT_DETAILS: {"address": "1 New Street, Bristol", "email": "a@example.org"},
    Update.WITHDRAW: {"by": "Priya Shah", "reason": "Resolved informally"},
    Update.REASSIGN_HANDLER: {"staff_id": "S-CH-02", "reason": "On leave", "by": "Team leader"},
    Update.ACCEPT_ESCALATION: {"by": "Complaints team", "notes": "Clearly within the policy"},
}
