"""Read the spreadsheet a team is leaving behind: an .xlsx workbook or a folder of .csv files."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path as FsPath
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException

from bot.planfile.problems import PlanProblemCode as Code
from bot.planfile.problems import PlanProblems
from bot.planfile.tables import (
    SHEETS_BY_NAME,
    Table,
    TableLocator,
    normalize_header,
    tables_to_document,
)
from bot.planfile.text import decode_utf8
from bot.problems import Problem, problem

Read = tuple[dict[str, Any], TableLocator, list[Problem]]


def read_workbook(path: FsPath, label: str) -> Read:
    """Formulas are refused (the value a person sees may not be what the file stores)."""
    try:
        # data_only=False: a formula cell shows up as a formula instead of a stale cached value.
        workbook = load_workbook(path, read_only=True, data_only=False)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError):
        raise PlanProblems([problem(Code.NOT_A_WORKBOOK, label)]) from None
    problems: list[Problem] = []
    tables: dict[str, Table] = {}
    try:
        for sheet in workbook.worksheets:
            name = sheet.title.strip().lower()
            sheet_label = f"{label}, sheet {sheet.title}"
            if name not in SHEETS_BY_NAME:
                problems.append(_unknown_part(Code.UNKNOWN_SHEET, sheet_label, sheet.title))
                continue
            rows = []
            for row_number, row in enumerate(sheet.iter_rows(min_row=1), start=1):
                cells: list[Any] = []
                for column, cell in enumerate(row):
                    data_type = getattr(cell, "data_type", None)
                    if data_type in ("f", "e"):
                        where = f"{sheet_label}, cell {get_column_letter(column + 1)}{row_number}"
                        code = Code.FORMULA_CELL if data_type == "f" else Code.ERROR_CELL
                        problems.append(problem(code, where, value=cell.value))
                        cells.append(None)
                    else:
                        cells.append(cell.value)
                rows.append((row_number, cells))
            tables[name] = _table(sheet_label, rows)
    finally:
        workbook.close()
    doc, locator, more = tables_to_document(label, tables)
    return doc, locator, problems + more


def read_csv_folder(folder: FsPath, label: str) -> Read:
    """One `<sheet>.csv` per list; a UTF-8 byte order mark (Excel's "CSV UTF-8") is accepted."""
    problems: list[Problem] = []
    tables: dict[str, Table] = {}
    for path in sorted(folder.iterdir()):
        if path.is_dir() or path.name.startswith("."):
            continue
        file_label = f"{label.rstrip('/')}/{path.name}"
        name = path.stem.strip().lower()
        if path.suffix.lower() != ".csv" or name not in SHEETS_BY_NAME:
            problems.append(_unknown_part(Code.UNKNOWN_SHEET_FILE, file_label, path.name))
            continue
        try:
            text = decode_utf8(path.read_bytes(), file_label)
        except PlanProblems as exc:
            problems.extend(exc.plan_problems)
            continue
        reader = csv.reader(io.StringIO(text, newline=""))
        rows: list[tuple[int, list[Any]]] = []
        try:
            for cells in reader:
                rows.append((reader.line_num, list(cells)))
        except csv.Error as exc:
            problems.append(
                problem(Code.CSV_SYNTAX, f"{file_label}, row {reader.line_num}", detail=str(exc))
            )
            continue
        tables[name] = _table(file_label, rows)
    doc, locator, more = tables_to_document(label, tables)
    return doc, locator, problems + more


def _table(label: str, rows: list[tuple[int, list[Any]]]) -> Table:
    """The first non-empty row is the header; empty rows (formatting leftovers) are dropped."""
    filled = [(number, cells) for number, cells in rows if any(_filled(cell) for cell in cells)]
    if not filled:
        return Table(label=label, header=[], header_row=1)
    header_row, header = filled[0]
    return Table(
        label=label,
        header=[normalize_header(cell) for cell in header],
        header_row=header_row,
        rows=filled[1:],
    )


def _filled(cell: Any) -> bool:
    return cell is not None and not (isinstance(cell, str) and not cell.strip())


def _unknown_part(code: Code, label: str, name: str) -> Problem:
    return problem(code, label, name=name, sheets=list(SHEETS_BY_NAME))
