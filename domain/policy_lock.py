"""A policy's identity is its content: each version's hash, recorded once, checked at every load.

A case pins `<id>@<version>#<hash>`. Each policy directory keeps `policies.lock`, committed with the
policies: one line per version ever made, `"<id>@<version>" = "sha256:<hex>"`. A file whose content no
longer matches the hash recorded for its version was edited without a new version, so two different
rule sets would share one label: it is refused at load, naming the file. A new version is recorded with

    make policy-lock      # python -m domain.policy_lock policies tests/policies bench/policies demo/policies

which adds versions it has not seen and never changes a recorded one.

The hash is over the file's data (the parsed TOML, canonical JSON), not its bytes: comments and layout
may change freely, any value may not. The shipped directory must have its lock; another directory is
checked when it has one (tests write throwaway policies to temporary directories).
"""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

LOCK_FILE = "policies.lock"
_HEADER = """# Content hash of every policy version made in this directory: see domain/policy_lock.py.
# Written by `make policy-lock`, which adds new versions and never changes a recorded one.
# A policy edited without a new version no longer matches its line and is refused at load.
"""


class LockError(ValueError):
    """The lock and a policy disagree, or the lock cannot be read; the message names the file."""


def digest(data: dict[str, Any]) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def read_lock(directory: Path) -> dict[str, str] | None:
    path = directory / LOCK_FILE
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LockError(f"{path}: cannot be read: {exc}") from None
    if not all(isinstance(v, str) and v.startswith("sha256:") for v in raw.values()):
        raise LockError(f"{path}: every line must be \"<id>@<version>\" = \"sha256:<hex>\"")
    return raw


def check(path: Path, label: str, content: str, required: bool) -> None:
    """Refuse `path` unless the lock beside it records `content` for `label` (`<id>@<version>`)."""
    lock = read_lock(path.parent)
    if lock is None:
        if required:
            raise LockError(f"{path}: {path.parent / LOCK_FILE} is missing: every shipped policy version's hash "
                            "is recorded there (make policy-lock)")
        return
    recorded = lock.get(label)
    if recorded is None:
        raise LockError(f"{path}: {label} is not recorded in {path.parent / LOCK_FILE}: a new version is recorded "
                        "with `make policy-lock`")
    if recorded != content:
        raise LockError(f"{path}: its content changed but its version did not: {label} was recorded with other "
                        "rules. Give the changed policy a new version, then run `make policy-lock`")


def record(directory: Path) -> list[str]:
    """Add every version in `directory` the lock lacks; refuse one whose recorded hash differs.
    Returns the labels added."""
    from domain.policy import PolicyError, load_policy_file  # the full validation, without the lock

    lock = read_lock(directory) or {}
    added: list[str] = []
    for path in sorted(directory.glob("*.toml")):
        try:
            policy = load_policy_file(path, locked=False)
        except PolicyError as exc:
            raise LockError(str(exc)) from None
        label = f"{policy.id}@{policy.version}"
        if label not in lock:
            lock[label] = policy.digest
            added.append(label)
        elif lock[label] != policy.digest:
            raise LockError(f"{path}: its content changed but its version did not: {label} was recorded with "
                            "other rules. Give the changed policy a new version; a recorded version never changes")
    if added or not (directory / LOCK_FILE).exists():
        lines = [f"{json.dumps(label)} = {json.dumps(lock[label])}" for label in sorted(lock)]
        (directory / LOCK_FILE).write_text(_HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    return added


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m domain.policy_lock DIRECTORY...", file=sys.stderr)
        return 2
    for d in argv:
        try:
            added = record(Path(d))
        except LockError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"{d}/{LOCK_FILE}: " + (f"recorded {', '.join(added)}" if added else "every version already recorded"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
