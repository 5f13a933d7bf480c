"""Search attributes operators filter cases by in the Temporal UI. The deploy/ files must match."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

COMPLAINT_STAGE = SearchAttributeKey.for_keyword("ComplaintStage")
COMPLAINT_STATUS = SearchAttributeKey.for_keyword("ComplaintStatus")
NEXT_DEADLINE = SearchAttributeKey.for_datetime("NextDeadline")
COMPLAINT_POLICY = SearchAttributeKey.for_keyword("ComplaintPolicy")
CASE_HANDLER = SearchAttributeKey.for_keyword("CaseHandler")
OVERDUE = SearchAttributeKey.for_bool("Overdue")
NATION = SearchAttributeKey.for_keyword("Nation")

ALL: list[SearchAttributeKey] = [
    COMPLAINT_STAGE, COMPLAINT_STATUS, NEXT_DEADLINE, COMPLAINT_POLICY, CASE_HANDLER, OVERDUE, NATION,
]

# The CLI's spelling of each type for `temporal server start-dev --search-attribute Name=Type`.
CLI_TYPE = {"KEYWORD": "Keyword", "DATETIME": "Datetime", "BOOL": "Bool", "TEXT": "Text", "INT": "Int"}


def cli_flags() -> list[str]:
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}={CLI_TYPE[key.indexed_value_type.name.removeprefix('INDEXED_VALUE_TYPE_')]}"]
    return flags
