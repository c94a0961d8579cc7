"""Read any plan format and validate it completely: a PlanFile, or every problem with its place."""

from __future__ import annotations

import difflib
from pathlib import Path as FsPath
from typing import Any

from pydantic import BaseModel, ValidationError

from bot.errors import UserError
from bot.planfile.problems import Locator, Path, PlanProblems, PlanValueError, describe
from bot.planfile.problems import PlanProblemCode as Code
from bot.planfile.references import reference_problems
from bot.planfile.schema import (
    Channels,
    Defaults,
    DependencySpec,
    HolidaySpec,
    InitiativeSpec,
    KpiSpec,
    MilestoneSpec,
    ObjectiveSpec,
    PlanFile,
    ReadingSpec,
    TeamSpec,
)
from bot.planfile.sheet_reader import read_csv_folder, read_workbook
from bot.planfile.text import MAX_PLAN_BYTES, check_size, decode_utf8
from bot.planfile.yaml_reader import read_yaml
from bot.problems import Problem, problem

_MODEL_OF: dict[str, type[BaseModel]] = {
    "": PlanFile,
    "channels": Channels,
    "defaults": Defaults,
    "holidays": HolidaySpec,
    "teams": TeamSpec,
    "objectives": ObjectiveSpec,
    "kpis": KpiSpec,
    "readings": ReadingSpec,
    "initiatives": InitiativeSpec,
    "milestones": MilestoneSpec,
    "dependencies": DependencySpec,
}


def read_document(path: str) -> tuple[dict[str, Any], Locator, list[Problem]]:
    """Dispatch on the path's kind; the size limit is checked before any parsing."""
    source = FsPath(path)
    if not source.exists():
        raise UserError(problem(Code.FILE_NOT_FOUND, path))
    if source.is_dir():
        check_size(sum(p.stat().st_size for p in source.iterdir() if p.is_file()), path)
        return read_csv_folder(source, path)
    suffix = source.suffix.lower()
    if suffix in (".yaml", ".yml"):
        check_size(source.stat().st_size, path)
        with source.open("rb") as handle:
            raw = handle.read(MAX_PLAN_BYTES + 1)
        check_size(len(raw), path)  # the file may have grown since stat()
        return read_yaml(path, decode_utf8(raw, path))
    if suffix == ".xlsx":
        check_size(source.stat().st_size, path)
        return read_workbook(source, path)
    raise UserError(problem(Code.NOT_A_PLAN_FILE, path))


def validate_document(
    doc: dict[str, Any], locator: Locator, problems: list[Problem] | None = None
) -> PlanFile:
    found = list(problems or [])
    plan: PlanFile | None = None
    try:
        plan = PlanFile.model_validate(doc)
    except ValidationError as exc:
        found.extend(_field_problems(exc, doc, locator))
    found.extend(reference_problems(doc, locator))
    if found or plan is None:
        raise PlanProblems(found)
    return plan


def load_plan(path: str) -> PlanFile:
    """The whole check `planpulse validate` runs; import runs it before touching the database."""
    doc, locator, problems = read_document(path)
    return validate_document(doc, locator, problems)


# Pydantic's own error types, as our codes; their context (ge, le, max_length, expected) and the
# value given become the parameters. Any other type keeps pydantic's message (INVALID_VALUE).
_CODE_OF_TYPE: dict[str, Code] = {
    "dict_type": Code.EXPECTED_MAPPING,
    "model_type": Code.EXPECTED_MAPPING,
    "model_attributes_type": Code.EXPECTED_MAPPING,
    "list_type": Code.EXPECTED_LIST,
    "string_type": Code.EXPECTED_TEXT,
    "float_parsing": Code.NOT_A_NUMBER,
    "float_type": Code.NOT_A_NUMBER,
    "int_parsing": Code.NOT_A_WHOLE_NUMBER,
    "int_type": Code.NOT_A_WHOLE_NUMBER,
    "int_from_float": Code.NOT_A_WHOLE_NUMBER,
    "literal_error": Code.NOT_ONE_OF,
    "bool_parsing": Code.NOT_A_FLAG,
    "bool_type": Code.NOT_A_FLAG,
    "string_too_short": Code.EMPTY_TEXT,
    "string_too_long": Code.TEXT_TOO_LONG,
    "greater_than_equal": Code.NUMBER_TOO_SMALL,
    "less_than_equal": Code.NUMBER_TOO_LARGE,
    # Dates go through the schema's own validator first; these are for any date it lets through.
    "date_type": Code.NOT_A_DATE,
    "date_parsing": Code.NOT_A_DATE,
}


def _field_problems(exc: ValidationError, doc: dict[str, Any], locator: Locator) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        path: Path = tuple(error["loc"])
        kind = error["type"]
        params: dict[str, Any]
        if kind == "missing":
            subject, name = path[:-1], str(path[-1])
            code, place, params = Code.MISSING_FIELD, locator.place(subject), {"name": name}
        elif kind == "extra_forbidden":
            subject, name = path[:-1], str(path[-1])
            code, place = Code.UNKNOWN_FIELD, locator.place(path)
            params = {"name": name, **_known_fields(subject, name)}
        else:
            subject, place = path, locator.place(path)
            code, params = _code_and_params(error)
        problems.append(Problem(code, place, {**params, "item": describe(doc, subject)}))
    return problems


def _known_fields(subject: Path, name: str) -> dict[str, Any]:
    """The fields the item may have, and the one closest to the unknown `name`."""
    parent = next((step for step in reversed(subject) if isinstance(step, str)), "")
    model = _MODEL_OF.get(parent)
    if model is None:
        return {"known": None, "suggestion": None}
    known = list(model.model_fields)
    close = difflib.get_close_matches(name, known, n=1)
    return {"known": known, "suggestion": close[0] if close else None}


def _code_and_params(error: Any) -> tuple[Code, dict[str, Any]]:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in ("value_error", "assertion_error"):
        cause = ctx.get("error")
        if isinstance(cause, PlanValueError):
            return cause.code, dict(cause.params)
        detail = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        return Code.INVALID_VALUE, {"detail": detail}
    code = _CODE_OF_TYPE.get(kind)
    if code is None:
        return Code.INVALID_VALUE, {"detail": error["msg"]}
    return code, {**ctx, "given": error.get("input")}
