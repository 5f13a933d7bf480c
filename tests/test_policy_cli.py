"""`python -m starter policy check FILE` and `policy explain FILE`: a landlord writes a policy with these two.

Run as the CLI runs (subprocesses), with expected dates from the engine's own parts (the policy loader,
activities.calendar_data.build_snapshot and workflows.deadline_book), never from the machine's clock.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, time
from pathlib import Path

import pytest

from activities.calendar_data import build_snapshot
from domain.calendar import LONDON, Nation
from domain.policy import POLICY_DIR, Policy, deadline_rules, load_policy_file
from domain.records import CALENDAR_YEARS_AFTER
from workflows.deadline_book import kept_due

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted(POLICY_DIR.glob("*.toml"))
TEST_POLICIES = sorted((ROOT / "tests" / "policies").glob("*.toml"))
CODE = POLICY_DIR / "hos-code-2024.toml"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "COMPLAINTS_"))}
    return subprocess.run([sys.executable, "-m", "starter", *args], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=120)


def error_lines(r: subprocess.CompletedProcess[str]) -> list[str]:
    lines = r.stderr.strip().splitlines()
    assert all(ln.startswith("error: ") for ln in lines), r.stderr
    return lines


# -- check ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", SHIPPED + TEST_POLICIES, ids=lambda p: str(p.relative_to(ROOT)))
def test_check_passes_on_every_shipped_and_test_policy(path: Path) -> None:
    r = cli("policy", "check", str(path.relative_to(ROOT)))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    lines = r.stdout.strip().splitlines()
    policy = load_policy_file(path)
    assert len(lines) == 1 and policy.pinned in lines[0] and policy.title in lines[0], r.stdout


def broken(tmp_path: Path, text: str, name: str = "hos-code-2024.toml") -> Path:
    """A policy file outside policies/ (no lock beside it, as tests' throwaway policies have none)."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def code_text() -> str:
    return CODE.read_text(encoding="utf-8")


def test_a_bad_unit_is_one_line_naming_file_and_field(tmp_path: Path) -> None:
    text = code_text().replace('length = 10, unit = "working_days", trigger = "acknowledged"',
                               'length = 10, unit = "fortnights", trigger = "acknowledged"')
    path = broken(tmp_path, text)
    r = cli("policy", "check", str(path))
    assert r.returncode == 2 and r.stdout == ""
    [line] = error_lines(r)
    assert f"{path}: field stage1.response.unit:" in line and "working_days" in line, line


def test_an_unknown_field_is_named_with_the_fields_there_are(tmp_path: Path) -> None:
    text = code_text().replace('[stage1]\n', '[stage1]\nresponse_days = 10\n')
    r = cli("policy", "check", str(broken(tmp_path, text)))
    assert r.returncode == 2
    [line] = error_lines(r)
    assert "field stage1.response_days: unknown field" in line and "acknowledgement" in line, line


def test_an_unknown_field_in_a_table_of_tables_is_named_too(tmp_path: Path) -> None:
    text = code_text().replace('[letters.withdrawal]\n', '[letters.withdrawal]\nsignatory = "Complaints team"\n')
    r = cli("policy", "check", str(broken(tmp_path, text)))
    assert r.returncode == 2
    [line] = error_lines(r)
    assert "field letters.withdrawal.signatory: unknown field (the fields here are: subject, body)" in line, line


def test_each_error_is_its_own_line(tmp_path: Path) -> None:
    text = code_text().replace('[stage1]\n', '[stage1]\nresponse_days = 10\n').replace(
        'length = 10, unit = "working_days", trigger = "acknowledged"',
        'length = 10, unit = "fortnights", trigger = "acknowledged"').replace('retention_years = 6', 'colour = "blue"')
    r = cli("policy", "check", str(broken(tmp_path, text)))
    assert r.returncode == 2
    lines = error_lines(r)
    assert len(lines) == 3, lines
    assert {"stage1.response_days", "stage1.response.unit", "colour"} == {
        ln.split(": field ")[1].split(":")[0] for ln in lines}


def test_a_missing_stage_is_named(tmp_path: Path) -> None:
    text = code_text()
    text = text[:text.index("[stage2]")] + text[text.index("[ombudsman]"):]
    r = cli("policy", "check", str(broken(tmp_path, text)))
    assert r.returncode == 2
    [line] = error_lines(r)
    assert "field stage2: missing" in line, line


def test_a_rule_across_the_policy_names_its_field(tmp_path: Path) -> None:
    """A deadline counted from an event that has not happened when it opens: the policy's own rule, named by
    the field it is about."""
    text = code_text().replace('trigger = "acknowledged"', 'trigger = "final_response"')
    r = cli("policy", "check", str(broken(tmp_path, text)))
    assert r.returncode == 2
    [line] = error_lines(r)
    assert "field stage1.response.trigger: 'final_response' has not happened" in line, line


def test_not_toml_is_one_line(tmp_path: Path) -> None:
    r = cli("policy", "check", str(broken(tmp_path, "id = \n[stage1\n")))
    assert r.returncode == 2
    [line] = error_lines(r)
    assert "not valid TOML" in line and "hos-code-2024.toml" in line, line


@pytest.mark.parametrize("what", ["missing", "directory", "binary"])
def test_a_file_that_cannot_be_read_is_one_line(tmp_path: Path, what: str) -> None:
    path = tmp_path / "mine.toml"
    if what == "directory":
        path.mkdir()
    elif what == "binary":
        path.write_bytes(b"\xff\xfe\x00id")
    r = cli("policy", "check", str(path))
    assert r.returncode == 2 and r.stdout == ""
    [line] = error_lines(r)
    assert str(path) in line, line
    if what == "missing":
        assert "no such policy file" in line


def test_a_changed_policy_under_its_old_version_is_refused_by_the_lock(tmp_path: Path) -> None:
    """The loader's content-hash check applies: a directory with a policies.lock checks each file against it."""
    (tmp_path / "policies.lock").write_text((POLICY_DIR / "policies.lock").read_text())
    ok = broken(tmp_path, code_text())
    assert cli("policy", "check", str(ok)).returncode == 0
    broken(tmp_path, code_text().replace("length = 20, unit = \"working_days\", trigger = \"stage2_acknowledged\"",
                                         "length = 25, unit = \"working_days\", trigger = \"stage2_acknowledged\""))
    r = cli("policy", "check", str(ok))
    assert r.returncode == 2
    [line] = error_lines(r)
    assert "its content changed but its version did not" in line, line


def test_a_file_named_other_than_its_id_is_refused(tmp_path: Path) -> None:
    r = cli("policy", "check", str(broken(tmp_path, code_text(), name="my-landlord.toml")))
    assert r.returncode == 2
    [line] = error_lines(r)
    assert "field id:" in line and "my-landlord" in line, line


# -- explain -------------------------------------------------------------------------------------------
def explained(path: Path, *extra: str) -> dict:
    r = cli("policy", "explain", str(path), *extra, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_explain_dates_every_deadline_as_the_engine_does_across_christmas(path: Path) -> None:
    """A complaint received the day before Christmas Eve 2026 in England: every deadline of the policy is
    dated, each from its own trigger's instant, by the engine's own deadline arithmetic."""
    policy = load_policy_file(path)
    out = explained(path, "--from", "2026-12-23", "--nation", "england-and-wales")
    received = datetime(2026, 12, 23, 9, 0, tzinfo=LONDON)
    assert datetime.fromisoformat(out["events"]["received"]) == received
    cal = build_snapshot(Nation.ENGLAND_AND_WALES, 2026, 2026 + CALENDAR_YEARS_AFTER, closures=policy.closures,
                         closing_time=policy.closing_time)
    rules = dict(deadline_rules(policy))
    dated = {d["rule"]: d for d in out["deadlines"]}
    assert set(dated) == set(rules), "every deadline rule of the policy is in the worked example"
    for where, rule in rules.items():
        d = dated[where]
        trigger_at = datetime.fromisoformat(out["events"][rule.trigger.value])
        assert datetime.fromisoformat(d["trigger_at"]) == trigger_at, where
        due, at = kept_due(cal, trigger_at, rule.length, rule.unit)
        assert (d["due_date"], datetime.fromisoformat(d["due_at"])) == (due.isoformat(), at), where
    # Stage 1 counts across Christmas Day, Boxing Day (observed, Monday 28th) and New Year's Day.
    ack = dated["stage1.acknowledgement"]
    assert ack["due_date"] == "2027-01-04"
    assert {s["day"] for s in ack["skipped"]} >= {"2026-12-25", "2026-12-28", "2027-01-01"}
    # Each step the landlord takes is taken on its last day, so the next counts from it.
    s1 = dated["stage1.response"]
    assert datetime.fromisoformat(out["events"]["stage1_response"]) == datetime.combine(
        date.fromisoformat(s1["due_date"]), time(9, 0), tzinfo=LONDON)


def test_explain_in_words_names_every_deadline_with_its_date(tmp_path: Path) -> None:
    policy = load_policy_file(CODE)
    r = cli("policy", "explain", str(CODE.relative_to(ROOT)), "--from", "2026-12-23")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    text = r.stdout
    out = explained(CODE, "--from", "2026-12-23")
    assert policy.pinned in text and "Wednesday 23 December 2026" in text
    for d in out["deadlines"]:
        assert d["label"] in text
        due = date.fromisoformat(d["due_date"])
        assert f"{due:%a} {due.day} {due:%b %Y}" in text, d["label"]
    assert "10 working days from the acknowledgement" in text
    assert "5 working days from receipt of the complaint" in text
    for role, title in policy.role_titles.items():
        assert role in text and title in text
    for reason in policy.escalation.refusal_reasons.values():
        assert reason in text
    assert "Stage 1 response: 2027-01-11" not in text  # dates are written for people
    assert "Mon 11 Jan 2027" in text  # the README's `deadline --from 2026-12-23 --working-days 10`


def test_explain_counts_the_nations_own_bank_holidays() -> None:
    """Scotland's 2 January (a Saturday in 2027: its substitute, Monday 4th) is not a working day there."""
    spso = ROOT / "tests" / "policies" / "spso-test.toml"
    sco = {d["rule"]: d for d in explained(spso, "--from", "2026-12-23", "--nation", "scotland")["deadlines"]}
    eng = {d["rule"]: d for d in explained(CODE, "--from", "2026-12-23", "--nation", "england-and-wales")["deadlines"]}
    # Both 5 working days from receipt on Wednesday 23 December 2026.
    assert (sco["stage1.response"]["length"], sco["stage1.response"]["trigger"]) == (5, "received")
    assert sco["stage1.response"]["due_date"] == "2027-01-05"
    assert eng["stage1.acknowledgement"]["due_date"] == "2027-01-04"
    assert "2027-01-04" in {s["day"] for s in sco["stage1.response"]["skipped"]}


@pytest.mark.skipif("nations" not in Policy.model_fields, reason="policies do not name their nations yet")
def test_explain_refuses_a_nation_the_policy_does_not_serve() -> None:
    """As `file` refuses the case (exit 1, one line): there is no such case to work through."""
    policy = load_policy_file(CODE)
    other = next(n for n in Nation if n not in policy.nations)  # type: ignore[attr-defined]
    r = cli("policy", "explain", str(CODE), "--nation", other.value)
    assert r.returncode == 1 and r.stdout == ""
    [line] = error_lines(r)
    assert line.startswith("error: refused: ") and other.value in line, line


def test_explain_without_from_uses_the_documented_date_and_says_so() -> None:
    r = cli("policy", "explain", str(CODE))
    assert r.returncode == 0
    assert "Wednesday 23 December 2026" in r.stdout and "--from" in r.stdout


def test_explain_refuses_a_broken_policy_as_check_does(tmp_path: Path) -> None:
    r = cli("policy", "explain", str(broken(tmp_path, "id = \n")))
    assert r.returncode == 2
    [line] = error_lines(r)
    assert "not valid TOML" in line


# -- bad arguments -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "needle"), [
    (["policy"], "required"),
    (["policy", "lint", "x.toml"], "invalid choice"),
    (["policy", "check"], "required"),
    (["policy", "explain", str(CODE), "--from", "2026-13-01"], "--from"),
    (["policy", "explain", str(CODE), "--from", "tomorrow"], "--from"),
    (["policy", "explain", str(CODE), "--nation", "mars"], "unknown nation"),
    (["policy", "check", str(CODE), "--frobnicate"], "unrecognized arguments"),
])
def test_bad_arguments_exit_2_with_one_line(args: list[str], needle: str) -> None:
    r = cli(*args)
    assert r.returncode == 2, r
    [line] = error_lines(r)
    assert needle in line, line
