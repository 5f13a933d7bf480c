"""A signal refused as unreadable stays refused when its history is replayed.

The worker's codec hands an unreadable signal to its handler as a stand-in the handler refuses
(domain/unreadable.py). Whether a payload can be read depends on the worker's keys: once an operator
adds the key a client had sealed with, a replay would read that signal and act on it, and the case
would no longer match its own history (a non-determinism error, the case stuck again). So the first
refusal leaves a marker in the history (workflow.patched, one id per signal of the run), and on replay
a signal with that marker is refused again, readable or not.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.worker import (
    HandleSignalInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from domain import unreadable

REFUSED_BEFORE = "it could not be read when it arrived"


def _unreadable(args: Any) -> bool:
    return any(isinstance(a, RawValue) and unreadable.reason(a.payload) is not None for a in args)


class _Inbound(WorkflowInboundInterceptor):
    def __init__(self, next: WorkflowInboundInterceptor) -> None:
        super().__init__(next)
        self._signals = 0  # signals handled in this run, the same count on every replay

    async def handle_signal(self, input: HandleSignalInput) -> None:
        if workflow.get_signal_handler(input.signal) is None:
            # A name the case does not know (refused unread by the dynamic handler, workflows/inbox.py):
            # not counted, as before that handler existed, so the markers' numbers stay as recorded.
            await super().handle_signal(input)
            return
        self._signals += 1
        marker = f"unreadable-signal-{self._signals}"
        if _unreadable(input.args):
            workflow.patched(marker)  # records the refusal (a marker event) the first time
        elif workflow.unsafe.is_replaying() and workflow.patched(marker):
            input = dataclasses.replace(input, args=[RawValue(unreadable.stand_in(REFUSED_BEFORE))])
        await super().handle_signal(input)


class UnreadableSignals(Interceptor):
    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return _Inbound
