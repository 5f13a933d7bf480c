"""ComplaintWorkflow: one complaint, from filing to closure, following its landlord's policy.

This module is the procedure's order (`run`); each step is a mixin with one job (see each module's
docstring), over the shared state in workflows/case_state.py. Temporal's @workflow.defn collects the
signal, update and query handlers the mixins define (it reads inherited members; the run method and
@workflow.init must be on this class).

Deterministic: the clock is workflow.now(), the calendar is a snapshot loaded by an activity, and
everything that touches the world (the case record, letters, staff) is an activity.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.case import CaseStatus
    from domain.case_file import CONTINUED, CaseFile
    from domain.contract import WORKFLOW_TYPE, FileComplaint, RequestReview
    from domain.policy import Policy, Trigger
    from domain.records import NOT_THIS_CASE, Activity, OpenCase, OpenedCase, RegisterComplaint
    from workflows.messages import Refused, parse

from workflows.case_state import ACTIVITY_TIMEOUT, FUTURE_TOLERANCE
from workflows.closure import Closure
from workflows.deadline_keeper import DeadlineKeeper
from workflows.inbox import Inbox
from workflows.ombudsman import OmbudsmanStep
from workflows.staffing import Staffing
from workflows.stage_one import Stage1
from workflows.stage_two import Stage2
from workflows.withdrawal import Withdrawal


def continued_case(raw: RawValue) -> CaseFile | None:
    """The case file a continued run starts from; None for a new case. Only a run that Temporal started by
    continue-as-new reads one: a caller cannot start a case with a state of its choosing."""
    if workflow.info().continued_run_id is None:
        return None
    value = workflow.payload_converter().from_payload(raw.payload, None)
    return CaseFile.model_validate(value[CONTINUED])


# ACTIVITY_TIMEOUT is re-exported: deploy checks read it from here.
__all__ = ["ACTIVITY_TIMEOUT", "ComplaintWorkflow"]

# workflow.patched ids: each guards a change in the commands a running case issues.
REGISTER_BEFORE_CALENDAR = "register-before-calendar"
# One open_case activity (policy, case row, calendar) instead of three, and timeline rows carried by the
# step that writes the case record anyway (CaseState._act), instead of a record_events after it.
OPEN_IN_ONE_ACTIVITY = "open-in-one-activity"
# A received_at later than the start (beyond FUTURE_TOLERANCE) fails the start instead of opening a case.
REFUSE_FUTURE_RECEIPT = "refuse-future-receipt"


@workflow.defn(name=WORKFLOW_TYPE)
class ComplaintWorkflow(Stage1, Stage2, OmbudsmanStep, Closure, DeadlineKeeper, Withdrawal, Staffing):
    """The procedure: Stage 1, escalation, Stage 2, the Ombudsman step, closure."""

    @workflow.init
    def __init__(self, complaint: RawValue) -> None:
        # Read here, not by the SDK: a start argument that does not validate would otherwise fail every
        # workflow task, retried forever. Invalid, the case never opens and run() fails it with why.
        self._persister: asyncio.Future[None] | None = None  # the loops, started once the case is open
        self._keeper: asyncio.Future[None] | None = None
        continued = continued_case(complaint)
        if continued is not None:
            self._invalid_start: str | None = None
            super().__init__(continued.complaint)
            self._restore(continued)
            return
        try:
            filed = parse(FileComplaint, complaint)
        except Refused as exc:
            self._invalid_start = str(exc)
            Inbox.__init__(self)  # signals sent meanwhile are queued, never handled: run() fails the start
            return
        self._invalid_start = None
        super().__init__(filed)

    @workflow.run
    async def run(self, complaint: RawValue) -> CaseStatus:
        if self._invalid_start is not None:
            raise ApplicationError(f"the complaint cannot be filed: {self._invalid_start}", type="InvalidComplaint",
                                   non_retryable=True)
        self._run_task = asyncio.current_task()
        # Waits for queued signals all run long; it makes no command until a burst queues more than one
        # workflow task may take (workflows/inbox.py).
        asyncio.ensure_future(self._take_messages())
        try:
            await self._procedure()
        except asyncio.CancelledError:
            # A cancellation request, or the withdraw update: the case closes as a withdrawal (withdrawal.py).
            if not await self._withdraw_on_cancel():
                raise
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() and self._messages_settled())
        self._finished = True
        if self._keeper is not None and self._persister is not None:
            await self._keeper
            await self._persister
        if self._cancelled_in_temporal():
            raise asyncio.CancelledError("the complaint was withdrawn after a cancellation request")
        return self.status()

    async def _procedure(self) -> None:
        """Filing (or resuming) to closure, in the procedure's order."""
        filed = self._c  # the validated FileComplaint
        if self._continued:
            await self._resume()
        else:
            await self._open_case(filed)
        await self._close()

    async def _open_case(self, filed: FileComplaint) -> None:
        """A new case: open it, and follow the procedure from the start."""
        # Received later than it was filed: no deadline can count from a day that has not come (and the
        # calendar would not cover the days between). Refused once, before anything is recorded; cases
        # filed before this check (no marker) go on as they were.
        if filed.received_at > workflow.now() + FUTURE_TOLERANCE and workflow.patched(REFUSE_FUTURE_RECEIPT):
            raise ApplicationError(
                f"the complaint cannot be filed: received_at {filed.received_at.isoformat()} is later than now "
                f"({workflow.now().isoformat(timespec='seconds')}); send the time it was received",
                type="InvalidComplaint", non_retryable=True)
        self._timeline_with_steps = workflow.patched(OPEN_IN_ONE_ACTIVITY)
        try:
            if self._timeline_with_steps:
                opened: OpenedCase = await self._act(
                    Activity.OPEN_CASE, OpenCase(complaint=filed, workflow_id=workflow.info().workflow_id,
                                                      opened_at=workflow.info().workflow_start_time),
                    OpenedCase, "Open the case: policy, case record, calendar"
                )
                policy = self._policy = opened.policy
                self._cal = opened.calendar
            else:
                policy = self._policy = await self._open_in_three_activities(filed)
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type == NOT_THIS_CASE:
                # One reference, one case: this one never opens, and fails once saying why.
                raise ApplicationError(f"the complaint cannot be filed: {cause.message}", type="ReferenceTaken",
                                       non_retryable=True) from None
            raise
        self._start_loops()
        self._event("filed", f"Complaint filed ({filed.channel.value}) under {policy.pinned}",
                    at=filed.received_at, actor="resident",
                    detail={"policy": policy.pinned, "channel": filed.channel.value})

        if filed.start_at_stage2 and policy.escalation.direct_to_stage2:
            self._review_request = RequestReview(at=filed.received_at, reasons="filed directly at Stage 2")
            self._triggers[Trigger.ESCALATION_REQUESTED] = filed.received_at
            self._event("escalation_requested", "Filed directly at Stage 2, as the policy allows", actor="resident")
        else:
            if filed.start_at_stage2:
                # Asked for by a client, not allowed by the policy: the case runs at Stage 1 and says so, and
                # the case record holds what happened (open_case records it as filed at Stage 1).
                self._event("stage2_filing_refused",
                            f"Filing straight into Stage 2 was asked for; {policy.pinned} does not allow it, "
                            "so the case starts at Stage 1", detail={"asked": "start_at_stage2"})
            await self._stage_one()
            await self._await_escalation()
        await self._after_escalation()

    async def _resume(self) -> None:
        """A case continued as new: its loops again, then the procedure from where it rested (each step
        skips what the case file says is done)."""
        self._start_loops()
        self._publish()  # a new run shows operators the case's details again
        policy = self._require_policy()
        if not (self._c.start_at_stage2 and policy.escalation.direct_to_stage2):
            await self._stage_one()
            await self._await_escalation()
        await self._after_escalation()

    async def _after_escalation(self) -> None:
        if self._review_request is not None and self._refusal is None:
            await self._stage_two()
            await self._ombudsman_step()

    def _start_loops(self) -> None:
        self._persister = asyncio.ensure_future(self._persist_events())
        self._keeper = asyncio.ensure_future(self._keep_deadlines())

    async def _open_in_three_activities(self, filed: FileComplaint) -> Policy:
        """How cases started before OPEN_IN_ONE_ACTIVITY opened; kept so that they replay."""
        policy = self._policy = await self._act(Activity.LOAD_POLICY, filed.policy, Policy, "Load policy")
        # Registered before the calendar is read: the calendar command tells the open cases in the
        # complaints table, so a change made after this read still reaches the case. Cases started
        # before this order (no patch marker in their history) keep theirs, so they still replay.
        register_first = workflow.patched(REGISTER_BEFORE_CALENDAR)
        if not register_first:
            self._cal = await self._load_calendar()
        await self._act(
            Activity.REGISTER_COMPLAINT,
            RegisterComplaint(complaint=filed, workflow_id=workflow.info().workflow_id, policy_id=policy.id,
                              policy_version=policy.version, landlord=policy.landlord),
            None, "Record the complaint"
        )
        if register_first:
            self._cal = await self._load_calendar()
        return policy
