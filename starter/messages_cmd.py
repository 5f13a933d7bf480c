"""One subcommand per signal and update, with flags generated from the message's pydantic model.

    python -m starter extend CMP-2026-0001 --working-days 5 --reason "Waiting for the surveyor"
    python -m starter findings CMP-2026-0001 --answer investigation_thorough=no:"Not booked" --summary ...
    python -m starter refer CMP-2026-0001 --route direct --json

Flags come from the model's fields (so a field added to domain/contract.py appears here at once):
`--field-name` for each field; booleans as `--flag/--no-flag`; enums and Literals as choices; lists
of text repeatable; lists of models (review answers, panelists) through a short form given below,
anything else as JSON text. `--from-file PAYLOAD.json` gives the whole payload, flags overriding
it. The payload is validated through the model before anything is sent, so a bad one is refused
in one line without touching the case. Help text comes from starter/contracts.py's table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import enum
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from domain.contract import Signal, Update
from starter.common import UsageError, build, load_json, send_signal, send_update
from starter.contracts import MESSAGES
from starter.wording import Loc, flag_for, path_for

YES = {"yes", "y", "true"}
NO = {"no", "n", "false"}


def parse_answer(text: str) -> dict[str, Any]:
    """`key=yes|no:notes` -> a ReviewAnswer: one review question answered, with the reviewer's notes."""
    key, eq, rest = text.partition("=")
    verdict, _, notes = rest.partition(":")
    if not eq or not key.strip() or verdict.strip().lower() not in YES | NO:
        raise argparse.ArgumentTypeError(f"{text!r} is not key=yes|no:notes")
    return {"key": key.strip(), "answer": verdict.strip().lower() in YES, "notes": notes.strip()}


def parse_panelist(text: str) -> dict[str, Any]:
    """`name:basis[:consent]` -> a ResidentPanelist (consent: the tenant agreed, for a household member)."""
    parts = [p.strip() for p in text.split(":")]
    if len(parts) not in (2, 3) or not all(parts[:2]) or (len(parts) == 3 and parts[2] != "consent"):
        raise argparse.ArgumentTypeError(f"{text!r} is not name:basis or name:basis:consent")
    return {"name": parts[0], "basis": parts[1], "tenant_consent": len(parts) == 3}


def parse_json_value(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc.msg}") from None


@dataclass(frozen=True)
class ItemForm:
    """How one item of a list-of-models field is written on the command line."""

    flag: str
    parse: Callable[[str], Any]
    metavar: str


# Lists of models get a short form; a list field without one takes JSON text (see _add_field).
ITEM_FORMS: dict[str, ItemForm] = {
    "answers": ItemForm("--answer", parse_answer, "KEY=yes|no:NOTES"),
    "panelists": ItemForm("--panelist", parse_panelist, "NAME:BASIS[:consent]"),
}


@dataclass(frozen=True)
class Command:
    name: str
    message: Signal | Update
    help: str
    # Extra (usually shorter) spellings for some fields' flags, kept from earlier versions of the CLI.
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # A boolean flag that sends a different message with the same payload (respond --final).
    switch: tuple[str, Update] | None = None


RESPONSE_ALIASES = {"outstanding_actions": ("--outstanding",), "points_addressed": ("--point",)}

COMMANDS: list[Command] = [
    Command("contact", Signal.RECORD_CONTACT, "record a contact with the resident"),
    Command("extend", Signal.EXTEND_DEADLINE, "extend the current response deadline"),
    Command("review-request", Signal.REQUEST_REVIEW, "the resident asks for a review (escalation)"),
    Command("decline-discussion", Signal.TENANT_DECLINED_DISCUSSION,
            "the resident declines the Stage 2 review discussion"),
    Command("decline-participation", Signal.DECLINE_RESIDENT_PARTICIPATION,
            "the resident declines involved-resident participation in the review"),
    Command("attend", Signal.REQUEST_TO_ATTEND, "the resident asks to attend the review panel"),
    Command("refer", Signal.OMBUDSMAN_REFERRAL, "record a referral to the Ombudsman"),
    Command("survey", Signal.SURVEY_RESPONSE, "record the resident's satisfaction survey answer"),
    Command("calendar-changed", Signal.CALENDAR_CHANGED,
            "tell one case its working-day calendar changed (reload it, move deadlines)"),
    Command("respond", Update.SUBMIT_STAGE1_RESPONSE,
            "submit the Stage 1 response (or, with --final, the Stage 2 one)", RESPONSE_ALIASES,
            switch=("--final", Update.SUBMIT_FINAL_RESPONSE)),
    Command("refuse-escalation", Update.REFUSE_ESCALATION, "refuse the resident's escalation, for a listed reason"),
    Command("findings", Update.RECORD_REVIEW_FINDINGS, "record the complaints manager's review findings"),
    Command("agree-outcome", Update.AGREE_OUTCOME, "a Head of Service or Director agrees the review outcome"),
    Command("panelists", Update.REQUEST_RESIDENT_PANELISTS, "name the involved residents for the review panel"),
    Command("panel-decision", Update.RECORD_PANEL_DECISION, "record the review panel's decision"),
    Command("final-response", Update.SUBMIT_FINAL_RESPONSE, "submit the Stage 2 final response",
            RESPONSE_ALIASES),
    Command("supply-contact", Update.SUPPLY_CONTACT_DETAILS,
            "give an address or email so that waiting letters can be sent"),
    Command("withdraw", Update.WITHDRAW, "the resident withdraws the complaint: the case closes with a letter"),
    Command("reassign", Update.REASSIGN_HANDLER,
            "give the case to another member of staff (the handler; the reviewer at Stage 2)", {"staff_id": ("--to",)}),
    Command("accept-escalation", Update.ACCEPT_ESCALATION,
            "accept the resident's escalation now: Stage 2 starts without waiting out the triage"),
]


# Where the case waits for one of two answers, the CLI names both commands.
ALSO = {Update.REFUSE_ESCALATION.value: "accept-escalation or refuse-escalation"}


def command_for(message: str) -> str | None:
    """The CLI command that sends a signal or update, by the message's name (submit_stage1_response -> respond)."""
    if message in ALSO:
        return ALSO[message]
    return next((c.name for c in COMMANDS if c.message.value == message), None)


def in_cli_words(text: str) -> str:
    """A case's text with the message names it gives ("update submit_stage1_response") as the CLI's commands."""
    def name(m: re.Match[str]) -> str:
        command = command_for(m.group(2))
        return f"python -m starter {command}" if command else m.group(0)

    return re.sub(r"\b(update |signal )?(" + "|".join(sorted((c.message.value for c in COMMANDS), key=len,
                                                             reverse=True)) + r")\b", name, text)


def _unwrap(annotation: Any) -> Any:
    """`X | None` -> X; `Annotated[X, ...]` -> X."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            rest = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(rest) != 1:
                return annotation
            annotation = rest[0]
        else:
            return annotation


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_field(p: argparse.ArgumentParser, name: str, info: FieldInfo, aliases: tuple[str, ...]) -> None:
    kind = _unwrap(info.annotation)
    origin = typing.get_origin(kind)
    dest = f"field_{name}"
    flags = [_flag(name), *aliases]
    help_text = info.description or ""
    if not info.is_required():
        help_text += f" (default: {info.get_default(call_default_factory=True)!r})"
    common: dict[str, Any] = {"dest": dest, "default": None, "help": help_text.strip()}
    if kind is bool:
        p.add_argument(*flags, action=argparse.BooleanOptionalAction, **common)
    elif kind is int:
        p.add_argument(*flags, type=int, metavar="N", **common)
    elif isinstance(kind, type) and issubclass(kind, enum.Enum):
        p.add_argument(*flags, choices=[m.value for m in kind], **common)
    elif origin is Literal:
        p.add_argument(*flags, choices=[str(a) for a in typing.get_args(kind)], **common)
    elif kind in (str, dt.date, dt.datetime):
        metavar = {dt.date: "YYYY-MM-DD", dt.datetime: "ISO-DATETIME"}.get(kind, "TEXT")
        p.add_argument(*flags, metavar=metavar, **common)
    elif origin is list and _unwrap(typing.get_args(kind)[0]) is str:
        p.add_argument(*flags, action="append", metavar="TEXT", **{**common, "help": common["help"] + " (repeatable)"})
    elif origin is list and name in ITEM_FORMS:
        form = ITEM_FORMS[name]
        p.add_argument(form.flag, *aliases, action="append", type=form.parse, metavar=form.metavar,
                       **{**common, "help": (common["help"] + " (repeatable)").strip()})
    else:  # a shape without a short form: take it as JSON, validated by the model like the rest
        p.add_argument(*flags, type=parse_json_value, metavar="JSON", **common)


def _field_flag(model: type[BaseModel], name: str) -> str:
    return ITEM_FORMS[name].flag if name in ITEM_FORMS and typing.get_origin(
        _unwrap(model.model_fields[name].annotation)) is list else _flag(name)


def payload_from_args(model: type[BaseModel], args: argparse.Namespace) -> BaseModel:
    """Merge --from-file and the flags, check required flags, validate through the model."""
    data: dict[str, Any] = {}
    from_file = getattr(args, "from_file", None)
    if from_file:
        loaded = load_json("@" + from_file)
        if not isinstance(loaded, dict):
            raise UsageError(f"{from_file}: the payload must be a JSON object")
        data.update(loaded)
    flagged: set[str] = set()
    for name in model.model_fields:
        value = getattr(args, f"field_{name}", None)
        if value is not None:
            data[name] = value
            flagged.add(name)
    missing = [_field_flag(model, n) for n, info in model.model_fields.items() if info.is_required() and n not in data]
    if missing:
        raise UsageError("the following arguments are required: " + ", ".join(missing) + " (or --from-file)")

    def where(loc: Loc) -> str:
        # A field given by a flag is named by its flag; one read from --from-file by its path in the file.
        if from_file and (not loc or loc[0] not in flagged):
            return f"{from_file}: {path_for(loc)}"
        return flag_for((_field_flag(model, str(loc[0])).removeprefix("--").replace("-", "_"), *loc[1:]))

    return build(model, data, where)


def _runner(cmd: Command) -> Callable[[argparse.Namespace], Any]:
    model = MESSAGES[cmd.message].model

    async def run(args: argparse.Namespace) -> int:
        payload = payload_from_args(model, args)
        name = cmd.switch[1] if cmd.switch and getattr(args, "switch", False) else cmd.message
        if isinstance(name, Signal):
            return await send_signal(args, name.value, payload)
        return await send_update(args, name.value, payload)

    return run


def add_parsers(subparsers: Any) -> None:
    """Register a subcommand for every message in COMMANDS."""
    for cmd in COMMANDS:
        doc = MESSAGES[cmd.message]
        kind = "signal" if isinstance(cmd.message, Signal) else "update"
        after = ("If the case cannot act on it, it records why in its timeline (signal_refused)."
                 if kind == "signal" else "A refusal is printed with its reason and exits 1.")
        p = subparsers.add_parser(
            cmd.name, help=cmd.help,
            description=f"Sends the {kind} {cmd.message.value}. Accepted: {doc.accepted_when} "
                        f"Changes: {doc.changes} {after}")
        p.add_argument("reference", help="the complaint reference, e.g. CMP-2026-0001")
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.add_argument("--from-file", metavar="PAYLOAD.json",
                       help=f"the whole {doc.model.__name__} payload as JSON; flags override its fields")
        for name, info in doc.model.model_fields.items():
            _add_field(p, name, info, cmd.aliases.get(name, ()))
        if cmd.switch:
            p.add_argument(cmd.switch[0], dest="switch", action="store_true",
                           help=f"send {cmd.switch[1].value} instead")
        p.set_defaults(func=_runner(cmd))
