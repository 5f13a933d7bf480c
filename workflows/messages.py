"""Reading what other services send, without ever failing the case over it.

Handlers take the raw payload and parse it here, so a payload of the wrong shape becomes a
refusal with a reason instead of a signal the SDK drops silently or a task that fails.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError
from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.common import RawValue

from domain import unreadable

M = TypeVar("M", bound=BaseModel)

# Handlers default to this so that a message sent with no argument is refused, not a crash.
NO_PAYLOAD = RawValue(Payload())


class Refused(Exception):
    """A message the case will not act on; the text says why, for the caller and the timeline."""


def parse(model: type[M], raw: RawValue) -> M:
    why = unreadable.reason(raw.payload)
    if why is not None:  # the worker's codec could not open it, or it came in clear (domain/encryption.py)
        workflow.logger.warning("%s refused: %s", model.__name__, why)
        raise Refused(f"{model.__name__}: {why}")
    if raw.payload.ByteSize() == 0:
        raise Refused(f"{model.__name__}: no payload was sent")
    try:
        value = workflow.payload_converter().from_payload(raw.payload, None)
    except Exception as exc:  # undecodable bytes: say so, never crash the case
        raise Refused(f"{model.__name__}: payload is not valid JSON ({type(exc).__name__})") from None
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if value is None:
        value = {}
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise Refused(f"{model.__name__}: {problems}") from None
