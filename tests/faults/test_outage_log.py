"""The outage log on its own, with a hand-driven clock: one line when the case record goes, one per
interval while it stays away (with the attempts it stands for), one when it is back."""

from __future__ import annotations

import structlog

from activities.case_record import OutageLog


def test_outage_logged_once_per_interval_not_per_attempt() -> None:
    now = [100.0]
    outage = OutageLog(interval_s=10, clock=lambda: now[0])
    with structlog.testing.capture_logs() as lines:
        for _ in range(35):  # an attempt a second for 35 s, from many activities at once
            outage.failed(ConnectionRefusedError("refused"))
            outage.failed(FileNotFoundError("socket gone"))
            now[0] += 1
        outage.succeeded()
        outage.succeeded()  # the next success says nothing: the record was already back
    events = [ln["event"] for ln in lines]
    assert events == ["case record unreachable; activities retry with backoff"] + \
        ["case record still unreachable"] * 3 + ["case record reachable again"]
    assert [ln["failed_attempts"] for ln in lines[1:4]] == [20, 20, 20]
    assert lines[-1]["down_for_s"] == 35 and lines[-1]["failed_attempts"] == 9
