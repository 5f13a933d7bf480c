"""Signals are taken in the order they arrived, a bounded amount of work per workflow task.

A burst of thousands of signals can reach a case in one workflow task (a contact centre replaying a
backlog, a retrying integration). Handling all of them in that task (parsing, refusing, a timeline event
each) keeps the workflow thread busy past the SDK's deadlock detector (2 s of wall time, however loaded
the machine): the task fails, the next one holds even more signals, and the case stops answering. So a
case handles at most TAKE_PER_TASK messages, or TAKE_BYTES of payload, per workflow task: within that
budget a signal is handled at once, as it always was; beyond it the handler only queues what arrived (a
few microseconds), and a timer of a millisecond brings the next task for the queue. An update first waits
for the signals queued before it, so it acts on the case its sender saw.

A case whose history has no BOUNDED_MESSAGE_WORK marker handled every signal at once, in its handler; it
still does, so its history replays.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from workflows.messages import NO_PAYLOAD

# workflow.patched id: signals are queued and taken a bounded number per workflow task.
BOUNDED_MESSAGE_WORK = "bounded-message-work"
# Per workflow task: measured at well under a millisecond a message (make test-faults prints it), so a
# task's share stays a small fraction of the deadlock detector's 2 s on a loaded machine.
TAKE_PER_TASK = 100
# A message's parsing grows with its size (the server admits up to 1 MiB): bytes are bounded too.
TAKE_BYTES = 1024 * 1024
NEXT_TASK = timedelta(milliseconds=1)

Handler = Callable[[Any, RawValue], "Awaitable[None] | None"]
H = TypeVar("H", bound=Callable[..., Any])


@dataclass(frozen=True)
class _Message:
    name: str
    handler: Handler
    payload: RawValue
    size: int


class Inbox:
    """The queue of signals a case has received and not yet handled (one per run: a run continues as new
    only once it is empty)."""

    def __init__(self) -> None:
        self._inbox: deque[_Message] = deque()
        self._arrived = 0  # signals queued in this run
        self._taken = 0  # of them, handed to their handler
        self._handling = 0  # asynchronous handlers started from the inbox, not finished
        self._queueing: bool | None = None  # BOUNDED_MESSAGE_WORK, asked once per run
        # This workflow task's budget: the task is known by the history's length when it started (the
        # same on replay), and the count and bytes of the messages handled in it.
        self._budget: tuple[int, int, int] = (-1, 0, 0)

    def _queues_messages(self) -> bool:
        if self._queueing is None:
            self._queueing = workflow.patched(BOUNDED_MESSAGE_WORK)
        return self._queueing

    def _spend(self, size: int) -> bool:
        """Whether this workflow task may handle one more message of `size` bytes (and count it)."""
        task = workflow.info().get_current_history_length()
        seen, count, spent = self._budget
        if seen != task:
            count, spent = 0, 0
        if count >= TAKE_PER_TASK or spent >= TAKE_BYTES:
            return False
        self._budget = (task, count + 1, spent + size)
        return True

    def _queue(self, name: str, handler: Handler, payload: RawValue) -> bool:
        """Queue the message unless it can be handled now: nothing queued before it, and budget left."""
        size = payload.payload.ByteSize()
        if not self._inbox and self._spend(size):
            return False
        self._inbox.append(_Message(name, handler, payload, size))
        self._arrived += 1
        return True

    def _messages_settled(self) -> bool:
        """Nothing queued, and no handler started from the queue still running."""
        return not self._inbox and self._handling == 0

    async def _after_earlier_messages(self, recheck: Callable[[], None]) -> None:
        """An update waits until the signals queued before it have been handed to their handlers, then
        `recheck`s (its validator: they may have changed the case). Returns at once, without yielding,
        when none is queued (always, in a case from before the inbox)."""
        if self._taken < self._arrived:
            mark = self._arrived
            await workflow.wait_condition(lambda: self._taken >= mark)
            recheck()

    async def _take_messages(self) -> None:
        """The case's loop over its inbox, for the whole run."""
        while True:
            await workflow.wait_condition(lambda: bool(self._inbox))
            while self._inbox and self._spend(self._inbox[0].size):
                message = self._inbox.popleft()
                self._taken += 1
                try:
                    done = message.handler(self, message.payload)
                except Exception as exc:  # a defect in a handler: refused and recorded, never the case's end
                    self._message_failed(message.name, exc)
                    continue
                if inspect.isawaitable(done):
                    self._handling += 1
                    asyncio.ensure_future(self._finish(message.name, done))
                    # Its first step runs before the next message, as when the SDK ran each handler.
                    await asyncio.sleep(0)
            if self._inbox:
                await workflow.sleep(NEXT_TASK, summary="Take the next messages")

    async def _finish(self, name: str, done: Awaitable[None]) -> None:
        try:
            await done
        except Exception as exc:
            self._message_failed(name, exc)
        finally:
            self._handling -= 1

    @workflow.signal(dynamic=True)
    def unknown_message(self, name: str, args: Sequence[RawValue]) -> None:
        """A signal this case does not take: refused unread, in its turn. Before the inbox the SDK kept such
        a signal in memory, unread, and did nothing; a case from then still does, so it replays."""
        if not self._queues_messages():
            return
        shown = name[:80] + ("…" if len(name) > 80 else "")

        def refuse(wf: Inbox, _payload: RawValue) -> None:
            wf._refuse(shown, "this case takes no message of that name")

        if not self._queue(shown, refuse, args[0] if args else NO_PAYLOAD):
            refuse(self, NO_PAYLOAD)

    def _refuse(self, name: str, reason: str) -> None:
        raise NotImplementedError  # CaseState records it on the timeline

    def _message_failed(self, name: str, exc: Exception) -> None:
        """A handler raised something it should have refused with a reason: the case goes on."""
        raise NotImplementedError  # CaseState records it


def queued(name: str) -> Callable[[H], H]:
    """A signal handler the inbox bounds: handled at once within the task's budget (and always, in a case
    from before the inbox), else queued."""

    def wrap(handler: H) -> H:
        @functools.wraps(handler)
        async def receive(self: Inbox, payload: RawValue = NO_PAYLOAD) -> None:
            if self._queues_messages() and self._queue(name, handler, payload):
                return
            done = handler(self, payload)
            if inspect.isawaitable(done):
                await done

        return receive  # type: ignore[return-value]

    return wrap
