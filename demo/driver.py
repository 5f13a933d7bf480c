"""Files demonstration cases and plays the landlord's staff and the resident, step by step, so that a
newcomer can watch each case move through Stage 1, Stage 2, the Ombudsman step and closure in the
Temporal UI. Each step is said as it happens, with the CLI command that does the same by hand.

Three cases, under demo/policies/ (deadlines in seconds; never for real cases):
- under demo-code (the Housing Ombudsman's Code): Stage 1 response, the resident asks for a review,
  Stage 2 final response with the route to the Ombudsman, the resident refers, closure, survey;
- under demo-connexus (Connexus): Stage 1, then the Complaints Manager's review with its discussion,
  findings, agreed outcome and findings call, closure, survey;
- under demo-code, one nobody answers: its Stage 1 response deadline passes and it shows as overdue,
  left open for the viewer to answer with `python -m starter respond`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import BaseModel
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError

from domain.calendar import Nation
from domain.case import CaseStatus, Stage, Status
from domain.contract import (
    WORKFLOW_TYPE,
    AgreeOutcome,
    Channel,
    ContactDirection,
    ContactKind,
    FileComplaint,
    OmbudsmanReferral,
    OmbudsmanRoute,
    Property,
    Query,
    RecordContact,
    RequestReview,
    Resident,
    ReviewAnswer,
    ReviewFindings,
    Signal,
    StageResponse,
    SurveyResponse,
    Update,
    workflow_id,
)

CODE, CONNEXUS = "demo-code", "demo-connexus"
# The Complaints Manager's four questions in the Connexus review (policies/connexus.toml).
REVIEW_QUESTIONS = ("investigation_thorough", "all_points_answered", "evidence_supports_resolution",
                    "resolution_remedies_failure")
STEP_LIMIT = 120.0  # seconds any one step may wait for the case: the longest demo deadline, twice


class DemoError(Exception):
    """A demonstration case did not get where the procedure says it should: one line saying where."""


@dataclass
class DemoCase:
    reference: str
    policy: str
    resident: str
    summary: str
    handle: WorkflowHandle | None = None


@dataclass
class Demo:
    client: Client
    task_queue: str
    pace: float = 8.0  # seconds between steps, for a person to look at the UI in between
    say: Callable[[str], None] = print
    run: str = field(default_factory=lambda: datetime.now(UTC).strftime("%H%M%S"))
    # When a complaint is received: now, on the server's clock (the machine's, outside tests that fake ours).
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        self._began = time.monotonic()

    def case(self, n: int, policy: str, resident: str, summary: str) -> DemoCase:
        return DemoCase(f"DEMO-{self.run}-{n}", policy, resident, summary)

    def tell(self, c: DemoCase, text: str, command: str = "") -> None:
        elapsed = int(time.monotonic() - self._began)
        line = f"[{elapsed // 60:02d}:{elapsed % 60:02d}] {c.reference:<18} {text}"
        self.say(line + (f"\n{'':27}by hand: python -m starter {command}" if command else ""))

    async def pause(self) -> None:
        await asyncio.sleep(self.pace)

    # -- talking to a case ------------------------------------------------------------------------
    async def file(self, c: DemoCase) -> None:
        filed = FileComplaint(
            reference=c.reference, policy=c.policy, received_at=self.clock(), channel=Channel.PHONE,
            resident=Resident(name=c.resident, address="Flat 4, 12 Harbour Road, Bristol BS1 4AA"),
            property=Property(address="Flat 4, 12 Harbour Road, Bristol", postcode="BS1 4AA",
                              nation=Nation.ENGLAND_AND_WALES),
            summary=c.summary, desired_outcome="Put it right.")
        c.handle = await self.client.start_workflow(WORKFLOW_TYPE, filed, id=workflow_id(c.reference),
                                                    task_queue=self.task_queue)
        self.tell(c, f"filed under {c.policy} (a demonstration policy: deadlines in seconds)",
                  f"file --reference {c.reference} --policy {c.policy} ...")

    async def status(self, c: DemoCase) -> CaseStatus:
        assert c.handle is not None
        return await c.handle.query(Query.STATUS.value, result_type=CaseStatus)

    async def until(self, c: DemoCase, what: str, check: Callable[[CaseStatus], bool]) -> CaseStatus:
        end = time.monotonic() + STEP_LIMIT
        while True:
            s = await self.status(c)
            if check(s):
                return s
            if time.monotonic() > end:
                raise DemoError(f"{c.reference}: not {what} within {STEP_LIMIT:.0f} s "
                                f"(it is at {s.stage.value}/{s.status.value}, waiting for {s.waiting_for})")
            await asyncio.sleep(0.25)

    async def signal(self, c: DemoCase, name: Signal, payload: BaseModel) -> None:
        assert c.handle is not None
        await c.handle.signal(name.value, payload)

    async def update(self, c: DemoCase, name: Update, payload: BaseModel) -> None:
        """Sent once the case can take it: an update the case is not ready for is refused, never queued."""
        assert c.handle is not None
        end = time.monotonic() + STEP_LIMIT
        while True:
            try:
                await c.handle.execute_update(name.value, payload)
                return
            except WorkflowUpdateFailedError as err:
                if time.monotonic() > end:
                    raise DemoError(f"{c.reference}: {name.value} still refused after {STEP_LIMIT:.0f} s: "
                                    f"{err.cause}") from None
            await asyncio.sleep(0.25)

    # -- the three stories --------------------------------------------------------------------------
    async def stage1_answered(self, c: DemoCase) -> None:
        s = await self.until(c, "acknowledged", lambda s: s.status is Status.INVESTIGATING)
        self.tell(c, f"acknowledged; {s.handler} investigates; Stage 1 response due in seconds")
        await self.pause()
        await self.update(c, Update.SUBMIT_STAGE1_RESPONSE, StageResponse(
            decision="partly_upheld", reasons="The repair was booked late.", remedy="£50 for the delay",
            points_addressed=["The repair was booked late"], by="Priya Shah"))
        self.tell(c, "Stage 1 response sent: partly upheld",
                  f"respond {c.reference} --decision partly_upheld --reasons '...'")
        await self.until(c, "open for a review request", lambda s: any(
            d.key == "escalation.window" for d in s.deadlines))
        await self.pause()
        await self.signal(c, Signal.REQUEST_REVIEW, RequestReview(reasons="The mould treatment was not mentioned."))
        self.tell(c, "the resident asks for a review (Stage 2)", f"review-request {c.reference} --reasons '...'")

    async def closed(self, c: DemoCase) -> None:
        await self.until(c, "closed with the survey sent", lambda s: s.stage is Stage.CLOSED and any(
            d.key == "survey.answer" for d in s.deadlines))
        self.tell(c, "closed; satisfaction survey sent")
        await self.pause()
        await self.signal(c, Signal.SURVEY_RESPONSE, SurveyResponse(satisfied=True, score=8))
        self.tell(c, "the resident answers the survey: 8/10", f"survey {c.reference} --satisfied --score 8")
        assert c.handle is not None
        await asyncio.wait_for(c.handle.result(), STEP_LIMIT)
        self.tell(c, "finished: every step is in the UI's timeline and in `timeline`", f"timeline {c.reference}")

    async def code_case(self, c: DemoCase) -> None:
        await self.file(c)
        await self.stage1_answered(c)
        s = await self.until(c, "acknowledged at Stage 2", lambda s: s.stage is Stage.STAGE2 and bool(s.stage2_handler))
        self.tell(c, f"Stage 2: reviewed by {s.stage2_handler}, not the Stage 1 handler")
        await self.pause()
        await self.update(c, Update.SUBMIT_FINAL_RESPONSE, StageResponse(
            decision="upheld", reasons="On review the mould treatment was missed.", remedy="£150 and a mould wash",
            by="Helen Clarke"))
        self.tell(c, "final response sent, with the route to the Ombudsman (the Ombudsman step)",
                  f"final-response {c.reference} --decision upheld --reasons '...'")
        await self.until(c, "past the landlord's procedure", lambda s: s.stage in (Stage.OMBUDSMAN, Stage.CLOSED))
        await self.pause()
        await self.signal(c, Signal.OMBUDSMAN_REFERRAL, OmbudsmanReferral(route=OmbudsmanRoute.DIRECT))
        self.tell(c, "the resident refers the complaint to the Ombudsman", f"refer {c.reference} --route direct")
        await self.closed(c)

    async def connexus_case(self, c: DemoCase) -> None:
        await self.file(c)
        await self.stage1_answered(c)
        s = await self.until(c, "acknowledged at Stage 2", lambda s: s.stage is Stage.STAGE2 and bool(s.stage2_handler))
        self.tell(c, f"review by the Complaints Manager, {s.stage2_handler}")
        await self.pause()
        await self.signal(c, Signal.RECORD_CONTACT, RecordContact(
            channel=Channel.PHONE, direction=ContactDirection.OUTBOUND, by="Alan Reid",
            kind=ContactKind.REVIEW_DISCUSSION, notes="Discussed what the review should look at"))
        self.tell(c, "the Complaints Manager calls the resident about the review",
                  f"contact {c.reference} --channel phone --direction outbound --by 'Alan Reid' "
                  "--kind review_discussion")
        await self.pause()
        await self.update(c, Update.RECORD_REVIEW_FINDINGS, ReviewFindings(
            answers=[ReviewAnswer(key=k, answer=True, notes=f"Checked: {k.replace('_', ' ')}") for k in REVIEW_QUESTIONS],
            summary="The investigation was sound; the mould treatment was missed.", by="Alan Reid"))
        self.tell(c, "review findings recorded", f"findings {c.reference} --answer KEY=yes:NOTES ... --summary '...'")
        await self.pause()
        await self.update(c, Update.AGREE_OUTCOME, AgreeOutcome(
            role="head_of_service", name="Ruth Patel", decision="partly_upheld",
            outcome="We uphold the mould point.", remedy="£150"))
        self.tell(c, "outcome agreed by the Head of Service; review outcome sent with the route to the Ombudsman",
                  f"agree-outcome {c.reference} --role head_of_service --name 'Ruth Patel' ...")
        await self.pause()
        await self.signal(c, Signal.RECORD_CONTACT, RecordContact(
            channel=Channel.PHONE, direction=ContactDirection.OUTBOUND, by="Alan Reid",
            kind=ContactKind.FINDINGS_CALL, notes="Findings explained"))
        self.tell(c, "findings explained to the resident by phone",
                  f"contact {c.reference} --channel phone --direction outbound --by 'Alan Reid' --kind findings_call")
        await self.closed(c)

    async def late_case(self, c: DemoCase) -> None:
        await self.file(c)
        await self.until(c, "acknowledged", lambda s: s.status is Status.INVESTIGATING)
        self.tell(c, "acknowledged; nobody will answer it, to show a missed deadline")
        s = await self.until(c, "overdue", lambda s: bool(s.breaches))
        self.tell(c, f"{s.breaches[0].label} missed: a manager is told and the UI shows Overdue = true",
                  "list --overdue --open")
        self.tell(c, "left open for you: answer it and watch it go on",
                  f"respond {c.reference} --decision upheld --reasons 'Sorry for the delay'")


async def run_demo(client: Client, task_queue: str, *, pace: float = 8.0, late_case: bool = True,
                   say: Callable[[str], None] = print,
                   clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> list[str]:
    """File and drive the demonstration cases; the references, once each has got where it should.
    `late_case=False` leaves out the case that waits for its deadline to pass (half a minute)."""
    demo = Demo(client, task_queue, pace=pace, say=say, clock=clock)
    cases = [
        (demo.case(1, CODE, "Maria Jones", "Damp and mould in the bedroom; no repair booked."), demo.code_case),
        (demo.case(2, CONNEXUS, "Ade Okafor", "Communal door repair not done after three reports."),
         demo.connexus_case),
        (demo.case(3, CODE, "Li Wei", "Noise from the flat above, reported twice."), demo.late_case),
    ][:3 if late_case else 2]
    say(f"Demonstration (not real cases): {len(cases)} complaints under demo/policies/, deadlines in seconds.")
    stories: list[Awaitable[None]] = []
    for i, (c, story) in enumerate(cases):
        stories.append(_after(i * pace / 2, story(c)))  # staggered, so their steps do not all land at once
    await asyncio.gather(*stories)
    say(f"Demonstration done. In the UI, search: WorkflowId STARTS_WITH 'complaint-DEMO-{demo.run}'")
    return [c.reference for c, _ in cases]


async def _after(delay: float, story: Awaitable[None]) -> None:
    await asyncio.sleep(delay)
    await story
