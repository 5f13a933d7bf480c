"""`python -m starter sittings`: the review panel's set dates, which cases are booked onto.

    python -m starter sittings add --landlord Optivo --date 2027-01-20 --capacity 6
    added: Optivo review panel sits on Wednesday 2027-01-20 (capacity 6, the resident may attend)

    python -m starter sittings remove --landlord Optivo --date 2027-01-20

The rows live in `panel_sittings`; the workflow's booking activity takes the first sitting with room
that the policy allows. Adding the same landlord and date again changes nothing. A sitting with cases
booked on it is not removed (exit 1, naming them): no case is left booked on nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import date, datetime
from typing import Any

import asyncpg
from pydantic import BaseModel

from domain.calendar import LONDON
from domain.policy import PolicyError, ReviewKind, available_policies, load_policy
from starter.arguments import parse_day, whole_number
from starter.connection import Settings

MAX_CAPACITY = 100  # cases one sitting can hear; more is a typo, not a panel


class Sitting(BaseModel):
    id: int
    landlord: str
    sits_on: date
    capacity: int
    attendance_possible: bool
    booked: int = 0


def panel_landlords() -> list[str]:
    """Landlords whose policy reviews complaints at a panel: only they have sittings."""
    found: set[str] = set()
    for pid in available_policies():
        try:
            policy = load_policy(pid)
        except PolicyError:
            continue  # a broken policy file is the policy tests' business, not this command's
        if policy.stage2.kind is ReviewKind.REVIEW_PANEL:
            found.add(policy.landlord)
    return sorted(found)


def today_in_london() -> date:
    return datetime.now(LONDON).date()


# -- the case record -------------------------------------------------------------------------
async def add_sitting(
    conn: asyncpg.Connection, landlord: str, sits_on: date, capacity: int, attendance_possible: bool
) -> tuple[Sitting, bool]:
    """The sitting, and whether this call added it (False: it was there already, unchanged)."""
    row = await conn.fetchrow(
        "INSERT INTO panel_sittings (landlord, sits_on, capacity, attendance_possible)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (landlord, sits_on) DO NOTHING"
        " RETURNING id, landlord, sits_on, capacity, attendance_possible",
        landlord,
        sits_on,
        capacity,
        attendance_possible,
    )
    if row is not None:
        return Sitting(**dict(row)), True
    existing = await conn.fetchrow(
        "SELECT id, landlord, sits_on, capacity, attendance_possible FROM panel_sittings"
        " WHERE landlord = $1 AND sits_on = $2",
        landlord,
        sits_on,
    )
    assert existing is not None  # the conflict was on this very key
    return Sitting(**dict(existing)), False


async def list_sittings(conn: asyncpg.Connection, landlord: str | None = None) -> list[Sitting]:
    rows = await conn.fetch(
        """
        SELECT p.id, p.landlord, p.sits_on, p.capacity, p.attendance_possible, count(b.reference) AS booked
        FROM panel_sittings p LEFT JOIN panel_bookings b ON b.sitting_id = p.id
        WHERE $1::text IS NULL OR p.landlord = $1
        GROUP BY p.id ORDER BY p.sits_on, p.landlord
        """,
        landlord,
    )
    return [Sitting(**dict(r)) for r in rows]


class SittingBooked(Exception):
    """The sitting has cases booked on it: removing it would leave them booked on nothing."""

    def __init__(self, references: list[str]) -> None:
        super().__init__(", ".join(references))
        self.references = references


async def remove_sitting(conn: asyncpg.Connection, landlord: str, sits_on: date) -> Sitting | None:
    """Remove a sitting no case is booked on; None if there is no such sitting. A booked one is refused
    (SittingBooked): its cases wait on it, and moving them is the cases' business, not this table's."""
    async with conn.transaction():
        row = await conn.fetchrow(
            "SELECT id, landlord, sits_on, capacity, attendance_possible FROM panel_sittings"
            " WHERE landlord = $1 AND sits_on = $2 FOR UPDATE", landlord, sits_on)
        if row is None:
            return None
        booked = [r["reference"] for r in await conn.fetch(
            "SELECT reference FROM panel_bookings WHERE sitting_id = $1 ORDER BY reference", row["id"])]
        if booked:
            raise SittingBooked(booked)
        try:
            await conn.execute("DELETE FROM panel_sittings WHERE id = $1", row["id"])
        except asyncpg.ForeignKeyViolationError:  # a case booked it just now
            raise SittingBooked([r["reference"] for r in await conn.fetch(
                "SELECT reference FROM panel_bookings WHERE sitting_id = $1", row["id"])]) from None
    return Sitting(**dict(row))


# -- the command -----------------------------------------------------------------------------

parse_capacity = whole_number(1, MAX_CAPACITY)


def add_parser(subparsers: Any) -> None:
    """Register `sittings add|list|remove` on an argparse subparsers object."""
    p = subparsers.add_parser(
        "sittings",
        help="the review panel's set dates (add, list, remove)",
        description="Review panel sittings: the dates a landlord's panel meets.",
    )
    actions = p.add_subparsers(dest="sittings_action", required=True, parser_class=type(p))
    a = actions.add_parser("add", help="add a sitting (adding it again changes nothing)")
    a.add_argument("--landlord", required=True, help="the landlord as its policy names it, e.g. Optivo")
    a.add_argument(
        "--date",
        dest="day",
        type=parse_day,
        required=True,
        metavar="YYYY-MM-DD",
        help="the day the panel sits; today or later",
    )
    a.add_argument(
        "--capacity",
        type=parse_capacity,
        default=6,
        metavar="N",
        help="how many cases it can hear (default 6)",
    )
    a.add_argument(
        "--no-attendance",
        dest="attendance",
        action="store_false",
        help="residents cannot attend this sitting (a case whose resident asks to attend moves on)",
    )
    a.add_argument("--json", action="store_true", help="print a JSON object instead")
    a.set_defaults(func=run, sittings_add=True)
    ls = actions.add_parser("list", help="the sittings, with how many cases each has booked")
    ls.add_argument("--landlord", help="only this landlord's")
    ls.add_argument("--json", action="store_true", help="print a JSON array instead")
    ls.set_defaults(func=run, sittings_add=False)
    rm = actions.add_parser("remove", help="remove a sitting no case is booked on")
    rm.add_argument("--landlord", required=True, help="the landlord as its policy names it, e.g. Optivo")
    rm.add_argument("--date", dest="day", type=parse_day, required=True, metavar="YYYY-MM-DD",
                    help="the day of the sitting to remove")
    rm.add_argument("--json", action="store_true", help="print a JSON object instead")
    rm.set_defaults(func=run, sittings_add=False, sittings_remove=True)


def _error(message: str, code: int) -> int:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return code


def _landlord(given: str) -> str | None:
    """The landlord's name as its policy spells it, or None if no panel policy names it."""
    for name in panel_landlords():
        if name.casefold() == given.strip().casefold():
            return name
    return None


def run(args: argparse.Namespace) -> int:
    settings: Settings = getattr(args, "settings", None) or Settings.from_env()
    landlord: str | None = None
    if args.landlord is not None:
        landlord = _landlord(args.landlord)
        if landlord is None:
            known = ", ".join(panel_landlords()) or "none"
            return _error(
                f"--landlord: no policy with a review panel names {args.landlord!r} (known: {known})", 2
            )
    if args.sittings_add:
        today = today_in_london()
        if args.day < today:
            return _error(f"--date: {args.day} is in the past (today is {today} in London)", 2)
    if not settings.database_url:
        return _error("COMPLAINTS_DATABASE_URL is not set: the sittings live in the case record", 1)
    try:
        return asyncio.run(_run(args, settings.database_url, landlord))
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return _error(f"cannot use the case record (COMPLAINTS_DATABASE_URL): {exc}", 1)


def _describe(s: Sitting) -> str:
    attend = "the resident may attend" if s.attendance_possible else "no attendance"
    when = f"{s.sits_on:%A} {s.sits_on.isoformat()}"
    return f"{s.landlord} review panel sits on {when} (capacity {s.capacity}, {attend})"


async def _run(args: argparse.Namespace, url: str, landlord: str | None) -> int:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        if getattr(args, "sittings_remove", False):
            assert landlord is not None  # --landlord is required for remove
            return await _remove(args, conn, landlord)
        if not args.sittings_add:
            rows = await list_sittings(conn, landlord)
            if args.json:
                print(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
            elif not rows:
                print("no review panel sittings" + (f" for {landlord}" if landlord else ""))
            else:
                for r in rows:
                    attend = "attendance possible" if r.attendance_possible else "no attendance"
                    when = f"{r.sits_on.isoformat()} {r.sits_on:%a}"
                    print(f"{when}  {r.landlord:<12}  booked {r.booked}/{r.capacity}  {attend}")
            return 0
        assert landlord is not None  # --landlord is required for add
        sitting, added = await add_sitting(conn, landlord, args.day, args.capacity, args.attendance)
    finally:
        await conn.close()
    if args.json:
        print(json.dumps({**sitting.model_dump(mode="json", exclude={"booked"}), "added": added}, indent=2))
    elif added:
        print(f"added: {_describe(sitting)}")
    else:
        print(f"already listed, unchanged: {_describe(sitting)}")
    return 0


async def _remove(args: argparse.Namespace, conn: asyncpg.Connection, landlord: str) -> int:
    try:
        sitting = await remove_sitting(conn, landlord, args.day)
    except SittingBooked as booked:
        n = len(booked.references)
        return _error(f"refused: {n} case{'s are' if n != 1 else ' is'} booked on the {landlord} sitting of "
                      f"{args.day.isoformat()} ({booked}); it stays", 1)
    if sitting is None:
        return _error(f"no {landlord} sitting on {args.day.isoformat()} (python -m starter sittings list)", 1)
    if args.json:
        print(json.dumps({**sitting.model_dump(mode="json", exclude={"booked"}), "removed": True}, indent=2))
    else:
        print(f"removed: {_describe(sitting)}")
    return 0
