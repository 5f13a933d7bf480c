"""Payloads between the workflow and its activities (the side of the case that touches the world)."""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum

from pydantic import BaseModel, Field

from domain import calendar as wd
from domain.calendar import CalendarSnapshot, Nation
from domain.case import CaseEvent, Deadline, Stage, Status
from domain.contract import FileComplaint
from domain.policy import Policy, PolicyLetter


class Activity(StrEnum):
    LOAD_POLICY = "load_policy"
    LOAD_CALENDAR = "load_calendar"
    REGISTER_COMPLAINT = "register_complaint"
    RECORD_EVENTS = "record_events"
    APPOINT_STAFF = "appoint_staff"
    SEND_LETTER = "send_letter"
    NOTIFY_STAFF = "notify_staff"
    INVITE_INVOLVED_CUSTOMER = "invite_involved_customer"
    BOOK_PANEL_SITTING = "book_panel_sitting"
    OPEN_CASE = "open_case"
    WHO_CANCELLED = "who_cancelled"
    REASSIGN_STAFF = "reassign_staff"


# The error type of a write the case record refuses because the writer does not own the case.
NOT_THIS_CASE = "NotThisCase"


class WritesCaseRecord(BaseModel):
    """A request to an activity that writes one case's record. The workflow fills case_run (CaseState._act)
    with its chain's first run id, which a continue-as-new keeps; the activity checks that the case record
    belongs to that chain (activities/ownership.py). None from requests scheduled before it was sent."""

    case_run: str | None = None


class RegisterComplaint(WritesCaseRecord):
    complaint: FileComplaint
    workflow_id: str
    policy_id: str
    policy_version: str
    landlord: str


class CaseSnapshot(BaseModel):
    """The case row's current stage and status, written with each batch of events."""

    stage: Stage
    status: Status
    handler_id: str | None = None
    stage2_handler_id: str | None = None
    escalated_at: datetime | None = None
    closed_at: datetime | None = None


class EventBatch(WritesCaseRecord):
    reference: str
    events: list[CaseEvent]
    case: CaseSnapshot
    deadlines: list[Deadline]


class CarriesTimeline(WritesCaseRecord):
    """A request to an activity that writes the case record, and so can write the case's pending timeline
    rows in the same transaction: one activity where there were two (see CaseState._act)."""

    timeline: EventBatch | None = None


class OpenCase(WritesCaseRecord):
    """Everything a new case needs before its first deadline, in one activity: the policy (its version is
    pinned on the case), the complaints row, then the calendar, read after the row is committed so a
    calendar change made meanwhile still finds the case."""

    complaint: FileComplaint
    workflow_id: str
    # When the workflow started: with the receipt, the years its calendar covers (see calendar_request).
    opened_at: datetime | None = None


class OpenedCase(BaseModel):
    policy: Policy
    calendar: CalendarSnapshot


class AppointStaff(CarriesTimeline):
    reference: str
    stage: Stage
    role: str
    landlord: str
    # Stage 2 is handled by a different person from Stage 1: the activity enforces it.
    exclude: list[str] = Field(default_factory=list)


class ReassignStaff(CarriesTimeline):
    """Give the case's appointment at `stage` to `staff_id`, who must be active staff of `role`."""

    reference: str
    stage: Stage
    staff_id: str
    role: str
    landlord: str


class StaffMember(BaseModel):
    id: str
    name: str
    role: str


class LetterRequest(CarriesTimeline):
    reference: str
    letter_key: str  # unique per case: a retried send finds the letter already written
    kind: str
    stage: Stage
    recipient_name: str
    recipient_address: str | None
    recipient_email: str | None = None
    fields: dict[str, str] = Field(default_factory=dict)
    # The policy's own wording, for the letters a policy words (domain.policy.POLICY_LETTER_FIELDS);
    # otherwise the engine's template for the kind.
    wording: PolicyLetter | None = None


class LetterSent(BaseModel):
    letter_id: int
    letter_key: str
    kind: str
    subject: str
    sent_at: datetime


class Notification(CarriesTimeline):
    reference: str
    key: str  # unique per case
    role: str
    staff_id: str | None = None
    kind: str
    message: str


class CalendarRequest(BaseModel):
    nation: Nation
    first_year: int
    last_year: int
    closures: list[date] = Field(default_factory=list)
    closing_time: time | None = time(17, 0)


# How many years the calendar runs past the later of receipt and opening: longer than a whole procedure
# (Stage 1, the review window, Stage 2, the Ombudsman step, extensions included) under any policy.
CALENDAR_YEARS_AFTER = 3


def calendar_request(complaint: FileComplaint, policy: Policy, opened_at: datetime | None = None) -> CalendarRequest:
    """The calendar a case counts on: its nation, the policy's closures and closing time, from the year it
    was received to CALENDAR_YEARS_AFTER years after it was received or opened, whichever is later.

    Opening counts because the steps after filing count from when they happen, not from receipt: a
    complaint migrated from an old system, received years before the case opened, still has working
    days for its acknowledgement and response (opened_at is None only in cases opened before it was
    carried, which counted from receipt alone). A receipt later than the opening is refused at start."""
    received = complaint.received_at.astimezone(wd.LONDON).year
    opened = opened_at.astimezone(wd.LONDON).year if opened_at is not None else received
    return CalendarRequest(nation=complaint.property.nation, first_year=min(received, opened),
                           last_year=max(received, opened) + CALENDAR_YEARS_AFTER,
                           closures=policy.closures, closing_time=policy.closing_time)


class InviteInvolvedCustomer(CarriesTimeline):
    reference: str
    landlord: str


class InvolvedCustomer(BaseModel):
    id: str
    name: str


class BookSitting(CarriesTimeline):
    reference: str
    landlord: str
    earliest: date
    attending: bool = False


class PanelSitting(BaseModel):
    id: int
    sits_on: date
    attendance_possible: bool


class CancelRequest(BaseModel):
    """Who asked Temporal to cancel a case, and why (the cancel request's identity and reason), as far as
    the history says: empty when it does not."""

    by: str = ""
    reason: str = ""
