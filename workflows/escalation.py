"""Escalation: the window to ask for a review, and the landlord's triage of the request.

One job: from the Stage 1 response to the start of Stage 2, or to a refusal. The resident's
request_review and the landlord's refuse_escalation live here with the waits they end. The review contact
clock starts here because it runs from the request, before Stage 2 is acknowledged.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from domain.case import DeadlineKind, Stage, Status
    from domain.contract import (
        AcceptEscalation,
        RefuseEscalation,
        RequestReview,
        Signal,
        Update,
        UpdateResult,
    )
    from domain.policy import Trigger
    from workflows.messages import NO_PAYLOAD, Refused, parse

from workflows.case_state import ESC_TRIAGE, ESC_WINDOW, S2_CONTACT
from workflows.continuation import Rest
from workflows.inbox import queued
from workflows.letters import Letters


class Escalation(Letters):
    """From the Stage 1 response to Stage 2, or to a refusal."""

    async def _await_escalation(self) -> None:
        if self._resumed_beyond(Rest.ESCALATION_TRIAGE):
            return
        policy = self._require_policy()
        if not self._resumed_at(Rest.ESCALATION_TRIAGE):
            window = self._book.get(ESC_WINDOW)
            await self._rest(Rest.ESCALATION_WINDOW, lambda: self._review_request is not None
                             or (window is not None and window.passed_at is not None))
            if self._review_request is None:
                return
            self._escalated_at = self._triggers[Trigger.ESCALATION_REQUESTED]
            # The contact clock runs from the request, so a call made while the landlord may still refuse
            # the escalation counts.
            self._open_review_contact()
            if policy.escalation.triage is not None:
                self._open_deadline(ESC_TRIAGE, policy.escalation.triage, Stage.STAGE1, kind=DeadlineKind.WINDOW)
                self._set(Status.RESPONDED, "the escalation to be accepted or refused (update refuse_escalation)")
        if policy.escalation.triage is not None:
            triage = self._book.get(ESC_TRIAGE)
            assert triage is not None
            # Met: the landlord accepted the escalation before the triage ended (accept_escalation).
            await self._rest(Rest.ESCALATION_TRIAGE, lambda: self._refusal is not None or triage.passed_at is not None
                             or triage.met_at is not None)
        if self._refusal is not None:
            self._book.cancel(ESC_TRIAGE)
            self._book.cancel(S2_CONTACT)
            refusal = self._refusal
            await self._letter("escalation.refused", "escalation_refused", Stage.STAGE1, {
                "reason": policy.escalation.refusal_reasons[refusal.reason_code],
                "explanation": refusal.explanation, **self._ombudsman_fields(),
            })
            self._set(Status.ESCALATION_REFUSED, "closure")

    def _open_review_contact(self) -> None:
        s2 = self._require_policy().stage2
        if s2.contact is not None and self._book.get(S2_CONTACT) is None:
            self._open_deadline(S2_CONTACT, s2.contact, Stage.STAGE2)

    @workflow.signal(name=Signal.REQUEST_REVIEW)
    @queued(Signal.REQUEST_REVIEW)
    def request_review(self, payload: RawValue = NO_PAYLOAD) -> None:
        with self._refusing(Signal.REQUEST_REVIEW):
            request = parse(RequestReview, payload)
            at = request.at or workflow.now()
            self._check_not_future(at)
            if self._review_request is not None:
                raise Refused("request_review: a review has already been requested")
            window = self._book.get(ESC_WINDOW)
            if window is None:
                raise Refused("request_review: the Stage 1 response has not been sent yet; a review can be "
                              "requested once it has")
            if not window.open or window.passed_at is not None:
                raise Refused(f"request_review: the window to ask for a review ended on {window.due_date.isoformat()}")
            if at < window.trigger_at:
                raise Refused("request_review: a review request cannot predate the Stage 1 response")
            self._review_request = request
            self._triggers[Trigger.ESCALATION_REQUESTED] = at
            self._book.meet(ESC_WINDOW, at)
            self._wake = True
            self._event("escalation_requested", "The resident asked for a review", at=at, actor="resident",
                        detail={"reasons": request.reasons})

    @workflow.update(name=Update.ACCEPT_ESCALATION)
    async def accept_escalation(self, payload: RawValue = NO_PAYLOAD) -> UpdateResult:
        await self._after_earlier_messages(lambda: self._validate_accept_escalation(payload))
        acceptance = parse(AcceptEscalation, payload)
        self._book.meet(ESC_TRIAGE, workflow.now())  # ends the triage wait: Stage 2 starts now
        self._wake = True
        self._event("escalation_accepted", "Escalation accepted: Stage 2 starts now", actor=acceptance.by,
                    detail={"deadline": ESC_TRIAGE, "notes": acceptance.notes})
        self._publish()
        return UpdateResult(message="Escalation accepted; Stage 2 starts now")

    @accept_escalation.validator
    def _validate_accept_escalation(self, payload: RawValue = NO_PAYLOAD) -> None:
        def check() -> None:
            parse(AcceptEscalation, payload)
            self._require_policy_or_refuse()
            if self._review_request is None:
                raise Refused("accept_escalation: the resident has not asked for a review")
            if self._refusal is not None:
                raise Refused("accept_escalation: the escalation has already been refused")
            triage = self._book.get(ESC_TRIAGE)
            if self._stage is not Stage.STAGE1 or triage is None or not triage.open or triage.passed_at is not None:
                raise Refused("accept_escalation: there is no escalation waiting to be accepted (Stage 2 has "
                              "already begun, or this policy has no triage)")
        self._validate(check)

    @workflow.update(name=Update.REFUSE_ESCALATION)
    async def refuse_escalation(self, payload: RawValue = NO_PAYLOAD) -> UpdateResult:
        await self._after_earlier_messages(lambda: self._validate_refuse_escalation(payload))
        refusal = parse(RefuseEscalation, payload)
        self._refusal = refusal
        self._wake = True
        self._event("escalation_refused", f"Escalation refused: {refusal.reason_code}", actor=refusal.by,
                    detail=refusal.model_dump(mode="json"))
        return UpdateResult(message="Escalation refused; the resident is being told why and of their right to go "
                                    f"to the {self._require_policy().ombudsman.name}")

    @refuse_escalation.validator
    def _validate_refuse_escalation(self, payload: RawValue = NO_PAYLOAD) -> None:
        def check() -> None:
            refusal = parse(RefuseEscalation, payload)
            policy = self._require_policy_or_refuse()
            if self._review_request is None:
                raise Refused("refuse_escalation: the resident has not asked for a review")
            if self._refusal is not None:
                raise Refused("refuse_escalation: the escalation has already been refused")
            if self._stage is not Stage.STAGE1:
                raise Refused("refuse_escalation: Stage 2 has already been acknowledged; it can no longer be refused")
            if refusal.reason_code not in policy.escalation.refusal_reasons:
                allowed = ", ".join(policy.escalation.refusal_reasons)
                raise Refused(f"refuse_escalation: {refusal.reason_code!r} is not a reason this policy allows "
                              f"(allowed: {allowed})")
        self._validate(check)
