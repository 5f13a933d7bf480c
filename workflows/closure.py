"""Closure: the case closes, the satisfaction survey is sent and its answer waited for.

One job: the end of the case, and the survey_response that may end its last window.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from domain.case import DeadlineKind, Stage, Status
    from domain.contract import Signal, SurveyResponse
    from domain.policy import Trigger
    from workflows.messages import NO_PAYLOAD, Refused, parse

from workflows.case_state import SURVEY_WINDOW
from workflows.continuation import Rest
from workflows.inbox import queued
from workflows.letters import Letters


class Closure(Letters):
    """Closure and the satisfaction survey."""

    async def _close(self) -> None:
        policy = self._require_policy()
        if not self._resumed_at(Rest.SURVEY):
            self._closed_at = workflow.now()
            self._triggers[Trigger.CLOSED] = self._closed_at
            self._stage = Stage.CLOSED
            self._set(Status.CLOSED, "nothing: the case is closed")
            self._event("closed", "Case closed")
            if not policy.survey.enabled:
                return
            await self._letter("survey", "survey", Stage.CLOSED, {})
            self._event("survey_sent", "Satisfaction survey sent")
            if policy.survey.answer_window is None:
                return
            self._open_deadline(SURVEY_WINDOW, policy.survey.answer_window, Stage.CLOSED, kind=DeadlineKind.WINDOW)
            self._set(Status.CLOSED, "the satisfaction survey answer")
        window = self._book.get(SURVEY_WINDOW)
        assert window is not None
        await self._rest(Rest.SURVEY, lambda: self._survey is not None or window.passed_at is not None)
        self._book.cancel(SURVEY_WINDOW)
        self._set(Status.CLOSED, "nothing: the case is closed")

    @workflow.signal(name=Signal.SURVEY_RESPONSE)
    @queued(Signal.SURVEY_RESPONSE)
    def survey_response(self, payload: RawValue = NO_PAYLOAD) -> None:
        with self._refusing(Signal.SURVEY_RESPONSE):
            answer = parse(SurveyResponse, payload)
            if "survey" not in self._letters:
                raise Refused("survey_response: no satisfaction survey has been sent yet")
            if self._survey is not None:
                raise Refused("survey_response: the survey has already been answered")
            self._survey = answer
            self._event("survey_answered", f"Satisfaction survey answered: {answer.score}/10", actor="resident",
                        detail=answer.model_dump(mode="json"))
