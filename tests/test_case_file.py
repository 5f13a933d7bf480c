"""Every piece of a case's state is in its case file (domain/case_file.py), so continue-as-new carries it.

A step that adds state as an attribute of the workflow and not as a field of CaseFile would lose it
when the case continues as new; this reads every `self._x = ...` in workflows/ and fails naming it.
Only the run's own machinery (its loops, counters, locks, caches) stays out, listed here with why.
"""

from __future__ import annotations

import re
from pathlib import Path

from domain.case_file import CaseFile, attribute

ROOT = Path(__file__).resolve().parent.parent
# Attributes that belong to one run, rebuilt by the next: never carried.
# _book holds the deadlines, which are carried (CaseFile.deadlines). The inbox's (workflows/inbox.py) is
# empty whenever a run continues as new, and its budget is per workflow task.
RUN_ONLY = {
    "_book", "_calendar_lock", "_finished", "_in_flight", "_invalid_start", "_keeper", "_may_continue", "_persister",
    "_published", "_resting", "_run_task", "_signals", "_sizes", "_timeline_total", "_unsaved_total", "_wake",
    "_inbox", "_arrived", "_taken", "_handling", "_queueing", "_budget",
}
ASSIGNED = re.compile(r"self\.(_[a-z0-9_]+)\s*(?::[^=\n]*)?=(?!=)")


def test_every_attribute_of_the_case_is_in_its_case_file() -> None:
    carried = {attribute(name) for name in CaseFile.model_fields}
    found = {m.group(1): path.name for path in sorted((ROOT / "workflows").glob("*.py"))
             for m in ASSIGNED.finditer(path.read_text())}
    missing = {a: where for a, where in found.items() if a not in carried and a not in RUN_ONLY}
    assert not missing, f"state not in domain/case_file.py (continue-as-new would drop it): {missing}"


def test_a_case_file_round_trips() -> None:
    from tests.support import complaint, london

    case = CaseFile(complaint=complaint("CMP-FILE-1", london(2026, 12, 1)))
    assert CaseFile.model_validate(case.model_dump(mode="json")) == case
