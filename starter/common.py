"""What every CLI command shares: one-line errors, output, payload building, sending to a case.

Split out of cli.py so that the command modules (messages_cmd, list_cmd, ...) can use it without
importing cli.py, which imports them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

from pydantic import BaseModel, ValidationError
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from domain import search_attributes as sa
from domain.case import CaseEvent
from domain.contract import Query, UpdateResult, workflow_id
from starter.connection import connect
from starter.wording import Loc, explain, flag_for


class CliError(Exception):
    """One line for the user; exit code 1 (an unknown case, a refused update, a bad payload)."""


class UsageError(CliError):
    """A bad command line found after argparse (e.g. a flag required unless --from-file); exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"error: {' '.join(message.split())}", file=sys.stderr)
        raise SystemExit(2)


def emit(args: argparse.Namespace, value: Any, text: str) -> None:
    if getattr(args, "json", False):
        if isinstance(value, BaseModel):
            print(value.model_dump_json(indent=2))
        else:
            print(json.dumps(value, indent=2, default=str))
    else:
        print(text)


def load_json(text_or_path: str) -> Any:
    """JSON text, or `@path` to a JSON file."""
    path = Path(text_or_path[1:]) if text_or_path.startswith("@") else None
    try:
        return json.loads(path.read_text() if path else text_or_path)
    except (FileNotFoundError, IsADirectoryError):
        raise UsageError(f"no such file: {path}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def build(model: type[BaseModel], data: dict[str, Any], name: Callable[[Loc], str] = flag_for) -> BaseModel:
    """Validate through the contract's model, so the CLI refuses exactly what the case would; what it
    refuses is a bad argument (exit 2), named by its flag (`name`) in the CLI's words."""
    try:
        return model.model_validate({k: v for k, v in data.items() if v is not None})
    except ValidationError as exc:
        raise UsageError(explain(exc, name)) from None


async def case_handle(args: argparse.Namespace, *, running: bool = False) -> WorkflowHandle:
    """The case's handle, after checking it exists (and, for messages, that it still runs)."""
    client = await connect(args.settings)
    handle = client.get_workflow_handle(workflow_id(args.reference))
    try:
        desc = await handle.describe()
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            raise CliError(f"no case with reference {args.reference}") from None
        raise
    if desc.status is not WorkflowExecutionStatus.RUNNING and desc.typed_search_attributes.get(
            sa.COMPLAINT_STAGE) is None and re.fullmatch(r"[A-Za-z0-9-]+", args.reference):
        # The newest run never opened a case: a refused filing of a reference that already had one (by a
        # client that allowed the id's reuse). The case is the run that did open, the newest such.
        opened = [wf async for wf in client.list_workflows(f"WorkflowId = '{handle.id}'")
                  if wf.typed_search_attributes.get(sa.COMPLAINT_STAGE) is not None]
        if opened:
            owner = max(opened, key=lambda wf: wf.start_time)
            handle = client.get_workflow_handle(owner.id, run_id=owner.run_id)
            desc = await handle.describe()
    if running and desc.status is not WorkflowExecutionStatus.RUNNING:
        state = desc.status.name.lower() if desc.status else "ended"
        raise CliError(f"case {args.reference} has ended ({state}); it accepts no more messages")
    return handle


def _body(payload: BaseModel | dict[str, Any]) -> Any:
    return payload.model_dump(mode="json", exclude_none=True) if isinstance(payload, BaseModel) else payload


# How long the CLI waits for a case to answer a signal before saying it has not answered yet.
ANSWER_WAIT = timedelta(seconds=10)


async def _refusals(handle: WorkflowHandle, name: str, timeout: timedelta) -> list[CaseEvent]:
    """The case's refusals of `name` so far, from its timeline."""
    events = await handle.query(Query.TIMELINE, result_type=list[CaseEvent], rpc_timeout=timeout)
    return [e for e in events if e.kind == "signal_refused" and e.detail.get("message") == name]


async def send_signal(args: argparse.Namespace, name: str, payload: BaseModel | dict[str, Any]) -> int:
    """Send, then read the case's answer: a signal has no reply of its own, but a case that refuses one
    records why in its timeline as it handles it. A query sent after the signal is answered after the
    case has handled it (the server hands the two to the worker in that order), so a refusal is seen
    here, within ANSWER_WAIT, and exits 1 like a refused update."""
    handle = await case_handle(args, running=True)
    try:
        before = {e.seq for e in await _refusals(handle, name, ANSWER_WAIT)}
    except (RPCError, WorkflowQueryFailedError):
        before = None  # the case cannot answer queries now (e.g. its task is failing); send anyway
    try:
        await handle.signal(name, _body(payload))
    except RPCError as exc:  # e.g. the case ended between the check and the send
        raise CliError(f"{name} not delivered to {args.reference}: {exc.message}") from None
    answered = False
    if before is not None:
        try:
            fresh = [e for e in await _refusals(handle, name, ANSWER_WAIT) if e.seq not in before]
            answered = True
        except (RPCError, WorkflowQueryFailedError):
            fresh = []
        if fresh:
            raise CliError(f"refused: {fresh[0].detail.get('reason') or fresh[0].summary}")
    emit(args, {"reference": args.reference, "signal": name, "sent": True},
         f"sent {name} to {args.reference}" + ("" if answered else
                                                "; the case has not answered yet (see timeline)"))
    return 0


async def send_update(args: argparse.Namespace, name: str, payload: BaseModel | dict[str, Any]) -> int:
    handle = await case_handle(args, running=True)
    try:
        result = await handle.execute_update(name, _body(payload), result_type=UpdateResult)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        raise CliError(f"refused: {getattr(cause, 'message', None) or cause}") from None
    except RPCError as exc:  # the server could not hand the update to the case (e.g. its task is failing)
        raise CliError(f"{name} not delivered to {args.reference}: {exc.message}") from None
    emit(args, result, f"{args.reference}: {result.message}")
    return 0
