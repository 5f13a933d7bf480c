"""`python -m starter sittings`: the review panel's set dates, against a real PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from starter.sittings_cmd import today_in_london

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, db_url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COMPLAINTS_DATABASE_URL": db_url or ""}
    return subprocess.run(
        [sys.executable, "-m", "starter", "sittings", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def one_error_line(r: subprocess.CompletedProcess[str], code: int, needle: str) -> None:
    lines = r.stderr.strip().splitlines()
    assert (
        r.returncode == code and len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]
    ), (r.returncode, r.stderr)


async def test_add_list_and_idempotency(db_url: str) -> None:
    # Dates relative to today, so the test does not go stale: the command refuses past dates.
    first, second = today_in_london() + timedelta(days=30), today_in_london() + timedelta(days=58)
    r = cli("add", "--landlord", "Optivo", "--date", first.isoformat(), db_url=db_url)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == (
        f"added: Optivo review panel sits on {first:%A} {first.isoformat()} "
        "(capacity 6, the resident may attend)"
    )
    # The landlord is matched as the policy spells it, whatever the case typed.
    r = cli(
        "add",
        "--landlord",
        "optivo",
        "--date",
        second.isoformat(),
        "--capacity",
        "3",
        "--no-attendance",
        "--json",
        db_url=db_url,
    )
    assert r.returncode == 0, r.stderr
    added = json.loads(r.stdout)
    assert (
        added["landlord"],
        added["sits_on"],
        added["capacity"],
        added["attendance_possible"],
        added["added"],
    ) == ("Optivo", second.isoformat(), 3, False, True)

    # Again, even with other details: the same (landlord, date) is one sitting, unchanged.
    r = cli(
        "add", "--landlord", "Optivo", "--date", first.isoformat(), "--capacity", "9", "--json", db_url=db_url
    )
    assert r.returncode == 0, r.stderr
    again = json.loads(r.stdout)
    assert (again["added"], again["capacity"]) == (False, 6)
    r = cli("add", "--landlord", "Optivo", "--date", first.isoformat(), db_url=db_url)
    assert r.returncode == 0 and r.stdout.startswith("already listed, unchanged: Optivo review panel"), r

    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            "SELECT landlord, sits_on, capacity, attendance_possible FROM panel_sittings ORDER BY sits_on"
        )
        assert [tuple(r) for r in rows] == [("Optivo", first, 6, True), ("Optivo", second, 3, False)]
        # A booking shows in the list as used capacity.
        sitting_id = await conn.fetchval("SELECT id FROM panel_sittings WHERE sits_on = $1", second)
        await conn.execute(
            "INSERT INTO panel_bookings (reference, sitting_id) VALUES ('CMP-X1', $1)", sitting_id
        )
    finally:
        await conn.close()

    r = cli("list", db_url=db_url)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        f"{first.isoformat()} {first:%a}  Optivo        booked 0/6  attendance possible",
        f"{second.isoformat()} {second:%a}  Optivo        booked 1/3  no attendance",
    ]
    r = cli("list", "--landlord", "OPTIVO", "--json", db_url=db_url)
    assert r.returncode == 0, r.stderr
    assert [(s["sits_on"], s["booked"]) for s in json.loads(r.stdout)] == [
        (first.isoformat(), 0),
        (second.isoformat(), 1),
    ]


async def test_empty_list(db_url: str) -> None:
    r = cli("list", db_url=db_url)
    assert r.returncode == 0 and r.stdout.strip() == "no review panel sittings", r
    r = cli("list", "--json", db_url=db_url)
    assert r.returncode == 0 and json.loads(r.stdout) == [], r


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["add", "--landlord", "Optivo", "--date", "2020-01-06"], "in the past"),
        (["add", "--landlord", "Optivo", "--date", "20290106"], "not a date"),
        (["add", "--landlord", "Optivo", "--date", "2029-02-30"], "not a date"),
        (["add", "--landlord", "Optivo", "--date", "next tuesday"], "not a date"),
        (["add", "--landlord", "Optivo"], "--date"),
        (["add", "--date", "2029-01-08"], "--landlord"),
        (["add", "--landlord", "Connexus", "--date", "2029-01-08"], "no policy with a review panel"),
        (["add", "--landlord", "Optivo", "--date", "2029-01-08", "--capacity", "0"], "between 1 and 100"),
        (["add", "--landlord", "Optivo", "--date", "2029-01-08", "--capacity", "six"], "not a whole number"),
        (["list", "--landlord", "Nobody"], "no policy with a review panel"),
        (["cancel"], "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_one_line(args: list[str], needle: str) -> None:
    # An unreachable database: bad input must be refused before anything is contacted.
    one_error_line(cli(*args, db_url="postgresql://nobody@127.0.0.1:1/none"), 2, needle)


def test_no_database_is_one_line_exit_1() -> None:
    one_error_line(cli("list"), 1, "COMPLAINTS_DATABASE_URL")
    one_error_line(cli("list", db_url="postgresql://nobody@127.0.0.1:1/none"), 1, "case record")


async def test_remove_a_sitting_but_never_one_a_case_is_booked_on(db_url: str) -> None:
    """Issue 16, point 13: there was no way to remove a sitting."""
    free, booked = today_in_london() + timedelta(days=30), today_in_london() + timedelta(days=44)
    for day in (free, booked):
        assert cli("add", "--landlord", "Optivo", "--date", day.isoformat(), db_url=db_url).returncode == 0
    conn = await asyncpg.connect(db_url)
    try:
        sitting_id = await conn.fetchval("SELECT id FROM panel_sittings WHERE sits_on = $1", booked)
        await conn.execute("INSERT INTO complaints (reference, workflow_id, policy_id, policy_version, landlord,"
                           " nation, received_at, channel, resident_name, summary, stage, status) VALUES"
                           " ('SIT-1', 'complaint-SIT-1', 'optivo', '1', 'Optivo', 'england-and-wales', now(),"
                           " 'phone', 'A B', 'x', 'stage-2', 'awaiting-panel')")
        await conn.execute("INSERT INTO panel_bookings (reference, sitting_id) VALUES ('SIT-1', $1)", sitting_id)

        r = cli("remove", "--landlord", "optivo", "--date", free.isoformat(), db_url=db_url)
        assert r.returncode == 0 and r.stdout.startswith(f"removed: Optivo review panel sits on {free:%A}"), r
        r = cli("remove", "--landlord", "Optivo", "--date", booked.isoformat(), db_url=db_url)
        one_error_line(r, 1, f"refused: 1 case is booked on the Optivo sitting of {booked.isoformat()} (SIT-1)")
        r = cli("remove", "--landlord", "Optivo", "--date", free.isoformat(), db_url=db_url)
        one_error_line(r, 1, f"no Optivo sitting on {free.isoformat()}")
        assert [r["sits_on"] for r in await conn.fetch("SELECT sits_on FROM panel_sittings")] == [booked]
    finally:
        await conn.close()
