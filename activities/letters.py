"""Letter texts. Each letter is rendered here, in the activity, and stored in full."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Template:
    subject: str
    body: str


# The signature is the named person who has the case, their role as the policy titles it, and the landlord
# (render joins them: a line the case cannot fill is left out, never filled with a placeholder).
_SIGN_OFF = "\n\nYours sincerely,\n{signature}"

TEMPLATES: dict[str, Template] = {
    "acknowledgement": Template(
        "We have received your complaint {reference}",
        "Dear {name},\n\nThank you for your complaint, which we received on {received_on}. "
        "We have logged it under reference {reference}.\n\nHow we understand your complaint: {summary}\n"
        "What you would like us to do: {desired_outcome}\n\n{handler} will look into it and send you a "
        "full response by {response_due}." + _SIGN_OFF,
    ),
    "extension": Template(
        "We need more time to respond to complaint {reference}",
        "Dear {name},\n\nWe are sorry, but we need more time to give you a full {what}. "
        "The reason is: {reason}\n\nWe will now respond by {new_due} (it was due by {old_due}).\n\n"
        "If you are unhappy with this, you can contact the {ombudsman}: {ombudsman_contact}." + _SIGN_OFF,
    ),
    "stage1_response": Template(
        "Our response to complaint {reference}",
        "Dear {name},\n\nDecision: {decision}\n\nWhy: {reasons}{points_answered}\n\n"
        "Putting it right: {remedy}\n\nWhat we will still do: {outstanding}\n\n"
        "If you are not satisfied, you can ask us to {escalation_name} your complaint by {escalation_by}. "
        "You do not need to give reasons, but it helps us to know what is unresolved." + _SIGN_OFF,
    ),
    "escalation_refused": Template(
        "Your request for a review of complaint {reference}",
        "Dear {name},\n\nWe will not take your complaint to the next stage, for this reason: {reason}\n"
        "{explanation}\n\nYou have the right to ask the {ombudsman} to look at this decision: "
        "{ombudsman_contact}." + _SIGN_OFF,
    ),
    "stage2_acknowledgement": Template(
        "We have received your request for a review of complaint {reference}",
        "Dear {name},\n\nThank you for asking us to review your complaint. {reviewer} will carry out the "
        "review. We will send you our final response by {response_due}.{participation}" + _SIGN_OFF,
    ),
    "involved_customer_invitation": Template(
        "Invitation to give an independent view on review {reference}",
        "Dear {name},\n\nWe would like you to give an independent view of the issues in complaint "
        "review {reference}. {papers_from} will contact you with the papers." + _SIGN_OFF,
    ),
    "involved_customer_withdrawn": Template(
        "Review {reference}: your involvement is no longer needed",
        "Dear {name},\n\nThe resident has chosen to have their review carried out without an involved "
        "customer. Thank you for your willingness to help; please do not act on the earlier invitation."
        + _SIGN_OFF,
    ),
    "panel_sitting": Template(
        "Your review panel for complaint {reference}",
        "Dear {name},\n\nThe review panel will meet on {sits_on} to review the decision on your "
        "complaint. Panel: {panel}. {attendance}{final_response_promise}" + _SIGN_OFF,
    ),
    "final_response": Template(
        "Final response to complaint {reference}",
        "Dear {name},\n\nThis is our final response to your complaint.\n\nDecision: {decision}\n\n"
        "Why: {reasons}\n\nPutting it right: {remedy}\n\nWhat we will still do: {outstanding}\n\n"
        "{ombudsman_route}" + _SIGN_OFF,
    ),
    "survey": Template(
        "How did we handle your complaint {reference}?",
        "Dear {name},\n\nYour complaint is now closed. Please tell us how satisfied you are with the way "
        "we handled it: it helps us improve." + _SIGN_OFF,
    ),
}


class MissingLetterField(KeyError):
    pass


class _Strict(dict[str, str]):
    def __missing__(self, key: str) -> str:
        raise MissingLetterField(key)


# Fields added since cases began sending letters: a request scheduled by older workflow code lacks them,
# so each has a default that reads true (an omitted paragraph, "We").
_LEGACY = {"final_response_promise": "", "points_answered": "", "papers_from": "We", "signed_by": "",
           "signed_as": "", "landlord": ""}


def signature(fields: dict[str, str]) -> str:
    return "\n".join(line for line in (fields.get("signed_by"), fields.get("signed_as"), fields.get("landlord"))
                     if line)


def render(kind: str, fields: dict[str, str], wording: Template | None = None) -> tuple[str, str]:
    template = wording or TEMPLATES[kind]
    values = _Strict({**_LEGACY, **fields})
    values["signature"] = signature(values)
    return template.subject.format_map(values), template.body.format_map(values)
