"""The README and docs/operators.md as a newcomer follows them: every `sh` block, every command given
inline, and every saved UI query runs as written, on a fresh checkout, against the stack
`make run` starts.

The stack is `python -m localstack` (what `make run` runs) in a scratch copy of the checkout (links to
the project's files, its own var/), on spare ports. Each block runs in `sh -e` from that copy with a
bare environment, as in a new terminal: nothing on PATH but the system's, no TEMPORAL_ or COMPLAINTS_
variables; what a block needs, it gets from the lines it has (`. var/env`).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from localstack.temporal import find_binary
from tests.test_localstack import free_port, localstack, read_env_file

ROOT = Path(__file__).resolve().parents[1]
DOCS = (ROOT / "README.md", ROOT / "docs" / "operators.md")
# The README's first block is the two commands themselves: `make run` is what this test starts (its
# recipe is checked below), and `make test` is the suite this test is part of.
THE_TWO_COMMANDS = ["make run", "make test"]
BARE_PATH = "/usr/local/bin:/usr/bin:/bin"
# Inline mentions that are not commands to run and see finish: each is checked to be in the docs.
NOT_RUN = {
    "python -m starter": "the CLI's name",
    "python worker.py": "the worker, which runs until stopped",
    "python -m starter codec-server": "the codec server, which serves until stopped",
}


@dataclass(frozen=True)
class Block:
    doc: str
    line: int
    lang: str
    text: str

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}"


def fenced_blocks(path: Path) -> list[Block]:
    blocks, lines = [], path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if m:
            end = lines.index("```", i + 1)
            blocks.append(Block(path.relative_to(ROOT).as_posix(), i + 1, m.group(1), "\n".join(lines[i + 1:end])))
            i = end
        i += 1
    return blocks


def synopsis(command: str) -> bool:
    """A usage line, not a command: it has placeholders (REF, NAME, <ref>) or options ([--all], a|b)."""
    return any(c in command for c in "[]<>|") or "..." in command or any(
        re.fullmatch(r"[A-Z][A-Z_-]*", token.split("=")[-1]) for token in command.split())


def inline_commands(path: Path) -> list[Block]:
    """Commands given inline in the prose, e.g. `python -m starter list --overdue --open`; usage
    synopses are read, not run."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        for m in re.finditer(r"`((?:python -m starter|python worker\.py)[^`]*)`", line):
            if m.group(1) not in NOT_RUN and not synopsis(m.group(1)):
                out.append(Block(path.relative_to(ROOT).as_posix(), n, "sh", m.group(1)))
    return out


def commands(text: str) -> list[str]:
    """The block's command lines, comments and continuations resolved (for the checks on what runs)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [ln.split("  #")[0].strip() for ln in joined.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


SH_BLOCKS = [b for d in DOCS for b in fenced_blocks(d) if b.lang == "sh"]
# The saved queries: docs/operators.md's plain blocks, and the README table's (inline, with a status).
QUERIES = [b for b in fenced_blocks(DOCS[1]) if b.lang == ""] + [
    Block(d.relative_to(ROOT).as_posix(), n, "", m.group(1)) for d in DOCS
    for n, line in enumerate(d.read_text(encoding="utf-8").splitlines(), 1)
    for m in re.finditer(r"`([^`]*ExecutionStatus[^`]*)`", line)
]


def fresh_checkout(where: Path) -> Path:
    """The project as a fresh clone has it (plus its .venv, as `make` makes it), with its own var/."""
    where.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in ("var", ".git", ".pytest_cache", ".ruff_cache", "__pycache__"):
            (where / entry.name).symlink_to(entry)
    return where


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    clone = fresh_checkout(tmp_path_factory.mktemp("docs") / "clone")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "COMPLAINTS_"))}
    env.update(TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}", COMPLAINTS_UI_PORT=str(free_port()),
               COMPLAINTS_CODEC_PORT=str(free_port()))
    with localstack(env, cwd=clone):
        yield clone


def run_in_terminal(clone: Path, script: str) -> subprocess.CompletedProcess[str]:
    bare = {"PATH": BARE_PATH, "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}
    return subprocess.run(["sh", "-e", "-c", script], cwd=clone, env=bare, capture_output=True, text=True,
                          timeout=300)


def test_the_docs_have_the_blocks_this_test_runs() -> None:
    # A block written as ```bash or ```shell would silently escape this test.
    langs = {b.lang for d in DOCS for b in fenced_blocks(d)}
    assert langs <= {"sh", ""}, f"command blocks must be ```sh: {langs}"
    assert commands(SH_BLOCKS[0].text) == THE_TWO_COMMANDS, "the README opens with the two commands"
    recipe = (ROOT / "Makefile").read_text().split("\nrun: ", 1)[1].splitlines()[1].strip()
    assert recipe.startswith("$(BIN)/python -m localstack"), "`make run` must be what this test starts"
    assert len(SH_BLOCKS) >= 3 and QUERIES
    text = "\n".join(d.read_text() for d in DOCS)
    assert all(f"`{name}`" in text for name in NOT_RUN), "NOT_RUN names only what the docs mention"


@pytest.mark.parametrize("block", SH_BLOCKS[1:] + [b for d in DOCS for b in inline_commands(d)], ids=str)
def test_a_command_block_runs_as_written(checkout: Path, block: Block) -> None:
    # Inline commands come after `. var/env`, as the README says to do in a second terminal.
    script = block.text if ". var/env" in block.text else f". var/env\n{block.text}"
    cp = run_in_terminal(checkout, script)
    assert cp.returncode == 0, f"{block} exited {cp.returncode}:\n{cp.stderr.strip() or cp.stdout.strip()}"


@pytest.mark.parametrize("block", QUERIES, ids=str)
def test_a_saved_query_is_one_the_server_takes(checkout: Path, block: Block) -> None:
    env = read_env_file(checkout / "var" / "env")
    query = block.text.strip()
    # Retention sweeps are workflows too: a saved query keeps to cases.
    assert query.startswith("WorkflowType = 'ComplaintWorkflow' AND "), f"{block}: {query}"
    cp = subprocess.run([find_binary("temporal"), "workflow", "count", "--address", env["TEMPORAL_ADDRESS"],
                         "--namespace", env["TEMPORAL_NAMESPACE"], "--query", query],
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, f"{block}: {shlex.quote(query)} refused: {cp.stderr.strip()}"
