"""Argument types the commands share, so a date or a nation is read the same way everywhere and a
bad one gives the same one-line error."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import date, datetime

from domain.calendar import Nation


def parse_day(text: str) -> date:
    # fromisoformat also takes 20270217 and 2027-W07-3; operators mean one spelling.
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)")


def parse_instant(text: str) -> datetime:
    """A date and time with its UTC offset: a case's clock runs in real instants, and a bare date or a
    local time without an offset would be read differently by different machines."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None or not re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ].*", text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date and time with its UTC offset (e.g. 2026-12-01T09:30:00+00:00)")
    return at


def parse_nation(text: str) -> Nation:
    try:
        return Nation(text)
    except ValueError:
        known = ", ".join(n.value for n in Nation)
        raise argparse.ArgumentTypeError(f"unknown nation {text!r} (one of {known})") from None


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argparse type for a whole number in low..high: a typo like 1000000 days or a panel of 0 is
    refused at the command line, in one line, instead of building centuries of holidays."""

    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= n <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {n}")
        return n

    return parse
