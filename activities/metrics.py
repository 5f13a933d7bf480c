"""The product's Prometheus counters, and the endpoints the worker serves them on.

Counted in activities, never in workflow code (which replays): each counter moves only when the
activity actually inserted the row, so a retried activity, or a batch re-sent after a worker died,
counts nothing twice. Counts inside a transaction are applied only once it has committed.

Endpoints (worker, COMPLAINTS_METRICS_PORT=P):
    http://HOST:P/metrics      the product's counters (prometheus_client)
    http://HOST:P+1/metrics    the Temporal SDK's runtime metrics (served by the SDK's core)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, start_http_server
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

# A registry of our own: the default one also carries process/GC metrics of whatever imports us.
REGISTRY = CollectorRegistry(auto_describe=True)

COMPLAINTS_FILED = Counter("complaints_filed", "Complaints entered in the case record", ["policy"],
                           registry=REGISTRY)
DEADLINE_BREACHES = Counter("deadline_breaches", "Deadlines missed (one per case and deadline)",
                            ["stage", "deadline"], registry=REGISTRY)
EXTENSIONS = Counter("extensions", "Response deadlines extended", ["stage"], registry=REGISTRY)
LETTERS_SENT = Counter("letters_sent", "Letters written to residents", ["kind"], registry=REGISTRY)


def inserted(status: str) -> bool:
    """asyncpg's command tag for an INSERT of one row is 'INSERT 0 1'; ON CONFLICT DO NOTHING gives '... 0'."""
    return status.startswith("INSERT") and status.endswith(" 1")


def complaint_filed(policy: str, status: str) -> None:
    if inserted(status):
        COMPLAINTS_FILED.labels(policy=policy).inc()


def letter_sent(kind: str, fresh: bool) -> None:
    if fresh:
        LETTERS_SENT.labels(kind=kind).inc()


def events_recorded(events: Iterable[Any]) -> None:
    """Count the timeline events a committed batch newly wrote (call after the transaction).

    A deadline_extended event and its extensions row share their key (reference, seq); a
    deadline_breached event is written once per case and deadline, like its breaches row.
    """
    for e in events:
        stage = getattr(e.stage, "value", str(e.stage))
        if e.kind == "deadline_extended":
            EXTENSIONS.labels(stage=stage).inc()
        elif e.kind == "deadline_breached":
            DEADLINE_BREACHES.labels(stage=stage, deadline=str(e.detail.get("deadline", "?"))).inc()


def serve(port: int, addr: str = "0.0.0.0") -> Any:
    """Serve the product's counters on http://addr:port/metrics (a daemon thread); returns the server."""
    server, _thread = start_http_server(port, addr=addr, registry=REGISTRY)
    return server


def sdk_runtime(port: int, host: str = "0.0.0.0") -> Runtime:
    """A Temporal Runtime whose core serves the SDK's metrics on http://host:port/metrics."""
    return Runtime(telemetry=TelemetryConfig(
        metrics=PrometheusConfig(bind_address=f"{host}:{port}", counters_total_suffix=True)
    ))
