"""Every recorded history replays against today's workflow code (see tests/history_files.py).

If this fails, the change alters the commands a running case would issue: guard the new path with
`workflow.patched(...)` so recorded (and running) cases keep the old one. Re-record with
`make record-histories` only when the change is meant to alter new cases and the old branch stays.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.history_files import name, recorded
from workflows.complaint import ComplaintWorkflow

POLICIES = ("hos-code-2024", "connexus", "optivo")


def test_every_policy_has_happy_and_unhappy_histories() -> None:
    # Today's code (top level) and the code before open_case, each with both paths of every policy.
    for generation in ("", "three-opening-activities/"):
        names = [n.removeprefix(generation) for n in map(name, recorded())
                 if n.startswith(generation) and "/" not in n.removeprefix(generation)]
        for policy in POLICIES:
            ours = [n for n in names if n.startswith(policy)]
            assert any("happy" in n and "unhappy" not in n for n in ours), f"no {generation}happy history for {policy}"
            assert any("unhappy" in n for n in ours), f"no {generation}unhappy history for {policy}"


@pytest.mark.parametrize("path", recorded(), ids=name)
async def test_recorded_history_replays(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    workflow_id = next(
        (e["workflowExecutionStartedEventAttributes"].get("workflowId") for e in json.loads(text)["events"]
         if "workflowExecutionStartedEventAttributes" in e), None) or path.stem
    history = WorkflowHistory.from_json(workflow_id, text)
    # Stored decrypted (tests/history_files.py), so the plain converter reads them.
    result = await Replayer(workflows=[ComplaintWorkflow], data_converter=pydantic_data_converter).replay_workflow(
        history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name} no longer replays: {result.replay_failure}"
