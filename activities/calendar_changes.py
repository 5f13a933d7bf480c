"""Announced calendar changes in the case record, and the open cases a change concerns.

`load_calendar` (activities/case_record.py) reads these rows into every snapshot; the operators'
command writes them here and then tells the open cases to reload.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import asyncpg
from pydantic import BaseModel

from activities.calendar_data import CalendarChange
from domain.calendar import Nation

# Cases not yet closed, oldest first (complaints_open_idx holds exactly these, in this order). $1 nation or NULL.
OPEN_CASES_SQL = (
    "SELECT workflow_id FROM complaints WHERE closed_at IS NULL AND ($1::text IS NULL OR nation = $1)"
    " ORDER BY received_at, reference"
)


class Recorded(StrEnum):
    NEW = "new"
    # The same change for the same day and nation was already there.
    ALREADY = "already recorded"
    # The opposite change for the day and nation was there; it is gone and this one stands.
    REPLACED = "replaced the opposite change"


class CalendarChangeRow(BaseModel):
    id: int
    day: date
    change: str
    nation: Nation | None
    reason: str
    created_at: datetime


async def record_change(conn: asyncpg.Connection, change: CalendarChange) -> Recorded:
    """Write the change once; the latest word about a (day, nation) is the one that stands.

    Snapshots apply rows in id order, and the unique index allows one row per (day, change, nation),
    so an add after a remove of the same day could never be written after it. Deleting the opposite
    row keeps one row per (day, nation), whose meaning does not depend on order.
    """
    nation = change.nation.value if change.nation else None
    async with conn.transaction():
        deleted = await conn.execute(
            "DELETE FROM calendar_changes WHERE day = $1 AND change <> $2 AND nation IS NOT DISTINCT FROM $3",
            change.day,
            change.change,
            nation,
        )
        inserted = await conn.execute(
            "INSERT INTO calendar_changes (day, change, nation, reason) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT DO NOTHING",
            change.day,
            change.change,
            nation,
            change.reason,
        )
    if not inserted.endswith(" 1"):
        return Recorded.ALREADY
    return Recorded.NEW if deleted.endswith(" 0") else Recorded.REPLACED


async def list_changes(conn: asyncpg.Connection, nation: Nation | None = None) -> list[CalendarChangeRow]:
    """Every change, or those that concern one nation (its own and the all-nations ones)."""
    rows = await conn.fetch(
        "SELECT id, day, change, nation, reason, created_at FROM calendar_changes"
        " WHERE $1::text IS NULL OR nation IS NULL OR nation = $1 ORDER BY day, id",
        nation.value if nation else None,
    )
    return [CalendarChangeRow(**dict(r)) for r in rows]


async def open_case_workflow_ids(conn: asyncpg.Connection, nation: Nation | None) -> list[str]:
    """Workflow ids of the cases not yet closed whose property is in `nation` (None: every nation)."""
    rows = await conn.fetch(OPEN_CASES_SQL, nation.value if nation else None)
    return [r["workflow_id"] for r in rows]
