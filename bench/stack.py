"""The bench's own stack: PostgreSQL and the Temporal dev server in a temporary directory, and the
worker as a subprocess; resident memory of each from /proc."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path
from typing import IO

from activities.db import apply_schema, seed_reference_data
from domain.encryption import KeyRing
from localstack.postgres import EmbeddedPostgres, create_database
from localstack.temporal import TemporalDevServer, find_binary
from starter.connection import Settings

ROOT = Path(__file__).resolve().parent.parent
IP = "127.0.0.1"
PRODUCT_QUEUE = "bench-product"
# bench/policies has bench-code; tests/policies has the compressed copies of the shipped policies.
POLICY_PATH = os.pathsep.join([str(ROOT / "bench" / "policies"), str(ROOT / "tests" / "policies")])


def free_port() -> int:
    with socket.socket() as s:
        s.bind((IP, 0))
        return s.getsockname()[1]


# -- memory -------------------------------------------------------------------------------------
def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            out.append(int(p.name))
    return out


def memory_mb(pids: list[int]) -> dict[str, float]:
    """RSS summed over the processes (shared pages counted in each) and PSS (shared pages split)."""
    return {"rss_mb": round(sum(_status_kb(p, "VmRSS") for p in pids) / 1024, 1),
            "pss_mb": round(sum(_pss_kb(p) for p in pids) / 1024, 1),
            "processes": len(pids)}


def cpu_seconds(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in pids:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])  # utime, stime
        except OSError:
            pass
    return total / tick


class Stack:
    def __init__(self, keep: bool = False) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="complaints-bench-"))
        self.keep = keep
        self.postgres: EmbeddedPostgres | None = None
        self.temporal: TemporalDevServer | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.database_url = ""
        self.metrics_port = free_port()
        keyring = KeyRing.generate("bench-1")
        self.keys_file = self.dir / "keys.json"
        self.keys_file.write_text(keyring.to_json())
        self.keys_file.chmod(0o600)
        self.settings = Settings(temporal_address=f"{IP}:{free_port()}", task_queue=PRODUCT_QUEUE, keyring=keyring)

    async def start(self) -> None:
        port = int(self.settings.temporal_address.rpartition(":")[2])
        self.temporal = TemporalDevServer(
            binary=find_binary("temporal"), db_file=self.dir / "temporal.db", log_file=self.dir / "temporal.log",
            ip=IP, port=port, ui_port=free_port())
        self.temporal.start()  # file persistence, WAL pragmas, our search attributes (see its command())
        self.postgres = EmbeddedPostgres(self.dir / "pg", delete_on_stop=True)
        admin = self.postgres.start()
        self.database_url = await create_database(admin, "bench")
        await apply_schema(self.database_url)
        await seed_reference_data(self.database_url)
        self.settings = self.settings.model_copy(update={"database_url": self.database_url})
        stop = asyncio.Event()
        await self.temporal.wait_ready(self.settings, stop)

    def worker_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPLAINTS_", "TEMPORAL_"))}
        env.update({
            "TEMPORAL_ADDRESS": self.settings.temporal_address,
            "COMPLAINTS_TASK_QUEUE": PRODUCT_QUEUE,
            "COMPLAINTS_DATABASE_URL": self.database_url,
            "COMPLAINTS_ENCRYPTION_KEYS_FILE": str(self.keys_file),
            "COMPLAINTS_POLICY_PATH": POLICY_PATH,
            "COMPLAINTS_METRICS_PORT": str(self.metrics_port),
            "COMPLAINTS_LOG_LEVEL": os.environ.get("BENCH_WORKER_LOG_LEVEL", "WARNING"),
            "COMPLAINTS_LOG_FORMAT": "console",
        })
        return env

    def precompile(self) -> bool:
        """Byte-compile our packages, as the worker image does (Dockerfile: compileall). This shell
        sets PYTHONDONTWRITEBYTECODE, and without .pyc files the sandbox compiles workflows/complaint.py
        from source again for every workflow instance it creates. BENCH_PRECOMPILE=0 to measure that."""
        if os.environ.get("BENCH_PRECOMPILE", "1") == "0":
            return False
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        subprocess.run([sys.executable, "-m", "compileall", "-q", "domain", "workflows", "activities", "starter",
                        "bench", "worker.py"], cwd=ROOT, env=env, check=True)
        return True

    async def start_worker(self) -> None:
        log = (self.dir / "worker.log").open("ab")
        self.worker = subprocess.Popen([sys.executable, "-m", "bench.worker"], cwd=ROOT, env=self.worker_env(),
                                       stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
        assert self.worker.stdout is not None
        line = await asyncio.to_thread(self.worker.stdout.readline)
        if b"ready" not in line:
            raise RuntimeError(f"the bench worker did not start (see {self.dir / 'worker.log'})")
        # Keep reading its stdout into the log: the SDK core writes its warnings there, and a pipe no one
        # reads fills at 64 KB and blocks the core's workflow thread in write() (it stopped a full run's
        # worker dead, every case waiting, until the pipe was read).
        threading.Thread(target=_copy, args=(self.worker.stdout, log), daemon=True).start()

    def stop_worker(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.terminate()
            try:
                self.worker.wait(30)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait()
        self.worker = None

    def stop(self) -> None:
        self.stop_worker()
        if self.temporal is not None:
            self.temporal.stop()
        if self.postgres is not None:
            self.postgres.stop()
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- what runs ----------------------------------------------------------------------------------
    def postgres_pids(self) -> list[int]:
        master = self._find_postmaster()
        return [master, *children(master)] if master else []

    def _find_postmaster(self) -> int:
        for pidfile in self.dir.rglob("postmaster.pid"):
            try:
                return int(pidfile.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
        return 0

    def server_pids(self) -> list[int]:
        assert self.temporal is not None and self.temporal.process is not None
        pid = self.temporal.process.pid
        return [pid, *children(pid)]

    def worker_pids(self) -> list[int]:
        assert self.worker is not None
        return [self.worker.pid]

    def memory(self) -> dict[str, dict[str, float]]:
        return {"temporal_dev_server": memory_mb(self.server_pids()), "worker": memory_mb(self.worker_pids()),
                "postgresql": memory_mb(self.postgres_pids())}

    def sdk_metric(self, name: str) -> float | None:
        """A gauge from the worker's SDK metrics (served on metrics_port + 1), summed over its labels."""
        try:
            text = urllib.request.urlopen(f"http://{IP}:{self.metrics_port + 1}/metrics", timeout=5).read().decode()
        except OSError:
            return None
        values = [float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.M)]
        return sum(values) if values else None


def _copy(source: IO[bytes], sink: IO[bytes]) -> None:
    for line in source:
        sink.write(line)
        sink.flush()
