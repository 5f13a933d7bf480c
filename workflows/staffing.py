"""Staffing: the landlord gives a case to another member of staff.

One job: the reassign_handler update. At Stage 1 it changes the case handler, at Stage 2 the reviewer
(whoever the case's letters and search attributes name). The case record checks the person (active, of
the role the policy names, not the Stage 1 handler at Stage 2) in the same transaction that records the
appointment, so the caller learns at once whether it took.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.case import Stage
    from domain.contract import ReassignHandler, Update, UpdateResult
    from domain.records import Activity, ReassignStaff, StaffMember
    from workflows.messages import NO_PAYLOAD, Refused, parse

from workflows.case_state import CaseState


class Staffing(CaseState):
    """reassign_handler: the case's handler (Stage 1) or reviewer (Stage 2) becomes someone else."""

    def _appointed(self) -> tuple[Stage, StaffMember | None]:
        """The stage whose appointment a reassignment changes, and who holds it now."""
        if self._stage is Stage.STAGE2:
            return Stage.STAGE2, self._reviewer
        return self._stage, self._handler

    @workflow.update(name=Update.REASSIGN_HANDLER)
    async def reassign_handler(self, payload: RawValue = NO_PAYLOAD) -> UpdateResult:
        await self._after_earlier_messages(lambda: self._validate_reassign_handler(payload))
        request = parse(ReassignHandler, payload)
        policy = self._require_policy()
        stage, before = self._appointed()
        role = policy.stage2.reviewer_role if stage is Stage.STAGE2 else policy.stage1.handler_role
        try:
            member: StaffMember = await self._act(
                Activity.REASSIGN_STAFF,
                ReassignStaff(reference=self._c.reference, stage=stage, staff_id=request.staff_id, role=role,
                              landlord=policy.landlord),
                StaffMember, f"Reassign the {stage.value} handler to {request.staff_id}",
            )
        except ActivityError as exc:
            # The case record's reason (unknown, inactive, wrong role...), as the caller's answer.
            cause = exc.cause
            raise ApplicationError(getattr(cause, "message", None) or str(cause), type="Refused",
                                   non_retryable=True) from None
        if stage is Stage.STAGE2:
            self._reviewer = member
        else:
            self._handler = member
        was = f" (was {before.name})" if before is not None else ""
        self._event("handler_reassigned", f"{member.name} now handles the complaint{was}", actor=request.by,
                    detail={"staff_id": member.id, "role": member.role, "stage": stage.value,
                            "previous_staff_id": before.id if before else None, "reason": request.reason})
        self._publish()
        return UpdateResult(message=f"{member.name} ({member.id}) now handles the complaint at {stage.value}",
                            details={"staff_id": member.id, "stage": stage.value})

    @reassign_handler.validator
    def _validate_reassign_handler(self, payload: RawValue = NO_PAYLOAD) -> None:
        def check() -> None:
            request = parse(ReassignHandler, payload)
            self._require_policy_or_refuse()
            if self._stage not in (Stage.STAGE1, Stage.STAGE2):
                raise Refused(f"reassign_handler: the case is at {self._stage.value}; there is no handler to change")
            stage, current = self._appointed()
            if current is None:
                raise Refused(f"reassign_handler: no one has been appointed at {stage.value} yet; try again in a "
                              "moment")
            if current.id == request.staff_id:
                raise Refused(f"reassign_handler: {current.name} ({current.id}) already handles the complaint")
        self._validate(check)
