"""`python -m starter calendar`: announce a bank holiday or closure, and tell the open cases.

    python -m starter calendar add --date 2027-02-17 --reason "One-off bank holiday" \
        --nation england-and-wales
    recorded: add 2027-02-17 for england-and-wales (One-off bank holiday)
    told 50 open cases (1 had already finished)

The change is written to `calendar_changes` first (every calendar snapshot reads it), then every open
case whose nation it concerns gets the `calendar_changed` signal: it reloads its calendar, moves the
deadlines the change touches and records old date, new date and cause. Running the command again is
harmless: the row is written once and a case whose dates do not move records nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities import calendar_changes as store
from activities.calendar_data import CalendarChange
from domain.contract import CalendarChanged, Signal
from starter.arguments import parse_day, parse_nation
from starter.connection import Settings, connect

CONCURRENCY = 50  # signals in flight at once: enough to be quick, few enough not to flood the server
KINDS = ("bank-holiday", "closure")


class CommandError(Exception):
    """A failure that is not the user's arguments: one line, exit code 1."""


@dataclass
class Told:
    told: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _finished(exc: RPCError) -> bool:
    # A case that has ended cannot be signalled, and has no deadlines left to move.
    return exc.status is RPCStatusCode.NOT_FOUND or "already completed" in str(exc).lower()


async def tell_cases(
    client: Client, workflow_ids: list[str], cause: str, concurrency: int = CONCURRENCY
) -> Told:
    """Signal `calendar_changed` to each case, a bounded number at a time."""
    payload = CalendarChanged(cause=cause).model_dump(mode="json")
    gate = asyncio.Semaphore(concurrency)
    result = Told()

    async def tell(wid: str) -> None:
        async with gate:
            try:
                await client.get_workflow_handle(wid).signal(Signal.CALENDAR_CHANGED.value, payload)
            except RPCError as exc:
                if _finished(exc):
                    result.finished.append(wid)
                else:
                    result.failed[wid] = exc.message or str(exc)
                return
            result.told.append(wid)

    await asyncio.gather(*(tell(w) for w in workflow_ids))
    return result


async def apply_change(
    client: Client, database_url: str, change: CalendarChange
) -> tuple[store.Recorded, Told]:
    """Record the change, then tell every open case it concerns. The command's whole work."""
    conn = await _connect_db(database_url)
    try:
        recorded = await store.record_change(conn, change)
        # Read after writing: a case registered from now on loads a calendar that has the change.
        ids = await store.open_case_workflow_ids(conn, change.nation)
    finally:
        await conn.close()
    return recorded, await tell_cases(client, ids, change.reason)


async def _connect_db(url: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(url, timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise CommandError(
            f"cannot reach the case record (COMPLAINTS_DATABASE_URL): {_one_line(exc)}"
        ) from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# -- the command -------------------------------------------------------------------------------


def add_parser(subparsers: Any) -> None:
    """Register `calendar add|remove|list` on an argparse subparsers object."""
    p = subparsers.add_parser(
        "calendar",
        help="announce or withdraw a bank holiday or closure; open cases recompute their deadlines",
        description="Calendar changes that the holidays package does not know (a one-off bank holiday "
        "announced at short notice, a cancelled one, a day the organisation is closed). Open "
        "cases in the nations concerned move the deadlines the change touches.",
    )
    actions = p.add_subparsers(dest="calendar_action", required=True, parser_class=type(p))
    for name, verb in (("add", "make DATE a non-working day"), ("remove", "make DATE a working day again")):
        c = actions.add_parser(name, help=verb)
        c.add_argument("--date", dest="day", type=parse_day, required=True, metavar="YYYY-MM-DD")
        c.add_argument("--reason", required=True, help="why; each moved deadline records it as the cause")
        where = c.add_mutually_exclusive_group()
        where.add_argument(
            "--nation",
            type=parse_nation,
            metavar="NATION",
            help="england-and-wales, scotland or northern-ireland (required for a bank holiday, "
            "unless --all-nations)",
        )
        where.add_argument("--all-nations", action="store_true", help="the change applies in every nation")
        c.add_argument(
            "--kind",
            choices=KINDS,
            default="bank-holiday",
            help="bank-holiday (default) or closure. A closure is recorded for every nation and "
            "every landlord of this case record: calendar_changes has no landlord column yet, "
            "so one landlord's own closures belong in its policy file (closures = [...])",
        )
        c.add_argument(
            "--landlord", metavar="NAME", help="not yet supported for calendar changes (refused; see --kind)"
        )
        c.add_argument("--json", action="store_true", help="print a JSON object instead")
        c.set_defaults(func=run, change=name)
    ls = actions.add_parser("list", help="the recorded changes")
    ls.add_argument("--nation", type=parse_nation, metavar="NATION", help="only those that apply in NATION")
    ls.add_argument("--json", action="store_true", help="print a JSON array instead")
    ls.set_defaults(func=run, change=None)


def _bad(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _fail(message: str) -> int:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return 1


def _change_from(args: argparse.Namespace) -> CalendarChange | str:
    """The change the arguments describe, or why they do not describe one."""
    if args.landlord is not None:
        return (
            "--landlord: calendar changes cannot be limited to one landlord yet (calendar_changes has "
            "no landlord column); put the closure in that landlord's policy file, or leave out --landlord "
            "to record it for every landlord"
        )
    if args.day.weekday() >= 5:
        return (
            f"{args.day} is a {args.day:%A}; weekends are never working days, so there is nothing to change"
        )
    if not args.reason.strip():
        return "--reason must say why"
    if args.kind == "closure":
        if args.nation is not None:
            return (
                "--nation: a closure applies in every nation (leave out --nation, or use --kind bank-holiday)"
            )
        nation = None
    elif args.nation is None and not args.all_nations:
        return "a bank holiday needs --nation NATION or --all-nations"
    else:
        nation = args.nation
    try:
        return CalendarChange(day=args.day, change=args.change, reason=args.reason.strip(), nation=nation)
    except ValueError as exc:
        return _one_line(exc)


def run(args: argparse.Namespace) -> int:
    settings: Settings = getattr(args, "settings", None) or Settings.from_env()
    change: CalendarChange | None = None
    if args.change is not None:
        built = _change_from(args)
        if isinstance(built, str):
            return _bad(built)
        change = built
        if len(change.reason) > 10_000:
            return _bad("--reason is longer than 10000 characters")
    if not settings.database_url:
        return _fail("COMPLAINTS_DATABASE_URL is not set: the calendar changes live in the case record")
    try:
        if change is None:
            return asyncio.run(_list(args, settings.database_url))
        return asyncio.run(_add_or_remove(args, settings, change))
    except CommandError as exc:
        return _fail(str(exc))
    except asyncpg.PostgresError as exc:
        return _fail(f"the case record refused: {_one_line(exc)}")


async def _list(args: argparse.Namespace, url: str) -> int:
    conn = await _connect_db(url)
    try:
        rows = await store.list_changes(conn, args.nation)
    finally:
        await conn.close()
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
    elif not rows:
        print("no calendar changes recorded")
    else:
        for r in rows:
            nation = r.nation.value if r.nation else "all nations"
            print(
                f"{r.day.isoformat()} {r.day:%a}  {r.change:<6}  {nation:<17}  {r.reason}"
                f"  (recorded {r.created_at:%Y-%m-%d %H:%M})"
            )
    return 0


async def _add_or_remove(args: argparse.Namespace, settings: Settings, change: CalendarChange) -> int:
    # Reach Temporal before writing anything, so that a change is not left recorded but untold.
    try:
        client = await connect(settings)
    except RuntimeError as exc:
        raise CommandError(
            f"cannot reach Temporal at {settings.temporal_address}: {_one_line(exc)}"
        ) from None
    recorded, told = await apply_change(client, settings.database_url or "", change)
    where = change.nation.value if change.nation else "every nation"
    summary: dict[str, Any] = {
        "day": change.day.isoformat(),
        "change": change.change,
        "kind": args.kind,
        "nation": change.nation.value if change.nation else None,
        "reason": change.reason,
        "recorded": recorded.value,
        "told": len(told.told),
        "already_finished": len(told.finished),
        "failed": len(told.failed),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        what = f"{change.change} {change.day.isoformat()} for {where}"
        print(f"recorded ({recorded.value}): {what} ({change.reason})")
        finished = f" ({len(told.finished)} had already finished)" if told.finished else ""
        print(f"told {len(told.told)} open cases{finished}")
    if told.failed:
        wid, why = next(iter(told.failed.items()))
        return _fail(
            f"{len(told.failed)} cases could not be told (first: {wid}: {why}); "
            "run the command again, it is safe to repeat"
        )
    return 0
