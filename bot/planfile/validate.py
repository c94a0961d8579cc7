"""Read any plan format and validate it completely: a PlanFile, or every problem with its place."""

from __future__ import annotations

import difflib
from pathlib import Path as FsPath
from typing import Any

from pydantic import BaseModel, ValidationError

from bot.errors import UserError
from bot.planfile.problems import Locator, Path, PlanProblems, Problem, describe
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
        raise UserError(f"{path} does not exist.")
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
    raise UserError(
        f"{path} is not a plan file: use a .yaml file, an .xlsx workbook or a folder of .csv files."
    )


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


def _field_problems(exc: ValidationError, doc: dict[str, Any], locator: Locator) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        path: Path = tuple(error["loc"])
        kind = error["type"]
        if kind in ("missing", "extra_forbidden"):
            subject, field = path[:-1], str(path[-1])
            place = locator.place(subject if kind == "missing" else path)
            message = (
                f"missing required field {field!r}."
                if kind == "missing"
                else f"unknown field {field!r}{_field_suggestion(subject, field)}."
            )
        else:
            subject, place = path, locator.place(path)
            message = _sentence(error)
        what = describe(doc, subject)
        problems.append(Problem(place, f"{what}: {message}" if what else message))
    return problems


def _field_suggestion(subject: Path, field: str) -> str:
    parent = next((step for step in reversed(subject) if isinstance(step, str)), "")
    model = _MODEL_OF.get(parent)
    if model is None:
        return ""
    known = list(model.model_fields)
    close = difflib.get_close_matches(field, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f" ({hint}known fields: {', '.join(known)})"


def _sentence(error: Any) -> str:
    kind, given, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind in ("value_error", "assertion_error"):
        return (
            str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ") + "."
        )
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping of fields (name: value), not {_what_is(given)}."
    if kind == "list_type":
        return f"expected a list, not {_what_is(given)}."
    if kind == "string_type":
        return f"expected text, not {_what_is(given)}."
    if kind in ("float_parsing", "float_type"):
        return f"{given!r} is not a number."
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"{given!r} is not a whole number."
    if kind == "literal_error":
        return f"{given!r} is not one of {ctx.get('expected')}."
    if kind == "string_too_short":
        return "must not be empty."
    if kind == "string_too_long":
        return f"is too long (at most {ctx.get('max_length')} characters)."
    if kind == "greater_than_equal":
        return f"{given!r} is too small (at least {ctx.get('ge')})."
    if kind == "less_than_equal":
        return f"{given!r} is too large (at most {ctx.get('le')})."
    return f"{error['msg']}."


def _what_is(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "nothing"
    return f"{value!r}"
