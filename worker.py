"""The worker: runs ComplaintWorkflow and its activities against Temporal and the case record.

    python worker.py                              # uses TEMPORAL_ADDRESS, COMPLAINTS_DATABASE_URL, ...
    python worker.py --ensure-search-attributes   # register the search attributes on a real cluster, then exit

Memory: COMPLAINTS_WORKER_CACHED_CASES (default CACHED_CASES_DEFAULT below) cases kept in memory.
Logs: COMPLAINTS_LOG_LEVEL (default INFO), COMPLAINTS_LOG_FORMAT=json|console (default json unless
stderr is a terminal). Metrics, when COMPLAINTS_METRICS_PORT=P is set: the product's counters
(complaints_filed_total, deadline_breaches_total, extensions_total, letters_sent_total) on
http://0.0.0.0:P/metrics and the Temporal SDK's runtime metrics on http://0.0.0.0:P+1/metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from datetime import timedelta

import asyncpg
import structlog
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities import metrics
from activities.case_record import CaseRecordActivities, OutageLogging
from activities.db import apply_schema, create_pool
from activities.ended_cases import EndedCasesActivities
from activities.retention import RetentionActivities
from domain import logs
from domain import search_attributes as sa
from domain.encryption import EncryptionConfigError, worker_converter
from starter.connection import Settings, SettingsError, connect
from starter.ended_cases_cmd import schedule_unless_present
from starter.exiting import leave
from workflows.complaint import ComplaintWorkflow
from workflows.ended_cases import DEFAULT_CRON, SCHEDULE_ID, EndedCasesWorkflow
from workflows.retention import RetentionWorkflow
from workflows.unreadable import UnreadableSignals

log = structlog.get_logger("complaints.worker")


async def ensure_search_attributes(client: Client) -> list[str]:
    """Register any of our search attributes the namespace lacks; idempotent. Returns those added."""
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    known = set(existing.custom_attributes) | set(existing.system_attributes)
    missing = {
        k.name: IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{k.indexed_value_type.name.removeprefix('INDEXED_VALUE_TYPE_')}")
        for k in sa.ALL if k.name not in known
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    return sorted(missing)


# On SIGTERM the worker stops polling and gives running activities this long to finish before it
# cancels them (a cancelled one is retried elsewhere; all are idempotent). Longer than the case
# activities' 30 s timeout; deploy/ grants the pod more than this plus its preStop pause.
GRACEFUL_SHUTDOWN = timedelta(seconds=60)


# The sticky cache, sized from `make bench` (docs/benchmarks.md): the worker idles at about 170 MB and
# each cached case adds about 420 KB (mostly the sandbox's own copy of the workflow modules). A cached
# case's next task needs no replay of its history; an evicted one replays it (a few hundred events,
# milliseconds). Cases wait days to weeks between tasks, so the cache need hold only the busy ones:
# 1,200 is about 670 MB: inside deploy/'s 1 GiB worker limit with a quarter spare (tests/test_deploy.py).
CACHED_CASES_DEFAULT = 1_200
IDLE_RSS_MB = 170
KB_PER_CACHED_CASE = 420


def cached_cases(settings: Settings) -> int:
    return CACHED_CASES_DEFAULT if settings.cached_cases is None else settings.cached_cases


def build_worker(client: Client, activities: CaseRecordActivities, task_queue: str,
                 max_cached_workflows: int = CACHED_CASES_DEFAULT) -> Worker:
    # Whatever client it is given, the worker decodes with WorkerCodec: nothing a caller sends can fail
    # a workflow task at decoding, and nothing sent in clear is let in (domain/encryption.py).
    client = Client(**{**client.config(), "data_converter": worker_converter(client.data_converter)})
    return Worker(
        client,
        task_queue=task_queue,
        # The retention sweep shares the queue and the case record's pool (see starter/retention_cmd.py).
        workflows=[ComplaintWorkflow, RetentionWorkflow, EndedCasesWorkflow],
        activities=activities.all() + RetentionActivities(activities.pool).all()
        + EndedCasesActivities(activities.pool).all(),
        max_cached_workflows=max_cached_workflows,
        interceptors=[logs.ActivityLogContext(), OutageLogging(), UnreadableSignals()],
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )


class CaseRecordUnreachable(RuntimeError):
    """PostgreSQL cannot be reached when the worker starts: one line for the operator, not a traceback."""


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    if not settings.database_url:
        raise SystemExit("worker: COMPLAINTS_DATABASE_URL is not set")
    try:
        await apply_schema(settings.database_url)
        pool = await create_pool(settings.database_url)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise CaseRecordUnreachable(f"cannot reach the case record (COMPLAINTS_DATABASE_URL): "
                                    f"{' '.join(str(exc).split())}") from None
    client = await connect(settings, **start_metrics(settings))
    stop = stop or asyncio.Event()
    try:
        async with build_worker(client, CaseRecordActivities(pool), settings.task_queue, cached_cases(settings)):
            log.info("worker running", task_queue=settings.task_queue, namespace=settings.temporal_namespace)
            await _schedule_ended_cases_sweep(client, settings.task_queue)
            await stop.wait()
    finally:
        await pool.close()
    log.info("worker stopped")


async def _schedule_ended_cases_sweep(client: Client, task_queue: str) -> None:
    """A terminated case runs no code: only the sweep finds it. So its schedule exists wherever a worker
    runs (created if absent; an operator's own cron or pause is kept)."""
    try:
        if await schedule_unless_present(client, task_queue):
            log.info("ended-cases sweep scheduled", schedule_id=SCHEDULE_ID, cron=DEFAULT_CRON)
    except RPCError as exc:  # e.g. an identity without schedule rights: the operator creates it (runbook)
        log.warning("ended-cases sweep not scheduled", schedule_id=SCHEDULE_ID, error=" ".join(exc.message.split()))


def start_metrics(settings: Settings) -> dict:
    """Serve the product's counters on metrics_port and give the SDK a Runtime serving its own on the
    next port; returns the connect() arguments (the worker's client must use that Runtime)."""
    if settings.metrics_port is None:
        return {}
    metrics.serve(settings.metrics_port)
    runtime = metrics.sdk_runtime(settings.metrics_port + 1)
    log.info("metrics served", product_port=settings.metrics_port, sdk_port=settings.metrics_port + 1)
    return {"runtime": runtime}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="worker.py", description=__doc__.splitlines()[0])
    parser.add_argument("--ensure-search-attributes", action="store_true",
                        help="register the search attributes on the namespace and exit")
    args = parser.parse_args(argv)
    try:
        level, json = logs.from_env()
    except logs.LogConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logs.configure(level, json)
    try:
        settings = Settings.from_env()
        settings.converter()  # the encryption keys: a configuration error, before anything connects
    except (SettingsError, EncryptionConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    async def go() -> None:
        if args.ensure_search_attributes:
            added = await ensure_search_attributes(await connect(settings))
            print("added: " + (", ".join(added) or "nothing (all present)"))
            return
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, stop)

    try:
        asyncio.run(go())
    except CaseRecordUnreachable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except RuntimeError as exc:
        if "connect" not in str(exc).lower():
            raise
        print(f"error: cannot reach Temporal at {settings.temporal_address}: {' '.join(str(exc).split())}",
              file=sys.stderr)
        return 1
    except RPCError as exc:
        print(f"error: Temporal refused the request: {' '.join(exc.message.split())}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    leave(main())
