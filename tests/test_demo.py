"""`make demo`: the demonstration policies are marked and kept apart, and the driver takes its cases
through Stage 2 and the Ombudsman step to closure on the real dev server, in real seconds."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from demo import POLICY_DIR as DEMO_POLICIES
from demo.driver import run_demo
from domain.calendar import DeadlineUnit
from domain.case import Stage
from domain.policy import (
    POLICY_DIR,
    POLICY_PATH_ENV,
    PolicyError,
    deadline_rules,
    load_policy,
    load_policy_file,
)
from localstack.__main__ import Config, _write_env
from starter.connection import Settings
from tests.support import new_reference, timeline_kinds, worker

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def demo_policies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(POLICY_PATH_ENV, str(DEMO_POLICIES))  # as `make demo` sets it


def test_demo_policies_say_they_are_not_for_real_cases_and_load_only_from_the_demo_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = sorted(DEMO_POLICIES.glob("*.toml"))
    assert [f.stem for f in files] == ["demo-code", "demo-connexus"]
    for f in files:
        assert f.read_text().startswith("# DEMONSTRATION ONLY - NOT FOR REAL CASES.")
        p = load_policy_file(f)
        assert p.test_only and "not for real cases" in p.title and "not for real cases" in p.landlord
        assert {r.unit for _, r in deadline_rules(p)} == {DeadlineUnit.SECONDS}
        assert not (POLICY_DIR / f.name).exists()
    monkeypatch.delenv(POLICY_PATH_ENV, raising=False)
    with pytest.raises(PolicyError, match="unknown policy 'demo-code'"):
        load_policy("demo-code")


async def test_the_demo_takes_its_cases_through_stage_2_and_the_ombudsman_step_to_closure(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, demo_policies: None, dev_now: Callable[[], datetime]
) -> None:
    queue = f"demo-{new_reference('Q')}"
    said: list[str] = []
    began = time.monotonic()
    async with worker(dev_env, pool, queue):
        refs = await run_demo(dev_env.client, queue, pace=0.0, late_case=False, say=said.append,
                              clock=dev_now)
    assert time.monotonic() - began < 60
    assert len(refs) == 2
    for ref in refs:
        handle = dev_env.client.get_workflow_handle(f"complaint-{ref}")
        final = await handle.result()
        assert final["stage"] == Stage.CLOSED.value and final["breaches"] == []
        kinds = await timeline_kinds(pool, ref)
        # Stage 2 was reached and answered, the Ombudsman step came after it, and then closure.
        assert "escalation_requested" in kinds
        assert kinds.index("ombudsman_rights_given") > kinds.index("escalation_requested")
        assert kinds.index("closed") > kinds.index("ombudsman_rights_given")
        assert "survey_answered" in kinds
    assert "ombudsman_referral" in await timeline_kinds(pool, refs[0])
    # The narration names every case and the CLI command for each step.
    text = "\n".join(said)
    assert all(ref in text for ref in refs) and "by hand: python -m starter refer" in text


def test_make_demo_keeps_its_own_state_and_tells_the_cli_where_its_policies_are(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for var in ("COMPLAINTS_VAR_DIR", POLICY_PATH_ENV):
        monkeypatch.delenv(var, raising=False)
    assert Config.from_env().var_dir == Path("var").resolve()
    assert Config.from_env(demo_pace=8.0).var_dir == Path("var/demo").resolve()  # never among real cases
    monkeypatch.setenv(POLICY_PATH_ENV, str(DEMO_POLICIES))  # as `--demo` sets it before the worker starts
    env_file = tmp_path / "env"
    _write_env(env_file, Settings(database_url="postgresql://x"), None)
    assert f"export {POLICY_PATH_ENV}={DEMO_POLICIES}" in env_file.read_text().splitlines()


def test_a_negative_pace_is_bad_arguments() -> None:
    cp = subprocess.run([sys.executable, "-m", "localstack", "--demo", "--pace", "-1"], cwd=ROOT,
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 2
    assert cp.stderr.strip().splitlines() == ["localstack: error: --pace must be 0 or more seconds"]
