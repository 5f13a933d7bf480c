"""What a case knows about itself: its stage, its deadlines and its timeline.

These models are the workflow's state and the answers of its queries; the same shapes are written
to the case record in PostgreSQL.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from domain.calendar import DeadlineUnit


class Stage(StrEnum):
    STAGE1 = "stage-1"
    STAGE2 = "stage-2"
    OMBUDSMAN = "ombudsman"
    CLOSED = "closed"


class Status(StrEnum):
    FILED = "filed"
    INVESTIGATING = "investigating"
    RESPONDED = "responded"
    ESCALATION_REFUSED = "escalation-refused"
    REVIEWING = "reviewing"
    AWAITING_PANEL = "awaiting-panel"
    FINAL_RESPONSE_SENT = "final-response-sent"
    COOLING_OFF = "cooling-off"
    AWAITING_FIX = "awaiting-fix"
    CLOSED = "closed"
    # Closed early: withdrawn by the resident (the withdraw update, or a cancellation request in Temporal).
    WITHDRAWN = "withdrawn"
    # The case record's word for a case whose workflow stopped without closing it (terminated, timed out,
    # failed): set by the ended-cases sweep, never by the case itself.
    ENDED_ABNORMALLY = "ended-abnormally"


class DeadlineKind(StrEnum):
    DUTY = "duty"  # the landlord must do something by then; missing it is a breach
    WINDOW = "window"  # the resident may do something until then; its end is an event, not a breach


class Deadline(BaseModel):
    key: str
    label: str
    stage: Stage
    kind: DeadlineKind = DeadlineKind.DUTY
    length: int
    unit: DeadlineUnit
    trigger_at: datetime
    original_due_date: date
    due_date: date
    due_at: datetime
    extended_by: int = 0
    reminder_working_days_before: int = 0
    reminder_at: datetime | None = None
    reminded: bool = False
    met_at: datetime | None = None
    # When the keeper saw it pass unmet: a breach for a duty, the end of a window.
    passed_at: datetime | None = None
    cancelled: bool = False

    @property
    def open(self) -> bool:
        return self.met_at is None and not self.cancelled

    @property
    def breached(self) -> bool:
        return self.kind is DeadlineKind.DUTY and self.passed_at is not None

    @property
    def met_on_time(self) -> bool | None:
        if self.met_at is None:
            return None
        return self.met_at <= self.due_at


class CaseEvent(BaseModel):
    seq: int
    at: datetime
    kind: str
    stage: Stage
    actor: str = "system"
    summary: str
    detail: dict[str, Any] = Field(default_factory=dict)


class Breach(BaseModel):
    deadline: str
    label: str
    stage: Stage
    due_date: date
    recorded_at: datetime


class Extension(BaseModel):
    deadline: str
    working_days: int
    reason: str
    exceptional: bool
    old_due_date: date
    new_due_date: date
    at: datetime


class CaseStatus(BaseModel):
    reference: str
    policy: str
    stage: Stage
    status: Status
    waiting_for: str
    handler: str | None = None
    stage2_handler: str | None = None
    next_deadline: Deadline | None = None
    deadlines: list[Deadline]
    breaches: list[Breach]
    extensions: list[Extension]
    refused_messages: int = 0
    problems: list[str] = Field(default_factory=list)
