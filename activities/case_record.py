"""Activities: everything a case does to the world. Each is idempotent.

A retried activity, or one re-run after a worker died, finds its row already written (keys are
deterministic: the workflow's event sequence number, the letter key, the case and stage) and
returns what was written the first time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from datetime import date
from typing import Any

import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from activities import calendar_data, letters, metrics, ownership
from activities.cancellation import who_cancelled
from domain.calendar import CalendarSnapshot
from domain.case import CaseEvent, Stage
from domain.policy import Policy, PolicyError, load_policy
from domain.records import (
    Activity,
    AppointStaff,
    BookSitting,
    CalendarRequest,
    CarriesTimeline,
    EventBatch,
    InviteInvolvedCustomer,
    InvolvedCustomer,
    LetterRequest,
    LetterSent,
    Notification,
    OpenCase,
    OpenedCase,
    PanelSitting,
    ReassignStaff,
    RegisterComplaint,
    StaffMember,
    calendar_request,
)

log = structlog.get_logger("complaints.activities")

# Errors that retrying cannot mend: the case records them and waits for a person.
RESIDENT_UNREACHABLE = "ResidentUnreachable"
INVALID_REQUEST = "InvalidRequest"
NO_STAFF = "NoStaffAvailable"


def _bind(reference: str) -> structlog.stdlib.BoundLogger:
    info = activity.info()
    return log.bind(reference=reference, workflow_id=info.workflow_id, activity=info.activity_type,
                    attempt=info.attempt)


class CaseRecordActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    # -- reference data --------------------------------------------------------------------------
    @activity.defn(name=Activity.LOAD_POLICY)
    async def load_policy(self, policy_id: str) -> Policy:
        try:
            return load_policy(policy_id)
        except PolicyError as exc:
            raise ApplicationError(str(exc), type=INVALID_REQUEST, non_retryable=True) from exc

    @activity.defn(name=Activity.LOAD_CALENDAR)
    async def load_calendar(self, request: CalendarRequest) -> CalendarSnapshot:
        rows = await self.pool.fetch(
            "SELECT day, change, nation, reason FROM calendar_changes"
            " WHERE (nation IS NULL OR nation = $1) AND day BETWEEN $2 AND $3 ORDER BY id",
            request.nation.value,
            date(request.first_year, 1, 1),
            date(request.last_year, 12, 31),
        )
        changes = [calendar_data.CalendarChange(day=r["day"], change=r["change"], reason=r["reason"],
                                                nation=r["nation"]) for r in rows]
        return calendar_data.build_snapshot(
            request.nation, request.first_year, request.last_year,
            closures=request.closures, changes=changes, closing_time=request.closing_time,
        )

    # -- the case record -------------------------------------------------------------------------
    @activity.defn(name=Activity.REGISTER_COMPLAINT)
    async def register_complaint(self, request: RegisterComplaint) -> None:
        await self._register(request)

    async def _register(self, request: RegisterComplaint) -> None:
        c = request.complaint
        # One reference, one case: a row already there must be this case's own (a retry), else refused.
        await ownership.check_workflow_id(self.pool, c.reference, request.case_run)
        chain = ownership.Writer.current(request.case_run).chain
        async with self.pool.acquire() as conn, conn.transaction():
            status = await conn.execute(
                """
                INSERT INTO complaints (reference, workflow_id, policy_id, policy_version, landlord, nation,
                    received_at, channel, resident_name, resident_address, resident_email, resident_phone,
                    property_address, postcode, summary, desired_outcome, filed_at_stage2, stage, status,
                    first_run_id)
                VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,'stage-1','filed',$18)
                ON CONFLICT (reference) DO NOTHING
                """,
                c.reference, request.workflow_id, request.policy_id, request.policy_version, request.landlord,
                c.property.nation.value, c.received_at, c.channel.value, c.resident.name, c.resident.address,
                c.resident.email, c.resident.phone, c.property.address, c.property.postcode, c.summary,
                c.desired_outcome, c.start_at_stage2, chain,
            )
            if not metrics.inserted(status):
                await ownership.claim(conn, self.pool, c.reference, request.case_run)
        metrics.complaint_filed(request.policy_id, status)
        _bind(c.reference).info("complaint registered", policy=request.policy_id)

    @activity.defn(name=Activity.OPEN_CASE)
    async def open_case(self, request: OpenCase) -> OpenedCase:
        """The policy, the complaints row, then the calendar: what load_policy, register_complaint and
        load_calendar did as three activities (cases started before the change still run those)."""
        c = request.complaint
        policy = await self.load_policy(c.policy)
        # Filed at Stage 2 only if the policy allows it; otherwise the case runs at Stage 1 (complaint.py),
        # and the record, which the reports count, says so.
        c = c.model_copy(update={"start_at_stage2": c.start_at_stage2 and policy.escalation.direct_to_stage2})
        # Committed before the calendar is read: the calendar command tells the cases in the complaints
        # table, so a change made after this read still reaches this case.
        await self._register(RegisterComplaint(complaint=c, workflow_id=request.workflow_id, policy_id=policy.id,
                                               policy_version=policy.pinned_version, landlord=policy.landlord,
                                               case_run=request.case_run))
        return OpenedCase(policy=policy, calendar=await self.load_calendar(
            calendar_request(c, policy, request.opened_at)))

    @activity.defn(name=Activity.RECORD_EVENTS)
    async def record_events(self, batch: EventBatch) -> int:
        """Write a batch of timeline events and their projections in one transaction."""
        async with self.pool.acquire() as conn, conn.transaction():
            await ownership.check_owner(conn, self.pool, batch.reference, batch.case_run)
            written, fresh = await _write_timeline(conn, batch)
        metrics.events_recorded(fresh)
        return written

    @contextlib.asynccontextmanager
    async def _step(self, request: CarriesTimeline) -> AsyncIterator[asyncpg.Connection]:
        """One transaction for a step's side effect and the case's timeline rows the request carries.

        If the step fails in a way retrying or a person must mend (no staff free, no sitting, the resident
        unreachable), its effect rolls back but the timeline rows are still written, on their own: the case
        record shows where the case is even while the step waits."""
        fresh: list[CaseEvent] = []
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                # The step's reference is the case it writes (each request names it).
                await ownership.check_owner(conn, self.pool, request.reference, request.case_run)  # type: ignore[attr-defined]
                yield conn
                if request.timeline is not None:
                    _, fresh = await _write_timeline(conn, request.timeline)
        except ApplicationError as exc:
            if request.timeline is not None and exc.type != ownership.NOT_THIS_CASE:
                await self.record_events(request.timeline)
            raise
        metrics.events_recorded(fresh)

    # -- people ----------------------------------------------------------------------------------
    @activity.defn(name=Activity.APPOINT_STAFF)
    async def appoint_staff(self, request: AppointStaff) -> StaffMember:
        """The least-loaded active member of the role; the same person again on a retry."""
        async with self._step(request) as conn:
            # One appointment at a time, so two cases filed together do not both pick the same person.
            await conn.execute("SELECT pg_advisory_xact_lock(7311002)")
            existing = await conn.fetchrow(
                "SELECT s.id, s.name, s.role FROM assignments a JOIN staff s ON s.id = a.staff_id"
                " WHERE a.reference = $1 AND a.stage = $2",
                request.reference, request.stage.value,
            )
            if existing is not None:
                return StaffMember(**dict(existing))
            exclude = list(request.exclude)
            if request.stage is Stage.STAGE2:
                # Stage 2 is handled by a different person from Stage 1, whatever the caller passed:
                # the rule holds here, where the choice is made, not only in the workflow.
                exclude += [r["staff_id"] for r in await conn.fetch(
                    "SELECT staff_id FROM assignments WHERE reference = $1 AND stage = $2",
                    request.reference, Stage.STAGE1.value,
                ) if r["staff_id"] not in exclude]
            row = await conn.fetchrow(
                """
                SELECT s.id, s.name, s.role FROM staff s
                LEFT JOIN assignments a ON a.staff_id = s.id AND a.released_at IS NULL
                WHERE s.active AND s.role = $1 AND s.landlord IN ('*', $2) AND NOT (s.id = ANY($3::text[]))
                GROUP BY s.id, s.name, s.role ORDER BY count(a.reference), s.id LIMIT 1
                """,
                request.role, request.landlord, exclude,
            )
            if row is None:
                who = f" other than {exclude}" if exclude else ""
                why = " (Stage 2 must be handled by someone other than the Stage 1 handler)" \
                    if request.stage is Stage.STAGE2 and exclude else ""
                raise ApplicationError(f"no active staff with role {request.role!r}{who}{why}", type=NO_STAFF)
            await conn.execute(
                "INSERT INTO assignments (reference, stage, staff_id) VALUES ($1, $2, $3)",
                request.reference, request.stage.value, row["id"],
            )
        _bind(request.reference).info("staff appointed", role=request.role, staff_id=row["id"])
        return StaffMember(**dict(row))

    @activity.defn(name=Activity.REASSIGN_STAFF)
    async def reassign_staff(self, request: ReassignStaff) -> StaffMember:
        """Give the case's appointment at a stage to the named member of staff; the same answer on a retry.
        Refused, never retried, when that person cannot take it: unknown, inactive, of another role or
        landlord, or (at Stage 2) the Stage 1 handler."""
        async with self._step(request) as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(7311002)")  # as appoint_staff: one at a time
            staff = await conn.fetchrow("SELECT id, name, role, landlord, active FROM staff WHERE id = $1",
                                        request.staff_id)
            why = None
            if staff is None:
                why = f"no staff member with id {request.staff_id!r} (python -m starter staff list)"
            elif not staff["active"]:
                why = f"{staff['name']} ({staff['id']}) is no longer active"
            elif staff["role"] != request.role:
                why = f"{staff['name']} ({staff['id']}) is a {staff['role']}; this needs a {request.role}"
            elif staff["landlord"] not in ("*", request.landlord):
                why = f"{staff['name']} ({staff['id']}) works for {staff['landlord']}, not {request.landlord}"
            elif request.stage is Stage.STAGE2 and await conn.fetchval(
                    "SELECT 1 FROM assignments WHERE reference = $1 AND stage = $2 AND staff_id = $3",
                    request.reference, Stage.STAGE1.value, request.staff_id):
                why = f"{staff['name']} handled Stage 1; Stage 2 must be handled by someone else"
            if why is not None:
                raise ApplicationError(f"reassign_handler: {why}", type=INVALID_REQUEST, non_retryable=True)
            await conn.execute(
                "INSERT INTO assignments (reference, stage, staff_id) VALUES ($1, $2, $3)"
                " ON CONFLICT (reference, stage) DO UPDATE SET staff_id = EXCLUDED.staff_id, assigned_at = now()"
                " WHERE assignments.staff_id <> EXCLUDED.staff_id",
                request.reference, request.stage.value, request.staff_id,
            )
        _bind(request.reference).info("staff reassigned", role=request.role, staff_id=request.staff_id)
        return StaffMember(id=staff["id"], name=staff["name"], role=staff["role"])

    @activity.defn(name=Activity.NOTIFY_STAFF)
    async def notify_staff(self, note: Notification) -> None:
        async with self._step(note) as conn:
            await conn.execute(
                "INSERT INTO notifications (reference, key, role, staff_id, kind, message)"
                " VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (reference, key) DO NOTHING",
                note.reference, note.key, note.role, note.staff_id, note.kind, note.message,
            )
        _bind(note.reference).info("staff notified", kind=note.kind, role=note.role)

    @activity.defn(name=Activity.INVITE_INVOLVED_CUSTOMER)
    async def invite_involved_customer(self, request: InviteInvolvedCustomer) -> InvolvedCustomer:
        async with self._step(request) as conn:
            existing = await conn.fetchrow(
                "SELECT c.id, c.name FROM involvements i JOIN involved_customers c ON c.id = i.customer_id"
                " WHERE i.reference = $1", request.reference,
            )
            if existing is not None:
                return InvolvedCustomer(**dict(existing))
            row = await conn.fetchrow(
                """
                SELECT c.id, c.name FROM involved_customers c
                LEFT JOIN involvements i ON i.customer_id = c.id AND i.withdrawn_at IS NULL
                WHERE c.active AND c.landlord IN ('*', $1)
                GROUP BY c.id, c.name ORDER BY count(i.reference), c.id LIMIT 1
                """,
                request.landlord,
            )
            if row is None:
                raise ApplicationError("no active involved customer in the register", type=NO_STAFF)
            await conn.execute("INSERT INTO involvements (reference, customer_id) VALUES ($1, $2)",
                               request.reference, row["id"])
        return InvolvedCustomer(**dict(row))

    @activity.defn(name="withdraw_involved_customer")
    async def withdraw_involved_customer(self, reference: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await ownership.check_owner(conn, self.pool, reference, None)
            await conn.execute(
                "UPDATE involvements SET withdrawn_at = now() WHERE reference = $1 AND withdrawn_at IS NULL", reference
            )

    @activity.defn(name=Activity.BOOK_PANEL_SITTING)
    async def book_panel_sitting(self, request: BookSitting) -> PanelSitting:
        """The first sitting on or after `earliest` with room (and, if attending, where that is possible)."""
        async with self._step(request) as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(7311003)")
            current = await conn.fetchrow(
                "SELECT p.id, p.sits_on, p.attendance_possible, b.attending FROM panel_bookings b"
                " JOIN panel_sittings p ON p.id = b.sitting_id WHERE b.reference = $1", request.reference,
            )
            if current is not None and current["sits_on"] >= request.earliest and (
                current["attending"] == request.attending
            ):
                return PanelSitting(id=current["id"], sits_on=current["sits_on"],
                                    attendance_possible=current["attendance_possible"])
            row = await conn.fetchrow(
                """
                SELECT p.id, p.sits_on, p.attendance_possible FROM panel_sittings p
                LEFT JOIN panel_bookings b ON b.sitting_id = p.id AND b.reference <> $3
                WHERE p.landlord = $1 AND p.sits_on >= $2 AND ($4 = false OR p.attendance_possible)
                GROUP BY p.id HAVING count(b.reference) < p.capacity
                ORDER BY p.sits_on LIMIT 1
                """,
                request.landlord, request.earliest, request.reference, request.attending,
            )
            if row is None:
                raise ApplicationError(
                    f"no review panel sitting for {request.landlord} on or after {request.earliest}", type=NO_STAFF
                )
            await conn.execute(
                "INSERT INTO panel_bookings (reference, sitting_id, attending) VALUES ($1,$2,$3)"
                " ON CONFLICT (reference) DO UPDATE SET sitting_id = EXCLUDED.sitting_id,"
                " attending = EXCLUDED.attending, booked_at = now()",
                request.reference, row["id"], request.attending,
            )
        return PanelSitting(**dict(row))

    # -- letters ---------------------------------------------------------------------------------
    @activity.defn(name=Activity.SEND_LETTER)
    async def send_letter(self, request: LetterRequest) -> LetterSent:
        async with self._step(request) as conn:
            if not request.recipient_address and not request.recipient_email:
                raise ApplicationError(
                    f"{request.reference}: no postal address or email for {request.kind} letter",
                    type=RESIDENT_UNREACHABLE, non_retryable=True,
                )
            try:
                wording = letters.Template(request.wording.subject, request.wording.body) if request.wording else None
                subject, body = letters.render(request.kind, {"name": request.recipient_name,
                                                              "reference": request.reference, **request.fields},
                                               wording)
            except (KeyError, letters.MissingLetterField) as exc:
                raise ApplicationError(f"letter {request.kind} lacks field {exc}", type=INVALID_REQUEST,
                                       non_retryable=True) from exc
            row = await conn.fetchrow(
                """
                WITH ins AS (
                    INSERT INTO correspondence (reference, letter_key, kind, stage, recipient, address, subject, body)
                    VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (reference, letter_key) DO NOTHING
                    RETURNING id, sent_at, true AS fresh
                )
                SELECT id, sent_at, fresh FROM ins
                UNION ALL
                SELECT id, sent_at, false FROM correspondence WHERE reference = $1 AND letter_key = $2
                LIMIT 1
                """,
                request.reference, request.letter_key, request.kind, request.stage.value, request.recipient_name,
                request.recipient_address or request.recipient_email, subject, body,
            )
        metrics.letter_sent(request.kind, row["fresh"])
        _bind(request.reference).info("letter sent", kind=request.kind, letter_key=request.letter_key)
        return LetterSent(letter_id=row["id"], letter_key=request.letter_key, kind=request.kind, subject=subject,
                          sent_at=row["sent_at"])

    def all(self) -> list:
        return [self.open_case, self.load_policy, self.load_calendar, self.register_complaint, self.record_events,
                self.appoint_staff, self.notify_staff, self.invite_involved_customer,
                self.withdraw_involved_customer, self.book_panel_sitting, self.send_letter, who_cancelled,
                self.reassign_staff]


# The case row as of the newest batch: by primary key, on every step and signal that records events.
PROJECT_CASE_SQL = (
    "UPDATE complaints SET stage=$2, status=$3, handler_id=$4, stage2_handler_id=$5,"
    " escalated_at=$6, closed_at=$7, recorded_seq=$8, updated_at=now()"
    " WHERE reference=$1 AND recorded_seq <= $8"
)


async def _write_timeline(conn: asyncpg.Connection, batch: EventBatch) -> tuple[int, list[CaseEvent]]:
    """The timeline rows and their projections (contacts, extensions, breaches, deadlines, the case row).

    Idempotent: rows are keyed by the workflow's event sequence number, projections upserted, so a retry
    writes nothing twice. Returns the rows written and the events that were new (for metrics, once the
    caller's transaction commits)."""
    ref = batch.reference
    written = 0
    fresh = []  # events this batch wrote, counted in metrics once it commits
    for e in batch.events:
        status = await conn.execute(
            "INSERT INTO timeline (reference, seq, at, kind, stage, actor, summary, detail)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (reference, seq) DO NOTHING",
            ref, e.seq, e.at, e.kind, e.stage.value, e.actor, e.summary, e.detail,
        )
        written += status.endswith(" 1")
        fresh += [e] if metrics.inserted(status) else []
        d = e.detail
        if e.kind == "contact_recorded":
            await conn.execute(
                "INSERT INTO contacts (reference, seq, at, channel, direction, made_by, kind, notes)"
                " VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT DO NOTHING",
                ref, e.seq, _ts(d["at"]), d["channel"], d["direction"], d["by"], d["kind"], d["notes"],
            )
        elif e.kind == "deadline_extended":
            await conn.execute(
                "INSERT INTO extensions (reference, seq, deadline_key, working_days, reason, exceptional,"
                " old_due_date, new_due_date, at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT DO NOTHING",
                ref, e.seq, d["deadline"], d["working_days"], d["reason"], d["exceptional"],
                date.fromisoformat(d["old_due_date"]), date.fromisoformat(d["new_due_date"]), e.at,
            )
        elif e.kind == "deadline_breached":
            await conn.execute(
                "INSERT INTO breaches (reference, deadline_key, stage, label, due_date, recorded_at)"
                " VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING",
                ref, d["deadline"], e.stage.value, d["label"], date.fromisoformat(d["due_date"]), e.at,
            )
    c = batch.case
    newest = batch.events[-1].seq if batch.events else 0
    projected = await conn.execute(
        PROJECT_CASE_SQL,
        ref, c.stage.value, c.status.value, c.handler_id, c.stage2_handler_id, c.escalated_at, c.closed_at, newest,
    )
    if projected != "UPDATE 1":
        return written, fresh  # a newer batch has already projected the case and its deadlines
    await conn.executemany(
        """
        INSERT INTO deadlines (reference, key, label, stage, kind, trigger_at, original_due_date,
            due_date, due_at, extended_by, met_at, passed_at, cancelled)
        VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)
        ON CONFLICT (reference, key) DO UPDATE SET due_date = EXCLUDED.due_date,
            due_at = EXCLUDED.due_at, extended_by = EXCLUDED.extended_by, met_at = EXCLUDED.met_at,
            passed_at = EXCLUDED.passed_at, cancelled = EXCLUDED.cancelled
        """,
        [(ref, dl.key, dl.label, dl.stage.value, dl.kind.value, dl.trigger_at, dl.original_due_date,
          dl.due_date, dl.due_at, dl.extended_by, dl.met_at, dl.passed_at, dl.cancelled) for dl in batch.deadlines],
    )
    if c.closed_at is not None:
        await conn.execute(
            "UPDATE assignments SET released_at = $2 WHERE reference = $1 AND released_at IS NULL",
            ref, c.closed_at,
        )
    return written, fresh


def _ts(value: str):
    from datetime import datetime

    return datetime.fromisoformat(value)


# -- outages of the case record ---------------------------------------------------------------------
# While PostgreSQL is down every activity attempt fails, and with hundreds of cases open that is
# hundreds of attempts a minute: logged one by one (the SDK warns with a traceback per attempt) they
# would bury the one fact an operator needs. So connection failures are logged once per interval,
# with the count since the last line, and once more when the record answers again.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # refused, or the Unix socket is gone
    asyncpg.PostgresConnectionError,  # includes a connection that died mid-query
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, or starting up
)
CASE_RECORD_UNAVAILABLE = "CaseRecordUnavailable"


class OutageLog:
    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._since: float | None = None  # when the outage began, None while the record answers
        self._last_line = 0.0
        self._failures = 0  # attempts failed since the last line

    def failed(self, exc: BaseException) -> None:
        now = self._clock()
        self._failures += 1
        if self._since is None:
            self._since, self._last_line, self._failures = now, now, 0
            log.error("case record unreachable; activities retry with backoff", error=type(exc).__name__,
                      detail=str(exc)[:200], log_interval_s=self.interval_s)
        elif now - self._last_line >= self.interval_s:
            log.warning("case record still unreachable", down_for_s=round(now - self._since),
                        failed_attempts=self._failures, error=type(exc).__name__)
            self._last_line, self._failures = now, 0

    def succeeded(self) -> None:
        if self._since is not None:
            log.info("case record reachable again", down_for_s=round(self._clock() - self._since),
                     failed_attempts=self._failures)
            self._since = None


class _OutageInbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, outage: OutageLog) -> None:
        super().__init__(next)
        self._outage = outage

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            result = await self.next.execute_activity(input)
        except OUTAGE_ERRORS as exc:
            self._outage.failed(exc)
            # Retryable; BENIGN keeps the SDK's own per-attempt line at DEBUG (the line above stands for it).
            raise ApplicationError(f"case record unavailable: {type(exc).__name__}", type=CASE_RECORD_UNAVAILABLE,
                                   category=ApplicationErrorCategory.BENIGN) from exc
        if activity.info().activity_type != Activity.LOAD_POLICY:  # reads a file, proves nothing about the record
            self._outage.succeeded()
        return result


class _PoolFloorFilter(logging.Filter):
    """asyncpg's pool warns, with a traceback, each time it fails to reconnect its idle connection:
    that is one more attempt of the same outage, counted in the outage log instead."""

    def __init__(self, outage: OutageLog) -> None:
        super().__init__()
        self.outage = outage

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith("Failed to restore the pool connection floor"):
            return True
        exc = record.exc_info[1] if record.exc_info and record.exc_info[1] else ConnectionError("pool floor")
        self.outage.failed(exc)
        return False


class OutageLogging(Interceptor):
    """Worker interceptor: case-record outages logged once per interval (COMPLAINTS_OUTAGE_LOG_SECONDS, 30)."""

    def __init__(self, interval_s: float | None = None) -> None:
        if interval_s is None:
            interval_s = float(os.environ.get("COMPLAINTS_OUTAGE_LOG_SECONDS") or 30)
        self.outage = OutageLog(interval_s)
        pool_log = logging.getLogger("asyncpg.pool")
        for old in [f for f in pool_log.filters if isinstance(f, _PoolFloorFilter)]:
            pool_log.removeFilter(old)  # one per process: the newest worker's
        pool_log.addFilter(_PoolFloorFilter(self.outage))

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _OutageInbound(next, self.outage)
