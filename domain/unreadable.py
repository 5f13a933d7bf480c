"""A payload the worker could not read, carried to the case as something it refuses.

The worker's codec runs before any handler: if it raised on a junk or unknown-key payload, every
workflow task of the case would fail, for ever. Instead it hands over this stand-in, holding only the
reason (never the content), and the handler's parse() refuses it like any malformed message.

Pure and tiny: workflow code imports it, the codec builds it.
"""

from __future__ import annotations

from temporalio.api.common.v1 import Payload

ENCODING = b"binary/unreadable"
_REASON = "unreadable-reason"


def stand_in(reason: str) -> Payload:
    return Payload(metadata={"encoding": ENCODING, _REASON: reason.encode()})


def reason(payload: Payload) -> str | None:
    """Why the payload could not be read, or None when it is an ordinary payload."""
    if payload.metadata.get("encoding") != ENCODING:
        return None
    return payload.metadata.get(_REASON, b"").decode(errors="replace") or "the payload could not be read"
