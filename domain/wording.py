"""Periods in words, as letters give them: a policy's "8 weeks" becomes "eight weeks".

Pure, so workflow code can use it: the engine writes no period of its own, only the policy's.
"""

from __future__ import annotations

from datetime import date

from domain.calendar import DeadlineUnit

_SMALL = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
          "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"]
_UNIT = {DeadlineUnit.WORKING_DAYS: ("working day", "working days"),
         DeadlineUnit.CALENDAR_DAYS: ("day", "days"),
         DeadlineUnit.WEEKS: ("week", "weeks"),
         DeadlineUnit.SECONDS: ("second", "seconds")}


def number(n: int) -> str:
    """Words up to twenty (plain English style for letters), figures above."""
    return _SMALL[n] if 0 <= n < len(_SMALL) else str(n)


def period(length: int, unit: DeadlineUnit) -> str:
    one, many = _UNIT[unit]
    return f"{number(length)} {one if length == 1 else many}"


def long_date(d: date) -> str:
    """A date as letters give it: Wednesday 10 February 2027."""
    return f"{d:%A} {d.day} {d:%B %Y}"
