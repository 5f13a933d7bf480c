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
    """Bad arguments to `file` exit 2 with one line in the CLI's words (issue 16, point 12), before any
    connection is tried."""
    r = cli("file", "--reference", "bad ref; drop table", "--resident-name", "A B", "--property-address", "1 Road",
            "--nation", "scotland", "--summary", "x", env={"TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and r.stderr.startswith("error: --reference: "), r.stderr
    r = cli("file", "--reference", "CMP-1", env={"TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert r.returncode == 2 and "--resident-name" in r.stderr, r.stderr
    r = cli("file", "--reference", "CMP-1", "--resident-name", "A B", "--property-address", "1 Road",
            "--nation", "scotland", "--summary", "x", "--policy", "nobody", env={"TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert r.returncode == 2 and "unknown policy 'nobody'" in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_unreachable_server_is_one_line() -> None:
    r = cli("status", "CMP-1", env={"TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert r.returncode == 1 and r.stderr.startswith("error: cannot reach Temporal"), r.stderr
    assert r.stderr.count("\n") == 1


async def test_unknown_case_is_named(dev_env: WorkflowEnvironment) -> None:
    target = dev_env.client.service_client.config.target_host
    r = cli("status", "CMP-NOPE", env={"TEMPORAL_ADDRESS": target})
    assert r.returncode == 1 and r.stderr.strip() == "error: no case with reference CMP-NOPE", r.stderr


FILE_ARGS = ["file", "--reference", "CMP-1", "--resident-name", "A B", "--property-address", "1 Road",
             "--nation", "scotland", "--summary", "x"]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["extend", "CMP-1", "--working-days", "0", "--reason", "x"],
         "error: --working-days: must be at least 1, got 0"),
        (["survey", "CMP-1", "--satisfied", "--score", "11"], "error: --score: must be at most 10, got 11"),
        (["signal", "CMP-1", "survey_response", "--data", "{satisfied: true"],
         "error: not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
        (["update", "CMP-1", "agree_outcome", "--data", "[1, 2]"],
         "error: --data: the agree_outcome payload must be a JSON object"),
        ([*FILE_ARGS, "--received-at", "2026-12-01"],
         "error: argument --received-at: '2026-12-01' is not a date and time with its UTC offset "
         "(e.g. 2026-12-01T09:30:00+00:00)"),
        ([*FILE_ARGS, "--received-at", "2099-12-01T10:00:00+00:00"],
         "error: --received-at: 2099-12-01T10:00:00+00:00 is in the future"),
        ([*FILE_ARGS, "--policy", "nobody"], "error: --policy: unknown policy 'nobody' (known: connexus, "
                                             "hos-code-2024, optivo)"),
        (FILE_ARGS[:3], "error: file needs --resident-name, --property-address, --nation, --summary (or --from-file)"),
        ([*FILE_ARGS[:-1], ""], "error: --summary: must not be empty"),
    ],
)
def test_bad_arguments_exit_2_in_the_clis_own_words(args: list[str], line: str) -> None:
    """Issue 16, point 12: these exited 1, and --received-at leaked pydantic's wording."""
    r = cli(*args, env={"TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert (r.returncode, r.stderr, r.stdout) == (2, line + "\n", ""), r
    assert "Input should" not in r.stderr and "Value error" not in r.stderr
