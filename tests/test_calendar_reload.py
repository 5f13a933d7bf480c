"""The calendar_changed handler's lock: made with the case, so every reload queues on the same one."""

from __future__ import annotations

import asyncio
import inspect

from tests.support import complaint, london
from workflows.case_state import CaseState
from workflows.complaint import ComplaintWorkflow


def test_the_calendar_reload_lock_is_made_with_the_case() -> None:
    # Made in __init__, not lazily in the handler: no handler can ever run without it, and the handler
    # carries no setup of its own (reloads in order are tested in tests/test_calendar_change.py).
    # The case's state is made from the validated complaint (ComplaintWorkflow's own __init__ first
    # reads the raw start argument, which needs a workflow context).
    wf = ComplaintWorkflow.__new__(ComplaintWorkflow)
    CaseState.__init__(wf, complaint("CMP-LOCK", london(2026, 3, 2)))
    assert isinstance(wf._calendar_lock, asyncio.Lock) and not wf._calendar_lock.locked()
    assert "asyncio.Lock(" not in inspect.getsource(ComplaintWorkflow.calendar_changed)
