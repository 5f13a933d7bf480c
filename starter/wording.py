"""A payload the contract's models refuse, said in the CLI's words: which flag, and what it must be.

pydantic's own wording ("Input should be greater than or equal to 1", "Value error, ...") names
model fields and library types; an operator typed flags. `explain` turns the first error into
"--working-days: must be at least 1, got 0".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import ValidationError
from pydantic_core import ErrorDetails

Loc = tuple[int | str, ...]

DATETIME_FORM = "a date and time with its UTC offset, e.g. 2026-12-01T09:30:00+00:00"
DATE_FORM = "a date, YYYY-MM-DD"
# The contract's patterns (domain/contract.py), in words.
PATTERNS = {
    r"^[A-Z0-9][A-Z0-9-]{2,39}$": "3 to 40 capital letters, digits and hyphens (e.g. CMP-2026-0001)",
    r"^[a-z0-9][a-z0-9-]{1,40}$": "lower-case letters, digits and hyphens (e.g. hos-code-2024)",
}


def flag_for(loc: Loc) -> str:
    """The flag a field is given by: `working_days` -> `--working-days`; an item of a list -> `--answer 2`."""
    head = "--" + str(loc[0]).replace("_", "-") if loc else "the payload"
    rest = " ".join(f"{p + 1}" if isinstance(p, int) else str(p) for p in loc[1:])
    return f"{head} {rest}".strip()


def _got(e: ErrorDetails) -> str:
    value = e.get("input")
    if value is None or isinstance(value, dict | list):
        return ""
    text = repr(value) if isinstance(value, str) else str(value)
    return f", got {text[:60]}"


def _what(e: ErrorDetails) -> str:
    kind, ctx = e["type"], e.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}{_got(e)}"
    if kind == "greater_than":
        return f"must be more than {ctx['gt']}{_got(e)}"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}{_got(e)}"
    if kind == "less_than":
        return f"must be less than {ctx['lt']}{_got(e)}"
    if kind == "string_too_short":
        n = ctx.get("min_length", 1)
        return "must not be empty" if n <= 1 else f"must be at least {n} characters"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "string_pattern_mismatch":
        form = PATTERNS.get(str(ctx.get("pattern")))
        return f"must be {form}{_got(e)}" if form else f"is not in the expected form{_got(e)}"
    if kind in ("enum", "literal_error"):
        return f"must be one of {ctx.get('expected', '')}{_got(e)}"
    if kind.startswith("datetime") or kind == "timezone_aware":
        return f"must be {DATETIME_FORM}{_got(e)}"
    if kind.startswith("date"):
        return f"must be {DATE_FORM}{_got(e)}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"must be a whole number{_got(e)}"
    if kind in ("bool_parsing", "bool_type"):
        return f"must be yes or no{_got(e)}"
    if kind in ("string_type",):
        return "must be text"
    if kind in ("list_type",):
        return "must be a list"
    if kind == "extra_forbidden":
        return "is not a field of this message"
    if kind in ("value_error", "assertion_error"):
        # Our own validators' messages, without pydantic's "Value error, " prefix.
        error = ctx.get("error")
        return str(error) if error is not None else e["msg"].removeprefix("Value error, ")
    return e["msg"][:1].lower() + e["msg"][1:]


def explain(exc: ValidationError, name: Callable[[Loc], str] = flag_for) -> str:
    """One line: the first problem, named as the user gave it, and how many more there are."""
    errors: Sequence[ErrorDetails] = exc.errors()
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{name(tuple(first['loc']))}: {_what(first)}{more}"


def path_for(loc: Loc) -> str:
    """For a payload read from a file: the field's dotted path in that file."""
    return ".".join(str(p) for p in loc) or "payload"


def named(names: dict[Loc, str]) -> Callable[[Loc], str]:
    """Field paths whose flag is not simply their name (e.g. resident.name -> --resident-name)."""

    def name(loc: Loc) -> str:
        for n in range(len(loc), 0, -1):
            if loc[:n] in names:
                rest = path_for(loc[n:])
                return names[loc[:n]] + ("" if rest == "payload" else f" {rest}")
        return flag_for(loc)

    return name
