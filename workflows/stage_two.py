"""Stage 2, common to every kind of review: appoint a reviewer, acknowledge, send the final response.

One job: the Stage 2 frame; the review itself is in code_review.py, manager_review.py or review_panel.py,
by the policy's ReviewKind. The messages every kind shares live here: contacts with the resident (which may
meet the review contact deadline or be the findings call), a declined discussion, and declined
involved-resident participation.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from domain.case import Stage, Status
    from domain.contract import (
        ContactKind,
        DeclineResidentParticipation,
        RecordContact,
        Signal,
        TenantDeclinedDiscussion,
    )
    from domain.policy import ParticipationMode, ReviewKind, Trigger
    from domain.records import Activity, AppointStaff, InvolvedCustomer, LetterRequest, StaffMember
    from workflows import letter_dates as dates
    from workflows.messages import NO_PAYLOAD, Refused, parse

from workflows.case_state import DECISION_WORDS, S2_ACK, S2_CONTACT, S2_RESPONSE, long_date
from workflows.code_review import CodeStage2
from workflows.continuation import Rest
from workflows.escalation import Escalation
from workflows.inbox import queued
from workflows.manager_review import ComplaintsManagerReview
from workflows.review_panel import ReviewPanel


class Stage2(Escalation, CodeStage2, ComplaintsManagerReview, ReviewPanel):
    """Stage 2 whatever the kind of review; the kinds are its bases."""

    async def _stage_two(self) -> None:
        if self._resumed_beyond(Rest.PANEL_DECISION):
            return
        if self._resume_at is None:  # else continued at one of Stage 2's rests: acknowledged already
            await self._acknowledge_stage2()
        s2 = self._require_policy().stage2
        if s2.kind is ReviewKind.CODE_STAGE2:
            await self._code_review()
        elif s2.kind is ReviewKind.COMPLAINTS_MANAGER_REVIEW:
            await self._complaints_manager_review()
        else:
            await self._review_panel()

        response = self._final_response
        assert response is not None and self._reviewer is not None
        sent_at = await self._letter("stage2.final_response", "final_response", Stage.STAGE2, {
            **self._response_fields(response),
        }, lambda at: {"ombudsman_route": self._ombudsman_route_text(at)})
        self._mark(Trigger.FINAL_RESPONSE, S2_RESPONSE, "final_response_sent",
                   f"Final response sent: {DECISION_WORDS[response.decision]}", actor=response.by,
                   decision=response.decision, at=sent_at)
        self._book.cancel(S2_CONTACT)
        self._set(Status.FINAL_RESPONSE_SENT, "the Ombudsman step")

    async def _acknowledge_stage2(self) -> None:
        """Appoint the reviewer (book the panel), acknowledge Stage 2 in writing."""
        policy = self._require_policy()
        s2 = policy.stage2
        self._stage = Stage.STAGE2
        self._set(Status.REVIEWING, "the Stage 2 reviewer to be appointed")
        self._open_deadline(S2_ACK, s2.acknowledgement, Stage.STAGE2)
        self._open_review_contact()
        exclude = [self._handler.id] if (s2.different_handler and self._handler is not None) else []
        self._reviewer = await self._act(
            Activity.APPOINT_STAFF,
            AppointStaff(reference=self._c.reference, stage=Stage.STAGE2, role=s2.reviewer_role,
                         landlord=policy.landlord, exclude=exclude),
            StaffMember, "Appoint the Stage 2 reviewer"
        )
        self._event("reviewer_appointed", f"{self._reviewer.name} ({self._reviewer.role}) appointed for Stage 2",
                    detail={"staff_id": self._reviewer.id, "role": self._reviewer.role})
        if s2.kind is ReviewKind.REVIEW_PANEL:
            await self._book_sitting(attending=False)
        participation = ""
        if self._participation_declined:
            participation = "\n\nAs you asked, no involved resident will take part in the review."
        elif s2.participation.mode is ParticipationMode.INVITED_INVOLVED_CUSTOMER:
            participation = ("\n\nWe will invite one of our involved customers to give an independent view. "
                             "If you would rather they did not take part, you can decline at any time.")
        elif s2.participation.mode is ParticipationMode.RESIDENT_CHOSEN_PANELISTS:
            participation = (f"\n\nYou may choose up to {s2.participation.max_residents} involved residents "
                             "to sit on the panel, and you may ask to attend.")
        sits_on = self._sitting.sits_on if self._sitting is not None else None
        acknowledged_at = await self._letter(S2_ACK, "stage2_acknowledgement", Stage.STAGE2, {
            "reviewer": self._reviewer.name, "participation": participation,
        }, lambda at: {"response_due": long_date(
            dates.stage2_response_due(policy, self._calendar(), self._triggers, at, sits_on))})
        self._mark(Trigger.STAGE2_ACKNOWLEDGED, S2_ACK, "stage2_acknowledged", "Stage 2 acknowledged in writing",
                   at=acknowledged_at)

    @workflow.signal(name=Signal.RECORD_CONTACT)
    @queued(Signal.RECORD_CONTACT)
    def record_contact(self, payload: RawValue = NO_PAYLOAD) -> None:
        with self._refusing(Signal.RECORD_CONTACT):
            contact = parse(RecordContact, payload)
            at = contact.at or workflow.now()
            self._check_not_future(at)
            if at < self._c.received_at:
                raise Refused("record_contact: a contact cannot be before the complaint was received")
            detail = {**contact.model_dump(mode="json"), "at": at.isoformat()}
            note = ""
            if contact.kind is ContactKind.REVIEW_DISCUSSION:
                d = self._book.get(S2_CONTACT)
                if d is not None and d.open:
                    self._book.meet(S2_CONTACT, at)
                    self._wake = True
                    note = " (meets the review contact deadline)"
            elif contact.kind is ContactKind.FINDINGS_CALL:
                if self._findings is not None and self._stage is Stage.STAGE2:
                    self._findings_call_at = at
                    note = " (the call to discuss the review findings)"
                else:
                    note = " (not counted as the findings call: no findings recorded yet)"
            self._event("contact_recorded",
                        f"{contact.direction.value.title()} {contact.channel.value} contact ({contact.kind.value}){note}",
                        at=at, actor=contact.by, detail=detail)

    @workflow.signal(name=Signal.TENANT_DECLINED_DISCUSSION)
    @queued(Signal.TENANT_DECLINED_DISCUSSION)
    def tenant_declined_discussion(self, payload: RawValue = NO_PAYLOAD) -> None:
        with self._refusing(Signal.TENANT_DECLINED_DISCUSSION):
            declined = parse(TenantDeclinedDiscussion, payload)
            d = self._book.get(S2_CONTACT)
            if d is None or not d.open:
                raise Refused("tenant_declined_discussion: there is no review discussion awaiting the resident")
            at = declined.at or workflow.now()
            self._check_not_future(at)
            self._discussion_declined = True
            self._book.meet(S2_CONTACT, at)
            self._wake = True
            self._event("discussion_declined", "The resident chose not to discuss the review; it rests on the "
                        "original complaint and response", at=at, actor="resident", detail={"notes": declined.notes})

    @workflow.signal(name=Signal.DECLINE_RESIDENT_PARTICIPATION)
    @queued(Signal.DECLINE_RESIDENT_PARTICIPATION)
    async def decline_resident_participation(self, payload: RawValue = NO_PAYLOAD) -> None:
        withdraw: InvolvedCustomer | None = None
        with self._refusing(Signal.DECLINE_RESIDENT_PARTICIPATION):
            decline = parse(DeclineResidentParticipation, payload)
            policy = self._require_policy_or_refuse()
            part = policy.stage2.participation
            if part.mode is ParticipationMode.NONE or not part.may_decline:
                raise Refused("decline_resident_participation: this policy has no resident participation to decline")
            if self._review_request is None:
                raise Refused("decline_resident_participation: no review has been requested")
            if (self._final_response is not None or self._refusal is not None
                    or self._stage in (Stage.OMBUDSMAN, Stage.CLOSED)):
                raise Refused("decline_resident_participation: the review has already concluded")
            if self._participation_declined:
                raise Refused("decline_resident_participation: already declined")
            self._participation_declined = True
            withdraw, self._involved_customer = self._involved_customer, None
            removed = len(self._panelists)
            self._panelists = []
            if part.mode is ParticipationMode.RESIDENT_CHOSEN_PANELISTS:
                outcome = f"; {removed} resident panelist(s) removed" if removed else "; no resident panelists will sit"
            else:
                outcome = "; the invitation is withdrawn" if withdraw else "; no invitation will be sent"
            self._event("participation_declined", "The resident declined involved-resident participation" + outcome,
                        actor="resident", detail={"reason": decline.reason, "panelists_removed": removed,
                                                  "invitation_withdrawn": withdraw is not None})
        if withdraw is not None:
            await self._act("withdraw_involved_customer", self._c.reference, None, "Withdraw the invitation")
            await self._send(LetterRequest(
                reference=self._c.reference, letter_key="stage2.involved_customer.withdrawn",
                kind="involved_customer_withdrawn", stage=Stage.STAGE2, recipient_name=withdraw.name,
                recipient_address="(involved customers' register)",
                fields={"landlord": self._require_policy().landlord}
            ))
            self._event("involved_customer_withdrawn", "The involved customer was told they are no longer needed",
                        detail={"customer_id": withdraw.id})
