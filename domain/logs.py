"""Logging: structlog, JSON by default and readable on a terminal; workflow logs come through
the SDK's replay-safe workflow.logger and are rendered by the same processors."""

from __future__ import annotations

import logging
import sys

import structlog

_CONTEXT_KEYS = ("reference", "stage", "event")


def _lift_extra(_, __, event_dict: dict) -> dict:
    # workflow.logger puts our extra={...} on the stdlib record; lift it into the JSON line.
    record = event_dict.get("_record")
    if record is not None:
        for key in _CONTEXT_KEYS:
            if hasattr(record, key):
                event_dict.setdefault(key, getattr(record, key))
        wf = getattr(record, "temporal_workflow", None)
        if isinstance(wf, dict):
            event_dict.setdefault("workflow_id", wf.get("workflow_id"))
    return event_dict


def configure(level: str = "INFO", json: bool | None = None) -> None:
    if json is None:
        json = not sys.stderr.isatty()
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _lift_extra],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
