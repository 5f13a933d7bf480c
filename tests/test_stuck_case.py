"""A case whose workflow task keeps failing is visible to operators: `status` says it is stuck, in one line.

The stuck case is real: a worker serves the case's workflow type with a run that fails every task (as a
task past the SDK's deadlock detector, or a bug, would), and Temporal retries it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.contract import WORKFLOW_TYPE, workflow_id

ROOT = Path(__file__).resolve().parent.parent


@workflow.defn(name=WORKFLOW_TYPE, sandboxed=False)
class FailsEveryTask:
    @workflow.run
    async def run(self, complaint: dict) -> None:
        raise RuntimeError("this workflow task always fails")  # a task failure, retried by Temporal


async def test_status_says_a_case_is_stuck(dev_env: WorkflowEnvironment) -> None:
    queue = f"stuck-{uuid.uuid4().hex[:8]}"
    reference = f"CMP-{uuid.uuid4().hex[:8].upper()}"
    async with Worker(dev_env.client, task_queue=queue, workflows=[FailsEveryTask]):
        handle = await dev_env.client.start_workflow(WORKFLOW_TYPE, {"reference": reference},
                                                     id=workflow_id(reference), task_queue=queue)
        for _ in range(100):  # until Temporal has retried the task at least once
            if (await handle.describe()).raw_description.pending_workflow_task.attempt > 1:
                break
            await asyncio.sleep(0.1)
        env = {**os.environ, "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host}
        r = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "starter", "status", reference],
                                    cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: case {reference} is stuck: its workflow task has "
                                                   "failed or timed out"), r.stderr
    assert "worker's log" in lines[0]
    await handle.terminate("test over")
