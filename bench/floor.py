"""The engine's floor: a trivial workflow that runs one trivial activity and returns.

Nothing here but temporalio, so the sandbox has nothing of ours to re-import: what it costs is what
Temporal itself costs per workflow, with the same worker settings, data converter (encrypted) and
server as the product.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

FLOOR_QUEUE = "bench-floor"


@activity.defn(name="bench_floor_echo")
async def echo(text: str) -> str:
    return text


@workflow.defn(name="BenchFloor")
class FloorWorkflow:
    @workflow.run
    async def run(self, text: str) -> str:
        return await workflow.execute_activity(echo, text, start_to_close_timeout=timedelta(seconds=30))
