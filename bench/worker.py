"""The bench's worker process: the product's worker exactly as worker.py builds it, and beside it a
floor worker with the same settings (pollers, cache, concurrency) on its own task queue.

    python -m bench.worker      # reads the same environment as worker.py (COMPLAINTS_*, TEMPORAL_*)

It runs as a subprocess of the bench, not inside the driver: the driver's own work (starting
thousands of workflows, polling PostgreSQL) then never competes with the worker for one Python
interpreter, and /proc gives the worker's resident memory alone.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

import worker as product
from activities.case_record import CaseRecordActivities
from activities.db import apply_schema, create_pool
from bench.floor import FLOOR_QUEUE, FloorWorkflow, echo
from domain import logs
from starter.connection import Settings, connect


def product_worker_options(client: Any, activities: CaseRecordActivities, settings: Settings
                           ) -> tuple[Any, dict[str, Any]]:
    """The client (with the worker's codec) and keyword arguments worker.build_worker passes to Worker
    (captured, not copied by hand)."""
    captured: dict[str, Any] = {}

    class Recorder:
        def __init__(self, client: Any, **kwargs: Any) -> None:
            captured.update(kwargs, client=client)

    real = product.Worker
    product.Worker = Recorder  # type: ignore[misc]
    try:
        product.build_worker(client, activities, settings.task_queue, product.cached_cases(settings))
    finally:
        product.Worker = real  # type: ignore[misc]
    return captured.pop("client"), captured


def sandbox_experiment() -> Any:
    """BENCH_SANDBOX_PASSTHROUGH=workflows (a comma list of modules): measure a sandbox that does not
    re-import those modules for every workflow instance. An experiment only; worker.py is unchanged."""
    modules = [m for m in os.environ.get("BENCH_SANDBOX_PASSTHROUGH", "").split(",") if m]
    if not modules:
        return None
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*modules))


async def main() -> None:
    level, json = logs.from_env()
    logs.configure(level, json)
    settings = Settings.from_env()
    assert settings.database_url, "COMPLAINTS_DATABASE_URL"
    await apply_schema(settings.database_url)
    pool_size = int(os.environ.get("BENCH_POOL_SIZE") or 10)
    pool = await create_pool(settings.database_url, max_size=pool_size)
    client = await connect(settings, **product.start_metrics(settings))
    activities = CaseRecordActivities(pool)
    client, options = product_worker_options(client, activities, settings)
    experiment = sandbox_experiment()
    if experiment is not None:
        options["workflow_runner"] = experiment
    floor_options = {**options, "task_queue": FLOOR_QUEUE, "workflows": [FloorWorkflow], "activities": [echo],
                     "interceptors": []}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with product.Worker(client, **options), product.Worker(client, **floor_options):
        print("bench worker ready", flush=True)
        await stop.wait()
    await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # as worker.py: no interpreter finalisation (sdk-python#300)
