"""The deadline keeper: one loop that wakes for real reminders and due dates.

One job: keep the case's deadlines, meaning reminders to the handler, breaches told to a manager, windows
that close, and the two messages that move dates: extend_deadline (an extension letter follows) and
calendar_changed (reload the calendar and move what the change touches, one reload at a time).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from domain.case import Breach, Deadline, DeadlineKind, Extension, Stage
    from domain.contract import CalendarChanged, ExtendDeadline, Signal
    from domain.records import Activity, LetterRequest, Notification
    from workflows.messages import NO_PAYLOAD, Refused, parse

from workflows.case_state import S1_RESPONSE, S2_RESPONSE, long_date
from workflows.inbox import queued
from workflows.letters import Letters

# workflow.patched ids: each guards a change in the commands a running case issues.
BREACH_WHEN_MET_LATE = "breach-when-met-late"


class DeadlineKeeper(Letters):
    """The keeper loop and the messages that move deadlines."""

    async def _keep_deadlines(self) -> None:
        while not self._finished:
            wake = self._book.next_wakeup()
            self._wake = False
            if wake is None:
                await workflow.wait_condition(lambda: self._wake or self._finished)
                continue
            remaining = wake.at - workflow.now()
            fired = remaining <= timedelta(0)
            if not fired:
                try:
                    await workflow.wait_condition(lambda: self._wake or self._finished, timeout=remaining,
                                                  timeout_summary=wake.summary)
                except TimeoutError:
                    fired = True
            if not self._finished:
                # A fired timer means its instant has come, even if a fresh worker's first task reads
                # an earlier clock (seen under SIGKILL chaos): never restart a timer that has fired.
                # In any ordinary history now >= wake.at here already, so no command changes.
                now = max(workflow.now(), wake.at) if fired else workflow.now()
                await self._fire_due(now)

    async def _fire_due(self, now: datetime) -> None:
        for d in self._book.reminders_due(now):
            d.reminded = True
            who = self._reviewer if d.stage is not Stage.STAGE1 and self._reviewer else self._handler
            await self._act(Activity.NOTIFY_STAFF, Notification(
                reference=self._c.reference, key=f"reminder.{d.key}.{d.due_date.isoformat()}",
                role="handler", staff_id=who.id if who else None, kind="reminder",
                message=f"{d.label} for {self._c.reference} is due by the end of {d.due_date.isoformat()}"
            ), None, f"Remind the handler: {d.label}")
            self._event("reminder_sent", f"Reminder sent: {d.label} due {d.due_date.isoformat()}",
                        detail={"deadline": d.key})
        # Reminders awaited activities: time moved on, and a deadline may have been met late meanwhile.
        now = max(now, workflow.now())
        late = self._book.met_late_unseen()
        if late and workflow.patched(BREACH_WHEN_MET_LATE):
            for d in late:
                await self._breach(d, now)
        for d in self._book.passed(now):
            d.passed_at = now
            if d.kind is DeadlineKind.WINDOW:
                self._event("window_closed", f"{d.label} ended on {d.due_date.isoformat()}",
                            detail={"deadline": d.key})
                continue
            await self._breach(d, now)
        self._publish()

    async def _breach(self, d: Deadline, now: datetime) -> None:
        """One breach per deadline: recorded, on the timeline, and told to a manager."""
        d.passed_at = d.passed_at or now
        late = d.met_at is not None
        self._breaches.append(Breach(deadline=d.key, label=d.label, stage=d.stage, due_date=d.due_date,
                                     recorded_at=now))
        self._event("deadline_breached", f"{d.label} missed: it was due by {d.due_date.isoformat()}"
                    + (", and was met late" if late else ""),
                    detail={"deadline": d.key, "label": d.label, "due_date": d.due_date.isoformat()})
        await self._act(Activity.NOTIFY_STAFF, Notification(
            reference=self._c.reference, key=f"breach.{d.key}", role=self._require_policy().manager_role,
            kind="breach", message=f"{d.label} for {self._c.reference} was due by {d.due_date.isoformat()} "
            + ("and was met late" if late else "and has not been met")
        ), None, f"Tell a manager: {d.label} missed")

    @workflow.signal(name=Signal.EXTEND_DEADLINE)
    @queued(Signal.EXTEND_DEADLINE)
    async def extend_deadline(self, payload: RawValue = NO_PAYLOAD) -> None:
        with self._refusing(Signal.EXTEND_DEADLINE):
            request = parse(ExtendDeadline, payload)
            self._apply_extension(request)
        await self._send_pending_letters()

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
                "new_due": long_date(moved.new), "old_due": long_date(moved.old), **self._ombudsman_fields(),
                "landlord": policy.landlord,
            }
        ))
        self._publish()

    @workflow.signal(name=Signal.CALENDAR_CHANGED)
    @queued(Signal.CALENDAR_CHANGED)
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
