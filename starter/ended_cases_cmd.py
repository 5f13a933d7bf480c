"""`python -m starter ended-cases`: find cases whose workflow stopped without closing them, and mark them.

    python -m starter ended-cases schedule [--cron "*/15 * * * *"]   # create or update the schedule
                                                                     # (a worker creates it at start if absent)
    python -m starter ended-cases run                                # one sweep now; prints what it marked

A terminated, timed-out or failed case runs no code, so it cannot say it has stopped: its search
attributes and its case record still show it open. The sweep (workflows/ended_cases.py) marks such a
case's record as ended abnormally, for operators and for retention. The schedule (id
complaints-ended-cases) runs it on the workers' task queue, in Europe/London time, overlap SKIP.
"""

from __future__ import annotations

import argparse
import uuid
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError

from starter.common import CliError, emit
from starter.connection import connect
from starter.retention_cmd import TIME_ZONE, parse_cron
from workflows.ended_cases import (
    DEFAULT_CRON,
    SCHEDULE_ID,
    WORKFLOW_TYPE,
    EndedCasesResult,
    EndedCasesSweep,
)

SWEEP_WORKFLOW_ID = "complaints-ended-cases-sweep"
SWEEP_TIMEOUT = timedelta(minutes=30)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("ended-cases", help="mark cases whose workflow stopped without closing them",
                              description="The ended-cases sweep and its schedule.")
    sub = p.add_subparsers(dest="ended_cases", required=True)
    s = sub.add_parser("schedule", help=f"create or update the schedule {SCHEDULE_ID!r}")
    s.add_argument("--cron", type=parse_cron, default=DEFAULT_CRON,
                   help=f"when to sweep, in {TIME_ZONE} time (default {DEFAULT_CRON!r}: every quarter hour)")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_schedule)
    r = sub.add_parser("run", help="run one sweep now and print the cases it marked (needs a running worker)")
    r.add_argument("--json", action="store_true", help="machine-readable output")
    r.set_defaults(func=cmd_run)


def build_schedule(cron: str, task_queue: str, state: ScheduleState | None = None) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            WORKFLOW_TYPE, EndedCasesSweep(), id=SWEEP_WORKFLOW_ID, task_queue=task_queue,
            execution_timeout=SWEEP_TIMEOUT, static_summary="Ended-cases sweep: mark cases that stopped abnormally",
        ),
        spec=ScheduleSpec(cron_expressions=[cron], time_zone_name=TIME_ZONE),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=state or ScheduleState(note=f"cron {cron!r} ({TIME_ZONE})"),
    )


async def ensure_schedule(client: Client, cron: str, task_queue: str) -> str:
    """Create the schedule, or update it (keeping an operator's pause); returns 'created' or 'updated'."""
    try:
        await client.create_schedule(SCHEDULE_ID, build_schedule(cron, task_queue))
        return "created"
    except ScheduleAlreadyRunningError:
        pass

    def update(current: ScheduleUpdateInput) -> ScheduleUpdate:
        state = ScheduleState(note=f"cron {cron!r} ({TIME_ZONE})", paused=current.description.schedule.state.paused)
        return ScheduleUpdate(schedule=build_schedule(cron, task_queue, state))

    await client.get_schedule_handle(SCHEDULE_ID).update(update)
    return "updated"


async def schedule_unless_present(client: Client, task_queue: str) -> bool:
    """Create the schedule at DEFAULT_CRON if there is none (a worker does at start, so a terminated case
    is always found); an existing one, an operator's cron or pause, is left as it is. True if created."""
    try:
        await client.create_schedule(SCHEDULE_ID, build_schedule(DEFAULT_CRON, task_queue))
        return True
    except ScheduleAlreadyRunningError:
        return False


async def cmd_schedule(args: argparse.Namespace) -> int:
    client = await connect(args.settings)
    try:
        what = await ensure_schedule(client, args.cron, args.settings.task_queue)
    except RPCError as exc:
        raise CliError(" ".join(exc.message.split())) from None
    emit(args, {"schedule_id": SCHEDULE_ID, "result": what, "cron": args.cron, "time_zone": TIME_ZONE},
         f"{what} schedule {SCHEDULE_ID}: {WORKFLOW_TYPE} at cron {args.cron!r} ({TIME_ZONE}), overlap SKIP")
    return 0


async def run_sweep(client: Client, task_queue: str) -> EndedCasesResult:
    # A manual sweep has an id of its own, so it neither waits for nor blocks the scheduled one.
    return await client.execute_workflow(
        WORKFLOW_TYPE, EndedCasesSweep(), id=f"complaints-ended-cases-run-{uuid.uuid4().hex[:8]}",
        task_queue=task_queue, result_type=EndedCasesResult, execution_timeout=SWEEP_TIMEOUT)


async def cmd_run(args: argparse.Namespace) -> int:
    client = await connect(args.settings)
    try:
        result = await run_sweep(client, args.settings.task_queue)
    except RPCError as exc:
        raise CliError(" ".join(exc.message.split())) from None
    lines = [f"ended-cases sweep: {len(result.marked)} case(s) marked as ended abnormally"]
    lines += [f"  {c.reference}  {c.execution_status} {c.ended_at:%Y-%m-%d %H:%M} UTC" for c in result.marked]
    emit(args, result.model_dump(mode="json"), "\n".join(lines))
    return 0
