"""A landlord's complaints procedure as validated data.

A policy file says what each stage's deadlines are (length, unit, the event that starts them),
how far they may be extended, who reviews, how involved residents take part and which routes to
the Ombudsman the final letter gives. The workflow follows it; a new landlord is a new file.
"""

from __future__ import annotations

import os
import re
import string
import tomllib
from collections.abc import Iterator
from datetime import date, time
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from domain import policy_lock
from domain.calendar import DeadlineUnit

POLICY_DIR = Path(__file__).resolve().parent.parent / "policies"
DEFAULT_POLICY = "hos-code-2024"
# Extra policy directories (os.pathsep-separated), searched after POLICY_DIR: how tests and
# benchmarks bring their compressed-time policies without shipping them.
POLICY_PATH_ENV = "COMPLAINTS_POLICY_PATH"


class Trigger(StrEnum):
    """The case event a deadline counts from."""

    RECEIVED = "received"
    ACKNOWLEDGED = "acknowledged"
    STAGE1_RESPONSE = "stage1_response"
    ESCALATION_REQUESTED = "escalation_requested"
    STAGE2_ACKNOWLEDGED = "stage2_acknowledged"
    PANEL_SITTING = "panel_sitting"
    FINAL_RESPONSE = "final_response"
    CLOSED = "closed"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeadlineRule(_Strict):
    label: str = Field(min_length=3, description="How operators and letters name it")
    length: int = Field(ge=0, le=400)
    unit: DeadlineUnit
    trigger: Trigger
    reminder_working_days_before: int = Field(default=2, ge=0, le=20)


class ExtensionRule(_Strict):
    max_working_days: int = Field(ge=0, le=60)
    # The Code allows more only for a genuine, recorded reason; some policies allow none.
    exceptional_reason_allows_more: bool = True


class StageOne(_Strict):
    acknowledgement: DeadlineRule
    response: DeadlineRule
    extension: ExtensionRule
    handler_role: str = "case_handler"


class Escalation(_Strict):
    window: DeadlineRule = Field(description="How long after the Stage 1 response the resident may ask for a review")
    direct_to_stage2: bool = False
    # Until this passes the landlord may refuse the escalation; then Stage 2 is acknowledged.
    triage: DeadlineRule | None = None
    refusal_reasons: dict[str, str] = Field(min_length=1)


class ReviewKind(StrEnum):
    CODE_STAGE2 = "code_stage2"
    COMPLAINTS_MANAGER_REVIEW = "complaints_manager_review"
    REVIEW_PANEL = "review_panel"


class ParticipationMode(StrEnum):
    NONE = "none"
    INVITED_INVOLVED_CUSTOMER = "invited_involved_customer"
    RESIDENT_CHOSEN_PANELISTS = "resident_chosen_panelists"


class ResidentParticipation(_Strict):
    mode: ParticipationMode = ParticipationMode.NONE
    max_residents: int = Field(default=0, ge=0, le=5)
    eligibility: list[str] = Field(default_factory=list)
    may_decline: bool = True


class ReviewQuestion(_Strict):
    key: str
    text: str


class Panel(_Strict):
    roles: list[str] = Field(min_length=1)
    chair_role: str
    # Earliest sitting: this many working days after the request (time to prepare papers).
    earliest_after_working_days: int = Field(default=0, ge=0)
    # A sitting the resident attends needs this much notice.
    attendance_notice_working_days: int = Field(default=5, ge=0)


class StageTwo(_Strict):
    kind: ReviewKind
    reviewer_role: str
    different_handler: bool = True
    contact: DeadlineRule | None = None
    acknowledgement: DeadlineRule
    response: DeadlineRule
    extension: ExtensionRule
    participation: ResidentParticipation = ResidentParticipation()
    review_questions: list[ReviewQuestion] = Field(default_factory=list)
    outcome_agreed_by: list[str] = Field(default_factory=list)
    findings_call_required: bool = False
    panel: Panel | None = None

    @model_validator(mode="after")
    def _kind_has_its_parts(self) -> StageTwo:
        if self.kind is ReviewKind.REVIEW_PANEL and self.panel is None:
            raise ValueError("a review_panel stage needs a [stage2.panel] table")
        if self.kind is ReviewKind.COMPLAINTS_MANAGER_REVIEW and not self.review_questions:
            raise ValueError("a complaints_manager_review stage needs its review_questions")
        if self.participation.mode is ParticipationMode.RESIDENT_CHOSEN_PANELISTS and not self.participation.eligibility:
            raise ValueError("resident-chosen panelists need eligibility bases")
        return self


class Ombudsman(_Strict):
    """The regulator a resident goes to when the landlord's procedure ends: letters name it as written here."""

    name: str = Field(min_length=3)
    contact: str = Field(min_length=3, description="How to reach it, as letters give it")
    designated_person_route: bool = False
    # Who may refer before the cooling-off ends, as letters put it, e.g. "your MP, a local councillor or a
    # tenant panel"; a policy with that route must say (load_policy_file checks).
    designated_persons: str = ""
    cooling_off: DeadlineRule | None = None
    referral_months: int = Field(default=12, ge=1)


class Survey(_Strict):
    enabled: bool = True
    answer_window: DeadlineRule | None = None


# Letters a policy words itself, and the fields the engine fills in each (anything else in the text is
# refused at load, so a letter can never fail to render on a case).
POLICY_LETTER_FIELDS: dict[str, frozenset[str]] = {
    "withdrawal": frozenset({"name", "reference", "landlord", "signed_by", "signed_as", "signature", "withdrawn_on",
                             "by", "reason"}),
}


class PolicyLetter(_Strict):
    """A letter's wording: Python format fields in braces, e.g. {name}, {reference}."""

    subject: str = Field(min_length=3)
    body: str = Field(min_length=10)


class Policy(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,40}$")
    version: str = Field(min_length=1)
    landlord: str
    title: str
    regulator: Literal["housing-ombudsman", "spso", "pso-wales", "nipso"] = "housing-ombudsman"
    closing_time: time = time(17, 0)
    closures: list[date] = Field(default_factory=list)
    manager_role: str = "complaints_manager"
    retention_years: int = Field(default=6, ge=1, le=20)
    stage1: StageOne
    escalation: Escalation
    stage2: StageTwo
    ombudsman: Ombudsman
    survey: Survey = Survey()
    letters: dict[str, PolicyLetter] = Field(default_factory=dict)
    # How letters title each staff role the policy names, under the signatory's name ("Case Handler").
    # Defaults empty so that policies pinned by cases before it still load; load_policy_file requires it.
    role_titles: dict[str, str] = Field(default_factory=dict)
    # A policy for tests and benchmarks (it may count in seconds); never one a landlord runs.
    test_only: bool = False
    # The hash of the file's content, set at load (domain/policy_lock.py), never written in the file.
    digest: str = ""

    @model_validator(mode="after")
    def _seconds_only_in_tests(self) -> Policy:
        for where, rule in deadline_rules(self):
            if rule.unit is DeadlineUnit.SECONDS and not self.test_only:
                raise ValueError(f"{where}.unit: 'seconds' is only for test policies (test_only = true)")
        return self

    @model_validator(mode="after")
    def _triggers_happen_before_their_deadlines(self) -> Policy:
        # A deadline counted from an event the case has not had when it opens could not be dated.
        allowed = triggers_at_opening(self)
        for where, rule in deadline_rules(self):
            if where in allowed and rule.trigger not in allowed[where]:
                can = ", ".join(sorted(allowed[where]))
                raise ValueError(f"{where}.trigger: {rule.trigger.value!r} has not happened when this deadline "
                                 f"opens; it can count from: {can}")
        return self

    @model_validator(mode="after")
    def _letters_use_known_fields(self) -> Policy:
        for kind, letter in self.letters.items():
            if kind not in POLICY_LETTER_FIELDS:
                raise ValueError(f"letters.{kind}: not a letter a policy words (known: {sorted(POLICY_LETTER_FIELDS)})")
            for part, text in (("subject", letter.subject), ("body", letter.body)):
                try:
                    used = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
                except ValueError as exc:
                    raise ValueError(f"letters.{kind}.{part}: {exc}") from None
                unknown = used - POLICY_LETTER_FIELDS[kind]
                if unknown:
                    raise ValueError(f"letters.{kind}.{part}: unknown fields {sorted(unknown)} "
                                     f"(known: {sorted(POLICY_LETTER_FIELDS[kind])})")
        return self

    @property
    def pinned_version(self) -> str:
        """The version with its content's hash: two rule sets never share one label."""
        return f"{self.version}#{self.digest.removeprefix('sha256:')[:12]}" if self.digest else self.version

    @property
    def pinned(self) -> str:
        return f"{self.id}@{self.pinned_version}"

    def named_roles(self) -> dict[str, str]:
        """Every staff role the policy names -> where (for error messages)."""
        roles = {self.stage1.handler_role: "stage1.handler_role", self.stage2.reviewer_role: "stage2.reviewer_role",
                 self.manager_role: "manager_role"}
        roles.update({r: "stage2.outcome_agreed_by" for r in self.stage2.outcome_agreed_by if r not in roles})
        if self.stage2.panel is not None:
            roles.update({r: "stage2.panel.roles" for r in self.stage2.panel.roles if r not in roles})
        return roles

    def role_title(self, role: str) -> str:
        """The role as letters name it ("" for a policy pinned before it titled roles)."""
        return self.role_titles.get(role, "")


def deadline_rules(model: BaseModel, where: str = "") -> Iterator[tuple[str, DeadlineRule]]:
    """Every deadline rule in a policy, with its dotted field name (for error messages)."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        here = f"{where}.{name}" if where else name
        if isinstance(value, DeadlineRule):
            yield here, value
        elif isinstance(value, BaseModel):
            yield from deadline_rules(value, here)


def triggers_at_opening(policy: Policy) -> dict[str, frozenset[Trigger]]:
    """For each deadline rule (dotted name), the events every case has had when that deadline opens:
    the triggers it can count from. A case filed directly at Stage 2 has no Stage 1 events; the survey
    window opens after a case ended at Stage 1 as well as after Stage 2."""
    t = Trigger
    stage1 = frozenset({t.RECEIVED, t.ACKNOWLEDGED})
    responded = stage1 | {t.STAGE1_RESPONSE}
    requested = (frozenset({t.RECEIVED}) if policy.escalation.direct_to_stage2 else responded) | {t.ESCALATION_REQUESTED}
    acknowledged = requested | {t.STAGE2_ACKNOWLEDGED}
    if policy.stage2.kind is ReviewKind.REVIEW_PANEL:
        acknowledged |= {t.PANEL_SITTING}
    return {
        "stage1.acknowledgement": frozenset({t.RECEIVED}),
        "stage1.response": stage1,
        "escalation.window": responded,
        "escalation.triage": requested,
        "stage2.contact": requested,
        "stage2.acknowledgement": requested,
        "stage2.response": acknowledged,
        "ombudsman.cooling_off": acknowledged | {t.FINAL_RESPONSE},
        "survey.answer_window": (frozenset() if policy.escalation.direct_to_stage2 else responded)
        | {t.RECEIVED, t.CLOSED},
    }


class PolicyError(ValueError):
    """A policy file that does not exist or does not validate; the message names file and field."""


def policy_path(policy_id: str, directory: Path = POLICY_DIR) -> Path:
    return directory / f"{policy_id}.toml"


def load_policy_file(path: Path, *, locked: bool = True) -> Policy:
    """The validated policy, with its content's digest; refused if the lock beside it records other
    content for its version (domain/policy_lock.py). locked=False only for recording a new version."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PolicyError(f"{path}: no such policy file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path}: not valid TOML: {exc}") from exc
    if "digest" in raw:
        raise PolicyError(f"{path}: field digest: computed from the file's content at load, never written in it")
    try:
        policy = Policy.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise PolicyError(f"{path}: field {where}: {first['msg']}") from exc
    if policy.id != path.stem:
        raise PolicyError(f"{path}: field id: is {policy.id!r} but the file is named {path.stem!r}")
    panel = policy.stage2.panel
    if panel is not None and panel.chair_role != policy.stage2.reviewer_role:
        # The Stage 2 reviewer the case appoints chairs the panel and signs its final response.
        raise PolicyError(f"{path}: field stage2.panel.chair_role: must be the reviewer_role "
                          f"({policy.stage2.reviewer_role!r}), who chairs the panel")
    if path.resolve().parent == POLICY_DIR.resolve():
        # A shipped policy runs real cases: compressed test time there would breach every deadline.
        if policy.test_only:
            raise PolicyError(f"{path}: field test_only: a shipped policy cannot be a test policy")
        for where, rule in deadline_rules(policy):
            if rule.unit is DeadlineUnit.SECONDS:
                raise PolicyError(f"{path}: field {where}.unit: 'seconds' is not allowed in a shipped policy")
        # Letters sign with a named person and their role, and name the regulator's routes as the policy does
        # (a test policy without them signs with the name alone).
        for role, where in policy.named_roles().items():
            if not policy.role_titles.get(role, "").strip():
                raise PolicyError(f"{path}: field role_titles.{role}: no title for the role named in {where}")
        if policy.ombudsman.designated_person_route and not policy.ombudsman.designated_persons.strip():
            raise PolicyError(f"{path}: field ombudsman.designated_persons: say who may refer (the policy has a "
                              "designated-person route)")
    content = policy_lock.digest(raw)
    if locked:
        try:
            policy_lock.check(path, f"{policy.id}@{policy.version}", content,
                              required=path.resolve().parent == POLICY_DIR.resolve())
        except policy_lock.LockError as exc:
            raise PolicyError(str(exc)) from None
    return policy.model_copy(update={"digest": content})


def policy_dirs() -> list[Path]:
    """POLICY_DIR, then the directories in $COMPLAINTS_POLICY_PATH (read at each call)."""
    extra = os.environ.get(POLICY_PATH_ENV, "")
    return [POLICY_DIR, *(Path(p) for p in extra.split(os.pathsep) if p)]


def load_policy(policy_id: str, directory: Path | None = None) -> Policy:
    """The policy by id, from `directory` or else the first directory on the search path that has it."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,40}", policy_id):
        raise PolicyError(f"unknown policy {policy_id!r}")
    dirs = [directory] if directory is not None else policy_dirs()
    for d in dirs:
        path = policy_path(policy_id, d)
        if path.exists():
            return load_policy_file(path)
    known = ", ".join(available_policies(directory))
    raise PolicyError(f"unknown policy {policy_id!r} (known: {known})")


def available_policies(directory: Path | None = None) -> list[str]:
    dirs = [directory] if directory is not None else policy_dirs()
    return sorted({p.stem for d in dirs for p in d.glob("*.toml")})
