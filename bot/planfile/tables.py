"""Spreadsheet layout of a plan (one sheet per list) and its conversion to and from the YAML shape."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from bot.planfile.problems import Path
from bot.planfile.problems import PlanProblemCode as Code
from bot.planfile.schema import work_link_text
from bot.problems import Problem, problem


@dataclass(frozen=True)
class SheetSpec:
    name: str
    columns: tuple[str, ...]
    required_columns: tuple[str, ...]
    optional_sheet: bool = False
    list_columns: tuple[str, ...] = ()
    # Cells of work links (`github:owner/name label=pilot`): `;` or a new line between them,
    # since a label may hold a comma.
    link_columns: tuple[str, ...] = ()
    parent: tuple[str, str] | None = None  # (column naming the parent, the parent's sheet)


SHEETS: tuple[SheetSpec, ...] = (
    SheetSpec("settings", ("field", "value"), ("field", "value")),
    SheetSpec("leaders", ("person",), ("person",)),
    SheetSpec("admins", ("person",), ("person",), optional_sheet=True),
    SheetSpec("holidays", ("start", "end", "name"), ("start",), optional_sheet=True),
    SheetSpec(
        "teams", ("key", "name", "channel", "lead", "members"), ("key",), list_columns=("members",)
    ),
    SheetSpec("objectives", ("key", "title", "owner"), ("key",)),
    SheetSpec(
        "kpis",
        (
            "key",
            "objective",
            "name",
            "unit",
            "baseline",
            "target",
            "direction",
            "start",
            "due",
            "amber",
            "red",
            "reading_every_days",
        ),
        ("key", "objective"),
        parent=("objective", "objectives"),
    ),
    SheetSpec(
        "readings", ("kpi", "as_of", "value"), ("kpi",), optional_sheet=True, parent=("kpi", "kpis")
    ),
    SheetSpec(
        "initiatives",
        ("key", "title", "objective", "owner", "team", "kpis", "pulse", "status"),
        ("key",),
        list_columns=("kpis",),
    ),
    SheetSpec(
        "milestones",
        ("key", "initiative", "title", "due", "original_due", "status", "work"),
        ("key", "initiative"),
        parent=("initiative", "initiatives"),
        link_columns=("work",),
    ),
    SheetSpec(
        "dependencies",
        (
            "key",
            "initiative",
            "provider",
            "need",
            "needed_by",
            "milestone",
            "ack_within_days",
            "state",
        ),
        ("key", "initiative"),
        parent=("initiative", "initiatives"),
    ),
    # The decision log, written by export for the record; an import reads past it.
    SheetSpec(
        "decisions",
        (
            "milestone",
            "option",
            "decided_at",
            "new_due",
            "scope_cut",
            "resources",
            "risk_accepted_until",
            "votes",
        ),
        (),
        optional_sheet=True,
    ),
)
SHEETS_BY_NAME = {spec.name: spec for spec in SHEETS}

# The settings sheet holds one field per row; dotted names reach into the YAML's nested mappings.
SETTINGS_FIELDS = (
    "organization",
    "timezone",
    "channels.decisions",
    "channels.alerts",
    "defaults.pulse",
    "defaults.ack_within_days",
    "defaults.poll_hours",
    "defaults.poll_quorum",
    "defaults.poll_anonymous",
    "digest",
    "digest_to",
)

_LIST_SEPARATORS = re.compile(r"[,;\n]")
_LINK_SEPARATORS = re.compile(r"[;\n]")


@dataclass
class Table:
    """One sheet or CSV file as read: where it came from, its header and its non-empty rows."""

    label: str  # "plan.xlsx, sheet teams" or "plan/teams.csv"
    header: list[str]
    header_row: int
    rows: list[tuple[int, list[Any]]] = field(default_factory=list)


class TableLocator:
    """Places of items read from sheets: the row of an item, and the column of a field in it."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.items: dict[Path, str] = {}  # an item's row: a field below it is one of its columns
        self.cells: dict[Path, str] = {}  # a single value's row (settings, leaders)

    def place(self, path: Path) -> str:
        for cut in range(len(path), 0, -1):
            cell = self.cells.get(path[:cut])
            if cell is not None:
                return cell
            row = self.items.get(path[:cut])
            if row is not None:
                rest = path[cut:]
                return f"{row}, column {rest[0]}" if rest and isinstance(rest[0], str) else row
        return self.label


def normalize_header(cell: Any) -> str:
    return re.sub(r"\s+", "_", str(cell).strip().lower()) if cell is not None else ""


def clean_cell(value: Any) -> Any:
    """Empty cells are absent fields; a spreadsheet date at midnight is a plain date."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, datetime) and value.time() == time(0, 0):
        return value.date()
    return value


def tables_to_document(
    label: str, tables: dict[str, Table]
) -> tuple[dict[str, Any], TableLocator, list[Problem]]:
    """Assemble the nested plan document from sheets, remembering each item's sheet and row."""
    problems: list[Problem] = []
    locator = TableLocator(label)
    for spec in SHEETS:
        if spec.name not in tables and not spec.optional_sheet:
            problems.append(problem(Code.SHEET_MISSING, label, sheet=spec.name))
    records = {
        name: _records(tables[name], SHEETS_BY_NAME[name], problems)
        for name in tables
        if name in SHEETS_BY_NAME
    }
    doc: dict[str, Any] = {}
    settings_label = tables["settings"].label if "settings" in tables else label
    _settings(records.get("settings", []), settings_label, doc, locator, problems)
    for name in ("leaders", "admins"):
        if name in records:
            doc[name] = []
            for place, record in records[name]:
                if "person" in record:
                    locator.cells[(name, len(doc[name]))] = place
                    doc[name].append(record["person"])
    for name in ("holidays", "teams", "objectives", "initiatives"):
        if name in records:
            doc[name] = []
            for place, record in records[name]:
                locator.items[(name, len(doc[name]))] = place
                doc[name].append(record)
    _attach_children(doc, records, locator, problems)
    return doc, locator, problems


def _records(
    table: Table, spec: SheetSpec, problems: list[Problem]
) -> list[tuple[str, dict[str, Any]]]:
    """Rows as {column: value} of the known, non-empty cells, each with its place."""
    if not table.header:
        return []  # a blank sheet is an empty list
    usable: dict[int, str] = {}
    seen: set[str] = set()
    for index, name in enumerate(table.header):
        if not name:
            continue
        where = f"{table.label}, row {table.header_row}"
        if name not in spec.columns:
            problems.append(
                problem(
                    Code.UNKNOWN_COLUMN, where, name=name, sheet=spec.name, columns=spec.columns
                )
            )
        elif name in seen:
            problems.append(problem(Code.COLUMN_TWICE, where, name=name))
        else:
            usable[index] = name
            seen.add(name)
    for name in spec.required_columns:
        if name not in seen:
            problems.append(
                problem(Code.COLUMN_MISSING, f"{table.label}, row {table.header_row}", name=name)
            )
    records = []
    for row_number, cells in table.rows:
        record: dict[str, Any] = {}
        for index, name in usable.items():
            value = clean_cell(cells[index]) if index < len(cells) else None
            if value is None:
                continue
            if name in spec.list_columns:
                value = [
                    part.strip() for part in _LIST_SEPARATORS.split(str(value)) if part.strip()
                ]
            elif name in spec.link_columns:
                value = [
                    part.strip() for part in _LINK_SEPARATORS.split(str(value)) if part.strip()
                ]
            record[name] = value
        if record:
            records.append((f"{table.label}, row {row_number}", record))
    return records


def _settings(
    records: list[tuple[str, dict[str, Any]]],
    settings_label: str,
    doc: dict[str, Any],
    locator: TableLocator,
    problems: list[Problem],
) -> None:
    for setting in SETTINGS_FIELDS:
        locator.cells[tuple(setting.split("."))[:1]] = settings_label
    given: set[str] = set()
    for place, record in records:
        name = str(record.get("field", "")).strip().lower()
        if name not in SETTINGS_FIELDS:
            problems.append(
                problem(Code.UNKNOWN_SETTING, place, name=name, settings=SETTINGS_FIELDS)
            )
            continue
        if name in given:
            problems.append(problem(Code.SETTING_TWICE, place, name=name))
            continue
        given.add(name)
        if "value" not in record:
            continue  # an empty value means "the default"
        target = doc
        steps = name.split(".")
        for step in steps[:-1]:
            target = target.setdefault(step, {})
        target[steps[-1]] = record["value"]
        locator.cells[tuple(steps)] = place


def _attach_children(
    doc: dict[str, Any],
    records: dict[str, list[tuple[str, dict[str, Any]]]],
    locator: TableLocator,
    problems: list[Problem],
) -> None:
    """KPIs go under their objective, readings under their KPI, milestones and dependencies under
    their initiative: the same nesting as the YAML, so one validator serves every format."""
    parents: dict[str, dict[str, tuple[Path, dict[str, Any]]]] = {
        "objectives": _by_key(doc.get("objectives", []), ("objectives",)),
        "initiatives": _by_key(doc.get("initiatives", []), ("initiatives",)),
    }
    kpis_by_key: dict[str, tuple[Path, dict[str, Any]]] = {}
    for sheet, list_name in (
        ("kpis", "kpis"),
        ("readings", "readings"),
        ("milestones", "milestones"),
        ("dependencies", "dependencies"),
    ):
        spec = SHEETS_BY_NAME[sheet]
        assert spec.parent is not None
        parent_column, parent_sheet = spec.parent
        known = kpis_by_key if parent_sheet == "kpis" else parents[parent_sheet]
        for place, record in records.get(sheet, []):
            parent_key = record.pop(parent_column, None)
            if parent_key is None:
                problems.append(
                    problem(
                        Code.PARENT_MISSING,
                        f"{place}, column {parent_column}",
                        column=parent_column,
                    )
                )
                continue
            found = known.get(str(parent_key))
            if found is None:
                problems.append(
                    problem(
                        Code.UNKNOWN_PARENT,
                        f"{place}, column {parent_column}",
                        column=parent_column,
                        value=parent_key,
                        sheet=parent_sheet,
                    )
                )
                continue
            parent_path, parent = found
            children = parent.setdefault(list_name, [])
            path = (*parent_path, list_name, len(children))
            locator.items[path] = place
            children.append(record)
            if sheet == "kpis" and "key" in record:
                kpis_by_key.setdefault(str(record["key"]), (path, record))


def _by_key(items: list[dict[str, Any]], prefix: Path) -> dict[str, tuple[Path, dict[str, Any]]]:
    found: dict[str, tuple[Path, dict[str, Any]]] = {}
    for index, item in enumerate(items):
        if "key" in item:
            found.setdefault(str(item["key"]), ((*prefix, index), item))
    return found


def document_to_tables(doc: dict[str, Any]) -> dict[str, list[list[Any]]]:
    """The reverse, for export: one header row then one row per item, lists joined by commas."""
    tables: dict[str, list[list[Any]]] = {spec.name: [list(spec.columns)] for spec in SHEETS}
    for setting in SETTINGS_FIELDS:
        value: Any = doc
        for step in setting.split("."):
            value = value.get(step) if isinstance(value, dict) else None
        tables["settings"].append([setting, value])
    for name in ("leaders", "admins"):
        tables[name].extend([person] for person in doc.get(name, []))
    for name in ("holidays", "teams", "objectives", "initiatives"):
        for item in doc.get(name, []):
            _row(tables, name, item, {})
    for objective in doc.get("objectives", []):
        for kpi in objective.get("kpis", []):
            _row(tables, "kpis", kpi, {"objective": objective["key"]})
            for reading in kpi.get("readings", []):
                _row(tables, "readings", reading, {"kpi": kpi["key"]})
    for initiative in doc.get("initiatives", []):
        for child in ("milestones", "dependencies"):
            for item in initiative.get(child, []):
                _row(tables, child, item, {"initiative": initiative["key"]})
    for decision in doc.get("decisions", []):
        votes = decision.get("votes") or {}
        shown = ", ".join(f"{option}={count}" for option, count in votes.items()) or None
        _row(tables, "decisions", {**decision, "votes": shown}, {})
    return tables


def _row(
    tables: dict[str, list[list[Any]]], sheet: str, item: dict[str, Any], extra: dict[str, Any]
) -> None:
    spec = SHEETS_BY_NAME[sheet]
    values = {**item, **extra}
    row = []
    for column in spec.columns:
        value = values.get(column)
        if column in spec.list_columns:
            value = ", ".join(value) if value else None
        elif column in spec.link_columns:
            value = "; ".join(work_link_text(link) for link in value) if value else None
        row.append(value)
    tables[sheet].append(row)
