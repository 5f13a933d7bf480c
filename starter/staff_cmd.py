"""`python -m starter staff list`: who the staff ids in `list`, `status` and the UI are.

    python -m starter staff list [--role case_handler] [--landlord Optivo] [--all] [--json]

Reads the case record's staff register (COMPLAINTS_DATABASE_URL or --database-url): each member's id,
name, role, landlord and how many cases they hold now (open appointments), for choosing whom to
`reassign` a case to.
"""

from __future__ import annotations

import argparse
from typing import Any

import asyncpg
from pydantic import BaseModel

from starter.common import CliError, UsageError, emit
from starter.list_cmd import search_value
from starter.record import record_url

STAFF_SQL = """
SELECT s.id, s.name, s.role, s.landlord, s.active,
       count(c.reference) FILTER (WHERE c.closed_at IS NULL
           AND (c.stage2_handler_id = s.id OR (c.handler_id = s.id AND c.stage2_handler_id IS NULL))) AS open_cases
FROM staff s
LEFT JOIN complaints c ON c.handler_id = s.id OR c.stage2_handler_id = s.id
WHERE ($1::text IS NULL OR s.role = $1) AND ($2::text IS NULL OR s.landlord IN ('*', $2)) AND (s.active OR $3)
GROUP BY s.id ORDER BY s.role, s.id
"""


class StaffRow(BaseModel):
    id: str
    name: str
    role: str
    landlord: str
    active: bool
    open_cases: int  # cases whose handler (or, at Stage 2, reviewer) they are, not yet closed


async def staff(url: str, role: str | None, landlord: str | None, everyone: bool) -> list[StaffRow]:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        return [StaffRow(**dict(r)) for r in await conn.fetch(STAFF_SQL, role, landlord, everyone)]
    finally:
        await conn.close()


def render(rows: list[StaffRow]) -> str:
    if not rows:
        return "no staff"
    head = ("id", "name", "role", "landlord", "open cases")
    cells = [(r.id, r.name + ("" if r.active else " (inactive)"), r.role, "any" if r.landlord == "*" else r.landlord,
              str(r.open_cases)) for r in rows]
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(head)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip()
                     for line in [head, *cells])


async def cmd_list(args: argparse.Namespace) -> int:
    url = record_url(args)
    if url is None:
        raise UsageError("the staff register is in the case record: set COMPLAINTS_DATABASE_URL or give --database-url")
    try:
        rows = await staff(url, args.role, args.landlord, args.all)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise CliError(f"cannot read the case record: {' '.join(str(exc).split())}") from None
    emit(args, [r.model_dump() for r in rows], render(rows))
    return 0


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("staff", help="the staff register: ids, names, roles",
                              description="The staff who handle and review cases.")
    actions = p.add_subparsers(dest="staff_action", required=True, parser_class=type(p))
    ls = actions.add_parser("list", help="staff ids with names, roles and how many open cases each holds")
    ls.add_argument("--role", type=search_value, help="only this role, e.g. case_handler")
    ls.add_argument("--landlord", type=search_value, help="only staff who work for this landlord")
    ls.add_argument("--all", action="store_true", help="include staff no longer active")
    ls.add_argument("--database-url", help="default: COMPLAINTS_DATABASE_URL")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=cmd_list)
