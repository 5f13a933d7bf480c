"""Stage 1: acknowledge, appoint a case handler, respond.

One job: the complaint stage, in order, and the update that answers it (submit_stage1_response), kept
together so that the wait and what ends it are read in one place.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from domain import calendar as wd
    from domain.case import DeadlineKind, Stage, Status
    from domain.contract import StageResponse, Update, UpdateResult
    from domain.policy import ReviewKind, Trigger
    from domain.records import Activity, AppointStaff, StaffMember
    from workflows import letter_dates as dates
    from workflows.messages import NO_PAYLOAD, Refused, parse

from workflows.case_state import DECISION_WORDS, ESC_WINDOW, S1_ACK, S1_RESPONSE, long_date
from workflows.continuation import Rest
from workflows.letters import Letters


class Stage1(Letters):
    """The complaint stage and its response."""

    async def _stage_one(self) -> None:
        if self._resumed_beyond(Rest.STAGE1_RESPONSE):
            return
        policy = self._require_policy()
        if not self._resumed_at(Rest.STAGE1_RESPONSE):
            await self._acknowledge()
        await self._rest(Rest.STAGE1_RESPONSE, lambda: self._stage1_response is not None)
        response = self._stage1_response
        assert response is not None
        window = policy.escalation.window
        responded_at = await self._letter("stage1.response", "stage1_response", Stage.STAGE1, {
            **self._response_fields(response),
            "escalation_name": "review" if policy.stage2.kind is not ReviewKind.CODE_STAGE2 else "escalate",
        }, lambda at: {"escalation_by": long_date(
            dates.escalation_window_ends(policy, self._calendar(), self._triggers, at))})
        self._mark(Trigger.STAGE1_RESPONSE, S1_RESPONSE, "stage1_responded",
                   f"Stage 1 response sent: {DECISION_WORDS[response.decision]}", actor=response.by,
                   decision=response.decision, at=responded_at)
        escalation = self._open_deadline(ESC_WINDOW, window, Stage.STAGE1, kind=DeadlineKind.WINDOW)
        self._set(Status.RESPONDED, f"a review request until {escalation.due_date.isoformat()}, else closure")

    async def _acknowledge(self) -> None:
        """Appoint the handler, acknowledge in writing, open the response deadline."""
        policy = self._require_policy()
        self._open_deadline(S1_ACK, policy.stage1.acknowledgement, Stage.STAGE1)
        self._handler = await self._act(
            Activity.APPOINT_STAFF,
            AppointStaff(reference=self._c.reference, stage=Stage.STAGE1, role=policy.stage1.handler_role,
                         landlord=policy.landlord),
            StaffMember, "Appoint the Stage 1 case handler"
        )
        self._event("handler_appointed", f"{self._handler.name} appointed to handle the complaint",
                    detail={"staff_id": self._handler.id, "role": self._handler.role})
        response_rule = policy.stage1.response
        acknowledged_at = await self._letter(S1_ACK, "acknowledgement", Stage.STAGE1, {
            "received_on": long_date(self._c.received_at.astimezone(wd.LONDON).date()),
            "summary": self._c.summary, "desired_outcome": self._c.desired_outcome or "(not stated)",
            "handler": self._handler.name,
        }, lambda at: {"response_due": long_date(
            dates.stage1_response_due(policy, self._calendar(), self._triggers, at))})
        self._mark(Trigger.ACKNOWLEDGED, S1_ACK, "acknowledged", "Complaint acknowledged in writing",
                   at=acknowledged_at)
        self._open_deadline(S1_RESPONSE, response_rule, Stage.STAGE1)
        self._set(Status.INVESTIGATING, "the Stage 1 response (update submit_stage1_response)")

    @workflow.update(name=Update.SUBMIT_STAGE1_RESPONSE)
    async def submit_stage1_response(self, payload: RawValue = NO_PAYLOAD) -> UpdateResult:
        await self._after_earlier_messages(lambda: self._validate_stage1_response(payload))
        response = parse(StageResponse, payload)
        self._stage1_response = response
        self._wake = True
        return UpdateResult(message="Stage 1 response accepted; the response letter is being sent",
                            details={"decision": response.decision})

    @submit_stage1_response.validator
    def _validate_stage1_response(self, payload: RawValue = NO_PAYLOAD) -> None:
        self._validate(lambda: self._check_stage1_response(payload))

    def _check_stage1_response(self, payload: RawValue) -> None:
        parse(StageResponse, payload)
        if self._stage is not Stage.STAGE1:
            raise Refused(f"submit_stage1_response: the case is at {self._stage.value} ({self._status.value}); "
                          "a Stage 1 response can only be submitted while Stage 1 is open")
        if self._stage1_response is not None:
            raise Refused("submit_stage1_response: the Stage 1 response has already been submitted")
        if S1_RESPONSE not in self._book.deadlines:
            raise Refused("submit_stage1_response: the complaint has not been acknowledged yet")
