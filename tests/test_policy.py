"""Policies are data: every shipped file validates, and a bad one fails naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.calendar import DeadlineUnit
from domain.policy import (
    POLICY_DIR,
    PolicyError,
    ReviewKind,
    Trigger,
    available_policies,
    load_policy,
    load_policy_file,
)


def test_shipped_policies_load() -> None:
    assert {"hos-code-2024", "connexus", "optivo"} <= set(available_policies())
    for pid in available_policies():
        p = load_policy(pid)
        assert p.id == pid and p.version


def test_code_policy_matches_the_code() -> None:
    p = load_policy("hos-code-2024")
    assert (p.stage1.acknowledgement.length, p.stage1.acknowledgement.unit) == (5, DeadlineUnit.WORKING_DAYS)
    assert p.stage1.response.trigger is Trigger.ACKNOWLEDGED and p.stage1.response.length == 10
    assert p.stage1.extension.max_working_days == 10
    assert p.stage2.acknowledgement.trigger is Trigger.ESCALATION_REQUESTED
    assert p.stage2.response.length == 20 and p.stage2.extension.max_working_days == 20
    assert p.ombudsman.cooling_off is None


def test_landlord_procedures_follow_their_seeds() -> None:
    connexus = load_policy("connexus")
    assert connexus.stage2.kind is ReviewKind.COMPLAINTS_MANAGER_REVIEW
    assert connexus.stage2.contact is not None
    assert (connexus.stage2.contact.length, connexus.stage2.contact.unit) == (3, DeadlineUnit.CALENDAR_DAYS)
    assert len(connexus.stage2.review_questions) == 4
    optivo = load_policy("optivo")
    assert optivo.stage2.kind is ReviewKind.REVIEW_PANEL
    assert optivo.stage2.response.trigger is Trigger.PANEL_SITTING and optivo.stage2.response.length == 10
    assert optivo.stage2.participation.max_residents == 2
    assert optivo.ombudsman.cooling_off is not None
    assert (optivo.ombudsman.cooling_off.length, optivo.ombudsman.cooling_off.unit) == (8, DeadlineUnit.WEEKS)


def _broken(tmp_path: Path, old: str, new: str, name: str = "hos-code-2024") -> Path:
    text = (POLICY_DIR / "hos-code-2024.toml").read_text().replace(old, new, 1)
    assert text != (POLICY_DIR / "hos-code-2024.toml").read_text() or old == new
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_invalid_unit_names_file_and_field(tmp_path: Path) -> None:
    path = _broken(tmp_path, 'length = 5, unit = "working_days"', 'length = 5, unit = "fortnights"')
    with pytest.raises(PolicyError) as err:
        load_policy_file(path)
    assert str(path) in str(err.value)
    assert "stage1.acknowledgement.unit" in str(err.value)


def test_negative_length_and_unknown_field_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"stage1\.response\.length"):
        load_policy_file(_broken(tmp_path, "length = 10,", "length = -1,"))
    with pytest.raises(PolicyError, match="colour"):
        load_policy_file(_broken(tmp_path, 'landlord = "', 'colour = "red"\nlandlord = "'))


def test_file_name_must_match_id(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="field id"):
        load_policy_file(_broken(tmp_path, "x", "x", name="other-landlord"))


def test_unknown_policy_lists_the_known_ones() -> None:
    with pytest.raises(PolicyError, match="known: .*hos-code-2024"):
        load_policy("no-such-landlord")
    with pytest.raises(PolicyError):
        load_policy("../etc/passwd")
