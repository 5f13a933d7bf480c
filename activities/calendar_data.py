"""Build calendar snapshots from the `holidays` package (offline rules, no network).

Only activities and the CLI import `holidays`: it is not deterministic across package upgrades, so
the workflow never sees it, only the snapshot built here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, time
from typing import Literal

import holidays
from pydantic import BaseModel

from domain.calendar import CalendarSnapshot, Nation

NATION_SUBDIV: dict[Nation, str] = {
    Nation.ENGLAND_AND_WALES: "ENG",  # Wales has the same bank holidays as England
    Nation.SCOTLAND: "SCT",
    Nation.NORTHERN_IRELAND: "NIR",
}
CLOSURE_REASON = "Landlord closure"


class CalendarChange(BaseModel):
    """A bank holiday announced, moved or cancelled after the package was released."""

    day: date
    change: Literal["add", "remove"]
    reason: str
    nation: Nation | None = None  # None = every nation (e.g. a landlord closure)


def bank_holidays(nation: Nation, first_year: int, last_year: int) -> dict[date, str]:
    """Bank holidays in the nation, including observed substitute days, weekends included."""
    # observed=True adds the substitute weekday ("Boxing Day (observed)") when a holiday falls on
    # a weekend; two holidays on one date come back as one "A; B" name.
    found = holidays.country_holidays(
        "GB", subdiv=NATION_SUBDIV[nation], years=range(first_year, last_year + 1), observed=True
    )
    return {d: str(name) for d, name in found.items() if first_year <= d.year <= last_year}


def build_snapshot(
    nation: Nation,
    first_year: int,
    last_year: int,
    closures: Iterable[date] = (),
    changes: Iterable[CalendarChange] = (),
    closing_time: time | None = time(17, 0),
) -> CalendarSnapshot:
    """A snapshot of the nation's non-working weekdays for first_year..last_year.

    Order: the package's holidays, then announced changes (in the order given), then the
    landlord's closures. Weekend days and days outside the years are ignored: weekends never work
    anyway, and other years are another snapshot's business.
    """
    if first_year > last_year:
        raise ValueError(f"first_year {first_year} is after last_year {last_year}")

    def relevant(d: date) -> bool:
        return d.weekday() < 5 and first_year <= d.year <= last_year

    days = {d: name for d, name in bank_holidays(nation, first_year, last_year).items() if relevant(d)}
    for c in changes:
        if c.nation not in (None, nation) or not relevant(c.day):
            continue
        if c.change == "remove":
            days.pop(c.day, None)
        elif c.day in days and c.reason not in days[c.day]:
            days[c.day] = f"{days[c.day]}; {c.reason}"
        else:
            days[c.day] = c.reason
    for d in closures:
        if relevant(d):
            # A closure on a bank holiday keeps the bank holiday's name: it says more.
            days.setdefault(d, CLOSURE_REASON)
    return CalendarSnapshot(
        nation=nation,
        first_year=first_year,
        last_year=last_year,
        non_working=dict(sorted(days.items())),
        closing_time=closing_time,
    )
