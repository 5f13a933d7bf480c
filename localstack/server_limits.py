"""The Temporal server's payload limits for this engine, one place for make run, the tests and deploy/.

A message the case refuses is still written to its history if the server takes it, so oversized payloads
are refused at the door: by the server's blob-size limit, sized from the contract. The largest legal
message is a ReviewFindings with every field at its maximum length in 4-byte characters, about 860 KB
as JSON (tests/test_server_limits.py computes it from domain/contract.py and checks these numbers).
- error: 1.5 MiB, about 1.8 times the largest legal payload, encrypted: anything bigger cannot be a
  legal message; the server refuses it before it reaches a history (the default is 2 MiB);
- warn: 1 MiB, above every legal message, so a warning in the server's log means a caller sent
  something the contract refuses anyway, or an internal payload grew.
Deploy carries the same values (deploy/compose/dynamicconfig/complaints.yaml, the Helm values); a test
checks that they agree with these.
"""

from __future__ import annotations

BLOB_SIZE_ERROR = 1536 * 1024
BLOB_SIZE_WARN = 1024 * 1024

DYNAMIC_CONFIG: dict[str, int] = {
    "limit.blobSize.error": BLOB_SIZE_ERROR,
    "limit.blobSize.warn": BLOB_SIZE_WARN,
}


def dev_server_flags(extra: dict[str, int] | None = None) -> list[str]:
    """`temporal server start-dev` flags setting these limits (and any `extra` dynamic config, for tests)."""
    flags: list[str] = []
    for key, value in {**DYNAMIC_CONFIG, **(extra or {})}.items():
        flags += ["--dynamic-config-value", f"{key}={value}"]
    return flags
