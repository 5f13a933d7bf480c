"""docs/architecture.md is the map of the procedure: it must name every handler ComplaintWorkflow has, in the
module and class that define it, and no handler it does not have; and every module it describes must exist.

The handlers are read from the workflow class as Temporal reads them (its workflow definition), so a new
signal, update or query without a row here fails, and so does a row for one that was removed or moved.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from temporalio import workflow

from domain.contract import Query, Signal, Update
from domain.records import Activity
from workflows.complaint import ComplaintWorkflow

ROOT = Path(__file__).resolve().parent.parent
MAP = ROOT / "docs" / "architecture.md"
ROW = re.compile(r"^\| `(?P<name>[a-z0-9_]+|\*)`(?: \([^)]*\))? \| (?P<kind>signal|update|query) \| "
                 r"`(?P<module>[a-z_/]+\.py)`: `(?P<owner>\w+)\.(?P<method>\w+)` \| (?P<wait>[^|]+) \| (?P<then>[^|]+) \|$")
PACKAGES = ("workflows", "activities", "domain", "starter")


def mapped() -> dict[tuple[str, str], re.Match[str]]:
    rows = [m for line in MAP.read_text(encoding="utf-8").splitlines() if (m := ROW.match(line))]
    found = {(m["kind"], m["name"]): m for m in rows}
    assert len(found) == len(rows), "a message is mapped twice"
    return found


def defined() -> dict[tuple[str, str], object]:
    """Every handler of the workflow, as Temporal's definition of the class holds them (None: the dynamic one)."""
    defn = workflow._Definition.from_class(ComplaintWorkflow)
    assert defn is not None
    handlers: dict[tuple[str, str], object] = {}
    for kind, table in (("signal", defn.signals), ("update", defn.updates), ("query", defn.queries)):
        for name, d in table.items():
            handlers[(kind, "*" if name is None else str(name))] = d.fn
    return handlers


def test_the_map_has_every_handler_and_no_other() -> None:
    in_map, in_code = set(mapped()), set(defined())
    assert in_code - in_map == set(), f"handlers missing from docs/architecture.md: {sorted(in_code - in_map)}"
    assert in_map - in_code == set(), f"docs/architecture.md names handlers the workflow lacks: {sorted(in_map - in_code)}"


def test_the_map_has_every_message_of_the_contract() -> None:
    names = {("signal", s.value) for s in Signal} | {("update", u.value) for u in Update} | {
        ("query", q.value) for q in Query}
    assert names <= set(mapped())


@pytest.mark.parametrize("key", sorted(defined()), ids=lambda k: f"{k[0]}:{k[1]}")
def test_each_row_names_the_module_and_handler_that_take_the_message(key: tuple[str, str]) -> None:
    row = mapped().get(key)
    assert row is not None, f"{key} is not in docs/architecture.md"
    fn = defined()[key]
    module = fn.__module__.replace(".", "/") + ".py"  # type: ignore[attr-defined]
    assert (row["module"], f"{row['owner']}.{row['method']}") == (module, fn.__qualname__)  # type: ignore[attr-defined]
    assert row["wait"].strip() and row["then"].strip()


def test_the_activities_it_names_exist() -> None:
    known = {a.value for a in Activity} | {"withdraw_involved_customer"}
    for row in mapped().values():
        for name in re.findall(r"`([a-z0-9_]+)`", row["then"]):
            assert name in known or name in {"signal_refused", "deadline_moved"}, f"{row['name']}: `{name}`"


def test_every_module_has_its_line_and_every_line_a_module() -> None:
    text = MAP.read_text(encoding="utf-8")
    modules = {f"{p.parent.name}/{p.name}" for pkg in PACKAGES for p in (ROOT / pkg).glob("*.py")
               if p.name != "__init__.py"}
    named = set(re.findall(r"^\| `((?:" + "|".join(PACKAGES) + r")/\w+\.py)` \|", text, re.M))
    assert modules - named == set(), f"modules without a line in docs/architecture.md: {sorted(modules - named)}"
    assert named - modules == set(), f"docs/architecture.md describes modules that do not exist: {sorted(named - modules)}"
