"""`python -m starter deadline`: when is a deadline due, and which days did not count?

    python -m starter deadline --from 2026-12-23 --working-days 10 --nation england-and-wales
    2027-01-11

Errors are one line on stderr (`error: ...`) with exit code 2, so scripts can rely on the shape.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime, time
from typing import Any, NoReturn

from activities.calendar_data import build_snapshot
from domain.calendar import (
    LONDON,
    CalendarRangeError,
    DeadlineUnit,
    Nation,
    end_of_day,
    explain,
)
from starter.arguments import parse_day, parse_nation, whole_number

BARE_DATE_TIME = time(9, 0)  # a bare --from date means the start of an ordinary office day
MAX_LENGTH = 10_000  # beyond this we would be building centuries of holidays for a typo


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, but errors are a single `error: ...` line and exit code 2 (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        fail(message)


def fail(message: str) -> NoReturn:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    raise SystemExit(2)


def parse_from(text: str) -> datetime:
    """A bare date is 09:00 London that day; a datetime without offset is London local time."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), BARE_DATE_TIME, tzinfo=LONDON)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date (YYYY-MM-DD) or an ISO datetime with offset"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=LONDON)


parse_length = whole_number(0, MAX_LENGTH)




def add_parser(subparsers: Any) -> None:
    """Register `deadline` on an argparse subparsers object (sets func=run)."""
    p = subparsers.add_parser(
        "deadline",
        help="compute a deadline's due date",
        description="Compute when a deadline falls due, counting working days by nation.",
    )
    p.add_argument("--from", dest="trigger", type=parse_from, required=True, metavar="DATE[TIME]",
                   help="when it happened: YYYY-MM-DD (09:00 London) or an ISO datetime with offset")
    length = p.add_mutually_exclusive_group(required=True)
    length.add_argument("--working-days", type=parse_length, metavar="N")
    length.add_argument("--calendar-days", type=parse_length, metavar="N")
    length.add_argument("--weeks", type=parse_length, metavar="N")
    p.add_argument("--nation", type=parse_nation, default=Nation.ENGLAND_AND_WALES,
                   help="england-and-wales (default), scotland or northern-ireland")
    p.add_argument("--closure", type=parse_day, action="append", default=[], metavar="YYYY-MM-DD",
                   help="a day the landlord is closed (repeatable)")
    p.add_argument("--explain", action="store_true", help="also list the days skipped and why")
    p.add_argument("--json", action="store_true", help="print a JSON object instead")
    p.set_defaults(func=run)


def _length(args: argparse.Namespace) -> tuple[int, DeadlineUnit]:
    given = [
        (n, unit)
        for n, unit in (
            (args.working_days, DeadlineUnit.WORKING_DAYS),
            (args.calendar_days, DeadlineUnit.CALENDAR_DAYS),
            (args.weeks, DeadlineUnit.WEEKS),
        )
        if n is not None
    ]
    # argparse enforces this already; checked again in case run() is called directly.
    if len(given) != 1:
        fail("give exactly one of --working-days, --calendar-days, --weeks")
    return given[0]


def run(args: argparse.Namespace) -> int:
    try:
        length, unit = _length(args)
    except SystemExit as exc:
        return int(exc.code or 2)
    trigger: datetime = args.trigger
    first = trigger.astimezone(LONDON).year
    # Enough years for the count (about 250 working days a year) plus a roll into the new year.
    last = first + 1 + length // 200 if unit is DeadlineUnit.WORKING_DAYS else first
    last = max([last, *(d.year for d in args.closure)])
    try:
        cal = build_snapshot(args.nation, first, last, closures=args.closure)
        due, skipped = explain(cal, trigger, length, unit)
    except (CalendarRangeError, ValueError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({
            "due_date": due.isoformat(),
            "due_at": end_of_day(due).isoformat(),
            "skipped": [{"day": s.day.isoformat(), "reason": s.reason} for s in skipped],
        }))
        return 0
    print(due.isoformat())
    if args.explain:
        for s in skipped:
            print(f"skipped {s.day.isoformat()} ({s.day:%a}): {s.reason}")
    return 0
