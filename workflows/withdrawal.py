"""Withdrawal: the resident withdraws the complaint, on purpose or through a cancellation in Temporal.

One job: close a case early, as the case's own business. The withdraw update and a cancellation request
(the Temporal UI's "Request Cancellation", `temporal workflow cancel`) end the same way: the withdrawal
is recorded with who and why, every open deadline is closed, the case closes (status withdrawn, stage
closed, its search attributes too) and the resident gets the policy's withdrawal letter.

A workflow's cancellation arrives in Python as asyncio.CancelledError in its run coroutine, wherever it
was waiting; the withdraw update cancels the run task to arrive at the same place, so both take one
path (run() calls _withdraw_on_cancel). The withdrawal runs in a task of its own, awaited through
asyncio.shield: a second cancellation (a cancel request after a withdraw, or the reverse) cannot cut it
short, and the activities it starts are never cancelled.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from domain import calendar as wd
    from domain.case import Stage, Status
    from domain.contract import FileComplaint, Update, UpdateResult, Withdraw
    from domain.policy import Policy, Trigger
    from domain.records import Activity, CancelRequest, LetterRequest, Notification
    from workflows.messages import NO_PAYLOAD, Refused, parse

from workflows.case_state import long_date
from workflows.letters import Letters

# workflow.patched id: a case cancelled in Temporal is withdrawn (activities, a letter) instead of stopping.
WITHDRAW_ON_CANCEL = "withdraw-on-cancel"
WITHDRAWAL_LETTER = "withdrawal"


class Withdrawal(Letters):
    """The withdraw update, and a cancellation turned into a withdrawal."""

    def __init__(self, complaint: FileComplaint) -> None:
        super().__init__(complaint)
        self._withdrawal: Withdraw | None = None  # what the withdraw update said
        self._withdrawing = False  # the withdrawal has begun (from the update or a cancellation)
        self._withdrawn = False  # ... and recorded: deadlines closed, the case closed (its letter follows)
        self._run_task: asyncio.Task | None = None  # run()'s task, which the withdraw update cancels

    @workflow.update(name=Update.WITHDRAW)
    async def withdraw(self, payload: RawValue = NO_PAYLOAD) -> UpdateResult:
        await self._after_earlier_messages(lambda: self._validate_withdraw(payload))
        self._withdrawal = parse(Withdraw, payload)
        if self._run_task is not None and not self._withdrawing:
            self._run_task.cancel()  # wherever the procedure waits, it stops there and withdraws
        await workflow.wait_condition(lambda: self._withdrawn)
        return UpdateResult(message="Complaint withdrawn: the case is closed and the withdrawal letter is being sent")

    @withdraw.validator
    def _validate_withdraw(self, payload: RawValue = NO_PAYLOAD) -> None:
        def check() -> None:
            parse(Withdraw, payload)
            self._require_policy_or_refuse()
            if self._withdrawing or self._withdrawal is not None:
                raise Refused("withdraw: the complaint is already being withdrawn")
            if self._stage is Stage.CLOSED:
                raise Refused(f"withdraw: the case is closed ({self._status.value})")
        self._validate(check)

    async def _withdraw_on_cancel(self) -> bool:
        """run() caught CancelledError: finish the case as a withdrawal. False when the case stops as it
        did before withdrawals existed: cancelled before it opened (there is no case to close), or a
        history from before this change."""
        if self._policy is None or self._run_task is None:
            return False
        if self._withdrawal is None and not workflow.patched(WITHDRAW_ON_CANCEL):
            return False
        self._withdrawing = True
        withdrawal = asyncio.ensure_future(self._withdraw())
        while not withdrawal.done():
            try:
                await asyncio.shield(withdrawal)
            except asyncio.CancelledError:
                continue  # cancelled again while withdrawing: the withdrawal goes on regardless
        withdrawal.result()
        return True

    def _cancelled_in_temporal(self) -> bool:
        """Whether this case ended because of a cancellation request (it then ends as cancelled)."""
        return self._withdrawing and self._withdrawal is None

    async def _withdraw(self) -> None:
        policy = self._require_policy()
        if self._withdrawal is not None:
            by, reason, how = self._withdrawal.by, self._withdrawal.reason, "withdraw"
        else:
            asked: CancelRequest = await self._act(Activity.WHO_CANCELLED, self._c.reference, CancelRequest,
                                                   "Find who asked for the cancellation")
            by = asked.by or "a cancellation request in Temporal"
            reason, how = asked.reason or workflow.cancellation_reason() or "", "cancellation"
        detail = {"by": by, "reason": reason, "how": how}
        self._close_deadlines()
        if self._stage is Stage.CLOSED:
            # Already closed (its survey window still open): nothing left to withdraw.
            self._event("cancel_requested", "Cancellation requested after the case closed", actor=by, detail=detail)
            self._publish()
            self._withdrawn = True
            return
        stage = self._stage
        now = workflow.now()
        self._event("withdrawn", f"Complaint withdrawn, recorded by {by}" + (f": {reason}" if reason else ""),
                    actor=by, detail=detail)
        self._closed_at = now
        self._triggers[Trigger.CLOSED] = now
        self._stage = Stage.CLOSED
        self._set(Status.WITHDRAWN, "nothing: the complaint was withdrawn")
        self._event("closed", "Case closed: the complaint was withdrawn")
        # Recorded and closed: the update answers now, not after a letter that may wait for contact details.
        self._withdrawn = True
        await self._withdrawal_letter(policy, stage, by, reason)

    def _close_deadlines(self) -> None:
        for d in self._book.all():
            if d.open:
                self._book.cancel(d.key)
        self._wake = True
        self._publish()

    async def _withdrawal_letter(self, policy: Policy, stage: Stage, by: str, reason: str) -> None:
        wording = policy.letters.get(WITHDRAWAL_LETTER)
        if wording is None:
            # A case opened under a policy loaded before policies worded this letter: today's file of it.
            current: Policy = await self._act(Activity.LOAD_POLICY, policy.id, Policy,
                                              "Load the policy's withdrawal letter")
            wording = current.letters.get(WITHDRAWAL_LETTER)
        if wording is None:
            problem = f"withdrawal letter not sent: policy {policy.pinned} words none"
            self._problems.append(problem)
            self._event("problem_recorded", problem, detail={"letter": WITHDRAWAL_LETTER})
            await self._act(Activity.NOTIFY_STAFF, Notification(
                reference=self._c.reference, key=f"problem.{WITHDRAWAL_LETTER}", role="operator", kind="problem",
                message=f"{self._c.reference}: {problem}"), None, "Tell an operator about the problem")
            self._publish()
            return
        await self._send(LetterRequest(
            reference=self._c.reference, letter_key=WITHDRAWAL_LETTER, kind=WITHDRAWAL_LETTER, stage=stage,
            recipient_name=self._c.resident.name, recipient_address=self._c.resident.address,
            recipient_email=self._c.resident.email, wording=wording, fields={
                "landlord": policy.landlord, "by": by, "reason": reason,
                "withdrawn_on": long_date(workflow.now().astimezone(wd.LONDON).date()),
            }))
