"""Activities of the retention sweep (workflows/retention.py): find closed cases whose policy's
retention period has ended, and remove their personal data from the case record.

What is removed and what is kept (the README's table says the same):
  complaints      resident name and summary become '[removed]'; resident address, email, phone,
                  property address, postcode and desired outcome become NULL. Kept: reference,
                  policy, landlord, nation, channel, stage, status, dates, handlers' staff ids.
  correspondence  recipient, address and body become REMOVED; the subject loses any personal value.
                  Kept: letter key, kind, stage, sent_at.
  contacts        notes and made_by become ''. Kept: when, channel, direction, kind.
  timeline        free text goes: detail keeps only the keys in KEEP_DETAIL (the figures reports
                  read), summaries are kept only for the kinds in KEEP_SUMMARY (template text with
                  no free text: e.g. "Stage 1 response sent: Upheld", which the outcomes report
                  parses), others get a neutral summary; actors other than roles become '[removed]'.
  extensions      reason becomes REMOVED. Kept: deadline, working days, exceptional, dates.
  notifications   message becomes REMOVED. Kept: key, role, staff id, kind, when.
  involvements    deleted (who was asked to take part in whose review).
  deadlines, breaches, assignments, panel_bookings: kept as they are (no personal data).
Then personal_data_removed_at is set and a `personal_data_removed` timeline event is written.

Idempotent: each case is done in one transaction that locks its row and checks
personal_data_removed_at first, so a retry or a second sweep finds nothing more to do; a retry of
the same call recognises the cases it already did by the sweep id on their event.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.policy import PolicyError, load_policy
from workflows.retention import (
    FIND_ACTIVITY,
    REMOVE_ACTIVITY,
    BatchRemoved,
    FindCases,
    FoundCases,
    RemoveBatch,
    RemovedCase,
)

log = structlog.get_logger("complaints.retention")

REMOVED = "[removed under retention policy]"
MARK = "[removed]"
EVENT_KIND = "personal_data_removed"

PERSONAL_COLUMNS = ("resident_name", "resident_address", "resident_email", "resident_phone", "property_address",
                    "postcode", "summary", "desired_outcome")

# Detail keys that hold no personal data and that reports, the deadline history or an audit need:
# deadlines and their dates, decisions, on-time flags, extensions' sizes, survey scores, letter and
# sitting ids, policy-defined codes. Anything else (notes, reasons, comments, names, panelists,
# review answers, the Ombudsman's designated person, a calendar change's cause...) is dropped.
KEEP_DETAIL = frozenset({
    "deadline", "due_date", "decision", "on_time", "working_days", "old_due_date", "new_due_date",
    "exceptional", "kind", "length", "unit", "trigger", "label", "policy", "channel", "direction", "at",
    "satisfied", "score", "route", "letter", "letter_id", "letter_key", "sitting_id", "sits_on", "sat_on",
    "panel_roles", "chair_role", "old", "new", "panelists_removed", "invitation_withdrawn",
    "resident_panelists", "role", "staff_id", "designated_person_route", "cooling_off", "message",
    "reason_code",
})

# Kinds whose summary the workflow builds only from templates, enums, counts, dates and policy
# labels (workflows/complaint.py), so it holds no free text and no name: kept, which also keeps
# the decision the outcomes report reads from "Stage 1 response sent: Partly upheld". Summaries of
# every other kind (staff names in appointments, refusal reasons, a calendar change's cause, kinds
# added later) are replaced: a new kind is stripped until someone checks it and lists it here.
KEEP_SUMMARY = frozenset({
    "filed", "acknowledged", "stage1_responded", "stage2_acknowledged", "final_response_sent", "deadline_set",
    "deadline_breached", "deadline_extended", "reminder_sent", "window_closed", "closed", "survey_sent",
    "survey_answered", "escalation_requested", "ended_abnormally", "escalation_refused", "panel_sat", "panel_booked", "panel_moved",
    "panel_attendance_arranged", "panel_decision_recorded", "ombudsman_rights_given", "ombudsman_referral",
    "letter_sent", "contact_recorded", "contact_details_supplied", "problem_recorded",
    "involved_customer_invited", "involved_customer_withdrawn", "discussion_declined", "participation_declined",
    "attendance_requested", "resident_panelists_requested", "review_findings_recorded", "outcome_agreed",
    "escalation_accepted",
    EVENT_KIND,
})

# Actors that name a role, not a person; any other actor (a free-text `by`) is removed.
KEEP_ACTORS = frozenset({"system", "resident", "operator", "review panel", "case handler", "complaints manager"})

POLICY_CACHE_SECONDS = 600.0  # an edited policy file is picked up within ten minutes

# Both read only the closed cases whose personal data is still held (complaints_awaiting_removal_idx),
# so a sweep's cost follows the cases it may act on, not every case ever filed.
POLICIES_AWAITING_REMOVAL_SQL = (
    "SELECT DISTINCT policy_id FROM complaints"
    " WHERE closed_at IS NOT NULL AND closed_at < $1 AND personal_data_removed_at IS NULL"
)
# $1 policy ids, $2 their retention years, $3 as of, $4 the last reference of the previous page, $5 page size.
CASES_PAST_RETENTION_SQL = """
SELECT c.reference FROM complaints c
JOIN unnest($1::text[], $2::int[]) AS p(policy_id, years) ON p.policy_id = c.policy_id
WHERE c.closed_at IS NOT NULL AND c.personal_data_removed_at IS NULL
  AND c.closed_at + make_interval(years => p.years) < $3
  AND ($4::text IS NULL OR c.reference > $4)
ORDER BY c.reference LIMIT $5
"""


# -- pure scrubbing ----------------------------------------------------------------------------
def personal_values(row: asyncpg.Record | dict[str, Any]) -> list[str]:
    """The case's personal values, longest first (an address goes before the postcode inside it).
    Values under 3 characters are skipped: replacing them would mangle ordinary words."""
    values = {str(row[c]).strip() for c in PERSONAL_COLUMNS if row[c] and len(str(row[c]).strip()) >= 3}
    return sorted(values, key=len, reverse=True)


def scrub_text(text: str, values: Iterable[str]) -> str:
    # Whole words only: a resident called Ann must not turn "channel" into "ch[removed]el".
    for v in values:
        text = re.sub(rf"(?<!\w){re.escape(v)}(?!\w)", MARK, text, flags=re.IGNORECASE)
    return text


def _scrub_value(value: Any, values: list[str]) -> Any:
    if isinstance(value, str):
        return scrub_text(value, values)
    if isinstance(value, list):
        return [_scrub_value(v, values) for v in value if not isinstance(v, dict | list)]
    if isinstance(value, dict):
        return None  # no kept key holds an object; one that does is not known to be anonymous
    return value


def scrub_event(kind: str, summary: str, actor: str, detail: dict[str, Any],
                values: list[str]) -> tuple[str, str, dict[str, Any]]:
    new_detail = {k: _scrub_value(v, values) for k, v in detail.items() if k in KEEP_DETAIL}
    new_detail = {k: v for k, v in new_detail.items() if v is not None or detail[k] is None}
    if kind in KEEP_SUMMARY:
        new_summary = scrub_text(summary, values)
    else:
        new_summary = f"{kind.replace('_', ' ').capitalize()} (details removed under retention policy)"
    new_actor = actor if actor in KEEP_ACTORS else MARK
    return new_summary, new_actor, new_detail


# -- the activities ----------------------------------------------------------------------------
class RetentionActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._years: dict[str, tuple[float, int | None]] = {}

    def retention_years(self, policy_id: str) -> int | None:
        """The policy's retention period, cached; None if its file is gone or no longer validates."""
        cached = self._years.get(policy_id)
        if cached is not None and time.monotonic() - cached[0] < POLICY_CACHE_SECONDS:
            return cached[1]
        try:
            years: int | None = load_policy(policy_id).retention_years
        except PolicyError as exc:
            log.warning("retention: policy cannot be loaded; its cases are kept", policy=policy_id, error=str(exc))
            years = None
        self._years[policy_id] = (time.monotonic(), years)
        return years

    @activity.defn(name=FIND_ACTIVITY)
    async def find_cases_past_retention(self, request: FindCases) -> FoundCases:
        policies = await self.pool.fetch(POLICIES_AWAITING_REMOVAL_SQL, request.as_of)
        known: dict[str, int] = {}
        unknown: list[str] = []
        for r in policies:
            years = self.retention_years(r["policy_id"])
            if years is None:
                unknown.append(r["policy_id"])
            else:
                known[r["policy_id"]] = years
        if not known:
            return FoundCases(references=[], unknown_policies=sorted(unknown))
        rows = await self.pool.fetch(
            CASES_PAST_RETENTION_SQL,
            list(known), list(known.values()), request.as_of, request.after_reference, request.limit,
        )
        return FoundCases(references=[r["reference"] for r in rows], unknown_policies=sorted(unknown))

    @activity.defn(name=REMOVE_ACTIVITY)
    async def remove_personal_data(self, batch: RemoveBatch) -> BatchRemoved:
        removed: list[RemovedCase] = []
        for ref in batch.references:
            # One transaction per case: a failure part-way through a batch leaves every case either
            # untouched or done, and the retry carries on from there.
            done = await self._remove_one(ref, batch.as_of, batch.sweep_id)
            if done is not None:
                removed.append(done)
        log.info("retention: personal data removed", cases=len(removed), asked=len(batch.references),
                 sweep=batch.sweep_id)
        return BatchRemoved(removed=removed)

    async def _remove_one(self, ref: str, as_of: datetime, sweep_id: str) -> RemovedCase | None:
        async with self.pool.acquire() as conn, conn.transaction():
            c = await conn.fetchrow(
                "SELECT reference, policy_id, policy_version, stage, closed_at, personal_data_removed_at, "
                + ", ".join(PERSONAL_COLUMNS) + " FROM complaints WHERE reference = $1 FOR UPDATE", ref,
            )
            if c is None or c["closed_at"] is None:
                return None
            policy = f"{c['policy_id']}@{c['policy_version']}"
            if c["personal_data_removed_at"] is not None:
                # Done already: by an earlier attempt of this very call (its result was lost), which
                # counts as ours, or by another sweep, which does not.
                ours = await conn.fetchval(
                    "SELECT detail->>'retention_years' FROM timeline"
                    " WHERE reference = $1 AND kind = $2 AND detail->>'sweep' = $3",
                    ref, EVENT_KIND, sweep_id,
                )
                return None if ours is None else RemovedCase(reference=ref, policy=policy,
                                                             retention_years=int(ours), closed_at=c["closed_at"])
            years = self.retention_years(c["policy_id"])
            if years is None or not await conn.fetchval(
                "SELECT $1::timestamptz + make_interval(years => $2) < $3::timestamptz", c["closed_at"], years, as_of,
            ):
                return None
            values = personal_values(c)
            await self._scrub(conn, ref, values)
            await conn.execute(
                "UPDATE complaints SET resident_name = $2, resident_address = NULL, resident_email = NULL,"
                " resident_phone = NULL, property_address = NULL, postcode = NULL, summary = $2,"
                " desired_outcome = NULL, personal_data_removed_at = now(), updated_at = now() WHERE reference = $1",
                ref, MARK,
            )
            detail = {"policy": policy, "retention_years": years, "closed_at": c["closed_at"].isoformat(),
                      "as_of": as_of.isoformat(), "sweep": sweep_id}
            # The case's workflow has ended, so nothing else writes its timeline; should something
            # have taken the seq anyway, the conflict leaves it alone and the whole case is retried.
            status = await conn.execute(
                "INSERT INTO timeline (reference, seq, at, kind, stage, actor, summary, detail)"
                " SELECT $1, coalesce(max(seq), 0) + 1, now(), $2, $3, 'system', $4, $5::jsonb"
                " FROM timeline WHERE reference = $1 ON CONFLICT (reference, seq) DO NOTHING",
                ref, EVENT_KIND, c["stage"],
                f"Personal data removed under the retention policy ({years} years after closure)", detail,
            )
            if not status.endswith(" 1"):
                raise ApplicationError(f"{ref}: the timeline's next seq was taken while removing personal data")
        return RemovedCase(reference=ref, policy=policy, retention_years=years, closed_at=c["closed_at"])

    async def _scrub(self, conn: asyncpg.Connection, ref: str, values: list[str]) -> None:
        for letter in await conn.fetch("SELECT id, subject FROM correspondence WHERE reference = $1", ref):
            await conn.execute(
                "UPDATE correspondence SET recipient = $2, address = $2, body = $2, subject = $3 WHERE id = $1",
                letter["id"], REMOVED, scrub_text(letter["subject"], values),
            )
        await conn.execute("UPDATE contacts SET notes = '', made_by = '' WHERE reference = $1", ref)
        await conn.execute("UPDATE extensions SET reason = $2 WHERE reference = $1", ref, REMOVED)
        await conn.execute("UPDATE notifications SET message = $2 WHERE reference = $1", ref, REMOVED)
        await conn.execute("DELETE FROM involvements WHERE reference = $1", ref)
        for e in await conn.fetch("SELECT seq, kind, summary, actor, detail FROM timeline WHERE reference = $1", ref):
            # The pool decodes jsonb (activities/db.py); a raw string is decoded here rather than
            # taken for empty, which would wipe the figures the detail holds.
            detail = json.loads(e["detail"]) if isinstance(e["detail"], str) else dict(e["detail"] or {})
            summary, actor, new_detail = scrub_event(e["kind"], e["summary"], e["actor"], detail, values)
            if (summary, actor, new_detail) != (e["summary"], e["actor"], detail):
                await conn.execute(
                    "UPDATE timeline SET summary = $3, actor = $4, detail = $5::jsonb WHERE reference = $1 AND seq = $2",
                    ref, e["seq"], summary, actor, new_detail,
                )

    def all(self) -> list:
        return [self.find_cases_past_retention, self.remove_personal_data]
