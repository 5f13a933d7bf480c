"""`policy explain`'s worked example is what a real case does: the case run on the time-skipping server,
each person acting at the instant the example says, keeps every deadline on the date the example gives.

Received on Wednesday 23 December 2026 under the Code, in England, so Stage 1 counts across Christmas Day,
the Boxing Day substitute and New Year's Day. The instants come from the command's own --json output; the
dates the case keeps come from its status query.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from activities.db import create_pool
from domain.case import Stage, Status
from domain.contract import Signal
from tests.support import complaint, new_reference, skip_to, start, wait_for, wait_for_survey, worker

ROOT = Path(__file__).resolve().parent.parent
RESPONSE = {"decision": "partly_upheld", "reasons": "The repair was booked late; the mould is now treated.",
            "remedy": "£150 for the carpet", "points_addressed": ["Repair delay"], "by": "Priya Shah"}


def explain_json(policy: str, day: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "COMPLAINTS_"))}
    r = subprocess.run([sys.executable, "-m", "starter", "policy", "explain", policy, "--from", day, "--json"],
                       cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


async def test_a_case_keeps_every_date_of_the_worked_example(time_env: WorkflowEnvironment, db_url: str) -> None:
    out = explain_json("policies/hos-code-2024.toml", "2026-12-23")
    at = {k: datetime.fromisoformat(v) for k, v in out["events"].items()}
    promised = {d["label"]: date.fromisoformat(d["due_date"]) for d in out["deadlines"]}
    assert promised["Stage 1 response"] == date(2027, 1, 11)  # 10 working days across Christmas and New Year

    ref = new_reference()
    queue = f"q-{ref}"
    pool = await create_pool(db_url)
    try:
        async with worker(time_env, pool, queue):
            await skip_to(time_env, at["received"])
            handle = await start(time_env, complaint(ref, at["received"]), queue)
            await wait_for(handle, lambda s: s.status is Status.INVESTIGATING, "the acknowledgement")

            await skip_to(time_env, at["stage1_response"])
            await handle.execute_update("submit_stage1_response", RESPONSE)
            await wait_for(handle, lambda s: s.status is Status.RESPONDED, "the Stage 1 response letter")

            await skip_to(time_env, at["escalation_requested"])
            await handle.signal(Signal.REQUEST_REVIEW.value, {"reasons": "The mould is back."})
            await wait_for(handle, lambda s: any(d.key == "escalation.triage" for d in s.deadlines), "the triage")

            # Nobody refuses or accepts: the triage runs out and the engine acknowledges Stage 2 itself.
            await skip_to(time_env, at["stage2_acknowledged"] + timedelta(minutes=1))
            await wait_for(handle, lambda s: s.stage is Stage.STAGE2 and any(
                d.key == "stage2.response" for d in s.deadlines), "the Stage 2 acknowledgement")

            await skip_to(time_env, at["final_response"])
            await handle.execute_update("submit_final_response", {**RESPONSE, "by": "Tom Reed"})
            s = await wait_for_survey(handle)

        kept = {d.label: d.due_date for d in s.deadlines}
        assert kept == promised, "the case keeps exactly the dates policy explain gives"
        assert not s.breaches, "every step was taken on its last day, none after"
    finally:
        await pool.close()
