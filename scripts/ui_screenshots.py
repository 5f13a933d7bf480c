"""Screenshots of the Temporal UI as operators see it, taken in a real headless Chromium.

    make screenshots        # or: .venv/bin/python scripts/ui_screenshots.py [--out docs/screenshots]

Starts the whole system with its demonstration (`python -m localstack --demo`) on a scratch directory
and spare ports, files a few cases under the shipped policies through the CLI and runs a retention
sweep (a workflow of another type), then, in Debian's Chromium (`apt-get install chromium`; no
downloaded browser), does what the README tells an operator to do and checks what the UI shows:
- adds the ComplaintStage, NextDeadline, CaseHandler and Overdue columns in the list's "Configure
  Columns" drawer, and saves the README's queries as views: the open cases show with their stage,
  next deadline, handler and overdue flag, the demo's overdue case marked, and no retention run;
- before sign-in, a case page shows the banner that says where to sign in, and no resident data;
- after signing in at the codec server's /login with the token, the same page has no codec banner
  and shows the case decrypted, with its current details;
- the demo's first case has gone through Stage 2 and its final response to closure.
Playwright (the `screenshots` extra) drives that Chromium; its own browser download is never used.
Exits non-zero, with one line, when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]
CASES = [
    ("UI-2026-0001", "hos-code-2024", "england-and-wales", "Maria Jones", "Damp and mould in the bedroom"),
    ("UI-2026-0002", "connexus", "england-and-wales", "Ade Okafor", "Repair to the communal door not done"),
    ("UI-2026-0003", "optivo", "england-and-wales", "Li Wei", "Noise from the flat above, reported twice"),
    ("UI-2026-0004", "hos-code-2024", "scotland", "Iain Ross", "Heating broken for two weeks"),
]
VIEWPORT = {"width": 1800, "height": 950}
COLUMNS = ["ComplaintStage", "NextDeadline", "CaseHandler", "Overdue"]
DROPPED = ["Run ID", "End", "Type"]  # room for them: every row of a saved view is a ComplaintWorkflow
OPEN_CASES = "WorkflowType = 'ComplaintWorkflow' AND ExecutionStatus = 'Running'"
BANNER = "Residents' data is encrypted. Sign in to the codec server"  # localstack/ui_proxy.py says it
DEFAULT_BANNER = "Codec Server could not connect"  # what the UI says without it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_env(path: Path) -> dict[str, str]:
    pairs = (line.removeprefix("export ").split("=", 1) for line in path.read_text().splitlines()
             if line.startswith("export "))
    return {k: shlex.split(v)[0] if v else "" for k, v in pairs}


def readme_views() -> list[tuple[str, str]]:
    """The README's saved queries, (question, query), as its table gives them."""
    views = []
    for line in (ROOT / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[1].startswith("`WorkflowType"):
            # The UI takes only letters, digits, spaces, - _ and . in a view's name.
            name = re.sub(r"[^A-Za-z0-9 _.-]", "", cells[0].split("(")[0]).strip()
            views.append((name, cells[1].strip("`")))
    if len(views) < 4:
        fail(f"the README's saved-query table has {len(views)} queries, expected 4")
    return views


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(1)


class Output:
    """The stack's output, read on a thread: the worker logs to it, and an unread pipe would stop it."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc, self.lines = proc, []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float) -> None:
        end = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if self.proc.poll() is not None:
                fail(f"the stack stopped (exit {self.proc.returncode}) before {text!r}")
            if time.monotonic() > end:
                fail(f"no {text!r} from the stack within {timeout:.0f} s")
            time.sleep(0.2)


async def all_text(page: Any) -> str:
    """Text of the page and its frames: the UI renders Markdown (summary, details) in sandboxed iframes."""
    parts = []
    for frame in page.frames:
        try:
            parts.append(await frame.inner_text("body", timeout=2000))
        except Exception:  # a frame still loading, or gone: the next read sees it
            pass
    return "\n".join(parts)


async def text_until(page: Any, done: Any, tries: int = 40) -> str:
    text = ""
    for _ in range(tries):
        text = await all_text(page)
        if done(text):
            break
        await page.wait_for_timeout(500)
    return text


async def configure_columns(page: Any) -> None:
    """As an operator does once per browser: the table's "Configure Columns" drawer, + and -."""
    await page.get_by_test_id("workflows-summary-table-configuration-button").click()
    for name in COLUMNS:
        await page.get_by_test_id(f"orderable-list-item-{name}-add-button").click()
    for name in DROPPED:
        await page.get_by_role("button", name=f"Remove {name} column").first.click()
    closes = page.get_by_role("button", name="Close")
    for i in range(await closes.count()):
        if await closes.nth(i).is_visible():
            await closes.nth(i).click()
            break


async def save_view(page: Any, base: str, name: str, query: str) -> None:
    """Paste the query into the search (the </> button), search, and "Save as New" under a name."""
    await page.goto(f"{base}/workflows", wait_until="domcontentloaded")
    await page.get_by_test_id("toggle-manual-query").wait_for(timeout=20_000)
    box = page.get_by_test_id("workflow-manual-search-input")
    if not await box.is_visible():
        await page.get_by_test_id("toggle-manual-query").click()
    await box.fill(query)
    await page.get_by_test_id("workflow-manual-search-button").click()
    await page.get_by_role("button", name="Save as New", exact=True).click()
    await page.get_by_test_id("workflow-save-view-modal-input").press_sequentially(name)  # typed: fill() leaves Save off
    await page.locator("#workflow-save-view-modal").get_by_test_id("confirm-modal-button").click()
    await page.get_by_test_id("saved-views-bar").get_by_text(name).first.wait_for(timeout=10_000)


async def list_rows(page: Any, base: str, query: str, expected: set[str]) -> dict[str, str]:
    """Workflow id -> the row's text, once the (eventually consistent) index lists exactly `expected`."""
    rows: dict[str, str] = {}
    for _ in range(10):
        await page.goto(f"{base}/workflows?query={urllib.parse.quote(query)}", wait_until="domcontentloaded")
        await page.get_by_text(sorted(expected)[0]).first.wait_for(timeout=20_000)
        await page.wait_for_timeout(1000)
        rows = {}
        for row in await page.get_by_test_id("workflows-summary-configurable-table-row").all():
            text = await row.inner_text()
            wid = next((w for w in text.split() if w.startswith(("complaint-", "complaints-"))), text[:40])
            rows[wid] = text
        if set(rows) == expected:
            break
    if set(rows) != expected:
        fail(f"the list for {query!r} shows {sorted(rows)}, expected {sorted(expected)}")
    return rows


async def pages(base: str, codec: str, token: str, demo_late: str, demo_done: str, out: Path) -> None:
    from playwright.async_api import async_playwright  # the `screenshots` extra; only this script needs it

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        fail("chromium is not installed (apt-get install chromium)")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=exe, args=CHROMIUM_FLAGS)
        page = await browser.new_page(viewport=VIEWPORT)

        # The columns and saved views, set up as the README says.
        await page.goto(f"{base}/workflows", wait_until="domcontentloaded")
        await page.get_by_test_id("workflows-summary-table-configuration-button").wait_for(timeout=20_000)
        await configure_columns(page)
        for name, query in [*readme_views(), ("Open cases", OPEN_CASES)]:
            await save_view(page, base, name, query)

        expected = {f"complaint-{ref}" for ref, *_ in CASES} | {f"complaint-{demo_late}"}
        rows = await list_rows(page, base, OPEN_CASES, expected)
        shown = []  # the header cells on screen: a column scrolled out of the table is not seen
        for h in await page.locator("thead th").all():
            box = await h.bounding_box()
            if box and box["x"] + box["width"] <= VIEWPORT["width"]:
                shown.append(await h.inner_text())
        missing = [c for c in COLUMNS if not any(c in h for h in shown)]
        if missing:
            fail(f"the list does not show the {missing} columns (on screen: {shown})")
        for ref, *_ in CASES:
            row = rows[f"complaint-{ref}"]
            if "stage-1" not in row or "S-" not in row or "20" not in row.split("stage-1", 1)[1]:
                fail(f"the row for {ref} does not show its stage, next deadline and handler: {row!r}")
        if "TRUE" not in rows[f"complaint-{demo_late}"].upper():
            fail(f"the demo's overdue case is not marked overdue: {rows[f'complaint-{demo_late}']!r}")
        await page.screenshot(path=str(out / "ui-open-cases.png"))
        print(f"wrote {out / 'ui-open-cases.png'}: {len(rows)} open cases with {', '.join(COLUMNS)}; "
              "no retention run among them")

        # Before sign-in: the banner says where to sign in, and nothing of the resident shows.
        wid, name = f"complaint-{CASES[0][0]}", CASES[0][3]
        await page.goto(f"{base}/workflows/{wid}", wait_until="domcontentloaded")
        await page.get_by_text("User Metadata", exact=True).first.wait_for(timeout=20_000)
        case_url = page.url.rsplit("/", 1)[0]
        await page.goto(f"{case_url}/user-metadata", wait_until="domcontentloaded")
        text = await text_until(page, lambda t: BANNER in t)
        if BANNER not in text or f"{codec}/login" not in text:
            fail("before sign-in, the case page does not say where to sign in")
        if name in text or f"Complaint {CASES[0][0]}" in text:
            fail("the UI shows the resident's data without the codec server's token")
        await page.screenshot(path=str(out / "ui-case-without-token.png"))
        print(f"wrote {out / 'ui-case-without-token.png'}: no token, no resident data, a link to sign in")

        # Sign in at the codec server once, then reload: nothing to change in the UI's settings.
        await page.goto(f"{codec}/login", wait_until="domcontentloaded")
        await page.fill("input[name=token]", token)
        await page.get_by_role("button", name="Sign in").click()
        await page.get_by_text("Signed in").wait_for(timeout=10_000)

        await page.goto(f"{case_url}/timeline", wait_until="domcontentloaded")
        await page.get_by_text("Send the acknowledgement letter").first.wait_for(timeout=20_000)
        await page.screenshot(path=str(out / "ui-case-timeline.png"))
        print(f"wrote {out / 'ui-case-timeline.png'}")

        await page.goto(f"{case_url}/user-metadata", wait_until="domcontentloaded")
        musts = (f"Complaint {CASES[0][0]}", "Stage: stage-1", "Waiting for:", "Next deadline: Stage 1 response")
        text = await text_until(page, lambda t: all(m in t for m in musts))
        missing = [m for m in musts if m not in text]
        banners = [b for b in (BANNER, DEFAULT_BANNER) if b in text]
        if missing or banners:
            await page.screenshot(path=str(out / "ui-case-page-failed.png"))
            fail(f"after sign-in the case page lacks {missing} or shows {banners} "
                 f"(see {out / 'ui-case-page-failed.png'})")
        await page.screenshot(path=str(out / "ui-case-current-details.png"))
        print(f"wrote {out / 'ui-case-current-details.png'}: decrypted for the signed-in operator, no banner")

        # The demo's first case, finished in minutes: Stage 2, its final response (which gives the route
        # to the Ombudsman), closure and the survey, all in the case's timeline.
        await page.goto(f"{base}/workflows/complaint-{demo_done}", wait_until="domcontentloaded")
        steps = ("Appoint the Stage 2 reviewer", "Send the final response letter", "Send the survey letter")
        text = await text_until(page, lambda t: all(m in t for m in steps) and "COMPLETED" in t.upper())
        missing = [m for m in steps if m not in text]
        if missing or "COMPLETED" not in text.upper():
            fail(f"the demo case {demo_done} does not show {missing or 'that it completed'}")
        await page.screenshot(path=str(out / "ui-demo-case.png"))
        print(f"wrote {out / 'ui-demo-case.png'}: the demo's case through Stage 2 to closure")
        await browser.close()


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "starter", *args], cwd=ROOT, env=env, capture_output=True, text=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="complaints-ui-"))
    grpc, ui, codec = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLAINTS_")}
    env.update(COMPLAINTS_VAR_DIR=str(scratch / "var"), TEMPORAL_ADDRESS=f"127.0.0.1:{grpc}",
               COMPLAINTS_UI_PORT=str(ui), COMPLAINTS_CODEC_PORT=str(codec))
    stack = subprocess.Popen([sys.executable, "-m", "localstack", "--demo", "--pace", "1"], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output = Output(stack)
    try:
        output.wait_for("localstack ready", 120)
        env.update(read_env(scratch / "var" / "env"))  # the stack's keys: the CLI encrypts as the worker does
        for ref, policy, nation, name, summary in CASES:
            cp = cli(env, "file", "--reference", ref, "--policy", policy, "--resident-name", name,
                     "--resident-address", f"1 High Street, {ref}", "--property-address", f"1 High Street, {ref}",
                     "--nation", nation, "--summary", summary)
            if cp.returncode != 0:
                fail(f"filing {ref}: {cp.stderr.strip()}")
        cp = cli(env, "retention", "run")  # a RetentionWorkflow, which the saved views must leave out
        if cp.returncode != 0:
            fail(f"retention run: {cp.stderr.strip()}")
        # Wait until each case is acknowledged and investigating, so the list shows settled rows.
        for ref, *_ in CASES:
            for _ in range(60):
                cp = cli(env, "status", ref, "--json")
                if cp.returncode == 0 and json.loads(cp.stdout)["status"] == "investigating":
                    break
                time.sleep(0.5)
            else:
                fail(f"{ref} did not reach investigating")
        output.wait_for("Demonstration done", 240)
        late = next(w.split()[1] for w in output.lines if "Overdue = true" in w)
        done = next(w.split()[1] for w in output.lines if "finished:" in w and w.split()[1].endswith("-1"))

        token = (scratch / "var" / "codec-token").read_text().strip()
        asyncio.run(pages(f"http://127.0.0.1:{ui}/namespaces/default", f"http://127.0.0.1:{codec}", token, late,
                          done, args.out))
    finally:
        os.killpg(stack.pid, signal.SIGINT)
        try:
            stack.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(stack.pid, signal.SIGKILL)
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
