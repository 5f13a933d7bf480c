"""Payloads between the workflow and its activities (the side of the case that touches the world)."""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum

from pydantic import BaseModel, Field

from domain.calendar import Nation
from domain.case import CaseEvent, Deadline, Stage, Status
from domain.contract import FileComplaint


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


class RegisterComplaint(BaseModel):
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


class EventBatch(BaseModel):
    reference: str
    events: list[CaseEvent]
    case: CaseSnapshot
    deadlines: list[Deadline]


class AppointStaff(BaseModel):
    reference: str
    stage: Stage
    role: str
    landlord: str
    # Stage 2 is handled by a different person from Stage 1: the activity enforces it.
    exclude: list[str] = Field(default_factory=list)


class StaffMember(BaseModel):
    id: str
    name: str
    role: str


class LetterRequest(BaseModel):
    reference: str
    letter_key: str  # unique per case: a retried send finds the letter already written
    kind: str
    stage: Stage
    recipient_name: str
    recipient_address: str | None
    recipient_email: str | None = None
    fields: dict[str, str] = Field(default_factory=dict)


class LetterSent(BaseModel):
    letter_id: int
    letter_key: str
    kind: str
    subject: str
    sent_at: datetime


class Notification(BaseModel):
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


class InviteInvolvedCustomer(BaseModel):
    reference: str
    landlord: str


class InvolvedCustomer(BaseModel):
    id: str
    name: str


class BookSitting(BaseModel):
    reference: str
    landlord: str
    earliest: date
    attending: bool = False


class PanelSitting(BaseModel):
    id: int
    sits_on: date
    attendance_possible: bool
