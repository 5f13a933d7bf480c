"""Write the README's example of the annual report from a demo case record.

    .venv/bin/python docs/annual_report_demo.py     # -> docs/annual-report-volume.svg, docs/annual-report-example.html

Starts an embedded PostgreSQL of its own, fills it with a year of made-up (seeded, so the output
is the same every run) complaints for "Demo Homes" in the shape the activities write, and runs
`python -m starter report annual` on it, as a landlord would.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import subprocess
import sys
import tempfile
from datetime import date, datetime, time, timedelta
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from activities.db import apply_schema, create_pool  # noqa: E402
from domain.calendar import LONDON  # noqa: E402
from localstack.postgres import EmbeddedPostgres, create_database  # noqa: E402

LANDLORD, YEAR, HOMES = "Demo Homes", 2026, 12_400
# Complaints a month: winter damp and mould push Stage 1 up, as landlords' reports commonly show.
MONTHLY = [22, 20, 17, 14, 12, 11, 10, 11, 13, 17, 21, 24]
DECISIONS = ["upheld", "partly_upheld", "not_upheld"]
WORDS = {"upheld": "Upheld", "partly_upheld": "Partly upheld", "not_upheld": "Not upheld"}


def working_days_after(d: date, n: int) -> date:
    # Weekends only: good enough for made-up data (the product's calendar is not needed here).
    while n:
        d += timedelta(days=1)
        n -= d.weekday() < 5
    return d


def end_of(d: date) -> datetime:
    return datetime.combine(d + timedelta(days=1), time(0), tzinfo=LONDON)


async def fill(pool: asyncpg.Pool) -> None:
    rng = random.Random(2026)
    n = 0
    for month, count in enumerate(MONTHLY, start=1):
        for _ in range(count):
            n += 1
            ref = f"DEMO-{n:04d}"
            received = datetime(YEAR, month, rng.randint(1, 28), rng.randint(8, 17), tzinfo=LONDON)
            escalate = rng.random() < 0.18
            s1_due = working_days_after(received.date(), 15)  # 5 to acknowledge, 10 to respond
            late = rng.random() < 0.12
            s1_met = end_of(working_days_after(s1_due, rng.randint(1, 6))) - timedelta(hours=8) if late else (
                end_of(working_days_after(received.date(), rng.randint(6, 14))) - timedelta(hours=8))
            escalated = (s1_met + timedelta(days=rng.randint(3, 20))) if escalate else None
            await pool.execute(
                "INSERT INTO complaints (reference, workflow_id, policy_id, policy_version, landlord, nation,"
                " received_at, channel, stage, status, escalated_at) VALUES ($1, 'complaint-' || $1,"
                " 'hos-code-2024', '2024.1', $2, 'england-and-wales', $3, 'phone', 'closed', 'closed', $4)",
                ref, LANDLORD, received, escalated,
            )
            seq = 0
            for key, due, met, stage, kind in [("stage1.response", s1_due, s1_met, "stage-1", "stage1_responded")] + (
                [("stage2.response", working_days_after(escalated.date(), 25),
                  escalated + timedelta(days=rng.randint(14, 40)), "stage-2", "final_response_sent")]
                if escalated else []
            ):
                await pool.execute(
                    "INSERT INTO deadlines (reference, key, label, stage, kind, trigger_at, original_due_date,"
                    " due_date, due_at, met_at) VALUES ($1, $2, $3, $4, 'duty', $5, $6, $6, $7, $8)",
                    ref, key, "Stage 1 response" if stage == "stage-1" else "Stage 2 response", stage,
                    received, due, end_of(due), met,
                )
                if met > end_of(due):
                    await pool.execute("INSERT INTO breaches VALUES ($1, $2, $3, $4, $5, $6)", ref, key, stage,
                                       "Stage 1 response" if stage == "stage-1" else "Stage 2 response", due,
                                       end_of(due))
                seq += 1
                decision = rng.choices(DECISIONS, weights=[3, 4, 5])[0]
                await pool.execute("INSERT INTO timeline VALUES ($1, $2, $3, $4, $5, 'handler', $6, $7)",
                                   ref, seq, met, kind, stage, f"Response sent: {WORDS[decision]}",
                                   {"deadline": key})
    await pool.execute("INSERT INTO landlord_stock VALUES ($1, $2, $3)", LANDLORD, YEAR, HOMES)


async def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="complaints-demo-"))
    server = EmbeddedPostgres(root / "data", delete_on_stop=True)
    try:
        url = await create_database(server.start(), "annual_demo")
        await apply_schema(url)
        pool = await create_pool(url)
        try:
            await fill(pool)
        finally:
            await pool.close()
        docs = ROOT / "docs"
        r = subprocess.run([sys.executable, "-m", "starter", "report", "annual", "--year", str(YEAR),
                            "--landlord", LANDLORD, "--database-url", url,
                            "--out", str(docs / "annual-report-example.html"),
                            "--volume-svg", str(docs / "annual-report-volume.svg")], cwd=ROOT)
        return r.returncode
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
