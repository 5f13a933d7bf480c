"""Letters to the resident (and to involved customers): sent once each, or waited for.

One job: send a letter through the send_letter activity and, when the resident cannot be reached, record
the problem and wait for contact details (update supply_contact_details, handled here too, since only
letters wait for it). Also the wording shared by several letters (responses, the Ombudsman route).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.case import Stage, Status
    from domain.contract import StageResponse, SupplyContactDetails, Update, UpdateResult
    from domain.records import Activity, LetterRequest, LetterSent, Notification, StaffMember
    from workflows import letter_dates as dates
    from workflows import letter_words as words
    from workflows.messages import NO_PAYLOAD, Refused, parse

from workflows.case_state import DECISION_WORDS, CaseState

# workflow.patched ids: each guards a change in the commands a running case issues.
# A letter's event (acknowledged, responded...) is recorded at the instant the letter was issued with its
# dates, not when the send returned, so the deadlines the case opens from it are the dates it states.
DATED_AT_ISSUE = "letters-dated-at-issue"

Dated = Callable[[datetime], dict[str, str]]


class Letters(CaseState):
    """Sending letters, and waiting for contact details when one cannot be delivered."""

    async def _letter(self, key: str, kind: str, stage: Stage, fields: dict[str, str],
                      dated: Dated | None = None) -> datetime:
        """Send a letter; `dated(at)` gives the fields that state dates, for a letter issued at `at`.

        Returns the instant to record the letter's event at: the instant of the attempt that was sent, so
        every date the letter states is the date the case then keeps."""
        policy = self._require_policy()
        issued: list[datetime] = []

        def fill(at: datetime) -> dict[str, str]:
            issued.append(at)
            return dated(at) if dated is not None else {}

        await self._send(LetterRequest(
            reference=self._c.reference, letter_key=key, kind=kind, stage=stage,
            recipient_name=self._c.resident.name, recipient_address=self._c.resident.address,
            recipient_email=self._c.resident.email, fields={"landlord": policy.landlord, **fields}
        ), fill)
        # Cases that started before this change record the event when the send returned.
        return issued[-1] if workflow.patched(DATED_AT_ISSUE) else workflow.now()

    async def _send(self, request: LetterRequest, fill: Dated | None = None) -> LetterSent:
        """Send a letter; if it cannot be delivered, record the problem and wait for a fix (then the dated
        fields are worked out again, for the day it is sent)."""
        while True:
            signed = words.signature(self._require_policy(), self._signer())
            dated = fill(workflow.now()) if fill is not None else {}
            # Worked out at each attempt: a letter that waited for contact details goes out signed and dated
            # as of the day it is sent.
            request = request.model_copy(update={"fields": {**request.fields, **signed, **dated}})
            if self._contact_fix is not None and request.recipient_name == self._c.resident.name:
                request = request.model_copy(update={"recipient_address": self._contact_fix.address,
                                                     "recipient_email": self._contact_fix.email})
            try:
                sent: LetterSent = await self._act(Activity.SEND_LETTER, request, LetterSent,
                                                   f"Send the {request.kind.replace('_', ' ')} letter")
            except ActivityError as err:
                cause = err.cause
                if not (isinstance(cause, ApplicationError) and cause.type == "ResidentUnreachable"):
                    raise
                problem = f"{request.kind} letter cannot be sent: no postal address or email for the resident"
                self._problems.append(problem)
                previous = (self._status, self._waiting_for)
                fixed_before = self._contact_fix
                self._set(Status.AWAITING_FIX, "contact details for letters (update supply_contact_details)")
                self._event("problem_recorded", problem, detail={"letter": request.letter_key})
                await self._act(Activity.NOTIFY_STAFF, Notification(
                    reference=self._c.reference, key=f"problem.{request.letter_key}", role="operator",
                    kind="problem", message=f"{self._c.reference}: {problem}"
                ), None, "Tell an operator about the problem")
                await workflow.wait_condition(lambda: self._contact_fix is not fixed_before)
                self._problems.remove(problem)
                self._set(*previous)
                continue
            self._letters[request.letter_key] = sent
            self._event("letter_sent", f"Letter sent: {sent.subject}",
                        detail={"letter_id": sent.letter_id, "letter_key": sent.letter_key, "kind": sent.kind})
            return sent

    async def _send_pending_letters(self) -> None:
        while self._pending_letters:
            await self._send(self._pending_letters.pop(0))

    def _signer(self) -> StaffMember | None:
        """Who signs the case's letters: the person who has it (the Stage 2 reviewer, who chairs a panel,
        from Stage 2 on; the case handler before)."""
        if self._stage is not Stage.STAGE1 and self._reviewer is not None:
            return self._reviewer
        return self._handler

    def _response_fields(self, response: StageResponse) -> dict[str, str]:
        return {
            "decision": DECISION_WORDS[response.decision], "reasons": response.reasons,
            "remedy": response.remedy or "(none)",
            "outstanding": "; ".join(response.outstanding_actions) or "(nothing outstanding)",
            "points_answered": words.points_answered(response),
        }

    def _ombudsman_fields(self) -> dict[str, str]:
        o = self._require_policy().ombudsman
        return {"ombudsman": o.name, "ombudsman_contact": o.contact}

    def _ombudsman_route_text(self, at: datetime) -> str:
        policy = self._require_policy()
        return words.ombudsman_route(policy, dates.cooling_off_ends(policy, self._calendar(), self._triggers, at))

    @workflow.update(name=Update.SUPPLY_CONTACT_DETAILS)
    async def supply_contact_details(self, payload: RawValue = NO_PAYLOAD) -> UpdateResult:
        await self._after_earlier_messages(lambda: self._validate_contact_details(payload))
        self._contact_fix = parse(SupplyContactDetails, payload)
        self._event("contact_details_supplied", "Contact details for letters supplied", actor="operator")
        return UpdateResult(message="Contact details recorded; waiting letters will now be sent")

    @supply_contact_details.validator
    def _validate_contact_details(self, payload: RawValue = NO_PAYLOAD) -> None:
        def check() -> None:
            fix = parse(SupplyContactDetails, payload)
            if not fix.address and not fix.email:
                raise Refused("supply_contact_details: give an address or an email")
        self._validate(check)
