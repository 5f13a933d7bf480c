"""What the CLI reads from the case record (PostgreSQL) beside what the case itself answers.

The case's timeline query tells what the case has done; the case record can hold more, written after
the case ended (the retention sweep's `personal_data_removed`), and, once a case's personal data is
removed, holds the only version of its events that should be shown.
"""

from __future__ import annotations

import argparse
import os

from activities.db import create_pool
from domain.case import CaseEvent, Stage


def record_url(args: argparse.Namespace) -> str | None:
    return getattr(args, "database_url", None) or os.environ.get("COMPLAINTS_DATABASE_URL") or None


async def recorded_timeline(url: str, reference: str) -> tuple[list[CaseEvent], bool] | None:
    """The case record's timeline of `reference` and whether its personal data has been removed; None if
    the record has no such case."""
    pool = await create_pool(url, min_size=1, max_size=1)
    try:
        removed_at = await pool.fetchrow(
            "SELECT personal_data_removed_at FROM complaints WHERE reference = $1", reference)
        if removed_at is None:
            return None
        rows = await pool.fetch(
            "SELECT seq, at, kind, stage, actor, summary, detail FROM timeline WHERE reference = $1 ORDER BY seq",
            reference)
    finally:
        await pool.close()
    events = [CaseEvent(seq=r["seq"], at=r["at"], kind=r["kind"], stage=Stage(r["stage"]), actor=r["actor"],
                        summary=r["summary"], detail=dict(r["detail"] or {})) for r in rows]
    return events, removed_at["personal_data_removed_at"] is not None


def merge(case: list[CaseEvent] | None, record: tuple[list[CaseEvent], bool] | None) -> list[CaseEvent]:
    """Every event either holds, once, in order. Where both hold an event, the case's own copy, unless the
    record has removed the case's personal data: then the record's (scrubbed) copy."""
    by_seq = {e.seq: e for e in case or []}
    if record is not None:
        events, removed = record
        for e in events:
            if removed or e.seq not in by_seq:
                by_seq[e.seq] = e
    return [by_seq[s] for s in sorted(by_seq)]
