"""A subcommand for every signal and update: flags from the models, one-line errors, real sends."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.db import create_pool
from domain.contract import (
    OmbudsmanReferral,
    RequestResidentPanelists,
    ReviewFindings,
    Signal,
    StageResponse,
    SurveyResponse,
    Update,
)
from starter.cli import parser
from starter.common import UsageError
from starter.contracts import MESSAGES
from starter.messages_cmd import COMMANDS, payload_from_args
from tests.support import new_reference, wait_for, worker

ROOT = Path(__file__).resolve().parent.parent
BY_NAME = {c.name: c for c in COMMANDS}


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "starter", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60)


def payload(*argv: str):
    args = parser().parse_args(list(argv))
    return payload_from_args(MESSAGES[BY_NAME[argv[0]].message].model, args)


def test_every_signal_and_update_has_its_own_command() -> None:
    assert {c.message for c in COMMANDS} == set(Signal) | set(Update)
    assert len({c.name for c in COMMANDS}) == len(COMMANDS)
    names = set(parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert {c.name for c in COMMANDS} | {"signal", "update", "status", "timeline", "list", "file"} <= names


@pytest.mark.parametrize("command", [c.name for c in COMMANDS])
def test_the_documented_payload_round_trips_through_from_file(command: str, tmp_path: Path) -> None:
    """Every field the model has can be given: the whole documented example comes through unchanged."""
    doc = MESSAGES[BY_NAME[command].message]
    path = tmp_path / "payload.json"
    path.write_text(json.dumps(doc.example))
    assert payload(command, "CMP-1", "--from-file", str(path)) == doc.model.model_validate(doc.example)


def test_flags_build_the_payload_through_the_model() -> None:
    assert payload("findings", "CMP-1", "--answer", "investigation_thorough=no:Missed the leak",
                   "--answer", "all_points_answered = yes : All six", "--summary", "Not thorough") == ReviewFindings(
        answers=[{"key": "investigation_thorough", "answer": False, "notes": "Missed the leak"},
                 {"key": "all_points_answered", "answer": True, "notes": "All six"}],
        summary="Not thorough")
    assert payload("panelists", "CMP-1", "--panelist", "Jo Bell:tenant",
                   "--panelist", "Sam Bell:resident_with_tenant_consent:consent") == RequestResidentPanelists(
        panelists=[{"name": "Jo Bell", "basis": "tenant", "tenant_consent": False},
                   {"name": "Sam Bell", "basis": "resident_with_tenant_consent", "tenant_consent": True}])
    assert payload("respond", "CMP-1", "--decision", "upheld", "--reasons", "r", "--outstanding", "a",
                   "--outstanding-actions", "b", "--point", "p") == StageResponse(
        decision="upheld", reasons="r", outstanding_actions=["a", "b"], points_addressed=["p"])
    assert payload("survey", "CMP-1", "--no-satisfied", "--score", "3") == SurveyResponse(satisfied=False, score=3)
    assert payload("refer", "CMP-1", "--route", "designated_person", "--designated-person", "Cllr Khan",
                   "--at", "2027-03-01T10:00:00+00:00") == OmbudsmanReferral.model_validate(
        {"route": "designated_person", "designated_person": "Cllr Khan", "at": "2027-03-01T10:00:00+00:00"})


def test_flags_override_the_file(tmp_path: Path) -> None:
    path = tmp_path / "survey.json"
    path.write_text(json.dumps({"satisfied": True, "score": 9}))
    assert payload("survey", "CMP-1", "--from-file", str(path), "--score", "2") == SurveyResponse(
        satisfied=True, score=2)
    with pytest.raises(UsageError, match="the following arguments are required: --answer, --summary"):
        payload("findings", "CMP-1")


OFFLINE = {"TEMPORAL_ADDRESS": "127.0.0.1:1"}  # nothing listens: these must fail before connecting


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["survey", "CMP-1", "--score", "3"], 2, "required: --satisfied"),
        (["findings", "CMP-1", "--answer", "thorough", "--summary", "s"], 2, "is not key=yes|no:notes"),
        (["panelists", "CMP-1", "--panelist", "Jo"], 2, "is not name:basis"),
        (["refer", "CMP-1", "--route", "sideways"], 2, "invalid choice"),
        (["panel-decision", "CMP-1", "--decision", "upheld"], 2, "required: --reasons"),
        (["extend", "CMP-1", "--working-days", "99", "--reason", "r"], 2, "--working-days: must be at most 60, got 99"),
        (["panel-decision", "CMP-1", "--decision", "upheld", "--reasons", "r", "--sat-on", "Tuesday"], 2,
         "--sat-on: must be a date, YYYY-MM-DD, got 'Tuesday'"),
        (["refer", "CMP-1", "--route", "direct", "--at", "2027-03-01T10:00"], 2, "--at: needs a time zone"),
        (["survey", "CMP-1", "--from-file", "/nonexistent.json"], 2, "no such file"),
    ],
)
def test_bad_input_is_one_line_and_never_reaches_the_server(args: list[str], code: int, needle: str) -> None:
    r = cli(*args, env=OFFLINE)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == code and len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], r


async def test_the_commands_drive_a_real_case(dev_env: WorkflowEnvironment, db_url: str,
                                              dev_now: Callable[[], datetime]) -> None:
    ref = new_reference("CLIM")
    queue = f"cli-{ref}"
    env = {"TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
           "TEMPORAL_NAMESPACE": dev_env.client.namespace, "COMPLAINTS_TASK_QUEUE": queue}

    # In a thread: the worker runs on this event loop, and must keep serving the case while the CLI waits.
    async def ok(*args: str) -> Any:
        r = await asyncio.to_thread(cli, *args, "--json", env=env)
        assert r.returncode == 0 and not r.stderr, r
        return json.loads(r.stdout)

    async def refused(*args: str) -> str:
        r = await asyncio.to_thread(cli, *args, env=env)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1 and len(lines) == 1 and not r.stdout, r
        return lines[0]

    pool = await create_pool(db_url)
    try:
        async with worker(dev_env, pool, queue):
            await ok("file", "--reference", ref, "--resident-name", "Maria Jones", "--resident-email",
                     "m@example.org", "--property-address", "Flat 4, 12 Harbour Road", "--nation",
                     "england-and-wales", "--summary", "Damp in the bedroom",
                     "--received-at", dev_now().isoformat())
            handle = dev_env.client.get_workflow_handle(f"complaint-{ref}")
            await wait_for(handle, lambda s: s.status.value == "investigating", "acknowledgement")

            sent = await ok("contact", ref, "--channel", "phone", "--direction", "outbound", "--by", "Priya Shah",
                            "--notes", "Visit booked")
            assert sent == {"reference": ref, "signal": "record_contact", "sent": True}
            await ok("extend", ref, "--working-days", "3", "--reason", "Surveyor's report")
            # Too early: the case refuses, records why, and the CLI reads that answer and exits 1 with it.
            line = await refused("review-request", ref, "--reasons", "Too slow")
            assert line.startswith("error: refused: request_review: "), line
            line = await refused("signal", ref, "survey_response", "--data", '{"satisfied": true, "score": 3}')
            assert line.startswith("error: refused: survey_response: "), line

            # Updates answer at once: accepted with UpdateResult, refused with the case's reason.
            line = await refused("agree-outcome", ref, "--role", "director", "--name", "A", "--decision", "upheld",
                                 "--outcome", "o")
            assert line.startswith("error: refused: agree_outcome: "), line
            line = await refused("final-response", ref, "--decision", "upheld", "--reasons", "r")
            assert line.startswith("error: refused: submit_final_response: "), line
            line = await refused("update", ref, "supply_contact_details", "--data", "{}")
            assert line == "error: refused: supply_contact_details: give an address or an email"
            result = await ok("respond", ref, "--decision", "partly_upheld", "--reasons", "Booked late",
                              "--point", "Delay", "--by", "Priya Shah")
            assert result["accepted"] is True and result["details"] == {"decision": "partly_upheld"}
            line = await refused("respond", ref, "--decision", "upheld", "--reasons", "again")
            assert line == "error: refused: submit_stage1_response: the Stage 1 response has already been submitted"

            status = await ok("status", ref)
            assert status["reference"] == ref and status["refused_messages"] == 2
            assert [e["working_days"] for e in status["extensions"]] == [3]
            events = await ok("timeline", ref)
            kinds = [e["kind"] for e in events]
            assert {"contact_recorded", "deadline_extended", "stage1_responded"} <= set(kinds)
            refusals = {e["detail"]["message"] for e in events if e["kind"] == "signal_refused"}
            assert refusals == {"request_review", "survey_response"}

            line = await refused("refer", "CMP-NOPE", "--route", "direct")
            assert line == "error: no case with reference CMP-NOPE"
            await handle.terminate("test over")
            line = await refused("contact", ref, "--channel", "phone", "--direction", "inbound", "--by", "x")
            assert line == f"error: case {ref} has ended (terminated); it accepts no more messages"
            assert (await ok("status", ref))["reference"] == ref  # queries still read an ended case
    finally:
        await pool.close()


async def test_file_without_a_resident_address_writes_to_the_property(dev_env: WorkflowEnvironment, db_url: str,
                                                                      dev_now: Callable[[], datetime]) -> None:
    """The minimal `file` (no resident address or email) used to leave the case waiting for contact
    details: the acknowledgement had nowhere to go. The property's address is the default."""
    ref = new_reference("CLIA")
    queue = f"cli-{ref}"
    env = {"TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
           "TEMPORAL_NAMESPACE": dev_env.client.namespace, "COMPLAINTS_TASK_QUEUE": queue}
    pool = await create_pool(db_url)
    try:
        async with worker(dev_env, pool, queue):
            r = await asyncio.to_thread(cli, "file", "--reference", ref, "--resident-name", "Maria Jones",
                                        "--property-address", "Flat 4, 12 Harbour Road", "--postcode", "BS1 4AA",
                                        "--nation", "england-and-wales", "--summary", "Damp in the bedroom",
                                        "--received-at", dev_now().isoformat(), env=env)
            assert r.returncode == 0, r.stderr
            handle = dev_env.client.get_workflow_handle(f"complaint-{ref}")
            s = await wait_for(handle, lambda s: s.status.value == "investigating", "acknowledgement")
            assert s.problems == []
            address = await pool.fetchval(
                "SELECT address FROM correspondence WHERE reference=$1 AND kind='acknowledgement'", ref)
            assert address == "Flat 4, 12 Harbour Road, BS1 4AA"
            await handle.terminate("test over")
    finally:
        await pool.close()
