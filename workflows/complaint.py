"""ComplaintWorkflow: one complaint, from filing to closure, following its landlord's policy.

Deterministic: the clock is workflow.now(), the calendar is a snapshot loaded by an activity, and
everything that touches the world (the case record, letters, staff) is an activity.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain import calendar as wd
    from domain import search_attributes as sa
    from domain.calendar import CalendarSnapshot
    from domain.case import (
        Breach,
        CaseEvent,
        CaseStatus,
        Deadline,
        DeadlineKind,
        Extension,
        Stage,
        Status,
    )
    from domain.contract import (
        WORKFLOW_TYPE,
        AgreeOutcome,
        CalendarChanged,
        ContactKind,
        DeclineResidentParticipation,
        ExtendDeadline,
        FileComplaint,
        OmbudsmanReferral,
        OmbudsmanRoute,
        PanelDecision,
        Query,
        RecordContact,
        RefuseEscalation,
        RequestResidentPanelists,
        RequestReview,
        RequestToAttend,
        ReviewFindings,
        Signal,
        StageResponse,
        SupplyContactDetails,
        SurveyResponse,
        TenantDeclinedDiscussion,
        Update,
        UpdateResult,
    )
    from domain.policy import DeadlineRule, ParticipationMode, Policy, ReviewKind, Trigger
    from domain.records import (
        Activity,
        AppointStaff,
        BookSitting,
        CalendarRequest,
        CaseSnapshot,
        EventBatch,
        InviteInvolvedCustomer,
        InvolvedCustomer,
        LetterRequest,
        LetterSent,
        Notification,
        PanelSitting,
        RegisterComplaint,
        StaffMember,
    )
    from workflows.deadline_book import DeadlineBook
    from workflows.messages import NO_PAYLOAD, Refused, parse

ACTIVITY_TIMEOUT = timedelta(seconds=30)
# Outages (a database restart) are ridden out with backoff; errors that cannot pass are named.
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    non_retryable_error_types=["InvalidRequest", "ResidentUnreachable"],
)
FUTURE_TOLERANCE = timedelta(minutes=5)
# workflow.patched ids: each guards a change in the commands a running case issues.
REGISTER_BEFORE_CALENDAR = "register-before-calendar"
DECISION_WORDS = {"upheld": "Upheld", "partly_upheld": "Partly upheld", "not_upheld": "Not upheld"}

# Deadline keys: stable names, used in the case record and by operators.
S1_ACK, S1_RESPONSE, ESC_WINDOW, ESC_TRIAGE = "stage1.acknowledgement", "stage1.response", "escalation.window", "escalation.triage"
S2_CONTACT, S2_ACK, S2_RESPONSE, S2_SITTING = "stage2.contact", "stage2.acknowledgement", "stage2.response", "stage2.panel_sitting"
COOLING_OFF, SURVEY_WINDOW = "ombudsman.cooling_off", "survey.answer"


def _long_date(d: date) -> str:
    return f"{d:%A} {d.day} {d:%B %Y}"


@workflow.defn(name=WORKFLOW_TYPE)
class ComplaintWorkflow:
    @workflow.init
    def __init__(self, complaint: FileComplaint) -> None:
        self._c = complaint
        self._policy: Policy | None = None
        self._cal: CalendarSnapshot | None = None
        self._book = DeadlineBook()
        self._timeline: list[CaseEvent] = []
        self._unsaved: list[CaseEvent] = []
        self._stage = Stage.STAGE1
        self._status = Status.FILED
        self._waiting_for = "the case to be registered"
        self._handler: StaffMember | None = None
        self._reviewer: StaffMember | None = None
        self._triggers: dict[Trigger, datetime] = {Trigger.RECEIVED: complaint.received_at}
        self._breaches: list[Breach] = []
        self._extensions: list[Extension] = []
        self._refused = 0
        self._problems: list[str] = []
        self._wake = False
        self._finished = False
        self._escalated_at: datetime | None = None
        self._closed_at: datetime | None = None
        self._letters: dict[str, LetterSent] = {}
        # What people have told the case.
        self._stage1_response: StageResponse | None = None
        self._review_request: RequestReview | None = None
        self._refusal: RefuseEscalation | None = None
        self._final_response: StageResponse | None = None
        self._findings: ReviewFindings | None = None
        self._agreement: AgreeOutcome | None = None
        self._findings_call_at: datetime | None = None
        self._discussion_declined = False
        self._participation_declined = False
        self._involved_customer: InvolvedCustomer | None = None
        self._panelists: list[dict[str, Any]] = []
        self._attend_requested = False
        self._booked_attending = False  # whether the current panel booking is one the resident attends
        self._sitting: PanelSitting | None = None
        self._panel_decision: PanelDecision | None = None
        self._referral: OmbudsmanReferral | None = None
        self._survey: SurveyResponse | None = None
        self._contact_fix: SupplyContactDetails | None = None
        self._pending_letters: list[LetterRequest] = []
        self._published: tuple[Any, ...] | None = None
        # One calendar reload at a time, in the order told: overlapping loads can finish out of order
        # and leave the older snapshot in place.
        self._calendar_lock = asyncio.Lock()

    # =============================================================================================
    # The procedure
    # =============================================================================================
    @workflow.run
    async def run(self, complaint: FileComplaint) -> CaseStatus:
        policy = self._policy = await self._act(Activity.LOAD_POLICY, complaint.policy, Policy, "Load policy")
        # Registered before the calendar is read: the calendar command tells the open cases in the
        # complaints table, so a change made after this read still reaches the case. Cases started
        # before this order (no patch marker in their history) keep theirs, so they still replay.
        register_first = workflow.patched(REGISTER_BEFORE_CALENDAR)
        if not register_first:
            self._cal = await self._load_calendar()
        await self._act(
            Activity.REGISTER_COMPLAINT,
            RegisterComplaint(complaint=complaint, workflow_id=workflow.info().workflow_id, policy_id=policy.id,
                              policy_version=policy.version, landlord=policy.landlord),
            None, "Record the complaint",
        )
        if register_first:
            self._cal = await self._load_calendar()
        persister = asyncio.ensure_future(self._persist_events())
        keeper = asyncio.ensure_future(self._keep_deadlines())
        self._event("filed", f"Complaint filed ({complaint.channel.value}) under {policy.pinned}",
                    at=complaint.received_at, actor="resident",
                    detail={"policy": policy.pinned, "channel": complaint.channel.value})

        if complaint.start_at_stage2 and policy.escalation.direct_to_stage2:
            self._review_request = RequestReview(at=complaint.received_at, reasons="filed directly at Stage 2")
            self._triggers[Trigger.ESCALATION_REQUESTED] = complaint.received_at
            self._event("escalation_requested", "Filed directly at Stage 2, as the policy allows", actor="resident")
        else:
            await self._stage_one()
            await self._await_escalation()

        if self._review_request is not None and self._refusal is None:
            await self._stage_two()
            await self._ombudsman_step()
        await self._close()

        await workflow.wait_condition(workflow.all_handlers_finished)
        self._finished = True
        await keeper
        await persister
        return self.status()

    async def _stage_one(self) -> None:
        policy = self._require_policy()
        self._open(S1_ACK, policy.stage1.acknowledgement, Stage.STAGE1)
        self._handler = await self._act(
            Activity.APPOINT_STAFF,
            AppointStaff(reference=self._c.reference, stage=Stage.STAGE1, role=policy.stage1.handler_role,
                         landlord=policy.landlord),
            StaffMember, "Appoint the Stage 1 case handler",
        )
        self._event("handler_appointed", f"{self._handler.name} appointed to handle the complaint",
                    detail={"staff_id": self._handler.id, "role": self._handler.role})
        response_rule = policy.stage1.response
        # The response date goes in the acknowledgement, so compute it as if acknowledged now.
        provisional = wd.due_date(self._calendar(), self._trigger_time(response_rule.trigger, workflow.now()),
                                  response_rule.length, response_rule.unit)
        await self._letter(S1_ACK, "acknowledgement", Stage.STAGE1, {
            "received_on": _long_date(self._c.received_at.astimezone(wd.LONDON).date()),
            "summary": self._c.summary, "desired_outcome": self._c.desired_outcome or "(not stated)",
            "handler": self._handler.name, "response_due": _long_date(provisional),
        })
        self._mark(Trigger.ACKNOWLEDGED, S1_ACK, "acknowledged", "Complaint acknowledged in writing")
        self._open(S1_RESPONSE, response_rule, Stage.STAGE1)
        self._set(Status.INVESTIGATING, "the Stage 1 response (update submit_stage1_response)")

        await workflow.wait_condition(lambda: self._stage1_response is not None)
        response = self._stage1_response
        assert response is not None
        window = policy.escalation.window
        escalation_by = wd.due_date(self._calendar(), workflow.now(), window.length, window.unit)
        await self._letter("stage1.response", "stage1_response", Stage.STAGE1, {
            **self._response_fields(response),
            "escalation_name": "review" if policy.stage2.kind is not ReviewKind.CODE_STAGE2 else "escalate",
            "escalation_by": _long_date(escalation_by),
        })
        self._mark(Trigger.STAGE1_RESPONSE, S1_RESPONSE, "stage1_responded",
                   f"Stage 1 response sent: {DECISION_WORDS[response.decision]}", actor=response.by,
                   decision=response.decision)
        self._open(ESC_WINDOW, window, Stage.STAGE1, kind=DeadlineKind.WINDOW)
        self._set(Status.RESPONDED, f"a review request until {escalation_by.isoformat()}, else closure")

    async def _await_escalation(self) -> None:
        window = self._book.get(ESC_WINDOW)
        await workflow.wait_condition(
            lambda: self._review_request is not None or (window is not None and window.passed_at is not None)
        )
        if self._review_request is None:
            return
        policy = self._require_policy()
        self._escalated_at = self._triggers[Trigger.ESCALATION_REQUESTED]
        # The contact clock runs from the request, so a call made while the landlord may still refuse
        # the escalation counts.
        self._open_review_contact()
        if policy.escalation.triage is not None:
            self._open(ESC_TRIAGE, policy.escalation.triage, Stage.STAGE1, kind=DeadlineKind.WINDOW)
            self._set(Status.RESPONDED, "the escalation to be accepted or refused (update refuse_escalation)")
            triage = self._book.get(ESC_TRIAGE)
            assert triage is not None
            await workflow.wait_condition(lambda: self._refusal is not None or triage.passed_at is not None)
        if self._refusal is not None:
            self._book.cancel(ESC_TRIAGE)
            self._book.cancel(S2_CONTACT)
            refusal = self._refusal
            await self._letter("escalation.refused", "escalation_refused", Stage.STAGE1, {
                "reason": policy.escalation.refusal_reasons[refusal.reason_code],
                "explanation": refusal.explanation, **self._ombudsman_fields(),
            })
            self._set(Status.ESCALATION_REFUSED, "closure")

    async def _stage_two(self) -> None:
        policy = self._require_policy()
        s2 = policy.stage2
        self._stage = Stage.STAGE2
        self._set(Status.REVIEWING, "the Stage 2 reviewer to be appointed")
        self._open(S2_ACK, s2.acknowledgement, Stage.STAGE2)
        self._open_review_contact()
        exclude = [self._handler.id] if (s2.different_handler and self._handler is not None) else []
        self._reviewer = await self._act(
            Activity.APPOINT_STAFF,
            AppointStaff(reference=self._c.reference, stage=Stage.STAGE2, role=s2.reviewer_role,
                         landlord=policy.landlord, exclude=exclude),
            StaffMember, "Appoint the Stage 2 reviewer",
        )
        self._event("reviewer_appointed", f"{self._reviewer.name} ({self._reviewer.role}) appointed for Stage 2",
                    detail={"staff_id": self._reviewer.id, "role": self._reviewer.role})
        if s2.kind is ReviewKind.REVIEW_PANEL:
            await self._book_sitting(attending=False)
        response_due = self._provisional_stage2_due()
        participation = ""
        if self._participation_declined:
            participation = "\n\nAs you asked, no involved resident will take part in the review."
        elif s2.participation.mode is ParticipationMode.INVITED_INVOLVED_CUSTOMER:
            participation = ("\n\nWe will invite one of our involved customers to give an independent view. "
                             "If you would rather they did not take part, you can decline at any time.")
        elif s2.participation.mode is ParticipationMode.RESIDENT_CHOSEN_PANELISTS:
            participation = (f"\n\nYou may choose up to {s2.participation.max_residents} involved residents "
                             "to sit on the panel, and you may ask to attend.")
        await self._letter(S2_ACK, "stage2_acknowledgement", Stage.STAGE2, {
            "reviewer": self._reviewer.name, "response_due": _long_date(response_due), "participation": participation,
        })
        self._mark(Trigger.STAGE2_ACKNOWLEDGED, S2_ACK, "stage2_acknowledged", "Stage 2 acknowledged in writing")

        if s2.kind is ReviewKind.CODE_STAGE2:
            self._open(S2_RESPONSE, s2.response, Stage.STAGE2)
            self._set(Status.REVIEWING, "the final response (update submit_final_response)")
            await workflow.wait_condition(lambda: self._final_response is not None)
        elif s2.kind is ReviewKind.COMPLAINTS_MANAGER_REVIEW:
            await self._complaints_manager_review()
        else:
            await self._review_panel()

        response = self._final_response
        assert response is not None
        await self._letter("stage2.final_response", "final_response", Stage.STAGE2, {
            **self._response_fields(response), "ombudsman_route": self._ombudsman_route_text(),
            "signed_by": self._reviewer.name,
        })
        self._mark(Trigger.FINAL_RESPONSE, S2_RESPONSE, "final_response_sent",
                   f"Final response sent: {DECISION_WORDS[response.decision]}", actor=response.by,
                   decision=response.decision)
        self._book.cancel(S2_CONTACT)
        self._set(Status.FINAL_RESPONSE_SENT, "the Ombudsman step")

    def _open_review_contact(self) -> None:
        s2 = self._require_policy().stage2
        if s2.contact is not None and self._book.get(S2_CONTACT) is None:
            self._open(S2_CONTACT, s2.contact, Stage.STAGE2)

    async def _complaints_manager_review(self) -> None:
        s2 = self._require_policy().stage2
        self._open(S2_RESPONSE, s2.response, Stage.STAGE2)
        if not self._participation_declined:
            await self._invite_involved_customer()
        self._set(Status.REVIEWING,
                  "review findings, the outcome agreed by a Head of Service or Director, and the findings call")
        await workflow.wait_condition(
            lambda: self._findings is not None and self._agreement is not None
            and (self._findings_call_at is not None or not s2.findings_call_required)
        )
        findings, agreement = self._findings, self._agreement
        assert findings is not None and agreement is not None
        self._final_response = StageResponse(
            decision=agreement.decision, reasons=f"{findings.summary}\n\n{agreement.outcome}",
            remedy=agreement.remedy, by=findings.by,
        )

    async def _review_panel(self) -> None:
        self._set(Status.AWAITING_PANEL, "the review panel sitting")
        while True:
            sitting = self._book.get(S2_SITTING)
            assert sitting is not None
            # Compared with the booking, not with a value read here: a request to attend can arrive
            # between the first booking and this loop.
            await workflow.wait_condition(
                lambda: sitting.passed_at is not None or self._attend_requested != self._booked_attending
            )
            if self._attend_requested == self._booked_attending:
                break
            await self._book_sitting(attending=True)
        assert self._sitting is not None
        sat_at = datetime.combine(self._sitting.sits_on, time(10, 0), tzinfo=wd.LONDON)
        self._triggers[Trigger.PANEL_SITTING] = sat_at
        self._event("panel_sat", f"Review panel sat on {self._sitting.sits_on.isoformat()}", at=sat_at,
                    detail={"sitting_id": self._sitting.id, "resident_panelists": len(self._panelists)})
        self._open(S2_RESPONSE, self._require_policy().stage2.response, Stage.STAGE2)
        self._set(Status.REVIEWING, "the panel's decision (update record_panel_decision)")
        await workflow.wait_condition(lambda: self._panel_decision is not None)
        decision = self._panel_decision
        assert decision is not None
        self._final_response = StageResponse(decision=decision.decision, reasons=decision.reasons,
                                             remedy=decision.remedy, by="review panel chair")

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
            PanelSitting, "Book the review panel sitting",
        )
        rule = DeadlineRule(label="Review panel sitting", length=0, unit=wd.DeadlineUnit.CALENDAR_DAYS,
                            trigger=Trigger.PANEL_SITTING, reminder_working_days_before=2)
        # The sitting is a window that ends when the panel has sat (the end of the sitting day).
        sits_at = datetime.combine(self._sitting.sits_on, time(10, 0), tzinfo=wd.LONDON)
        self._book.open(self._calendar(), S2_SITTING, rule, Stage.STAGE2, sits_at, kind=DeadlineKind.WINDOW)
        self._wake = True
        self._booked_attending = attending
        roles = ", ".join(r.replace("_", " ") for r in panel.roles)
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
        await self._letter(key, "panel_sitting", Stage.STAGE2, {
            "sits_on": _long_date(self._sitting.sits_on), "panel": roles,
            "attendance": "You have asked to attend; we have arranged it." if attending
            else "You do not need to attend. If you would like to, tell us and we will arrange it.",
        })

    async def _invite_involved_customer(self) -> None:
        policy = self._require_policy()
        customer = await self._act(
            Activity.INVITE_INVOLVED_CUSTOMER,
            InviteInvolvedCustomer(reference=self._c.reference, landlord=policy.landlord),
            InvolvedCustomer, "Invite an involved customer",
        )
        if self._participation_declined:  # declined while the invitation was being arranged
            await self._act("withdraw_involved_customer", self._c.reference, None, "Withdraw the invitation")
            self._event("involved_customer_withdrawn", "Invitation withdrawn before it was sent: resident declined")
            return
        self._involved_customer = customer
        await self._send(LetterRequest(
            reference=self._c.reference, letter_key="stage2.involved_customer.invitation",
            kind="involved_customer_invitation", stage=Stage.STAGE2, recipient_name=customer.name,
            recipient_address="(involved customers' register)", fields={"landlord": policy.landlord},
        ))
        self._event("involved_customer_invited", "An involved customer was invited to give an independent view",
                    detail={"customer_id": customer.id})

    async def _ombudsman_step(self) -> None:
        policy = self._require_policy()
        self._stage = Stage.OMBUDSMAN
        self._event("ombudsman_rights_given", "The final response gave the route to the Housing Ombudsman",
                    detail={"designated_person_route": policy.ombudsman.designated_person_route,
                            "cooling_off": policy.ombudsman.cooling_off is not None})
        if policy.ombudsman.cooling_off is None:
            return
        self._open(COOLING_OFF, policy.ombudsman.cooling_off, Stage.OMBUDSMAN, kind=DeadlineKind.WINDOW)
        cooling = self._book.get(COOLING_OFF)
        assert cooling is not None
        self._set(Status.COOLING_OFF, f"the cooling-off period to end on {cooling.due_date.isoformat()}")
        await workflow.wait_condition(lambda: cooling.passed_at is not None or self._referral is not None)
        self._book.cancel(COOLING_OFF)

    async def _close(self) -> None:
        policy = self._require_policy()
        self._closed_at = workflow.now()
        self._triggers[Trigger.CLOSED] = self._closed_at
        self._stage = Stage.CLOSED
        self._set(Status.CLOSED, "nothing: the case is closed")
        self._event("closed", "Case closed")
        if not policy.survey.enabled:
            return
        await self._letter("survey", "survey", Stage.CLOSED, {})
        self._event("survey_sent", "Satisfaction survey sent")
        if policy.survey.answer_window is not None:
            self._open(SURVEY_WINDOW, policy.survey.answer_window, Stage.CLOSED, kind=DeadlineKind.WINDOW)
            window = self._book.get(SURVEY_WINDOW)
            assert window is not None
            self._set(Status.CLOSED, "the satisfaction survey answer")
            await workflow.wait_condition(lambda: self._survey is not None or window.passed_at is not None)
            self._book.cancel(SURVEY_WINDOW)
            self._set(Status.CLOSED, "nothing: the case is closed")

    # =============================================================================================
    # Signals: recorded, accepted or refused, never fatal
    # =============================================================================================
    @workflow.signal(name=Signal.RECORD_CONTACT)
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

    @workflow.signal(name=Signal.EXTEND_DEADLINE)
    async def extend_deadline(self, payload: RawValue = NO_PAYLOAD) -> None:
        with self._refusing(Signal.EXTEND_DEADLINE):
            request = parse(ExtendDeadline, payload)
            self._apply_extension(request)
        await self._send_pending_letters()

    @workflow.signal(name=Signal.REQUEST_REVIEW)
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

    @workflow.signal(name=Signal.TENANT_DECLINED_DISCUSSION)
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
                fields={"landlord": self._require_policy().landlord},
            ))
            self._event("involved_customer_withdrawn", "The involved customer was told they are no longer needed",
                        detail={"customer_id": withdraw.id})

    @workflow.signal(name=Signal.REQUEST_TO_ATTEND)
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

    @workflow.signal(name=Signal.OMBUDSMAN_REFERRAL)
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
                                  f"period ends on {cooling.due_date.isoformat()}; a designated person (MP, "
                                  "councillor or tenant panel) can refer now")
            self._referral = referral
            self._event("ombudsman_referral", f"Referred to the Ombudsman ({referral.route.value})", actor="resident",
                        detail=referral.model_dump(mode="json"))

    @workflow.signal(name=Signal.SURVEY_RESPONSE)
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

    @workflow.signal(name=Signal.CALENDAR_CHANGED)
    async def calendar_changed(self, payload: RawValue = NO_PAYLOAD) -> None:
        with self._refusing(Signal.CALENDAR_CHANGED) as scope:
            change = parse(CalendarChanged, payload)
        if scope.refused:
            return
        # Told while still being filed: its first calendar may predate the change, so reload after it
        # (a refusal here would record an event for a case whose dates the change may not touch).
        await workflow.wait_condition(lambda: self._cal is not None)
        async with self._calendar_lock:
            self._cal = await self._load_calendar()
            moved = self._book.recompute(self._cal)
            for m in moved:
                old, new = m.old.isoformat(), m.new.isoformat()
                self._event("deadline_moved", f"{m.label} moved from {old} to {new}: {change.cause}",
                            detail={"deadline": m.key, "old_due_date": old, "new_due_date": new,
                                    "cause": change.cause})
            if moved:
                self._wake = True
                self._publish()

    # =============================================================================================
    # Updates: the caller learns at once whether it was accepted
    # =============================================================================================
    @workflow.update(name=Update.SUBMIT_STAGE1_RESPONSE)
    def submit_stage1_response(self, payload: RawValue = NO_PAYLOAD) -> UpdateResult:
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

    @workflow.update(name=Update.REFUSE_ESCALATION)
    def refuse_escalation(self, payload: RawValue = NO_PAYLOAD) -> UpdateResult:
        refusal = parse(RefuseEscalation, payload)
        self._refusal = refusal
        self._wake = True
        self._event("escalation_refused", f"Escalation refused: {refusal.reason_code}", actor=refusal.by,
                    detail=refusal.model_dump(mode="json"))
        return UpdateResult(message="Escalation refused; the resident is being told why and of their right to go "
                                    "to the Ombudsman")

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

    @workflow.update(name=Update.SUBMIT_FINAL_RESPONSE)
    def submit_final_response(self, payload: RawValue = NO_PAYLOAD) -> UpdateResult:
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

    @workflow.update(name=Update.RECORD_REVIEW_FINDINGS)
    def record_review_findings(self, payload: RawValue = NO_PAYLOAD) -> UpdateResult:
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
    def agree_outcome(self, payload: RawValue = NO_PAYLOAD) -> UpdateResult:
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

    @workflow.update(name=Update.REQUEST_RESIDENT_PANELISTS)
    def request_resident_panelists(self, payload: RawValue = NO_PAYLOAD) -> UpdateResult:
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
    def record_panel_decision(self, payload: RawValue = NO_PAYLOAD) -> UpdateResult:
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

    @workflow.update(name=Update.SUPPLY_CONTACT_DETAILS)
    def supply_contact_details(self, payload: RawValue = NO_PAYLOAD) -> UpdateResult:
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

    # =============================================================================================
    # Queries
    # =============================================================================================
    @workflow.query(name=Query.STATUS)
    def status(self) -> CaseStatus:
        return CaseStatus(
            reference=self._c.reference,
            policy=self._policy.pinned if self._policy else self._c.policy,
            stage=self._stage, status=self._status, waiting_for=self._waiting_for,
            handler=self._handler.name if self._handler else None,
            stage2_handler=self._reviewer.name if self._reviewer else None,
            next_deadline=self._book.next_due(),
            deadlines=self._book.all(), breaches=list(self._breaches), extensions=list(self._extensions),
            refused_messages=self._refused, problems=list(self._problems),
        )

    @workflow.query(name=Query.TIMELINE)
    def timeline(self) -> list[CaseEvent]:
        return list(self._timeline)

    # =============================================================================================
    # Deadlines: one keeper loop, waking only for real reminders and due dates
    # =============================================================================================
    async def _keep_deadlines(self) -> None:
        while not self._finished:
            wake = self._book.next_wakeup()
            self._wake = False
            if wake is None:
                await workflow.wait_condition(lambda: self._wake or self._finished)
                continue
            remaining = wake.at - workflow.now()
            if remaining > timedelta(0):
                try:
                    await workflow.wait_condition(lambda: self._wake or self._finished, timeout=remaining,
                                                  timeout_summary=wake.summary)
                except TimeoutError:
                    pass
            if not self._finished:
                await self._fire_due(workflow.now())

    async def _fire_due(self, now: datetime) -> None:
        for d in self._book.reminders_due(now):
            d.reminded = True
            who = self._reviewer if d.stage is not Stage.STAGE1 and self._reviewer else self._handler
            await self._act(Activity.NOTIFY_STAFF, Notification(
                reference=self._c.reference, key=f"reminder.{d.key}.{d.due_date.isoformat()}",
                role="handler", staff_id=who.id if who else None, kind="reminder",
                message=f"{d.label} for {self._c.reference} is due by the end of {d.due_date.isoformat()}",
            ), None, f"Remind the handler: {d.label}")
            self._event("reminder_sent", f"Reminder sent: {d.label} due {d.due_date.isoformat()}",
                        detail={"deadline": d.key})
        for d in self._book.passed(now):
            d.passed_at = now
            if d.kind is DeadlineKind.WINDOW:
                self._event("window_closed", f"{d.label} ended on {d.due_date.isoformat()}",
                            detail={"deadline": d.key})
                continue
            self._breaches.append(Breach(deadline=d.key, label=d.label, stage=d.stage, due_date=d.due_date,
                                         recorded_at=now))
            self._event("deadline_breached", f"{d.label} missed: it was due by {d.due_date.isoformat()}",
                        detail={"deadline": d.key, "label": d.label, "due_date": d.due_date.isoformat()})
            await self._act(Activity.NOTIFY_STAFF, Notification(
                reference=self._c.reference, key=f"breach.{d.key}", role=self._require_policy().manager_role,
                kind="breach", message=f"{d.label} for {self._c.reference} was due by {d.due_date.isoformat()} "
                "and has not been met",
            ), None, f"Tell a manager: {d.label} missed")
        self._publish()

    # =============================================================================================
    # Helpers
    # =============================================================================================
    async def _act(self, name: str, arg: Any, result_type: type | None, summary: str) -> Any:
        return await workflow.execute_activity(
            name, arg, result_type=result_type, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RETRY,
            summary=summary,
        )

    async def _load_calendar(self) -> CalendarSnapshot:
        policy = self._require_policy()
        year = self._c.received_at.astimezone(wd.LONDON).year
        return await self._act(Activity.LOAD_CALENDAR, CalendarRequest(
            nation=self._c.property.nation, first_year=year, last_year=year + 3, closures=policy.closures,
            closing_time=policy.closing_time,
        ), CalendarSnapshot, "Load the working-day calendar")

    def _calendar(self) -> CalendarSnapshot:
        assert self._cal is not None
        return self._cal

    def _require_policy(self) -> Policy:
        assert self._policy is not None
        return self._policy

    def _require_policy_or_refuse(self) -> Policy:
        if self._policy is None:
            raise Refused("the case is still being filed; try again in a moment")
        return self._policy

    def _require_stage2_kind(self, kind: ReviewKind, what: str):
        policy = self._require_policy_or_refuse()
        if policy.stage2.kind is not kind:
            raise Refused(f"{what}: not part of this policy's Stage 2 ({policy.stage2.kind.value})")
        if self._stage is not Stage.STAGE2 or Trigger.STAGE2_ACKNOWLEDGED not in self._triggers:
            raise Refused(f"{what}: the case is at {self._stage.value} ({self._status.value}), not in an "
                          "acknowledged Stage 2")
        return policy.stage2

    def _check_not_future(self, at: datetime) -> None:
        if at > workflow.now() + FUTURE_TOLERANCE:
            raise Refused(f"{at.isoformat()} is in the future")

    def _trigger_time(self, trigger: Trigger, default: datetime) -> datetime:
        return self._triggers.get(trigger, default)

    def _open(self, key: str, rule: DeadlineRule, stage: Stage, kind: DeadlineKind = DeadlineKind.DUTY) -> Deadline:
        trigger_at = self._triggers[rule.trigger]
        d = self._book.open(self._calendar(), key, rule, stage, trigger_at, kind)
        self._wake = True
        self._event("deadline_set", f"{d.label} due by {d.due_date.isoformat()}",
                    detail={"deadline": key, "due_date": d.due_date.isoformat(), "kind": kind.value,
                            "length": rule.length, "unit": rule.unit.value, "trigger": rule.trigger.value})
        self._publish()
        return d

    def _mark(self, trigger: Trigger, deadline_key: str, kind: str, summary: str, actor: str = "system",
              decision: str | None = None) -> None:
        now = workflow.now()
        self._triggers[trigger] = now
        d = self._book.meet(deadline_key, now)
        self._wake = True
        detail: dict[str, Any] = {"deadline": deadline_key}
        if decision is not None:
            detail["decision"] = decision  # what reports count outcomes by (detail->>'decision')
        if d is not None:
            detail.update(due_date=d.due_date.isoformat(), on_time=bool(d.met_on_time))
        self._event(kind, summary, actor=actor, detail=detail)
        self._publish()

    def _set(self, status: Status, waiting_for: str) -> None:
        self._status = status
        self._waiting_for = waiting_for
        self._publish()

    def _event(self, kind: str, summary: str, *, at: datetime | None = None, actor: str = "system",
               detail: dict[str, Any] | None = None) -> None:
        event = CaseEvent(seq=len(self._timeline) + 1, at=at or workflow.now(), kind=kind, stage=self._stage,
                          actor=actor, summary=summary, detail=detail or {})
        self._timeline.append(event)
        self._unsaved.append(event)
        workflow.logger.info("case event: %s", kind, extra={"reference": self._c.reference,
                                                             "stage": self._stage.value, "event": kind})

    class _RefusalScope:
        """Turns a Refused raised inside it into a 'signal_refused' timeline event."""

        def __init__(self, wf: ComplaintWorkflow, name: str) -> None:
            self.wf, self.name, self.refused = wf, name, False

        def __enter__(self) -> ComplaintWorkflow._RefusalScope:
            return self

        def __exit__(self, exc_type, exc, tb) -> bool:
            if exc_type is not None and issubclass(exc_type, Refused):
                self.refused = True
                self.wf._refuse(self.name, str(exc))
                return True
            return False

    def _refusing(self, name: str) -> ComplaintWorkflow._RefusalScope:
        return ComplaintWorkflow._RefusalScope(self, str(name))

    def _refuse(self, name: str, reason: str) -> None:
        self._refused += 1
        self._event("signal_refused", f"Refused {name}: {reason}", detail={"message": name, "reason": reason})

    def _validate(self, check) -> None:
        try:
            check()
        except Refused as exc:
            raise ApplicationError(str(exc), type="Refused", non_retryable=True) from None

    def _apply_extension(self, request: ExtendDeadline) -> None:
        policy = self._require_policy_or_refuse()
        key = S2_RESPONSE if self._stage is Stage.STAGE2 else S1_RESPONSE
        rule = policy.stage2.extension if self._stage is Stage.STAGE2 else policy.stage1.extension
        d = self._book.get(key)
        if d is None or not d.open:
            raise Refused(f"extend_deadline: there is no open response deadline at {self._stage.value}")
        now = workflow.now()
        if now >= d.due_at or d.passed_at is not None:
            raise Refused(f"extend_deadline: {d.label} was due by {d.due_date.isoformat()}; an extension must be "
                          "given before the deadline")
        total = d.extended_by + request.working_days
        if total > rule.max_working_days and not (request.exceptional and rule.exceptional_reason_allows_more):
            raise Refused(f"extend_deadline: {total} working days in all is over this policy's limit of "
                          f"{rule.max_working_days}; more needs a genuine reason recorded as exceptional")
        moved = self._book.extend(self._calendar(), key, request.working_days)
        self._wake = True
        ext = Extension(deadline=key, working_days=request.working_days, reason=request.reason,
                        exceptional=request.exceptional, old_due_date=moved.old, new_due_date=moved.new, at=now)
        self._extensions.append(ext)
        self._event("deadline_extended", f"{d.label} extended by {request.working_days} working days to "
                    f"{moved.new.isoformat()}", actor=request.by, detail=ext.model_dump(mode="json") | {
                        "deadline": key})
        self._pending_letters.append(LetterRequest(
            reference=self._c.reference, letter_key=f"extension.{key}.{len(self._extensions)}", kind="extension",
            stage=self._stage, recipient_name=self._c.resident.name, recipient_address=self._c.resident.address,
            recipient_email=self._c.resident.email, fields={
                "what": "response" if key == S1_RESPONSE else "final response", "reason": request.reason,
                "new_due": _long_date(moved.new), "old_due": _long_date(moved.old), **self._ombudsman_fields(),
                "landlord": policy.landlord,
            },
        ))
        self._publish()

    async def _send_pending_letters(self) -> None:
        while self._pending_letters:
            await self._send(self._pending_letters.pop(0))

    async def _letter(self, key: str, kind: str, stage: Stage, fields: dict[str, str]) -> LetterSent:
        policy = self._require_policy()
        return await self._send(LetterRequest(
            reference=self._c.reference, letter_key=key, kind=kind, stage=stage,
            recipient_name=self._c.resident.name, recipient_address=self._c.resident.address,
            recipient_email=self._c.resident.email, fields={"landlord": policy.landlord, **fields},
        ))

    async def _send(self, request: LetterRequest) -> LetterSent:
        """Send a letter; if it cannot be delivered, record the problem and wait for a fix."""
        while True:
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
                    kind="problem", message=f"{self._c.reference}: {problem}",
                ), None, "Tell an operator about the problem")
                await workflow.wait_condition(lambda: self._contact_fix is not fixed_before)
                self._problems.remove(problem)
                self._set(*previous)
                continue
            self._letters[request.letter_key] = sent
            self._event("letter_sent", f"Letter sent: {sent.subject}",
                        detail={"letter_id": sent.letter_id, "letter_key": sent.letter_key, "kind": sent.kind})
            return sent

    def _response_fields(self, response: StageResponse) -> dict[str, str]:
        return {
            "decision": DECISION_WORDS[response.decision], "reasons": response.reasons,
            "remedy": response.remedy or "(none)",
            "outstanding": "; ".join(response.outstanding_actions) or "(nothing outstanding)",
            "points": "; ".join(response.points_addressed) or "(see reasons)",
            "signed_by": response.by,
        }

    def _ombudsman_fields(self) -> dict[str, str]:
        o = self._require_policy().ombudsman
        return {"ombudsman": o.name, "ombudsman_contact": o.contact}

    def _ombudsman_route_text(self) -> str:
        o = self._require_policy().ombudsman
        if o.cooling_off is not None:
            ends = wd.due_date(self._calendar(), workflow.now(), o.cooling_off.length, o.cooling_off.unit)
            # The period runs to the end of `ends`; a direct referral is accepted from the next day.
            return (f"If you are still unhappy, you can ask the {o.name} to review your complaint. You can ask a "
                    f"designated person (your MP, a local councillor or a tenant panel) to refer it now, or contact "
                    f"the Ombudsman directly once the eight-week cooling-off period has ended on "
                    f"{_long_date(ends)}, from {_long_date(ends + timedelta(days=1))}. "
                    f"{o.contact}")
        return (f"This is the end of our complaints procedure. If you are still unhappy, you can refer your "
                f"complaint to the {o.name}, normally within {o.referral_months} months of this letter: {o.contact}")

    def _provisional_stage2_due(self) -> date:
        s2 = self._require_policy().stage2
        if s2.kind is ReviewKind.REVIEW_PANEL and self._sitting is not None:
            trigger = datetime.combine(self._sitting.sits_on, time(10, 0), tzinfo=wd.LONDON)
        else:
            trigger = workflow.now()
        return wd.due_date(self._calendar(), trigger, s2.response.length, s2.response.unit)

    def _publish(self) -> None:
        """Tell operators where the case is: search attributes and the UI's current details."""
        if self._policy is None:
            return
        nxt = self._book.next_due()
        handler = self._reviewer or self._handler
        state = (self._stage, self._status, self._waiting_for, nxt.due_at if nxt else None,
                 handler.id if handler else None, self._book.overdue(), len(self._breaches), len(self._problems))
        if state == self._published:
            return  # nothing new to show; an upsert would only lengthen the history
        self._published = state
        workflow.upsert_search_attributes([
            sa.COMPLAINT_STAGE.value_set(self._stage.value),
            sa.COMPLAINT_STATUS.value_set(self._status.value),
            sa.COMPLAINT_POLICY.value_set(self._policy.id),
            sa.NATION.value_set(self._c.property.nation.value),
            sa.OVERDUE.value_set(self._book.overdue()),
            sa.NEXT_DEADLINE.value_set(nxt.due_at) if nxt else sa.NEXT_DEADLINE.value_unset(),
            sa.CASE_HANDLER.value_set(handler.id) if handler else sa.CASE_HANDLER.value_unset(),
        ])
        lines = [f"**{self._c.reference}** · {self._policy.title}",
                 f"- Stage: **{self._stage.value}** ({self._status.value})",
                 f"- Waiting for: {self._waiting_for}"]
        if nxt is not None:
            lines.append(f"- Next deadline: {nxt.label}, due by end of {nxt.due_date.isoformat()}")
        if self._breaches:
            lines.append(f"- Breaches: {', '.join(b.label for b in self._breaches)}")
        if self._problems:
            lines.append(f"- Problem: {'; '.join(self._problems)}")
        workflow.set_current_details("\n".join(lines))

    async def _persist_events(self) -> None:
        """Write the timeline to the case record in batches, in order, each row once."""
        while True:
            await workflow.wait_condition(lambda: bool(self._unsaved) or self._finished)
            if not self._unsaved:
                return
            batch, self._unsaved = self._unsaved, []
            await self._act(Activity.RECORD_EVENTS, EventBatch(
                reference=self._c.reference, events=batch,
                case=CaseSnapshot(stage=self._stage, status=self._status,
                                  handler_id=self._handler.id if self._handler else None,
                                  stage2_handler_id=self._reviewer.id if self._reviewer else None,
                                  escalated_at=self._escalated_at, closed_at=self._closed_at),
                deadlines=self._book.all(),
            ), int, "Record case events")
