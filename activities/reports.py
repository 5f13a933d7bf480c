"""Reports from the case record: the Regulator's Tenant Satisfaction Measures CH01 and CH02, and the
figures of the annual complaints performance report. Every figure is an aggregate computed by
PostgreSQL; no case is loaded into Python.

The reporting period is a calendar year (1 January - 31 December) or, with `financial`, the
financial year starting 1 April of the year given (the Regulator's TSM year: --year 2026 is
2026/27, 1 April 2026 - 31 March 2027). Period bounds are midnights in Europe/London, so a
complaint received at 00:30 BST on 1 April belongs to the new year although it is 23:30 UTC.

Which rows count (landlord filter: complaints.landlord, when given):

CH01, complaints received per 1,000 homes:
  Stage 1 received = complaints with received_at in the period and not filed_at_stage2.
  Stage 2 received = complaints whose Stage 2 began in the period: escalated_at in the period
      (the resident's request, whether or not it was later refused), or, for a complaint filed
      directly at Stage 2 with no escalated_at, received_at in the period.
  per 1,000 homes = received / homes * 1000, homes from the caller or from landlord_stock.

CH02, share of complaints responded to within the Code's timescales:
  responded = deadlines rows with key stage1.response (Stage 1) or stage2.response (Stage 2)
      whose met_at (when the response letter went) is in the period; as in the TSM definition,
      the denominator is responses sent in the year, so open cases are not counted yet.
  within the Code's timescales = met_at <= the due instant the Code allows. deadlines.due_at
      already includes every extension; the Code allows at most 10 further working days at
      Stage 1 and 20 at Stage 2 (CODE_EXTENSION_LIMIT). The extensions table is read in order
      (seq) with a running total of working days: while the total stays within the limit, the
      Code's due instant is due_at; once an extension (exceptional or not) takes the total beyond
      it, the Code's due date is the new_due_date of the last extension still within the limit
      (or the original due date if none was), ending at London midnight. So an extension within
      the Code counts as on time; time bought by an exceptional extension beyond it does not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

import asyncpg

from domain.calendar import LONDON

STAGE1_RESPONSE, STAGE2_RESPONSE = "stage1.response", "stage2.response"
# The Complaint Handling Code (2024): the most a response deadline may be extended without leaving it.
CODE_EXTENSION_LIMIT = {STAGE1_RESPONSE: 10, STAGE2_RESPONSE: 20}
ON_TIME_KEYS = ("stage1.acknowledgement", STAGE1_RESPONSE, "stage2.acknowledgement", STAGE2_RESPONSE)
DECISIONS = ("upheld", "partly_upheld", "not_upheld")


class ReportError(ValueError):
    """The report cannot be computed as asked (e.g. no number of homes); the message says why."""


@dataclass(frozen=True)
class Period:
    start: datetime  # inclusive, London midnight (as an aware datetime)
    end: datetime  # exclusive
    label: str
    basis: str  # "calendar" or "financial"
    year: int

    @classmethod
    def of(cls, year: int, financial: bool = False) -> Period:
        if financial:
            return cls(_midnight(date(year, 4, 1)), _midnight(date(year + 1, 4, 1)),
                       f"financial year {year}/{(year + 1) % 100:02d} (1 April {year} to 31 March {year + 1})",
                       "financial", year)
        return cls(_midnight(date(year, 1, 1)), _midnight(date(year + 1, 1, 1)),
                   f"calendar year {year} (1 January to 31 December {year})", "calendar", year)


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=LONDON).astimezone(UTC)


@dataclass
class StageFigures:
    received: int
    per_1000_homes: float | None  # None when the number of homes is unknown (annual report only)
    responded: int
    responded_on_time: int
    on_time_percent: float | None  # None when nothing was responded to in the period


@dataclass
class TsmReport:
    period: str
    basis: str
    year: int
    landlord: str | None
    homes: int | None
    homes_source: str  # "given", "landlord_stock", or "unknown" (then homes_missing says what to give)
    stage1: StageFigures
    stage2: StageFigures
    homes_missing: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- SQL -------------------------------------------------------------------------------------------
# $1 period start, $2 period end, $3 landlord or NULL. Written so each side can use its index.
RECEIVED_SQL = """
SELECT count(*) FILTER (WHERE NOT filed_at_stage2 AND received_at >= $1 AND received_at < $2) AS stage1,
       count(*) FILTER (WHERE coalesce(escalated_at, CASE WHEN filed_at_stage2 THEN received_at END) >= $1
                          AND coalesce(escalated_at, CASE WHEN filed_at_stage2 THEN received_at END) < $2)
           AS stage2
FROM complaints
WHERE ($3::text IS NULL OR landlord = $3)
  AND ((received_at >= $1 AND received_at < $2) OR (escalated_at >= $1 AND escalated_at < $2))
"""

# The Code's due instant for each deadline met in the period; $4 keys, $5 Stage 1 limit, $6 Stage 2 limit.
CODE_DUE_SQL = """
SELECT d.reference, d.key, d.met_at,
       CASE WHEN x.total IS NULL OR x.total <= lim.days THEN d.due_at
            ELSE (coalesce(x.last_within, d.original_due_date) + 1)::timestamp AT TIME ZONE 'Europe/London'
       END AS code_due_at
FROM deadlines d
JOIN complaints c ON c.reference = d.reference
CROSS JOIN LATERAL (SELECT CASE d.key WHEN 'stage1.response' THEN $5::int
                                      WHEN 'stage2.response' THEN $6::int ELSE 0 END AS days) lim
LEFT JOIN LATERAL (
    SELECT max(running) AS total, max(new_due_date) FILTER (WHERE running <= lim.days) AS last_within
    FROM (SELECT e.new_due_date, sum(e.working_days) OVER (ORDER BY e.seq) AS running
          FROM extensions e WHERE e.reference = d.reference AND e.deadline_key = d.key) r
) x ON true
WHERE d.key = ANY($4::text[]) AND d.met_at >= $1 AND d.met_at < $2
  AND ($3::text IS NULL OR c.landlord = $3)
"""

ON_TIME_SQL = f"""
SELECT key, count(*) AS responded, count(*) FILTER (WHERE met_at <= code_due_at) AS on_time
FROM ({CODE_DUE_SQL}) m GROUP BY key
"""

STAGE2_START = "coalesce(escalated_at, CASE WHEN filed_at_stage2 THEN received_at END)"
VOLUME_SQL = f"""
SELECT stage, extract(month FROM at AT TIME ZONE 'Europe/London')::int AS month_no,
       date_trunc('month', at AT TIME ZONE 'Europe/London')::date AS month, count(*) AS n
FROM (
    SELECT 'stage-1' AS stage, received_at AS at FROM complaints
    WHERE NOT filed_at_stage2 AND received_at >= $1 AND received_at < $2 AND ($3::text IS NULL OR landlord = $3)
    UNION ALL
    SELECT 'stage-2', {STAGE2_START} FROM complaints
    WHERE {STAGE2_START} >= $1 AND {STAGE2_START} < $2 AND ($3::text IS NULL OR landlord = $3)
      AND ((received_at >= $1 AND received_at < $2) OR (escalated_at >= $1 AND escalated_at < $2))
) v
GROUP BY 1, 2, 3 ORDER BY 3, 1
"""

BREACHES_SQL = """
SELECT b.deadline_key, min(b.label) AS label, b.stage, count(*) AS n
FROM breaches b JOIN complaints c ON c.reference = b.reference
WHERE b.recorded_at >= $1 AND b.recorded_at < $2 AND ($3::text IS NULL OR c.landlord = $3)
GROUP BY b.deadline_key, b.stage ORDER BY n DESC, b.deadline_key
"""

# The workflow records the decision in the summary of the response event ("...: Partly upheld");
# a detail->>'decision' is preferred where present.
OUTCOMES_SQL = """
SELECT CASE t.kind WHEN 'stage1_responded' THEN 'stage-1' ELSE 'stage-2' END AS stage,
       coalesce(t.detail->>'decision',
                CASE lower(split_part(t.summary, ': ', 2))
                    WHEN 'upheld' THEN 'upheld' WHEN 'partly upheld' THEN 'partly_upheld'
                    WHEN 'not upheld' THEN 'not_upheld' END,
                'not recorded') AS decision,
       count(*) AS n
FROM timeline t JOIN complaints c ON c.reference = t.reference
WHERE t.kind IN ('stage1_responded', 'final_response_sent') AND t.at >= $1 AND t.at < $2
  AND ($3::text IS NULL OR c.landlord = $3)
GROUP BY 1, 2 ORDER BY 1, 2
"""

OTHER_SQL = """
SELECT (SELECT count(*) FROM extensions e JOIN complaints ec ON ec.reference = e.reference
        WHERE e.at >= $1 AND e.at < $2 AND ($3::text IS NULL OR ec.landlord = $3)) AS extensions,
       count(*) FILTER (WHERE t.kind = 'escalation_refused') AS escalations_refused,
       count(*) FILTER (WHERE t.kind = 'ombudsman_referral') AS ombudsman_referrals,
       count(*) FILTER (WHERE t.kind = 'survey_answered') AS surveys,
       count(*) FILTER (WHERE t.kind = 'survey_answered' AND (t.detail->>'satisfied')::boolean) AS satisfied,
       avg((t.detail->>'score')::numeric) FILTER (WHERE t.kind = 'survey_answered') AS mean_score
FROM timeline t JOIN complaints c ON c.reference = t.reference
WHERE t.kind IN ('escalation_refused', 'ombudsman_referral', 'survey_answered')
  AND t.at >= $1 AND t.at < $2 AND ($3::text IS NULL OR c.landlord = $3)
"""


def _args(period: Period, landlord: str | None) -> tuple[datetime, datetime, str | None]:
    return period.start, period.end, landlord


async def received(conn: asyncpg.Pool | asyncpg.Connection, period: Period,
                   landlord: str | None = None) -> tuple[int, int]:
    row = await conn.fetchrow(RECEIVED_SQL, *_args(period, landlord))
    return row["stage1"], row["stage2"]


async def on_time(conn: asyncpg.Pool | asyncpg.Connection, period: Period, landlord: str | None = None,
                  keys: tuple[str, ...] = (STAGE1_RESPONSE, STAGE2_RESPONSE)) -> dict[str, tuple[int, int]]:
    """{deadline key: (responded, on time)} for deadlines met in the period."""
    rows = await conn.fetch(ON_TIME_SQL, *_args(period, landlord), list(keys),
                            CODE_EXTENSION_LIMIT[STAGE1_RESPONSE], CODE_EXTENSION_LIMIT[STAGE2_RESPONSE])
    found = {r["key"]: (r["responded"], r["on_time"]) for r in rows}
    return {k: found.get(k, (0, 0)) for k in keys}


async def stored_homes(conn: asyncpg.Pool | asyncpg.Connection, landlord: str, year: int) -> int | None:
    return await conn.fetchval("SELECT homes FROM landlord_stock WHERE landlord = $1 AND year = $2", landlord, year)


async def store_homes(conn: asyncpg.Pool | asyncpg.Connection, landlord: str, year: int, homes: int) -> None:
    await conn.execute(
        "INSERT INTO landlord_stock (landlord, year, homes) VALUES ($1, $2, $3)"
        " ON CONFLICT (landlord, year) DO UPDATE SET homes = EXCLUDED.homes", landlord, year, homes,
    )


async def resolve_homes(conn: asyncpg.Pool | asyncpg.Connection, period: Period, landlord: str | None,
                        homes: int | None) -> tuple[int, str]:
    if homes is not None:
        return homes, "given"
    if landlord is None:
        raise ReportError("the number of homes is unknown: give --homes N, or --landlord NAME with homes "
                          "stored for the year (report stock)")
    stored = await stored_homes(conn, landlord, period.year)
    if stored is None:
        raise ReportError(f"no homes stored for {landlord!r} in {period.year}: give --homes N or store them "
                          f"with `report stock --landlord {landlord!r} --year {period.year} --homes N`")
    return stored, "landlord_stock"


def _percent(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def _stage(received_n: int, homes: int | None, responded: tuple[int, int]) -> StageFigures:
    per_1000 = None if homes is None else round(1000.0 * received_n / homes, 2)
    return StageFigures(received=received_n, per_1000_homes=per_1000,
                        responded=responded[0], responded_on_time=responded[1],
                        on_time_percent=_percent(responded[1], responded[0]))


async def tsm(conn: asyncpg.Pool | asyncpg.Connection, period: Period, landlord: str | None = None,
              homes: int | None = None, *, require_homes: bool = True) -> TsmReport:
    """CH01 and CH02 for the period (see the module docstring for exactly which rows count). Without
    require_homes, an unknown number of homes leaves CH01's rate out and says what is missing."""
    missing: str | None = None
    try:
        n_homes, source = await resolve_homes(conn, period, landlord, homes)
    except ReportError as exc:
        if require_homes:
            raise
        n_homes, source, missing = None, "unknown", str(exc)
    s1, s2 = await received(conn, period, landlord)
    answered = await on_time(conn, period, landlord)
    return TsmReport(period=period.label, basis=period.basis, year=period.year, landlord=landlord,
                     homes=n_homes, homes_source=source,
                     stage1=_stage(s1, n_homes, answered[STAGE1_RESPONSE]),
                     stage2=_stage(s2, n_homes, answered[STAGE2_RESPONSE]), homes_missing=missing)


@dataclass
class AnnualFigures:
    tsm: TsmReport
    # month (1..12 in period order) -> {stage: count}
    months: list[tuple[date, dict[str, int]]]
    on_time: dict[str, tuple[int, int]]
    breaches: list[dict[str, Any]]
    outcomes: dict[str, dict[str, int]]
    other: dict[str, Any] = field(default_factory=dict)


async def annual(conn: asyncpg.Pool | asyncpg.Connection, period: Period, landlord: str | None = None,
                 homes: int | None = None) -> AnnualFigures:
    # The report is worth having without the homes count: every other figure stands; CH01's rate says why not.
    report = await tsm(conn, period, landlord, homes, require_homes=False)
    args = _args(period, landlord)
    start = period.start.astimezone(LONDON).date()
    months = [(date(start.year + (start.month - 1 + i) // 12, (start.month - 1 + i) % 12 + 1, 1),
               {"stage-1": 0, "stage-2": 0}) for i in range(12)]
    index = {m: counts for m, counts in months}
    for r in await conn.fetch(VOLUME_SQL, *args):
        index[r["month"]][r["stage"]] = r["n"]
    limits = (CODE_EXTENSION_LIMIT[STAGE1_RESPONSE], CODE_EXTENSION_LIMIT[STAGE2_RESPONSE])
    rows = await conn.fetch(ON_TIME_SQL, *args, list(ON_TIME_KEYS), *limits)
    found = {r["key"]: (r["responded"], r["on_time"]) for r in rows}
    outcomes: dict[str, dict[str, int]] = {"stage-1": {}, "stage-2": {}}
    for r in await conn.fetch(OUTCOMES_SQL, *args):
        outcomes[r["stage"]][r["decision"]] = r["n"]
    other = dict(await conn.fetchrow(OTHER_SQL, *args))
    if other["mean_score"] is not None:
        other["mean_score"] = round(float(other["mean_score"]), 1)
    return AnnualFigures(
        tsm=report, months=months, on_time={k: found.get(k, (0, 0)) for k in ON_TIME_KEYS},
        breaches=[dict(r) for r in await conn.fetch(BREACHES_SQL, *args)], outcomes=outcomes, other=other,
    )
