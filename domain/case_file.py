"""The case file: everything a running case knows, in one model, so that it can continue as new.

A case runs for months and takes thousands of messages; Temporal caps one execution (10,000 signals,
2,000 updates, 51,200 events or 50 MB of history). The workflow continues as new at a safe point and
hands the next run this model, which restores every field the stages read. One place to extend: a step
that adds state adds a field here (with a default, so a case file written before still loads), and the
workflow keeps it in the attribute named after it with a leading underscore (`_<field>`, or the name in
ATTRIBUTES). CaseState builds its starting state from a fresh CaseFile, so the field is its declaration.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from domain.calendar import CalendarSnapshot
from domain.case import Breach, CaseEvent, Deadline, Extension, Stage, Status
from domain.contract import (
    AgreeOutcome,
    FileComplaint,
    OmbudsmanReferral,
    PanelDecision,
    RefuseEscalation,
    RequestReview,
    ReviewFindings,
    StageResponse,
    SupplyContactDetails,
    SurveyResponse,
    Withdraw,
)
from domain.policy import Policy, Trigger
from domain.records import InvolvedCustomer, LetterRequest, LetterSent, PanelSitting, StaffMember

# Fields whose workflow attribute is not `_<field>` (names kept short in the workflow code).
ATTRIBUTES = {"complaint": "_c", "calendar": "_cal"}
# The key a continued run's start argument is wrapped in, so it cannot be read as a FileComplaint.
CONTINUED = "continued_case"


class CaseFile(BaseModel):
    """Every field of a case's state (workflows/case_state.py); the continued run's start argument."""

    complaint: FileComplaint
    policy: Policy | None = None
    calendar: CalendarSnapshot | None = None
    deadlines: dict[str, Deadline] = Field(default_factory=dict)
    # The timeline's most recent events (bounded: workflows/case_state.py TIMELINE_KEPT_BYTES); every
    # event is in the case record. `seq` is the last sequence number given, so the record's sequence
    # continues across runs.
    timeline: list[CaseEvent] = Field(default_factory=list)
    timeline_bytes: list[int] = Field(default_factory=list)
    seq: int = 0
    unsaved: list[CaseEvent] = Field(default_factory=list)
    stage: Stage = Stage.STAGE1
    status: Status = Status.FILED
    waiting_for: str = "the case to be registered"
    handler: StaffMember | None = None
    reviewer: StaffMember | None = None
    triggers: dict[Trigger, datetime] = Field(default_factory=dict)
    breaches: list[Breach] = Field(default_factory=list)
    extensions: list[Extension] = Field(default_factory=list)
    refused: int = 0
    problems: list[str] = Field(default_factory=list)
    escalated_at: datetime | None = None
    closed_at: datetime | None = None
    letters: dict[str, LetterSent] = Field(default_factory=dict)
    # What people have told the case.
    stage1_response: StageResponse | None = None
    review_request: RequestReview | None = None
    refusal: RefuseEscalation | None = None
    final_response: StageResponse | None = None
    findings: ReviewFindings | None = None
    agreement: AgreeOutcome | None = None
    findings_call_at: datetime | None = None
    discussion_declined: bool = False
    participation_declined: bool = False
    involved_customer: InvolvedCustomer | None = None
    panelists: list[dict[str, Any]] = Field(default_factory=list)
    attend_requested: bool = False
    booked_attending: bool = False
    sitting: PanelSitting | None = None
    panel_decision: PanelDecision | None = None
    referral: OmbudsmanReferral | None = None
    survey: SurveyResponse | None = None
    contact_fix: SupplyContactDetails | None = None
    pending_letters: list[LetterRequest] = Field(default_factory=list)
    # Withdrawal (workflows/withdrawal.py). A case does not continue while withdrawing (a handler runs),
    # but its state is the case's like any other.
    withdrawal: Withdraw | None = None
    withdrawing: bool = False
    withdrawn: bool = False
    timeline_with_steps: bool = False
    # Where the procedure waited when the case continued as new (workflows/resume.py); None: from the start.
    resume_at: str | None = None
    # How many runs the case has had before this one (operators: a long case is not a stuck one).
    continued: int = 0


def attribute(field: str) -> str:
    return ATTRIBUTES.get(field, f"_{field}")
