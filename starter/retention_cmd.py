"""`python -m starter retention`: the retention sweep that removes closed cases' personal data.

    python -m starter retention schedule [--cron "0 2 * * *"]   # create or update the daily schedule
    python -m starter retention run [--as-of YYYY-MM-DD]         # one sweep now; prints what it removed
    python -m starter retention run --dry-run                    # what it would remove; removes nothing
    python -m starter retention status                           # the schedule, its next and last runs

The schedule (id complaints-retention) starts RetentionWorkflow on the task queue the workers
serve, at the cron times in Europe/London. A sweep still running when the next is due makes the
schedule skip that one (overlap policy SKIP): two sweeps would only contend for the same rows.
"""

from __future__ import annotations

import argparse
import re
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any

import asyncpg
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from activities.db import create_pool
from activities.retention import RetentionActivities
from domain.calendar import LONDON
from starter.common import CliError, UsageError, emit
from starter.connection import connect
from starter.record import record_url
from workflows.retention import (
    DEFAULT_CRON,
    SCHEDULE_ID,
    WORKFLOW_TYPE,
    FindCases,
    RetentionSweep,
    SweepResult,
)

TIME_ZONE = "Europe/London"
SWEEP_WORKFLOW_ID = "complaints-retention-sweep"
# A sweep stuck for a day (the database away) gives way to the next day's, rather than being
# skipped for ever by the overlap policy.
SWEEP_TIMEOUT = timedelta(hours=23)


def parse_cron(text: str) -> str:
    # Five fields (minute hour day month weekday); the server checks each field's values.
    if len(text.split()) != 5:
        raise argparse.ArgumentTypeError(f"{text!r} is not a cron expression of 5 fields, e.g. {DEFAULT_CRON!r}")
    return " ".join(text.split())


def parse_day(text: str) -> date:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def add_parser(subparsers: Any) -> None:
    """Register `retention` (schedule, run, status) on an argparse subparsers object."""
    p = subparsers.add_parser("retention", help="remove closed cases' personal data after the retention period",
                              description="The retention sweep and its daily schedule.")
    sub = p.add_subparsers(dest="retention", required=True)

    s = sub.add_parser("schedule", help=f"create or update the schedule {SCHEDULE_ID!r}")
    s.add_argument("--cron", type=parse_cron, default=DEFAULT_CRON,
                   help=f"when to sweep, in {TIME_ZONE} time (default {DEFAULT_CRON!r}: daily at 02:00)")
    s.add_argument("--batch-size", type=int, default=RetentionSweep.model_fields["batch_size"].default,
                   help="cases per activity call")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_schedule)

    r = sub.add_parser("run", help="run one sweep now and print what it removed (needs a running worker)")
    r.add_argument("--as-of", type=parse_day, help="remove cases whose retention ended before this day "
                   "(London midnight; today or earlier); default now")
    r.add_argument("--dry-run", action="store_true",
                   help="only list the cases whose personal data the sweep would remove (reads the case record)")
    r.add_argument("--database-url", help="for --dry-run: the case record (default: COMPLAINTS_DATABASE_URL)")
    r.add_argument("--batch-size", type=int, default=RetentionSweep.model_fields["batch_size"].default)
    r.add_argument("--json", action="store_true", help="machine-readable output")
    r.set_defaults(func=cmd_run)

    t = sub.add_parser("status", help="the schedule: its spec, next runs and recent runs")
    t.add_argument("--json", action="store_true", help="machine-readable output")
    t.set_defaults(func=cmd_status)


def build_schedule(cron: str, task_queue: str, batch_size: int, state: ScheduleState | None = None) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            WORKFLOW_TYPE, RetentionSweep(batch_size=batch_size), id=SWEEP_WORKFLOW_ID, task_queue=task_queue,
            execution_timeout=SWEEP_TIMEOUT, static_summary="Retention sweep: remove closed cases' personal data",
        ),
        spec=ScheduleSpec(cron_expressions=[cron], time_zone_name=TIME_ZONE),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=state or ScheduleState(note=f"cron {cron!r} ({TIME_ZONE})"),
    )


async def ensure_schedule(client: Client, cron: str, task_queue: str,
                          batch_size: int = RetentionSweep.model_fields["batch_size"].default) -> str:
    """Create the schedule, or update it if it exists; returns 'created' or 'updated'."""
    try:
        await client.create_schedule(SCHEDULE_ID, build_schedule(cron, task_queue, batch_size))
        return "created"
    except ScheduleAlreadyRunningError:
        pass

    def update(current: ScheduleUpdateInput) -> ScheduleUpdate:
        # Keep an operator's pause; the note records the cron in the words it was given.
        old = current.description.schedule.state
        state = ScheduleState(note=f"cron {cron!r} ({TIME_ZONE})", paused=old.paused)
        return ScheduleUpdate(schedule=build_schedule(cron, task_queue, batch_size, state))

    await client.get_schedule_handle(SCHEDULE_ID).update(update)
    return "updated"


def _rpc(exc: RPCError) -> CliError:
    return CliError(" ".join(exc.message.split()))


async def cmd_schedule(args: argparse.Namespace) -> int:
    client = await connect(args.settings)
    try:
        what = await ensure_schedule(client, args.cron, args.settings.task_queue, args.batch_size)
    except RPCError as exc:
        raise _rpc(exc) from None
    emit(args, {"schedule_id": SCHEDULE_ID, "result": what, "cron": args.cron, "time_zone": TIME_ZONE,
                "task_queue": args.settings.task_queue},
         f"{what} schedule {SCHEDULE_ID}: {WORKFLOW_TYPE} at cron {args.cron!r} ({TIME_ZONE}) "
         f"on task queue {args.settings.task_queue}, overlap SKIP")
    return 0


def as_of_instant(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=LONDON)


def _check_as_of(day: date | None) -> None:
    # A date to come would remove, now, data whose retention has not ended: the sweep cannot be undone.
    today = datetime.now(LONDON).date()
    if day is not None and day > today:
        raise UsageError(f"--as-of: {day.isoformat()} is after today ({today.isoformat()}); a sweep removes "
                         "personal data only once its retention has ended")


async def dry_run(url: str, as_of: datetime, batch_size: int) -> tuple[list[str], list[str]]:
    """The references the sweep would remove as of `as_of`, and the policies it would skip: the sweep's own
    search (activities/retention.py), page by page, with nothing removed."""
    pool = await create_pool(url, min_size=1, max_size=1)
    try:
        finder = RetentionActivities(pool)
        found: list[str] = []
        skipped: list[str] = []
        cursor: str | None = None
        while True:
            page = await finder.find_cases_past_retention(FindCases(as_of=as_of, after_reference=cursor,
                                                                    limit=batch_size))
            found += page.references
            skipped += [p for p in page.unknown_policies if p not in skipped]
            if len(page.references) < batch_size:
                return found, skipped
            cursor = page.references[-1]
    finally:
        await pool.close()


async def cmd_dry_run(args: argparse.Namespace) -> int:
    url = record_url(args)
    if url is None:
        raise UsageError("--dry-run reads the case record: set COMPLAINTS_DATABASE_URL or give --database-url")
    as_of = as_of_instant(args.as_of) if args.as_of else datetime.now(LONDON)
    try:
        found, skipped = await dry_run(url, as_of, args.batch_size)
    except (OSError, asyncpg.PostgresError) as exc:
        raise CliError(f"cannot read the case record: {' '.join(str(exc).split())}") from None
    lines = [f"dry run as of {as_of:%Y-%m-%d %H:%M %Z}: personal data would be removed from {len(found)} case(s); "
             "nothing was removed"]
    lines += [f"  {ref}" for ref in found]
    if skipped:
        lines.append("would keep, policy file not found (retention period unknown): " + ", ".join(skipped))
    emit(args, {"dry_run": True, "as_of": as_of.isoformat(), "would_remove_count": len(found),
                "would_remove": found, "skipped_unknown_policy": skipped}, "\n".join(lines))
    return 0


async def cmd_run(args: argparse.Namespace) -> int:
    _check_as_of(args.as_of)
    if args.dry_run:
        return await cmd_dry_run(args)
    client = await connect(args.settings)
    sweep = RetentionSweep(as_of=as_of_instant(args.as_of) if args.as_of else None, batch_size=args.batch_size)
    # A manual sweep has an id of its own, so it neither waits for nor blocks the scheduled one.
    wf_id = f"complaints-retention-run-{uuid.uuid4().hex[:8]}"
    try:
        result: SweepResult = await client.execute_workflow(
            WORKFLOW_TYPE, sweep, id=wf_id, task_queue=args.settings.task_queue, result_type=SweepResult,
            execution_timeout=SWEEP_TIMEOUT,
        )
    except RPCError as exc:
        raise _rpc(exc) from None
    lines = [f"retention sweep {wf_id} as of {result.as_of.astimezone(LONDON):%Y-%m-%d %H:%M %Z}: "
             f"personal data removed from {result.removed_count} case(s)"]
    lines += [f"  {ref}" for ref in result.removed]
    if result.removed_count > len(result.removed):
        lines.append(f"  ... and {result.removed_count - len(result.removed)} more")
    if result.skipped_unknown_policy:
        lines.append("kept, policy file not found (retention period unknown): "
                     + ", ".join(result.skipped_unknown_policy))
    emit(args, result.model_dump(mode="json") | {"workflow_id": wf_id}, "\n".join(lines))
    return 0


def describe_dict(d: ScheduleDescription) -> dict[str, Any]:
    spec, action = d.schedule.spec, d.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    return {
        "schedule_id": d.id,
        "workflow": action.workflow,
        "task_queue": action.task_queue,
        "note": d.schedule.state.note,
        "paused": d.schedule.state.paused,
        "time_zone": spec.time_zone_name,
        "cron": list(spec.cron_expressions),
        # The server stores a cron expression as calendar specs; shown so the times can be checked.
        "calendars": [{"minute": _ranges(c.minute), "hour": _ranges(c.hour), "day_of_month": _ranges(c.day_of_month),
                       "month": _ranges(c.month), "day_of_week": _ranges(c.day_of_week)} for c in spec.calendars],
        "overlap": d.schedule.policy.overlap.name,
        "next_runs": [t.isoformat() for t in d.info.next_action_times],
        "recent_runs": [{"scheduled_at": a.scheduled_at.isoformat(), "started_at": a.started_at.isoformat(),
                         "workflow_id": getattr(a.action, "workflow_id", None)} for a in d.info.recent_actions],
        "running": [r.workflow_id for r in d.info.running_actions],
    }


def _ranges(rs: Any) -> str:
    return ",".join(str(r.start) if r.end <= r.start else f"{r.start}-{r.end}" + (f"/{r.step}" if r.step > 1 else "")
                    for r in rs) or "*"


async def cmd_status(args: argparse.Namespace) -> int:
    client = await connect(args.settings)
    try:
        d = await client.get_schedule_handle(SCHEDULE_ID).describe()
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            raise CliError(f"no schedule {SCHEDULE_ID}: create it with `python -m starter retention schedule`") from None
        raise _rpc(exc) from None
    info = describe_dict(d)
    lines = [f"schedule {info['schedule_id']}: {info['workflow']} on task queue {info['task_queue']}"
             + (" (PAUSED)" if info["paused"] else ""),
             f"  spec: {info['note'] or info['cron']}; overlap {info['overlap']}",
             "  next runs: " + (", ".join(f"{datetime.fromisoformat(t).astimezone(LONDON):%Y-%m-%d %H:%M %Z}"
                                          for t in info["next_runs"][:5]) or "none")]
    if info["recent_runs"]:
        lines.append("  recent runs: " + ", ".join(f"{r['started_at']} ({r['workflow_id']})"
                                                   for r in info["recent_runs"]))
    if info["running"]:
        lines.append("  running now: " + ", ".join(info["running"]))
    emit(args, info, "\n".join(lines))
    return 0
