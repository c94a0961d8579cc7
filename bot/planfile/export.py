"""Write the plan the database holds as YAML, an .xlsx workbook or a folder of .csv files."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import yaml
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.errors import NotFound, UserError
from bot.planfile.importer import stored_state
from bot.planfile.problems import PlanProblemCode as Code
from bot.planfile.state import document_from_state
from bot.planfile.tables import document_to_tables
from bot.problems import problem
from storage.db import session_scope
from storage.outcomes import decisions_by_milestone

if TYPE_CHECKING:
    _BaseDumper = yaml.SafeDumper
else:  # libyaml's dumper when PyYAML was built with it: the same output, faster
    _BaseDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):
    """Never writes &anchors/*aliases (PyYAML would for a date object used twice): plan files
    refuse them, so an export must import again as it is."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def exported_document(engine: Engine) -> dict[str, Any]:
    with session_scope(engine) as session:
        state, _people = stored_state(session)
        decisions = decision_log(session)
    if state.settings["organization"] is None:
        raise NotFound(problem(Code.NOTHING_TO_EXPORT))
    doc = document_from_state(state)
    if decisions:
        doc["decisions"] = decisions
    return doc


def decision_log(session: Session) -> list[dict[str, Any]]:
    """The `decisions:` section, oldest first: read-only, for the record (import ignores it)."""
    entries = []
    for decision, milestone, action in decisions_by_milestone(session=session):
        counts = (decision.votes or {}).get("counts") or {}
        entry: dict[str, Any] = {
            "milestone": milestone.key,
            "option": decision.option,
            "decided_at": decision.decided_at.isoformat(),
            "new_due": decision.new_due,
            "scope_cut": decision.scope_cut,
            "resources": action.what if action is not None else decision.resources,
            "risk_accepted_until": decision.risk_accepted_until,
            "votes": {str(k): int(v) for k, v in counts.items()},
        }
        entries.append({k: v for k, v in entry.items() if v not in (None, {})})
    return entries


def write_yaml(doc: dict[str, Any], stream: IO[str]) -> None:
    yaml.dump(
        doc, stream, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False
    )


def write_xlsx(doc: dict[str, Any], path: Path) -> None:
    workbook = Workbook(write_only=True)
    for name, rows in document_to_tables(doc).items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append([_cell(sheet, value) for value in row])
    workbook.save(path)


def _cell(sheet: Any, value: Any) -> Any:
    cell = WriteOnlyCell(sheet, value=value)
    if isinstance(value, str) and value.startswith("="):
        cell.data_type = "s"  # plan text, not a formula for Excel to run
    elif hasattr(value, "isoformat"):
        cell.number_format = "yyyy-mm-dd"
    return cell


def write_csv(doc: dict[str, Any], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in document_to_tables(doc).items():
        with (folder / f"{name}.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            for row in rows:
                writer.writerow(["" if value is None else _csv_value(value) for value in row])


def _csv_value(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def export_plan(engine: Engine, *, fmt: str, output: str | None) -> str | None:
    """Returns where the plan went, or None when YAML went to standard output."""
    doc = exported_document(engine)
    if fmt == "yaml":
        if output is None:
            write_yaml(doc, sys.stdout)
            return None
        with Path(output).open("w", encoding="utf-8") as handle:
            write_yaml(doc, handle)
        return output
    if output is None:
        raise UserError(problem(Code.EXPORT_NEEDS_OUTPUT, fmt=fmt))
    if fmt == "xlsx":
        write_xlsx(doc, Path(output))
    elif fmt == "csv":
        if Path(output).exists() and not Path(output).is_dir():
            raise UserError(problem(Code.EXPORT_OUTPUT_IS_A_FILE, output))
        write_csv(doc, Path(output))
    else:
        raise UserError(problem(Code.UNKNOWN_EXPORT_FORMAT, fmt=fmt))
    return output
