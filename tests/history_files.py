"""Recorded histories of every policy's happy and unhappy paths, kept in tests/histories/.

A case that runs for months replays its history against whatever code the workers run next; a
change that issues different commands for the same history breaks it. The replay test replays every
recorded history against today's code, so such a change fails CI instead of production.

Subdirectories keep the recordings of earlier code: tests/histories/three-opening-activities/ holds
cases started before open_case (workflows/complaint.py, OPEN_IN_ONE_ACTIVITY), which took three
activities to open and wrote every timeline row with record_events. tests/histories/before-withdrawals/
holds a case cancelled in Temporal before a cancellation became a withdrawal (workflows/withdrawal.py,
WITHDRAW_ON_CANCEL): it stopped at once, and must still replay so.

Histories are recorded, on purpose only, by `make record-histories` (COMPLAINTS_RECORD_HISTORIES=1
while the policy tests run). They are stored decrypted: the tests' residents are invented, and the
session's encryption key is thrown away, so an encrypted history could never be replayed again.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.converter import PayloadCodec

HISTORIES = Path(__file__).resolve().parent / "histories"
RECORDING = os.environ.get("COMPLAINTS_RECORD_HISTORIES") == "1"


async def _decode_in_place(message: Message, codec: PayloadCodec) -> None:
    """Decode every Payload anywhere in a proto message (fields, repeated fields, maps)."""
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            entries = list(value.values())
            if field.message_type.fields_by_name["value"].message_type is None:
                continue
        elif field.is_repeated:
            entries = list(value)
        else:
            entries = [value]
        for entry in entries:
            if isinstance(entry, Payload):
                [plain] = await codec.decode([entry])
                entry.CopyFrom(plain)
            else:
                await _decode_in_place(entry, codec)


async def plaintext(history: WorkflowHistory, codec: PayloadCodec) -> WorkflowHistory:
    for event in history.events:
        await _decode_in_place(event, codec)
    return history


async def record(handle: WorkflowHandle, name: str, codec: PayloadCodec | None) -> None:
    """Keep this case's history under `name` when recording; otherwise do nothing."""
    if not RECORDING:
        return
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{2,60}", name):
        raise ValueError(f"history name {name!r}: lower-case words and hyphens")
    history = await handle.fetch_history()
    if codec is not None:
        history = await plaintext(history, codec)
    HISTORIES.mkdir(exist_ok=True)
    (HISTORIES / f"{name}.json").write_text(history.to_json(), encoding="utf-8")


def recorded() -> list[Path]:
    """Today's recordings (top level) and those of earlier code, kept in subdirectories named for the
    change after which cases issue different commands (running cases of that age must still replay)."""
    return sorted(HISTORIES.rglob("*.json"))


def name(path: Path) -> str:
    return path.relative_to(HISTORIES).with_suffix("").as_posix()
