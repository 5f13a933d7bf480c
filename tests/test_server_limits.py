"""The server's payload limits are the contract's: every legal message passes, nothing much bigger does.

The largest legal payload is computed from domain/contract.py: every message model with each field at
its maximum (strings of 4-byte characters at their max_length, lists at their max_length), sealed by
the real codec. The limits in localstack/server_limits.py must let it through with margin and refuse
the issue's 1.9 MB record_contact; deploy/ must carry the same values; the engine's own payloads (a
batch of timeline rows, the case file a continued run starts from) must fit too.
"""

from __future__ import annotations

import asyncio
import enum
import re
import types
import typing
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel
from temporalio.api.common.v1 import Payload

from domain import contract
from domain.encryption import KeyRing, data_converter
from localstack import server_limits
from localstack.temporal import TemporalDevServer
from workflows.case_state import BATCH_BYTES, TIMELINE_KEPT_BYTES
from workflows.continuation import MAX_CASE_FILE_BYTES

ROOT = Path(__file__).resolve().parent.parent
WIDE = "\U0001d11e"  # four bytes in UTF-8: the most a character can cost
ISSUE_SIGNAL = 1_900_000  # the issue's refused record_contact: 1.9 MB of notes


def maximal(tp: Any, meta: tuple[Any, ...] = ()) -> Any:
    """The largest value the annotation accepts (as JSON-ready data)."""
    origin = get_origin(tp)
    if origin is Annotated:
        base, *more = get_args(tp)
        return maximal(base, (*more, *meta))
    if origin in (typing.Union, types.UnionType):
        options = [maximal(a, meta) for a in get_args(tp) if a is not type(None)]
        return max(options, key=lambda v: len(repr(v)))
    if origin is Literal:
        return max(get_args(tp), key=lambda v: len(str(v)))
    limit = next((m.max_length for m in meta if getattr(m, "max_length", None) is not None), None)
    if origin is list:
        (item,) = get_args(tp)
        return [maximal(item) for _ in range(limit or 1)]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return {name: maximal(f.annotation, tuple(f.metadata)) for name, f in tp.model_fields.items()}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return max((e.value for e in tp), key=len)
    pattern = next((m.pattern for m in meta if getattr(m, "pattern", None) is not None), None)
    if tp is str and pattern is not None:  # a reference or an id: the longest string of one character that fits
        return next(c * n for n in range(100, 0, -1) for c in "A0a" if re.fullmatch(pattern, c * n))
    if tp is str:
        return WIDE * (limit or 200)
    if tp is bool:
        return False
    if tp is int:
        return max((m.le for m in meta if getattr(m, "le", None) is not None), default=10**9)
    if tp is datetime:
        return datetime(2099, 12, 31, 23, 59, 59, 999999, tzinfo=UTC).isoformat()
    if tp is date:
        return "2099-12-31"
    raise AssertionError(f"no maximal value for {tp!r}: teach this test the new field type")


def messages() -> list[type[BaseModel]]:
    """Every payload a caller may send: the models of domain/contract.py."""
    return [m for m in vars(contract).values() if isinstance(m, type) and issubclass(m, BaseModel)
            and m.__module__ == contract.__name__ and issubclass(m, contract._Message)]


def sealed_size(value: BaseModel) -> int:
    """Bytes on the wire: the payload as the engine's converter and codec send it."""
    converter = data_converter(KeyRing.generate("size"))
    payloads: list[Payload] = asyncio.run(converter.encode([value]))
    return payloads[0].ByteSize()


def largest_legal() -> tuple[str, int]:
    sizes = {m.__name__: sealed_size(m.model_validate(maximal(m))) for m in messages()}
    name = max(sizes, key=lambda k: sizes[k])
    return name, sizes[name]


def test_the_contracts_largest_message_passes_with_margin_and_the_issues_signal_does_not() -> None:
    name, size = largest_legal()
    assert name == "ReviewFindings" and 800_000 < size < 900_000, (name, size)  # 20 answers of 10,000 chars
    assert server_limits.BLOB_SIZE_WARN > size, "a legal message never even warns"
    assert server_limits.BLOB_SIZE_ERROR >= 1.5 * size, "the error limit has room above the largest message"
    assert server_limits.BLOB_SIZE_ERROR < ISSUE_SIGNAL, "the issue's 1.9 MB signal is refused at the door"


def test_the_engines_own_payloads_fit_under_the_limit() -> None:
    _, event = largest_legal()  # one timeline event carries at most one message's fields
    seal = 200  # codec metadata, nonce and tag
    # A record_events batch: up to BATCH_BYTES of events, or one event alone, with the case row and deadlines.
    assert max(BATCH_BYTES, event) + 64 * 1024 + seal < server_limits.BLOB_SIZE_ERROR
    assert TIMELINE_KEPT_BYTES + BATCH_BYTES < MAX_CASE_FILE_BYTES
    assert MAX_CASE_FILE_BYTES + seal < server_limits.BLOB_SIZE_ERROR


def test_every_server_the_engine_runs_on_has_the_limits() -> None:
    expected = {k: v for k, v in server_limits.DYNAMIC_CONFIG.items()}
    compose = yaml.safe_load((ROOT / "deploy/compose/dynamicconfig/complaints.yaml").read_text())
    helm = yaml.safe_load((ROOT / "deploy/kubernetes/helm/temporal-values.yaml").read_text())
    for where, config in (("compose", compose), ("helm", helm["server"]["dynamicConfig"])):
        found = {k: config.get(k, [{}])[0].get("value") for k in expected}
        assert found == expected, f"{where}: {found}"
    # make run, the fault and bench stacks (TemporalDevServer) and the tests' dev server (conftest).
    cmd = TemporalDevServer(binary="temporal", db_file=Path("x.db"), log_file=Path("x.log"), ip="127.0.0.1",
                            port=1, ui_port=2).command()
    for key, value in expected.items():
        assert f"{key}={value}" in cmd
    assert "server_limits.dev_server_flags()" in (ROOT / "tests/conftest.py").read_text()
