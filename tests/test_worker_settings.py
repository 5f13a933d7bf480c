"""The worker's settings from the environment: a value it cannot use is one clear line and exit 2,
before anything connects; a good one reaches the Worker it builds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import worker
from starter.connection import Settings, SettingsError

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("name", "value", "says"), [
    ("COMPLAINTS_WORKER_CACHED_CASES", "lots", "not a whole number"),
    ("COMPLAINTS_WORKER_CACHED_CASES", "-1", "must be from 0"),
    ("COMPLAINTS_METRICS_PORT", "70000", "must be from 1 to 65534"),
])
def test_a_setting_the_worker_cannot_use_is_one_line_and_exit_2(name: str, value: str, says: str) -> None:
    env = {**os.environ, name: value, "TEMPORAL_ADDRESS": "127.0.0.1:1", "COMPLAINTS_DATABASE_URL": "postgresql://x"}
    r = subprocess.run([sys.executable, "worker.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and name in r.stderr and says in r.stderr, r.stderr


def test_the_cache_size_comes_from_the_environment_or_the_measured_default(monkeypatch) -> None:
    monkeypatch.delenv("COMPLAINTS_WORKER_CACHED_CASES", raising=False)
    assert worker.cached_cases(Settings.from_env()) == worker.CACHED_CASES_DEFAULT
    monkeypatch.setenv("COMPLAINTS_WORKER_CACHED_CASES", "0")  # no cache: every task replays its history
    assert worker.cached_cases(Settings.from_env()) == 0
    monkeypatch.setenv("COMPLAINTS_WORKER_CACHED_CASES", "2.5")
    with pytest.raises(SettingsError):
        Settings.from_env()


OFF, NO_KEYS = {"COMPLAINTS_ENCRYPTION": "off"}, {"COMPLAINTS_ENCRYPTION_KEYS_FILE": "", "COMPLAINTS_ENCRYPTION_KEY": ""}


@pytest.mark.parametrize(("args", "extra", "code", "says"), [
    ([], OFF, 1, "cannot reach the case record (COMPLAINTS_DATABASE_URL)"),
    (["--ensure-search-attributes"], OFF, 1, "cannot reach Temporal at 127.0.0.1:1"),
    ([], NO_KEYS, 2, "no encryption keys"),
    (["--ensure-search-attributes"], NO_KEYS, 2, "no encryption keys"),
])
def test_an_unreachable_part_or_missing_keys_is_one_line(args: list[str], extra: dict[str, str], code: int,
                                                         says: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "COMPLAINTS_"))}
    env.update(TEMPORAL_ADDRESS="127.0.0.1:1", COMPLAINTS_DATABASE_URL="postgresql://127.0.0.1:1/none", **extra)
    env = {k: v for k, v in env.items() if v}
    r = subprocess.run([sys.executable, "worker.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == code, r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ") and says in r.stderr, r.stderr
