"""Stage 2 as a Complaints Manager review (ReviewKind.COMPLAINTS_MANAGER_REVIEW).

One job: the review questions answered (record_review_findings), the outcome agreed by a senior role
(agree_outcome), the findings call, and the invitation to an involved customer.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from domain.case import Stage, Status
    from domain.contract import AgreeOutcome, ReviewFindings, StageResponse, Update, UpdateResult
    from domain.policy import Policy, ReviewKind
    from domain.records import Activity, InviteInvolvedCustomer, InvolvedCustomer, LetterRequest
    from workflows.messages import NO_PAYLOAD, Refused, parse

from workflows.case_state import S2_RESPONSE
from workflows.continuation import Rest
from workflows.letters import Letters


class ComplaintsManagerReview(Letters):
    """A Complaints Manager review with findings and an agreed outcome."""

    async def _complaints_manager_review(self) -> None:
        policy = self._require_policy()
        s2 = policy.stage2
        if not self._resumed_at(Rest.MANAGER_REVIEW):
            self._open_deadline(S2_RESPONSE, s2.response, Stage.STAGE2)
            if not self._participation_declined:
                await self._invite_involved_customer()
            self._set(Status.REVIEWING,
                      "review findings, the outcome agreed by "
                      f"{' or '.join(policy.role_title(r) or r for r in s2.outcome_agreed_by)}, and the findings call")
        await self._rest(
            Rest.MANAGER_REVIEW,
            lambda: self._findings is not None and self._agreement is not None
            and (self._findings_call_at is not None or not s2.findings_call_required)
        )
        findings, agreement = self._findings, self._agreement
        assert findings is not None and agreement is not None
        self._final_response = StageResponse(
            decision=agreement.decision, reasons=f"{findings.summary}\n\n{agreement.outcome}",
            remedy=agreement.remedy, by=findings.by
        )

    async def _invite_involved_customer(self) -> None:
        policy = self._require_policy()
        customer = await self._act(
            Activity.INVITE_INVOLVED_CUSTOMER,
            InviteInvolvedCustomer(reference=self._c.reference, landlord=policy.landlord),
            InvolvedCustomer, "Invite an involved customer"
        )
        if self._participation_declined:  # declined while the invitation was being arranged
            await self._act("withdraw_involved_customer", self._c.reference, None, "Withdraw the invitation")
            self._event("involved_customer_withdrawn", "Invitation withdrawn before it was sent: resident declined")
            return
        self._involved_customer = customer
        await self._send(LetterRequest(
            reference=self._c.reference, letter_key="stage2.involved_customer.invitation",
            kind="involved_customer_invitation", stage=Stage.STAGE2, recipient_name=customer.name,
            recipient_address="(involved customers' register)", fields={
                "landlord": policy.landlord, "papers_from": self._papers_from(policy)}
        ))
        self._event("involved_customer_invited", "An involved customer was invited to give an independent view",
                    detail={"customer_id": customer.id})

    def _papers_from(self, policy: Policy) -> str:
        """Who sends the involved customer the papers: the reviewer, named with their role."""
        if self._reviewer is None:
            return "We"
        title = policy.role_title(self._reviewer.role)
        return f"{self._reviewer.name} ({title})" if title else self._reviewer.name

    @workflow.update(name=Update.RECORD_REVIEW_FINDINGS)
    async def record_review_findings(self, payload: RawValue = NO_PAYLOAD) -> UpdateResult:
        await self._after_earlier_messages(lambda: self._validate_findings(payload))
        findings = parse(ReviewFindings, payload)
        self._findings = findings
        self._event("review_findings_recorded", "Review findings recorded", actor=findings.by,
                    detail=findings.model_dump(mode="json"))
        return UpdateResult(message="Findings recorded")

    @record_review_findings.validator
    def _validate_findings(self, payload: RawValue = NO_PAYLOAD) -> None:
        def check() -> None:
            findings = parse(ReviewFindings, payload)
            s2 = self._require_stage2_kind(ReviewKind.COMPLAINTS_MANAGER_REVIEW, "record_review_findings")
            if self._findings is not None:
                raise Refused("record_review_findings: findings are already recorded")
            wanted = {q.key for q in s2.review_questions}
            given = [a.key for a in findings.answers]
            if sorted(given) != sorted(wanted):
                raise Refused(f"record_review_findings: answer each review question exactly once: "
                              f"{', '.join(sorted(wanted))} (got {', '.join(given)})")
        self._validate(check)

    @workflow.update(name=Update.AGREE_OUTCOME)
    async def agree_outcome(self, payload: RawValue = NO_PAYLOAD) -> UpdateResult:
        await self._after_earlier_messages(lambda: self._validate_agree_outcome(payload))
        agreement = parse(AgreeOutcome, payload)
        self._agreement = agreement
        self._event("outcome_agreed", f"Outcome agreed by the {agreement.role.replace('_', ' ')}",
                    actor=agreement.name, detail=agreement.model_dump(mode="json"))
        return UpdateResult(message="Outcome agreed")

    @agree_outcome.validator
    def _validate_agree_outcome(self, payload: RawValue = NO_PAYLOAD) -> None:
        def check() -> None:
            agreement = parse(AgreeOutcome, payload)
            s2 = self._require_stage2_kind(ReviewKind.COMPLAINTS_MANAGER_REVIEW, "agree_outcome")
            if agreement.role not in s2.outcome_agreed_by:
                raise Refused(f"agree_outcome: the outcome must be agreed by one of: {', '.join(s2.outcome_agreed_by)}")
            if self._findings is None:
                raise Refused("agree_outcome: record the review findings first")
            if self._agreement is not None:
                raise Refused("agree_outcome: the outcome is already agreed")
        self._validate(check)
