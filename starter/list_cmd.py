"""`python -m starter list`: find cases through Temporal visibility (the same search attributes the UI uses).

    python -m starter list --stage stage-2 --open
    python -m starter list --overdue --handler staff-003 --json
    python -m starter list --due-before 2027-01-15 --query     # also print the query it sent

The query is built by a pure function (build_query) so that what the CLI sends can be tested
without a server and pasted into the Temporal UI's search box as it is.
"""

from __future__ import annotations

import argparse
import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from temporalio.client import WorkflowExecution, WorkflowExecutionStatus

from domain import search_attributes as sa
from domain.calendar import LONDON, DeadlineUnit, Nation, due_day
from domain.case import Stage, Status
from domain.contract import WORKFLOW_TYPE
from domain.policy import PolicyError, deadline_rules, load_policy
from starter.common import emit
from starter.connection import connect

DEFAULT_LIMIT = 200


@dataclass(frozen=True)
class ListFilters:
    stage: str | None = None
    status: str | None = None
    overdue: bool | None = None
    due_before: date | None = None
    policy: str | None = None
    handler: str | None = None
    nation: str | None = None
    open: bool = False
    task_queue: str | None = None


def quote(value: str) -> str:
    """A visibility-query string literal. A quote is doubled (standard SQL), so a value can never end
    the literal early and add clauses of its own (e.g. a handler named "x' OR 'a'='a"). Backslashes
    are refused: the query parser reads backslash-quote as an escaped quote, and on the dev server no
    escaping of a backslash matches a stored one. No staff id, policy id or enum value contains one."""
    if "\\" in value or any(ord(ch) < 32 for ch in value):
        raise ValueError(f"{value!r}: backslashes and control characters cannot be searched for")
    return "'" + value.replace("'", "''") + "'"


def search_value(text: str) -> str:
    """argparse type for free-text filters: refuse at once (exit 2) what quote() would refuse."""
    try:
        quote(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def due_before_instant(day: date) -> datetime:
    """The bound for `--due-before D`: midday of D in London, as UTC.

    A deadline due on day X falls due at the end of X, i.e. at the midnight starting X+1
    (domain.calendar.end_of_day). So "due on a day before D" is NextDeadline <= the start of D, and
    any instant inside D separates it from "due on D". Midday, compared with `<`, rather than
    `<= midnight`: the dev server's SQLite visibility never matches a datetime equal to the bound.
    """
    return datetime.combine(day, time(12, 0), tzinfo=LONDON).astimezone(UTC)


# Cases whose workflow stopped without closing them: their search attributes still read as they were.
STOPPED = {WorkflowExecutionStatus.TERMINATED, WorkflowExecutionStatus.TIMED_OUT, WorkflowExecutionStatus.FAILED}
ENDED_ABNORMALLY_QUERY = ("ExecutionStatus IN ('Terminated', 'TimedOut', 'Failed') OR "
                          f"(ExecutionStatus = 'Canceled' AND {sa.COMPLAINT_STAGE.name} != 'closed')")


def ended_abnormally(execution: WorkflowExecutionStatus | None, stage: str | None) -> bool:
    """A case stopped without closing: terminated, timed out, failed, or cancelled (before cancellation
    withdrew a case) while still open."""
    return execution in STOPPED or (execution is WorkflowExecutionStatus.CANCELED and stage != Stage.CLOSED.value)


def build_query(f: ListFilters) -> str:
    clauses = [f"WorkflowType = {quote(WORKFLOW_TYPE)}"]
    status = None if f.status == Status.ENDED_ABNORMALLY.value else f.status
    keyword = [(sa.COMPLAINT_STAGE.name, f.stage), (sa.COMPLAINT_STATUS.name, status),
               (sa.COMPLAINT_POLICY.name, f.policy), (sa.CASE_HANDLER.name, f.handler), (sa.NATION.name, f.nation)]
    clauses += [f"{name} = {quote(value)}" for name, value in keyword if value is not None]
    if f.status == Status.ENDED_ABNORMALLY.value:
        # No case code ran to say so: Temporal's own status of the execution does.
        clauses.append(f"({ENDED_ABNORMALLY_QUERY})")
    if f.overdue is not None:
        clauses.append(f"{sa.OVERDUE.name} = {'true' if f.overdue else 'false'}")
    if f.due_before is not None:
        instant = due_before_instant(f.due_before).strftime("%Y-%m-%dT%H:%M:%SZ")
        clauses.append(f"{sa.NEXT_DEADLINE.name} < {quote(instant)}")
    if f.open:
        clauses.append("ExecutionStatus = 'Running'")
    if f.task_queue is not None:
        clauses.append(f"TaskQueue = {quote(f.task_queue)}")
    return " AND ".join(clauses)


@functools.cache
def _deadline_unit(policy_id: str | None) -> DeadlineUnit | None:
    """The unit the policy's deadlines count in: None when the policy cannot be read here, or mixes
    seconds (compressed test time) with day units, so that the instant alone cannot say its date."""
    try:
        policy = load_policy(policy_id or "")
    except PolicyError:
        return None
    seconds = {rule.unit is DeadlineUnit.SECONDS for _, rule in deadline_rules(policy)}
    if seconds == {True}:
        return DeadlineUnit.SECONDS
    return DeadlineUnit.WORKING_DAYS if seconds == {False} else None


def due_by(instant: datetime, policy_id: str | None) -> str:
    """What `status` shows for the same deadline: the day it is due by (domain.calendar.due_day; a day-unit
    deadline passes at the midnight after its due date), or, in compressed test time, the instant."""
    unit = _deadline_unit(policy_id)
    if unit is DeadlineUnit.SECONDS or unit is None:
        return instant.astimezone(LONDON).strftime("%Y-%m-%d %H:%M:%S")
    return due_day(instant, unit).isoformat()


def row(wf: WorkflowExecution) -> dict[str, Any]:
    attrs = wf.typed_search_attributes
    nxt = attrs.get(sa.NEXT_DEADLINE)
    policy = attrs.get(sa.COMPLAINT_POLICY)
    stopped = ended_abnormally(wf.status, attrs.get(sa.COMPLAINT_STAGE))
    if stopped:
        nxt = None  # it keeps no deadline now, whatever its last search attributes said
    return {
        "reference": wf.id.removeprefix("complaint-"),
        "workflow_id": wf.id,
        "stage": attrs.get(sa.COMPLAINT_STAGE),
        "status": Status.ENDED_ABNORMALLY.value if stopped else attrs.get(sa.COMPLAINT_STATUS),
        "next_deadline": nxt.isoformat() if nxt else None,
        "next_deadline_due_by": due_by(nxt, policy) if nxt else None,
        "handler": attrs.get(sa.CASE_HANDLER),
        "overdue": attrs.get(sa.OVERDUE) and not stopped,
        "policy": attrs.get(sa.COMPLAINT_POLICY),
        "nation": attrs.get(sa.NATION),
        "execution_status": wf.status.name.lower() if wf.status else None,
    }


def render_table(rows: list[dict[str, Any]], count: int) -> str:
    head = ("reference", "stage", "status", "next deadline", "handler", "overdue")
    cells = [(r["reference"], r["stage"] or "-", r["status"] or "-",
              (due_by(datetime.fromisoformat(r["next_deadline"]), r["policy"]) if r["next_deadline"] else "-"),
              r["handler"] or "-", "OVERDUE" if r["overdue"] else "no") for r in rows]
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)) for cell in cells]
    shown = f"{len(rows)} of {count} cases" if count > len(rows) else f"{count} case{'s' if count != 1 else ''}"
    return "\n".join([*lines, shown])


async def run(args: argparse.Namespace) -> int:
    query = build_query(ListFilters(
        stage=args.stage, status=args.status, overdue=args.overdue, due_before=args.due_before,
        policy=args.policy, handler=args.handler, nation=args.nation, open=args.open,
        task_queue=args.task_queue,
    ))
    client = await connect(args.settings)
    count = (await client.count_workflows(query)).count
    rows = [row(wf) async for wf in client.list_workflows(query, limit=args.limit)]
    # The dev server's visibility store cannot ORDER BY a custom attribute, so sort here: soonest first.
    rows.sort(key=lambda r: (r["next_deadline"] is None, r["next_deadline"] or "", r["reference"]))
    if args.query and not args.json:
        print(f"query: {query}")
    emit(args, {"query": query, "count": count, "cases": rows}, render_table(rows, count))
    return 0


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _limit(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= n <= 10_000:
        raise argparse.ArgumentTypeError(f"must be between 1 and 10000, got {n}")
    return n


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("list", help="find cases by stage, status, deadline, policy, handler, nation",
                              description="List cases through a Temporal visibility query on the search attributes.")
    p.add_argument("--stage", choices=[s.value for s in Stage])
    p.add_argument("--status", choices=[s.value for s in Status])
    p.add_argument("--overdue", action=argparse.BooleanOptionalAction, default=None,
                   help="only cases with a missed deadline still unmet (--no-overdue: none)")
    p.add_argument("--due-before", type=_day, metavar="YYYY-MM-DD", help="next deadline falls on a day before this")
    p.add_argument("--policy", type=search_value, help="policy id, e.g. hos-code-2024")
    p.add_argument("--handler", type=search_value, help="staff id of the case handler (the Stage 2 reviewer once at Stage 2)")
    p.add_argument("--nation", choices=[n.value for n in Nation])
    p.add_argument("--open", action="store_true", help="only cases still running")
    p.add_argument("--task-queue", type=search_value, help="only cases on this task queue")
    p.add_argument("--limit", type=_limit, default=DEFAULT_LIMIT, help=f"at most this many rows ({DEFAULT_LIMIT})")
    p.add_argument("--query", action="store_true", help="also print the visibility query sent")
    p.add_argument("--json", action="store_true", help="machine-readable output (includes the query)")
    p.set_defaults(func=run)
