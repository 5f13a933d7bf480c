"""Stage 2 under the Code (ReviewKind.CODE_STAGE2): the reviewer's final response.

One module per kind of review, so a landlord's Stage 2 is read in one place; this kind is the plainest:
a response deadline and the update that meets it (submit_final_response).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from domain.case import Stage, Status
    from domain.contract import StageResponse, Update, UpdateResult
    from domain.policy import ReviewKind
    from workflows.messages import NO_PAYLOAD, Refused, parse

from workflows.case_state import S2_RESPONSE, CaseState
from workflows.continuation import Rest


class CodeStage2(CaseState):
    """The Code's Stage 2 review."""

    async def _code_review(self) -> None:
        """The Code's Stage 2: the reviewer sends the final response within the policy's time."""
        if not self._resumed_at(Rest.CODE_REVIEW):
            s2 = self._require_policy().stage2
            self._open_deadline(S2_RESPONSE, s2.response, Stage.STAGE2)
            self._set(Status.REVIEWING, "the final response (update submit_final_response)")
        await self._rest(Rest.CODE_REVIEW, lambda: self._final_response is not None)

    @workflow.update(name=Update.SUBMIT_FINAL_RESPONSE)
    async def submit_final_response(self, payload: RawValue = NO_PAYLOAD) -> UpdateResult:
        await self._after_earlier_messages(lambda: self._validate_final_response(payload))
        self._final_response = parse(StageResponse, payload)
        return UpdateResult(message="Final response accepted; the letter is being sent")

    @submit_final_response.validator
    def _validate_final_response(self, payload: RawValue = NO_PAYLOAD) -> None:
        def check() -> None:
            parse(StageResponse, payload)
            self._require_stage2_kind(ReviewKind.CODE_STAGE2, "submit_final_response")
            if self._final_response is not None:
                raise Refused("submit_final_response: the final response has already been submitted")
        self._validate(check)
