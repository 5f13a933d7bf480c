"""Logging: structlog, JSON by default and readable on a terminal; workflow logs come through
the SDK's replay-safe workflow.logger and are rendered by the same processors.

Every line about a case carries `reference`, `stage` (where known) and `workflow_id`:
- workflow lines: the workflow passes reference and stage as `extra`; the SDK adds the workflow id
  in `temporal_workflow`; `_lift_extra` moves both into the line.
- activity lines: `ActivityLogContext` (a worker interceptor) binds them as structlog context
  variables for the run of each activity, read off the activity's input; `_activity_info` adds the
  workflow id, activity type and attempt from the SDK.

    COMPLAINTS_LOG_LEVEL=DEBUG|INFO|WARNING|ERROR   (default INFO)
    COMPLAINTS_LOG_FORMAT=json|console               (default: console on a terminal, else json)
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import IO, Any

import structlog
from temporalio import activity, workflow
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

# Attributes the workflow sets with extra={...}; "event" would clash with structlog's message key.
_EXTRA_KEYS = {"reference": "reference", "stage": "stage", "event": "case_event"}
FORMATS = ("json", "console")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class LogConfigError(ValueError):
    pass


def _lift_extra(_: Any, __: str, event_dict: dict) -> dict:
    # workflow.logger puts our extra={...} on the stdlib record; lift it into the JSON line.
    record = event_dict.get("_record")
    if record is not None:
        for attr, key in _EXTRA_KEYS.items():
            if hasattr(record, attr):
                event_dict.setdefault(key, getattr(record, attr))
        wf = getattr(record, "temporal_workflow", None)
        if isinstance(wf, dict):
            event_dict.setdefault("workflow_id", wf.get("workflow_id"))
            event_dict.setdefault("run_id", wf.get("run_id"))
    return event_dict


def _activity_info(_: Any, __: str, event_dict: dict) -> dict:
    # Inside an activity the SDK knows which workflow asked for it; say so on every line.
    if activity.in_activity():
        info = activity.info()
        event_dict.setdefault("workflow_id", info.workflow_id)
        event_dict.setdefault("activity", info.activity_type)
        event_dict.setdefault("attempt", info.attempt)
    return event_dict


def case_context(arg: Any) -> dict[str, str]:
    """reference and stage of a case, read off an activity's input (a pydantic model or a plain id)."""
    found: dict[str, str] = {}
    for obj in (arg, getattr(arg, "complaint", None), getattr(arg, "case", None)):
        if obj is None:
            continue
        ref = getattr(obj, "reference", None)
        if isinstance(ref, str):
            found.setdefault("reference", ref)
        stage = getattr(obj, "stage", None)
        if stage is not None:
            found.setdefault("stage", getattr(stage, "value", str(stage)))
    if "reference" in found and "stage" not in found and hasattr(arg, "complaint"):
        found["stage"] = "stage-1"  # a complaint is registered at Stage 1 (see register_complaint)
    return found


class _ActivityContextInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        context = case_context(input.args[0]) if input.args else {}
        # Context variables live in the activity's own task, so two activities never mix them.
        with structlog.contextvars.bound_contextvars(**context):
            return await self.next.execute_activity(input)


class ActivityLogContext(Interceptor):
    """Worker interceptor: binds reference and stage for every line an activity logs."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityContextInbound(next)


def from_env(env: Mapping[str, str] | None = None) -> tuple[str, bool | None]:
    """(level, json) from COMPLAINTS_LOG_LEVEL and COMPLAINTS_LOG_FORMAT; json None means 'decide by tty'."""
    env = os.environ if env is None else env
    level = (env.get("COMPLAINTS_LOG_LEVEL") or "INFO").upper()
    if level not in LEVELS:
        raise LogConfigError(f"COMPLAINTS_LOG_LEVEL={level!r} is not one of {', '.join(LEVELS)}")
    fmt = (env.get("COMPLAINTS_LOG_FORMAT") or "").lower()
    if fmt and fmt not in FORMATS:
        raise LogConfigError(f"COMPLAINTS_LOG_FORMAT={fmt!r} is not one of {', '.join(FORMATS)}")
    return level, (fmt == "json") if fmt else None


def configure(level: str = "INFO", json: bool | None = None, stream: IO[str] | None = None) -> logging.Handler:
    """Route structlog and stdlib logging (SDK, workflow.logger) through one handler; returns it."""
    stream = stream or sys.stderr
    if json is None:
        json = not stream.isatty()
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _activity_info,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _lift_extra],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer],
    )
    # The workflow id etc. go into fields (_lift_extra), not appended to the message text.
    workflow.logger.workflow_info_on_message = False
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    return handler
