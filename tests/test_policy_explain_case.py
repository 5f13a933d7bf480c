"""`policy explain`'s worked example is what a real case does: the case run on the time-skipping server,
each person acting at the instant the example says, keeps every deadline on the date the example gives.

Each shipped policy, a complaint received on Wednesday 23 December 2026 in England, so Stage 1 counts across
Christmas Day, the Boxing Day substitute and New Year's Day. The instants come from the command's own --json output; the
dates the case keeps come from its status query.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.db import create_pool
from domain.calendar import LONDON
from domain.case import Stage, Status
from domain.contract import Signal
from domain.policy import load_policy_file
from tests.support import (
    add_sittings,
    complaint,
    new_reference,
    skip_to,
    start,
    wait_for,
    wait_for_survey,
    worker,
)

ROOT = Path(__file__).resolve().parent.parent
RESPONSE = {"decision": "partly_upheld", "reasons": "The repair was booked late; the mould is now treated.",
            "remedy": "£150 for the carpet", "points_addressed": ["Repair delay"], "by": "Priya Shah"}


def explain_json(policy: str, day: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "COMPLAINTS_"))}
    r = subprocess.run([sys.executable, "-m", "starter", "policy", "explain", policy, "--from", day, "--json"],
                       cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


QUESTIONS = ["investigation_thorough", "all_points_answered", "evidence_supports_resolution",
             "resolution_remedies_failure"]


def contact(kind: str) -> dict:
    return {"channel": "phone", "direction": "outbound", "by": "Alan Reid", "kind": kind}


async def final_response(policy: str, handle: WorkflowHandle) -> None:
    """The Stage 2 decision, in the shape the policy's review takes, on the final response's last day."""
    if policy == "hos-code-2024":
        await handle.execute_update("submit_final_response", {**RESPONSE, "by": "Tom Reed"})
    elif policy == "connexus":
        await handle.execute_update("record_review_findings", {
            "answers": [{"key": k, "answer": True, "notes": f"Checked: {k}"} for k in QUESTIONS],
            "summary": "The investigation was sound.", "by": "Alan Reid"})
        await handle.execute_update("agree_outcome", {"role": "head_of_service", "name": "Ruth Patel",
                                                      "decision": "partly_upheld", "outcome": "£150 added."})
        await handle.signal(Signal.RECORD_CONTACT.value, contact("findings_call"))
    else:
        await handle.execute_update("record_panel_decision", {"decision": "upheld", "reasons": "Missed twice."})


@pytest.mark.parametrize("policy", ["hos-code-2024", "connexus", "optivo"])
async def test_a_case_keeps_every_date_of_the_worked_example(time_env: WorkflowEnvironment, db_url: str,
                                                             policy: str) -> None:
    out = explain_json(f"policies/{policy}.toml", "2026-12-23")
    at = {k: datetime.fromisoformat(v) for k, v in out["events"].items()}
    promised = {d["label"]: date.fromisoformat(d["due_date"]) for d in out["deadlines"]}
    # 10 working days across Christmas Day, the Boxing Day substitute and New Year's Day.
    assert promised[load_policy_file(ROOT / "policies" / f"{policy}.toml").stage1.response.label] == date(2027, 1, 11)

    ref = new_reference()
    queue = f"q-{ref}"
    pool = await create_pool(db_url)
    try:
        if "panel_sitting" in at:  # the panel's set date, on the earliest day the example says it can sit
            await add_sittings(pool, "Optivo", at["panel_sitting"].astimezone(LONDON).date())
        async with worker(time_env, pool, queue):
            await skip_to(time_env, at["received"])
            handle = await start(time_env, complaint(ref, at["received"], policy=policy), queue)
            await wait_for(handle, lambda s: s.status is Status.INVESTIGATING, "the acknowledgement")

            await skip_to(time_env, at["stage1_response"])
            await handle.execute_update("submit_stage1_response", RESPONSE)
            await wait_for(handle, lambda s: s.status is Status.RESPONDED, "the Stage 1 response letter")

            await skip_to(time_env, at["escalation_requested"])
            await handle.signal(Signal.REQUEST_REVIEW.value, {"reasons": "The mould is back."})
            await wait_for(handle, lambda s: any(d.key == "escalation.triage" for d in s.deadlines), "the triage")
            if policy == "connexus":  # the review discussion, the day it is asked for
                await handle.signal(Signal.RECORD_CONTACT.value, contact("review_discussion"))

            # Nobody refuses or accepts: the triage runs out and the engine acknowledges Stage 2 itself.
            await skip_to(time_env, at["stage2_acknowledged"] + timedelta(minutes=1))
            await wait_for(handle, lambda s: s.stage is Stage.STAGE2 and s.status is not Status.RESPONDED,
                           "the Stage 2 acknowledgement")

            await skip_to(time_env, at["final_response"])
            await final_response(policy, handle)
            if policy == "optivo":  # eight weeks' cooling-off, no referral: the case closes when it ends
                await wait_for(handle, lambda s: s.status is Status.COOLING_OFF, "the final response")
                await skip_to(time_env, at["closed"] + timedelta(minutes=1))
            s = await wait_for_survey(handle)

        kept = {d.label: d.due_date for d in s.deadlines if d.key != "stage2.panel_sitting"}
        assert kept == promised, "the case keeps exactly the dates policy explain gives"
        assert not s.breaches, "every step was taken on its last day, none after"
    finally:
        await pool.close()
