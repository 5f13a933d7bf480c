"""The Ombudsman step: rights given with the final response, the cooling-off period, referrals.

One job: what happens between the end of the landlord's procedure and closure, and the resident's
ombudsman_referral, which the cooling-off period may refuse.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from domain.case import DeadlineKind, Stage, Status
    from domain.contract import OmbudsmanReferral, OmbudsmanRoute, Signal
    from domain.policy import Policy
    from workflows.messages import NO_PAYLOAD, Refused, parse

from workflows.case_state import COOLING_OFF, CaseState
from workflows.continuation import Rest
from workflows.inbox import queued


class OmbudsmanStep(CaseState):
    """The route to the Ombudsman and the cooling-off period."""

    async def _ombudsman_step(self) -> None:
        if self._resumed_beyond(Rest.COOLING_OFF):
            return
        policy = self._require_policy()
        if not self._resumed_at(Rest.COOLING_OFF):
            self._stage = Stage.OMBUDSMAN
            self._event("ombudsman_rights_given", f"The final response gave the route to the {policy.ombudsman.name}",
                        detail={"ombudsman": policy.ombudsman.name, "regulator": policy.regulator,
                                "designated_person_route": policy.ombudsman.designated_person_route,
                                "cooling_off": policy.ombudsman.cooling_off is not None})
            if policy.ombudsman.cooling_off is None:
                return
            self._open_deadline(COOLING_OFF, policy.ombudsman.cooling_off, Stage.OMBUDSMAN,
                                kind=DeadlineKind.WINDOW)
        cooling = self._book.get(COOLING_OFF)
        assert cooling is not None
        if not self._resumed_at(Rest.COOLING_OFF):
            self._set(Status.COOLING_OFF, f"the cooling-off period to end on {cooling.due_date.isoformat()}")
        await self._rest(Rest.COOLING_OFF, lambda: cooling.passed_at is not None or self._referral is not None)
        self._book.cancel(COOLING_OFF)

    @workflow.signal(name=Signal.OMBUDSMAN_REFERRAL)
    @queued(Signal.OMBUDSMAN_REFERRAL)
    def ombudsman_referral(self, payload: RawValue = NO_PAYLOAD) -> None:
        with self._refusing(Signal.OMBUDSMAN_REFERRAL):
            referral = parse(OmbudsmanReferral, payload)
            policy = self._require_policy_or_refuse()
            if self._final_response is None and self._refusal is None:
                raise Refused("ombudsman_referral: the landlord's procedure has not ended yet (no final response)")
            if self._referral is not None:
                raise Refused("ombudsman_referral: a referral is already recorded")
            if referral.route is OmbudsmanRoute.DESIGNATED_PERSON:
                if not policy.ombudsman.designated_person_route:
                    raise Refused("ombudsman_referral: this policy has no designated-person route; "
                                  "refer directly to the Ombudsman")
            else:
                cooling = self._book.get(COOLING_OFF)
                if cooling is not None and cooling.open and cooling.passed_at is None:
                    raise Refused(f"ombudsman_referral: a direct referral is possible only after the cooling-off "
                                  f"period ends on {cooling.due_date.isoformat()}"
                                  + (self._designated_person_note(policy) if policy.ombudsman.designated_person_route
                                     else ""))
            self._referral = referral
            self._event("ombudsman_referral", f"Referred to the Ombudsman ({referral.route.value})", actor="resident",
                        detail=referral.model_dump(mode="json"))

    @staticmethod
    def _designated_person_note(policy: Policy) -> str:
        who = policy.ombudsman.designated_persons
        return f"; a designated person{f' ({who})' if who else ''} can refer now"
