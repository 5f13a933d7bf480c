"""Screenshots of the Temporal UI as operators see it, taken in a real headless Chromium.

    make screenshots        # or: .venv/bin/python scripts/ui_screenshots.py [--out docs/screenshots]

Starts the whole system (`python -m localstack`) on a scratch directory and spare ports, files a few
cases through the CLI, then checks in Debian's Chromium (`apt-get install chromium`; no downloaded
browser) that the workflow list filtered by ComplaintStage shows exactly the filed cases, that a
case's page shows no resident data until the operator signs in to the codec server with the token,
and then shows the case decrypted with its current details. Playwright (the `screenshots` extra) drives that Chromium:
its own browser download is never used. Exits non-zero, with one line, when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_env(path: Path) -> dict[str, str]:
    pairs = (line.removeprefix("export ").split("=", 1) for line in path.read_text().splitlines()
             if line.startswith("export "))
    return {k: shlex.split(v)[0] if v else "" for k, v in pairs}


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(1)


async def all_text(page) -> str:  # noqa: ANN001 - playwright's Page, imported lazily
    """Text of the page and its frames: the UI renders Markdown (summary, details) in sandboxed iframes."""
    parts = []
    for frame in page.frames:
        try:
            parts.append(await frame.inner_text("body", timeout=2000))
        except Exception:  # a frame still loading, or gone: the next read sees it
            pass
    return "\n".join(parts)


async def pages(base: str, codec: str, token: str, out: Path) -> None:
    """The list filtered by ComplaintStage, and a case's current details, in Debian's Chromium."""
    from playwright.async_api import async_playwright  # the `screenshots` extra; only this script needs it

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        fail("chromium is not installed (apt-get install chromium)")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=exe, args=CHROMIUM_FLAGS)
        page = await browser.new_page(viewport={"width": 1500, "height": 950})
        query = urllib.parse.quote('ComplaintStage="stage-1" AND ExecutionStatus="Running"')
        expected = {f"complaint-{ref}" for ref, *_ in CASES}
        shown: set[str] = set()
        for _ in range(10):  # visibility is eventually consistent: reload until the index has them all
            await page.goto(f"{base}/workflows?query={query}", wait_until="domcontentloaded")
            await page.get_by_text(next(iter(sorted(expected)))).first.wait_for(timeout=20_000)
            await page.wait_for_timeout(1000)
            text = await page.inner_text("main")
            shown = {w for w in text.split() if w.startswith("complaint-")}
            if shown == expected:
                break
        if shown != expected:
            fail(f"the list filtered by ComplaintStage shows {sorted(shown)}, expected {sorted(expected)}")
        await page.screenshot(path=str(out / "ui-cases-at-stage-1.png"))
        print(f"wrote {out / 'ui-cases-at-stage-1.png'}: {len(shown)} cases at stage-1")

        wid = f"complaint-{CASES[0][0]}"
        name = CASES[0][3]
        await page.goto(f"{base}/workflows/{wid}", wait_until="domcontentloaded")
        await page.get_by_text("User Metadata", exact=True).first.wait_for(timeout=20_000)
        case_url = page.url.rsplit("/", 1)[0]

        # Without the operator's token the codec server refuses: the UI has ciphertext only.
        await page.goto(f"{case_url}/user-metadata", wait_until="domcontentloaded")
        text = ""
        for _ in range(40):
            text = await all_text(page)
            if "Codec Server could not connect" in text:
                break
            await page.wait_for_timeout(500)
        else:
            fail("the UI did not report the codec server refusing it")
        if name in text or f"Complaint {CASES[0][0]}" in text:
            fail("the UI shows the resident's data without the codec server's token")
        await page.screenshot(path=str(out / "ui-case-without-token.png"))
        print(f"wrote {out / 'ui-case-without-token.png'}: no token, no resident data")

        # The operator signs in at the codec server once; the UI then sends that cookie with its requests.
        await page.goto(f"{codec}/login", wait_until="domcontentloaded")
        await page.fill("input[name=token]", token)
        await page.click("button")
        await page.get_by_text("Signed in").wait_for(timeout=10_000)
        await page.goto(base, wait_until="domcontentloaded")
        await page.evaluate("""endpoint => {
            localStorage.setItem('endpoint', JSON.stringify(endpoint));
            localStorage.setItem('overrideRemoteCodecConfiguration', 'true');
            localStorage.setItem('includeCredentials', 'true');
        }""", codec)

        # The timeline names each timer and activity as a step of the procedure.
        await page.goto(f"{case_url}/timeline", wait_until="domcontentloaded")
        await page.get_by_text("Send the acknowledgement letter").first.wait_for(timeout=20_000)
        await page.screenshot(path=str(out / "ui-case-timeline.png"))
        print(f"wrote {out / 'ui-case-timeline.png'}")

        await page.goto(f"{case_url}/user-metadata", wait_until="domcontentloaded")
        musts = (f"Complaint {CASES[0][0]}", "Stage: stage-1", "Waiting for:", "Next deadline: Stage 1 response")
        text = ""
        for _ in range(40):  # the UI asks the worker for current details: give it a moment to answer
            text = await all_text(page)
            if all(m in text for m in musts):
                break
            await page.wait_for_timeout(500)
        missing = [m for m in musts if m not in text]
        if missing:
            await page.screenshot(path=str(out / "ui-case-page-failed.png"))
            fail(f"the case page does not show {missing} (see {out / 'ui-case-page-failed.png'})")
        await page.screenshot(path=str(out / "ui-case-current-details.png"))
        print(f"wrote {out / 'ui-case-current-details.png'}: decrypted for the signed-in operator")
        await browser.close()


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
    stack = subprocess.Popen([sys.executable, "-m", "localstack"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        assert stack.stdout is not None
        for line in stack.stdout:
            if "localstack ready" in line:
                break
            if time.monotonic() > deadline:
                fail("the stack did not become ready in 120 s")
        else:
            fail(f"the stack stopped before it was ready (exit {stack.wait()})")
        env.update(read_env(scratch / "var" / "env"))  # the stack's keys: the CLI encrypts as the worker does
        for ref, policy, nation, name, summary in CASES:
            cp = subprocess.run([sys.executable, "-m", "starter", "file", "--reference", ref, "--policy", policy,
                                 "--resident-name", name, "--resident-address", f"1 High Street, {ref}",
                                 "--property-address", f"1 High Street, {ref}", "--nation", nation,
                                 "--summary", summary], cwd=ROOT, env=env, capture_output=True, text=True)
            if cp.returncode != 0:
                fail(f"filing {ref}: {cp.stderr.strip()}")
        # Wait until each case is acknowledged and investigating, so the list shows settled rows.
        for ref, *_ in CASES:
            for _ in range(60):
                cp = subprocess.run([sys.executable, "-m", "starter", "status", ref, "--json"], cwd=ROOT, env=env,
                                    capture_output=True, text=True)
                if cp.returncode == 0 and json.loads(cp.stdout)["status"] == "investigating":
                    break
                time.sleep(0.5)
            else:
                fail(f"{ref} did not reach investigating")

        token = (scratch / "var" / "codec-token").read_text().strip()
        asyncio.run(pages(f"http://127.0.0.1:{ui}/namespaces/default", f"http://127.0.0.1:{codec}", token, args.out))
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
