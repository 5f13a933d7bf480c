"""The case record's reports, sweeps and signal path can be served by its indexes.

A landlord's record grows for as long as it keeps cases (retention is six years after closure), so a
report for one year or a sweep over the cases awaiting removal must not need the whole table. Here a
record of 40 years (40,000 cases, about 1,000 a year, with their deadlines, timeline, breaches,
extensions and contacts) is built in a real PostgreSQL and every query runs under EXPLAIN ANALYZE
with whole-table reads and hash and merge joins priced out, as a record many times larger would make
the planner choose by itself: no table may then be read sequentially, and no scan may touch more
than a tenth of its table. One year's report needs about 2.5 % of it, so a missing or unusable index
fails this test (as it did for the three added with it: extensions by date, the open cases, the
cases awaiting removal)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from activities.calendar_changes import OPEN_CASES_SQL
from activities.case_record import PROJECT_CASE_SQL
from activities.db import apply_schema, create_pool
from activities.reports import (
    BREACHES_SQL,
    CODE_EXTENSION_LIMIT,
    ON_TIME_KEYS,
    ON_TIME_SQL,
    OTHER_SQL,
    OUTCOMES_SQL,
    RECEIVED_SQL,
    STAGE1_RESPONSE,
    STAGE2_RESPONSE,
    VOLUME_SQL,
    Period,
)
from activities.retention import CASES_PAST_RETENTION_SQL, POLICIES_AWAITING_REMOVAL_SQL
from localstack.postgres import create_database

pytestmark = pytest.mark.asyncio

RECORD_TABLES = ("complaints", "deadlines", "timeline", "breaches", "extensions", "contacts")
CASES = 40_000
LARGEST_SHARE = 0.10
PLANNER_CONFINED = ("enable_seqscan", "enable_hashjoin", "enable_mergejoin")

# Received every 526 minutes from 1987: 1,000 cases a year for 40 years. Every fifth escalated, every
# fiftieth filed at Stage 2; all but the newest 500 closed after 60 days; personal data removed from
# those closed before mid-2025 (so about 1,500 closed cases still hold it).
RECORD_SQL = """
INSERT INTO complaints (reference, workflow_id, policy_id, policy_version, landlord, nation, received_at,
                        channel, stage, status, filed_at_stage2, escalated_at, closed_at, personal_data_removed_at)
SELECT 'C' || lpad(i::text, 6, '0'), 'complaint-C' || lpad(i::text, 6, '0'), 'hos-code-2024', '1',
       CASE WHEN i % 2 = 0 THEN 'connexus' ELSE 'optivo' END, CASE WHEN i % 3 = 0 THEN 'wales' ELSE 'england' END,
       r, 'phone', 'stage-1', CASE WHEN i > $1 - 500 THEN 'open' ELSE 'closed' END, i % 50 = 0,
       CASE WHEN i % 5 = 0 THEN r + interval '30 days' END,
       CASE WHEN i <= $1 - 500 THEN r + interval '60 days' END,
       CASE WHEN i <= $1 - 500 AND r + interval '60 days' < timestamptz '2025-06-01' THEN r + interval '61 days' END
FROM generate_series(1, $1) AS i, LATERAL (SELECT timestamptz '1987-01-01 10:00+00' + i * interval '526 minutes' AS r) t;

INSERT INTO deadlines (reference, key, label, stage, kind, trigger_at, original_due_date, due_date, due_at, met_at)
SELECT reference, k.key, k.key, 'stage-1', 'response', received_at, (received_at + k.due)::date,
       (received_at + k.due)::date, received_at + k.due, received_at + k.met
FROM complaints, (VALUES ('stage1.acknowledgement', interval '5 days', interval '2 days'),
                         ('stage1.response', interval '14 days', interval '12 days')) AS k(key, due, met);
INSERT INTO deadlines (reference, key, label, stage, kind, trigger_at, original_due_date, due_date, due_at, met_at)
SELECT reference, 'stage2.response', 'stage2.response', 'stage-2', 'response', escalated_at,
       (escalated_at + interval '28 days')::date, (escalated_at + interval '28 days')::date,
       escalated_at + interval '28 days', escalated_at + interval '25 days'
FROM complaints WHERE escalated_at IS NOT NULL;

INSERT INTO timeline (reference, seq, at, kind, stage, actor, summary, detail)
SELECT reference, k.seq, received_at + k.after, k.kind, 'stage-1', 'system', k.summary, k.detail::jsonb
FROM complaints, (VALUES (1, interval '0', 'filed', 'Filed', '{}'),
                         (2, interval '12 days', 'stage1_responded', 'Stage 1 response sent: Upheld', '{}'),
                         (3, interval '40 days', 'survey_answered', 'Survey answered',
                          '{"satisfied": true, "score": 4}')) AS k(seq, after, kind, summary, detail)
WHERE k.seq < 3 OR right(reference, 1) = '7';
INSERT INTO timeline (reference, seq, at, kind, stage, actor, summary)
SELECT reference, 4, escalated_at + interval '25 days', 'final_response_sent', 'stage-2', 'system',
       'Final response sent: Not upheld'
FROM complaints WHERE escalated_at IS NOT NULL;

INSERT INTO breaches (reference, deadline_key, stage, label, due_date, recorded_at)
SELECT reference, 'stage1.response', 'stage-1', 'Stage 1 response', (received_at + interval '14 days')::date,
       received_at + interval '15 days'
FROM complaints WHERE right(reference, 1) = '3';

INSERT INTO extensions (reference, seq, deadline_key, working_days, reason, exceptional, old_due_date,
                        new_due_date, at)
SELECT reference, 5, 'stage1.response', 5, 'a survey of the roof', false, (received_at + interval '14 days')::date,
       (received_at + interval '21 days')::date, received_at + interval '10 days'
FROM complaints WHERE right(reference, 1) IN ('1', '9');

INSERT INTO contacts (reference, seq, at, channel, direction, made_by, kind)
SELECT reference, 6, received_at + interval '1 day', 'phone', 'inbound', 'resident', 'update'
FROM complaints WHERE right(reference, 1) = '5';
"""


@pytest_asyncio.fixture(scope="module")
async def record(postgres_admin_url: str) -> AsyncIterator[asyncpg.Pool]:
    """Built once for the module: every test here only reads it (EXPLAIN ANALYZE of the one update
    changes a single open case's row, which no other test looks at)."""
    url = await create_database(postgres_admin_url, f"plans_{uuid.uuid4().hex[:12]}")
    await apply_schema(url)
    pool = await create_pool(url)
    async with pool.acquire() as conn:
        for statement in filter(str.strip, RECORD_SQL.split(";\n")):
            await conn.execute(statement, CASES) if "$1" in statement else await conn.execute(statement)
        # Statistics from every row, not a sample, so the planner's choice is the same on every run.
        await conn.execute("SET default_statistics_target = 10000")
        await conn.execute("ANALYZE")
    yield pool
    await pool.close()


def _scans(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan] if plan.get("Relation Name") in RECORD_TABLES else []
    for child in plan.get("Plans", []):
        found += _scans(child)
    return found


async def _wasteful_scans(conn: asyncpg.Connection, sql: str, *args: Any) -> list[str]:
    """Every scan of a record table that reads it whole or touches more than LARGEST_SHARE of it."""
    # Whole-table reads and hash or merge joins priced out, so the plan shows whether indexes can serve
    # the query: on a record this size the planner may rightly prefer reading a table whole (a few
    # milliseconds), but that choice must be a matter of cost, not of a missing index, or the report
    # slows in step with the record.
    async with conn.transaction():
        for planner_setting in PLANNER_CONFINED:
            await conn.execute(f"SET LOCAL {planner_setting} = off")
        (explained,) = json.loads(await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, *args))
    sizes = {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in RECORD_TABLES}
    wasteful = []
    for scan in _scans(explained["Plan"]):
        table = scan["Relation Name"]
        touched = scan["Actual Loops"] * (scan["Actual Rows"] + scan.get("Rows Removed by Filter", 0)
                                          + scan.get("Rows Removed by Index Recheck", 0))
        if scan["Node Type"] == "Seq Scan" or touched > LARGEST_SHARE * sizes[table]:
            wasteful.append(f"{scan['Node Type']} on {table} ({scan.get('Index Name', 'no index')}): "
                            f"{touched:.0f} of {sizes[table]} rows")
    return wasteful


LIMITS = (CODE_EXTENSION_LIMIT[STAGE1_RESPONSE], CODE_EXTENSION_LIMIT[STAGE2_RESPONSE])
REPORTS = {
    "CH01 received": (RECEIVED_SQL, ()),
    "CH02 on time": (ON_TIME_SQL, ([STAGE1_RESPONSE, STAGE2_RESPONSE], *LIMITS)),
    "annual on time": (ON_TIME_SQL, (list(ON_TIME_KEYS), *LIMITS)),
    "annual volume by month": (VOLUME_SQL, ()),
    "annual breaches": (BREACHES_SQL, ()),
    "annual outcomes": (OUTCOMES_SQL, ()),
    "annual extensions, refusals, referrals, surveys": (OTHER_SQL, ()),
}


@pytest.mark.parametrize("report", list(REPORTS))
@pytest.mark.parametrize("financial", [False, True], ids=["calendar", "financial"])
@pytest.mark.parametrize("landlord", [None, "connexus"], ids=["all-landlords", "one-landlord"])
async def test_a_years_report_reads_that_year(record: asyncpg.Pool, report: str, financial: bool,
                                              landlord: str | None) -> None:
    sql, extra = REPORTS[report]
    period = Period.of(2024, financial=financial)
    async with record.acquire() as conn:
        assert await _wasteful_scans(conn, sql, period.start, period.end, landlord, *extra) == []


async def test_the_calendar_fan_out_reads_only_open_cases(record: asyncpg.Pool) -> None:
    async with record.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM complaints WHERE closed_at IS NULL") == 500
        for nation in (None, "wales"):
            assert await _wasteful_scans(conn, OPEN_CASES_SQL, nation) == []


async def test_the_retention_sweep_reads_only_cases_still_holding_personal_data(record: asyncpg.Pool) -> None:
    as_of = datetime(2026, 12, 1, tzinfo=UTC)
    async with record.acquire() as conn:
        awaiting = await conn.fetchval(
            "SELECT count(*) FROM complaints WHERE closed_at IS NOT NULL AND personal_data_removed_at IS NULL")
        assert 1_000 < awaiting < 2_000
        assert await _wasteful_scans(conn, POLICIES_AWAITING_REMOVAL_SQL, as_of) == []
        for after in (None, "C039000"):
            assert await _wasteful_scans(conn, CASES_PAST_RETENTION_SQL, ["hos-code-2024"], [6], as_of, after,
                                         500) == []


async def test_a_signal_updates_its_case_row_by_key(record: asyncpg.Pool) -> None:
    async with record.acquire() as conn:
        assert await _wasteful_scans(conn, PROJECT_CASE_SQL, "C039900", "stage-1", "open", "h1", None, None,
                                     None, 7) == []
