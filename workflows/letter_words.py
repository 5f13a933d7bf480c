"""The wording letters share, from the policy and the case only: the Ombudsman route, the points a
response answers, the signature. Pure functions the workflow calls (and the tests drive).

The engine names no regulator, landlord, period or signatory of its own: each comes from the policy
(its ombudsman, landlord, cooling-off rule, role titles) or from the case (the person who has it).
"""

from __future__ import annotations

from datetime import date, timedelta

from domain import wording
from domain.contract import StageResponse
from domain.policy import Policy
from domain.records import StaffMember
from domain.wording import long_date


def ombudsman_route(policy: Policy, cooling_off_ends: date | None) -> str:
    """The final response's paragraph on going to the regulator; `cooling_off_ends` from
    letter_dates.cooling_off_ends (None when the policy has no cooling-off)."""
    o = policy.ombudsman
    rule = o.cooling_off
    if rule is None or cooling_off_ends is None:
        return (f"This is the end of our complaints procedure. If you are still unhappy, you can refer your "
                f"complaint to the {o.name}, normally within {o.referral_months} months of this "
                f"letter: {o.contact}")
    # The period runs to the end of its last day; a direct referral is accepted from the next day.
    ended = (f"once the cooling-off period of {wording.period(rule.length, rule.unit)} has ended on "
             f"{long_date(cooling_off_ends)}, from {long_date(cooling_off_ends + timedelta(days=1))}")
    if o.designated_person_route:
        who = f" ({o.designated_persons})" if o.designated_persons else ""
        how = f"You can ask a designated person{who} to refer it now, or contact the {o.name} directly {ended}."
    else:
        how = f"You can contact the {o.name} {ended}."
    return f"If you are still unhappy, you can ask the {o.name} to review your complaint. {how} {o.contact}"


def final_response_promise(due: date | None) -> str:
    """A panel sitting letter's promise of the final response, when the case knows its date yet."""
    return "" if due is None else f"\n\nWe will send you the final response by {long_date(due)}."


def points_answered(response: StageResponse) -> str:
    """The paragraph listing the points the response answers, or nothing when it names none."""
    if not response.points_addressed:
        return ""
    return "\n\nPoints you raised, each answered: " + "; ".join(response.points_addressed)


def signature(policy: Policy, person: StaffMember | None) -> dict[str, str]:
    """Who signs: the named person who has the case and their role as the policy titles it; with no one
    appointed yet, the landlord alone (render joins the lines it has)."""
    if person is None:
        return {"signed_by": "", "signed_as": "", "landlord": policy.landlord}
    return {"signed_by": person.name, "signed_as": policy.role_title(person.role), "landlord": policy.landlord}
