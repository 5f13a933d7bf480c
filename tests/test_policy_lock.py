"""A policy's identity is its content (issue 15, point 10): each version's hash is recorded in the
policies.lock beside it, a case pins `<id>@<version>#<hash>`, and a file edited without a new version
is refused at load, naming the file: shipped, test and bench policies alike, and on the real stack."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import WorkflowFailureError

from demo import POLICY_DIR as DEMO_POLICIES
from domain import policy_lock
from domain.contract import WORKFLOW_TYPE, workflow_id
from domain.policy import POLICY_DIR, POLICY_PATH_ENV, PolicyError, load_policy_file
from tests.faults.driver import complaint
from tests.faults.stack import TEST_POLICIES, fault_stack
from tests.test_unreadable_messages import file_case, goes_on, queue, status

ROOT = Path(__file__).resolve().parents[1]
BENCH_POLICIES = ROOT / "bench" / "policies"
DIRS = {"shipped": POLICY_DIR, "test": TEST_POLICIES, "bench": BENCH_POLICIES, "demo": DEMO_POLICIES}
# One policy from each directory, and a value in it to change.
EDITS = {"shipped": ("hos-code-2024", "length = 10,", "length = 12,"),
         "test": ("compressed-code", "length = 10,", "length = 12,"),
         "bench": ("bench-code", "landlord = \"", "landlord = \"Another "),
         "demo": ("demo-code", "length = 10,", "length = 12,")}


def copy_of(directory: Path, tmp_path: Path) -> Path:
    out = tmp_path / directory.name
    shutil.copytree(directory, out, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return out


@pytest.mark.parametrize("where", DIRS)
def test_every_policy_version_is_recorded_and_pinned_with_its_hash(where: str) -> None:
    directory = DIRS[where]
    lock = policy_lock.read_lock(directory)
    assert lock is not None, f"{directory} has no {policy_lock.LOCK_FILE}"
    for path in sorted(directory.glob("*.toml")):
        p = load_policy_file(path)
        assert lock[f"{p.id}@{p.version}"] == p.digest
        assert p.pinned == f"{p.id}@{p.version}#{p.digest.removeprefix('sha256:')[:12]}"


@pytest.mark.parametrize("where", DIRS)
def test_a_policy_edited_without_a_new_version_is_refused_naming_the_file(where: str, tmp_path: Path) -> None:
    directory = copy_of(DIRS[where], tmp_path)
    name, old, new = EDITS[where]
    path = directory / f"{name}.toml"
    before = load_policy_file(path)
    # Comments and layout are not content: the same version, the same hash.
    path.write_text("# reviewed by the board\n" + path.read_text().replace("\n[", "\n\n# next section\n["))
    assert load_policy_file(path).pinned == before.pinned
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(PolicyError) as err:
        load_policy_file(path)
    assert str(path) in str(err.value) and "new version" in str(err.value)
    assert policy_lock.main([str(directory)]) == 1, "make policy-lock never rewrites a recorded version"

    # Given a new version, it is refused until recorded, then pinned under a label of its own.
    path.write_text(path.read_text().replace(f'version = "{before.version}"', 'version = "2099.1"', 1))
    with pytest.raises(PolicyError, match="not recorded"):
        load_policy_file(path)
    assert policy_lock.main([str(directory)]) == 0
    after = load_policy_file(path)
    assert after.version == "2099.1" and after.digest != before.digest
    assert policy_lock.read_lock(directory)[f"{name}@{before.version}"] == before.digest, "old versions stay"


def test_the_shipped_directory_must_have_its_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = copy_of(POLICY_DIR, tmp_path)
    (directory / policy_lock.LOCK_FILE).unlink()
    monkeypatch.setattr("domain.policy.POLICY_DIR", directory)
    with pytest.raises(PolicyError, match="missing"):
        load_policy_file(directory / "hos-code-2024.toml")
    # Elsewhere (a test's throwaway directory) a lock is checked only where there is one.
    assert load_policy_file(shutil.copy(POLICY_DIR / "optivo.toml", tmp_path / "optivo.toml")).digest


def test_the_cli_refuses_to_file_under_an_edited_policy_in_one_line(tmp_path: Path) -> None:
    directory = copy_of(TEST_POLICIES, tmp_path)
    path = directory / "compressed-code.toml"
    path.write_text(path.read_text().replace("length = 10,", "length = 12,", 1))
    env = {**os.environ, POLICY_PATH_ENV: str(directory), "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    done = subprocess.run(
        [sys.executable, "-m", "starter", "file", "--reference", "CMP-LOCK-1", "--policy", "compressed-code",
         "--resident-name", "Maria Jones", "--resident-address", "Flat 4, 12 Harbour Road, Bristol BS1 4AA",
         "--property-address", "Flat 4, 12 Harbour Road, Bristol", "--nation", "england-and-wales",
         "--summary", "Damp and mould in the bedroom"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode in (1, 2), done.stderr  # refused in one line, never a traceback
    assert len(done.stderr.strip().splitlines()) == 1 and str(path) in done.stderr and "new version" in done.stderr


async def test_on_the_real_stack_an_edited_policy_files_nothing_and_running_cases_go_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    policies = copy_of(TEST_POLICIES, tmp_path)
    monkeypatch.setattr("tests.faults.stack.TEST_POLICIES", policies)  # the worker reads this copy
    async with fault_stack(tmp_path / "stack", queue()) as stack:
        assert stack.client is not None
        running = await file_case(stack)
        pinned = load_policy_file(policies / "compressed-code.toml").pinned
        assert (await status(running)).policy == pinned

        # Someone edits the policy in place, without a new version: a new case is refused once, saying
        # which file and why, and nothing of it reaches the record.
        path = policies / "compressed-code.toml"
        path.write_text(path.read_text().replace("length = 10,", "length = 12,", 1))
        ref = f"LOCK-{uuid.uuid4().hex[:8].upper()}"
        refused = await stack.client.start_workflow(WORKFLOW_TYPE, complaint(ref), id=workflow_id(ref),
                                                    task_queue=stack.task_queue)
        with pytest.raises(WorkflowFailureError) as failed:
            await asyncio.wait_for(refused.result(), 60)
        cause = str(failed.value.cause.cause if failed.value.cause.cause else failed.value.cause)
        assert str(path) in cause and "new version" in cause

        # The running case keeps the rules and the label it started with.
        await goes_on(stack, running, refusals=0)
        assert (await status(running)).policy == pinned
        conn = await asyncpg.connect(stack.database_url)
        try:
            rows = await conn.fetch("SELECT reference, policy_version FROM complaints")
        finally:
            await conn.close()
        assert [(r["reference"], r["policy_version"]) for r in rows] == [
            ((await status(running)).reference, pinned.split("@", 1)[1])]
