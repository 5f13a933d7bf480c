"""When a case continues as new, and where its procedure rests so that the next run can resume there.

One job: the rest points and the thresholds. A case takes messages for months; Temporal caps one
execution (10,000 signals, 2,000 updates, 51,200 events or 50 MB of history), so the case continues as new
well before, at a rest point (the procedure waits for people, no handler runs, no activity is in flight,
every timeline row is written), carrying its case file (domain/case_file.py). The next run's procedure
skips every step before the rest point it is given and waits there again.

The server says when (`is_continue_as_new_suggested`: history count and size, and updates near their cap,
set by dynamic config, which tests lower); the counts below are this engine's own backstop, kept under
the caps for servers that never suggest. Constants, not settings: the decision must replay identically.
"""

from __future__ import annotations

from enum import StrEnum

from temporalio import workflow

# workflow.patched id: cases whose history predates continue-as-new never continue (they replay as they ran).
CONTINUE_AS_NEW = "continue-as-new"

# Every signal and accepted update is at least one history event (an update two), so a run that stops at
# 3,500 events stays under the 10,000-signal and 2,000-update caps as well as the 51,200-event limit.
MAX_EVENTS = 3_500
MAX_HISTORY_BYTES = 20 * 1024 * 1024  # of the 50 MB limit
# The case file a continued run starts from is one payload: under the server's blob limit (1.5 MiB,
# localstack/server_limits.py) with room for encryption. Its timeline is cut to fit (oldest events first).
MAX_CASE_FILE_BYTES = 1024 * 1024


class Rest(StrEnum):
    """Where the procedure waits for people, in the procedure's order (a later one is further on)."""

    STAGE1_RESPONSE = "stage1.response"
    ESCALATION_WINDOW = "escalation.window"
    ESCALATION_TRIAGE = "escalation.triage"
    CODE_REVIEW = "stage2.code_review"
    MANAGER_REVIEW = "stage2.manager_review"
    PANEL_SITTING = "stage2.panel_sitting"
    PANEL_DECISION = "stage2.panel_decision"
    COOLING_OFF = "ombudsman.cooling_off"
    SURVEY = "closure.survey"


ORDER = {rest.value: i for i, rest in enumerate(Rest)}
STAGE2_RESTS = frozenset({Rest.CODE_REVIEW, Rest.MANAGER_REVIEW, Rest.PANEL_SITTING, Rest.PANEL_DECISION})


def later(resume_at: str | None, rest: Rest) -> bool:
    """Whether a run resuming at `resume_at` starts beyond `rest` (the steps up to it ran before)."""
    return resume_at is not None and ORDER[resume_at] > ORDER[rest.value]


def history_is_long() -> bool:
    info = workflow.info()
    return (info.is_continue_as_new_suggested() or info.get_current_history_length() >= MAX_EVENTS
            or info.get_current_history_size() >= MAX_HISTORY_BYTES)
