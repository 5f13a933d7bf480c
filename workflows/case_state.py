"""The case's state and its record: what every stage reads and writes.

One job: hold the case (policy, calendar, deadlines, timeline, status) and make it visible, as timeline
events persisted in order, search attributes and current details for operators, and the status and
timeline queries. The stages are mixins over this class (workflows/complaint.py composes them), so each
stage module holds one part of the procedure and the messages that feed it, and they share this state.

Deterministic like all workflow code: the clock is workflow.now(), and the world is reached only through
activities (`_act`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from domain import search_attributes as sa
    from domain.calendar import CalendarSnapshot
    from domain.case import Breach, CaseEvent, CaseStatus, Deadline, DeadlineKind, Extension, Stage, Status
    from domain.case_file import CONTINUED, CaseFile, attribute
    from domain.contract import (
        AgreeOutcome,
        FileComplaint,
        OmbudsmanReferral,
        PanelDecision,
        Query,
        RefuseEscalation,
        RequestReview,
        ReviewFindings,
        StageResponse,
        SupplyContactDetails,
        SurveyResponse,
    )
    from domain.policy import DeadlineRule, Policy, ReviewKind, Trigger
    from domain.records import (
        Activity,
        CarriesTimeline,
        CaseSnapshot,
        EventBatch,
        InvolvedCustomer,
        LetterRequest,
        LetterSent,
        PanelSitting,
        StaffMember,
        WritesCaseRecord,
        calendar_request,
    )
    from domain.wording import long_date as long_date  # re-exported: the stages import it from here
    from workflows.deadline_book import DeadlineBook
    from workflows.messages import Refused

from workflows.continuation import CONTINUE_AS_NEW, MAX_CASE_FILE_BYTES, Rest, history_is_long, later
from workflows.inbox import Inbox

ACTIVITY_TIMEOUT = timedelta(seconds=30)
# Outages (a database restart) are ridden out with backoff; errors that cannot pass are named.
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    non_retryable_error_types=["InvalidRequest", "ResidentUnreachable"]
)
FUTURE_TOLERANCE = timedelta(minutes=5)
# The timeline the workflow keeps (the query's answer and what continue-as-new carries): the newest events
# within this many bytes of JSON. An ordinary case is a few dozen events of a few hundred bytes.
TIMELINE_KEPT_BYTES = 64 * 1024
# One record_events activity's events at most (its input stays well under the server's blob limit).
BATCH_BYTES = 256 * 1024
# workflow.patched id: a batch of timeline rows bounded by BATCH_BYTES (before it, one batch took them all).
BOUNDED_BATCHES = "bounded-event-batches"
# Events a burst brings by the thousand: not logged one by one (a log line costs more than the event).
QUIET_EVENTS = frozenset({"contact_recorded", "signal_refused"})
DECISION_WORDS = {"upheld": "Upheld", "partly_upheld": "Partly upheld", "not_upheld": "Not upheld"}

# Deadline keys: stable names, used in the case record and by operators.
S1_ACK, S1_RESPONSE, ESC_WINDOW, ESC_TRIAGE = "stage1.acknowledgement", "stage1.response", "escalation.window", "escalation.triage"
S2_CONTACT, S2_ACK, S2_RESPONSE, S2_SITTING = "stage2.contact", "stage2.acknowledgement", "stage2.response", "stage2.panel_sitting"
COOLING_OFF, SURVEY_WINDOW = "ombudsman.cooling_off", "survey.answer"


def json_bytes(model: BaseModel) -> int:
    """The size of the model's JSON in bytes (a character may take four): what a payload carries."""
    return len(type(model).__pydantic_serializer__.to_json(model))


class CaseState(Inbox):
    """The state every stage shares, and the helpers that change it visibly.

    The carried fields are declared in domain/case_file.py (CaseFile) and set from it (`_restore`); their
    types are repeated here for the readers of the stages.
    """

    _c: FileComplaint
    _policy: Policy | None
    _cal: CalendarSnapshot | None
    _timeline: list[CaseEvent]
    _timeline_bytes: list[int]
    _seq: int
    _unsaved: list[CaseEvent]
    _stage: Stage
    _status: Status
    _waiting_for: str
    _handler: StaffMember | None
    _reviewer: StaffMember | None
    _triggers: dict[Trigger, datetime]
    _breaches: list[Breach]
    _extensions: list[Extension]
    _refused: int
    _problems: list[str]
    _escalated_at: datetime | None
    _closed_at: datetime | None
    _letters: dict[str, LetterSent]
    _stage1_response: StageResponse | None
    _review_request: RequestReview | None
    _refusal: RefuseEscalation | None
    _final_response: StageResponse | None
    _findings: ReviewFindings | None
    _agreement: AgreeOutcome | None
    _findings_call_at: datetime | None
    _discussion_declined: bool
    _participation_declined: bool
    _involved_customer: InvolvedCustomer | None
    _panelists: list[dict[str, Any]]
    _attend_requested: bool
    _booked_attending: bool  # whether the current panel booking is one the resident attends
    _sitting: PanelSitting | None
    _panel_decision: PanelDecision | None
    _referral: OmbudsmanReferral | None
    _survey: SurveyResponse | None
    _contact_fix: SupplyContactDetails | None
    _pending_letters: list[LetterRequest]
    # Whether this case opens in one activity and lets steps carry its timeline rows (cases started before
    # that change keep their separate activities, so they still replay). Set by run().
    _timeline_with_steps: bool
    _resume_at: str | None
    _continued: int

    def __init__(self, complaint: FileComplaint) -> None:
        super().__init__()  # the inbox: signals queued, taken a bounded number per workflow task
        # Every carried field starts from a fresh case file (domain/case_file.py declares them).
        self._book = DeadlineBook()
        self._restore(CaseFile(complaint=complaint, triggers={Trigger.RECEIVED: complaint.received_at}))
        self._wake = False
        self._finished = False
        self._published: tuple[Any, ...] | None = None
        # One calendar reload at a time, in the order told: overlapping loads can finish out of order
        # and leave the older snapshot in place.
        self._calendar_lock = asyncio.Lock()
        # Activities started and not finished: the case continues as new only when nothing is in flight.
        self._in_flight = 0
        # Whether this run may continue as new (False once replay shows a history from before it could).
        self._may_continue = True

    # -- the case file: continue-as-new carries it -----------------------------------------------------
    def _case_file(self) -> CaseFile:
        values = {name: getattr(self, attribute(name)) for name in CaseFile.model_fields if name != "deadlines"}
        return CaseFile.model_validate({**values, "deadlines": self._book.deadlines})

    def _restore(self, case: CaseFile) -> None:
        for name in CaseFile.model_fields:
            if name != "deadlines":
                setattr(self, attribute(name), getattr(case, name))
        self._book.deadlines = dict(case.deadlines)
        self._timeline_total = sum(self._timeline_bytes)
        # Each unsaved event's JSON size by seq (computed once), and their sum: batches and the carried
        # case file are bounded in bytes.
        self._sizes = {e.seq: json_bytes(e) for e in self._unsaved}
        self._unsaved_total = sum(self._sizes.values())
        self._resting = False  # the procedure waits at a rest point (CaseState._rest)

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
            refused_messages=self._refused, problems=list(self._problems)
        )

    @workflow.query(name=Query.TIMELINE)
    def timeline(self) -> list[CaseEvent]:
        """The most recent events, at most TIMELINE_KEPT_BYTES of them (a whole ordinary case); every event
        is in the case record's timeline, which the CLI reads for the earlier ones."""
        return list(self._timeline)

    async def _act(self, name: str, arg: Any, result_type: type | None, summary: str) -> Any:
        carried: list[CaseEvent] = []
        if self._timeline_with_steps and isinstance(arg, CarriesTimeline) and self._unsaved:
            # The step writes the case record anyway: its transaction takes the pending timeline rows too,
            # one activity instead of this one and a record_events.
            carried = self._take_unsaved()
            arg = arg.model_copy(update={"timeline": self._batch(carried)})
        if isinstance(arg, WritesCaseRecord):
            # Who is writing: the case record refuses a chain that does not own it (activities/ownership.py).
            arg = arg.model_copy(update={"case_run": workflow.info().first_execution_run_id})
        self._in_flight += 1
        try:
            return await workflow.execute_activity(
                name, arg, result_type=result_type, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RETRY,
                summary=summary
            )
        except (ActivityError, asyncio.CancelledError):
            # Maybe written (the activity writes them even when its step fails, or runs on after a
            # cancellation); writing again is a no-op.
            self._unsaved = carried + self._unsaved
            for e in carried:
                self._sizes[e.seq] = json_bytes(e)
                self._unsaved_total += self._sizes[e.seq]
            raise
        finally:
            self._in_flight -= 1

    async def _load_calendar(self) -> CalendarSnapshot:
        return await self._act(Activity.LOAD_CALENDAR, calendar_request(self._c, self._require_policy(),
                                                                    workflow.info().workflow_start_time),
                               CalendarSnapshot, "Load the working-day calendar")

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

    def _open_deadline(self, key: str, rule: DeadlineRule, stage: Stage, kind: DeadlineKind = DeadlineKind.DUTY) -> Deadline:
        trigger_at = self._triggers[rule.trigger]
        d = self._book.open_deadline(self._calendar(), key, rule, stage, trigger_at, kind)
        self._wake = True
        self._event("deadline_set", f"{d.label} due by {d.due_date.isoformat()}",
                    detail={"deadline": key, "due_date": d.due_date.isoformat(), "kind": kind.value,
                            "length": rule.length, "unit": rule.unit.value, "trigger": rule.trigger.value})
        self._publish()
        return d

    def _mark(self, trigger: Trigger, deadline_key: str, kind: str, summary: str, actor: str = "system",
              decision: str | None = None, at: datetime | None = None) -> None:
        """The event `trigger` happened `at` (now by default; a letter's event at the instant it was issued)."""
        now = at or workflow.now()
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
        self._seq += 1
        event = CaseEvent(seq=self._seq, at=at or workflow.now(), kind=kind, stage=self._stage,
                          actor=actor, summary=summary, detail=detail or {})
        size = self._keep(event)
        self._unsaved.append(event)
        self._sizes[event.seq] = size
        self._unsaved_total += size
        if kind not in QUIET_EVENTS:
            workflow.logger.info("case event: %s", kind, extra={"reference": self._c.reference,
                                                                 "stage": self._stage.value, "event": kind})

    def _keep(self, event: CaseEvent) -> int:
        """Keep the newest events up to TIMELINE_KEPT_BYTES: the query's answer and the case file stay
        bounded however many messages the case takes (all of them are in the case record)."""
        size = json_bytes(event)
        self._timeline.append(event)
        self._timeline_bytes.append(size)
        self._timeline_total += size
        while self._timeline_total > TIMELINE_KEPT_BYTES and len(self._timeline) > 1:
            self._timeline.pop(0)
            self._timeline_total -= self._timeline_bytes.pop(0)
        return size

    def _take_unsaved(self) -> list[CaseEvent]:
        """The pending timeline rows for one activity: all of them, or as many as fit in BATCH_BYTES (one
        activity's input stays under the server's blob limit after a burst of messages)."""
        total, n = 0, 0
        for event in self._unsaved:
            total += self._sizes[event.seq]
            if n and total > BATCH_BYTES:
                break
            n += 1
        if n < len(self._unsaved) and workflow.patched(BOUNDED_BATCHES):
            taken, self._unsaved = self._unsaved[:n], self._unsaved[n:]
        else:
            taken, self._unsaved = self._unsaved, []
        self._unsaved_total -= sum(self._sizes.pop(e.seq) for e in taken)
        return taken

    class _RefusalScope:
        """Turns a Refused raised inside it into a 'signal_refused' timeline event."""

        def __init__(self, wf: CaseState, name: str) -> None:
            self.wf, self.name, self.refused = wf, name, False

        def __enter__(self) -> CaseState._RefusalScope:
            return self

        def __exit__(self, exc_type, exc, tb) -> bool:
            if exc_type is not None and issubclass(exc_type, Refused):
                self.refused = True
                self.wf._refuse(self.name, str(exc))
                return True
            return False

    def _refusing(self, name: str) -> CaseState._RefusalScope:
        return CaseState._RefusalScope(self, str(name))

    def _refuse(self, name: str, reason: str) -> None:
        self._refused += 1
        self._event("signal_refused", f"Refused {name}: {reason}", detail={"message": name, "reason": reason})

    def _message_failed(self, name: str, exc: Exception) -> None:
        # A defect, not the sender's fault: logged in full for the team, refused on the case's timeline.
        workflow.logger.exception("%s could not be handled", name, extra={"reference": self._c.reference})
        self._refuse(name, f"the case could not handle it ({type(exc).__name__}); the team has been told")

    # -- resting, and continuing as new (workflows/continuation.py) ----------------------------------------
    def _resumed_at(self, rest: Rest) -> bool:
        """Whether this run continues a case that rested at `rest`: the steps before it ran already."""
        return self._resume_at == rest.value

    def _resumed_beyond(self, rest: Rest) -> bool:
        return later(self._resume_at, rest)

    async def _rest(self, rest: Rest, done: Callable[[], bool]) -> None:
        """Wait at a rest point until `done`; meanwhile, once the history is long and the case is quiet,
        continue as new from here (the next run resumes at this wait)."""
        if self._resume_at == rest.value:
            self._resume_at = None
        self._resting = True
        try:
            while True:
                await workflow.wait_condition(lambda: done() or self._may_continue_now())
                if done():
                    return
                if workflow.patched(CONTINUE_AS_NEW):
                    self._continue_as_new(rest)
                self._may_continue = False  # a history from before continue-as-new: it rests as it always did
        finally:
            self._resting = False

    def _wants_to_continue(self) -> bool:
        """At rest with a long history, no handler running and nothing pending but activities: the case
        continues as new once they finish. Meanwhile the persister holds back (a case that writes after
        every message would never be quiet); the rows wait in the case file, as long as they fit in one
        batch. A handler that waits long (a letter waiting for contact details) lets the rows be written."""
        return (self._resting and self._may_continue and self._unsaved_total <= BATCH_BYTES
                and not self._pending_letters and not self._calendar_lock.locked()
                and workflow.all_handlers_finished() and self._messages_settled() and history_is_long())

    def _may_continue_now(self) -> bool:
        """Long history and a quiet case: no handler running, no activity in flight."""
        return self._wants_to_continue() and self._in_flight == 0

    def _continue_as_new(self, rest: Rest) -> None:
        """Continue as new from `rest`, carrying the case file; returns only if the file cannot fit in one
        payload even with the timeline cut to its newest event (then this run goes on to the caps)."""
        case = self._case_file().model_copy(update={"resume_at": rest.value, "continued": self._continued + 1})
        data = case.model_dump(mode="json")
        size = json_bytes(case)
        while size > MAX_CASE_FILE_BYTES and len(data["timeline"]) > 1:
            # The oldest kept events go first: every event is in the case record already.
            size -= data["timeline_bytes"].pop(0)
            data["timeline"].pop(0)
        info = workflow.info()
        extra = {"reference": self._c.reference, "stage": self._stage.value, "rest": rest.value,
                 "history_events": info.get_current_history_length(), "case_file_bytes": size}
        if size > MAX_CASE_FILE_BYTES:
            workflow.logger.warning("case file too large to continue as new", extra=extra)
            return
        workflow.logger.info("case continues as new", extra=extra)
        workflow.continue_as_new({CONTINUED: data})

    def _validate(self, check) -> None:
        try:
            check()
        except Refused as exc:
            raise ApplicationError(str(exc), type="Refused", non_retryable=True) from None

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
                if self._finished:
                    return
                continue  # a step's activity took them (CaseState._act) between the wake-up and now
            if self._wants_to_continue():
                if workflow.patched(CONTINUE_AS_NEW):
                    # Held until the case continues as new (carrying these rows) or moves on, or they
                    # outgrow one batch.
                    await workflow.wait_condition(lambda: not self._wants_to_continue() or self._finished)
                    continue
                self._may_continue = False
            batch = self._take_unsaved()
            await self._act(Activity.RECORD_EVENTS, self._batch(batch), int, "Record case events")

    def _batch(self, events: list[CaseEvent]) -> EventBatch:
        """Timeline events with the case row and deadlines as they stand now (the newest batch wins)."""
        return EventBatch(
            reference=self._c.reference, events=events,
            case=CaseSnapshot(stage=self._stage, status=self._status,
                              handler_id=self._handler.id if self._handler else None,
                              stage2_handler_id=self._reviewer.id if self._reviewer else None,
                              escalated_at=self._escalated_at, closed_at=self._closed_at),
            deadlines=self._book.all()
        )
