"""The `timeline` command: every event of a case, in order, however long the case.

The case keeps only its newest events (TIMELINE_KEPT_BYTES, workflows/case_state.py), so its query's answer
stays small; every event is in the case record. The command asks the case, then reads the events before
the first it kept from the case record (COMPLAINTS_DATABASE_URL); without a database it prints what the
case kept and says where the rest is.
"""

from __future__ import annotations

import argparse
import json
import sys

import asyncpg

from domain.case import CaseEvent
from domain.contract import Query
from starter.common import CliError, case_handle

EARLIER = ("SELECT seq, at, kind, stage, actor, summary, detail FROM timeline "
           "WHERE reference = $1 AND seq < $2 ORDER BY seq")


async def earlier_events(database_url: str, reference: str, before_seq: int) -> list[CaseEvent]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(EARLIER, reference, before_seq)
    finally:
        await conn.close()
    return [CaseEvent(**{**dict(r), "detail": json.loads(r["detail"])}) for r in rows]


async def whole_timeline(args: argparse.Namespace) -> tuple[list[CaseEvent], str | None]:
    """The case's timeline, and a note when the earlier events could not be read."""
    handle = await case_handle(args)
    events = await handle.query(Query.TIMELINE, result_type=list[CaseEvent])
    first = events[0].seq if events else 1
    if first <= 1:
        return events, None
    url = args.settings.database_url
    if not url:
        return events, (f"events 1 to {first - 1} are in the case record (set COMPLAINTS_DATABASE_URL to "
                        "print them here)")
    try:
        earlier = await earlier_events(url, args.reference, first)
    except (OSError, asyncpg.PostgresError) as exc:
        raise CliError(f"cannot read the earlier events from the case record: {exc}") from None
    return earlier + events, None


def render_timeline(events: list[CaseEvent]) -> str:
    return "\n".join(f"{e.seq:>4}  {e.at:%Y-%m-%d %H:%M}  {e.stage.value:<9} {e.kind:<26} {e.summary}"
                     for e in events)


async def cmd_timeline(args: argparse.Namespace) -> int:
    events, note = await whole_timeline(args)
    if args.json:
        print(json.dumps([e.model_dump(mode="json") for e in events], indent=2))
    else:
        print(render_timeline(events))
    if note:
        print(note, file=sys.stderr)
    return 0
