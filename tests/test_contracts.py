"""The published contract: docs/contracts/ matches the models, and a service that knows only that
JSON (a plain temporalio client, default data converter, dicts) can drive a case."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from activities.db import create_pool
from domain.calendar import LONDON
from domain.case import CaseEvent, CaseStatus
from domain.contract import FileComplaint, Query, Signal, Update, UpdateResult, workflow_id
from domain.encryption import EncryptionCodec
from starter import contracts
from starter.contracts import MESSAGES, QUERIES, START_EXAMPLE, START_FILE, UPDATE_RESULT_FILE, schema_file
from tests.conftest import TEST_KEYRING
from tests.support import new_reference, worker

DOCS = contracts.OUT_DIR


# -- a small JSON Schema checker for the keywords pydantic emits (jsonschema is not installed) ----
def schema_errors(value: Any, schema: dict[str, Any], root: dict[str, Any], where: str = "$") -> list[str]:
    if "$ref" in schema:
        target = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return schema_errors(value, target, root, where)
    if "anyOf" in schema:
        options = [schema_errors(value, s, root, where) for s in schema["anyOf"]]
        return [] if any(not o for o in options) else [f"{where}: matches no anyOf branch ({options})"]
    errors: list[str] = []
    types = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
    kind = schema.get("type")
    if kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = kind is None or isinstance(value, types[kind])
    if not ok:
        return [f"{where}: {value!r} is not {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} not in {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{where}: {value!r} is not {schema['const']!r}")
    if isinstance(value, str):
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", 10**9):
            errors.append(f"{where}: length {len(value)} out of range")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{where}: {value!r} does not match {schema['pattern']}")
        fmt = schema.get("format")
        try:
            if fmt == "date-time":
                datetime.fromisoformat(value)
            elif fmt == "date":
                date.fromisoformat(value)
        except ValueError:
            errors.append(f"{where}: {value!r} is not a {fmt}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: {value} > {schema['maximum']}")
    if isinstance(value, list):
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", 10**9):
            errors.append(f"{where}: {len(value)} items out of range")
        for i, item in enumerate(value):
            errors += schema_errors(item, schema.get("items", {}), root, f"{where}[{i}]")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        errors += [f"{where}: missing {k}" for k in schema.get("required", []) if k not in value]
        if schema.get("additionalProperties") is False:
            errors += [f"{where}: unexpected {k}" for k in value if k not in props]
        for k, v in value.items():
            if k in props:
                errors += schema_errors(v, props[k], root, f"{where}.{k}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += schema_errors(v, schema["additionalProperties"], root, f"{where}.{k}")
    return errors


def on_disk(name: str) -> dict[str, Any]:
    return json.loads((DOCS / name).read_text(encoding="utf-8"))


def assert_valid(value: Any, file: str) -> None:
    schema = on_disk(file)
    problems = schema_errors(value, schema, schema)
    assert not problems, f"{file}: {problems}"


# -- the contract on disk ---------------------------------------------------------------------
def test_every_message_and_query_is_documented() -> None:
    assert set(MESSAGES) == set(Signal) | set(Update), "each Signal and Update needs a row in starter/contracts.py"
    assert set(QUERIES) == set(Query)
    for name, doc in MESSAGES.items():
        assert doc.senders and doc.accepted_when and doc.changes, name


def test_schemas_on_disk_are_what_the_models_produce(tmp_path: Path) -> None:
    contracts.write(tmp_path)
    fresh = {p.name: p.read_text(encoding="utf-8") for p in tmp_path.iterdir()}
    committed = {p.name: p.read_text(encoding="utf-8") for p in DOCS.iterdir()}
    assert sorted(committed) == sorted(fresh), "docs/contracts/ has missing or stale files: run `make contracts`"
    stale = [n for n in fresh if fresh[n] != committed[n]]
    assert not stale, f"docs/contracts/ differs from the models in {stale}: run `make contracts`"
    assert contracts.main(["--check"]) == 0
    # One file per signal/update payload, the start argument, each query's result and UpdateResult.
    expected = {schema_file(m) for m in [*Signal, *Update, *Query]} | {START_FILE, UPDATE_RESULT_FILE, "README.md"}
    assert set(fresh) == expected


def test_check_mode_names_a_file_that_drifted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    contracts.write(tmp_path)
    path = tmp_path / schema_file(Signal.EXTEND_DEADLINE)
    schema = json.loads(path.read_text())
    schema["properties"]["working_days"]["maximum"] = 99  # as if the model changed and nobody regenerated
    path.write_text(json.dumps(schema))
    (tmp_path / "retired_signal.schema.json").write_text("{}")
    assert contracts.main(["--check", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "extend_deadline.schema.json" in err and "retired_signal.schema.json" in err


def test_readme_lists_every_message_with_its_schema_and_refusal_rule() -> None:
    text = (DOCS / "README.md").read_text(encoding="utf-8")
    for name in MESSAGES:
        kind = "signal" if isinstance(name, Signal) else "update"
        rows = [line for line in text.splitlines() if line.startswith(f"| {kind} | `{name.value}` |")]
        assert len(rows) == 1, name
        assert f"({schema_file(name)})" in rows[0]
        assert ("`signal_refused`" if kind == "signal" else "comes back to the caller as an error") in rows[0]
    for q in QUERIES:
        assert f"| query | `{q.value}` |" in text


def test_documented_examples_validate_against_the_schema_files_and_the_models() -> None:
    assert_valid(START_EXAMPLE, START_FILE)
    FileComplaint.model_validate(START_EXAMPLE)
    for name, doc in MESSAGES.items():
        assert json.loads(json.dumps(doc.example)) == doc.example, f"{name}: example must be plain JSON"
        assert_valid(doc.example, schema_file(name))
        doc.model.model_validate(doc.example)
    # The checker itself refuses what the models refuse.
    schema = on_disk(schema_file(Signal.EXTEND_DEADLINE))
    assert schema_errors({"working_days": 0, "reason": "x"}, schema, schema)
    assert schema_errors({"working_days": 3, "reason": "x", "colour": "red"}, schema, schema)
    assert schema_errors({"reason": "x"}, schema, schema)


# -- a service in another language ------------------------------------------------------------
async def poll(what: str, check, limit: float = 30.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_a_plain_client_drives_a_case_with_documented_json_only(dev_env: WorkflowEnvironment, db_url: str,
                                                                      dev_now: Callable[[], datetime]) -> None:
    # Default payload converter: plain JSON dicts, as any SDK sends them, sealed with the documented
    # AES-GCM codec (a service in another language implements it, or posts to the codec server).
    plain = await Client.connect(dev_env.client.service_client.config.target_host, namespace=dev_env.client.namespace,
                                 data_converter=DataConverter(payload_codec=EncryptionCodec(TEST_KEYRING)))
    ref = new_reference("PLAIN")
    queue = f"contracts-{ref}"
    start = {**START_EXAMPLE, "reference": ref,
             "received_at": dev_now().astimezone(LONDON).replace(microsecond=0).isoformat()}
    assert_valid(start, START_FILE)
    pool = await create_pool(db_url)

    async def timeline() -> list[dict[str, Any]]:
        events = await handle.query(Query.TIMELINE.value)
        assert_valid(events, schema_file(Query.TIMELINE))
        return events

    async def state() -> dict[str, Any]:
        s = await handle.query(Query.STATUS.value)
        assert isinstance(s, dict)
        assert_valid(s, schema_file(Query.STATUS))
        return s

    try:
        async with worker(dev_env, pool, queue):
            handle = await plain.start_workflow("ComplaintWorkflow", start, id=workflow_id(ref), task_queue=queue)
            s = await poll("Stage 1 investigation", lambda: _when(state(), lambda s: s["status"] == "investigating"))
            response_due = {d["key"]: d for d in s["deadlines"]}["stage1.response"]["due_date"]

            # A non-working day added on the (extended) due date must move it when calendar_changed arrives.
            examples = {name: doc.example for name, doc in MESSAGES.items()}
            for name in Signal:
                if name is Signal.CALENDAR_CHANGED:
                    s = await poll("extension", lambda: _when(state(), lambda s: len(s["extensions"]) == 1))
                    response_due = {d["key"]: d for d in s["deadlines"]}["stage1.response"]["due_date"]
                    await pool.execute("INSERT INTO calendar_changes (day, change, nation, reason) "
                                       "VALUES ($1, 'add', 'england-and-wales', 'Test closure')",
                                       date.fromisoformat(response_due))
                await handle.signal(name.value, examples[name])

            # What a case at Stage 1 makes of each signal: acted on, or refused with a reason.
            outcome = {
                Signal.RECORD_CONTACT: "contact_recorded",
                Signal.EXTEND_DEADLINE: "deadline_extended",
                Signal.CALENDAR_CHANGED: "deadline_moved",
                Signal.REQUEST_REVIEW: "signal_refused",  # no Stage 1 response yet
                Signal.TENANT_DECLINED_DISCUSSION: "signal_refused",  # no review discussion awaited
                Signal.DECLINE_RESIDENT_PARTICIPATION: "signal_refused",  # the Code has no participation
                Signal.REQUEST_TO_ATTEND: "signal_refused",  # the Code has no panel
                Signal.OMBUDSMAN_REFERRAL: "signal_refused",  # the procedure has not ended
                Signal.SURVEY_RESPONSE: "signal_refused",  # no survey sent
            }
            assert set(outcome) == set(Signal)
            refused = sum(1 for v in outcome.values() if v == "signal_refused")
            await poll("every signal handled", lambda: _when(
                timeline(), lambda ev: sum(e["kind"] == "signal_refused" for e in ev) == refused
                and any(e["kind"] == "deadline_moved" for e in ev)))
            events = await timeline()
            for name, kind in outcome.items():
                if kind == "signal_refused":
                    mine = [e for e in events if e["kind"] == kind and e["detail"]["message"] == name.value]
                    assert len(mine) == 1 and mine[0]["detail"]["reason"].startswith(f"{name.value}: "), (name, mine)
                else:
                    assert sum(e["kind"] == kind for e in events) == 1, (name, [e["kind"] for e in events])
            moved = next(e for e in events if e["kind"] == "deadline_moved")
            assert moved["detail"]["old_due_date"] == response_due and moved["detail"]["cause"].startswith("Extra")
            contact = next(e for e in events if e["kind"] == "contact_recorded")
            assert contact["actor"] == "Priya Shah" and contact["detail"]["notes"] == "Agreed a visit on Tuesday"
            assert (await state())["refused_messages"] == refused

            # Updates: an accepted one answers with UpdateResult; a refused one is an error saying why.
            result = await handle.execute_update(Update.SUBMIT_STAGE1_RESPONSE.value,
                                                 examples[Update.SUBMIT_STAGE1_RESPONSE])
            assert isinstance(result, dict) and result["accepted"] is True
            assert_valid(result, UPDATE_RESULT_FILE)
            with pytest.raises(WorkflowUpdateFailedError) as refused_update:
                await handle.execute_update(Update.SUBMIT_STAGE1_RESPONSE.value,
                                            examples[Update.SUBMIT_STAGE1_RESPONSE])
            assert "already been submitted" in str(refused_update.value.cause)
            # Once responded, the same request_review JSON that was refused is accepted.
            await poll("response sent", lambda: _when(state(), lambda s: s["status"] == "responded"))
            await handle.signal(Signal.REQUEST_REVIEW.value, examples[Signal.REQUEST_REVIEW])
            events = await poll("review requested", lambda: _when(
                timeline(), lambda ev: any(e["kind"] == "escalation_requested" for e in ev)))
            asked = next(e for e in events if e["kind"] == "escalation_requested")
            assert asked["detail"]["reasons"] == examples[Signal.REQUEST_REVIEW]["reasons"]

            # The case record holds what the timeline shows (the landlord's record, not only Temporal's).
            kinds = await poll("case record", lambda: _rows(pool, ref, "escalation_requested"))
            assert {"contact_recorded", "deadline_extended", "deadline_moved", "signal_refused"} <= set(kinds)
            # And a reader with the pydantic models sees the same answers.
            CaseStatus.model_validate(await state())
            [CaseEvent.model_validate(e) for e in await timeline()]
            UpdateResult.model_validate(result)
            await handle.terminate("test over")
    finally:
        await pool.close()


async def _when(value_coro, check):
    value = await value_coro
    return value if check(value) else None


async def _rows(pool, ref: str, last_kind: str) -> list[str] | None:
    kinds = [r["kind"] for r in await pool.fetch("SELECT kind FROM timeline WHERE reference=$1 ORDER BY seq", ref)]
    return kinds if last_kind in kinds else None

