"""Problems found in a plan file, typed and located, and the error that lists them all at once."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, Protocol

from bot.errors import UserError
from bot.problems import Problem, ProblemCode
from templates import render_text
from templates.problems import say

Path = tuple[str | int, ...]

# A 10,000-row sheet with one systematic mistake would otherwise print 10,000 lines.
MAX_LISTED_PROBLEMS = 200


class PlanProblemCode(ProblemCode):
    """What can be wrong with a plan file or a plan-file command; worded in templates/problems/.

    A plan problem's `field` is its place ("plan.yaml, line 12"); the optional `item` parameter
    names the item it concerns ("initiative erp, milestone beta-ready"), which the listing puts
    between the place and the sentence.
    """

    # The file itself
    FILE_NOT_FOUND = "plan.file_not_found"
    NOT_A_PLAN_FILE = "plan.not_a_plan_file"
    FILE_TOO_LARGE = "plan.file_too_large"
    NOT_UTF8 = "plan.not_utf8"
    EMPTY_FILE = "plan.empty_file"
    # YAML
    YAML_SYNTAX = "plan.yaml_syntax"
    YAML_UNSUPPORTED_TAG = "plan.yaml_unsupported_tag"
    YAML_MANY_DOCUMENTS = "plan.yaml_many_documents"
    YAML_COMPLEX_KEY = "plan.yaml_complex_key"
    YAML_ANCHOR = "plan.yaml_anchor"
    YAML_FIELD_TWICE = "plan.yaml_field_twice"
    TOP_LEVEL_NOT_MAPPING = "plan.top_level_not_mapping"
    # Workbooks and CSV folders
    NOT_A_WORKBOOK = "plan.not_a_workbook"
    FORMULA_CELL = "plan.formula_cell"
    ERROR_CELL = "plan.error_cell"
    CSV_SYNTAX = "plan.csv_syntax"
    UNKNOWN_SHEET = "plan.unknown_sheet"
    UNKNOWN_SHEET_FILE = "plan.unknown_sheet_file"
    SHEET_MISSING = "plan.sheet_missing"
    UNKNOWN_COLUMN = "plan.unknown_column"
    COLUMN_TWICE = "plan.column_twice"
    COLUMN_MISSING = "plan.column_missing"
    UNKNOWN_SETTING = "plan.unknown_setting"
    SETTING_TWICE = "plan.setting_twice"
    PARENT_MISSING = "plan.parent_missing"
    UNKNOWN_PARENT = "plan.unknown_parent"
    # Fields: pydantic's error types, mapped in validate.py
    MISSING_FIELD = "plan.missing_field"
    UNKNOWN_FIELD = "plan.unknown_field"
    EXPECTED_MAPPING = "plan.expected_mapping"
    EXPECTED_LIST = "plan.expected_list"
    EXPECTED_TEXT = "plan.expected_text"
    NOT_A_NUMBER = "plan.not_a_number"
    NOT_A_WHOLE_NUMBER = "plan.not_a_whole_number"
    NOT_ONE_OF = "plan.not_one_of"
    EMPTY_TEXT = "plan.empty_text"
    TEXT_TOO_LONG = "plan.text_too_long"
    NUMBER_TOO_SMALL = "plan.number_too_small"
    NUMBER_TOO_LARGE = "plan.number_too_large"
    INVALID_VALUE = "plan.invalid_value"  # a pydantic error type not mapped: its own message
    # Fields: the schema's own validators
    NOT_A_DATE = "plan.not_a_date"
    NOT_A_REAL_DATE = "plan.not_a_real_date"
    DATE_WITH_TIME = "plan.date_with_time"
    NOT_A_KEY = "plan.not_a_key"
    NOT_A_PERSON = "plan.not_a_person"
    NOT_A_CHANNEL = "plan.not_a_channel"
    NOT_A_CRON = "plan.not_a_cron"
    NOT_A_TIMEZONE = "plan.not_a_timezone"
    HOLIDAY_ENDS_BEFORE_START = "plan.holiday_ends_before_start"
    KPI_DUE_NOT_AFTER_START = "plan.kpi_due_not_after_start"
    KPI_RED_BELOW_AMBER = "plan.kpi_red_below_amber"
    NOT_A_FLAG = "plan.not_a_flag"  # given
    CONTROL_CHARACTER = "plan.control_character"  # given, character (its code, e.g. U+0000)
    POLL_QUORUM_OVER_LEADERS = "plan.poll_quorum_over_leaders"  # quorum, leaders
    # A milestone's linked work (`work:`)
    WORK_ONE_TRACKER = "plan.work_one_tracker"
    WORK_ONE_SELECTOR = "plan.work_one_selector"  # tracker, choices
    WORK_NOT_A_REPOSITORY = "plan.work_not_a_repository"  # given
    WORK_NOT_A_PROJECT = "plan.work_not_a_project"  # given
    WORK_NOT_AN_EPIC = "plan.work_not_an_epic"  # given
    WORK_EPIC_OUTSIDE_PROJECT = "plan.work_epic_outside_project"  # epic, project
    WORK_NAME_HAS_SEMICOLON = "plan.work_name_has_semicolon"  # given
    WORK_NOT_A_LINK = "plan.work_not_a_link"  # given
    # Across items
    DUPLICATE_KEY = "plan.duplicate_key"
    UNKNOWN_REFERENCE = "plan.unknown_reference"
    UNKNOWN_KPI = "plan.unknown_kpi"
    UNKNOWN_MILESTONE = "plan.unknown_milestone"
    FOREIGN_MILESTONE = "plan.foreign_milestone"
    DUPLICATE_HOLIDAY = "plan.duplicate_holiday"
    # Export
    NOTHING_TO_EXPORT = "plan.nothing_to_export"
    EXPORT_NEEDS_OUTPUT = "plan.export_needs_output"
    EXPORT_OUTPUT_IS_A_FILE = "plan.export_output_is_a_file"
    UNKNOWN_EXPORT_FORMAT = "plan.unknown_export_format"


class PlanValueError(ValueError):
    """Raised by the schema's validators: pydantic keeps it in the error's context, and
    validate.py takes the code and parameters from it instead of pydantic's message."""

    def __init__(self, code: PlanProblemCode, **params: Any) -> None:
        super().__init__(code.value)
        self.code = code
        self.params = params


class Locator(Protocol):
    """Turns a path inside the plan document into a place a person can find in their file."""

    def place(self, path: Path) -> str: ...


class PlanProblems(UserError):
    """The plan cannot be used; the message lists every problem, one per line, with its place.

    Problems are worded here, once they are all collected, and only the listed ones.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.plan_problems = list(problems)
        super().__init__(
            render_text(
                "text/plan_problems.txt.j2",
                problems=self.plan_problems[:MAX_LISTED_PROBLEMS],
                total=len(self.plan_problems),
                say=partial(say, surface="cli"),
            ).rstrip("\n")
        )


_SINGULAR = {
    "teams": "team",
    "objectives": "objective",
    "kpis": "KPI",
    "readings": "reading",
    "initiatives": "initiative",
    "milestones": "milestone",
    "dependencies": "dependency",
    "holidays": "holiday",
    "leaders": "leader",
    "admins": "admin",
    "members": "member",
}


def describe(doc: Any, path: Path) -> str:
    """'initiative portal-beta, milestone beta-ready, due': a path as a person reads it."""
    parts: list[str] = []
    node = doc
    index = 0
    while index < len(path):
        step = path[index]
        following = path[index + 1] if index + 1 < len(path) else None
        if isinstance(step, str) and isinstance(following, int):
            items = node.get(step) if isinstance(node, dict) else None
            item = items[following] if isinstance(items, list) and following < len(items) else None
            name = _SINGULAR.get(step, step)
            key = item.get("key") if isinstance(item, dict) else None
            parts.append(
                f"{name} {key}" if isinstance(key, str | int) else f"{name} #{following + 1}"
            )
            node, index = item, index + 2
        else:
            parts.append(str(step))
            node = node.get(step) if isinstance(node, dict) else None
            index += 1
    return ", ".join(parts)
