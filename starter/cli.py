"""The command line: file a complaint, tell a case what happened, read where it is, find cases.

Readable output by default, `--json` for machines. Bad arguments exit 2 with one line on stderr;
a refused update or an unknown case exits 1 with one line saying why.

Every signal and update has its own subcommand (starter/messages_cmd.py, flags generated from
the contract's models); `signal NAME --data JSON` and `update NAME --data JSON` remain for
anything else. `list` queries Temporal visibility (starter/list_cmd.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from temporalio.client import WorkflowQueryFailedError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from domain.case import CaseEvent, CaseStatus, Status
from domain.contract import (
    WORKFLOW_TYPE,
    FileComplaint,
    Query,
    Signal,
    Update,
    workflow_id,
)
from domain.encryption import EncryptionConfigError
from starter import (
    calendar_cmd,
    codec_server,
    deadline_cmd,
    ended_cases_cmd,
    list_cmd,
    messages_cmd,
    policy_cmd,
    report_cmd,
    retention_cmd,
    sittings_cmd,
    staff_cmd,
    stuck,
    wording,
)
from starter.arguments import parse_instant
from starter.common import (  # noqa: F401  (re-exported: other modules and tests import these from cli)
    CliError,
    Parser,
    UsageError,
    build,
    case_handle,
    emit,
    load_json,
    send_signal,
    send_update,
)
from starter.connection import Settings, connect
from starter.exiting import leave
from starter.record import merge, record_url, recorded_timeline
from starter.wording import Loc, path_for


# -- output ------------------------------------------------------------------------------------
def render_status(s: CaseStatus) -> str:
    lines = [f"{s.reference}  {s.policy}", f"  stage: {s.stage.value} ({s.status.value})",
             f"  waiting for: {messages_cmd.in_cli_words(s.waiting_for)}"]
    if s.handler:
        lines.append(f"  handler: {s.handler}" + (f"; stage 2: {s.stage2_handler}" if s.stage2_handler else ""))
    lines.append("  deadlines:")
    for d in sorted(s.deadlines, key=lambda d: (d.due_at, d.label)):  # the order they fall due
        if d.met_at is not None:
            state = "met on time" if d.met_on_time else "met late"
        elif d.cancelled:
            state = "no longer needed"
        elif d.breached:
            state = "MISSED"
        elif d.passed_at is not None:
            state = "ended"
        else:
            state = "open"
        ext = f", extended {d.extended_by} wd" if d.extended_by else ""
        lines.append(f"    {d.due_date.isoformat()}  {d.label:<38} {state}{ext}")
    if s.breaches:
        lines.append("  breaches: " + ", ".join(f"{b.label} (due {b.due_date})" for b in s.breaches))
    if s.problems:
        lines.append("  problems: " + "; ".join(messages_cmd.in_cli_words(p) for p in s.problems))
    if s.refused_messages:
        lines.append(f"  refused messages: {s.refused_messages}")
    return "\n".join(lines)


def render_timeline(events: list[CaseEvent]) -> str:
    return "\n".join(f"{e.seq:>4}  {e.at:%Y-%m-%d %H:%M}  {e.stage.value:<9} {e.kind:<26} {e.summary}"
                     for e in events)


# -- commands ----------------------------------------------------------------------------------
QUERY_WAIT = timedelta(seconds=10)  # a case whose worker is away answers no query; say so, do not hang
# How `file`'s flags map onto the FileComplaint's fields, so an error names the flag that was typed.
FILE_FLAGS: dict[Loc, str] = {
    ("resident", "name"): "--resident-name", ("resident", "address"): "--resident-address",
    ("resident", "email"): "--resident-email", ("resident", "phone"): "--resident-phone",
    ("property", "address"): "--property-address", ("property", "postcode"): "--postcode",
    ("property", "nation"): "--nation", ("start_at_stage2",): "--stage2",
}


async def cmd_file(args: argparse.Namespace) -> int:
    if args.from_file:
        data = load_json("@" + args.from_file)
        if not isinstance(data, dict):
            raise UsageError(f"{args.from_file}: the complaint must be a JSON object")
        c = build(FileComplaint, data, lambda loc: f"{args.from_file}: {path_for(loc)}")
    else:
        missing = [f for f in ("reference", "resident_name", "property_address", "nation", "summary")
                   if getattr(args, f) is None]
        if missing:
            raise UsageError("file needs --" + ", --".join(m.replace("_", "-") for m in missing) + " (or --from-file)")
        data = {
            "reference": args.reference, "policy": args.policy,
            "received_at": args.received_at or datetime.now().astimezone(),
            "channel": args.channel,
            "resident": {"name": args.resident_name, "address": args.resident_address, "email": args.resident_email,
                         "phone": args.resident_phone},
            "property": {"address": args.property_address, "postcode": args.postcode or "", "nation": args.nation},
            "summary": args.summary, "desired_outcome": args.desired_outcome or "",
            "start_at_stage2": args.stage2,
        }
        data["resident"] = {k: v for k, v in data["resident"].items() if v is not None}
        if "address" not in data["resident"] and "email" not in data["resident"]:
            # Residents mostly live at the property complained about; without any address the
            # acknowledgement could not go out and the case would wait for contact details.
            postcode = f", {args.postcode}" if args.postcode else ""
            data["resident"]["address"] = f"{args.property_address}{postcode}"
        c = build(FileComplaint, data, wording.named(FILE_FLAGS))
    assert isinstance(c, FileComplaint)
    if c.received_at > datetime.now().astimezone():
        raise UsageError(f"--received-at: {c.received_at.isoformat()} is in the future")
    from domain.policy import PolicyError, load_policy

    try:
        policy = load_policy(c.policy)
    except PolicyError as exc:
        raise UsageError(f"--policy: {exc}") from None
    if c.start_at_stage2 and not policy.escalation.direct_to_stage2:
        raise CliError(f"refused: policy {policy.id} does not allow filing straight into Stage 2; "
                       "file at Stage 1 (the resident asks for a review once Stage 1 has answered)")
    client = await connect(args.settings)
    initials = "".join(part[0] for part in c.resident.name.split() if part)[:3].upper()
    try:
        await client.start_workflow(
            WORKFLOW_TYPE, c, id=workflow_id(c.reference), task_queue=args.settings.task_queue,
            # One reference, one case, for ever: a closed case's reference is not filed again.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"Complaint {c.reference} · resident {initials} · {policy.pinned}",
            static_details=f"Filed {c.received_at:%Y-%m-%d %H:%M} by {c.channel.value}; "
                           f"{c.property.nation.value}; policy {policy.title}",
        )
    except RPCError as exc:
        if exc.status is RPCStatusCode.ALREADY_EXISTS:
            raise CliError(taken(c.reference)) from None
        raise
    except Exception as exc:
        if type(exc).__name__ == "WorkflowAlreadyStartedError":
            raise CliError(taken(c.reference)) from None
        raise
    emit(args, {"reference": c.reference, "workflow_id": workflow_id(c.reference), "policy": policy.pinned},
         f"filed {c.reference} (workflow {workflow_id(c.reference)}, policy {policy.pinned})")
    return 0


def taken(reference: str) -> str:
    return f"a case with reference {reference} already exists or existed; a reference is never reused"


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UsageError(f"--data: the {what} payload must be a JSON object")
    return value


async def cmd_signal(args: argparse.Namespace) -> int:
    return await send_signal(args, args.name, _object(load_json(args.data), args.name))


async def cmd_update(args: argparse.Namespace) -> int:
    return await send_update(args, args.name, _object(load_json(args.data), args.name))


async def cmd_status(args: argparse.Namespace) -> int:
    handle = await case_handle(args)
    try:
        s = await handle.query(Query.STATUS, result_type=CaseStatus, rpc_timeout=QUERY_WAIT)
    except (RPCError, WorkflowQueryFailedError) as exc:
        why = await stuck.not_answering(handle, args.reference, getattr(exc, "message", None) or str(exc))
        raise CliError(why) from None
    desc = await handle.describe()
    if list_cmd.ended_abnormally(desc.status, s.stage.value) and desc.status and desc.close_time:
        # Its own answer is where it stopped; it keeps none of those deadlines now.
        how = desc.status.name.lower().replace("_", " ")
        s = s.model_copy(update={
            "status": Status.ENDED_ABNORMALLY, "next_deadline": None,
            "deadlines": [d.model_copy(update={"cancelled": True}) if d.open else d for d in s.deadlines],
            "waiting_for": f"nothing: the case's workflow was {how} on {desc.close_time:%Y-%m-%d %H:%M} UTC "
                           "(ended abnormally)"})
    emit(args, s, render_status(s))
    return 0


async def cmd_timeline(args: argparse.Namespace) -> int:
    """The case's own timeline, with what the case record holds beside it (see starter/record.py); a case
    whose history Temporal no longer keeps is read from the record alone."""
    url = record_url(args)
    events: list[CaseEvent] | None = None
    try:
        handle = await case_handle(args)
    except CliError:
        if url is None:
            raise
    else:
        try:
            events = await handle.query(Query.TIMELINE, result_type=list[CaseEvent], rpc_timeout=QUERY_WAIT)
        except (RPCError, WorkflowQueryFailedError) as exc:  # e.g. no worker serves its task queue now
            message = getattr(exc, "message", None) or str(exc)
            if url is None:
                raise CliError(f"case {args.reference} cannot answer now: {message}") from None
            print(f"note: case {args.reference} cannot answer now ({message}); showing its case record",
                  file=sys.stderr)
    recorded = None
    if url is not None:
        try:
            recorded = await recorded_timeline(url, args.reference)
        except (OSError, asyncpg.PostgresError) as exc:
            if events is None:
                raise CliError(f"no case with reference {args.reference} in Temporal, and the case record "
                               f"cannot be read: {' '.join(str(exc).split())}") from None
            print(f"note: the case record cannot be read, so this is the case's own timeline only: "
                  f"{' '.join(str(exc).split())}", file=sys.stderr)
    if events is None and recorded is None:
        raise CliError(f"no case with reference {args.reference}")
    events = merge(events, recorded)
    if args.json:
        print(json.dumps([e.model_dump(mode="json") for e in events], indent=2))
    else:
        print(render_timeline(events))
    if recorded is None and events and events[0].seq > 1:
        # The case keeps its newest events only (TIMELINE_KEPT_BYTES); the record has them all.
        print(f"note: events 1 to {events[0].seq - 1} are in the case record (set COMPLAINTS_DATABASE_URL "
              "to show them)", file=sys.stderr)
    return 0


# -- parser ------------------------------------------------------------------------------------
def parser() -> Parser:
    p = Parser(prog="python -m starter", description="Complaints procedure engine: operators' command line")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    def command(name: str, func, help: str, reference: bool = True) -> Parser:
        c = sub.add_parser(name, help=help)
        if reference:
            c.add_argument("reference", help="the complaint reference, e.g. CMP-2026-0001")
        c.add_argument("--json", action="store_true", help="machine-readable output")
        c.set_defaults(func=func)
        return c

    f = command("file", cmd_file, "file a new complaint (starts its case)", reference=False)
    f.add_argument("--from-file", help="a JSON file holding the FileComplaint")
    f.add_argument("--reference")
    f.add_argument("--policy", default="hos-code-2024")
    f.add_argument("--received-at", type=parse_instant, metavar="ISO-DATETIME",
                   help="when the complaint was made, with UTC offset (e.g. 2026-12-01T09:30:00+00:00); default now")
    f.add_argument("--channel", default="phone", choices=["phone", "email", "letter", "web", "in_person",
                                                           "social_media"])
    f.add_argument("--resident-name")
    f.add_argument("--resident-address", help="postal address for letters (default: the property's, when no --resident-email)")
    f.add_argument("--resident-email")
    f.add_argument("--resident-phone")
    f.add_argument("--property-address")
    f.add_argument("--postcode")
    f.add_argument("--nation", choices=["england-and-wales", "scotland", "northern-ireland"])
    f.add_argument("--summary")
    f.add_argument("--desired-outcome")
    f.add_argument("--stage2", action="store_true", help="file straight into Stage 2 (where the policy allows)")

    # contact, extend, respond, review-request, findings, ...: one per signal and update.
    messages_cmd.add_parsers(sub)

    s = command("signal", cmd_signal, "send any signal with a JSON payload")
    s.add_argument("name", choices=[x.value for x in Signal])
    s.add_argument("--data", default="{}", help="JSON text, or @file.json")
    u = command("update", cmd_update, "send any update with a JSON payload; prints whether it was accepted")
    u.add_argument("name", choices=[x.value for x in Update])
    u.add_argument("--data", default="{}", help="JSON text, or @file.json")

    command("status", cmd_status, "where the case is: stage, deadlines, breaches")
    t = command("timeline", cmd_timeline, "every event of the case and its case record, in order")
    t.add_argument("--database-url", help="the case record (default: COMPLAINTS_DATABASE_URL; without one, "
                   "only the case's own events)")
    list_cmd.add_parser(sub)
    deadline_cmd.add_parser(sub)
    policy_cmd.add_parser(sub)
    calendar_cmd.add_parser(sub)
    sittings_cmd.add_parser(sub)
    staff_cmd.add_parser(sub)
    report_cmd.add_parser(sub)
    retention_cmd.add_parser(sub)
    ended_cases_cmd.add_parser(sub)
    codec_server.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    code = _run(argv)
    if argv is None:
        leave(code)  # run as a program (see starter/exiting.py)
    return code


def _run(argv: list[str] | None) -> int:
    args = parser().parse_args(argv)
    try:
        args.settings = Settings.from_env()
        result = args.func(args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result or 0)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (CliError, EncryptionConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except RPCError as exc:  # anything the server refused that a command did not name more precisely
        print(f"error: Temporal refused the request: {' '.join(exc.message.split())}", file=sys.stderr)
        return 1
    except RuntimeError as exc:
        if "connect" in str(exc).lower():
            print(f"error: cannot reach Temporal at {args.settings.temporal_address}: {exc}", file=sys.stderr)
            return 1
        raise
