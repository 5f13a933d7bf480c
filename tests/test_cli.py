"""The operators' CLI: one clear line and a non-zero exit for every kind of bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "starter", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["extend", "CMP-1", "--reason", "x"], "--working-days"),
        (["extend", "CMP-1", "--working-days", "three", "--reason", "x"], "invalid int value"),
        (["respond", "CMP-1", "--decision", "maybe", "--reasons", "x"], "invalid choice"),
        (["contact", "CMP-1", "--channel", "pigeon", "--direction", "inbound", "--by", "x"], "invalid choice"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], needle: str) -> None:
    r = cli(*args)
    assert r.returncode == 2, r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], r.stderr


def test_file_validates_before_contacting_anyone() -> None:
    r = cli("file", "--reference", "bad ref; drop table", "--resident-name", "A B", "--property-address", "1 Road",
            "--nation", "scotland", "--summary", "x", env={"TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "reference" in r.stderr, r.stderr
    r = cli("file", "--reference", "CMP-1", env={"TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert r.returncode == 1 and "--resident-name" in r.stderr, r.stderr
    r = cli("file", "--reference", "CMP-1", "--resident-name", "A B", "--property-address", "1 Road",
            "--nation", "scotland", "--summary", "x", "--policy", "nobody", env={"TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert r.returncode == 1 and "unknown policy 'nobody'" in r.stderr, r.stderr


def test_unreachable_server_is_one_line() -> None:
    r = cli("status", "CMP-1", env={"TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert r.returncode == 1 and r.stderr.startswith("error: cannot reach Temporal"), r.stderr
    assert r.stderr.count("\n") == 1


async def test_unknown_case_is_named(dev_env: WorkflowEnvironment) -> None:
    target = dev_env.client.service_client.config.target_host
    r = cli("status", "CMP-NOPE", env={"TEMPORAL_ADDRESS": target})
    assert r.returncode == 1 and r.stderr.strip() == "error: no case with reference CMP-NOPE", r.stderr
