"""The engine says only what the policy and the case say: no regulator, landlord, period or signatory is
written in engine code (workflows/, activities/). What it writes to residents and the case record comes
from the policy (its ombudsman, landlord, cooling-off rule, role titles) and the case (who has it).

The scan reads every string the code can say (string literals, f-string parts; not docstrings or comments,
which explain) and fails on regulators' and landlords' names, periods in words and placeholder signatories,
and on any name a policy file gives (landlord, ombudsman, its contact, role titles).
"""

from __future__ import annotations

import ast
import glob
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINE = sorted([*ROOT.glob("workflows/*.py"), *ROOT.glob("activities/*.py")])
POLICY_FILES = [Path(p) for d in ("policies", "tests/policies", "bench/policies", "demo/policies")
                for p in sorted(glob.glob(str(ROOT / d / "*.toml")))]
WORDS = ["Housing Ombudsman", "Ombudsman Service", "Public Services Ombudsman", "SPSO", "NIPSO", "PSOW",
         "Any English social landlord", "Connexus", "Optivo", "eight-week", "eight weeks", "8 weeks",
         "ten working days", "10 working days", "twelve months", "Complaints team", "Complaints Manager",
         "Head of Service", "Case Handler", "case handler,", "MP, ", "councillor", "tenant panel",
         "(see reasons)"]


def said(path: Path) -> list[tuple[int, str]]:
    """Every string literal in the module, with its line, except docstrings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]


def policy_words() -> set[str]:
    """What the policy files name (read as TOML: the words, whatever the model makes of them)."""
    out: set[str] = set()
    for path in POLICY_FILES:
        p = tomllib.loads(path.read_text(encoding="utf-8"))
        o = p["ombudsman"]
        out |= {p["landlord"], o["name"], o["contact"], *([o["designated_persons"]] if "designated_persons" in o else [])}
        # One-word titles ("Director") are common words; the longer ones are the policy's own.
        out |= {t for t in p.get("role_titles", {}).values() if " " in t}
    return out


def test_the_scan_sees_strings_and_skips_docstrings(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text('"""Housing Ombudsman (a docstring)."""\nX = f"to the Housing Ombudsman {1}"\n')
    assert [text for _, text in said(module)] == ["to the Housing Ombudsman "]


def test_engine_code_names_no_regulator_landlord_period_or_signatory() -> None:
    assert len(ENGINE) > 10 and len(POLICY_FILES) >= 6
    banned = [*WORDS, *sorted(policy_words())]
    found = [f"{path.relative_to(ROOT)}:{line}: {word!r} in {text!r}"
             for path in ENGINE for line, text in said(path) for word in banned if word in text]
    assert not found, "engine code says what only a policy or a case may say:\n" + "\n".join(found)
