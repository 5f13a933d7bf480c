"""The published contract for other services: `make contracts` writes docs/contracts/ from the models.

    python -m starter.contracts                # (re)write docs/contracts/
    python -m starter.contracts --check        # exit 1 if docs/contracts/ differs from the models

Why here and not in domain/: domain/contract.py holds what the workflow *needs* (names, payload
models); this module holds what integrators *read* (who sends a message, when it is accepted,
what it changes, an example payload). Keeping the prose out of domain/ keeps it out of the
workflow sandbox, and the CLI, which sits beside it in starter/, takes its help text from the
same table, so the docs, the CLI and the tests cannot drift apart. Every schema is generated
from the pydantic models; nothing is copied by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

from domain.case import CaseEvent, CaseStatus
from domain.contract import (
    TASK_QUEUE_DEFAULT,
    WORKFLOW_TYPE,
    AcceptEscalation,
    AgreeOutcome,
    CalendarChanged,
    DeclineResidentParticipation,
    ExtendDeadline,
    FileComplaint,
    OmbudsmanReferral,
    PanelDecision,
    Query,
    ReassignHandler,
    RecordContact,
    RefuseEscalation,
    RequestResidentPanelists,
    RequestReview,
    RequestToAttend,
    ReviewFindings,
    Signal,
    StageResponse,
    SupplyContactDetails,
    SurveyResponse,
    TenantDeclinedDiscussion,
    Update,
    UpdateResult,
    Withdraw,
)

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "docs" / "contracts"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

CRM, CONTACT_CENTRE, PORTAL, OPERATOR = "CRM", "contact centre", "resident portal", "operator"


@dataclass(frozen=True)
class MessageDoc:
    """One signal or update as integrators see it."""

    model: type[BaseModel]
    senders: tuple[str, ...]
    accepted_when: str
    changes: str
    example: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QueryDoc:
    result: Any  # a model or a typing form such as list[CaseEvent]
    result_name: str
    answers: str


# The one table of who/when/what. tests/test_contracts.py fails when a Signal or Update lacks an entry.
MESSAGES: dict[Signal | Update, MessageDoc] = {
    Signal.RECORD_CONTACT: MessageDoc(
        RecordContact, (CONTACT_CENTRE, CRM, OPERATOR),
        "At any time while the case runs; `at` (default: when received) may be neither in the future nor before "
        "the complaint was received.",
        "Adds the contact to the timeline (`contact_recorded`). Kind `review_discussion` meets the Stage 2 "
        "review-discussion deadline where the policy has one; kind `findings_call` counts as the call to discuss "
        "the review findings once they are recorded.",
        {"channel": "phone", "direction": "outbound", "by": "Priya Shah", "notes": "Agreed a visit on Tuesday",
         "kind": "general"},
    ),
    Signal.EXTEND_DEADLINE: MessageDoc(
        ExtendDeadline, (CRM, OPERATOR),
        "While the current stage's response deadline is open and not yet passed, and the extensions in all stay "
        "within the policy's limit (more only with `exceptional: true` where the policy allows it).",
        "Moves the response deadline by the working days given (`deadline_extended`) and writes to the resident "
        "with the new date and their right to go to the Ombudsman.",
        {"working_days": 5, "reason": "Waiting for the surveyor's damp report", "by": "Priya Shah"},
    ),
    Signal.REQUEST_REVIEW: MessageDoc(
        RequestReview, (PORTAL, CONTACT_CENTRE, CRM),
        "After the Stage 1 response is sent and before the escalation window ends; once.",
        "Records the request (`escalation_requested`); Stage 2 (or the policy's review) starts after the triage "
        "period unless the landlord refuses it with `refuse_escalation`.",
        {"reasons": "The mould has come back and nobody has visited."},
    ),
    Signal.TENANT_DECLINED_DISCUSSION: MessageDoc(
        TenantDeclinedDiscussion, (CONTACT_CENTRE, CRM),
        "At Stage 2 while the review-discussion deadline is open (policies with one, e.g. connexus).",
        "Meets the review-discussion deadline; the review rests on the original complaint and response "
        "(`discussion_declined`).",
        {"notes": "Resident said the written complaint says it all."},
    ),
    Signal.DECLINE_RESIDENT_PARTICIPATION: MessageDoc(
        DeclineResidentParticipation, (PORTAL, CONTACT_CENTRE),
        "Under policies whose review involves residents and lets them decline (connexus, optivo), before the "
        "review concludes; once.",
        "Withdraws any involved-customer invitation and removes resident panelists (`participation_declined`).",
        {"reason": "I would rather keep this private."},
    ),
    Signal.REQUEST_TO_ATTEND: MessageDoc(
        RequestToAttend, (PORTAL, CONTACT_CENTRE),
        "Under review-panel policies (optivo), at Stage 2 while a panel sitting is still to be held; once.",
        "Rebooks the sitting with the attendance notice the policy requires (`attendance_requested`, "
        "`panel_moved`) and writes to the resident.",
        {"needs": "Step-free access"},
    ),
    Signal.OMBUDSMAN_REFERRAL: MessageDoc(
        OmbudsmanReferral, (CRM, OPERATOR),
        "After the final response (or a refused escalation); a `direct` referral only once any cooling-off "
        "period has ended; `designated_person` only where the policy has that route; once.",
        "Records the referral (`ombudsman_referral`) and ends any cooling-off wait.",
        {"route": "direct"},
    ),
    Signal.SURVEY_RESPONSE: MessageDoc(
        SurveyResponse, (PORTAL, CRM),
        "After the satisfaction survey has been sent (the case is closed), within its answer window; once.",
        "Records the answer (`survey_answered`).",
        {"satisfied": True, "score": 8, "comments": "Sorted in the end."},
    ),
    Signal.CALENDAR_CHANGED: MessageDoc(
        CalendarChanged, (OPERATOR,),
        "At any time while the case runs (sent to every open case when the working-day calendar changes).",
        "Reloads the case's working-day calendar and moves each open deadline whose date changes "
        "(`deadline_moved`); nothing is recorded when no date moves.",
        {"cause": "Extra bank holiday announced for 2027-06-07"},
    ),
    Update.SUBMIT_STAGE1_RESPONSE: MessageDoc(
        StageResponse, (CRM, OPERATOR),
        "At Stage 1, after the acknowledgement, before any other Stage 1 response.",
        "Sends the Stage 1 response letter (`stage1_responded`); the case waits for a review request until the "
        "escalation window ends, then closes.",
        {"decision": "partly_upheld", "reasons": "The repair was booked late; the mould is now treated.",
         "remedy": "£150 for the carpet", "outstanding_actions": ["Check the roof in March"],
         "points_addressed": ["Repair delay", "Carpet"], "by": "Priya Shah"},
    ),
    Update.REFUSE_ESCALATION: MessageDoc(
        RefuseEscalation, (CRM, OPERATOR),
        "After a review is requested, during the triage period, before Stage 2 is acknowledged, with a "
        "`reason_code` the policy lists.",
        "Refuses the escalation (`escalation_refused`), writes the reason and the Ombudsman route to the "
        "resident, and closes the case.",
        {"reason_code": "legal_proceedings", "explanation": "Disrepair claim issued on 2 March.",
         "by": "Sam Okafor"},
    ),
    Update.RECORD_REVIEW_FINDINGS: MessageDoc(
        ReviewFindings, (CRM, OPERATOR),
        "Under complaints-manager-review policies (connexus), at Stage 2, once, answering each of the policy's "
        "review questions exactly once.",
        "Records the findings (`review_findings_recorded`); with the agreed outcome (and the findings call where "
        "required) they make the final response.",
        {"answers": [{"key": "investigation_thorough", "answer": False, "notes": "The repair was not booked in time."}],
         "summary": "We did not follow our repairs policy.", "by": "Sam Okafor"},
    ),
    Update.AGREE_OUTCOME: MessageDoc(
        AgreeOutcome, (CRM, OPERATOR),
        "Under complaints-manager-review policies, after the findings, by one of the roles the policy names; "
        "once.",
        "Records the agreed outcome (`outcome_agreed`); the final response follows.",
        {"role": "head_of_service", "name": "Alex Rahman", "decision": "upheld",
         "outcome": "We will replaster the bedroom wall.", "remedy": "£250"},
    ),
    Update.REQUEST_RESIDENT_PANELISTS: MessageDoc(
        RequestResidentPanelists, (PORTAL, CONTACT_CENTRE, OPERATOR),
        "Under review-panel policies (optivo), at Stage 2 before the panel sits, unless participation was "
        "declined; within the policy's number of residents and eligible bases.",
        "Adds the involved residents to the panel (`resident_panelists_requested`).",
        {"panelists": [{"name": "Jo Bell", "basis": "tenant"}]},
    ),
    Update.RECORD_PANEL_DECISION: MessageDoc(
        PanelDecision, (CRM, OPERATOR),
        "Under review-panel policies, after the panel has sat; once.",
        "Records the decision (`panel_decision_recorded`); the Chair's final response letter follows.",
        {"decision": "not_upheld", "reasons": "The repair was done within the policy's timescale.",
         "sat_on": "2027-02-10"},
    ),
    Update.SUBMIT_FINAL_RESPONSE: MessageDoc(
        StageResponse, (CRM, OPERATOR),
        "Under the Code's Stage 2 (hos-code-2024), at Stage 2; once.",
        "Sends the final response letter (`final_response_sent`) with the Ombudsman route; the case moves to "
        "the Ombudsman step and closes.",
        {"decision": "upheld", "reasons": "Stage 1 missed the leak above the bedroom.", "remedy": "£300",
         "by": "Sam Okafor"},
    ),
    Update.SUPPLY_CONTACT_DETAILS: MessageDoc(
        SupplyContactDetails, (CRM, CONTACT_CENTRE, OPERATOR),
        "At any time; with an address, an email, or both.",
        "Records the details (`contact_details_supplied`); letters waiting for a way to reach the resident are "
        "sent.",
        {"email": "maria.jones@example.org"},
    ),
    Update.WITHDRAW: MessageDoc(
        Withdraw, (CONTACT_CENTRE, CRM, PORTAL, OPERATOR),
        "At any time after the case is filed and before it closes; once. A cancellation request in Temporal "
        "(the UI's *Request Cancellation*, `temporal workflow cancel`) does the same, recording who asked.",
        "Records the withdrawal (`withdrawn`, with who and why), closes every open deadline and the case "
        "(status `withdrawn`, stage `closed`) and sends the resident the policy's withdrawal letter.",
        {"by": "Priya Shah", "reason": "The repair has been done; the resident no longer wishes to complain."},
    ),
    Update.REASSIGN_HANDLER: MessageDoc(
        ReassignHandler, (OPERATOR, CRM),
        "At Stage 1 once a handler is appointed, or at Stage 2 once a reviewer is; to active staff of the role "
        "the policy names for that stage (at Stage 2, not the Stage 1 handler). The staff ids are listed by "
        "`python -m starter staff list`.",
        "Appoints that person (`handler_reassigned`, with who was replaced and why): the case record, the "
        "`CaseHandler` search attribute and the letters from then on name them.",
        {"staff_id": "S-CH-02", "reason": "Priya Shah is on leave until March", "by": "Team leader"},
    ),
    Update.ACCEPT_ESCALATION: MessageDoc(
        AcceptEscalation, (OPERATOR, CRM),
        "Under a policy with a triage period (the landlord may refuse an escalation until it ends), after the "
        "resident asked for a review and before the triage ends or the escalation is refused.",
        "Accepts the escalation at once (`escalation_accepted`): the triage ends and Stage 2 starts now, "
        "instead of when the triage period runs out.",
        {"by": "Complaints team", "notes": "Clearly within the policy; no reason to wait"},
    ),
}

QUERIES: dict[Query, QueryDoc] = {
    Query.STATUS: QueryDoc(CaseStatus, "CaseStatus",
                           "Where the case is: stage, status, what it waits for, handlers, every deadline, "
                           "breaches, extensions, refused messages, problems."),
    Query.TIMELINE: QueryDoc(list[CaseEvent], "list[CaseEvent]",
                             "The case's events in order, its newest 64 KiB of them (an ordinary case: all); "
                             "every event is in the case record's timeline, with the same seq."),
}

START_FILE = "FileComplaint.schema.json"
START_EXAMPLE: dict[str, Any] = {
    "reference": "CMP-2026-0001", "policy": "hos-code-2024", "received_at": "2026-12-23T10:00:00+00:00",
    "channel": "phone",
    "resident": {"name": "Maria Jones", "address": "Flat 4, 12 Harbour Road, Bristol BS1 4AA",
                 "email": "maria.jones@example.org"},
    "property": {"address": "Flat 4, 12 Harbour Road, Bristol", "postcode": "BS1 4AA", "nation": "england-and-wales"},
    "summary": "Damp and mould in the bedroom reported three times since March; no repair booked.",
    "desired_outcome": "Repair the leak and treat the mould.",
}
UPDATE_RESULT_FILE = "UpdateResult.schema.json"


def schema_file(name: Signal | Update | Query) -> str:
    """Payload schemas are named after the message; query schemas describe the result."""
    return f"{name.value}.result.schema.json" if isinstance(name, Query) else f"{name.value}.schema.json"


def _schema(form: Any, title: str, mode: str) -> dict[str, Any]:
    body = TypeAdapter(form).json_schema(mode=mode)  # type: ignore[arg-type]
    return {"$schema": JSON_SCHEMA_DIALECT, **body, "title": body.get("title", title)}


def schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema. Payloads in validation mode (what a sender may send), results in
    serialization mode (what a reader gets back)."""
    out: dict[str, dict[str, Any]] = {START_FILE: _schema(FileComplaint, "FileComplaint", "validation")}
    for name, doc in MESSAGES.items():
        out[schema_file(name)] = _schema(doc.model, doc.model.__name__, "validation")
    for q, qdoc in QUERIES.items():
        out[schema_file(q)] = _schema(qdoc.result, qdoc.result_name, "serialization")
    out[UPDATE_RESULT_FILE] = _schema(UpdateResult, "UpdateResult", "serialization")
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def readme() -> str:
    lines = [
        "# The complaints engine's contract for other services",
        "",
        "Generated by `make contracts` from `domain/contract.py` and `starter/contracts.py`; do not edit by hand "
        "(a test fails when these files differ from the models).",
        "",
        f"Each complaint is one Temporal workflow of type `{WORKFLOW_TYPE}` with id `complaint-<reference>`, on "
        f"task queue `{TASK_QUEUE_DEFAULT}` (unless the deployment says otherwise). Every payload below is one "
        "JSON object (`json/plain` encoding, as any SDK's default payload converter writes it), dates as "
        "`YYYY-MM-DD`, instants as ISO 8601 **with an offset** (`2026-12-23T10:00:00+00:00`), **sealed with the "
        "engine's codec before it leaves the service** (see *Encryption* below: residents' personal data never "
        "reaches Temporal in clear). Unknown fields are refused.",
        "",
        "## Encryption",
        "",
        "A service holds the landlord's key file (from its operators, never from a repository), JSON: "
        '`{"active": "k2", "keys": {"k1": "<base64 of 32 random bytes>", "k2": "..."}}`. Each payload is sent as '
        "a payload with metadata `encoding: binary/encrypted` and `encryption-key-id: <the active id>`, whose "
        "data is a fresh 12-byte random nonce followed by AES-256-GCM (that key, that nonce, associated data "
        "`complaints-engine/v1`) of the serialized `temporal.api.common.v1.Payload` protobuf of the JSON "
        "payload (ciphertext then the 16-byte tag). In Python, `domain/encryption.py` is that codec "
        "(`data_converter(keyring_from_env())`); in another SDK, a `PayloadCodec` doing the same (every SDK "
        "takes one). Keys rotate: a new id becomes `active`, the old ids stay in the file while any case holds "
        "payloads sealed with them.",
        "",
        "The worker refuses what it cannot open, without reading it: a payload sent in clear (a client with no "
        "codec), sealed with a key id the worker does not hold, or not a sealed payload at all. A start fails "
        "once, its failure saying why (`the complaint cannot be filed: FileComplaint: sent unencrypted; ...`); "
        "a signal is recorded as `signal_refused` with that reason (never its content); an update is refused. "
        "The case goes on. The worker logs each key id it lacks, once.",
        "",
        f"- **Start** a case: start workflow `{WORKFLOW_TYPE}` with one argument, [`{START_FILE}`]({START_FILE}). "
        "One reference is one case, for ever: start with workflow id reuse policy `REJECT_DUPLICATE`, so that "
        "Temporal refuses a reference that exists or has existed (workflow already started). A start that gets "
        "past it (another reuse policy, or another workflow id carrying the reference) is refused by the case "
        "record: the workflow fails once with an `ApplicationError` of type `ReferenceTaken` saying why, and "
        "writes nothing.",
        "- **Signals** never fail the sender. The case checks each one; a signal it cannot act on (wrong stage, "
        "already done, bad payload) is recorded in its timeline as `signal_refused`, with the reason in "
        "`detail.reason`, and counted in `status.refused_messages`.",
        "- **Updates** answer at once. An accepted update returns "
        f"[`UpdateResult`]({UPDATE_RESULT_FILE}); a refused one comes back as an update failure (an "
        "`ApplicationError` of type `Refused` whose message says why) and changes nothing.",
        "- **Queries** read the case without changing it.",
        "",
        "| kind | name | payload / result | sent by | accepted when | what it changes |",
        "|---|---|---|---|---|---|",
    ]
    for name, doc in MESSAGES.items():
        kind = "signal" if isinstance(name, Signal) else "update"
        refusal = (" A refusal is recorded in the timeline as `signal_refused`." if kind == "signal"
                   else " A refusal comes back to the caller as an error.")
        lines.append(f"| {kind} | `{name.value}` | [{doc.model.__name__}]({schema_file(name)}) | "
                     f"{', '.join(doc.senders)} | {_cell(doc.accepted_when)} | {_cell(doc.changes + refusal)} |")
    for q, qdoc in QUERIES.items():
        lines.append(f"| query | `{q.value}` | [{_cell(qdoc.result_name)}]({schema_file(q)}) | "
                     f"{CRM}, {PORTAL}, {OPERATOR} | at any time, also after the case has closed | "
                     f"nothing; returns {_cell(qdoc.answers)} |")
    lines += ["", "## Example payloads", "",
              "Each validates against its schema (tests/test_contracts.py sends every signal example from a client "
              "with the default payload converter and the codec).", ""]
    lines += [f"Start (`{WORKFLOW_TYPE}` argument):", "", "```json", json.dumps(START_EXAMPLE, ensure_ascii=False),
              "```", ""]
    for name, doc in MESSAGES.items():
        lines += [f"`{name.value}`:", "", "```json", json.dumps(doc.example, ensure_ascii=False), "```", ""]
    return "\n".join(lines)


def render() -> dict[str, str]:
    """Everything `make contracts` writes, file name -> text."""
    files = {name: json.dumps(body, indent=2, ensure_ascii=False) + "\n" for name, body in schemas().items()}
    files["README.md"] = readme()
    return files


def write(out_dir: Path = OUT_DIR) -> list[Path]:
    """Write the contract into out_dir, removing schema files no model produces any more."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = render()
    for stale in out_dir.glob("*.schema.json"):
        if stale.name not in files:
            stale.unlink()
    written = []
    for name, text in files.items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def differences(out_dir: Path = OUT_DIR) -> list[str]:
    """File names whose content on disk differs from what the models produce (missing, stale, changed)."""
    files = render()
    on_disk = {p.name for p in out_dir.glob("*")} if out_dir.exists() else set()
    changed = [n for n, text in files.items()
               if n not in on_disk or (out_dir / n).read_text(encoding="utf-8") != text]
    return sorted(changed + [n for n in on_disk - set(files) if n.endswith(".schema.json")])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m starter.contracts", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=OUT_DIR)
    p.add_argument("--check", action="store_true", help="exit 1 if the files differ from the models")
    args = p.parse_args(argv)
    if args.check:
        diff = differences(args.out)
        if diff:
            print(f"error: {args.out} is out of date ({', '.join(diff)}); run `make contracts`", file=sys.stderr)
            return 1
        return 0
    written = write(args.out)
    print(f"wrote {len(written)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
