"""`python -m starter report`: the Regulator's TSM complaint measures and the annual report.

    python -m starter report tsm --year 2026 --landlord Optivo [--homes 2000] [--financial] [--json]
    python -m starter report annual --year 2026 --out report.html [--landlord Optivo] [--homes N] [--volume-svg v.svg]
    python -m starter report stock --landlord Optivo --year 2026 --homes 2000   # store the homes count

Reads the case record at COMPLAINTS_DATABASE_URL (or --database-url). Which rows count is defined
in activities/reports.py. Bad arguments, or a figure that cannot be computed as asked (`tsm` without
homes), exit 2 with one line `error: ...`; an unreachable database exits 1. The annual report is written
without the homes count too, with CH01's rate left out and the reason given in it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import asyncpg

from activities import reports
from starter import report_html
from starter.deadline_cmd import fail

MIN_YEAR, MAX_YEAR = 2000, 2100


def parse_year(text: str) -> int:
    try:
        year = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a year") from None
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise argparse.ArgumentTypeError(f"year must be between {MIN_YEAR} and {MAX_YEAR}, got {year}")
    return year


def parse_homes(text: str) -> int:
    try:
        n = int(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of homes") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {n}")
    return n


def add_parser(subparsers: Any) -> None:
    """Register `report` (tsm, annual, stock) on an argparse subparsers object."""
    p = subparsers.add_parser("report", help="TSM measures CH01/CH02 and the annual complaints report",
                              description="Reports from the case record.")
    sub = p.add_subparsers(dest="report", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--year", type=parse_year, required=True, help="the calendar year, or with --financial "
                       "the financial year starting 1 April of it")
        q.add_argument("--financial", action="store_true", help="1 April to 31 March (the Regulator's TSM year)")
        q.add_argument("--landlord", help="only this landlord's complaints (as named in its policy)")
        q.add_argument("--homes", type=parse_homes, help="homes owned, for CH01 (default: stored for the year)")
        q.add_argument("--database-url", help="default: COMPLAINTS_DATABASE_URL")

    t = sub.add_parser("tsm", help="CH01 and CH02 for a year")
    common(t)
    t.add_argument("--json", action="store_true", help="machine-readable output")
    t.set_defaults(func=run, action=_tsm)

    a = sub.add_parser("annual", help="write the annual complaints performance report (HTML)")
    common(a)
    a.add_argument("--out", type=Path, required=True, help="the HTML file to write")
    a.add_argument("--volume-svg", type=Path, help="also write the volume chart as an SVG file")
    a.set_defaults(func=run, action=_annual)

    s = sub.add_parser("stock", help="store the number of homes a landlord owns in a year")
    s.add_argument("--landlord", required=True)
    s.add_argument("--year", type=parse_year, required=True)
    s.add_argument("--homes", type=parse_homes, required=True)
    s.add_argument("--database-url", help="default: COMPLAINTS_DATABASE_URL")
    s.set_defaults(func=run, action=_stock)


def run(args: argparse.Namespace) -> int:
    url = args.database_url or os.environ.get("COMPLAINTS_DATABASE_URL")
    if not url:
        fail("no database: set COMPLAINTS_DATABASE_URL or give --database-url")
    if getattr(args, "out", None) is not None and not args.out.parent.is_dir():
        fail(f"--out: no such directory: {args.out.parent}")
    try:
        return asyncio.run(_with_connection(url, args))
    except reports.ReportError as exc:
        fail(str(exc))
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"error: cannot read the case record: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1


async def _with_connection(url: str, args: argparse.Namespace) -> int:
    conn = await asyncpg.connect(url)
    try:
        return await args.action(conn, args)
    finally:
        await conn.close()


def _period(args: argparse.Namespace) -> reports.Period:
    return reports.Period.of(args.year, financial=args.financial)


def _pct(v: float | None) -> str:
    return "n/a (none responded to)" if v is None else f"{v:.1f}%"


async def _tsm(conn: asyncpg.Connection, args: argparse.Namespace) -> int:
    r = await reports.tsm(conn, _period(args), args.landlord, args.homes)
    if args.json:
        print(json.dumps(r.as_dict(), indent=2))
        return 0
    print(f"TSM complaints measures, {r.period}")
    print(f"landlord: {r.landlord or 'all landlords in the case record'}; homes: {r.homes:,} ({r.homes_source})")
    print(f"CH01 Stage 1: {r.stage1.received} received = {r.stage1.per_1000_homes:.2f} per 1,000 homes")
    print(f"CH01 Stage 2: {r.stage2.received} received = {r.stage2.per_1000_homes:.2f} per 1,000 homes")
    print(f"CH02 Stage 1: {r.stage1.responded_on_time} of {r.stage1.responded} responded to within the Code's "
          f"timescales = {_pct(r.stage1.on_time_percent)}")
    print(f"CH02 Stage 2: {r.stage2.responded_on_time} of {r.stage2.responded} responded to within the Code's "
          f"timescales = {_pct(r.stage2.on_time_percent)}")
    return 0


async def _annual(conn: asyncpg.Connection, args: argparse.Namespace) -> int:
    figures = await reports.annual(conn, _period(args), args.landlord, args.homes)
    args.out.write_text(report_html.render(figures), encoding="utf-8")
    if args.volume_svg is not None:
        args.volume_svg.write_text(report_html.volume_chart(figures) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({figures.tsm.period})")
    if figures.tsm.homes is None:
        print(f"CH01 per 1,000 homes left out: {figures.tsm.homes_missing}")
    return 0


async def _stock(conn: asyncpg.Connection, args: argparse.Namespace) -> int:
    await reports.store_homes(conn, args.landlord, args.year, args.homes)
    print(f"stored: {args.landlord} had {args.homes:,} homes in {args.year}")
    return 0
