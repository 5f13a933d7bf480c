"""Stage 2 as a review panel (ReviewKind.REVIEW_PANEL).

One job: book the sitting (again, if the resident asks to attend), resident-chosen panelists, and the
panel's decision (record_panel_decision), from which the Chair's final response is written.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from domain import calendar as wd
    from domain.case import DeadlineKind, Stage, Status
    from domain.contract import (
        PanelDecision,
        RequestResidentPanelists,
        RequestToAttend,
        Signal,
        StageResponse,
        Update,
        UpdateResult,
    )
    from domain.policy import DeadlineRule, ReviewKind, Trigger
    from domain.records import Activity, BookSitting, PanelSitting
    from workflows import letter_dates as dates
    from workflows import letter_words as words
    from workflows.messages import NO_PAYLOAD, Refused, parse

from workflows.case_state import DECISION_WORDS, S2_RESPONSE, S2_SITTING, long_date
from workflows.continuation import Rest
from workflows.inbox import queued
from workflows.letters import Letters


class ReviewPanel(Letters):
    """A review panel sitting and its decision."""

    async def _review_panel(self) -> None:
        if not self._resumed_at(Rest.PANEL_DECISION):
            await self._panel_sits()
        await self._rest(Rest.PANEL_DECISION, lambda: self._panel_decision is not None)
        decision = self._panel_decision
        assert decision is not None
        self._final_response = StageResponse(decision=decision.decision, reasons=decision.reasons,
                                             remedy=decision.remedy, by="review panel chair")

    async def _panel_sits(self) -> None:
        """Wait for the sitting (booking again if the resident asks to attend); the response clock starts."""
        if not self._resumed_at(Rest.PANEL_SITTING):
            self._set(Status.AWAITING_PANEL, "the review panel sitting")
        while True:
            sitting = self._book.get(S2_SITTING)
            assert sitting is not None
            # Compared with the booking, not with a value read here: a request to attend can arrive
            # between the first booking and this loop.
            await self._rest(
                Rest.PANEL_SITTING,
                lambda: sitting.passed_at is not None or self._attend_requested != self._booked_attending
            )
            if self._attend_requested == self._booked_attending:
                break
            await self._book_sitting(attending=True)
        assert self._sitting is not None
        sat_at = dates.sitting_instant(self._sitting.sits_on)
        self._triggers[Trigger.PANEL_SITTING] = sat_at
        self._event("panel_sat", f"Review panel sat on {self._sitting.sits_on.isoformat()}", at=sat_at,
                    detail={"sitting_id": self._sitting.id, "resident_panelists": len(self._panelists)})
        self._open_deadline(S2_RESPONSE, self._require_policy().stage2.response, Stage.STAGE2)
        self._set(Status.REVIEWING, "the panel's decision (update record_panel_decision)")

    async def _book_sitting(self, attending: bool) -> None:
        policy = self._require_policy()
        panel = policy.stage2.panel
        assert panel is not None
        requested = self._triggers[Trigger.ESCALATION_REQUESTED].astimezone(wd.LONDON).date()
        notice = panel.attendance_notice_working_days if attending else panel.earliest_after_working_days
        base = requested if not attending else workflow.now().astimezone(wd.LONDON).date()
        earliest = wd.add_working_days(self._calendar(), base, max(notice, panel.earliest_after_working_days))
        previous = self._sitting
        self._sitting = await self._act(
            Activity.BOOK_PANEL_SITTING,
            BookSitting(reference=self._c.reference, landlord=policy.landlord, earliest=earliest, attending=attending),
            PanelSitting, "Book the review panel sitting"
        )
        rule = DeadlineRule(label="Review panel sitting", length=0, unit=wd.DeadlineUnit.CALENDAR_DAYS,
                            trigger=Trigger.PANEL_SITTING, reminder_working_days_before=2)
        # The sitting is a window that ends when the panel has sat (the end of the sitting day).
        sits_at = dates.sitting_instant(self._sitting.sits_on)
        self._book.open_deadline(self._calendar(), S2_SITTING, rule, Stage.STAGE2, sits_at, kind=DeadlineKind.WINDOW)
        self._wake = True
        self._booked_attending = attending
        roles = ", ".join(policy.role_title(r) or r.replace("_", " ") for r in panel.roles)
        if previous is None:
            self._event("panel_booked", f"Review panel booked for {self._sitting.sits_on.isoformat()}",
                        detail={"sitting_id": self._sitting.id, "sits_on": self._sitting.sits_on.isoformat(),
                                "panel_roles": list(panel.roles), "chair_role": panel.chair_role})
        elif previous.id == self._sitting.id:
            self._event("panel_attendance_arranged",
                        f"The resident will attend the sitting on {self._sitting.sits_on.isoformat()}",
                        detail={"sitting_id": self._sitting.id, "why": "resident asked to attend"})
        else:
            self._event("panel_moved",
                        f"Panel moved from {previous.sits_on.isoformat()} to {self._sitting.sits_on.isoformat()}"
                        " so that the resident can attend",
                        detail={"old": previous.sits_on.isoformat(), "new": self._sitting.sits_on.isoformat(),
                                "why": "resident asked to attend"})
        key = f"stage2.panel_sitting.{self._sitting.id}" + (".attending" if attending else "")
        response_due = dates.panel_response_due(policy, self._calendar(), self._triggers, self._sitting.sits_on)
        await self._letter(key, "panel_sitting", Stage.STAGE2, {
            "sits_on": long_date(self._sitting.sits_on), "panel": roles,
            "attendance": "You have asked to attend; we have arranged it." if attending
            else "You do not need to attend. If you would like to, tell us and we will arrange it.",
            # Known only if the response counts from an event the case has had (or the sitting itself).
            "final_response_promise": words.final_response_promise(response_due),
        })

    @workflow.signal(name=Signal.REQUEST_TO_ATTEND)
    @queued(Signal.REQUEST_TO_ATTEND)
    def request_to_attend(self, payload: RawValue = NO_PAYLOAD) -> None:
        with self._refusing(Signal.REQUEST_TO_ATTEND):
            request = parse(RequestToAttend, payload)
            policy = self._require_policy_or_refuse()
            if policy.stage2.kind is not ReviewKind.REVIEW_PANEL:
                raise Refused("request_to_attend: this policy's review has no panel to attend")
            sitting = self._book.get(S2_SITTING)
            if self._stage is not Stage.STAGE2 or sitting is None or sitting.passed_at is not None:
                raise Refused("request_to_attend: there is no panel sitting waiting to be held")
            if self._attend_requested:
                raise Refused("request_to_attend: attendance has already been arranged")
            self._attend_requested = True
            self._event("attendance_requested", "The resident asked to attend the review panel", actor="resident",
                        detail={"needs": request.needs})

    @workflow.update(name=Update.REQUEST_RESIDENT_PANELISTS)
    async def request_resident_panelists(self, payload: RawValue = NO_PAYLOAD) -> UpdateResult:
        await self._after_earlier_messages(lambda: self._validate_panelists(payload))
        request = parse(RequestResidentPanelists, payload)
        for p in request.panelists:
            self._panelists.append(p.model_dump(mode="json"))
        self._event("resident_panelists_requested",
                    f"{len(request.panelists)} involved resident(s) asked for on the panel", actor="resident",
                    detail={"bases": [p.basis for p in request.panelists]})
        return UpdateResult(message=f"{len(self._panelists)} involved resident(s) will sit on the panel")

    @request_resident_panelists.validator
    def _validate_panelists(self, payload: RawValue = NO_PAYLOAD) -> None:
        def check() -> None:
            request = parse(RequestResidentPanelists, payload)
            s2 = self._require_stage2_kind(ReviewKind.REVIEW_PANEL, "request_resident_panelists")
            sitting = self._book.get(S2_SITTING)
            if sitting is not None and sitting.passed_at is not None:
                raise Refused("request_resident_panelists: the panel has already sat")
            if self._participation_declined:
                raise Refused("request_resident_panelists: the resident has declined involved residents")
            part = s2.participation
            if len(self._panelists) + len(request.panelists) > part.max_residents:
                raise Refused(f"request_resident_panelists: at most {part.max_residents} involved residents may "
                              f"sit on the panel ({len(self._panelists)} already chosen)")
            for p in request.panelists:
                if p.basis not in part.eligibility:
                    raise Refused(f"request_resident_panelists: {p.basis!r} is not an eligible basis "
                                  f"(eligible: {', '.join(part.eligibility)})")
                if p.basis == "resident_with_tenant_consent" and not p.tenant_consent:
                    raise Refused("request_resident_panelists: a household member needs the tenant's consent")
        self._validate(check)

    @workflow.update(name=Update.RECORD_PANEL_DECISION)
    async def record_panel_decision(self, payload: RawValue = NO_PAYLOAD) -> UpdateResult:
        await self._after_earlier_messages(lambda: self._validate_panel_decision(payload))
        decision = parse(PanelDecision, payload)
        self._panel_decision = decision
        self._event("panel_decision_recorded", f"Panel decision: {DECISION_WORDS[decision.decision]}",
                    actor="review panel", detail=decision.model_dump(mode="json"))
        return UpdateResult(message="Panel decision recorded; the Chair's final response follows")

    @record_panel_decision.validator
    def _validate_panel_decision(self, payload: RawValue = NO_PAYLOAD) -> None:
        def check() -> None:
            parse(PanelDecision, payload)
            self._require_stage2_kind(ReviewKind.REVIEW_PANEL, "record_panel_decision")
            if Trigger.PANEL_SITTING not in self._triggers:
                raise Refused("record_panel_decision: the panel has not sat yet")
            if self._panel_decision is not None:
                raise Refused("record_panel_decision: the decision is already recorded")
        self._validate(check)
