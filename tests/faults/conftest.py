"""Fault tests report their figures (cases, kills, letters, events lost and doubled) at the end of the
run, even under -q, so a CI log or a closing note can quote them."""

from __future__ import annotations

import pytest

FIGURES: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("fault figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
