"""The TSM report and the annual report on a hand-built case record, inserted with SQL into a real
PostgreSQL, with every answer worked out by hand below.

Landlord "Northgate Homes", 2,000 homes stored for 2026; one case of "Riverside Homes". Times are
London wall-clock (10:00 unless given). "S1" / "S2" = the stage1.response / stage2.response
deadline: original due date, extensions (working days, running total), when the response was sent.

 ref  received            S1 response                              escalated     S2 response
 C01  2025-11-10          due 11-24, sent 2025-11-20                2026-01-12    due 02-27, sent 02-20 (on time)
 C02  2026-01-15          due 01-29, sent 01-29 23:30 (on time: before London midnight)
 C03  2026-02-03          due 02-17, sent 02-20 (late; breach 02-18)
 C04  2026-03-02          due 03-16, +10 (10) -> 03-30, sent 03-27: on time, within the Code's 10
 C05  2026-04-06          due 04-21, +10 (10) -> 05-06, +5 exceptional (15) -> 05-13, sent 05-12:
                          on time by due_at, but the Code allows to 05-06 -> LATE
 C06  2026-05-11          due 05-26, sent 05-20 (on time)           2026-06-01    due 07-13, +20 (20) -> 08-10,
                                                                                  sent 08-05: on time (20 <= 20)
 C07  2026-06-15 filed directly at Stage 2 (no escalated_at)                      due 07-27, sent 07-31 (late; breach)
 C08  2026-07-01          due 07-15, sent 07-10 (on time)           2026-07-20    due 08-31, +15 (15) -> 09-21,
                                                                                  +10 exceptional (25) -> 10-05,
                                                                                  sent 09-28: Code due 09-21 -> LATE
 C09  2026-09-14          due 09-28, not sent (open; breach 09-29)
 C10  2026-11-02          ack due 11-09 sent 11-11 (late; breach 11-10); due 11-16, sent 11-13 (on time)
 C11  2026-12-21          due 2027-01-11, sent 2027-01-08 (on time, in 2027)
 C12  2027-01-05          due 01-19, sent 01-15 (on time)
 C13  2026-12-31 23:30    open
 C14  2026-04-01 00:30    open (BST: 2026-03-31 23:30 UTC; London says April, so FY 2026/27 and April)
 C15  2027-04-01 00:30    open (BST: 2027-03-31 23:30 UTC; London says FY 2027/28, so outside FY 2026/27)
 R01  2026-05-05 (Riverside)  due 05-19, sent 05-18 (on time)

Calendar year 2026, Northgate, homes 2,000:
  CH01 Stage 1 received: C02 C03 C04 C05 C06 C08 C09 C10 C11 C13 C14 = 11 -> 11/2000*1000 = 5.50
       (C01 received 2025; C07 filed at Stage 2; C12, C15 in 2027)
  CH01 Stage 2 received: C01 (esc 01-12), C06 (esc 06-01), C07 (filed 06-15), C08 (esc 07-20) = 4 -> 2.00
  CH02 Stage 1: responses sent in 2026: C02 C03 C04 C05 C06 C08 C10 = 7 (C01 sent 2025, C11 2027,
       C09 C13 C14 open); on time: C02 C04 C06 C08 C10 = 5 -> 5/7 = 71.4%
  CH02 Stage 2: sent in 2026: C01 C06 C07 C08 = 4; on time C01 C06 = 2 -> 50.0%
Calendar 2026, all landlords, --homes 2500: Stage 1 11 + R01 = 12 -> 4.80; Stage 2 4 -> 1.60;
  CH02 Stage 1 6 of 8 = 75.0%; Stage 2 2 of 4 = 50.0%.
Financial year 2026/27 (1 April 2026 - 31 March 2027), Northgate, stored homes 2,000:
  Stage 1 received: C05 C06 C08 C09 C10 C11 C12 C13 C14 = 9 -> 4.50 (C15 is after the year's end)
  Stage 2 received: C06 C07 C08 = 3 -> 1.50 (C01's escalation was in January 2026)
  CH02 Stage 1: sent in the year C05 C06 C08 C10 C11 C12 = 6, on time all but C05 = 5 -> 83.3%
  CH02 Stage 2: C06 C07 C08 = 3, on time C06 = 1 -> 33.3%
Annual report, calendar 2026, Northgate:
  volume Stage 1 by month: Jan 1, Feb 1, Mar 1, Apr 2 (C05, C14), May 1, Jul 1, Sep 1, Nov 1, Dec 2
  volume Stage 2 by month: Jan 1, Jun 2, Jul 1
  breaches in 2026: Stage 1 response 2 (C03, C09), Stage 2 response 1 (C07), Stage 1 acknowledgement 1 (C10) = 4
  extensions made in 2026: C04 1, C05 2, C06 1, C08 2 = 6
  outcomes Stage 1: upheld C02 C05, partly C03 C06, not upheld C04 C08 C10 -> 2 / 2 / 3
  outcomes Stage 2: upheld C06 (decision in detail JSON), partly C07, not upheld C01 C08 -> 1 / 1 / 2
  surveys: C02 satisfied 8, C03 not satisfied 3 -> 1 of 2, mean 5.5; Ombudsman referrals: C07 -> 1
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from domain.calendar import LONDON

ROOT = Path(__file__).resolve().parent.parent
N, R = "Northgate Homes", "Riverside Homes"
WORDS = {"upheld": "Upheld", "partly_upheld": "Partly upheld", "not_upheld": "Not upheld"}


def at(y: int, m: int, d: int, hh: int = 12, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=LONDON)


def day(text: str) -> date:
    return date.fromisoformat(text)


# reference, landlord, received, filed_at_stage2, escalated_at
CASES: list[tuple[str, str, datetime, bool, datetime | None]] = [
    ("C01", N, at(2025, 11, 10, 10), False, at(2026, 1, 12, 10)),
    ("C02", N, at(2026, 1, 15, 10), False, None),
    ("C03", N, at(2026, 2, 3, 10), False, None),
    ("C04", N, at(2026, 3, 2, 10), False, None),
    ("C05", N, at(2026, 4, 6, 10), False, None),
    ("C06", N, at(2026, 5, 11, 10), False, at(2026, 6, 1, 10)),
    ("C07", N, at(2026, 6, 15, 10), True, None),
    ("C08", N, at(2026, 7, 1, 10), False, at(2026, 7, 20, 10)),
    ("C09", N, at(2026, 9, 14, 10), False, None),
    ("C10", N, at(2026, 11, 2, 10), False, None),
    ("C11", N, at(2026, 12, 21, 10), False, None),
    ("C12", N, at(2027, 1, 5, 10), False, None),
    ("C13", N, at(2026, 12, 31, 23, 30), False, None),
    ("C14", N, at(2026, 4, 1, 0, 30), False, None),
    ("C15", N, at(2027, 4, 1, 0, 30), False, None),
    ("R01", R, at(2026, 5, 5, 10), False, None),
]
# reference, key, original due, [(working days, exceptional, new due, given at)], met_at, decision
Ext = tuple[int, bool, str, datetime]
DEADLINES: list[tuple[str, str, str, list[Ext], datetime | None, str | None]] = [
    ("C01", "stage1.response", "2025-11-24", [], at(2025, 11, 20), "upheld"),
    ("C01", "stage2.response", "2026-02-27", [], at(2026, 2, 20), "not_upheld"),
    ("C02", "stage1.response", "2026-01-29", [], at(2026, 1, 29, 23, 30), "upheld"),
    ("C03", "stage1.response", "2026-02-17", [], at(2026, 2, 20), "partly_upheld"),
    ("C04", "stage1.response", "2026-03-16", [(10, False, "2026-03-30", at(2026, 3, 10))], at(2026, 3, 27),
     "not_upheld"),
    ("C05", "stage1.response", "2026-04-21", [(10, False, "2026-05-06", at(2026, 4, 15)),
                                              (5, True, "2026-05-13", at(2026, 5, 1))], at(2026, 5, 12), "upheld"),
    ("C06", "stage1.response", "2026-05-26", [], at(2026, 5, 20), "partly_upheld"),
    ("C06", "stage2.response", "2026-07-13", [(20, False, "2026-08-10", at(2026, 7, 6))], at(2026, 8, 5), "upheld"),
    ("C07", "stage2.response", "2026-07-27", [], at(2026, 7, 31), "partly_upheld"),
    ("C08", "stage1.response", "2026-07-15", [], at(2026, 7, 10), "not_upheld"),
    ("C08", "stage2.response", "2026-08-31", [(15, False, "2026-09-21", at(2026, 8, 20)),
                                              (10, True, "2026-10-05", at(2026, 9, 15))], at(2026, 9, 28),
     "not_upheld"),
    ("C09", "stage1.response", "2026-09-28", [], None, None),
    ("C10", "stage1.acknowledgement", "2026-11-09", [], at(2026, 11, 11), None),
    ("C10", "stage1.response", "2026-11-16", [], at(2026, 11, 13), "not_upheld"),
    ("C11", "stage1.response", "2027-01-11", [], at(2027, 1, 8), "upheld"),
    ("C12", "stage1.response", "2027-01-19", [], at(2027, 1, 15), "upheld"),
    ("R01", "stage1.response", "2026-05-19", [], at(2026, 5, 18), "upheld"),
]
# reference, deadline, stage, label, due, recorded
BREACHES = [
    ("C03", "stage1.response", "stage-1", "Stage 1 response", "2026-02-17", at(2026, 2, 18, 0, 5)),
    ("C07", "stage2.response", "stage-2", "Stage 2 response", "2026-07-27", at(2026, 7, 28, 0, 5)),
    ("C09", "stage1.response", "stage-1", "Stage 1 response", "2026-09-28", at(2026, 9, 29, 0, 5)),
    ("C10", "stage1.acknowledgement", "stage-1", "Stage 1 acknowledgement", "2026-11-09", at(2026, 11, 10, 0, 5)),
]
# Other timeline events: reference, kind, when, detail
EVENTS: list[tuple[str, str, datetime, dict[str, Any]]] = [
    ("C02", "survey_answered", at(2026, 3, 1), {"satisfied": True, "score": 8}),
    ("C03", "survey_answered", at(2026, 3, 20), {"satisfied": False, "score": 3}),
    ("C07", "ombudsman_referral", at(2026, 9, 1), {"route": "direct"}),
]


async def load(pool: asyncpg.Pool) -> None:
    """The data set above, as the activities would have written it."""
    await pool.executemany(
        "INSERT INTO complaints (reference, workflow_id, policy_id, policy_version, landlord, nation, received_at,"
        " channel, filed_at_stage2, stage, status, escalated_at) VALUES ($1, 'complaint-' || $1, 'hos-code-2024',"
        " '2024.1', $2, 'england-and-wales', $3, 'phone', $4, 'stage-1', 'investigating', $5)",
        CASES,
    )
    seq: dict[str, int] = {}

    def next_seq(ref: str) -> int:
        seq[ref] = seq.get(ref, 0) + 1
        return seq[ref]

    async with pool.acquire() as conn:
        for ref, key, due, exts, met, decision in DEADLINES:
            stage = "stage-1" if key.startswith("stage1") else "stage-2"
            final_due = day(exts[-1][2]) if exts else day(due)
            await conn.execute(
                "INSERT INTO deadlines (reference, key, label, stage, kind, trigger_at, original_due_date, due_date,"
                " due_at, extended_by, met_at) VALUES ($1, $2, $2, $3, 'duty', $4, $5, $6,"
                " ($6::date + 1)::timestamp AT TIME ZONE 'Europe/London', $7, $8)",
                ref, key, stage, at(2020, 1, 1), day(due), final_due, sum(e[0] for e in exts), met,
            )
            old = day(due)
            for wd, exceptional, new, given in exts:
                s = next_seq(ref)
                await conn.execute(
                    "INSERT INTO extensions VALUES ($1, $2, $3, $4, 'more time', $5, $6, $7, $8)",
                    ref, s, key, wd, exceptional, old, day(new), given,
                )
                await conn.execute(
                    "INSERT INTO timeline VALUES ($1, $2, $3, 'deadline_extended', $4, 'handler', 'extended', '{}')",
                    ref, s, given, stage,
                )
                old = day(new)
            if decision is not None:
                kind = "stage1_responded" if stage == "stage-1" else "final_response_sent"
                # The workflow's summary carries the decision; C06's final response has it in detail only.
                in_detail = (ref, key) == ("C06", "stage2.response")
                summary = "Final response sent" if in_detail else f"Response sent: {WORDS[decision]}"
                detail = {"decision": decision} if in_detail else {"deadline": key}  # the pool encodes jsonb
                await conn.execute("INSERT INTO timeline VALUES ($1, $2, $3, $4, $5, 'handler', $6, $7)",
                                   ref, next_seq(ref), met, kind, stage, summary, detail)
        for ref, kind, when, detail in EVENTS:
            await conn.execute("INSERT INTO timeline VALUES ($1, $2, $3, $4, 'closed', 'resident', $4, $5)",
                               ref, next_seq(ref), when, kind, detail)
        await conn.executemany("INSERT INTO breaches VALUES ($1, $2, $3, $4, $5, $6)",
                               [(r, k, s, lbl, day(d), t) for r, k, s, lbl, d, t in BREACHES])
        await conn.execute("INSERT INTO landlord_stock VALUES ($1, 2026, 2000)", N)


def cli(*args: str, db: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COMPLAINTS_DATABASE_URL"}
    if db:
        env["COMPLAINTS_DATABASE_URL"] = db
    return subprocess.run([sys.executable, "-m", "starter", "report", *args], cwd=ROOT, capture_output=True,
                          text=True, env=env, timeout=60)


def tsm_json(db: str, *args: str) -> dict[str, Any]:
    r = cli("tsm", "--json", *args, db=db)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def figures(report: dict[str, Any]) -> tuple:
    s1, s2 = report["stage1"], report["stage2"]
    return (s1["received"], s1["per_1000_homes"], s1["responded"], s1["responded_on_time"], s1["on_time_percent"],
            s2["received"], s2["per_1000_homes"], s2["responded"], s2["responded_on_time"], s2["on_time_percent"])


async def test_tsm_measures_match_the_worked_answers(pool: asyncpg.Pool, db_url: str) -> None:
    await load(pool)
    cal = tsm_json(db_url, "--year", "2026", "--landlord", N)
    assert (cal["basis"], cal["homes"], cal["homes_source"]) == ("calendar", 2000, "landlord_stock")
    assert "1 January to 31 December 2026" in cal["period"]
    assert figures(cal) == (11, 5.5, 7, 5, 71.4, 4, 2.0, 4, 2, 50.0)

    everyone = tsm_json(db_url, "--year", "2026", "--homes", "2,500")
    assert everyone["landlord"] is None and everyone["homes_source"] == "given"
    assert figures(everyone) == (12, 4.8, 8, 6, 75.0, 4, 1.6, 4, 2, 50.0)

    fy = tsm_json(db_url, "--year", "2026", "--financial", "--landlord", N)
    assert fy["basis"] == "financial" and "1 April 2026 to 31 March 2027" in fy["period"]
    assert figures(fy) == (9, 4.5, 6, 5, 83.3, 3, 1.5, 3, 1, 33.3)

    # The readable form names the year's basis and the same figures.
    r = cli("tsm", "--year", "2026", "--financial", "--landlord", N, db=db_url)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == ("TSM complaints measures, financial year 2026/27 "
                                        "(1 April 2026 to 31 March 2027)")
    assert "CH02 Stage 1: 5 of 6 responded to within the Code's timescales = 83.3%" in r.stdout


async def test_annual_report_has_the_charts_and_totals(pool: asyncpg.Pool, db_url: str, tmp_path: Path) -> None:
    await load(pool)
    out, svg = tmp_path / "report.html", tmp_path / "volume.svg"
    r = cli("annual", "--year", "2026", "--landlord", N, "--out", str(out), "--volume-svg", str(svg), db=db_url)
    assert r.returncode == 0, r.stderr
    html = out.read_text()
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", ""), "self-contained: nothing to fetch"
    assert re.findall(r"data-chart='([a-z-]+)'", html) == ["volume", "on-time", "breaches", "outcomes"]

    def figure(name: str) -> str:
        m = re.search(rf"data-figure='{name}'>([^<]*)<", html)
        assert m, name
        return m.group(1)

    assert [figure(f) for f in ("stage1_received", "stage1_per_1000", "stage1_on_time_percent",
                                "stage2_received", "stage2_per_1000", "stage2_on_time_percent")] == [
        "11", "5.50", "71.4%", "4", "2.00", "50.0%"]
    assert [figure(f) for f in ("breaches_total", "extensions", "ombudsman_referrals", "escalations_refused")] == [
        "4", "6", "1", "0"]
    assert "1 of 2 residents who answered the survey were satisfied (mean score 5.5/10)" in html

    # Every bar carries its value in a <title>: read the charts back.
    bars = dict(re.findall(r"<title>([^<:]+): ([\d.]+%?)</title></rect>", html))
    stage1 = {m: bars.get(f"{m}, Stage 1", "0") for m in ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
                                                          "Aug", "Sep", "Oct", "Nov", "Dec")}
    assert stage1 == {"Jan": "1", "Feb": "1", "Mar": "1", "Apr": "2", "May": "1", "Jun": "0", "Jul": "1",
                      "Aug": "0", "Sep": "1", "Oct": "0", "Nov": "1", "Dec": "2"}
    assert {k: v for k, v in bars.items() if k.endswith(", Stage 2") and k[:3] != "Sta" and v != "0"} == {
        "Jan, Stage 2": "1", "Jun, Stage 2": "2", "Jul, Stage 2": "1"}
    assert bars["Stage 1 response"] == "2" and bars["Stage 2 response"] == "1"
    assert bars["Stage 1 acknowledgement"] == "1"
    assert (bars["Stage 1, Upheld"], bars["Stage 1, Partly upheld"], bars["Stage 1, Not upheld"]) == ("2", "2", "3")
    assert (bars["Stage 2, Upheld"], bars["Stage 2, Partly upheld"], bars["Stage 2, Not upheld"]) == ("1", "1", "2")
    assert bars["Stage 1 response (5 of 7)"] == "71.4%" and bars["Stage 2 response (2 of 4)"] == "50%"
    assert bars["Stage 1 acknowledgement (0 of 1)"] == "0%"
    assert svg.read_text().startswith("<svg") and "data-chart='volume'" in svg.read_text()


async def test_the_readmes_annual_report_needs_no_homes(pool: asyncpg.Pool, db_url: str, tmp_path: Path) -> None:
    """Issue 16, point 9: the README's `report annual --year 2026 --out report.html` failed for want of --homes.
    Without the homes count the report is written: every other figure, CH01's rate left out, and why."""
    await load(pool)
    out = tmp_path / "report.html"
    r = cli("annual", "--year", "2026", "--out", str(out), db=db_url)
    assert r.returncode == 0 and not r.stderr, r
    assert r.stdout.splitlines()[1].startswith("CH01 per 1,000 homes left out: the number of homes is unknown"), r
    html = out.read_text()
    figures = dict(re.findall(r"data-figure='([a-z0-9_]+)'>([^<]*)<", html))
    assert (figures["stage1_received"], figures["stage1_per_1000"], figures["stage2_per_1000"]) == ("12", "—", "—")
    assert figures["homes"] == "not known" and "give --homes N" in html


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["tsm", "--year", "2026"], "number of homes is unknown"),
        (["tsm", "--year", "2026", "--landlord", "Nobody"], "no homes stored for 'Nobody' in 2026"),
        (["tsm", "--year", "twenty"], "'twenty' is not a year"),
        (["tsm", "--year", "1066", "--homes", "5"], "between 2000 and 2100"),
        (["tsm", "--year", "2026", "--homes", "0"], "must be more than 0"),
        (["tsm", "--homes", "10"], "--year"),
        (["annual", "--year", "2026", "--homes", "10"], "--out"),
        (["annual", "--year", "2026", "--homes", "10", "--out", "/no/such/dir/r.html"], "no such directory"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(db_url: str, args: list[str], needle: str) -> None:
    r = cli(*args, db=db_url)
    assert r.returncode == 2, r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], r.stderr


def test_no_database_is_one_line() -> None:
    r = cli("tsm", "--year", "2026", "--homes", "10")
    assert r.returncode == 2 and r.stderr.strip() == (
        "error: no database: set COMPLAINTS_DATABASE_URL or give --database-url"), r.stderr
    r = cli("tsm", "--year", "2026", "--homes", "10", "--database-url", "postgresql://nobody@127.0.0.1:1/x")
    assert r.returncode == 1 and r.stderr.startswith("error: cannot read the case record") and (
        r.stderr.count("\n") == 1), r.stderr


async def test_stock_stores_homes_for_the_year(pool: asyncpg.Pool, db_url: str) -> None:
    await load(pool)
    r = cli("stock", "--landlord", R, "--year", "2026", "--homes", "400", db=db_url)
    assert r.returncode == 0, r.stderr
    assert tsm_json(db_url, "--year", "2026", "--landlord", R)["stage1"]["per_1000_homes"] == 2.5  # 1/400*1000
    assert await pool.fetchval("SELECT homes FROM landlord_stock WHERE landlord=$1 AND year=2026", R) == 400


