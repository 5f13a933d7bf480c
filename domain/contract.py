"""The published contract: message names and their payloads.

Other services (a housing CRM, a contact centre, a resident portal) send these as plain JSON;
`make contracts` turns the models into JSON Schema. Names are constants so that a rename is a
deliberate, visible change.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from domain.calendar import Nation

WORKFLOW_TYPE = "ComplaintWorkflow"
TASK_QUEUE_DEFAULT = "complaints"


def workflow_id(reference: str) -> str:
    return f"complaint-{reference}"


class Signal(StrEnum):
    RECORD_CONTACT = "record_contact"
    EXTEND_DEADLINE = "extend_deadline"
    REQUEST_REVIEW = "request_review"
    TENANT_DECLINED_DISCUSSION = "tenant_declined_discussion"
    DECLINE_RESIDENT_PARTICIPATION = "decline_resident_participation"
    REQUEST_TO_ATTEND = "request_to_attend"
    OMBUDSMAN_REFERRAL = "ombudsman_referral"
    SURVEY_RESPONSE = "survey_response"
    CALENDAR_CHANGED = "calendar_changed"


class Update(StrEnum):
    SUBMIT_STAGE1_RESPONSE = "submit_stage1_response"
    REFUSE_ESCALATION = "refuse_escalation"
    RECORD_REVIEW_FINDINGS = "record_review_findings"
    AGREE_OUTCOME = "agree_outcome"
    REQUEST_RESIDENT_PANELISTS = "request_resident_panelists"
    RECORD_PANEL_DECISION = "record_panel_decision"
    SUBMIT_FINAL_RESPONSE = "submit_final_response"
    SUPPLY_CONTACT_DETAILS = "supply_contact_details"
    WITHDRAW = "withdraw"
    REASSIGN_HANDLER = "reassign_handler"
    ACCEPT_ESCALATION = "accept_escalation"


class Query(StrEnum):
    STATUS = "status"
    TIMELINE = "timeline"


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _printable(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and no other control character belongs in a resident's words:
    # refuse at the door rather than let the case record's write retry forever.
    found = _CONTROL.search(value)
    if found:
        raise ValueError(f"contains a control character (U+{ord(found.group()):04X}); send plain text")
    return value


# Free text is bounded: a CRM that sends a megabyte of notes gets a clear refusal, not a stuck case.
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
                      AfterValidator(_printable)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000),
                     AfterValidator(_printable)]
OptionalText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=10_000),
                         AfterValidator(_printable)]
Reference = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9-]{2,39}$")]

_EARLIEST = datetime(2000, 1, 1).astimezone()
_LATEST = datetime(2100, 1, 1).astimezone()


def _plausible_instant(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("needs a time zone offset (e.g. 2026-12-23T10:00:00+00:00)")
    if not (_EARLIEST <= value <= _LATEST):
        raise ValueError("is outside 2000-2100")
    return value


Instant = Annotated[datetime, AfterValidator(_plausible_instant)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Channel(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    LETTER = "letter"
    WEB = "web"
    IN_PERSON = "in_person"
    SOCIAL_MEDIA = "social_media"


class Resident(_Message):
    name: ShortText
    address: LongText | None = Field(default=None, description="Postal address for letters")
    email: ShortText | None = None
    phone: ShortText | None = None


class Property(_Message):
    address: LongText
    postcode: Annotated[str, StringConstraints(strip_whitespace=True, max_length=10)] = ""
    nation: Nation


class FileComplaint(_Message):
    """Starts a case. The workflow id is `complaint-<reference>`."""

    reference: Reference
    policy: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,40}$")] = "hos-code-2024"
    received_at: Instant = Field(description=(
        "When the landlord received the complaint, from 2000 on, and not later than the case's start (five "
        "minutes' tolerance): a later one fails the start (InvalidComplaint, with the reason) and opens "
        "nothing. An old date (a complaint migrated from another system) is served: the case's working-day "
        "calendar runs from the year received to three years after the later of receipt and start."))
    channel: Channel
    resident: Resident
    property: Property
    summary: LongText
    desired_outcome: OptionalText = ""
    # Straight into Stage 2, where the policy allows it (e.g. a complaint about a Stage 1 handler).
    start_at_stage2: bool = False


class ContactKind(StrEnum):
    GENERAL = "general"
    REVIEW_DISCUSSION = "review_discussion"
    FINDINGS_CALL = "findings_call"


class ContactDirection(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class RecordContact(_Message):
    at: Instant | None = None
    channel: Channel
    direction: ContactDirection
    by: ShortText
    notes: OptionalText = ""
    kind: ContactKind = ContactKind.GENERAL


class ExtendDeadline(_Message):
    working_days: int = Field(ge=1, le=60)
    reason: LongText
    # Over the policy's limit only with a genuine reason, recorded as such.
    exceptional: bool = False
    by: ShortText = "case handler"


class RequestReview(_Message):
    at: Instant | None = None
    reasons: OptionalText = ""


class TenantDeclinedDiscussion(_Message):
    at: Instant | None = None
    notes: OptionalText = ""


class DeclineResidentParticipation(_Message):
    reason: OptionalText = ""


class RequestToAttend(_Message):
    needs: OptionalText = ""


class OmbudsmanRoute(StrEnum):
    DESIGNATED_PERSON = "designated_person"
    DIRECT = "direct"


class OmbudsmanReferral(_Message):
    route: OmbudsmanRoute
    designated_person: ShortText | None = None
    at: Instant | None = None


class SurveyResponse(_Message):
    satisfied: bool
    score: int = Field(ge=0, le=10)
    comments: OptionalText = ""


class CalendarChanged(_Message):
    cause: LongText


class StageResponse(_Message):
    """A written response: Stage 1 response, or the final response at Stage 2."""

    decision: Literal["upheld", "partly_upheld", "not_upheld"]
    reasons: LongText
    remedy: OptionalText = ""
    outstanding_actions: list[ShortText] = Field(default_factory=list, max_length=50)
    points_addressed: list[ShortText] = Field(default_factory=list, max_length=50)
    by: ShortText = "case handler"


class RefuseEscalation(_Message):
    reason_code: ShortText
    explanation: OptionalText = ""
    by: ShortText = "complaints manager"


class ReviewAnswer(_Message):
    key: ShortText
    answer: bool
    notes: LongText


class ReviewFindings(_Message):
    answers: list[ReviewAnswer] = Field(min_length=1, max_length=20)
    summary: LongText
    by: ShortText = "complaints manager"


class AgreeOutcome(_Message):
    role: ShortText
    name: ShortText
    decision: Literal["upheld", "partly_upheld", "not_upheld"]
    outcome: LongText
    remedy: OptionalText = ""


class SupplyContactDetails(_Message):
    address: LongText | None = None
    email: ShortText | None = None


class Withdraw(_Message):
    """The resident withdraws the complaint: the case closes, with the policy's withdrawal letter."""

    by: ShortText = Field(description="Who withdrew it or recorded the withdrawal")
    reason: OptionalText = Field(default="", description="Why, if the resident said")


class ReassignHandler(_Message):
    """The landlord gives the case to another member of staff: the Stage 1 handler, or the Stage 2 reviewer
    once the case is at Stage 2."""

    staff_id: ShortText = Field(description="The staff id of the new handler (`python -m starter staff list`)")
    reason: OptionalText = Field(default="", description="Why, for the case record")
    by: ShortText = Field(description="Who made the change")


class AcceptEscalation(_Message):
    """The landlord accepts the resident's request for a review at once, instead of waiting out the triage."""

    by: ShortText = Field(description="Who accepted it")
    notes: OptionalText = Field(default="", description="Anything to record with it")


class ResidentPanelist(_Message):
    name: ShortText
    basis: ShortText
    tenant_consent: bool = False


class RequestResidentPanelists(_Message):
    panelists: list[ResidentPanelist] = Field(min_length=1, max_length=5)


class PanelDecision(_Message):
    decision: Literal["upheld", "partly_upheld", "not_upheld"]
    reasons: LongText
    remedy: OptionalText = ""
    sat_on: date | None = None


class UpdateResult(BaseModel):
    accepted: bool = True
    message: str
    details: dict[str, Any] = Field(default_factory=dict)
